//! The sender: claims due messages, sends them, records what happened.

/// Runs on every instance until the server stops.
pub async fn run(_db: crate::db::Db, _mailer: std::sync::Arc<super::Mailer>) {
    std::future::pending::<()>().await
}
