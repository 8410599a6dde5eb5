//! The audit log: who did what, to what, why and when, with before and after for edits.
//!
//! Appending is the only operation. A row is written in the same transaction as the action
//! it records, so an action without its row (or a row without its action) cannot commit.
//! The database refuses updates and deletes too (triggers in migration 0011), so no bug
//! and no erasure can rewrite history. Rows name members by id only: erasing a member
//! leaves the log's facts and removes what identified them from everywhere else.

use serde_json::Value;
use sqlx::{any::AnyRow, Row};

use crate::{
    db::{self, Db, Keyset, Tx},
    error::AppResult,
};

/// One action to record. `target_type` uses the same names as flags and reviews
/// (`case_study`, `artefact`, `comment`, `meetup_event`, `member`, `topic`, `site_setting`).
pub struct Entry<'a> {
    pub actor_id: Option<i64>,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: i64,
    pub reason: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Appends `entry` inside `tx`, the transaction of the action itself.
pub async fn append(tx: &mut Tx, entry: Entry<'_>) -> AppResult<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO audit_log (actor_id, action, target_type, target_id, reason, before_value, after_value, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(entry.actor_id)
    .bind(entry.action)
    .bind(entry.target_type)
    .bind(entry.target_id)
    .bind(entry.reason)
    .bind(entry.before.map(|v| v.to_string()))
    .bind(entry.after.map(|v| v.to_string()))
    .bind(db::now_millis())
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

// ---------------------------------------------------------------------------------------
// The actions this module's callers record, by name: the audit page's filter offers these.

pub const SUSPEND: &str = "suspend";
pub const LIFT_SUSPENSION: &str = "lift_suspension";
pub const SET_ROLE: &str = "set_role";
pub const MERGE_TOPIC: &str = "merge_topic";
pub const DELETE_COMMENT: &str = "delete_comment";
pub const SET_SITE_SETTING: &str = "set_site_setting";

/// Every action name written, for the filter on the audit page: the moderators'
/// decisions (`reviews`: hide, restore, edit, dismiss), the actions above, and an admin
/// erasing a member (`privacy::erasure`). A module that records a new kind of action adds
/// its name here.
pub const ACTIONS: &[&str] = &[
    "hide",
    "restore",
    "edit",
    "dismiss",
    SUSPEND,
    LIFT_SUSPENSION,
    SET_ROLE,
    MERGE_TOPIC,
    DELETE_COMMENT,
    SET_SITE_SETTING,
    "erase_member",
];

/// The longest action name a filter may ask for.
pub const ACTION_MAX: usize = 64;

// ---------------------------------------------------------------------------------------
// Reading

/// One row of the log.
#[derive(Clone, Debug)]
pub struct Record {
    pub id: i64,
    pub actor_id: Option<i64>,
    pub action: String,
    pub target_type: String,
    pub target_id: i64,
    pub reason: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub created_at: i64,
}

impl Record {
    fn from_row(row: &AnyRow) -> sqlx::Result<Record> {
        Ok(Record {
            id: row.try_get("id")?,
            actor_id: row.try_get("actor_id")?,
            action: row.try_get("action")?,
            target_type: row.try_get("target_type")?,
            target_id: row.try_get("target_id")?,
            reason: row.try_get("reason")?,
            before: row.try_get("before_value")?,
            after: row.try_get("after_value")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// What to narrow the log to; each filter left out is not applied.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub actor_id: Option<i64>,
    pub target: Option<(String, i64)>,
    pub action: Option<String>,
}

/// A page of the log, newest first, keyset on id. Each filter is served by its index
/// (`audit_log_actor`, `audit_log_target`, `audit_log_action`, all ending in id, so the
/// newest-first order comes from the index too), and only the filters that are set go
/// into the SQL: see [`db::filter_condition`] for why not `($1 IS NULL OR …)`.
pub async fn list(db: &Db, filter: &Filter, keyset: &Keyset<i64>) -> AppResult<Vec<Record>> {
    let Keyset { after, before, fetch, .. } = keyset.clone();
    let (target_type, target_id) = filter.target.clone().unzip();
    let rows = sqlx::query(&list_sql(filter, keyset))
        .bind(filter.actor_id)
        .bind(target_type)
        .bind(target_id)
        .bind(filter.action.as_deref())
        .bind(after)
        .bind(before)
        .bind(fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(Record::from_row).collect::<sqlx::Result<_>>()?)
}

/// The statement [`list`] runs (public for the test that checks its plans): binds the
/// actor id, target type, target id, action, after, before and the row count, in that order.
pub fn list_sql(filter: &Filter, keyset: &Keyset<i64>) -> String {
    let Keyset { after, before, forward, .. } = keyset;
    let conditions = [
        db::filter_condition(filter.actor_id.is_some(), "$1", "actor_id = $1"),
        if filter.target.is_some() {
            "target_type = $2 AND target_id = $3".to_string()
        } else {
            "$2 IS NULL AND $3 IS NULL".to_string()
        },
        db::filter_condition(filter.action.is_some(), "$4", "action = $4"),
        db::filter_condition(after.is_some(), "$5", "id < $5"),
        db::filter_condition(before.is_some(), "$6", "id > $6"),
    ];
    let order = if *forward { "DESC" } else { "ASC" };
    format!(
        "SELECT id, actor_id, action, target_type, target_id, reason, before_value, after_value, created_at \
         FROM audit_log WHERE {} ORDER BY id {order} LIMIT $7",
        conditions.join(" AND ")
    )
}
