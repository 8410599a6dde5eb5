//! "We reused this": an organisation records that it reused an artefact. At most one
//! record per organisation and artefact, holding a story (a note, and optionally a case
//! study) from each member who tells one: a colleague recording it again adds theirs,
//! and telling yours again edits only yours, so nobody's words are replaced by someone
//! else's. The record keeps the first story's note and who recorded it. The artefact's
//! `reuse_count` moves with the records in the same transaction, so lists sorted by
//! reuse read an index, not a count.

use std::collections::HashMap;

use sqlx::{any::AnyRow, Row};

use crate::{
    db::{self, Db, Tx},
    error::AppResult,
    outbox,
};

pub const NOTE_MAX: usize = 1_000;
/// How many reuse stories an artefact's page lists (the count is always exact).
pub const SHOWN_MAX: usize = 100;

#[derive(Clone, Debug)]
pub struct Reuse {
    pub artefact_id: i64,
    pub organisation_id: i64,
    pub note: String,
    pub case_study_id: Option<i64>,
    pub recorded_by: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "artefact_id, organisation_id, note, case_study_id, recorded_by, created_at, updated_at";

/// One member's story of how their organisation reused an artefact.
#[derive(Clone, Debug)]
pub struct Story {
    pub artefact_id: i64,
    pub organisation_id: i64,
    pub member_id: i64,
    pub note: String,
    pub case_study_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const STORY_COLUMNS: &str = "artefact_id, organisation_id, member_id, note, case_study_id, created_at, updated_at";

/// The most stories read back for one artefact (across its records).
const STORIES_MAX: usize = 500;

/// The stories told of each artefact's reuse, oldest first (at most 500 each).
pub async fn stories_of_artefacts(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Vec<Story>>> {
    let mut map: HashMap<i64, Vec<Story>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    let select = format!("SELECT {STORY_COLUMNS} FROM artefact_reuse_stories WHERE artefact_id IN");
    for row in db::rows_by_ids_grouped(db, &select, ids, "ORDER BY artefact_id, created_at, member_id").await? {
        let story = Story {
            artefact_id: row.try_get("artefact_id")?,
            organisation_id: row.try_get("organisation_id")?,
            member_id: row.try_get("member_id")?,
            note: row.try_get("note")?,
            case_study_id: row.try_get("case_study_id")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        };
        let list = map.entry(story.artefact_id).or_default();
        if list.len() < STORIES_MAX {
            list.push(story);
        }
    }
    Ok(map)
}

impl Reuse {
    fn from_row(row: &AnyRow) -> sqlx::Result<Reuse> {
        Ok(Reuse {
            artefact_id: row.try_get("artefact_id")?,
            organisation_id: row.try_get("organisation_id")?,
            note: row.try_get("note")?,
            case_study_id: row.try_get("case_study_id")?,
            recorded_by: row.try_get("recorded_by")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// The reuse records of each artefact, oldest first, at most [`SHOWN_MAX`] each.
pub async fn of_artefacts(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Vec<Reuse>>> {
    let mut map: HashMap<i64, Vec<Reuse>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    let select = format!("SELECT {COLUMNS} FROM artefact_reuses WHERE artefact_id IN");
    for row in db::rows_by_ids_grouped(db, &select, ids, "ORDER BY artefact_id, created_at, organisation_id").await? {
        let reuse = Reuse::from_row(&row)?;
        let list = map.entry(reuse.artefact_id).or_default();
        if list.len() < SHOWN_MAX {
            list.push(reuse);
        }
    }
    Ok(map)
}

/// Every reuse record of an artefact that is not hidden, in (artefact, organisation)
/// order after `after`, `limit` at a time: a keyset walk over the table's primary key,
/// for the open data export. Two statements rather than `($1 IS NULL OR …)`, which
/// SQLite would plan without the index (see `db::filter_condition`).
pub async fn page_all(db: &Db, after: Option<(i64, i64)>, limit: i64) -> AppResult<Vec<Reuse>> {
    let columns = COLUMNS.split(", ").map(|c| format!("r.{c}")).collect::<Vec<_>>().join(", ");
    let from = format!(
        "SELECT {columns} FROM artefact_reuses r JOIN artefacts a ON a.id = r.artefact_id WHERE a.hidden_at IS NULL"
    );
    let order = "ORDER BY r.artefact_id, r.organisation_id";
    let rows = match after {
        None => sqlx::query(&format!("{from} {order} LIMIT $1")).bind(limit).fetch_all(&db.pool).await?,
        Some((artefact_id, organisation_id)) => {
            sqlx::query(&format!("{from} AND (r.artefact_id, r.organisation_id) > ($1, $2) {order} LIMIT $3"))
                .bind(artefact_id)
                .bind(organisation_id)
                .bind(limit)
                .fetch_all(&db.pool)
                .await?
        }
    };
    Ok(rows.iter().map(Reuse::from_row).collect::<sqlx::Result<_>>()?)
}

/// Moves `reuse_count` by `delta` as a record is added or removed. An increment rather
/// than a recount: under PostgreSQL's READ COMMITTED a recount's `COUNT(*)` reads a
/// snapshot taken before a concurrent record committed, so two organisations recording at
/// once could leave the count short, whereas an UPDATE of the row waits for the other
/// transaction and adds to the value it wrote.
async fn adjust_count(tx: &mut Tx, artefact_id: i64, delta: i64) -> AppResult<()> {
    sqlx::query("UPDATE artefacts SET reuse_count = reuse_count + $1 WHERE id = $2")
        .bind(delta)
        .bind(artefact_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records that an organisation reused an artefact, with `member_id`'s story of it: the
/// first record of an organisation announces itself in the outbox; after that, the
/// member's story is added beside their colleagues' (or, told again, edited).
pub async fn record(
    db: &Db,
    artefact_id: i64,
    organisation_id: i64,
    note: &str,
    case_study_id: Option<i64>,
    member_id: i64,
) -> AppResult<Reuse> {
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    // Insert the record, or else touch the one that is there, which holds it (and, on
    // PostgreSQL, locks it) for the story below. A withdrawal committing between the two
    // leaves nothing to touch: then insert again.
    for _ in 0..3 {
        let inserted = sqlx::query(&format!(
            "INSERT INTO artefact_reuses ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (artefact_id, organisation_id) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(artefact_id)
        .bind(organisation_id)
        .bind(note.trim())
        .bind(case_study_id)
        .bind(member_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let reuse = match inserted {
            Some(row) => {
                adjust_count(&mut tx, artefact_id, 1).await?;
                let event = outbox::ArtefactReused { organisation_id, case_study_id };
                outbox::record(&mut tx, ("Artefact", artefact_id), Some(member_id), event).await?;
                Reuse::from_row(&row)?
            }
            None => {
                // The record's own note is its first story, kept in step when whoever
                // recorded it edits theirs, and never replaced by a colleague's.
                let touched = sqlx::query(&format!(
                    "UPDATE artefact_reuses SET updated_at = $1, \
                     note = CASE WHEN recorded_by = $4 THEN $5 ELSE note END, \
                     case_study_id = CASE WHEN recorded_by = $4 THEN $6 ELSE case_study_id END \
                     WHERE artefact_id = $2 AND organisation_id = $3 RETURNING {COLUMNS}"
                ))
                .bind(now)
                .bind(artefact_id)
                .bind(organisation_id)
                .bind(member_id)
                .bind(note.trim())
                .bind(case_study_id)
                .fetch_optional(&mut *tx)
                .await?;
                match touched {
                    Some(row) => Reuse::from_row(&row)?,
                    None => continue,
                }
            }
        };
        sqlx::query(&format!(
            "INSERT INTO artefact_reuse_stories ({STORY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (artefact_id, organisation_id, member_id) DO UPDATE SET note = $4, case_study_id = $5, \
             updated_at = $6"
        ))
        .bind(artefact_id)
        .bind(organisation_id)
        .bind(member_id)
        .bind(note.trim())
        .bind(case_study_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(reuse);
    }
    Err(anyhow::anyhow!("the reuse record kept changing under us").into())
}

/// Takes an organisation's record back; false when there was none.
pub async fn withdraw(db: &Db, artefact_id: i64, organisation_id: i64) -> AppResult<bool> {
    let mut tx = db.begin_write().await?;
    let deleted = sqlx::query("DELETE FROM artefact_reuses WHERE artefact_id = $1 AND organisation_id = $2")
        .bind(artefact_id)
        .bind(organisation_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted > 0 {
        adjust_count(&mut tx, artefact_id, -1).await?;
    }
    tx.commit().await?;
    Ok(deleted > 0)
}
