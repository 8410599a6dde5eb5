//! Calendar feeds: one event, a group's events, and a member's personal feed of the events
//! they are going to, reached through a secret URL they can reset. Cancelled events stay
//! in the feeds (as `STATUS:CANCELLED`) so calendars remove them rather than keep a stale
//! copy; each occurrence keeps one `UID`, and its `SEQUENCE` follows the event's.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jiff::{civil, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{
    events::{self, Event, EventStatus},
    ical, Group,
};
use crate::{
    db::{self, Db},
    error::AppResult,
    markdown,
};

/// How far back feeds reach: calendars keep what they have, so old events need not be
/// sent again and again.
const HISTORY_MS: i64 = 90 * 24 * 60 * 60 * 1000;
/// The most events one feed carries.
const FEED_MAX: i64 = 500;
const TOKEN_PREFIX: &str = "kcal_";

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Gives the member a new secret feed token (the old one stops working) and returns it;
/// only its hash is kept.
pub async fn reset_token(db: &Db, member_id: i64) -> AppResult<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    sqlx::query("UPDATE members SET calendar_token_hash = $1 WHERE id = $2")
        .bind(token_hash(&token))
        .bind(member_id)
        .execute(&db.pool)
        .await?;
    Ok(token)
}

/// The member whose feed this token opens.
pub async fn member_for_token(db: &Db, token: &str) -> AppResult<Option<i64>> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 100 {
        return Ok(None);
    }
    // A suspension in force closes the feed; a time-limited one that has ended does not.
    Ok(sqlx::query_scalar(
        "SELECT id FROM members WHERE calendar_token_hash = $1 \
         AND (suspended_at IS NULL OR suspended_until <= $2)",
    )
    .bind(token_hash(token))
    .bind(db::now_millis())
    .fetch_optional(&db.pool)
    .await?)
}

fn render(name: &str, host: &str, rows: &[Event], with_online_links: bool) -> String {
    let texts: Vec<(String, String, Option<String>)> = rows
        .iter()
        .map(|e| {
            let place = [e.venue_name.as_str(), e.venue_address.as_str()]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(", ");
            let online = if with_online_links { e.online_url.clone() } else { None };
            let location = match (place.is_empty(), &online) {
                (false, _) => Some(place),
                (true, Some(url)) => Some(url.clone()),
                (true, None) => None,
            };
            (format!("meetup-event-{}@{host}", e.id), markdown::plain_text(&e.description_source), location)
        })
        .collect();
    let parse = |text: &str| text.parse::<civil::DateTime>().unwrap_or_default();
    let stamp = |ms: i64| Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let entries: Vec<ical::Event> = rows
        .iter()
        .zip(&texts)
        .map(|(e, (uid, description, location))| ical::Event {
            uid,
            sequence: e.sequence,
            cancelled: e.status == EventStatus::Cancelled,
            summary: &e.title,
            description,
            location: location.as_deref(),
            url: if with_online_links { e.online_url.as_deref() } else { None },
            time_zone: &e.time_zone,
            local_start: parse(&e.local_start),
            local_end: parse(&e.local_end),
            created: stamp(e.created_at),
            last_modified: stamp(e.updated_at),
        })
        .collect();
    ical::render(&ical::Calendar { name, events: &entries })
}

/// The feed of one event.
pub fn event_feed(host: &str, event: &Event) -> String {
    render(&event.title, host, std::slice::from_ref(event), false)
}

/// A group's events from 90 days ago on, cancelled ones included.
pub async fn group_feed(db: &Db, host: &str, group: &Group) -> AppResult<String> {
    let rows = sqlx::query(&format!(
        "SELECT id FROM meetup_events WHERE group_id = $1 AND starts_at >= $2 AND hidden_at IS NULL ORDER BY starts_at, id LIMIT {FEED_MAX}"
    ))
    .bind(group.id)
    .bind(db::now_millis() - HISTORY_MS)
    .fetch_all(&db.pool)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.try_get(0)).collect::<sqlx::Result<_>>()?;
    let found = events::by_ids(db, &ids).await?;
    let rows: Vec<Event> = ids.iter().filter_map(|id| found.get(id).cloned()).collect();
    Ok(render(&group.name, host, &rows, false))
}

/// The events a member is going to (and those cancelled after they said so), from 90
/// days ago on, with the online links they may see.
pub async fn member_feed(db: &Db, host: &str, member_id: i64) -> AppResult<String> {
    let rows = sqlx::query(&format!(
        "SELECT e.id FROM meetup_rsvps r JOIN meetup_events e ON e.id = r.event_id \
         WHERE r.member_id = $1 AND r.status = 'going' AND e.starts_at >= $2 ORDER BY e.starts_at, e.id LIMIT {FEED_MAX}"
    ))
    .bind(member_id)
    .bind(db::now_millis() - HISTORY_MS)
    .fetch_all(&db.pool)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.try_get(0)).collect::<sqlx::Result<_>>()?;
    let found = events::by_ids(db, &ids).await?;
    let rows: Vec<Event> = ids.iter().filter_map(|id| found.get(id).cloned()).collect();
    Ok(render("My meetups (Kettle)", host, &rows, true))
}
