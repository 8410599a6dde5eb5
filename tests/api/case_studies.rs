//! The knowledge core through the API: organisations, topics and case studies.

use serde_json::{json, Value};

use crate::{
    scenarios,
    support::{error_code, query_plan, user_errors, Backend, Client, Scenario, StatementLog, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        organisations_are_created_and_joined_with_approval,
        topics_are_curated_by_moderators,
        drafts_are_seen_only_by_their_authors,
        edits_keep_revisions_and_refuse_stale_versions,
        history_keeps_every_version_with_its_note_and_compares_any_two,
        a_draft_never_published_can_be_deleted_by_who_started_it,
        simultaneous_edits_of_one_version_save_exactly_one,
        case_study_input_is_validated_and_changes_nothing,
        markdown_is_sanitised_on_write_and_mentions_linked,
        images_in_markdown_show_as_links_and_their_descriptions_are_searchable_words,
        published_lists_filter_and_page,
        simultaneous_organisations_with_one_name_get_distinct_slugs,
        case_study_lists_run_a_fixed_number_of_statements,
        search_finds_published_work_by_relevance,
        members_mark_useful_bookmark_and_register_interest,
        the_case_study_list_is_served_by_an_index,
        a_page_deep_in_the_list_is_found_through_the_index,
        counts_on_the_row_follow_every_change,
    ]
}

pub(crate) async fn admin(app: &TestApp, email: &str, name: &str) -> Client {
    let client = app.member(email, name).await;
    app.execute_sql(&format!("UPDATE members SET role = 'admin' WHERE email_normalized = '{email}'")).await;
    client
}

pub(crate) async fn create_topic(client: &Client, name: &str) -> String {
    let data = client
        .data(
            "mutation($input: CreateTopicInput!) { createTopic(input: $input) { topic { id } userErrors { code } } }",
            json!({ "input": { "name": name } }),
        )
        .await;
    data["createTopic"]["topic"]["id"].as_str().unwrap_or_else(|| panic!("{data}")).to_string()
}

pub(crate) async fn create_organisation(client: &Client, name: &str) -> (String, String) {
    let data = client
        .data(
            "mutation($input: CreateOrganisationInput!) { createOrganisation(input: $input) { organisation { id slug } userErrors { field code } } }",
            json!({ "input": { "name": name, "kind": "COUNCIL", "website": "https://example.gov.uk" } }),
        )
        .await;
    let organisation = &data["createOrganisation"]["organisation"];
    (organisation["id"].as_str().unwrap().to_string(), organisation["slug"].as_str().unwrap().to_string())
}

pub(crate) const CREATE: &str = "mutation($input: CreateCaseStudyInput!) { createCaseStudy(input: $input) { caseStudy { id version status title bodyHtml authors { handle } topics { name } organisation { name } } userErrors { field code message } } }";
pub(crate) const UPDATE: &str = "mutation($input: UpdateCaseStudyInput!) { updateCaseStudy(input: $input) { caseStudy { id version title bodyHtml } userErrors { field code message } } }";
pub(crate) const PUBLISH: &str = "mutation($id: ID!) { publishCaseStudy(input: { id: $id }) { caseStudy { status publishedAt } userErrors { field code } } }";

pub(crate) fn case_study(title: &str, topics: &[&str]) -> Value {
    json!({
        "title": title,
        "summary": "We moved bin collection reminders online and cut missed collections.",
        "body": "## What we did\n\nWe *tested* with residents.",
        "phase": "LIVE",
        "topicIds": topics,
    })
}

pub(crate) async fn create_case_study(client: &Client, input: Value) -> Value {
    let data = client.data(CREATE, json!({ "input": input })).await;
    assert_eq!(data["createCaseStudy"]["userErrors"], json!([]), "{data}");
    data["createCaseStudy"]["caseStudy"].clone()
}

async fn organisations_are_created_and_joined_with_approval(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let (id, slug) = create_organisation(&ada, "Barsetshire County Council").await;
    assert_eq!(slug, "barsetshire-county-council");
    let (_, second) = create_organisation(&grace, "Barsetshire County Council").await;
    assert_eq!(second, "barsetshire-county-council-2");

    let bad = ada
        .data(
            "mutation($input: CreateOrganisationInput!) { createOrganisation(input: $input) { organisation { id } userErrors { field code } } }",
            json!({ "input": { "name": "", "kind": "NHS", "website": "javascript:alert(1)" } }),
        )
        .await;
    assert_eq!(
        user_errors(&bad["createOrganisation"]),
        vec![("name".into(), "BLANK".into()), ("website".into(), "INVALID".into())]
    );

    const JOIN: &str = "mutation($id: ID!) { requestToJoinOrganisation(input: { organisationId: $id }) { membership { role status } userErrors { code } } }";
    let joined = grace.data(JOIN, json!({ "id": id })).await;
    assert_eq!(joined["requestToJoinOrganisation"]["membership"], json!({ "role": "MEMBER", "status": "REQUESTED" }));
    grace.data(JOIN, json!({ "id": id })).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'organisation.join_requested'").await,
        1,
        "asking twice is one request"
    );

    const REQUESTS: &str = "query($slug: String!) { organisation(slug: $slug) { membershipRequests { handle } members { edges { node { handle } } } viewerMembership { role status } } }";
    let seen = ada.data(REQUESTS, json!({ "slug": slug })).await;
    assert_eq!(seen["organisation"]["membershipRequests"], json!([{ "handle": "grace" }]));
    assert_eq!(seen["organisation"]["viewerMembership"], json!({ "role": "ADMIN", "status": "APPROVED" }));
    let refused = grace.gql(REQUESTS, json!({ "slug": slug })).await;
    assert_eq!(error_code(&refused), "FORBIDDEN");

    const DECIDE: &str = "mutation($input: DecideMembershipRequestInput!) { decideMembershipRequest(input: $input) { membership { status } userErrors { field code } } }";
    let grace_id = grace.viewer_id().await.unwrap();
    let body =
        grace.gql(DECIDE, json!({ "input": { "organisationId": id, "memberId": grace_id, "approve": true } })).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "a member cannot approve themself");
    let decided =
        ada.data(DECIDE, json!({ "input": { "organisationId": id, "memberId": grace_id, "approve": true } })).await;
    assert_eq!(decided["decideMembershipRequest"]["membership"]["status"], "APPROVED");
    let again =
        ada.data(DECIDE, json!({ "input": { "organisationId": id, "memberId": grace_id, "approve": false } })).await;
    assert_eq!(user_errors(&again["decideMembershipRequest"]), vec![("memberId".into(), "NOT_FOUND".into())]);
    let members = ada.data(REQUESTS, json!({ "slug": slug })).await;
    assert_eq!(
        members["organisation"]["members"]["edges"],
        json!([{ "node": { "handle": "ada" } }, { "node": { "handle": "grace" } }])
    );

    const PAGE: &str = "query($after: String) { organisations(first: 1, after: $after) { edges { node { slug } } pageInfo { hasNextPage endCursor } } }";
    let first = app.anonymous().data(PAGE, json!({})).await;
    assert_eq!(first["organisations"]["edges"], json!([{ "node": { "slug": "barsetshire-county-council" } }]));
    assert_eq!(first["organisations"]["pageInfo"]["hasNextPage"], true);
    let next = app.anonymous().data(PAGE, json!({ "after": first["organisations"]["pageInfo"]["endCursor"] })).await;
    assert_eq!(
        next["organisations"]["edges"],
        json!([{ "node": { "slug": "barsetshire-county-council-2" } }]),
        "same name: ordered by id"
    );
    assert_eq!(next["organisations"]["pageInfo"]["hasNextPage"], false);
}

async fn topics_are_curated_by_moderators(app: TestApp) {
    let member = app.member("member@example.org", "Member").await;
    let body = member.gql("mutation { createTopic(input: { name: \"Waste\" }) { topic { id } } }", json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN");

    let curator = admin(&app, "curator@example.org", "Curator").await;
    let bins = create_topic(&curator, "Bin collection").await;
    let waste = create_topic(&curator, "Waste").await;
    let taken = curator
        .data(
            "mutation { createTopic(input: { name: \"bin  collection!\" }) { userErrors { field code } } }",
            json!({}),
        )
        .await;
    assert_eq!(user_errors(&taken["createTopic"]), vec![("name".into(), "TAKEN".into())]);

    let renamed = curator
        .data("mutation($id: ID!) { renameTopic(input: { id: $id, name: \"Bins and recycling\" }) { topic { name slug } } }", json!({ "id": bins }))
        .await;
    assert_eq!(renamed["renameTopic"]["topic"], json!({ "name": "Bins and recycling", "slug": "bin-collection" }));

    let item = create_case_study(&member, case_study("Bins", &[&bins, &waste])).await;
    let merged = curator.data("mutation($id: ID!, $into: ID!) { mergeTopic(input: { id: $id, intoId: $into }) { topic { slug } userErrors { code } } }", json!({ "id": bins, "into": waste })).await;
    assert_eq!(merged["mergeTopic"]["topic"]["slug"], "waste");
    let after = member
        .data("query($id: ID!) { node(id: $id) { ... on CaseStudy { topics { slug } } } }", json!({ "id": item["id"] }))
        .await;
    assert_eq!(after["node"]["topics"], json!([{ "slug": "waste" }]), "no duplicate, nothing lost");
    let old = app
        .anonymous()
        .data(
            "{ topic(slug: \"bin-collection\") { mergedInto { slug } } topics { edges { node { slug } } } }",
            json!({}),
        )
        .await;
    assert_eq!(old["topic"]["mergedInto"]["slug"], "waste");
    assert_eq!(old["topics"]["edges"], json!([{ "node": { "slug": "waste" } }]));
}

async fn drafts_are_seen_only_by_their_authors(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Accessibility").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let stranger = app.member("stranger@example.org", "Stranger").await;
    let mut input = case_study("Accessibility audit", &[&topic]);
    input["coAuthorHandles"] = json!(["@Grace"]);
    let draft = create_case_study(&ada, input).await;
    assert_eq!(draft["status"], "DRAFT");
    assert_eq!(draft["authors"], json!([{ "handle": "ada" }]), "grace is invited, not yet a co-author");
    let id = draft["id"].as_str().unwrap();
    crate::coauthors::accept(&grace, id).await;

    const NODE: &str = "query($id: ID!) { node(id: $id) { ... on CaseStudy { title viewerCanEdit } } }";
    for (who, visible) in [(&ada, true), (&grace, true), (&stranger, false)] {
        let seen = who.data(NODE, json!({ "id": id })).await;
        assert_eq!(seen["node"].is_null(), !visible, "{seen}");
    }
    assert_eq!(app.anonymous().data(NODE, json!({ "id": id })).await["node"], json!(null));
    let listed = stranger.data("{ caseStudies { edges { node { id } } } }", json!({})).await;
    assert_eq!(listed["caseStudies"]["edges"], json!([]));
    let by_author = stranger.data("{ caseStudies(author: \"ada\") { edges { node { id } } } }", json!({})).await;
    assert_eq!(by_author["caseStudies"]["edges"], json!([]));
    let mine = grace.data("{ myCaseStudies { edges { node { id status } } } }", json!({})).await;
    assert_eq!(mine["myCaseStudies"]["edges"][0]["node"]["status"], "DRAFT");
    let body = stranger.gql(PUBLISH, json!({ "id": id })).await;
    assert_eq!(
        user_errors(&body["data"]["publishCaseStudy"]),
        vec![("id".into(), "NOT_FOUND".into())],
        "a draft does not exist for others"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind <> 'case_study.coauthor_invited'").await, 0);

    let published = grace.data(PUBLISH, json!({ "id": id })).await;
    assert_eq!(published["publishCaseStudy"]["caseStudy"]["status"], "PUBLISHED");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'case_study.published'").await, 1);
    let seen = stranger.data(NODE, json!({ "id": id })).await;
    assert_eq!(seen["node"], json!({ "title": "Accessibility audit", "viewerCanEdit": false }));
    // Readers see its history from the version it was published at; its authors, all.
    const VERSIONS: &str = "query($id: ID!) { node(id: $id) { ... on CaseStudy { version versions { version } } } }";
    let seen = stranger.data(VERSIONS, json!({ "id": id })).await;
    let current = seen["node"]["version"].clone();
    assert_eq!(seen["node"]["versions"], json!([{ "version": current }]));
}

async fn edits_keep_revisions_and_refuse_stale_versions(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Housing").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let created = create_case_study(&ada, case_study("First title", &[&topic])).await;
    let id = created["id"].as_str().unwrap().to_string();
    ada.data(PUBLISH, json!({ "id": id })).await;

    let mut edit = case_study("Second title", &[&topic]);
    edit["id"] = json!(id);
    edit["version"] = json!(1);
    let saved = ada.data(UPDATE, json!({ "input": edit })).await;
    assert_eq!(saved["updateCaseStudy"]["caseStudy"]["version"], 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'case_study.updated'").await, 1);

    // An edit still based on version 1 would overwrite the second: refused.
    edit["title"] = json!("Stale title");
    let stale = ada.data(UPDATE, json!({ "input": edit })).await;
    assert_eq!(user_errors(&stale["updateCaseStudy"]), vec![("version".into(), "CONFLICT".into())]);
    assert_eq!(stale["updateCaseStudy"]["caseStudy"]["title"], "Second title");
    let versions = ada.data("query($id: ID!) { node(id: $id) { ... on CaseStudy { title version versions { version title savedBy { handle } } } } }", json!({ "id": id })).await;
    assert_eq!(
        versions["node"],
        json!({ "title": "Second title", "version": 2, "versions": [
            { "version": 2, "title": "Second title", "savedBy": { "handle": "ada" } },
            { "version": 1, "title": "First title", "savedBy": { "handle": "ada" } },
        ] })
    );
    // Only authors edit.
    let grace = app.member("grace@example.org", "Grace").await;
    edit["version"] = json!(2);
    let body = grace.gql(UPDATE, json!({ "input": edit })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    assert_eq!(app.count("SELECT COUNT(*) FROM case_study_revisions").await, 1);
}

async fn history_keeps_every_version_with_its_note_and_compares_any_two(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Waste").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mut input = case_study("Bins", &[&topic]);
    input["body"] = json!("We cut missed bins by 20% in Bath.");
    let id = create_case_study(&ada, input.clone()).await["id"].as_str().unwrap().to_string();
    input["id"] = json!(id);
    let edit = |version: i64, body: &str, note: &str| {
        let mut edit = input.clone();
        edit["version"] = json!(version);
        edit["body"] = json!(body);
        edit["changeNote"] = json!(note);
        json!({ "input": edit })
    };
    let saved = |data: &Value| {
        assert_eq!(data["updateCaseStudy"]["userErrors"], json!([]), "{data}");
        data["updateCaseStudy"]["caseStudy"]["version"].as_i64().unwrap()
    };
    // Version 2 while still a draft; published; then 3 with a note, and 4 without (a typo).
    assert_eq!(saved(&ada.data(UPDATE, edit(1, "We cut missed bins by 25% in Bath.", "  Draft tweak ")).await), 2);
    ada.data(PUBLISH, json!({ "id": id })).await;
    let wells = "We cut missed bins by 35% in Bath and Wells.";
    assert_eq!(saved(&ada.data(UPDATE, edit(2, wells, "Added Wells")).await), 3);
    assert_eq!(saved(&ada.data(UPDATE, edit(3, "We cut missed bins by 35% in Bath and Wells!", "")).await), 4);

    // A note is one line of at most 300 characters: anything else saves nothing.
    for (note, code) in [("x".repeat(301), "TOO_LONG"), ("Two\nlines".to_string(), "INVALID")] {
        let data = ada.data(UPDATE, edit(4, "Changed", &note)).await;
        assert_eq!(user_errors(&data["updateCaseStudy"]), vec![("changeNote".into(), code.into())]);
    }
    assert_eq!(app.count("SELECT version FROM case_studies").await, 4);
    assert_eq!(app.count("SELECT COUNT(*) FROM case_study_revisions").await, 3);

    const VERSIONS: &str = "query($id: ID!) { node(id: $id) { ... on CaseStudy { versions { version changeNote \
        current savedAt savedBy { handle } text { body phase } } } } }";
    let versions = |data: Value| data["node"]["versions"].as_array().unwrap().clone();
    let all = versions(ada.data(VERSIONS, json!({ "id": id })).await);
    let summary: Vec<(i64, &str, bool)> = all
        .iter()
        .map(|v| (v["version"].as_i64().unwrap(), v["changeNote"].as_str().unwrap(), v["current"].as_bool().unwrap()))
        .collect();
    assert_eq!(summary, [(4, "", true), (3, "Added Wells", false), (2, "Draft tweak", false), (1, "", false)]);
    assert_eq!(all[3]["text"], json!({ "body": "We cut missed bins by 20% in Bath.", "phase": "LIVE" }));
    assert_eq!(all[1]["text"]["body"], wells);
    assert!(all.iter().all(|v| v["savedBy"]["handle"] == "ada"));
    // Compared as instants: as text, "…54.715Z" sorts before "…54.7Z".
    let times: Vec<jiff::Timestamp> = all.iter().map(|v| v["savedAt"].as_str().unwrap().parse().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    // Readers see from version 2, the one it was published at.
    let seen: Vec<i64> = versions(grace.data(VERSIONS, json!({ "id": id })).await)
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, [4, 3, 2]);

    // Any two compared word by word.
    const COMPARE: &str = "query($id: ID!, $from: Int!, $to: Int!) { node(id: $id) { ... on CaseStudy { \
        compareVersions(from: $from, to: $to) { from to title { change text } body { change text } } } } }";
    let compare = |from: i64, to: i64| json!({ "id": id, "from": from, "to": to });
    let data = grace.data(COMPARE, compare(2, 3)).await;
    let diff = &data["node"]["compareVersions"];
    assert_eq!((&diff["from"], &diff["to"]), (&json!(2), &json!(3)));
    assert_eq!(diff["title"], json!([{ "change": "UNCHANGED", "text": "Bins" }]));
    assert_eq!(
        diff["body"],
        json!([
            { "change": "UNCHANGED", "text": "We cut missed bins by " },
            { "change": "REMOVED", "text": "25%" },
            { "change": "ADDED", "text": "35%" },
            { "change": "UNCHANGED", "text": " in " },
            { "change": "REMOVED", "text": "Bath." },
            { "change": "ADDED", "text": "Bath and Wells." },
        ])
    );
    // Versions a reader may not see, or that do not exist, compare to nothing.
    assert!(grace.data(COMPARE, compare(1, 4)).await["node"]["compareVersions"].is_null());
    assert!(ada.data(COMPARE, compare(3, 99)).await["node"]["compareVersions"].is_null());
    let data = ada.data(COMPARE, compare(1, 4)).await;
    let body = data["node"]["compareVersions"]["body"].as_array().unwrap().clone();
    let rebuilt: String =
        body.iter().filter(|p| p["change"] != "REMOVED").map(|p| p["text"].as_str().unwrap()).collect();
    assert_eq!(rebuilt, "We cut missed bins by 35% in Bath and Wells!");
}

async fn a_draft_never_published_can_be_deleted_by_who_started_it(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Waste").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mut input = case_study("Bins", &[&topic]);
    input["coAuthorHandles"] = json!(["grace"]);
    let draft = create_case_study(&ada, input).await["id"].as_str().unwrap().to_string();
    crate::coauthors::accept(&grace, &draft).await;
    // Edited (a revision) and watched by its authors.
    let mut edit = case_study("Bins, again", &[&topic]);
    edit["id"] = json!(draft);
    edit["version"] = json!(1);
    edit["coAuthorHandles"] = json!(["grace"]);
    ada.data(UPDATE, json!({ "input": edit })).await;
    let published = create_case_study(&ada, case_study("Parks", &[&topic])).await["id"].as_str().unwrap().to_string();
    ada.data(PUBLISH, json!({ "id": published })).await;

    const DELETE: &str = "mutation($id: ID!) { deleteCaseStudyDraft(input: { id: $id }) { deletedId userErrors { field code message } } }";
    let counts = || async {
        let mut counts = Vec::new();
        for table in ["case_studies", "case_study_revisions", "case_study_authors", "follows"] {
            counts.push(app.count(&format!("SELECT COUNT(*) FROM {table}")).await);
        }
        counts
    };
    let before = counts().await;
    // Not a co-author, not a stranger, not a published one.
    let data = grace.data(DELETE, json!({ "id": draft })).await;
    assert!(
        data["deleteCaseStudyDraft"]["userErrors"][0]["message"].as_str().unwrap().contains("started it"),
        "{data}"
    );
    let stranger = app.member("stranger@example.org", "Stranger").await;
    let data = stranger.data(DELETE, json!({ "id": draft })).await;
    assert_eq!(data["deleteCaseStudyDraft"]["deletedId"], Value::Null);
    let data = ada.data(DELETE, json!({ "id": published })).await;
    assert_eq!(user_errors(&data["deleteCaseStudyDraft"]), vec![("id".into(), "INVALID".into())]);
    assert_eq!(counts().await, before, "nothing was deleted");

    let data = ada.data(DELETE, json!({ "id": draft })).await;
    assert_eq!(data["deleteCaseStudyDraft"], json!({ "deletedId": draft, "userErrors": [] }));
    let number = crate::artefacts::number("CaseStudy", &json!(draft));
    for table in
        ["case_studies WHERE id", "case_study_revisions WHERE case_study_id", "case_study_authors WHERE case_study_id"]
    {
        assert_eq!(app.count(&format!("SELECT COUNT(*) FROM {table} = {number}")).await, 0, "{table}");
    }
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM follows WHERE target_type = 'CaseStudy' AND target_id = {number}"))
            .await,
        0
    );
    assert!(ada.data("query($id: ID!) { node(id: $id) { id } }", json!({ "id": draft })).await["node"].is_null());
    // The published one is untouched.
    assert_eq!(app.count("SELECT COUNT(*) FROM case_studies").await, 1);
}

async fn simultaneous_edits_of_one_version_save_exactly_one(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Digital inclusion").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let id = create_case_study(&ada, case_study("Original", &[&topic])).await["id"].as_str().unwrap().to_string();
    let edits = (0..8).map(|i| {
        let ada = ada.clone();
        let mut edit = case_study(&format!("Edit {i}"), &[&topic]);
        edit["id"] = json!(id);
        edit["version"] = json!(1);
        async move { ada.data(UPDATE, json!({ "input": edit })).await }
    });
    let results = futures_util::future::join_all(edits).await;
    let saved = results.iter().filter(|r| r["updateCaseStudy"]["userErrors"] == json!([])).count();
    let conflicts = results
        .iter()
        .filter(|r| user_errors(&r["updateCaseStudy"]) == vec![("version".into(), "CONFLICT".into())])
        .count();
    assert_eq!((saved, conflicts), (1, 7), "{results:?}");
    assert_eq!(app.count("SELECT version FROM case_studies").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM case_study_revisions").await, 1);
}

async fn case_study_input_is_validated_and_changes_nothing(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topics: Vec<String> = futures_util::future::join_all((0..6).map(|i| {
        let curator = curator.clone();
        async move { create_topic(&curator, &format!("Topic {i}")).await }
    }))
    .await;
    let ada = app.member("ada@example.org", "Ada").await;
    let (someone_elses, _) = create_organisation(&curator, "Not Ada's Council").await;
    let t = |n: usize| topics[..n].iter().map(String::as_str).collect::<Vec<_>>();
    let cases: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (
            json!({ "title": "", "summary": "", "body": " " }),
            vec![("title", "BLANK"), ("summary", "BLANK"), ("body", "BLANK")],
        ),
        (
            json!({ "title": "t".repeat(151), "summary": "s".repeat(301) }),
            vec![("title", "TOO_LONG"), ("summary", "TOO_LONG")],
        ),
        (json!({ "body": "x".repeat(100 * 1024 + 1) }), vec![("body", "TOO_LONG")]),
        (json!({ "phase": null }), vec![("phase", "BLANK")]),
        (json!({ "topicIds": [] }), vec![("topicIds", "INVALID")]),
        (json!({ "topicIds": t(6) }), vec![("topicIds", "INVALID")]),
        (json!({ "topicIds": ["VG9waWM6OTk5OQ"] }), vec![("topicIds", "NOT_FOUND")]),
        (json!({ "topicIds": ["garbage"] }), vec![("topicIds", "NOT_FOUND")]),
        (json!({ "organisationId": someone_elses }), vec![("organisationId", "INVALID")]),
        (json!({ "organisationId": "garbage" }), vec![("organisationId", "NOT_FOUND")]),
        (json!({ "coAuthorHandles": ["nobody"] }), vec![("coAuthorHandles", "NOT_FOUND")]),
        (
            json!({ "coAuthorHandles": (0..11).map(|i| format!("h{i}")).collect::<Vec<_>>() }),
            vec![("coAuthorHandles", "INVALID")],
        ),
    ];
    for (changes, expected) in cases {
        let mut input = case_study("Valid title", &t(1));
        for (key, value) in changes.as_object().unwrap() {
            input[key] = value.clone();
        }
        let body = ada.gql(CREATE, json!({ "input": input })).await;
        let expected: Vec<(String, String)> = expected.iter().map(|(f, c)| (f.to_string(), c.to_string())).collect();
        assert_eq!(user_errors(&body["data"]["createCaseStudy"]), expected, "for {changes}");
    }
    // Five topics, repeated ids counted once, is fine.
    let mut input = case_study("Five topics", &t(5));
    input["topicIds"].as_array_mut().unwrap().push(json!(topics[0]));
    create_case_study(&ada, input).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM case_studies").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM case_study_topics").await, 5);
    let body =
        ada.gql("query($s: String!) { markdownPreview(source: $s) }", json!({ "s": "x".repeat(100 * 1024 + 1) })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

async fn markdown_is_sanitised_on_write_and_mentions_linked(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Security").await;
    let ada = app.member("ada@example.org", "Ada").await;
    app.member("grace@example.org", "Grace Hopper").await;
    let mut input = case_study("Safe", &[&topic]);
    input["body"] = json!("# Heading\n\nThanks @grace-hopper and @nobody.\n\n<script>alert(1)</script><img src=x onerror=alert(1)>[x](javascript:alert(1))");
    let created = create_case_study(&ada, input).await;
    let html = created["bodyHtml"].as_str().unwrap();
    assert!(html.starts_with("<h2>Heading</h2>"), "{html}");
    assert!(html.contains("<a href=\"/members/@grace-hopper\" class=\"mention\""), "{html}");
    // (The script line is an HTML block, so the link after it stays literal, inert text.)
    assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("href=\"javascript"), "{html}");
    let stored = sqlx::query_scalar::<_, String>("SELECT body_html FROM case_studies")
        .fetch_one(&app.state().db.pool)
        .await
        .unwrap();
    assert_eq!(stored, html, "rendered once, on write");
    let preview = ada
        .data("query($s: String!) { markdownPreview(source: $s) }", json!({ "s": "*hi* @ada <script>x</script>" }))
        .await;
    assert_eq!(preview["markdownPreview"], "<p><em>hi</em> <a href=\"/members/@ada\" class=\"mention\" rel=\"nofollow ugc noopener noreferrer\">@ada</a> </p>\n");
    // The writer can be told which handles are nobody's, before saving.
    const UNKNOWN: &str = "query($s: String!) { unknownHandles(source: $s) }";
    let source = "@Ada, @nobody-here and @Nobody-Here again; `@in-code` and @also-missing.";
    let unknown = ada.data(UNKNOWN, json!({ "s": source })).await;
    assert_eq!(unknown["unknownHandles"], json!(["nobody-here", "also-missing"]));
    assert_eq!(ada.data(UNKNOWN, json!({ "s": "No mentions." })).await["unknownHandles"], json!([]));
    let too_long = ada.gql(UNKNOWN, json!({ "s": "x".repeat(100 * 1024 + 1) })).await;
    assert_eq!(error_code(&too_long), "BAD_USER_INPUT");
}

/// An image is not dropped without a word: it shows as a link to it, its description the
/// link's text (nothing is loaded from another site), and search reads the description as
/// words of its own, not run into the word before it.
async fn images_in_markdown_show_as_links_and_their_descriptions_are_searchable_words(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Photos").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let mut input = case_study("With photos", &[&topic]);
    input["body"] =
        json!("The depot at dawn:![Gritters queueing](https://photos.example.org/gritters.jpg) and ![](/x.png).");
    let created = create_case_study(&ada, input).await;
    let html = created["bodyHtml"].as_str().unwrap();
    assert!(!html.contains("<img"), "{html}");
    assert!(
        html.contains("dawn:<a href=\"https://photos.example.org/gritters.jpg\" rel=\"nofollow ugc noopener noreferrer\">Gritters queueing</a>"),
        "{html}"
    );
    assert!(html.contains("<a href=\"/x.png\" rel=\"nofollow ugc noopener noreferrer\">image</a>"), "{html}");
    ada.data(PUBLISH, json!({ "id": created["id"] })).await;
    const SEARCH: &str = "query($q: String!) { search(query: $q) { snippet node { ... on CaseStudy { title } } } }";
    let found = app.anonymous().data(SEARCH, json!({ "q": "gritters" })).await;
    assert_eq!(found["search"][0]["node"]["title"], "With photos", "{found}");
    let snippet = found["search"][0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("dawn: <mark>Gritters</mark> queueing"), "{snippet}");
}

async fn published_lists_filter_and_page(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let bins = create_topic(&curator, "Bins").await;
    let parks = create_topic(&curator, "Parks").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let (org, org_slug) = create_organisation(&ada, "Ada Borough").await;
    for i in 0..5 {
        let mut input = case_study(&format!("Story {i}"), &[if i % 2 == 0 { &bins } else { &parks }]);
        if i < 2 {
            input["organisationId"] = json!(org);
        }
        input["phase"] = json!(if i == 4 { "BETA" } else { "LIVE" });
        let id = create_case_study(&ada, input).await["id"].as_str().unwrap().to_string();
        ada.data(PUBLISH, json!({ "id": id })).await;
    }
    create_case_study(&ada, case_study("Unpublished", &[&bins])).await;
    const LIST: &str = "query($first: Int, $after: String, $topic: String, $organisation: String, $phase: Phase, $author: String) { caseStudies(first: $first, after: $after, topic: $topic, organisation: $organisation, phase: $phase, author: $author) { edges { node { title } } pageInfo { hasNextPage endCursor } } }";
    let titles = |data: &Value| -> Vec<String> {
        data["caseStudies"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["title"].as_str().unwrap().to_string())
            .collect()
    };
    let anon = app.anonymous();
    let first = anon.data(LIST, json!({ "first": 2 })).await;
    assert_eq!(titles(&first), ["Story 4", "Story 3"]);
    let next = anon.data(LIST, json!({ "first": 10, "after": first["caseStudies"]["pageInfo"]["endCursor"] })).await;
    assert_eq!(titles(&next), ["Story 2", "Story 1", "Story 0"]);
    assert_eq!(titles(&anon.data(LIST, json!({ "topic": "bins" })).await), ["Story 4", "Story 2", "Story 0"]);
    assert_eq!(titles(&anon.data(LIST, json!({ "organisation": org_slug })).await), ["Story 1", "Story 0"]);
    assert_eq!(titles(&anon.data(LIST, json!({ "phase": "BETA" })).await), ["Story 4"]);
    assert_eq!(titles(&anon.data(LIST, json!({ "author": "ada", "topic": "parks" })).await), ["Story 3", "Story 1"]);
    assert_eq!(titles(&anon.data(LIST, json!({ "topic": "no-such-topic" })).await), Vec::<String>::new());
    // Archived ones leave the lists but stay readable.
    let latest_id = anon.data("{ caseStudies(first: 1) { edges { node { id } } } }", json!({})).await["caseStudies"]
        ["edges"][0]["node"]["id"]
        .clone();
    let archived = ada
        .data(
            "mutation($id: ID!) { archiveCaseStudy(input: { id: $id }) { caseStudy { status } } }",
            json!({ "id": latest_id }),
        )
        .await;
    assert_eq!(archived["archiveCaseStudy"]["caseStudy"]["status"], "ARCHIVED");
    assert_eq!(titles(&anon.data(LIST, json!({ "first": 1 })).await), ["Story 3"]);
    let still =
        anon.data("query($id: ID!) { node(id: $id) { ... on CaseStudy { title } } }", json!({ "id": latest_id })).await;
    assert_eq!(still["node"]["title"], "Story 4");
}

async fn simultaneous_organisations_with_one_name_get_distinct_slugs(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let creations = (0..6).map(|_| {
        let ada = ada.clone();
        async move { create_organisation(&ada, "Same Name Council").await.1 }
    });
    let mut slugs = futures_util::future::join_all(creations).await;
    slugs.sort();
    slugs.dedup();
    assert_eq!(slugs.len(), 6, "{slugs:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM organisation_members WHERE role = 'admin'").await, 6);
}

/// Counts the SQL statements a list query runs, for pages of 10, 50 and 100 case studies
/// with their authors, organisation, topics, useful, comment and artefact counts: the
/// count must not grow with the page (see `support::StatementLog`).
async fn case_study_lists_run_a_fixed_number_of_statements(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topics = [create_topic(&curator, "Bins").await, create_topic(&curator, "Parks").await];
    let mut authors = Vec::new();
    for i in 0..4 {
        authors.push(app.member(&format!("author{i}@example.org"), &format!("Author {i}")).await);
    }
    let mut organisations = Vec::new();
    for (i, author) in authors.iter().enumerate() {
        organisations.push(create_organisation(author, &format!("Council {i}")).await.0);
    }
    let mut ids = Vec::new();
    for i in 0..100 {
        let author = &authors[i % 4];
        let mut input = case_study(&format!("Story {i}"), &[&topics[0], &topics[1]]);
        input["organisationId"] = json!(organisations[i % 4]);
        input["coAuthorHandles"] = json!([format!("author-{}", (i + 1) % 4)]);
        let id = create_case_study(author, input).await["id"].as_str().unwrap().to_string();
        crate::coauthors::accept(&authors[(i + 1) % 4], &id).await;
        author.data(PUBLISH, json!({ "id": id })).await;
        ids.push(id);
    }
    // Every third case study has a comment and a reply; every fifth is linked to an
    // artefact (ten per artefact), so every page has some with and some without.
    for i in (0..100).step_by(3) {
        let comment = crate::comments::post(&authors[(i + 1) % 4], &ids[i], None, "Useful, thanks.").await;
        crate::comments::post(&authors[i % 4], &ids[i], Some(comment.as_str()), "Glad it helped.").await;
    }
    for chunk in ids.iter().step_by(5).collect::<Vec<_>>().chunks(10) {
        let mut input = crate::artefacts::artefact("Reminder service", &[&topics[0]]);
        input["caseStudyIds"] = json!(chunk);
        crate::artefacts::share(&authors[0], input).await;
    }

    let mut log = StatementLog::start(&app).await;
    const LIST: &str =
        "query($n: Int!) { caseStudies(first: $n) { edges { node { title summary phase publishedAt usefulCount \
        commentCount artefactCount authors { handle displayName } organisation { name slug } topics { name } } } } }";
    let counts = log
        .counts_for_page_sizes(LIST, &[10, 50, 100], |n, body| {
            let nodes: Vec<&Value> =
                body["data"]["caseStudies"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]).collect();
            assert_eq!(nodes.len(), n, "{body}");
            assert_eq!(nodes[0]["authors"].as_array().unwrap().len(), 2);
            for node in nodes {
                // Newest first: "Story 99" is ids[99].
                let i: usize = node["title"].as_str().unwrap().trim_start_matches("Story ").parse().unwrap();
                assert_eq!(node["commentCount"], if i % 3 == 0 { 2 } else { 0 }, "{node}");
                assert_eq!(node["artefactCount"], if i % 5 == 0 { 1 } else { 0 }, "{node}");
            }
        })
        .await;
    log.stop().await;
    eprintln!("statements for 10, 50, 100 case studies: {counts:?}");
    assert!(counts.iter().all(|c| *c == counts[0]), "the count grew with the page: {counts:?}");
    assert!(
        counts[0] <= 5,
        "a list with authors, organisation, topics and counts needs at most five statements: {counts:?}"
    );
}

async fn search_finds_published_work_by_relevance(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Waste").await;
    let ada = app.member("ada@example.org", "Ada").await;
    create_organisation(&ada, "Barsetshire Council").await;
    let mut published = Vec::new();
    for (title, body) in [
        ("Bin collection reminders", "We text residents the night before their bins go out. <script>alert(1)</script>"),
        ("Parking permits", "An accessibility audit of the permit form; bins are mentioned once."),
    ] {
        let mut input = case_study(title, &[&topic]);
        input["body"] = json!(body);
        let id = create_case_study(&ada, input).await["id"].as_str().unwrap().to_string();
        ada.data(PUBLISH, json!({ "id": id })).await;
        published.push(id);
    }
    let mut draft = case_study("Secret bins plan", &[&topic]);
    draft["body"] = json!("bins bins bins");
    create_case_study(&ada, draft).await;

    const SEARCH: &str = "query($q: String!, $kind: SearchKind) { search(query: $q, kind: $kind) { snippet node { __typename ... on CaseStudy { title } ... on Organisation { name } } } }";
    let anon = app.anonymous();
    let results = anon.data(SEARCH, json!({ "q": "bin" })).await;
    let titles: Vec<&str> =
        results["search"].as_array().unwrap().iter().map(|h| h["node"]["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        ["Bin collection reminders", "Parking permits"],
        "stemmed, title matches first, no draft: {results}"
    );
    let snippet = results["search"][0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("<mark>bin") && !snippet.contains("<script"), "{snippet}");

    let organisations = anon.data(SEARCH, json!({ "q": "barsetshire", "kind": "ORGANISATION" })).await;
    assert_eq!(
        organisations["search"][0]["node"],
        json!({ "__typename": "Organisation", "name": "Barsetshire Council" })
    );
    // Operators and punctuation are just text; nonsense finds nothing; long queries are refused.
    for q in ["NEAR(bins", "\"bins", "bins OR", "*", "-", ""] {
        let body = anon.gql(SEARCH, json!({ "q": q })).await;
        assert!(body.get("errors").is_none(), "{q}: {body}");
    }
    assert_eq!(anon.data(SEARCH, json!({ "q": "xylophone" })).await["search"], json!([]));
    assert_eq!(error_code(&anon.gql(SEARCH, json!({ "q": "x".repeat(201) })).await), "BAD_USER_INPUT");
    // Paging on through the ranking: the second page starts where the first ended.
    const PAGED: &str = "query($offset: Int!) { search(query: \"bin\", first: 1, offset: $offset) { node { ... on CaseStudy { title } } } }";
    let second = anon.data(PAGED, json!({ "offset": 1 })).await;
    assert_eq!(second["search"][0]["node"]["title"], "Parking permits", "{second}");
    assert_eq!(anon.data(PAGED, json!({ "offset": 2 })).await["search"], json!([]));
    assert_eq!(error_code(&anon.gql(PAGED, json!({ "offset": 451 })).await), "BAD_USER_INPUT");
    assert_eq!(error_code(&anon.gql(PAGED, json!({ "offset": -1 })).await), "BAD_USER_INPUT");

    // Edits and archiving reach the index in the same transaction.
    let mut edit = case_study("Garden waste subscriptions", &[&topic]);
    edit["id"] = json!(published[1]);
    edit["version"] = json!(1);
    ada.data(UPDATE, json!({ "input": edit })).await;
    assert_eq!(
        anon.data(SEARCH, json!({ "q": "garden" })).await["search"][0]["node"]["title"],
        "Garden waste subscriptions"
    );
    assert_eq!(
        anon.data(SEARCH, json!({ "q": "night" })).await["search"][0]["node"]["title"],
        "Bin collection reminders"
    );
    ada.data(
        "mutation($id: ID!) { archiveCaseStudy(input: { id: $id }) { caseStudy { status } } }",
        json!({ "id": published[0] }),
    )
    .await;
    let after = anon.data(SEARCH, json!({ "q": "night" })).await;
    assert_eq!(after["search"], json!([]));
}

async fn members_mark_useful_bookmark_and_register_interest(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Payments").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mary = app.member("mary@example.org", "Mary").await;
    let id = create_case_study(&ada, case_study("Paying for school meals", &[&topic])).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    const USEFUL: &str = "mutation($id: ID!, $on: Boolean!) { markCaseStudyUseful(input: { id: $id, on: $on }) { caseStudy { usefulCount viewerMarkedUseful } userErrors { field code } } }";
    // Not while it is a draft (it does not exist for others), and never your own.
    let draft = grace.data(USEFUL, json!({ "id": id, "on": true })).await;
    assert_eq!(user_errors(&draft["markCaseStudyUseful"]), vec![("id".into(), "NOT_FOUND".into())]);
    ada.data(PUBLISH, json!({ "id": id })).await;
    let own = ada.data(USEFUL, json!({ "id": id, "on": true })).await;
    assert_eq!(user_errors(&own["markCaseStudyUseful"]), vec![("id".into(), "INVALID".into())]);

    for _ in 0..2 {
        let marked = grace.data(USEFUL, json!({ "id": id, "on": true })).await;
        assert_eq!(
            marked["markCaseStudyUseful"]["caseStudy"],
            json!({ "usefulCount": 1, "viewerMarkedUseful": true }),
            "once each"
        );
    }
    let marked = mary.data(USEFUL, json!({ "id": id, "on": true })).await;
    assert_eq!(marked["markCaseStudyUseful"]["caseStudy"]["usefulCount"], 2);
    let unmarked = mary.data(USEFUL, json!({ "id": id, "on": false })).await;
    assert_eq!(unmarked["markCaseStudyUseful"]["caseStudy"], json!({ "usefulCount": 1, "viewerMarkedUseful": false }));
    let listed =
        app.anonymous().data("{ caseStudies { edges { node { usefulCount viewerMarkedUseful } } } }", json!({})).await;
    assert_eq!(listed["caseStudies"]["edges"][0]["node"], json!({ "usefulCount": 1, "viewerMarkedUseful": false }));

    let bookmarked = grace
        .data(
            "mutation($id: ID!) { bookmarkCaseStudy(input: { id: $id, on: true }) { caseStudy { viewerBookmarked } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(bookmarked["bookmarkCaseStudy"]["caseStudy"]["viewerBookmarked"], true);
    // A member's bookmarks are theirs alone, newest first, and paged.
    const BOOKMARKS: &str = "query($after: String) { myBookmarks(first: 1, after: $after) { edges { node { bookmarkedAt caseStudy { id title authors { handle } } } } pageInfo { hasNextPage endCursor } } }";
    let listed = grace.data(BOOKMARKS, json!({})).await;
    assert_eq!(listed["myBookmarks"]["edges"][0]["node"]["caseStudy"]["id"], json!(id), "{listed}");
    assert_eq!(listed["myBookmarks"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(mary.data(BOOKMARKS, json!({})).await["myBookmarks"]["edges"], json!([]));
    assert_eq!(error_code(&app.anonymous().gql(BOOKMARKS, json!({})).await), "UNAUTHENTICATED");
    grace
        .data(
            "mutation($id: ID!) { bookmarkCaseStudy(input: { id: $id, on: false }) { caseStudy { viewerBookmarked } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(grace.data(BOOKMARKS, json!({})).await["myBookmarks"]["edges"], json!([]));

    const INTEREST: &str = "mutation($id: ID!, $note: String!) { registerInterest(input: { id: $id, note: $note }) { userErrors { field code } } }";
    grace.data(INTEREST, json!({ "id": id, "note": "Wessex is starting the same discovery." })).await;
    grace.data(INTEREST, json!({ "id": id, "note": "Wessex starts in January." })).await;
    let too_long = mary.data(INTEREST, json!({ "id": id, "note": "n".repeat(501) })).await;
    assert_eq!(user_errors(&too_long["registerInterest"]), vec![("note".into(), "TOO_LONG".into())]);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'case_study.interest_registered'").await, 1);

    const WHO: &str = "query($id: ID!) { node(id: $id) { ... on CaseStudy { interest { member { handle } note } } } }";
    let seen = ada.data(WHO, json!({ "id": id })).await;
    assert_eq!(
        seen["node"]["interest"],
        json!([{ "member": { "handle": "grace" }, "note": "Wessex starts in January." }])
    );
    assert_eq!(error_code(&mary.gql(WHO, json!({ "id": id })).await), "FORBIDDEN");
    grace
        .data(
            "mutation($id: ID!) { withdrawInterest(input: { id: $id }) { userErrors { code } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(ada.data(WHO, json!({ "id": id })).await["node"]["interest"], json!([]));
}

/// The published list is served by an index on both databases, with and without the
/// organisation and phase filters: no full scan of case_studies, no sort of the result.
/// (PostgreSQL is told to avoid sequential scans, since on a tiny table it would prefer
/// them whatever the indexes; the question is whether an index can serve the query.)
async fn the_case_study_list_is_served_by_an_index(app: TestApp) {
    use kettle::case_studies::{Filter, Phase};
    let cases: [(Option<i64>, Option<Phase>, &str); 3] = [
        (None, None, "case_studies_latest"),
        (Some(1), None, "case_studies_by_organisation"),
        (None, Some(Phase::Live), "case_studies_by_phase"),
    ];
    for (organisation, phase, wanted) in cases {
        let filter = Filter { organisation_id: organisation, phase, ..Filter::default() };
        let first_page = kettle::db::Keyset { after: None, before: None, forward: true, fetch: 21 };
        let sql = kettle::case_studies::list_published_sql(&first_page, &filter);
        let phase = phase.map(Phase::as_str);
        let plan = query_plan(&app, &sql, |query| {
            query
                .bind(organisation)
                .bind(phase)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(20i64)
        })
        .await;
        let text = plan.join("\n");
        eprintln!("{} plan with organisation {organisation:?}, phase {phase:?}:\n{text}", app.backend().name());
        assert!(text.contains(wanted), "the list should use {wanted}: {text}");
        assert!(!text.contains("Seq Scan on case_studies"), "{text}");
        assert!(
            plan.iter().all(|line| !line.starts_with("SCAN c") || line.contains("USING INDEX")),
            "a full scan of case_studies: {text}"
        );
        assert!(
            !text.contains("USE TEMP B-TREE FOR ORDER BY") && !text.contains("Sort Key"),
            "the result is sorted after the fact: {text}"
        );
    }
}

/// A later page (`after`) or an earlier one (`before`) starts from its cursor in the
/// index, under the generic plan that PostgreSQL may settle on for a prepared statement
/// (which `query_plan` forces): the keyset bound is an index condition, not a filter
/// applied while walking the whole list from the top. With `($5 IS NULL OR …)` it was
/// a filter, and a page near the end of 1,000,000 case studies took seconds.
async fn a_page_deep_in_the_list_is_found_through_the_index(app: TestApp) {
    use kettle::{case_studies::Filter, db::Keyset};
    let cursor = Some((1_700_000_000_000_i64, 500_i64));
    for keyset in [
        Keyset { after: cursor, before: None, forward: true, fetch: 21 },
        Keyset { after: None, before: cursor, forward: false, fetch: 21 },
    ] {
        let sql = kettle::case_studies::list_published_sql(&keyset, &Filter::default());
        let ((after_at, after_id), (before_at, before_id)) = (keyset.after.unzip(), keyset.before.unzip());
        let plan = query_plan(&app, &sql, |query| {
            query
                .bind(None::<i64>)
                .bind(None::<&str>)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(after_at)
                .bind(after_id)
                .bind(before_at)
                .bind(before_id)
                .bind(21i64)
        })
        .await;
        let text = plan.join("\n");
        eprintln!("{} plan of a page {keyset:?}:\n{text}", app.backend().name());
        match app.backend() {
            Backend::Postgres { .. } => {
                let bound = plan.iter().find(|line| line.contains("Index Cond")).map(String::as_str).unwrap_or("");
                assert!(bound.contains("published_at"), "the cursor is not an index condition: {text}");
                assert!(!text.contains("IS NULL) OR"), "a condition no index can serve: {text}");
            }
            Backend::Sqlite => assert!(
                plan.iter().any(|line| line.starts_with("SEARCH c USING INDEX case_studies_latest")),
                "the cursor does not start the index walk: {text}"
            ),
        }
        assert!(!text.contains("Sort Key") && !text.contains("TEMP B-TREE"), "{text}");
    }
}

/// The useful, comment and artefact counts a list shows are kept on the case study's row
/// (and the comment count on the artefact's) by triggers, whatever changes what they
/// count: the API's marks, comments and artefact links, and statements that bypass it
/// (a hard delete, an unlinked artefact, an erased member's marks and comments). After
/// every step the row agrees with a fresh count, and the API shows the row's figures.
async fn counts_on_the_row_follow_every_change(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Bins").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mary = app.member("mary@example.org", "Mary").await;
    let id = create_case_study(&ada, case_study("Bin reminders", &[&topic])).await["id"].as_str().unwrap().to_string();
    ada.data(PUBLISH, json!({ "id": id })).await;

    const DRIFT: &str = "SELECT COUNT(*) FROM case_studies c WHERE \
        useful_count <> (SELECT COUNT(*) FROM case_study_marks m WHERE m.case_study_id = c.id AND m.kind = 'useful') \
        OR comment_count <> (SELECT COUNT(*) FROM comments k WHERE k.subject_type = 'case_study' \
                             AND k.subject_id = c.id AND k.deleted_at IS NULL) \
        OR artefact_count <> (SELECT COUNT(*) FROM artefact_case_studies l WHERE l.case_study_id = c.id)";
    const ARTEFACT_DRIFT: &str =
        "SELECT COUNT(*) FROM artefacts a WHERE comment_count <> (SELECT COUNT(*) FROM comments k \
        WHERE k.subject_type = 'artefact' AND k.subject_id = a.id AND k.deleted_at IS NULL)";
    const COUNTS: &str =
        "query($id: ID!) { node(id: $id) { ... on CaseStudy { usefulCount commentCount artefactCount } } }";
    const MARK: &str = "mutation($id: ID!, $on: Boolean!) { markCaseStudyUseful(input: { id: $id, on: $on }) { caseStudy { usefulCount } } }";
    let check = |useful: i64, comments: i64, artefacts: i64| {
        let (app, client, id) = (&app, &mary, id.clone());
        async move {
            assert_eq!(app.count(DRIFT).await, 0, "a count on the row drifted from what it counts");
            assert_eq!(app.count(ARTEFACT_DRIFT).await, 0, "an artefact's comment count drifted");
            let node = client.data(COUNTS, json!({ "id": id })).await["node"].clone();
            assert_eq!(node, json!({ "usefulCount": useful, "commentCount": comments, "artefactCount": artefacts }));
        }
    };
    check(0, 0, 0).await;

    // Marks: the mutation's own payload already shows the new count.
    let marked = grace.data(MARK, json!({ "id": id, "on": true })).await;
    assert_eq!(marked["markCaseStudyUseful"]["caseStudy"]["usefulCount"], 1, "{marked}");
    mary.data(MARK, json!({ "id": id, "on": true })).await;
    mary.data(MARK, json!({ "id": id, "on": true })).await;
    check(2, 0, 0).await;
    let unmarked = grace.data(MARK, json!({ "id": id, "on": false })).await;
    assert_eq!(unmarked["markCaseStudyUseful"]["caseStudy"]["usefulCount"], 1, "{unmarked}");
    check(1, 0, 0).await;

    // Comments and replies; a deleted one with replies stays as a placeholder and stops
    // counting; a hard delete takes its replies with it.
    let first = crate::comments::post(&grace, &id, None, "Useful, thanks.").await;
    let reply = crate::comments::post(&ada, &id, Some(first.as_str()), "Glad it helped.").await;
    crate::comments::post(&mary, &id, None, "We did this too.").await;
    check(1, 3, 0).await;
    const DELETE: &str = "mutation($id: ID!) { deleteComment(input: { id: $id }) { userErrors { code } } }";
    grace.data(DELETE, json!({ "id": first })).await;
    check(1, 2, 0).await;
    let (_, reply_number) = kettle::graphql::relay::parse_global_id(&reply).unwrap();
    app.execute_sql(&format!("UPDATE comments SET deleted_at = 1 WHERE id = {reply_number}")).await;
    check(1, 1, 0).await;
    app.execute_sql(&format!("UPDATE comments SET deleted_at = NULL WHERE id = {reply_number}")).await;
    check(1, 2, 0).await;
    let (_, first_number) = kettle::graphql::relay::parse_global_id(&first).unwrap();
    app.execute_sql(&format!("DELETE FROM comments WHERE id = {first_number}")).await;
    check(1, 1, 0).await;

    // Artefact links, and comments on an artefact.
    let mut input = crate::artefacts::artefact("Reminder service", &[&topic]);
    input["caseStudyIds"] = json!([id]);
    let artefact = crate::artefacts::share(&ada, input.clone()).await;
    input["title"] = json!("Reminder data");
    crate::artefacts::share(&grace, input).await;
    check(1, 1, 2).await;
    let artefact_id = artefact["id"].as_str().unwrap();
    crate::comments::post(&mary, artefact_id, None, "Reusing this.").await;
    assert_eq!(app.count("SELECT comment_count FROM artefacts WHERE title = 'Reminder service'").await, 1);
    let (_, artefact_number) = kettle::graphql::relay::parse_global_id(artefact_id).unwrap();
    app.execute_sql(&format!("DELETE FROM artefact_case_studies WHERE artefact_id = {artefact_number}")).await;
    check(1, 1, 1).await;

    // Statements like erasure's: Mary's mark and comments (the case study's and the
    // artefact's) go.
    app.execute_sql("DELETE FROM case_study_marks WHERE member_id = (SELECT id FROM members WHERE handle = 'mary')")
        .await;
    app.execute_sql("DELETE FROM comments WHERE author_id = (SELECT id FROM members WHERE handle = 'mary')").await;
    let ada_view = ada.data(COUNTS, json!({ "id": id })).await;
    assert_eq!(ada_view["node"], json!({ "usefulCount": 0, "commentCount": 0, "artefactCount": 1 }), "{ada_view}");
    assert_eq!(app.count(DRIFT).await, 0);
    assert_eq!(app.count(ARTEFACT_DRIFT).await, 0);
    assert_eq!(app.count("SELECT comment_count FROM artefacts WHERE title = 'Reminder service'").await, 0);
}
