//! Site settings that admins change from the site. Each has a default in code; a row in
//! `site_settings` overrides it. Changing one is audited.

use serde_json::json;

use super::audit::{self, Entry};
use crate::{
    db::{self, Db, Tx},
    error::AppResult,
};

/// The weighted flags (in hundredths: a plain member's flag weighs 100) at which an item
/// is hidden until a moderator reviews it.
pub const AUTO_HIDE_WEIGHT: &str = "auto_hide_weight";
const AUTO_HIDE_WEIGHT_DEFAULT: i64 = 300;

/// The auto-hide threshold, read inside the transaction that adds a flag.
pub async fn auto_hide_weight(tx: &mut Tx) -> AppResult<i64> {
    let value: Option<String> = sqlx::query_scalar("SELECT value FROM site_settings WHERE name = $1")
        .bind(AUTO_HIDE_WEIGHT)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(AUTO_HIDE_WEIGHT_DEFAULT))
}

/// The same, outside a transaction (for showing it).
pub async fn current_auto_hide_weight(db: &Db) -> AppResult<i64> {
    let value: Option<String> = sqlx::query_scalar("SELECT value FROM site_settings WHERE name = $1")
        .bind(AUTO_HIDE_WEIGHT)
        .fetch_optional(&db.pool)
        .await?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(AUTO_HIDE_WEIGHT_DEFAULT))
}

/// Sets the threshold (already validated by the caller) and audits the change.
pub async fn set_auto_hide_weight(db: &Db, actor_id: i64, weight: i64, reason: &str) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    let before = auto_hide_weight(&mut tx).await?;
    sqlx::query(
        "INSERT INTO site_settings (name, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(AUTO_HIDE_WEIGHT)
    .bind(weight.to_string())
    .bind(db::now_millis())
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        Entry {
            actor_id: Some(actor_id),
            action: "set_site_setting",
            target_type: "site_setting",
            target_id: 0,
            reason,
            before: Some(json!({ AUTO_HIDE_WEIGHT: before })),
            after: Some(json!({ AUTO_HIDE_WEIGHT: weight })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
