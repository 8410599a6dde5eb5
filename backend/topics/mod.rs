//! Topics: a curated list that admins and moderators keep (create, rename, merge). Every
//! case study and artefact carries one to five of them, and every topic has a page.

pub mod graphql;

use std::collections::HashMap;

use sqlx::{any::AnyRow, Row};

use serde_json::json;

use crate::{
    db::{self, Db},
    error::AppResult,
    moderation::audit,
};

pub const NAME_MAX: usize = 60;
pub const DESCRIPTION_MAX: usize = 500;
/// How many topics one item may carry.
pub const PER_ITEM_MIN: usize = 1;
pub const PER_ITEM_MAX: usize = 5;

#[derive(Clone, Debug)]
pub struct Topic {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub merged_into: Option<i64>,
}

const COLUMNS: &str = "id, slug, name, description, merged_into";

impl Topic {
    fn from_row(row: &AnyRow) -> sqlx::Result<Topic> {
        Ok(Topic {
            id: row.try_get("id")?,
            slug: row.try_get("slug")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            merged_into: row.try_get("merged_into")?,
        })
    }
}

pub async fn by_ids(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Topic>> {
    let rows = db::rows_by_ids(db, &format!("SELECT {COLUMNS} FROM topics WHERE id IN"), ids).await?;
    Ok(rows.iter().map(|r| Topic::from_row(r).map(|t| (t.id, t))).collect::<sqlx::Result<_>>()?)
}

/// Which items carry topics: the link table and its item column.
#[derive(Clone, Copy, Debug)]
pub enum Tagged {
    CaseStudies,
    Artefacts,
}

/// The topics of each item, sorted by name, in one statement that joins the link table
/// to the topics (a list page needs both, and a second round trip would cost more than the
/// repeated topic rows). Every id asked for gets an entry.
pub async fn of_items(db: &Db, items: Tagged, ids: &[i64]) -> AppResult<HashMap<i64, Vec<Topic>>> {
    let (table, item) = match items {
        Tagged::CaseStudies => ("case_study_topics", "case_study_id"),
        Tagged::Artefacts => ("artefact_topics", "artefact_id"),
    };
    let columns = COLUMNS.split(',').map(|c| format!("t.{}", c.trim())).collect::<Vec<_>>().join(", ");
    let select = format!(
        "SELECT l.{item} AS item_id, {columns} FROM {table} l JOIN topics t ON t.id = l.topic_id WHERE l.{item} IN"
    );
    let mut map: HashMap<i64, Vec<Topic>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    for row in db::rows_by_ids_grouped(db, &select, ids, &format!("ORDER BY l.{item}, t.name, t.id")).await? {
        map.entry(row.try_get("item_id")?).or_default().push(Topic::from_row(&row)?);
    }
    Ok(map)
}

pub async fn by_slug(db: &Db, slug: &str) -> AppResult<Option<Topic>> {
    let sql = format!("SELECT {COLUMNS} FROM topics WHERE slug = $1");
    let row = sqlx::query(&sql).bind(slug.trim().to_ascii_lowercase()).fetch_optional(&db.pool).await?;
    Ok(row.map(|r| Topic::from_row(&r)).transpose()?)
}

/// Topics in use (not merged away), by name (served by `topics_name`).
pub async fn list(db: &Db, keyset: &db::Keyset<(String, i64)>) -> AppResult<Vec<Topic>> {
    let rows = db::page_by_name(db, &format!("SELECT {COLUMNS} FROM topics WHERE merged_into IS NULL"), keyset).await?;
    Ok(rows.iter().map(Topic::from_row).collect::<sqlx::Result<_>>()?)
}

/// Creates a topic; `None` when its slug is taken.
pub async fn create(db: &Db, name: &str, description: &str) -> AppResult<Option<Topic>> {
    let slug = crate::slug::slugify(name, NAME_MAX);
    let now = db::now_millis();
    let sql = format!(
        "INSERT INTO topics (slug, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING {COLUMNS}"
    );
    match sqlx::query(&sql).bind(&slug).bind(name.trim()).bind(description.trim()).bind(now).fetch_one(&db.pool).await {
        Ok(row) => Ok(Some(Topic::from_row(&row)?)),
        Err(err) if db::is_unique_violation(&err, "topics", "slug") => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Renames a topic, keeping its slug so that links to it keep working.
pub async fn rename(db: &Db, id: i64, name: &str, description: Option<&str>) -> AppResult<Option<Topic>> {
    let sql = format!(
        "UPDATE topics SET name = $1, description = COALESCE($2, description), updated_at = $3 \
         WHERE id = $4 AND merged_into IS NULL RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(name.trim())
        .bind(description.map(str::trim))
        .bind(db::now_millis())
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| Topic::from_row(&r)).transpose()?)
}

/// Moves every item of `from` to `into` and retires `from` (its page then points to
/// `into`). One transaction: an item is never left with neither topic, and the audit row
/// (who merged, why) commits with the merge or not at all.
pub async fn merge(db: &Db, actor_id: i64, from: &Topic, into: &Topic, reason: &str) -> AppResult<()> {
    let (from_topic, into_topic) = (from, into);
    let (from, into) = (from.id, into.id);
    let mut tx = db.begin_write().await?;
    for (table, item) in [("case_study_topics", "case_study_id"), ("artefact_topics", "artefact_id")] {
        sqlx::query(&format!(
            "INSERT INTO {table} ({item}, topic_id) SELECT {item}, $1 FROM {table} WHERE topic_id = $2 \
             ON CONFLICT ({item}, topic_id) DO NOTHING"
        ))
        .bind(into)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!("DELETE FROM {table} WHERE topic_id = $1")).bind(from).execute(&mut *tx).await?;
    }
    let now = db::now_millis();
    sqlx::query("UPDATE topics SET merged_into = $1, updated_at = $2 WHERE id = $3 OR merged_into = $3")
        .bind(into)
        .bind(now)
        .bind(from)
        .execute(&mut *tx)
        .await?;
    audit::append(
        &mut tx,
        audit::Entry {
            actor_id: Some(actor_id),
            action: audit::MERGE_TOPIC,
            target_type: "topic",
            target_id: from,
            reason: reason.trim(),
            before: Some(json!({ "slug": from_topic.slug, "name": from_topic.name })),
            after: Some(json!({ "mergedInto": into, "slug": into_topic.slug, "name": into_topic.name })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
