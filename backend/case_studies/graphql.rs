//! The case study API: the `CaseStudy` type, the published lists, a Markdown preview, and
//! the mutations to create, edit, publish and archive; co-author invitations and their
//! answers (see [`super::coauthors`]).

use std::collections::HashSet;

use async_graphql::{connection::Connection, Context, InputObject, Object, SimpleObject, ID};
use sqlx::Row;

use super::{
    coauthors::{self, Invitation, InvitationStatus},
    marks::{self, Mark},
    CaseStudy, CaseStudyStatus, EditOutcome, Fields, Filter, Phase,
};
use crate::{
    accounts::{self, Member},
    artefacts::Artefact,
    comments::{graphql::CommentThreads, Comment, Subject},
    error::{AppError, AppResult},
    graphql::{
        relay::{self, Page},
        ContextExt, DateTime, Prefetch, UserError, UserErrorCode,
    },
    history,
    moderation::graphql::{self as moderation, HIDDEN_TITLE},
    organisations::{self, Organisation},
    topics::{self, Topic},
};

/// Loads a case study by id if the viewer may see it.
pub async fn visible(ctx: &Context<'_>, id: i64) -> AppResult<Option<CaseStudy>> {
    let Some(case_study) = ctx.loaders().case_studies.load_one(id).await? else { return Ok(None) };
    let authors = ctx.loaders().case_study_authors.load_one(id).await?.unwrap_or_default();
    let viewer = ctx.viewer().map(|v| v.member.id);
    Ok(case_study.visible_to(viewer, &authors).then_some(case_study))
}

async fn is_author(ctx: &Context<'_>, case_study: &CaseStudy) -> AppResult<bool> {
    let Some(viewer) = ctx.viewer() else { return Ok(false) };
    let authors = ctx.loaders().case_study_authors.load_one(case_study.id).await?.unwrap_or_default();
    Ok(authors.contains(&viewer.member.id))
}

/// Forgets the authors and pending co-authors this request loaded, after a mutation
/// changed them, so its payload (and any later field) shows them as they are now.
fn forget_authors(ctx: &Context<'_>) {
    ctx.loaders().case_study_authors.clear::<i64>();
    ctx.loaders().case_study_pending_co_authors.clear::<i64>();
}

impl CaseStudy {
    /// Whether the viewer sees the content: always unless hidden, and then only its
    /// authors and the moderators.
    async fn shows_content(&self, ctx: &Context<'_>) -> AppResult<bool> {
        if self.hidden_at.is_none() {
            return Ok(true);
        }
        let authors = ctx.loaders().case_study_authors.load_one(self.id).await?.unwrap_or_default();
        Ok(moderation::sees_hidden(ctx, &authors))
    }

    /// The body, if the viewer sees the content (see [`Self::shows_content`]).
    async fn visible_body(&self, ctx: &Context<'_>) -> AppResult<Option<super::Body>> {
        if !self.shows_content(ctx).await? {
            return Ok(None);
        }
        ctx.loaders().case_study_bodies.load_one(self.id).await
    }
}

#[Object]
impl CaseStudy {
    pub async fn id(&self) -> ID {
        relay::global_id("CaseStudy", self.id)
    }

    /// How closely the viewer follows this case study's conversation; null when not following (or signed out).
    async fn viewer_follow_level(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::notifications::follows::FollowLevel>> {
        Ok(crate::notifications::graphql::viewer_follow_level(ctx, "CaseStudy", self.id).await?)
    }

    /// "Hidden by the moderators" for everyone but its authors and the moderators while
    /// it is hidden.
    async fn title(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(if self.shows_content(ctx).await? { self.title.clone() } else { HIDDEN_TITLE.to_string() })
    }

    /// Plain text, at most 300 characters; empty while hidden, but to its authors and
    /// the moderators.
    async fn summary(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(if self.shows_content(ctx).await? { self.summary.clone() } else { String::new() })
    }

    /// The body as sanitised HTML, rendered when it was saved; empty while hidden, but to
    /// its authors and the moderators.
    async fn body_html(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(self.visible_body(ctx).await?.map(|body| body.html).unwrap_or_default())
    }

    /// The body as its authors wrote it, in Markdown; empty while hidden, but to its
    /// authors and the moderators.
    #[graphql(name = "body")]
    async fn body_source(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(self.visible_body(ctx).await?.map(|body| body.source).unwrap_or_default())
    }

    /// Whether the moderators hid it: its authors and the moderators still see it, with
    /// `hiddenReason`; everyone else sees a placeholder.
    async fn hidden(&self) -> bool {
        self.hidden_at.is_some()
    }

    /// Why it is hidden, for its authors and the moderators; null otherwise.
    async fn hidden_reason(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        if self.hidden_at.is_none() {
            return Ok(None);
        }
        let authors = ctx.loaders().case_study_authors.load_one(self.id).await?.unwrap_or_default();
        Ok(moderation::hidden_reason(ctx, self.hidden_reason.as_deref(), &authors))
    }

    async fn phase(&self) -> Phase {
        self.phase
    }

    async fn status(&self) -> CaseStudyStatus {
        self.status
    }

    /// Goes up by one with every edit; send it back with `updateCaseStudy`.
    async fn version(&self) -> i64 {
        self.version
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.created_at)
    }

    async fn updated_at(&self) -> DateTime {
        DateTime(self.updated_at)
    }

    async fn published_at(&self) -> Option<DateTime> {
        self.published_at.map(DateTime)
    }

    async fn organisation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organisation>> {
        match self.organisation_id {
            Some(id) => Ok(ctx.loaders().organisations.load_one(id).await?),
            None => Ok(None),
        }
    }

    /// By name.
    async fn topics(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Topic>> {
        Ok(ctx.loaders().case_study_topics.load_one(self.id).await?.unwrap_or_default())
    }

    /// The author first, then the co-authors who accepted their invitation.
    async fn authors(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Member>> {
        let ids = ctx.loaders().case_study_authors.load_one(self.id).await?.unwrap_or_default();
        let members = ctx.loaders().members.load_many(ids.iter().copied()).await?;
        Ok(ids.iter().filter_map(|id| members.get(id).cloned()).collect())
    }

    /// Members invited to co-author it who have not answered yet, in the order they were
    /// invited. Only its authors see them; empty for everyone else.
    async fn pending_co_authors(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Member>> {
        if !is_author(ctx, self).await? {
            return Ok(Vec::new());
        }
        let ids = ctx.loaders().case_study_pending_co_authors.load_one(self.id).await?.unwrap_or_default();
        let members = ctx.loaders().members.load_many(ids.iter().copied()).await?;
        Ok(ids.iter().filter_map(|id| members.get(id).cloned()).collect())
    }

    /// How many members marked it useful.
    async fn useful_count(&self) -> i64 {
        self.useful_count
    }

    /// Whether the signed-in member marked it useful (false when signed out).
    async fn viewer_marked_useful(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let Some(viewer) = ctx.viewer() else { return Ok(false) };
        Ok(marks::has(&ctx.state().db, self.id, viewer.member.id, Mark::Useful).await?)
    }

    /// Whether the signed-in member bookmarked it (false when signed out).
    async fn viewer_bookmarked(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let Some(viewer) = ctx.viewer() else { return Ok(false) };
        Ok(marks::has(&ctx.state().db, self.id, viewer.member.id, Mark::Bookmark).await?)
    }

    /// Members who said "we're working on this too", with their notes. Only its authors
    /// may see who.
    async fn interest(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Interest>> {
        if !is_author(ctx, self).await? {
            return Err(AppError::Forbidden.into());
        }
        let rows = marks::interests(&ctx.state().db, self.id).await?;
        let members = ctx.loaders().members.load_many(rows.iter().map(|(id, _)| *id)).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, note)| members.get(&id).cloned().map(|member| Interest { member, note }))
            .collect())
    }

    /// How many artefacts link to it.
    async fn artefact_count(&self) -> i64 {
        self.artefact_count
    }

    /// The artefacts it produced or used, newest first.
    async fn artefacts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Artefact>> {
        let ids = ctx.loaders().case_study_artefacts.load_one(self.id).await?.unwrap_or_default();
        let found = ctx.loaders().artefacts.load_many(ids.iter().copied()).await?;
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    /// Top-level comments, oldest first, each with its replies (none on a draft).
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn comments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Comment>> {
        CommentThreads::page(ctx, Subject::CaseStudy(self.id), first, after, last, before).await
    }

    /// How many comments it has, replies included.
    async fn comment_count(&self) -> i64 {
        self.comment_count
    }

    /// Meetups where it is on the agenda, soonest first: "talked about at …".
    async fn talked_about_at(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<crate::meetups::events::Event>> {
        let db = &ctx.state().db;
        let ids = crate::meetups::agenda::events_about(db, &[self.id]).await?.remove(&self.id).unwrap_or_default();
        let found = crate::meetups::events::by_ids(db, &ids).await?;
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    /// Whether the signed-in member may edit this (they are one of its authors).
    async fn viewer_can_edit(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(is_author(ctx, self).await?)
    }

    /// Every saved version, newest first, each with the note its author wrote when saving
    /// it: all of them for its authors; for everyone else, from the version that was
    /// current when it was first published on (at most 201; none while it is hidden).
    async fn versions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CaseStudyVersion>> {
        let origin = self.history(ctx).await?;
        Ok(history::versions(&ctx.state().db, origin).await?.into_iter().map(CaseStudyVersion).collect())
    }

    /// Two versions compared word by word (title, summary and Markdown body): the runs of
    /// text that stayed, went and came. Null when either is not among the `versions` you
    /// may see.
    async fn compare_versions(
        &self,
        ctx: &Context<'_>,
        from: i64,
        to: i64,
    ) -> async_graphql::Result<Option<CaseStudyComparison>> {
        let db = &ctx.state().db;
        let versions = history::versions(db, self.history(ctx).await?).await?;
        let find = |number: i64| versions.iter().find(|v| v.version == number);
        let (Some(old), Some(new)) = (find(from), find(to)) else { return Ok(None) };
        let (old, new) =
            futures_util::try_join!(CaseStudyVersion::text_of(db, old), CaseStudyVersion::text_of(db, new))?;
        let [title, summary, body] =
            history::compare([(old.title, new.title), (old.summary, new.summary), (old.body, new.body)]).await?;
        Ok(Some(CaseStudyComparison { from, to, title, summary, body }))
    }
}

impl CaseStudy {
    /// Where its history starts and how much of it the viewer sees.
    async fn history(&self, ctx: &Context<'_>) -> AppResult<history::Origin> {
        let seen = if is_author(ctx, self).await? {
            history::Seen::All
        } else if !self.shows_content(ctx).await? {
            history::Seen::Nothing
        } else {
            self.published_at.map_or(history::Seen::Nothing, history::Seen::From)
        };
        Ok(history::Origin {
            subject: history::Subject::CaseStudy,
            id: self.id,
            version: self.version,
            created_at: self.created_at,
            created_by: self.author_id,
            seen,
        })
    }
}

/// What a deletion deleted: its id, or null with the reason in `userErrors`.
#[derive(SimpleObject)]
#[graphql(name = "DeleteCaseStudyDraftPayload")]
pub struct DeletedPayload {
    pub deleted_id: Option<ID>,
    pub user_errors: Vec<UserError>,
}

/// Two versions of a case study, compared word by word.
#[derive(SimpleObject)]
pub struct CaseStudyComparison {
    pub from: i64,
    pub to: i64,
    pub title: Vec<history::DiffPart>,
    pub summary: Vec<history::DiffPart>,
    /// The Markdown source's words, not the rendered page's.
    pub body: Vec<history::DiffPart>,
}

/// One saved version of a case study (see [`history::Version`]).
pub struct CaseStudyVersion(history::Version);

impl CaseStudyVersion {
    async fn text_of(db: &crate::db::Db, version: &history::Version) -> AppResult<CaseStudyVersionText> {
        let row = history::text(db, version).await?;
        Ok(CaseStudyVersionText {
            title: row.try_get("title")?,
            summary: row.try_get("summary")?,
            body: row.try_get("body_source")?,
            phase: row.try_get("phase")?,
        })
    }
}

/// One saved version of a case study.
#[Object]
impl CaseStudyVersion {
    #[graphql(flatten)]
    async fn saved(&self) -> &history::Version {
        &self.0
    }
    /// Its whole text as it was saved.
    async fn text(&self, ctx: &Context<'_>) -> async_graphql::Result<CaseStudyVersionText> {
        Ok(Self::text_of(&ctx.state().db, &self.0).await?)
    }
}

/// A version's text.
#[derive(SimpleObject)]
pub struct CaseStudyVersionText {
    pub title: String,
    pub summary: String,
    /// Markdown.
    pub body: String,
    pub phase: Phase,
}

/// A case study the signed-in member bookmarked, and when.
#[derive(SimpleObject)]
pub struct Bookmark {
    pub bookmarked_at: DateTime,
    pub case_study: CaseStudy,
}

/// A member working on the same thing.
#[derive(SimpleObject)]
pub struct Interest {
    pub member: Member,
    pub note: String,
}

/// An invitation to co-author a case study. Only the member invited sees it. Until they
/// accept they are not one of its authors: it does not list them, and they cannot edit
/// it, nor open it while it is a draft.
#[Object(name = "CoAuthorInvitation")]
impl Invitation {
    /// The case study's id: answer with it in `respondToCoAuthorInvitation`.
    async fn case_study_id(&self) -> ID {
        relay::global_id("CaseStudy", self.case_study_id)
    }

    /// The case study's title as it is now. Shown even while the case study is a draft
    /// you cannot open, so that you know what you are accepting; nothing else of a draft
    /// is.
    async fn title(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let case_study = ctx.loaders().case_studies.load_one(self.case_study_id).await?;
        Ok(case_study.map(|c| c.title).unwrap_or_default())
    }

    /// The case study itself when you may see it: once it is published, or once you have
    /// accepted. Null while it is a draft you have not accepted.
    async fn case_study(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<CaseStudy>> {
        Ok(visible(ctx, self.case_study_id).await?)
    }

    /// The author who invited you; null if they have since deleted their account.
    async fn invited_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
        match self.invited_by {
            Some(id) => Ok(ctx.loaders().members.load_one(id).await?),
            None => Ok(None),
        }
    }

    async fn status(&self) -> InvitationStatus {
        self.status
    }

    async fn invited_at(&self) -> DateTime {
        DateTime(self.created_at)
    }

    /// When it was accepted, declined or withdrawn.
    async fn responded_at(&self) -> Option<DateTime> {
        self.responded_at.map(DateTime)
    }
}

/// Loads, for a whole page at once, the related objects the query selects (authors,
/// topics, organisation), so each costs one statement per kind whatever the page size;
/// the items' own resolvers then find them in the loaders' caches.
async fn prefetch(ctx: &Context<'_>, rows: &[CaseStudy]) -> AppResult<()> {
    prefetch_under(ctx, rows, None).await
}

/// [`prefetch`] for a connection whose nodes hold the case study in a field (`wrapper`),
/// as a bookmark does.
async fn prefetch_under(ctx: &Context<'_>, rows: &[CaseStudy], wrapper: Option<&str>) -> AppResult<()> {
    let loaders = ctx.loaders();
    loaders.case_studies.feed_many(rows.iter().map(|c| (c.id, c.clone()))).await;
    let look_ahead = ctx.look_ahead();
    let wants = |field: &str| {
        let (edges, nodes) = (look_ahead.field("edges").field("node"), look_ahead.field("nodes"));
        match wrapper {
            Some(wrapper) => edges.field(wrapper).field(field).exists() || nodes.field(wrapper).field(field).exists(),
            None => edges.field(field).exists() || nodes.field(field).exists(),
        }
    };
    let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
    let viewer = ctx.viewer().map(|v| v.member.id);
    // The authors, then the members they name: one after the other. Authors decide
    // visibility and editing, so they are always needed.
    let people = async {
        let authors = loaders.case_study_authors.prefetch(ids.iter().copied()).await?;
        let mut member_ids: HashSet<i64> = HashSet::new();
        if wants("authors") {
            member_ids.extend(authors.values().flatten().copied());
        }
        // Only authors see who is invited, so only their case studies need the list.
        let authored: Vec<i64> =
            authors.iter().filter(|(_, ids)| viewer.is_some_and(|v| ids.contains(&v))).map(|(id, _)| *id).collect();
        if wants("pendingCoAuthors") && !authored.is_empty() {
            let pending = loaders.case_study_pending_co_authors.prefetch(authored).await?;
            member_ids.extend(pending.values().flatten().copied());
        }
        loaders.members.prefetch(member_ids).await?;
        AppResult::Ok(())
    };
    // The rest depend only on the page, so they run alongside, each on its own pooled
    // connection. Counts come with the rows; bodies only with a page of their own.
    let topics = async {
        if wants("topics") {
            loaders.case_study_topics.prefetch(ids.iter().copied()).await?;
        }
        AppResult::Ok(())
    };
    let artefacts = async {
        if wants("artefacts") {
            let links = loaders.case_study_artefacts.prefetch(ids.iter().copied()).await?;
            loaders.artefacts.prefetch(links.values().flatten().copied()).await?;
        }
        AppResult::Ok(())
    };
    let organisations = async {
        if wants("organisation") {
            loaders.organisations.prefetch(rows.iter().filter_map(|c| c.organisation_id)).await?;
        }
        AppResult::Ok(())
    };
    futures_util::try_join!(people, topics, artefacts, organisations)?;
    Ok(())
}

/// A member's invitations to co-author that wait for an answer, newest first: what
/// `myCoAuthorInvitations` lists (for the signed-in member; the caller checks who asks).
pub async fn co_author_invitations(
    ctx: &Context<'_>,
    member_id: i64,
    page: Page<i64>,
) -> async_graphql::Result<Connection<String, Invitation>> {
    let rows = coauthors::pending_for(&ctx.state().db, member_id, &page.keyset()).await?;
    // The titles and inviters of a whole page, one statement each.
    let loaders = ctx.loaders();
    let look_ahead = ctx.look_ahead();
    let wants = |field: &str| {
        look_ahead.field("edges").field("node").field(field).exists() || look_ahead.field("nodes").field(field).exists()
    };
    if wants("title") || wants("caseStudy") {
        loaders.case_studies.load_many(rows.iter().map(|i| i.case_study_id)).await?;
    }
    if wants("caseStudy") {
        loaders.case_study_authors.load_many(rows.iter().map(|i| i.case_study_id)).await?;
    }
    if wants("invitedBy") {
        loaders.members.load_many(rows.iter().filter_map(|i| i.invited_by)).await?;
    }
    Ok(page.connection(rows, |i| i.id))
}

#[derive(Default)]
pub struct CaseStudyQuery;

#[Object]
impl CaseStudyQuery {
    /// Published case studies, newest first, optionally narrowed by topic (slug),
    /// organisation (slug), phase or author (handle).
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn case_studies(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        topic: Option<String>,
        organisation: Option<String>,
        phase: Option<Phase>,
        author: Option<String>,
    ) -> async_graphql::Result<Connection<String, CaseStudy>> {
        let page = Page::<(i64, i64)>::new(first, after, last, before)?;
        let db = &ctx.state().db;
        let mut filter = Filter { phase, ..Filter::default() };
        // An unknown topic, organisation or author matches nothing.
        let nothing = || Ok(page.connection(Vec::new(), |c: &CaseStudy| (c.published_at.unwrap_or(0), c.id)));
        if let Some(slug) = topic {
            match topics::by_slug(db, &slug).await? {
                Some(topic) => filter.topic_id = Some(topic.id),
                None => return nothing(),
            }
        }
        if let Some(slug) = organisation {
            match organisations::by_slug(db, &slug).await? {
                Some(organisation) => filter.organisation_id = Some(organisation.id),
                None => return nothing(),
            }
        }
        if let Some(handle) = author {
            match accounts::member_by_handle(db, &handle).await? {
                Some(member) => filter.author_id = Some(member.id),
                None => return nothing(),
            }
        }
        let rows = super::list_published(db, filter, &page.keyset()).await?;
        prefetch(ctx, &rows).await?;
        Ok(page.connection(rows, |c| (c.published_at.unwrap_or(0), c.id)))
    }

    /// The signed-in member's case studies in every state, drafts included, newest first.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn my_case_studies(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, CaseStudy>> {
        let viewer = ctx.require_viewer()?;
        let page = Page::<i64>::new(first, after, last, before)?;
        let rows = super::list_authored(&ctx.state().db, viewer.member.id, &page.keyset()).await?;
        prefetch(ctx, &rows).await?;
        Ok(page.connection(rows, |c| c.id))
    }

    /// The case studies the signed-in member bookmarked, most recently bookmarked first.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn my_bookmarks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Bookmark>> {
        let viewer = ctx.require_viewer()?;
        let page = Page::<(i64, i64)>::new(first, after, last, before)?;
        let marks = marks::bookmarks(&ctx.state().db, viewer.member.id, &page.keyset()).await?;
        let ids: Vec<i64> = marks.iter().map(|(_, id)| *id).collect();
        let found = ctx.loaders().case_studies.load_many(ids.iter().copied()).await?;
        let rows: Vec<CaseStudy> = ids.iter().filter_map(|id| found.get(id).cloned()).collect();
        prefetch_under(ctx, &rows, Some("caseStudy")).await?;
        // A bookmark stays when its case study is archived; it cannot be made on a draft.
        let bookmarks: Vec<Bookmark> = marks
            .into_iter()
            .filter_map(|(at, id)| {
                found.get(&id).map(|c| Bookmark { bookmarked_at: DateTime(at), case_study: c.clone() })
            })
            .collect();
        Ok(page.connection(bookmarks, |b| (b.bookmarked_at.0, b.case_study.id)))
    }

    /// The signed-in member's invitations to co-author case studies that wait for an
    /// answer, newest first.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn my_co_author_invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Invitation>> {
        let viewer = ctx.require_viewer()?;
        co_author_invitations(ctx, viewer.member.id, Page::new(first, after, last, before)?).await
    }

    /// Renders Markdown exactly as saving it would, without saving anything. Limited per
    /// client (the member, or the address when signed out): rendering is real work.
    #[graphql(complexity = 100)]
    async fn markdown_preview(&self, ctx: &Context<'_>, source: String) -> async_graphql::Result<String> {
        check_preview(ctx, &source).await?;
        Ok(crate::markdown::render_linked(&ctx.state().db, &source).await?.html)
    }

    /// The `@handles` in a Markdown text that belong to no member, lower-cased, in the
    /// order written: what `markdownPreview` leaves as plain text, so that a writer can
    /// be told before they save (at most 50, as mentions are). Limited as the preview is.
    async fn unknown_handles(&self, ctx: &Context<'_>, source: String) -> async_graphql::Result<Vec<String>> {
        check_preview(ctx, &source).await?;
        let candidates = crate::markdown::mention_candidates(&source);
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let known = accounts::ids_by_handle(&ctx.state().db, &candidates).await?;
        Ok(candidates.into_iter().filter(|handle| !known.contains_key(handle)).collect())
    }
}

/// What a preview (and its unknown handles) may be asked for: a client's share of the
/// preview limit, and a text no longer than a case study's body.
async fn check_preview(ctx: &Context<'_>, source: &str) -> async_graphql::Result<()> {
    let client = match (ctx.viewer(), ctx.request().client_ip) {
        (Some(viewer), _) => format!("member:{}", viewer.member.id),
        (None, Some(address)) => format!("address:{address}"),
        (None, None) => "unknown".to_string(),
    };
    ctx.state().limiter.check(crate::limits::Limit::PreviewClient, &client, 1).await?;
    if source.len() > super::BODY_MAX_BYTES {
        return Err(AppError::bad_input("The text is longer than 100 KB.").into());
    }
    Ok(())
}

/// The fields a case study is written with, shared by creating and editing.
#[derive(InputObject)]
pub struct CaseStudyFields {
    pub title: String,
    /// Plain text, at most 300 characters.
    pub summary: String,
    /// Markdown, at most 100 KB.
    pub body: String,
    /// Where the service is now. Required: null is answered with a `BLANK` user error (a
    /// form that offers the phases leaves none chosen, so that nobody files a live
    /// service under discovery by not looking).
    pub phase: Option<Phase>,
    /// An organisation you belong to; optional.
    pub organisation_id: Option<ID>,
    /// One to five topics.
    pub topic_ids: Vec<ID>,
    /// Handles of up to 10 co-authors. Those who are not co-authors yet are invited, and
    /// become co-authors (listed, and able to see a draft and edit) only when they accept.
    /// Leaving a co-author out removes them; leaving out someone invited withdraws their
    /// invitation. Naming again someone who declined invites them again.
    #[graphql(default)]
    pub co_author_handles: Vec<String>,
}

#[derive(InputObject)]
pub struct CreateCaseStudyInput {
    #[graphql(flatten)]
    pub fields: CaseStudyFields,
}

#[derive(InputObject)]
pub struct UpdateCaseStudyInput {
    pub id: ID,
    /// The version you started editing from.
    pub version: i64,
    #[graphql(flatten)]
    pub fields: CaseStudyFields,
    /// What changed, for readers of its history ("Added the costs for 2026"): one line, up
    /// to 300 characters; leave it out for a typo fixed.
    #[graphql(default)]
    pub change_note: String,
}

#[derive(InputObject)]
pub struct CaseStudyIdInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct MarkCaseStudyInput {
    pub id: ID,
    /// True to set the mark, false to take it away.
    pub on: bool,
}

#[derive(InputObject)]
pub struct RegisterInterestInput {
    pub id: ID,
    /// What you are doing, for the authors; at most 500 characters.
    #[graphql(default)]
    pub note: String,
}

#[derive(InputObject)]
pub struct RespondToCoAuthorInvitationInput {
    pub case_study_id: ID,
    /// True to become a co-author, false to decline.
    pub accept: bool,
}

#[derive(SimpleObject, Default)]
pub struct RespondToCoAuthorInvitationPayload {
    /// The invitation as answered.
    pub invitation: Option<Invitation>,
    /// The case study, when you may see it now: after accepting, or when it is published.
    pub case_study: Option<CaseStudy>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject, Default)]
pub struct CaseStudyPayload {
    pub case_study: Option<CaseStudy>,
    pub user_errors: Vec<UserError>,
}

/// Checks every field and resolves ids and handles; all problems at once.
async fn validate(
    ctx: &Context<'_>,
    author_id: i64,
    draft: &CaseStudyFields,
) -> AppResult<Result<Fields, Vec<UserError>>> {
    let db = &ctx.state().db;
    let mut problems: Vec<UserError> = [
        crate::text::check_line("title", "Title", &draft.title, super::TITLE_MAX, true),
        accounts::check_text("summary", "Summary", &draft.summary, super::SUMMARY_MAX, true),
    ]
    .into_iter()
    .flatten()
    .collect();
    if draft.phase.is_none() {
        problems.push(UserError::new("phase", UserErrorCode::Blank, "Choose the service's phase."));
    }
    if draft.body.trim().is_empty() {
        problems.push(UserError::new("body", UserErrorCode::Blank, "Enter the case study itself."));
    } else if draft.body.len() > super::BODY_MAX_BYTES {
        problems.push(UserError::new("body", UserErrorCode::TooLong, "The case study must be 100 KB or shorter."));
    }

    let topic_ids = match topics::graphql::resolve(ctx, &draft.topic_ids).await? {
        Ok(ids) => ids,
        Err(problem) => {
            problems.push(problem);
            Vec::new()
        }
    };
    let organisation_id = match draft.organisation_id.as_ref() {
        None => None,
        Some(id) => match organisations::graphql::resolve_own(ctx, id, author_id).await? {
            Ok(id) => Some(id),
            Err(problem) => {
                problems.push(problem);
                None
            }
        },
    };

    let mut co_author_ids = Vec::new();
    if draft.co_author_handles.len() > super::CO_AUTHORS_MAX {
        problems.push(UserError::new(
            "coAuthorHandles",
            UserErrorCode::Invalid,
            format!("Add at most {} co-authors.", super::CO_AUTHORS_MAX),
        ));
    } else {
        for handle in &draft.co_author_handles {
            match accounts::member_by_handle(db, handle).await? {
                Some(member) if member.id != author_id && !co_author_ids.contains(&member.id) => {
                    co_author_ids.push(member.id)
                }
                Some(_) => {}
                None => problems.push(UserError::new(
                    "coAuthorHandles",
                    UserErrorCode::NotFound,
                    format!(
                        "There is no member @{}.",
                        handle.trim().trim_start_matches('@').chars().take(40).collect::<String>()
                    ),
                )),
            }
        }
    }

    let Some(phase) = draft.phase.filter(|_| problems.is_empty()) else {
        return Ok(Err(problems));
    };
    Ok(Ok(Fields {
        title: draft.title.to_string(),
        summary: draft.summary.to_string(),
        body_source: draft.body.to_string(),
        phase,
        organisation_id,
        topic_ids,
        co_author_ids,
    }))
}

/// The case study behind `id` if the viewer is one of its authors; a user error otherwise.
async fn editable(ctx: &Context<'_>, id: &ID) -> AppResult<Result<CaseStudy, UserError>> {
    let not_found = || UserError::new("id", UserErrorCode::NotFound, "There is no such case study.");
    let Ok(number) = relay::parse_global_id_of("CaseStudy", id) else { return Ok(Err(not_found())) };
    let Some(case_study) = visible(ctx, number).await? else { return Ok(Err(not_found())) };
    if !is_author(ctx, &case_study).await? {
        return Err(AppError::Forbidden);
    }
    Ok(Ok(case_study))
}

fn payload(case_study: Option<CaseStudy>, user_errors: Vec<UserError>) -> CaseStudyPayload {
    CaseStudyPayload { case_study, user_errors }
}

fn no_such(field: &str) -> UserError {
    UserError::new(field, UserErrorCode::NotFound, "There is no such case study.")
}

/// A published (or archived) case study: what others can mark or be interested in.
async fn published(ctx: &Context<'_>, id: &ID) -> AppResult<Option<CaseStudy>> {
    let Ok(number) = relay::parse_global_id_of("CaseStudy", id) else { return Ok(None) };
    Ok(visible(ctx, number).await?.filter(|c| c.status != CaseStudyStatus::Draft))
}

impl CaseStudyMutation {
    async fn mark(
        &self,
        ctx: &Context<'_>,
        input: MarkCaseStudyInput,
        mark: Mark,
    ) -> async_graphql::Result<CaseStudyPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(case_study) = published(ctx, &input.id).await? else { return Ok(payload(None, vec![no_such("id")])) };
        if mark == Mark::Useful && is_author(ctx, &case_study).await? {
            return Ok(payload(
                Some(case_study),
                vec![UserError::new("id", UserErrorCode::Invalid, "You cannot mark your own case study useful.")],
            ));
        }
        marks::set(&ctx.state().db, case_study.id, viewer.member.id, mark, input.on).await?;
        // The row carries the useful count, which the mark may have moved.
        let fresh = super::by_ids(&ctx.state().db, &[case_study.id]).await?.remove(&case_study.id);
        if let Some(fresh) = &fresh {
            ctx.loaders().case_studies.feed_one(fresh.id, fresh.clone()).await;
        }
        Ok(payload(fresh, vec![]))
    }
}

#[derive(Default)]
pub struct CaseStudyMutation;

#[Object]
impl CaseStudyMutation {
    /// Starts a case study as a draft that only its authors can see.
    async fn create_case_study(
        &self,
        ctx: &Context<'_>,
        input: CreateCaseStudyInput,
    ) -> async_graphql::Result<CaseStudyPayload> {
        let viewer = ctx.require_viewer()?;
        let fields = match validate(ctx, viewer.member.id, &input.fields).await? {
            Ok(fields) => fields,
            Err(problems) => return Ok(payload(None, problems)),
        };
        let case_study = super::create(&ctx.state().db, viewer.member.id, &fields).await?;
        forget_authors(ctx);
        Ok(payload(Some(case_study), vec![]))
    }

    /// Saves an edit. Refused with a CONFLICT user error, and nothing saved, when someone
    /// saved a newer version since `version`.
    async fn update_case_study(
        &self,
        ctx: &Context<'_>,
        input: UpdateCaseStudyInput,
    ) -> async_graphql::Result<CaseStudyPayload> {
        let viewer = ctx.require_viewer()?;
        let case_study = match editable(ctx, &input.id).await? {
            Ok(case_study) => case_study,
            Err(problem) => return Ok(payload(None, vec![problem])),
        };
        let note = crate::text::check_line(
            "changeNote",
            "The change note",
            &input.change_note,
            history::CHANGE_NOTE_MAX,
            false,
        );
        let fields = match (validate(ctx, case_study.author_id, &input.fields).await?, note) {
            (Ok(fields), None) => fields,
            (Ok(_), Some(problem)) => return Ok(payload(None, vec![problem])),
            (Err(mut problems), note) => {
                problems.extend(note);
                return Ok(payload(None, problems));
            }
        };
        let db = &ctx.state().db;
        match super::update(db, case_study.id, input.version, viewer.member.id, &fields, &input.change_note).await? {
            EditOutcome::Saved(saved) => {
                forget_authors(ctx);
                Ok(payload(Some(saved), vec![]))
            }
            EditOutcome::Conflict(current) => {
                Ok(payload(Some(current.clone()), vec![UserError::conflict(current.version)]))
            }
        }
    }

    /// Publishes a draft (or an archived case study again).
    async fn publish_case_study(
        &self,
        ctx: &Context<'_>,
        input: CaseStudyIdInput,
    ) -> async_graphql::Result<CaseStudyPayload> {
        let viewer = ctx.require_viewer()?;
        let case_study = match editable(ctx, &input.id).await? {
            Ok(case_study) => case_study,
            Err(problem) => return Ok(payload(None, vec![problem])),
        };
        let changed =
            super::set_status(&ctx.state().db, case_study.id, CaseStudyStatus::Published, viewer.member.id).await?;
        Ok(payload(Some(changed.unwrap_or(case_study)), vec![]))
    }

    /// Marks a case study useful (or, with `on: false`, no longer). Once per member; not
    /// your own.
    async fn mark_case_study_useful(
        &self,
        ctx: &Context<'_>,
        input: MarkCaseStudyInput,
    ) -> async_graphql::Result<CaseStudyPayload> {
        self.mark(ctx, input, Mark::Useful).await
    }

    /// Bookmarks a case study for later (or, with `on: false`, removes the bookmark).
    async fn bookmark_case_study(
        &self,
        ctx: &Context<'_>,
        input: MarkCaseStudyInput,
    ) -> async_graphql::Result<CaseStudyPayload> {
        self.mark(ctx, input, Mark::Bookmark).await
    }

    /// Says "we're working on this too"; its authors see who, and the note.
    async fn register_interest(
        &self,
        ctx: &Context<'_>,
        input: RegisterInterestInput,
    ) -> async_graphql::Result<CaseStudyPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(case_study) = published(ctx, &input.id).await? else { return Ok(payload(None, vec![no_such("id")])) };
        if let Some(problem) = accounts::check_text("note", "Note", &input.note, marks::NOTE_MAX, false) {
            return Ok(payload(None, vec![problem]));
        }
        marks::register_interest(&ctx.state().db, case_study.id, viewer.member.id, &input.note).await?;
        Ok(payload(Some(case_study), vec![]))
    }

    /// Takes back your interest.
    async fn withdraw_interest(
        &self,
        ctx: &Context<'_>,
        input: CaseStudyIdInput,
    ) -> async_graphql::Result<CaseStudyPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(case_study) = published(ctx, &input.id).await? else { return Ok(payload(None, vec![no_such("id")])) };
        marks::withdraw_interest(&ctx.state().db, case_study.id, viewer.member.id).await?;
        Ok(payload(Some(case_study), vec![]))
    }

    /// Accepts (`accept: true`) or declines your invitation to co-author a case study.
    /// Accepting makes you a co-author: listed among its authors, able to edit it and to
    /// see it while it is a draft. A NOT_FOUND user error when you have no invitation
    /// there waiting for an answer (an author may have withdrawn it).
    async fn respond_to_co_author_invitation(
        &self,
        ctx: &Context<'_>,
        input: RespondToCoAuthorInvitationInput,
    ) -> async_graphql::Result<RespondToCoAuthorInvitationPayload> {
        let viewer = ctx.require_viewer()?;
        let none = || RespondToCoAuthorInvitationPayload {
            user_errors: vec![UserError::new(
                "caseStudyId",
                UserErrorCode::NotFound,
                "You have no invitation to co-author that case study waiting for an answer.",
            )],
            ..Default::default()
        };
        let Ok(id) = relay::parse_global_id_of("CaseStudy", &input.case_study_id) else { return Ok(none()) };
        let Some(invitation) = coauthors::respond(&ctx.state().db, id, viewer.member.id, input.accept).await? else {
            return Ok(none());
        };
        forget_authors(ctx);
        let case_study = visible(ctx, id).await?;
        Ok(RespondToCoAuthorInvitationPayload { invitation: Some(invitation), case_study, user_errors: vec![] })
    }

    /// Stops being a co-author of a case study: you are no longer listed, cannot edit it,
    /// and cannot see it while it is a draft. Its author cannot leave it. The case study
    /// comes back when you may still see it.
    async fn leave_case_study(
        &self,
        ctx: &Context<'_>,
        input: CaseStudyIdInput,
    ) -> async_graphql::Result<CaseStudyPayload> {
        let viewer = ctx.require_viewer()?;
        let Ok(id) = relay::parse_global_id_of("CaseStudy", &input.id) else {
            return Ok(payload(None, vec![no_such("id")]));
        };
        let Some(case_study) = visible(ctx, id).await? else { return Ok(payload(None, vec![no_such("id")])) };
        if case_study.author_id == viewer.member.id {
            let message =
                "You wrote this case study, so you cannot leave it. Archive it instead, once it is published.";
            return Ok(payload(Some(case_study), vec![UserError::new("id", UserErrorCode::Invalid, message)]));
        }
        if !coauthors::leave(&ctx.state().db, id, viewer.member.id).await? {
            let message = "You are not a co-author of this case study.";
            return Ok(payload(Some(case_study), vec![UserError::new("id", UserErrorCode::Invalid, message)]));
        }
        forget_authors(ctx);
        Ok(payload(visible(ctx, id).await?, vec![]))
    }

    /// Deletes a draft that was never published, for good, with its earlier versions.
    /// Only the author who started it may; a case study that has been public is archived
    /// instead.
    async fn delete_case_study_draft(
        &self,
        ctx: &Context<'_>,
        input: CaseStudyIdInput,
    ) -> async_graphql::Result<DeletedPayload> {
        let viewer = ctx.require_viewer()?;
        let case_study = match editable(ctx, &input.id).await? {
            Ok(case_study) => case_study,
            Err(problem) => return Ok(DeletedPayload { deleted_id: None, user_errors: vec![problem] }),
        };
        if case_study.author_id != viewer.member.id {
            let message = "Only the author who started it can delete a draft; you can leave it instead.";
            return Ok(DeletedPayload {
                deleted_id: None,
                user_errors: vec![UserError::new("id", UserErrorCode::Invalid, message)],
            });
        }
        if !super::delete_draft(&ctx.state().db, case_study.id).await? {
            let message = "Only a draft that was never published can be deleted; archive it instead.";
            return Ok(DeletedPayload {
                deleted_id: None,
                user_errors: vec![UserError::new("id", UserErrorCode::Invalid, message)],
            });
        }
        forget_authors(ctx);
        ctx.loaders().case_studies.clear::<i64>();
        Ok(DeletedPayload { deleted_id: Some(input.id), user_errors: vec![] })
    }

    /// Archives a published case study: still readable, but out of the lists.
    async fn archive_case_study(
        &self,
        ctx: &Context<'_>,
        input: CaseStudyIdInput,
    ) -> async_graphql::Result<CaseStudyPayload> {
        let viewer = ctx.require_viewer()?;
        let case_study = match editable(ctx, &input.id).await? {
            Ok(case_study) => case_study,
            Err(problem) => return Ok(payload(None, vec![problem])),
        };
        match super::set_status(&ctx.state().db, case_study.id, CaseStudyStatus::Archived, viewer.member.id).await? {
            Some(changed) => Ok(payload(Some(changed), vec![])),
            None => Ok(payload(
                Some(case_study),
                vec![UserError::new("id", UserErrorCode::Invalid, "Only a published case study can be archived.")],
            )),
        }
    }
}
