//! Events: a title, a Markdown description, a start and end as the organiser's wall-clock
//! time in an IANA zone (and the same instants in UTC, which lists and reminders use), a
//! venue and/or an online link, an optional capacity, and a status.
//!
//! Changes others will want to hear of go to the outbox in the same transaction:
//! `meetup.scheduled`, `meetup.changed` (when the time, date or place moves, which also
//! bumps the iCalendar `SEQUENCE`), `meetup.cancelled` (with the organiser's message kept
//! on the event), `meetup.reinstated`, and `meetup.reminder_due` 24 hours before the
//! *current* start (recorded once; moving the event re-arms it).

use std::collections::HashMap;

use jiff::{civil, tz::TimeZone, Timestamp};
use sqlx::FromRow;

use super::rsvps;
use crate::{
    db::{self, Db, ListOrder, Tx},
    error::{AppError, AppResult},
    markdown, outbox,
};

pub const TITLE_MAX: usize = 150;
pub const DESCRIPTION_MAX_BYTES: usize = 20 * 1024;
pub const VENUE_TEXT_MAX: usize = 500;
pub const CAPACITY_MAX: i64 = 10_000;
/// The longest an event may last.
pub const DURATION_MAX_HOURS: i64 = 24 * 7;
/// How far ahead of today an event may start (and a series run until), in years.
pub const AHEAD_MAX_YEARS: i16 = 5;
/// No event starts before this year: older dates are typing mistakes, not history.
pub const EARLIEST_YEAR: i16 = 2000;
/// The longest message an organiser may send with a cancellation, in characters.
pub const CANCEL_MESSAGE_MAX: usize = 1_000;
/// How long before the start a reminder is due.
pub const REMINDER_AHEAD_MS: i64 = 24 * 60 * 60 * 1000;

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum EventStatus {
        Scheduled => "scheduled",
        Cancelled => "cancelled",
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub group_id: i64,
    pub series_id: Option<i64>,
    pub title: String,
    pub description_source: String,
    pub description_html: String,
    pub time_zone: String,
    pub local_start: String,
    pub local_end: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub venue_name: String,
    pub venue_address: String,
    pub venue_directions: String,
    pub online_url: Option<String>,
    pub capacity: Option<i64>,
    pub going_count: i64,
    pub status: EventStatus,
    pub sequence: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The organiser who scheduled it: who a flag on it is about.
    pub created_by: i64,
    /// Hidden by the moderators (see `moderation`): whoever scheduled it still sees it.
    pub hidden_at: Option<i64>,
    pub hidden_reason: Option<String>,
    /// When it was cancelled, and what its organiser told those going and waiting then
    /// (`None` when they wrote nothing); both cleared when it is reinstated.
    pub cancelled_at: Option<i64>,
    pub cancel_message: Option<String>,
}

const COLUMNS: &str = "id, group_id, series_id, title, description_source, description_html, time_zone, local_start, \
     local_end, starts_at, ends_at, venue_name, venue_address, venue_directions, online_url, capacity, going_count, status, \
     sequence, created_at, updated_at, created_by, hidden_at, hidden_reason, cancelled_at, cancel_message";

/// The instant a wall-clock time in `zone` names. A time in a spring-forward gap (01:30
/// on the morning the clocks go forward) means the moment just after the gap, and a time
/// that happens twice as the clocks go back means the first: what people mean by them.
pub fn instant(local: civil::DateTime, zone: &TimeZone) -> AppResult<Timestamp> {
    Ok(zone.to_ambiguous_zoned(local).compatible().map_err(anyhow::Error::from)?.timestamp())
}

/// Where an event's wall-clock times are out of bounds: which field, and why. `now` is
/// the current wall-clock time in the event's zone. Checked before any date arithmetic,
/// so that nothing that follows (instants in UTC, reminders, a series' occurrences) can
/// step outside the dates jiff represents.
pub fn check_span(
    start: civil::DateTime,
    end: civil::DateTime,
    now: civil::DateTime,
) -> Option<(&'static str, String)> {
    let earliest = civil::date(EARLIEST_YEAR, 1, 1).at(0, 0, 0, 0);
    let latest = latest_from(now);
    if start < earliest {
        return Some(("start", format!("The start must be in {EARLIEST_YEAR} or later.")));
    }
    if start > latest {
        return Some(("start", format!("The start can be at most {AHEAD_MAX_YEARS} years from now.")));
    }
    if end <= start {
        return Some(("end", "The end must be after the start.".to_string()));
    }
    if start.duration_until(end) > jiff::SignedDuration::from_hours(DURATION_MAX_HOURS) {
        return Some(("end", "An event can last at most a week.".to_string()));
    }
    None
}

/// The latest wall-clock time an event may start at, or a series run until, seen
/// from `now`.
pub fn latest_from(now: civil::DateTime) -> civil::DateTime {
    now.checked_add(jiff::Span::new().years(AHEAD_MAX_YEARS)).unwrap_or(civil::DateTime::MAX)
}

/// Validated fields for scheduling or changing an event.
#[derive(Clone, Debug)]
pub struct Fields {
    pub title: String,
    pub description: String,
    pub time_zone: String,
    pub local_start: civil::DateTime,
    pub local_end: civil::DateTime,
    pub venue_name: String,
    pub venue_address: String,
    pub venue_directions: String,
    pub online_url: Option<String>,
    pub capacity: Option<i64>,
}

impl Fields {
    /// The start and end as UTC milliseconds.
    pub fn instants(&self) -> AppResult<(i64, i64)> {
        let zone = TimeZone::get(&self.time_zone).map_err(|_| AppError::bad_input("Unknown time zone."))?;
        Ok((instant(self.local_start, &zone)?.as_millisecond(), instant(self.local_end, &zone)?.as_millisecond()))
    }
}

pub async fn by_ids(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Event>> {
    let rows = db::rows_by_ids(db, &format!("SELECT {COLUMNS} FROM meetup_events WHERE id IN"), ids).await?;
    Ok(rows.iter().map(|r| Event::from_row(r).map(|e| (e.id, e))).collect::<sqlx::Result<_>>()?)
}

/// A group's events from `from` on (UTC milliseconds), soonest first, keyset on
/// (starts_at, id) (served by `meetup_events_group`).
pub async fn of_group(db: &Db, group_id: i64, from: i64, keyset: &db::Keyset<(i64, i64)>) -> AppResult<Vec<Event>> {
    let order = keyset.direction(ListOrder::Ascending);
    let (after_at, after_id) = keyset.after.unzip();
    let (before_at, before_id) = keyset.before.unzip();
    let sql = format!(
        "SELECT {COLUMNS} FROM meetup_events WHERE group_id = $1 AND starts_at >= $2 AND hidden_at IS NULL AND {} \
         ORDER BY starts_at {order}, id {order} LIMIT $7",
        keyset.conditions("(starts_at, id)", ListOrder::Ascending, "($3, $4)", "($5, $6)")
    );
    let rows = sqlx::query(&sql)
        .bind(group_id)
        .bind(from)
        .bind(after_at)
        .bind(after_id)
        .bind(before_at)
        .bind(before_id)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(Event::from_row).collect::<sqlx::Result<_>>()?)
}

/// Every group's events from `from` on, soonest first, keyset on (starts_at, id), for
/// the upcoming-meetups feed (served by `meetup_events_upcoming`).
pub async fn upcoming(db: &Db, from: i64, keyset: &db::Keyset<(i64, i64)>) -> AppResult<Vec<Event>> {
    let order = keyset.direction(ListOrder::Ascending);
    let (after_at, after_id) = keyset.after.unzip();
    let (before_at, before_id) = keyset.before.unzip();
    let sql = format!(
        "SELECT {COLUMNS} FROM meetup_events WHERE starts_at >= $1 AND hidden_at IS NULL AND {} \
         ORDER BY starts_at {order}, id {order} LIMIT $6",
        keyset.conditions("(starts_at, id)", ListOrder::Ascending, "($2, $3)", "($4, $5)")
    );
    let rows = sqlx::query(&sql)
        .bind(from)
        .bind(after_at)
        .bind(after_id)
        .bind(before_at)
        .bind(before_id)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(Event::from_row).collect::<sqlx::Result<_>>()?)
}

async fn set_topics(tx: &mut Tx, event_id: i64, topic_ids: &[i64]) -> AppResult<()> {
    sqlx::query("DELETE FROM meetup_event_topics WHERE event_id = $1").bind(event_id).execute(&mut **tx).await?;
    for topic_id in topic_ids {
        sqlx::query("INSERT INTO meetup_event_topics (event_id, topic_id) VALUES ($1, $2)")
            .bind(event_id)
            .bind(topic_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Schedules a one-off event; with `going`, whoever schedules it is going to it (taking
/// a seat) from the same transaction.
pub async fn schedule(
    db: &Db,
    group_id: i64,
    member_id: i64,
    fields: &Fields,
    topic_ids: &[i64],
    going: bool,
) -> AppResult<Event> {
    let rendered = markdown::render_linked(db, &fields.description).await?;
    let (starts_at, ends_at) = fields.instants()?;
    let mut tx = db.begin_write().await?;
    let times = Times { local_start: fields.local_start, local_end: fields.local_end, starts_at, ends_at };
    let event = insert(&mut tx, group_id, member_id, fields, &rendered.html, times, None, topic_ids).await?;
    let event = if going { scheduler_going(&mut tx, event).await? } else { event };
    tx.commit().await?;
    Ok(event)
}

/// Schedules a copy of `source` starting at `local_start` (checked by the caller, see
/// [`check_span`]) in the source's zone and lasting as long: the same title,
/// description, place, seats and topics, and, with `agenda`, the same agenda. A copy
/// stands alone: it belongs to no series, is scheduled whatever the source's status, and
/// nobody is going yet but, with `going`, the organiser who copies it (as for any meetup
/// they schedule). Followers hear of it as of any new meetup.
pub async fn copy(
    db: &Db,
    source: &Event,
    member_id: i64,
    local_start: civil::DateTime,
    agenda: bool,
    going: bool,
) -> AppResult<Event> {
    let length = span_of(source)?;
    let local_end = local_start.checked_add(length).map_err(anyhow::Error::from)?;
    let fields = Fields {
        title: source.title.clone(),
        description: source.description_source.clone(),
        time_zone: source.time_zone.clone(),
        local_start,
        local_end,
        venue_name: source.venue_name.clone(),
        venue_address: source.venue_address.clone(),
        venue_directions: source.venue_directions.clone(),
        online_url: source.online_url.clone(),
        capacity: source.capacity,
    };
    let (starts_at, ends_at) = fields.instants()?;
    let times = Times { local_start, local_end, starts_at, ends_at };
    let mut tx = db.begin_write().await?;
    let topic_ids: Vec<i64> = sqlx::query_scalar("SELECT topic_id FROM meetup_event_topics WHERE event_id = $1")
        .bind(source.id)
        .fetch_all(&mut *tx)
        .await?;
    // The description was rendered when it was written; the copy shows the same.
    let event =
        insert(&mut tx, source.group_id, member_id, &fields, &source.description_html, times, None, &topic_ids).await?;
    if agenda {
        super::agenda::copy_in(&mut tx, source.id, event.id, 0).await?;
    }
    let event = if going { scheduler_going(&mut tx, event).await? } else { event };
    tx.commit().await?;
    Ok(event)
}

/// Makes whoever scheduled `event` (just inserted in this transaction) going to it, and
/// returns it with the seat counted.
pub(super) async fn scheduler_going(tx: &mut Tx, mut event: Event) -> AppResult<Event> {
    rsvps::scheduler_going(tx, event.id, event.created_by).await?;
    event.going_count += 1;
    Ok(event)
}

/// How long an event lasts, in its own wall-clock time.
pub fn span_of(event: &Event) -> AppResult<jiff::SignedDuration> {
    let start: civil::DateTime = event.local_start.parse().map_err(anyhow::Error::from)?;
    let end: civil::DateTime = event.local_end.parse().map_err(anyhow::Error::from)?;
    Ok(start.duration_until(end))
}

/// When an event happens: wall-clock times in its zone, and the same instants in UTC.
#[derive(Clone, Copy, Debug)]
pub struct Times {
    pub local_start: civil::DateTime,
    pub local_end: civil::DateTime,
    pub starts_at: i64,
    pub ends_at: i64,
}

/// Inserts an event (for a series, its occurrence `(series id, index)`) and announces it;
/// `None` when that occurrence exists already.
#[allow(clippy::too_many_arguments)]
pub(super) async fn insert(
    tx: &mut Tx,
    group_id: i64,
    member_id: i64,
    fields: &Fields,
    html: &str,
    times: Times,
    occurrence: Option<(i64, i64)>,
    topic_ids: &[i64],
) -> AppResult<Event> {
    let now = db::now_millis();
    let (series_id, series_index) = occurrence.unzip();
    let row = sqlx::query(&format!(
        "INSERT INTO meetup_events (group_id, series_id, series_index, title, description_source, description_html, time_zone, \
         local_start, local_end, starts_at, ends_at, venue_name, venue_address, venue_directions, online_url, capacity, \
         going_count, status, sequence, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 0, 'scheduled', 0, $17, $18, $18) \
         RETURNING {COLUMNS}"
    ))
    .bind(group_id)
    .bind(series_id)
    .bind(series_index)
    .bind(fields.title.trim())
    .bind(fields.description.trim())
    .bind(html)
    .bind(&fields.time_zone)
    .bind(times.local_start.to_string())
    .bind(times.local_end.to_string())
    .bind(times.starts_at)
    .bind(times.ends_at)
    .bind(fields.venue_name.trim())
    .bind(fields.venue_address.trim())
    .bind(fields.venue_directions.trim())
    .bind(fields.online_url.as_deref())
    .bind(fields.capacity)
    .bind(member_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    let event = Event::from_row(&row)?;
    set_topics(tx, event.id, topic_ids).await?;
    let scheduled = outbox::MeetupScheduled { group_id, starts_at: times.starts_at, series_id };
    outbox::record(tx, ("MeetupEvent", event.id), Some(member_id), scheduled).await?;
    Ok(event)
}

/// Locks an event's row for the rest of the transaction (PostgreSQL; SQLite's write
/// transaction already excludes other writers) and reads it.
pub async fn lock(tx: &mut Tx, dialect: db::Dialect, id: i64) -> AppResult<Option<Event>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM meetup_events WHERE id = $1{}", dialect.for_update()))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| Event::from_row(&r)).transpose()?)
}

/// Changes an event. When the time, date or place moves, `SEQUENCE` goes up, the change
/// is announced, and the reminder is re-armed for the new start; a raised capacity
/// promotes from the waitlist in the same transaction.
pub async fn update(db: &Db, id: i64, member_id: i64, fields: &Fields, topic_ids: &[i64]) -> AppResult<Event> {
    let rendered = markdown::render_linked(db, &fields.description).await?;
    let (starts_at, ends_at) = fields.instants()?;
    let times = Times { local_start: fields.local_start, local_end: fields.local_end, starts_at, ends_at };
    let mut tx = db.begin_write().await?;
    update_in(&mut tx, db.dialect, id, member_id, fields, &rendered.html, times, topic_ids).await?;
    tx.commit().await?;
    by_ids(db, &[id]).await?.remove(&id).ok_or(AppError::NotFound("That event"))
}

/// [`update`] inside the caller's transaction, with the HTML and times worked out.
#[allow(clippy::too_many_arguments)]
pub(super) async fn update_in(
    tx: &mut Tx,
    dialect: db::Dialect,
    id: i64,
    member_id: i64,
    fields: &Fields,
    html: &str,
    times: Times,
    topic_ids: &[i64],
) -> AppResult<()> {
    let current = lock(tx, dialect, id).await?.ok_or(AppError::NotFound("That event"))?;
    let moved = current.starts_at != times.starts_at
        || current.ends_at != times.ends_at
        || current.time_zone != fields.time_zone
        || current.venue_name != fields.venue_name.trim()
        || current.venue_address != fields.venue_address.trim()
        || current.online_url.as_deref() != fields.online_url.as_deref();
    sqlx::query(
        "UPDATE meetup_events SET title = $1, description_source = $2, description_html = $3, time_zone = $4, local_start = $5, \
         local_end = $6, starts_at = $7, ends_at = $8, venue_name = $9, venue_address = $10, venue_directions = $11, \
         online_url = $12, capacity = $13, sequence = sequence + $14, \
         reminder_sent_at = CASE WHEN $14 = 1 THEN NULL ELSE reminder_sent_at END, updated_at = $15 WHERE id = $16",
    )
    .bind(fields.title.trim())
    .bind(fields.description.trim())
    .bind(html)
    .bind(&fields.time_zone)
    .bind(times.local_start.to_string())
    .bind(times.local_end.to_string())
    .bind(times.starts_at)
    .bind(times.ends_at)
    .bind(fields.venue_name.trim())
    .bind(fields.venue_address.trim())
    .bind(fields.venue_directions.trim())
    .bind(fields.online_url.as_deref())
    .bind(fields.capacity)
    .bind(i64::from(moved))
    .bind(db::now_millis())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    set_topics(tx, id, topic_ids).await?;
    if moved {
        let changed = outbox::MeetupChanged { starts_at: times.starts_at, previous_starts_at: current.starts_at };
        outbox::record(tx, ("MeetupEvent", id), Some(member_id), changed).await?;
    }
    rsvps::promote_waiting(tx, id).await?;
    Ok(())
}

/// Cancels an event: it stays (feeds show it cancelled), with `SEQUENCE` up, and
/// `message` (checked by the caller, at most [`CANCEL_MESSAGE_MAX`]) for those going
/// and waiting, who are told through the outbox. `None` when it was already cancelled.
pub async fn cancel(db: &Db, id: i64, member_id: i64, message: Option<&str>) -> AppResult<Option<Event>> {
    let mut tx = db.begin_write().await?;
    let Some(event) = cancel_in(&mut tx, id, member_id, message, None).await? else { return Ok(None) };
    tx.commit().await?;
    Ok(Some(event))
}

/// [`cancel`] inside the caller's transaction; `series_id` when it goes with others of
/// its series, so their notices can be told apart from a one-off's.
pub(super) async fn cancel_in(
    tx: &mut Tx,
    id: i64,
    member_id: i64,
    message: Option<&str>,
    series_id: Option<i64>,
) -> AppResult<Option<Event>> {
    let row = sqlx::query(&format!(
        "UPDATE meetup_events SET status = 'cancelled', sequence = sequence + 1, updated_at = $1, cancelled_at = $1, \
         cancel_message = $2 WHERE id = $3 AND status = 'scheduled' RETURNING {COLUMNS}"
    ))
    .bind(db::now_millis())
    .bind(message)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    outbox::record(tx, ("MeetupEvent", id), Some(member_id), outbox::MeetupCancelled { series_id }).await?;
    Ok(Some(Event::from_row(&row)?))
}

/// A series' meetups from `from` on (UTC milliseconds), whatever their status, in time
/// order, read inside the caller's transaction.
pub(super) async fn of_series_from(tx: &mut Tx, series_id: i64, from: i64) -> AppResult<Vec<Event>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM meetup_events WHERE series_id = $1 AND starts_at >= $2 ORDER BY starts_at, id"
    ))
    .bind(series_id)
    .bind(from)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.iter().map(Event::from_row).collect::<sqlx::Result<_>>()?)
}

/// Every meetup of a series that is not hidden, in time order, at most `limit`.
pub async fn of_series(db: &Db, series_id: i64, limit: i64) -> AppResult<Vec<Event>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM meetup_events WHERE series_id = $1 AND hidden_at IS NULL ORDER BY starts_at, id LIMIT $2"
    ))
    .bind(series_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(Event::from_row).collect::<sqlx::Result<_>>()?)
}

/// Why a cancelled event cannot be put back on.
#[derive(Debug, PartialEq, Eq)]
pub enum NotReinstated {
    /// It is not cancelled.
    NotCancelled,
    /// It has already ended: there is nothing to go to.
    Over,
}

/// Puts a cancelled event back on, as it was (those going are going again, the waitlist
/// kept its order), with `SEQUENCE` up so calendars show it confirmed again; those going
/// and waiting are told through the outbox (`meetup.reinstated`).
pub async fn reinstate(db: &Db, id: i64, member_id: i64) -> AppResult<Result<Event, NotReinstated>> {
    let mut tx = db.begin_write().await?;
    let now = db::now_millis();
    let row = sqlx::query(&format!(
        "UPDATE meetup_events SET status = 'scheduled', sequence = sequence + 1, updated_at = $1, cancelled_at = NULL, \
         cancel_message = NULL WHERE id = $2 AND status = 'cancelled' AND ends_at > $1 RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        let status: Option<(EventStatus, i64)> =
            sqlx::query_as("SELECT status, ends_at FROM meetup_events WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        return Ok(Err(match status {
            Some((EventStatus::Cancelled, _)) => NotReinstated::Over,
            _ => NotReinstated::NotCancelled,
        }));
    };
    outbox::record(&mut tx, ("MeetupEvent", id), Some(member_id), outbox::MeetupReinstated {}).await?;
    tx.commit().await?;
    Ok(Ok(Event::from_row(&row)?))
}

/// Records a `meetup.reminder_due` event for every scheduled event starting within the
/// next 24 hours that has not had one, marking each so it never goes twice (the
/// `UPDATE … WHERE reminder_sent_at IS NULL` claims it, even with several instances).
pub async fn record_due_reminders(db: &Db, now: i64) -> AppResult<usize> {
    let mut tx = db.begin_write().await?;
    let due: Vec<(i64, i64)> = sqlx::query_as(
        "UPDATE meetup_events SET reminder_sent_at = $1 WHERE status = 'scheduled' AND reminder_sent_at IS NULL \
         AND starts_at > $1 AND starts_at <= $2 RETURNING id, starts_at",
    )
    .bind(now)
    .bind(now + REMINDER_AHEAD_MS)
    .fetch_all(&mut *tx)
    .await?;
    for (id, starts_at) in &due {
        outbox::record(&mut tx, ("MeetupEvent", *id), None, outbox::MeetupReminderDue { starts_at: *starts_at })
            .await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> civil::DateTime {
        text.parse().unwrap()
    }

    #[test]
    fn spans_are_bounded() {
        let now = at("2026-12-02T09:00");
        let ok = |start: &str, end: &str| check_span(at(start), at(end), now);
        assert_eq!(ok("2027-03-11T16:00", "2027-03-11T18:00"), None);
        assert_eq!(ok("2027-03-11T16:00", "2027-03-18T16:00"), None, "exactly a week");
        assert_eq!(ok("2000-01-01T00:00", "2000-01-01T01:00"), None);
        assert_eq!(ok("2031-12-02T09:00", "2031-12-02T10:00"), None, "exactly five years ahead");
        assert_eq!(ok("2027-03-11T16:00", "2027-03-18T16:01").unwrap().0, "end");
        assert_eq!(ok("2027-03-11T16:00", "2027-03-19T16:00").unwrap().0, "end");
        assert_eq!(ok("2027-03-11T16:00", "2027-03-11T16:00").unwrap().0, "end");
        assert_eq!(ok("2027-03-11T16:00", "2027-03-10T16:00").unwrap().0, "end");
        assert_eq!(ok("2031-12-02T09:01", "2031-12-02T10:00").unwrap().0, "start");
        assert_eq!(ok("2036-12-02T09:00", "2036-12-02T10:00").unwrap().0, "start");
        assert_eq!(ok("1999-12-31T23:59", "2000-01-01T01:00").unwrap().0, "start");
        assert_eq!(ok("9999-12-31T22:00", "9999-12-31T23:00").unwrap().0, "start");
        assert_eq!(ok("-009999-01-01T00:00", "9999-12-31T23:59").unwrap().0, "start");
        // Near the end of what jiff represents nothing overflows.
        assert_eq!(latest_from(civil::DateTime::MAX), civil::DateTime::MAX);
    }
}
