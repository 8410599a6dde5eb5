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

/// Why a member is told something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
pub enum NotificationKind {
    /// Someone mentioned you.
    Mentioned,
    /// Someone replied to your comment.
    Replied,
    /// Someone commented on your case study or artefact.
    CommentedOnYours,
    /// Another organisation reuses your organisation's artefact.
    ArtefactReused,
    /// Someone is working on the same problem as your case study.
    InterestRegistered,
    /// You moved up from a meetup's waitlist.
    WaitlistPromoted,
    /// A meetup you are going to or waiting for moved.
    MeetupChanged,
    /// A meetup you are going to or waiting for was cancelled.
    MeetupCancelled,
    /// A meetup you are going to starts within 24 hours.
    MeetupReminder,
    /// Someone asked to join an organisation you administer.
    JoinRequested,
    /// Your request to join an organisation was decided.
    JoinDecided,
    /// You were invited to co-author a case study.
    CoauthorInvited,
    /// A case study was published in something you follow.
    NewCaseStudy,
    /// An artefact was published in something you follow.
    NewArtefact,
    /// A meetup was scheduled in something you follow.
    NewMeetup,
    /// A new comment in a conversation you follow.
    NewComment,
    /// The moderators decided about something you reported.
    ReportDecided,
    /// The moderators hid, edited or restored something you wrote.
    ContentModerated,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 18] = [
        NotificationKind::Mentioned,
        NotificationKind::Replied,
        NotificationKind::CommentedOnYours,
        NotificationKind::ArtefactReused,
        NotificationKind::InterestRegistered,
        NotificationKind::WaitlistPromoted,
        NotificationKind::MeetupChanged,
        NotificationKind::MeetupCancelled,
        NotificationKind::MeetupReminder,
        NotificationKind::JoinRequested,
        NotificationKind::JoinDecided,
        NotificationKind::CoauthorInvited,
        NotificationKind::NewCaseStudy,
        NotificationKind::NewArtefact,
        NotificationKind::NewMeetup,
        NotificationKind::NewComment,
        NotificationKind::ReportDecided,
        NotificationKind::ContentModerated,
    ];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Mentioned => "mentioned",
            NotificationKind::Replied => "replied",
            NotificationKind::CommentedOnYours => "commented_on_yours",
            NotificationKind::ArtefactReused => "artefact_reused",
            NotificationKind::InterestRegistered => "interest_registered",
            NotificationKind::WaitlistPromoted => "waitlist_promoted",
            NotificationKind::MeetupChanged => "meetup_changed",
            NotificationKind::MeetupCancelled => "meetup_cancelled",
            NotificationKind::MeetupReminder => "meetup_reminder",
            NotificationKind::JoinRequested => "join_requested",
            NotificationKind::JoinDecided => "join_decided",
            NotificationKind::CoauthorInvited => "coauthor_invited",
            NotificationKind::NewCaseStudy => "new_case_study",
            NotificationKind::NewArtefact => "new_artefact",
            NotificationKind::NewMeetup => "new_meetup",
            NotificationKind::NewComment => "new_comment",
            NotificationKind::ReportDecided => "report_decided",
            NotificationKind::ContentModerated => "content_moderated",
        }
    }

    pub fn parse(text: &str) -> Option<NotificationKind> {
        NotificationKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

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

/// Where a notification goes: shown at once, or kept for the member's digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channel {
    Inbox,
    Digest,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Inbox => "inbox",
            Channel::Digest => "digest",
        }
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
        let kind: String = row.try_get("kind")?;
        let channel: String = row.try_get("channel")?;
        Ok(Notification {
            id: row.try_get("id")?,
            member_id: row.try_get("member_id")?,
            kind: NotificationKind::parse(&kind)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown notification kind {kind:?}").into()))?,
            channel: if channel == "digest" { Channel::Digest } else { Channel::Inbox },
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
