//! Co-authors with their consent: naming someone invites them, and only once they accept
//! are they listed, able to edit, and able to see a draft.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    case_studies::{admin, case_study, create_case_study, create_topic, PUBLISH, UPDATE},
    scenarios,
    site::Browser,
    support::{error_code, query_plan, user_errors, Client, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        an_invitee_is_not_an_author_until_they_accept,
        a_declined_invitation_lists_nobody_and_is_sent_again_only_on_purpose,
        authors_withdraw_invitations_and_remove_co_authors_who_may_also_leave,
        only_the_invitee_can_answer_their_invitation,
        invitations_page_newest_first_and_are_served_by_indexes,
        invitations_are_answered_in_the_site_without_javascript,
    ]
}

pub(crate) const RESPOND: &str = "mutation($id: ID!, $accept: Boolean!) { respondToCoAuthorInvitation(input: { caseStudyId: $id, accept: $accept }) { invitation { caseStudyId title status respondedAt } caseStudy { id viewerCanEdit authors { handle } } userErrors { field code message } } }";
const INVITATIONS: &str = "query($first: Int, $after: String) { myCoAuthorInvitations(first: $first, after: $after) { edges { node { caseStudyId title status invitedBy { handle } caseStudy { id } } } pageInfo { hasNextPage endCursor } } }";
const NODE: &str = "query($id: ID!) { node(id: $id) { ... on CaseStudy { title viewerCanEdit authors { handle } pendingCoAuthors { handle } } } }";
const LEAVE: &str = "mutation($id: ID!) { leaveCaseStudy(input: { id: $id }) { caseStudy { id authors { handle } } userErrors { field code } } }";

/// Accepts `client`'s invitation to co-author the case study `id`.
pub(crate) async fn accept(client: &Client, id: &str) {
    let data = client.data(RESPOND, json!({ "id": id, "accept": true })).await;
    assert_eq!(data["respondToCoAuthorInvitation"]["userErrors"], json!([]), "{data}");
}

async fn invite(author: &Client, title: &str, topic: &str, handles: &[&str]) -> String {
    let mut input = case_study(title, &[topic]);
    input["coAuthorHandles"] = json!(handles);
    create_case_study(author, input).await["id"].as_str().unwrap().to_string()
}

/// Saves an edit of `id` (at `version`) naming `handles` as its co-authors.
async fn name_co_authors(author: &Client, id: &str, version: i64, topic: &str, handles: &[&str]) -> Value {
    let mut edit = case_study("Accessibility audit", &[topic]);
    edit["id"] = json!(id);
    edit["version"] = json!(version);
    edit["coAuthorHandles"] = json!(handles);
    let data = author.data(UPDATE, json!({ "input": edit })).await;
    assert_eq!(data["updateCaseStudy"]["userErrors"], json!([]), "{data}");
    data
}

fn handles(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|m| m["handle"].as_str().unwrap())
        .collect()
}

async fn invitation_titles(client: &Client) -> Vec<String> {
    let data = client.data(INVITATIONS, json!({})).await;
    data["myCoAuthorInvitations"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["title"].as_str().unwrap().to_string())
        .collect()
}

async fn member_id(app: &TestApp, handle: &str) -> i64 {
    app.count(&format!("SELECT id FROM members WHERE handle = '{handle}'")).await
}

async fn an_invitee_is_not_an_author_until_they_accept(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Accessibility").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let stranger = app.member("stranger@example.org", "Stranger").await;
    let mut input = case_study("Accessibility audit", &[&topic]);
    input["coAuthorHandles"] = json!(["@Grace"]);
    let draft = create_case_study(&ada, input).await;
    assert_eq!(draft["authors"], json!([{ "handle": "ada" }]), "invited, not listed");
    let id = draft["id"].as_str().unwrap().to_string();

    // The event for the notifications, written in the invitation's transaction.
    let (ada_id, grace_id) = (member_id(&app, "ada").await, member_id(&app, "grace").await);
    let case_study_id = app.count("SELECT id FROM case_studies").await;
    let events = format!(
        "SELECT COUNT(*) FROM outbox_events WHERE kind = 'case_study.coauthor_invited' AND subject_type = 'CaseStudy' \
         AND subject_id = {case_study_id} AND actor_id = {ada_id} AND payload LIKE '%\"memberId\":{grace_id}%'"
    );
    assert_eq!(app.count(&events).await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM case_study_coauthor_invitations WHERE status = 'pending'").await,
        1,
        "one invitation, waiting"
    );

    // The author sees who is invited; nobody else does, and the invitee cannot open the
    // draft, edit or publish it.
    let seen = ada.data(NODE, json!({ "id": id })).await;
    assert_eq!(handles(&seen["node"]["authors"]), ["ada"]);
    assert_eq!(handles(&seen["node"]["pendingCoAuthors"]), ["grace"]);
    for who in [&grace, &stranger] {
        assert_eq!(who.data(NODE, json!({ "id": id })).await["node"], json!(null));
    }
    let mut edit = case_study("Grace's title", &[&topic]);
    edit["id"] = json!(id);
    edit["version"] = json!(1);
    let refused = grace.data(UPDATE, json!({ "input": edit })).await;
    assert_eq!(user_errors(&refused["updateCaseStudy"]), vec![("id".into(), "NOT_FOUND".into())]);
    let refused = grace.data(PUBLISH, json!({ "id": id })).await;
    assert_eq!(user_errors(&refused["publishCaseStudy"]), vec![("id".into(), "NOT_FOUND".into())]);
    let mine = grace.data("{ myCaseStudies { edges { node { id } } } }", json!({})).await;
    assert_eq!(mine["myCaseStudies"]["edges"], json!([]));

    // The invitee sees the title of what they are asked to join, and who asked; not the
    // draft itself.
    let invitations = grace.data(INVITATIONS, json!({})).await;
    assert_eq!(
        invitations["myCoAuthorInvitations"]["edges"],
        json!([{ "node": { "caseStudyId": id, "title": "Accessibility audit", "status": "PENDING", "invitedBy": { "handle": "ada" }, "caseStudy": null } }])
    );
    assert_eq!(invitation_titles(&ada).await, Vec::<String>::new());
    assert_eq!(invitation_titles(&stranger).await, Vec::<String>::new());
    assert_eq!(error_code(&app.anonymous().gql(INVITATIONS, json!({})).await), "UNAUTHENTICATED");

    // Published, it still names only the author: page, lists, author filter, search, feed.
    ada.data(PUBLISH, json!({ "id": id })).await;
    let anon = app.anonymous();
    let public = anon.data(NODE, json!({ "id": id })).await;
    assert_eq!(public["node"]["authors"], json!([{ "handle": "ada" }]));
    assert_eq!(public["node"]["pendingCoAuthors"], json!([]), "only authors see who is invited");
    let seen = grace.data(NODE, json!({ "id": id })).await;
    assert_eq!(
        (seen["node"]["viewerCanEdit"].clone(), seen["node"]["pendingCoAuthors"].clone()),
        (json!(false), json!([]))
    );
    let listed = anon.data("{ caseStudies { edges { node { authors { handle } } } } }", json!({})).await;
    assert_eq!(listed["caseStudies"]["edges"], json!([{ "node": { "authors": [{ "handle": "ada" }] } }]));
    let by_grace = anon.data("{ caseStudies(author: \"grace\") { edges { node { id } } } }", json!({})).await;
    assert_eq!(by_grace["caseStudies"]["edges"], json!([]));
    let found =
        anon.data("{ search(query: \"audit\") { node { ... on CaseStudy { authors { handle } } } } }", json!({})).await;
    assert_eq!(found["search"], json!([{ "node": { "authors": [{ "handle": "ada" }] } }]));
    let feed = app.http().get(app.url("/feeds/case-studies.atom")).send().await.unwrap().text().await.unwrap();
    assert!(feed.contains("Ada") && !feed.contains("Grace"), "{feed}");
    edit["version"] = json!(1);
    assert_eq!(error_code(&grace.gql(UPDATE, json!({ "input": edit })).await), "FORBIDDEN");
    let invitation = grace.data(INVITATIONS, json!({})).await;
    assert_eq!(invitation["myCoAuthorInvitations"]["edges"][0]["node"]["caseStudy"]["id"], json!(id), "now public");

    // Accepted: listed everywhere, and may edit.
    let accepted = grace.data(RESPOND, json!({ "id": id, "accept": true })).await;
    let payload = &accepted["respondToCoAuthorInvitation"];
    assert_eq!(payload["userErrors"], json!([]));
    assert_eq!(payload["invitation"]["status"], "ACCEPTED");
    assert!(payload["invitation"]["respondedAt"].is_string());
    assert_eq!(payload["caseStudy"]["viewerCanEdit"], true);
    assert_eq!(handles(&payload["caseStudy"]["authors"]), ["ada", "grace"]);
    assert_eq!(invitation_titles(&grace).await, Vec::<String>::new());
    let seen = ada.data(NODE, json!({ "id": id })).await;
    assert_eq!(
        (handles(&seen["node"]["authors"]), handles(&seen["node"]["pendingCoAuthors"])),
        (vec!["ada", "grace"], vec![])
    );
    let by_grace = anon.data("{ caseStudies(author: \"grace\") { edges { node { id } } } }", json!({})).await;
    assert_eq!(by_grace["caseStudies"]["edges"], json!([{ "node": { "id": id } }]));
    let feed = app.http().get(app.url("/feeds/case-studies.atom")).send().await.unwrap().text().await.unwrap();
    assert!(feed.contains("Grace"), "{feed}");
    // The list a save sends is the co-authors it keeps, so she names herself.
    edit["coAuthorHandles"] = json!(["grace"]);
    let saved = grace.data(UPDATE, json!({ "input": edit })).await;
    assert_eq!(saved["updateCaseStudy"]["caseStudy"]["title"], "Grace's title", "{saved}");
    assert_eq!(handles(&ada.data(NODE, json!({ "id": id })).await["node"]["authors"]), ["ada", "grace"]);

    // A draft opens to an invitee once they accept.
    let second = invite(&ada, "Second audit", &topic, &["grace"]).await;
    assert_eq!(grace.data(NODE, json!({ "id": second })).await["node"], json!(null));
    accept(&grace, &second).await;
    let seen = grace.data(NODE, json!({ "id": second })).await;
    assert_eq!(seen["node"]["viewerCanEdit"], true);
    assert_eq!(handles(&seen["node"]["pendingCoAuthors"]), Vec::<&str>::new());
    let mine = grace.data("{ myCaseStudies { edges { node { id } } } }", json!({})).await;
    assert_eq!(mine["myCaseStudies"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'case_study.coauthor_invited'").await, 2);
}

async fn a_declined_invitation_lists_nobody_and_is_sent_again_only_on_purpose(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Accessibility").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let id = invite(&ada, "Accessibility audit", &topic, &["grace"]).await;

    let declined = grace.data(RESPOND, json!({ "id": id, "accept": false })).await;
    let payload = &declined["respondToCoAuthorInvitation"];
    assert_eq!(payload["userErrors"], json!([]));
    assert_eq!(payload["invitation"]["status"], "DECLINED");
    assert_eq!(payload["invitation"]["title"], "Accessibility audit");
    assert_eq!(payload["caseStudy"], json!(null), "still a draft they cannot see");
    assert_eq!(grace.data(NODE, json!({ "id": id })).await["node"], json!(null));
    let seen = ada.data(NODE, json!({ "id": id })).await;
    assert_eq!((handles(&seen["node"]["authors"]), handles(&seen["node"]["pendingCoAuthors"])), (vec!["ada"], vec![]));
    assert_eq!(invitation_titles(&grace).await, Vec::<String>::new());
    let again = grace.data(RESPOND, json!({ "id": id, "accept": true })).await;
    assert_eq!(
        user_errors(&again["respondToCoAuthorInvitation"]),
        vec![("caseStudyId".into(), "NOT_FOUND".into())],
        "answered once"
    );

    // Saving the co-authors as the form gives them back (authors and pending invitees)
    // does not ask her again.
    name_co_authors(&ada, &id, 1, &topic, &[]).await;
    assert_eq!(invitation_titles(&grace).await, Vec::<String>::new());
    // Naming her again on purpose is a new invitation, with a new event; saving with her
    // still invited does not invite her twice.
    name_co_authors(&ada, &id, 2, &topic, &["grace"]).await;
    name_co_authors(&ada, &id, 3, &topic, &["grace"]).await;
    assert_eq!(invitation_titles(&grace).await, ["Accessibility audit"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'case_study.coauthor_invited'").await, 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM case_study_coauthor_invitations WHERE status = 'declined'").await,
        1,
        "the first answer is kept"
    );
    let seen = ada.data(NODE, json!({ "id": id })).await;
    assert_eq!(handles(&seen["node"]["pendingCoAuthors"]), ["grace"]);
}

async fn authors_withdraw_invitations_and_remove_co_authors_who_may_also_leave(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Accessibility").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let mary = app.member("mary@example.org", "Mary").await;
    let id = invite(&ada, "Accessibility audit", &topic, &["grace", "mary"]).await;
    let seen = ada.data(NODE, json!({ "id": id })).await;
    assert_eq!(handles(&seen["node"]["pendingCoAuthors"]), ["grace", "mary"]);

    // Withdrawn by leaving her off the list: gone from her invitations, and too late to accept.
    let saved = name_co_authors(&ada, &id, 1, &topic, &["mary"]).await;
    assert_eq!(saved["updateCaseStudy"]["caseStudy"]["version"], 2);
    assert_eq!(invitation_titles(&grace).await, Vec::<String>::new());
    let late = grace.data(RESPOND, json!({ "id": id, "accept": true })).await;
    assert_eq!(user_errors(&late["respondToCoAuthorInvitation"]), vec![("caseStudyId".into(), "NOT_FOUND".into())]);
    assert_eq!(grace.data(NODE, json!({ "id": id })).await["node"], json!(null));
    assert_eq!(app.count("SELECT COUNT(*) FROM case_study_coauthor_invitations WHERE status = 'withdrawn'").await, 1);
    let seen = ada.data(NODE, json!({ "id": id })).await;
    assert_eq!(
        (handles(&seen["node"]["authors"]), handles(&seen["node"]["pendingCoAuthors"])),
        (vec!["ada"], vec!["mary"])
    );

    // A co-author may invite others too; the invitation says who asked.
    accept(&mary, &id).await;
    name_co_authors(&mary, &id, 2, &topic, &["mary", "grace"]).await;
    let invitations = grace.data(INVITATIONS, json!({})).await;
    assert_eq!(invitations["myCoAuthorInvitations"]["edges"][0]["node"]["invitedBy"]["handle"], "mary");
    let seen = ada.data(NODE, json!({ "id": id })).await;
    assert_eq!(
        (handles(&seen["node"]["authors"]), handles(&seen["node"]["pendingCoAuthors"])),
        (vec!["ada", "mary"], vec!["grace"])
    );

    // A co-author leaves: no longer listed, and the draft is closed to them again.
    let left = mary.data(LEAVE, json!({ "id": id })).await;
    assert_eq!(
        left["leaveCaseStudy"],
        json!({ "caseStudy": null, "userErrors": [] }),
        "a draft they can no longer see"
    );
    assert_eq!(mary.data(NODE, json!({ "id": id })).await["node"], json!(null));
    assert_eq!(handles(&ada.data(NODE, json!({ "id": id })).await["node"]["authors"]), ["ada"]);
    // Its author cannot leave; nor can someone who is not a co-author.
    let refused = ada.data(LEAVE, json!({ "id": id })).await;
    assert_eq!(user_errors(&refused["leaveCaseStudy"]), vec![("id".into(), "INVALID".into())]);
    let refused = grace.data(LEAVE, json!({ "id": id })).await;
    assert_eq!(user_errors(&refused["leaveCaseStudy"]), vec![("id".into(), "NOT_FOUND".into())], "invited only");

    // Published, leaving keeps it readable; an author can also take a co-author off.
    ada.data(PUBLISH, json!({ "id": id })).await;
    accept(&grace, &id).await;
    name_co_authors(&ada, &id, 3, &topic, &["grace", "mary"]).await;
    accept(&mary, &id).await;
    assert_eq!(handles(&ada.data(NODE, json!({ "id": id })).await["node"]["authors"]), ["ada", "grace", "mary"]);
    let left = grace.data(LEAVE, json!({ "id": id })).await;
    assert_eq!(handles(&left["leaveCaseStudy"]["caseStudy"]["authors"]), ["ada", "mary"]);
    let refused = grace.data(LEAVE, json!({ "id": id })).await;
    assert_eq!(user_errors(&refused["leaveCaseStudy"]), vec![("id".into(), "INVALID".into())]);
    let removed = name_co_authors(&ada, &id, 4, &topic, &[]).await;
    assert_eq!(removed["updateCaseStudy"]["caseStudy"]["version"], 5);
    let seen = mary.data(NODE, json!({ "id": id })).await;
    assert_eq!((handles(&seen["node"]["authors"]), seen["node"]["viewerCanEdit"].clone()), (vec!["ada"], json!(false)));
    assert_eq!(error_code(&app.anonymous().gql(LEAVE, json!({ "id": id })).await), "UNAUTHENTICATED");
}

async fn only_the_invitee_can_answer_their_invitation(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Accessibility").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    let stranger = app.member("stranger@example.org", "Stranger").await;
    let id = invite(&ada, "Accessibility audit", &topic, &["grace"]).await;

    for who in [&stranger, &ada] {
        for accept in [true, false] {
            let refused = who.data(RESPOND, json!({ "id": id, "accept": accept })).await;
            assert_eq!(
                user_errors(&refused["respondToCoAuthorInvitation"]),
                vec![("caseStudyId".into(), "NOT_FOUND".into())]
            );
            assert_eq!(refused["respondToCoAuthorInvitation"]["invitation"], json!(null));
        }
    }
    let garbage = stranger.data(RESPOND, json!({ "id": "not-an-id", "accept": true })).await;
    assert_eq!(user_errors(&garbage["respondToCoAuthorInvitation"]), vec![("caseStudyId".into(), "NOT_FOUND".into())]);
    let body = app.anonymous().gql(RESPOND, json!({ "id": id, "accept": true })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert_eq!(stranger.data(NODE, json!({ "id": id })).await["node"], json!(null));
    let seen = ada.data(NODE, json!({ "id": id })).await;
    assert_eq!(
        (handles(&seen["node"]["authors"]), handles(&seen["node"]["pendingCoAuthors"])),
        (vec!["ada"], vec!["grace"])
    );

    // The invitee answering twice at once: one answer counts.
    let answers = (0..4).map(|i| {
        let grace = grace.clone();
        let id = id.clone();
        async move { grace.data(RESPOND, json!({ "id": id, "accept": i % 2 == 0 })).await }
    });
    let results = futures_util::future::join_all(answers).await;
    let answered = results.iter().filter(|r| r["respondToCoAuthorInvitation"]["userErrors"] == json!([])).count();
    assert_eq!(answered, 1, "{results:?}");
    let authors = app.count("SELECT COUNT(*) FROM case_study_authors").await;
    let accepted = app.count("SELECT COUNT(*) FROM case_study_coauthor_invitations WHERE status = 'accepted'").await;
    assert_eq!(authors, 1 + accepted, "an author row exactly when accepted");
}

async fn invitations_page_newest_first_and_are_served_by_indexes(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Accessibility").await;
    let ada = app.member("ada@example.org", "Ada").await;
    let grace = app.member("grace@example.org", "Grace").await;
    for i in 1..=3 {
        invite(&ada, &format!("Story {i}"), &topic, &["grace"]).await;
    }
    let first = grace.data(INVITATIONS, json!({ "first": 2 })).await;
    let connection = &first["myCoAuthorInvitations"];
    let titles: Vec<&str> =
        connection["edges"].as_array().unwrap().iter().map(|e| e["node"]["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Story 3", "Story 2"]);
    assert_eq!(connection["pageInfo"]["hasNextPage"], true);
    let next = grace.data(INVITATIONS, json!({ "first": 2, "after": connection["pageInfo"]["endCursor"] })).await;
    assert_eq!(next["myCoAuthorInvitations"]["edges"][0]["node"]["title"], "Story 1");
    assert_eq!(next["myCoAuthorInvitations"]["pageInfo"]["hasNextPage"], false);
    let body = grace.gql(INVITATIONS, json!({ "first": 101 })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");

    // A member's invitations: the invitee index, in order, no sort.
    for forward in [true, false] {
        let keyset = kettle::db::Keyset { after: None, before: None, forward, fetch: 21 };
        let sql = kettle::case_studies::coauthors::pending_for_sql(&keyset);
        let plan = query_plan(&app, &sql, |q| q.bind(1i64).bind(None::<i64>).bind(None::<i64>).bind(21i64)).await;
        let text = plan.join("\n");
        eprintln!("{} plan of a member's invitations:\n{text}", app.backend().name());
        assert!(text.contains("case_study_coauthor_invitations_invitee"), "{text}");
        assert!(!text.contains("Seq Scan") && !text.contains("Sort Key") && !text.contains("TEMP B-TREE"), "{text}");
    }
    // A page's pending co-authors (the loader's statement): the one-open-invitation index.
    let sql = "SELECT case_study_id, invitee_id FROM case_study_coauthor_invitations \
               WHERE status = 'pending' AND case_study_id IN ($1, $2) ORDER BY case_study_id, id";
    let plan = query_plan(&app, sql, |q| q.bind(1i64).bind(2i64)).await;
    let text = plan.join("\n");
    assert!(text.contains("case_study_coauthor_invitations_pending"), "{text}");
    assert!(!text.contains("Seq Scan"), "{text}");
}

async fn invitations_are_answered_in_the_site_without_javascript(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Bin collection").await;
    let mut ada = Browser::new(&app);
    ada.register("ada@example.org", "Ada").await;
    let mut grace = Browser::new(&app);
    grace.register("grace@example.org", "Grace").await;

    let form = ada.get("/case-studies/new").await;
    assert!(form.body.contains("Each new name is sent an invitation"), "{}", form.body);
    let fields = [
        ("action", "save"),
        ("title", "Bins online"),
        ("summary", "Reminders by text."),
        ("body", "We text residents."),
        ("phase", "LIVE"),
        ("topicIds", topic.as_str()),
        ("coAuthors", "@grace"),
    ];
    let saved = ada.post("/case-studies/new", &fields).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let path = saved.location();

    // The author sees who is invited, on the page and in the form (which keeps her name).
    let page = ada.get(path).await;
    assert!(page.body.contains("Invited to co-author") && page.body.contains(">Grace</a>"), "{}", page.body);
    assert!(!page.body.contains("Stop being a co-author"), "the author cannot leave");
    let edit = ada.get(&format!("{path}/edit")).await;
    assert!(edit.body.contains("value=\"@grace\""), "{}", edit.body);
    assert!(edit.body.contains("Invited and not answered yet: Grace (@grace)."), "{}", edit.body);

    // The invitee: the draft is not theirs to open, but the invitation names it.
    assert_eq!(grace.get(path).await.status, StatusCode::NOT_FOUND);
    let list = grace.get("/case-studies").await;
    assert!(list.body.contains("href=\"/invitations\""), "{}", list.body);
    let invitations = grace.get("/invitations").await;
    assert_eq!(invitations.status, StatusCode::OK);
    assert!(
        invitations.body.contains("Bins online")
            && invitations.body.contains("invited you")
            && invitations.body.contains("It is a draft: you can read it once you accept."),
        "{}",
        invitations.body
    );
    assert!(!invitations.body.contains("We text residents"), "nothing of the draft but its title");
    let case_study_id = {
        let start = invitations.body.find("name=\"caseStudyId\" value=\"").unwrap() + 26;
        invitations.body[start..start + invitations.body[start..].find('"').unwrap()].to_string()
    };
    // A form from elsewhere (no token) is refused.
    let forged = app
        .http()
        .post(app.url("/invitations"))
        .form(&[("caseStudyId", case_study_id.as_str()), ("answer", "accept")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let accepted = grace.post("/invitations", &[("caseStudyId", case_study_id.as_str()), ("answer", "accept")]).await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    assert_eq!(accepted.location(), format!("{path}?joined=1"));
    let page = grace.get(accepted.location()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("You are now a co-author") && page.body.contains("Edit this case study"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Stop being a co-author"));
    assert!(grace.get("/invitations").await.body.contains("You have no invitations waiting for an answer."));
    let again = grace.post("/invitations", &[("caseStudyId", case_study_id.as_str()), ("answer", "accept")]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        again.body.contains("There is a problem") && again.body.contains("href=\"#invitations\""),
        "{}",
        again.body
    );

    // Leaving a draft closes it to them again.
    let left = grace.post(&format!("{path}/leave"), &[]).await;
    assert_eq!(left.location(), "/case-studies?left=1");
    assert!(grace.get(left.location()).await.body.contains("You are no longer a co-author"));
    assert_eq!(grace.get(path).await.status, StatusCode::NOT_FOUND);

    // Declining, from a second invitation.
    let mut second = fields.to_vec();
    second[1] = ("title", "Parking permits");
    let saved = ada.post("/case-studies/new", &second).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let invitations = grace.get("/invitations").await;
    let start = invitations.body.find("name=\"caseStudyId\" value=\"").unwrap() + 26;
    let second_id = invitations.body[start..start + invitations.body[start..].find('"').unwrap()].to_string();
    let declined = grace.post("/invitations", &[("caseStudyId", second_id.as_str()), ("answer", "decline")]).await;
    assert_eq!(declined.location(), "/invitations?declined=1");
    let page = grace.get(declined.location()).await;
    assert!(
        page.body.contains("You declined the invitation.") && !page.body.contains("Parking permits"),
        "{}",
        page.body
    );
    let page = ada.get(saved.location()).await;
    assert!(!page.body.contains("Invited to co-author") && !page.body.contains(">Grace</a>"), "{}", page.body);

    let mut anonymous = Browser::new(&app);
    let page = anonymous.get("/invitations").await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/sign-in?return_to=%2Finvitations"));
}
