//! What members do with a case study besides reading it: mark it useful (once each),
//! bookmark it for later, and say "we're working on this too" so its authors can see
//! who else is, before anyone builds the same thing twice.

use sqlx::Row;

use crate::{
    db::{self, Db, ListOrder},
    error::AppResult,
    outbox,
};

pub const NOTE_MAX: usize = 500;

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Mark {
        Useful => "useful",
        Bookmark => "bookmark",
    }
}

/// Sets or clears a member's mark; doing it twice changes nothing.
pub async fn set(db: &Db, case_study_id: i64, member_id: i64, mark: Mark, on: bool) -> AppResult<()> {
    if on {
        sqlx::query(
            "INSERT INTO case_study_marks (case_study_id, member_id, kind, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (case_study_id, kind, member_id) DO NOTHING",
        )
        .bind(case_study_id)
        .bind(member_id)
        .bind(mark.as_str())
        .bind(db::now_millis())
        .execute(&db.pool)
        .await?;
    } else {
        sqlx::query("DELETE FROM case_study_marks WHERE case_study_id = $1 AND member_id = $2 AND kind = $3")
            .bind(case_study_id)
            .bind(member_id)
            .bind(mark.as_str())
            .execute(&db.pool)
            .await?;
    }
    Ok(())
}

pub async fn has(db: &Db, case_study_id: i64, member_id: i64, mark: Mark) -> AppResult<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM case_study_marks WHERE case_study_id = $1 AND member_id = $2 AND kind = $3")
            .bind(case_study_id)
            .bind(member_id)
            .bind(mark.as_str())
            .fetch_optional(&db.pool)
            .await?;
    Ok(found.is_some())
}

/// A member's bookmarks, newest first: (bookmarked at, case study id), keyset on that pair
/// (served by `case_study_marks_member`).
pub async fn bookmarks(db: &Db, member_id: i64, keyset: &db::Keyset<(i64, i64)>) -> AppResult<Vec<(i64, i64)>> {
    let order = keyset.direction(ListOrder::Descending);
    let (after_at, after_id) = keyset.after.unzip();
    let (before_at, before_id) = keyset.before.unzip();
    let sql = format!(
        "SELECT created_at, case_study_id FROM case_study_marks WHERE member_id = $1 AND kind = 'bookmark' AND {} \
         ORDER BY created_at {order}, case_study_id {order} LIMIT $6",
        keyset.conditions("(created_at, case_study_id)", ListOrder::Descending, "($2, $3)", "($4, $5)")
    );
    Ok(sqlx::query_as::<_, (i64, i64)>(&sql)
        .bind(member_id)
        .bind(after_at)
        .bind(after_id)
        .bind(before_at)
        .bind(before_id)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?)
}

/// Registers (or updates the note of) a member's interest, recording the event once.
pub async fn register_interest(db: &Db, case_study_id: i64, member_id: i64, note: &str) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO case_study_interests (case_study_id, member_id, note, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (case_study_id, member_id) DO NOTHING",
    )
    .bind(case_study_id)
    .bind(member_id)
    .bind(note.trim())
    .bind(db::now_millis())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted > 0 {
        let event = outbox::InterestRegistered { member_id };
        outbox::record(&mut tx, ("CaseStudy", case_study_id), Some(member_id), event).await?;
    } else {
        sqlx::query("UPDATE case_study_interests SET note = $1 WHERE case_study_id = $2 AND member_id = $3")
            .bind(note.trim())
            .bind(case_study_id)
            .bind(member_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn withdraw_interest(db: &Db, case_study_id: i64, member_id: i64) -> AppResult<()> {
    sqlx::query("DELETE FROM case_study_interests WHERE case_study_id = $1 AND member_id = $2")
        .bind(case_study_id)
        .bind(member_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Who registered interest, oldest first, with their notes (at most 100).
pub async fn interests(db: &Db, case_study_id: i64) -> AppResult<Vec<(i64, String)>> {
    let rows = sqlx::query(
        "SELECT member_id, note FROM case_study_interests WHERE case_study_id = $1 ORDER BY created_at, member_id LIMIT 100",
    )
    .bind(case_study_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("member_id")?, r.try_get("note")?)))
        .collect::<sqlx::Result<_>>()
        .map_err(Into::into)
}
