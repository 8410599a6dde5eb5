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
    /// A member was named as a co-author and asked to accept; one per invitation, so the
    /// invitee (`memberId` in the payload) can be told.
    CaseStudyCoAuthorInvited,
    OrganisationJoinRequested,
    InterestRegistered,
    ArtefactPublished,
    ArtefactReused,
    CommentPosted,
    /// One per member mentioned, so each can be told.
    MemberMentioned,
    MeetupScheduled,
    /// The time, date or place moved.
    MeetupChanged,
    MeetupCancelled,
    /// A member moved from the waitlist to going.
    MeetupRsvpPromoted,
    /// An event starts within 24 hours; recorded once per start time.
    MeetupReminderDue,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CaseStudyPublished => "case_study.published",
            EventKind::CaseStudyUpdated => "case_study.updated",
            EventKind::CaseStudyCoAuthorInvited => "case_study.coauthor_invited",
            EventKind::OrganisationJoinRequested => "organisation.join_requested",
            EventKind::InterestRegistered => "case_study.interest_registered",
            EventKind::ArtefactPublished => "artefact.published",
            EventKind::ArtefactReused => "artefact.reused",
            EventKind::CommentPosted => "comment.posted",
            EventKind::MemberMentioned => "member.mentioned",
            EventKind::MeetupScheduled => "meetup.scheduled",
            EventKind::MeetupChanged => "meetup.changed",
            EventKind::MeetupCancelled => "meetup.cancelled",
            EventKind::MeetupRsvpPromoted => "meetup.rsvp_promoted",
            EventKind::MeetupReminderDue => "meetup.reminder_due",
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

/// Records a `member.mentioned` event for each member `@mentioned` in what `actor_id`
/// just wrote (`subject`), except the writer.
pub async fn record_mentions(tx: &mut Tx, subject: (&str, i64), actor_id: i64, member_ids: &[i64]) -> AppResult<()> {
    for member_id in member_ids.iter().filter(|id| **id != actor_id) {
        let payload = serde_json::json!({ "memberId": member_id });
        record(tx, EventKind::MemberMentioned, subject, Some(actor_id), payload).await?;
    }
    Ok(())
}
