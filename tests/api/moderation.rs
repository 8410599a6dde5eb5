//! Moderation through the API: flags (once, never your own, weighted), the review queue,
//! every decision a moderator can make, the race of two moderators deciding at once,
//! auto-hiding at the threshold, what a hidden item looks like to whom (item, lists,
//! search, feeds, threads), the notifications of the outcome, and the site's report form
//! and review page.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    artefacts::{artefact, number, share, unknown},
    case_studies::{admin, case_study, create_case_study, create_topic, PUBLISH},
    comments::post,
    notifications::dispatched,
    scenarios,
    site::Browser,
    support::{error_code, user_errors, Client, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        moderation_flags_are_checked_kept_once_and_never_ones_own,
        moderation_the_queue_is_for_moderators_heaviest_first,
        moderation_weighted_flags_hide_an_item_until_it_is_reviewed,
        moderation_every_decision_takes_effect_and_is_audited,
        moderation_each_mutation_answers_to_the_right_people,
        moderation_two_moderators_deciding_at_once_cannot_both_act,
        moderation_hidden_content_is_a_placeholder_to_everyone_else,
        moderation_flaggers_and_authors_hear_the_outcome,
        moderation_reporting_and_deciding_through_the_site,
    ]
}

const FLAG: &str = "mutation($input: FlagInput!) { flag(input: $input) { flag { id reason note weight flagger { handle } } userErrors { field code message } } }";
const QUEUE: &str = "query($first: Int, $after: String) { moderationQueue(first: $first, after: $after) { edges { cursor node { id targetType targetPath weight flagCount autoHidden status flags { reason note weight flagger { handle } } target { id } } } pageInfo { hasNextPage } } }";
const DECIDE: &str = "mutation($input: DecideReviewInput!) { decideReview(input: $input) { review { id status decision decisionReason decidedBy { handle } } userErrors { field code message } } }";
const HIDE: &str =
    "mutation($input: ModerateContentInput!) { hideContent(input: $input) { hidden userErrors { field code } } }";
const RESTORE: &str =
    "mutation($input: ModerateContentInput!) { restoreContent(input: $input) { hidden userErrors { field code } } }";
const CASE_STUDY: &str = "query($id: ID!) { node(id: $id) { ... on CaseStudy { title summary body bodyHtml hidden hiddenReason version } } }";
const ARTEFACT: &str = "query($id: ID!) { node(id: $id) { ... on Artefact { title description descriptionHtml url hidden hiddenReason } } }";
const EVENT: &str =
    "query($id: ID!) { node(id: $id) { ... on MeetupEvent { title description hidden hiddenReason } } }";
const COMMENT: &str =
    "query($id: ID!) { node(id: $id) { ... on Comment { body bodyHtml hidden hiddenReason author { handle } } } }";
const INBOX: &str = "{ viewer { notifications(first: 50) { edges { node { kind summary path } } } } }";

async fn moderator(app: &TestApp, email: &str, name: &str) -> Client {
    let client = app.member(email, name).await;
    app.execute_sql(&format!("UPDATE members SET role = 'moderator' WHERE email_normalized = '{email}'")).await;
    client
}

/// A published case study by `client`; returns its id.
async fn published(client: &Client, topic: &str, title: &str) -> String {
    let id = create_case_study(client, case_study(title, &[topic])).await["id"].as_str().unwrap().to_string();
    client.data(PUBLISH, json!({ "id": id })).await;
    id
}

/// A meetup group by `organiser` with one event; returns (group slug, event id).
async fn meetup(organiser: &Client, name: &str) -> (String, String) {
    let data = organiser
        .data(
            "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id slug } userErrors { field code } } }",
            json!({ "input": { "name": name, "region": "North West" } }),
        )
        .await;
    let group = &data["createMeetupGroup"]["group"];
    let input = json!({
        "groupId": group["id"],
        "title": format!("{name} evening"),
        "description": "Tea, cake and *talking shop*.",
        "timeZone": "Europe/London",
        "start": "2027-03-11T16:00:00",
        "end": "2027-03-11T18:00:00",
        "venueName": "The Federation",
    });
    let data = organiser
        .data(
            "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id } userErrors { field code message } } }",
            json!({ "input": input }),
        )
        .await;
    assert_eq!(data["scheduleMeetup"]["userErrors"], json!([]), "{data}");
    (group["slug"].as_str().unwrap().to_string(), data["scheduleMeetup"]["event"]["id"].as_str().unwrap().to_string())
}

async fn flag_body(client: &Client, target: &str, reason: &str, note: Option<&str>) -> Value {
    client.gql(FLAG, json!({ "input": { "targetId": target, "reason": reason, "note": note } })).await
}

/// Flags `target`, which must work; returns the flag.
async fn flag(client: &Client, target: &str, reason: &str) -> Value {
    let body = flag_body(client, target, reason, None).await;
    assert_eq!(body["data"]["flag"]["userErrors"], json!([]), "{body}");
    body["data"]["flag"]["flag"].clone()
}

/// The open reviews, heaviest first.
async fn queue(moderator: &Client) -> Vec<Value> {
    let data = moderator.data(QUEUE, json!({ "first": 100 })).await;
    data["moderationQueue"]["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

/// The open review of `target`.
async fn review_of(moderator: &Client, target: &str) -> Value {
    queue(moderator)
        .await
        .into_iter()
        .find(|r| r["target"]["id"] == target)
        .unwrap_or_else(|| panic!("no open review of {target}"))
}

async fn decide(moderator: &Client, input: Value) -> Value {
    moderator.data(DECIDE, json!({ "input": input })).await["decideReview"].clone()
}

fn one(field: &str, code: &str) -> Vec<(String, String)> {
    vec![(field.to_string(), code.to_string())]
}

async fn set_threshold(app: &TestApp, weight: i64) {
    app.execute_sql(&format!(
        "INSERT INTO site_settings (name, value, updated_at) VALUES ('auto_hide_weight', '{weight}', 0)"
    ))
    .await;
}

async fn node(client: &Client, query: &str, id: &str) -> Value {
    client.data(query, json!({ "id": id })).await["node"].clone()
}

async fn audit_actions(app: &TestApp, target_type: &str, id: i64) -> i64 {
    app.count(&format!("SELECT COUNT(*) FROM audit_log WHERE target_type = '{target_type}' AND target_id = {id}")).await
}

async fn moderation_flags_are_checked_kept_once_and_never_ones_own(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let bob = app.member("bob@example.org", "Bob").await;
    let topic = create_topic(&admin(&app, "root@example.org", "Root").await, "Waste").await;
    let study = published(&ada, &topic, "Bin reminders").await;
    let draft = create_case_study(&ada, case_study("Draft work", &[topic.as_str()])).await["id"].clone();
    let tool = share(&ada, artefact("Reminder service", &[topic.as_str()])).await["id"].as_str().unwrap().to_string();
    let comment = post(&ada, &study, None, "We texted residents.").await;
    let (_, event) = meetup(&ada, "TeaCamp Leeds").await;
    let ada_id = ada.viewer_id().await.unwrap();
    let bob_id = bob.viewer_id().await.unwrap();

    // Anonymous visitors cannot flag.
    let body = flag_body(&app.anonymous(), &study, "SPAM", None).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");

    // Refused, with nothing written.
    let cases = [
        (study.as_str(), "OTHER", None, one("note", "BLANK")),
        (study.as_str(), "OTHER", Some("   "), one("note", "BLANK")),
        (study.as_str(), "SPAM", Some(&*"x".repeat(1001)), one("note", "TOO_LONG")),
        (study.as_str(), "SPAM", Some("bad\u{0}byte"), one("note", "INVALID")),
        (draft.as_str().unwrap(), "SPAM", None, one("targetId", "NOT_FOUND")),
        (&unknown("CaseStudy"), "SPAM", None, one("targetId", "NOT_FOUND")),
        (&unknown("Topic"), "SPAM", None, one("targetId", "NOT_FOUND")),
        ("garbage", "SPAM", None, one("targetId", "NOT_FOUND")),
        (bob_id.as_str(), "SPAM", None, one("targetId", "INVALID")),
    ];
    for (target, reason, note, expected) in cases {
        let body = flag_body(&bob, target, reason, note).await;
        if body.get("errors").is_some() {
            // The text policy refuses a NUL before any resolver runs.
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
            continue;
        }
        assert_eq!(user_errors(&body["data"]["flag"]), expected, "{target} {reason} {note:?}: {body}");
    }
    // Nobody flags what they wrote.
    for target in [&study, &tool, &comment, &event] {
        let body = flag_body(&ada, target, "SPAM", None).await;
        assert_eq!(user_errors(&body["data"]["flag"]), one("targetId", "INVALID"), "{target}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM flags").await + app.count("SELECT COUNT(*) FROM reviews").await, 0);

    // Every kind of thing can be flagged, once.
    for (target, reason) in [
        (&study, "SPAM"),
        (&tool, "OFF_TOPIC"),
        (&comment, "INAPPROPRIATE"),
        (&event, "PERSONAL_DATA"),
        (&ada_id, "SPAM"),
    ] {
        let flagged = flag(&bob, target, reason).await;
        assert_eq!((flagged["reason"].as_str(), flagged["weight"].as_i64()), (Some(reason), Some(100)));
        assert_eq!(flagged["flagger"]["handle"], "bob");
        let again = flag_body(&bob, target, "OTHER", Some("And again")).await;
        assert_eq!(user_errors(&again["data"]["flag"]), one("targetId", "ALREADY_FLAGGED"), "{target}");
    }
    let other = flag_body(&bob, &unknown("Member"), "OTHER", Some("x")).await;
    assert_eq!(user_errors(&other["data"]["flag"]), one("targetId", "NOT_FOUND"));
    assert_eq!(app.count("SELECT COUNT(*) FROM flags").await, 5);
    assert_eq!(app.count("SELECT COUNT(*) FROM reviews WHERE status = 'open' AND flag_count = 1").await, 5);
    assert_eq!(app.count("SELECT COUNT(*) FROM flags WHERE note = 'And again'").await, 0);

    // A second member joins the open review rather than opening another.
    let cy = app.member("cy@example.org", "Cy").await;
    let noted = flag_body(&cy, &study, "OTHER", Some("  Copied from elsewhere  ")).await;
    assert_eq!(noted["data"]["flag"]["flag"]["note"], "Copied from elsewhere", "{noted}");
    assert_eq!(app.count("SELECT COUNT(*) FROM reviews").await, 5);
    assert_eq!(
        app.count(&format!(
            "SELECT weight FROM reviews WHERE target_type = 'case_study' AND target_id = {}",
            number("CaseStudy", &json!(study))
        ))
        .await,
        200
    );
    // A member flag only queues: members are never hidden.
    set_threshold(&app, 100).await;
    flag(&cy, &ada_id, "SPAM").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM reviews WHERE auto_hidden_at IS NOT NULL").await, 0);
}

async fn moderation_the_queue_is_for_moderators_heaviest_first(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let root = admin(&app, "root@example.org", "Root").await;
    let mo = moderator(&app, "mo@example.org", "Mo").await;
    let topic = create_topic(&root, "Waste").await;
    let light = published(&ada, &topic, "Light").await;
    let heavy = published(&ada, &topic, "Heavy").await;
    let middle = published(&ada, &topic, "Middle").await;
    let mut flaggers = Vec::new();
    for i in 0..3 {
        flaggers.push(app.member(&format!("f{i}@example.org"), &format!("Flagger {i}")).await);
    }
    flag(&flaggers[0], &light, "SPAM").await;
    for f in &flaggers {
        flag(f, &heavy, "SPAM").await;
    }
    for f in &flaggers[..2] {
        flag(f, &middle, "OFF_TOPIC").await;
    }

    for reader in [&mo, &root] {
        let reviews = queue(reader).await;
        let order: Vec<(&str, i64, i64)> = reviews
            .iter()
            .map(|r| {
                (r["target"]["id"].as_str().unwrap(), r["weight"].as_i64().unwrap(), r["flagCount"].as_i64().unwrap())
            })
            .collect();
        assert_eq!(order, [(heavy.as_str(), 300, 3), (middle.as_str(), 200, 2), (light.as_str(), 100, 1)]);
        assert_eq!(reviews[0]["targetType"], "CASE_STUDY");
        assert_eq!(reviews[0]["targetPath"], format!("/case-studies/{}", number("CaseStudy", &json!(heavy))));
        let handles: Vec<&str> =
            reviews[0]["flags"].as_array().unwrap().iter().map(|f| f["flagger"]["handle"].as_str().unwrap()).collect();
        assert_eq!(handles.len(), 3);
    }
    // Keyset pages: one at a time, in the same order.
    let first = mo.data(QUEUE, json!({ "first": 1 })).await;
    let edge = &first["moderationQueue"]["edges"][0];
    assert_eq!(edge["node"]["target"]["id"], heavy);
    assert_eq!(first["moderationQueue"]["pageInfo"]["hasNextPage"], true);
    let second = mo.data(QUEUE, json!({ "first": 1, "after": edge["cursor"] })).await;
    assert_eq!(second["moderationQueue"]["edges"][0]["node"]["target"]["id"], middle);
    let review_id = edge["node"]["id"].as_str().unwrap().to_string();

    // Everyone else is refused, and a review is nobody else's node.
    let anonymous = app.anonymous().gql(QUEUE, json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    for client in [&ada, &flaggers[0]] {
        assert_eq!(error_code(&client.gql(QUEUE, json!({})).await), "FORBIDDEN");
        let review = client.gql("query($id: ID!) { review(id: $id) { id } }", json!({ "id": review_id })).await;
        assert_eq!(error_code(&review), "FORBIDDEN");
        let node = client.data("query($id: ID!) { node(id: $id) { id } }", json!({ "id": review_id })).await;
        assert_eq!(node["node"], Value::Null);
    }
    let node =
        mo.data("query($id: ID!) { node(id: $id) { ... on Review { flagCount } } }", json!({ "id": review_id })).await;
    assert_eq!(node["node"]["flagCount"], 3);
    let count = mo.data("{ moderationQueueCount }", json!({})).await;
    assert_eq!(count["moderationQueueCount"], 3);

    // Decided reviews leave the queue.
    decide(&mo, json!({ "reviewId": review_id, "decision": "DISMISS", "reason": "Fine as it is." })).await;
    assert_eq!(queue(&mo).await.len(), 2);
}

async fn moderation_weighted_flags_hide_an_item_until_it_is_reviewed(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let root = admin(&app, "root@example.org", "Root").await;
    let mo = moderator(&app, "mo@example.org", "Mo").await;
    let topic = create_topic(&root, "Waste").await;
    set_threshold(&app, 300).await;
    let study = published(&ada, &topic, "Bin reminders").await;
    let bob = app.member("bob@example.org", "Bob").await;
    let cy = app.member("cy@example.org", "Cy").await;
    let dee = app.member("dee@example.org", "Dee").await;

    // Below the threshold, it stays up.
    flag(&bob, &study, "SPAM").await;
    flag(&cy, &study, "SPAM").await;
    assert_eq!(node(&app.anonymous(), CASE_STUDY, &study).await["hidden"], false);
    assert_eq!(review_of(&mo, &study).await["autoHidden"], false);
    // At it, it is hidden until reviewed: gone from the list and search for others.
    flag(&dee, &study, "SPAM").await;
    let review = review_of(&mo, &study).await;
    assert_eq!((review["autoHidden"].as_bool(), review["weight"].as_i64()), (Some(true), Some(300)));
    let seen = node(&app.anonymous(), CASE_STUDY, &study).await;
    assert_eq!((seen["hidden"].as_bool(), seen["title"].as_str()), (Some(true), Some("Hidden by the moderators")));
    let own = node(&ada, CASE_STUDY, &study).await;
    assert_eq!(own["title"], "Bin reminders");
    assert_eq!(own["hiddenReason"], "Hidden after members flagged it, until a moderator reviews it.");
    let list = app.anonymous().data("{ caseStudies { edges { node { id } } } }", json!({})).await;
    assert_eq!(list["caseStudies"]["edges"], json!([]));
    assert_eq!(app.count("SELECT COUNT(*) FROM search_index WHERE kind = 'case_study'").await, 0);

    // Dismissing shows it again, and counts against the flaggers: after three dismissed
    // flags, a member's flag weighs half.
    decide(&mo, json!({ "reviewId": review["id"], "decision": "DISMISS", "reason": "Not spam." })).await;
    assert_eq!(node(&app.anonymous(), CASE_STUDY, &study).await["hidden"], false);
    assert_eq!(app.count("SELECT COUNT(*) FROM search_index WHERE kind = 'case_study'").await, 1);
    for title in ["Two", "Three"] {
        let other = published(&ada, &topic, title).await;
        flag(&bob, &other, "SPAM").await;
        let review = review_of(&mo, &other).await;
        decide(&mo, json!({ "reviewId": review["id"], "decision": "DISMISS", "reason": "No." })).await;
    }
    let fourth = published(&ada, &topic, "Four").await;
    assert_eq!(flag(&bob, &fourth, "SPAM").await["weight"], 50);
    // Three upheld flags weigh double; a moderator's flag weighs the threshold.
    for title in ["Five", "Six", "Seven"] {
        let other = published(&ada, &topic, title).await;
        flag(&cy, &other, "SPAM").await;
        let review = review_of(&mo, &other).await;
        decide(&mo, json!({ "reviewId": review["id"], "decision": "HIDE", "reason": "Spam." })).await;
    }
    // Cy's first flag was dismissed: 50 + 150 × 3 upheld / 4 decided.
    let eighth = published(&ada, &topic, "Eight").await;
    assert_eq!(flag(&cy, &eighth, "SPAM").await["weight"], 162);
    let eve = app.member("eve@example.org", "Eve").await;
    for title in ["Ten", "Eleven", "Twelve"] {
        let other = published(&ada, &topic, title).await;
        flag(&eve, &other, "SPAM").await;
        let review = review_of(&mo, &other).await;
        decide(&mo, json!({ "reviewId": review["id"], "decision": "EDIT", "reason": "Tidied.", "body": "Tidied" }))
            .await;
    }
    let thirteenth = published(&ada, &topic, "Thirteen").await;
    assert_eq!(flag(&eve, &thirteenth, "SPAM").await["weight"], 200, "every flag upheld weighs double");
    let ninth = published(&ada, &topic, "Nine").await;
    assert_eq!(flag(&mo, &ninth, "SPAM").await["weight"], 300);
    assert_eq!(node(&app.anonymous(), CASE_STUDY, &ninth).await["hidden"], true, "a moderator's flag hides at once");
}

async fn moderation_every_decision_takes_effect_and_is_audited(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let bob = app.member("bob@example.org", "Bob").await;
    let root = admin(&app, "root@example.org", "Root").await;
    let mo = moderator(&app, "mo@example.org", "Mo").await;
    let topic = create_topic(&root, "Waste").await;
    let study = published(&ada, &topic, "Bin reminders").await;
    let study_n = number("CaseStudy", &json!(study));

    // Hide: the author sees why, others a placeholder.
    flag(&bob, &study, "SPAM").await;
    let review = review_of(&mo, &study).await;
    let bad = decide(&mo, json!({ "reviewId": review["id"], "decision": "HIDE", "reason": "  " })).await;
    assert_eq!(user_errors(&bad), one("reason", "BLANK"));
    let bad = decide(&mo, json!({ "reviewId": review["id"], "decision": "HIDE", "reason": "x".repeat(1001) })).await;
    assert_eq!(user_errors(&bad), one("reason", "TOO_LONG"));
    let bad =
        decide(&mo, json!({ "reviewId": review["id"], "decision": "HIDE", "reason": "Spam", "body": "new" })).await;
    assert_eq!(user_errors(&bad), one("body", "INVALID"));
    let bad = decide(&mo, json!({ "reviewId": review["id"], "decision": "HIDE", "reason": "Spam", "suspendUntil": "2030-01-01T00:00:00Z" })).await;
    assert_eq!(user_errors(&bad), one("suspendUntil", "INVALID"));
    let bad = decide(&mo, json!({ "reviewId": unknown("Review"), "decision": "HIDE", "reason": "Spam" })).await;
    assert_eq!(user_errors(&bad), one("reviewId", "NOT_FOUND"));
    assert_eq!(audit_actions(&app, "case_study", study_n).await, 0, "refusals change nothing");
    let hidden = decide(&mo, json!({ "reviewId": review["id"], "decision": "HIDE", "reason": "Advertising." })).await;
    assert_eq!(hidden["userErrors"], json!([]));
    assert_eq!(
        (hidden["review"]["status"].as_str(), hidden["review"]["decision"].as_str()),
        (Some("DECIDED"), Some("HIDE"))
    );
    assert_eq!(hidden["review"]["decidedBy"]["handle"], "mo");
    assert_eq!(node(&ada, CASE_STUDY, &study).await["hiddenReason"], "Advertising.");
    let other = node(&bob, CASE_STUDY, &study).await;
    assert_eq!((other["body"].as_str(), other["hiddenReason"].clone()), (Some(""), Value::Null));
    let again = decide(&mo, json!({ "reviewId": review["id"], "decision": "RESTORE", "reason": "Oops" })).await;
    assert_eq!(user_errors(&again), one("reviewId", "ALREADY_DECIDED"));

    // Restore (a new flag opens a new review).
    let cy = app.member("cy@example.org", "Cy").await;
    flag(&cy, &study, "OFF_TOPIC").await;
    let review = review_of(&mo, &study).await;
    decide(&mo, json!({ "reviewId": review["id"], "decision": "RESTORE", "reason": "It was fine." })).await;
    assert_eq!(node(&bob, CASE_STUDY, &study).await["title"], "Bin reminders");

    // Edit: the text replaced, rendered, the old kept as a revision, before and after audited.
    let dee = app.member("dee@example.org", "Dee").await;
    flag(&dee, &study, "PERSONAL_DATA").await;
    let review = review_of(&mo, &study).await;
    let bad = decide(&mo, json!({ "reviewId": review["id"], "decision": "EDIT", "reason": "Personal data" })).await;
    assert_eq!(user_errors(&bad), one("body", "BLANK"));
    let edited = decide(
        &mo,
        json!({ "reviewId": review["id"], "decision": "EDIT", "reason": "Removed a phone number.", "body": "We *tested* with residents. [number removed]" }),
    )
    .await;
    assert_eq!(edited["userErrors"], json!([]), "{edited}");
    let now = node(&bob, CASE_STUDY, &study).await;
    assert_eq!(now["body"], "We *tested* with residents. [number removed]");
    assert!(now["bodyHtml"].as_str().unwrap().contains("<em>tested</em>"), "{now}");
    assert_eq!((now["hidden"].as_bool(), now["version"].as_i64()), (Some(false), Some(2)));
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM case_study_revisions WHERE case_study_id = {study_n}")).await,
        1
    );
    let before_after = app
        .count(&format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'edit' AND target_id = {study_n} \
             AND before_value LIKE '%What we did%' AND after_value LIKE '%number removed%'"
        ))
        .await;
    assert_eq!(before_after, 1);

    // A comment edited.
    let comment = post(&ada, &study, None, "Call me on 07700 900123").await;
    flag(&bob, &comment, "PERSONAL_DATA").await;
    let review = review_of(&mo, &comment).await;
    let bad = decide(
        &mo,
        json!({ "reviewId": review["id"], "decision": "EDIT", "reason": "Number", "title": "x", "body": "y" }),
    )
    .await;
    assert_eq!(user_errors(&bad), one("title", "INVALID"));
    decide(
        &mo,
        json!({ "reviewId": review["id"], "decision": "EDIT", "reason": "Number", "body": "Call me (number removed)" }),
    )
    .await;
    assert_eq!(node(&cy, COMMENT, &comment).await["body"], "Call me (number removed)");

    // Dismiss: an auto-hidden item comes back; one a moderator hid stays hidden.
    let tool = share(&ada, artefact("Reminder service", &[topic.as_str()])).await["id"].as_str().unwrap().to_string();
    flag(&root, &tool, "SPAM").await; // an admin's flag hides at once
    assert_eq!(node(&bob, ARTEFACT, &tool).await["hidden"], true);
    let review = review_of(&mo, &tool).await;
    assert_eq!(review["autoHidden"], true);
    decide(&mo, json!({ "reviewId": review["id"], "decision": "DISMISS", "reason": "Genuine tool." })).await;
    let shown = node(&bob, ARTEFACT, &tool).await;
    assert_eq!((shown["hidden"].as_bool(), shown["title"].as_str()), (Some(false), Some("Reminder service")));

    // Suspend: the author is suspended, the item hidden, both audited.
    let (_, event) = meetup(&ada, "TeaCamp Leeds").await;
    flag(&bob, &event, "INAPPROPRIATE").await;
    let review = review_of(&mo, &event).await;
    let bad = decide(&mo, json!({ "reviewId": review["id"], "decision": "SUSPEND", "reason": "Abuse", "suspendUntil": "2001-01-01T00:00:00Z" })).await;
    assert_eq!(user_errors(&bad), one("suspendUntil", "INVALID"));
    let suspended = decide(
        &mo,
        json!({ "reviewId": review["id"], "decision": "SUSPEND", "reason": "Abusive meetup.", "suspendUntil": "2030-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(suspended["userErrors"], json!([]), "{suspended}");
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE handle = 'ada' AND suspended_at IS NOT NULL AND suspended_until IS NOT NULL").await, 1);
    assert_eq!(node(&bob, EVENT, &event).await["hidden"], true);
    let event_n = number("MeetupEvent", &json!(event));
    assert_eq!(audit_actions(&app, "meetup_event", event_n).await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log a JOIN members m ON m.id = a.target_id WHERE a.target_type = 'member' AND a.action = 'suspend' AND m.handle = 'ada'").await,
        1
    );

    // A member can be suspended but not hidden; a moderator cannot suspend themself.
    let ada_id = app.count("SELECT id FROM members WHERE handle = 'ada'").await;
    let ada_gid = kettle::graphql::relay::global_id("Member", ada_id).to_string();
    flag(&bob, &ada_gid, "SPAM").await;
    let review = review_of(&mo, &ada_gid).await;
    let bad = decide(&mo, json!({ "reviewId": review["id"], "decision": "HIDE", "reason": "Spam" })).await;
    assert_eq!(user_errors(&bad), one("decision", "INVALID"));
    let mo_id = mo.viewer_id().await.unwrap();
    flag(&bob, &mo_id, "SPAM").await;
    let review = review_of(&root, &mo_id).await;
    let bad = decide(&mo, json!({ "reviewId": review["id"], "decision": "SUSPEND", "reason": "Me" })).await;
    assert_eq!(user_errors(&bad), one("decision", "INVALID"));
    assert_eq!(review_of(&root, &mo_id).await["status"], "OPEN", "a refused decision leaves the review open");

    // Direct hiding and restoring, audited.
    let plain = published(&bob, &topic, "Plain").await;
    let plain_n = number("CaseStudy", &json!(plain));
    let hid = mo.data(HIDE, json!({ "input": { "targetId": plain, "reason": "Duplicate of another." } })).await;
    assert_eq!(hid["hideContent"], json!({ "hidden": true, "userErrors": [] }));
    assert_eq!(node(&bob, CASE_STUDY, &plain).await["hiddenReason"], "Duplicate of another.");
    let back = mo.data(RESTORE, json!({ "input": { "targetId": plain, "reason": "Not a duplicate." } })).await;
    assert_eq!(back["restoreContent"], json!({ "hidden": false, "userErrors": [] }));
    assert_eq!(node(&cy, CASE_STUDY, &plain).await["hidden"], false);
    assert_eq!(audit_actions(&app, "case_study", plain_n).await, 2);
    let nothing = mo.data(HIDE, json!({ "input": { "targetId": ada_gid, "reason": "x" } })).await;
    assert_eq!(user_errors(&nothing["hideContent"]), one("targetId", "NOT_FOUND"));
}

async fn moderation_each_mutation_answers_to_the_right_people(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let bob = app.member("bob@example.org", "Bob").await;
    let root = admin(&app, "root@example.org", "Root").await;
    let mo = moderator(&app, "mo@example.org", "Mo").await;
    let topic = create_topic(&root, "Waste").await;
    let study = published(&ada, &topic, "Bin reminders").await;
    flag(&bob, &study, "SPAM").await;
    let review_id = review_of(&mo, &study).await["id"].as_str().unwrap().to_string();
    let decide_input = json!({ "input": { "reviewId": review_id, "decision": "HIDE", "reason": "Spam" } });
    let content_input = json!({ "input": { "targetId": study, "reason": "Spam" } });

    // Anonymous, a member, and the author are refused, and nothing changes.
    let anonymous = app.anonymous();
    for (client, code) in [(&anonymous, "UNAUTHENTICATED"), (&bob, "FORBIDDEN"), (&ada, "FORBIDDEN")] {
        assert_eq!(error_code(&client.gql(DECIDE, decide_input.clone()).await), code);
        assert_eq!(error_code(&client.gql(HIDE, content_input.clone()).await), code);
        assert_eq!(error_code(&client.gql(RESTORE, content_input.clone()).await), code);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM reviews WHERE status = 'open'").await, 1);
    // Flag: a member may, the author may not (a payload error), moderators and admins may.
    assert_eq!(user_errors(&flag_body(&ada, &study, "SPAM", None).await["data"]["flag"]), one("targetId", "INVALID"));
    flag(&mo, &study, "SPAM").await;
    flag(&root, &study, "SPAM").await;

    // A moderator and an admin may do each.
    for client in [&mo, &root] {
        let hid = client.data(HIDE, content_input.clone()).await;
        assert_eq!(hid["hideContent"]["userErrors"], json!([]));
        let shown = client.data(RESTORE, content_input.clone()).await;
        assert_eq!(shown["restoreContent"]["userErrors"], json!([]));
    }
    let decided = root.data(DECIDE, decide_input).await;
    assert_eq!(decided["decideReview"]["userErrors"], json!([]));
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, 5);
}

async fn moderation_two_moderators_deciding_at_once_cannot_both_act(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let bob = app.member("bob@example.org", "Bob").await;
    let root = admin(&app, "root@example.org", "Root").await;
    let mo = moderator(&app, "mo@example.org", "Mo").await;
    let topic = create_topic(&root, "Waste").await;
    for round in 0..5 {
        let study = published(&ada, &topic, &format!("Round {round}")).await;
        let n = number("CaseStudy", &json!(study));
        flag(&bob, &study, "SPAM").await;
        let review = review_of(&mo, &study).await["id"].clone();
        let hide = json!({ "input": { "reviewId": review, "decision": "HIDE", "reason": "Spam" } });
        let keep = json!({ "input": { "reviewId": review, "decision": "DISMISS", "reason": "Fine" } });
        let (a, b) = tokio::join!(mo.data(DECIDE, hide), root.data(DECIDE, keep));
        let (a, b) = (&a["decideReview"], &b["decideReview"]);
        let winners = [a, b].iter().filter(|p| p["userErrors"] == json!([])).count();
        assert_eq!(winners, 1, "exactly one decides: {a} {b}");
        let loser = if a["userErrors"] == json!([]) { b } else { a };
        assert_eq!(user_errors(loser), one("reviewId", "ALREADY_DECIDED"));
        let winner_hid = a["userErrors"] == json!([]);
        // Only the winner's effect and audit row exist.
        assert_eq!(audit_actions(&app, "case_study", n).await, 1);
        let hidden =
            app.count(&format!("SELECT COUNT(*) FROM case_studies WHERE id = {n} AND hidden_at IS NOT NULL")).await;
        assert_eq!(hidden == 1, winner_hid, "round {round}");
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) FROM outbox_events WHERE kind = 'moderation.review_decided' AND subject_id = {n}"
            ))
            .await,
            1
        );
    }
    // Two first flags at once open one review between them.
    let study = published(&ada, &topic, "Raced").await;
    let cy = app.member("cy@example.org", "Cy").await;
    let dee = app.member("dee@example.org", "Dee").await;
    let (a, b) = tokio::join!(flag(&dee, &study, "SPAM"), flag(&cy, &study, "SPAM"));
    assert_eq!((a["weight"].as_i64(), b["weight"].as_i64()), (Some(100), Some(100)));
    assert_eq!(review_of(&mo, &study).await["flagCount"], 2);
}

async fn moderation_hidden_content_is_a_placeholder_to_everyone_else(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let bob = app.member("bob@example.org", "Bob").await;
    let root = admin(&app, "root@example.org", "Root").await;
    let mo = moderator(&app, "mo@example.org", "Mo").await;
    let topic = create_topic(&root, "Waste").await;
    let study = published(&ada, &topic, "Zanzibar reminders").await;
    let tool = share(&ada, artefact("Zanzibar tool", &[topic.as_str()])).await["id"].as_str().unwrap().to_string();
    let host = published(&bob, &topic, "Host").await;
    let comment = post(&ada, &host, None, "Zanzibar comment").await;
    let (slug, event) = meetup(&ada, "TeaCamp Zanzibar").await;
    for target in [&study, &tool, &comment, &event] {
        let hid = mo.data(HIDE, json!({ "input": { "targetId": target, "reason": "Off the rails." } })).await;
        assert_eq!(hid["hideContent"]["userErrors"], json!([]));
    }
    // The author and the moderators see it and why; others see a placeholder.
    for (query, id, title_field, text_field) in [
        (CASE_STUDY, &study, Some("title"), "body"),
        (ARTEFACT, &tool, Some("title"), "description"),
        (EVENT, &event, Some("title"), "description"),
        (COMMENT, &comment, None, "body"),
    ] {
        for viewer in [&ada, &mo] {
            let seen = node(viewer, query, id).await;
            assert_eq!((seen["hidden"].as_bool(), seen["hiddenReason"].as_str()), (Some(true), Some("Off the rails.")));
            assert!(seen[text_field].as_str().unwrap().contains("Zanzibar") || title_field.is_some(), "{seen}");
            if let Some(field) = title_field {
                assert!(seen[field].as_str().unwrap().contains("Zanzibar"), "{seen}");
            }
        }
        for viewer in [&bob, &app.anonymous()] {
            let seen = node(viewer, query, id).await;
            assert_eq!((seen["hidden"].as_bool(), &seen["hiddenReason"]), (Some(true), &Value::Null), "{seen}");
            assert_eq!(seen[text_field], "", "{seen}");
            assert!(!seen.to_string().contains("Zanzibar"), "{seen}");
        }
    }
    // Hidden things drop out of lists, search and feeds.
    let anonymous = app.anonymous();
    let lists = anonymous
        .data(
            "query($slug: String!) { caseStudies { edges { node { title } } } artefacts { edges { node { title } } } \
             meetupGroup(slug: $slug) { upcomingEvents { edges { node { title } } } } \
             search(query: \"Zanzibar\") { snippet } }",
            json!({ "slug": slug }),
        )
        .await;
    assert!(!lists.to_string().contains("Zanzibar"), "{lists}");
    assert_eq!(lists["caseStudies"]["edges"].as_array().unwrap().len(), 1, "the host stays: {lists}");
    let feed = app.http().get(app.url("/feeds/case-studies.atom")).send().await.unwrap().text().await.unwrap();
    assert!(feed.contains("Host") && !feed.contains("Zanzibar"), "{feed}");
    // The comment keeps its place as a placeholder, without its author.
    let thread = bob
        .data(
            "query($id: ID!) { node(id: $id) { ... on CaseStudy { comments { edges { node { hidden body author { handle } } } } } } }",
            json!({ "id": host }),
        )
        .await;
    assert_eq!(thread["node"]["comments"]["edges"][0]["node"], json!({ "hidden": true, "body": "", "author": null }));
    // An author's edit while hidden does not bring it back into search.
    let edit = ada
        .data(
            "mutation($input: UpdateCaseStudyInput!) { updateCaseStudy(input: $input) { userErrors { code } } }",
            json!({ "input": { "id": study, "version": 1, "title": "Zanzibar again", "summary": "s", "body": "b", "phase": "LIVE", "topicIds": [topic] } }),
        )
        .await;
    assert_eq!(edit["updateCaseStudy"]["userErrors"], json!([]));
    let search = anonymous.data("{ search(query: \"Zanzibar\") { snippet } }", json!({})).await;
    assert_eq!(search["search"], json!([]));
    // Restored, it is back everywhere.
    mo.data(RESTORE, json!({ "input": { "targetId": study, "reason": "Reviewed." } })).await;
    let search = anonymous.data("{ search(query: \"Zanzibar\") { snippet } }", json!({})).await;
    assert_eq!(search["search"].as_array().unwrap().len(), 1, "{search}");
}

async fn inbox(client: &Client) -> Vec<(String, String)> {
    let data = client.data(INBOX, json!({})).await;
    data["viewer"]["notifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["node"]["kind"].as_str().unwrap().to_string(), e["node"]["summary"].as_str().unwrap().to_string()))
        .filter(|(kind, _)| matches!(kind.as_str(), "REPORT_DECIDED" | "CONTENT_MODERATED"))
        .collect()
}

async fn moderation_flaggers_and_authors_hear_the_outcome(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let bob = app.member("bob@example.org", "Bob").await;
    let cy = app.member("cy@example.org", "Cy").await;
    let root = admin(&app, "root@example.org", "Root").await;
    let mo = moderator(&app, "mo@example.org", "Mo").await;
    let topic = create_topic(&root, "Waste").await;
    let study = published(&ada, &topic, "Bin reminders").await;
    flag(&bob, &study, "SPAM").await;
    flag(&cy, &study, "SPAM").await;
    let review = review_of(&mo, &study).await;
    decide(&mo, json!({ "reviewId": review["id"], "decision": "HIDE", "reason": "Advertising." })).await;
    dispatched(&app).await;
    for flagger in [&bob, &cy] {
        assert_eq!(
            inbox(flagger).await,
            [(
                "REPORT_DECIDED".to_string(),
                "The moderators hid the case study “Bin reminders”, which you reported".to_string()
            )]
        );
    }
    assert_eq!(
        inbox(&ada).await,
        [("CONTENT_MODERATED".to_string(), "The moderators hid your case study “Bin reminders”".to_string())]
    );
    assert!(inbox(&mo).await.is_empty(), "the moderator is not told of their own decision");

    // A dismissal of flags that hid nothing tells the flaggers only.
    let other = published(&ada, &topic, "Second").await;
    flag(&bob, &other, "OFF_TOPIC").await;
    let review = review_of(&mo, &other).await;
    decide(&mo, json!({ "reviewId": review["id"], "decision": "DISMISS", "reason": "On topic." })).await;
    dispatched(&app).await;
    assert_eq!(inbox(&bob).await.len(), 2);
    assert_eq!(
        inbox(&bob).await[0].1,
        "The moderators reviewed the case study “Second”, which you reported, and left it up"
    );
    assert_eq!(inbox(&ada).await.len(), 1, "nothing changed that the author could see");
    // The author gets mail by default, the flaggers a line in their digest.
    let choices = ada.data("{ viewer { notificationSettings { mailChoices { kind choice } } } }", json!({})).await;
    let choices = choices["viewer"]["notificationSettings"]["mailChoices"].as_array().unwrap().clone();
    let choice = |kind: &str| choices.iter().find(|c| c["kind"] == kind).unwrap()["choice"].clone();
    assert_eq!((choice("CONTENT_MODERATED"), choice("REPORT_DECIDED")), (json!("EMAIL"), json!("DIGEST")));
}

async fn moderation_reporting_and_deciding_through_the_site(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let root = admin(&app, "root@example.org", "Root").await;
    let topic = create_topic(&root, "Waste").await;
    let study = published(&ada, &topic, "Bin reminders").await;
    let n = number("CaseStudy", &json!(study));

    // The item page links to the report form.
    let mut bob = Browser::new(&app);
    bob.register("bob@example.org", "Bob").await;
    let page = bob.get(&format!("/case-studies/{n}")).await;
    let report = format!("/report?target={study}");
    assert!(page.body.contains(&format!("href=\"{report}\"")), "a report link: {}", page.body);
    let form = bob.get(&report).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("Bin reminders") && form.body.contains("name=\"reason\""), "{}", form.body);
    // Errors are shown beside the field, and nothing is saved.
    let refused = bob.post("/report", &[("target", &study), ("reason", "OTHER"), ("note", "")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("There is a problem") && refused.body.contains("Say what is wrong with it."),
        "{}",
        refused.body
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM flags").await, 0);
    let done = bob.post("/report", &[("target", &study), ("reason", "SPAM"), ("note", "Advert")]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Thank you, the moderators will review it"), "{}", done.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM flags WHERE note = 'Advert'").await, 1);

    // The queue is for moderators only.
    assert_eq!(bob.get("/moderation").await.status, StatusCode::FORBIDDEN);
    let mut mo = Browser::new(&app);
    mo.register("mo@example.org", "Mo").await;
    app.execute_sql("UPDATE members SET role = 'moderator' WHERE handle = 'mo'").await;
    let home = mo.get("/").await;
    assert!(home.body.contains("href=\"/moderation\""), "moderators get a link: {}", home.body);
    let queue = mo.get("/moderation").await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    let review = app.count("SELECT id FROM reviews").await;
    assert!(
        queue.body.contains(&format!("/moderation/reviews/{review}")) && queue.body.contains("Bin reminders"),
        "{}",
        queue.body
    );
    let page = mo.get(&format!("/moderation/reviews/{review}")).await;
    assert!(page.body.contains("Advert") && page.body.contains("name=\"decision\""), "{}", page.body);
    let path = format!("/moderation/reviews/{review}");
    let refused = mo.post(&path, &[("decision", "HIDE"), ("reason", "")]).await;
    assert!(refused.body.contains("There is a problem") && refused.body.contains("Give a reason."), "{}", refused.body);
    let decided = mo.post(&path, &[("decision", "HIDE"), ("reason", "Advertising."), ("suspend_until", "")]).await;
    assert_eq!(decided.status, StatusCode::SEE_OTHER, "{}", decided.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM case_studies WHERE hidden_at IS NOT NULL").await, 1);

    // The author sees a notice with the reason; others a placeholder.
    let mut author = Browser::new(&app);
    author.sign_in("ada@example.org", crate::support::PASSWORD).await;
    let own = author.get(&format!("/case-studies/{n}")).await;
    assert!(own.body.contains("Advertising.") && own.body.contains("We <em>tested</em>"), "{}", own.body);
    let other = bob.get(&format!("/case-studies/{n}")).await;
    assert!(
        other.body.contains("This was hidden by the moderators") && !other.body.contains("We <em>tested</em>"),
        "{}",
        other.body
    );
}
