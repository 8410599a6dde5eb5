//! Open data: schema.org JSON-LD on case study, artefact and meetup pages, the JSON Lines
//! export at /open-data/kettle.jsonl, and a code artefact's publiccode.yml.

use serde_json::{json, Value};

use crate::{
    artefacts::{artefact, number, share, SHARE},
    case_studies::{admin, case_study, create_case_study, create_organisation, create_topic, PUBLISH},
    scenarios,
    support::{user_errors, Client, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        open_data_pages_describe_themselves_in_json_ld,
        open_data_json_ld_leaves_out_drafts_and_hidden_items,
        open_data_export_has_published_work_and_reuse_one_object_a_line,
        open_data_export_pages_through_everything_once,
        open_data_publiccode_is_checked_stored_and_shown,
        open_data_bad_publiccode_is_refused_and_changes_nothing,
    ]
}

const HIDE: &str =
    "mutation($input: ModerateContentInput!) { hideContent(input: $input) { hidden userErrors { field code } } }";
const SCHEDULE: &str = "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id } userErrors { field code message } } }";
const CANCEL: &str =
    "mutation($input: CancelMeetupInput!) { cancelMeetup(input: $input) { event { status } userErrors { field code } } }";
const EDIT: &str = "mutation($input: UpdateArtefactInput!) { updateArtefact(input: $input) { artefact { id version publiccode { name } } userErrors { field code message } } }";
const PUBLICCODE: &str = "query($id: ID!) { node(id: $id) { ... on Artefact { publiccode { source publiccodeYmlVersion name url licence maintenanceType developmentStatus descriptionLanguage shortDescription longDescription } } } }";
const BREAKOUT: &str = "Bins </script><script>alert(1)</script> & more";

const PUBLICCODE_YML: &str = "\
publiccodeYmlVersion: \"0.4\"
name: Bin day finder
url: https://github.com/example-council/bin-day
developmentStatus: stable
legal:
  license: EUPL-1.2 OR MIT
maintenance:
  type: community
description:
  en:
    shortDescription: Tells residents which day their bins are collected
    longDescription: A small web service that looks up an address and says which bins go out when.
";

/// The page at `path` as a signed-out visitor sees it: its status, CSP and body.
async fn page(app: &TestApp, path: &str) -> (u16, String, String) {
    let response = app.http().get(app.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let csp = response.headers().get("content-security-policy").map(|v| v.to_str().unwrap().to_string());
    (status, csp.unwrap_or_default(), response.text().await.unwrap())
}

/// Every JSON-LD block in `html`, parsed.
fn json_ld(html: &str) -> Vec<Value> {
    let open = "<script type=\"application/ld+json\">";
    html.match_indices(open)
        .map(|(at, _)| {
            let rest = &html[at + open.len()..];
            let text = &rest[..rest.find("</script>").expect("the script element ends")];
            serde_json::from_str(text).unwrap_or_else(|e| panic!("JSON-LD does not parse ({e}): {text}"))
        })
        .collect()
}

/// A published case study by `client`; its number.
async fn published(client: &Client, topic: &str, title: &str) -> (String, i64) {
    let made = create_case_study(client, case_study(title, &[topic])).await;
    let id = made["id"].as_str().unwrap().to_string();
    let data = client.data(PUBLISH, json!({ "id": id })).await;
    assert_eq!(data["publishCaseStudy"]["userErrors"], json!([]), "{data}");
    let n = number("CaseStudy", &json!(id));
    (id, n)
}

async fn meetup(organiser: &Client) -> String {
    let data = organiser
        .data(
            "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id } userErrors { code } } }",
            json!({ "input": { "name": "TeaCamp North", "region": "North West" } }),
        )
        .await;
    let group = data["createMeetupGroup"]["group"]["id"].as_str().unwrap().to_string();
    let input = json!({
        "groupId": group, "title": BREAKOUT, "description": "Tea and cake.", "timeZone": "Europe/London",
        "start": "2030-01-10T16:00", "end": "2030-01-10T18:00",
        "venueName": "The Federation", "venueAddress": "Federation Street, Manchester",
        "onlineUrl": "https://meet.example.org/secret-room", "capacity": 20,
    });
    let data = organiser.data(SCHEDULE, json!({ "input": input })).await;
    assert_eq!(data["scheduleMeetup"]["userErrors"], json!([]), "{data}");
    data["scheduleMeetup"]["event"]["id"].as_str().unwrap().to_string()
}

async fn open_data_pages_describe_themselves_in_json_ld(app: TestApp) {
    let ada = admin(&app, "ada@example.org", "Ada").await;
    let topic = create_topic(&ada, "Waste").await;
    let base = app.state().config.public_url.as_str().trim_end_matches('/').to_string();

    // A case study whose title tries to close the script element.
    let (_, cs) = published(&ada, &topic, BREAKOUT).await;
    let (status, csp, html) = page(&app, &format!("/case-studies/{cs}")).await;
    assert_eq!(status, 200);
    assert!(csp.contains("script-src 'self'"), "the page keeps its strict policy: {csp}");
    assert!(!html.contains("<script>alert(1)"), "user text broke out of the script element");
    let found = json_ld(&html);
    assert_eq!(found.len(), 1, "{html}");
    let article = &found[0];
    assert_eq!(article["@context"], "https://schema.org");
    assert_eq!(article["@type"], "Article");
    assert_eq!(article["headline"], BREAKOUT, "the title survives the escaping");
    assert_eq!(article["url"], format!("{base}/case-studies/{cs}"));
    assert_eq!(article["author"][0]["@type"], "Person");
    assert_eq!(article["author"][0]["name"], "Ada");
    assert!(article["author"][0]["url"].as_str().unwrap().starts_with(&format!("{base}/members/@")));
    assert_eq!(article["license"], "https://spdx.org/licenses/CC-BY-4.0.html");
    assert!(article["datePublished"].as_str().unwrap().ends_with('Z'));
    assert_eq!(article["keywords"], json!(["Waste"]));

    // An artefact that is code, with its licence.
    let mut input = artefact(BREAKOUT, &[&topic]);
    input["publiccode"] = json!(PUBLICCODE_YML);
    let shared = share(&ada, input).await;
    let a = number("Artefact", &shared["id"]);
    let (status, _, html) = page(&app, &format!("/artefacts/{a}")).await;
    assert_eq!(status, 200);
    assert!(!html.contains("<script>alert(1)"));
    let code = &json_ld(&html)[0];
    assert_eq!(code["@type"], "SoftwareSourceCode");
    assert_eq!(code["name"], BREAKOUT);
    assert_eq!(code["url"], format!("{base}/artefacts/{a}"));
    assert_eq!(code["codeRepository"], "https://github.com/example/reminders");
    assert_eq!(
        code["license"],
        json!(["https://spdx.org/licenses/MIT.html", "https://spdx.org/licenses/EUPL-1.2.html"]),
        "its own licence and its publiccode.yml's"
    );
    assert_eq!(code["abstract"], "Tells residents which day their bins are collected");
    assert_eq!(code["creativeWorkStatus"], "stable; maintenance: community");

    // An artefact that is not code is a CreativeWork.
    let mut input = artefact("Research on bin day", &[&topic]);
    input["kind"] = json!("RESEARCH");
    input["licence"] = json!("OGL-UK-3.0");
    let research = number("Artefact", &share(&ada, input).await["id"]);
    let work = &json_ld(&page(&app, &format!("/artefacts/{research}")).await.2)[0];
    assert_eq!(work["@type"], "CreativeWork");
    assert_eq!(work["license"], "https://spdx.org/licenses/OGL-UK-3.0.html");

    // A meetup in person and online: its page, never the private link.
    let event = meetup(&ada).await;
    let e = number("MeetupEvent", &json!(event));
    let (status, _, html) = page(&app, &format!("/meetups/events/{e}")).await;
    assert_eq!(status, 200);
    assert!(!html.contains("<script>alert(1)"));
    let found = json_ld(&html);
    let meetup = &found[0];
    assert_eq!(meetup["@type"], "Event");
    assert_eq!(meetup["name"], BREAKOUT);
    assert_eq!(meetup["eventStatus"], "https://schema.org/EventScheduled");
    assert_eq!(meetup["eventAttendanceMode"], "https://schema.org/MixedEventAttendanceMode");
    assert_eq!(meetup["startDate"], "2030-01-10T16:00:00Z");
    assert_eq!(meetup["location"][0]["@type"], "Place");
    assert_eq!(meetup["location"][0]["name"], "The Federation");
    assert_eq!(meetup["location"][0]["address"]["streetAddress"], "Federation Street, Manchester");
    assert_eq!(
        meetup["location"][1],
        json!({ "@type": "VirtualLocation", "url": format!("{base}/meetups/events/{e}") })
    );
    assert!(!meetup.to_string().contains("secret-room"), "the online link is only for those going");
    let cancelled = ada.data(CANCEL, json!({ "input": { "id": event } })).await;
    assert_eq!(cancelled["cancelMeetup"]["userErrors"], json!([]), "{cancelled}");
    let meetup = &json_ld(&page(&app, &format!("/meetups/events/{e}")).await.2)[0];
    assert_eq!(meetup["eventStatus"], "https://schema.org/EventCancelled");
}

async fn open_data_json_ld_leaves_out_drafts_and_hidden_items(app: TestApp) {
    let ada = admin(&app, "ada@example.org", "Ada").await;
    let topic = create_topic(&ada, "Waste").await;
    let secret = "Secret plans for the depot";

    let draft = create_case_study(&ada, case_study(secret, &[&topic])).await;
    let draft_n = number("CaseStudy", &draft["id"]);
    let response =
        app.http().get(app.url(&format!("/case-studies/{draft_n}"))).bearer_auth(ada.token()).send().await.unwrap();
    let html = response.text().await.unwrap();
    assert!(html.contains(secret), "the author sees their draft");
    assert!(json_ld(&html).is_empty(), "but a draft is not described");

    let (id, cs) = published(&ada, &topic, secret).await;
    let hid = ada.data(HIDE, json!({ "input": { "targetId": id, "reason": "Personal data" } })).await;
    assert_eq!(hid["hideContent"]["userErrors"], json!([]), "{hid}");
    let (_, _, html) = page(&app, &format!("/case-studies/{cs}")).await;
    assert!(json_ld(&html).is_empty() && !html.contains(secret), "a hidden case study leaks nothing");

    let shared = share(&ada, artefact(secret, &[&topic])).await;
    let hid = ada.data(HIDE, json!({ "input": { "targetId": shared["id"], "reason": "Spam" } })).await;
    assert_eq!(hid["hideContent"]["userErrors"], json!([]), "{hid}");
    let (status, _, html) = page(&app, &format!("/artefacts/{}", number("Artefact", &shared["id"]))).await;
    assert_eq!(status, 200);
    assert!(json_ld(&html).is_empty() && !html.contains(secret), "a hidden artefact leaks nothing");

    let event = meetup(&ada).await;
    let hid = ada.data(HIDE, json!({ "input": { "targetId": event, "reason": "Spam" } })).await;
    assert_eq!(hid["hideContent"]["userErrors"], json!([]), "{hid}");
    let (_, _, html) = page(&app, &format!("/meetups/events/{}", number("MeetupEvent", &json!(event)))).await;
    assert!(json_ld(&html).is_empty(), "a hidden meetup is not described");
}

/// The export, each line parsed; fails on a line that is not one JSON object.
async fn export(app: &TestApp) -> Vec<Value> {
    let response = app.http().get(app.url("/open-data/kettle.jsonl")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("application/jsonl"), "{content_type}");
    let body = response.text().await.unwrap();
    assert!(body.is_empty() || body.ends_with('\n'), "every line ends");
    body.lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(value.is_object(), "{line}");
            assert_eq!(value["formatVersion"], 1, "{line}");
            value
        })
        .collect()
}

fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == kind).collect()
}

async fn open_data_export_has_published_work_and_reuse_one_object_a_line(app: TestApp) {
    let ada = admin(&app, "ada@example.org", "Ada").await;
    let bob = app.member("bob@example.org", "Bob").await;
    let topic = create_topic(&ada, "Waste").await;
    let (ada_org, _) = create_organisation(&ada, "Barsetshire County Council").await;
    let (bob_org, bob_slug) = create_organisation(&bob, "Wessex District Council").await;
    let base = app.state().config.public_url.as_str().trim_end_matches('/').to_string();
    assert!(export(&app).await.is_empty(), "nothing published, nothing exported");

    let (_, cs) = published(&ada, &topic, "Bin day texts").await;
    create_case_study(&ada, case_study("A draft nobody sees", &[&topic])).await;
    let (hidden_id, _) = published(&ada, &topic, "A hidden case study").await;
    ada.data(HIDE, json!({ "input": { "targetId": hidden_id, "reason": "Personal data" } })).await;
    // Bob's published case study stays when Bob is erased, by "a former member".
    let (_, bobs) = published(&bob, &topic, "Bob's story").await;

    let mut input = artefact("Reminder service", &[&topic]);
    input["organisationId"] = json!(ada_org);
    input["publiccode"] = json!(PUBLICCODE_YML);
    let shared = share(&ada, input).await;
    let a = number("Artefact", &shared["id"]);
    let hidden = share(&ada, artefact("A hidden artefact", &[&topic])).await;
    ada.data(HIDE, json!({ "input": { "targetId": hidden["id"], "reason": "Spam" } })).await;
    let reused = bob
        .data(
            "mutation($input: RecordReuseInput!) { recordReuse(input: $input) { userErrors { field code } } }",
            json!({ "input": { "artefactId": shared["id"], "organisationId": bob_org, "note": "We use it in Wessex." } }),
        )
        .await;
    assert_eq!(reused["recordReuse"]["userErrors"], json!([]), "{reused}");
    let bob_id = app.count("SELECT id FROM members WHERE email_normalized = 'bob@example.org'").await;
    let erased =
        kettle::privacy::erasure::erase(&app.state().db, bob_id, kettle::privacy::erasure::Requester::Themself)
            .await
            .unwrap();
    assert!(erased);

    let records = export(&app).await;
    let text = serde_json::to_string(&records).unwrap();
    for absent in ["A draft nobody sees", "A hidden case study", "A hidden artefact", "bob@example.org", "\"Bob\""] {
        assert!(!text.contains(absent), "{absent} leaked: {text}");
    }
    let case_studies = of_type(&records, "caseStudy");
    assert_eq!(case_studies.len(), 2, "{case_studies:?}");
    // Newest first.
    assert_eq!(case_studies[0]["id"], format!("{base}/case-studies/{bobs}"));
    assert_eq!(case_studies[0]["authors"], json!([{ "id": null, "name": "a former member" }]));
    let first = case_studies[1];
    assert_eq!(first["id"], format!("{base}/case-studies/{cs}"));
    assert_eq!(first["title"], "Bin day texts");
    assert_eq!(first["licence"], "CC-BY-4.0");
    assert_eq!(first["phase"], "live");
    assert_eq!(first["authors"][0]["name"], "Ada");
    assert_eq!(first["topics"][0]["name"], "Waste");
    assert!(first["publishedAt"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok(), "{first}");
    assert!(first["body"].as_str().unwrap().contains("We *tested* with residents."));

    let artefacts = of_type(&records, "artefact");
    assert_eq!(artefacts.len(), 1, "{artefacts:?}");
    let exported = artefacts[0];
    assert_eq!(exported["id"], format!("{base}/artefacts/{a}"));
    assert_eq!(exported["licence"], "MIT");
    assert_eq!(exported["kind"], "code");
    assert_eq!(exported["reuseCount"], 1);
    assert_eq!(exported["organisation"]["name"], "Barsetshire County Council");
    assert_eq!(exported["publiccode"]["licence"], "EUPL-1.2 OR MIT");
    assert_eq!(exported["publiccode"]["maintenanceType"], "community");
    assert_eq!(exported["publiccode"]["shortDescription"], "Tells residents which day their bins are collected");
    assert!(exported["createdAt"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok());

    let reuses = of_type(&records, "reuse");
    assert_eq!(reuses.len(), 1, "{reuses:?}");
    assert_eq!(reuses[0]["artefact"], format!("{base}/artefacts/{a}"));
    assert_eq!(reuses[0]["organisation"]["id"], format!("{base}/organisations/{bob_slug}"));
    assert_eq!(reuses[0]["note"], "We use it in Wessex.");
    assert_eq!(reuses[0]["licence"], "CC-BY-4.0");

    // The site links to it.
    assert!(page(&app, "/").await.2.contains("href=\"/open-data/kettle.jsonl\""));
}

/// More rows than one keyset page (100), many sharing a publication time, so the walk
/// crosses pages and ties: every row comes out exactly once.
async fn open_data_export_pages_through_everything_once(app: TestApp) {
    app.member("ada@example.org", "Ada").await;
    let ada_id = app.count("SELECT id FROM members WHERE email_normalized = 'ada@example.org'").await;
    let case_studies: Vec<String> = (0..250)
        .map(|i| {
            format!(
                "('Case study {i}', 'Summary', 'Body', '<p>Body</p>', 'live', {ada_id}, 'published', 1, 1000, 1000, {})",
                1_000 + i / 7
            )
        })
        .collect();
    app.execute_sql(&format!(
        "INSERT INTO case_studies (title, summary, body_source, body_html, phase, author_id, status, version, created_at, \
         updated_at, published_at) VALUES {}",
        case_studies.join(", ")
    ))
    .await;
    let artefacts: Vec<String> = (0..130)
        .map(|i| {
            format!(
                "('Artefact {i}', 'code', 'D', '<p>D</p>', 'https://example.org/{i}', 'MIT', 'in_use', {ada_id}, 0, 1, 1000, 1000)"
            )
        })
        .collect();
    app.execute_sql(&format!(
        "INSERT INTO artefacts (title, kind, description_source, description_html, url, licence, status, created_by, \
         reuse_count, version, created_at, updated_at) VALUES {}",
        artefacts.join(", ")
    ))
    .await;
    let records = export(&app).await;
    let mut ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(of_type(&records, "caseStudy").len(), 250);
    assert_eq!(of_type(&records, "artefact").len(), 130);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 380, "no record twice");
}

async fn open_data_publiccode_is_checked_stored_and_shown(app: TestApp) {
    let ada = admin(&app, "ada@example.org", "Ada").await;
    let topic = create_topic(&ada, "Waste").await;
    let mut input = artefact("Bin day finder", &[&topic]);
    input["publiccode"] = json!(PUBLICCODE_YML);
    let shared = share(&ada, input.clone()).await;
    let stored = ada.data(PUBLICCODE, json!({ "id": shared["id"] })).await;
    assert_eq!(
        stored["node"]["publiccode"],
        json!({
            "source": PUBLICCODE_YML, "publiccodeYmlVersion": "0.4", "name": "Bin day finder",
            "url": "https://github.com/example-council/bin-day", "licence": "EUPL-1.2 OR MIT",
            "maintenanceType": "COMMUNITY", "developmentStatus": "STABLE", "descriptionLanguage": "en",
            "shortDescription": "Tells residents which day their bins are collected",
            "longDescription": "A small web service that looks up an address and says which bins go out when.",
        })
    );
    let a = number("Artefact", &shared["id"]);
    let (_, _, html) = page(&app, &format!("/artefacts/{a}")).await;
    assert!(html.contains("From its publiccode.yml"));
    assert!(html.contains("Tells residents which day their bins are collected"));
    assert!(html.contains("EUPL-1.2 OR MIT") && html.contains("Community"));

    // An edit without it removes it; an artefact that is not code cannot carry one.
    let mut edit = input.clone();
    edit["id"] = shared["id"].clone();
    edit["version"] = shared["version"].clone();
    edit["publiccode"] = Value::Null;
    let saved = ada.data(EDIT, json!({ "input": edit })).await;
    assert_eq!(saved["updateArtefact"]["artefact"]["publiccode"], Value::Null, "{saved}");
    let mut research = input.clone();
    research["kind"] = json!("RESEARCH");
    let refused = ada.data(SHARE, json!({ "input": research })).await;
    assert_eq!(user_errors(&refused["createArtefact"]), vec![("publiccode".to_string(), "INVALID".to_string())]);
}

async fn open_data_bad_publiccode_is_refused_and_changes_nothing(app: TestApp) {
    let ada = admin(&app, "ada@example.org", "Ada").await;
    let topic = create_topic(&ada, "Waste").await;
    let mut input = artefact("Bin day finder", &[&topic]);
    input["publiccode"] = json!(PUBLICCODE_YML);
    let shared = share(&ada, input.clone()).await;

    let mut bomb = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for (level, previous) in
        ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        bomb.push_str(&format!("{level}: &{level} [{}]\n", vec![format!("*{previous}"); 9].join(",")));
    }
    let oversized = format!("{PUBLICCODE_YML}# {}\n", "x".repeat(64 * 1024));
    let cases = [
        ("name: [unclosed\nurl: x\n".to_string(), "INVALID", "not valid YAML"),
        (PUBLICCODE_YML.replace("type: community", "type: volunteers"), "INVALID", "maintenance.type must be one of"),
        (PUBLICCODE_YML.replace("  license: EUPL-1.2 OR MIT\n", ""), "BLANK", "legal.license is missing"),
        (oversized, "TOO_LONG", "64 KiB"),
        (bomb, "INVALID", "too many values"),
    ];
    let artefacts_before = app.count("SELECT COUNT(*) FROM artefacts").await;
    for (source, code, message) in &cases {
        // Refused when sharing: no artefact is made.
        let mut attempt = input.clone();
        attempt["title"] = json!("Another");
        attempt["publiccode"] = json!(source);
        let refused = ada.data(SHARE, json!({ "input": attempt })).await;
        let payload = &refused["createArtefact"];
        assert_eq!(payload["artefact"], Value::Null, "{refused}");
        let errors = payload["userErrors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["field"] == "publiccode"
                && e["code"] == *code
                && e["message"].as_str().unwrap().contains(message)),
            "{message}: {refused}"
        );
        // Refused when editing: the artefact and its publiccode.yml stay as they were.
        let mut edit = attempt.clone();
        edit["id"] = shared["id"].clone();
        edit["version"] = shared["version"].clone();
        let refused = ada.data(EDIT, json!({ "input": edit })).await;
        assert!(
            refused["updateArtefact"]["userErrors"].as_array().unwrap().iter().any(|e| e["field"] == "publiccode"),
            "{refused}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM artefacts").await, artefacts_before, "nothing was written");
    let stored = ada.data(PUBLICCODE, json!({ "id": shared["id"] })).await;
    assert_eq!(stored["node"]["publiccode"]["source"], PUBLICCODE_YML);
    assert_eq!(app.count("SELECT version FROM artefacts").await, 1);
    // The edit form holds the stored file.
    let response = app
        .http()
        .get(app.url(&format!("/artefacts/{}/edit", number("Artefact", &shared["id"]))))
        .bearer_auth(ada.token())
        .send()
        .await
        .unwrap();
    let form = response.text().await.unwrap();
    assert!(form.contains("name=\"publiccode\"") && form.contains("shortDescription: Tells residents"), "{form}");
}
