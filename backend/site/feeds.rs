//! Atom 1.0 feeds: the latest published case studies (all of them, per topic and per
//! organisation, the last two with the topic's or organisation's artefacts too), the
//! newest artefacts, and the meetups coming up. Like pages, each runs a GraphQL document
//! (`web/queries/feed*.graphql`) through the same schema, so drafts can never leak into
//! a feed.
//!
//! Ids are this site's own: tag URIs (RFC 4151) under the public URL's host name, made
//! from an item's number so they survive a change of title or slug (or, on a site served
//! from a bare IP address, which a tag URI cannot name, the item's permanent address).
//! Relative links and images in entry content are made absolute against the entry's own
//! address rather than left to `xml:base`, which several widely used readers ignore.

use poem::{handler, web::Path, Request, Response};
use serde_json::{json, Value};
use url::Url;

use super::{forms::respond, visit::Visit};
use crate::graphql::relay;

/// The year in the tag URIs' authority (RFC 4151 §2.1): any date on which the site held
/// its host name; fixed so that ids never change.
const TAG_YEAR: u16 = 2026;
/// The most entries one feed carries.
const FEED_MAX: usize = 50;
/// The `scheme` of the category that says what kind of thing an entry is.
const KIND_SCHEME: &str = "/feeds#kind";

/// Makes this site's ids.
struct Ids {
    base: String,
    /// `host,2026` when the public URL has a DNS name.
    tag_authority: Option<String>,
}

impl Ids {
    fn new(public_url: &Url) -> Ids {
        let base = public_url.as_str().trim_end_matches('/').to_string();
        let tag_authority = public_url.domain().map(|host| format!("tag:{},{TAG_YEAR}:", host.to_ascii_lowercase()));
        Ids { base, tag_authority }
    }

    /// `tag:host,2026:{specific}`, or `fallback` (a path on this site) made absolute.
    fn id(&self, specific: &str, fallback: &str) -> String {
        match &self.tag_authority {
            Some(authority) => format!("{authority}{specific}"),
            None => format!("{}{fallback}", self.base),
        }
    }
}

/// Makes every relative `href` and `src` in `html` (Kettle's own sanitised HTML, so
/// attribute values are double-quoted) absolute against `base`, so that a reader showing
/// the entry away from the site still follows links and loads images. Only markup inside
/// tags is touched; text is copied as it is.
pub fn absolute_urls(html: &str, base: &Url) -> String {
    let mut out = String::with_capacity(html.len() + html.len() / 8);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        // The tag runs to the first `>` outside a quoted value.
        let mut quote: Option<char> = None;
        let mut end = rest.len();
        for (i, c) in rest.char_indices().skip(1) {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (None, '"' | '\'') => quote = Some(c),
                (None, '>') => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        out.push_str(&absolute_in_tag(&rest[..end], base));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn absolute_in_tag(tag: &str, base: &Url) -> String {
    let mut out = String::with_capacity(tag.len());
    let mut rest = tag;
    loop {
        let found = [" href=\"", " src=\""].iter().filter_map(|attr| rest.find(attr).map(|i| (i, attr.len()))).min();
        let Some((at, len)) = found else { break };
        let value_start = at + len;
        let Some(value_len) = rest[value_start..].find('"') else { break };
        out.push_str(&rest[..value_start]);
        let value = &rest[value_start..value_start + value_len];
        // Values come HTML-escaped; only `&amp;` matters inside a URL.
        let raw = value.replace("&amp;", "&");
        match Url::parse(&raw) {
            // Already absolute (https:, mailto:, …): left alone.
            Ok(_) => out.push_str(value),
            Err(_) => match base.join(&raw) {
                Ok(url) => out.push_str(&url.as_str().replace('&', "&amp;").replace('"', "%22")),
                Err(_) => out.push_str(value),
            },
        }
        rest = &rest[value_start + value_len..];
    }
    out.push_str(rest);
    out
}

/// The feed's `updated`: its newest entry's, or a fixed instant for an empty feed (so the
/// value does not change on every fetch).
fn updated(entries: &[Value]) -> String {
    entries
        .iter()
        .filter_map(|e| e["updated"].as_str())
        .max()
        .map(str::to_string)
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

fn edges(data: &Value, field: &str) -> Vec<Value> {
    data[field]["edges"].as_array().map(|edges| edges.iter().map(|e| e["node"].clone()).collect()).unwrap_or_default()
}

fn number(type_name: &str, id: &Value) -> i64 {
    id.as_str().and_then(|id| relay::parse_global_id_of(type_name, id).ok()).unwrap_or_default()
}

/// One entry, in the shape `feed.xml` writes. `path` is the item's page on this site.
fn entry(ids: &Ids, kind: (&str, &str), number: i64, path: &str, title: String, fields: Value) -> Value {
    let link = format!("{}{path}", ids.base);
    let content = match (fields["content"].as_str(), Url::parse(&link)) {
        (Some(html), Ok(base)) => absolute_urls(html, &base),
        (Some(html), Err(_)) => html.to_string(),
        (None, _) => String::new(),
    };
    let (kind, kind_label) = kind;
    // Atom wants an author on every entry of a feed without its own: the site stands in
    // for an artefact whose sharer's account is gone.
    let mut fields = fields;
    if fields["authors"].as_array().is_none_or(Vec::is_empty) {
        fields["authors"] = json!([{ "name": "Kettle", "uri": format!("{}/", ids.base) }]);
    }
    let mut entry = json!({
        "id": ids.id(&format!("{kind}:{number}"), path),
        "kind": kind,
        "kind_label": kind_label,
        "title": title,
        "link": link,
        "content": content,
    });
    if let (Some(object), Value::Object(more)) = (entry.as_object_mut(), fields) {
        for (key, value) in more {
            object.entry(key).or_insert(value);
        }
    }
    entry
}

fn case_study_entry(ids: &Ids, node: &Value) -> Value {
    let number = number("CaseStudy", &node["id"]);
    let authors: Vec<Value> = node["authors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| {
                    json!({ "name": a["displayName"], "uri": format!("{}/members/@{}", ids.base, a["handle"].as_str().unwrap_or_default()) })
                })
                .collect()
        })
        .unwrap_or_default();
    entry(
        ids,
        ("case-study", "Case study"),
        number,
        &format!("/case-studies/{number}"),
        node["title"].as_str().unwrap_or_default().to_string(),
        json!({
            "published": node["publishedAt"], "updated": node["updatedAt"], "summary": node["summary"],
            "content": node["bodyHtml"], "authors": authors, "topics": node["topics"],
        }),
    )
}

fn artefact_entry(ids: &Ids, node: &Value) -> Value {
    let number = number("Artefact", &node["id"]);
    let authors: Vec<Value> = match node["sharedBy"].as_object() {
        Some(member) => vec![json!({
            "name": member["displayName"],
            "uri": format!("{}/members/@{}", ids.base, member["handle"].as_str().unwrap_or_default()),
        })],
        None => vec![],
    };
    // Where the artefact itself lives (a repository, a document) comes first in the
    // content: it is what a reader of an artefact feed most wants.
    let url = node["url"].as_str().unwrap_or_default();
    let mut content = String::new();
    if url.starts_with("https://") || url.starts_with("http://") {
        let escaped = url.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
        content.push_str(&format!("<p><a href=\"{escaped}\">{escaped}</a></p>"));
    }
    content.push_str(node["descriptionHtml"].as_str().unwrap_or_default());
    entry(
        ids,
        ("artefact", "Artefact"),
        number,
        &format!("/artefacts/{number}"),
        format!("Artefact: {}", node["title"].as_str().unwrap_or_default()),
        json!({
            "published": node["createdAt"], "updated": node["updatedAt"], "content": content,
            "authors": authors, "topics": node["topics"],
        }),
    )
}

/// "Saturday 9 January 2027 at 19:00 (Europe/London)" from the organiser's local time.
fn meetup_when(node: &Value) -> String {
    let zone = node["timeZone"].as_str().unwrap_or_default();
    match node["localStart"].as_str().and_then(|s| s.parse::<jiff::civil::DateTime>().ok()) {
        Some(start) => format!("{} ({zone})", start.strftime(crate::text::DAY_DATE_TIME)),
        None => String::new(),
    }
}

fn meetup_entry(ids: &Ids, node: &Value) -> Value {
    let number = number("MeetupEvent", &node["id"]);
    let cancelled = node["status"].as_str() == Some("CANCELLED");
    let group = node["group"]["name"].as_str().unwrap_or_default();
    let title = node["title"].as_str().unwrap_or_default();
    let title = if cancelled { format!("Cancelled: {title}") } else { title.to_string() };
    let place = [node["venue"]["name"].as_str(), node["venue"]["address"].as_str()]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let place = match (place.is_empty(), node["isOnline"].as_bool() == Some(true)) {
        (false, true) => format!("{place}, and online"),
        (false, false) => place,
        (true, true) => "Online".to_string(),
        (true, false) => String::new(),
    };
    let summary = [meetup_when(node), place, format!("Run by {group}")]
        .into_iter()
        .filter(|p| !p.is_empty() && p != "Run by ")
        .collect::<Vec<_>>()
        .join(". ");
    let authors = vec![json!({
        "name": group,
        "uri": format!("{}/meetups/groups/{}", ids.base, node["group"]["slug"].as_str().unwrap_or_default()),
    })];
    entry(
        ids,
        ("meetup", "Meetup"),
        number,
        &format!("/meetups/events/{number}"),
        title,
        json!({
            "updated": node["updatedAt"], "summary": summary, "content": node["descriptionHtml"], "authors": authors,
        }),
    )
}

/// What a feed is of.
enum Kind {
    CaseStudies,
    Topic(String),
    Organisation(String),
    Artefacts,
    Meetups,
}

async fn feed(request: &Request, kind: Kind) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let ids = Ids::new(&visit.state().config.public_url);
            let (document, variables) = match &kind {
                Kind::Artefacts => ("feed_artefacts", json!({})),
                Kind::Meetups => ("feed_meetups", json!({})),
                Kind::CaseStudies | Kind::Topic(_) | Kind::Organisation(_) => {
                    let topic_slug = match &kind {
                        Kind::Topic(slug) => Some(slug.clone()),
                        _ => None,
                    };
                    let organisation_slug = match &kind {
                        Kind::Organisation(slug) => Some(slug.clone()),
                        _ => None,
                    };
                    // The optional filters and the slugs to look up are separate
                    // variables: GraphQL validates `topic(slug:)` as needing a value even
                    // where @include skips it.
                    let variables = json!({
                        "topic": topic_slug, "topicSlug": topic_slug.clone().unwrap_or_default(),
                        "withTopic": topic_slug.is_some(),
                        "organisation": organisation_slug,
                        "organisationSlug": organisation_slug.clone().unwrap_or_default(),
                        "withOrganisation": organisation_slug.is_some(),
                        "withArtefacts": topic_slug.is_some() || organisation_slug.is_some(),
                    });
                    ("feed", variables)
                }
            };
            let mut data = visit.query(document, variables).await?;
            clean(&mut data);
            let mut entries: Vec<Value> = match kind {
                Kind::Artefacts => edges(&data, "artefacts").iter().map(|n| artefact_entry(&ids, n)).collect(),
                Kind::Meetups => edges(&data, "upcomingMeetups").iter().map(|n| meetup_entry(&ids, n)).collect(),
                _ => edges(&data, "caseStudies")
                    .iter()
                    .map(|n| case_study_entry(&ids, n))
                    .chain(edges(&data, "artefacts").iter().map(|n| artefact_entry(&ids, n)))
                    .collect(),
            };
            if matches!(kind, Kind::Topic(_) | Kind::Organisation(_)) {
                // Case studies and artefacts together, most recently changed first.
                entries.sort_by(|a, b| b["updated"].as_str().cmp(&a["updated"].as_str()));
                entries.truncate(FEED_MAX);
            }
            let (title, subtitle, page, feed_id) = match &kind {
                Kind::Topic(slug) => {
                    let Some(name) = data["topic"]["name"].as_str() else { return Ok(visit.not_found().await) };
                    let number = number("Topic", &data["topic"]["id"]);
                    (
                        format!("Kettle: {name}"),
                        format!("Case studies and artefacts about {name} on Kettle."),
                        format!("/topics/{slug}"),
                        ids.id(&format!("feed:topic:{number}"), request.uri().path()),
                    )
                }
                Kind::Organisation(slug) => {
                    let Some(name) = data["organisation"]["name"].as_str() else {
                        return Ok(visit.not_found().await);
                    };
                    let number = number("Organisation", &data["organisation"]["id"]);
                    (
                        format!("Kettle: {name}"),
                        format!("Case studies and artefacts from {name} on Kettle."),
                        format!("/organisations/{slug}"),
                        ids.id(&format!("feed:organisation:{number}"), request.uri().path()),
                    )
                }
                Kind::CaseStudies => (
                    "Kettle: case studies".to_string(),
                    "Case studies from Kettle, where public-sector digital teams share what worked.".to_string(),
                    "/case-studies".to_string(),
                    ids.id("feed:case-studies", "/feeds/case-studies.atom"),
                ),
                Kind::Artefacts => (
                    "Kettle: artefacts".to_string(),
                    "Code, designs and documents public-sector teams share on Kettle to reuse.".to_string(),
                    "/artefacts".to_string(),
                    ids.id("feed:artefacts", "/feeds/artefacts.atom"),
                ),
                Kind::Meetups => (
                    "Kettle: upcoming meetups".to_string(),
                    "Meetups coming up on Kettle, soonest first.".to_string(),
                    "/meetups".to_string(),
                    ids.id("feed:meetups", "/feeds/meetups.atom"),
                ),
            };
            let mut extra = json!({
                "title": title,
                "subtitle": subtitle,
                "feed_id": feed_id,
                "self_url": format!("{}{}", ids.base, request.uri().path()),
                "page_url": format!("{}{page}", ids.base),
                "base_url": ids.base,
                "kind_scheme": format!("{}{KIND_SCHEME}", ids.base),
                "updated": updated(&entries),
                "entries": entries,
            });
            // The request's own path comes back in `self_url`.
            clean(&mut extra);
            Ok(visit.render_feed("feed.xml", &data, extra))
        }
        .await,
    )
}

/// The paths end in `.atom`; what comes before is the slug.
fn slug(segment: &str) -> String {
    segment.trim_end_matches(".atom").to_string()
}

#[handler]
pub async fn latest(request: &Request) -> Response {
    feed(request, Kind::CaseStudies).await
}

#[handler]
pub async fn topic(request: &Request, Path(segment): Path<String>) -> Response {
    feed(request, Kind::Topic(slug(&segment))).await
}

#[handler]
pub async fn organisation(request: &Request, Path(segment): Path<String>) -> Response {
    feed(request, Kind::Organisation(slug(&segment))).await
}

#[handler]
pub async fn artefacts(request: &Request) -> Response {
    feed(request, Kind::Artefacts).await
}

#[handler]
pub async fn meetups(request: &Request) -> Response {
    feed(request, Kind::Meetups).await
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

    #[test]
    fn relative_links_and_images_become_absolute() {
        let base = Url::parse("https://kettle.example.org/case-studies/4").unwrap();
        let html = concat!(
            r#"<p>See <a href="/members/@ada" rel="noopener">Ada</a>, <a href="https://gov.example/x?a=1&amp;b=2">x</a>, "#,
            r##"<a href="#part-2">part 2</a> and <a href="notes?a=1&amp;b=2">notes</a>.</p>"##,
            r#"<img src="/static/a.png" alt="a > b"> <a href="mailto:a@example.org">mail</a> "#,
            r#"text with href="/not-a-tag" stays</p>"#
        );
        assert_eq!(
            absolute_urls(html, &base),
            concat!(
                r#"<p>See <a href="https://kettle.example.org/members/@ada" rel="noopener">Ada</a>, "#,
                r#"<a href="https://gov.example/x?a=1&amp;b=2">x</a>, "#,
                r##"<a href="https://kettle.example.org/case-studies/4#part-2">part 2</a> and "##,
                r#"<a href="https://kettle.example.org/case-studies/notes?a=1&amp;b=2">notes</a>.</p>"#,
                r#"<img src="https://kettle.example.org/static/a.png" alt="a > b"> <a href="mailto:a@example.org">mail</a> "#,
                r#"text with href="/not-a-tag" stays</p>"#
            )
        );
    }

    #[test]
    fn ids_are_tag_uris_under_the_host_or_permanent_addresses() {
        let named = Ids::new(&Url::parse("https://Kettle.Example.org/").unwrap());
        assert_eq!(named.id("case-study:4", "/case-studies/4"), "tag:kettle.example.org,2026:case-study:4");
        let bare = Ids::new(&Url::parse("http://127.0.0.1:8080").unwrap());
        assert_eq!(bare.id("case-study:4", "/case-studies/4"), "http://127.0.0.1:8080/case-studies/4");
    }
}
