//! Atom 1.0 feeds of the latest published case studies: all of them, per topic and per
//! organisation. Like pages, each runs a GraphQL document (`web/queries/feed.graphql`)
//! through the same schema, so drafts can never leak into a feed.

use poem::{handler, web::Path, Request, Response};
use serde_json::{json, Value};

use super::{pages::respond, visit::Visit};
use crate::graphql::relay;

/// A stable entry id: a tag URI (RFC 4151) that survives changes of title, address or
/// host name.
pub fn entry_id(id: &str) -> String {
    match relay::parse_global_id_of("CaseStudy", id) {
        Ok(number) => format!("tag:kettle,2026:case-study:{number}"),
        Err(_) => format!("tag:kettle,2026:{id}"),
    }
}

/// The feed's `updated`: its newest entry's, or a fixed instant for an empty feed (so the
/// value does not change on every fetch).
fn updated(data: &Value) -> String {
    data["caseStudies"]["edges"]
        .as_array()
        .and_then(|edges| edges.iter().filter_map(|e| e["node"]["updatedAt"].as_str()).max().map(str::to_string))
        .unwrap_or_else(|| "2026-01-01T00:00:00Z".to_string())
}

/// Leaves out of every string in `value` what XML 1.0 cannot carry (C0 controls other
/// than tab, line feed and carriage return; U+FFFE and U+FFFF) and whatever else the text
/// policy refuses: text stored before the policy existed must not make a feed
/// ill-formed, since one bad entry would stop a reader taking any of them.
pub fn clean(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let std::borrow::Cow::Owned(cleaned) = crate::text::strip_refused(text) {
                *text = cleaned;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(clean),
        Value::Object(fields) => fields.values_mut().for_each(clean),
        _ => {}
    }
}

/// `kind` is "all", "topic" or "organisation"; `slug` names the topic or organisation.
async fn feed(request: &Request, kind: &str, slug: Option<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            // The paths end in .atom; what comes before is the slug.
            let slug = slug.map(|s| s.trim_end_matches(".atom").to_string());
            let topic_slug = if kind == "topic" { slug.clone() } else { None };
            let organisation_slug = if kind == "organisation" { slug.clone() } else { None };
            // The optional filters and the slugs to look up are separate variables: GraphQL
            // validates `topic(slug:)` as needing a value even where @include skips it.
            let variables = json!({
                "topic": topic_slug, "topicSlug": topic_slug.clone().unwrap_or_default(), "withTopic": topic_slug.is_some(),
                "organisation": organisation_slug, "organisationSlug": organisation_slug.clone().unwrap_or_default(),
                "withOrganisation": organisation_slug.is_some(),
            });
            let mut data = visit.query("feed", variables).await?;
            clean(&mut data);
            let base = visit.base_url();
            let (title, page, feed_id) = match kind {
                "topic" => match data["topic"]["name"].as_str() {
                    Some(name) => (format!("Kettle: {name}"), format!("/topics/{}", slug.clone().unwrap_or_default()), format!("topic:{}", slug.unwrap_or_default())),
                    None => return Ok(visit.not_found().await),
                },
                "organisation" => match data["organisation"]["name"].as_str() {
                    Some(name) => (
                        format!("Kettle: {name}"),
                        format!("/organisations/{}", slug.clone().unwrap_or_default()),
                        format!("organisation:{}", slug.unwrap_or_default()),
                    ),
                    None => return Ok(visit.not_found().await),
                },
                _ => ("Kettle: case studies".to_string(), "/case-studies".to_string(), "case-studies".to_string()),
            };
            let mut extra = json!({
                "title": title,
                "feed_id": format!("tag:kettle,2026:feed:{feed_id}"),
                "self_url": format!("{base}{}", request.uri().path()),
                "page_url": format!("{base}{page}"),
                "base_url": base,
                "updated": updated(&data),
            });
            // The request's own path comes back in `self_url`.
            clean(&mut extra);
            Ok(visit.render_feed("feed.xml", &data, extra))
        }
        .await,
    )
}

#[handler]
pub async fn latest(request: &Request) -> Response {
    feed(request, "all", None).await
}

#[handler]
pub async fn topic(request: &Request, Path(slug): Path<String>) -> Response {
    feed(request, "topic", Some(slug)).await
}

#[handler]
pub async fn organisation(request: &Request, Path(slug): Path<String>) -> Response {
    feed(request, "organisation", Some(slug)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_leaves_out_what_xml_cannot_carry() {
        let mut value = json!({
            "title": "Bins\u{b}\u{fffe} and\tmore\n",
            "list": [{ "name": "a\u{0}b\u{1f}c\u{7f}" }, 3, null, "\u{ffff}"],
        });
        clean(&mut value);
        assert_eq!(value, json!({ "title": "Bins and\tmore\n", "list": [{ "name": "abc" }, 3, null, ""] }));
    }
}
