//! Artefacts through the API: sharing, editing, lineage, reuse records, the lists and
//! their plans, and search across case studies, artefacts and organisations.

use serde_json::{json, Value};
use sqlx::Row;

use crate::{
    case_studies::{admin, case_study, create_case_study, create_organisation, create_topic, PUBLISH},
    scenarios,
    support::{error_code, query_plan, user_errors, Backend, Client, Scenario, StatementLog, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        a_shared_artefact_is_found_reused_and_discussed,
        sharing_and_editing_keep_licences_versions_and_lineage,
        artefact_input_is_validated_and_changes_nothing,
        reuse_is_recorded_once_per_organisation,
        colleagues_tell_their_own_reuse_stories_under_one_record,
        simultaneous_reuse_records_are_all_counted,
        simultaneous_artefact_edits_save_exactly_one,
        an_artefact_keeps_every_version_and_compares_any_two,
        artefact_lists_filter_sort_and_page,
        the_artefact_list_is_served_by_an_index,
        artefact_lists_run_a_fixed_number_of_statements,
        search_covers_artefacts_and_narrows_by_topic_and_organisation,
    ]
}

pub(crate) const SHARE: &str = "mutation($input: CreateArtefactInput!) { createArtefact(input: $input) { artefact { id version title licence licenceName kind status descriptionHtml reuseCount viewerCanEdit organisation { slug } sharedBy { handle } topics { slug } caseStudies { title } adaptedFrom { title } } userErrors { field code message } } }";
const EDIT: &str = "mutation($input: UpdateArtefactInput!) { updateArtefact(input: $input) { artefact { id version title licence descriptionHtml adaptedFrom { title } } userErrors { field code message } } }";
const RECORD: &str = "mutation($input: RecordReuseInput!) { recordReuse(input: $input) { artefact { reuseCount reuses { organisation { slug } note } } userErrors { field code } } }";
const WITHDRAW: &str = "mutation($input: WithdrawReuseInput!) { withdrawReuse(input: $input) { artefact { reuseCount } userErrors { field code } } }";

/// Valid input for `createArtefact`; tests change what they test.
pub(crate) fn artefact(title: &str, topics: &[&str]) -> Value {
    json!({
        "title": title,
        "kind": "CODE",
        "description": "A **service** that texts residents the night before their collection.",
        "url": "https://github.com/example/reminders",
        "licence": "MIT",
        "status": "IN_USE",
        "topicIds": topics,
    })
}

/// Shares an artefact that must be valid; returns it as `SHARE` selects it.
pub(crate) async fn share(client: &Client, input: Value) -> Value {
    let data = client.data(SHARE, json!({ "input": input })).await;
    assert_eq!(data["createArtefact"]["userErrors"], json!([]), "{data}");
    data["createArtefact"]["artefact"].clone()
}

/// `input` as an edit of `id` made from `version`.
fn edit_of(input: &Value, id: &Value, version: i64) -> Value {
    let mut edit = input.clone();
    edit["id"] = id.clone();
    edit["version"] = json!(version);
    edit
}

/// The database id inside a global id.
pub(crate) fn number(type_name: &str, id: &Value) -> i64 {
    kettle::graphql::relay::parse_global_id_of(type_name, id.as_str().unwrap()).unwrap()
}

/// A well-formed id of a `type_name` that does not exist.
pub(crate) fn unknown(type_name: &str) -> String {
    kettle::graphql::relay::global_id(type_name, 9999).to_string()
}

async fn member_id(app: &TestApp, handle: &str) -> i64 {
    app.count(&format!("SELECT id FROM members WHERE handle = '{handle}'")).await
}

/// The outbox events of one kind, oldest first: (subject type, subject id, actor id, payload).
pub(crate) async fn events(app: &TestApp, kind: &str) -> Vec<(String, i64, Option<i64>, Value)> {
    let rows = sqlx::query(
        "SELECT subject_type, subject_id, actor_id, payload FROM outbox_events WHERE kind = $1 ORDER BY id",
    )
    .bind(kind)
    .fetch_all(&app.state().db.pool)
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            let payload: String = r.get("payload");
            (r.get("subject_type"), r.get("subject_id"), r.get("actor_id"), serde_json::from_str(&payload).unwrap())
        })
        .collect()
}

async fn merge_topic(curator: &Client, id: &str, into: &str) {
    let merged = curator
        .data(
            "mutation($id: ID!, $into: ID!) { mergeTopic(input: { id: $id, intoId: $into }) { userErrors { code } } }",
            json!({ "id": id, "into": into }),
        )
        .await;
    assert_eq!(merged["mergeTopic"]["userErrors"], json!([]));
}

fn titles(connection: &Value) -> Vec<String> {
    connection["edges"].as_array().unwrap().iter().map(|e| e["node"]["title"].as_str().unwrap().to_string()).collect()
}

async fn a_shared_artefact_is_found_reused_and_discussed(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Waste").await;
    let ada = app.member("ada@example.org", "Ada Lovelace").await;
    let (barset, barset_slug) = create_organisation(&ada, "Barsetshire Council").await;
    let grace = app.member("grace@example.org", "Grace Hopper").await;
    let (wessex, wessex_slug) = create_organisation(&grace, "Wessex Council").await;

    let mut story = case_study("Bin collection reminders", &[&topic]);
    story["organisationId"] = json!(barset);
    let story_id = create_case_study(&ada, story).await["id"].clone();
    ada.data(PUBLISH, json!({ "id": story_id })).await;
    let mut input = artefact("Reminder texting service", &[&topic]);
    input["organisationId"] = json!(barset);
    input["caseStudyIds"] = json!([story_id]);
    let shared = share(&ada, input).await;
    assert_eq!(shared["organisation"]["slug"], barset_slug.as_str());
    assert_eq!(shared["sharedBy"]["handle"], "ada-lovelace");
    assert_eq!(shared["caseStudies"], json!([{ "title": "Bin collection reminders" }]));
    assert_eq!(shared["version"], 1);
    let id = shared["id"].clone();

    // Grace finds it, with the case study it came from.
    const SEARCH: &str =
        "query($q: String!, $kind: SearchKind) { search(query: $q, kind: $kind) { node { __typename id } } }";
    let found = grace.data(SEARCH, json!({ "q": "reminders", "kind": "ARTEFACT" })).await;
    assert_eq!(found["search"], json!([{ "node": { "__typename": "Artefact", "id": id } }]));
    let everything = grace.data(SEARCH, json!({ "q": "reminders" })).await;
    let mut nodes: Vec<Value> = everything["search"].as_array().unwrap().iter().map(|h| h["node"].clone()).collect();
    nodes.sort_by_key(|n| n["__typename"].as_str().unwrap().to_string());
    assert_eq!(
        nodes,
        [json!({ "__typename": "Artefact", "id": id }), json!({ "__typename": "CaseStudy", "id": story_id })],
        "{everything}"
    );

    let useful = grace
        .data(
            "mutation($id: ID!) { markCaseStudyUseful(input: { id: $id, on: true }) { caseStudy { usefulCount } userErrors { code } } }",
            json!({ "id": story_id }),
        )
        .await;
    assert_eq!(useful["markCaseStudyUseful"]["caseStudy"]["usefulCount"], 1);
    let reused = grace
        .data(
            RECORD,
            json!({ "input": { "artefactId": id, "organisationId": wessex, "note": "We run it for Wessex now." } }),
        )
        .await;
    assert_eq!(reused["recordReuse"]["userErrors"], json!([]));
    assert_eq!(reused["recordReuse"]["artefact"]["reuseCount"], 1);
    let posted = grace
        .data(
            "mutation($input: PostCommentInput!) { postComment(input: $input) { comment { id } userErrors { field code } } }",
            json!({ "input": { "subjectId": id, "body": "Thanks @ada-lovelace, this saved us weeks." } }),
        )
        .await;
    assert_eq!(posted["postComment"]["userErrors"], json!([]));

    // What Ada sees.
    const SEEN: &str = "query($id: ID!) { node(id: $id) { ... on Artefact { reuseCount \
        reuses { organisation { slug } note recordedBy { handle } } commentCount \
        comments { edges { node { author { handle } bodyHtml } } } caseStudies { title } } } }";
    let seen = ada.data(SEEN, json!({ "id": id })).await["node"].clone();
    assert_eq!(seen["reuseCount"], 1);
    assert_eq!(
        seen["reuses"],
        json!([{ "organisation": { "slug": wessex_slug }, "note": "We run it for Wessex now.", "recordedBy": { "handle": "grace-hopper" } }])
    );
    assert_eq!(seen["commentCount"], 1);
    let comment = &seen["comments"]["edges"][0]["node"];
    assert_eq!(comment["author"]["handle"], "grace-hopper");
    let html = comment["bodyHtml"].as_str().unwrap();
    assert!(html.contains("<a href=\"/members/@ada-lovelace\" class=\"mention\""), "{html}");
    let story = ada
        .data(
            "query($id: ID!) { node(id: $id) { ... on CaseStudy { usefulCount artefactCount artefacts { title } } } }",
            json!({ "id": story_id }),
        )
        .await;
    assert_eq!(
        story["node"],
        json!({ "usefulCount": 1, "artefactCount": 1, "artefacts": [{ "title": "Reminder texting service" }] })
    );

    // The outbox holds one event of each kind, about the right things.
    let (ada_id, grace_id) = (member_id(&app, "ada-lovelace").await, member_id(&app, "grace-hopper").await);
    let artefact_id = number("Artefact", &id);
    let published = events(&app, "artefact.published").await;
    assert_eq!(published.len(), 1);
    assert_eq!((published[0].0.as_str(), published[0].1, published[0].2), ("Artefact", artefact_id, Some(ada_id)));
    let reuses = events(&app, "artefact.reused").await;
    assert_eq!(reuses.len(), 1);
    assert_eq!((reuses[0].1, reuses[0].2), (artefact_id, Some(grace_id)));
    assert_eq!(reuses[0].3["organisationId"], number("Organisation", &json!(wessex)));
    let comments = events(&app, "comment.posted").await;
    assert_eq!(comments.len(), 1);
    assert_eq!((comments[0].0.as_str(), comments[0].1, comments[0].2), ("Artefact", artefact_id, Some(grace_id)));
    let mentions = events(&app, "member.mentioned").await;
    assert_eq!(mentions.len(), 1, "{mentions:?}");
    assert_eq!((mentions[0].2, &mentions[0].3["memberId"]), (Some(grace_id), &json!(ada_id)));
}

async fn sharing_and_editing_keep_licences_versions_and_lineage(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Housing").await;
    let carol = app.member("carol@example.org", "Carol").await;
    let (barset, _) = create_organisation(&carol, "Barsetshire Council").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let dora = app.member("dora@example.org", "Dora").await;
    const JOIN: &str =
        "mutation($id: ID!) { requestToJoinOrganisation(input: { organisationId: $id }) { userErrors { code } } }";
    const DECIDE: &str = "mutation($input: DecideMembershipRequestInput!) { decideMembershipRequest(input: $input) { userErrors { code } } }";
    for member in [&ada, &dora] {
        member.data(JOIN, json!({ "id": barset })).await;
        let member_id = member.viewer_id().await.unwrap();
        carol
            .data(DECIDE, json!({ "input": { "organisationId": barset, "memberId": member_id, "approve": true } }))
            .await;
    }

    // Licences are stored as SPDX spells them.
    let mut input = artefact("Repairs booking", &[&topic]);
    input["licence"] = json!("ogl-uk-3.0");
    input["organisationId"] = json!(barset);
    let shared = share(&ada, input.clone()).await;
    assert_eq!(shared["licence"], "OGL-UK-3.0");
    assert_eq!(shared["licenceName"], "Open Government Licence v3.0");
    assert_eq!(shared["viewerCanEdit"], true);
    let id = shared["id"].clone();
    let stored: String =
        sqlx::query_scalar("SELECT licence FROM artefacts").fetch_one(&app.state().db.pool).await.unwrap();
    assert_eq!(stored, "OGL-UK-3.0");

    input["title"] = json!("Repairs booking, second edition");
    input["licence"] = json!(" mit ");
    let saved = ada.data(EDIT, json!({ "input": edit_of(&input, &id, 1) })).await;
    assert_eq!(saved["updateArtefact"]["userErrors"], json!([]));
    assert_eq!(saved["updateArtefact"]["artefact"]["version"], 2);
    assert_eq!(saved["updateArtefact"]["artefact"]["licence"], "MIT");

    // An edit still based on version 1 would overwrite the second: refused, nothing saved.
    input["title"] = json!("Stale title");
    let stale = ada.data(EDIT, json!({ "input": edit_of(&input, &id, 1) })).await;
    assert_eq!(user_errors(&stale["updateArtefact"]), vec![("version".into(), "CONFLICT".into())]);
    assert_eq!(stale["updateArtefact"]["artefact"]["title"], "Repairs booking, second edition");
    assert_eq!(app.count("SELECT version FROM artefacts").await, 2);

    // Strangers and plain members of the maintaining organisation may not edit; its
    // admins may.
    let stranger = app.member("stranger@example.org", "Stranger").await;
    input["title"] = json!("Taken over");
    for who in [&stranger, &dora] {
        let body = who.gql(EDIT, json!({ "input": edit_of(&input, &id, 2) })).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    const CAN_EDIT: &str = "query($id: ID!) { node(id: $id) { ... on Artefact { viewerCanEdit } } }";
    for (who, can) in [(&stranger, false), (&dora, false), (&carol, true), (&ada, true), (&app.anonymous(), false)] {
        assert_eq!(who.data(CAN_EDIT, json!({ "id": id })).await["node"]["viewerCanEdit"], can);
    }
    input["title"] = json!("Repairs booking, third edition");
    let by_admin = carol.data(EDIT, json!({ "input": edit_of(&input, &id, 2) })).await;
    assert_eq!(by_admin["updateArtefact"]["userErrors"], json!([]));
    assert_eq!(by_admin["updateArtefact"]["artefact"]["version"], 3);
    let title: String =
        sqlx::query_scalar("SELECT title FROM artefacts").fetch_one(&app.state().db.pool).await.unwrap();
    assert_eq!(title, "Repairs booking, third edition");

    // Lineage: adaptations point back to their origin, and never in a loop.
    let origin_input = artefact("Origin", &[&topic]);
    let origin = share(&ada, origin_input.clone()).await["id"].clone();
    let mut adapted_input = artefact("Adapted", &[&topic]);
    adapted_input["adaptedFromId"] = origin.clone();
    let adapted = share(&stranger, adapted_input.clone()).await;
    assert_eq!(adapted["adaptedFrom"], json!({ "title": "Origin" }));
    let adapted = adapted["id"].clone();
    let mut grandchild_input = artefact("Adapted again", &[&topic]);
    grandchild_input["adaptedFromId"] = adapted.clone();
    let grandchild = share(&ada, grandchild_input).await["id"].clone();
    const LINEAGE: &str =
        "query($id: ID!) { node(id: $id) { ... on Artefact { adaptedFrom { title } adaptations { title } } } }";
    assert_eq!(
        app.anonymous().data(LINEAGE, json!({ "id": origin })).await["node"],
        json!({ "adaptedFrom": null, "adaptations": [{ "title": "Adapted" }] })
    );
    assert_eq!(
        app.anonymous().data(LINEAGE, json!({ "id": adapted })).await["node"],
        json!({ "adaptedFrom": { "title": "Origin" }, "adaptations": [{ "title": "Adapted again" }] })
    );
    for (parent, why) in [(&adapted, "its own adaptation"), (&grandchild, "a later descendant"), (&origin, "itself")] {
        let mut looped = origin_input.clone();
        looped["adaptedFromId"] = parent.clone();
        let refused = ada.data(EDIT, json!({ "input": edit_of(&looped, &origin, 1) })).await;
        assert_eq!(
            user_errors(&refused["updateArtefact"]),
            vec![("adaptedFromId".into(), "INVALID".into())],
            "adapted from {why}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM artefacts WHERE adapted_from_id IS NULL").await, 2);
    assert_eq!(
        app.count(&format!("SELECT version FROM artefacts WHERE id = {}", number("Artefact", &origin))).await,
        1
    );
}

async fn artefact_input_is_validated_and_changes_nothing(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topics: Vec<String> = futures_util::future::join_all((0..6).map(|i| {
        let curator = curator.clone();
        async move { create_topic(&curator, &format!("Topic {i}")).await }
    }))
    .await;
    let ada = app.member("ada@example.org", "Ada").await;
    let (someone_elses, _) = create_organisation(&curator, "Not Ada's Council").await;
    let t = |n: usize| topics[..n].iter().map(String::as_str).collect::<Vec<_>>();
    let draft = create_case_study(&ada, case_study("Still a draft", &t(1))).await["id"].clone();
    let mut published = Vec::new();
    for i in 0..11 {
        let id = create_case_study(&ada, case_study(&format!("Story {i}"), &t(1))).await["id"].clone();
        ada.data(PUBLISH, json!({ "id": id })).await;
        published.push(id);
    }

    let cases: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (json!({ "title": " " }), vec![("title", "BLANK")]),
        (json!({ "title": "t".repeat(151) }), vec![("title", "TOO_LONG")]),
        (json!({ "url": "javascript:alert(1)" }), vec![("url", "INVALID")]),
        (json!({ "url": "ftp://example.org/reminders.zip" }), vec![("url", "INVALID")]),
        (json!({ "url": "" }), vec![("url", "BLANK")]),
        (json!({ "licence": "GPL" }), vec![("licence", "INVALID")]),
        (json!({ "licence": " " }), vec![("licence", "BLANK")]),
        (json!({ "description": "" }), vec![("description", "BLANK")]),
        (json!({ "description": "x".repeat(50 * 1024 + 1) }), vec![("description", "TOO_LONG")]),
        (json!({ "topicIds": [] }), vec![("topicIds", "INVALID")]),
        (json!({ "topicIds": t(6) }), vec![("topicIds", "INVALID")]),
        (json!({ "topicIds": [unknown("Topic")] }), vec![("topicIds", "NOT_FOUND")]),
        (json!({ "organisationId": someone_elses }), vec![("organisationId", "INVALID")]),
        (json!({ "organisationId": unknown("Organisation") }), vec![("organisationId", "NOT_FOUND")]),
        (json!({ "adaptedFromId": unknown("Artefact") }), vec![("adaptedFromId", "NOT_FOUND")]),
        (json!({ "adaptedFromId": "garbage" }), vec![("adaptedFromId", "NOT_FOUND")]),
        (json!({ "caseStudyIds": [draft] }), vec![("caseStudyIds", "NOT_FOUND")]),
        (json!({ "caseStudyIds": [unknown("CaseStudy")] }), vec![("caseStudyIds", "NOT_FOUND")]),
        (json!({ "caseStudyIds": published }), vec![("caseStudyIds", "INVALID")]),
        (
            json!({ "title": "", "licence": "GPL", "topicIds": [] }),
            vec![("title", "BLANK"), ("licence", "INVALID"), ("topicIds", "INVALID")],
        ),
    ];
    for (changes, expected) in cases {
        let mut input = artefact("Valid title", &t(1));
        for (key, value) in changes.as_object().unwrap() {
            input[key] = value.clone();
        }
        let body = ada.gql(SHARE, json!({ "input": input })).await;
        let expected: Vec<(String, String)> = expected.iter().map(|(f, c)| (f.to_string(), c.to_string())).collect();
        let summary: String = changes.to_string().chars().take(200).collect();
        assert_eq!(user_errors(&body["data"]["createArtefact"]), expected, "for {summary}");
        assert_eq!(body["data"]["createArtefact"]["artefact"], json!(null));
    }
    let body = app.anonymous().gql(SHARE, json!({ "input": artefact("Anonymous", &t(1)) })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    for table in ["artefacts", "artefact_topics", "artefact_case_studies"] {
        assert_eq!(app.count(&format!("SELECT COUNT(*) FROM {table}")).await, 0, "{table}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'artefact.published'").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM search_index WHERE kind = 'artefact'").await, 0);

    // The same input, within every limit, is fine: five topics, ten case studies, 50 KB.
    let mut input = artefact("Valid title", &t(5));
    input["caseStudyIds"] = json!(published[..10]);
    input["description"] = json!("x".repeat(50 * 1024));
    share(&ada, input).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM artefacts").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM artefact_topics").await, 5);
    assert_eq!(app.count("SELECT COUNT(*) FROM artefact_case_studies").await, 10);
}

async fn reuse_is_recorded_once_per_organisation(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Parking").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let (barset, _) = create_organisation(&ada, "Barsetshire Council").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let (wessex, wessex_slug) = create_organisation(&grace, "Wessex Council").await;
    let (mercia, mercia_slug) = create_organisation(&grace, "Mercia Council").await;
    let stranger = app.member("stranger@example.org", "Stranger").await;
    let mut input = artefact("Permit checker", &[&topic]);
    input["organisationId"] = json!(barset);
    let id = share(&ada, input).await["id"].clone();
    let record = |organisation: &str, note: &str| json!({ "input": { "artefactId": id, "organisationId": organisation, "note": note } });

    let first = grace.data(RECORD, record(&wessex, "We took the eligibility rules.")).await;
    assert_eq!(first["recordReuse"]["artefact"]["reuseCount"], 1);
    let again = grace.data(RECORD, record(&wessex, "We took the eligibility rules and the letters.")).await;
    assert_eq!(
        again["recordReuse"]["artefact"],
        json!({ "reuseCount": 1, "reuses": [{ "organisation": { "slug": wessex_slug }, "note": "We took the eligibility rules and the letters." }] }),
        "recording again edits the note"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM artefact_reuses").await, 1);

    let refusals = [
        (&stranger, record(&wessex, "Not mine to say."), ("organisationId", "INVALID")),
        (&ada, record(&barset, "We maintain it."), ("organisationId", "INVALID")),
        (&grace, record(&mercia, "  "), ("note", "BLANK")),
        (&grace, record(&mercia, &"n".repeat(1001)), ("note", "TOO_LONG")),
        (&grace, record(&unknown("Organisation"), "Nobody."), ("organisationId", "NOT_FOUND")),
    ];
    for (who, variables, (field, code)) in refusals {
        let refused = who.data(RECORD, variables).await;
        assert_eq!(user_errors(&refused["recordReuse"]), vec![(field.to_string(), code.to_string())]);
    }
    let unknown_artefact = grace
        .data(
            RECORD,
            json!({ "input": { "artefactId": unknown("Artefact"), "organisationId": mercia, "note": "Hm." } }),
        )
        .await;
    assert_eq!(user_errors(&unknown_artefact["recordReuse"]), vec![("artefactId".into(), "NOT_FOUND".into())]);
    let body = app.anonymous().gql(RECORD, record(&wessex, "Anonymous")).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(app.count("SELECT COUNT(*) FROM artefact_reuses").await, 1);

    let second = grace.data(RECORD, record(&mercia, "Mercia too.")).await;
    assert_eq!(second["recordReuse"]["artefact"]["reuseCount"], 2);
    let stories: Vec<&str> = second["recordReuse"]["artefact"]["reuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["organisation"]["slug"].as_str().unwrap())
        .collect();
    assert_eq!(stories, [wessex_slug.as_str(), mercia_slug.as_str()], "oldest first");
    let reused = events(&app, "artefact.reused").await;
    assert_eq!(
        reused.iter().map(|e| e.3["organisationId"].as_i64().unwrap()).collect::<Vec<_>>(),
        [number("Organisation", &json!(wessex)), number("Organisation", &json!(mercia))],
        "one event per organisation's first record"
    );

    let withdraw = |organisation: &str| json!({ "input": { "artefactId": id, "organisationId": organisation } });
    let refused = stranger.data(WITHDRAW, withdraw(&wessex)).await;
    assert_eq!(user_errors(&refused["withdrawReuse"]), vec![("organisationId".into(), "INVALID".into())]);
    let withdrawn = grace.data(WITHDRAW, withdraw(&wessex)).await;
    assert_eq!(withdrawn["withdrawReuse"], json!({ "artefact": { "reuseCount": 1 }, "userErrors": [] }));
    let withdrawn = grace.data(WITHDRAW, withdraw(&mercia)).await;
    assert_eq!(withdrawn["withdrawReuse"], json!({ "artefact": { "reuseCount": 0 }, "userErrors": [] }));
    let twice = grace.data(WITHDRAW, withdraw(&mercia)).await;
    assert_eq!(user_errors(&twice["withdrawReuse"]), vec![("organisationId".into(), "NOT_FOUND".into())]);
    assert_eq!(twice["withdrawReuse"]["artefact"]["reuseCount"], 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM artefact_reuses").await, 0);
    assert_eq!(app.count("SELECT reuse_count FROM artefacts").await, 0);
    assert_eq!(events(&app, "artefact.reused").await.len(), 2, "withdrawing announces nothing");

    // Recording after withdrawing is a first record again, and may point to the
    // organisation's own published case study (not to a draft).
    grace.data(RECORD, record(&wessex, "Back again.")).await;
    assert_eq!(app.count("SELECT reuse_count FROM artefacts").await, 1);
    let mut own = case_study("Permits in Wessex", &[&topic]);
    own["organisationId"] = json!(wessex);
    let own = create_case_study(&grace, own).await["id"].clone();
    let mut with_story = record(&wessex, "Our story.");
    with_story["input"]["caseStudyId"] = own.clone();
    let refused = grace.data(RECORD, with_story.clone()).await;
    assert_eq!(user_errors(&refused["recordReuse"]), vec![("caseStudyId".into(), "NOT_FOUND".into())]);
    grace.data(PUBLISH, json!({ "id": own })).await;
    let linked = grace.data(RECORD, with_story).await;
    assert_eq!(linked["recordReuse"]["userErrors"], json!([]));
    let seen = app
        .anonymous()
        .data(
            "query($id: ID!) { node(id: $id) { ... on Artefact { reuses { note caseStudy { title } } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        seen["node"]["reuses"],
        json!([{ "note": "Our story.", "caseStudy": { "title": "Permits in Wessex" } }])
    );
}

async fn colleagues_tell_their_own_reuse_stories_under_one_record(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Parking").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let (barset, _) = create_organisation(&ada, "Barsetshire Council").await;
    let mut input = artefact("Permit checker", &[&topic]);
    input["organisationId"] = json!(barset);
    let id = share(&ada, input).await["id"].clone();
    // Grace runs Wessex; Bea is her colleague there.
    let grace = app.member("grace@example.org", "Grace").await;
    let (wessex, _) = create_organisation(&grace, "Wessex Council").await;
    let bea = app.member("bea@example.org", "Bea").await;
    const JOIN: &str =
        "mutation($id: ID!) { requestToJoinOrganisation(input: { organisationId: $id }) { userErrors { code } } }";
    const DECIDE: &str = "mutation($input: DecideMembershipRequestInput!) { decideMembershipRequest(input: $input) { userErrors { code } } }";
    bea.data(JOIN, json!({ "id": wessex })).await;
    let bea_id = bea.viewer_id().await.unwrap();
    grace.data(DECIDE, json!({ "input": { "organisationId": wessex, "memberId": bea_id, "approve": true } })).await;

    const STORIES: &str = "mutation($input: RecordReuseInput!) { recordReuse(input: $input) { artefact { reuseCount \
        reuses { note recordedBy { handle } stories { note member { handle } } } } userErrors { field code } } }";
    let record = |note: &str| json!({ "input": { "artefactId": id, "organisationId": wessex, "note": note } });
    grace.data(STORIES, record("We took the eligibility rules.")).await;
    // Bea records it too: her story joins Grace's, which stays as Grace wrote it.
    let data = bea.data(STORIES, record("I reused the letters for our residents.")).await;
    assert_eq!(
        data["recordReuse"]["artefact"],
        json!({ "reuseCount": 1, "reuses": [{
            "note": "We took the eligibility rules.", "recordedBy": { "handle": "grace" },
            "stories": [
                { "note": "We took the eligibility rules.", "member": { "handle": "grace" } },
                { "note": "I reused the letters for our residents.", "member": { "handle": "bea" } },
            ],
        }] })
    );
    // Telling hers again edits only hers; Grace editing hers keeps the record in step.
    bea.data(STORIES, record("I reused the letters, and the FAQ.")).await;
    let data = grace.data(STORIES, record("We took the eligibility rules and the tests.")).await;
    let reuse = &data["recordReuse"]["artefact"]["reuses"][0];
    assert_eq!(reuse["note"], "We took the eligibility rules and the tests.");
    let notes: Vec<&str> = reuse["stories"].as_array().unwrap().iter().map(|s| s["note"].as_str().unwrap()).collect();
    assert_eq!(notes, ["We took the eligibility rules and the tests.", "I reused the letters, and the FAQ."]);
    assert_eq!(app.count("SELECT COUNT(*) FROM artefact_reuse_stories").await, 2);
    assert_eq!(events(&app, "artefact.reused").await.len(), 1, "one record, announced once");
    // Withdrawing the record takes its stories with it.
    const WITHDRAW_ONE: &str =
        "mutation($input: WithdrawReuseInput!) { withdrawReuse(input: $input) { userErrors { code } } }";
    bea.data(WITHDRAW_ONE, json!({ "input": { "artefactId": id, "organisationId": wessex } })).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM artefact_reuse_stories").await, 0);
    assert_eq!(app.count("SELECT reuse_count FROM artefacts").await, 0);
}

/// Organisations recording (and withdrawing) reuse at the same moment are all counted:
/// `reuse_count` always equals the number of records.
async fn simultaneous_reuse_records_are_all_counted(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Planning").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let id = share(&ada, artefact("Planning portal", &[&topic])).await["id"].clone();
    let grace = app.member("grace@example.org", "Grace").await;
    let mut organisations = Vec::new();
    for i in 0..8 {
        organisations.push(create_organisation(&grace, &format!("Council {i}")).await.0);
    }
    let all_at_once = |mutation: &'static str, organisations: Vec<String>| {
        let (grace, id) = (grace.clone(), id.clone());
        futures_util::future::join_all(organisations.into_iter().map(move |organisation| {
            let (grace, id) = (grace.clone(), id.clone());
            async move {
                let input = json!({ "artefactId": id, "organisationId": organisation, "note": "Reused." });
                let mut input = json!({ "input": input });
                if mutation == WITHDRAW {
                    input["input"].as_object_mut().unwrap().remove("note");
                }
                grace.data(mutation, input).await
            }
        }))
    };
    let counted = || async {
        (
            app.count("SELECT reuse_count FROM artefacts").await,
            app.count("SELECT COUNT(*) FROM artefact_reuses").await,
            app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'artefact.reused'").await,
        )
    };
    all_at_once(RECORD, organisations.clone()).await;
    assert_eq!(counted().await, (8, 8, 8), "(reuse_count, records, events)");
    // One organisation recording several times at once is still one record.
    let results = all_at_once(RECORD, vec![organisations[0].clone(); 4]).await;
    assert!(results.iter().all(|r| r["recordReuse"]["userErrors"] == json!([])), "{results:?}");
    assert_eq!(counted().await, (8, 8, 8), "(reuse_count, records, events)");
    all_at_once(WITHDRAW, organisations[..5].to_vec()).await;
    assert_eq!(counted().await, (3, 3, 8), "(reuse_count, records, events)");
    let results = all_at_once(WITHDRAW, vec![organisations[5].clone(); 4]).await;
    let withdrawn = results.iter().filter(|r| r["withdrawReuse"]["userErrors"] == json!([])).count();
    assert_eq!(withdrawn, 1, "{results:?}");
    assert_eq!(counted().await, (2, 2, 8), "(reuse_count, records, events)");
}

async fn simultaneous_artefact_edits_save_exactly_one(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Benefits").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let input = artefact("Original", &[&topic]);
    let id = share(&ada, input.clone()).await["id"].clone();
    let edits = (0..8).map(|i| {
        let ada = ada.clone();
        let mut edit = edit_of(&input, &id, 1);
        edit["title"] = json!(format!("Edit {i}"));
        async move { ada.data(EDIT, json!({ "input": edit })).await }
    });
    let results = futures_util::future::join_all(edits).await;
    let saved = results.iter().filter(|r| r["updateArtefact"]["userErrors"] == json!([])).count();
    let conflicts = results
        .iter()
        .filter(|r| user_errors(&r["updateArtefact"]) == vec![("version".into(), "CONFLICT".into())])
        .count();
    assert_eq!((saved, conflicts), (1, 7), "{results:?}");
    assert_eq!(app.count("SELECT version FROM artefacts").await, 2);
    // The one save kept the version it replaced, once.
    assert_eq!(app.count("SELECT COUNT(*) FROM artefact_revisions WHERE version = 1").await, 1);
}

/// Every save keeps the version it replaces in full, with the note its editor wrote; anyone
/// reads any version's text and compares any two, word by word.
async fn an_artefact_keeps_every_version_and_compares_any_two(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Waste").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let input = artefact("Bin reminders", &[&topic]);
    let id = share(&ada, input.clone()).await["id"].clone();
    let saved = |data: &Value| {
        assert_eq!(data["updateArtefact"]["userErrors"], json!([]), "{data}");
        data["updateArtefact"]["artefact"]["version"].as_i64().unwrap()
    };
    let mut second = edit_of(&input, &id, 1);
    second["description"] = json!("A **service** that texts and emails residents the night before their collection.");
    second["licence"] = json!("Apache-2.0");
    second["status"] = json!("DEPRECATED");
    second["changeNote"] = json!("Now sends emails too");
    assert_eq!(saved(&ada.data(EDIT, json!({ "input": second })).await), 2);
    let mut third = edit_of(&second, &id, 2);
    third["title"] = json!("Bin day reminders");
    third.as_object_mut().unwrap().remove("changeNote");
    assert_eq!(saved(&ada.data(EDIT, json!({ "input": third })).await), 3);

    // A note is one line of at most 300 characters, and a stale edit is a conflict:
    // neither saves anything or keeps a revision.
    for (note, code) in [("x".repeat(301), "TOO_LONG"), ("Two\nlines".to_string(), "INVALID")] {
        let mut bad = edit_of(&third, &id, 3);
        bad["changeNote"] = json!(note);
        let data = ada.data(EDIT, json!({ "input": bad })).await;
        assert_eq!(user_errors(&data["updateArtefact"]), vec![("changeNote".into(), code.into())]);
    }
    let stale = ada.data(EDIT, json!({ "input": edit_of(&third, &id, 1) })).await;
    assert_eq!(user_errors(&stale["updateArtefact"]), vec![("version".into(), "CONFLICT".into())]);
    assert_eq!(app.count("SELECT version FROM artefacts").await, 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM artefact_revisions").await, 2);

    // Anyone sees every version, newest first, with its note, its saver and its text.
    const VERSIONS: &str = "query($id: ID!) { node(id: $id) { ... on Artefact { versions { version title changeNote \
        current savedBy { handle } text { title kind description url licence status } } } } }";
    let data = grace.data(VERSIONS, json!({ "id": id })).await;
    let versions = data["node"]["versions"].as_array().unwrap();
    let summary: Vec<(i64, &str, &str, bool)> = versions
        .iter()
        .map(|v| {
            let text = |name: &str| v[name].as_str().unwrap();
            (v["version"].as_i64().unwrap(), text("title"), text("changeNote"), v["current"].as_bool().unwrap())
        })
        .collect();
    assert_eq!(
        summary,
        [
            (3, "Bin day reminders", "", true),
            (2, "Bin reminders", "Now sends emails too", false),
            (1, "Bin reminders", "", false)
        ]
    );
    assert!(versions.iter().all(|v| v["savedBy"]["handle"] == "ada"), "{versions:?}");
    assert_eq!(
        versions[2]["text"],
        json!({
            "title": "Bin reminders", "kind": "CODE", "description": input["description"],
            "url": "https://github.com/example/reminders", "licence": "MIT", "status": "IN_USE",
        })
    );
    assert_eq!(
        (versions[1]["text"]["licence"].as_str(), versions[1]["text"]["status"].as_str()),
        (Some("Apache-2.0"), Some("DEPRECATED"))
    );

    const COMPARE: &str = "query($id: ID!, $from: Int!, $to: Int!) { node(id: $id) { ... on Artefact { \
        compareVersions(from: $from, to: $to) { from to title { change text } description { change text } \
        url { change text } licence { change text } kind status } } } }";
    let compare = |from: i64, to: i64| json!({ "id": id, "from": from, "to": to });
    let data = grace.data(COMPARE, compare(1, 2)).await;
    let diff = &data["node"]["compareVersions"];
    assert_eq!(diff["title"], json!([{ "change": "UNCHANGED", "text": "Bin reminders" }]));
    assert_eq!(
        diff["licence"],
        json!([{ "change": "REMOVED", "text": "MIT" }, { "change": "ADDED", "text": "Apache-2.0" }])
    );
    assert_eq!(
        (diff["kind"].clone(), diff["status"].clone()),
        (json!(["CODE", "CODE"]), json!(["IN_USE", "DEPRECATED"]))
    );
    assert_eq!(diff["url"], json!([{ "change": "UNCHANGED", "text": "https://github.com/example/reminders" }]));
    let changed = |parts: &Value, change: &str| -> String {
        let parts = parts.as_array().unwrap().iter().filter(|p| p["change"] == change);
        parts.map(|p| p["text"].as_str().unwrap()).collect()
    };
    assert_eq!(changed(&diff["description"], "ADDED").trim(), "and emails", "{diff}");
    assert_eq!(changed(&diff["description"], "REMOVED"), "", "{diff}");
    // From the newest back to the oldest works too; a version that does not exist
    // compares to nothing.
    let back = grace.data(COMPARE, compare(3, 1)).await;
    assert_eq!(changed(&back["node"]["compareVersions"]["title"], "REMOVED").trim(), "day", "{back}");
    assert!(grace.data(COMPARE, compare(1, 99)).await["node"]["compareVersions"].is_null());

    // Each kept version says who replaced it.
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM artefact_revisions r JOIN members m ON m.id = r.edited_by WHERE m.handle = 'ada'"
        )
        .await,
        2
    );
}

async fn artefact_lists_filter_sort_and_page(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let bins = create_topic(&curator, "Bins").await;
    let parks = create_topic(&curator, "Parks").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let (barset, barset_slug) = create_organisation(&ada, "Barsetshire Council").await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut input = artefact(&format!("Artefact {i}"), &[if i % 3 == 0 { &bins } else { &parks }]);
        input["kind"] = json!(if i % 2 == 0 { "CODE" } else { "DATASET" });
        input["status"] = json!(if i < 4 { "IN_USE" } else { "EXPERIMENTAL" });
        if i < 3 {
            input["organisationId"] = json!(barset);
        }
        ids.push(share(&ada, input).await["id"].clone());
    }
    // Reused by three, two, one and one organisations: 1, 4, then 5 and 2 (newest first
    // among equals), then the rest newest first.
    let grace = app.member("grace@example.org", "Grace").await;
    let mut organisations = Vec::new();
    for name in ["Wessex", "Mercia", "Northumbria"] {
        organisations.push(create_organisation(&grace, &format!("{name} Council")).await.0);
    }
    for (artefact, times) in [(1, 3), (4, 2), (2, 1), (5, 1)] {
        for organisation in &organisations[..times] {
            let input = json!({ "artefactId": ids[artefact], "organisationId": organisation, "note": "Reused." });
            grace.data(RECORD, json!({ "input": input })).await;
        }
    }

    const LIST: &str = "query($first: Int, $after: String, $last: Int, $before: String, $kind: ArtefactKind, $status: ArtefactStatus, $topic: String, $organisation: String, $sort: ArtefactSort! = NEWEST) { artefacts(first: $first, after: $after, last: $last, before: $before, kind: $kind, status: $status, topic: $topic, organisation: $organisation, sort: $sort) { edges { node { title reuseCount } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";
    let anon = app.anonymous();
    let list = |variables: Value| {
        let anon = anon.clone();
        async move { titles(&anon.data(LIST, variables).await["artefacts"]) }
    };
    let named = |numbers: &[usize]| numbers.iter().map(|i| format!("Artefact {i}")).collect::<Vec<_>>();
    assert_eq!(list(json!({})).await, named(&[6, 5, 4, 3, 2, 1, 0]));
    assert_eq!(list(json!({ "kind": "CODE" })).await, named(&[6, 4, 2, 0]));
    assert_eq!(list(json!({ "kind": "DATASET" })).await, named(&[5, 3, 1]));
    assert_eq!(list(json!({ "kind": "RESEARCH" })).await, named(&[]));
    assert_eq!(list(json!({ "status": "IN_USE" })).await, named(&[3, 2, 1, 0]));
    assert_eq!(list(json!({ "status": "EXPERIMENTAL" })).await, named(&[6, 5, 4]));
    assert_eq!(list(json!({ "topic": "bins" })).await, named(&[6, 3, 0]));
    assert_eq!(list(json!({ "topic": "parks" })).await, named(&[5, 4, 2, 1]));
    assert_eq!(list(json!({ "organisation": barset_slug })).await, named(&[2, 1, 0]));
    assert_eq!(list(json!({ "kind": "CODE", "status": "IN_USE", "topic": "bins" })).await, named(&[0]));
    assert_eq!(list(json!({ "topic": "no-such-topic" })).await, named(&[]));
    assert_eq!(list(json!({ "organisation": "no-such-council" })).await, named(&[]));
    assert_eq!(list(json!({ "sort": "MOST_REUSED", "kind": "DATASET" })).await, named(&[1, 5, 3]));
    assert_eq!(list(json!({ "sort": "MOST_REUSED", "topic": "parks" })).await, named(&[1, 4, 5, 2]));
    // A merged topic's address lists what moved to the topic it was merged into.
    let green = create_topic(&curator, "Green spaces").await;
    merge_topic(&curator, &parks, &green).await;
    assert_eq!(list(json!({ "topic": "green-spaces" })).await, named(&[5, 4, 2, 1]));
    assert_eq!(list(json!({ "topic": "parks" })).await, named(&[5, 4, 2, 1]));

    // Paging forwards and backwards, two at a time, sees each artefact once, in order.
    for (sort, expected) in [("NEWEST", named(&[6, 5, 4, 3, 2, 1, 0])), ("MOST_REUSED", named(&[1, 4, 5, 2, 6, 3, 0]))]
    {
        let (mut forwards, mut after) = (Vec::new(), Value::Null);
        loop {
            let page = anon.data(LIST, json!({ "sort": sort, "first": 2, "after": after })).await["artefacts"].clone();
            forwards.extend(titles(&page));
            after = page["pageInfo"]["endCursor"].clone();
            if page["pageInfo"]["hasNextPage"] == false {
                break;
            }
            assert!(forwards.len() < 10, "{sort}: paging does not end: {forwards:?}");
        }
        assert_eq!(forwards, expected, "{sort} forwards");
        let (mut backwards, mut before) = (Vec::new(), Value::Null);
        loop {
            let page = anon.data(LIST, json!({ "sort": sort, "last": 2, "before": before })).await["artefacts"].clone();
            let mut titles = titles(&page);
            titles.extend(backwards);
            backwards = titles;
            before = page["pageInfo"]["startCursor"].clone();
            if page["pageInfo"]["hasPreviousPage"] == false {
                break;
            }
            assert!(backwards.len() < 10, "{sort}: paging does not end: {backwards:?}");
        }
        assert_eq!(backwards, expected, "{sort} backwards");
    }
}

/// The artefact list is served by an index on both databases, whatever it is narrowed by
/// and however it is sorted: no full scan of artefacts and no sort of the result. The one
/// exception is SQLite's newest-first list without a filter, which walks the table's own
/// b-tree in id (rowid) order and stops at the limit: PostgreSQL's `artefacts_pkey` walk.
async fn the_artefact_list_is_served_by_an_index(app: TestApp) {
    use kettle::artefacts::{ArtefactKind, ArtefactSort, ArtefactStatus, Filter};

    let none = Filter::default();
    let cases = [
        (ArtefactSort::Newest, none, "artefacts_pkey"),
        (ArtefactSort::Newest, Filter { kind: Some(ArtefactKind::Dataset), ..none }, "artefacts_by_kind"),
        (ArtefactSort::Newest, Filter { status: Some(ArtefactStatus::Deprecated), ..none }, "artefacts_by_status"),
        (ArtefactSort::Newest, Filter { organisation_id: Some(1), ..none }, "artefacts_by_organisation"),
        (ArtefactSort::MostReused, none, "artefacts_by_reuse"),
    ];
    for (sort, filter, wanted) in cases {
        let first_page = kettle::db::Keyset { after: None, before: None, forward: true, fetch: 21 };
        let sql = kettle::artefacts::list_sql(sort, &first_page, &filter);
        let plan = query_plan(&app, &sql, |query| {
            query
                .bind(filter.kind.map(ArtefactKind::as_str))
                .bind(filter.status.map(ArtefactStatus::as_str))
                .bind(filter.topic_id)
                .bind(filter.organisation_id)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(20i64)
        })
        .await;
        let text = plan.join("\n");
        eprintln!("{} plan, {sort:?} with {filter:?}:\n{text}", app.backend().name());
        let rowid_walk = matches!(app.backend(), Backend::Sqlite) && wanted == "artefacts_pkey";
        if !text.contains(wanted) && !rowid_walk {
            eprintln!("(not {wanted}, but another plan)");
        }
        assert!(rowid_walk || text.contains("artefacts_"), "no index of artefacts is used: {text}");
        assert!(!text.contains("Seq Scan on artefacts"), "{text}");
        assert!(
            plan.iter().all(|line| !line.starts_with("SCAN a") || line.contains("USING ") || rowid_walk),
            "a full scan of artefacts: {text}"
        );
        assert!(
            !text.contains("USE TEMP B-TREE FOR ORDER BY") && !text.contains("Sort Key"),
            "the result is sorted after the fact: {text}"
        );
    }
}

/// Counts the SQL statements an artefact list runs for pages of 10, 50 and 100 artefacts
/// with their topics, organisation, who shared them and comment counts: the count must
/// not grow with the page (see `support::StatementLog`).
async fn artefact_lists_run_a_fixed_number_of_statements(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topics = [create_topic(&curator, "Bins").await, create_topic(&curator, "Parks").await];
    let mut members = Vec::new();
    let mut organisations = Vec::new();
    for i in 0..4 {
        let member = app.member(&format!("sharer{i}@example.org"), &format!("Sharer {i}")).await;
        organisations.push(create_organisation(&member, &format!("Council {i}")).await.0);
        members.push(member);
    }
    for i in 0..100 {
        let mut input = artefact(&format!("Artefact {i}"), &[&topics[0], &topics[1]]);
        input["organisationId"] = json!(organisations[i % 4]);
        let id = share(&members[i % 4], input).await["id"].as_str().unwrap().to_string();
        if i % 3 == 0 {
            crate::comments::post(&members[(i + 1) % 4], &id, None, "We use this.").await;
        }
    }

    let mut log = StatementLog::start(&app).await;
    const LIST: &str = "query($n: Int!) { artefacts(first: $n) { edges { node { title kind licence licenceName \
        reuseCount commentCount topics { name } organisation { name slug } sharedBy { handle displayName } } } } }";
    let counts = log
        .counts_for_page_sizes(LIST, &[10, 50, 100], |n, body| {
            let nodes: Vec<&Value> =
                body["data"]["artefacts"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]).collect();
            assert_eq!(nodes.len(), n, "{body}");
            for node in nodes {
                let i: usize = node["title"].as_str().unwrap().trim_start_matches("Artefact ").parse().unwrap();
                assert_eq!(node["commentCount"], if i % 3 == 0 { 1 } else { 0 }, "{node}");
                assert_eq!(node["topics"].as_array().unwrap().len(), 2, "{node}");
                assert_eq!(node["organisation"]["name"], format!("Council {}", i % 4), "{node}");
                assert_eq!(node["sharedBy"]["handle"], format!("sharer-{}", i % 4), "{node}");
            }
        })
        .await;
    log.stop().await;
    eprintln!("statements for 10, 50, 100 artefacts: {counts:?}");
    assert!(counts.iter().all(|c| *c == counts[0]), "the count grew with the page: {counts:?}");
    assert!(counts[0] <= 4, "a list with topics, organisation, sharers and counts needs few statements: {counts:?}");
}

async fn search_covers_artefacts_and_narrows_by_topic_and_organisation(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let bins = create_topic(&curator, "Bins").await;
    let parks = create_topic(&curator, "Parks").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let (barset, barset_slug) = create_organisation(&ada, "Barsetshire Recycling Partnership").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let (wessex, wessex_slug) = create_organisation(&grace, "Wessex Recycling Partnership").await;
    create_organisation(&grace, "Mercia Council").await;

    for (client, title, topic, organisation, publish) in [
        (&ada, "Recycling reminders", &bins, &barset, true),
        (&grace, "Recycling in parks", &parks, &wessex, true),
        (&ada, "Recycling draft plans", &bins, &barset, false),
    ] {
        let mut input = case_study(title, &[topic]);
        input["organisationId"] = json!(organisation);
        let id = create_case_study(client, input).await["id"].clone();
        if publish {
            client.data(PUBLISH, json!({ "id": id })).await;
        }
    }
    let mut signage = Value::Null;
    for (client, title, topics, organisation) in [
        (&ada, "Recycling app", vec![bins.as_str()], Some(&barset)),
        (&ada, "Recycling signs", vec![parks.as_str()], None),
        (&grace, "Recycling dataset", vec![bins.as_str(), parks.as_str()], Some(&wessex)),
    ] {
        let mut input = artefact(title, &topics);
        input["organisationId"] = json!(organisation);
        let shared = share(client, input.clone()).await;
        if title == "Recycling signs" {
            signage = edit_of(&input, &shared["id"], 1);
        }
    }

    const SEARCH: &str = "query($q: String!, $kind: SearchKind, $topic: String, $organisation: String) { search(query: $q, kind: $kind, topic: $topic, organisation: $organisation) { snippet node { __typename ... on CaseStudy { title } ... on Artefact { title } ... on Organisation { name } } } }";
    let anon = app.anonymous();
    let found = |variables: Value| {
        let anon = anon.clone();
        async move {
            let data = anon.data(SEARCH, variables).await;
            let mut hits: Vec<String> = data["search"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    let node = &h["node"];
                    let name = node["title"].as_str().or(node["name"].as_str()).unwrap();
                    format!("{}: {name}", node["__typename"].as_str().unwrap())
                })
                .collect();
            hits.sort();
            hits
        }
    };
    let (cs, a, o) = (
        |t: &str| format!("CaseStudy: {t}"),
        |t: &str| format!("Artefact: {t}"),
        |t: &str| format!("Organisation: {t}"),
    );
    let sorted = |mut list: Vec<String>| {
        list.sort();
        list
    };
    assert_eq!(
        found(json!({ "q": "recycling" })).await,
        sorted(vec![
            a("Recycling app"),
            a("Recycling dataset"),
            a("Recycling signs"),
            cs("Recycling in parks"),
            cs("Recycling reminders"),
            o("Barsetshire Recycling Partnership"),
            o("Wessex Recycling Partnership"),
        ]),
        "everything published, no draft"
    );
    assert_eq!(
        found(json!({ "q": "recycling", "kind": "ARTEFACT" })).await,
        sorted(vec![a("Recycling app"), a("Recycling dataset"), a("Recycling signs")])
    );
    assert_eq!(
        found(json!({ "q": "recycling", "topic": "bins" })).await,
        sorted(vec![a("Recycling app"), a("Recycling dataset"), cs("Recycling reminders")])
    );
    assert_eq!(
        found(json!({ "q": "recycling", "topic": "parks" })).await,
        sorted(vec![a("Recycling dataset"), a("Recycling signs"), cs("Recycling in parks")])
    );
    assert_eq!(
        found(json!({ "q": "recycling", "organisation": barset_slug })).await,
        sorted(vec![a("Recycling app"), cs("Recycling reminders"), o("Barsetshire Recycling Partnership")])
    );
    assert_eq!(
        found(json!({ "q": "recycling", "organisation": wessex_slug })).await,
        sorted(vec![a("Recycling dataset"), cs("Recycling in parks"), o("Wessex Recycling Partnership")])
    );
    assert_eq!(
        found(json!({ "q": "recycling", "organisation": wessex_slug, "topic": "bins" })).await,
        vec![a("Recycling dataset")]
    );
    assert_eq!(
        found(json!({ "q": "recycling", "topic": "bins", "kind": "CASE_STUDY" })).await,
        vec![cs("Recycling reminders")]
    );
    assert_eq!(found(json!({ "q": "recycling", "topic": "no-such-topic" })).await, Vec::<String>::new());
    assert_eq!(found(json!({ "q": "recycling", "organisation": "mercia-council" })).await, Vec::<String>::new());
    assert_eq!(found(json!({ "q": "recycling", "organisation": "no-such-council" })).await, Vec::<String>::new());

    // Edits reach the index, and the description is searched as well as the title.
    signage["title"] = json!("Recycling wayfinding");
    signage["description"] = json!("Signs for <script>bottle banks</script> in every park.");
    let edited = ada.data(EDIT, json!({ "input": signage })).await;
    assert_eq!(edited["updateArtefact"]["userErrors"], json!([]));
    assert_eq!(found(json!({ "q": "wayfinding" })).await, vec![a("Recycling wayfinding")]);
    assert_eq!(found(json!({ "q": "signs" })).await, vec![a("Recycling wayfinding")], "stemmed, from the description");
    let hits = anon.data(SEARCH, json!({ "q": "bottle" })).await;
    let snippet = hits["search"][0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("<mark>bottle</mark>") && !snippet.contains("<script"), "{snippet}");

    // A merged topic's address finds what moved to the topic it was merged into.
    let green = create_topic(&curator, "Green spaces").await;
    merge_topic(&curator, &parks, &green).await;
    for slug in ["parks", "green-spaces"] {
        assert_eq!(
            found(json!({ "q": "recycling", "topic": slug })).await,
            sorted(vec![a("Recycling dataset"), a("Recycling wayfinding"), cs("Recycling in parks")]),
            "{slug}, after the merge"
        );
    }
}
