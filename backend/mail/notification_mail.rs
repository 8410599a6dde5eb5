//! Mail about notifications: per kind, at once (after a short delay, if still unread),
//! in the digest, or not at all.
//!
//! A sweep, on every instance, walks the notifications in id order behind a cursor
//! (`cursors.name = 'notification_mail'`). A notification becomes due once `mailer.delay`
//! has passed since it was made, so a member who is online reads it on the site first
//! and gets no mail about it (as Discourse does). Each due one is mailed if it is still
//! unread, its kind is on and its member's choice for the kind is `EMAIL` (see
//! [`default_choice`] for the defaults), to a verified address that is not bouncing.
//!
//! Why a cursor and not a "mailed" flag per notification: the dispatcher writes
//! notifications on its hot path in big batches, and a flag would cost an extra write
//! (and an index to find the unmailed ones) per notification, most of which are never
//! mailed. The cursor costs one row, advanced once per batch. The batch's mail and the
//! cursor's advance commit together, the advance by compare-and-set, so two instances
//! sweeping at once queue each message once (the idempotency key `notification:<id>`
//! makes sure of it even so), and a crash mid-batch leaves the whole batch to be done
//! again.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use sqlx::Row;

use super::{enqueue, List, Mailer, Outgoing};
use crate::{
    db::{self, Db},
    error::AppResult,
    meetups::events::{EventStatus, REMINDER_AHEAD_MS},
    moderation::suspensions,
    notifications::{
        inbox::{default_choice, MailChoice},
        Channel, NotificationKind,
    },
};

/// The cursor's name in `cursors`.
const CURSOR: &str = "notification_mail";
/// Notifications looked at per batch (one transaction each).
const BATCH: i64 = 500;
/// How often each instance sweeps. Mail waits `mailer.delay` (ten minutes by default)
/// anyway, so there is no wake-up to hurry it.
const SWEEP: Duration = Duration::from_secs(2);
/// The longest subject line, in characters: longer summaries are cut with "…".
const SUBJECT_LIMIT: usize = 120;

/// What the mail about a kind calls it: "mail about mentions".
pub fn about(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Mentioned => "mentions",
        NotificationKind::Replied => "replies to your comments",
        NotificationKind::CommentedOnYours => "comments on your case studies and artefacts",
        NotificationKind::ArtefactReused => "reuse of your organisation's artefacts",
        NotificationKind::InterestRegistered => "people working on the same problem as you",
        NotificationKind::WaitlistPromoted => "places from meetup waitlists",
        NotificationKind::MeetupChanged => "changes to your meetups",
        NotificationKind::MeetupCancelled => "cancelled meetups",
        NotificationKind::MeetupReminder => "meetup reminders",
        NotificationKind::RsvpRemoved => "being taken off meetups",
        NotificationKind::MeetupMessage => "messages from meetup organisers",
        NotificationKind::JoinRequested => "requests to join your organisations",
        NotificationKind::JoinDecided => "your requests to join organisations",
        NotificationKind::CoauthorInvited => "invitations to co-author",
        NotificationKind::NewCaseStudy => "new case studies in what you follow",
        NotificationKind::NewArtefact => "new artefacts in what you follow",
        NotificationKind::NewMeetup => "new meetups in what you follow",
        NotificationKind::NewComment => "new comments in conversations you watch",
        NotificationKind::ReportDecided => "what the moderators decided about your reports",
        NotificationKind::ContentModerated => "moderators' decisions about what you wrote",
    }
}

/// Why the member got the mail, to end the sentence "You get this because …".
pub fn because(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Mentioned => "someone mentioned you",
        NotificationKind::Replied => "someone replied to your comment",
        NotificationKind::CommentedOnYours => "someone commented on something you wrote",
        NotificationKind::ArtefactReused => "your organisation shared this artefact",
        NotificationKind::InterestRegistered => "you wrote this case study",
        NotificationKind::WaitlistPromoted => "you were on this meetup's waitlist",
        NotificationKind::MeetupChanged | NotificationKind::MeetupCancelled => {
            "you are going to this meetup, or on its waitlist"
        }
        NotificationKind::MeetupReminder => "you are going to this meetup",
        NotificationKind::RsvpRemoved => "you were going to this meetup, or on its waitlist",
        NotificationKind::MeetupMessage => "you are going to this meetup, or on its waitlist",
        NotificationKind::JoinRequested => "you administer this organisation",
        NotificationKind::JoinDecided => "you asked to join this organisation",
        NotificationKind::CoauthorInvited => "you were invited to co-author this case study",
        NotificationKind::NewCaseStudy | NotificationKind::NewArtefact | NotificationKind::NewMeetup => {
            "you watch something it belongs to"
        }
        NotificationKind::NewComment => "you watch this conversation",
        NotificationKind::ReportDecided => "you reported this to the moderators",
        NotificationKind::ContentModerated => "you wrote this",
    }
}

/// A subject line from a summary: one line, not too long.
fn subject_line(summary: &str) -> String {
    let line: String = summary.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = line.trim();
    if line.chars().count() <= SUBJECT_LIMIT {
        return line.to_string();
    }
    let cut: String = line.chars().take(SUBJECT_LIMIT - 1).collect();
    format!("{}…", cut.trim_end())
}

/// One notification the sweep looks at, with what deciding and writing its mail needs.
struct Candidate {
    id: i64,
    member_id: i64,
    kind: Option<NotificationKind>,
    summary: String,
    path: String,
    created_at: i64,
    /// Whether it is still worth a mail: unread, in the inbox, of a kind switched on and
    /// chosen for mail, to a verified, working address of a member in good standing.
    wanted: bool,
    email: String,
    display_name: String,
    time_zone: String,
    /// For a meetup that is still on: when it starts.
    starts_at: Option<i64>,
    /// For a cancellation: what the organiser told those going and waiting.
    cancel_message: Option<String>,
}

/// The notifications after `cursor` that are past their delay at `now`, oldest first,
/// with their members and choices: up to (not including) the first one still inside its
/// delay. Ids rise with creation time, since the one dispatcher writes them in order;
/// filtering on `created_at` alone could step over a young one and lose it. The first
/// young one is looked for among the next batch only (by the primary key), so a sweep
/// with nothing due reads a few narrow rows and joins nothing.
async fn candidates(db: &Db, cursor: i64, now: i64, delay: i64) -> AppResult<Vec<Candidate>> {
    let rows = sqlx::query(
        "SELECT n.id, n.member_id, n.kind, n.channel, n.summary, n.path, n.created_at, n.read_at, n.subject_type, \
         m.email, m.display_name, m.time_zone, m.email_verified_at, m.email_bouncing_at, m.suspended_at, m.suspended_until, \
         c.choice, \
         (SELECT COUNT(*) FROM notification_kinds_off o WHERE o.member_id = n.member_id AND o.kind = n.kind) AS off, \
         e.status AS meetup_status, e.starts_at AS meetup_starts_at, e.cancel_message, \
         (SELECT COUNT(*) FROM meetup_rsvps r WHERE r.event_id = e.id AND r.member_id = n.member_id \
          AND r.status = 'going') AS going \
         FROM notifications n JOIN members m ON m.id = n.member_id \
         LEFT JOIN notification_mail_choices c ON c.member_id = n.member_id AND c.kind = n.kind \
         LEFT JOIN meetup_events e ON n.subject_type = 'MeetupEvent' AND e.id = n.subject_id \
         WHERE n.id > $1 AND n.id < COALESCE((SELECT MIN(x.id) FROM \
         (SELECT id, created_at FROM notifications WHERE id > $1 ORDER BY id LIMIT $2) x WHERE x.created_at > $3), $4) \
         ORDER BY n.id LIMIT $2",
    )
    .bind(cursor)
    .bind(BATCH)
    .bind(now - delay)
    .bind(i64::MAX)
    .fetch_all(&db.pool)
    .await?;
    let mut list = Vec::with_capacity(rows.len());
    for row in &rows {
        // A kind this build does not know (a newer instance wrote it; kinds have no CHECK
        // constraint) is not mailed; the choices do have one, so an unknown choice fails.
        let kind = NotificationKind::parse(&row.try_get::<String, _>("kind")?).ok();
        let choice = match (row.try_get::<Option<MailChoice>, _>("choice")?, kind) {
            (Some(choice), _) => Some(choice),
            (None, Some(kind)) => Some(default_choice(kind)),
            (None, None) => None,
        };
        let created_at: i64 = row.try_get("created_at")?;
        let starts_at: Option<i64> = row.try_get("meetup_starts_at")?;
        let meetup_on = row.try_get::<Option<EventStatus>, _>("meetup_status")? == Some(EventStatus::Scheduled);
        // Nor a cancellation once the meetup is back on (those told of that are told so).
        let cancellation_holds = kind != Some(NotificationKind::MeetupCancelled) || !meetup_on;
        // A reminder only while it is still true: the meetup is on, the member still
        // going, and it still starts within the day the reminder was for (one moved
        // further away gets its own reminder when that comes due).
        let reminder_holds = kind != Some(NotificationKind::MeetupReminder)
            || (meetup_on
                && row.try_get::<i64, _>("going")? > 0
                && starts_at.is_some_and(|at| at > now && at <= created_at + REMINDER_AHEAD_MS));
        let wanted = row.try_get::<Channel, _>("channel")? == Channel::Inbox
            && row.try_get::<Option<i64>, _>("read_at")?.is_none()
            && choice == Some(MailChoice::Email)
            && row.try_get::<i64, _>("off")? == 0
            && row.try_get::<Option<i64>, _>("email_verified_at")?.is_some()
            && row.try_get::<Option<i64>, _>("email_bouncing_at")?.is_none()
            && !suspensions::in_force(row.try_get("suspended_at")?, row.try_get("suspended_until")?, now)
            && reminder_holds
            && cancellation_holds;
        list.push(Candidate {
            id: row.try_get("id")?,
            member_id: row.try_get("member_id")?,
            kind,
            summary: row.try_get("summary")?,
            path: row.try_get("path")?,
            created_at,
            wanted,
            email: row.try_get("email")?,
            display_name: row.try_get("display_name")?,
            time_zone: row.try_get("time_zone")?,
            // "It starts on …" only for a meetup that is still on.
            starts_at: if row.try_get::<String, _>("subject_type")? == "MeetupEvent" && meetup_on {
                starts_at
            } else {
                None
            },
            cancel_message: if kind == Some(NotificationKind::MeetupCancelled) {
                row.try_get("cancel_message")?
            } else {
                None
            },
        });
    }
    Ok(list)
}

/// Where the cursor stands; made on first use at the newest notification, so that a site
/// which starts sending mail does not mail its whole backlog of unread notifications.
async fn cursor(db: &Db) -> AppResult<i64> {
    if let Some(row) =
        sqlx::query("SELECT position FROM cursors WHERE name = $1").bind(CURSOR).fetch_optional(&db.pool).await?
    {
        return Ok(row.try_get(0)?);
    }
    // `WHERE 1 = 1`: SQLite needs a WHERE before ON CONFLICT in an INSERT … SELECT.
    sqlx::query(
        "INSERT INTO cursors (name, position) SELECT CAST($1 AS TEXT), COALESCE(MAX(id), 0) FROM notifications \
         WHERE 1 = 1 ON CONFLICT (name) DO NOTHING",
    )
    .bind(CURSOR)
    .execute(&db.pool)
    .await?;
    let row = sqlx::query("SELECT position FROM cursors WHERE name = $1").bind(CURSOR).fetch_one(&db.pool).await?;
    Ok(row.try_get(0)?)
}

/// Queues the mail about every notification that has come due by `now`, batch by
/// batch, and returns how many messages were queued. Stops early, having done nothing
/// twice, when another instance is sweeping the same notifications.
pub async fn sweep(db: &Db, mailer: &Mailer, now: i64) -> AppResult<usize> {
    let delay = mailer.delay.as_millis() as i64;
    let mut queued = 0;
    loop {
        let from = cursor(db).await?;
        let found = candidates(db, from, now, delay).await?;
        // Everything found is due (see `candidates`); the check costs nothing and keeps
        // the rule in sight: the batch ends before the first notification still inside
        // its delay, so everything after the cursor is still to come.
        let due: Vec<&Candidate> = found.iter().take_while(|c| c.created_at <= now - delay).collect();
        let Some(last) = due.last() else { break };
        let to = last.id;
        let mut tx = db.begin_write().await?;
        let mut in_batch = 0;
        for candidate in due.iter().filter(|c| c.wanted) {
            let Some(kind) = candidate.kind else { continue };
            let outgoing = Outgoing {
                key: format!("notification:{}", candidate.id),
                member_id: Some(candidate.member_id),
                to_address: &candidate.email,
                to_name: &candidate.display_name,
                template: "notification",
                list: Some(List::Notifications(kind)),
                subject: subject_line(&candidate.summary),
                context: json!({
                    "display_name": candidate.display_name,
                    "summary": candidate.summary,
                    "path": candidate.path,
                    "kind": kind.as_str(),
                    "about": about(kind),
                    "because": because(kind),
                    "starts_at": candidate.starts_at,
                    "message": candidate.cancel_message,
                    "time_zone": candidate.time_zone,
                    "settings_path": "/settings/notifications",
                }),
            };
            if enqueue(&mut tx, mailer, outgoing).await? {
                in_batch += 1;
            }
        }
        // Compare-and-set: if the cursor moved meanwhile, another instance did this batch
        // (or part of it), so ours is dropped whole.
        let advanced = sqlx::query("UPDATE cursors SET position = $1 WHERE name = $2 AND position = $3")
            .bind(to)
            .bind(CURSOR)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        if advanced.rows_affected() == 0 {
            tx.rollback().await?;
            break;
        }
        tx.commit().await?;
        if in_batch > 0 {
            queued += in_batch;
            mailer.queued();
        }
        if due.len() < found.len() || (found.len() as i64) < BATCH {
            break;
        }
    }
    Ok(queued)
}

/// Runs on every instance until the server stops.
pub async fn run(db: Db, mailer: Arc<Mailer>) {
    loop {
        match sweep(&db, &mailer, db::now_millis()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(messages = n, "queued mail about notifications"),
            Err(err) => tracing::warn!(error = ?err, "could not queue mail about notifications; retrying"),
        }
        tokio::time::sleep(SWEEP).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_lines_are_one_line_and_short() {
        assert_eq!(subject_line("Ada mentioned you in “Bins”"), "Ada mentioned you in “Bins”");
        assert_eq!(subject_line("a\r\nb"), "a  b");
        let long = format!("Grace mentioned you in “{}”", "Bin collection ".repeat(20));
        let line = subject_line(&long);
        assert_eq!(line.chars().count(), SUBJECT_LIMIT);
        assert!(line.ends_with('…') && line.starts_with("Grace mentioned you in “Bin collection"), "{line}");
    }

    #[test]
    fn every_kind_has_words() {
        for kind in NotificationKind::ALL {
            assert!(!about(kind).is_empty() && !because(kind).is_empty());
        }
    }
}
