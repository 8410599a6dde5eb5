//! Comments through the API: threads and replies, editing and deleting, validation, and
//! the Markdown injection corpus written through every path that stores Markdown.

use serde_json::{json, Value};

use crate::{
    artefacts::{artefact, number, share, unknown, SHARE},
    case_studies::{admin, case_study, create_case_study, create_topic, CREATE, PUBLISH, UPDATE},
    scenarios,
    support::{error_code, user_errors, Client, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        replies_join_their_thread_and_drafts_take_no_comments,
        comments_are_edited_and_deleted_by_the_right_people,
        comment_input_is_validated_and_changes_nothing,
        markdown_injection_is_neutralised_on_every_write,
    ]
}

const POST: &str = "mutation($input: PostCommentInput!) { postComment(input: $input) { comment { id body bodyHtml editedAt deleted author { handle } } userErrors { field code } } }";
const EDIT: &str = "mutation($id: ID!, $body: String!) { editComment(input: { id: $id, body: $body }) { comment { id body bodyHtml editedAt } userErrors { field code } } }";
const DELETE: &str =
    "mutation($id: ID!) { deleteComment(input: { id: $id }) { deletedCommentId userErrors { field code } } }";
const THREADS: &str = "query($id: ID!) { node(id: $id) { ... on CaseStudy { commentCount comments { edges { node { ...comment replies { ...comment } } } } } \
    ... on Artefact { commentCount comments { edges { node { ...comment replies { ...comment } } } } } } } \
    fragment comment on Comment { body bodyHtml deleted author { handle } }";

/// Posts a comment (a reply when `parent` is given) that must be valid; returns its id.
pub(crate) async fn post(client: &Client, subject: &str, parent: Option<&str>, body: &str) -> String {
    let data = client.data(POST, json!({ "input": { "subjectId": subject, "parentId": parent, "body": body } })).await;
    assert_eq!(data["postComment"]["userErrors"], json!([]), "{data}");
    data["postComment"]["comment"]["id"].as_str().unwrap().to_string()
}

/// A published case study by `client`; returns its id.
pub(crate) async fn published(client: &Client, topic: &str, title: &str) -> String {
    let id = create_case_study(client, case_study(title, &[topic])).await["id"].as_str().unwrap().to_string();
    client.data(PUBLISH, json!({ "id": id })).await;
    id
}

/// A subject's threads as (author or "-", body, [(reply author, reply body)]), and its
/// comment count.
async fn threads(client: &Client, subject: &str) -> (Vec<(String, String, Vec<(String, String)>)>, i64) {
    let data = client.data(THREADS, json!({ "id": subject })).await;
    let node = &data["node"];
    let who = |c: &Value| c["author"]["handle"].as_str().unwrap_or("-").to_string();
    let list = node["comments"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let c = &e["node"];
            let replies = c["replies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (who(r), r["body"].as_str().unwrap().to_string()))
                .collect();
            (who(c), c["body"].as_str().unwrap().to_string(), replies)
        })
        .collect();
    (list, node["commentCount"].as_i64().unwrap())
}

fn thread(author: &str, body: &str, replies: &[(&str, &str)]) -> (String, String, Vec<(String, String)>) {
    (author.into(), body.into(), replies.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect())
}

async fn replies_join_their_thread_and_drafts_take_no_comments(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Libraries").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mary = app.member("mary@example.org", "Mary").await;
    let story = published(&ada, &topic, "Library card sign-up").await;

    let first = post(&grace, &story, None, "How long did the **discovery** take?").await;
    let reply = post(&ada, &story, Some(&first), "About six weeks.").await;
    let reply_to_reply = post(&mary, &story, Some(&reply), "Ours took eight.").await;
    post(&mary, &story, None, "Did you test with screen readers?").await;
    let (list, count) = threads(&ada, &story).await;
    assert_eq!(
        list,
        [
            thread(
                "grace",
                "How long did the **discovery** take?",
                &[("ada", "About six weeks."), ("mary", "Ours took eight.")]
            ),
            thread("mary", "Did you test with screen readers?", &[]),
        ]
    );
    assert_eq!(count, 4, "replies count");
    assert_eq!(
        app.count(&format!("SELECT parent_id FROM comments WHERE id = {}", number("Comment", &json!(reply_to_reply))))
            .await,
        number("Comment", &json!(first)),
        "a reply to a reply joins the top-level thread"
    );
    let rendered = app.anonymous().data(THREADS, json!({ "id": story })).await;
    assert_eq!(
        rendered["node"]["comments"]["edges"][0]["node"]["bodyHtml"],
        "<p>How long did the <strong>discovery</strong> take?</p>\n"
    );
    let seen = app
        .anonymous()
        .data(
            "query($id: ID!) { node(id: $id) { ... on Comment { replies { id } subject { ... on CaseStudy { title } } } } }",
            json!({ "id": reply_to_reply }),
        )
        .await;
    assert_eq!(seen["node"], json!({ "replies": [], "subject": { "title": "Library card sign-up" } }));
    let paged = app
        .anonymous()
        .data(
            "query($id: ID!) { node(id: $id) { ... on CaseStudy { comments(first: 1) { edges { node { body } } pageInfo { hasNextPage } } } } }",
            json!({ "id": story }),
        )
        .await;
    assert_eq!(
        paged["node"]["comments"],
        json!({ "edges": [{ "node": { "body": "How long did the **discovery** take?" } }], "pageInfo": { "hasNextPage": true } })
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'comment.posted'").await, 4);

    // A draft takes no comments, not even from its author, and lists none.
    let draft = create_case_study(&ada, case_study("Unfinished", &[&topic])).await["id"].as_str().unwrap().to_string();
    for who in [&grace, &ada] {
        let refused = who.data(POST, json!({ "input": { "subjectId": draft, "body": "Early thoughts" } })).await;
        assert_eq!(user_errors(&refused["postComment"]), vec![("subjectId".into(), "NOT_FOUND".into())]);
    }
    assert_eq!(threads(&ada, &draft).await, (vec![], 0));
    assert_eq!(app.count("SELECT COUNT(*) FROM comments").await, 4);
}

async fn comments_are_edited_and_deleted_by_the_right_people(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Housing").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mary = app.member("mary@example.org", "Mary").await;
    let story = published(&ada, &topic, "Repairs online").await;

    let posted = grace.data(POST, json!({ "input": { "subjectId": story, "body": "First draft" } })).await;
    let comment = &posted["postComment"]["comment"];
    assert_eq!(comment["editedAt"], json!(null));
    let id = comment["id"].as_str().unwrap().to_string();
    let edited = grace.data(EDIT, json!({ "id": id, "body": "Edited *text*, thanks @ada" })).await;
    let edited = &edited["editComment"]["comment"];
    assert!(edited["editedAt"].is_string(), "{edited}");
    assert_eq!(edited["body"], "Edited *text*, thanks @ada");
    let html = edited["bodyHtml"].as_str().unwrap();
    assert!(html.contains("<em>text</em>") && html.contains("href=\"/members/@ada\" class=\"mention\""), "{html}");
    let stored: String =
        sqlx::query_scalar("SELECT body_html FROM comments").fetch_one(&app.state().db.pool).await.unwrap();
    assert_eq!(stored, html, "rendered once, on write");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'member.mentioned'").await,
        0,
        "an edit does not notify"
    );

    // Only its author edits; only its author and moderators delete.
    let body = ada.gql(EDIT, json!({ "id": id, "body": "Hijacked" })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let blank = grace.data(EDIT, json!({ "id": id, "body": "  " })).await;
    assert_eq!(user_errors(&blank["editComment"]), vec![("body".into(), "BLANK".into())]);
    assert_eq!(threads(&ada, &story).await.0, [thread("grace", "Edited *text*, thanks @ada", &[])]);
    let body = ada.gql(DELETE, json!({ "id": id })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    const FLAGS: &str = "query($id: ID!) { node(id: $id) { ... on Comment { viewerIsAuthor viewerCanDelete } } }";
    assert_eq!(
        grace.data(FLAGS, json!({ "id": id })).await["node"],
        json!({ "viewerIsAuthor": true, "viewerCanDelete": true })
    );
    assert_eq!(
        ada.data(FLAGS, json!({ "id": id })).await["node"],
        json!({ "viewerIsAuthor": false, "viewerCanDelete": false })
    );

    // Deleting a comment with replies leaves a placeholder; its last reply going takes it.
    let reply = post(&mary, &story, Some(&id), "Agreed.").await;
    let deleted = grace.data(DELETE, json!({ "id": id })).await;
    assert_eq!(deleted["deleteComment"], json!({ "deletedCommentId": id, "userErrors": [] }));
    let data = ada.data(THREADS, json!({ "id": story })).await;
    assert_eq!(
        data["node"],
        json!({ "commentCount": 1, "comments": { "edges": [{ "node": {
            "body": "", "bodyHtml": "", "deleted": true, "author": null,
            "replies": [{ "body": "Agreed.", "bodyHtml": "<p>Agreed.</p>\n", "deleted": false, "author": { "handle": "mary" } }]
        } }] } })
    );
    assert_eq!(
        grace.data(FLAGS, json!({ "id": id })).await["node"],
        json!({ "viewerIsAuthor": false, "viewerCanDelete": false })
    );
    let again = grace.data(EDIT, json!({ "id": id, "body": "Back from the dead" })).await;
    assert_eq!(user_errors(&again["editComment"]), vec![("id".into(), "NOT_FOUND".into())]);
    let again = grace.data(DELETE, json!({ "id": id })).await;
    assert_eq!(user_errors(&again["deleteComment"]), vec![("id".into(), "NOT_FOUND".into())]);
    let refused =
        ada.data(POST, json!({ "input": { "subjectId": story, "parentId": id, "body": "Late reply" } })).await;
    assert_eq!(user_errors(&refused["postComment"]), vec![("parentId".into(), "NOT_FOUND".into())]);
    mary.data(DELETE, json!({ "id": reply })).await;
    assert_eq!(threads(&ada, &story).await, (vec![], 0));
    assert_eq!(app.count("SELECT COUNT(*) FROM comments").await, 0);

    // A comment without replies goes entirely; a reply going leaves its live parent.
    let kept = post(&grace, &story, None, "Still here").await;
    let short_lived = post(&ada, &story, Some(&kept), "Gone soon").await;
    ada.data(DELETE, json!({ "id": short_lived })).await;
    assert_eq!(threads(&ada, &story).await, (vec![thread("grace", "Still here", &[])], 1));

    // Moderators may delete anyone's.
    let body = mary.gql(DELETE, json!({ "id": kept })).await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    app.execute_sql("UPDATE members SET role = 'moderator' WHERE email_normalized = 'mary@example.org'").await;
    assert_eq!(mary.data(FLAGS, json!({ "id": kept })).await["node"]["viewerCanDelete"], true);
    let removed = mary.data(DELETE, json!({ "id": kept })).await;
    assert_eq!(removed["deleteComment"]["userErrors"], json!([]));
    assert_eq!(threads(&ada, &story).await, (vec![], 0));
}

async fn comment_input_is_validated_and_changes_nothing(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Transport").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let story = published(&ada, &topic, "Bus passes").await;
    let other = published(&ada, &topic, "Blue badges").await;
    let elsewhere = post(&grace, &other, None, "On another case study").await;
    let thing = share(&ada, artefact("Pass checker", &[&topic])).await["id"].as_str().unwrap().to_string();
    let topic_id = topic.clone();

    let cases: Vec<(Value, (&str, &str))> = vec![
        (json!({ "body": "" }), ("body", "BLANK")),
        (json!({ "body": " \n\t " }), ("body", "BLANK")),
        (json!({ "body": "x".repeat(10_001) }), ("body", "TOO_LONG")),
        (json!({ "parentId": unknown("Comment") }), ("parentId", "NOT_FOUND")),
        (json!({ "parentId": "garbage" }), ("parentId", "NOT_FOUND")),
        (json!({ "parentId": elsewhere }), ("parentId", "NOT_FOUND")),
        (json!({ "subjectId": thing, "parentId": elsewhere }), ("parentId", "NOT_FOUND")),
        (json!({ "subjectId": unknown("CaseStudy") }), ("subjectId", "NOT_FOUND")),
        (json!({ "subjectId": unknown("Artefact") }), ("subjectId", "NOT_FOUND")),
        (json!({ "subjectId": topic_id }), ("subjectId", "NOT_FOUND")),
        (json!({ "subjectId": "garbage" }), ("subjectId", "NOT_FOUND")),
    ];
    for (changes, (field, code)) in cases {
        let mut input = json!({ "subjectId": story, "body": "A fine comment." });
        for (key, value) in changes.as_object().unwrap() {
            input[key] = value.clone();
        }
        let refused = grace.data(POST, json!({ "input": input })).await;
        let summary: String = changes.to_string().chars().take(120).collect();
        assert_eq!(user_errors(&refused["postComment"]), vec![(field.to_string(), code.to_string())], "{summary}");
        assert_eq!(refused["postComment"]["comment"], json!(null));
    }
    let anonymous = app.anonymous();
    let body = anonymous.gql(POST, json!({ "input": { "subjectId": story, "body": "Hello" } })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&anonymous.gql(EDIT, json!({ "id": elsewhere, "body": "Mine now" })).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(error_code(&anonymous.gql(DELETE, json!({ "id": elsewhere })).await), "UNAUTHENTICATED");
    assert_eq!(app.count("SELECT COUNT(*) FROM comments").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'comment.posted'").await, 1);
    let too_long = grace.data(EDIT, json!({ "id": elsewhere, "body": "x".repeat(10_001) })).await;
    assert_eq!(user_errors(&too_long["editComment"]), vec![("body".into(), "TOO_LONG".into())]);

    // At the limit is fine, and so is an artefact as the subject.
    post(&grace, &story, None, &"x".repeat(10_000)).await;
    post(&grace, &thing, None, "On the artefact").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM comments").await, 3);
    assert_eq!(threads(&ada, &thing).await, (vec![thread("grace", "On the artefact", &[])], 1));
}

/// Every source of the injection corpus (`tests/fixtures/markdown_injection.txt`, which
/// the Markdown unit tests also use) is written as a case study body, an artefact
/// description and a comment, created and edited, and none of the HTML returned or
/// stored contains anything `markdown::unsafe_markup` forbids.
async fn markdown_injection_is_neutralised_on_every_write(app: TestApp) {
    let corpus: Vec<&str> =
        include_str!("../fixtures/markdown_injection.txt").lines().filter(|l| !l.is_empty()).collect();
    assert!(corpus.len() >= 30, "{corpus:?}");
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Security").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let story = published(&ada, &topic, "Somewhere to comment").await;
    let thing = share(&ada, artefact("Edited many times", &[&topic])).await["id"].as_str().unwrap().to_string();
    let comment = post(&ada, &story, None, "Edited many times").await;

    let check = |path: &str, source: &str, html: &Value| {
        let html = html.as_str().unwrap_or_else(|| panic!("{path} of {source:?} returned no HTML"));
        if let Some(problem) = kettle::markdown::unsafe_markup(html) {
            panic!("{path} of {source:?} returned {html:?}, which contains {problem}");
        }
    };
    // The case study and the artefact are edited once per source, so both are at the
    // same version.
    for (version, source) in (1..).zip(&corpus) {
        let mut input = case_study("Injected", &[&topic]);
        input["body"] = json!(source);
        let created = ada.data(CREATE, json!({ "input": input })).await;
        check("createCaseStudy", source, &created["createCaseStudy"]["caseStudy"]["bodyHtml"]);
        input["id"] = json!(story);
        input["version"] = json!(version);
        input["title"] = json!("Somewhere to comment");
        let updated = ada.data(UPDATE, json!({ "input": input })).await;
        assert_eq!(updated["updateCaseStudy"]["userErrors"], json!([]), "{updated}");
        check("updateCaseStudy", source, &updated["updateCaseStudy"]["caseStudy"]["bodyHtml"]);

        let mut input = artefact("Injected", &[&topic]);
        input["description"] = json!(source);
        let created = ada.data(SHARE, json!({ "input": input })).await;
        assert_eq!(created["createArtefact"]["userErrors"], json!([]), "{created}");
        check("createArtefact", source, &created["createArtefact"]["artefact"]["descriptionHtml"]);
        input["id"] = json!(thing);
        input["version"] = json!(version);
        let updated = ada
            .data(
                "mutation($input: UpdateArtefactInput!) { updateArtefact(input: $input) { artefact { descriptionHtml } userErrors { field code } } }",
                json!({ "input": input }),
            )
            .await;
        assert_eq!(updated["updateArtefact"]["userErrors"], json!([]), "{updated}");
        check("updateArtefact", source, &updated["updateArtefact"]["artefact"]["descriptionHtml"]);

        for subject in [&story, &thing] {
            let posted = ada.data(POST, json!({ "input": { "subjectId": subject, "body": source } })).await;
            check("postComment", source, &posted["postComment"]["comment"]["bodyHtml"]);
        }
        let edited = ada.data(EDIT, json!({ "id": comment, "body": source })).await;
        check("editComment", source, &edited["editComment"]["comment"]["bodyHtml"]);
        let preview = ada.data("query($s: String!) { markdownPreview(source: $s) }", json!({ "s": source })).await;
        check("markdownPreview", source, &preview["markdownPreview"]);
    }

    // And what was stored, read straight from the database.
    let n = corpus.len() as i64;
    for (sql, expected) in [
        ("SELECT body_html FROM case_studies", n + 1),
        ("SELECT description_html FROM artefacts", n + 1),
        ("SELECT body_html FROM comments", 2 * n + 1),
    ] {
        let stored: Vec<String> = sqlx::query_scalar(sql).fetch_all(&app.state().db.pool).await.unwrap();
        assert_eq!(stored.len() as i64, expected, "{sql}");
        for html in stored {
            assert_eq!(kettle::markdown::unsafe_markup(&html), None, "{sql}: {html:?}");
        }
    }
}
