//! The outbox: domain events written in the same transaction as the change that caused
//! them, so an event exists exactly when its change does. The dispatcher
//! (`notifications::dispatch`) reads them in order and turns each into notifications (see
//! ARCHITECTURE.md, "Events are durable before they are live").
//!
//! Each kind of event has one Rust type for its payload, stored as JSON beside the kind's
//! name; [`Event::decode`] reads it back, so writer and reader cannot drift apart. Field
//! names are camelCase in the JSON, as the events written before these types were.

use serde::{Deserialize, Serialize};
use sqlx::{any::AnyRow, Row};

use crate::{
    db::{self, Tx},
    error::AppResult,
};

/// Declares each event's payload type, the `Event` enum over them, and the name each is
/// stored under in `outbox_events.kind`.
macro_rules! events {
    ($($(#[$doc:meta])* $variant:ident = $kind:literal { $($(#[$field_meta:meta])* $field:ident : $ty:ty),* $(,)? })*) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
            #[serde(rename_all = "camelCase")]
            pub struct $variant { $($(#[$field_meta])* pub $field: $ty),* }

            impl From<$variant> for Event {
                fn from(payload: $variant) -> Event {
                    Event::$variant(payload)
                }
            }
        )*

        /// Something that happened, with its payload.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Event { $($variant($variant)),* }

        impl Event {
            /// The name stored in `outbox_events.kind`.
            pub fn kind(&self) -> &'static str {
                match self { $(Event::$variant(_) => $kind),* }
            }

            fn payload(&self) -> serde_json::Result<String> {
                match self { $(Event::$variant(payload) => serde_json::to_string(payload)),* }
            }

            /// Reads an event back from its stored kind and payload.
            pub fn decode(kind: &str, payload: &str) -> Result<Event, String> {
                match kind {
                    $($kind => serde_json::from_str(payload).map(Event::$variant).map_err(|e| format!("{kind}: {e}")),)*
                    other => Err(format!("unknown event kind {other:?}")),
                }
            }
        }
    };
}

events! {
    /// A case study was published (for the first time, or again after being archived).
    CaseStudyPublished = "case_study.published" { title: String }
    /// A published case study was edited.
    CaseStudyUpdated = "case_study.updated" { version: i64, #[serde(default)] mentions: Vec<String> }
    /// A member was named as a co-author and asked to accept; one per invitation.
    CaseStudyCoAuthorInvited = "case_study.coauthor_invited" { member_id: i64, invitation_id: i64 }
    /// A member said they are working on the same problem as a case study.
    InterestRegistered = "case_study.interest_registered" { member_id: i64 }
    OrganisationJoinRequested = "organisation.join_requested" { member_id: i64 }
    /// An admin approved or declined a request to join.
    OrganisationJoinDecided = "organisation.join_decided" { member_id: i64, approved: bool }
    ArtefactPublished = "artefact.published" {
        title: String,
        organisation_id: Option<i64>,
        adapted_from_id: Option<i64>,
        #[serde(default)] case_study_ids: Vec<i64>,
    }
    /// An organisation recorded that it reuses an artefact.
    ArtefactReused = "artefact.reused" { organisation_id: i64, case_study_id: Option<i64> }
    /// A comment on a case study or an artefact (the event's subject).
    CommentPosted = "comment.posted" { comment_id: i64, parent_id: Option<i64>, parent_author_id: Option<i64> }
    /// One per member mentioned, so each can be told.
    MemberMentioned = "member.mentioned" { member_id: i64 }
    MeetupScheduled = "meetup.scheduled" { group_id: i64, starts_at: i64, series_id: Option<i64> }
    /// The time, date or place moved.
    MeetupChanged = "meetup.changed" { starts_at: i64, previous_starts_at: i64 }
    MeetupCancelled = "meetup.cancelled" { series_id: Option<i64> }
    /// A cancelled meetup was put back on.
    MeetupReinstated = "meetup.reinstated" {}
    /// A member moved from the waitlist to going.
    MeetupRsvpPromoted = "meetup.rsvp_promoted" { member_id: i64 }
    /// An organiser took a member off a meetup they were going to (or, when `waitlisted`,
    /// waiting for).
    MeetupRsvpRemoved = "meetup.rsvp_removed" { member_id: i64, waitlisted: bool }
    /// An organiser wrote to those going (and, with `include_waitlist`, those waiting).
    MeetupMessageSent = "meetup.message_sent" { message: String, include_waitlist: bool }
    /// An event starts within 24 hours; recorded once per start time.
    MeetupReminderDue = "meetup.reminder_due" { starts_at: i64 }
    /// A moderator decided a review of the subject (the flagged item); its flaggers and
    /// author are told. `was_hidden`: whether the item was hidden when it was decided.
    ReviewDecided = "moderation.review_decided" { review_id: i64, target_type: String, decision: String, was_hidden: bool }
}

/// Records an event about `subject` (its GraphQL type name and id) inside the caller's
/// transaction.
pub async fn record(
    tx: &mut Tx,
    subject: (&str, i64),
    actor_id: Option<i64>,
    event: impl Into<Event>,
) -> AppResult<()> {
    let event = event.into();
    let payload = event.payload().map_err(anyhow::Error::from)?;
    sqlx::query(
        "INSERT INTO outbox_events (kind, subject_type, subject_id, actor_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event.kind())
    .bind(subject.0)
    .bind(subject.1)
    .bind(actor_id)
    .bind(payload)
    .bind(db::now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a `member.mentioned` event for each member `@mentioned` in what `actor_id`
/// just wrote (`subject`), except the writer.
pub async fn record_mentions(tx: &mut Tx, subject: (&str, i64), actor_id: i64, member_ids: &[i64]) -> AppResult<()> {
    for &member_id in member_ids.iter().filter(|id| **id != actor_id) {
        record(tx, subject, Some(actor_id), MemberMentioned { member_id }).await?;
    }
    Ok(())
}

/// An event as stored.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub id: i64,
    pub subject_type: String,
    pub subject_id: i64,
    pub actor_id: Option<i64>,
    pub created_at: i64,
    /// `Err` with the reason when the stored payload no longer decodes; the dispatcher
    /// logs it and moves on rather than stopping the queue behind it.
    pub event: Result<Event, String>,
}

pub const COLUMNS: &str = "id, kind, subject_type, subject_id, actor_id, payload, created_at";

impl Recorded {
    pub fn from_row(row: &AnyRow) -> sqlx::Result<Recorded> {
        let kind: String = row.try_get("kind")?;
        let payload: String = row.try_get("payload")?;
        Ok(Recorded {
            id: row.try_get("id")?,
            subject_type: row.try_get("subject_type")?,
            subject_id: row.try_get("subject_id")?,
            actor_id: row.try_get("actor_id")?,
            created_at: row.try_get("created_at")?,
            event: Event::decode(&kind, &payload),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_read_what_was_written_before_they_had_types() {
        let event = Event::from(CommentPosted { comment_id: 4, parent_id: Some(2), parent_author_id: None });
        let stored = event.payload().unwrap();
        assert_eq!(stored, r#"{"commentId":4,"parentId":2,"parentAuthorId":null}"#);
        assert_eq!(Event::decode(event.kind(), &stored).unwrap(), event);
        // Written by the untyped code: an empty object for a cancellation, no case studies.
        assert_eq!(
            Event::decode("meetup.cancelled", "{}").unwrap(),
            Event::MeetupCancelled(MeetupCancelled { series_id: None })
        );
        let artefact = r#"{"title":"Kit","organisationId":null,"adaptedFromId":3,"caseStudyIds":[]}"#;
        assert!(matches!(Event::decode("artefact.published", artefact), Ok(Event::ArtefactPublished(_))));
        assert!(Event::decode("member.mentioned", "{}").is_err());
        assert!(Event::decode("no.such.kind", "{}").is_err());
    }
}
