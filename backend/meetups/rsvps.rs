//! RSVPs: going, not going, and a waitlist when an event is full.
//!
//! Every answer runs in one write transaction that first locks the event's row (`FOR
//! UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already admits one writer), then reads
//! its `going_count` and capacity, so however many members answer at once the seats are
//! counted one at a time and never exceeded. When a seat frees up (someone stops going,
//! or the capacity goes up) the first on the waitlist is promoted in the same transaction,
//! exactly once, with a `meetup.rsvp_promoted` event so they can be told. The key on
//! (event, member) allows one RSVP per member and event.
//!
//! Organisers' tools for the people at a meetup live here too, under the same lock:
//! whoever schedules a meetup may be going from the start ([`scheduler_going`]); an
//! organiser can take someone off ([`remove`]: the seat goes to the waitlist at once and
//! their "going" is refused until [`readmit`]), record who came ([`record_attendance`]),
//! and write to those going ([`send_message`], through the outbox).

use sqlx::Row;

use super::events::{self, EventStatus};
use crate::{
    db::{self, Db, ListOrder, Tx},
    error::AppResult,
    outbox,
};

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum RsvpStatus {
        Going => "going",
        Waitlisted => "waitlisted",
        NotGoing => "not_going",
    }
}

/// Why an answer was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoSuchEvent,
    Cancelled,
    Over,
    /// An organiser took the member off this meetup; only an organiser can let them
    /// answer "going" again ([`readmit`]).
    Removed,
}

/// Answers for a member: going (a seat, or the waitlist when full) or not going.
pub async fn answer(db: &Db, event_id: i64, member_id: i64, going: bool) -> AppResult<Result<RsvpStatus, Refusal>> {
    let mut tx = db.begin_write().await?;
    let Some(event) = events::lock(&mut tx, db.dialect, event_id).await? else { return Ok(Err(Refusal::NoSuchEvent)) };
    // Read the clock only once the event is locked, so times follow the order in which
    // answers are taken.
    let now = db::now_millis();
    if event.status == EventStatus::Cancelled {
        return Ok(Err(Refusal::Cancelled));
    }
    if event.ends_at <= now {
        return Ok(Err(Refusal::Over));
    }
    let current = status_in(&mut tx, event_id, member_id).await?;
    if going && removed(&mut tx, event_id, member_id).await? {
        return Ok(Err(Refusal::Removed));
    }
    let next = match (going, current) {
        (true, Some(RsvpStatus::Going)) => RsvpStatus::Going,
        (true, Some(RsvpStatus::Waitlisted)) => RsvpStatus::Waitlisted,
        (true, _) if event.capacity.is_none_or(|c| event.going_count < c) => RsvpStatus::Going,
        (true, _) => RsvpStatus::Waitlisted,
        (false, _) => RsvpStatus::NotGoing,
    };
    if Some(next) != current {
        // The waitlist's order is first come, first served: each newcomer's key is after
        // everyone already waiting, even within one millisecond.
        let waitlisted_at = match next {
            RsvpStatus::Waitlisted => {
                let last: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(waitlisted_at) FROM meetup_rsvps WHERE event_id = $1 AND status = 'waitlisted'",
                )
                .bind(event_id)
                .fetch_one(&mut *tx)
                .await?;
                Some(last.map_or(now, |last| now.max(last + 1)))
            }
            _ => None,
        };
        sqlx::query(
            "INSERT INTO meetup_rsvps (event_id, member_id, status, waitlisted_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (event_id, member_id) \
             DO UPDATE SET status = $3, waitlisted_at = $4, updated_at = $5",
        )
        .bind(event_id)
        .bind(member_id)
        .bind(next.as_str())
        .bind(waitlisted_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let change = i64::from(next == RsvpStatus::Going) - i64::from(current == Some(RsvpStatus::Going));
        if change != 0 {
            sqlx::query("UPDATE meetup_events SET going_count = going_count + $1 WHERE id = $2")
                .bind(change)
                .bind(event_id)
                .execute(&mut *tx)
                .await?;
        }
        if current == Some(RsvpStatus::Going) {
            promote_waiting(&mut tx, event_id).await?;
        }
    }
    tx.commit().await?;
    Ok(Ok(next))
}

async fn removed(tx: &mut Tx, event_id: i64, member_id: i64) -> AppResult<bool> {
    let at: Option<Option<i64>> =
        sqlx::query_scalar("SELECT removed_at FROM meetup_rsvps WHERE event_id = $1 AND member_id = $2")
            .bind(event_id)
            .bind(member_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(at.flatten().is_some())
}

/// Makes whoever scheduled an event going to it, inside the transaction that inserted it
/// (so nobody else can have answered yet, and a capacity is at least one seat).
pub async fn scheduler_going(tx: &mut Tx, event_id: i64, member_id: i64) -> AppResult<()> {
    let now = db::now_millis();
    sqlx::query(
        "INSERT INTO meetup_rsvps (event_id, member_id, status, waitlisted_at, created_at, updated_at) \
         VALUES ($1, $2, 'going', NULL, $3, $3)",
    )
    .bind(event_id)
    .bind(member_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE meetup_events SET going_count = going_count + 1 WHERE id = $1")
        .bind(event_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Why an organiser could not take someone off a meetup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRemoved {
    NoSuchEvent,
    /// It has ended: there is no seat left to free.
    Over,
    /// They are neither going nor waiting.
    NotAnswered,
}

/// Takes a member off a meetup they are going to or waiting for: their answer becomes
/// "not going", marked removed (so they cannot simply answer "going" again), a seat they
/// held goes to the first on the waitlist, and they are told (`meetup.rsvp_removed`).
/// One transaction, under the event's lock, like every answer. Returns the status they had.
pub async fn remove(
    db: &Db,
    event_id: i64,
    member_id: i64,
    organiser_id: i64,
) -> AppResult<Result<RsvpStatus, NotRemoved>> {
    let mut tx = db.begin_write().await?;
    let Some(event) = events::lock(&mut tx, db.dialect, event_id).await? else {
        return Ok(Err(NotRemoved::NoSuchEvent));
    };
    let now = db::now_millis();
    if event.ends_at <= now {
        return Ok(Err(NotRemoved::Over));
    }
    let current = status_in(&mut tx, event_id, member_id).await?;
    let Some(previous @ (RsvpStatus::Going | RsvpStatus::Waitlisted)) = current else {
        return Ok(Err(NotRemoved::NotAnswered));
    };
    sqlx::query(
        "UPDATE meetup_rsvps SET status = 'not_going', waitlisted_at = NULL, removed_at = $1, removed_by = $2, \
         attended_at = NULL, updated_at = $1 WHERE event_id = $3 AND member_id = $4",
    )
    .bind(now)
    .bind(organiser_id)
    .bind(event_id)
    .bind(member_id)
    .execute(&mut *tx)
    .await?;
    let removed = outbox::MeetupRsvpRemoved { member_id, waitlisted: previous == RsvpStatus::Waitlisted };
    outbox::record(&mut tx, ("MeetupEvent", event_id), Some(organiser_id), removed).await?;
    if previous == RsvpStatus::Going {
        sqlx::query("UPDATE meetup_events SET going_count = going_count - 1 WHERE id = $1")
            .bind(event_id)
            .execute(&mut *tx)
            .await?;
        promote_waiting(&mut tx, event_id).await?;
    }
    tx.commit().await?;
    Ok(Ok(previous))
}

/// Lets a removed member answer again (they are not put back: they answer for
/// themselves, and take a seat or a place on the waitlist like anyone). False when they
/// were not removed.
pub async fn readmit(db: &Db, event_id: i64, member_id: i64) -> AppResult<bool> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE meetup_rsvps SET removed_at = NULL, removed_by = NULL \
         WHERE event_id = $1 AND member_id = $2 AND removed_at IS NOT NULL",
    )
    .bind(event_id)
    .bind(member_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(done > 0)
}

/// Members an organiser took off a meetup, most recent first (at most 1,000), with when.
pub async fn removed_from(db: &Db, event_id: i64) -> AppResult<Vec<(i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT member_id, removed_at FROM meetup_rsvps WHERE event_id = $1 AND removed_at IS NOT NULL \
         ORDER BY removed_at DESC, member_id LIMIT 1000",
    )
    .bind(event_id)
    .fetch_all(&db.pool)
    .await?)
}

/// Why attendance was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRecorded {
    NoSuchEvent,
    /// It has not started: nobody has come yet.
    NotStarted,
    /// It was cancelled: nobody came to it.
    Cancelled,
    /// These members are not going, so cannot be marked as having come.
    NotGoing(Vec<i64>),
}

/// Records who of those going came: `attended` came, everyone else going did not (each
/// marked with when the list was saved). One transaction, so a list saved twice at once
/// ends as one of them, never a mix.
pub async fn record_attendance(db: &Db, event_id: i64, attended: &[i64]) -> AppResult<Result<(), NotRecorded>> {
    let mut tx = db.begin_write().await?;
    let Some(event) = events::lock(&mut tx, db.dialect, event_id).await? else {
        return Ok(Err(NotRecorded::NoSuchEvent));
    };
    let now = db::now_millis();
    if event.status == EventStatus::Cancelled {
        return Ok(Err(NotRecorded::Cancelled));
    }
    if event.starts_at > now {
        return Ok(Err(NotRecorded::NotStarted));
    }
    let going: Vec<i64> =
        sqlx::query_scalar("SELECT member_id FROM meetup_rsvps WHERE event_id = $1 AND status = 'going'")
            .bind(event_id)
            .fetch_all(&mut *tx)
            .await?;
    let going: std::collections::HashSet<i64> = going.into_iter().collect();
    let strangers: Vec<i64> = attended.iter().copied().filter(|id| !going.contains(id)).collect();
    if !strangers.is_empty() {
        return Ok(Err(NotRecorded::NotGoing(strangers)));
    }
    // Who came is the list as saved last: cleared, then set for each one ticked.
    sqlx::query("UPDATE meetup_rsvps SET attended_at = NULL WHERE event_id = $1 AND status = 'going'")
        .bind(event_id)
        .execute(&mut *tx)
        .await?;
    // In chunks, so a full hall of 10,000 takes 20 statements, not 10,000.
    for chunk in attended.chunks(500) {
        let places: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "UPDATE meetup_rsvps SET attended_at = $1 WHERE event_id = $2 AND member_id IN ({})",
            places.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(now).bind(event_id);
        for member_id in chunk {
            query = query.bind(*member_id);
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(Ok(()))
}

/// Of those going, who an organiser recorded as having come.
pub async fn attended(db: &Db, event_id: i64) -> AppResult<std::collections::HashSet<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT member_id FROM meetup_rsvps WHERE event_id = $1 AND status = 'going' AND attended_at IS NOT NULL",
    )
    .bind(event_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(ids.into_iter().collect())
}

/// The longest message organisers may send to those going, in characters (as long as a
/// cancellation's message).
pub const MESSAGE_MAX: usize = 1_000;

/// How many members a message from `sender` would reach: those going (and, with
/// `include_waitlist`, those waiting), the sender aside.
pub async fn message_recipients(db: &Db, event_id: i64, sender: i64, include_waitlist: bool) -> AppResult<i64> {
    let statuses = if include_waitlist { "('going', 'waitlisted')" } else { "('going')" };
    Ok(sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM meetup_rsvps WHERE event_id = $1 AND member_id <> $2 AND status IN {statuses}"
    ))
    .bind(event_id)
    .bind(sender)
    .fetch_one(&db.pool)
    .await?)
}

/// Sends an organiser's message (checked by the caller, at most [`MESSAGE_MAX`]) to
/// those going, through the outbox (`meetup.message_sent`): the dispatcher tells each
/// one, and mail follows their choices, as for a cancellation.
pub async fn send_message(db: &Db, event_id: i64, sender: i64, message: &str, include_waitlist: bool) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    let sent = outbox::MeetupMessageSent { message: message.to_string(), include_waitlist };
    outbox::record(&mut tx, ("MeetupEvent", event_id), Some(sender), sent).await?;
    tx.commit().await?;
    Ok(())
}

/// Whether an organiser took the member off the meetup (and has not let them back).
pub async fn is_removed(db: &Db, event_id: i64, member_id: i64) -> AppResult<bool> {
    let at: Option<Option<i64>> =
        sqlx::query_scalar("SELECT removed_at FROM meetup_rsvps WHERE event_id = $1 AND member_id = $2")
            .bind(event_id)
            .bind(member_id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(at.flatten().is_some())
}

async fn status_in(tx: &mut Tx, event_id: i64, member_id: i64) -> AppResult<Option<RsvpStatus>> {
    Ok(sqlx::query_scalar("SELECT status FROM meetup_rsvps WHERE event_id = $1 AND member_id = $2")
        .bind(event_id)
        .bind(member_id)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Fills free seats from the waitlist, first come first served, inside the caller's
/// transaction (which holds the event's row). Returns the members promoted.
pub async fn promote_waiting(tx: &mut Tx, event_id: i64) -> AppResult<Vec<i64>> {
    let mut promoted = Vec::new();
    loop {
        let row = sqlx::query("SELECT capacity, going_count, status FROM meetup_events WHERE id = $1")
            .bind(event_id)
            .fetch_one(&mut **tx)
            .await?;
        let capacity: Option<i64> = row.try_get("capacity")?;
        let going: i64 = row.try_get("going_count")?;
        let scheduled = row.try_get::<EventStatus, _>("status")? == EventStatus::Scheduled;
        if !scheduled || capacity.is_some_and(|c| going >= c) {
            break;
        }
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT member_id FROM meetup_rsvps WHERE event_id = $1 AND status = 'waitlisted' \
             ORDER BY waitlisted_at, member_id LIMIT 1",
        )
        .bind(event_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(member_id) = next else { break };
        let now = db::now_millis();
        sqlx::query(
            "UPDATE meetup_rsvps SET status = 'going', waitlisted_at = NULL, updated_at = $1 \
             WHERE event_id = $2 AND member_id = $3",
        )
        .bind(now)
        .bind(event_id)
        .bind(member_id)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE meetup_events SET going_count = going_count + 1 WHERE id = $1")
            .bind(event_id)
            .execute(&mut **tx)
            .await?;
        outbox::record(tx, ("MeetupEvent", event_id), None, outbox::MeetupRsvpPromoted { member_id }).await?;
        promoted.push(member_id);
    }
    Ok(promoted)
}

/// A member's answer and, when waitlisted, their place in the queue (1 is next).
pub async fn of_member(db: &Db, event_id: i64, member_id: i64) -> AppResult<Option<(RsvpStatus, Option<i64>)>> {
    let row = sqlx::query("SELECT status, waitlisted_at FROM meetup_rsvps WHERE event_id = $1 AND member_id = $2")
        .bind(event_id)
        .bind(member_id)
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let status: RsvpStatus = row.try_get("status")?;
    let position = match (status, row.try_get::<Option<i64>, _>("waitlisted_at")?) {
        (RsvpStatus::Waitlisted, Some(at)) => Some(
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM meetup_rsvps WHERE event_id = $1 AND status = 'waitlisted' \
                 AND (waitlisted_at < $2 OR (waitlisted_at = $2 AND member_id <= $3))",
            )
            .bind(event_id)
            .bind(at)
            .bind(member_id)
            .fetch_one(&db.pool)
            .await?,
        ),
        _ => None,
    };
    Ok(Some((status, position)))
}

/// Members with a given answer, in the order they answered (at most 1,000: the largest
/// capacity is 10,000, but an attendee list that long is for the CSV export).
pub async fn members_with(db: &Db, event_id: i64, status: RsvpStatus, limit: i64) -> AppResult<Vec<(i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT member_id, updated_at FROM meetup_rsvps WHERE event_id = $1 AND status = $2 \
         ORDER BY waitlisted_at, updated_at, member_id LIMIT $3",
    )
    .bind(event_id)
    .bind(status.as_str())
    .bind(limit.clamp(1, 10_000))
    .fetch_all(&db.pool)
    .await?)
}

/// The events a member is going to or waiting for, from `from` on, soonest first, keyset
/// on (starts_at, id). A member's answers are few, so they are read through
/// `meetup_rsvps_member` and sorted by start.
pub async fn upcoming_for(db: &Db, member_id: i64, from: i64, keyset: &db::Keyset<(i64, i64)>) -> AppResult<Vec<i64>> {
    let order = keyset.direction(ListOrder::Ascending);
    let (after_at, after_id) = keyset.after.unzip();
    let (before_at, before_id) = keyset.before.unzip();
    let sql = format!(
        "SELECT e.id FROM meetup_rsvps r JOIN meetup_events e ON e.id = r.event_id \
         WHERE r.member_id = $1 AND r.status IN ('going', 'waitlisted') AND e.ends_at >= $2 AND {} \
         ORDER BY e.starts_at {order}, e.id {order} LIMIT $7",
        keyset.conditions("(e.starts_at, e.id)", ListOrder::Ascending, "($3, $4)", "($5, $6)")
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(member_id)
        .bind(from)
        .bind(after_at)
        .bind(after_id)
        .bind(before_at)
        .bind(before_id)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?)
}
