//! Notifications: what members follow, and what Kettle tells them.
//!
//! The path of a notification, end to end:
//! 1. A change commits with its outbox event in the same transaction (`outbox`).
//! 2. The dispatcher ([`dispatch`]), on the one instance holding its lease, reads pending
//!    events in order, works out who should hear of each ([`recipients`]: the people an
//!    event is about, and followers by level, see [`follows`]), and writes one
//!    notification row per event and recipient — unique in the database, in the same
//!    transaction that marks the events dispatched, so a crash or a second instance can
//!    neither lose nor duplicate one.
//! 3. It then publishes the new inbox rows on the bus (`bus`), which carries them to the
//!    instances where their recipients are connected ([`graphql::live`]). The bus only makes it
//!    fast: a client that missed something replays it from the database ([`inbox`]).

pub mod dispatch;
pub mod follows;
pub mod graphql;
pub mod inbox;
pub mod recipients;

use serde::{Deserialize, Serialize};
use sqlx::{any::AnyRow, Row};

crate::text_enum! {
    /// Why a member is told something.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
    pub enum NotificationKind {
        /// Someone mentioned you.
        Mentioned => "mentioned",
        /// Someone replied to your comment.
        Replied => "replied",
        /// Someone commented on your case study or artefact.
        CommentedOnYours => "commented_on_yours",
        /// Another organisation reuses your organisation's artefact.
        ArtefactReused => "artefact_reused",
        /// Someone is working on the same problem as your case study.
        InterestRegistered => "interest_registered",
        /// You moved up from a meetup's waitlist.
        WaitlistPromoted => "waitlist_promoted",
        /// A meetup you are going to or waiting for moved.
        MeetupChanged => "meetup_changed",
        /// A meetup you are going to or waiting for was cancelled.
        MeetupCancelled => "meetup_cancelled",
        /// A meetup you are going to starts within 24 hours.
        MeetupReminder => "meetup_reminder",
        /// An organiser took you off a meetup you were going to or waiting for.
        RsvpRemoved => "rsvp_removed",
        /// An organiser wrote to those going to a meetup (or waiting for it).
        MeetupMessage => "meetup_message",
        /// Someone asked to join an organisation you administer.
        JoinRequested => "join_requested",
        /// Your request to join an organisation was decided.
        JoinDecided => "join_decided",
        /// You were invited to co-author a case study.
        CoauthorInvited => "coauthor_invited",
        /// A case study was published in something you follow.
        NewCaseStudy => "new_case_study",
        /// An artefact was published in something you follow.
        NewArtefact => "new_artefact",
        /// A meetup was scheduled in something you follow.
        NewMeetup => "new_meetup",
        /// A new comment in a conversation you follow.
        NewComment => "new_comment",
        /// The moderators decided about something you reported.
        ReportDecided => "report_decided",
        /// The moderators hid, edited or restored something you wrote.
        ContentModerated => "content_moderated",
    }
}

impl NotificationKind {
    /// Whether this kind comes from a follow (and so may go to a digest), rather than
    /// from being the person an event is about.
    pub fn is_followed(self) -> bool {
        matches!(
            self,
            NotificationKind::NewCaseStudy
                | NotificationKind::NewArtefact
                | NotificationKind::NewMeetup
                | NotificationKind::NewComment
        )
    }
}

crate::text_enum! {
    /// Where a notification goes: shown at once, or kept for the member's digest.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Channel {
        Inbox => "inbox",
        Digest => "digest",
    }
}

/// One notification as stored, or, in a list, the newest entry of a group standing for
/// `group_size` of them. Self-contained, so live delivery needs no query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: i64,
    pub member_id: i64,
    pub kind: NotificationKind,
    pub channel: Channel,
    /// The GraphQL type name of what it is about (`CaseStudy`, `MeetupEvent`, …).
    pub subject_type: String,
    pub subject_id: i64,
    pub subject_title: String,
    pub actor_id: Option<i64>,
    pub group_id: i64,
    pub group_size: i64,
    pub summary: String,
    pub path: String,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

pub const COLUMNS: &str = "id, member_id, kind, channel, subject_type, subject_id, subject_title, actor_id, group_id, \
                           summary, path, created_at, read_at";

impl Notification {
    /// Reads a row of [`COLUMNS`], with `group_size` when the query counted it.
    pub fn from_row(row: &AnyRow) -> sqlx::Result<Notification> {
        Ok(Notification {
            id: row.try_get("id")?,
            member_id: row.try_get("member_id")?,
            kind: row.try_get("kind")?,
            channel: row.try_get("channel")?,
            subject_type: row.try_get("subject_type")?,
            subject_id: row.try_get("subject_id")?,
            subject_title: row.try_get("subject_title")?,
            actor_id: row.try_get("actor_id")?,
            group_id: row.try_get("group_id")?,
            group_size: row.try_get::<i64, _>("group_size").unwrap_or(1),
            summary: row.try_get("summary")?,
            path: row.try_get("path")?,
            created_at: row.try_get("created_at")?,
            read_at: row.try_get("read_at")?,
        })
    }

    /// What the entry says: its own summary, or for a group, how many and about what.
    pub fn display_summary(&self) -> String {
        if self.group_size <= 1 {
            return self.summary.clone();
        }
        let n = self.group_size;
        let title = &self.subject_title;
        match self.kind {
            NotificationKind::Replied => format!("{n} replies to your comment on “{title}”"),
            NotificationKind::CommentedOnYours | NotificationKind::NewComment => {
                format!("{n} new comments on “{title}”")
            }
            NotificationKind::NewMeetup => format!("{n} new dates for “{title}”"),
            NotificationKind::JoinRequested => format!("{n} requests to join {title}"),
            NotificationKind::ArtefactReused => format!("{n} organisations now reuse “{title}”"),
            NotificationKind::InterestRegistered => format!("{n} people are working on the same problem as “{title}”"),
            _ => format!("{} (and {} more)", self.summary, n - 1),
        }
    }
}
