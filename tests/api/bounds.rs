//! The bounds of what Kettle accepts and emits: emails and names, link fields stored as
//! parsed, feeds and calendars that stay well-formed whatever was stored, searches that
//! never fail on punctuation, meetup dates within reach, and count limits that hold
//! when many requests arrive at once.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::{
    scenarios,
    support::{user_errors, Backend, Client, Scenario, TestApp, PASSWORD},
};

/// Named `bounds/…`, so that `cargo test --test api -- bounds` runs them all.
pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    use super::bounds;
    scenarios![
        bounds::emails_and_names_are_checked,
        bounds::link_fields_are_stored_normalised,
        bounds::feeds_and_calendars_leave_out_what_their_formats_forbid,
        bounds::punctuation_storms_in_search_answer_without_errors,
        bounds::meetup_dates_are_bounded_and_refusals_write_nothing,
        bounds::access_token_limit_holds_under_concurrency,
        bounds::agenda_limit_holds_under_concurrency,
        bounds::reply_limit_holds_under_concurrency,
    ]
}

/// A topic to file case studies and artefacts under (made by an admin).
async fn topic(app: &TestApp) -> String {
    let curator = crate::case_studies::admin(app, "curator@example.org", "Curator").await;
    crate::case_studies::create_topic(&curator, "Waste").await
}

const REGISTER: &str =
    "mutation($input: RegisterInput!) { register(input: $input) { email userErrors { field code message } } }";
const UPDATE_PROFILE: &str = "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { member { displayName bio } userErrors { field code message } } }";

/// The `userErrors` of a `register` with this email and display name.
async fn register_errors(app: &TestApp, email: &str, display_name: &str) -> Vec<(String, String)> {
    let input = json!({ "email": email, "password": PASSWORD, "displayName": display_name });
    let body = app.anonymous().gql(REGISTER, json!({ "input": input })).await;
    assert!(body.get("errors").is_none(), "{body}");
    user_errors(&body["data"]["register"])
}

fn one(field: &str, code: &str) -> Vec<(String, String)> {
    vec![(field.to_string(), code.to_string())]
}

async fn emails_and_names_are_checked(app: TestApp) {
    for email in [
        "<script>@x.y",
        "a@b..c",
        "a@-b.org",
        "a@b.c",
        "ada@example.org\r\nBcc: all@example.org",
        "\"a b\"@example.org",
    ] {
        assert_eq!(register_errors(&app, email, "Ada").await, one("email", "INVALID"), "{email:?}");
    }
    let long_local = format!("{}@example.org", "a".repeat(65));
    assert_eq!(register_errors(&app, &long_local, "Ada").await, one("email", "TOO_LONG"));
    for name in
        ["Ada\rBcc: all@example.org", "Ada\nLovelace", "Ada\u{202e}ecalevoL", "\u{200b}\u{3164}\u{2800}", "\u{0301}"]
    {
        assert_eq!(register_errors(&app, "ada@example.org", name).await, one("displayName", "INVALID"), "{name:?}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM members").await, 0, "nothing refused was written");

    let input = json!({ "email": "ada.lovelace+kettle@council.gov.uk", "password": PASSWORD, "displayName": "  Ada Lovelace " });
    let body = app.anonymous().gql(REGISTER, json!({ "input": input })).await;
    assert_eq!(body["data"]["register"]["userErrors"], json!([]), "{body}");
    assert_eq!(body["data"]["register"]["email"], "ada.lovelace+kettle@council.gov.uk");
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE display_name = 'Ada Lovelace'").await, 1);
    let ada = app.member("ada@example.org", "Ada").await;

    // The same rules on a profile: one line, something visible, no direction changes;
    // a bio keeps its lines.
    for name in ["Ada\rLovelace", "\u{2066}Ada\u{2069}", "\u{feff}"] {
        let body = ada.gql(UPDATE_PROFILE, json!({ "input": { "displayName": name } })).await;
        assert_eq!(user_errors(&body["data"]["updateProfile"]), one("displayName", "INVALID"), "{name:?}");
    }
    let data =
        ada.data(UPDATE_PROFILE, json!({ "input": { "displayName": "Ada Byron", "bio": "Line one\nLine two" } })).await;
    assert_eq!(data["updateProfile"]["member"], json!({ "displayName": "Ada Byron", "bio": "Line one\nLine two" }));

    // Titles and names elsewhere are one line with something visible in them.
    let token = ada
        .data(
            "mutation($input: CreateAccessTokenInput!) { createAccessToken(input: $input) { userErrors { field code } } }",
            json!({ "input": { "name": "weekly\r\nreport" } }),
        )
        .await;
    assert_eq!(user_errors(&token["createAccessToken"]), one("name", "INVALID"));
    let organisation = ada
        .data(
            "mutation($input: CreateOrganisationInput!) { createOrganisation(input: $input) { userErrors { field code } } }",
            json!({ "input": { "name": "Barsetshire\u{202e}", "kind": "COUNCIL" } }),
        )
        .await;
    assert_eq!(user_errors(&organisation["createOrganisation"]), one("name", "INVALID"));
    let topic = topic(&app).await;
    let case_study = ada
        .data(
            crate::case_studies::CREATE,
            json!({ "input": crate::case_studies::case_study("\u{200b}\u{200b}", &[&topic]) }),
        )
        .await;
    assert_eq!(user_errors(&case_study["createCaseStudy"]), one("title", "INVALID"));
}

const SHARE: &str = "mutation($input: CreateArtefactInput!) { createArtefact(input: $input) { artefact { url } userErrors { field code message } } }";

async fn link_fields_are_stored_normalised(app: TestApp) {
    let topic = topic(&app).await;
    let ada = app.member("ada@example.org", "Ada").await;
    let share = |url: &str| {
        let mut input = crate::artefacts::artefact("Bin reminders", &[&topic]);
        input["url"] = json!(url);
        json!({ "input": input })
    };
    for (given, stored) in [
        ("HTTPS://Example.ORG/Tools/../reminders", "https://example.org/reminders"),
        ("https:evil.example", "https://evil.example/"),
        ("  http://bücher.example/a b ", "http://xn--bcher-kva.example/a%20b"),
    ] {
        let data = ada.data(SHARE, share(given)).await;
        assert_eq!(data["createArtefact"]["artefact"]["url"], stored, "{data}");
    }
    for refused in [
        "javascript:alert(1)",
        "https://ada:secret@example.org/",
        "https://example.org/\r\nSet-Cookie: a=b",
        "https://exam\nple.org/",
        "example.org",
    ] {
        let data = ada.data(SHARE, share(refused)).await;
        assert_eq!(user_errors(&data["createArtefact"]), one("url", "INVALID"), "{refused:?}");
    }
    let long = format!("https://example.org/{}", "a".repeat(2_000));
    assert_eq!(user_errors(&ada.data(SHARE, share(&long)).await["createArtefact"]), one("url", "TOO_LONG"));
    assert_eq!(app.count("SELECT COUNT(*) FROM artefacts").await, 3);
    let stored = app.count("SELECT COUNT(*) FROM artefacts WHERE url = 'https://evil.example/'").await;
    assert_eq!(stored, 1, "the normalised address is what the database holds");

    let data = ada
        .data(
            "mutation($input: CreateOrganisationInput!) { createOrganisation(input: $input) { organisation { website } userErrors { field code } } }",
            json!({ "input": { "name": "Barsetshire", "kind": "COUNCIL", "website": "HTTPS://Barsetshire.Example.GOV.UK" } }),
        )
        .await;
    assert_eq!(data["createOrganisation"]["organisation"]["website"], "https://barsetshire.example.gov.uk/");

    let group = meetup_group(&ada, "TeaCamp").await;
    let mut input = event_input(&group, "2027-03-11T16:00", "2027-03-11T18:00");
    input["onlineUrl"] = json!("HTTPS://Meet.Example.ORG/teacamp");
    let data = ada.data(SCHEDULE, json!({ "input": input })).await;
    let id = data["scheduleMeetup"]["event"]["id"].as_str().unwrap_or_else(|| panic!("{data}"));
    let event =
        ada.data("query($id: ID!) { node(id: $id) { ... on MeetupEvent { onlineUrl } } }", json!({ "id": id })).await;
    assert_eq!(event["node"]["onlineUrl"], "https://meet.example.org/teacamp");
}

/// SQL for a string holding `code_point`, on this test's database.
fn sql_char(app: &TestApp, code_point: u32) -> String {
    match app.backend() {
        Backend::Sqlite => format!("char({code_point})"),
        Backend::Postgres { .. } => format!("chr({code_point})"),
    }
}

/// What XML 1.0 allows in a document (its `Char` production).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

async fn feeds_and_calendars_leave_out_what_their_formats_forbid(app: TestApp) {
    use crate::case_studies::{case_study, create_case_study, PUBLISH};
    let topic = topic(&app).await;
    let ada = app.member("ada@example.org", "Ada").await;
    let story = create_case_study(&ada, case_study("Bin reminders", &[&topic])).await;
    let id = story["id"].as_str().unwrap();
    ada.data(PUBLISH, json!({ "id": id })).await;
    // Rows written before the text policy, or by hand: a vertical tab and U+FFFE in the
    // title, summary, body and author's name.
    let (vt, nonchar) = (sql_char(&app, 0x0B), sql_char(&app, 0xFFFE));
    app.execute_sql(&format!(
        "UPDATE case_studies SET title = 'Bin' || {vt} || ' reminders' || {nonchar}, \
         summary = 'Fewer' || {nonchar} || ' missed bins', body_html = '<p>We' || {vt} || ' did it.</p>'"
    ))
    .await;
    app.execute_sql(&format!("UPDATE members SET display_name = 'Ada' || {vt} || ' L' WHERE handle = 'ada'")).await;

    let response = app.http().get(app.url("/feeds/case-studies.atom")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let xml = response.text().await.unwrap();
    assert!(xml.chars().all(xml_char), "{xml:?}");
    let document = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("not XML ({e}): {xml:?}"));
    let text_of = |name: &str| {
        document.descendants().find(|n| n.tag_name().name() == name).and_then(|n| n.text()).unwrap_or("").to_string()
    };
    let entry_title = document
        .descendants()
        .filter(|n| n.tag_name().name() == "title")
        .nth(1)
        .and_then(|n| n.text())
        .unwrap_or("")
        .to_string();
    assert_eq!(entry_title, "Bin reminders");
    assert_eq!(text_of("summary"), "Fewer missed bins");
    assert_eq!(text_of("content"), "<p>We did it.</p>");
    assert_eq!(text_of("name"), "Ada L");

    // The same in calendars: an event and its group, with the characters in every text.
    let group = meetup_group(&ada, "TeaCamp").await;
    let data =
        ada.data(SCHEDULE, json!({ "input": event_input(&group, "2027-03-11T16:00", "2027-03-11T18:00") })).await;
    let event = data["scheduleMeetup"]["event"]["id"].as_str().unwrap().to_string();
    let number = kettle::graphql::relay::parse_global_id(&event).unwrap().1;
    app.execute_sql(&format!(
        "UPDATE meetup_events SET title = 'Tea' || {vt} || 'Camp' || {nonchar}, description_source = 'Cake' || {vt}, \
         venue_name = 'The' || {nonchar} || ' Federation'"
    ))
    .await;
    app.execute_sql(&format!("UPDATE meetup_groups SET name = 'Tea' || {vt} || 'Camp'")).await;
    for path in [format!("/calendars/events/{number}.ics"), "/calendars/groups/teacamp.ics".to_string()] {
        let response = app.http().get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let text = response.text().await.unwrap();
        assert!(
            text.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\r' | '\n')),
            "controls in {path}: {text:?}"
        );
        assert!(!text.contains(['\u{FFFE}', '\u{FFFF}']), "{text:?}");
        assert!(text.split("\r\n").all(|line| !line.contains(['\r', '\n'])), "bare line breaks: {text:?}");
        let unfolded = icalendar::parser::unfold(&text);
        let calendar = icalendar::parser::read_calendar(&unfolded).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let vevent = calendar.components.iter().find(|c| c.name == "VEVENT").expect("an event");
        let summary = vevent.properties.iter().find(|p| p.name == "SUMMARY").unwrap();
        assert_eq!(summary.val.as_str(), "TeaCamp");
        let location = vevent.properties.iter().find(|p| p.name == "LOCATION").unwrap();
        assert!(location.val.as_str().starts_with("The Federation"), "{text}");
    }
}

async fn punctuation_storms_in_search_answer_without_errors(app: TestApp) {
    use crate::case_studies::{case_study, create_case_study, PUBLISH};
    let topic = topic(&app).await;
    let ada = app.member("ada@example.org", "Ada").await;
    let story = create_case_study(&ada, case_study("Bin day reminders", &[&topic])).await;
    ada.data(PUBLISH, json!({ "id": story["id"] })).await;
    const SEARCH: &str = "query($q: String!) { search(query: $q) { node { ... on CaseStudy { title } } } }";
    let titles = |data: &Value| -> Vec<String> {
        data["search"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["node"]["title"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let storms = [
        "-".repeat(40),
        "-".repeat(200),
        "- ".repeat(100),
        format!("{}bin", "-".repeat(40)),
        format!("bin {}", "-".repeat(40)),
        format!("bin {}", "-x ".repeat(60)),
        "\"".repeat(41),
        "(".repeat(60),
        ")".repeat(60),
        "!".repeat(60),
        "|".repeat(60),
        "&".repeat(60),
        "<->".repeat(60),
        "!(bin & day) | ''".to_string(),
        "NEAR(bin day, 2) AND OR NOT".to_string(),
        "bin OR OR OR or or or -or".to_string(),
        "title:bin body:* ^bin bin* +bin".to_string(),
        "'\\\"';--/*".to_string(),
        "— … “bin” 🙂".to_string(),
        "\u{200b}\u{3164}".to_string(),
        (0..80).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ").chars().take(200).collect(),
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".repeat(6),
    ];
    for storm in &storms {
        let data = ada.data(SEARCH, json!({ "q": storm })).await;
        assert!(data["search"].is_array(), "{storm:?}: {data}");
    }
    // Words still find, and a leading hyphen still excludes.
    assert_eq!(titles(&ada.data(SEARCH, json!({ "q": "bin day" })).await), vec!["Bin day reminders"]);
    assert_eq!(titles(&ada.data(SEARCH, json!({ "q": "bin-day" })).await), vec!["Bin day reminders"]);
    assert_eq!(titles(&ada.data(SEARCH, json!({ "q": "\"bin day\"" })).await), vec!["Bin day reminders"]);
    assert_eq!(titles(&ada.data(SEARCH, json!({ "q": format!("{}bin", "-".repeat(40)) })).await), Vec::<String>::new());
    assert_eq!(titles(&ada.data(SEARCH, json!({ "q": "bin -reminders" })).await), Vec::<String>::new());
    assert_eq!(titles(&ada.data(SEARCH, json!({ "q": "bin -parks" })).await), vec!["Bin day reminders"]);
}

const CREATE_GROUP: &str = "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id } userErrors { field code } } }";
const SCHEDULE: &str = "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id } userErrors { field code message } } }";

async fn meetup_group(organiser: &Client, name: &str) -> String {
    let data = organiser.data(CREATE_GROUP, json!({ "input": { "name": name, "region": "North West" } })).await;
    data["createMeetupGroup"]["group"]["id"].as_str().unwrap_or_else(|| panic!("{data}")).to_string()
}

fn event_input(group_id: &str, start: &str, end: &str) -> Value {
    json!({
        "groupId": group_id,
        "title": "TeaCamp",
        "description": "Tea and cake.",
        "timeZone": "Europe/London",
        "start": start,
        "end": end,
        "venueName": "The Federation",
        "venueAddress": "Federation Street, Manchester",
    })
}

/// A wall-clock time `years` from now, as the API takes it.
fn years_ahead(years: i16, hour: i8) -> String {
    let today = jiff::Zoned::now().date();
    let date = today.checked_add(jiff::Span::new().years(years)).unwrap();
    date.at(hour, 0, 0, 0).strftime("%Y-%m-%dT%H:%M").to_string()
}

async fn meetup_dates_are_bounded_and_refusals_write_nothing(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let group = meetup_group(&olu, "TeaCamp").await;
    let schedule_errors = |start: String, end: String| {
        let olu = olu.clone();
        let input = event_input(&group, &start, &end);
        async move {
            let body = olu.gql(SCHEDULE, json!({ "input": input })).await;
            assert!(body.get("errors").is_none(), "{start}–{end}: {body}");
            let errors = user_errors(&body["data"]["scheduleMeetup"]);
            assert_eq!(body["data"]["scheduleMeetup"]["event"].is_null(), !errors.is_empty(), "{start}–{end}: {body}");
            errors
        }
    };
    let refusals = [
        (("2027-03-01T09:00".to_string(), "2027-03-09T09:00".to_string()), "end"),
        ((years_ahead(10, 18), years_ahead(10, 20)), "start"),
        (("9999-12-31T22:00".to_string(), "9999-12-31T23:00".to_string()), "start"),
        (("9999-12-30T18:00".to_string(), "9999-12-31T23:59".to_string()), "start"),
        (("1999-12-31T20:00".to_string(), "1999-12-31T23:00".to_string()), "start"),
        (("2027-03-01T09:00".to_string(), "9999-12-31T23:00".to_string()), "end"),
    ];
    for ((start, end), field) in refusals {
        assert_eq!(schedule_errors(start, end).await, one(field, "INVALID"));
    }
    // Exactly a week, and about five years ahead, are fine.
    let week = schedule_errors("2027-03-01T09:00".into(), "2027-03-08T09:00".into()).await;
    assert_eq!(week, vec![]);
    let far = schedule_errors(years_ahead(4, 18), years_ahead(4, 20)).await;
    assert_eq!(far, vec![]);
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_events").await, 2);

    // Series: the first occurrence within bounds, and the last date at most five years on.
    const SERIES: &str = "mutation($input: ScheduleMeetupSeriesInput!) { scheduleMeetupSeries(input: $input) { events { id } userErrors { field code message } } }";
    let series = |start: String, end: String, recurrence: Value| {
        let mut input = event_input(&group, &start, &end);
        input["recurrence"] = recurrence;
        json!({ "input": input })
    };
    let until = years_ahead(10, 0)[..10].to_string();
    let weekly = |until: &str| json!({ "frequency": "WEEKLY", "until": until });
    let data = olu.data(SERIES, series("2027-03-01T18:00".into(), "2027-03-01T20:00".into(), weekly(&until))).await;
    assert_eq!(user_errors(&data["scheduleMeetupSeries"]), one("recurrence", "INVALID"));
    let data =
        olu.data(SERIES, series("9999-12-02T18:00".into(), "9999-12-02T20:00".into(), weekly("9999-12-30"))).await;
    assert_eq!(user_errors(&data["scheduleMeetupSeries"]), one("start", "INVALID"));
    let count = json!({ "frequency": "MONTHLY_BY_DATE", "count": 200 });
    let data = olu.data(SERIES, series("9999-12-31T18:00".into(), "9999-12-31T20:00".into(), count)).await;
    assert_eq!(user_errors(&data["scheduleMeetupSeries"]), one("start", "INVALID"));
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_series").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_events").await, 2);

    // Moving an event is held to the same bounds, and a refused move changes nothing.
    let event =
        olu.data(SCHEDULE, json!({ "input": event_input(&group, "2027-05-01T09:00", "2027-05-01T12:00") })).await;
    let id = event["scheduleMeetup"]["event"]["id"].as_str().unwrap().to_string();
    const UPDATE: &str = "mutation($input: UpdateMeetupInput!) { updateMeetup(input: $input) { event { localStart } userErrors { field code } } }";
    for ((start, end), field) in
        [(("9999-12-31T22:00", "9999-12-31T23:00"), "start"), (("2027-05-01T09:00", "2027-05-09T09:00"), "end")]
    {
        let mut input = event_input(&group, start, end);
        input.as_object_mut().unwrap().remove("groupId");
        input["id"] = json!(id);
        let data = olu.data(UPDATE, json!({ "input": input })).await;
        assert_eq!(user_errors(&data["updateMeetup"]), one(field, "INVALID"));
        assert_eq!(data["updateMeetup"]["event"]["localStart"], "2027-05-01T09:00:00");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_events WHERE sequence = 0").await, 3);
}

/// On PostgreSQL, makes every insert into `table` take 20 ms longer, by a trigger in
/// this test's database. Through HTTP most of a request's time is spent outside its
/// transaction, so on a small machine transactions seldom overlap and a missing lock
/// can go unnoticed; with the insert slowed, requests that count before an earlier one
/// commits are certain (without the lock, 60 requests store all 60). SQLite needs no
/// help: its writers never overlap.
async fn slow_inserts_into(app: &TestApp, table: &str) {
    if let Backend::Postgres { .. } = app.backend() {
        app.execute_sql(
            "CREATE OR REPLACE FUNCTION kettle_test_slow_insert() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(0.02); RETURN NEW; END $$",
        )
        .await;
        app.execute_sql(&format!(
            "CREATE TRIGGER {table}_slow BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION kettle_test_slow_insert()"
        ))
        .await;
    }
}

const CREATE_TOKEN: &str = "mutation($input: CreateAccessTokenInput!) { createAccessToken(input: $input) { accessToken { id } userErrors { field code } } }";

async fn access_token_limit_holds_under_concurrency(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    slow_inserts_into(&app, "access_tokens").await;
    let requests = (0..60).map(|i| {
        let ada = ada.clone();
        async move { ada.data(CREATE_TOKEN, json!({ "input": { "name": format!("script {i}") } })).await }
    });
    let answers = join_all(requests).await;
    let created = answers.iter().filter(|a| a["createAccessToken"]["accessToken"].is_object()).count();
    // The limit is about the account as a whole, so its userError names no field.
    let refused = answers.iter().filter(|a| user_errors(&a["createAccessToken"]) == one("", "LIMIT_REACHED")).count();
    let stored = app.count("SELECT COUNT(*) FROM access_tokens").await;
    eprintln!(
        "{:?}: 60 parallel createAccessToken made {created}, refused {refused}, stored {stored}",
        app.backend().name()
    );
    assert_eq!((created, refused, stored), (50, 10, 50));

    // Through HTTP most requests spend their time outside the transaction; calling the
    // function itself, all at once, makes the transactions overlap (without the lock
    // this stores well over 50 on PostgreSQL).
    let grace = app.member("grace@example.org", "Grace").await;
    let grace_id = kettle::graphql::relay::parse_global_id(&grace.viewer_id().await.unwrap()).unwrap().1;
    let db = app.state().db.clone();
    let tasks = (0..120).map(|i| {
        let db = db.clone();
        tokio::spawn(async move {
            kettle::accounts::credentials::create_access_token(&db, grace_id, &format!("t{i}"), None).await.unwrap()
        })
    });
    let outcomes = join_all(tasks).await;
    let made = outcomes
        .iter()
        .filter(|o| matches!(o.as_ref().unwrap(), kettle::accounts::credentials::CreateTokenOutcome::Created { .. }))
        .count();
    let stored = app.count(&format!("SELECT COUNT(*) FROM access_tokens WHERE member_id = {grace_id}")).await;
    eprintln!("{:?}: 120 simultaneous create_access_token made {made}, stored {stored}", app.backend().name());
    assert_eq!((made, stored), (50, 50));
}

async fn agenda_limit_holds_under_concurrency(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let group = meetup_group(&olu, "TeaCamp").await;
    let event =
        olu.data(SCHEDULE, json!({ "input": event_input(&group, "2027-03-11T16:00", "2027-03-11T18:00") })).await;
    let event_id = event["scheduleMeetup"]["event"]["id"].as_str().unwrap().to_string();
    slow_inserts_into(&app, "meetup_agenda_items").await;
    const ADD: &str =
        "mutation($input: AddAgendaItemInput!) { addAgendaItem(input: $input) { userErrors { field code } } }";
    let requests = (0..60).map(|i| {
        let (olu, event_id) = (olu.clone(), event_id.clone());
        async move {
            let input =
                json!({ "eventId": event_id, "kind": "TALK", "title": format!("Talk {i}"), "durationMinutes": 5 });
            olu.data(ADD, json!({ "input": input })).await
        }
    });
    let answers = join_all(requests).await;
    let added = answers.iter().filter(|a| a["addAgendaItem"]["userErrors"] == json!([])).count();
    let refused =
        answers.iter().filter(|a| user_errors(&a["addAgendaItem"]) == one("eventId", "LIMIT_REACHED")).count();
    let stored = app.count("SELECT COUNT(*) FROM meetup_agenda_items").await;
    let positions = app.count("SELECT COUNT(DISTINCT position) FROM meetup_agenda_items").await;
    eprintln!(
        "{:?}: 60 parallel addAgendaItem added {added}, refused {refused}, stored {stored}",
        app.backend().name()
    );
    assert_eq!((added, refused, stored, positions), (50, 10, 50, 50));

    // The function itself, 120 at once on a second event (see the access token storm).
    let other =
        olu.data(SCHEDULE, json!({ "input": event_input(&group, "2027-03-12T16:00", "2027-03-12T18:00") })).await;
    let other =
        kettle::graphql::relay::parse_global_id(other["scheduleMeetup"]["event"]["id"].as_str().unwrap()).unwrap().1;
    let db = app.state().db.clone();
    let tasks = (0..120).map(|i| {
        let db = db.clone();
        tokio::spawn(async move {
            let title = format!("Talk {i}");
            let item = kettle::meetups::agenda::NewItem {
                kind: kettle::meetups::agenda::AgendaItemKind::Talk,
                title: &title,
                speaker_member_id: None,
                speaker_name: "",
                duration_minutes: 5,
                case_study_id: None,
            };
            kettle::meetups::agenda::add(&db, other, &item).await.unwrap().is_some()
        })
    });
    let added = join_all(tasks).await.into_iter().filter(|added| *added.as_ref().unwrap()).count();
    let stored = app.count(&format!("SELECT COUNT(*) FROM meetup_agenda_items WHERE event_id = {other}")).await;
    let positions =
        app.count(&format!("SELECT COUNT(DISTINCT position) FROM meetup_agenda_items WHERE event_id = {other}")).await;
    eprintln!("{:?}: 120 simultaneous agenda::add added {added}, stored {stored}", app.backend().name());
    assert_eq!((added, stored, positions), (50, 50, 50));
}

async fn reply_limit_holds_under_concurrency(app: TestApp) {
    use crate::case_studies::{case_study, create_case_study, PUBLISH};
    let topic = topic(&app).await;
    let ada = app.member("ada@example.org", "Ada").await;
    let story = create_case_study(&ada, case_study("Bin reminders", &[&topic])).await;
    let subject = story["id"].as_str().unwrap().to_string();
    ada.data(PUBLISH, json!({ "id": subject })).await;
    const POST: &str = "mutation($input: PostCommentInput!) { postComment(input: $input) { comment { id } userErrors { field code } } }";
    // Two threads, each filled directly to 10 short of its 200 replies.
    let mut threads = Vec::new();
    for body in ["First!", "Second"] {
        let top = ada.data(POST, json!({ "input": { "subjectId": subject, "body": body } })).await;
        let id = top["postComment"]["comment"]["id"].as_str().unwrap().to_string();
        let number = kettle::graphql::relay::parse_global_id(&id).unwrap().1;
        app.execute_sql(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 190) \
             INSERT INTO comments (subject_type, subject_id, parent_id, author_id, body_source, body_html, created_at) \
             SELECT subject_type, subject_id, id, author_id, 'Me too', '<p>Me too</p>', created_at FROM comments, n \
             WHERE id = {number}"
        ))
        .await;
        threads.push((id, number));
    }
    let replies = |number: i64| format!("SELECT COUNT(*) FROM comments WHERE parent_id = {number}");
    assert_eq!(app.count(&replies(threads[0].1)).await, 190);
    slow_inserts_into(&app, "comments").await;

    // 30 replies at once through the API to the first.
    let (parent, parent_number) = threads[0].clone();
    let requests = (0..30).map(|i| {
        let (ada, subject, parent) = (ada.clone(), subject.clone(), parent.clone());
        async move {
            let input = json!({ "subjectId": subject, "parentId": parent, "body": format!("Reply {i}") });
            ada.data(POST, json!({ "input": input })).await
        }
    });
    let answers = join_all(requests).await;
    let posted = answers.iter().filter(|a| a["postComment"]["comment"].is_object()).count();
    let refused =
        answers.iter().filter(|a| user_errors(&a["postComment"]) == one("subjectId", "LIMIT_REACHED")).count();
    let stored = app.count(&replies(parent_number)).await;
    eprintln!("{:?}: 30 parallel replies posted {posted}, refused {refused}, stored {stored}", app.backend().name());
    assert_eq!((posted, refused, stored), (10, 20, 200));

    // The function itself, 60 at once, to the second (see the access token storm).
    let second = threads[1].1;
    let db = app.state().db.clone();
    let parent = kettle::comments::by_ids(&db, &[second]).await.unwrap().remove(&second).unwrap();
    let tasks = (0..60).map(|i| {
        let (db, parent) = (db.clone(), parent.clone());
        tokio::spawn(async move {
            let body = format!("Reply {i}");
            let posted = kettle::comments::post(&db, parent.subject, Some(&parent), parent.author_id, &body).await;
            matches!(posted.unwrap(), kettle::comments::Posted::Done(_))
        })
    });
    let posted = join_all(tasks).await.into_iter().filter(|posted| *posted.as_ref().unwrap()).count();
    let stored = app.count(&replies(second)).await;
    eprintln!("{:?}: 60 simultaneous comments::post posted {posted}, stored {stored}", app.backend().name());
    assert_eq!((posted, stored), (10, 200));
}
