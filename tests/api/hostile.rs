//! Hostile input: what a careless or malicious client can send, and what Kettle must do
//! with it. Requests whose work would be unbounded are refused before they run; text
//! with control characters or noncharacters is refused at the boundary, naming the field,
//! with nothing written; no URL, query string or document makes the server fail inside;
//! and the limits on sign-in, tokens, meetups and Markdown hold under concurrency.
//!
//! The text policy checks are generated from the live schema: every String and ID
//! argument, and every such field of every input object, of every mutation and query, so
//! that a new mutation is covered the day it lands.

use std::{
    collections::{BTreeMap, BTreeSet},
    panic::AssertUnwindSafe,
    time::{Duration, Instant},
};

use futures_util::{future::join_all, FutureExt};
use serde_json::{json, Value};

use crate::{
    case_studies::{admin, case_study, create_case_study, create_organisation, create_topic, PUBLISH},
    fuzz::{all_codes, client_send, normalise, InputValue, Kind, Lit, Model, Ty},
    scenarios,
    support::{with_own_app, Client, Peer, Scenario, TestApp, PASSWORD},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        hostile_fragment_chains_are_refused_quickly,
        hostile_alias_root_field_and_operation_floods_are_refused,
        hostile_expensive_root_fields_count_by_their_cost,
        hostile_control_characters_in_mutation_text_are_refused_and_write_nothing,
        hostile_control_characters_in_query_arguments_are_refused_or_find_nothing,
        hostile_path_segments_are_not_found,
        hostile_query_string_parameters_never_fail,
        hostile_punctuation_storms_in_search_answer_without_errors,
        hostile_meetups_are_at_most_a_week_long_and_five_years_ahead,
        hostile_parallel_token_creation_stops_at_fifty,
        hostile_parallel_wrong_passwords_are_limited_per_account,
        hostile_wrong_passwords_across_two_instances_share_one_limit,
        hostile_pathological_markdown_is_refused_or_stored_quickly,
    ]
}

// ---------------------------------------------------------------------------------------
// Sending, and saying what came back.

#[derive(Clone)]
struct Answer {
    status: u16,
    body: Value,
    took: Duration,
}

impl Answer {
    fn codes(&self) -> Vec<String> {
        all_codes(&self.body)
    }

    fn has_code(&self, code: &str) -> bool {
        self.codes().iter().any(|c| c == code)
    }

    /// One line for a failure message: status, time, codes, and the start of the body.
    fn describe(&self) -> String {
        let body = self.body.to_string();
        let excerpt: String = body.chars().take(400).collect();
        format!(
            "HTTP {} in {:.2} s, codes {:?}, body {}{}",
            self.status,
            self.took.as_secs_f64(),
            self.codes(),
            excerpt,
            if body.len() > excerpt.len() { "…" } else { "" }
        )
    }
}

async fn send(client: &Client, query: &str, variables: Value) -> Answer {
    let started = Instant::now();
    let (status, body) = match client_send(client, query, &variables).await {
        Ok((status, Ok(body))) => (status, body),
        Ok((status, Err(text))) => (status, json!({ "notJson": text })),
        Err(err) => (0, json!({ "transport": err })),
    };
    Answer { status, body, took: started.elapsed() }
}

/// Posts a whole GraphQL request body (for `operationName`) to `base` (an instance).
async fn post_to(app: &TestApp, url: &str, token: Option<&str>, request: Value) -> Answer {
    let started = Instant::now();
    let mut builder = app.http().post(url).json(&request);
    if let Some(token) = token {
        builder = builder.bearer_auth(token);
    }
    let (status, body) = match builder.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or_else(|_| json!({ "notJson": text })))
        }
        Err(err) => (0, json!({ "transport": err.to_string() })),
    };
    Answer { status, body, took: started.elapsed() }
}

/// Asserts that a request was refused with `code`, before running (within `bound`).
fn assert_refused(what: &str, answer: &Answer, code: &str, bound: Duration) {
    assert!(answer.has_code(code), "{what}: expected a {code} refusal, got {}", answer.describe());
    assert!(answer.status < 500, "{what}: {}", answer.describe());
    assert!(
        answer.took < bound,
        "{what}: refused, but only after {:.2} s (expected well under a second; bound {:.0} s)",
        answer.took.as_secs_f64(),
        bound.as_secs_f64()
    );
}

async fn healthy(app: &TestApp, after: &str) {
    let answer = app.http().get(app.url("/healthz")).timeout(Duration::from_secs(5)).send().await;
    match answer {
        Ok(r) if r.status() == 200 => {}
        Ok(r) => panic!("after {after}, /healthz answered {}", r.status()),
        Err(err) => panic!("after {after}, /healthz did not answer within 5 s: {err}"),
    }
}

// ---------------------------------------------------------------------------------------
// Request work bounds.

fn fragment_chain(n: usize) -> String {
    let mut document = String::from("query { ...F0 }");
    for i in 0..n - 1 {
        document.push_str(&format!(" fragment F{i} on Query {{ ...F{next} ...F{next} }}", next = i + 1));
    }
    document.push_str(&format!(" fragment F{} on Query {{ __typename }}", n - 1));
    document
}

async fn hostile_fragment_chains_are_refused_quickly(app: TestApp) {
    let anonymous = app.anonymous();
    // Each level doubles the expanded selection: 2^29 fields at n = 30. Work up to it, so
    // that a server that expands fragments is caught without being left busy for hours.
    let mut previous: Option<(usize, f64)> = None;
    for n in [10, 14, 18, 22, 26] {
        let answer = send(&anonymous, &fragment_chain(n), json!({})).await;
        let seconds = answer.took.as_secs_f64();
        if answer.took > Duration::from_secs(2) || answer.status == 0 {
            let growth = previous
                .map(|(m, t)| {
                    format!(
                        " (n = {m} took {t:.2} s: the work grows about {:.1}× per level)",
                        (seconds / t.max(0.0005)).powf(1.0 / (n - m) as f64)
                    )
                })
                .unwrap_or_default();
            panic!(
                "a fragment chain of n = {n} took {seconds:.2} s{growth}; n = 30 was not sent, since it would keep the \
                 server busy far longer. Answer: {}",
                answer.describe()
            );
        }
        println!("fragment chain n = {n}: {}", answer.describe());
        previous = Some((n, seconds));
    }
    let answer = send(&anonymous, &fragment_chain(30), json!({})).await;
    println!("fragment chain n = 30: {}", answer.describe());
    assert_refused(
        "a fragment chain of 30 (2^29 fields once expanded)",
        &answer,
        "QUERY_TOO_COMPLEX",
        Duration::from_secs(5),
    );
    assert!(
        answer.body.get("data").is_none() || answer.body["data"].is_null(),
        "refused, yet data came back: {}",
        answer.describe()
    );
    healthy(&app, "the fragment chain").await;
}

fn aliased(alias: &str, count: usize, field: &str) -> String {
    (0..count).map(|i| format!("{alias}{i}: {field}")).collect::<Vec<_>>().join(" ")
}

async fn hostile_alias_root_field_and_operation_floods_are_refused(app: TestApp) {
    let ada = admin(&app, "ada@example.org", "Ada").await;
    let bound = Duration::from_secs(5);

    let flood = format!("{{ {} }}", aliased("v", 60, "viewer { id }"));
    assert_refused("60 aliases of viewer", &send(&ada, &flood, json!({})).await, "QUERY_TOO_COMPLEX", bound);
    let nested = format!("{{ viewer {{ {} }} }}", aliased("h", 51, "handle"));
    assert_refused("51 aliases inside one viewer", &send(&ada, &nested, json!({})).await, "QUERY_TOO_COMPLEX", bound);
    let fifty = format!("{{ viewer {{ {} }} }}", aliased("h", 50, "handle"));
    let answer = send(&ada, &fifty, json!({})).await;
    assert!(answer.body.get("errors").is_none(), "50 aliases are within the limit, yet: {}", answer.describe());

    let roots = format!("{{ {} }}", aliased("r", 21, "viewer { id }"));
    assert_refused("21 root fields in a query", &send(&ada, &roots, json!({})).await, "QUERY_TOO_COMPLEX", bound);
    let twenty = format!("{{ {} }}", aliased("r", 20, "viewer { id }"));
    let answer = send(&ada, &twenty, json!({})).await;
    assert!(answer.body.get("errors").is_none(), "20 root fields are within the limit, yet: {}", answer.describe());

    let topics = |n: usize, tag: &str| {
        let fields: Vec<String> = (0..n)
            .map(|i| format!("t{i}: createTopic(input: {{ name: \"Flood {tag} {i}\" }}) {{ topic {{ id }} }}"))
            .collect();
        format!("mutation {{ {} }}", fields.join(" "))
    };
    let before = app.count("SELECT COUNT(*) FROM topics").await;
    assert_refused(
        "6 root fields in a mutation",
        &send(&ada, &topics(6, "six"), json!({})).await,
        "QUERY_TOO_COMPLEX",
        bound,
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM topics").await, before, "a refused mutation document created topics");
    let answer = send(&ada, &topics(5, "five"), json!({})).await;
    assert!(
        answer.body.get("errors").is_none(),
        "5 mutation root fields are within the limit, yet: {}",
        answer.describe()
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM topics").await, before + 5);

    let operations = |n: usize| (0..n).map(|i| format!("query Q{i} {{ __typename }}")).collect::<Vec<_>>().join(" ");
    let eleven =
        post_to(&app, &app.url("/graphql"), None, json!({ "query": operations(11), "operationName": "Q0" })).await;
    assert_refused("11 operations in one document", &eleven, "QUERY_TOO_COMPLEX", bound);
    let ten =
        post_to(&app, &app.url("/graphql"), None, json!({ "query": operations(10), "operationName": "Q0" })).await;
    assert!(ten.body.get("errors").is_none(), "10 operations are within the limit, yet: {}", ten.describe());
    healthy(&app, "the floods").await;
}

async fn hostile_expensive_root_fields_count_by_their_cost(app: TestApp) {
    let ada = admin(&app, "ada@example.org", "Ada").await;
    let topic = create_topic(&ada, "Waste").await;
    let study = create_case_study(&ada, case_study("Bin collection", &[&topic])).await;
    ada.data(PUBLISH, json!({ "id": study["id"] })).await;
    let bound = Duration::from_secs(5);

    let searches = format!("{{ {} }}", aliased("s", 999, "search(query: \"bin\") { snippet }"));
    assert_refused("999 aliased searches", &send(&ada, &searches, json!({})).await, "QUERY_TOO_COMPLEX", bound);

    let ids: Vec<Value> = (0..100).map(|_| study["id"].clone()).collect();
    let lookups = format!("query($ids: [ID!]!) {{ {} }}", aliased("n", 600, "nodes(ids: $ids) { id }"));
    let answer = send(&ada, &lookups, json!({ "ids": ids })).await;
    assert_refused("600 aliases × nodes(100 ids): 60,000 lookups", &answer, "QUERY_TOO_COMPLEX", bound);
    let one = send(&ada, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({ "ids": ids })).await;
    assert!(one.body.get("errors").is_none(), "one nodes() of 100 ids is allowed, yet: {}", one.describe());

    // Within the alias and root-field limits, cost alone decides; printed for the record.
    let twenty_searches = format!("{{ {} }}", aliased("s", 20, "search(query: \"bin\", first: 50) { snippet }"));
    let answer = send(&ada, &twenty_searches, json!({})).await;
    println!("20 searches of 50: {}", answer.describe());
    assert!(
        answer.body.get("errors").is_none() || answer.codes() == ["QUERY_TOO_COMPLEX"],
        "20 searches of 50 within the alias and root-field limits are either run or refused as QUERY_TOO_COMPLEX \
         for their cost, but got {}",
        answer.describe()
    );
    let twenty_nodes = format!("query($ids: [ID!]!) {{ {} }}", aliased("n", 20, "nodes(ids: $ids) { id }"));
    println!("20 × nodes(100 ids): {}", send(&ada, &twenty_nodes, json!({ "ids": ids })).await.describe());
    healthy(&app, "the expensive requests").await;
}

// ---------------------------------------------------------------------------------------
// The text policy, generated from the schema.

/// One character of each class the policy refuses, with a label for reports.
const BAD: &[(&str, &str)] = &[
    ("NUL", "\u{0}"),
    ("U+0001", "\u{1}"),
    ("U+000B", "\u{b}"),
    ("U+001B", "\u{1b}"),
    ("DEL", "\u{7f}"),
    ("U+0085", "\u{85}"),
    ("U+009F", "\u{9f}"),
    ("U+FDD0", "\u{fdd0}"),
    ("U+FFFE", "\u{fffe}"),
    ("U+FFFF", "\u{ffff}"),
    ("U+1FFFE", "\u{1fffe}"),
];

/// A small world for inputs to refer to: everything a mutation's input may name exists.
struct World {
    ada: Client,
    ada_email: String,
    grace_handle: String,
    grace_id: String,
    topic: String,
    topic_slug: String,
    other_topic: String,
    organisation: String,
    organisation_slug: String,
    case_study: String,
    artefact: String,
    comment: String,
    group: String,
    group_slug: String,
    event: String,
    agenda_item: String,
    token: String,
    year: i16,
}

fn number(global_id: &str) -> i64 {
    kettle::graphql::relay::parse_global_id(global_id).expect("a global id").1
}

fn str_at(data: &Value, path: &[&str]) -> String {
    let mut value = data;
    for key in path {
        value = &value[*key];
    }
    value.as_str().unwrap_or_else(|| panic!("no {path:?} in {data}")).to_string()
}

async fn world(app: &TestApp) -> World {
    let ada = admin(app, "ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let topic = create_topic(&ada, "Waste and recycling").await;
    let other_topic = create_topic(&ada, "Accessibility").await;
    let (organisation, organisation_slug) = create_organisation(&ada, "Barsetshire County Council").await;
    let study = create_case_study(&ada, case_study("Bin collection reminders", &[&topic])).await;
    let case_study = study["id"].as_str().unwrap().to_string();
    ada.data(PUBLISH, json!({ "id": case_study })).await;
    let data = ada
        .data(
            "mutation($input: CreateArtefactInput!) { createArtefact(input: $input) { artefact { id } userErrors { field message } } }",
            json!({ "input": { "title": "Bin day finder", "kind": "CODE", "description": "A *small* service.", "url": "https://example.org/bins", "licence": "MIT", "status": "IN_USE", "topicIds": [topic] } }),
        )
        .await;
    let artefact = str_at(&data, &["createArtefact", "artefact", "id"]);
    let data = ada
        .data(
            "mutation($input: PostCommentInput!) { postComment(input: $input) { comment { id } userErrors { message } } }",
            json!({ "input": { "subjectId": case_study, "body": "Residents liked it." } }),
        )
        .await;
    let comment = str_at(&data, &["postComment", "comment", "id"]);
    let data = ada
        .data(
            "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id slug } userErrors { message } } }",
            json!({ "input": { "name": "TeaCamp North", "region": "North West" } }),
        )
        .await;
    let group = str_at(&data, &["createMeetupGroup", "group", "id"]);
    let group_slug = str_at(&data, &["createMeetupGroup", "group", "slug"]);
    let year = jiff::Zoned::now().year() + 1;
    let data = ada
        .data(
            "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id } userErrors { field message } } }",
            json!({ "input": { "groupId": group, "title": "TeaCamp", "timeZone": "Europe/London", "start": format!("{year}-03-11T16:00"), "end": format!("{year}-03-11T18:00"), "venueName": "The Federation" } }),
        )
        .await;
    let event = str_at(&data, &["scheduleMeetup", "event", "id"]);
    let data = ada
        .data(
            "mutation($input: AddAgendaItemInput!) { addAgendaItem(input: $input) { event { agenda { id } } userErrors { field message } } }",
            json!({ "input": { "eventId": event, "kind": "TALK", "title": "Bins", "durationMinutes": 20 } }),
        )
        .await;
    let agenda_item =
        data["addAgendaItem"]["event"]["agenda"][0]["id"].as_str().unwrap_or_else(|| panic!("{data}")).to_string();
    let data = ada
        .data(
            "mutation { createAccessToken(input: { name: \"script\" }) { accessToken { id } userErrors { message } } }",
            json!({}),
        )
        .await;
    let token = str_at(&data, &["createAccessToken", "accessToken", "id"]);
    grace
        .data(
            "mutation($id: ID!) { joinMeetupGroup(input: { groupId: $id }) { userErrors { message } } }",
            json!({ "id": group }),
        )
        .await;
    grace
        .data(
            "mutation($id: ID!) { requestToJoinOrganisation(input: { organisationId: $id }) { userErrors { message } } }",
            json!({ "id": organisation }),
        )
        .await;
    let me = grace.data("{ viewer { id handle } }", json!({})).await;
    let topic_slug =
        ada.data("query($id: ID!) { node(id: $id) { ... on Topic { slug } } }", json!({ "id": topic })).await;
    World {
        ada_email: "ada@example.org".into(),
        grace_handle: str_at(&me, &["viewer", "handle"]),
        grace_id: str_at(&me, &["viewer", "id"]),
        topic_slug: str_at(&topic_slug, &["node", "slug"]),
        ada,
        topic,
        other_topic,
        organisation,
        organisation_slug,
        case_study,
        artefact,
        comment,
        group,
        group_slug,
        event,
        agenda_item,
        token,
        year,
    }
}

/// Builds plausible inputs: valid in every field but the one under test, so that a
/// character the policy lets through shows as a write.
struct Filler<'a> {
    model: &'a Model,
    world: &'a World,
    serial: usize,
    versions: BTreeMap<String, i64>,
}

impl Filler<'_> {
    fn id_for(&self, parent: &str, field: &str) -> String {
        let w = self.world;
        let by_field = match field {
            "topicIds" | "topicId" => Some(&w.topic),
            "intoId" => Some(&w.other_topic),
            "organisationId" => Some(&w.organisation),
            "caseStudyId" | "caseStudyIds" | "subjectId" => Some(&w.case_study),
            "artefactId" | "adaptedFromId" => Some(&w.artefact),
            "parentId" | "commentId" => Some(&w.comment),
            "groupId" => Some(&w.group),
            "eventId" => Some(&w.event),
            "memberId" => Some(&w.grace_id),
            _ => None,
        };
        if let Some(id) = by_field {
            return id.clone();
        }
        let by_parent = [
            ("Agenda", &w.agenda_item),
            ("Topic", &w.topic),
            ("Comment", &w.comment),
            ("AccessToken", &w.token),
            ("Artefact", &w.artefact),
            ("Meetup", &w.event),
            ("CaseStudy", &w.case_study),
            ("Interest", &w.case_study),
            ("Organisation", &w.organisation),
            ("Group", &w.group),
        ];
        by_parent
            .iter()
            .find(|(part, _)| parent.contains(part))
            .map(|(_, id)| (*id).clone())
            .unwrap_or_else(|| w.case_study.clone())
    }

    fn string_for(&mut self, parent: &str, field: &str) -> String {
        self.serial += 1;
        let n = self.serial;
        let w = self.world;
        let year = w.year;
        match field {
            "email" if parent.starts_with("SignIn") => w.ada_email.clone(),
            "email" => format!("hostile{n}@example.org"),
            "password" => PASSWORD.into(),
            "displayName" => "Hostile Person".into(),
            "bio" => "Builds services.".into(),
            "timeZone" => "Europe/London".into(),
            "start" => format!("{year}-06-10T16:00"),
            "end" => format!("{year}-06-10T18:00"),
            "until" => format!("{year}-12-31"),
            "url" | "website" | "onlineUrl" => format!("https://example.org/thing{n}"),
            "licence" => "MIT".into(),
            "region" => "North West".into(),
            "handle" | "speakerHandle" | "coAuthorHandles" | "author" => w.grace_handle.clone(),
            "provider" => "github".into(),
            "summary" => "A short summary.".into(),
            "body" | "description" | "source" => format!("Some *Markdown* {n}."),
            "note" => "A note.".into(),
            "venueName" => "The Hall".into(),
            "venueAddress" => "1 High Street".into(),
            "venueDirections" => "Up the stairs".into(),
            "speakerName" => "A Speaker".into(),
            "query" => "bin".into(),
            "slug" | "topic" if parent == "topic" || field == "topic" => w.topic_slug.clone(),
            "slug" | "organisation" if parent == "organisation" || field == "organisation" => {
                w.organisation_slug.clone()
            }
            "slug" if parent == "meetupGroup" => w.group_slug.clone(),
            "name" | "title" => format!("Hostile {field} {n}"),
            _ => format!("Hostile {field} {n}"),
        }
    }

    /// A value for `ty` in field `field` of `parent` (an input type, or a root field for
    /// its arguments). `target` is the rest of the path to the field under test when it
    /// lies within, and `Some(&[])` when this is it: it then holds `bad` mid-value.
    fn fill(&mut self, ty: &Ty, parent: &str, field: &str, target: Option<&[String]>, bad: &str) -> Lit {
        match ty.nullable() {
            Ty::List(inner) => Lit::List(vec![self.fill(inner, parent, field, target, bad)]),
            Ty::NonNull(_) => unreachable!(),
            Ty::Named(name) => match name.as_str() {
                "String" | "ID" => {
                    let value = if name == "ID" { self.id_for(parent, field) } else { self.string_for(parent, field) };
                    if target.is_some() {
                        let mut chars = value.chars();
                        let first: String = chars.next().map(String::from).unwrap_or_default();
                        Lit::Str(format!("{first}{bad}{}", chars.as_str()))
                    } else {
                        Lit::Str(value)
                    }
                }
                "Int" => Lit::Int(match field {
                    "version" => *self.versions.get(parent).unwrap_or(&1),
                    "durationMinutes" => 30,
                    "capacity" => 20,
                    "count" => 3,
                    "expiresInDays" => 30,
                    "first" | "last" => 10,
                    _ => 1,
                }),
                "Float" => Lit::Float(1.0),
                "Boolean" => Lit::Bool(matches!(field, "on" | "approve" | "going")),
                other => match self.model.kind(other) {
                    Kind::Enum(values) => Lit::Enum(values[0].clone()),
                    Kind::Input(fields) => {
                        let fields = fields.clone();
                        let mut out = Vec::new();
                        for f in &fields {
                            let inner = target
                                .and_then(|t| t.split_first())
                                .filter(|(head, _)| **head == f.name)
                                .map(|(_, rest)| rest);
                            if inner.is_some() || f.required() {
                                out.push((f.name.clone(), self.fill(&f.ty, other, &f.name, inner, bad)));
                            }
                        }
                        Lit::Obj(out)
                    }
                    _ => Lit::Str(self.string_for(parent, field)),
                },
            },
        }
    }
}

/// Every table and its row count, in one statement.
async fn table_counts(app: &TestApp, tables: &[String]) -> BTreeMap<String, i64> {
    use sqlx::Row;
    let sql = tables
        .iter()
        .map(|t| format!("SELECT '{t}' AS t, COUNT(*) AS n FROM \"{t}\""))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows = sqlx::query(&sql).fetch_all(&app.state().db.pool).await.expect("count every table");
    rows.iter().map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1))).collect()
}

async fn table_names(app: &TestApp) -> Vec<String> {
    use kettle::db::Dialect;
    let sql = match app.state().db.dialect {
        Dialect::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name"
        }
        Dialect::Postgres => {
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name NOT LIKE '_sqlx%' ORDER BY table_name"
        }
    };
    sqlx::query_scalar::<_, String>(sql).fetch_all(&app.state().db.pool).await.expect("list the tables")
}

fn count_changes(before: &BTreeMap<String, i64>, after: &BTreeMap<String, i64>) -> Vec<String> {
    after
        .iter()
        .filter_map(|(t, n)| {
            let was = before.get(t).copied().unwrap_or(0);
            (was != *n).then(|| format!("{t} {:+}", n - was))
        })
        .collect()
}

/// The selection for a payload or result of type `name`: its user errors if it has them.
fn payload_selection(model: &Model, name: &str) -> String {
    if model.is_leaf(name) {
        return String::new();
    }
    let fields = model.fields(name);
    if fields.iter().any(|f| f.name == "userErrors") {
        " { __typename userErrors { field code message } }".into()
    } else if fields.iter().any(|f| f.name == "nodes") {
        " { nodes { __typename } }".into()
    } else {
        " { __typename }".into()
    }
}

/// A document calling `root.field` once, with `args` as variables or inline literals.
fn document(keyword: &str, field: &str, args: &[(InputValue, Lit)], selection: &str, inline: bool) -> (String, Value) {
    let mut declarations = Vec::new();
    let mut arguments = Vec::new();
    let mut variables = serde_json::Map::new();
    for (i, (arg, value)) in args.iter().enumerate() {
        if inline {
            arguments.push(format!("{}: {}", arg.name, value.graphql()));
        } else {
            declarations.push(format!("$a{i}: {}", arg.ty.sdl()));
            arguments.push(format!("{}: $a{i}", arg.name));
            variables.insert(format!("a{i}"), value.json());
        }
    }
    let declarations = if declarations.is_empty() { String::new() } else { format!("({})", declarations.join(", ")) };
    let arguments = if arguments.is_empty() { String::new() } else { format!("({})", arguments.join(", ")) };
    (format!("{keyword}{declarations} {{ {field}{arguments}{selection} }}"), Value::Object(variables))
}

/// Whether the request was refused naming `leaf`: an error with `BAD_USER_INPUT` and
/// `extensions.field`, or a user error on that field. Otherwise, what happened instead.
fn refusal(answer: &Answer, field: &str, leaf: &str) -> Result<(), String> {
    let errors = answer.body["errors"].as_array().cloned().unwrap_or_default();
    if errors.iter().any(|e| e["extensions"]["code"] == "BAD_USER_INPUT" && e["extensions"]["field"] == leaf) {
        return Ok(());
    }
    let user_errors = answer.body["data"][field]["userErrors"].as_array().cloned().unwrap_or_default();
    if user_errors.iter().any(|e| e["field"] == leaf) {
        return Ok(());
    }
    if let Some(error) = errors.first() {
        return Err(format!(
            "refused as {} with extensions.field {} (not `{leaf}`): {}",
            error["extensions"]["code"].as_str().unwrap_or("(no code)"),
            error["extensions"]["field"],
            normalise(error["message"].as_str().unwrap_or(""))
        ));
    }
    if !user_errors.is_empty() {
        let listed: Vec<String> = user_errors
            .iter()
            .map(|e| {
                format!(
                    "{}/{}: {}",
                    e["field"],
                    e["code"].as_str().unwrap_or(""),
                    normalise(e["message"].as_str().unwrap_or(""))
                )
            })
            .collect();
        return Err(format!("userErrors not naming `{leaf}`: {}", listed.join("; ")));
    }
    Err("accepted: no error and no userError".into())
}

/// Problems any answer may not have.
fn protocol_problems(answer: &Answer) -> Vec<String> {
    let mut problems = Vec::new();
    if answer.status >= 500 || answer.status == 0 {
        problems.push(format!("HTTP {}", answer.status));
    }
    if answer.body.get("notJson").is_some() || answer.body.get("transport").is_some() {
        problems.push(format!("no JSON answer: {}", answer.describe()));
    }
    for error in answer.body["errors"].as_array().into_iter().flatten() {
        match error["extensions"]["code"].as_str() {
            None => problems.push(format!(
                "an error without extensions.code: {}",
                normalise(error["message"].as_str().unwrap_or(""))
            )),
            Some("INTERNAL") => problems.push("INTERNAL".into()),
            Some(_) => {}
        }
    }
    problems
}

/// The character classes and modes (variables, inline) that hit one failure, and an
/// example answer.
type Group = (BTreeSet<String>, BTreeSet<&'static str>, String);

/// Failures grouped by where and what, with the characters and modes that hit each.
#[derive(Default)]
struct Findings {
    groups: BTreeMap<(String, String), Group>,
    checked: usize,
}

impl Findings {
    fn add(&mut self, place: &str, what: String, label: &str, mode: &'static str, example: &Answer) {
        let entry = self
            .groups
            .entry((place.to_string(), what))
            .or_insert_with(|| (BTreeSet::new(), BTreeSet::new(), example.describe()));
        entry.0.insert(label.to_string());
        entry.1.insert(mode);
    }

    fn report(&self, title: &str) -> Option<String> {
        if self.groups.is_empty() {
            return None;
        }
        let places: BTreeSet<&String> = self.groups.keys().map(|(p, _)| p).collect();
        let mut text = format!(
            "{title}: {} failures at {} places (of {} requests):\n",
            self.groups.len(),
            places.len(),
            self.checked
        );
        for ((place, what), (labels, modes, example)) in &self.groups {
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            let modes: Vec<&str> = modes.iter().copied().collect();
            text.push_str(&format!(
                "- {place} [{}; {}]: {what}\n    e.g. {example}\n",
                labels.join(" "),
                modes.join("+")
            ));
        }
        Some(text)
    }
}

async fn current_versions(world: &World) -> BTreeMap<String, i64> {
    let data = world
        .ada
        .data(
            "query($ids: [ID!]!) { nodes(ids: $ids) { ... on CaseStudy { version } ... on Artefact { version } } }",
            json!({ "ids": [world.case_study, world.artefact] }),
        )
        .await;
    BTreeMap::from([
        ("UpdateCaseStudyInput".to_string(), data["nodes"][0]["version"].as_i64().unwrap_or(1)),
        ("UpdateArtefactInput".to_string(), data["nodes"][1]["version"].as_i64().unwrap_or(1)),
    ])
}

async fn hostile_control_characters_in_mutation_text_are_refused_and_write_nothing(app: TestApp) {
    let world = world(&app).await;
    let model = Model::load();
    let tables = table_names(&app).await;
    let mut findings = Findings::default();
    let mut targets = 0;
    for mutation in model.fields("Mutation") {
        let selection = payload_selection(&model, mutation.ty.named());
        for arg in &mutation.args {
            for path in model.text_paths(&arg.ty) {
                targets += 1;
                let place = format!(
                    "{}({})",
                    mutation.name,
                    std::iter::once(arg.name.clone()).chain(path.clone()).collect::<Vec<_>>().join(".")
                );
                let leaf = path.last().cloned().unwrap_or_else(|| arg.name.clone());
                for (label, bad) in BAD {
                    for (mode, inline) in [("variables", false), ("inline", true)] {
                        let versions = current_versions(&world).await;
                        let mut filler = Filler { model: &model, world: &world, serial: findings.checked, versions };
                        let args: Vec<(InputValue, Lit)> = mutation
                            .args
                            .iter()
                            .filter(|a| a.name == arg.name || a.required())
                            .map(|a| {
                                let target = (a.name == arg.name).then_some(path.as_slice());
                                (a.clone(), filler.fill(&a.ty, &mutation.name, &a.name, target, bad))
                            })
                            .collect();
                        let (query, variables) = document("mutation", &mutation.name, &args, &selection, inline);
                        let before = table_counts(&app, &tables).await;
                        let answer = send(&world.ada, &query, variables).await;
                        let after = table_counts(&app, &tables).await;
                        findings.checked += 1;
                        for problem in protocol_problems(&answer) {
                            findings.add(&place, problem, label, mode, &answer);
                        }
                        if let Err(what) = refusal(&answer, &mutation.name, &leaf) {
                            findings.add(&place, what, label, mode, &answer);
                        }
                        let changes = count_changes(&before, &after);
                        if !changes.is_empty() {
                            findings.add(&place, format!("wrote: {}", changes.join(", ")), label, mode, &answer);
                        }
                    }
                }
            }
        }
    }
    println!(
        "text policy: {} requests over {targets} text fields of {} mutations",
        findings.checked,
        model.fields("Mutation").len()
    );
    assert!(targets > 50, "only {targets} text fields found in the mutations: is the schema model reading it?");
    if let Some(report) = findings.report("bad characters in mutation inputs") {
        panic!("{report}");
    }
}

/// Whether a query's answer holds nothing: null, an empty list or string, or a
/// connection with no nodes.
fn is_empty_answer(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.get("nodes").is_some_and(|n| n.as_array().is_some_and(Vec::is_empty)),
        _ => false,
    }
}

async fn hostile_control_characters_in_query_arguments_are_refused_or_find_nothing(app: TestApp) {
    let world = world(&app).await;
    let model = Model::load();
    let mut findings = Findings::default();
    let mut targets = 0;
    for query in model.fields("Query") {
        let selection = payload_selection(&model, query.ty.named());
        for arg in &query.args {
            for path in model.text_paths(&arg.ty) {
                targets += 1;
                let place = format!("{}({})", query.name, arg.name);
                let leaf = path.last().cloned().unwrap_or_else(|| arg.name.clone());
                for (label, bad) in BAD {
                    for (mode, inline) in [("variables", false), ("inline", true)] {
                        let mut filler = Filler { model: &model, world: &world, serial: 0, versions: BTreeMap::new() };
                        let args: Vec<(InputValue, Lit)> = query
                            .args
                            .iter()
                            .filter(|a| a.name == arg.name || a.required())
                            .map(|a| {
                                let target = (a.name == arg.name).then_some(path.as_slice());
                                (a.clone(), filler.fill(&a.ty, &query.name, &a.name, target, bad))
                            })
                            .collect();
                        let (doc, variables) = document("query", &query.name, &args, &selection, inline);
                        let answer = send(&world.ada, &doc, variables).await;
                        findings.checked += 1;
                        for problem in protocol_problems(&answer) {
                            findings.add(&place, problem, label, mode, &answer);
                        }
                        let errors = answer.body["errors"].as_array().cloned().unwrap_or_default();
                        if errors.is_empty() {
                            if !is_empty_answer(&answer.body["data"][&query.name]) {
                                findings.add(
                                    &place,
                                    "answered with something, as if the character were allowed".into(),
                                    label,
                                    mode,
                                    &answer,
                                );
                            }
                        } else if let Err(what) = refusal(&answer, &query.name, &leaf) {
                            findings.add(&place, what, label, mode, &answer);
                        }
                    }
                }
            }
        }
    }
    println!("text policy in queries: {} requests over {targets} arguments", findings.checked);
    assert!(targets > 10, "only {targets} text arguments found in the queries");
    if let Some(report) = findings.report("bad characters in query arguments") {
        panic!("{report}");
    }
}

// ---------------------------------------------------------------------------------------
// URLs.

/// Percent-encoded segments the site must treat as not found (or a bad request).
const BAD_SEGMENTS: &[&str] = &["%00", "%01", "%0B", "%7F", "%C2%85", "%EF%BF%BE", "%FF", "%C0%80"];

struct Route {
    path: String,
    get: bool,
    post: bool,
}

/// The routes `site::routes()` and `http::routes()` declare, read from their source so
/// that a new route is covered the day it lands.
fn declared_routes() -> Vec<Route> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut routes = Vec::new();
    for file in ["backend/site/mod.rs", "backend/http/mod.rs"] {
        let source = std::fs::read_to_string(format!("{root}/{file}")).expect("read the route table");
        for line in source.lines() {
            let Some(start) = line.find(".at(\"") else { continue };
            let rest = &line[start + 5..];
            let Some(end) = rest.find('"') else { continue };
            let handlers = &rest[end..];
            routes.push(Route {
                path: rest[..end].to_string(),
                get: handlers.contains("get("),
                post: handlers.contains("post("),
            });
        }
    }
    assert!(routes.len() > 40, "only {} routes read from the source", routes.len());
    routes
}

/// A valid value for a path parameter, by route and name.
fn path_value(world: &World, path: &str, param: &str) -> String {
    let event = number(&world.event).to_string();
    match param {
        "slug" if path.starts_with("/topics") || path.starts_with("/feeds/topics") => {
            if path.starts_with("/feeds") {
                format!("{}.atom", world.topic_slug)
            } else {
                world.topic_slug.clone()
            }
        }
        "slug" if path.starts_with("/organisations") || path.starts_with("/feeds/organisations") => {
            if path.starts_with("/feeds") {
                format!("{}.atom", world.organisation_slug)
            } else {
                world.organisation_slug.clone()
            }
        }
        "slug" => world.group_slug.clone(),
        "number" if path.starts_with("/artefacts") => number(&world.artefact).to_string(),
        "number" if path.starts_with("/comments") => number(&world.comment).to_string(),
        "number" if path.starts_with("/meetups") => event,
        "number" => number(&world.case_study).to_string(),
        "file" if path.starts_with("/calendars/events") => format!("{event}.ics"),
        "file" if path.starts_with("/calendars/groups") => format!("{}.ics", world.group_slug),
        "file" if path.starts_with("/calendars/personal") => "nothing.ics".into(),
        "file" => "app.js".into(),
        "provider" => "github".into(),
        "id" => format!("@{}", world.grace_handle),
        _ => "x".into(),
    }
}

/// `path` with its parameters filled in, and the one at `hostile` (by position) holding
/// `bad` after its first character.
fn fill_path(world: &World, path: &str, hostile: Option<(usize, &str)>) -> String {
    let mut index = 0;
    path.split('/')
        .map(|segment| {
            let Some(param) = segment.strip_prefix(':').or_else(|| segment.strip_prefix('*')) else {
                return segment.to_string();
            };
            let value = path_value(world, path, param);
            let here = index;
            index += 1;
            match hostile {
                Some((at, bad)) if at == here => {
                    let mut chars = value.chars();
                    let first: String = chars.next().map(String::from).unwrap_or_default();
                    format!("{first}{bad}{}", chars.as_str())
                }
                _ => value,
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn fetch(app: &TestApp, method: &str, url: &str, session: Option<&str>) -> (u16, String) {
    let mut request = if method == "GET" { app.http().get(url) } else { app.http().post(url).form(&[("x", "y")]) };
    if let Some(session) = session {
        request = request.header("cookie", format!("kettle_session={session}"));
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (status, text.chars().take(200).collect())
        }
        Err(err) => (0, format!("no answer: {err}")),
    }
}

async fn hostile_path_segments_are_not_found(app: TestApp) {
    let world = world(&app).await;
    let session = world.ada.token().to_string();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut statuses = BTreeMap::new();
    let routes = declared_routes();
    // The signed-in requests below really are signed in.
    let (status, body) = fetch(&app, "GET", &app.url("/settings"), Some(&session)).await;
    assert_eq!(status, 200, "the session cookie does not sign in: /settings answered {status}: {body}");
    for route in &routes {
        let params = route.path.split('/').filter(|s| s.starts_with(':') || s.starts_with('*')).count();
        for position in 0..params {
            for bad in BAD_SEGMENTS {
                let url = app.url(&fill_path(&world, &route.path, Some((position, bad))));
                let mut methods = vec![];
                if route.get {
                    methods.push("GET");
                }
                if route.post {
                    methods.push("POST");
                }
                for method in methods {
                    for signed_in in [true, false] {
                        checked += 1;
                        let (status, body) = fetch(&app, method, &url, signed_in.then_some(session.as_str())).await;
                        let who = if signed_in { "signed in" } else { "anonymous" };
                        *statuses.entry(format!("{method} {who} {status}")).or_insert(0usize) += 1;
                        let acceptable = match (method, signed_in) {
                            _ if status >= 500 || status == 0 => false,
                            ("GET", true) => status == 400 || status == 404,
                            ("POST", _) => (400..500).contains(&status),
                            _ => true,
                        };
                        if !acceptable {
                            failures.push(format!(
                                "{method} {} ({who}) → {status}: {body}",
                                url.trim_start_matches(&app.url(""))
                            ));
                        }
                    }
                }
            }
        }
    }
    println!("hostile path segments: {checked} requests over {} routes: {statuses:?}", routes.len());
    assert!(failures.is_empty(), "{} hostile path segments were not answered 400/404 (GET, signed in), 4xx (POST) or below 500 (anonymous GET):\n{}", failures.len(), failures.join("\n"));
    healthy(&app, "hostile paths").await;
}

/// The query-string parameters the site reads, harvested from its source.
fn query_parameter_names() -> BTreeSet<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut names =
        BTreeSet::from(["q", "after", "before", "return_to", "query", "variables", "operationName"].map(String::from));
    for entry in std::fs::read_dir(format!("{root}/backend/site")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for marker in [".get(\"", ".remove(\"", ".contains_key(\"", "text(\""] {
            for (i, _) in source.match_indices(marker) {
                let rest = &source[i + marker.len()..];
                if let Some(end) = rest.find('"') {
                    let name = &rest[..end];
                    if !name.is_empty()
                        && name.len() < 30
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        names.insert(name.to_string());
                    }
                }
            }
        }
    }
    names
}

async fn hostile_query_string_parameters_never_fail(app: TestApp) {
    let world = world(&app).await;
    let session = world.ada.token().to_string();
    let names = query_parameter_names();
    let mut failures = Vec::new();
    let mut checked = 0;
    for route in declared_routes().iter().filter(|r| r.get) {
        let path = fill_path(&world, &route.path, None);
        for bad in BAD_SEGMENTS {
            let query: Vec<String> = names.iter().map(|n| format!("{n}=a{bad}b")).collect();
            let url = format!("{}?{}", app.url(&path), query.join("&"));
            for signed_in in [true, false] {
                checked += 1;
                let (status, body) = fetch(&app, "GET", &url, signed_in.then_some(session.as_str())).await;
                if status >= 500 || status == 0 {
                    // Find which parameter does it, for the report.
                    let mut culprits = Vec::new();
                    for name in &names {
                        let one = format!("{}?{name}=a{bad}b", app.url(&path));
                        let (s, _) = fetch(&app, "GET", &one, signed_in.then_some(session.as_str())).await;
                        if s >= 500 || s == 0 {
                            culprits.push(format!("{name} ({s})"));
                        }
                    }
                    failures.push(format!(
                        "GET {path}?…={bad} ({}) → {status}: {body}; alone, these fail: {}",
                        if signed_in { "signed in" } else { "anonymous" },
                        culprits.join(", ")
                    ));
                }
            }
        }
    }
    for bad in BAD_SEGMENTS {
        for url in
            [format!("/search?q=bin{bad}"), format!("/search?q={bad}&kind=ARTEFACT{bad}&topic={bad}&offset=1{bad}")]
        {
            checked += 1;
            let (status, body) = fetch(&app, "GET", &app.url(&url), None).await;
            if status >= 500 || status == 0 {
                failures.push(format!("GET {url} → {status}: {body}"));
            }
        }
    }
    println!("hostile query strings: {checked} requests, parameters {names:?}");
    assert!(
        failures.is_empty(),
        "{} requests with hostile query-string parameters failed inside:\n{}",
        failures.len(),
        failures.join("\n")
    );
    healthy(&app, "hostile query strings").await;
}

// ---------------------------------------------------------------------------------------
// Search, meetups, tokens, sign-in and Markdown.

async fn hostile_punctuation_storms_in_search_answer_without_errors(app: TestApp) {
    let ada = admin(&app, "ada@example.org", "Ada").await;
    let topic = create_topic(&ada, "Waste").await;
    let study = create_case_study(&ada, case_study("Bin collection - reminders (online)", &[&topic])).await;
    ada.data(PUBLISH, json!({ "id": study["id"] })).await;
    let storms = [
        "-".repeat(40),
        "- ".repeat(40),
        "bin ----------------------------------------".into(),
        "\"".repeat(40),
        "\"bin".into(),
        "'".repeat(40),
        "*".repeat(40),
        "bin*".into(),
        "(((((((((((((((((((( bin".into(),
        ")))))))))))))))))))))".into(),
        ":".repeat(40),
        "bin:bin".into(),
        "title:bin".into(),
        "^bin".into(),
        "NEAR(bin reminders)".into(),
        "bin AND OR NOT".into(),
        "AND".into(),
        "OR OR OR".into(),
        "NOT".into(),
        "!".repeat(40),
        "&|!<->".into(),
        "bin <-> reminders".into(),
        "bin & reminders | !x".into(),
        "%_%_".into(),
        "\\".repeat(40),
        "{}[]<>@#$~`".into(),
        "–—―‒".into(),
        "¿¡«»“”‘’".into(),
        "-bin".into(),
        "bin-".into(),
        "+bin +reminders".into(),
        ".".repeat(40),
        ",;".repeat(20),
        "'; DROP TABLE search_index; --".into(),
        " ".into(),
        "".into(),
    ];
    let mut failures = Vec::new();
    for query in &storms {
        let answer =
            send(&ada, "query($q: String!) { search(query: $q) { snippet node { id } } }", json!({ "q": query })).await;
        if answer.status != 200 || answer.body.get("errors").is_some() {
            failures.push(format!("search {query:?}: {}", answer.describe()));
        }
    }
    assert!(failures.is_empty(), "{} punctuation storms in search failed:\n{}", failures.len(), failures.join("\n"));
}

const SCHEDULE: &str = "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id } userErrors { field code message } } }";

async fn hostile_meetups_are_at_most_a_week_long_and_five_years_ahead(app: TestApp) {
    let olu = app.member("olu@example.org", "Olu").await;
    let data = olu
        .data(
            "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id } } }",
            json!({ "input": { "name": "TeaCamp North", "region": "North West" } }),
        )
        .await;
    let group = str_at(&data, &["createMeetupGroup", "group", "id"]);
    let input = |start: &str, end: &str| json!({ "groupId": group, "title": "TeaCamp", "timeZone": "Europe/London", "start": start, "end": end, "venueName": "The Federation" });
    let year = jiff::Zoned::now().year();
    let refused: Vec<(String, String, String)> = vec![
        ("eight days".into(), format!("{}-03-01T10:00", year + 1), format!("{}-03-09T10:00", year + 1)),
        ("a week and a minute".into(), format!("{}-03-01T10:00", year + 1), format!("{}-03-08T10:01", year + 1)),
        ("six years ahead".into(), format!("{}-03-01T10:00", year + 6), format!("{}-03-01T12:00", year + 6)),
        ("in 9999".into(), "9999-12-31T22:00".into(), "9999-12-31T23:00".into()),
        ("ending after 9999".into(), "9999-12-31T22:00".into(), "9999-12-31T23:59".into()),
        ("in year -9999".into(), "-009999-01-01T00:00".into(), "-009999-01-01T01:00".into()),
        ("a thousand years long".into(), format!("{}-03-01T10:00", year + 1), "3025-03-01T10:00".into()),
    ];
    let mut failures = Vec::new();
    for (what, start, end) in &refused {
        let before = app.count("SELECT COUNT(*) FROM meetup_events").await;
        let answer = send(&olu, SCHEDULE, json!({ "input": input(start, end) })).await;
        let after = app.count("SELECT COUNT(*) FROM meetup_events").await;
        let user_errors = answer.body["data"]["scheduleMeetup"]["userErrors"].as_array().cloned().unwrap_or_default();
        if !protocol_problems(&answer).is_empty() || user_errors.is_empty() || after != before {
            failures.push(format!(
                "an event {what} ({start} to {end}): wrote {} events; {}",
                after - before,
                answer.describe()
            ));
        }
    }
    // At the bounds: exactly a week, starting within five years.
    for (what, start, end) in [
        ("exactly a week", format!("{}-03-01T10:00", year + 1), format!("{}-03-08T10:00", year + 1)),
        ("four years ahead", format!("{}-03-01T10:00", year + 4), format!("{}-03-01T12:00", year + 4)),
    ] {
        let answer = send(&olu, SCHEDULE, json!({ "input": input(&start, &end) })).await;
        if answer.body["data"]["scheduleMeetup"]["userErrors"] != json!([]) || answer.body.get("errors").is_some() {
            failures.push(format!("an event {what} ({start} to {end}) should be accepted: {}", answer.describe()));
        }
    }
    // Changing an event to 9999, and a series that starts there or runs for ever.
    let event = send(
        &olu,
        SCHEDULE,
        json!({ "input": input(&format!("{}-05-01T10:00", year + 1), &format!("{}-05-01T12:00", year + 1)) }),
    )
    .await;
    let event_id = event.body["data"]["scheduleMeetup"]["event"]["id"].clone();
    let mut moved = input("9999-12-31T22:00", "9999-12-31T23:00");
    moved["id"] = event_id;
    moved.as_object_mut().unwrap().remove("groupId");
    let answer = send(&olu, "mutation($input: UpdateMeetupInput!) { updateMeetup(input: $input) { event { startsAt } userErrors { field code message } } }", json!({ "input": moved })).await;
    if !protocol_problems(&answer).is_empty()
        || answer.body["data"]["updateMeetup"]["userErrors"].as_array().is_none_or(Vec::is_empty)
    {
        failures.push(format!("moving an event to 9999 should be refused with a userError: {}", answer.describe()));
    }
    const SERIES: &str = "mutation($input: ScheduleMeetupSeriesInput!) { scheduleMeetupSeries(input: $input) { events { id } userErrors { field code message } } }";
    let mut series = input("9999-12-02T10:00", "9999-12-02T12:00");
    series["recurrence"] = json!({ "frequency": "WEEKLY", "count": 10 });
    let before = app.count("SELECT COUNT(*) FROM meetup_events").await;
    let answer = send(&olu, SERIES, json!({ "input": series })).await;
    if !protocol_problems(&answer).is_empty()
        || answer.body["data"]["scheduleMeetupSeries"]["userErrors"].as_array().is_none_or(Vec::is_empty)
        || app.count("SELECT COUNT(*) FROM meetup_events").await != before
    {
        failures.push(format!(
            "a series starting in 9999 should be refused with a userError, writing nothing: {}",
            answer.describe()
        ));
    }
    let mut forever = input(&format!("{}-06-02T10:00", year + 1), &format!("{}-06-02T12:00", year + 1));
    forever["recurrence"] = json!({ "frequency": "WEEKLY", "until": "9999-12-31" });
    let answer = send(&olu, SERIES, json!({ "input": forever })).await;
    if !protocol_problems(&answer).is_empty() || answer.took > Duration::from_secs(10) {
        failures.push(format!("a weekly series until 9999: {}", answer.describe()));
    }
    assert!(failures.is_empty(), "meetup bounds:\n{}", failures.join("\n"));
}

async fn hostile_parallel_token_creation_stops_at_fifty(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let answers = join_all((0..60).map(|i| {
        let ada = ada.clone();
        async move {
            send(
                &ada,
                "mutation($input: CreateAccessTokenInput!) { createAccessToken(input: $input) { token userErrors { field code message } } }",
                json!({ "input": { "name": format!("script {i}") } }),
            )
            .await
        }
    }))
    .await;
    let mut created = 0;
    let mut limited = 0;
    let mut other = Vec::new();
    for answer in &answers {
        let payload = &answer.body["data"]["createAccessToken"];
        let codes: Vec<&str> =
            payload["userErrors"].as_array().into_iter().flatten().filter_map(|e| e["code"].as_str()).collect();
        if payload["token"].is_string() && codes.is_empty() && answer.body.get("errors").is_none() {
            created += 1;
        } else if codes == ["LIMIT_REACHED"] {
            limited += 1;
        } else {
            other.push(answer.describe());
        }
    }
    let stored = app.count("SELECT COUNT(*) FROM access_tokens WHERE revoked_at IS NULL").await;
    assert!(
        other.is_empty() && stored == 50 && created == 50 && limited == 10,
        "60 parallel createAccessToken: {created} answered with a token, {limited} with LIMIT_REACHED, {} otherwise; \
         {stored} tokens stored (expected exactly 50 stored, 10 LIMIT_REACHED). Others:\n{}",
        other.len(),
        other.join("\n")
    );
}

const SIGN_IN: &str =
    "mutation($input: SignInInput!) { signIn(input: $input) { token userErrors { field code message } } }";

/// Sign-in limited as by default, everything else generous.
const SIGN_IN_LIMITS: &str = "sign_in_account=10/900, sign_in_address=100000/900, register_address=100000/3600, \
     writes_member=100000/3600, preview_client=100000/60, graphql_cost_client=1000000000/60";

#[derive(Default, Debug)]
struct SignInTally {
    invalid: usize,
    limited: usize,
    other: Vec<String>,
}

fn user_error_codes(payload: &Value) -> Vec<String> {
    payload["userErrors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["code"].as_str().map(str::to_string))
        .collect()
}

fn tally(answers: &[Answer]) -> SignInTally {
    let mut tally = SignInTally::default();
    for answer in answers {
        let codes: Vec<&str> = answer.body["data"]["signIn"]["userErrors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["code"].as_str())
            .collect();
        let rate_limited = answer.body["errors"].as_array().into_iter().flatten().any(|e| {
            e["extensions"]["code"] == "RATE_LIMITED"
                && e["extensions"]["retryAfterSeconds"].as_u64().is_some_and(|s| s > 0)
        });
        if codes == ["INVALID_CREDENTIALS"] && answer.body.get("errors").is_none() {
            tally.invalid += 1;
        } else if rate_limited {
            tally.limited += 1;
        } else {
            tally.other.push(answer.describe());
        }
    }
    tally
}

fn assert_sign_in_tally(what: &str, tally: &SignInTally) {
    assert!(
        tally.other.is_empty() && (1..=10).contains(&tally.invalid),
        "{what}: {} answered INVALID_CREDENTIALS (expected 1 to 10: the password was checked at most 10 times), {} \
         RATE_LIMITED with retryAfterSeconds, {} otherwise:\n{}",
        tally.invalid,
        tally.limited,
        tally.other.len(),
        tally.other.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}

fn wrong_password(email: &str, i: usize) -> Value {
    json!({ "query": SIGN_IN, "variables": { "input": { "email": email, "password": format!("wrong password {i}") } } })
}

async fn hostile_parallel_wrong_passwords_are_limited_per_account(app: TestApp) {
    with_own_app(&app, &[("KETTLE_RATE_LIMITS", SIGN_IN_LIMITS)], |app| async move {
        app.member("ada@example.org", "Ada").await;
        let url = app.url("/graphql");
        let answers = join_all((0..100).map(|i| post_to(&app, &url, None, wrong_password("ada@example.org", i)))).await;
        let tally = tally(&answers);
        println!("100 parallel wrong passwords, one instance: {} checked, {} limited", tally.invalid, tally.limited);
        assert_sign_in_tally("100 parallel wrong passwords for one account", &tally);
        // Every attempt counts, so now even the right password waits.
        let right = post_to(&app, &url, None, json!({ "query": SIGN_IN, "variables": { "input": { "email": "ada@example.org", "password": PASSWORD } } })).await;
        assert!(right.has_code("RATE_LIMITED"), "after 10 failures the account is locked for a while, yet the right password got: {}", right.describe());

        // A success clears the count: 9 failures, a success, and then 10 more are checked.
        app.member("grace@example.org", "Grace").await;
        let attempt = |password: String| post_to(&app, &url, None, json!({ "query": SIGN_IN, "variables": { "input": { "email": "grace@example.org", "password": password } } }));
        for i in 0..9 {
            attempt(format!("wrong {i}")).await;
        }
        let right = attempt(PASSWORD.to_string()).await;
        assert!(right.body["data"]["signIn"]["token"].is_string(), "the right password after 9 failures: {}", right.describe());
        for i in 0..10 {
            let answer = attempt(format!("wrong again {i}")).await;
            let codes = user_error_codes(&answer.body["data"]["signIn"]);
            assert_eq!(codes, ["INVALID_CREDENTIALS"], "failure {} after a successful sign-in should be checked (the success clears the count): {}", i + 1, answer.describe());
        }
        let eleventh = attempt("wrong once more".into()).await;
        assert!(eleventh.has_code("RATE_LIMITED"), "the 11th failure after the success: {}", eleventh.describe());
    })
    .await;
}

async fn hostile_wrong_passwords_across_two_instances_share_one_limit(app: TestApp) {
    with_own_app(&app, &[("KETTLE_RATE_LIMITS", SIGN_IN_LIMITS)], |app| async move {
        app.member("ada@example.org", "Ada").await;
        let peer = Peer::start(&app).await;
        let urls = [app.url("/graphql"), peer.url("/graphql")];
        let answers = AssertUnwindSafe(join_all(
            (0..100).map(|i| post_to(&app, &urls[i % 2], None, wrong_password("ada@example.org", i))),
        ))
        .catch_unwind()
        .await;
        peer.stop().await;
        let answers = answers.unwrap_or_else(|p| std::panic::resume_unwind(p));
        let all = tally(&answers);
        println!("100 parallel wrong passwords, two instances: {} checked, {} limited", all.invalid, all.limited);
        if app.state().redis.is_some() {
            assert_sign_in_tally("100 parallel wrong passwords for one account over two instances sharing Redis", &all);
        } else {
            // Without Redis each instance counts in its own memory: the embedded mode is
            // one instance, and the README says a second one without Redis doubles the
            // allowance. Each instance must still hold its own limit exactly.
            for (name, half) in [("this instance", 0), ("the peer", 1)] {
                let own: Vec<_> = answers.iter().skip(half).step_by(2).cloned().collect();
                assert_sign_in_tally(
                    &format!("50 parallel wrong passwords for one account at {name}, without Redis"),
                    &tally(&own),
                );
            }
        }
    })
    .await;
}

async fn hostile_pathological_markdown_is_refused_or_stored_quickly(app: TestApp) {
    let ada = admin(&app, "ada@example.org", "Ada").await;
    let topic = create_topic(&ada, "Markdown").await;
    let max = kettle::case_studies::BODY_MAX_BYTES;
    let mut failures = Vec::new();
    for shape in ["> - ", ">", "1. "] {
        let source = shape.repeat(max / shape.len());
        let preview = send(&ada, "query($s: String!) { markdownPreview(source: $s) }", json!({ "s": source })).await;
        let ok = preview.body["data"]["markdownPreview"].is_string() && preview.body.get("errors").is_none();
        let refused = preview.has_code("BAD_USER_INPUT")
            && preview.body["errors"][0]["message"].as_str().is_some_and(|m| m.len() > 10);
        println!(
            "markdownPreview of {shape:?} × {}: {:.2} s, {}",
            max / shape.len(),
            preview.took.as_secs_f64(),
            if ok {
                "rendered"
            } else if refused {
                "refused"
            } else {
                "failed"
            }
        );
        if !(ok || refused) || preview.took > Duration::from_secs(5) {
            failures.push(format!(
                "markdownPreview of {shape:?} repeated to {} bytes: {}",
                source.len(),
                preview.describe()
            ));
        }
        let before = app.count("SELECT COUNT(*) FROM case_studies").await;
        let mut input = case_study(&format!("Shape {shape}"), &[&topic]);
        input["body"] = json!(source);
        let created = send(&ada, crate::case_studies::CREATE, json!({ "input": input })).await;
        let after = app.count("SELECT COUNT(*) FROM case_studies").await;
        let payload = &created.body["data"]["createCaseStudy"];
        let stored = payload["caseStudy"]["id"].is_string() && after == before + 1;
        let refused = payload["userErrors"].as_array().is_some_and(|e| {
            !e.is_empty()
                && e.iter().all(|e| e["field"] == "body" && e["message"].as_str().is_some_and(|m| m.len() > 10))
        }) && after == before;
        println!(
            "createCaseStudy with {shape:?}: {:.2} s, {}",
            created.took.as_secs_f64(),
            if stored {
                "stored"
            } else if refused {
                "refused"
            } else {
                "failed"
            }
        );
        if !(stored || refused) || created.took > Duration::from_secs(5) || !protocol_problems(&created).is_empty() {
            failures.push(format!(
                "createCaseStudy with {shape:?} repeated to {} bytes ({} case studies written): {}",
                source.len(),
                after - before,
                created.describe()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "pathological Markdown (each should be refused with a clear userError or stored, within 5 s):\n{}",
        failures.join("\n")
    );
    healthy(&app, "pathological Markdown").await;
}
