//! The mail queue: messages wait here from the transaction that caused them until the
//! sender has sent them (see the module overview in [`super`]).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use sqlx::{any::AnyRow, Row};

use super::{render, transport::Outbound, List, Mailer};
use crate::{
    db::{self, Db, Dialect, Tx},
    error::AppResult,
};

/// A message to queue.
pub struct Outgoing<'a> {
    /// What the message is for, unique among all messages ever queued
    /// (`notification:99`, `digest:12:2026-W49`, `reset:5:<token id>`).
    pub key: String,
    /// The member it goes to; `None` only for mail to an address nobody holds.
    pub member_id: Option<i64>,
    pub to_address: &'a str,
    pub to_name: &'a str,
    /// The templates' name in `web/templates/mail/` (`<template>.txt`, `<template>.html`).
    pub template: &'static str,
    /// The list a one-click unsubscribe leaves; `None` for security mail (verification,
    /// password reset, a warning about the account), which every member must get.
    pub list: Option<List>,
    pub subject: String,
    /// The templates' variables (an object).
    pub context: Value,
}

/// Renders `mail` and queues it in `tx`. `false` when a message with its key was queued
/// before (which then stays as it was).
pub async fn enqueue(tx: &mut Tx, mailer: &Mailer, mail: Outgoing<'_>) -> AppResult<bool> {
    let unsubscribe_url = match (mail.list, mail.member_id) {
        (Some(list), Some(member_id)) => Some(mailer.link(&super::unsubscribe::path(mailer, member_id, list))),
        _ => None,
    };
    let mut context = match mail.context {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    context.insert("base_url".into(), json!(mailer.public_url.as_str().trim_end_matches('/')));
    context.insert("subject".into(), json!(mail.subject));
    context.insert("unsubscribe_url".into(), json!(unsubscribe_url));
    let rendered = render::render(mail.template, &Value::Object(context))?;
    let now = db::now_millis();
    let result = sqlx::query(
        "INSERT INTO mail_queue (idempotency_key, member_id, to_address, to_name, template, unsubscribe_url, subject, \
         text_body, html_body, message_id, status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', 0, $11, $11) ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(&mail.key)
    .bind(mail.member_id)
    .bind(mail.to_address.trim())
    .bind(mail.to_name.trim())
    .bind(mail.template)
    .bind(unsubscribe_url)
    .bind(&mail.subject)
    .bind(&rendered.text)
    .bind(&rendered.html)
    .bind(message_id(mailer, &mail.key))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The `Message-ID` for a key: the same on every attempt and every instance.
pub fn message_id(mailer: &Mailer, key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}@{}>", mailer.host())
}

/// How many messages one sender takes at a time.
pub const BATCH: i64 = 20;
/// How long a claim holds a message against other senders. Sending a batch stops starting
/// messages well before this (see the sender), so a live sender never loses a claim; a
/// dead one's claims expire after this, and its messages go again.
pub const CLAIM_MILLIS: i64 = 60_000;
/// After this many attempts a message that keeps failing temporarily is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// Sent, skipped and failed messages are kept this long (for an operator looking into
/// "I never got the mail"), then pruned.
pub const KEEP_MILLIS: i64 = 30 * 24 * 3600 * 1000;

/// A message a sender has claimed.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: i64,
    pub member_id: Option<i64>,
    pub template: String,
    /// This attempt's number (1 for the first).
    pub attempts: i64,
    /// The claim's expiry: recording an outcome checks it still holds, so a sender that
    /// lost its claim to another records nothing.
    pub claimed_until: i64,
    pub mail: Outbound,
}

impl Claimed {
    fn from_row(row: &AnyRow) -> sqlx::Result<Claimed> {
        Ok(Claimed {
            id: row.try_get("id")?,
            member_id: row.try_get("member_id")?,
            template: row.try_get("template")?,
            attempts: row.try_get("attempts")?,
            claimed_until: row.try_get("claimed_until")?,
            mail: Outbound {
                to_address: row.try_get("to_address")?,
                to_name: row.try_get("to_name")?,
                subject: row.try_get("subject")?,
                text_body: row.try_get("text_body")?,
                html_body: row.try_get("html_body")?,
                message_id: row.try_get("message_id")?,
                unsubscribe_url: row.try_get("unsubscribe_url")?,
            },
        })
    }

    /// The message's name in the mail folder: the zero-padded queue id first, so that
    /// names sort in queue order, then the template (only its plain characters).
    pub fn file_name(&self) -> String {
        let template: String =
            self.template.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').take(40).collect();
        format!("{:012}-{template}", self.id)
    }
}

/// Claims up to [`BATCH`] due messages for [`CLAIM_MILLIS`], counting the attempt, in one
/// statement.
///
/// Two senders never hold the same message: the outer `WHERE` repeats the conditions of
/// the inner `SELECT`, so on PostgreSQL a row another sender claimed meanwhile is
/// re-checked after its lock is released and skipped (SQLite runs one writer at a time).
/// On PostgreSQL the inner `SELECT` also skips rows locked by another sender's claim, so
/// two senders take different messages instead of queueing behind each other.
pub async fn claim(db: &Db, now: i64) -> AppResult<Vec<Claimed>> {
    let skip_locked = match db.dialect {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    const DUE: &str = "status = 'pending' AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2)";
    let sql = format!(
        "UPDATE mail_queue SET claimed_until = $1, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM mail_queue WHERE {DUE} ORDER BY next_attempt_at, id LIMIT $3{skip_locked}) \
         AND {DUE} \
         RETURNING id, member_id, to_address, to_name, template, unsubscribe_url, subject, text_body, html_body, \
         message_id, attempts, claimed_until"
    );
    let rows = sqlx::query(&sql).bind(now + CLAIM_MILLIS).bind(now).bind(BATCH).fetch_all(&db.pool).await?;
    let mut claimed = rows.iter().map(Claimed::from_row).collect::<sqlx::Result<Vec<_>>>()?;
    // RETURNING promises no order.
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// Whether the member a list message goes to still wants mail: verified and not
/// bouncing. (Security mail goes regardless; the caller asks only for list mail.)
pub async fn recipient_takes_mail(db: &Db, member_id: Option<i64>) -> AppResult<bool> {
    let Some(member_id) = member_id else { return Ok(false) };
    let row = sqlx::query("SELECT email_verified_at, email_bouncing_at FROM members WHERE id = $1")
        .bind(member_id)
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else { return Ok(false) };
    let verified: Option<i64> = row.try_get(0)?;
    let bouncing: Option<i64> = row.try_get(1)?;
    Ok(verified.is_some() && bouncing.is_none())
}

/// Records that the message went. `false` when this sender no longer held the claim.
/// Once a message is settled (sent, skipped or failed), a security message's bodies are
/// emptied: they hold a live link (a reset or verification token) whose hash is all the
/// token table keeps, and the queue should not be a second place to steal it from.
const FORGET_LINKS: &str = "text_body = CASE WHEN unsubscribe_url IS NULL THEN '' ELSE text_body END, \
     html_body = CASE WHEN unsubscribe_url IS NULL THEN '' ELSE html_body END";

pub async fn mark_sent(db: &Db, message: &Claimed, now: i64) -> AppResult<bool> {
    let result = sqlx::query(&format!(
        "UPDATE mail_queue SET status = 'sent', sent_at = $1, claimed_until = NULL, last_error = NULL, {FORGET_LINKS} \
         WHERE id = $2 AND claimed_until = $3"
    ))
    .bind(now)
    .bind(message.id)
    .bind(message.claimed_until)
    .execute(&db.pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Records that the message will not go (`skipped` or `failed`), with why.
pub async fn mark_done(db: &Db, message: &Claimed, status: &str, error: Option<&str>) -> AppResult<bool> {
    let result = sqlx::query(&format!(
        "UPDATE mail_queue SET status = $1, last_error = $2, claimed_until = NULL, {FORGET_LINKS} \
         WHERE id = $3 AND claimed_until = $4"
    ))
    .bind(status)
    .bind(error)
    .bind(message.id)
    .bind(message.claimed_until)
    .execute(&db.pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Records a temporary failure: the message waits `retry_at` for its next attempt.
pub async fn mark_retry(db: &Db, message: &Claimed, retry_at: i64, error: &str) -> AppResult<bool> {
    let result = sqlx::query(
        "UPDATE mail_queue SET next_attempt_at = $1, last_error = $2, claimed_until = NULL \
         WHERE id = $3 AND claimed_until = $4",
    )
    .bind(retry_at)
    .bind(error)
    .bind(message.id)
    .bind(message.claimed_until)
    .execute(&db.pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Records a permanent failure, and marks the address as bouncing in the same
/// transaction: no more mail but security mail goes to it (and no digest falls due)
/// until it is verified again.
pub async fn mark_bounced(db: &Db, message: &Claimed, now: i64, error: &str) -> AppResult<bool> {
    let mut tx = db.begin_write().await?;
    let result = sqlx::query(&format!(
        "UPDATE mail_queue SET status = 'failed', last_error = $1, claimed_until = NULL, {FORGET_LINKS} \
         WHERE id = $2 AND claimed_until = $3"
    ))
    .bind(error)
    .bind(message.id)
    .bind(message.claimed_until)
    .execute(&mut *tx)
    .await?;
    if result.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("UPDATE members SET email_bouncing_at = $1, next_digest_at = NULL WHERE email_normalized = $2")
        .bind(now)
        .bind(crate::accounts::normalize_email(&message.mail.to_address))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Gives a claimed message back unsent (the attempt uncounted), for another round.
pub async fn release(db: &Db, message: &Claimed) -> AppResult<()> {
    sqlx::query(
        "UPDATE mail_queue SET claimed_until = NULL, attempts = attempts - 1 WHERE id = $1 AND claimed_until = $2",
    )
    .bind(message.id)
    .bind(message.claimed_until)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Deletes messages that were sent, skipped or failed more than [`KEEP_MILLIS`] ago, a
/// bounded batch at a time (through `mail_queue_created`). Returns how many went.
pub async fn prune(db: &Db, now: i64) -> AppResult<u64> {
    const PRUNE_BATCH: i64 = 5_000;
    let mut deleted = 0;
    loop {
        let result = sqlx::query(
            "DELETE FROM mail_queue WHERE id IN (SELECT id FROM mail_queue WHERE created_at < $1 \
             AND status <> 'pending' ORDER BY created_at LIMIT $2)",
        )
        .bind(now - KEEP_MILLIS)
        .bind(PRUNE_BATCH)
        .execute(&db.pool)
        .await?;
        deleted += result.rows_affected();
        if result.rows_affected() < PRUNE_BATCH as u64 {
            return Ok(deleted);
        }
    }
}
