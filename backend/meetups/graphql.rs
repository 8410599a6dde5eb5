//! The meetups API: groups, events and RSVPs.

use async_graphql::{connection::Connection, Context, InputObject, Object, SimpleObject, ID};
use jiff::{civil, tz::TimeZone};

use super::{
    agenda::{self, AgendaItem, AgendaItemKind},
    events::{self, Event, EventStatus, Fields},
    rsvps::{self, Refusal, RsvpStatus},
    Group, GroupRole, Left,
};
use crate::{
    accounts::{self, Member},
    error::{AppError, AppResult},
    graphql::{
        relay::{self, Page},
        ContextExt, DateTime, UserError, UserErrorCode,
    },
    moderation::graphql::{self as moderation, HIDDEN_TITLE},
    organisations,
    topics::{self, Topic},
};

/// Most meetups `seriesEvents` lists: more than a five-year weekly series makes.
const SERIES_EVENTS_MAX: i64 = 500;

async fn viewer_role(ctx: &Context<'_>, group_id: i64) -> AppResult<Option<GroupRole>> {
    match ctx.viewer() {
        Some(viewer) => super::role(&ctx.state().db, group_id, viewer.member.id).await,
        None => Ok(None),
    }
}

#[Object(name = "MeetupGroup")]
impl Group {
    pub async fn id(&self) -> ID {
        relay::global_id("MeetupGroup", self.id)
    }

    /// How closely the viewer follows this group; null when not following (or signed out).
    async fn viewer_follow_level(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::notifications::follows::FollowLevel>> {
        Ok(crate::notifications::graphql::viewer_follow_level(ctx, "MeetupGroup", self.id).await?)
    }
    async fn slug(&self) -> &str {
        &self.slug
    }
    async fn name(&self) -> &str {
        &self.name
    }
    /// Sanitised HTML, rendered when it was saved.
    async fn description_html(&self) -> &str {
        &self.description_html
    }
    async fn description(&self) -> &str {
        &self.description_source
    }
    /// A region such as "North West", or "online".
    async fn region(&self) -> &str {
        &self.region
    }
    async fn topics(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Topic>> {
        let ids = ctx.loaders().meetup_group_topics.load_one(self.id).await?.unwrap_or_default();
        let found = ctx.loaders().topics.load_many(ids.iter().copied()).await?;
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }
    async fn member_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(ctx.loaders().meetup_group_member_counts.load_one(self.id).await?.unwrap_or(0))
    }
    /// The signed-in member's role here; null when they have not joined.
    async fn viewer_role(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GroupRole>> {
        Ok(viewer_role(ctx, self.id).await?)
    }
    /// Its organisers, who joined first first (at most 50).
    async fn organisers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Member>> {
        self.people(ctx, GroupRole::Organiser, 50).await
    }
    /// Its members who do not organise it, who joined first first: at most `first` (up to
    /// 500); `memberCount` says how many there are in all, organisers included.
    #[graphql(complexity = "first.clamp(0, 500) as usize * child_complexity")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] first: i64,
    ) -> async_graphql::Result<Vec<Member>> {
        self.people(ctx, GroupRole::Member, first).await
    }
    /// Events from now on, soonest first.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn upcoming_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Event>> {
        let page = Page::<(i64, i64)>::new(first, after, last, before)?;
        let rows = events::of_group(&ctx.state().db, self.id, crate::db::now_millis(), &page.keyset()).await?;
        Ok(page.connection(rows, |e| (e.starts_at, e.id)))
    }
}

/// A member's answer to an event.
#[derive(SimpleObject)]
pub struct Rsvp {
    pub status: RsvpStatus,
    /// Their place on the waitlist (1 is next); null unless waitlisted.
    pub waitlist_position: Option<i64>,
    /// Whether the organisers took them off this meetup: they cannot answer going again
    /// unless an organiser lets them (`readmitMeetupMember`).
    pub removed_by_organisers: bool,
}

/// Someone the organisers took off a meetup.
#[derive(SimpleObject)]
pub struct MeetupRemoval {
    pub member: Member,
    pub removed_at: DateTime,
}

/// Someone's answer, as the organisers see it in the list of who is coming.
#[derive(SimpleObject)]
pub struct MeetupAnswer {
    pub member: Member,
    pub status: RsvpStatus,
    /// When they last answered.
    pub answered_at: DateTime,
    /// Their place on the waitlist (1 is next); null unless waitlisted.
    pub waitlist_position: Option<i64>,
    /// Whether an organiser recorded that they came (see `recordMeetupAttendance`).
    pub attended: bool,
}

/// Where an event happens.
#[derive(SimpleObject)]
pub struct Venue {
    pub name: String,
    pub address: String,
    pub directions: String,
}

async fn is_organiser(ctx: &Context<'_>, group_id: i64) -> AppResult<bool> {
    Ok(viewer_role(ctx, group_id).await? == Some(GroupRole::Organiser))
}

impl Event {
    /// Whether the viewer sees the content: always unless hidden, and then only whoever
    /// scheduled it and the moderators.
    fn shows_content(&self, ctx: &Context<'_>) -> bool {
        self.hidden_at.is_none() || moderation::sees_hidden(ctx, &[self.created_by])
    }
}

#[Object(name = "MeetupEvent")]
impl Event {
    pub async fn id(&self) -> ID {
        relay::global_id("MeetupEvent", self.id)
    }
    /// "Hidden by the moderators" while hidden, but to whoever scheduled it and the
    /// moderators.
    async fn title(&self, ctx: &Context<'_>) -> &str {
        if self.shows_content(ctx) {
            &self.title
        } else {
            HIDDEN_TITLE
        }
    }
    /// Empty while hidden, but to whoever scheduled it and the moderators.
    async fn description_html(&self, ctx: &Context<'_>) -> &str {
        if self.shows_content(ctx) {
            &self.description_html
        } else {
            ""
        }
    }
    /// Empty while hidden, but to whoever scheduled it and the moderators.
    async fn description(&self, ctx: &Context<'_>) -> &str {
        if self.shows_content(ctx) {
            &self.description_source
        } else {
            ""
        }
    }
    /// Whether the moderators hid it: whoever scheduled it and the moderators still see
    /// it, with `hiddenReason`; everyone else sees a placeholder.
    async fn hidden(&self) -> bool {
        self.hidden_at.is_some()
    }
    /// Why it is hidden, for whoever scheduled it and the moderators; null otherwise.
    async fn hidden_reason(&self, ctx: &Context<'_>) -> Option<String> {
        moderation::hidden_reason(ctx, self.hidden_reason.as_deref(), &[self.created_by])
    }
    /// The IANA time zone the organiser set the times in.
    async fn time_zone(&self) -> &str {
        &self.time_zone
    }
    /// The start as wall-clock time in `timeZone` (`2027-03-11T16:00:00`).
    async fn local_start(&self) -> &str {
        &self.local_start
    }
    async fn local_end(&self) -> &str {
        &self.local_end
    }
    /// The start as an instant; show it in the reader's own zone.
    async fn starts_at(&self) -> DateTime {
        DateTime(self.starts_at)
    }
    async fn ends_at(&self) -> DateTime {
        DateTime(self.ends_at)
    }
    async fn venue(&self) -> Option<Venue> {
        (!self.venue_name.is_empty() || !self.venue_address.is_empty()).then(|| Venue {
            name: self.venue_name.clone(),
            address: self.venue_address.clone(),
            directions: self.venue_directions.clone(),
        })
    }
    /// Whether it has an online link (which only those going can see).
    async fn is_online(&self) -> bool {
        self.online_url.is_some()
    }
    /// The online link: only for members who are going, and organisers.
    async fn online_url(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        let Some(viewer) = ctx.viewer() else { return Ok(None) };
        let going = rsvps::of_member(&ctx.state().db, self.id, viewer.member.id)
            .await?
            .is_some_and(|(status, _)| status == RsvpStatus::Going);
        Ok((going || is_organiser(ctx, self.group_id).await?).then_some(self.online_url.as_deref()).flatten())
    }
    /// Null when there is no limit.
    async fn capacity(&self) -> Option<i64> {
        self.capacity
    }
    async fn going_count(&self) -> i64 {
        self.going_count
    }
    /// Seats left; null when there is no limit.
    async fn seats_left(&self) -> Option<i64> {
        self.capacity.map(|c| (c - self.going_count).max(0))
    }
    async fn status(&self) -> EventStatus {
        self.status
    }
    /// When it was cancelled; null while it is on (and after it is reinstated).
    async fn cancelled_at(&self) -> Option<DateTime> {
        self.cancelled_at.map(DateTime)
    }
    /// What the organiser told those going and waiting when cancelling it, as plain
    /// text; null when they wrote nothing or it is on. Shown to all who may see the
    /// event, hidden with its content.
    async fn cancellation_message(&self, ctx: &Context<'_>) -> Option<&str> {
        self.cancel_message.as_deref().filter(|_| self.shows_content(ctx))
    }
    /// iCalendar `SEQUENCE`: goes up when the time, date or place changes, or it is
    /// cancelled or reinstated.
    async fn sequence(&self) -> i64 {
        self.sequence
    }
    async fn updated_at(&self) -> DateTime {
        DateTime(self.updated_at)
    }
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        Ok(ctx.loaders().meetup_groups.load_one(self.group_id).await?)
    }
    /// The signed-in member's answer; null when they have not answered.
    async fn viewer_rsvp(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Rsvp>> {
        let Some(viewer) = ctx.viewer() else { return Ok(None) };
        Ok(viewer_answer(ctx, self.id, viewer.member.id).await?)
    }
    /// The recurring series it belongs to, described ("Second Thursday of each month at
    /// 16:00 (Europe/London), 12 times"); null for a one-off.
    async fn series(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        match self.series_id {
            Some(id) => Ok(super::series::describe(&ctx.state().db, id).await?),
            None => Ok(None),
        }
    }
    /// The rule of its series, as a form would show it; null for a one-off.
    async fn series_rule(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<MeetupSeriesRule>> {
        let Some(id) = self.series_id else { return Ok(None) };
        let Some(rule) = super::series::rule_of(&ctx.state().db, id).await? else { return Ok(None) };
        let (until, count) = match rule.end {
            super::recurrence::SeriesEnd::Until(date) => (Some(date.to_string()), None),
            super::recurrence::SeriesEnd::Count(count) => (None, Some(count as i32)),
        };
        Ok(Some(MeetupSeriesRule {
            frequency: rule.frequency,
            weekday_ordinal: rule.weekday_ordinal.map(i32::from),
            first_date: rule.start.date().to_string(),
            until,
            count,
        }))
    }
    /// Every meetup of its series, past and to come, cancelled or not, in time order
    /// (at most 500); empty for a one-off.
    async fn series_events(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Event>> {
        let Some(id) = self.series_id else { return Ok(vec![]) };
        Ok(events::of_series(&ctx.state().db, id, SERIES_EVENTS_MAX).await?)
    }
    /// The agenda, in order.
    async fn agenda(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AgendaItem>> {
        Ok(agenda::of_events(&ctx.state().db, &[self.id]).await?.remove(&self.id).unwrap_or_default())
    }
    /// Whether the signed-in member organises it.
    async fn viewer_is_organiser(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(is_organiser(ctx, self.group_id).await?)
    }
    /// Who is going, in the order they answered. Organisers only.
    async fn attendees(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Member>> {
        self.members_with(ctx, RsvpStatus::Going).await
    }
    /// The waitlist, first in line first. Organisers only.
    async fn waitlist(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Member>> {
        self.members_with(ctx, RsvpStatus::Waitlisted).await
    }
    /// Who the organisers took off this meetup, most recent first (at most 1,000).
    /// Organisers only.
    async fn removed_members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<MeetupRemoval>> {
        if !is_organiser(ctx, self.group_id).await? {
            return Err(AppError::Forbidden.into());
        }
        let rows = rsvps::removed_from(&ctx.state().db, self.id).await?;
        let found = ctx.loaders().members.load_many(rows.iter().map(|(id, _)| *id)).await?;
        Ok(rows
            .iter()
            .filter_map(|(id, at)| Some(MeetupRemoval { member: found.get(id)?.clone(), removed_at: DateTime(*at) }))
            .collect())
    }
    /// Whether it has started, so organisers may record who came.
    async fn started(&self) -> bool {
        self.starts_at <= crate::db::now_millis()
    }
    /// Who is going, in the order they answered, then the waitlist, first in line first
    /// (at most 1,000 of each), with when each answered and whether they came. Organisers
    /// only.
    async fn answers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<MeetupAnswer>> {
        let mut answers = Vec::new();
        let came = rsvps::attended(&ctx.state().db, self.id).await?;
        for status in [RsvpStatus::Going, RsvpStatus::Waitlisted] {
            let rows = self.answers_with(ctx, status).await?;
            let found = ctx.loaders().members.load_many(rows.iter().map(|(id, _)| *id)).await?;
            let members = rows.iter().filter_map(|(id, at)| Some((found.get(id)?.clone(), *at)));
            answers.extend(members.enumerate().map(|(place, (member, at))| MeetupAnswer {
                attended: status == RsvpStatus::Going && came.contains(&member.id),
                member,
                status,
                answered_at: DateTime(at),
                waitlist_position: (status == RsvpStatus::Waitlisted).then_some(place as i64 + 1),
            }));
        }
        Ok(answers)
    }
}

impl Group {
    async fn people(&self, ctx: &Context<'_>, role: GroupRole, limit: i64) -> async_graphql::Result<Vec<Member>> {
        let ids = super::people(&ctx.state().db, self.id, role, limit).await?;
        let found = ctx.loaders().members.load_many(ids.iter().copied()).await?;
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }
}

impl Event {
    async fn members_with(&self, ctx: &Context<'_>, status: RsvpStatus) -> async_graphql::Result<Vec<Member>> {
        let rows = self.answers_with(ctx, status).await?;
        let found = ctx.loaders().members.load_many(rows.iter().map(|(id, _)| *id)).await?;
        Ok(rows.iter().filter_map(|(id, _)| found.get(id).cloned()).collect())
    }

    /// (member id, when they answered) of those with `status`, in order; organisers only.
    async fn answers_with(&self, ctx: &Context<'_>, status: RsvpStatus) -> async_graphql::Result<Vec<(i64, i64)>> {
        if !is_organiser(ctx, self.group_id).await? {
            return Err(AppError::Forbidden.into());
        }
        Ok(rsvps::members_with(&ctx.state().db, self.id, status, 1_000).await?)
    }
}

#[Object]
impl AgendaItem {
    async fn id(&self) -> ID {
        relay::global_id("AgendaItem", self.id)
    }
    async fn kind(&self) -> AgendaItemKind {
        self.kind
    }
    async fn title(&self) -> &str {
        &self.title
    }
    /// The speaker, when they are a member.
    async fn speaker(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
        match self.speaker_member_id {
            Some(id) => Ok(ctx.loaders().members.load_one(id).await?),
            None => Ok(None),
        }
    }
    /// The speaker's name when they are not a member (or to show beside the member).
    async fn speaker_name(&self) -> &str {
        &self.speaker_name
    }
    async fn duration_minutes(&self) -> i64 {
        self.duration_minutes
    }
    /// When it starts: the meetup's start and the lengths of the items before it.
    async fn starts_at(&self) -> DateTime {
        DateTime(self.starts_at)
    }
    /// The case study it is about, if the viewer may see it.
    async fn case_study(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<crate::case_studies::CaseStudy>> {
        match self.case_study_id {
            Some(id) => Ok(crate::case_studies::graphql::visible(ctx, id).await?),
            None => Ok(None),
        }
    }
}

#[derive(Default)]
pub struct MeetupQuery;

#[Object]
impl MeetupQuery {
    /// Meetup groups, by name.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn meetup_groups(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Group>> {
        let page = Page::<(String, i64)>::new(first, after, last, before)?;
        let rows = super::list(&ctx.state().db, &page.keyset()).await?;
        Ok(page.connection(rows, |g| (g.name.clone(), g.id)))
    }

    async fn meetup_group(&self, ctx: &Context<'_>, slug: String) -> async_graphql::Result<Option<Group>> {
        Ok(super::by_slug(&ctx.state().db, &slug).await?)
    }

    /// Every group's meetups that have not started yet, soonest first (cancelled ones
    /// included, marked by their status).
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn upcoming_meetups(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Event>> {
        let page = Page::<(i64, i64)>::new(first, after, last, before)?;
        let rows = events::upcoming(&ctx.state().db, crate::db::now_millis(), &page.keyset()).await?;
        Ok(page.connection(rows, |e| (e.starts_at, e.id)))
    }

    /// The signed-in member's personal calendar address, when they have one that can be
    /// shown (see `resetCalendarFeed`).
    async fn calendar_feed(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<CalendarFeed>> {
        let viewer = ctx.require_viewer()?;
        let state = ctx.state();
        let base = state.config.public_url.as_str();
        Ok(match super::calendar::current_token(&state.db, viewer.member.id).await? {
            super::calendar::Feed::None => None,
            super::calendar::Feed::Hidden => Some(CalendarFeed { url: None }),
            super::calendar::Feed::Token(token) => {
                Some(CalendarFeed { url: Some(super::calendar::personal_url(base, &token)) })
            }
        })
    }

    /// The signed-in member's meetups (going or waitlisted) that have not ended, soonest
    /// first.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn my_meetups(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Event>> {
        let viewer = ctx.require_viewer()?;
        let page = Page::<(i64, i64)>::new(first, after, last, before)?;
        let db = &ctx.state().db;
        let ids = rsvps::upcoming_for(db, viewer.member.id, crate::db::now_millis(), &page.keyset()).await?;
        let found = events::by_ids(db, &ids).await?;
        let rows: Vec<Event> = ids.iter().filter_map(|id| found.get(id).cloned()).collect();
        Ok(page.connection(rows, |e| (e.starts_at, e.id)))
    }
}

#[derive(InputObject)]
pub struct CreateMeetupGroupInput {
    pub name: String,
    /// Markdown, at most 20 KB.
    #[graphql(default)]
    pub description: String,
    /// A region such as "North West", or "online".
    pub region: String,
    /// Up to five topics.
    #[graphql(default)]
    pub topic_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct MeetupGroupIdInput {
    pub group_id: ID,
}

#[derive(InputObject)]
pub struct AddCoOrganiserInput {
    pub group_id: ID,
    pub handle: String,
}

#[derive(SimpleObject, Default)]
pub struct MeetupGroupPayload {
    pub group: Option<Group>,
    pub user_errors: Vec<UserError>,
}

/// The fields an event is scheduled or changed with.
#[derive(InputObject)]
pub struct MeetupEventFields {
    pub title: String,
    #[graphql(default)]
    pub description: String,
    /// An IANA time zone, such as `Europe/London`.
    pub time_zone: String,
    /// Wall-clock time in `timeZone`, such as `2027-03-11T16:00`.
    pub start: String,
    pub end: String,
    #[graphql(default)]
    pub venue_name: String,
    #[graphql(default)]
    pub venue_address: String,
    #[graphql(default)]
    pub venue_directions: String,
    /// http or https; shown only to members who are going.
    pub online_url: Option<String>,
    /// Seats; null for no limit.
    pub capacity: Option<i64>,
    /// Up to five topics.
    #[graphql(default)]
    pub topic_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct ScheduleMeetupInput {
    pub group_id: ID,
    #[graphql(flatten)]
    pub fields: MeetupEventFields,
    /// Whether you, who schedule it, are going (you are unless this is false): you then
    /// take a seat and count among those going.
    #[graphql(default = true)]
    pub going: bool,
}

#[derive(InputObject)]
pub struct UpdateMeetupInput {
    pub id: ID,
    #[graphql(flatten)]
    pub fields: MeetupEventFields,
    /// For an occurrence of a series: this one only, or this and every later one (which
    /// keep their dates and take the new time, length, place and words).
    #[graphql(default)]
    pub scope: Occurrences,
}

#[derive(InputObject)]
pub struct MeetupEventIdInput {
    pub id: ID,
}

/// Which occurrences of a series a cancellation reaches.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq, Default)]
pub enum Occurrences {
    /// This one only.
    #[default]
    This,
    /// This one and every later one; the series makes no more.
    ThisAndFollowing,
}

async fn viewer_answer(ctx: &Context<'_>, event_id: i64, member_id: i64) -> AppResult<Option<Rsvp>> {
    let db = &ctx.state().db;
    let Some((status, waitlist_position)) = rsvps::of_member(db, event_id, member_id).await? else { return Ok(None) };
    let removed_by_organisers = status == RsvpStatus::NotGoing && rsvps::is_removed(db, event_id, member_id).await?;
    Ok(Some(Rsvp { status, waitlist_position, removed_by_organisers }))
}

#[derive(InputObject)]
pub struct CopyMeetupInput {
    /// The meetup to copy.
    pub id: ID,
    /// When the copy starts, as wall-clock time in the meetup's own time zone, such as
    /// `2027-03-11T16:00`. It lasts as long as the meetup it copies.
    pub start: String,
    /// Whether the copy has the same agenda (it does unless this is false).
    #[graphql(default = true)]
    pub agenda: bool,
    /// Whether you are going to the copy (you are unless this is false), taking a seat.
    #[graphql(default = true)]
    pub going: bool,
}

#[derive(InputObject)]
pub struct CancelMeetupInput {
    pub id: ID,
    #[graphql(default)]
    pub scope: Occurrences,
    /// For those going and waiting, who are told of the cancellation (in their
    /// notifications, and by mail if they chose it); also shown on the meetup's page.
    /// Plain text, up to 1,000 characters; optional.
    #[graphql(default)]
    pub message: String,
}

/// How often a series meets.
#[derive(InputObject)]
pub struct RecurrenceInput {
    pub frequency: super::recurrence::Frequency,
    /// For MONTHLY_BY_WEEKDAY: 1 to 4 for the first to fourth, -1 for the last; it must
    /// match the first occurrence's date.
    pub weekday_ordinal: Option<i32>,
    /// The last date an occurrence may start on (`2027-12-31`); or give `count`.
    pub until: Option<String>,
    /// How many occurrences in all (at most 200); or give `until`.
    pub count: Option<i32>,
}

/// The rule `recurrence` gives a series whose first meetup starts at `start` (wall-clock
/// time in `time_zone`) and lasts `duration_minutes`, checked; or why it cannot be.
fn checked_rule(
    recurrence: &RecurrenceInput,
    (start, duration_minutes, time_zone): (civil::DateTime, i64, &str),
) -> Result<super::recurrence::Rule, String> {
    let rule = super::recurrence::Rule {
        frequency: recurrence.frequency,
        weekday_ordinal: recurrence.weekday_ordinal.map(|n| n.clamp(-128, 127) as i8),
        start,
        duration_minutes,
        time_zone: time_zone.to_string(),
        end: series_end(recurrence, time_zone)?,
    };
    rule.check().map_err(|error| error.to_string())?;
    Ok(rule)
}

/// When a series given by `recurrence` ends, or why that cannot be.
fn series_end(recurrence: &RecurrenceInput, time_zone: &str) -> Result<super::recurrence::SeriesEnd, String> {
    match (recurrence.until.as_deref(), recurrence.count) {
        (Some(until), None) => {
            let date =
                until.trim().parse::<civil::Date>().map_err(|_| "Enter the series' last date such as 2027-12-31.")?;
            let zone = TimeZone::get(time_zone).unwrap_or(TimeZone::UTC);
            let today = jiff::Timestamp::now().to_zoned(zone).datetime();
            if date > events::latest_from(today).date() {
                return Err(format!(
                    "The series' last date can be at most {} years from now.",
                    events::AHEAD_MAX_YEARS
                ));
            }
            Ok(super::recurrence::SeriesEnd::Until(date))
        }
        (None, Some(count)) => Ok(super::recurrence::SeriesEnd::Count(u32::try_from(count).unwrap_or(0))),
        _ => Err("Say when the series ends: a last date or a number of meetups, not both.".into()),
    }
}

#[derive(InputObject)]
pub struct ChangeMeetupSeriesInput {
    /// The meetup of the series from which the new rule applies; it has not started.
    pub id: ID,
    /// The new rule's first date (`2027-03-11`), on or after that meetup's; that
    /// meetup's date when left out. The time of day, length and zone stay the series'.
    pub first_date: Option<String>,
    pub recurrence: RecurrenceInput,
    /// For those going to or waiting for a meetup the change cancels. Plain text, up to
    /// 1,000 characters; optional.
    #[graphql(default)]
    pub message: String,
}

/// A series' rule, for a form that changes it.
#[derive(SimpleObject)]
pub struct MeetupSeriesRule {
    pub frequency: super::recurrence::Frequency,
    /// 1 to 4, or -1 for the last; for MONTHLY_BY_WEEKDAY only.
    pub weekday_ordinal: Option<i32>,
    /// The first meetup's date under this rule (`2027-01-14`).
    pub first_date: String,
    /// The last date a meetup may start on; null when `count` is set.
    pub until: Option<String>,
    /// How many meetups in all from `firstDate`; null when `until` is set.
    pub count: Option<i32>,
}

#[derive(InputObject)]
pub struct ScheduleMeetupSeriesInput {
    pub group_id: ID,
    /// The first occurrence: its start and end set every occurrence's time and length.
    #[graphql(flatten)]
    pub fields: MeetupEventFields,
    pub recurrence: RecurrenceInput,
    /// Whether you, who start the series, are going to every occurrence (you are unless
    /// this is false), those made now and those made later while you organise the group.
    #[graphql(default = true)]
    pub going: bool,
}

#[derive(SimpleObject, Default)]
pub struct MeetupSeriesPayload {
    /// "Second Thursday of each month at 16:00 (Europe/London), 12 times".
    pub description: Option<String>,
    /// The occurrences made so far (those in the next six months). After a change of
    /// rule: those from the chosen meetup on, kept or made.
    pub events: Vec<Event>,
    /// After a change of rule: the meetups it cancelled, being on dates the new rule
    /// does not have.
    pub cancelled: Vec<Event>,
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct RsvpInput {
    pub event_id: ID,
    /// True for going (or the waitlist when it is full), false for not going.
    pub going: bool,
}

#[derive(SimpleObject, Default)]
pub struct MeetupEventPayload {
    pub event: Option<Event>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject, Default)]
pub struct RsvpPayload {
    pub event: Option<Event>,
    pub rsvp: Option<Rsvp>,
    pub user_errors: Vec<UserError>,
}

fn problem(field: &str, code: UserErrorCode, message: impl Into<String>) -> UserError {
    UserError::new(field, code, message)
}

async fn group_of(ctx: &Context<'_>, id: &ID) -> AppResult<Option<Group>> {
    let Ok(number) = relay::parse_global_id_of("MeetupGroup", id) else { return Ok(None) };
    Ok(super::by_ids(&ctx.state().db, &[number]).await?.remove(&number))
}

async fn event_of(ctx: &Context<'_>, id: &ID) -> AppResult<Option<Event>> {
    let Ok(number) = relay::parse_global_id_of("MeetupEvent", id) else { return Ok(None) };
    Ok(events::by_ids(&ctx.state().db, &[number]).await?.remove(&number))
}

/// Topic ids for a group or event: none to five.
async fn optional_topics(ctx: &Context<'_>, ids: &[ID], problems: &mut Vec<UserError>) -> AppResult<Vec<i64>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    match topics::graphql::resolve(ctx, ids).await? {
        Ok(ids) => Ok(ids),
        Err(error) => {
            problems.push(error);
            Ok(Vec::new())
        }
    }
}

fn local_time(field: &str, label: &str, text: &str, problems: &mut Vec<UserError>) -> Option<civil::DateTime> {
    match text.trim().parse::<civil::DateTime>() {
        Ok(time) => Some(time),
        Err(_) => {
            problems.push(problem(
                field,
                UserErrorCode::Invalid,
                format!("Enter the {label} as a date and time, such as 2027-03-11T16:00."),
            ));
            None
        }
    }
}

/// Checks an event's fields; all problems at once.
async fn validate(
    ctx: &Context<'_>,
    draft: &MeetupEventFields,
) -> AppResult<Result<(Fields, Vec<i64>), Vec<UserError>>> {
    let mut problems: Vec<UserError> = [
        crate::text::check_line("title", "Title", &draft.title, events::TITLE_MAX, true),
        crate::text::check_line("venueName", "The venue's name", &draft.venue_name, events::VENUE_TEXT_MAX, false),
        accounts::check_text("venueAddress", "The address", &draft.venue_address, events::VENUE_TEXT_MAX, false),
        accounts::check_text("venueDirections", "Directions", &draft.venue_directions, events::VENUE_TEXT_MAX, false),
    ]
    .into_iter()
    .flatten()
    .collect();
    if draft.description.len() > events::DESCRIPTION_MAX_BYTES {
        problems.push(problem("description", UserErrorCode::TooLong, "The description must be 20 KB or shorter."));
    }
    // Stored as parsed, so the link kept is the one a browser would follow.
    let online_url = match organisations::web_address(
        "onlineUrl",
        "The online link",
        draft.online_url.as_deref().unwrap_or(""),
        false,
    ) {
        Ok(url) => url,
        Err(error) => {
            problems.push(error);
            None
        }
    };
    if online_url.is_none() && draft.venue_name.trim().is_empty() && draft.venue_address.trim().is_empty() {
        problems.push(problem("venueName", UserErrorCode::Blank, "Give a venue, an online link, or both."));
    }
    if let Some(capacity) = draft.capacity {
        if !(1..=events::CAPACITY_MAX).contains(&capacity) {
            problems.push(problem(
                "capacity",
                UserErrorCode::Invalid,
                format!("The capacity must be between 1 and {}.", events::CAPACITY_MAX),
            ));
        }
    }
    let zone = TimeZone::get(draft.time_zone.trim()).ok().filter(|_| draft.time_zone.len() <= 64);
    if zone.is_none() {
        problems.push(problem("timeZone", UserErrorCode::Invalid, "Choose a time zone such as Europe/London."));
    }
    let start = local_time("start", "start", &draft.start, &mut problems);
    let end = local_time("end", "end", &draft.end, &mut problems);
    if let (Some(start), Some(end)) = (start, end) {
        let now = jiff::Timestamp::now().to_zoned(zone.clone().unwrap_or(TimeZone::UTC)).datetime();
        if let Some((field, message)) = events::check_span(start, end, now) {
            problems.push(problem(field, UserErrorCode::Invalid, message));
        } else if let Some(zone) = &zone {
            // Within those bounds the instants always exist; should one not, say so
            // rather than fail.
            if events::instant(start, zone).is_err() || events::instant(end, zone).is_err() {
                problems.push(problem("start", UserErrorCode::Invalid, "That time does not exist in this time zone."));
            }
        }
    }
    let topic_ids = optional_topics(ctx, &draft.topic_ids, &mut problems).await?;
    match (problems.is_empty(), start, end) {
        (true, Some(local_start), Some(local_end)) => Ok(Ok((
            Fields {
                title: draft.title.clone(),
                description: draft.description.clone(),
                time_zone: draft.time_zone.trim().to_string(),
                local_start,
                local_end,
                venue_name: draft.venue_name.clone(),
                venue_address: draft.venue_address.clone(),
                venue_directions: draft.venue_directions.clone(),
                online_url,
                capacity: draft.capacity,
            },
            topic_ids,
        ))),
        _ => Ok(Err(problems)),
    }
}

#[derive(Default)]
pub struct MeetupMutation;

#[Object]
impl MeetupMutation {
    /// Starts a meetup group, with you as its organiser.
    async fn create_meetup_group(
        &self,
        ctx: &Context<'_>,
        input: CreateMeetupGroupInput,
    ) -> async_graphql::Result<MeetupGroupPayload> {
        let viewer = ctx.require_viewer()?;
        let mut problems: Vec<UserError> = [
            crate::text::check_line("name", "Name", &input.name, super::NAME_MAX, true),
            crate::text::check_line("region", "Region", &input.region, super::REGION_MAX, true),
        ]
        .into_iter()
        .flatten()
        .collect();
        if input.description.len() > super::DESCRIPTION_MAX_BYTES {
            problems.push(problem("description", UserErrorCode::TooLong, "The description must be 20 KB or shorter."));
        }
        let topic_ids = optional_topics(ctx, &input.topic_ids, &mut problems).await?;
        if !problems.is_empty() {
            return Ok(MeetupGroupPayload { group: None, user_errors: problems });
        }
        let db = &ctx.state().db;
        let group =
            super::create(db, viewer.member.id, &input.name, &input.description, &input.region, &topic_ids).await?;
        Ok(MeetupGroupPayload { group: Some(group), user_errors: vec![] })
    }

    /// Joins a group as a member.
    async fn join_meetup_group(
        &self,
        ctx: &Context<'_>,
        input: MeetupGroupIdInput,
    ) -> async_graphql::Result<MeetupGroupPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(group) = group_of(ctx, &input.group_id).await? else {
            return Ok(MeetupGroupPayload { group: None, user_errors: vec![no_group()] });
        };
        super::set_role(&ctx.state().db, group.id, viewer.member.id, GroupRole::Member).await?;
        Ok(MeetupGroupPayload { group: Some(group), user_errors: vec![] })
    }

    /// Leaves a group (its last organiser cannot).
    async fn leave_meetup_group(
        &self,
        ctx: &Context<'_>,
        input: MeetupGroupIdInput,
    ) -> async_graphql::Result<MeetupGroupPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(group) = group_of(ctx, &input.group_id).await? else {
            return Ok(MeetupGroupPayload { group: None, user_errors: vec![no_group()] });
        };
        let user_errors = match super::leave(&ctx.state().db, group.id, viewer.member.id).await? {
            Left::Done => vec![],
            Left::NotAMember => {
                vec![problem("groupId", UserErrorCode::NotFound, "You are not a member of this group.")]
            }
            Left::LastOrganiser => vec![problem(
                "groupId",
                UserErrorCode::Invalid,
                "You are its only organiser: add a co-organiser before you leave.",
            )],
        };
        Ok(MeetupGroupPayload { group: Some(group), user_errors })
    }

    /// Makes another member a co-organiser. Organisers only.
    async fn add_co_organiser(
        &self,
        ctx: &Context<'_>,
        input: AddCoOrganiserInput,
    ) -> async_graphql::Result<MeetupGroupPayload> {
        ctx.require_viewer()?;
        let Some(group) = group_of(ctx, &input.group_id).await? else {
            return Ok(MeetupGroupPayload { group: None, user_errors: vec![no_group()] });
        };
        if !is_organiser(ctx, group.id).await? {
            return Err(AppError::Forbidden.into());
        }
        let db = &ctx.state().db;
        let Some(member) = accounts::member_by_handle(db, &input.handle).await? else {
            let error = problem("handle", UserErrorCode::NotFound, "There is no member with that handle.");
            return Ok(MeetupGroupPayload { group: Some(group), user_errors: vec![error] });
        };
        super::set_role(db, group.id, member.id, GroupRole::Organiser).await?;
        Ok(MeetupGroupPayload { group: Some(group), user_errors: vec![] })
    }

    /// Schedules a one-off event. Organisers only.
    async fn schedule_meetup(
        &self,
        ctx: &Context<'_>,
        input: ScheduleMeetupInput,
    ) -> async_graphql::Result<MeetupEventPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(group) = group_of(ctx, &input.group_id).await? else {
            return Ok(MeetupEventPayload { event: None, user_errors: vec![no_group()] });
        };
        if !is_organiser(ctx, group.id).await? {
            return Err(AppError::Forbidden.into());
        }
        let (fields, topic_ids) = match validate(ctx, &input.fields).await? {
            Ok(valid) => valid,
            Err(problems) => return Ok(MeetupEventPayload { event: None, user_errors: problems }),
        };
        let event =
            events::schedule(&ctx.state().db, group.id, viewer.member.id, &fields, &topic_ids, input.going).await?;
        Ok(MeetupEventPayload { event: Some(event), user_errors: vec![] })
    }

    /// Changes an event; a raised capacity promotes from the waitlist. Organisers only.
    async fn update_meetup(
        &self,
        ctx: &Context<'_>,
        input: UpdateMeetupInput,
    ) -> async_graphql::Result<MeetupEventPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(event) = event_of(ctx, &input.id).await? else {
            return Ok(MeetupEventPayload { event: None, user_errors: vec![no_event()] });
        };
        if !is_organiser(ctx, event.group_id).await? {
            return Err(AppError::Forbidden.into());
        }
        let (fields, topic_ids) = match validate(ctx, &input.fields).await? {
            Ok(valid) => valid,
            Err(problems) => return Ok(MeetupEventPayload { event: Some(event), user_errors: problems }),
        };
        let db = &ctx.state().db;
        if input.scope == Occurrences::ThisAndFollowing && event.series_id.is_some() {
            let same_day = event.local_start.get(..10) == Some(fields.local_start.date().to_string().as_str());
            if !same_day {
                let error = problem(
                    "start",
                    UserErrorCode::Invalid,
                    "To change this and later meetups, keep this one's date: change the time, or start a new series.",
                );
                return Ok(MeetupEventPayload { event: Some(event), user_errors: vec![error] });
            }
            super::series::update_following(db, &event, viewer.member.id, &fields, &topic_ids).await?;
            return Ok(MeetupEventPayload {
                event: events::by_ids(db, &[event.id]).await?.remove(&event.id),
                user_errors: vec![],
            });
        }
        let saved = events::update(db, event.id, viewer.member.id, &fields, &topic_ids).await?;
        Ok(MeetupEventPayload { event: Some(saved), user_errors: vec![] })
    }

    /// Schedules a recurring series ("second Thursday of each month at 16:00"); its
    /// occurrences for the next six months are made at once, later ones as time passes.
    /// Organisers only.
    async fn schedule_meetup_series(
        &self,
        ctx: &Context<'_>,
        input: ScheduleMeetupSeriesInput,
    ) -> async_graphql::Result<MeetupSeriesPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(group) = group_of(ctx, &input.group_id).await? else {
            return Ok(MeetupSeriesPayload { user_errors: vec![no_group()], ..Default::default() });
        };
        if !is_organiser(ctx, group.id).await? {
            return Err(AppError::Forbidden.into());
        }
        let (fields, topic_ids) = match validate(ctx, &input.fields).await? {
            Ok(valid) => valid,
            Err(problems) => return Ok(MeetupSeriesPayload { user_errors: problems, ..Default::default() }),
        };
        let refuse = |message: &str| MeetupSeriesPayload {
            user_errors: vec![problem("recurrence", UserErrorCode::Invalid, message)],
            ..Default::default()
        };
        let minutes = fields.local_start.until(fields.local_end).ok().and_then(|s| s.total(jiff::Unit::Minute).ok());
        let when = (fields.local_start, minutes.unwrap_or(0.0) as i64, fields.time_zone.as_str());
        let rule = match checked_rule(&input.recurrence, when) {
            Ok(rule) => rule,
            Err(message) => return Ok(refuse(&message)),
        };
        let db = &ctx.state().db;
        let (_, made) =
            super::series::create(db, group.id, viewer.member.id, &rule, &fields, &topic_ids, input.going).await?;
        Ok(MeetupSeriesPayload { description: Some(rule.describe()), events: made, ..Default::default() })
    }

    /// Changes how often a series meets, from one of its meetups on: how often, which
    /// weekday of the month, the first date and when it ends (the time of day, length
    /// and place stay; change those by editing a meetup with `THIS_AND_FOLLOWING`).
    /// Earlier meetups stay as they were. From that meetup on, those on the new dates
    /// stay, with who is going and their agenda; the others are cancelled, and those going
    /// and waiting are told, with `message`; the new dates get meetups. Organisers only.
    async fn change_meetup_series(
        &self,
        ctx: &Context<'_>,
        input: ChangeMeetupSeriesInput,
    ) -> async_graphql::Result<MeetupSeriesPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(event) = event_of(ctx, &input.id).await? else {
            return Ok(MeetupSeriesPayload { user_errors: vec![no_event()], ..Default::default() });
        };
        if !is_organiser(ctx, event.group_id).await? {
            return Err(AppError::Forbidden.into());
        }
        let refuse = |field: &str, message: &str| {
            Ok(MeetupSeriesPayload {
                user_errors: vec![problem(field, UserErrorCode::Invalid, message)],
                ..Default::default()
            })
        };
        let db = &ctx.state().db;
        let Some(current) = (match event.series_id {
            Some(id) => super::series::rule_of(db, id).await?,
            None => None,
        }) else {
            return refuse("id", "This meetup does not repeat, so it has no series to change.");
        };
        let now = jiff::Timestamp::now();
        if event.starts_at <= now.as_millisecond() {
            return refuse("id", "This meetup has started: change the series from one still to come.");
        }
        let label = "The message to attendees";
        if let Some(problem) = accounts::check_text("message", label, &input.message, events::CANCEL_MESSAGE_MAX, false)
        {
            return Ok(MeetupSeriesPayload { user_errors: vec![problem], ..Default::default() });
        }
        let from: civil::DateTime = event.local_start.parse().map_err(anyhow::Error::from)?;
        let first_date = match input.first_date.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            None => from.date(),
            Some(text) => match text.parse::<civil::Date>() {
                Ok(date) if date >= from.date() => date,
                Ok(_) => return refuse("firstDate", "The first date must be on or after this meetup's."),
                Err(_) => return refuse("firstDate", "Enter the first date such as 2027-03-11."),
            },
        };
        let when = (first_date.to_datetime(current.start.time()), current.duration_minutes, current.time_zone.as_str());
        let rule = match checked_rule(&input.recurrence, when) {
            Ok(rule) => rule,
            Err(message) => return refuse("recurrence", &message),
        };
        let zone = TimeZone::get(&rule.time_zone).unwrap_or(TimeZone::UTC);
        if events::instant(rule.start, &zone)? <= now {
            return refuse("firstDate", "The first date has passed: choose one to come.");
        }
        let message = Some(input.message.trim()).filter(|m| !m.is_empty());
        let done = super::series::change_rule(db, &event, viewer.member.id, &rule, message).await?;
        Ok(MeetupSeriesPayload {
            description: Some(rule.describe()),
            events: done.events,
            cancelled: done.cancelled,
            user_errors: vec![],
        })
    }

    /// Cancels an event (and, with `scope: THIS_AND_FOLLOWING`, every later occurrence of
    /// its series); it stays listed, and in calendars, as cancelled, and those going and
    /// waiting are told, with the organiser's message. Organisers only.
    async fn cancel_meetup(
        &self,
        ctx: &Context<'_>,
        input: CancelMeetupInput,
    ) -> async_graphql::Result<MeetupEventPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(event) = event_of(ctx, &input.id).await? else {
            return Ok(MeetupEventPayload { event: None, user_errors: vec![no_event()] });
        };
        if !is_organiser(ctx, event.group_id).await? {
            return Err(AppError::Forbidden.into());
        }
        let label = "The message to attendees";
        if let Some(problem) = accounts::check_text("message", label, &input.message, events::CANCEL_MESSAGE_MAX, false)
        {
            return Ok(MeetupEventPayload { event: Some(event), user_errors: vec![problem] });
        }
        let message = Some(input.message.trim()).filter(|m| !m.is_empty());
        let db = &ctx.state().db;
        if input.scope == Occurrences::ThisAndFollowing && event.series_id.is_some() {
            super::series::cancel_from(db, &event, viewer.member.id, message).await?;
            let event = events::by_ids(db, &[event.id]).await?.remove(&event.id);
            return Ok(MeetupEventPayload { event, user_errors: vec![] });
        }
        match events::cancel(db, event.id, viewer.member.id, message).await? {
            Some(cancelled) => Ok(MeetupEventPayload { event: Some(cancelled), user_errors: vec![] }),
            None => Ok(MeetupEventPayload {
                event: Some(event),
                user_errors: vec![problem("id", UserErrorCode::Invalid, "It is already cancelled.")],
            }),
        }
    }

    /// Schedules a copy of a meetup on a new date: the same title, description, place,
    /// seats, topics and (unless `agenda` is false) agenda, as a meetup of its own that
    /// nobody is going to yet but you (unless `going` is false). A cancelled meetup can be
    /// copied, to hold it another day. Organisers only.
    async fn copy_meetup(
        &self,
        ctx: &Context<'_>,
        input: CopyMeetupInput,
    ) -> async_graphql::Result<MeetupEventPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(source) = event_of(ctx, &input.id).await? else {
            return Ok(MeetupEventPayload { event: None, user_errors: vec![no_event()] });
        };
        if !is_organiser(ctx, source.group_id).await? {
            return Err(AppError::Forbidden.into());
        }
        let refuse = |field: &str, message: &str| {
            Ok(MeetupEventPayload { event: None, user_errors: vec![problem(field, UserErrorCode::Invalid, message)] })
        };
        if source.hidden_at.is_some() {
            return refuse("id", "The moderators hid this meetup, so it cannot be copied.");
        }
        let mut problems = Vec::new();
        let Some(start) = local_time("start", "start", &input.start, &mut problems) else {
            return Ok(MeetupEventPayload { event: None, user_errors: problems });
        };
        let zone = TimeZone::get(&source.time_zone).unwrap_or(TimeZone::UTC);
        let now = jiff::Timestamp::now().to_zoned(zone.clone()).datetime();
        // Bounds first (see `check_span`), so that adding the length cannot overflow.
        let earliest_end = start.checked_add(jiff::SignedDuration::from_mins(1)).unwrap_or(start);
        if let Some((field, message)) = events::check_span(start, earliest_end, now) {
            return refuse(field, &message);
        }
        let end = start.checked_add(events::span_of(&source)?).unwrap_or(start);
        if let Some((field, message)) = events::check_span(start, end, now) {
            return refuse(field, &message);
        }
        if events::instant(start, &zone).is_err() || events::instant(end, &zone).is_err() {
            return refuse("start", "That time does not exist in this time zone.");
        }
        let copy = events::copy(&ctx.state().db, &source, viewer.member.id, start, input.agenda, input.going).await?;
        Ok(MeetupEventPayload { event: Some(copy), user_errors: vec![] })
    }

    /// Puts a cancelled event back on as it was: those who were going are going again
    /// and the waitlist keeps its order; they are told it is on again. Not once it has
    /// ended. Organisers only.
    async fn reinstate_meetup(
        &self,
        ctx: &Context<'_>,
        input: MeetupEventIdInput,
    ) -> async_graphql::Result<MeetupEventPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(event) = event_of(ctx, &input.id).await? else {
            return Ok(MeetupEventPayload { event: None, user_errors: vec![no_event()] });
        };
        if !is_organiser(ctx, event.group_id).await? {
            return Err(AppError::Forbidden.into());
        }
        let refusal = match events::reinstate(&ctx.state().db, event.id, viewer.member.id).await? {
            Ok(reinstated) => return Ok(MeetupEventPayload { event: Some(reinstated), user_errors: vec![] }),
            Err(events::NotReinstated::NotCancelled) => "It is not cancelled.",
            Err(events::NotReinstated::Over) => "It has already ended, so it cannot be put back on.",
        };
        Ok(MeetupEventPayload { event: Some(event), user_errors: vec![problem("id", UserErrorCode::Invalid, refusal)] })
    }

    /// Says whether you are going. Going to a full event puts you on the waitlist, and
    /// you move up automatically when a seat frees.
    async fn rsvp(&self, ctx: &Context<'_>, input: RsvpInput) -> async_graphql::Result<RsvpPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(event) = event_of(ctx, &input.event_id).await? else {
            return Ok(RsvpPayload { user_errors: vec![no_event()], ..Default::default() });
        };
        let db = &ctx.state().db;
        let refused = |message: &str| RsvpPayload {
            event: Some(event.clone()),
            rsvp: None,
            user_errors: vec![problem("eventId", UserErrorCode::Invalid, message)],
        };
        match rsvps::answer(db, event.id, viewer.member.id, input.going).await? {
            Ok(_) => {}
            Err(Refusal::NoSuchEvent) => {
                return Ok(RsvpPayload { user_errors: vec![no_event()], ..Default::default() })
            }
            Err(Refusal::Cancelled) => return Ok(refused("This event is cancelled.")),
            Err(Refusal::Over) => return Ok(refused("This event is over.")),
            Err(Refusal::Removed) => {
                return Ok(refused(
                    "The organisers took you off this meetup, so you cannot say you are going. Ask them if you think this is a mistake.",
                ))
            }
        }
        let rsvp = viewer_answer(ctx, event.id, viewer.member.id).await?;
        let event = events::by_ids(db, &[event.id]).await?.remove(&event.id);
        Ok(RsvpPayload { event, rsvp, user_errors: vec![] })
    }
}

#[derive(InputObject)]
pub struct AddAgendaItemInput {
    pub event_id: ID,
    #[graphql(flatten)]
    pub item: AgendaItemFields,
}

/// What an agenda item says.
#[derive(InputObject)]
pub struct AgendaItemFields {
    pub kind: AgendaItemKind,
    pub title: String,
    /// A member's handle, for a speaker who is a member.
    pub speaker_handle: Option<String>,
    /// A name, for a speaker who is not a member.
    #[graphql(default)]
    pub speaker_name: String,
    pub duration_minutes: i64,
    /// The case study the item is about; it then shows "talked about at" this meetup.
    pub case_study_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateAgendaItemInput {
    pub id: ID,
    #[graphql(flatten)]
    pub item: AgendaItemFields,
}

#[derive(InputObject)]
pub struct CopyMeetupAgendaInput {
    /// The meetup whose agenda is copied.
    pub from_id: ID,
    /// The meetup that gets the copy, after any items it has; one of the same group's.
    pub to_id: ID,
}

/// The speaker member and case study `fields` name, checked; or what is wrong with them.
async fn checked_item(
    ctx: &Context<'_>,
    fields: &AgendaItemFields,
) -> AppResult<Result<(Option<i64>, Option<i64>), Vec<UserError>>> {
    let db = &ctx.state().db;
    let mut problems: Vec<UserError> = [
        crate::text::check_line("title", "Title", &fields.title, agenda::TITLE_MAX, true),
        crate::text::check_name(
            "speakerName",
            "The speaker's name",
            &fields.speaker_name,
            agenda::SPEAKER_NAME_MAX,
            false,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !(1..=agenda::DURATION_MAX_MINUTES).contains(&fields.duration_minutes) {
        problems.push(problem(
            "durationMinutes",
            UserErrorCode::Invalid,
            "The duration must be between 1 and 480 minutes.",
        ));
    }
    let mut speaker_member_id = None;
    if let Some(handle) = fields.speaker_handle.as_deref().filter(|h| !h.trim().is_empty()) {
        match accounts::member_by_handle(db, handle).await? {
            Some(member) => speaker_member_id = Some(member.id),
            None => {
                problems.push(problem("speakerHandle", UserErrorCode::NotFound, "There is no member with that handle."))
            }
        }
    }
    let mut case_study_id = None;
    if let Some(id) = &fields.case_study_id {
        let found = match relay::parse_global_id_of("CaseStudy", id) {
            Ok(number) => crate::case_studies::graphql::visible(ctx, number)
                .await?
                .filter(|c| c.status == crate::case_studies::CaseStudyStatus::Published),
            Err(_) => None,
        };
        match found {
            Some(case_study) => case_study_id = Some(case_study.id),
            None => {
                problems.push(problem("caseStudyId", UserErrorCode::NotFound, "There is no such published case study."))
            }
        }
    }
    Ok(if problems.is_empty() { Ok((speaker_member_id, case_study_id)) } else { Err(problems) })
}

fn new_item(
    fields: &AgendaItemFields,
    (speaker_member_id, case_study_id): (Option<i64>, Option<i64>),
) -> agenda::NewItem<'_> {
    agenda::NewItem {
        kind: fields.kind,
        title: &fields.title,
        speaker_member_id,
        speaker_name: &fields.speaker_name,
        duration_minutes: fields.duration_minutes,
        case_study_id,
    }
}

#[derive(InputObject)]
pub struct AgendaItemIdInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct MoveAgendaItemInput {
    pub id: ID,
    /// True to move it one place earlier, false for later.
    pub up: bool,
}

/// The agenda item behind `id` and its event, if the viewer organises it.
async fn organised_item(ctx: &Context<'_>, id: &ID) -> AppResult<Option<(AgendaItem, Event)>> {
    let Ok(number) = relay::parse_global_id_of("AgendaItem", id) else { return Ok(None) };
    let db = &ctx.state().db;
    let Some(item) = agenda::by_id(db, number).await? else { return Ok(None) };
    let Some(event) = events::by_ids(db, &[item.event_id]).await?.remove(&item.event_id) else { return Ok(None) };
    if !is_organiser(ctx, event.group_id).await? {
        return Err(AppError::Forbidden);
    }
    Ok(Some((item, event)))
}

#[derive(Default)]
pub struct AgendaMutation;

#[Object]
impl AgendaMutation {
    /// Adds an item at the end of a meetup's agenda (at most 50). Organisers only.
    async fn add_agenda_item(
        &self,
        ctx: &Context<'_>,
        input: AddAgendaItemInput,
    ) -> async_graphql::Result<MeetupEventPayload> {
        ctx.require_viewer()?;
        let Some(event) = event_of(ctx, &input.event_id).await? else {
            return Ok(MeetupEventPayload { event: None, user_errors: vec![no_event()] });
        };
        if !is_organiser(ctx, event.group_id).await? {
            return Err(AppError::Forbidden.into());
        }
        let checked = match checked_item(ctx, &input.item).await? {
            Ok(checked) => checked,
            Err(problems) => return Ok(MeetupEventPayload { event: Some(event), user_errors: problems }),
        };
        let db = &ctx.state().db;
        let item = new_item(&input.item, checked);
        if agenda::add(db, event.id, &item).await?.is_none() {
            let full = problem("eventId", UserErrorCode::LimitReached, "An agenda can have at most 50 items.");
            return Ok(MeetupEventPayload { event: Some(event), user_errors: vec![full] });
        }
        Ok(MeetupEventPayload { event: Some(event), user_errors: vec![] })
    }

    /// Removes an agenda item. Organisers only.
    async fn remove_agenda_item(
        &self,
        ctx: &Context<'_>,
        input: AgendaItemIdInput,
    ) -> async_graphql::Result<MeetupEventPayload> {
        ctx.require_viewer()?;
        let Some((item, event)) = organised_item(ctx, &input.id).await? else {
            return Ok(MeetupEventPayload { event: None, user_errors: vec![no_item()] });
        };
        agenda::remove(&ctx.state().db, item.id).await?;
        Ok(MeetupEventPayload { event: Some(event), user_errors: vec![] })
    }

    /// Moves an agenda item one place earlier or later. Organisers only.
    async fn move_agenda_item(
        &self,
        ctx: &Context<'_>,
        input: MoveAgendaItemInput,
    ) -> async_graphql::Result<MeetupEventPayload> {
        ctx.require_viewer()?;
        let Some((item, event)) = organised_item(ctx, &input.id).await? else {
            return Ok(MeetupEventPayload { event: None, user_errors: vec![no_item()] });
        };
        agenda::shift(&ctx.state().db, &item, input.up).await?;
        Ok(MeetupEventPayload { event: Some(event), user_errors: vec![] })
    }

    /// Changes what an agenda item says; it keeps its place. Organisers only.
    async fn update_agenda_item(
        &self,
        ctx: &Context<'_>,
        input: UpdateAgendaItemInput,
    ) -> async_graphql::Result<MeetupEventPayload> {
        ctx.require_viewer()?;
        let Some((item, event)) = organised_item(ctx, &input.id).await? else {
            return Ok(MeetupEventPayload { event: None, user_errors: vec![no_item()] });
        };
        let checked = match checked_item(ctx, &input.item).await? {
            Ok(checked) => checked,
            Err(problems) => return Ok(MeetupEventPayload { event: Some(event), user_errors: problems }),
        };
        agenda::update(&ctx.state().db, &item, &new_item(&input.item, checked)).await?;
        Ok(MeetupEventPayload { event: Some(event), user_errors: vec![] })
    }

    /// Copies one meetup's agenda onto another of the same group's, after the items it
    /// has (at most 50 in all, or nothing is copied). Organisers only.
    async fn copy_meetup_agenda(
        &self,
        ctx: &Context<'_>,
        input: CopyMeetupAgendaInput,
    ) -> async_graphql::Result<MeetupEventPayload> {
        ctx.require_viewer()?;
        let (Some(from), Some(to)) = (event_of(ctx, &input.from_id).await?, event_of(ctx, &input.to_id).await?) else {
            return Ok(MeetupEventPayload { event: None, user_errors: vec![no_event()] });
        };
        if !is_organiser(ctx, to.group_id).await? {
            return Err(AppError::Forbidden.into());
        }
        let refuse = |field: &str, code: UserErrorCode, message: &str| MeetupEventPayload {
            event: Some(to.clone()),
            user_errors: vec![problem(field, code, message)],
        };
        if from.group_id != to.group_id {
            return Ok(refuse("fromId", UserErrorCode::Invalid, "Copy an agenda from one of this group's meetups."));
        }
        if from.id == to.id {
            return Ok(refuse("toId", UserErrorCode::Invalid, "Choose another meetup to copy the agenda to."));
        }
        if to.status == EventStatus::Cancelled {
            return Ok(refuse("toId", UserErrorCode::Invalid, "That meetup is cancelled: put it back on first."));
        }
        if agenda::copy(&ctx.state().db, from.id, to.id).await?.is_none() {
            return Ok(refuse("toId", UserErrorCode::LimitReached, "An agenda can have at most 50 items."));
        }
        Ok(MeetupEventPayload { event: Some(to), user_errors: vec![] })
    }
}

fn no_item() -> UserError {
    problem("id", UserErrorCode::NotFound, "There is no such agenda item.")
}

/// A member's personal calendar address.
#[derive(SimpleObject)]
pub struct CalendarFeedPayload {
    /// Subscribe to this in a calendar app; keep it private. `calendarFeed` shows it
    /// again; resetting makes a new one (the old one then stops working).
    pub url: String,
}

/// The signed-in member's personal calendar.
#[derive(SimpleObject)]
pub struct CalendarFeed {
    /// The secret address; null for one made before Kettle kept addresses (it still
    /// works, but can only be replaced, not shown).
    pub url: Option<String>,
}

#[derive(Default)]
pub struct CalendarMutation;

#[Object]
impl CalendarMutation {
    /// Makes a new secret address for the signed-in member's calendar of the meetups
    /// they are going to; any previous address stops working.
    async fn reset_calendar_feed(&self, ctx: &Context<'_>) -> async_graphql::Result<CalendarFeedPayload> {
        let viewer = ctx.require_viewer()?;
        let state = ctx.state();
        let token = super::calendar::reset_token(&state.db, viewer.member.id).await?;
        Ok(CalendarFeedPayload { url: super::calendar::personal_url(state.config.public_url.as_str(), &token) })
    }
}

fn no_group() -> UserError {
    problem("groupId", UserErrorCode::NotFound, "There is no such group.")
}

fn no_event() -> UserError {
    problem("id", UserErrorCode::NotFound, "There is no such event.")
}

#[derive(InputObject)]
pub struct MeetupPersonInput {
    pub event_id: ID,
    pub member_id: ID,
}

#[derive(InputObject)]
pub struct RecordMeetupAttendanceInput {
    pub event_id: ID,
    /// The members going who came; everyone else going did not. At most 10,000.
    pub attended: Vec<ID>,
}

#[derive(InputObject)]
pub struct MessageMeetupAttendeesInput {
    pub event_id: ID,
    /// Plain text, up to 1,000 characters.
    pub message: String,
    /// Whether those on the waitlist are told too.
    #[graphql(default)]
    pub include_waitlist: bool,
}

#[derive(SimpleObject, Default)]
pub struct MessageMeetupAttendeesPayload {
    pub event: Option<Event>,
    /// How many members it was sent to.
    pub recipients: i64,
    pub user_errors: Vec<UserError>,
}

/// The event behind `id`, if there is one; `Forbidden` unless the viewer organises it.
async fn organised_event(ctx: &Context<'_>, id: &ID) -> AppResult<Option<Event>> {
    let Some(event) = event_of(ctx, id).await? else { return Ok(None) };
    if !is_organiser(ctx, event.group_id).await? {
        return Err(AppError::Forbidden);
    }
    Ok(Some(event))
}

fn no_member() -> UserError {
    problem("memberId", UserErrorCode::NotFound, "There is no such member.")
}

/// What organisers do with the people at a meetup: take someone off it (and let them
/// answer again), record who came, and write to those going.
#[derive(Default)]
pub struct MeetupPeopleMutation;

#[Object]
impl MeetupPeopleMutation {
    /// Takes someone off a meetup they are going to or waiting for: a seat they held goes
    /// to the first on the waitlist, they are told, and they cannot answer going again
    /// unless an organiser lets them (`readmitMeetupMember`). Not once it has ended.
    /// Organisers only.
    async fn remove_meetup_attendee(
        &self,
        ctx: &Context<'_>,
        input: MeetupPersonInput,
    ) -> async_graphql::Result<MeetupEventPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(event) = organised_event(ctx, &input.event_id).await? else {
            return Ok(MeetupEventPayload { event: None, user_errors: vec![no_event()] });
        };
        let refuse = |field: &str, code: UserErrorCode, message: &str| {
            Ok(MeetupEventPayload { event: Some(event.clone()), user_errors: vec![problem(field, code, message)] })
        };
        let Ok(member_id) = relay::parse_global_id_of("Member", &input.member_id) else {
            return Ok(MeetupEventPayload { event: Some(event), user_errors: vec![no_member()] });
        };
        if member_id == viewer.member.id {
            return refuse(
                "memberId",
                UserErrorCode::Invalid,
                "To stop going yourself, answer that you are not going.",
            );
        }
        let db = &ctx.state().db;
        match rsvps::remove(db, event.id, member_id, viewer.member.id).await? {
            Ok(_) => {}
            Err(rsvps::NotRemoved::NoSuchEvent) => {
                return Ok(MeetupEventPayload { event: None, user_errors: vec![no_event()] })
            }
            Err(rsvps::NotRemoved::Over) => {
                return refuse("eventId", UserErrorCode::Invalid, "It has ended, so nobody can be taken off it.")
            }
            Err(rsvps::NotRemoved::NotAnswered) => {
                return refuse("memberId", UserErrorCode::NotFound, "They are neither going nor on the waitlist.")
            }
        }
        Ok(MeetupEventPayload { event: events::by_ids(db, &[event.id]).await?.remove(&event.id), user_errors: vec![] })
    }

    /// Lets someone the organisers took off a meetup answer again; they are not put back,
    /// but may say they are going (taking a seat, or a place on the waitlist, like anyone).
    /// Organisers only.
    async fn readmit_meetup_member(
        &self,
        ctx: &Context<'_>,
        input: MeetupPersonInput,
    ) -> async_graphql::Result<MeetupEventPayload> {
        ctx.require_viewer()?;
        let Some(event) = organised_event(ctx, &input.event_id).await? else {
            return Ok(MeetupEventPayload { event: None, user_errors: vec![no_event()] });
        };
        let Ok(member_id) = relay::parse_global_id_of("Member", &input.member_id) else {
            return Ok(MeetupEventPayload { event: Some(event), user_errors: vec![no_member()] });
        };
        if !rsvps::readmit(&ctx.state().db, event.id, member_id).await? {
            let error = problem("memberId", UserErrorCode::NotFound, "They were not taken off this meetup.");
            return Ok(MeetupEventPayload { event: Some(event), user_errors: vec![error] });
        }
        Ok(MeetupEventPayload { event: Some(event), user_errors: vec![] })
    }

    /// Records who of those going came, once the meetup has started (not for a cancelled
    /// one): those listed came, everyone else going did not (saving again replaces the
    /// list). Organisers only.
    async fn record_meetup_attendance(
        &self,
        ctx: &Context<'_>,
        input: RecordMeetupAttendanceInput,
    ) -> async_graphql::Result<MeetupEventPayload> {
        ctx.require_viewer()?;
        let Some(event) = organised_event(ctx, &input.event_id).await? else {
            return Ok(MeetupEventPayload { event: None, user_errors: vec![no_event()] });
        };
        let refuse = |field: &str, code: UserErrorCode, message: &str| {
            Ok(MeetupEventPayload { event: Some(event.clone()), user_errors: vec![problem(field, code, message)] })
        };
        if input.attended.len() > events::CAPACITY_MAX as usize {
            return refuse("attended", UserErrorCode::TooLong, "At most 10,000 people can be recorded as having come.");
        }
        let mut ids = Vec::with_capacity(input.attended.len());
        for id in &input.attended {
            match relay::parse_global_id_of("Member", id) {
                Ok(number) => ids.push(number),
                Err(_) => return refuse("attended", UserErrorCode::NotFound, "There is no such member."),
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let db = &ctx.state().db;
        match rsvps::record_attendance(db, event.id, &ids).await? {
            Ok(()) => {}
            Err(rsvps::NotRecorded::NoSuchEvent) => {
                return Ok(MeetupEventPayload { event: None, user_errors: vec![no_event()] })
            }
            Err(rsvps::NotRecorded::NotStarted) => {
                return refuse("eventId", UserErrorCode::Invalid, "It has not started yet, so nobody has come.")
            }
            Err(rsvps::NotRecorded::Cancelled) => {
                return refuse("eventId", UserErrorCode::Invalid, "It was cancelled, so nobody came.")
            }
            Err(rsvps::NotRecorded::NotGoing(_)) => {
                return refuse(
                    "attended",
                    UserErrorCode::Invalid,
                    "Only those going can be recorded as having come: someone listed is not going.",
                )
            }
        }
        Ok(MeetupEventPayload { event: Some(event), user_errors: vec![] })
    }

    /// Writes to everyone going (and, with `includeWaitlist`, those waiting): each is
    /// told in their notifications, and by mail if they chose it. At most 3 messages a
    /// day per meetup, whichever organiser writes (`RATE_LIMITED` past that). Not from a
    /// cancelled meetup, nor one the moderators hid. Organisers only.
    async fn message_meetup_attendees(
        &self,
        ctx: &Context<'_>,
        input: MessageMeetupAttendeesInput,
    ) -> async_graphql::Result<MessageMeetupAttendeesPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(event) = organised_event(ctx, &input.event_id).await? else {
            return Ok(MessageMeetupAttendeesPayload { user_errors: vec![no_event()], ..Default::default() });
        };
        let refuse = |field: &str, code: UserErrorCode, message: &str| {
            Ok(MessageMeetupAttendeesPayload {
                event: Some(event.clone()),
                recipients: 0,
                user_errors: vec![problem(field, code, message)],
            })
        };
        if let Some(problem) = accounts::check_text("message", "Message", &input.message, rsvps::MESSAGE_MAX, true) {
            return Ok(MessageMeetupAttendeesPayload { event: Some(event), recipients: 0, user_errors: vec![problem] });
        }
        if event.status == EventStatus::Cancelled {
            return refuse("eventId", UserErrorCode::Invalid, "It is cancelled: those going were told when it was.");
        }
        if event.hidden_at.is_some() {
            return refuse(
                "eventId",
                UserErrorCode::Invalid,
                "The moderators hid this meetup, so it sends no messages.",
            );
        }
        let state = ctx.state();
        let recipients =
            rsvps::message_recipients(&state.db, event.id, viewer.member.id, input.include_waitlist).await?;
        if recipients == 0 {
            return refuse(
                "message",
                UserErrorCode::Invalid,
                "Nobody is going yet (but you), so there is nobody to tell.",
            );
        }
        // Counted only once the message would go, so a mistake corrected costs nothing.
        state.limiter.check(crate::limits::Limit::MeetupMessagesEvent, &event.id.to_string(), 1).await?;
        rsvps::send_message(&state.db, event.id, viewer.member.id, input.message.trim(), input.include_waitlist)
            .await?;
        Ok(MessageMeetupAttendeesPayload { event: Some(event), recipients, user_errors: vec![] })
    }
}
