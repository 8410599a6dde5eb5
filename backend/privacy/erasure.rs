//! The right to erasure: a member's account goes, and with it everything that is about
//! them, while the content others rely on stays, attributed to "a former member".
//!
//! [`erase`] does it all in one write transaction, so an erasure is whole or not at all:
//!
//! 1. **Goes:** sessions, access tokens, mail links, provider identities and unfinished
//!    provider sign-ins, follows (theirs, and others' follows of them), notifications and
//!    notification choices, marks, bookmarks, interests, flags they made (a review keeps
//!    its weight), co-author invitations to them, data exports, their mail, organisation
//!    and meetup group memberships, suspensions (the audit log keeps the facts by id),
//!    and the images they uploaded: others' text that showed one is rendered again
//!    without it (and without the alt text they gave it).
//! 2. **RSVPs** are withdrawn the way an RSVP is: under the event's lock, a freed seat
//!    promoted from the waitlist by `meetups::rsvps::promote_waiting`, which tells the
//!    promoted member through the outbox.
//! 3. **Drafts** they alone wrote are deleted, with the comments on them; artefacts of
//!    theirs that nothing else relies on (no reuse by another, no adaptation, no link to a
//!    case study, no comment by anyone else) too. Comments without replies go; comments
//!    with replies, published case studies and artefacts others rely on stay.
//! 4. **Mentions** of their handle, and of those they gave up (which are then forgotten),
//!    in anyone's Markdown (case studies and their revisions,
//!    artefacts, comments, meetup groups and events) become "a former member"; the HTML is
//!    rendered again through `markdown::render_linked` and the search index refreshed.
//!    Text that named them elsewhere — others' notification summaries and queued or sent
//!    mail, the handles in event payloads, agenda speakers, notes on flags about them —
//!    is rewritten the same way.
//! 5. **The member row** stays as a tombstone, so content keeps an author and ids keep
//!    their meaning: display name "a former member", a random handle and an address at
//!    the reserved `.invalid` domain, no password, bio, calendar feed or digest, and
//!    `erased_at` set. Nothing can sign in as it again.
//!
//! An admin erasing a member on request is audited (`erase_member`, target the member's
//! id, with the admin's reason); the audit row names the member by id only.

use std::collections::HashSet;

use sqlx::Row;

use crate::{
    db::{self, Db, Tx},
    error::AppResult,
    markdown,
    meetups::{events, rsvps},
    moderation::audit,
    search::{self, SearchKind},
};

/// What an erased member is called wherever they were named.
pub const FORMER_MEMBER: &str = "a former member";

/// Who asked for an erasure.
pub enum Requester<'a> {
    /// The member themself (already confirmed with their password or a fresh sign-in).
    Themself,
    /// An admin, on request, with a reason for the audit log.
    Admin { admin_id: i64, reason: &'a str },
}

/// Erases `member_id`; false when there is no such member or they were erased already.
pub async fn erase(db: &Db, member_id: i64, requester: Requester<'_>) -> AppResult<bool> {
    let mut tx = db.begin_write().await?;
    let row = sqlx::query(&format!(
        "SELECT handle, display_name, email FROM members WHERE id = $1 AND erased_at IS NULL{}",
        db.dialect.for_update()
    ))
    .bind(member_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let handle: String = row.try_get::<Option<String>, _>("handle")?.unwrap_or_default();
    let display_name: String = row.try_get("display_name")?;
    let email: String = row.try_get("email")?;
    let now = db::now_millis();

    withdraw_rsvps(&mut tx, db.dialect, member_id, now).await?;
    delete_drafts(&mut tx, member_id).await?;
    // Comments without replies go; a reply never has replies of its own.
    sqlx::query(
        "DELETE FROM comments WHERE author_id = $1 AND NOT EXISTS (SELECT 1 FROM comments r WHERE r.parent_id = comments.id)",
    )
    .bind(member_id)
    .execute(&mut *tx)
    .await?;
    delete_unused_artefacts(&mut tx, member_id).await?;
    let image_keys: Vec<String> =
        sqlx::query_scalar("SELECT key FROM images WHERE owner_id = $1").bind(member_id).fetch_all(&mut *tx).await?;
    crate::uploads::delete_all_of(&mut tx, member_id).await?;
    crate::uploads::render_again_without(db, &mut tx, &image_keys).await?;

    for sql in [
        "DELETE FROM sessions WHERE member_id = $1",
        "DELETE FROM access_tokens WHERE member_id = $1",
        "DELETE FROM account_tokens WHERE member_id = $1",
        "DELETE FROM member_identities WHERE member_id = $1",
        "DELETE FROM oauth_states WHERE link_member_id = $1",
        "DELETE FROM follows WHERE member_id = $1",
        "DELETE FROM follows WHERE target_type = 'Member' AND target_id = $1",
        "DELETE FROM notifications WHERE member_id = $1",
        "DELETE FROM notifications WHERE subject_type = 'Member' AND subject_id = $1",
        "DELETE FROM notification_kinds_off WHERE member_id = $1",
        "DELETE FROM notification_mail_choices WHERE member_id = $1",
        "DELETE FROM case_study_marks WHERE member_id = $1",
        "DELETE FROM case_study_interests WHERE member_id = $1",
        "DELETE FROM case_study_coauthor_invitations WHERE invitee_id = $1",
        "UPDATE case_study_coauthor_invitations SET invited_by = NULL WHERE invited_by = $1",
        // Drafts of others they co-wrote: they no longer see or edit them. Published work
        // keeps them (as a former member) among its authors.
        "DELETE FROM case_study_authors WHERE member_id = $1 \
         AND case_study_id IN (SELECT id FROM case_studies WHERE status = 'draft')",
        "DELETE FROM flags WHERE flagger_id = $1",
        "UPDATE flags SET note = '' WHERE target_type = 'member' AND target_id = $1",
        "DELETE FROM data_exports WHERE member_id = $1",
        "DELETE FROM mail_queue WHERE member_id = $1",
        "DELETE FROM organisation_members WHERE member_id = $1",
        "DELETE FROM meetup_group_members WHERE member_id = $1",
        "DELETE FROM suspensions WHERE member_id = $1",
    ] {
        sqlx::query(sql).bind(member_id).execute(&mut *tx).await?;
    }
    sqlx::query(
        "UPDATE meetup_agenda_items SET speaker_member_id = NULL, speaker_name = $1 WHERE speaker_member_id = $2",
    )
    .bind(FORMER_MEMBER)
    .bind(member_id)
    .execute(&mut *tx)
    .await?;

    // The handles they gave up name them as well as the one they use.
    let former: Vec<String> = sqlx::query_scalar("SELECT handle FROM member_handle_history WHERE member_id = $1")
        .bind(member_id)
        .fetch_all(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM member_handle_history WHERE member_id = $1").bind(member_id).execute(&mut *tx).await?;
    for handle in std::iter::once(&handle).chain(&former) {
        neutralise_mentions(db, &mut tx, handle).await?;
        scrub_names(&mut tx, member_id, handle, &display_name, &email).await?;
    }

    let token = crate::accounts::credentials::new_token("");
    let suffix: String = token.chars().filter(char::is_ascii_alphanumeric).take(12).collect::<String>().to_lowercase();
    let tombstone_email = format!("erased-{suffix}@erased.invalid");
    sqlx::query(
        "UPDATE members SET email = $1, email_normalized = $1, handle = $2, display_name = $3, bio = '', \
         password_hash = NULL, time_zone = $4, role = 'member', calendar_token_hash = NULL, calendar_token = NULL, \
         email_verified_at = NULL, email_bouncing_at = NULL, digest_frequency = 'never', next_digest_at = NULL, \
         auto_watch_off_at = NULL, followed_seen_at = NULL, suspended_at = NULL, suspended_until = NULL, suspension_reason = NULL, \
         erased_at = $5, updated_at = $5 WHERE id = $6",
    )
    .bind(&tombstone_email)
    .bind(format!("former-{suffix}"))
    .bind(FORMER_MEMBER)
    .bind(crate::accounts::DEFAULT_TIME_ZONE)
    .bind(now)
    .bind(member_id)
    .execute(&mut *tx)
    .await?;

    if let Requester::Admin { admin_id, reason } = requester {
        let entry = audit::Entry {
            actor_id: Some(admin_id),
            action: "erase_member",
            target_type: "member",
            target_id: member_id,
            reason,
            before: None,
            after: None,
        };
        audit::append(&mut tx, entry).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Withdraws every RSVP, freeing seats for the waitlist of events still to come.
async fn withdraw_rsvps(tx: &mut Tx, dialect: db::Dialect, member_id: i64, now: i64) -> AppResult<()> {
    let answers: Vec<(i64, String)> =
        sqlx::query_as("SELECT event_id, status FROM meetup_rsvps WHERE member_id = $1 ORDER BY event_id")
            .bind(member_id)
            .fetch_all(&mut **tx)
            .await?;
    for (event_id, status) in answers {
        // Locked first, as every RSVP is: seats are counted one answer at a time.
        let event = events::lock(tx, dialect, event_id).await?;
        sqlx::query("DELETE FROM meetup_rsvps WHERE event_id = $1 AND member_id = $2")
            .bind(event_id)
            .bind(member_id)
            .execute(&mut **tx)
            .await?;
        if status == "going" {
            sqlx::query("UPDATE meetup_events SET going_count = going_count - 1 WHERE id = $1 AND going_count > 0")
                .bind(event_id)
                .execute(&mut **tx)
                .await?;
            if event.is_some_and(|e| e.ends_at > now) {
                rsvps::promote_waiting(tx, event_id).await?;
            }
        }
    }
    Ok(())
}

/// Deletes the drafts only this member wrote, and the comments and follows on them.
async fn delete_drafts(tx: &mut Tx, member_id: i64) -> AppResult<()> {
    let drafts: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM case_studies c WHERE author_id = $1 AND status = 'draft' \
         AND NOT EXISTS (SELECT 1 FROM case_study_authors a WHERE a.case_study_id = c.id AND a.member_id <> $1)",
    )
    .bind(member_id)
    .fetch_all(&mut **tx)
    .await?;
    for id in drafts {
        sqlx::query("DELETE FROM comments WHERE subject_type = 'case_study' AND subject_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM follows WHERE target_type = 'CaseStudy' AND target_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        search::remove(tx, SearchKind::CaseStudy, id).await?;
        sqlx::query("DELETE FROM case_studies WHERE id = $1").bind(id).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Deletes the member's artefacts that nothing and nobody else relies on.
async fn delete_unused_artefacts(tx: &mut Tx, member_id: i64) -> AppResult<()> {
    let unused: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM artefacts a WHERE created_by = $1 \
         AND NOT EXISTS (SELECT 1 FROM artefact_reuses r WHERE r.artefact_id = a.id AND r.recorded_by <> $1) \
         AND NOT EXISTS (SELECT 1 FROM artefacts d WHERE d.adapted_from_id = a.id) \
         AND NOT EXISTS (SELECT 1 FROM artefact_case_studies l WHERE l.artefact_id = a.id) \
         AND NOT EXISTS (SELECT 1 FROM comments c WHERE c.subject_type = 'artefact' AND c.subject_id = a.id)",
    )
    .bind(member_id)
    .fetch_all(&mut **tx)
    .await?;
    for id in unused {
        sqlx::query("DELETE FROM follows WHERE target_type = 'Artefact' AND target_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        search::remove(tx, SearchKind::Artefact, id).await?;
        sqlx::query("DELETE FROM artefacts WHERE id = $1").bind(id).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Rewrites `@handle` (any case, as a whole mention) to [`FORMER_MEMBER`]; `None` when
/// the text has no such mention.
pub fn neutralise(text: &str, handle: &str) -> Option<String> {
    if handle.is_empty() {
        return None;
    }
    let is_handle_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let lower = text.to_ascii_lowercase();
    let needle = format!("@{}", handle.to_ascii_lowercase());
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut changed = false;
    let mut from = 0;
    while let Some(found) = lower[from..].find(&needle) {
        let start = from + found;
        let end = start + needle.len();
        from = end;
        let before_ok = lower[..start].chars().next_back().is_none_or(|c| !(is_handle_char(c) || c == '@'));
        // What follows must end the handle: nothing, or a run of only `-` and `_`
        // (which a mention does not include), then something else.
        let run: String = lower[end..].chars().take_while(|c| is_handle_char(*c)).collect();
        let after_ok = run.chars().all(|c| c == '-' || c == '_');
        if before_ok && after_ok {
            out.push_str(&text[last..start]);
            out.push_str(FORMER_MEMBER);
            last = end;
            changed = true;
        }
    }
    changed.then(|| {
        out.push_str(&text[last..]);
        out
    })
}

async fn neutralise_mentions(db: &Db, tx: &mut Tx, handle: &str) -> AppResult<()> {
    if handle.is_empty() {
        return Ok(());
    }
    let pattern = format!("%@{}%", handle.to_ascii_lowercase());
    let mut case_studies: HashSet<i64> = HashSet::new();
    let mut artefacts: HashSet<i64> = HashSet::new();
    for (table, source, html) in markdown::STORED {
        let rows: Vec<(i64, String)> =
            sqlx::query_as(&format!("SELECT id, {source} FROM {table} WHERE LOWER({source}) LIKE $1"))
                .bind(&pattern)
                .fetch_all(&mut **tx)
                .await?;
        for (id, text) in rows {
            let Some(rewritten) = neutralise(&text, handle) else { continue };
            match html {
                Some(html) => {
                    let rendered = markdown::render_linked(db, &rewritten).await?;
                    sqlx::query(&format!("UPDATE {table} SET {source} = $1, {html} = $2 WHERE id = $3"))
                        .bind(&rewritten)
                        .bind(&rendered.html)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                }
                None => {
                    sqlx::query(&format!("UPDATE {table} SET {source} = $1 WHERE id = $2"))
                        .bind(&rewritten)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                }
            }
            match table {
                "case_studies" => {
                    case_studies.insert(id);
                }
                "artefacts" => {
                    artefacts.insert(id);
                }
                _ => {}
            }
        }
    }
    // Summaries are plain text, but a mention there names them just the same.
    let summaries: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, summary FROM case_studies WHERE LOWER(summary) LIKE $1")
            .bind(&pattern)
            .fetch_all(&mut **tx)
            .await?;
    for (id, summary) in summaries {
        if let Some(rewritten) = neutralise(&summary, handle) {
            sqlx::query("UPDATE case_studies SET summary = $1 WHERE id = $2")
                .bind(rewritten)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            case_studies.insert(id);
        }
    }
    for id in case_studies {
        let row: Option<(String, String, String, String)> =
            sqlx::query_as("SELECT title, summary, body_source, status FROM case_studies WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
        // Only published case studies are in the index.
        if let Some((title, summary, body, _)) = row.filter(|(_, _, _, status)| status == "published") {
            search::index(tx, SearchKind::CaseStudy, id, &title, &format!("{summary}\n\n{body}")).await?;
        }
    }
    for id in artefacts {
        let row: Option<(String, String, String)> =
            sqlx::query_as("SELECT title, licence, description_source FROM artefacts WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some((title, licence, description)) = row {
            search::index(tx, SearchKind::Artefact, id, &title, &format!("{licence}\n\n{description}")).await?;
        }
    }
    Ok(())
}

/// Rewrites text elsewhere that names the member: others' notifications (the summaries of
/// what they did, and links to their profile), mail queued or sent to others (which is
/// rendered whole when queued, so it can name them anywhere), and the handles that event
/// payloads carry for mentions. Mail is matched by content, the only link it has to them;
/// it is pruned after 30 days in any case.
async fn scrub_names(tx: &mut Tx, member_id: i64, handle: &str, display_name: &str, email: &str) -> AppResult<()> {
    // Summaries begin with the actor's name.
    let capitalised = format!("A{}", &FORMER_MEMBER[1..]);
    sqlx::query("UPDATE notifications SET summary = REPLACE(summary, $1, $2) WHERE actor_id = $3")
        .bind(display_name)
        .bind(&capitalised)
        .bind(member_id)
        .execute(&mut **tx)
        .await?;
    let mut by_handle: Vec<(String, String)> = Vec::new();
    if !handle.is_empty() {
        by_handle.push((format!("/members/{handle}"), "/members".to_string()));
        by_handle.push((format!("@{handle}"), FORMER_MEMBER.to_string()));
    }
    let mut in_mail = by_handle.clone();
    for name in [display_name.trim(), email.trim()] {
        if name.chars().count() >= 2 {
            in_mail.push((name.to_string(), FORMER_MEMBER.to_string()));
        }
    }
    let mut in_events = Vec::new();
    if !handle.is_empty() {
        in_events.push((format!("\"{handle}\""), "\"\"".to_string()));
    }
    for (table, columns, replacements) in [
        ("notifications", &["summary", "path"][..], &by_handle),
        ("mail_queue", &["subject", "text_body", "html_body"][..], &in_mail),
        ("outbox_events", &["payload"][..], &in_events),
    ] {
        let set: Vec<String> = columns.iter().map(|c| format!("{c} = REPLACE({c}, $1, $2)")).collect();
        let any: Vec<String> = columns.iter().map(|c| format!("{c} LIKE $3")).collect();
        let sql = format!("UPDATE {table} SET {} WHERE {}", set.join(", "), any.join(" OR "));
        for (from, to) in replacements {
            sqlx::query(&sql).bind(from).bind(to).bind(format!("%{from}%")).execute(&mut **tx).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_neutralised_whole_and_only_whole() {
        assert_eq!(neutralise("Thanks @ada!", "ada").as_deref(), Some("Thanks a former member!"));
        assert_eq!(neutralise("@Ada and @ADA", "ada").as_deref(), Some("a former member and a former member"));
        assert_eq!(neutralise("cc @ada_", "ada").as_deref(), Some("cc a former member_"));
        assert_eq!(neutralise("@adam is someone else", "ada"), None);
        assert_eq!(neutralise("mail ada@example.org", "ada"), None);
        assert_eq!(neutralise("no mention", "ada"), None);
        assert_eq!(neutralise("@@ada", "ada"), None);
        assert_eq!(neutralise("é @ada é", "ada").as_deref(), Some("é a former member é"));
    }
}
