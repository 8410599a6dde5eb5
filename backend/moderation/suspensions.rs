//! Suspensions: for a period or until lifted, with a reason the member is shown.
//!
//! The live suspension is mirrored on the member row (`suspended_at`, `suspended_until`,
//! `suspension_reason`), which authentication already reads with the member on every
//! request, so a suspension takes effect on the next request of every session and access
//! token without a lookup of its own. Sessions are also ended, so a suspended member is
//! signed out everywhere at once. History is kept in `suspensions`; both suspending and
//! lifting are audited.

use serde_json::json;
use sqlx::{any::AnyRow, Row};

use super::audit::{self, Entry};
use crate::{
    accounts::{self, Member, Role},
    db::{self, Db, Keyset, Tx},
    error::{AppError, AppResult},
};

/// Suspends `member_id` from now until `until` (None: until lifted), inside `tx`, which
/// the caller commits (a moderator's decision on a review suspends in the same
/// transaction that decides it). Replaces any live suspension.
pub async fn suspend_in(tx: &mut Tx, actor_id: i64, member_id: i64, until: Option<i64>, reason: &str) -> AppResult<()> {
    let now = db::now_millis();
    sqlx::query(
        "UPDATE suspensions SET lifted_at = $1, lifted_by = $2, lift_reason = 'replaced by a new suspension' \
         WHERE member_id = $3 AND lifted_at IS NULL",
    )
    .bind(now)
    .bind(actor_id)
    .bind(member_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO suspensions (member_id, reason, starts_at, ends_at, created_by) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(member_id)
    .bind(reason)
    .bind(now)
    .bind(until)
    .bind(actor_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE members SET suspended_at = $1, suspended_until = $2, suspension_reason = $3 WHERE id = $4")
        .bind(now)
        .bind(until)
        .bind(reason)
        .bind(member_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE member_id = $1").bind(member_id).execute(&mut **tx).await?;
    audit::append(
        tx,
        Entry {
            actor_id: Some(actor_id),
            action: "suspend",
            target_type: "member",
            target_id: member_id,
            reason,
            before: None,
            after: Some(json!({ "until": until })),
        },
    )
    .await?;
    Ok(())
}

/// Lifts `member_id`'s live suspension, inside `tx`. Returns false when there was none.
pub async fn lift_in(tx: &mut Tx, actor_id: i64, member_id: i64, reason: &str) -> AppResult<bool> {
    let now = db::now_millis();
    let lifted = sqlx::query(
        "UPDATE members SET suspended_at = NULL, suspended_until = NULL, suspension_reason = NULL \
         WHERE id = $1 AND suspended_at IS NOT NULL",
    )
    .bind(member_id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if !lifted {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE suspensions SET lifted_at = $1, lifted_by = $2, lift_reason = $3 WHERE member_id = $4 AND lifted_at IS NULL",
    )
    .bind(now)
    .bind(actor_id)
    .bind(reason)
    .bind(member_id)
    .execute(&mut **tx)
    .await?;
    audit::append(
        tx,
        Entry {
            actor_id: Some(actor_id),
            action: "lift_suspension",
            target_type: "member",
            target_id: member_id,
            reason,
            before: None,
            after: None,
        },
    )
    .await?;
    Ok(true)
}

/// Whether a member row's suspension columns describe a suspension in force at `now`.
pub fn in_force(suspended_at: Option<i64>, suspended_until: Option<i64>, now: i64) -> bool {
    suspended_at.is_some() && suspended_until.is_none_or(|until| until > now)
}

// ---------------------------------------------------------------------------------------
// Suspending and lifting, with who may do it to whom

/// The longest reason a moderator may give (the member is shown it).
pub const REASON_MAX: usize = 500;
/// The furthest end a time-limited suspension may have; longer is "until lifted".
pub const UNTIL_MAX_MS: i64 = 10 * 366 * 24 * 60 * 60 * 1000;

/// Whether `actor` may suspend `target`, or lift their suspension: moderators act on
/// plain members only, admins on anyone; members on no one. (Acting on oneself is refused
/// separately, as a mistake in the form rather than a matter of permission.)
pub fn may_act_on(actor: Role, target: Role) -> bool {
    match actor {
        Role::Admin => true,
        Role::Moderator => target == Role::Member,
        Role::Member => false,
    }
}

// Returned once per request and matched at once: boxing the member would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    Done(Member),
    /// Nobody suspends (or lifts the suspension of) themselves.
    Yourself,
    /// There is no suspension in force to lift.
    NotSuspended,
}

/// Locks the target's row inside `tx` and checks that `actor` may act on them, by the
/// role read under the lock (so a promotion that committed first is respected).
async fn check_target_in(tx: &mut Tx, dialect: db::Dialect, actor: &Member, member_id: i64) -> AppResult<()> {
    let role: Option<Role> =
        sqlx::query_scalar(&format!("SELECT role FROM members WHERE id = $1{}", dialect.for_update()))
            .bind(member_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(role) = role else { return Err(AppError::NotFound("That member")) };
    if !may_act_on(actor.role, role) {
        return Err(AppError::Forbidden);
    }
    Ok(())
}

/// Suspends `member_id` until `until` (None: until lifted), as `actor`, in one transaction
/// with its history row, the end of the member's sessions and the audit row. The caller
/// has checked the reason and the end.
pub async fn suspend(db: &Db, actor: &Member, member_id: i64, until: Option<i64>, reason: &str) -> AppResult<Outcome> {
    if !may_act_on(actor.role, Role::Member) {
        return Err(AppError::Forbidden);
    }
    if member_id == actor.id {
        return Ok(Outcome::Yourself);
    }
    let mut tx = db.begin_write().await?;
    check_target_in(&mut tx, db.dialect, actor, member_id).await?;
    suspend_in(&mut tx, actor.id, member_id, until, reason.trim()).await?;
    tx.commit().await?;
    let member = accounts::member_by_id(db, member_id).await?.ok_or(AppError::NotFound("That member"))?;
    Ok(Outcome::Done(member))
}

/// Lifts `member_id`'s suspension, as `actor`, audited in the same transaction.
pub async fn lift(db: &Db, actor: &Member, member_id: i64, reason: &str) -> AppResult<Outcome> {
    if !may_act_on(actor.role, Role::Member) {
        return Err(AppError::Forbidden);
    }
    if member_id == actor.id {
        return Ok(Outcome::Yourself);
    }
    let mut tx = db.begin_write().await?;
    check_target_in(&mut tx, db.dialect, actor, member_id).await?;
    let (suspended_at, suspended_until): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT suspended_at, suspended_until FROM members WHERE id = $1")
            .bind(member_id)
            .fetch_one(&mut *tx)
            .await?;
    if !in_force(suspended_at, suspended_until, db::now_millis()) {
        return Ok(Outcome::NotSuspended);
    }
    lift_in(&mut tx, actor.id, member_id, reason.trim()).await?;
    tx.commit().await?;
    let member = accounts::member_by_id(db, member_id).await?.ok_or(AppError::NotFound("That member"))?;
    Ok(Outcome::Done(member))
}

// ---------------------------------------------------------------------------------------
// History

/// One suspension, lifted or not.
#[derive(Clone, Debug)]
pub struct Suspension {
    pub id: i64,
    pub member_id: i64,
    pub reason: String,
    pub starts_at: i64,
    pub ends_at: Option<i64>,
    pub created_by: Option<i64>,
    pub lifted_at: Option<i64>,
    pub lifted_by: Option<i64>,
    pub lift_reason: Option<String>,
}

/// A page of a member's suspensions, newest first, keyset on id (served by
/// `suspensions_member`).
pub async fn history(db: &Db, member_id: i64, keyset: &Keyset<i64>) -> AppResult<Vec<Suspension>> {
    let Keyset { after, before, forward, fetch } = keyset.clone();
    let order = if forward { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT id, member_id, reason, starts_at, ends_at, created_by, lifted_at, lifted_by, lift_reason \
         FROM suspensions WHERE member_id = $1 AND {} AND {} ORDER BY id {order} LIMIT $4",
        db::filter_condition(after.is_some(), "$2", "id < $2"),
        db::filter_condition(before.is_some(), "$3", "id > $3"),
    );
    let rows = sqlx::query(&sql).bind(member_id).bind(after).bind(before).bind(fetch).fetch_all(&db.pool).await?;
    let suspension = |row: &AnyRow| -> sqlx::Result<Suspension> {
        Ok(Suspension {
            id: row.try_get("id")?,
            member_id: row.try_get("member_id")?,
            reason: row.try_get("reason")?,
            starts_at: row.try_get("starts_at")?,
            ends_at: row.try_get("ends_at")?,
            created_by: row.try_get("created_by")?,
            lifted_at: row.try_get("lifted_at")?,
            lifted_by: row.try_get("lifted_by")?,
            lift_reason: row.try_get("lift_reason")?,
        })
    };
    Ok(rows.iter().map(suspension).collect::<sqlx::Result<_>>()?)
}
