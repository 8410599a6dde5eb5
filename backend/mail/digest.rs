//! Digests: what is new in what a member follows, at their hour in their time zone.

use crate::{db::Tx, error::AppResult};

/// Sets when the member's next digest is due from their settings, zone and address
/// (none while the address is unverified or bouncing, or the frequency is never).
pub async fn reschedule(_tx: &mut Tx, _member_id: i64, _now: i64) -> AppResult<()> {
    Ok(())
}

/// Runs on every instance until the server stops.
pub async fn run(_db: crate::db::Db, _mailer: std::sync::Arc<super::Mailer>) {
    std::future::pending::<()>().await
}
