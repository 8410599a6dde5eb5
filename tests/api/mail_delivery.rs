//! Sending mail: the `.eml` outbox and SMTP (against a real SMTP server the test starts,
//! [`crate::smtp_server`]), read back with an independent MIME parser.
//!
//! Messages are queued with `kettle::mail::enqueue`, as the code that causes mail does.
//! Where timing matters, a test queues its messages due days from now, so the server's
//! own sender (which runs on the real clock) leaves them alone, and drives
//! `kettle::mail::sender::send_due` itself with the `now` it wants.

use kettle::{
    db::now_millis,
    mail::{enqueue, queue::CLAIM_MILLIS, sender::send_due, List, Outgoing},
};
use mail_parser::MessageParser;
use serde_json::json;
use sqlx::Row;

use crate::{
    mailbox::{self, Mail},
    scenarios,
    smtp_server::{Behaviour, SmtpServer},
    support::{Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        mail_files_are_multipart_with_list_headers_only_on_list_mail,
        mail_names_with_line_breaks_cannot_add_headers_or_recipients,
        mail_goes_over_smtp_once_with_its_message_id,
        mail_temporary_failures_are_retried_with_backoff_then_given_up,
        mail_permanent_failures_mark_the_address_bouncing,
        mail_two_senders_send_each_message_once,
        mail_an_expired_claim_sends_at_most_one_duplicate,
        mail_bad_settings_stop_start_up_without_showing_the_password,
    ]
}

const PUBLIC_URL: &str = "https://kettle.example.org";
const DAY: i64 = 24 * 3600 * 1000;

/// A queued message: its row id and `Message-ID`.
struct Queued {
    id: i64,
    message_id: String,
}

/// Queues a `plain` message to `to` (the member with that address, if any) for `list`
/// (`None`: security mail). With `due_at`, the message waits until then, set in the same
/// transaction so that the server's sender never sees it due earlier.
async fn queue(app: &TestApp, key: &str, to: &str, list: Option<List>, due_at: Option<i64>) -> Queued {
    let state = app.state();
    let mut tx = state.db.begin_write().await.unwrap();
    let member_id: Option<i64> = sqlx::query_scalar("SELECT id FROM members WHERE email_normalized = $1")
        .bind(to.to_lowercase())
        .fetch_optional(&mut *tx)
        .await
        .unwrap();
    let queued = enqueue(
        &mut tx,
        &state.mailer,
        Outgoing {
            key: key.to_string(),
            member_id,
            to_address: to,
            to_name: "Ada Lovelace",
            template: "plain",
            list,
            subject: format!("Test message {key}"),
            context: json!({ "body": "First paragraph, with a link to /topics.\n\nSecond paragraph." }),
        },
    )
    .await
    .unwrap();
    assert!(queued, "{key} was queued before");
    let row = sqlx::query("SELECT id, message_id FROM mail_queue WHERE idempotency_key = $1")
        .bind(key)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let id: i64 = row.get(0);
    if let Some(due_at) = due_at {
        sqlx::query("UPDATE mail_queue SET next_attempt_at = $1 WHERE id = $2")
            .bind(due_at)
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    state.mailer.queued();
    Queued { id, message_id: row.get(1) }
}

/// A queue row's status, attempts, next attempt, claim and last error.
struct Status {
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    claimed_until: Option<i64>,
    last_error: Option<String>,
}

async fn status(app: &TestApp, id: i64) -> Status {
    let row = sqlx::query(
        "SELECT status, attempts, next_attempt_at, claimed_until, last_error FROM mail_queue WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.state().db.pool)
    .await
    .unwrap();
    Status {
        status: row.get(0),
        attempts: row.get(1),
        next_attempt_at: row.get(2),
        claimed_until: row.get(3),
        last_error: row.get(4),
    }
}

/// Waits until the server's sender has sent whatever was due (the verification mail of
/// members a test made), so that only the test's own messages are pending after it.
async fn settle(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.count("SELECT COUNT(*) FROM mail_queue WHERE status = 'pending'").await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the server's sender left mail pending");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A time far enough ahead that the server's own sender finds nothing due then.
fn later() -> i64 {
    now_millis() + 10 * DAY
}

/// HTML with its character references decoded, as a mail client reads attributes
/// (minijinja's escaping writes `/` as `&#x2f;`).
fn decoded(html: &str) -> String {
    [("&#x2f;", "/"), ("&#x27;", "'"), ("&quot;", "\""), ("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&")]
        .iter()
        .fold(html.to_string(), |html, (entity, c)| html.replace(entity, c))
}

/// Every link in a message: `href`s in the HTML, `http(s)://…` words in the text.
fn links(mail: &Mail) -> Vec<String> {
    let mut links: Vec<String> = decoded(&mail.html)
        .split("href=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or_default().to_string())
        .collect();
    links.extend(
        mail.text
            .split(|c: char| c.is_whitespace() || c == '<' || c == '>')
            .filter(|word| word.contains("://"))
            .map(|word| word.trim_end_matches(['.', ',', ')']).to_string()),
    );
    links
}

async fn mail_files_are_multipart_with_list_headers_only_on_list_mail(app: TestApp) {
    let app = TestApp::spawn_with(app.backend(), &[("KETTLE_PUBLIC_URL", PUBLIC_URL)]).await;
    app.verified_member("ada@example.org", "Ada Lovelace").await;
    let list = queue(&app, "test:list", "ada@example.org", Some(List::Digest), None).await;
    let security = queue(&app, "test:security", "ada@example.org", None, None).await;

    // The server's sender writes both (woken by `queued`).
    let list_mail = mailbox::wait_for(&app, "ada@example.org", |m| m.subject == "Test message test:list").await;
    let security_mail = mailbox::wait_for(&app, "ada@example.org", |m| m.subject == "Test message test:security").await;
    let unsubscribe_url: String = sqlx::query_scalar("SELECT unsubscribe_url FROM mail_queue WHERE id = $1")
        .bind(list.id)
        .fetch_one(&app.state().db.pool)
        .await
        .unwrap();
    assert!(unsubscribe_url.starts_with(&format!("{PUBLIC_URL}/unsubscribe/")), "{unsubscribe_url}");

    for (mail, queued) in [(&list_mail, &list), (&security_mail, &security)] {
        // Named `<12-digit queue id>-<template>.eml`, written whole (no partial file left).
        let name = mail.file.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(name, format!("{:012}-plain.eml", queued.id));
        assert_eq!(mail.content_type, "multipart/alternative", "{}", mail.raw);
        let raw = mail.raw.to_ascii_lowercase();
        assert!(raw.contains("content-type: text/plain; charset=utf-8"), "{}", mail.raw);
        assert!(raw.contains("content-type: text/html; charset=utf-8"), "{}", mail.raw);
        assert!(raw.find("text/plain").unwrap() < raw.find("text/html").unwrap(), "text first, then HTML");
        assert!(mail.header("from").unwrap().contains("noreply@kettle.example.org"), "{:?}", mail.headers);
        assert!(mail.header("to").unwrap().contains("ada@example.org"), "{:?}", mail.headers);
        assert!(mail.header("date").is_some(), "{:?}", mail.headers);
        assert_eq!(mail.header("auto-submitted"), Some("auto-generated"));
        assert_eq!(format!("<{}>", mail.message_id), queued.message_id);
        assert!(queued.message_id.ends_with("@kettle.example.org>"), "{}", queued.message_id);
        // The body and the layout: paragraphs, a signature, the footer.
        assert!(mail.text.contains("First paragraph") && mail.text.lines().any(|l| l == "-- "), "{}", mail.text);
        assert!(mail.html.contains("<p style=") && mail.html.contains("Second paragraph."), "{}", mail.html);
        assert!(mail.html.contains("lang=\"en\""), "{}", mail.html);
        for banned in ["<style", "<script", "<img", "<link"] {
            assert!(!mail.html.contains(banned), "the HTML part holds {banned}: {}", mail.html);
        }
        // Every link is absolute, to the public URL.
        let links = links(mail);
        assert!(!links.is_empty());
        for link in &links {
            assert!(link.starts_with(&format!("{PUBLIC_URL}/")), "{link} in {}", mail.file.display());
        }
    }
    assert!(std::fs::read_dir(app.data_dir().join("mail")).unwrap().all(|e| e
        .unwrap()
        .path()
        .extension()
        .is_some_and(|x| x == "eml")));

    // List mail: one-click unsubscribe (RFC 8058), to the same link the footers give.
    assert_eq!(list_mail.header("list-unsubscribe"), Some(format!("<{unsubscribe_url}>").as_str()));
    assert_eq!(list_mail.header("list-unsubscribe-post"), Some("List-Unsubscribe=One-Click"));
    assert!(list_mail.text.contains(&format!("Unsubscribe from these messages: {unsubscribe_url}")));
    assert!(list_mail.text.contains(&format!("{PUBLIC_URL}/settings/notifications")));
    let html = decoded(&list_mail.html);
    assert!(html.contains(&format!("href=\"{unsubscribe_url}\"")) && html.contains(">Unsubscribe</a>"), "{html}");
    assert!(html.contains(&format!("href=\"{PUBLIC_URL}/settings/notifications\"")), "{html}");
    // Security mail: nothing to unsubscribe from.
    assert_eq!(security_mail.header("list-unsubscribe"), None);
    assert_eq!(security_mail.header("list-unsubscribe-post"), None);
    assert!(!security_mail.text.contains("/unsubscribe/") && !security_mail.html.contains("/unsubscribe/"));
    assert!(security_mail.text.contains("security"), "{}", security_mail.text);

    for id in [list.id, security.id] {
        let row = status(&app, id).await;
        assert_eq!((row.status.as_str(), row.attempts, row.claimed_until), ("sent", 1, None));
    }
    app.finish().await;
}

/// Inserts a message whose name and subject hold a line break and a header, straight
/// into the queue (no form lets them in; the sender must not trust that).
async fn queue_hostile(app: &TestApp, to: &str) {
    sqlx::query(
        "INSERT INTO mail_queue (idempotency_key, member_id, to_address, to_name, template, unsubscribe_url, subject, \
         text_body, html_body, message_id, status, attempts, next_attempt_at, created_at) \
         VALUES ('test:hostile', NULL, $1, $2, 'plain', NULL, $3, 'Hello.', '<p>Hello.</p>', \
         '<hostile@kettle.example.org>', 'pending', 0, $4, $4)",
    )
    .bind(to)
    .bind("Ada\r\nBcc: x@example.org")
    .bind("Hi\r\nBcc: y@example.org\nCc: z@example.org")
    .bind(now_millis())
    .execute(&app.state().db.pool)
    .await
    .unwrap();
    app.state().mailer.queued();
}

/// Checks a message as written: one recipient, no `Bcc` or `Cc`, the name kept as a name.
fn assert_one_recipient(raw: &str) {
    let message = MessageParser::default().parse(raw.as_bytes()).expect("a message");
    let to = message.to().and_then(|a| a.as_list()).expect("a To list");
    assert_eq!(to.len(), 1, "{raw}");
    assert_eq!(to[0].address(), Some("ada@example.org"), "{raw}");
    assert!(to[0].name().unwrap_or_default().contains("Ada"), "{raw}");
    assert!(message.bcc().is_none() && message.cc().is_none(), "{raw}");
    let head = raw.split("\r\n\r\n").next().unwrap();
    for line in head.split("\r\n") {
        let lower = line.to_ascii_lowercase();
        assert!(!lower.starts_with("bcc:") && !lower.starts_with("cc:"), "{raw}");
    }
    assert!(message.subject().unwrap().starts_with("Hi"), "{raw}");
}

async fn mail_names_with_line_breaks_cannot_add_headers_or_recipients(app: TestApp) {
    // Written to the mail folder...
    queue_hostile(&app, "ada@example.org").await;
    let mail = mailbox::wait_for(&app, "ada@example.org", |_| true).await;
    assert_one_recipient(&mail.raw);

    // ...and over SMTP, where the envelope must hold the one recipient too.
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(app.backend(), &[("KETTLE_SMTP_URL", &smtp.url())]).await;
    queue_hostile(&app, "ada@example.org").await;
    let received = smtp.wait_for("<hostile@kettle.example.org>").await;
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(received.rcpt_to, vec!["ada@example.org".to_string()]);
    assert_one_recipient(&received.data);
    app.finish().await;
}

async fn mail_goes_over_smtp_once_with_its_message_id(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(app.backend(), &[("KETTLE_SMTP_URL", &smtp.url())]).await;
    app.verified_member("ada@example.org", "Ada Lovelace").await;
    let queued = queue(&app, "test:smtp", "ada@example.org", Some(List::Digest), None).await;

    let received = smtp.wait_for(&queued.message_id).await;
    assert_eq!(received.mail_from, format!("noreply@{}", app.state().mailer.host()));
    assert_eq!(received.rcpt_to, vec!["ada@example.org".to_string()]);
    let message = MessageParser::default().parse(received.data.as_bytes()).unwrap();
    assert_eq!(message.subject(), Some("Test message test:smtp"));
    assert!(message.body_text(0).unwrap().contains("Second paragraph."));
    assert!(message.body_html(0).unwrap().contains("Second paragraph."));
    assert!(received.header("list-unsubscribe").is_some());
    assert!(received.header("list-unsubscribe-post").is_some());

    // Recorded as sent, and never sent again however many rounds follow.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while status(&app, queued.id).await.status != "sent" {
        assert!(tokio::time::Instant::now() < deadline, "not recorded as sent");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    settle(&app).await;
    for round in 1..=3 {
        assert_eq!(send_due(&app.state().db, &app.state().mailer, now_millis() + round * DAY).await.unwrap(), 0);
    }
    assert_eq!(smtp.with_message_id(&queued.message_id).len(), 1);
    assert_eq!(status(&app, queued.id).await.attempts, 1);
    app.finish().await;
}

async fn mail_temporary_failures_are_retried_with_backoff_then_given_up(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(app.backend(), &[("KETTLE_SMTP_URL", &smtp.url())]).await;
    let (db, mailer) = (&app.state().db, &app.state().mailer);
    app.verified_member("ada@example.org", "Ada Lovelace").await;
    app.verified_member("grace@example.org", "Grace Hopper").await;
    settle(&app).await;
    let now = later();
    let before = smtp.attempts("ada@example.org");

    // A 451 once: back to pending for a minute, then delivered on the second attempt.
    smtp.set("ada@example.org", Behaviour::TemporaryFirst(1));
    let queued = queue(&app, "test:retry", "ada@example.org", Some(List::Digest), Some(now)).await;
    assert_eq!(send_due(db, mailer, now).await.unwrap(), 1);
    let row = status(&app, queued.id).await;
    assert_eq!((row.status.as_str(), row.attempts, row.claimed_until), ("pending", 1, None));
    assert_eq!(row.next_attempt_at, now + 60_000);
    assert!(row.last_error.as_deref().unwrap_or_default().contains("451"), "{:?}", row.last_error);
    assert!(smtp.with_message_id(&queued.message_id).is_empty());
    // Not before the backoff has passed.
    assert_eq!(send_due(db, mailer, now + 59_999).await.unwrap(), 0);
    assert_eq!(send_due(db, mailer, now + 60_000).await.unwrap(), 1);
    let row = status(&app, queued.id).await;
    assert_eq!((row.status.as_str(), row.attempts, row.last_error), ("sent", 2, None));
    assert_eq!(smtp.attempts("ada@example.org") - before, 2);
    assert_eq!(smtp.with_message_id(&queued.message_id).len(), 1);

    // Failing for ever: attempts at growing intervals (1, 5, 15 minutes, 1, 3, 6, 6
    // hours), then given up after the eighth, without marking the address.
    smtp.set("grace@example.org", Behaviour::TemporaryFirst(1000));
    let before = smtp.attempts("grace@example.org");
    let queued = queue(&app, "test:give-up", "grace@example.org", Some(List::Digest), Some(now)).await;
    let mut at = now;
    let mut waits = Vec::new();
    for attempt in 1..=8 {
        assert_eq!(send_due(db, mailer, at).await.unwrap(), 1, "attempt {attempt}");
        let row = status(&app, queued.id).await;
        assert_eq!(row.attempts, attempt);
        if attempt < 8 {
            assert_eq!(row.status, "pending");
            waits.push((row.next_attempt_at - at) / 60_000);
            at = row.next_attempt_at;
        } else {
            assert_eq!(row.status, "failed");
            assert!(row.last_error.unwrap().contains("451"));
        }
    }
    assert_eq!(waits, vec![1, 5, 15, 60, 180, 360, 360]);
    assert_eq!(send_due(db, mailer, at + 30 * DAY).await.unwrap(), 0);
    assert_eq!(smtp.attempts("grace@example.org") - before, 8);
    assert_eq!(app.count("SELECT COUNT(*) FROM members WHERE email_bouncing_at IS NOT NULL").await, 0);
    app.finish().await;
}

async fn mail_permanent_failures_mark_the_address_bouncing(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(app.backend(), &[("KETTLE_SMTP_URL", &smtp.url())]).await;
    let (db, mailer) = (&app.state().db, &app.state().mailer);
    app.verified_member("ada@example.org", "Ada Lovelace").await;
    app.verified_member("grace@example.org", "Grace Hopper").await;
    settle(&app).await;
    let now = later();

    // A refusal that is about us, not the address (relaying denied): retried, no bounce.
    smtp.set("grace@example.org", Behaviour::Reply("554 5.7.1 Relay access denied"));
    let policy = queue(&app, "test:policy", "grace@example.org", Some(List::Digest), Some(now)).await;
    assert_eq!(send_due(db, mailer, now).await.unwrap(), 1);
    assert_eq!(status(&app, policy.id).await.status, "pending");

    // 550 5.1.1: failed for good, and the address is marked as bouncing.
    smtp.set("ada@example.org", Behaviour::Permanent);
    let first = queue(&app, "test:bounce", "ada@example.org", Some(List::Digest), Some(now)).await;
    assert_eq!(send_due(db, mailer, now).await.unwrap(), 1);
    let row = status(&app, first.id).await;
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 1));
    assert!(row.last_error.unwrap().contains("550"));
    let member = sqlx::query("SELECT email_bouncing_at, next_digest_at FROM members WHERE email_normalized = $1")
        .bind("ada@example.org")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(member.get::<Option<i64>, _>(0), Some(now));
    assert_eq!(member.get::<Option<i64>, _>(1), None);
    let bouncing: i64 = app.count("SELECT COUNT(*) FROM members WHERE email_bouncing_at IS NOT NULL").await;
    assert_eq!(bouncing, 1, "only Ada's address bounces");

    // Later, even if the server would take it: list mail is skipped, security mail goes.
    // (And the relay, fixed meanwhile, takes the message it refused.)
    smtp.set("ada@example.org", Behaviour::Accept);
    smtp.set("grace@example.org", Behaviour::Accept);
    let later_list = queue(&app, "test:after-list", "ada@example.org", Some(List::Digest), Some(now + DAY)).await;
    let later_security = queue(&app, "test:after-security", "ada@example.org", None, Some(now + DAY)).await;
    assert_eq!(send_due(db, mailer, now + DAY).await.unwrap(), 3);
    assert_eq!(status(&app, later_list.id).await.status, "skipped");
    assert_eq!(status(&app, later_security.id).await.status, "sent");
    assert_eq!(status(&app, policy.id).await.status, "sent");
    assert!(smtp.with_message_id(&later_list.message_id).is_empty());
    let received = smtp.with_message_id(&later_security.message_id);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].header("list-unsubscribe"), None);
    assert!(smtp.with_message_id(&first.message_id).is_empty());
    app.finish().await;
}

async fn mail_two_senders_send_each_message_once(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(app.backend(), &[("KETTLE_SMTP_URL", &smtp.url())]).await;
    let (db, mailer) = (&app.state().db, &app.state().mailer);
    app.verified_member("ada@example.org", "Ada Lovelace").await;
    settle(&app).await;
    let now = later();
    let mut ids = Vec::new();
    // More than two batches, so both senders have work and come back for more.
    for i in 0..45 {
        ids.push(queue(&app, &format!("test:concurrent:{i}"), "ada@example.org", None, Some(now)).await.message_id);
    }
    let mut claimed = 0;
    for _ in 0..10 {
        let (a, b) = tokio::join!(send_due(db, mailer, now), send_due(db, mailer, now));
        let round = a.unwrap() + b.unwrap();
        if round == 0 {
            break;
        }
        claimed += round;
    }
    assert_eq!(claimed, 45);
    let mut sent: Vec<String> =
        smtp.received().iter().filter_map(|r| r.header("message-id")).filter(|id| ids.contains(id)).collect();
    sent.sort();
    ids.sort();
    assert_eq!(sent, ids, "each message exactly once");
    let recorded = "SELECT COUNT(*) FROM mail_queue WHERE idempotency_key LIKE 'test:concurrent:%' \
                    AND status = 'sent' AND attempts = 1";
    assert_eq!(app.count(recorded).await, 45);
    app.finish().await;
}

async fn mail_an_expired_claim_sends_at_most_one_duplicate(app: TestApp) {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(app.backend(), &[("KETTLE_SMTP_URL", &smtp.url())]).await;
    let (db, mailer) = (&app.state().db, &app.state().mailer);
    app.verified_member("ada@example.org", "Ada Lovelace").await;
    settle(&app).await;
    let now = later();
    let queued = queue(&app, "test:crash", "ada@example.org", None, Some(now)).await;
    assert_eq!(send_due(db, mailer, now).await.unwrap(), 1);
    assert_eq!(smtp.with_message_id(&queued.message_id).len(), 1);

    // As if the sender had died after the server took the message but before recording
    // it: the row is still pending under that sender's claim.
    sqlx::query("UPDATE mail_queue SET status = 'pending', sent_at = NULL, claimed_until = $1 WHERE id = $2")
        .bind(now + CLAIM_MILLIS)
        .bind(queued.id)
        .execute(&db.pool)
        .await
        .unwrap();
    // While the claim holds, no other sender takes it...
    assert_eq!(send_due(db, mailer, now + CLAIM_MILLIS - 1).await.unwrap(), 0);
    assert_eq!(smtp.with_message_id(&queued.message_id).len(), 1);
    // ...once it has expired, it goes again, with the same Message-ID, and is recorded.
    assert_eq!(send_due(db, mailer, now + CLAIM_MILLIS + 1).await.unwrap(), 1);
    assert_eq!(smtp.with_message_id(&queued.message_id).len(), 2);
    let row = status(&app, queued.id).await;
    assert_eq!((row.status.as_str(), row.attempts, row.claimed_until), ("sent", 2, None));
    // And never a third time.
    assert_eq!(send_due(db, mailer, now + DAY).await.unwrap(), 0);
    assert_eq!(smtp.with_message_id(&queued.message_id).len(), 2);
    app.finish().await;
}

async fn mail_bad_settings_stop_start_up_without_showing_the_password(app: TestApp) {
    let config = |vars: &[(&str, &str)]| {
        let mut all = vec![("KETTLE_DATABASE_URL".to_string(), app.database_url().to_string())];
        all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        kettle::config::Config::from_vars(all)
    };
    for url in ["http://mailer:hunter2@mail.example.org", "smtp://mailer:hunter2@", "mailer:hunter2"] {
        let err = config(&[("KETTLE_SMTP_URL", url)]).unwrap_err().to_string();
        assert!(err.contains("KETTLE_SMTP_URL") && !err.contains("hunter2"), "{err}");
    }
    for from in ["not an address", "Kettle <kettle@>", "Kettle\r\nBcc: x@example.org <k@example.org>"] {
        let err = config(&[("KETTLE_MAIL_FROM", from)]).unwrap_err().to_string();
        assert!(err.contains("KETTLE_MAIL_FROM"), "{err}");
    }
    // A URL that parses but that lettre cannot use stops start-up too, in a sentence.
    let config = config(&[("KETTLE_SMTP_URL", "smtp://mailer:hunter2@mail.example.org?tls=sometimes")]).unwrap();
    let err = kettle::mail::transport::Transport::from_config(&config).err().expect("refused").to_string();
    assert!(err.contains("KETTLE_SMTP_URL") && !err.contains("hunter2"), "{err}");
    // The accepted forms.
    for url in [
        "smtp://127.0.0.1:2525",
        "smtp://mailer:hunter2@mail.example.org:587?tls=required",
        "smtps://mailer:hunter2@mail.example.org",
    ] {
        let config = kettle::config::Config::from_vars([("KETTLE_SMTP_URL".to_string(), url.to_string())]).unwrap();
        assert!(kettle::mail::transport::Transport::from_config(&config).is_ok(), "{url}");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
