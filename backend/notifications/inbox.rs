//! A member's inbox: listing (grouped), counting, reading, replaying after a cursor, what
//! is new in what they follow, and their notification settings.
//!
//! Grouping is fixed when a notification is written (its `group_id`, see the migration):
//! an entry in a list is the newest notification of its group, standing for the group's
//! size. So a burst of comments on one thread is one entry, and whatever came before it
//! stays on the first page.

use std::collections::HashSet;

use sqlx::Row;

use super::{Notification, NotificationKind, COLUMNS};
use crate::{
    db::{self, Db, Keyset},
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
    let order = if keyset.forward { "DESC" } else { "ASC" };
    let unread = if unread_only { " AND n.read_at IS NULL" } else { "" };
    let unread_m = if unread_only { " AND m.read_at IS NULL" } else { "" };
    let sql = format!(
        "SELECT {}, (SELECT COUNT(*) FROM notifications m WHERE m.member_id = n.member_id AND m.group_id = n.group_id{unread_m}) \
         AS group_size FROM notifications n \
         WHERE n.member_id = $1 AND n.channel = 'inbox'{unread} AND ($2 IS NULL OR n.id < $2) AND ($3 IS NULL OR n.id > $3) \
         AND NOT EXISTS (SELECT 1 FROM notifications m WHERE m.member_id = n.member_id AND m.group_id = n.group_id \
         AND m.id > n.id{unread_m}) ORDER BY n.id {order} LIMIT $4",
        n_columns()
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
    let order = if keyset.forward { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE member_id = $1 AND kind IN {FOLLOWED_KINDS} AND created_at > $2 \
         AND ($3 IS NULL OR id < $3) AND ($4 IS NULL OR id > $4) ORDER BY id {order} LIMIT $5"
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

/// A member's choices about notifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub disabled_kinds: Vec<NotificationKind>,
    pub auto_watch: bool,
}

pub async fn settings(db: &Db, member_id: i64) -> AppResult<Settings> {
    let rows = sqlx::query("SELECT kind FROM notification_kinds_off WHERE member_id = $1")
        .bind(member_id)
        .fetch_all(&db.pool)
        .await?;
    let off: HashSet<String> = rows.iter().map(|r| r.try_get(0)).collect::<sqlx::Result<_>>()?;
    let auto =
        sqlx::query("SELECT auto_watch_off_at FROM members WHERE id = $1").bind(member_id).fetch_one(&db.pool).await?;
    Ok(Settings {
        disabled_kinds: NotificationKind::ALL.into_iter().filter(|k| off.contains(k.as_str())).collect(),
        auto_watch: auto.try_get::<Option<i64>, _>(0)?.is_none(),
    })
}

/// Changes what is given; leaves the rest as it was.
pub async fn update_settings(
    db: &Db,
    member_id: i64,
    disabled_kinds: Option<&[NotificationKind]>,
    auto_watch: Option<bool>,
) -> AppResult<Settings> {
    let mut tx = db.begin_write().await?;
    if let Some(kinds) = disabled_kinds {
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
    if let Some(on) = auto_watch {
        sqlx::query(
            "UPDATE members SET auto_watch_off_at = CASE WHEN $1 = 1 THEN NULL ELSE COALESCE(auto_watch_off_at, $2) END WHERE id = $3",
        )
        .bind(i64::from(on))
        .bind(db::now_millis())
        .bind(member_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    settings(db, member_id).await
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
