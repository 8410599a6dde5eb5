//! The dispatcher under faults: an instance killed in the middle of dispatching loses
//! nothing and duplicates nothing once another instance takes its lease over.
//!
//! The test app's own server runs a dispatcher. The test takes its lease away, builds a
//! backlog of a few hundred `case_study.published` events for a topic with a hundred
//! followers (two batches' worth, seconds of work), then lets a child `kettle dispatch`
//! take the lease, kills it with SIGKILL once it has committed a batch, and waits for the
//! server's dispatcher to take the lease over when it expires and finish the work.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Row;

use crate::{
    case_studies::{admin, case_study, create_case_study, create_topic, PUBLISH},
    scenarios,
    support::{kettle_command, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![dispatch_an_instance_killed_mid_dispatch_leaves_no_duplicate_and_no_gap]
}

/// The dispatcher's lease in `leases`.
const LEASE: &str = "dispatcher";
/// Who holds the lease while the test keeps every dispatcher off it.
const PAUSED: &str = "paused";
/// Followers of the topic: one registered through the API, the rest inserted in bulk.
const FOLLOWERS: i64 = 100;
/// `case_study.published` events in the backlog: two of the dispatcher's batches (200
/// events each), so that one is committed while the other is still being worked on.
const EVENTS: i64 = 400;

const FOLLOW: &str =
    "mutation($input: FollowInput!) { follow(input: $input) { follow { level } userErrors { field code } } }";
const INBOX: &str = "{ viewer { unreadNotificationCount notifications(first: 100) { \
    edges { node { kind groupSize readAt subject { __typename id } } } pageInfo { hasNextPage } } } }";

/// Takes the lease for a holder that does not run, for an hour, so no dispatcher (the
/// server's, or a child's) dispatches meanwhile; a batch in flight cannot commit, since
/// the fence moves on.
///
/// On SQLite this waits for the write lock, which a dispatcher holds for the whole of a
/// batch's transaction: possibly longer than the busy timeout on a loaded machine, so it
/// tries again rather than fail.
async fn pause(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let far = kettle::db::now_millis() + 3_600_000;
        let paused = sqlx::query(&format!(
            "INSERT INTO leases (name, holder, fence, expires_at) VALUES ('{LEASE}', '{PAUSED}', 1, {far}) \
             ON CONFLICT (name) DO UPDATE SET holder = '{PAUSED}', fence = leases.fence + 1, expires_at = {far}"
        ))
        .execute(&app.state().db.pool)
        .await;
        match paused {
            Ok(_) => return,
            Err(err) => assert!(tokio::time::Instant::now() < deadline, "could not take the lease: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Copies the case study's real `case_study.published` event `n` times, as if it had
/// been archived and published again that many times.
async fn republish(app: &TestApp, published: i64, n: i64) {
    let copies: Vec<String> = (1..=n).map(|i| format!("({i})")).collect();
    app.execute_sql(&format!(
        "INSERT INTO outbox_events (kind, subject_type, subject_id, actor_id, payload, created_at) \
         SELECT e.kind, e.subject_type, e.subject_id, e.actor_id, e.payload, e.created_at \
         FROM outbox_events e, (VALUES {}) n WHERE e.id = {published} ORDER BY n.column1",
        copies.join(", ")
    ))
    .await;
}

async fn holder(app: &TestApp) -> Option<String> {
    sqlx::query_scalar::<_, String>("SELECT holder FROM leases WHERE name = $1")
        .bind(LEASE)
        .fetch_optional(&app.state().db.pool)
        .await
        .expect("the lease")
}

/// Polls `done` every few milliseconds until it holds, for at most `limit` (a bound on a
/// liveness wait, not a timing claim: the work takes what the machine gives it).
async fn until<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}: still not after {} s", limit.as_secs());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn dispatch_an_instance_killed_mid_dispatch_leaves_no_duplicate_and_no_gap(app: TestApp) {
    // The server's dispatcher stands by from here on.
    pause(&app).await;

    // A topic with FOLLOWERS watching it: a reader through the API, the rest in bulk.
    let author = admin(&app, "author@example.org", "Ada Author").await;
    let topic = create_topic(&author, "Bin collection").await;
    let topic_id = kettle::graphql::relay::parse_global_id_of("Topic", &topic).unwrap();
    let reader = app.member("reader@example.org", "Rea Reader").await;
    let data = reader.data(FOLLOW, json!({ "input": { "targetId": topic, "level": "WATCHING" } })).await;
    assert_eq!(data["follow"]["userErrors"], json!([]), "{data}");
    let now = kettle::db::now_millis();
    let members: Vec<String> = (1..FOLLOWERS)
        .map(|i| format!("('bulk{i}@example.org', 'bulk{i}@example.org', 'bulk-{i}', 'Bulk {i}', {now}, {now})"))
        .collect();
    app.execute_sql(&format!(
        "INSERT INTO members (email, email_normalized, handle, display_name, created_at, updated_at) VALUES {}",
        members.join(", ")
    ))
    .await;
    app.execute_sql(&format!(
        "INSERT INTO follows (member_id, target_type, target_id, level, created_at, updated_at) \
         SELECT id, 'Topic', {topic_id}, 'watching', {now}, {now} FROM members WHERE email LIKE 'bulk%@example.org'"
    ))
    .await;
    let followers = format!("SELECT COUNT(*) FROM follows WHERE target_type = 'Topic' AND target_id = {topic_id}");
    assert_eq!(app.count(&followers).await, FOLLOWERS);

    // A case study published in it (its real event), and EVENTS - 1 more like it: as if
    // it had been archived and published again that many times.
    let case_study = create_case_study(&author, case_study("Bin collection reminders by text", &[&topic])).await;
    let case_study = case_study["id"].as_str().unwrap().to_string();
    let data = author.data(PUBLISH, json!({ "id": case_study })).await;
    assert_eq!(data["publishCaseStudy"]["userErrors"], json!([]), "{data}");
    let case_study_id = kettle::graphql::relay::parse_global_id_of("CaseStudy", &case_study).unwrap();
    let ours = format!("kind = 'case_study.published' AND subject_type = 'CaseStudy' AND subject_id = {case_study_id}");
    let published = app.count(&format!("SELECT MIN(id) FROM outbox_events WHERE {ours}")).await;
    republish(&app, published, EVENTS - 1).await;
    let pending = format!("SELECT COUNT(*) FROM outbox_events WHERE dispatched_at IS NULL AND {ours}");
    assert_eq!(app.count(&pending).await, EVENTS, "the whole backlog waits");
    let rows =
        format!("SELECT COUNT(*) FROM notifications WHERE event_id IN (SELECT id FROM outbox_events WHERE {ours})");
    assert_eq!(app.count(&rows).await, 0, "nothing was dispatched while the lease was held");

    // Let the lease lapse and start `kettle dispatch` at once. The server's dispatcher
    // checks the lease every couple of seconds and may get there first: then take it
    // away again (a batch it has not committed yet never will be), top the backlog up to
    // two batches again in case it committed one, and try with a fresh child.
    let mut attempt = 0;
    let (mut child, pid, before) = loop {
        attempt += 1;
        assert!(attempt <= 10, "the child never got the lease in {} attempts", attempt - 1);
        let waiting = app.count(&pending).await;
        if waiting < EVENTS {
            republish(&app, published, EVENTS - waiting).await;
        }
        let before = app.count(&rows).await;
        app.execute_sql(&format!("UPDATE leases SET expires_at = 0 WHERE name = '{LEASE}' AND holder = '{PAUSED}'"))
            .await;
        let mut child = kettle_command(&app).arg("dispatch").spawn().expect("kettle dispatch starts");
        let pid = child.id().expect("the child's pid");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let holder = loop {
            match holder(&app).await {
                Some(holder) if holder != PAUSED => break holder,
                _ => {}
            }
            assert!(tokio::time::Instant::now() < deadline, "nobody took the lease within 60 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if holder.starts_with(&format!("{pid}-")) {
            break (child, pid, before);
        }
        pause(&app).await;
        child.start_kill().expect("stop the child that lost the race");
        child.wait().await.expect("the child exits");
        eprintln!("attempt {attempt}: the server's dispatcher ({holder}) took the lease before the child; again");
    };

    // Kill the child with SIGKILL as soon as it has committed a batch, before the next.
    until("the child commits its first batch", Duration::from_secs(120), || {
        let app = app.clone();
        let rows = rows.clone();
        async move { app.count(&rows).await > before }
    })
    .await;
    if let Some(status) = child.try_wait().expect("the child's status") {
        let output = child.wait_with_output().await.unwrap();
        panic!(
            "the child finished ({status}) before it could be killed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    child.start_kill().expect("SIGKILL the child");
    let status = child.wait().await.expect("the child exits");
    assert!(!status.success(), "the child was killed, not finished: {status}");
    let left = app.count(&pending).await;
    let written = app.count(&rows).await;
    assert!(left > 0, "the child was killed before it finished: {left} events still pending");
    let events = app.count(&format!("SELECT COUNT(*) FROM outbox_events WHERE {ours}")).await;
    assert!(written > before && written < events * FOLLOWERS, "{written} rows when the child died");
    // What it left is whole batches: every dispatched event has all its rows, every
    // pending one none.
    let per_event = |n: i64| format!("(SELECT COUNT(*) FROM notifications n WHERE n.event_id = e.id) <> {n}");
    let torn = app
        .count(&format!(
            "SELECT COUNT(*) FROM outbox_events e WHERE {ours} AND \
             ((e.dispatched_at IS NOT NULL AND {}) OR (e.dispatched_at IS NULL AND {}))",
            per_event(FOLLOWERS),
            per_event(0)
        ))
        .await;
    assert_eq!(torn, 0, "events dispatched in part when the child died");
    let holder_when_killed = holder(&app).await.unwrap();
    assert!(holder_when_killed.starts_with(&format!("{pid}-")), "the dead child still holds the lease");

    // The server's dispatcher takes the lease over once it expires (10 s) and finishes.
    until("the server's dispatcher takes over and finishes", Duration::from_secs(60), || {
        let app = app.clone();
        let pending = pending.clone();
        async move { app.count(&pending).await == 0 }
    })
    .await;
    let taken_over = holder(&app).await.unwrap_or_default();
    assert!(!taken_over.starts_with(&format!("{pid}-")), "the lease is no longer the dead child's: {taken_over}");

    // No gap: every event told every follower; no duplicate: nobody twice of one event.
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM outbox_events WHERE {ours}")).await, events);
    assert_eq!(app.count(&rows).await, events * FOLLOWERS, "one row per event and follower");
    let duplicates = app
        .count(
            "SELECT COUNT(*) FROM (SELECT event_id, member_id FROM notifications \
             GROUP BY event_id, member_id HAVING COUNT(*) > 1) d",
        )
        .await;
    assert_eq!(duplicates, 0, "a member told twice of one event");
    let short_events =
        app.count(&format!("SELECT COUNT(*) FROM outbox_events e WHERE {ours} AND {}", per_event(FOLLOWERS))).await;
    assert_eq!(short_events, 0, "an event that did not reach every follower exactly once");
    let short_followers = app
        .count(&format!(
            "SELECT COUNT(*) FROM follows f WHERE f.target_type = 'Topic' AND f.target_id = {topic_id} AND \
             (SELECT COUNT(*) FROM notifications n WHERE n.member_id = f.member_id AND n.event_id IN \
              (SELECT id FROM outbox_events WHERE {ours})) <> {events}"
        ))
        .await;
    assert_eq!(short_followers, 0, "a follower who missed an event or got one twice");
    let author_rows = app
        .count("SELECT COUNT(*) FROM notifications n JOIN members m ON m.id = n.member_id WHERE m.email = 'author@example.org'")
        .await;
    assert_eq!(author_rows, 0, "the author is not told of their own publication");

    // Through the API: a publication again is not grouped, so each event is an entry.
    let data = reader.data(INBOX, json!({})).await;
    let viewer = &data["viewer"];
    assert_eq!(viewer["unreadNotificationCount"], json!(events), "{viewer}");
    let edges = viewer["notifications"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 100, "{viewer}");
    assert_eq!(viewer["notifications"]["pageInfo"]["hasNextPage"], json!(true));
    for edge in edges {
        let node: &Value = &edge["node"];
        assert_eq!(node["kind"], "NEW_CASE_STUDY", "{node}");
        assert_eq!(node["groupSize"], 1, "{node}");
        assert_eq!(node["readAt"], Value::Null, "{node}");
        assert_eq!(node["subject"]["id"], json!(case_study), "{node}");
    }
    // And in the database, for every follower: an unread inbox row per event, each its own group.
    let row = sqlx::query(&format!(
        "SELECT COUNT(DISTINCT n.member_id), COUNT(DISTINCT n.group_id), COUNT(*) FROM notifications n \
         WHERE n.channel = 'inbox' AND n.read_at IS NULL AND n.group_id = n.id AND n.event_id IN \
         (SELECT id FROM outbox_events WHERE {ours})"
    ))
    .fetch_one(&app.state().db.pool)
    .await
    .unwrap();
    let (members, groups, entries): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((members, groups, entries), (FOLLOWERS, events * FOLLOWERS, events * FOLLOWERS));
}
