//! The right of access: a member downloads everything Kettle holds about them, as JSON.
//!
//! Asking ([`request`]) records a pending export and nothing more; the export is built
//! off the request, by a task started at once and, should that fail or the process
//! stop, by the sweeping worker ([`run`]) that claims pending exports by compare-and-set
//! (`claimed_until`), so two instances never build the same one. Building reads every
//! table that refers to the member ([`SECTIONS`]) and stores the JSON on the row; the
//! download link works for 7 days, only for the member themself (their session *and* the
//! link's token), and the row goes, content and all, when it expires
//! (`retention::DATA_EXPORT_MS`).
//!
//! Each section is named `table.column` after the reference to the member it follows,
//! so the export can be checked against the database's own catalogue: every row that
//! refers to the member by a foreign key is in the section of that key (the erasure scan
//! test does exactly that). Secrets never appear: sessions, tokens and links are listed
//! by their metadata, never by their hashes, and mail by its subject, not its body
//! (which carries unsubscribe links).
//!
//! The download token is not stored: it is an HMAC of the export's id and creation time
//! under the site's shared key, so the member's list of exports can show the link again,
//! while a copy of the database (which keeps only its SHA-256) downloads nothing.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use sqlx::{any::AnyRow, Column, FromRow, Row};

use super::retention::DATA_EXPORT_MS;
use crate::{
    accounts::credentials::token_hash,
    db::{self, Db, Keyset, ListOrder},
    error::AppResult,
};

crate::text_enum! {
    /// Where an export is.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum ExportStatus {
        Pending => "pending",
        Ready => "ready",
        Failed => "failed",
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DataExport {
    pub id: i64,
    pub member_id: i64,
    pub status: ExportStatus,
    pub created_at: i64,
    pub ready_at: Option<i64>,
    pub expires_at: i64,
}

const COLUMNS: &str = "id, member_id, status, created_at, ready_at, expires_at";

impl DataExport {
    /// The token in the download link (see the module docs).
    pub fn token(&self, key: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(format!("data-export:{}:{}", self.id, self.created_at).as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The site path to download it from.
    pub fn path(&self, key: &[u8]) -> String {
        format!("/settings/data/export/{}", self.token(key))
    }
}

/// Records a pending export for the member and returns it. The caller builds it
/// ([`build`]) off the request; the worker catches up if that never happens.
pub async fn request(db: &Db, member_id: i64) -> AppResult<DataExport> {
    let key = signing_key(db).await?;
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    // A placeholder until the id (which the token signs) is known; unique, and never a
    // SHA-256 of anything, so nothing can match it.
    let placeholder = format!("pending-{}", crate::accounts::credentials::new_token(""));
    let row = sqlx::query(&format!(
        "INSERT INTO data_exports (member_id, status, token_hash, created_at, expires_at) \
         VALUES ($1, 'pending', $2, $3, $4) RETURNING {COLUMNS}"
    ))
    .bind(member_id)
    .bind(placeholder)
    .bind(now)
    .bind(now + DATA_EXPORT_MS)
    .fetch_one(&mut *tx)
    .await?;
    let export = DataExport::from_row(&row)?;
    sqlx::query("UPDATE data_exports SET token_hash = $1 WHERE id = $2")
        .bind(token_hash(&export.token(&key)))
        .bind(export.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(export)
}

/// The key download tokens are signed with, shared by every instance through
/// `site_secrets` and made on first use (whoever inserts first wins; all read the same).
pub async fn signing_key(db: &Db) -> AppResult<Vec<u8>> {
    sqlx::query(
        "INSERT INTO site_secrets (name, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(SECRET_NAME)
    .bind(crate::accounts::credentials::new_token(""))
    .bind(db::now_millis())
    .execute(&db.pool)
    .await?;
    let secret: String = sqlx::query_scalar("SELECT secret FROM site_secrets WHERE name = $1")
        .bind(SECRET_NAME)
        .fetch_one(&db.pool)
        .await?;
    Ok(secret.into_bytes())
}

const SECRET_NAME: &str = "data_export";

/// A page of the member's exports that have not expired, newest first (keyset on id,
/// through `data_exports_member`).
pub async fn list(db: &Db, member_id: i64, keyset: &Keyset<i64>) -> AppResult<Vec<DataExport>> {
    let order = keyset.direction(ListOrder::Descending);
    let sql = format!(
        "SELECT {COLUMNS} FROM data_exports WHERE member_id = $1 AND expires_at > $2 AND {} ORDER BY id {order} LIMIT $5",
        keyset.conditions("id", ListOrder::Descending, "$3", "$4")
    );
    let rows = sqlx::query(&sql)
        .bind(member_id)
        .bind(db::now_millis())
        .bind(keyset.after)
        .bind(keyset.before)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(DataExport::from_row).collect::<sqlx::Result<_>>()?)
}

/// The JSON of a ready, unexpired export behind `token`, when it belongs to `member_id`.
pub async fn download(db: &Db, member_id: i64, token: &str) -> AppResult<Option<String>> {
    if token.len() > 100 {
        return Ok(None);
    }
    let content: Option<Option<String>> = sqlx::query_scalar(
        "SELECT content FROM data_exports WHERE token_hash = $1 AND member_id = $2 AND status = 'ready' AND expires_at > $3",
    )
    .bind(token_hash(token))
    .bind(member_id)
    .bind(db::now_millis())
    .fetch_optional(&db.pool)
    .await?;
    Ok(content.flatten())
}

/// How long a builder holds its claim before another may take the export over.
const CLAIM_MS: i64 = 5 * 60 * 1000;

/// Claims `id` if it is pending and unclaimed (or its claim lapsed). The condition is
/// checked again by the `UPDATE` itself, so of two instances only one wins.
async fn claim(db: &Db, id: i64, now: i64) -> AppResult<Option<i64>> {
    let member: Option<i64> = sqlx::query_scalar(
        "UPDATE data_exports SET claimed_until = $1 WHERE id = $2 AND status = 'pending' \
         AND (claimed_until IS NULL OR claimed_until < $3) RETURNING member_id",
    )
    .bind(now + CLAIM_MS)
    .bind(id)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    Ok(member)
}

/// Builds export `id` if nobody else is building it; true when this call built it.
pub async fn build(db: &Db, id: i64) -> AppResult<bool> {
    let now = db::now_millis();
    let Some(member_id) = claim(db, id, now).await? else { return Ok(false) };
    match collect(db, member_id).await {
        Ok(document) => {
            sqlx::query(
                "UPDATE data_exports SET status = 'ready', content = $1, ready_at = $2, claimed_until = NULL \
                 WHERE id = $3 AND status = 'pending'",
            )
            .bind(document.to_string())
            .bind(db::now_millis())
            .bind(id)
            .execute(&db.pool)
            .await?;
            Ok(true)
        }
        Err(err) => {
            tracing::warn!(error = ?err, export = id, "could not build a data export");
            sqlx::query("UPDATE data_exports SET status = 'failed', claimed_until = NULL WHERE id = $1")
                .bind(id)
                .execute(&db.pool)
                .await?;
            Err(err)
        }
    }
}

/// Builds every pending export that nobody holds; what the worker does each round.
pub async fn build_pending(db: &Db) -> AppResult<usize> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM data_exports WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until < $1) \
         ORDER BY created_at LIMIT 20",
    )
    .bind(db::now_millis())
    .fetch_all(&db.pool)
    .await?;
    let mut built = 0;
    for id in ids {
        if build(db, id).await.unwrap_or(false) {
            built += 1;
        }
    }
    Ok(built)
}

/// The worker: every minute, builds exports that the request's own task did not.
pub async fn run(db: Db) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match build_pending(&db).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(exports = n, "built personal data exports"),
            Err(err) => tracing::warn!(error = ?err, "could not build personal data exports"),
        }
    }
}

/// Every table that refers to a member, as `table.column`, with what the export shows of
/// each row. `$1` is the member's id. Columns that hold secrets (hashes, PKCE verifiers,
/// mail bodies with unsubscribe links) are left out; everything else is in.
pub const SECTIONS: &[(&str, &str)] = &[
    (
        "members.id",
        "SELECT id, email, handle, display_name, bio, time_zone, role, created_at, updated_at, \
         email_verified_at, email_bouncing_at, digest_frequency, digest_weekday, digest_hour, next_digest_at, \
         auto_watch_off_at, followed_seen_at, suspended_at, suspended_until, suspension_reason, handle_changed_at, \
         CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END AS has_password, \
         CASE WHEN calendar_token_hash IS NULL THEN 0 ELSE 1 END AS has_calendar_feed \
         FROM members WHERE id = $1",
    ),
    (
        "member_handle_history.member_id",
        "SELECT handle, retired_at FROM member_handle_history WHERE member_id = $1 ORDER BY retired_at",
    ),
    (
        "member_identities.member_id",
        "SELECT provider, subject, email, created_at AS linked_at, last_used_at FROM member_identities \
         WHERE member_id = $1 ORDER BY provider",
    ),
    ("sessions.member_id", "SELECT id, created_at, expires_at FROM sessions WHERE member_id = $1 ORDER BY id"),
    (
        "access_tokens.member_id",
        "SELECT id, name, token_hint AS hint, created_at, last_used_at, expires_at, revoked_at FROM access_tokens \
         WHERE member_id = $1 ORDER BY id",
    ),
    (
        "account_tokens.member_id",
        "SELECT id, purpose, email, created_at, expires_at, used_at FROM account_tokens WHERE member_id = $1 ORDER BY id",
    ),
    (
        "oauth_states.link_member_id",
        "SELECT provider, return_to, created_at, expires_at FROM oauth_states WHERE link_member_id = $1 ORDER BY created_at",
    ),
    (
        "organisation_members.member_id",
        "SELECT o.slug, o.name, m.role, m.status, m.requested_at, m.decided_at, m.decided_by \
         FROM organisation_members m JOIN organisations o ON o.id = m.organisation_id WHERE m.member_id = $1 ORDER BY o.slug",
    ),
    (
        "organisation_members.decided_by",
        "SELECT organisation_id, member_id, status, decided_at FROM organisation_members WHERE decided_by = $1 \
         ORDER BY organisation_id, member_id",
    ),
    (
        "organisations.created_by",
        "SELECT id, slug, name, kind, website, created_at, updated_at FROM organisations WHERE created_by = $1 ORDER BY id",
    ),
    (
        "case_studies.author_id",
        "SELECT id, title, summary, body_source, phase, organisation_id, status, version, created_at, updated_at, \
         published_at, hidden_at, hidden_reason FROM case_studies WHERE author_id = $1 ORDER BY id",
    ),
    (
        "case_study_authors.member_id",
        "SELECT a.case_study_id, c.title, a.position FROM case_study_authors a JOIN case_studies c ON c.id = a.case_study_id \
         WHERE a.member_id = $1 ORDER BY a.case_study_id",
    ),
    (
        "case_study_revisions.edited_by",
        "SELECT case_study_id, version, title, summary, body_source, phase, change_note, edited_at FROM case_study_revisions \
         WHERE edited_by = $1 ORDER BY case_study_id, version",
    ),
    (
        "case_study_coauthor_invitations.invitee_id",
        "SELECT case_study_id, invited_by, status, created_at, responded_at FROM case_study_coauthor_invitations \
         WHERE invitee_id = $1 ORDER BY id",
    ),
    (
        "case_study_coauthor_invitations.invited_by",
        "SELECT case_study_id, invitee_id, status, created_at, responded_at FROM case_study_coauthor_invitations \
         WHERE invited_by = $1 ORDER BY id",
    ),
    (
        "case_study_marks.member_id",
        "SELECT case_study_id, kind, created_at FROM case_study_marks WHERE member_id = $1 ORDER BY created_at, case_study_id",
    ),
    (
        "case_study_interests.member_id",
        "SELECT case_study_id, note, created_at FROM case_study_interests WHERE member_id = $1 ORDER BY case_study_id",
    ),
    (
        "artefacts.created_by",
        "SELECT id, title, kind, description_source, url, licence, status, organisation_id, adapted_from_id, \
         version, created_at, updated_at, hidden_at, hidden_reason FROM artefacts WHERE created_by = $1 ORDER BY id",
    ),
    (
        "artefact_revisions.edited_by",
        "SELECT artefact_id, version, title, kind, description_source, url, licence, status, change_note, edited_at \
         FROM artefact_revisions WHERE edited_by = $1 ORDER BY artefact_id, version",
    ),
    (
        "artefact_reuses.recorded_by",
        "SELECT artefact_id, organisation_id, note, case_study_id, created_at, updated_at FROM artefact_reuses \
         WHERE recorded_by = $1 ORDER BY artefact_id, organisation_id",
    ),
    (
        "artefact_reuse_stories.member_id",
        "SELECT artefact_id, organisation_id, note, case_study_id, created_at, updated_at FROM artefact_reuse_stories \
         WHERE member_id = $1 ORDER BY artefact_id, organisation_id",
    ),
    (
        // Where each image is and what it shows; the images themselves are at their
        // addresses, /uploads/<key>.<png|jpg>, for as long as the account exists.
        "images.owner_id",
        "SELECT key, alt, format, width, height, bytes, created_at FROM images WHERE owner_id = $1 ORDER BY id",
    ),
    (
        "comments.author_id",
        "SELECT id, subject_type, subject_id, parent_id, body_source, created_at, edited_at, deleted_at, hidden_at, \
         hidden_reason FROM comments WHERE author_id = $1 ORDER BY id",
    ),
    (
        "follows.member_id",
        "SELECT target_type, target_id, level, created_at, updated_at FROM follows WHERE member_id = $1 ORDER BY id",
    ),
    ("notification_kinds_off.member_id", "SELECT kind FROM notification_kinds_off WHERE member_id = $1 ORDER BY kind"),
    (
        "notification_mail_choices.member_id",
        "SELECT kind, choice FROM notification_mail_choices WHERE member_id = $1 ORDER BY kind",
    ),
    (
        "notifications.member_id",
        "SELECT id, kind, channel, subject_type, subject_id, subject_title, actor_id, summary, path, created_at, read_at \
         FROM notifications WHERE member_id = $1 ORDER BY id",
    ),
    (
        "notifications.actor_id",
        "SELECT kind, subject_type, subject_id, created_at FROM notifications WHERE actor_id = $1 ORDER BY id",
    ),
    (
        "outbox_events.actor_id",
        "SELECT id, kind, subject_type, subject_id, created_at, dispatched_at FROM outbox_events WHERE actor_id = $1 ORDER BY id",
    ),
    (
        "mail_queue.member_id",
        "SELECT template, to_address, to_name, subject, status, created_at, sent_at FROM mail_queue WHERE member_id = $1 \
         ORDER BY id",
    ),
    (
        "meetup_groups.created_by",
        "SELECT id, slug, name, description_source, region, created_at FROM meetup_groups WHERE created_by = $1 ORDER BY id",
    ),
    (
        "meetup_group_members.member_id",
        "SELECT g.slug, g.name, m.role, m.joined_at FROM meetup_group_members m JOIN meetup_groups g ON g.id = m.group_id \
         WHERE m.member_id = $1 ORDER BY g.slug",
    ),
    (
        "meetup_series.created_by",
        "SELECT id, group_id, rule, created_at FROM meetup_series WHERE created_by = $1 ORDER BY id",
    ),
    (
        "meetup_events.created_by",
        "SELECT id, group_id, title, description_source, local_start, local_end, time_zone, status, created_at \
         FROM meetup_events WHERE created_by = $1 ORDER BY id",
    ),
    (
        "meetup_rsvps.member_id",
        "SELECT r.event_id, e.title, e.starts_at, r.status, r.waitlisted_at, r.removed_at, r.attended_at, r.created_at, \
         r.updated_at FROM meetup_rsvps r JOIN meetup_events e ON e.id = r.event_id WHERE r.member_id = $1 \
         ORDER BY r.event_id",
    ),
    (
        // Those this member, as an organiser, took off a meetup.
        "meetup_rsvps.removed_by",
        "SELECT event_id, member_id, removed_at FROM meetup_rsvps WHERE removed_by = $1 ORDER BY event_id, member_id",
    ),
    (
        "meetup_agenda_items.speaker_member_id",
        "SELECT event_id, title, kind, duration_minutes FROM meetup_agenda_items WHERE speaker_member_id = $1 ORDER BY id",
    ),
    (
        "flags.flagger_id",
        "SELECT target_type, target_id, reason, note, created_at FROM flags WHERE flagger_id = $1 ORDER BY id",
    ),
    (
        "reviews.decided_by",
        "SELECT target_type, target_id, decision, decision_reason, decided_at FROM reviews WHERE decided_by = $1 ORDER BY id",
    ),
    (
        "suspensions.member_id",
        "SELECT reason, starts_at, ends_at, lifted_at, lift_reason FROM suspensions WHERE member_id = $1 ORDER BY id",
    ),
    ("suspensions.created_by", "SELECT member_id, starts_at, ends_at FROM suspensions WHERE created_by = $1 ORDER BY id"),
    ("suspensions.lifted_by", "SELECT member_id, lifted_at FROM suspensions WHERE lifted_by = $1 ORDER BY id"),
    ("audit_log.actor_id", "SELECT action, target_type, target_id, reason, created_at FROM audit_log WHERE actor_id = $1 ORDER BY id"),
    (
        "data_exports.member_id",
        "SELECT id, status, created_at, ready_at, expires_at FROM data_exports WHERE member_id = $1 ORDER BY id",
    ),
];

/// The whole export for a member, as one JSON document.
pub async fn collect(db: &Db, member_id: i64) -> AppResult<Value> {
    let mut sections = Map::new();
    for (name, sql) in SECTIONS {
        let rows = sqlx::query(sql).bind(member_id).fetch_all(&db.pool).await?;
        sections.insert(name.to_string(), Value::Array(rows.iter().map(row_json).collect()));
    }
    Ok(json!({
        "format": "kettle-personal-data/1",
        "exportedAt": jiff::Timestamp::from_millisecond(db::now_millis()).map(|t| t.to_string()).unwrap_or_default(),
        "about": "Everything Kettle holds about you. Each section is named after the table and the column that \
                  refers to you; times are Unix milliseconds (UTC). Markdown is included as you wrote it.",
        "sections": sections,
    }))
}

/// A row as a JSON object, each column by its name, as an integer, a number or text.
fn row_json(row: &AnyRow) -> Value {
    let mut object = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
            json!(v)
        } else if let Ok(v) = row.try_get::<Option<String>, _>(i) {
            json!(v)
        } else if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
            json!(v)
        } else if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
            json!(v)
        } else {
            Value::Null
        };
        object.insert(column.name().to_string(), value);
    }
    Value::Object(object)
}
