//! schema.org descriptions of the case study (`Article`), artefact (`SoftwareSourceCode`
//! for code, else `CreativeWork`) and meetup (`Event`) pages, as JSON-LD in a
//! `<script type="application/ld+json">` in each page's head.
//!
//! Each is built with serde_json from the page's own GraphQL data, so it says no more
//! than the page shows the visitor; and since search engines read pages signed out, a
//! draft or an item the moderators hid gets none at all (its author, who still sees the
//! page, gets none either, so nothing hidden is ever described). [`script_text`] escapes
//! the JSON so that no user text can end the script element early.

use serde_json::{json, Map, Value};

use super::{licence_url, CONTENT_LICENCE};

/// JSON for inside a `<script>` element: `<`, `>` and `&` as `\u003c`, `\u003e`,
/// `\u0026` (so `</script>` or `<!--` in a title cannot end or change the element), and
/// U+2028/U+2029 escaped for old JavaScript parsers. Those characters only occur inside
/// JSON strings, where the escapes mean the same, so the JSON is unchanged.
pub fn script_text(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// An absolute address on this site.
fn at(base: &str, path: &str) -> String {
    format!("{base}{path}")
}

/// The absolute address of a node's page by its global id: given by the site, which
/// owns its addresses (this module sits below it and names no GraphQL id scheme).
pub type PageOf<'a> = &'a dyn Fn(&str) -> String;

fn page(page_of: PageOf<'_>, id: &Value) -> String {
    page_of(id.as_str().unwrap_or_default())
}

fn text(value: &Value) -> Option<&str> {
    value.as_str().filter(|t| !t.trim().is_empty())
}

/// Drops keys whose value is null, an empty string or an empty list: schema.org
/// consumers read an absent property better than an empty one.
fn compact(value: Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .filter(|(_, v)| !(v.is_null() || v.as_str() == Some("") || v.as_array().is_some_and(Vec::is_empty)))
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

/// At most `max` characters of `value`, with an ellipsis when cut.
fn shortened(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", value[..cut].trim_end()),
        None => value.to_string(),
    }
}

fn person(base: &str, member: &Value) -> Value {
    json!({
        "@type": "Person",
        "name": member["displayName"],
        "url": member["handle"].as_str().map(|h| at(base, &format!("/members/@{h}"))),
    })
}

fn organisation(base: &str, organisation: &Value) -> Value {
    if organisation.is_null() {
        return Value::Null;
    }
    compact(json!({
        "@type": "Organization",
        "name": organisation["name"],
        "url": organisation["slug"].as_str().map(|s| at(base, &format!("/organisations/{s}"))),
    }))
}

fn keywords(topics: &Value) -> Vec<Value> {
    topics.as_array().map(|list| list.iter().map(|t| t["name"].clone()).collect()).unwrap_or_default()
}

/// A case study page's `Article`, from `web/queries/case_study.graphql`'s data; `None`
/// for a draft or a hidden one.
pub fn case_study(data: &Value, base: &str, page_of: PageOf<'_>) -> Option<String> {
    let cs = &data["caseStudy"];
    if cs["status"] != "PUBLISHED" || cs["hidden"] != false {
        return None;
    }
    let url = page(page_of, &cs["id"]);
    let authors: Vec<Value> = cs["authors"]
        .as_array()
        .map(|list| list.iter().map(|m| compact(person(base, m))).collect())
        .unwrap_or_default();
    let article = compact(json!({
        "@context": "https://schema.org",
        "@type": "Article",
        "@id": url,
        "url": url,
        "mainEntityOfPage": url,
        "headline": cs["title"],
        "name": cs["title"],
        "description": text(&cs["summary"]),
        "datePublished": cs["publishedAt"],
        "dateModified": cs["updatedAt"],
        "author": authors,
        "sourceOrganization": organisation(base, &cs["organisation"]),
        "keywords": keywords(&cs["topics"]),
        "license": licence_url(CONTENT_LICENCE),
        "isAccessibleForFree": true,
        "inLanguage": "en-GB",
    }));
    Some(script_text(&article))
}

/// An artefact page's `SoftwareSourceCode` (code) or `CreativeWork`, from
/// `web/queries/artefact.graphql`'s data, with its licence and, when it carries one, its
/// publiccode.yml's description, licence and maintenance; `None` while hidden.
pub fn artefact(data: &Value, base: &str, page_of: PageOf<'_>) -> Option<String> {
    let a = &data["artefact"];
    if a["hidden"] != false {
        return None;
    }
    let url = page(page_of, &a["id"]);
    let publiccode = &a["publiccode"];
    let code = a["kind"] == "CODE";
    let mut licences: Vec<String> = a["licence"].as_str().map(licence_url).into_iter().collect();
    if let Some(expression) = publiccode["licence"].as_str() {
        for id in super::expression_ids(expression) {
            let url = licence_url(&id);
            if !licences.contains(&url) {
                licences.push(url);
            }
        }
    }
    let status = publiccode["developmentStatus"].as_str().map(|status| {
        let maintenance = publiccode["maintenanceType"].as_str().unwrap_or_default().to_lowercase();
        format!("{}; maintenance: {maintenance}", status.to_lowercase())
    });
    let description = text(&publiccode["longDescription"])
        .or_else(|| text(&publiccode["shortDescription"]))
        .or_else(|| text(&a["description"]))
        .map(|d| shortened(d, 1_000));
    let mut work = json!({
        "@context": "https://schema.org",
        "@type": if code { "SoftwareSourceCode" } else { "CreativeWork" },
        "@id": url,
        "url": url,
        "mainEntityOfPage": url,
        "name": a["title"],
        "abstract": text(&publiccode["shortDescription"]),
        "description": description,
        "dateCreated": a["createdAt"],
        "datePublished": a["createdAt"],
        "dateModified": a["updatedAt"],
        "license": if licences.len() == 1 { json!(licences[0]) } else { json!(licences) },
        "creativeWorkStatus": status,
        "author": if a["sharedBy"].is_null() { Value::Null } else { compact(person(base, &a["sharedBy"])) },
        "maintainer": organisation(base, &a["organisation"]),
        "sourceOrganization": organisation(base, &a["organisation"]),
        "keywords": keywords(&a["topics"]),
        "isBasedOn": if a["adaptedFrom"].is_null() { Value::Null } else { json!(page(page_of, &a["adaptedFrom"]["id"])) },
        "isAccessibleForFree": true,
    });
    // Where the thing itself lives: a repository for code, the work itself otherwise.
    let key = if code { "codeRepository" } else { "sameAs" };
    work[key] = a["url"].clone();
    Some(script_text(&compact(work)))
}

/// A meetup page's `Event`, from `web/queries/meetup_event.graphql`'s data: its status,
/// whether it meets in person, online or both, and where. The online link itself is
/// only for those going, so its `VirtualLocation` is the meetup's page. `None` while
/// hidden.
pub fn meetup_event(data: &Value, base: &str, page_of: PageOf<'_>) -> Option<String> {
    let e = &data["event"];
    if e["hidden"] != false {
        return None;
    }
    let url = page(page_of, &e["id"]);
    let venue = &e["venue"];
    let online = e["isOnline"] == true;
    let mut locations = Vec::new();
    if !venue.is_null() {
        locations.push(compact(json!({
            "@type": "Place",
            "name": venue["name"],
            "address": compact(json!({ "@type": "PostalAddress", "streetAddress": venue["address"] })),
        })));
    }
    if online {
        locations.push(json!({ "@type": "VirtualLocation", "url": url }));
    }
    let mode = match (!venue.is_null(), online) {
        (true, true) => "https://schema.org/MixedEventAttendanceMode",
        (false, true) => "https://schema.org/OnlineEventAttendanceMode",
        _ => "https://schema.org/OfflineEventAttendanceMode",
    };
    let status = match e["status"].as_str() {
        Some("CANCELLED") => "https://schema.org/EventCancelled",
        _ => "https://schema.org/EventScheduled",
    };
    let group = &e["group"];
    let organizer = match group["slug"].as_str() {
        Some(slug) => {
            json!({ "@type": "Organization", "name": group["name"], "url": at(base, &format!("/meetups/groups/{slug}")) })
        }
        None => Value::Null,
    };
    let event = compact(json!({
        "@context": "https://schema.org",
        "@type": "Event",
        "@id": url,
        "url": url,
        "name": e["title"],
        "startDate": e["startsAt"],
        "endDate": e["endsAt"],
        "eventStatus": status,
        "eventAttendanceMode": mode,
        "location": if locations.len() == 1 { locations.pop().unwrap_or_default() } else { json!(locations) },
        "organizer": organizer,
        "maximumAttendeeCapacity": e["capacity"],
        "remainingAttendeeCapacity": e["seatsLeft"],
        "isAccessibleForFree": true,
    }));
    Some(script_text(&event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_text_cannot_end_the_script() {
        let value = json!({ "name": "</script><script>alert(1)</script> & <!-- \u{2028}\u{2029}" });
        let text = script_text(&value);
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'), "{text}");
        assert!(!text.contains('\u{2028}') && !text.contains('\u{2029}'));
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }

    #[test]
    fn shortening_cuts_on_a_character() {
        assert_eq!(shortened("héllo world", 5), "héllo…");
        assert_eq!(shortened("short", 10), "short");
    }

    #[test]
    fn drafts_and_hidden_items_get_none() {
        let page_of = |id: &str| format!("https://k.example/{id}");
        let draft = json!({ "caseStudy": { "id": "x", "status": "DRAFT", "hidden": false } });
        assert_eq!(case_study(&draft, "https://k.example", &page_of), None);
        let hidden = json!({ "artefact": { "id": "x", "hidden": true, "title": "Hidden by the moderators" } });
        assert_eq!(artefact(&hidden, "https://k.example", &page_of), None);
        let hidden = json!({ "event": { "id": "x", "hidden": true } });
        assert_eq!(meetup_event(&hidden, "https://k.example", &page_of), None);
    }
}
