//! Mail about notifications: who is mailed at once and who is not (read on the site
//! first, a kind chosen for the site or switched off, an unverified address, the
//! defaults), two sweeps at once, meetup reminders, one-click unsubscribe (RFC 8058) and
//! its forgeries, and the notification settings through the API and the site.
//!
//! The server's own sweep runs with the real clock and the default ten-minute delay, so
//! it mails nothing during a test; the tests sweep themselves with a `now` past the
//! delay ([`sweep_later`]). What was queued is read from `mail_queue`, and what was sent
//! from the `.eml` files the sender writes ([`mailbox`]).

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Row;

use crate::{
    artefacts::number,
    case_studies::{admin, case_study, create_case_study, create_topic, PUBLISH},
    comments::post,
    mailbox,
    notifications::dispatched,
    scenarios,
    site::Browser,
    support::{error_code, user_errors, Client, Scenario, TestApp, PASSWORD},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        mail_notifications_a_mention_is_mailed_once_and_one_click_unsubscribes,
        mail_notifications_only_unread_wanted_kinds_to_verified_addresses,
        mail_notifications_two_sweeps_at_once_queue_each_once,
        mail_notifications_a_young_notification_holds_back_those_after_it,
        mail_notifications_unsubscribe_links_cannot_be_forged_or_turned,
        mail_notifications_settings_are_validated_and_saved_together,
        mail_notifications_settings_page_saves_choices_and_the_digest,
        mail_notifications_meetup_reminders_go_to_those_going_and_never_after_a_cancel,
        mail_notifications_a_cancellation_carries_the_organisers_message_to_those_going_and_waiting,
    ]
}

const SETTINGS: &str = "{ viewer { notificationSettings { disabledKinds autoWatch mailChoices { kind choice } \
    digestFrequency digestWeekday digestHour nextDigestAt } } }";
const UPDATE: &str = "mutation($input: UpdateNotificationSettingsInput!) { updateNotificationSettings(input: $input) { \
    settings { disabledKinds autoWatch mailChoices { kind choice } digestFrequency digestWeekday digestHour nextDigestAt } \
    userErrors { field code message } } }";
const UNSUBSCRIBE: &str =
    "mutation($token: String!) { unsubscribe(input: { token: $token }) { unsubscribed list userErrors { field code message } } }";
const MARK_ALL_READ: &str = "mutation { markNotificationsRead(input: {}) { unreadCount userErrors { field code } } }";
const FOLLOW: &str =
    "mutation($input: FollowInput!) { follow(input: $input) { follow { level } userErrors { field code message } } }";

// ---------------------------------------------------------------------------------------
// Helpers.

/// Sweeps as if the delay had passed for everything made so far; returns how many
/// messages were queued.
async fn sweep_later(app: &TestApp) -> usize {
    dispatched(app).await;
    let state = app.state();
    let later = kettle::db::now_millis() + state.mailer.delay.as_millis() as i64 + 1_000;
    kettle::mail::notification_mail::sweep(&state.db, &state.mailer, later).await.unwrap()
}

/// The notification mail queued so far, as (address, subject), in queue order.
async fn queued(app: &TestApp) -> Vec<(String, String)> {
    let rows = sqlx::query("SELECT to_address, subject FROM mail_queue WHERE template = 'notification' ORDER BY id")
        .fetch_all(&app.state().db.pool)
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// The addresses notification mail was queued for, sorted.
async fn queued_to(app: &TestApp) -> Vec<String> {
    let mut to: Vec<String> = queued(app).await.into_iter().map(|(to, _)| to).collect();
    to.sort();
    to
}

async fn member_id(app: &TestApp, email: &str) -> i64 {
    app.count(&format!("SELECT id FROM members WHERE email_normalized = '{email}'")).await
}

/// A published case study by `author` whose body says `body`; returns its id.
async fn published(author: &Client, topic: &str, title: &str, body: &str) -> String {
    let mut input = case_study(title, &[topic]);
    input["body"] = json!(body);
    let id = create_case_study(author, input).await["id"].as_str().unwrap().to_string();
    let data = author.data(PUBLISH, json!({ "id": id })).await;
    assert_eq!(data["publishCaseStudy"]["userErrors"], json!([]), "{data}");
    id
}

async fn settings(client: &Client) -> Value {
    client.data(SETTINGS, json!({})).await["viewer"]["notificationSettings"].clone()
}

/// The viewer's effective choice for a kind.
async fn choice(client: &Client, kind: &str) -> String {
    let settings = settings(client).await;
    let entry = settings["mailChoices"].as_array().unwrap().iter().find(|c| c["kind"] == kind).cloned();
    entry.unwrap_or_else(|| panic!("no {kind} in {settings}"))["choice"].as_str().unwrap().to_string()
}

async fn update(client: &Client, input: Value) -> Value {
    client.data(UPDATE, json!({ "input": input })).await["updateNotificationSettings"].clone()
}

/// Changes settings that must be accepted.
async fn save(client: &Client, input: Value) -> Value {
    let payload = update(client, input).await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    payload["settings"].clone()
}

/// The path of an absolute link.
fn path_of(link: &str) -> String {
    let url = url::Url::parse(link).unwrap_or_else(|e| panic!("{link:?} is not absolute: {e}"));
    url.path().to_string()
}

/// The link of a `List-Unsubscribe` header (`<https://…/unsubscribe/…>`).
fn unsubscribe_link(mail: &mailbox::Mail) -> String {
    let header = mail.header("list-unsubscribe").unwrap_or_else(|| panic!("no List-Unsubscribe in {}", mail.raw));
    header.trim().trim_start_matches('<').trim_end_matches('>').to_string()
}

/// A POST as a mail provider sends it (RFC 8058): no cookie, no CSRF token.
async fn one_click(app: &TestApp, path: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let response = reqwest::Client::new().get(app.url(path)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Whether a sent message is mail about a notification (the sender names each file after
/// its template), not, say, the verification sent on registering.
fn about_a_notification(mail: &mailbox::Mail) -> bool {
    mail.file.file_name().is_some_and(|name| name.to_string_lossy().ends_with("-notification.eml"))
}

/// HTML as a reader's parser sees it: minijinja writes `/` in attributes as `&#x2f;`.
fn unescaped(html: &str) -> String {
    html.replace("&#x2f;", "/").replace("&amp;", "&")
}

/// Waits a moment for the sender, then returns every message about a notification to
/// `address`.
async fn settled_mail_to(app: &TestApp, address: &str) -> Vec<mailbox::Mail> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pending = app.count("SELECT COUNT(*) FROM mail_queue WHERE status = 'pending'").await;
        if pending == 0 {
            return mailbox::to(app, address).into_iter().filter(about_a_notification).collect();
        }
        assert!(tokio::time::Instant::now() < deadline, "{pending} messages still pending after 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Meetups.

const CREATE_GROUP: &str = "mutation($input: CreateMeetupGroupInput!) { createMeetupGroup(input: $input) { group { id } userErrors { field code } } }";
const SCHEDULE: &str = "mutation($input: ScheduleMeetupInput!) { scheduleMeetup(input: $input) { event { id } userErrors { field code message } } }";
const RSVP: &str = "mutation($id: ID!, $going: Boolean!) { rsvp(input: { eventId: $id, going: $going }) { rsvp { status } userErrors { field code } } }";
const CANCEL: &str =
    "mutation($id: ID!) { cancelMeetup(input: { id: $id }) { event { status } userErrors { field code } } }";

/// A meetup of `group` starting in `hours` hours (London wall-clock time).
async fn meetup(organiser: &Client, group: &str, title: &str, hours: i64) -> String {
    let at = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(hours)).unwrap();
    let local = at.to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap()).datetime();
    let end = local.checked_add(jiff::SignedDuration::from_hours(2)).unwrap();
    // The organiser is not going: these scenarios count the mail to those who are.
    let input = json!({
        "groupId": group,
        "going": false,
        "title": title,
        "description": "Tea and talking shop.",
        "timeZone": "Europe/London",
        "start": local.strftime("%Y-%m-%dT%H:%M").to_string(),
        "end": end.strftime("%Y-%m-%dT%H:%M").to_string(),
        "venueName": "The Federation",
        "venueAddress": "Federation Street, Manchester",
    });
    let data = organiser.data(SCHEDULE, json!({ "input": input })).await;
    assert_eq!(data["scheduleMeetup"]["userErrors"], json!([]), "{data}");
    data["scheduleMeetup"]["event"]["id"].as_str().unwrap().to_string()
}

async fn going(client: &Client, event: &str) {
    let data = client.data(RSVP, json!({ "id": event, "going": true })).await;
    assert_eq!(data["rsvp"]["rsvp"]["status"], "GOING", "{data}");
}

async fn cancel(organiser: &Client, event: &str) {
    let data = organiser.data(CANCEL, json!({ "id": event })).await;
    assert_eq!(data["cancelMeetup"]["event"]["status"], "CANCELLED", "{data}");
}

// =======================================================================================
// Scenarios.

async fn mail_notifications_a_mention_is_mailed_once_and_one_click_unsubscribes(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Waste").await;
    let ada = app.verified_member("ada@example.org", "Ada").await;
    let grace = app.verified_member("grace@example.org", "Grace").await;
    let story = published(&ada, &topic, "Bin collection rounds", "Thanks to @grace for the routes.").await;
    dispatched(&app).await;

    // Not before the delay: the server's own sweep has run meanwhile, and so does this one.
    let state = app.state();
    let now = kettle::db::now_millis();
    assert_eq!(kettle::mail::notification_mail::sweep(&state.db, &state.mailer, now).await.unwrap(), 0);
    assert_eq!(queued(&app).await, vec![]);

    // After it: one message, once, however often the sweep runs.
    assert_eq!(sweep_later(&app).await, 1);
    assert_eq!(sweep_later(&app).await, 0);
    let subject = "Ada mentioned you in “Bin collection rounds”";
    assert_eq!(queued(&app).await, vec![("grace@example.org".to_string(), subject.to_string())]);
    let mail = mailbox::wait_for(&app, "grace@example.org", |m| m.subject == subject).await;
    assert_eq!(mail.content_type, "multipart/alternative", "{}", mail.raw);
    let page = state.mailer.link(&format!("/case-studies/{}", number("CaseStudy", &json!(story))));
    assert!(mail.text.contains(subject) && mail.text.contains(&page), "{}", mail.text);
    assert!(unescaped(&mail.html).contains(&format!("href=\"{page}\"")), "{}", mail.html);
    assert!(mail.text.contains("You get this because someone mentioned you"), "{}", mail.text);
    let settings_link = state.mailer.link("/settings/notifications");
    assert!(mail.text.contains(&settings_link) && unescaped(&mail.html).contains(&settings_link));
    assert_eq!(mail.header("list-unsubscribe-post"), Some("List-Unsubscribe=One-Click"), "{}", mail.raw);
    let link = unsubscribe_link(&mail);
    assert!(link.starts_with(&state.mailer.link("/unsubscribe/")), "{link}");
    assert!(!mail.message_id.is_empty());
    assert_eq!(settled_mail_to(&app, "grace@example.org").await.len(), 1, "mailed once");
    assert_eq!(settled_mail_to(&app, "ada@example.org").await.len(), 0);

    // A GET of the link only asks; it changes nothing.
    let path = path_of(&link);
    let (status, body) = get(&app, &path).await;
    assert_eq!(status, 200);
    assert!(body.contains("Unsubscribe from mail about mentions?"), "{body}");
    assert!(body.contains(&format!("action=\"{path}\"")), "{body}");
    assert_eq!(choice(&grace, "MENTIONED").await, "EMAIL");

    // The one-click POST, without a session or CSRF token, unsubscribes; again is fine.
    for _ in 0..2 {
        let (status, body) = one_click(&app, &path).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("You are unsubscribed") && body.contains("/settings/notifications"), "{body}");
        assert_eq!(choice(&grace, "MENTIONED").await, "SITE");
    }
    assert_eq!(choice(&grace, "REPLIED").await, "EMAIL", "only that list");
    assert_eq!(choice(&ada, "MENTIONED").await, "EMAIL", "only that member");

    // So the next mention shows on the site only.
    post(&ada, &story, None, "And @grace, the new rounds start Monday.").await;
    assert_eq!(sweep_later(&app).await, 0);
    assert_eq!(queued(&app).await.len(), 1);
}

async fn mail_notifications_only_unread_wanted_kinds_to_verified_addresses(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Housing").await;
    let ada = app.verified_member("ada@example.org", "Ada").await;
    let grace = app.verified_member("grace@example.org", "Grace").await;
    let mary = app.verified_member("mary@example.org", "Mary").await;
    let kim = app.verified_member("kim@example.org", "Kim").await;
    let sam = app.verified_member("sam@example.org", "Sam").await;
    let tom = app.verified_member("tom@example.org", "Tom").await;
    app.member("lin@example.org", "Lin").await;
    save(&mary, json!({ "mailChoices": [{ "kind": "MENTIONED", "choice": "SITE" }] })).await;
    save(&tom, json!({ "mailChoices": [{ "kind": "MENTIONED", "choice": "DIGEST" }, { "kind": "NEW_COMMENT", "choice": "EMAIL" }] }))
        .await;
    let story = published(&ada, &topic, "Void repairs", "With @grace @mary @kim @lin and @tom.").await;
    // Sam and Tom watch the conversation; the default for new comments is the digest.
    for watcher in [&sam, &tom] {
        let data = watcher.data(FOLLOW, json!({ "input": { "targetId": story, "level": "WATCHING" } })).await;
        assert_eq!(data["follow"]["userErrors"], json!([]), "{data}");
    }
    dispatched(&app).await;
    // Grace reads hers on the site within the delay; Kim switches mentions off.
    let read = grace.data(MARK_ALL_READ, json!({})).await;
    assert_eq!(read["markNotificationsRead"]["unreadCount"], 0);
    save(&kim, json!({ "disabledKinds": ["MENTIONED"] })).await;

    assert_eq!(sweep_later(&app).await, 0, "{:?}", queued(&app).await);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE kind = 'mentioned'").await,
        5,
        "Grace, Mary, Kim, Lin and Tom were told on the site"
    );

    // A comment: the author hears of it by mail (the default), Tom too (his choice), Sam
    // only on the site and in his digest (the default for what he follows).
    post(&grace, &story, None, "We fixed ours in a week.").await;
    assert_eq!(sweep_later(&app).await, 2);
    assert_eq!(queued_to(&app).await, vec!["ada@example.org", "tom@example.org"]);
    let subjects: Vec<String> = queued(&app).await.into_iter().map(|(_, s)| s).collect();
    assert!(subjects.contains(&"Grace commented on your case study “Void repairs”".to_string()), "{subjects:?}");
    let mail = mailbox::wait_for(&app, "tom@example.org", about_a_notification).await;
    assert!(mail.text.contains("you watch this conversation"), "{}", mail.text);
    assert_eq!(settled_mail_to(&app, "sam@example.org").await.len(), 0);

    // An address that stops working gets nothing more.
    app.execute_sql("UPDATE members SET email_bouncing_at = 1 WHERE email_normalized = 'ada@example.org'").await;
    post(&grace, &story, None, "Also: the contractor list.").await;
    assert_eq!(sweep_later(&app).await, 1);
    assert_eq!(queued_to(&app).await, vec!["ada@example.org", "tom@example.org", "tom@example.org"]);
}

async fn mail_notifications_two_sweeps_at_once_queue_each_once(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Parking").await;
    let ada = app.verified_member("ada@example.org", "Ada").await;
    let mut handles = Vec::new();
    for i in 0..6 {
        app.verified_member(&format!("m{i}@example.org"), &format!("Member{i}")).await;
        handles.push(format!("@member{i}"));
    }
    for title in ["Permits", "Bays", "Wardens"] {
        published(&ada, &topic, title, &format!("Thanks {}.", handles.join(" "))).await;
    }
    dispatched(&app).await;
    let expected = app.count("SELECT COUNT(*) FROM notifications WHERE kind = 'mentioned'").await;
    assert_eq!(expected, 18, "every member mentioned in each");

    let state = app.state();
    let later = kettle::db::now_millis() + state.mailer.delay.as_millis() as i64 + 1_000;
    let sweep = || kettle::mail::notification_mail::sweep(&state.db, &state.mailer, later);
    let (a, b, c) = tokio::join!(sweep(), sweep(), sweep());
    let total = a.unwrap() + b.unwrap() + c.unwrap();
    assert_eq!(total as i64, expected, "between them, each once");
    assert_eq!(app.count("SELECT COUNT(*) FROM mail_queue WHERE template = 'notification'").await, expected);
    assert_eq!(
        app.count("SELECT COUNT(DISTINCT idempotency_key) FROM mail_queue WHERE idempotency_key LIKE 'notification:%'")
            .await,
        expected
    );
    assert_eq!(
        app.count("SELECT position FROM cursors WHERE name = 'notification_mail'").await,
        app.count("SELECT MAX(id) FROM notifications").await
    );
    assert_eq!(sweep().await.unwrap(), 0);
    for i in 0..6 {
        let address = format!("m{i}@example.org");
        mailbox::wait_for(&app, &address, |m| m.subject.contains("Wardens")).await;
    }
    let per_member = settled_mail_to(&app, "m0@example.org").await;
    assert_eq!(per_member.len(), 3, "{:?}", per_member.iter().map(|m| &m.subject).collect::<Vec<_>>());
}

async fn mail_notifications_a_young_notification_holds_back_those_after_it(app: TestApp) {
    let curator = admin(&app, "curator@example.org", "Curator").await;
    let topic = create_topic(&curator, "Libraries").await;
    let ada = app.verified_member("ada@example.org", "Ada").await;
    app.verified_member("grace@example.org", "Grace").await;
    published(&ada, &topic, "Reading lists", "With @grace.").await;
    published(&ada, &topic, "Library cards", "With @grace again.").await;
    dispatched(&app).await;
    let state = app.state();
    let delay = state.mailer.delay.as_millis() as i64;
    let now = kettle::db::now_millis();
    // The first is still inside its delay, the second (made, say, by a transaction that
    // started earlier) is past it: neither goes yet, and the cursor stays before both.
    let first = app.count("SELECT MIN(id) FROM notifications WHERE kind = 'mentioned'").await;
    let cursor = app.count("SELECT position FROM cursors WHERE name = 'notification_mail'").await;
    assert!(cursor < first);
    app.execute_sql(&format!("UPDATE notifications SET created_at = {now} WHERE id = {first}")).await;
    app.execute_sql(&format!(
        "UPDATE notifications SET created_at = {} WHERE kind = 'mentioned' AND id > {first}",
        now - 2 * delay
    ))
    .await;
    let sweep = |at: i64| kettle::mail::notification_mail::sweep(&state.db, &state.mailer, at);
    assert_eq!(sweep(now).await.unwrap(), 0);
    assert_eq!(app.count("SELECT position FROM cursors WHERE name = 'notification_mail'").await, cursor);
    // Once the first is due, both go.
    assert_eq!(sweep(now + delay).await.unwrap(), 2);
    assert_eq!(queued_to(&app).await, vec!["grace@example.org", "grace@example.org"]);
}

async fn mail_notifications_unsubscribe_links_cannot_be_forged_or_turned(app: TestApp) {
    let ada = app.verified_member("ada@example.org", "Ada").await;
    let grace = app.verified_member("grace@example.org", "Grace").await;
    let (ada_id, grace_id) = (member_id(&app, "ada@example.org").await, member_id(&app, "grace@example.org").await);
    let mailer = &app.state().mailer;
    use kettle::{mail::List, notifications::NotificationKind};
    let mentions = kettle::mail::unsubscribe::token(mailer, grace_id, List::Notifications(NotificationKind::Mentioned));
    let (_, rest) = mentions.split_once('.').unwrap();
    let signature = rest.rsplit_once('.').unwrap().1;
    let forged = [
        format!("{ada_id}.{rest}"),                // another member
        format!("{grace_id}.digest.{signature}"),  // another list
        format!("{grace_id}.replied.{signature}"), // another kind
        format!("{grace_id}.mentioned.{}", "0".repeat(32)),
        format!("{grace_id}.mentioned"),
        "garbage".to_string(),
        format!("{mentions}.extra"),
        "9".repeat(300),
    ];
    for token in &forged {
        let path = format!("/unsubscribe/{token}");
        let (status, body) = get(&app, &path).await;
        assert_eq!(status, 404, "GET {token}: {body}");
        let (status, body) = one_click(&app, &path).await;
        assert_eq!(status, 404, "POST {token}: {body}");
        let payload = app.anonymous().data(UNSUBSCRIBE, json!({ "token": token })).await["unsubscribe"].clone();
        assert_eq!(payload["unsubscribed"], false, "{payload}");
        assert_eq!(payload["list"], Value::Null);
        assert_eq!(user_errors(&payload), vec![("token".to_string(), "INVALID".to_string())]);
    }
    for client in [&ada, &grace] {
        let settings = settings(client).await;
        assert!(
            settings["mailChoices"].as_array().unwrap().iter().all(|c| c["choice"] != "SITE"),
            "nothing changed: {settings}"
        );
        assert_eq!(settings["digestFrequency"], "WEEKLY");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM notification_mail_choices").await, 0);

    // The real one, through the API without signing in.
    let payload = app.anonymous().data(UNSUBSCRIBE, json!({ "token": mentions })).await["unsubscribe"].clone();
    assert_eq!(payload, json!({ "unsubscribed": true, "list": "mentioned", "userErrors": [] }));
    assert_eq!(choice(&grace, "MENTIONED").await, "SITE");

    // The digest: a GET asks, a POST stops it and nothing more is due.
    let digest = kettle::mail::unsubscribe::path(mailer, grace_id, List::Digest);
    let (status, body) = get(&app, &digest).await;
    assert!(status == 200 && body.contains("Unsubscribe from the digest?"), "{body}");
    assert_eq!(settings(&grace).await["digestFrequency"], "WEEKLY");
    let (status, body) = one_click(&app, &digest).await;
    assert!(status == 200 && body.contains("You are unsubscribed"), "{body}");
    let after = settings(&grace).await;
    assert_eq!((after["digestFrequency"].clone(), after["nextDigestAt"].clone()), (json!("NEVER"), Value::Null));
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM members WHERE id = {grace_id} AND next_digest_at IS NULL")).await,
        1
    );
    assert_eq!(settings(&ada).await["digestFrequency"], "WEEKLY", "only hers");

    // A token for a member who has since gone changes nothing and is not found.
    let gone = kettle::mail::unsubscribe::path(mailer, 999_999, List::Digest);
    assert_eq!(one_click(&app, &gone).await.0, 404);
}

async fn mail_notifications_settings_are_validated_and_saved_together(app: TestApp) {
    let ada = app.member("ada@example.org", "Ada").await;
    let fresh = settings(&ada).await;
    let email = [
        "MENTIONED",
        "REPLIED",
        "COMMENTED_ON_YOURS",
        "INTEREST_REGISTERED",
        "WAITLIST_PROMOTED",
        "MEETUP_CHANGED",
        "MEETUP_CANCELLED",
        "MEETUP_REMINDER",
        "RSVP_REMOVED",
        "MEETUP_MESSAGE",
        "JOIN_REQUESTED",
        "JOIN_DECIDED",
        "COAUTHOR_INVITED",
        "CONTENT_MODERATED",
    ];
    let choices = fresh["mailChoices"].as_array().unwrap();
    assert_eq!(choices.len(), 20, "one per kind: {fresh}");
    for entry in choices {
        let kind = entry["kind"].as_str().unwrap();
        let expected = if email.contains(&kind) { "EMAIL" } else { "DIGEST" };
        assert_eq!(entry["choice"], expected, "the default for {kind}");
    }
    assert_eq!(
        (fresh["digestFrequency"].clone(), fresh["digestWeekday"].clone(), fresh["digestHour"].clone()),
        (json!("WEEKLY"), json!(1), json!(8))
    );
    assert_eq!(fresh["nextDigestAt"], Value::Null, "not verified, so no digest is due");

    // Anything out of range refuses the whole change.
    let choice = json!([{ "kind": "MENTIONED", "choice": "DIGEST" }]);
    let twice = json!([{ "kind": "MENTIONED", "choice": "DIGEST" }, { "kind": "MENTIONED", "choice": "SITE" }]);
    let seventeen: Vec<Value> = (0..17).map(|_| json!({ "kind": "REPLIED", "choice": "SITE" })).collect();
    for (input, field) in [
        (json!({ "digestWeekday": 0, "mailChoices": choice, "digestFrequency": "DAILY" }), "digestWeekday"),
        (json!({ "digestWeekday": 8, "autoWatch": false }), "digestWeekday"),
        (json!({ "digestHour": 24, "mailChoices": choice }), "digestHour"),
        (json!({ "digestHour": -1 }), "digestHour"),
        (json!({ "mailChoices": twice, "digestHour": 9 }), "mailChoices"),
        (json!({ "mailChoices": seventeen }), "mailChoices"),
    ] {
        let payload = update(&ada, input.clone()).await;
        assert_eq!(user_errors(&payload), vec![(field.to_string(), "INVALID".to_string())], "{input}: {payload}");
        assert_eq!(payload["settings"], Value::Null);
        assert_eq!(settings(&ada).await, fresh, "nothing changed after {input}");
    }
    let body =
        ada.gql(UPDATE, json!({ "input": { "mailChoices": [{ "kind": "MENTIONED", "choice": "LOUDLY" }] } })).await;
    assert!(body.get("errors").is_some(), "{body}");

    // A good change: everything at once, the rest as it was.
    let saved = save(
        &ada,
        json!({
            "mailChoices": [{ "kind": "MENTIONED", "choice": "DIGEST" }, { "kind": "NEW_COMMENT", "choice": "EMAIL" }],
            "digestFrequency": "DAILY",
            "digestWeekday": 5,
            "digestHour": 18,
        }),
    )
    .await;
    let find = |settings: &Value, kind: &str| {
        settings["mailChoices"].as_array().unwrap().iter().find(|c| c["kind"] == kind).unwrap()["choice"].clone()
    };
    assert_eq!(find(&saved, "MENTIONED"), "DIGEST");
    assert_eq!(find(&saved, "NEW_COMMENT"), "EMAIL");
    assert_eq!(find(&saved, "REPLIED"), "EMAIL");
    assert_eq!((saved["digestFrequency"].clone(), saved["digestWeekday"].clone()), (json!("DAILY"), json!(5)));
    assert_eq!(saved["digestHour"], 18);
    assert_eq!(saved["autoWatch"], true);
    assert_eq!(settings(&ada).await, saved);
    // Giving one setting leaves the others.
    let saved = save(&ada, json!({ "digestHour": 0 })).await;
    assert_eq!((saved["digestFrequency"].clone(), saved["digestHour"].clone()), (json!("DAILY"), json!(0)));
    assert_eq!(find(&saved, "MENTIONED"), "DIGEST");

    // A verified member's next digest follows the schedule they chose.
    let grace = app.verified_member("grace@example.org", "Grace").await;
    let never = save(&grace, json!({ "digestFrequency": "NEVER" })).await;
    assert_eq!(never["nextDigestAt"], Value::Null);

    let body = app.anonymous().gql(UPDATE, json!({ "input": { "digestHour": 9 } })).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    let body = app.anonymous().gql(SETTINGS, json!({})).await;
    assert!(body["data"]["viewer"].is_null(), "{body}");
}

async fn mail_notifications_settings_page_saves_choices_and_the_digest(app: TestApp) {
    app.verified_member("ada@example.org", "Ada").await;
    let mut browser = Browser::new(&app);
    browser.get("/sign-in").await;
    let page = browser.post("/sign-in", &[("email", "ada@example.org"), ("password", PASSWORD)]).await;
    assert_eq!(page.status.as_u16(), 303, "{}", page.body);

    let page = browser.get("/settings/notifications").await;
    assert_eq!(page.status.as_u16(), 200);
    let body = &page.body;
    assert!(body.contains("<legend class=\"label\">Someone mentions you</legend>"), "{body}");
    for expected in [
        "name=\"choice-mentioned\" value=\"EMAIL\" checked",
        "name=\"choice-new_comment\" value=\"DIGEST\" checked",
        "<label for=\"choice-mentioned-digest\">In my digest</label>",
        "<label for=\"choice-mentioned-site\">On the site only</label>",
        "name=\"digestFrequency\" value=\"WEEKLY\" checked",
        "<option value=\"1\" selected>Monday</option>",
        "<option value=\"8\" selected>08:00</option>",
        "In your time zone, Europe&#x2f;London.",
        "href=\"/settings\">Change your time zone</a>",
    ] {
        assert!(body.contains(expected), "{expected:?} is not in {body}");
    }
    let next =
        app.count("SELECT COALESCE(next_digest_at, 0) FROM members WHERE email_normalized = 'ada@example.org'").await;
    if next > 0 {
        assert!(body.contains("Your next digest: "), "{body}");
    }

    let mut fields: Vec<(String, String)> = kettle::site::notifications::KINDS
        .iter()
        .map(|(name, _, _)| (format!("choice-{}", name.to_lowercase()), "SITE".to_string()))
        .collect();
    fields[0].1 = "DIGEST".into();
    fields.push(("choice-new_comment".into(), "EMAIL".into()));
    fields.retain(|(k, v)| k != "choice-new_comment" || v == "EMAIL");
    fields.push(("digestFrequency".into(), "DAILY".into()));
    fields.push(("digestWeekday".into(), "3".into()));
    fields.push(("autoWatch".into(), "on".into()));
    let with_hour = |hour: &str| {
        let mut all = fields.clone();
        all.push(("digestHour".into(), hour.into()));
        all
    };

    // An hour out of range: shown beside its field, and nothing saved.
    let sent = with_hour("24");
    let form: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let page = browser.post("/settings/notifications", &form).await;
    assert_eq!(page.status.as_u16(), 422, "{}", page.body);
    assert!(page.body.contains("There is a problem") && page.body.contains("href=\"#digestHour\""), "{}", page.body);
    assert!(page.body.contains("id=\"digestHour-error\""), "{}", page.body);
    assert!(page.body.contains("name=\"choice-mentioned\" value=\"DIGEST\" checked"), "what was sent is kept");
    assert_eq!(app.count("SELECT COUNT(*) FROM notification_mail_choices").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE digest_frequency = 'daily'").await, 0);

    let sent = with_hour("7");
    let form: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let page = browser.post("/settings/notifications", &form).await;
    assert_eq!(page.location(), "/settings/notifications?saved=1", "{}", page.body);
    let page = browser.get(page.location()).await;
    for expected in [
        "Your notification settings have been saved.",
        "name=\"choice-mentioned\" value=\"DIGEST\" checked",
        "name=\"choice-new_comment\" value=\"EMAIL\" checked",
        "name=\"choice-replied\" value=\"SITE\" checked",
        "name=\"digestFrequency\" value=\"DAILY\" checked",
        "<option value=\"3\" selected>Wednesday</option>",
        "<option value=\"7\" selected>07:00</option>",
    ] {
        assert!(page.body.contains(expected), "{expected:?} is not in {}", page.body);
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM notification_mail_choices").await, 18);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM members WHERE digest_frequency = 'daily' AND digest_weekday = 3 AND digest_hour = 7"
        )
        .await,
        1
    );
    // Signed out, the page asks to sign in first.
    let page = Browser::new(&app).get("/settings/notifications").await;
    assert_eq!(page.status.as_u16(), 303);
}

async fn mail_notifications_meetup_reminders_go_to_those_going_and_never_after_a_cancel(app: TestApp) {
    let olu = app.verified_member("olu@example.org", "Olu").await;
    let ada = app.verified_member("ada@example.org", "Ada").await;
    let bea = app.verified_member("bea@example.org", "Bea").await;
    let data = olu.data(CREATE_GROUP, json!({ "input": { "name": "TeaCamp North", "region": "North West" } })).await;
    let group = data["createMeetupGroup"]["group"]["id"].as_str().unwrap().to_string();
    let soon = meetup(&olu, &group, "TeaCamp Leeds", 20).await;
    let called_off = meetup(&olu, &group, "TeaCamp York", 20).await;
    let late = meetup(&olu, &group, "TeaCamp Hull", 20).await;
    let far = meetup(&olu, &group, "TeaCamp Bradford", 24 * 7).await;
    for event in [&soon, &called_off, &late, &far] {
        going(&ada, event).await;
    }
    going(&bea, &late).await;
    dispatched(&app).await;
    sweep_later(&app).await;
    let before = queued(&app).await.len();

    // Cancelled before its reminder: the cancellation, and never a reminder.
    cancel(&olu, &called_off).await;
    let db = &app.state().db;
    let now = kettle::db::now_millis();
    // The server records reminders every few minutes too: between them, each once.
    let recorded = kettle::meetups::events::record_due_reminders(db, now).await.unwrap();
    assert!(recorded <= 2, "{recorded}");
    kettle::notifications::dispatch::dispatch_pending(db).await.unwrap();
    dispatched(&app).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications WHERE kind = 'meetup_reminder'").await,
        3,
        "Ada for Leeds and Hull, Bea for Hull"
    );
    // Hull is cancelled after its reminder was written but before it was mailed.
    cancel(&olu, &late).await;
    dispatched(&app).await;
    sweep_later(&app).await;
    let mut subjects: Vec<(String, String)> = queued(&app).await.into_iter().skip(before).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        vec![
            ("ada@example.org".to_string(), "“TeaCamp Hull” was cancelled".to_string()),
            ("ada@example.org".to_string(), "“TeaCamp Leeds” starts within 24 hours".to_string()),
            ("ada@example.org".to_string(), "“TeaCamp York” was cancelled".to_string()),
            ("bea@example.org".to_string(), "“TeaCamp Hull” was cancelled".to_string()),
        ]
    );
    let mail = mailbox::wait_for(&app, "ada@example.org", |m| m.subject.contains("Leeds")).await;
    assert!(mail.text.contains("It starts on ") && mail.text.contains("you are going to this meetup"), "{}", mail.text);
    let cancelled = mailbox::wait_for(&app, "ada@example.org", |m| m.subject.contains("York")).await;
    assert!(!cancelled.text.contains("It starts on"), "{}", cancelled.text);
    let path = format!("/meetups/events/{}", number("MeetupEvent", &json!(soon)));
    assert!(mail.text.contains(&app.state().mailer.link(&path)), "{}", mail.text);
    let _ = (ada, bea);
}

const CANCEL_WITH: &str = "mutation($input: CancelMeetupInput!) { cancelMeetup(input: $input) { \
    event { status cancelledAt cancellationMessage } userErrors { field code message } } }";
const REINSTATE: &str = "mutation($id: ID!) { reinstateMeetup(input: { id: $id }) { \
    event { status cancelledAt cancellationMessage } userErrors { field code message } } }";

async fn mail_notifications_a_cancellation_carries_the_organisers_message_to_those_going_and_waiting(app: TestApp) {
    let olu = app.verified_member("olu@example.org", "Olu").await;
    let ada = app.verified_member("ada@example.org", "Ada").await;
    let bea = app.verified_member("bea@example.org", "Bea").await;
    let cy = app.verified_member("cy@example.org", "Cy").await;
    let data = olu.data(CREATE_GROUP, json!({ "input": { "name": "TeaCamp North", "region": "North West" } })).await;
    let group = data["createMeetupGroup"]["group"]["id"].as_str().unwrap().to_string();
    let event = meetup(&olu, &group, "TeaCamp Leeds", 24 * 3).await;
    // One seat: Ada is going, Bea waiting, and Cy said no.
    sqlx::query("UPDATE meetup_events SET capacity = 1").execute(&app.state().db.pool).await.unwrap();
    going(&ada, &event).await;
    let data = bea.data(RSVP, json!({ "id": event, "going": true })).await;
    assert_eq!(data["rsvp"]["rsvp"]["status"], "WAITLISTED", "{data}");
    let data = cy.data(RSVP, json!({ "id": event, "going": false })).await;
    assert_eq!(data["rsvp"]["rsvp"]["status"], "NOT_GOING", "{data}");
    dispatched(&app).await;
    sweep_later(&app).await;
    let mail_before = queued(&app).await.len();
    let events_before = app.count("SELECT COUNT(*) FROM outbox_events").await;
    let told_since = |skip: usize| {
        let app = app.clone();
        async move {
            let mut told: Vec<(String, String)> = queued(&app).await.into_iter().skip(skip).collect();
            told.sort();
            told
        }
    };

    // Only organisers cancel; a message too long, or with a character the text policy
    // refuses, is explained and cancels nothing.
    let cancel = |message: &str| json!({ "input": { "id": event, "message": message } });
    assert_eq!(error_code(&ada.gql(CANCEL_WITH, cancel("")).await), "FORBIDDEN");
    let data = olu.data(CANCEL_WITH, cancel(&"x".repeat(1_001))).await;
    assert_eq!(user_errors(&data["cancelMeetup"]), vec![("message".to_string(), "TOO_LONG".to_string())]);
    assert_eq!(data["cancelMeetup"]["event"]["status"], "SCHEDULED");
    assert!(olu.gql(CANCEL_WITH, cancel("Sorry\u{7}")).await["errors"].is_array());
    assert_eq!(app.count("SELECT COUNT(*) FROM meetup_events WHERE status = 'scheduled'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_events").await, events_before, "nothing was recorded");

    // 1,000 characters is allowed. Put back on before its mail was due, the cancellation
    // is no longer worth a mail; that it is back on is (on the site, both are told).
    let data = olu.data(CANCEL_WITH, cancel(&"x".repeat(1_000))).await;
    assert_eq!(data["cancelMeetup"]["event"]["status"], "CANCELLED", "{data}");
    let data = olu.data(REINSTATE, json!({ "id": event })).await;
    assert_eq!(
        data["reinstateMeetup"]["event"],
        json!({ "status": "SCHEDULED", "cancelledAt": null, "cancellationMessage": null }),
        "{data}"
    );
    dispatched(&app).await;
    sweep_later(&app).await;
    let back = "“TeaCamp Leeds” is back on: it is no longer cancelled".to_string();
    assert_eq!(
        told_since(mail_before).await,
        vec![("ada@example.org".to_string(), back.clone()), ("bea@example.org".to_string(), back.clone())]
    );
    let inbox = "SELECT COUNT(*) FROM notifications WHERE kind = 'meetup_cancelled'";
    assert_eq!(app.count(inbox).await, 2, "Ada and Bea, on the site");
    // As it was: Ada going, Bea first on the waitlist.
    let rsvp = "query($id: ID!) { node(id: $id) { ... on MeetupEvent { viewerRsvp { status waitlistPosition } } } }";
    let data = ada.data(rsvp, json!({ "id": event })).await;
    assert_eq!(data["node"]["viewerRsvp"], json!({ "status": "GOING", "waitlistPosition": null }));
    let data = bea.data(rsvp, json!({ "id": event })).await;
    assert_eq!(data["node"]["viewerRsvp"], json!({ "status": "WAITLISTED", "waitlistPosition": 1 }));
    let data = olu.data(REINSTATE, json!({ "id": event })).await;
    assert_eq!(user_errors(&data["reinstateMeetup"]), vec![("id".to_string(), "INVALID".to_string())]);
    assert_eq!(error_code(&ada.gql(REINSTATE, json!({ "id": event })).await), "FORBIDDEN");

    // Cancelled with a message on two lines, with markup that must stay text.
    let mail_before = queued(&app).await.len();
    let message = "The venue <b>flooded</b>.\nWe meet again in March.";
    let data = olu.data(CANCEL_WITH, cancel(&format!("  {message}\n "))).await;
    let cancelled = &data["cancelMeetup"]["event"];
    assert_eq!(cancelled["status"], "CANCELLED", "{data}");
    assert_eq!(cancelled["cancellationMessage"], message, "trimmed, kept as written");
    assert!(cancelled["cancelledAt"].is_string(), "{data}");
    let read = "query($id: ID!) { node(id: $id) { ... on MeetupEvent { cancellationMessage } } }";
    assert_eq!(cy.data(read, json!({ "id": event })).await["node"]["cancellationMessage"], message);

    // Those going and waiting are told, with the message; not who said no, nor the organiser.
    dispatched(&app).await;
    sweep_later(&app).await;
    let was = "“TeaCamp Leeds” was cancelled".to_string();
    assert_eq!(
        told_since(mail_before).await,
        vec![("ada@example.org".to_string(), was.clone()), ("bea@example.org".to_string(), was.clone())]
    );
    for address in ["ada@example.org", "bea@example.org"] {
        let mail = mailbox::wait_for(&app, address, |m| m.subject.contains("was cancelled")).await;
        let text = mail.text.replace("\r\n", "\n");
        assert!(text.contains(&format!("The organiser wrote:\n\n{message}\n")), "{text}");
        assert!(mail.html.contains("The venue &lt;b&gt;flooded&lt;&#x2f;b&gt;."), "{}", mail.html);
        assert!(!mail.text.contains("It starts on"), "{}", mail.text);
    }
    assert_eq!(app.count(inbox).await, 4);
    let others = format!(
        "SELECT COUNT(*) FROM notifications WHERE member_id IN ({}, {})",
        member_id(&app, "cy@example.org").await,
        member_id(&app, "olu@example.org").await
    );
    assert_eq!(app.count(&others).await, 0);

    // One that has ended cannot be put back on.
    sqlx::query("UPDATE meetup_events SET starts_at = 1000, ends_at = 2000")
        .execute(&app.state().db.pool)
        .await
        .unwrap();
    let data = olu.data(REINSTATE, json!({ "id": event })).await;
    let errors = &data["reinstateMeetup"]["userErrors"];
    assert!(errors[0]["message"].as_str().unwrap().contains("already ended"), "{data}");
    assert_eq!(data["reinstateMeetup"]["event"]["status"], "CANCELLED");
}
