//! RSVPs: going, not going, and a waitlist when an event is full.
//!
//! Every answer runs in one write transaction that first locks the event's row (`FOR
//! UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already admits one writer), then reads
//! its `going_count` and capacity, so however many members answer at once the seats are
//! counted one at a time and never exceeded. When a seat frees up (someone stops going,
//! or the capacity goes up) the first on the waitlist is promoted in the same transaction,
//! exactly once, with a `meetup.rsvp_promoted` event so they can be told. The key on
//! (event, member) allows one RSVP per member and event.

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
