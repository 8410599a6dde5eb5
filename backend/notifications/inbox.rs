//! A member's inbox: listing (grouped), counting, reading, replaying after a cursor, what
//! is new in what they follow, and their notification settings.
//!
//! Grouping is fixed when a notification is written (its `group_id`, see the migration):
//! an entry in a list is the newest notification of its group, standing for the group's
//! size. So a burst of comments on one thread is one entry, and whatever came before it
//! stays on the first page.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::{Notification, NotificationKind, COLUMNS};
use crate::{
    db::{self, Db, Keyset, ListOrder, Tx},
    error::AppResult,
};

/// Kinds that come from follows, for "new for you".
const FOLLOWED_KINDS: &str = "('new_case_study', 'new_artefact', 'new_meetup', 'new_comment')";

fn n_columns() -> String {
    COLUMNS.split(", ").map(|c| format!("n.{c}")).collect::<Vec<_>>().join(", ")
}

/// The member's inbox entries, newest first: each the newest notification of its group
/// (of its unread part, with `unread_only`).
pub async fn list(db: &Db, member_id: i64, unread_only: bool, keyset: &Keyset<i64>) -> AppResult<Vec<Notification>> {
    let order = keyset.direction(ListOrder::Descending);
    let unread = if unread_only { " AND n.read_at IS NULL" } else { "" };
    let unread_m = if unread_only { " AND m.read_at IS NULL" } else { "" };
    let sql = format!(
        "SELECT {}, (SELECT COUNT(*) FROM notifications m WHERE m.member_id = n.member_id AND m.group_id = n.group_id{unread_m}) \
         AS group_size FROM notifications n \
         WHERE n.member_id = $1 AND n.channel = 'inbox'{unread} AND {} \
         AND NOT EXISTS (SELECT 1 FROM notifications m WHERE m.member_id = n.member_id AND m.group_id = n.group_id \
         AND m.id > n.id{unread_m}) ORDER BY n.id {order} LIMIT $4",
        n_columns(),
        keyset.conditions("n.id", ListOrder::Descending, "$2", "$3")
    );
    let rows = sqlx::query(&sql)
        .bind(member_id)
        .bind(keyset.after)
        .bind(keyset.before)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(Notification::from_row).collect::<sqlx::Result<_>>()?)
}

/// How many unread entries (groups) the member has.
pub async fn unread_count(db: &Db, member_id: i64) -> AppResult<i64> {
    let row = sqlx::query(
        "SELECT COUNT(DISTINCT group_id) FROM notifications WHERE member_id = $1 AND read_at IS NULL AND channel = 'inbox'",
    )
    .bind(member_id)
    .fetch_one(&db.pool)
    .await?;
    Ok(row.try_get(0)?)
}

/// What to mark as read.
pub enum Marking<'a> {
    /// These entries, each with its whole group.
    Entries(&'a [i64]),
    /// Everything up to and including this notification.
    UpTo(i64),
    All,
}

/// Marks the member's notifications read (never anyone else's) and returns the unread
/// count left.
pub async fn mark_read(db: &Db, member_id: i64, marking: Marking<'_>) -> AppResult<i64> {
    let now = db::now_millis();
    let base = "UPDATE notifications SET read_at = $1 WHERE member_id = $2 AND read_at IS NULL AND channel = 'inbox'";
    match marking {
        Marking::Entries([]) => {}
        Marking::Entries(ids) => {
            let sql = format!(
                "{base} AND group_id IN (SELECT group_id FROM notifications WHERE member_id = $2 AND id IN ({}))",
                db::placeholders(3, ids.len())
            );
            let mut query = sqlx::query(&sql).bind(now).bind(member_id);
            for id in ids {
                query = query.bind(*id);
            }
            query.execute(&db.pool).await?;
        }
        Marking::UpTo(id) => {
            sqlx::query(&format!("{base} AND id <= $3")).bind(now).bind(member_id).bind(id).execute(&db.pool).await?;
        }
        Marking::All => {
            sqlx::query(base).bind(now).bind(member_id).execute(&db.pool).await?;
        }
    }
    unread_count(db, member_id).await
}

/// The member's inbox notifications after `after_id`, oldest first: what a live client
/// missed, each with the size of its group as it stands now.
pub async fn after(db: &Db, member_id: i64, after_id: i64, limit: i64) -> AppResult<Vec<Notification>> {
    let sql = format!(
        "SELECT {}, (SELECT COUNT(*) FROM notifications m WHERE m.member_id = n.member_id AND m.group_id = n.group_id) \
         AS group_size FROM notifications n \
         WHERE n.member_id = $1 AND n.channel = 'inbox' AND n.id > $2 ORDER BY n.id LIMIT $3",
        n_columns()
    );
    let rows = sqlx::query(&sql).bind(member_id).bind(after_id).bind(limit).fetch_all(&db.pool).await?;
    Ok(rows.iter().map(Notification::from_row).collect::<sqlx::Result<_>>()?)
}

/// The newest inbox notification's id, where a live client without a cursor starts.
pub async fn latest_id(db: &Db, member_id: i64) -> AppResult<i64> {
    let row = sqlx::query("SELECT MAX(id) FROM notifications WHERE member_id = $1 AND channel = 'inbox'")
        .bind(member_id)
        .fetch_one(&db.pool)
        .await?;
    Ok(row.try_get::<Option<i64>, _>(0)?.unwrap_or(0))
}

/// What is new in what the member follows since `since` (both inbox and digest), newest
/// first, ungrouped.
pub async fn new_for_you(db: &Db, member_id: i64, since: i64, keyset: &Keyset<i64>) -> AppResult<Vec<Notification>> {
    let order = keyset.direction(ListOrder::Descending);
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE member_id = $1 AND kind IN {FOLLOWED_KINDS} AND created_at > $2 \
         AND {} ORDER BY id {order} LIMIT $5",
        keyset.conditions("id", ListOrder::Descending, "$3", "$4")
    );
    let rows = sqlx::query(&sql)
        .bind(member_id)
        .bind(since)
        .bind(keyset.after)
        .bind(keyset.before)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(Notification::from_row).collect::<sqlx::Result<_>>()?)
}

/// When the member last looked at what is new for them (never: `None`).
pub async fn followed_seen_at(db: &Db, member_id: i64) -> AppResult<Option<i64>> {
    let row = sqlx::query("SELECT followed_seen_at FROM members WHERE id = $1")
        .bind(member_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(row) => row.try_get(0)?,
        None => None,
    })
}

pub async fn mark_followed_seen(db: &Db, member_id: i64) -> AppResult<i64> {
    let now = db::now_millis();
    sqlx::query("UPDATE members SET followed_seen_at = $1 WHERE id = $2")
        .bind(now)
        .bind(member_id)
        .execute(&db.pool)
        .await?;
    Ok(now)
}

/// A member's choices about notifications: which kinds they hear of at all, how each
/// reaches them beyond the site, and when their digest goes out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub disabled_kinds: Vec<NotificationKind>,
    pub auto_watch: bool,
    /// Every kind with its effective choice (the member's, or the default), in
    /// [`NotificationKind::ALL`] order.
    pub mail_choices: Vec<(NotificationKind, MailChoice)>,
    pub digest_frequency: DigestFrequency,
    /// ISO weekday (Monday = 1) of a weekly digest.
    pub digest_weekday: i64,
    /// The hour (0..23) in the member's own time zone.
    pub digest_hour: i64,
    /// When the next digest is due; `None` when none will be.
    pub next_digest_at: Option<i64>,
}

// Stored in `members.digest_frequency`.
crate::text_enum! {
    /// How often a member's digest goes out.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, async_graphql::Enum)]
    pub enum DigestFrequency {
        Daily => "daily",
        Weekly => "weekly",
        Never => "never",
    }
}

pub async fn settings(db: &Db, member_id: i64) -> AppResult<Settings> {
    let rows = sqlx::query("SELECT kind FROM notification_kinds_off WHERE member_id = $1")
        .bind(member_id)
        .fetch_all(&db.pool)
        .await?;
    let off: HashSet<String> = rows.iter().map(|r| r.try_get(0)).collect::<sqlx::Result<_>>()?;
    let member = sqlx::query(
        "SELECT auto_watch_off_at, digest_frequency, digest_weekday, digest_hour, next_digest_at FROM members WHERE id = $1",
    )
    .bind(member_id)
    .fetch_one(&db.pool)
    .await?;
    let chosen = choices(db, member_id).await?;
    Ok(Settings {
        disabled_kinds: NotificationKind::ALL.into_iter().filter(|k| off.contains(k.as_str())).collect(),
        auto_watch: member.try_get::<Option<i64>, _>("auto_watch_off_at")?.is_none(),
        mail_choices: NotificationKind::ALL.into_iter().map(|k| (k, chosen[&k])).collect(),
        digest_frequency: member.try_get("digest_frequency")?,
        digest_weekday: member.try_get("digest_weekday")?,
        digest_hour: member.try_get("digest_hour")?,
        next_digest_at: member.try_get("next_digest_at")?,
    })
}

/// What to change in a member's settings; `None` leaves a setting as it was.
#[derive(Clone, Debug, Default)]
pub struct SettingsChange {
    /// Replaces the kinds switched off.
    pub disabled_kinds: Option<Vec<NotificationKind>>,
    pub auto_watch: Option<bool>,
    /// Sets the choice of each kind given (others keep theirs).
    pub mail_choices: Option<Vec<(NotificationKind, MailChoice)>>,
    pub digest_frequency: Option<DigestFrequency>,
    pub digest_weekday: Option<i64>,
    pub digest_hour: Option<i64>,
}

/// At most this many kinds in one change (each kind once).
pub const KINDS_LIMIT: usize = NotificationKind::ALL.len();

impl SettingsChange {
    /// The first problem with the change, as (input field, message): checked before
    /// anything is written, so a refused change changes nothing.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.disabled_kinds.as_ref().is_some_and(|k| k.len() > KINDS_LIMIT * 2) {
            return Some(("disabledKinds", "List each kind at most once.".into()));
        }
        if let Some(choices) = &self.mail_choices {
            if choices.len() > KINDS_LIMIT {
                return Some(("mailChoices", format!("Give at most {KINDS_LIMIT} choices, one for each kind.")));
            }
            let kinds: HashSet<NotificationKind> = choices.iter().map(|(k, _)| *k).collect();
            if kinds.len() != choices.len() {
                return Some(("mailChoices", "Give at most one choice for each kind.".into()));
            }
        }
        if self.digest_weekday.is_some_and(|d| !(1..=7).contains(&d)) {
            return Some(("digestWeekday", "Choose a day from Monday (1) to Sunday (7).".into()));
        }
        if self.digest_hour.is_some_and(|h| !(0..=23).contains(&h)) {
            return Some(("digestHour", "Choose an hour from 0 to 23.".into()));
        }
        None
    }

    fn touches_digest(&self) -> bool {
        self.digest_frequency.is_some() || self.digest_weekday.is_some() || self.digest_hour.is_some()
    }
}

/// Changes what is given, in one transaction, and works out the next digest again when
/// its schedule changed. The change must have no [`SettingsChange::problem`].
pub async fn update_settings(db: &Db, member_id: i64, change: &SettingsChange, now: i64) -> AppResult<Settings> {
    if let Some((_, message)) = change.problem() {
        return Err(crate::error::AppError::bad_input(message));
    }
    let mut tx = db.begin_write().await?;
    if let Some(kinds) = &change.disabled_kinds {
        sqlx::query("DELETE FROM notification_kinds_off WHERE member_id = $1")
            .bind(member_id)
            .execute(&mut *tx)
            .await?;
        let unique: HashSet<NotificationKind> = kinds.iter().copied().collect();
        for kind in unique {
            sqlx::query("INSERT INTO notification_kinds_off (member_id, kind) VALUES ($1, $2)")
                .bind(member_id)
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await?;
        }
    }
    if let Some(on) = change.auto_watch {
        sqlx::query(
            "UPDATE members SET auto_watch_off_at = CASE WHEN $1 = 1 THEN NULL ELSE COALESCE(auto_watch_off_at, $2) END WHERE id = $3",
        )
        .bind(i64::from(on))
        .bind(now)
        .bind(member_id)
        .execute(&mut *tx)
        .await?;
    }
    for (kind, choice) in change.mail_choices.iter().flatten() {
        set_choice(&mut tx, member_id, *kind, *choice).await?;
    }
    if change.touches_digest() {
        sqlx::query(
            "UPDATE members SET digest_frequency = COALESCE($1, digest_frequency), \
             digest_weekday = COALESCE($2, digest_weekday), digest_hour = COALESCE($3, digest_hour) WHERE id = $4",
        )
        .bind(change.digest_frequency.map(DigestFrequency::as_str))
        .bind(change.digest_weekday)
        .bind(change.digest_hour)
        .bind(member_id)
        .execute(&mut *tx)
        .await?;
        crate::mail::digest::reschedule(&mut tx, member_id, now).await?;
    }
    tx.commit().await?;
    settings(db, member_id).await
}

/// Records the member's choice for a kind. A row is kept even when it equals the default,
/// so a later change of defaults does not override what the member chose.
pub async fn set_choice(tx: &mut Tx, member_id: i64, kind: NotificationKind, choice: MailChoice) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO notification_mail_choices (member_id, kind, choice) VALUES ($1, $2, $3) \
         ON CONFLICT (member_id, kind) DO UPDATE SET choice = $3",
    )
    .bind(member_id)
    .bind(kind.as_str())
    .bind(choice.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One of the member's own notifications by id (anyone else's is not found).
pub async fn own(db: &Db, member_id: i64, id: i64) -> AppResult<Option<Notification>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM notifications WHERE id = $1 AND member_id = $2"))
        .bind(id)
        .bind(member_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(row) => Some(Notification::from_row(&row)?),
        None => None,
    })
}

// Stored in `notification_mail_choices.choice`.
crate::text_enum! {
    /// How a member hears of one kind of notification beyond the site.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, async_graphql::Enum)]
    pub enum MailChoice {
        /// By mail at once (after a short delay, and only if still unread on the site).
        Email => "email",
        /// In the member's digest.
        Digest => "digest",
        /// On the site only.
        Site => "site",
    }
}

/// The choice a member has made for a kind until they change it: the one place the
/// defaults live (the notification mail sweep and the digest both ask here). Things about
/// the member come at once; what comes from follows waits for the digest.
pub fn default_choice(kind: NotificationKind) -> MailChoice {
    match kind {
        NotificationKind::Mentioned
        | NotificationKind::Replied
        | NotificationKind::CommentedOnYours
        | NotificationKind::InterestRegistered
        | NotificationKind::WaitlistPromoted
        | NotificationKind::MeetupChanged
        | NotificationKind::MeetupCancelled
        | NotificationKind::MeetupReminder
        | NotificationKind::RsvpRemoved
        | NotificationKind::MeetupMessage
        | NotificationKind::JoinRequested
        | NotificationKind::JoinDecided
        | NotificationKind::CoauthorInvited
        | NotificationKind::ContentModerated => MailChoice::Email,
        // What became of a report matters to the reporter, but not enough for a mail of
        // its own.
        NotificationKind::ReportDecided => MailChoice::Digest,
        NotificationKind::ArtefactReused
        | NotificationKind::NewCaseStudy
        | NotificationKind::NewArtefact
        | NotificationKind::NewMeetup
        | NotificationKind::NewComment => MailChoice::Digest,
    }
}

/// The member's effective choice for every kind (their own, or the default).
pub async fn choices(db: &Db, member_id: i64) -> AppResult<HashMap<NotificationKind, MailChoice>> {
    let rows = sqlx::query("SELECT kind, choice FROM notification_mail_choices WHERE member_id = $1")
        .bind(member_id)
        .fetch_all(&db.pool)
        .await?;
    let mut chosen: HashMap<NotificationKind, MailChoice> =
        NotificationKind::ALL.into_iter().map(|k| (k, default_choice(k))).collect();
    for row in &rows {
        let kind: String = row.try_get(0)?;
        // The choices are fixed by a CHECK constraint, so one we cannot read is a fault.
        let choice: MailChoice = row.try_get(1)?;
        // Kinds are not (see `notifications.kind`): one this build does not know (a newer
        // instance wrote it) keeps nothing here.
        if let Ok(kind) = NotificationKind::parse(&kind) {
            chosen.insert(kind, choice);
        }
    }
    Ok(chosen)
}
