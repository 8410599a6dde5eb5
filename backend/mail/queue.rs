//! The mail queue: messages wait here from the transaction that caused them until the
//! sender has sent them (see the module overview in [`super`]).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{render, List, Mailer};
use crate::{
    db::{self, Tx},
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
