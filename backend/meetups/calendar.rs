//! Calendar feeds: one event, a group's events, and a member's personal feed of the events
//! they are going to, reached through a secret URL they can reset. Cancelled events stay
//! in the feeds (as `STATUS:CANCELLED`) so calendars remove them rather than keep a stale
//! copy; each occurrence keeps one `UID` (scoped to this installation, not its host
//! name), and its `SEQUENCE` follows the event's. Each event links back to its page
//! (`URL`), names its group as `ORGANIZER`, and carries its agenda in `DESCRIPTION`.

use std::collections::HashMap;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jiff::{civil, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{
    agenda::{self, AgendaItem},
    events::{self, Event, EventStatus},
    ical, Group,
};
use crate::{
    accounts,
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

/// This installation's id, made by migration 0012 (see `AppState::instance_id`).
pub async fn instance_id(db: &Db) -> AppResult<String> {
    Ok(sqlx::query_scalar("SELECT instance_id FROM instance WHERE id = 1").fetch_one(&db.pool).await?)
}

/// Where a feed's events point back to and what their `UID`s are scoped to.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    /// The public URL without a trailing slash, e.g. `https://kettle.example.org`.
    pub base_url: &'a str,
    pub instance_id: &'a str,
}

/// An occurrence's `UID`. It names the installation, not its host name, so calendars
/// that subscribed keep recognising their events when the site moves to a new address
/// (a changed `UID` makes them duplicate every event).
pub fn event_uid(instance_id: &str, event_id: i64) -> String {
    format!("meetup-event-{event_id}@{instance_id}.kettle")
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Gives the member a new secret feed token (the old one stops working) and returns it.
///
/// The token itself is kept beside its hash so that the member can see their address
/// again: unlike a password or an API token it grants nothing but reading the list of
/// meetups they are going to, and they can replace it at any time. The hash stays the
/// lookup key (unique and indexed), so addresses made before the token was kept still
/// open their feed.
pub async fn reset_token(db: &Db, member_id: i64) -> AppResult<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    sqlx::query("UPDATE members SET calendar_token_hash = $1, calendar_token = $2 WHERE id = $3")
        .bind(token_hash(&token))
        .bind(&token)
        .bind(member_id)
        .execute(&db.pool)
        .await?;
    Ok(token)
}

/// What a member's personal calendar address is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// No address yet.
    None,
    /// An address made before Kettle kept the token: it still works, but cannot be
    /// shown; making a new one replaces it.
    Hidden,
    Token(String),
}

/// The member's current calendar token, if it can be shown.
pub async fn current_token(db: &Db, member_id: i64) -> AppResult<Feed> {
    let row: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT calendar_token, calendar_token_hash FROM members WHERE id = $1")
            .bind(member_id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(match row {
        Some((Some(token), Some(_))) => Feed::Token(token),
        Some((None, Some(_))) => Feed::Hidden,
        _ => Feed::None,
    })
}

/// The personal feed's address for `token`.
pub fn personal_url(base_url: &str, token: &str) -> String {
    format!("{}/calendars/personal/{token}.ics", base_url.trim_end_matches('/'))
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

/// The plain-text agenda for an event's `DESCRIPTION`: one line per item, in order, each
/// with its local start time (counted on from the event's start by the durations before
/// it), title, speaker and length. Empty without items.
pub fn agenda_text(start: civil::DateTime, items: &[AgendaItem], speakers: &HashMap<i64, String>) -> String {
    let mut out = String::new();
    let mut at = start;
    for item in items {
        let mut line = format!("{:02}:{:02} {}", at.hour(), at.minute(), item.title.trim());
        let speaker = match item.speaker_member_id.and_then(|id| speakers.get(&id)) {
            Some(name) => name.as_str(),
            None => item.speaker_name.trim(),
        };
        if !speaker.is_empty() {
            line.push_str(&format!(" ({speaker})"));
        }
        if item.duration_minutes > 0 {
            line.push_str(&format!(", {} min", item.duration_minutes));
        }
        out.push_str(if out.is_empty() { "Agenda:\n" } else { "\n" });
        out.push_str(&line);
        // Saturates rather than fails: a bad duration must not break the feed.
        at = at.checked_add(jiff::SignedDuration::from_mins(item.duration_minutes.max(0))).unwrap_or(at);
    }
    out
}

/// What [`render`] needs besides the events: their groups, agendas and speakers' names.
struct Context {
    groups: HashMap<i64, Group>,
    agendas: HashMap<i64, Vec<AgendaItem>>,
    speakers: HashMap<i64, String>,
}

async fn context(db: &Db, rows: &[Event]) -> AppResult<Context> {
    let event_ids: Vec<i64> = rows.iter().map(|e| e.id).collect();
    let mut group_ids: Vec<i64> = rows.iter().map(|e| e.group_id).collect();
    group_ids.sort_unstable();
    group_ids.dedup();
    let groups = super::by_ids(db, &group_ids).await?;
    let agendas = agenda::of_events(db, &event_ids).await?;
    let mut speaker_ids: Vec<i64> = agendas.values().flatten().filter_map(|i| i.speaker_member_id).collect();
    speaker_ids.sort_unstable();
    speaker_ids.dedup();
    let speakers = accounts::members_by_ids(db, &speaker_ids)
        .await?
        .into_iter()
        .map(|(id, member)| (id, member.display_name))
        .collect();
    Ok(Context { groups, agendas, speakers })
}

fn render(name: &str, site: Site, rows: &[Event], context: &Context, with_online_links: bool) -> String {
    let base = site.base_url.trim_end_matches('/');
    struct Texts {
        uid: String,
        description: String,
        location: Option<String>,
        url: String,
        organizer: Option<(String, String)>,
    }
    let texts: Vec<Texts> = rows
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
            let mut parts = vec![markdown::plain_text(&e.description_source).trim().to_string()];
            if let Some(url) = &online {
                parts.push(format!("Join online: {url}"));
            }
            let start = e.local_start.parse::<civil::DateTime>().unwrap_or_default();
            let items = context.agendas.get(&e.id).map(Vec::as_slice).unwrap_or_default();
            parts.push(agenda_text(start, items, &context.speakers));
            let description = parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join("\n\n");
            let organizer =
                context.groups.get(&e.group_id).map(|g| (g.name.clone(), format!("{base}/meetups/groups/{}", g.slug)));
            Texts {
                uid: event_uid(site.instance_id, e.id),
                description,
                location,
                url: format!("{base}/meetups/events/{}", e.id),
                organizer,
            }
        })
        .collect();
    let parse = |text: &str| text.parse::<civil::DateTime>().unwrap_or_default();
    let stamp = |ms: i64| Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let entries: Vec<ical::Event> = rows
        .iter()
        .zip(&texts)
        .map(|(e, t)| ical::Event {
            uid: &t.uid,
            sequence: e.sequence,
            cancelled: e.status == EventStatus::Cancelled,
            summary: &e.title,
            description: &t.description,
            location: t.location.as_deref(),
            url: Some(&t.url),
            organizer: t.organizer.as_ref().map(|(name, address)| ical::Organizer { name, address }),
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
pub async fn event_feed(db: &Db, site: Site<'_>, event: &Event) -> AppResult<String> {
    let rows = std::slice::from_ref(event);
    Ok(render(&event.title, site, rows, &context(db, rows).await?, false))
}

/// A group's events from 90 days ago on, cancelled ones included.
pub async fn group_feed(db: &Db, site: Site<'_>, group: &Group) -> AppResult<String> {
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
    Ok(render(&group.name, site, &rows, &context(db, &rows).await?, false))
}

/// The events a member is going to (and those cancelled after they said so), from 90
/// days ago on, with the online links they may see.
pub async fn member_feed(db: &Db, site: Site<'_>, member_id: i64) -> AppResult<String> {
    let rows = sqlx::query(&format!(
        "SELECT e.id FROM meetup_rsvps r JOIN meetup_events e ON e.id = r.event_id \
         WHERE r.member_id = $1 AND r.status = 'going' AND e.starts_at >= $2 AND e.hidden_at IS NULL ORDER BY e.starts_at, e.id LIMIT {FEED_MAX}"
    ))
    .bind(member_id)
    .bind(db::now_millis() - HISTORY_MS)
    .fetch_all(&db.pool)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.try_get(0)).collect::<sqlx::Result<_>>()?;
    let found = events::by_ids(db, &ids).await?;
    let rows: Vec<Event> = ids.iter().filter_map(|id| found.get(id).cloned()).collect();
    Ok(render("My meetups (Kettle)", site, &rows, &context(db, &rows).await?, true))
}
