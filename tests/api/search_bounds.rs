//! Search whose work is bounded (`kettle::search`): it ranks only the most recent matches,
//! plus the most recent title matches, which come first. These scenarios put more newer
//! documents mentioning a word than the candidates ranked, and check that what matters
//! still holds: an old document titled with the words comes first, a common word fills a
//! page and pages on to the end of the candidates, filters reach past the newest matches,
//! and odd input answers without errors.

use kettle::search::{CANDIDATES, OFFSET_MAX};
use serde_json::{json, Value};

use crate::{
    artefacts::{artefact, share},
    case_studies::{admin, case_study, create_case_study, create_organisation, create_topic, PUBLISH},
    scenarios,
    support::{error_code, Backend, Client, Scenario, TestApp},
};

/// Named `search_bounds/…`, so that `cargo test --test api -- search_bounds` runs them all.
pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    use super::search_bounds;
    scenarios![
        search_bounds::an_exact_title_match_ranks_first_among_many_newer_mentions,
        search_bounds::a_common_word_fills_pages_to_the_end_of_the_candidates,
        search_bounds::filters_reach_past_the_newest_matches,
        search_bounds::odd_searches_answer_without_errors,
        search_bounds::snippets_come_from_where_the_words_are,
        search_bounds::pooled_connections_never_compile_plans,
    ]
}

const SEARCH: &str = "query($q: String!, $kind: SearchKind, $topic: String, $organisation: String, $first: Int!, $offset: Int!) { \
     search(query: $q, kind: $kind, topic: $topic, organisation: $organisation, first: $first, offset: $offset) { \
       snippet node { __typename id ... on CaseStudy { title } ... on Artefact { title } ... on Organisation { name } } } }";

/// The titles (or names) of what a search found, in order.
async fn titles(client: &Client, variables: Value) -> Vec<String> {
    let mut variables = variables;
    for (name, default) in [("first", json!(20)), ("offset", json!(0))] {
        if variables.get(name).is_none() {
            variables[name] = default;
        }
    }
    let data = client.data(SEARCH, variables).await;
    data["search"]
        .as_array()
        .unwrap_or_else(|| panic!("{data}"))
        .iter()
        .map(|hit| {
            let node = &hit["node"];
            node["title"].as_str().or(node["name"].as_str()).unwrap_or_else(|| panic!("{hit}")).to_string()
        })
        .collect()
}

/// Publishes `count` case studies titled `{prefix} 1` … `{prefix} {count}` whose text says
/// `sentence`, indexed as `search::index` would (with `search_rows` on SQLite), all newer than anything indexed before,
/// in one statement each (the API would take a request or two per case study).
async fn publish_many(app: &TestApp, prefix: &str, sentence: &str, count: i64) {
    app.execute_sql(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) \
         INSERT INTO case_studies (title, summary, body_source, body_html, phase, author_id, status, version, \
                                   created_at, updated_at, published_at) \
         SELECT '{prefix} ' || i, 'A summary.', '{sentence}', '<p>{sentence}</p>', 'live', \
                (SELECT min(id) FROM members), 'published', 1, 1700000000000 + i, 1700000000000 + i, 1700000000000 + i \
         FROM n"
    ))
    .await;
    app.execute_sql(&format!(
        "INSERT INTO search_index (kind, item_id, title, body) \
         SELECT 'case_study', id, title, summary || ' ' || body_source FROM case_studies \
         WHERE title LIKE '{prefix} %' ORDER BY id"
    ))
    .await;
    if matches!(app.backend(), Backend::Sqlite) {
        app.execute_sql(&format!(
            "INSERT INTO search_rows (kind, item_id, doc) \
             SELECT kind, item_id, rowid FROM search_index WHERE title LIKE '{prefix} %'"
        ))
        .await;
    }
    // On PostgreSQL the window of recent blocks is sized from ANALYZE's statistics: have
    // them, so the scenario takes the way a large database does, not the one for a new one.
    if matches!(app.backend(), Backend::Postgres { .. }) {
        app.execute_sql("ANALYZE search_index").await;
    }
}

/// How many newer mentions bury an older match: more than the candidates read on either
/// database, and on PostgreSQL more rows than the three blocks of 1,024 (migration 0015)
/// that a window for a word in every document spans at most here, so the old documents lie
/// outside it as they would at scale.
const MANY: i64 = 3 * 1024;

async fn publish(client: &Client, input: Value) {
    let id = create_case_study(client, input).await["id"].clone();
    client.data(PUBLISH, json!({ "id": id })).await;
}

async fn an_exact_title_match_ranks_first_among_many_newer_mentions(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Airships").await;
    let ada = app.member("ada@example.org", "Ada").await;
    publish(&ada, case_study("Zeppelin hangar", &[&topic])).await;
    publish(&ada, case_study("What we learned when the zeppelin hangar roof leaked", &[&topic])).await;
    publish_many(&app, "Mention", "We once thought about a zeppelin for deliveries.", MANY).await;

    let anon = app.anonymous();
    let found = titles(&anon, json!({ "q": "zeppelin" })).await;
    assert_eq!(found.len(), 20, "a full page: {found:?}");
    // Title matches first, older than every mention; the title that is just the words
    // before the longer, newer one.
    assert_eq!(found[0..2], ["Zeppelin hangar", "What we learned when the zeppelin hangar roof leaked"], "{found:?}");
    // Then the other matches, newest first.
    assert_eq!(found[2], format!("Mention {MANY}"), "{found:?}");
    assert_eq!(found[3], format!("Mention {}", MANY - 1), "{found:?}");
    let exact = ["Zeppelin hangar", "What we learned when the zeppelin hangar roof leaked"];
    assert_eq!(titles(&anon, json!({ "q": "zeppelin hangar" })).await, exact);
    assert_eq!(titles(&anon, json!({ "q": "\"zeppelin hangar\"" })).await, exact);
    assert_eq!(titles(&anon, json!({ "q": "hangar" })).await, exact);
    // An excluded word keeps a title match out like any other, in the title or the body.
    let without = titles(&anon, json!({ "q": "zeppelin -hangar" })).await;
    assert_eq!(without.len(), 20);
    assert!(without.iter().all(|t| t.starts_with("Mention")), "{without:?}");
    let without = titles(&anon, json!({ "q": "zeppelin -residents" })).await;
    assert!(without.iter().all(|t| t.starts_with("Mention")), "the body of both says residents: {without:?}");
    // The title match leads only the page it is on.
    let second = titles(&anon, json!({ "q": "zeppelin", "offset": 20 })).await;
    assert_eq!(second.len(), 20);
    assert!(!second.contains(&"Zeppelin hangar".to_string()), "{second:?}");
}

async fn a_common_word_fills_pages_to_the_end_of_the_candidates(app: TestApp) {
    app.member("ada@example.org", "Ada").await;
    publish_many(&app, "Common", "The service is good.", CANDIDATES + 60).await;

    let anon = app.anonymous();
    let first = titles(&anon, json!({ "q": "service" })).await;
    assert_eq!(first.len(), 20);
    assert_eq!(first[0], format!("Common {}", CANDIDATES + 60), "the newest first among equals: {first:?}");
    // Pages of 50 up to OFFSET_MAX cover the candidates once each.
    let mut seen = std::collections::BTreeSet::new();
    let mut offset = 0;
    while offset <= OFFSET_MAX {
        let page = titles(&anon, json!({ "q": "service", "first": 50, "offset": offset })).await;
        assert_eq!(page.len(), 50, "offset {offset}");
        seen.extend(page);
        offset += 50;
    }
    assert_eq!(seen.len() as i64, CANDIDATES, "no page repeats another");
    let beyond = anon.gql(SEARCH, json!({ "q": "service", "first": 20, "offset": OFFSET_MAX + 1 })).await;
    assert_eq!(error_code(&beyond), "BAD_USER_INPUT", "{beyond}");
}

async fn filters_reach_past_the_newest_matches(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Descaling").await;
    let other = create_topic(&curator, "Boiling").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let (organisation, slug) = create_organisation(&ada, "Limescale Council").await;
    // Older than every mention below, and without the word in their titles, so only the
    // filtered reading of the matches can find them.
    let mut input = case_study("Hard water", &[&topic]);
    input["body"] = json!("Our kettle furred up every week.");
    input["organisationId"] = json!(organisation);
    publish(&ada, input).await;
    let mut input = case_study("Soft water", &[&other]);
    input["body"] = json!("The kettle was fine.");
    publish(&ada, input).await;
    let mut input = artefact("Descaler dosing table", &[&topic]);
    input["description"] = json!("How much descaler a kettle needs.");
    share(&ada, input).await;
    publish_many(&app, "Mention", "We put the kettle on.", MANY).await;

    let anon = app.anonymous();
    let everything = titles(&anon, json!({ "q": "kettle" })).await;
    assert!(everything.iter().all(|t| t.starts_with("Mention")), "the newest matches: {everything:?}");
    let mut in_topic = titles(&anon, json!({ "q": "kettle", "topic": "descaling" })).await;
    in_topic.sort();
    assert_eq!(in_topic, ["Descaler dosing table", "Hard water"]);
    assert_eq!(titles(&anon, json!({ "q": "kettle", "organisation": slug })).await, ["Hard water"]);
    assert_eq!(titles(&anon, json!({ "q": "kettle", "kind": "ARTEFACT" })).await, ["Descaler dosing table"]);
    assert_eq!(
        titles(&anon, json!({ "q": "kettle", "kind": "ARTEFACT", "topic": "boiling" })).await,
        Vec::<String>::new()
    );
    // The organisation itself is found by its name.
    assert_eq!(titles(&anon, json!({ "q": "limescale", "kind": "ORGANISATION" })).await, ["Limescale Council"]);
}

async fn odd_searches_answer_without_errors(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Odd").await;
    let ada = app.member("ada@example.org", "Ada").await;
    publish(&ada, case_study("Title service", &[&topic])).await;
    publish_many(&app, "Common", "The service is good.", 30).await;

    let anon = app.anonymous();
    let queries = [
        "".to_string(),
        "   ".to_string(),
        "-".to_string(),
        "-service".to_string(),
        "service -service".to_string(),
        "the".to_string(),
        "the -the".to_string(),
        "title : service".to_string(),
        "title:service body:service".to_string(),
        "{title}: service".to_string(),
        "NOT service".to_string(),
        "service NOT".to_string(),
        "\"service".to_string(),
        "\"title service\"".to_string(),
        "ŵyr 東京 हिन्दी".to_string(),
        "\u{E000}service\u{E001}".to_string(),
        "x".repeat(200),
        (0..40).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" "),
        "0 1 2 3".to_string(),
        "'; DROP TABLE search_index; --".to_string(),
    ];
    for q in &queries {
        for extra in [
            json!({}),
            json!({ "kind": "CASE_STUDY" }),
            json!({ "kind": "ORGANISATION" }),
            json!({ "topic": "odd" }),
            json!({ "topic": "no-such-topic" }),
            json!({ "organisation": "no-such-organisation" }),
            json!({ "first": 0, "offset": OFFSET_MAX }),
            json!({ "first": 1000, "offset": 1 }),
        ] {
            let mut variables = json!({ "q": q, "first": 20, "offset": 0 });
            for (name, value) in extra.as_object().unwrap() {
                variables[name] = value.clone();
            }
            let answer = anon.gql(SEARCH, variables.clone()).await;
            assert!(answer.get("errors").is_none() && answer["data"]["search"].is_array(), "{variables}: {answer}");
        }
    }
    // The common word still finds, the title match first.
    let found = titles(&anon, json!({ "q": "service" })).await;
    assert_eq!(found.len(), 20);
    assert_eq!(found[0], "Title service");
    for offset in [-1, OFFSET_MAX + 1, i32::MAX as i64] {
        let answer = anon.gql(SEARCH, json!({ "q": "service", "first": 20, "offset": offset })).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "offset {offset}: {answer}");
    }
    let long = anon.gql(SEARCH, json!({ "q": "x".repeat(201), "first": 20, "offset": 0 })).await;
    assert_eq!(error_code(&long), "BAD_USER_INPUT");
}

async fn snippets_come_from_where_the_words_are(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Letters").await;
    let ada = app.member("ada@example.org", "Ada").await;
    // A long body (PostgreSQL headlines a passage of it) with the word deep inside, in
    // another form than the one searched for, and the word once more near the end.
    let filler = "Residents asked for clearer letters about bin day. ".repeat(60);
    let mut input = case_study("Depot notes", &[&topic]);
    input["body"] = json!(format!("{filler}We parked the Zeppelins behind the depot. {filler}A zeppelin again."));
    publish(&ada, input).await;

    let data = app.anonymous().data(SEARCH, json!({ "q": "zeppelin", "first": 20, "offset": 0 })).await;
    let snippet = data["search"][0]["snippet"].as_str().unwrap_or_else(|| panic!("{data}"));
    assert!(snippet.to_lowercase().contains("<mark>zeppelin"), "{snippet}");
    assert!(snippet.contains("depot") || snippet.contains("again"), "a passage around a match: {snippet}");
}

/// PostgreSQL compiles a plan with JIT when its estimated cost passes `jit_above_cost`,
/// which a filtered search's plan did at a million documents: 50 ms of compiling to run
/// 2 ms. Every pooled connection turns JIT off (SQLite has none; its connections carry
/// their own settings, checked here instead).
async fn pooled_connections_never_compile_plans(app: TestApp) {
    use sqlx::Row;
    let db = &app.state().db;
    // More connections than one, so that it is not only the first that was set up.
    let mut connections = Vec::new();
    for _ in 0..3 {
        connections.push(db.pool.acquire().await.unwrap());
    }
    for connection in &mut connections {
        let (statement, expected) = match app.backend() {
            Backend::Postgres { .. } => ("SHOW jit", "off".to_string()),
            Backend::Sqlite => ("PRAGMA busy_timeout", "10000".to_string()),
        };
        let row = sqlx::query(statement).fetch_one(&mut **connection).await.unwrap();
        let value = row.try_get::<String, _>(0).or_else(|_| row.try_get::<i64, _>(0).map(|v| v.to_string())).unwrap();
        assert_eq!(value, expected, "{statement}");
    }
}
