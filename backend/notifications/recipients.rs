//! Who hears of an event, and what they are told.
//!
//! Two kinds of recipient, in this order of precedence (one notification per member and
//! event, the first that applies):
//! - the people an event is about (you were mentioned, your comment got a reply, your
//!   meetup moved, …): told whatever they follow, unless they switched that kind off;
//! - followers of what the event touched (its topics, organisation, group, authors, or
//!   the conversation itself), by level: `watching` to the inbox, `digest` to the digest,
//!   and a `muted` follow on any of them wins over the rest.
//!
//! Nobody hears of their own action, nor of what they may not see: a draft only reaches
//! its authors, a deleted comment nobody, a request to join only the organisation's
//! admins, and no summary carries a meetup's online link. Who may see what is read when
//! the event is dispatched, so someone who lost access since is not told.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::{follows::FollowLevel, Channel, NotificationKind};
use crate::{
    accounts,
    artefacts::{self, Artefact},
    case_studies::{self, CaseStudy, CaseStudyStatus},
    comments::{self, Subject},
    db::{self, Db},
    error::AppResult,
    meetups::{self, events::EventStatus},
    moderation::reviews,
    organisations,
    outbox::{self, Event, Recorded},
    topics::{self, Tagged},
};

/// What an event's notifications say and link to, and who gets them.
#[derive(Debug, Default)]
pub struct Plan {
    pub subject_type: &'static str,
    pub subject_id: i64,
    pub subject_title: String,
    /// Notifications about one thing that may stand as one entry share this key; `None`
    /// keeps each one apart.
    pub group_key: Option<String>,
    pub recipients: Vec<Recipient>,
}

#[derive(Debug, Clone)]
pub struct Recipient {
    pub member_id: i64,
    pub kind: NotificationKind,
    pub channel: Channel,
    pub summary: String,
    pub path: String,
}

/// Works out the plan for one event; an empty plan when nobody is to be told (or what
/// it was about is gone).
pub async fn plan(db: &Db, event: &Recorded) -> AppResult<Plan> {
    let Ok(payload) = &event.event else { return Ok(Plan::default()) };
    let mut planner = Planner::new(db, event.actor_id).await?;
    match payload {
        Event::MemberMentioned(e) => planner.mentioned(event, e.member_id).await?,
        Event::CommentPosted(e) => planner.comment(event, e.comment_id, e.parent_author_id).await?,
        Event::CaseStudyPublished(_) => planner.case_study_published(event.subject_id).await?,
        Event::ArtefactPublished(_) => planner.artefact_published(event.subject_id).await?,
        Event::ArtefactReused(e) => planner.artefact_reused(event.subject_id, e.organisation_id).await?,
        Event::InterestRegistered(_) => planner.interest(event.subject_id).await?,
        Event::CaseStudyCoAuthorInvited(e) => planner.coauthor_invited(event.subject_id, e.member_id).await?,
        Event::OrganisationJoinRequested(e) => planner.join_requested(event.subject_id, e.member_id).await?,
        Event::OrganisationJoinDecided(e) => planner.join_decided(event.subject_id, e.member_id, e.approved).await?,
        Event::MeetupScheduled(e) => planner.meetup_scheduled(event.subject_id, e.series_id).await?,
        Event::MeetupChanged(_) => {
            let summary = |title: &str| format!("“{title}” has a new time or place");
            planner.meetup_attendees(event.subject_id, NotificationKind::MeetupChanged, summary).await?
        }
        Event::MeetupCancelled(_) => {
            let summary = |title: &str| format!("“{title}” was cancelled");
            planner.meetup_attendees(event.subject_id, NotificationKind::MeetupCancelled, summary).await?
        }
        // Being put back on is a change to the meetup, as far as choosing what to hear goes.
        Event::MeetupReinstated(_) => {
            let summary = |title: &str| format!("“{title}” is back on: it is no longer cancelled");
            planner.meetup_attendees(event.subject_id, NotificationKind::MeetupChanged, summary).await?
        }
        Event::MeetupReminderDue(_) => {
            let summary = |title: &str| format!("“{title}” starts within 24 hours");
            planner.meetup_attendees(event.subject_id, NotificationKind::MeetupReminder, summary).await?
        }
        Event::MeetupRsvpPromoted(e) => planner.waitlist_promoted(event.subject_id, e.member_id).await?,
        Event::MeetupRsvpRemoved(e) => planner.rsvp_removed(event.subject_id, e.member_id, e.waitlisted).await?,
        Event::MeetupMessageSent(e) => planner.meetup_message(event.subject_id, &e.message, e.include_waitlist).await?,
        // An edit tells nobody: mentions are told once, when a case study is published.
        Event::CaseStudyUpdated(_) => {}
        Event::ReviewDecided(e) => planner.review_decided(e).await?,
    }
    planner.finish().await
}

struct Planner<'a> {
    db: &'a Db,
    actor_id: Option<i64>,
    actor_name: String,
    plan: Plan,
    told: HashSet<i64>,
}

impl<'a> Planner<'a> {
    async fn new(db: &'a Db, actor_id: Option<i64>) -> AppResult<Planner<'a>> {
        let actor_name = match actor_id {
            Some(id) => accounts::member_by_id(db, id).await?.map(|m| m.display_name),
            None => None,
        };
        Ok(Planner {
            db,
            actor_id,
            actor_name: actor_name.unwrap_or_else(|| "Someone".into()),
            plan: Plan::default(),
            told: HashSet::new(),
        })
    }

    fn about(&mut self, subject_type: &'static str, subject_id: i64, title: &str) {
        self.plan.subject_type = subject_type;
        self.plan.subject_id = subject_id;
        self.plan.subject_title = title.to_string();
    }

    /// Plans one notification unless the member is the actor or already planned.
    fn tell(&mut self, member_id: i64, kind: NotificationKind, channel: Channel, summary: &str, path: &str) {
        if Some(member_id) == self.actor_id || !self.told.insert(member_id) {
            return;
        }
        self.plan.recipients.push(Recipient {
            member_id,
            kind,
            channel,
            summary: summary.to_string(),
            path: path.to_string(),
        });
    }

    /// Plans followers of any of `targets` by their level; muted on any target wins.
    /// `only` restricts who may be told (those who can see the subject), when set.
    async fn tell_followers(
        &mut self,
        targets: &[(&str, i64)],
        kind: NotificationKind,
        summary: &str,
        path: &str,
        only: Option<&[i64]>,
    ) -> AppResult<()> {
        for (member_id, level) in follower_levels(self.db, targets).await? {
            if only.is_some_and(|allowed| !allowed.contains(&member_id)) {
                continue;
            }
            let channel = match level {
                Level::Watching => Channel::Inbox,
                Level::Digest => Channel::Digest,
                Level::Muted => continue,
            };
            self.tell(member_id, kind, channel, summary, path);
        }
        Ok(())
    }

    /// Drops planned notifications of kinds their members switched off, and members muting
    /// the conversation for the kinds a conversation's mute silences.
    async fn finish(mut self) -> AppResult<Plan> {
        if self.plan.recipients.is_empty() {
            return Ok(self.plan);
        }
        let ids: Vec<i64> = self.plan.recipients.iter().map(|r| r.member_id).collect();
        let mut off: HashSet<(i64, String)> = HashSet::new();
        for chunk in ids.chunks(500) {
            let rows = db::rows_by_ids(
                self.db,
                "SELECT member_id, kind FROM notification_kinds_off WHERE member_id IN",
                chunk,
            )
            .await?;
            for row in rows {
                off.insert((row.try_get(0)?, row.try_get(1)?));
            }
        }
        let muted: HashSet<i64> = if matches!(self.plan.subject_type, "CaseStudy" | "Artefact") {
            muting(self.db, self.plan.subject_type, self.plan.subject_id).await?
        } else {
            HashSet::new()
        };
        self.plan.recipients.retain(|r| {
            let silenced = muted.contains(&r.member_id)
                && matches!(
                    r.kind,
                    NotificationKind::Replied | NotificationKind::CommentedOnYours | NotificationKind::NewComment
                );
            !silenced && !off.contains(&(r.member_id, r.kind.as_str().to_string()))
        });
        Ok(self.plan)
    }

    async fn mentioned(&mut self, event: &Recorded, member_id: i64) -> AppResult<()> {
        let (case_study, artefact, comment_id) = match event.subject_type.as_str() {
            "Comment" => {
                let Some(comment) = comments::by_ids(self.db, &[event.subject_id]).await?.remove(&event.subject_id)
                else {
                    return Ok(());
                };
                if comment.deleted_at.is_some() {
                    return Ok(());
                }
                match comment.subject {
                    Subject::CaseStudy(id) => (Some(id), None, Some(comment.id)),
                    Subject::Artefact(id) => (None, Some(id), Some(comment.id)),
                }
            }
            "CaseStudy" => (Some(event.subject_id), None, None),
            "Artefact" => (None, Some(event.subject_id), None),
            _ => return Ok(()),
        };
        let anchor = comment_id.map(|id| format!("#comment-{id}")).unwrap_or_default();
        if let Some(id) = case_study {
            let Some((case_study, authors)) = self.case_study(id).await? else { return Ok(()) };
            if !case_study.visible_to(Some(member_id), &authors) {
                return Ok(());
            }
            self.about("CaseStudy", id, &case_study.title);
            let summary = format!("{} mentioned you in “{}”", self.actor_name, case_study.title);
            self.tell(
                member_id,
                NotificationKind::Mentioned,
                Channel::Inbox,
                &summary,
                &format!("/case-studies/{id}{anchor}"),
            );
        } else if let Some(id) = artefact {
            let Some(artefact) = self.artefact(id).await? else { return Ok(()) };
            self.about("Artefact", id, &artefact.title);
            let summary = format!("{} mentioned you in “{}”", self.actor_name, artefact.title);
            self.tell(
                member_id,
                NotificationKind::Mentioned,
                Channel::Inbox,
                &summary,
                &format!("/artefacts/{id}{anchor}"),
            );
        }
        Ok(())
    }

    async fn comment(&mut self, event: &Recorded, comment_id: i64, parent_author_id: Option<i64>) -> AppResult<()> {
        let Some(comment) = comments::by_ids(self.db, &[comment_id]).await?.remove(&comment_id) else { return Ok(()) };
        if comment.deleted_at.is_some() {
            return Ok(());
        }
        let (subject_type, title, path, owners, readers) = match event.subject_type.as_str() {
            "CaseStudy" => {
                let Some((case_study, authors)) = self.case_study(event.subject_id).await? else { return Ok(()) };
                let path = format!("/case-studies/{}#comment-{comment_id}", case_study.id);
                // Only the authors may see a draft, so only they may hear of its comments.
                let readers = (case_study.status == CaseStudyStatus::Draft).then(|| authors.clone());
                ("CaseStudy", case_study.title, path, authors, readers)
            }
            "Artefact" => {
                let Some(artefact) = self.artefact(event.subject_id).await? else { return Ok(()) };
                let path = format!("/artefacts/{}#comment-{comment_id}", artefact.id);
                ("Artefact", artefact.title, path, vec![artefact.created_by], None)
            }
            _ => return Ok(()),
        };
        self.about(subject_type, event.subject_id, &title);
        self.plan.group_key = Some(format!("comments:{subject_type}:{}", event.subject_id));
        // Those the comment mentions hear of it once, as a mention (its own event).
        let mentioned = sqlx::query(
            "SELECT payload FROM outbox_events WHERE kind = 'member.mentioned' AND subject_type = 'Comment' AND subject_id = $1",
        )
        .bind(comment_id)
        .fetch_all(&self.db.pool)
        .await?;
        for row in mentioned {
            if let Ok(Event::MemberMentioned(m)) = Event::decode("member.mentioned", &row.try_get::<String, _>(0)?) {
                self.told.insert(m.member_id);
            }
        }
        let may_see = |id: i64| readers.as_ref().is_none_or(|r| r.contains(&id));
        let actor = self.actor_name.clone();
        if let Some(parent_author) = parent_author_id.filter(|id| may_see(*id)) {
            let summary = format!("{actor} replied to your comment on “{title}”");
            self.tell(parent_author, NotificationKind::Replied, Channel::Inbox, &summary, &path);
        }
        let yours = if subject_type == "CaseStudy" { "your case study" } else { "your artefact" };
        for owner in owners.iter().copied().filter(|id| may_see(*id)) {
            let summary = format!("{actor} commented on {yours} “{title}”");
            self.tell(owner, NotificationKind::CommentedOnYours, Channel::Inbox, &summary, &path);
        }
        let summary = format!("{actor} commented on “{title}”");
        let targets = [(subject_type, event.subject_id)];
        self.tell_followers(&targets, NotificationKind::NewComment, &summary, &path, readers.as_deref()).await
    }

    async fn case_study_published(&mut self, id: i64) -> AppResult<()> {
        let Some((case_study, authors)) = self.case_study(id).await? else { return Ok(()) };
        if case_study.status != CaseStudyStatus::Published {
            return Ok(());
        }
        self.about("CaseStudy", id, &case_study.title);
        // Authors know: keep them out before followers are planned.
        self.told.extend(authors.iter().copied());
        let topics = topics::of_items(self.db, Tagged::CaseStudies, &[id]).await?.remove(&id).unwrap_or_default();
        let mut targets: Vec<(&str, i64)> = topics.iter().map(|t| ("Topic", t.id)).collect();
        targets.extend(case_study.organisation_id.map(|o| ("Organisation", o)));
        targets.extend(authors.iter().map(|a| ("Member", *a)));
        let summary = format!("{} published “{}”", self.actor_name, case_study.title);
        self.tell_followers(&targets, NotificationKind::NewCaseStudy, &summary, &format!("/case-studies/{id}"), None)
            .await
    }

    async fn artefact_published(&mut self, id: i64) -> AppResult<()> {
        let Some(artefact) = self.artefact(id).await? else { return Ok(()) };
        self.about("Artefact", id, &artefact.title);
        self.told.insert(artefact.created_by);
        let topics = topics::of_items(self.db, Tagged::Artefacts, &[id]).await?.remove(&id).unwrap_or_default();
        let mut targets: Vec<(&str, i64)> = topics.iter().map(|t| ("Topic", t.id)).collect();
        targets.extend(artefact.organisation_id.map(|o| ("Organisation", o)));
        targets.push(("Member", artefact.created_by));
        let summary = format!("{} published the artefact “{}”", self.actor_name, artefact.title);
        self.tell_followers(&targets, NotificationKind::NewArtefact, &summary, &format!("/artefacts/{id}"), None).await
    }

    async fn artefact_reused(&mut self, id: i64, organisation_id: i64) -> AppResult<()> {
        let Some(artefact) = self.artefact(id).await? else { return Ok(()) };
        if artefact.organisation_id == Some(organisation_id) {
            return Ok(());
        }
        let Some(reuser) = organisations::by_ids(self.db, &[organisation_id]).await?.remove(&organisation_id) else {
            return Ok(());
        };
        self.about("Artefact", id, &artefact.title);
        self.plan.group_key = Some(format!("reuses:Artefact:{id}"));
        let owners = match artefact.organisation_id {
            Some(owner) => organisation_members(self.db, owner, false).await?,
            None => vec![artefact.created_by],
        };
        let summary = format!("{} now reuses your artefact “{}”", reuser.name, artefact.title);
        for member in owners {
            self.tell(member, NotificationKind::ArtefactReused, Channel::Inbox, &summary, &format!("/artefacts/{id}"));
        }
        Ok(())
    }

    async fn interest(&mut self, id: i64) -> AppResult<()> {
        let Some((case_study, authors)) = self.case_study(id).await? else { return Ok(()) };
        self.about("CaseStudy", id, &case_study.title);
        self.plan.group_key = Some(format!("interest:CaseStudy:{id}"));
        let summary = format!("{} is working on the same problem as “{}”", self.actor_name, case_study.title);
        for author in authors {
            let path = format!("/case-studies/{id}");
            self.tell(author, NotificationKind::InterestRegistered, Channel::Inbox, &summary, &path);
        }
        Ok(())
    }

    async fn coauthor_invited(&mut self, id: i64, member_id: i64) -> AppResult<()> {
        let Some((case_study, _)) = self.case_study(id).await? else { return Ok(()) };
        // Only while the invitation is still open: one withdrawn or answered before
        // dispatch is no longer theirs to act on.
        let pending = sqlx::query(
            "SELECT 1 FROM case_study_coauthor_invitations WHERE case_study_id = $1 AND invitee_id = $2 AND status = 'pending'",
        )
        .bind(id)
        .bind(member_id)
        .fetch_optional(&self.db.pool)
        .await?;
        if pending.is_none() {
            return Ok(());
        }
        self.about("CaseStudy", id, &case_study.title);
        let summary = format!("{} invited you to co-author “{}”", self.actor_name, case_study.title);
        self.tell(member_id, NotificationKind::CoauthorInvited, Channel::Inbox, &summary, "/invitations");
        Ok(())
    }

    async fn join_requested(&mut self, organisation_id: i64, member_id: i64) -> AppResult<()> {
        let Some(organisation) = organisations::by_ids(self.db, &[organisation_id]).await?.remove(&organisation_id)
        else {
            return Ok(());
        };
        let still_asking = organisations::membership(self.db, organisation_id, member_id)
            .await?
            .is_some_and(|m| m.status == organisations::MembershipStatus::Requested);
        if !still_asking {
            return Ok(());
        }
        self.about("Organisation", organisation_id, &organisation.name);
        self.plan.group_key = Some(format!("requests:Organisation:{organisation_id}"));
        let summary = format!("{} asked to join {}", self.actor_name, organisation.name);
        let path = format!("/organisations/{}", organisation.slug);
        for admin in organisation_members(self.db, organisation_id, true).await? {
            self.tell(admin, NotificationKind::JoinRequested, Channel::Inbox, &summary, &path);
        }
        Ok(())
    }

    async fn join_decided(&mut self, organisation_id: i64, member_id: i64, approved: bool) -> AppResult<()> {
        let Some(organisation) = organisations::by_ids(self.db, &[organisation_id]).await?.remove(&organisation_id)
        else {
            return Ok(());
        };
        self.about("Organisation", organisation_id, &organisation.name);
        let outcome = if approved { "approved" } else { "declined" };
        let summary = format!("Your request to join {} was {outcome}", organisation.name);
        let path = format!("/organisations/{}", organisation.slug);
        self.tell(member_id, NotificationKind::JoinDecided, Channel::Inbox, &summary, &path);
        Ok(())
    }

    async fn meetup(&mut self, id: i64) -> AppResult<Option<meetups::events::Event>> {
        let event = meetups::events::by_ids(self.db, &[id]).await?.remove(&id);
        if let Some(event) = &event {
            self.about("MeetupEvent", id, &event.title);
        }
        Ok(event)
    }

    async fn meetup_scheduled(&mut self, id: i64, series_id: Option<i64>) -> AppResult<()> {
        let Some(event) = self.meetup(id).await? else { return Ok(()) };
        if event.status != EventStatus::Scheduled {
            return Ok(());
        }
        let Some(group) = meetups::by_ids(self.db, &[event.group_id]).await?.remove(&event.group_id) else {
            return Ok(());
        };
        // A series schedules many dates at once: they stand as one entry.
        self.plan.group_key = series_id.map(|s| format!("series:{s}"));
        let topics = meetup_topics(self.db, id).await?;
        let mut targets: Vec<(&str, i64)> = topics.iter().map(|t| ("Topic", *t)).collect();
        targets.push(("MeetupGroup", group.id));
        let summary = format!("New meetup in {}: “{}”", group.name, event.title);
        self.tell_followers(&targets, NotificationKind::NewMeetup, &summary, &format!("/meetups/events/{id}"), None)
            .await
    }

    /// Tells those going (and, unless it is a reminder, those waiting) about a meetup, in
    /// words made from its title.
    async fn meetup_attendees(
        &mut self,
        id: i64,
        kind: NotificationKind,
        summary: impl FnOnce(&str) -> String,
    ) -> AppResult<()> {
        let Some(event) = self.meetup(id).await? else { return Ok(()) };
        if kind != NotificationKind::MeetupCancelled && event.status != EventStatus::Scheduled {
            return Ok(());
        }
        let statuses = if kind == NotificationKind::MeetupReminder { "('going')" } else { "('going', 'waitlisted')" };
        let rows =
            sqlx::query(&format!("SELECT member_id FROM meetup_rsvps WHERE event_id = $1 AND status IN {statuses}"))
                .bind(id)
                .fetch_all(&self.db.pool)
                .await?;
        let summary = summary(&event.title);
        let path = format!("/meetups/events/{id}");
        for row in rows {
            self.tell(row.try_get(0)?, kind, Channel::Inbox, &summary, &path);
        }
        Ok(())
    }

    async fn waitlist_promoted(&mut self, id: i64, member_id: i64) -> AppResult<()> {
        let Some(event) = self.meetup(id).await? else { return Ok(()) };
        if event.status != EventStatus::Scheduled {
            return Ok(());
        }
        let summary = format!("You have a place at “{}”: you moved up from the waitlist", event.title);
        self.tell(
            member_id,
            NotificationKind::WaitlistPromoted,
            Channel::Inbox,
            &summary,
            &format!("/meetups/events/{id}"),
        );
        Ok(())
    }

    /// Tells a member an organiser took them off a meetup, unless they were let back since.
    async fn rsvp_removed(&mut self, id: i64, member_id: i64, waitlisted: bool) -> AppResult<()> {
        let Some(event) = self.meetup(id).await? else { return Ok(()) };
        let still_removed: Option<Option<i64>> =
            sqlx::query_scalar("SELECT removed_at FROM meetup_rsvps WHERE event_id = $1 AND member_id = $2")
                .bind(id)
                .bind(member_id)
                .fetch_optional(&self.db.pool)
                .await?;
        if still_removed.flatten().is_none() {
            return Ok(());
        }
        let from = if waitlisted { "the waitlist for" } else { "the list of those going to" };
        let summary =
            format!("The organisers took you off {from} “{}”; ask them if you think this is a mistake", event.title);
        self.tell(member_id, NotificationKind::RsvpRemoved, Channel::Inbox, &summary, &format!("/meetups/events/{id}"));
        Ok(())
    }

    /// Tells those going (and, when the organiser chose, those waiting) what an organiser
    /// wrote to them: the message is in the summary, so it reads the same on the site and
    /// in the mail. Those who answered since are told as they are when it is dispatched.
    async fn meetup_message(&mut self, id: i64, message: &str, include_waitlist: bool) -> AppResult<()> {
        let Some(event) = self.meetup(id).await? else { return Ok(()) };
        let statuses = if include_waitlist { "('going', 'waitlisted')" } else { "('going')" };
        let rows =
            sqlx::query(&format!("SELECT member_id FROM meetup_rsvps WHERE event_id = $1 AND status IN {statuses}"))
                .bind(id)
                .fetch_all(&self.db.pool)
                .await?;
        let summary = format!("{} wrote about “{}”: {}", self.actor_name, event.title, message);
        let path = format!("/meetups/events/{id}");
        for row in rows {
            self.tell(row.try_get(0)?, NotificationKind::MeetupMessage, Channel::Inbox, &summary, &path);
        }
        Ok(())
    }

    /// Tells the flaggers what became of their reports and the author what was done to
    /// what they wrote (not of a dismissal that changed nothing they could see). Names
    /// no moderator and no flagger.
    async fn review_decided(&mut self, e: &outbox::ReviewDecided) -> AppResult<()> {
        let kind = reviews::TargetType::parse(&e.target_type)?;
        let Some(review) = reviews::by_ids(self.db, &[e.review_id]).await?.remove(&e.review_id) else {
            return Ok(());
        };
        let Some(info) = reviews::describe(self.db, None, review.target).await? else { return Ok(()) };
        self.about(kind.node_name(), review.target.id, &info.title);
        let noun = kind.noun();
        let title = &info.title;
        let named =
            if kind == reviews::TargetType::Comment { title.clone() } else { format!("the {noun} “{title}”") };
        let (to_flaggers, to_author) = match e.decision.as_str() {
            "hide" => (
                format!("The moderators hid {named}, which you reported"),
                Some(format!("The moderators hid your {noun} “{title}”")),
            ),
            "edit" => (
                format!("The moderators edited {named}, which you reported"),
                Some(format!("The moderators edited your {noun} “{title}”")),
            ),
            "suspend" => (format!("The moderators acted on {named}, which you reported"), None),
            "restore" => (
                format!("The moderators reviewed {named}, which you reported, and left it up"),
                e.was_hidden.then(|| format!("Your {noun} “{title}” is shown again")),
            ),
            _ => (
                format!("The moderators reviewed {named}, which you reported, and left it up"),
                e.was_hidden.then(|| format!("Your {noun} “{title}” is shown again")),
            ),
        };
        // A member suspended is told by the suspension itself, and signed out.
        if let Some(summary) = to_author.filter(|_| kind != reviews::TargetType::Member) {
            for author in info.authors.clone() {
                self.tell(author, NotificationKind::ContentModerated, Channel::Inbox, &summary, &info.path);
            }
        }
        let rows = sqlx::query("SELECT flagger_id FROM flags WHERE review_id = $1 ORDER BY id")
            .bind(review.id)
            .fetch_all(&self.db.pool)
            .await?;
        let path = if info.public && kind != reviews::TargetType::Member { info.path.clone() } else { "/".to_string() };
        for row in rows {
            self.tell(row.try_get(0)?, NotificationKind::ReportDecided, Channel::Inbox, &to_flaggers, &path);
        }
        Ok(())
    }

    async fn case_study(&self, id: i64) -> AppResult<Option<(CaseStudy, Vec<i64>)>> {
        let Some(case_study) = case_studies::by_ids(self.db, &[id]).await?.remove(&id) else { return Ok(None) };
        let authors = case_studies::authors_of(self.db, &[id]).await?.remove(&id).unwrap_or_default();
        Ok(Some((case_study, authors)))
    }

    async fn artefact(&self, id: i64) -> AppResult<Option<Artefact>> {
        Ok(artefacts::by_ids(self.db, &[id]).await?.remove(&id))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Digest,
    Watching,
    Muted,
}

/// Each follower of any of `targets` with the level that decides: muted anywhere wins,
/// then watching, then digest.
async fn follower_levels(db: &Db, targets: &[(&str, i64)]) -> AppResult<Vec<(i64, Level)>> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let conditions: Vec<String> =
        (0..targets.len()).map(|i| format!("(target_type = ${} AND target_id = ${})", 2 * i + 1, 2 * i + 2)).collect();
    let sql = format!("SELECT member_id, level FROM follows WHERE {}", conditions.join(" OR "));
    let mut query = sqlx::query(&sql);
    for (target_type, target_id) in targets {
        query = query.bind(*target_type).bind(*target_id);
    }
    let mut levels: HashMap<i64, Level> = HashMap::new();
    for row in query.fetch_all(&db.pool).await? {
        let level = match row.try_get(1)? {
            FollowLevel::Watching => Level::Watching,
            FollowLevel::Muted => Level::Muted,
            FollowLevel::Digest => Level::Digest,
        };
        let entry = levels.entry(row.try_get(0)?).or_insert(level);
        *entry = (*entry).max(level);
    }
    let mut out: Vec<(i64, Level)> = levels.into_iter().collect();
    out.sort_unstable();
    Ok(out)
}

/// Members who muted one conversation.
async fn muting(db: &Db, target_type: &str, target_id: i64) -> AppResult<HashSet<i64>> {
    let rows =
        sqlx::query("SELECT member_id FROM follows WHERE target_type = $1 AND target_id = $2 AND level = 'muted'")
            .bind(target_type)
            .bind(target_id)
            .fetch_all(&db.pool)
            .await?;
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<sqlx::Result<_>>()?)
}

/// Approved members of an organisation (only its admins when `admins_only`).
async fn organisation_members(db: &Db, organisation_id: i64, admins_only: bool) -> AppResult<Vec<i64>> {
    let role = if admins_only { " AND role = 'admin'" } else { "" };
    let rows = sqlx::query(&format!(
        "SELECT member_id FROM organisation_members WHERE organisation_id = $1 AND status = 'approved'{role}"
    ))
    .bind(organisation_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<sqlx::Result<_>>()?)
}

async fn meetup_topics(db: &Db, event_id: i64) -> AppResult<Vec<i64>> {
    let rows = sqlx::query("SELECT topic_id FROM meetup_event_topics WHERE event_id = $1")
        .bind(event_id)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(|r| r.try_get(0)).collect::<sqlx::Result<_>>()?)
}
