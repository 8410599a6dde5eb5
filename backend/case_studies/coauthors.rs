//! Co-authors, with their consent.
//!
//! Naming someone as a co-author of a case study invites them; only an accepted
//! invitation puts them in `case_study_authors`, the one table that says who sees a draft,
//! who may edit, and who is listed as an author (pages, lists, feeds, search and the
//! request loaders all read it, so none of them can show an invitee by mistake). Until
//! they answer, an invitee sees in their invitation the case study's title (so they know
//! what they are accepting), who invited them and when, and nothing else of a draft: not
//! its summary, nor its text. A published case study they can read anyway.
//!
//! The co-author list an author saves is what the case study should have: a member on it
//! who is neither a co-author nor invited gets a new pending invitation, with a
//! `case_study.coauthor_invited` event in the same transaction; a co-author left off it
//! stops being one; a pending invitation left off it is withdrawn. The edit form and the
//! API give back co-authors and pending invitees only, so saving again never re-sends a
//! declined invitation; naming the member again on purpose makes a new pending invitation
//! (and a new event), which they can decline again.

use std::collections::HashMap;

use sqlx::{FromRow, Row};

use crate::{
    db::{self, Db, Keyset, ListOrder, Tx},
    error::AppResult,
    outbox,
};

crate::text_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    #[graphql(name = "CoAuthorInvitationStatus")]
    pub enum InvitationStatus {
        /// Waiting for the invitee to answer.
        Pending => "pending",
        /// The invitee accepted and became a co-author.
        Accepted => "accepted",
        /// The invitee said no.
        Declined => "declined",
        /// An author took the invitation back before it was answered.
        Withdrawn => "withdrawn",
    }
}

/// An invitation to co-author a case study.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Invitation {
    pub id: i64,
    pub case_study_id: i64,
    pub invitee_id: i64,
    /// None when the author who invited has since deleted their account.
    pub invited_by: Option<i64>,
    pub status: InvitationStatus,
    pub created_at: i64,
    pub responded_at: Option<i64>,
}

const COLUMNS: &str = "id, case_study_id, invitee_id, invited_by, status, created_at, responded_at";

/// ` AND <column> NOT IN ($first, …)` for `ids` (nothing when there are none), and binds
/// them after the statement's other parameters.
fn not_in(column: &str, first: usize, ids: &[i64]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!(" AND {column} NOT IN ({})", db::placeholders(first, ids.len()))
    }
}

/// Makes the case study's co-authors what `co_author_ids` names, in that order, inside the
/// caller's transaction (see the module documentation). `inviter_id` is the author saving
/// the list; `lead_author_id` is always first and never removed.
pub async fn sync(
    tx: &mut Tx,
    case_study_id: i64,
    lead_author_id: i64,
    inviter_id: i64,
    co_author_ids: &[i64],
) -> AppResult<()> {
    let named: Vec<i64> = co_author_ids.iter().copied().filter(|id| *id != lead_author_id).collect();
    let now = db::now_millis();
    sqlx::query(
        "INSERT INTO case_study_authors (case_study_id, member_id, position) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING",
    )
    .bind(case_study_id)
    .bind(lead_author_id)
    .execute(&mut **tx)
    .await?;

    // Withdrawing comes before removing: on PostgreSQL it waits for an invitee's answer
    // that is being saved at this moment, so the removal below then sees them as the
    // co-author they just became, and takes them off as the author asked.
    let withdraw = format!(
        "UPDATE case_study_coauthor_invitations SET status = 'withdrawn', responded_at = $2 \
         WHERE case_study_id = $1 AND status = 'pending'{}",
        not_in("invitee_id", 3, &named)
    );
    let mut query = sqlx::query(&withdraw).bind(case_study_id).bind(now);
    for id in &named {
        query = query.bind(*id);
    }
    query.execute(&mut **tx).await?;

    let remove = format!(
        "DELETE FROM case_study_authors WHERE case_study_id = $1 AND member_id <> $2{}",
        not_in("member_id", 3, &named)
    );
    let mut query = sqlx::query(&remove).bind(case_study_id).bind(lead_author_id);
    for id in &named {
        query = query.bind(*id);
    }
    query.execute(&mut **tx).await?;

    for (index, member_id) in named.iter().enumerate() {
        let kept =
            sqlx::query("UPDATE case_study_authors SET position = $3 WHERE case_study_id = $1 AND member_id = $2")
                .bind(case_study_id)
                .bind(member_id)
                .bind(index as i64 + 1)
                .execute(&mut **tx)
                .await?
                .rows_affected();
        if kept > 0 {
            continue;
        }
        // One statement decides, so an answer committed meanwhile is seen whole: either
        // still pending (nothing to do) or accepted (a co-author now; nothing to do).
        let invited = sqlx::query(
            "INSERT INTO case_study_coauthor_invitations (case_study_id, invitee_id, invited_by, status, created_at) \
             SELECT $1, $2, $3, 'pending', $4 \
             WHERE NOT EXISTS (SELECT 1 FROM case_study_authors WHERE case_study_id = $1 AND member_id = $2) \
             AND NOT EXISTS (SELECT 1 FROM case_study_coauthor_invitations \
                             WHERE case_study_id = $1 AND invitee_id = $2 AND status = 'pending') \
             RETURNING id",
        )
        .bind(case_study_id)
        .bind(member_id)
        .bind(inviter_id)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = invited {
            let invitation_id: i64 = row.try_get("id")?;
            let event = outbox::CaseStudyCoAuthorInvited { member_id: *member_id, invitation_id };
            outbox::record(tx, ("CaseStudy", case_study_id), Some(inviter_id), event).await?;
        }
    }
    Ok(())
}

/// Answers `member_id`'s pending invitation to co-author `case_study_id`: accepting makes
/// them a co-author (listed last), declining does not. `None` when they have no pending
/// invitation there (never invited, already answered, or withdrawn).
pub async fn respond(db: &Db, case_study_id: i64, member_id: i64, accept: bool) -> AppResult<Option<Invitation>> {
    let mut tx = db.begin_write().await?;
    let sql = format!(
        "UPDATE case_study_coauthor_invitations SET status = $3, responded_at = $4 \
         WHERE case_study_id = $1 AND invitee_id = $2 AND status = 'pending' RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(case_study_id)
        .bind(member_id)
        .bind(if accept { "accepted" } else { "declined" })
        .bind(db::now_millis())
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(None);
    };
    let invitation = Invitation::from_row(&row)?;
    if accept {
        sqlx::query(
            "INSERT INTO case_study_authors (case_study_id, member_id, position) \
             SELECT $1, $2, COALESCE(MAX(position), 0) + 1 FROM case_study_authors WHERE case_study_id = $1 \
             ON CONFLICT DO NOTHING",
        )
        .bind(case_study_id)
        .bind(member_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Some(invitation))
}

/// Takes a co-author off a case study at their own request. False when they were not a
/// co-author of it; its author cannot leave it.
pub async fn leave(db: &Db, case_study_id: i64, member_id: i64) -> AppResult<bool> {
    let left = sqlx::query(
        "DELETE FROM case_study_authors WHERE case_study_id = $1 AND member_id = $2 \
         AND member_id <> (SELECT author_id FROM case_studies WHERE id = $1)",
    )
    .bind(case_study_id)
    .bind(member_id)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(left > 0)
}

/// The members each case study has invited and is waiting for, in the order invited.
pub async fn pending_of(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Vec<i64>>> {
    let select = "SELECT case_study_id, invitee_id FROM case_study_coauthor_invitations \
                  WHERE status = 'pending' AND case_study_id IN";
    Ok(db::id_lists(db, select, ids, "ORDER BY case_study_id, id").await?)
}

/// A member's pending invitations, newest first, keyset on id.
pub async fn pending_for(db: &Db, member_id: i64, keyset: &Keyset<i64>) -> AppResult<Vec<Invitation>> {
    let rows = sqlx::query(&pending_for_sql(keyset))
        .bind(member_id)
        .bind(keyset.after)
        .bind(keyset.before)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(Invitation::from_row).collect::<sqlx::Result<_>>()?)
}

/// The SQL of [`pending_for`], public so a test can check its plan on both databases.
/// Binds: member, after id, before id, limit.
pub fn pending_for_sql(keyset: &Keyset<i64>) -> String {
    format!(
        "SELECT {COLUMNS} FROM case_study_coauthor_invitations WHERE invitee_id = $1 AND status = 'pending' \
         AND {} ORDER BY id {} LIMIT $4",
        keyset.conditions("id", ListOrder::Descending, "$2", "$3"),
        keyset.direction(ListOrder::Descending)
    )
}
