//! Digests: at each member's hour in their own time zone (across daylight-saving changes),
//! daily or weekly on their day, not sent when nothing is new, exactly once per member
//! and period with two instances sweeping at once or one killed mid-sweep, with their
//! sections in order and "and N more", and `kettle digest run`.
//!
//! Tests call the sweep themselves with an injected `now` (`kettle::mail::digest::sweep`)
//! and read what it queued from `mail_queue`, and what was sent from the `.eml` files.
//! Every instant they sweep at is in the future (next year's daylight-saving changes, or a
//! member's next digest), so the server's own once-a-minute sweep, which runs with the
//! real clock, never finds those digests due and cannot get in the way.

use std::time::Duration;

use jiff::{
    civil::{Date, Weekday},
    tz::TimeZone,
    Timestamp, ToSpan,
};
use kettle::mail::digest::{self, SweepOutcome};
use serde_json::json;
use sqlx::Row;

use crate::{
    artefacts::{artefact, share},
    case_studies::{admin, case_study, create_case_study, create_topic, PUBLISH},
    comments::post,
    mailbox,
    notifications::dispatched,
    scenarios,
    support::{kettle_command, Client, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        digests_arrive_at_each_members_local_hour_across_daylight_saving_changes,
        digests_weekly_go_out_on_the_chosen_weekday,
        digests_with_nothing_new_are_not_sent_but_the_schedule_moves_on,
        digests_two_instances_sweeping_at_once_send_each_digest_once,
        digests_an_instance_killed_mid_sweep_leaves_every_digest_sent_once_after_restart,
        digests_list_the_most_useful_first_with_and_n_more,
        digests_cli_runs_by_hand_and_a_dry_run_changes_nothing,
    ]
}

const FOLLOW: &str =
    "mutation($input: FollowInput!) { follow(input: $input) { follow { level } userErrors { field code } } }";
const MARK_ALL_READ: &str =
    "mutation { markNotificationsRead(input: {}) { unreadCount userErrors { field code message } } }";
const CREATE_GROUP: &str = "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id } userErrors { field code } } }";
const SCHEDULE: &str = "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id } userErrors { field code message } } }";
const CANCEL_MEETUP: &str =
    "mutation($id: ID!) { cancelMeetup(input: { id: $id }) { event { status } userErrors { field code } } }";

// ---------------------------------------------------------------------------------------
// Helpers.

async fn follow(client: &Client, target: &str, level: &str) {
    let data = client.data(FOLLOW, json!({ "input": { "targetId": target, "level": level } })).await;
    assert_eq!(data["follow"]["userErrors"], json!([]), "{data}");
}

async fn id_of(app: &TestApp, email: &str) -> i64 {
    app.count(&format!("SELECT id FROM members WHERE email_normalized = '{email}'")).await
}

fn number(type_name: &str, id: &str) -> i64 {
    kettle::graphql::relay::parse_global_id_of(type_name, id).unwrap()
}

/// A case study by `author` published in `topic`, dispatched into notifications.
async fn publish(app: &TestApp, author: &Client, topic: &str, title: &str) -> String {
    let id = create_case_study(author, case_study(title, &[topic])).await["id"].as_str().unwrap().to_string();
    let data = author.data(PUBLISH, json!({ "id": id })).await;
    assert_eq!(data["publishCaseStudy"]["userErrors"], json!([]), "{data}");
    dispatched(app).await;
    id
}

/// Sets a member's digest (frequency, ISO weekday, hour, zone) and works out their next
/// digest as of `now`.
async fn set_digest(app: &TestApp, member: i64, frequency: &str, weekday: i64, hour: i64, zone: &str, now: i64) {
    app.execute_sql(&format!(
        "UPDATE members SET digest_frequency = '{frequency}', digest_weekday = {weekday}, digest_hour = {hour}, \
         time_zone = '{zone}' WHERE id = {member}"
    ))
    .await;
    let mut tx = app.state().db.begin_write().await.unwrap();
    digest::reschedule(&mut tx, member, now).await.unwrap();
    tx.commit().await.unwrap();
}

async fn sweep(app: &TestApp, now: i64) -> SweepOutcome {
    digest::sweep(&app.state().db, &app.state().mailer, now).await.unwrap()
}

/// Sweeps until nothing is left that this instance can do; the outcomes summed.
async fn drain(app: &TestApp, now: i64) -> SweepOutcome {
    let mut total = SweepOutcome::default();
    loop {
        let outcome = sweep(app, now).await;
        total.due += outcome.due;
        total.sent += outcome.sent;
        total.empty += outcome.empty;
        total.off += outcome.off;
        total.skipped += outcome.skipped;
        if outcome.due as i64 != digest::BATCH || !outcome.progressed() {
            return total;
        }
    }
}

async fn next_at(app: &TestApp, member: i64) -> Option<i64> {
    sqlx::query_scalar::<_, Option<i64>>("SELECT next_digest_at FROM members WHERE id = $1")
        .bind(member)
        .fetch_one(&app.state().db.pool)
        .await
        .unwrap()
}

/// A digest as queued.
#[derive(Debug)]
struct Queued {
    key: String,
    subject: String,
    text: String,
    html: String,
    unsubscribe_url: Option<String>,
}

/// The digests queued for a member, oldest first.
async fn digests(app: &TestApp, member: i64) -> Vec<Queued> {
    let rows = sqlx::query(
        "SELECT idempotency_key, subject, text_body, html_body, unsubscribe_url FROM mail_queue \
         WHERE template = 'digest' AND member_id = $1 ORDER BY id",
    )
    .bind(member)
    .fetch_all(&app.state().db.pool)
    .await
    .unwrap();
    rows.iter()
        .map(|r| Queued { key: r.get(0), subject: r.get(1), text: r.get(2), html: r.get(3), unsubscribe_url: r.get(4) })
        .collect()
}

fn millis(text: &str) -> i64 {
    text.parse::<Timestamp>().unwrap().as_millisecond()
}

fn shown(at: i64) -> String {
    Timestamp::from_millisecond(at).unwrap().to_string()
}

/// Next year: every instant these tests sweep at is later than the real clock.
fn next_year() -> i16 {
    Timestamp::now().to_zoned(TimeZone::UTC).year() + 1
}

/// `date` at `hour`:00 UTC, in millis.
fn utc(date: Date, hour: i8) -> i64 {
    date.at(hour, 0, 0, 0).to_zoned(TimeZone::UTC).unwrap().timestamp().as_millisecond()
}

/// `count` members inserted in bulk (`{prefix}{i}@example.org`), verified, their digest
/// due at `due`; returns their ids.
async fn bulk_members(app: &TestApp, prefix: &str, count: i64, due: Option<i64>) -> Vec<i64> {
    let now = kettle::db::now_millis();
    let due = due.map_or("NULL".to_string(), |d| d.to_string());
    for chunk in (1..=count).collect::<Vec<_>>().chunks(200) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| {
                format!(
                    "('{prefix}{i}@example.org', '{prefix}{i}@example.org', '{prefix}-{i}', 'Bulk {i}', {now}, {now}, \
                     {now}, 'daily', {due})"
                )
            })
            .collect();
        app.execute_sql(&format!(
            "INSERT INTO members (email, email_normalized, handle, display_name, created_at, updated_at, \
             email_verified_at, digest_frequency, next_digest_at) VALUES {}",
            rows.join(", ")
        ))
        .await;
    }
    let ids = sqlx::query_scalar::<_, i64>("SELECT id FROM members WHERE email LIKE $1 ORDER BY id")
        .bind(format!("{prefix}%@example.org"))
        .fetch_all(&app.state().db.pool)
        .await
        .unwrap();
    assert_eq!(ids.len() as i64, count);
    ids
}

/// Members matching `prefix` follow `topic` at the digest level.
async fn bulk_follow(app: &TestApp, prefix: &str, topic: i64) {
    let now = kettle::db::now_millis();
    app.execute_sql(&format!(
        "INSERT INTO follows (member_id, target_type, target_id, level, created_at, updated_at) \
         SELECT id, 'Topic', {topic}, 'digest', {now}, {now} FROM members WHERE email LIKE '{prefix}%@example.org'"
    ))
    .await;
}

/// Waits (at most `limit`) until `done` holds.
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

// ---------------------------------------------------------------------------------------
// Schedules.

#[derive(Clone, Copy, Debug)]
enum Zone {
    NewYork,
    London,
}

impl Zone {
    fn name(self) -> &'static str {
        match self {
            Zone::NewYork => "America/New_York",
            Zone::London => "Europe/London",
        }
    }
}

/// The year's daylight-saving changes, by the rules: the US's on the second Sunday of
/// March and the first of November, the UK's on the last Sundays of March and October.
struct Changes {
    us_spring: Date,
    us_fall: Date,
    uk_spring: Date,
    uk_fall: Date,
}

fn changes(year: i16) -> Changes {
    let sunday =
        |month: i8, nth: i8| Date::new(year, month, 1).unwrap().nth_weekday_of_month(nth, Weekday::Sunday).unwrap();
    Changes { us_spring: sunday(3, 2), us_fall: sunday(11, 1), uk_spring: sunday(3, -1), uk_fall: sunday(10, -1) }
}

/// When `hour`:00 on `date` in `zone` is (UTC millis), from the rules rather than a time
/// zone database: New York is UTC-5, or UTC-4 in summer, changing at 02:00 local; London
/// is UTC, or UTC+1 in summer, changing at 01:00 UTC. An hour the spring change skips
/// comes an hour late (02:00 in New York is 03:00 EDT: the same instant as 02:00 EST); an
/// hour the autumn change repeats is the first of the two (summer time).
fn expected(zone: Zone, changes: &Changes, date: Date, hour: i64) -> i64 {
    let (standard, summer, spring, fall, gap, fold) = match zone {
        Zone::NewYork => (-5, -4, changes.us_spring, changes.us_fall, 2, 1),
        Zone::London => (0, 1, changes.uk_spring, changes.uk_fall, 1, 1),
    };
    let offset = if date < spring || date > fall {
        standard
    } else if date > spring && date < fall {
        summer
    } else if date == spring {
        if hour <= gap {
            standard
        } else {
            summer
        }
    } else if hour <= fold {
        summer
    } else {
        standard
    };
    utc(date, hour as i8) - offset * 3_600_000
}

async fn digests_arrive_at_each_members_local_hour_across_daylight_saving_changes(app: TestApp) {
    let author = admin(&app, "author@example.org", "Ada Author").await;
    let topic = create_topic(&author, "Bin collection").await;
    // Two members at 08:00 (one in New York, one in London), and two at night, at hours
    // the changes skip or repeat.
    let mut members = Vec::new();
    for (email, name, zone) in [
        ("ny@example.org", "Nia York", Zone::NewYork),
        ("london@example.org", "Len Don", Zone::London),
        ("ny-night@example.org", "Nat Night", Zone::NewYork),
        ("london-night@example.org", "Lou Night", Zone::London),
    ] {
        let client = app.verified_member(email, name).await;
        follow(&client, &topic, "DIGEST").await;
        members.push((id_of(&app, email).await, email, zone));
    }
    let year = next_year();
    let changes = changes(year);
    let phases =
        [(changes.us_spring, true), (changes.uk_spring, true), (changes.uk_fall, false), (changes.us_fall, false)];
    let mut sent: std::collections::HashMap<i64, usize> = Default::default();
    let mut published = 0;
    for (change, spring) in phases {
        // Each member's hour in this phase: 08:00, and at night the hour each change skips
        // or repeats (New York skips 02:00 and repeats 01:00; London skips and repeats 01:00).
        let hours: Vec<i64> = members
            .iter()
            .map(|(_, email, _)| match (*email, spring) {
                ("ny-night@example.org", true) => 2,
                ("ny-night@example.org", false) => 1,
                ("london-night@example.org", _) => 1,
                _ => 8,
            })
            .collect();
        // Two days before the change, in the evening UTC: each member's first digest of
        // the phase is on the day before the change.
        let start = utc(change.checked_sub(2.days()).unwrap(), 20);
        let mut due: Vec<(i64, usize, i64)> = Vec::new();
        for (i, (id, _, zone)) in members.iter().enumerate() {
            set_digest(&app, *id, "daily", 1, hours[i], zone.name(), start).await;
            let first = expected(*zone, &changes, change.checked_sub(1.day()).unwrap(), hours[i]);
            assert_eq!(next_at(&app, *id).await.map(shown), Some(shown(first)), "{} before {change}", zone.name());
            for day in -1..=1 {
                let date = change.checked_add(day.days()).unwrap();
                let next = expected(*zone, &changes, date.checked_add(1.day()).unwrap(), hours[i]);
                due.push((expected(*zone, &changes, date, hours[i]), i, next));
            }
        }
        due.sort();
        let mut instants: Vec<i64> = due.iter().map(|(at, ..)| *at).collect();
        instants.dedup();
        for at in instants {
            // Something new for everyone, so a digest that is due is sent.
            published += 1;
            publish(&app, &author, &topic, &format!("Collections, week {published}")).await;
            let just_before = sweep(&app, at - 1).await;
            assert_eq!(just_before, SweepOutcome::default(), "nothing is due just before {}", shown(at));
            let these: Vec<&(i64, usize, i64)> = due.iter().filter(|(t, ..)| *t == at).collect();
            let outcome = sweep(&app, at).await;
            assert_eq!((outcome.due, outcome.sent), (these.len(), these.len()), "at {}: {outcome:?}", shown(at));
            for (_, i, next) in these {
                let (id, email, zone) = members[*i];
                let queued = digests(&app, id).await;
                let last = queued.last().unwrap_or_else(|| panic!("no digest for {email} at {}", shown(at)));
                assert_eq!(last.key, format!("digest:{id}:{at}"), "{email}");
                assert!(last.subject.starts_with("Your daily Kettle digest: "), "{}", last.subject);
                *sent.entry(id).or_default() += 1;
                assert_eq!(queued.len(), sent[&id], "{email}: one digest per day");
                assert_eq!(
                    next_at(&app, id).await.map(shown),
                    Some(shown(*next)),
                    "{email} ({}): the next digest after {}",
                    zone.name(),
                    shown(at)
                );
            }
        }
    }
    // Sent, as mail: each member's twelve digests are in the mail folder, once each.
    for (id, email, _) in &members {
        assert_eq!(sent[id], 12, "{email}");
        let mail = mailbox::wait_for(&app, email, |m| m.subject.starts_with("Your daily Kettle digest")).await;
        assert_eq!(mail.content_type, "multipart/alternative");
        assert!(mail.header("list-unsubscribe").is_some_and(|u| u.contains("/unsubscribe/")), "{:?}", mail.headers);
        assert!(mail.text.contains(&app.url("/case-studies/")), "absolute links: {}", mail.text);
    }
    until("every digest is delivered", Duration::from_secs(30), || {
        let app = app.clone();
        let emails: Vec<&str> = members.iter().map(|(_, e, _)| *e).collect();
        async move {
            emails.iter().all(|email| {
                let mails: Vec<mailbox::Mail> = mailbox::to(&app, email)
                    .into_iter()
                    .filter(|m| m.subject.starts_with("Your daily Kettle digest"))
                    .collect();
                let mut ids: Vec<String> = mails.iter().map(|m| m.message_id.clone()).collect();
                ids.sort();
                ids.dedup();
                assert_eq!(ids.len(), mails.len(), "a digest was delivered twice to {email}");
                mails.len() == 12
            })
        }
    })
    .await;
}

async fn digests_weekly_go_out_on_the_chosen_weekday(app: TestApp) {
    let author = admin(&app, "author@example.org", "Ada Author").await;
    let topic = create_topic(&author, "Libraries").await;
    let london = app.verified_member("wed@example.org", "Wendy Wednesday").await;
    let ny = app.verified_member("sun@example.org", "Sunil Sunday").await;
    follow(&london, &topic, "DIGEST").await;
    follow(&ny, &topic, "WATCHING").await;
    let (london, ny) = (id_of(&app, "wed@example.org").await, id_of(&app, "sun@example.org").await);

    // A Monday in June next year (summer time on both sides).
    let monday = Date::new(next_year(), 6, 1).unwrap().nth_weekday_of_month(1, Weekday::Monday).unwrap();
    let day = |n: i64| monday.checked_add(n.days()).unwrap();
    set_digest(&app, london, "weekly", 3, 9, "Europe/London", utc(monday, 12)).await;
    set_digest(&app, ny, "weekly", 7, 18, "America/New_York", utc(monday, 12)).await;
    let wednesday = utc(day(2), 8); // 09:00 BST
    let sunday = utc(day(6), 22); // 18:00 EDT
    assert_eq!(next_at(&app, london).await.map(shown), Some(shown(wednesday)));
    assert_eq!(next_at(&app, ny).await.map(shown), Some(shown(sunday)));

    publish(&app, &author, &topic, "Library opening hours by text").await;
    assert_eq!(sweep(&app, utc(day(1), 8)).await, SweepOutcome::default(), "nobody is due on Tuesday");
    assert_eq!(sweep(&app, wednesday - 1).await, SweepOutcome::default());
    let outcome = sweep(&app, wednesday).await;
    assert_eq!((outcome.due, outcome.sent), (1, 1), "{outcome:?}");
    let queued = digests(&app, london).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].subject, "Your weekly Kettle digest: 1 case study");
    assert_eq!(next_at(&app, london).await.map(shown), Some(shown(utc(day(9), 8))), "a week on, Wednesday");
    let local = Timestamp::from_millisecond(next_at(&app, london).await.unwrap())
        .unwrap()
        .to_zoned(TimeZone::get("Europe/London").unwrap());
    assert_eq!((local.weekday(), local.hour()), (Weekday::Wednesday, 9));

    for n in 3..=5 {
        assert_eq!(sweep(&app, utc(day(n), 23)).await, SweepOutcome::default(), "nobody is due on day {n}");
    }
    let outcome = sweep(&app, sunday).await;
    assert_eq!((outcome.due, outcome.sent), (1, 1), "{outcome:?}");
    assert_eq!(digests(&app, ny).await.len(), 1);
    assert_eq!(next_at(&app, ny).await.map(shown), Some(shown(utc(day(13), 22))), "a week on, Sunday");
    mailbox::wait_for(&app, "sun@example.org", |m| m.subject == "Your weekly Kettle digest: 1 case study").await;
}

async fn digests_with_nothing_new_are_not_sent_but_the_schedule_moves_on(app: TestApp) {
    let author = admin(&app, "author@example.org", "Ada Author").await;
    let topic = create_topic(&author, "Parking").await;
    // Quiet follows at the digest level; Reader watches and reads everything on the site;
    // Choosy watches, but wants new case studies on the site only.
    let quiet = app.verified_member("quiet@example.org", "Quentin Quiet").await;
    let reader = app.verified_member("reader@example.org", "Rea Reader").await;
    let choosy = app.verified_member("choosy@example.org", "Cho Choosy").await;
    follow(&quiet, &topic, "DIGEST").await;
    follow(&reader, &topic, "WATCHING").await;
    follow(&choosy, &topic, "WATCHING").await;
    let ids = [
        id_of(&app, "quiet@example.org").await,
        id_of(&app, "reader@example.org").await,
        id_of(&app, "choosy@example.org").await,
    ];
    app.execute_sql(&format!(
        "INSERT INTO notification_mail_choices (member_id, kind, choice) VALUES ({}, 'new_case_study', 'site')",
        ids[2]
    ))
    .await;

    let start = millis(&format!("{}-05-04T12:00:00Z", next_year()));
    let day = 86_400_000;
    let first = start + 18 * 3_600_000; // 07:00 BST the next day
    for id in ids {
        set_digest(&app, id, "daily", 1, 7, "Europe/London", start).await;
        assert_eq!(next_at(&app, id).await, Some(first));
    }
    // Nothing new at all: nothing sent, and the next is due tomorrow.
    let outcome = sweep(&app, first).await;
    assert_eq!(outcome, SweepOutcome { due: 3, empty: 3, ..SweepOutcome::default() });
    for id in ids {
        assert_eq!(next_at(&app, id).await, Some(first + day));
    }

    // Something new: Quiet gets it; Reader read it on the site; Choosy wants it on the site.
    publish(&app, &author, &topic, "Parking permits in a day").await;
    let marked = reader.data(MARK_ALL_READ, json!({})).await;
    assert_eq!(marked["markNotificationsRead"]["unreadCount"], 0);
    let outcome = sweep(&app, first + day).await;
    assert_eq!(outcome, SweepOutcome { due: 3, sent: 1, empty: 2, ..SweepOutcome::default() });
    assert_eq!(digests(&app, ids[0]).await.len(), 1);
    // Nothing new since: no second digest.
    let outcome = sweep(&app, first + 2 * day).await;
    assert_eq!(outcome, SweepOutcome { due: 3, empty: 3, ..SweepOutcome::default() });
    assert_eq!(app.count("SELECT COUNT(*) FROM mail_queue WHERE template = 'digest'").await, 1);
    for id in ids {
        assert_eq!(next_at(&app, id).await, Some(first + 3 * day));
    }

    // No digest at all for a member who chose never, nor for an unverified address.
    set_digest(&app, ids[0], "never", 1, 7, "Europe/London", start).await;
    assert_eq!(next_at(&app, ids[0]).await, None);
    app.member("unverified@example.org", "Una Verified").await;
    let unverified = id_of(&app, "unverified@example.org").await;
    set_digest(&app, unverified, "daily", 1, 7, "Europe/London", start).await;
    assert_eq!(next_at(&app, unverified).await, None);
    // Nor for a bouncing one: rescheduling clears it, and a sweep that finds one due
    // (set by hand here) sends nothing and clears it too.
    app.execute_sql(&format!(
        "UPDATE members SET email_bouncing_at = 1, next_digest_at = {first} WHERE id = {}",
        ids[1]
    ))
    .await;
    let outcome = sweep(&app, first).await;
    assert_eq!(outcome, SweepOutcome { due: 1, off: 1, ..SweepOutcome::default() });
    assert_eq!(next_at(&app, ids[1]).await, None);
}

// ---------------------------------------------------------------------------------------
// Exactly once.

/// Members due together in the concurrency tests.
const MANY: i64 = 450;

async fn digests_two_instances_sweeping_at_once_send_each_digest_once(app: TestApp) {
    let author = admin(&app, "author@example.org", "Ada Author").await;
    let topic = create_topic(&author, "Housing").await;
    let due = millis(&format!("{}-02-01T08:00:00Z", next_year()));
    let ids = bulk_members(&app, "many", MANY, Some(due)).await;
    bulk_follow(&app, "many", number("Topic", &topic)).await;
    publish(&app, &author, &topic, "Repairs reported by photo").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM notifications WHERE channel = 'digest'").await, MANY);

    // A second instance on the same database, and two sweeps on this one, all at once.
    let second = TestApp::spawn_with(app.backend(), &[("KETTLE_DATABASE_URL", app.database_url())]).await;
    let (a, b, c) = tokio::join!(drain(&app, due), drain(&second, due), drain(&app, due));
    second.finish().await;
    assert_eq!(a.sent + b.sent + c.sent, MANY as usize, "{a:?} {b:?} {c:?}");
    assert_eq!(a.empty + b.empty + c.empty + a.off + b.off + c.off, 0);

    // Each member's digest once, and everyone's schedule moved on.
    assert_eq!(app.count("SELECT COUNT(*) FROM mail_queue WHERE template = 'digest'").await, MANY);
    assert_eq!(app.count("SELECT COUNT(DISTINCT member_id) FROM mail_queue WHERE template = 'digest'").await, MANY);
    let still_due =
        format!("SELECT COUNT(*) FROM members WHERE next_digest_at IS NOT NULL AND next_digest_at <= {due}");
    assert_eq!(app.count(&still_due).await, 0);
    for id in [ids[0], ids[MANY as usize / 2], ids[MANY as usize - 1]] {
        let queued = digests(&app, id).await;
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].key, format!("digest:{id}:{due}"));
    }
    // Sweeping again finds nobody.
    assert_eq!(sweep(&app, due).await, SweepOutcome::default());
}

/// Holds what keeps `kettle digest run` from committing its next batch: on SQLite the
/// write lock; on PostgreSQL an exclusive lock on the mail queue (so the child's batch
/// transaction waits at its first INSERT, after advancing its members).
async fn block_commits(app: &TestApp) -> sqlx::Transaction<'static, sqlx::Any> {
    let db = &app.state().db;
    match db.dialect {
        kettle::db::Dialect::Sqlite => db.begin_write().await.expect("the write lock"),
        kettle::db::Dialect::Postgres => {
            let mut tx = db.pool.begin().await.unwrap();
            sqlx::query("LOCK TABLE mail_queue IN EXCLUSIVE MODE").execute(&mut *tx).await.unwrap();
            tx
        }
    }
}

async fn digests_an_instance_killed_mid_sweep_leaves_every_digest_sent_once_after_restart(app: TestApp) {
    const MEMBERS: i64 = 1_000;
    let author = admin(&app, "author@example.org", "Ada Author").await;
    let topic = create_topic(&author, "Planning").await;
    let due = millis(&format!("{}-02-01T08:00:00Z", next_year()));
    bulk_members(&app, "kill", MEMBERS, Some(due)).await;
    bulk_follow(&app, "kill", number("Topic", &topic)).await;
    publish(&app, &author, &topic, "Planning applications online").await;
    let queued = "SELECT COUNT(*) FROM mail_queue WHERE template = 'digest'";
    let advanced = format!("SELECT COUNT(*) FROM members WHERE email LIKE 'kill%' AND next_digest_at > {due}");
    let now = shown(due + 60_000);

    // `kettle digest run` sweeps batch after batch; once it has committed one, hold the
    // lock its next batch needs, and kill it while it waits.
    let mut child = kettle_command(&app).args(["digest", "run", "--now", &now]).spawn().expect("kettle digest run");
    until("the child commits its first batch", Duration::from_secs(120), || {
        let app = app.clone();
        async move { app.count(queued).await > 0 }
    })
    .await;
    let lock = block_commits(&app).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some(status) = child.try_wait().unwrap() {
        let output = child.wait_with_output().await.unwrap();
        panic!(
            "the child finished ({status}) before it could be killed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    child.start_kill().expect("SIGKILL the child");
    assert!(!child.wait().await.unwrap().success(), "the child was killed");
    lock.rollback().await.unwrap();

    // Whole batches or nothing: every member advanced has their digest queued, and no
    // one else has.
    let done = app.count(queued).await;
    assert!(done > 0 && done < MEMBERS, "killed mid-sweep: {done} of {MEMBERS} digests queued");
    assert_eq!(app.count(&advanced).await, done, "advanced members and queued digests match");

    // The restart: sweep again (on PostgreSQL the killed child's connection may hold
    // its members' rows for a moment longer: those are skipped until it is gone).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let output = kettle_command(&app).args(["digest", "run", "--now", &now]).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.contains(" due: "), "{stdout}");
        if app.count(queued).await == MEMBERS {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not every digest was sent after the restart");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.count(queued).await, MEMBERS);
    assert_eq!(app.count("SELECT COUNT(DISTINCT member_id) FROM mail_queue WHERE template = 'digest'").await, MEMBERS);
    assert_eq!(app.count(&advanced).await, MEMBERS);
    // And once more finds nothing due.
    let output = kettle_command(&app).args(["digest", "run", "--now", &now]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("0 due: 0 sent"), "{output:?}");
}

// ---------------------------------------------------------------------------------------
// Contents.

async fn schedule_meetup(organiser: &Client, group: &str, topic: &str, title: &str, days: i64) -> String {
    let start = Timestamp::now().checked_add(jiff::SignedDuration::from_hours(24 * days)).unwrap();
    let local = start.to_zoned(TimeZone::get("Europe/London").unwrap()).datetime();
    let end = local.checked_add(2.hours()).unwrap();
    let input = json!({
        "groupId": group,
        "title": title,
        "timeZone": "Europe/London",
        "start": local.strftime("%Y-%m-%dT%H:%M").to_string(),
        "end": end.strftime("%Y-%m-%dT%H:%M").to_string(),
        "venueName": "The Federation",
        "topicIds": [topic],
    });
    let data = organiser.data(SCHEDULE, json!({ "input": input })).await;
    assert_eq!(data["scheduleMeetup"]["userErrors"], json!([]), "{data}");
    data["scheduleMeetup"]["event"]["id"].as_str().unwrap().to_string()
}

/// Where each of `needles` is in `text`, asserting each is there and they come in order.
fn in_order(text: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        let at =
            text[from..].find(needle).unwrap_or_else(|| panic!("{needle:?} is not after offset {from} in:\n{text}"));
        from += at + needle.len();
    }
}

async fn digests_list_the_most_useful_first_with_and_n_more(app: TestApp) {
    let author = admin(&app, "author@example.org", "Ada Author").await;
    let other = app.member("other@example.org", "Otto Other").await;
    let topic = create_topic(&author, "Waste").await;
    let reader = app.verified_member("reader@example.org", "Rea Reader").await;
    let reader_id = id_of(&app, "reader@example.org").await;
    app.execute_sql(&format!("UPDATE members SET time_zone = 'America/New_York' WHERE id = {reader_id}")).await;
    follow(&reader, &topic, "DIGEST").await;
    // Mentions, for this reader, go in the digest rather than by mail at once.
    app.execute_sql(&format!(
        "INSERT INTO notification_mail_choices (member_id, kind, choice) VALUES ({reader_id}, 'mentioned', 'digest')"
    ))
    .await;

    // Seven case studies, marked useful 0..6 times in a shuffled order, and one archived.
    let markers = bulk_members(&app, "marker", 6, None).await;
    let useful = [0, 6, 3, 5, 1, 2, 4];
    let mut case_studies = Vec::new();
    for (i, marks) in useful.iter().enumerate() {
        let id = publish(&app, &author, &topic, &format!("Study {i} with {marks} marks")).await;
        for member in &markers[..*marks] {
            app.execute_sql(&format!(
                "INSERT INTO case_study_marks (case_study_id, member_id, kind, created_at) VALUES ({}, {member}, 'useful', 1)",
                number("CaseStudy", &id)
            ))
            .await;
        }
        case_studies.push(id);
    }
    let archived = publish(&app, &author, &topic, "Study withdrawn later").await;
    app.execute_sql(&format!(
        "UPDATE case_studies SET status = 'archived' WHERE id = {}",
        number("CaseStudy", &archived)
    ))
    .await;

    // And one the moderators hid after it was announced.
    let hidden = publish(&app, &author, &topic, "Study hidden by the moderators").await;
    app.execute_sql(&format!(
        "UPDATE case_studies SET hidden_at = 1, hidden_reason = 'spam' WHERE id = {}",
        number("CaseStudy", &hidden)
    ))
    .await;

    // Three artefacts, reused 2, 0 and 5 times, and a hidden one.
    let mut artefacts = Vec::new();
    for (title, reuses) in [("Kit two", 2), ("Kit none", 0), ("Kit five", 5), ("Kit hidden", 9)] {
        let shared = share(&author, artefact(title, &[&topic])).await;
        let id = number("Artefact", shared["id"].as_str().unwrap());
        app.execute_sql(&format!("UPDATE artefacts SET reuse_count = {reuses} WHERE id = {id}")).await;
        artefacts.push(id);
    }
    app.execute_sql(&format!("UPDATE artefacts SET hidden_at = 1, hidden_reason = 'spam' WHERE id = {}", artefacts[3]))
        .await;

    // Meetups: in 30 days, in 20 days, one cancelled, one that has already happened.
    let data = author.data(CREATE_GROUP, json!({ "input": { "name": "Waste nerds", "region": "North West" } })).await;
    let group = data["createMeetupGroup"]["group"]["id"].as_str().unwrap().to_string();
    schedule_meetup(&author, &group, &topic, "Later meetup", 30).await;
    let sooner = schedule_meetup(&author, &group, &topic, "Sooner meetup", 20).await;
    let cancelled = schedule_meetup(&author, &group, &topic, "Cancelled meetup", 25).await;
    let past = schedule_meetup(&author, &group, &topic, "Past meetup", 22).await;
    let data = author.data(CANCEL_MEETUP, json!({ "id": cancelled })).await;
    assert_eq!(data["cancelMeetup"]["userErrors"], json!([]), "{data}");
    app.execute_sql(&format!("UPDATE meetup_events SET starts_at = 1000 WHERE id = {}", number("MeetupEvent", &past)))
        .await;

    // Conversations the reader follows: five new comments on one, two on another.
    follow(&reader, &case_studies[1], "DIGEST").await;
    follow(&reader, &case_studies[2], "DIGEST").await;
    for n in 0..2 {
        post(&other, &case_studies[2], None, &format!("Quieter comment {n}")).await;
    }
    for n in 0..5 {
        post(&other, &case_studies[1], None, &format!("Busy comment {n}")).await;
    }
    // And a mention of the reader.
    let handle: String = sqlx::query_scalar("SELECT handle FROM members WHERE id = $1")
        .bind(reader_id)
        .fetch_one(&app.state().db.pool)
        .await
        .unwrap();
    post(&other, &case_studies[3], None, &format!("@{handle} you will like this")).await;
    dispatched(&app).await;

    let due = next_at(&app, reader_id).await.expect("a verified member has a digest due");
    let outcome = sweep(&app, due).await;
    assert_eq!(outcome.sent, 1, "{outcome:?}");
    let queued = digests(&app, reader_id).await;
    assert_eq!(queued.len(), 1);
    let digest = &queued[0];
    assert_eq!(
        digest.subject,
        "Your weekly Kettle digest: 7 case studies, 3 artefacts, 2 meetups, 2 busy conversations, 1 update about you"
    );
    let text = &digest.text;
    assert!(text.contains("Hello Rea Reader,"), "{text}");
    // Sections in order, each most useful first.
    in_order(
        text,
        &[
            "NEW CASE STUDIES",
            "Study 1 with 6 marks (marked useful by 6 people)",
            "Study 3 with 5 marks",
            "Study 6 with 4 marks",
            "Study 2 with 3 marks",
            "Study 5 with 2 marks",
            &format!("And 2 more: {}", app.url("/notifications/new")),
            "NEW ARTEFACTS",
            "Kit five (used by 5 organisations)",
            "Kit two (used by 2 organisations)",
            "Kit none (not reused yet)",
            "MEETUPS COMING UP",
            "Sooner meetup",
            "Later meetup",
            "BUSY CONVERSATIONS",
            "5 new comments on “Study 1 with 6 marks”",
            "2 new comments on “Study 2 with 3 marks”",
            "ABOUT YOU",
            "Otto Other mentioned you in “Study 3 with 5 marks”",
        ],
    );
    for absent in
        ["Study 4 with 1 marks", "Study 0 with 0 marks", "withdrawn", "hidden", "Cancelled meetup", "Past meetup"]
    {
        assert!(!text.contains(absent), "{absent:?} in:\n{text}");
    }
    assert_eq!(text.matches("And ").count(), 1, "only the case studies have more: {text}");
    // Meetups at their time in the reader's zone.
    let sooner_at: i64 =
        app.count(&format!("SELECT starts_at FROM meetup_events WHERE id = {}", number("MeetupEvent", &sooner))).await;
    let local = Timestamp::from_millisecond(sooner_at).unwrap().to_zoned(TimeZone::get("America/New_York").unwrap());
    let when = local.strftime("%A %-d %B %Y at %H:%M (%Z)").to_string();
    assert!(text.contains(&format!("Sooner meetup, {when}")), "{when:?} in:\n{text}");
    // Every link is absolute, to the site.
    for line in text.lines().filter(|l| l.contains("://")) {
        let link = line.split_whitespace().find(|w| w.contains("://")).unwrap();
        assert!(link.starts_with(&app.url("/")), "{link}");
    }
    // (HTML escapes the slashes in attributes: `&#x2f;`, which mail clients decode.)
    let html = digest.html.replace("&#x2f;", "/");
    assert!(html.contains(&format!("href=\"{}", app.url("/case-studies/"))), "{html}");
    assert!(digest.unsubscribe_url.as_deref().is_some_and(|u| u.starts_with(&app.url("/unsubscribe/"))));
    // The same as the reader receives it.
    let mail = mailbox::wait_for(&app, "reader@example.org", |m| m.subject == digest.subject).await;
    assert_eq!(mail.content_type, "multipart/alternative");
    in_order(
        &mail.html,
        &["New case studies", "New artefacts", "Meetups coming up", "Busy conversations", "About you"],
    );
    assert!(mail.header("list-unsubscribe-post").is_some(), "{:?}", mail.headers);
}

// ---------------------------------------------------------------------------------------
// The command line.

async fn digests_cli_runs_by_hand_and_a_dry_run_changes_nothing(app: TestApp) {
    let author = admin(&app, "author@example.org", "Ada Author").await;
    let topic = create_topic(&author, "Benefits").await;
    let member = app.verified_member("hand@example.org", "Hana Hand").await;
    follow(&member, &topic, "DIGEST").await;
    let id = id_of(&app, "hand@example.org").await;
    publish(&app, &author, &topic, "Benefits checks in ten minutes").await;
    let cursor = format!("SELECT digest_after_id FROM members WHERE id = {id}");
    let (due, after) = (next_at(&app, id).await.unwrap(), app.count(&cursor).await);

    let run = |args: &[&str]| {
        let mut command = kettle_command(&app);
        command.arg("digest").arg("run").args(args);
        async move {
            let output = command.output().await.unwrap();
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };

    // Help.
    let (code, help, _) = run(&["--help"]).await;
    assert_eq!(code, Some(0));
    assert!(help.contains("--dry-run") && help.contains("--member <EMAIL>") && !help.contains("--now"), "{help}");

    // A dry run for the member, who is not due yet: shows, changes nothing.
    let (code, out, err) = run(&["--dry-run", "--member", "hand@example.org"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("would send: hand@example.org: \"Your weekly Kettle digest: 1 case study\" (1 case study)"),
        "{out}"
    );
    assert!(out.contains("Nothing was changed."), "{out}");
    // A dry run of everything due a week later: the same digest, still nothing changed.
    let (code, out, _) = run(&["--dry-run", "--now", &shown(due + 1)]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("would send: hand@example.org") && out.contains("Dry run: 1 due"), "{out}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM mail_queue WHERE template = 'digest'").await,
        0,
        "a dry run queues nothing"
    );
    assert_eq!((next_at(&app, id).await, app.count(&cursor).await), (Some(due), after), "nor moves anything on");

    // By hand, before it is due: sent now, standing for the coming period.
    let (code, out, err) = run(&["--member", "HAND@example.org"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("sent: hand@example.org: \"Your weekly Kettle digest: 1 case study\""), "{out}");
    let queued = digests(&app, id).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].key, format!("digest:{id}:{due}"));
    assert_eq!(next_at(&app, id).await, Some(due + 7 * 86_400_000), "the period after the one it stood for");
    let mail =
        mailbox::wait_for(&app, "hand@example.org", |m| m.subject.starts_with("Your weekly Kettle digest")).await;
    assert!(mail.text.contains("Benefits checks in ten minutes"), "{}", mail.text);
    // Again: nothing new.
    let (_, out, _) = run(&["--member", "hand@example.org"]).await;
    assert!(out.contains("nothing new: hand@example.org: no digest"), "{out}");
    assert_eq!(digests(&app, id).await.len(), 1);

    // Members who get none, and one who does not exist.
    app.member("unverified@example.org", "Una Verified").await;
    let (code, out, _) = run(&["--member", "unverified@example.org"]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("no digest: unverified@example.org: their address is not verified"), "{out}");
    let (code, _, err) = run(&["--member", "nobody@example.org"]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("there is no member with the email address nobody@example.org"), "{err}");
}
