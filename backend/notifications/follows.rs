//! Follows: a member's interest in one thing, at a level.
//!
//! A member follows a topic, an organisation, a meetup group, a member, or one
//! conversation (a case study or an artefact). Writing or commenting on something watches
//! it automatically, in the same transaction, unless the member already follows it at any
//! level (so an explicit choice, muted included, is never overridden) or switched
//! automatic watching off.

use std::collections::HashMap;

use sqlx::{any::AnyRow, Row};

use crate::{
    db::{self, Db, Keyset, ListOrder, Tx},
    error::AppResult,
};

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum FollowLevel {
        /// Tell me at once.
        Watching => "watching",
        /// Put it in my digest.
        Digest => "digest",
        /// Never tell me, even where a broader follow would.
        Muted => "muted",
    }
}

/// What can be followed, by GraphQL type name and database id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub type_name: &'static str,
    pub id: i64,
}

/// The GraphQL types a member may follow.
pub const FOLLOWABLE: [&str; 6] = ["Topic", "Organisation", "MeetupGroup", "Member", "CaseStudy", "Artefact"];

impl Target {
    pub fn new(type_name: &str, id: i64) -> Option<Target> {
        FOLLOWABLE.iter().find(|t| **t == type_name).map(|t| Target { type_name: t, id })
    }

    /// Whether the thing exists and `member_id` may see it (a draft case study only its
    /// authors).
    pub async fn visible_to(&self, db: &Db, member_id: i64) -> AppResult<bool> {
        let sql = match self.type_name {
            "Topic" => "SELECT 1 FROM topics WHERE id = $1 AND merged_into IS NULL",
            "Organisation" => "SELECT 1 FROM organisations WHERE id = $1",
            "MeetupGroup" => "SELECT 1 FROM meetup_groups WHERE id = $1",
            "Member" => "SELECT 1 FROM members WHERE id = $1",
            "CaseStudy" => {
                "SELECT 1 FROM case_studies c WHERE id = $1 AND (status <> 'draft' OR EXISTS \
                 (SELECT 1 FROM case_study_authors a WHERE a.case_study_id = c.id AND a.member_id = $2))"
            }
            _ => "SELECT 1 FROM artefacts WHERE id = $1",
        };
        let mut query = sqlx::query(sql).bind(self.id);
        if self.type_name == "CaseStudy" {
            query = query.bind(member_id);
        }
        Ok(query.fetch_optional(&db.pool).await?.is_some())
    }
}

/// One of a member's follows.
#[derive(Clone, Debug)]
pub struct Follow {
    pub id: i64,
    pub target: Target,
    pub level: FollowLevel,
    pub created_at: i64,
}

const COLUMNS: &str = "id, target_type, target_id, level, created_at";

impl Follow {
    fn from_row(row: &AnyRow) -> sqlx::Result<Follow> {
        let type_name: String = row.try_get("target_type")?;
        let target = Target::new(&type_name, row.try_get("target_id")?)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown follow target {type_name:?}").into()))?;
        Ok(Follow {
            id: row.try_get("id")?,
            target,
            level: row.try_get("level")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// Follows `target` at `level`, or changes the level of an existing follow.
pub async fn set(db: &Db, member_id: i64, target: Target, level: FollowLevel) -> AppResult<Follow> {
    let now = db::now_millis();
    let row = sqlx::query(&format!(
        "INSERT INTO follows (member_id, target_type, target_id, level, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (member_id, target_type, target_id) DO UPDATE SET level = $4, updated_at = $5 RETURNING {COLUMNS}"
    ))
    .bind(member_id)
    .bind(target.type_name)
    .bind(target.id)
    .bind(level.as_str())
    .bind(now)
    .fetch_one(&db.pool)
    .await?;
    Ok(Follow::from_row(&row)?)
}

/// Stops following; false when there was no follow.
pub async fn remove(db: &Db, member_id: i64, target: Target) -> AppResult<bool> {
    let done = sqlx::query("DELETE FROM follows WHERE member_id = $1 AND target_type = $2 AND target_id = $3")
        .bind(member_id)
        .bind(target.type_name)
        .bind(target.id)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Watches what the member just wrote, commented on or joined, inside the caller's
/// transaction: unless they follow it already, or switched this off.
pub async fn watch_automatically(tx: &mut Tx, member_id: i64, target: Target) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO follows (member_id, target_type, target_id, level, created_at, updated_at) \
         SELECT id, $2, $3, 'watching', $4, $4 FROM members WHERE id = $1 AND auto_watch_off_at IS NULL \
         ON CONFLICT (member_id, target_type, target_id) DO NOTHING",
    )
    .bind(member_id)
    .bind(target.type_name)
    .bind(target.id)
    .bind(db::now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The member's follows, newest first.
pub async fn list(db: &Db, member_id: i64, keyset: &Keyset<i64>) -> AppResult<Vec<Follow>> {
    let order = keyset.direction(ListOrder::Descending);
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM follows WHERE member_id = $1 AND {} ORDER BY id {order} LIMIT $4",
        keyset.conditions("id", ListOrder::Descending, "$2", "$3")
    ))
    .bind(member_id)
    .bind(keyset.after)
    .bind(keyset.before)
    .bind(keyset.fetch)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(Follow::from_row).collect::<sqlx::Result<_>>()?)
}

/// The member's level on each of `targets` they follow (all of one type).
pub async fn levels(db: &Db, member_id: i64, type_name: &str, ids: &[i64]) -> AppResult<HashMap<i64, FollowLevel>> {
    let mut levels = HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT target_id, level FROM follows WHERE member_id = $1 AND target_type = $2 AND target_id IN ({})",
            db::placeholders(3, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(member_id).bind(type_name);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&db.pool).await? {
            levels.insert(row.try_get(0)?, row.try_get(1)?);
        }
    }
    Ok(levels)
}
