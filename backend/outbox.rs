//! The outbox: domain events written in the same transaction as the change that caused
//! them, so an event exists exactly when its change does. Nothing consumes them yet; the
//! notifications work will dispatch them (see DESIGN.md, "Events are durable before they
//! are live").

use serde_json::Value;

use crate::{
    db::{self, Tx},
    error::AppResult,
};

/// What happened, as stored in `outbox_events.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    CaseStudyPublished,
    CaseStudyUpdated,
    OrganisationJoinRequested,
    InterestRegistered,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CaseStudyPublished => "case_study.published",
            EventKind::CaseStudyUpdated => "case_study.updated",
            EventKind::OrganisationJoinRequested => "organisation.join_requested",
            EventKind::InterestRegistered => "case_study.interest_registered",
        }
    }
}

/// Records an event inside the caller's transaction.
pub async fn record(
    tx: &mut Tx,
    kind: EventKind,
    subject: (&str, i64),
    actor_id: Option<i64>,
    payload: Value,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO outbox_events (kind, subject_type, subject_id, actor_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(kind.as_str())
    .bind(subject.0)
    .bind(subject.1)
    .bind(actor_id)
    .bind(payload.to_string())
    .bind(db::now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
