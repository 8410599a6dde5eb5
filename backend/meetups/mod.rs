//! Meetups: groups that meet, their events, RSVPs with a fair waitlist, and agendas.
//!
//! - this module: groups (organisers and members) and their SQL;
//! - [`events`]: events with local times in an IANA zone (and the same instants in UTC),
//!   venues, online links for those going, capacity, cancelling, and the outbox events
//!   reminders and change notices will come from;
//! - [`rsvps`]: going, not going, the waitlist, and promotion when a seat frees up, safe
//!   however many members answer at once; and what organisers do with the people at a
//!   meetup (taking someone off, recording who came, writing to those going);
//! - [`recurrence`]: the rules of recurring series ("second Thursday of each month at
//!   16:00 Europe/London") and the occurrences they give, wall-clock time kept across
//!   daylight-saving changes;
//! - [`agenda`]: talks, discussions and breaks, and which case study each is about;
//! - [`series`]: recurring series, whose occurrences are real events made for a rolling
//!   window;
//! - [`calendar`]: the feeds (one event, a group, a member's own behind a secret URL);
//! - [`ical`]: iCalendar (RFC 5545) feeds with `VTIMEZONE`s built from the time zone
//!   database;
//! - [`graphql`]: the API.

pub mod agenda;
pub mod calendar;
pub mod events;
pub mod graphql;
pub mod ical;
pub mod recurrence;
pub mod rsvps;
pub mod series;

use std::collections::HashMap;

use sqlx::{any::AnyRow, Row};

use crate::{
    db::{self, Db},
    error::AppResult,
    markdown,
    notifications::follows,
};

pub const NAME_MAX: usize = 120;
pub const REGION_MAX: usize = 80;
pub const DESCRIPTION_MAX_BYTES: usize = 20 * 1024;

#[derive(Clone, Debug)]
pub struct Group {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description_source: String,
    pub description_html: String,
    pub region: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, slug, name, description_source, description_html, region, created_at";

impl Group {
    fn from_row(row: &AnyRow) -> sqlx::Result<Group> {
        Ok(Group {
            id: row.try_get("id")?,
            slug: row.try_get("slug")?,
            name: row.try_get("name")?,
            description_source: row.try_get("description_source")?,
            description_html: row.try_get("description_html")?,
            region: row.try_get("region")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum GroupRole {
        Organiser => "organiser",
        Member => "member",
    }
}

pub async fn by_ids(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Group>> {
    let rows = db::rows_by_ids(db, &format!("SELECT {COLUMNS} FROM meetup_groups WHERE id IN"), ids).await?;
    Ok(rows.iter().map(|r| Group::from_row(r).map(|g| (g.id, g))).collect::<sqlx::Result<_>>()?)
}

pub async fn by_slug(db: &Db, slug: &str) -> AppResult<Option<Group>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM meetup_groups WHERE slug = $1"))
        .bind(slug.trim().to_ascii_lowercase())
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| Group::from_row(&r)).transpose()?)
}

/// Groups by name, then id (served by `meetup_groups_name`).
pub async fn list(db: &Db, keyset: &db::Keyset<(String, i64)>) -> AppResult<Vec<Group>> {
    let rows = db::page_by_name(db, &format!("SELECT {COLUMNS} FROM meetup_groups WHERE 1 = 1"), keyset).await?;
    Ok(rows.iter().map(Group::from_row).collect::<sqlx::Result<_>>()?)
}

/// The member's role in the group, if they belong.
pub async fn role(db: &Db, group_id: i64, member_id: i64) -> AppResult<Option<GroupRole>> {
    Ok(sqlx::query_scalar("SELECT role FROM meetup_group_members WHERE group_id = $1 AND member_id = $2")
        .bind(group_id)
        .bind(member_id)
        .fetch_optional(&db.pool)
        .await?)
}

/// The groups `member_id` belongs to, at most 50 (their profile's list; served by
/// `meetup_group_members_member`).
pub async fn groups_of(db: &Db, member_id: i64) -> AppResult<Vec<i64>> {
    Ok(sqlx::query_scalar("SELECT group_id FROM meetup_group_members WHERE member_id = $1 ORDER BY group_id LIMIT 50")
        .bind(member_id)
        .fetch_all(&db.pool)
        .await?)
}

/// A group's people with `role`, who joined first first, at most `limit` (the group
/// page's lists; served by `meetup_group_members_list`).
pub async fn people(db: &Db, group_id: i64, role: GroupRole, limit: i64) -> AppResult<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT member_id FROM meetup_group_members WHERE group_id = $1 AND role = $2 \
         ORDER BY joined_at, member_id LIMIT $3",
    )
    .bind(group_id)
    .bind(role.as_str())
    .bind(limit.clamp(1, 500))
    .fetch_all(&db.pool)
    .await?)
}

/// Creates a group with `creator` as its first organiser, under a slug made from the
/// name (numbered when taken).
pub async fn create(
    db: &Db,
    creator: i64,
    name: &str,
    description: &str,
    region: &str,
    topic_ids: &[i64],
) -> AppResult<Group> {
    let rendered = markdown::render_linked(db, description).await?;
    let base = match crate::slug::slugify(name, 55) {
        slug if !slug.is_empty() => slug,
        _ => "group".to_string(),
    };
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    let taken: Vec<String> = sqlx::query_scalar("SELECT slug FROM meetup_groups WHERE slug = $1 OR slug LIKE $2")
        .bind(&base)
        .bind(format!("{base}-%"))
        .fetch_all(&mut *tx)
        .await?;
    let sql = format!(
        "INSERT INTO meetup_groups (slug, name, description_source, description_html, region, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (slug) DO NOTHING RETURNING {COLUMNS}"
    );
    // As for organisations: a slug taken at the same moment makes the insert do nothing,
    // and the next number is tried without aborting the transaction.
    let candidates =
        (1..).map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") }).filter(|c| !taken.contains(c));
    let mut group = None;
    for candidate in candidates.take(20) {
        let row = sqlx::query(&sql)
            .bind(&candidate)
            .bind(name.trim())
            .bind(description.trim())
            .bind(&rendered.html)
            .bind(region.trim())
            .bind(creator)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            group = Some(Group::from_row(&row)?);
            break;
        }
    }
    let group = group.ok_or_else(|| anyhow::anyhow!("no free slug for {base:?}"))?;
    sqlx::query(
        "INSERT INTO meetup_group_members (group_id, member_id, role, joined_at) VALUES ($1, $2, 'organiser', $3)",
    )
    .bind(group.id)
    .bind(creator)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    follows::watch_automatically(&mut tx, creator, follows::Target { type_name: "MeetupGroup", id: group.id }).await?;
    for topic_id in topic_ids {
        sqlx::query("INSERT INTO meetup_group_topics (group_id, topic_id) VALUES ($1, $2)")
            .bind(group.id)
            .bind(topic_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(group)
}

/// Joins a group as a member, or (for an organiser adding a co-organiser) sets the role.
/// Joining twice changes nothing.
/// Joining watches the group (see `notifications::follows`), so members hear of new dates.
pub async fn set_role(db: &Db, group_id: i64, member_id: i64, role: GroupRole) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO meetup_group_members (group_id, member_id, role, joined_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (group_id, member_id) DO UPDATE SET role = CASE WHEN $3 = 'organiser' THEN 'organiser' \
         ELSE meetup_group_members.role END",
    )
    .bind(group_id)
    .bind(member_id)
    .bind(role.as_str())
    .bind(db::now_millis())
    .execute(&mut *tx)
    .await?;
    follows::watch_automatically(&mut tx, member_id, follows::Target { type_name: "MeetupGroup", id: group_id })
        .await?;
    tx.commit().await?;
    Ok(())
}

pub enum Left {
    Done,
    NotAMember,
    /// The last organiser cannot leave: the group would have nobody to run it.
    LastOrganiser,
}

/// Leaves a group. One transaction, so two organisers leaving at once cannot leave none.
pub async fn leave(db: &Db, group_id: i64, member_id: i64) -> AppResult<Left> {
    let mut tx = db.begin_write().await?;
    let organisers: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT member_id FROM meetup_group_members WHERE group_id = $1 AND role = 'organiser'{}",
        db.dialect.for_update()
    ))
    .bind(group_id)
    .fetch_all(&mut *tx)
    .await?;
    if organisers == [member_id] {
        return Ok(Left::LastOrganiser);
    }
    let deleted = sqlx::query("DELETE FROM meetup_group_members WHERE group_id = $1 AND member_id = $2")
        .bind(group_id)
        .bind(member_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(if deleted > 0 { Left::Done } else { Left::NotAMember })
}

/// Topic ids of each group.
pub async fn topics_of(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Vec<i64>>> {
    let select = "SELECT group_id, topic_id FROM meetup_group_topics WHERE group_id IN";
    Ok(db::id_lists(db, select, ids, "ORDER BY group_id, topic_id").await?)
}

/// How many members each group has.
pub async fn member_counts(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, i64>> {
    let select = "SELECT group_id, COUNT(*) FROM meetup_group_members WHERE group_id IN";
    Ok(db::counts(db, select, ids, "group_id").await?)
}
