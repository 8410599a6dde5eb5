//! A meetup's agenda: an ordered list of talks, discussions and breaks, each with a
//! title, a speaker (a member, or a name), a duration, and optionally the case study it
//! is about, which then shows "talked about at …".

use std::collections::HashMap;

use sqlx::{FromRow, Row};

use crate::{
    db::{self, Db},
    error::AppResult,
};

pub const TITLE_MAX: usize = 150;
pub const SPEAKER_NAME_MAX: usize = 80;
pub const ITEMS_MAX: i64 = 50;
pub const DURATION_MAX_MINUTES: i64 = 8 * 60;

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum AgendaItemKind {
        Talk => "talk",
        Discussion => "discussion",
        Break => "break",
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AgendaItem {
    pub id: i64,
    pub event_id: i64,
    pub position: i64,
    pub kind: AgendaItemKind,
    pub title: String,
    pub speaker_member_id: Option<i64>,
    pub speaker_name: String,
    pub duration_minutes: i64,
    pub case_study_id: Option<i64>,
    /// When it starts (UTC milliseconds): the meetup's start and the lengths of the items
    /// before it. Set by [`of_events`], the one way agendas are shown.
    #[sqlx(skip)]
    pub starts_at: i64,
}

const COLUMNS: &str =
    "id, event_id, position, kind, title, speaker_member_id, speaker_name, duration_minutes, case_study_id";

/// Each event's agenda, in order, each item with its start (served by
/// `meetup_agenda_items_event`).
pub async fn of_events(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Vec<AgendaItem>>> {
    let mut map: HashMap<i64, Vec<AgendaItem>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    let select = format!(
        "SELECT {COLUMNS}, (SELECT starts_at FROM meetup_events e WHERE e.id = event_id) AS event_starts_at \
         FROM meetup_agenda_items WHERE event_id IN"
    );
    for row in db::rows_by_ids_grouped(db, &select, ids, "ORDER BY event_id, position, id").await? {
        let mut item = AgendaItem::from_row(&row)?;
        let list = map.entry(item.event_id).or_default();
        // Real elapsed minutes, as the meetup's own length is.
        item.starts_at = match list.last() {
            Some(before) => before.starts_at + before.duration_minutes * 60_000,
            None => row.try_get("event_starts_at")?,
        };
        list.push(item);
    }
    Ok(map)
}

/// The events where each case study was talked about, soonest first (at most 20 each).
pub async fn events_about(db: &Db, case_study_ids: &[i64]) -> AppResult<HashMap<i64, Vec<i64>>> {
    let mut map: HashMap<i64, Vec<i64>> = case_study_ids.iter().map(|id| (*id, Vec::new())).collect();
    let select = "SELECT DISTINCT a.case_study_id, a.event_id, e.starts_at FROM meetup_agenda_items a \
                  JOIN meetup_events e ON e.id = a.event_id WHERE e.status = 'scheduled' AND a.case_study_id IN";
    for row in db::rows_by_ids_grouped(db, select, case_study_ids, "ORDER BY 1, 3").await? {
        let list = map.entry(row.try_get(0)?).or_default();
        if list.len() < 20 {
            list.push(row.try_get(1)?);
        }
    }
    Ok(map)
}

pub struct NewItem<'a> {
    pub kind: AgendaItemKind,
    pub title: &'a str,
    pub speaker_member_id: Option<i64>,
    pub speaker_name: &'a str,
    pub duration_minutes: i64,
    pub case_study_id: Option<i64>,
}

/// Adds an item at the end; `None` when the agenda is full.
///
/// The count and the insert happen under one lock, or parallel requests would all see
/// room for one more: SQLite's write transaction excludes other writers, and on
/// PostgreSQL the event's row is locked first, so adds to one agenda queue behind it
/// (which also keeps their positions distinct).
pub async fn add(db: &Db, event_id: i64, item: &NewItem<'_>) -> AppResult<Option<AgendaItem>> {
    let mut tx = db.begin_write().await?;
    sqlx::query(&format!("SELECT id FROM meetup_events WHERE id = $1{}", db.dialect.for_update()))
        .bind(event_id)
        .fetch_optional(&mut *tx)
        .await?;
    let (count, last): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), MAX(position) FROM meetup_agenda_items WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(&mut *tx)
            .await?;
    if count >= ITEMS_MAX {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "INSERT INTO meetup_agenda_items (event_id, position, kind, title, speaker_member_id, speaker_name, duration_minutes, \
         case_study_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    ))
    .bind(event_id)
    .bind(last.unwrap_or(0) + 1)
    .bind(item.kind.as_str())
    .bind(item.title.trim())
    .bind(item.speaker_member_id)
    .bind(item.speaker_name.trim())
    .bind(item.duration_minutes)
    .bind(item.case_study_id)
    .fetch_one(&mut *tx)
    .await?;
    touch_event(&mut tx, event_id).await?;
    tx.commit().await?;
    Ok(Some(AgendaItem::from_row(&row)?))
}

/// Marks the event as changed: the agenda is part of its calendar `DESCRIPTION`, and
/// calendars go by the event's `LAST-MODIFIED`/`DTSTAMP` to notice that it changed.
async fn touch_event(tx: &mut db::Tx, event_id: i64) -> AppResult<()> {
    sqlx::query("UPDATE meetup_events SET updated_at = $1 WHERE id = $2")
        .bind(db::now_millis())
        .bind(event_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Changes an item in place (it keeps its position).
pub async fn update(db: &Db, item: &AgendaItem, fields: &NewItem<'_>) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "UPDATE meetup_agenda_items SET kind = $1, title = $2, speaker_member_id = $3, speaker_name = $4, \
         duration_minutes = $5, case_study_id = $6 WHERE id = $7",
    )
    .bind(fields.kind.as_str())
    .bind(fields.title.trim())
    .bind(fields.speaker_member_id)
    .bind(fields.speaker_name.trim())
    .bind(fields.duration_minutes)
    .bind(fields.case_study_id)
    .bind(item.id)
    .execute(&mut *tx)
    .await?;
    touch_event(&mut tx, item.event_id).await?;
    tx.commit().await?;
    Ok(())
}

/// Adds a copy of `from`'s agenda after `to`'s own items; `None`, adding nothing, when
/// the two together would have more than [`ITEMS_MAX`]. Returns how many were added.
/// Locked as [`add`] is.
pub async fn copy(db: &Db, from: i64, to: i64) -> AppResult<Option<i64>> {
    let mut tx = db.begin_write().await?;
    sqlx::query(&format!("SELECT id FROM meetup_events WHERE id = $1{}", db.dialect.for_update()))
        .bind(to)
        .fetch_optional(&mut *tx)
        .await?;
    let count = "SELECT COUNT(*), MAX(position) FROM meetup_agenda_items WHERE event_id = $1";
    let (has, last): (i64, Option<i64>) = sqlx::query_as(count).bind(to).fetch_one(&mut *tx).await?;
    let (adds, _): (i64, Option<i64>) = sqlx::query_as(count).bind(from).fetch_one(&mut *tx).await?;
    if has + adds > ITEMS_MAX {
        return Ok(None);
    }
    copy_in(&mut tx, from, to, last.unwrap_or(0)).await?;
    if adds > 0 {
        touch_event(&mut tx, to).await?;
    }
    tx.commit().await?;
    Ok(Some(adds))
}

/// Copies `from`'s items onto `to` in the caller's transaction, in order, after
/// position `after`.
pub(super) async fn copy_in(tx: &mut db::Tx, from: i64, to: i64, after: i64) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO meetup_agenda_items (event_id, position, kind, title, speaker_member_id, speaker_name, \
         duration_minutes, case_study_id) SELECT $1, $2 + position, kind, title, speaker_member_id, speaker_name, \
         duration_minutes, case_study_id FROM meetup_agenda_items WHERE event_id = $3",
    )
    .bind(to)
    .bind(after)
    .bind(from)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn by_id(db: &Db, id: i64) -> AppResult<Option<AgendaItem>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM meetup_agenda_items WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| AgendaItem::from_row(&r)).transpose()?)
}

pub async fn remove(db: &Db, id: i64) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    let event_id: Option<i64> = sqlx::query_scalar("DELETE FROM meetup_agenda_items WHERE id = $1 RETURNING event_id")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(event_id) = event_id {
        touch_event(&mut tx, event_id).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Moves an item one place up or down, swapping it with its neighbour.
pub async fn shift(db: &Db, item: &AgendaItem, up: bool) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    let neighbour: Option<(i64, i64)> = sqlx::query_as(if up {
        "SELECT id, position FROM meetup_agenda_items WHERE event_id = $1 AND position < $2 ORDER BY position DESC LIMIT 1"
    } else {
        "SELECT id, position FROM meetup_agenda_items WHERE event_id = $1 AND position > $2 ORDER BY position LIMIT 1"
    })
    .bind(item.event_id)
    .bind(item.position)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((other, position)) = neighbour {
        for (id, to) in [(other, item.position), (item.id, position)] {
            sqlx::query("UPDATE meetup_agenda_items SET position = $1 WHERE id = $2")
                .bind(to)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        touch_event(&mut tx, item.event_id).await?;
    }
    tx.commit().await?;
    Ok(())
}
