//! The artefact API: the `Artefact` and `ArtefactReuse` types, the list, and the
//! mutations to share, edit, and record or withdraw reuse.

use async_graphql::{connection::Connection, Context, InputObject, Object, SimpleObject, ID};
use sqlx::Row;

use super::{
    publiccode::{self, DevelopmentStatus, MaintenanceType, Publiccode},
    reuse::{self, Reuse},
    Artefact, ArtefactKind, ArtefactSort, ArtefactStatus, EditOutcome, Fields, Filter,
};
use crate::{
    accounts::{self, Member},
    case_studies::{self, CaseStudy},
    comments::{graphql::CommentThreads, Subject},
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

/// Whether the viewer may edit: the member who shared it, or an admin of the
/// organisation that maintains it.
async fn can_edit(ctx: &Context<'_>, artefact: &Artefact) -> AppResult<bool> {
    let Some(viewer) = ctx.viewer() else { return Ok(false) };
    if artefact.created_by == viewer.member.id {
        return Ok(true);
    }
    match artefact.organisation_id {
        Some(organisation_id) => Ok(organisations::membership(&ctx.state().db, organisation_id, viewer.member.id)
            .await?
            .is_some_and(|m| m.is_admin())),
        None => Ok(false),
    }
}

/// The case studies of `ids` the viewer may see, in order.
async fn visible_case_studies(ctx: &Context<'_>, ids: &[i64]) -> AppResult<Vec<CaseStudy>> {
    let loaders = ctx.loaders();
    let found = loaders.case_studies.load_many(ids.iter().copied()).await?;
    let authors = loaders.case_study_authors.load_many(ids.iter().copied()).await?;
    let viewer = ctx.viewer().map(|v| v.member.id);
    Ok(ids
        .iter()
        .filter_map(|id| found.get(id))
        .filter(|c| c.visible_to(viewer, authors.get(&c.id).map(Vec::as_slice).unwrap_or_default()))
        .cloned()
        .collect())
}

impl Artefact {
    /// Whether the viewer sees the content: always unless hidden, and then only the
    /// member who shared it and the moderators.
    fn shows_content(&self, ctx: &Context<'_>) -> bool {
        self.hidden_at.is_none() || moderation::sees_hidden(ctx, &[self.created_by])
    }

    /// Where its history starts: everyone sees all of it (an artefact is public from the
    /// start) unless it is hidden.
    fn history(&self, ctx: &Context<'_>) -> history::Origin {
        history::Origin {
            subject: history::Subject::Artefact,
            id: self.id,
            version: self.version,
            created_at: self.created_at,
            created_by: self.created_by,
            seen: if self.shows_content(ctx) { history::Seen::All } else { history::Seen::Nothing },
        }
    }
}

/// One saved version of an artefact (see [`history::Version`]).
pub struct ArtefactVersion(history::Version);

impl ArtefactVersion {
    async fn text_of(db: &crate::db::Db, version: &history::Version) -> AppResult<ArtefactVersionText> {
        let row = history::text(db, version).await?;
        Ok(ArtefactVersionText {
            title: row.try_get("title")?,
            kind: row.try_get("kind")?,
            description: row.try_get("description_source")?,
            url: row.try_get("url")?,
            licence: row.try_get("licence")?,
            status: row.try_get("status")?,
        })
    }
}

/// One saved version of an artefact.
#[Object]
impl ArtefactVersion {
    #[graphql(flatten)]
    async fn saved(&self) -> &history::Version {
        &self.0
    }
    /// Its whole text as it was saved.
    async fn text(&self, ctx: &Context<'_>) -> async_graphql::Result<ArtefactVersionText> {
        Ok(Self::text_of(&ctx.state().db, &self.0).await?)
    }
}

/// An artefact's version as it was saved.
#[derive(SimpleObject)]
pub struct ArtefactVersionText {
    pub title: String,
    pub kind: ArtefactKind,
    /// Markdown.
    pub description: String,
    pub url: String,
    pub licence: String,
    pub status: ArtefactStatus,
}

/// Two versions of an artefact compared: its texts word by word, its kind and status as
/// they were in each (`[from, to]`).
#[derive(SimpleObject)]
pub struct ArtefactComparison {
    pub from: i64,
    pub to: i64,
    pub title: Vec<history::DiffPart>,
    /// The Markdown source's words, not the rendered page's.
    pub description: Vec<history::DiffPart>,
    pub url: Vec<history::DiffPart>,
    pub licence: Vec<history::DiffPart>,
    pub kind: [ArtefactKind; 2],
    pub status: [ArtefactStatus; 2],
}

#[Object]
impl Artefact {
    pub async fn id(&self) -> ID {
        relay::global_id("Artefact", self.id)
    }

    /// How closely the viewer follows this artefact's conversation; null when not following (or signed out).
    async fn viewer_follow_level(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::notifications::follows::FollowLevel>> {
        Ok(crate::notifications::graphql::viewer_follow_level(ctx, "Artefact", self.id).await?)
    }

    /// "Hidden by the moderators" for everyone but the member who shared it and the
    /// moderators while it is hidden.
    async fn title(&self, ctx: &Context<'_>) -> &str {
        if self.shows_content(ctx) {
            &self.title
        } else {
            HIDDEN_TITLE
        }
    }

    async fn kind(&self) -> ArtefactKind {
        self.kind
    }

    /// The description as sanitised HTML, rendered when it was saved; empty while hidden
    /// (but to the member who shared it and the moderators).
    async fn description_html(&self, ctx: &Context<'_>) -> &str {
        if self.shows_content(ctx) {
            &self.description_html
        } else {
            ""
        }
    }

    /// The description as written, in Markdown; empty while hidden (but to the member who
    /// shared it and the moderators).
    async fn description(&self, ctx: &Context<'_>) -> &str {
        if self.shows_content(ctx) {
            &self.description_source
        } else {
            ""
        }
    }

    /// Where the artefact itself lives (http or https); empty while hidden (but to the
    /// member who shared it and the moderators).
    async fn url(&self, ctx: &Context<'_>) -> &str {
        if self.shows_content(ctx) {
            &self.url
        } else {
            ""
        }
    }

    /// Whether the moderators hid it: the member who shared it and the moderators still
    /// see it, with `hiddenReason`; everyone else sees a placeholder.
    async fn hidden(&self) -> bool {
        self.hidden_at.is_some()
    }

    /// Why it is hidden, for the member who shared it and the moderators; null otherwise.
    async fn hidden_reason(&self, ctx: &Context<'_>) -> Option<String> {
        moderation::hidden_reason(ctx, self.hidden_reason.as_deref(), &[self.created_by])
    }

    /// An SPDX licence identifier, such as `OGL-UK-3.0` or `MIT`.
    async fn licence(&self) -> &str {
        &self.licence
    }

    /// The licence's full name, such as "Open Government Licence v3.0".
    async fn licence_name(&self) -> &str {
        super::licence_name(&self.licence).unwrap_or(&self.licence)
    }

    async fn status(&self) -> ArtefactStatus {
        self.status
    }

    /// Goes up by one with every edit; send it back with `updateArtefact`.
    async fn version(&self) -> i64 {
        self.version
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.created_at)
    }

    async fn updated_at(&self) -> DateTime {
        DateTime(self.updated_at)
    }

    /// The organisation that maintains it.
    async fn organisation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organisation>> {
        match self.organisation_id {
            Some(id) => Ok(ctx.loaders().organisations.load_one(id).await?),
            None => Ok(None),
        }
    }

    /// By name.
    async fn topics(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Topic>> {
        Ok(ctx.loaders().artefact_topics.load_one(self.id).await?.unwrap_or_default())
    }

    /// The member who shared it.
    async fn shared_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
        Ok(ctx.loaders().members.load_one(self.created_by).await?)
    }

    /// The artefact this one was adapted from.
    async fn adapted_from(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Artefact>> {
        match self.adapted_from_id {
            Some(id) => Ok(ctx.loaders().artefacts.load_one(id).await?),
            None => Ok(None),
        }
    }

    /// Artefacts adapted from this one, newest first (at most 100).
    async fn adaptations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Artefact>> {
        let ids = ctx.loaders().artefact_adaptations.load_one(self.id).await?.unwrap_or_default();
        let found = ctx.loaders().artefacts.load_many(ids.iter().copied()).await?;
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    /// The case studies that produced or used it (those the viewer may see).
    async fn case_studies(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CaseStudy>> {
        let ids = ctx.loaders().artefact_case_studies.load_one(self.id).await?.unwrap_or_default();
        Ok(visible_case_studies(ctx, &ids).await?)
    }

    /// Its publiccode.yml, for a code artefact that carries one: the parsed description,
    /// licence and maintenance, and the text as given. Null while hidden (but to the
    /// member who shared it and the moderators).
    async fn publiccode(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Publiccode>> {
        if !self.shows_content(ctx) {
            return Ok(None);
        }
        Ok(ctx.loaders().artefact_publiccode.load_one(self.id).await?)
    }

    /// How many organisations recorded that they reused it.
    async fn reuse_count(&self) -> i64 {
        self.reuse_count
    }

    /// The organisations' reuse stories, oldest first (at most 100).
    async fn reuses(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Reuse>> {
        Ok(ctx.loaders().artefact_reuses.load_one(self.id).await?.unwrap_or_default())
    }

    /// Whether the signed-in member may edit it.
    async fn viewer_can_edit(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(can_edit(ctx, self).await?)
    }

    /// Every saved version, newest first, each with the note its editor wrote when saving
    /// it (at most 201; while it is hidden, only to the member who shared it and the
    /// moderators).
    async fn versions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ArtefactVersion>> {
        Ok(history::versions(&ctx.state().db, self.history(ctx)).await?.into_iter().map(ArtefactVersion).collect())
    }

    /// Two versions compared word by word (title, description in Markdown, address and
    /// licence): the runs of text that stayed, went and came. Null when either is not
    /// among the `versions` you may see.
    async fn compare_versions(
        &self,
        ctx: &Context<'_>,
        from: i64,
        to: i64,
    ) -> async_graphql::Result<Option<ArtefactComparison>> {
        let db = &ctx.state().db;
        let versions = history::versions(db, self.history(ctx)).await?;
        let find = |number: i64| versions.iter().find(|v| v.version == number);
        let (Some(old), Some(new)) = (find(from), find(to)) else { return Ok(None) };
        let (old, new) = futures_util::try_join!(ArtefactVersion::text_of(db, old), ArtefactVersion::text_of(db, new))?;
        let [title, description, url, licence] = history::compare([
            (old.title, new.title),
            (old.description, new.description),
            (old.url, new.url),
            (old.licence, new.licence),
        ])
        .await?;
        Ok(Some(ArtefactComparison {
            from,
            to,
            title,
            description,
            url,
            licence,
            kind: [old.kind, new.kind],
            status: [old.status, new.status],
        }))
    }

    /// Top-level comments, oldest first, each with its replies.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn comments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, crate::comments::Comment>> {
        CommentThreads::page(ctx, Subject::Artefact(self.id), first, after, last, before).await
    }

    /// How many comments it has, replies included.
    async fn comment_count(&self) -> i64 {
        self.comment_count
    }
}

/// A code artefact's publiccode.yml (the standard at https://yml.publiccode.tools), as
/// Kettle checked it.
#[Object]
impl Publiccode {
    /// The file as the member gave it.
    async fn source(&self) -> &str {
        &self.source
    }

    /// `publiccodeYmlVersion`, such as "0.4".
    async fn publiccode_yml_version(&self) -> &str {
        &self.yml_version
    }

    /// `name`: the software's name.
    async fn name(&self) -> &str {
        &self.name
    }

    /// `url`: its repository or home page.
    async fn url(&self) -> &str {
        &self.url
    }

    /// `legal.license`: an SPDX licence expression, such as `EUPL-1.2 OR MIT`.
    async fn licence(&self) -> &str {
        &self.licence
    }

    /// `maintenance.type`.
    async fn maintenance_type(&self) -> MaintenanceType {
        self.maintenance_type
    }

    /// `developmentStatus`.
    async fn development_status(&self) -> DevelopmentStatus {
        self.development_status
    }

    /// The language of the description below: English when the file has one, else its
    /// first.
    async fn description_language(&self) -> &str {
        &self.description_language
    }

    /// `description.<language>.shortDescription`.
    async fn short_description(&self) -> &str {
        &self.short_description
    }

    /// `description.<language>.longDescription`; empty when the file has none.
    async fn long_description(&self) -> &str {
        &self.long_description
    }
}

#[Object(name = "ArtefactReuse")]
impl Reuse {
    /// The organisation that reused it.
    async fn organisation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Organisation>> {
        Ok(ctx.loaders().organisations.load_one(self.organisation_id).await?)
    }

    /// What they did with it: the first story's note (`stories` has every member's).
    async fn note(&self) -> &str {
        &self.note
    }

    /// Each member's story of it, oldest first: colleagues add theirs beside the first.
    async fn stories(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<reuse::Story>> {
        let all = ctx.loaders().artefact_reuse_stories.load_one(self.artefact_id).await?.unwrap_or_default();
        Ok(all.into_iter().filter(|s| s.organisation_id == self.organisation_id).collect())
    }

    /// Their own case study about it, if they wrote one (and the viewer may see it).
    async fn case_study(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<CaseStudy>> {
        match self.case_study_id {
            Some(id) => Ok(visible_case_studies(ctx, &[id]).await?.pop()),
            None => Ok(None),
        }
    }

    async fn recorded_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
        Ok(ctx.loaders().members.load_one(self.recorded_by).await?)
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.created_at)
    }

    async fn updated_at(&self) -> DateTime {
        DateTime(self.updated_at)
    }
}

/// One member's story of how their organisation reused an artefact.
#[Object(name = "ArtefactReuseStory")]
impl reuse::Story {
    async fn member(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
        Ok(ctx.loaders().members.load_one(self.member_id).await?)
    }
    async fn note(&self) -> &str {
        &self.note
    }
    /// Their case study about it, if they linked one (and the viewer may see it).
    async fn case_study(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<CaseStudy>> {
        match self.case_study_id {
            Some(id) => Ok(visible_case_studies(ctx, &[id]).await?.pop()),
            None => Ok(None),
        }
    }
    async fn created_at(&self) -> DateTime {
        DateTime(self.created_at)
    }
    async fn updated_at(&self) -> DateTime {
        DateTime(self.updated_at)
    }
}

/// Loads, for a whole page at once, what the query selects of each artefact, so a page
/// costs one statement per kind of related object whatever its size.
pub async fn prefetch(ctx: &Context<'_>, rows: &[Artefact]) -> AppResult<()> {
    let loaders = ctx.loaders();
    loaders.artefacts.feed_many(rows.iter().map(|a| (a.id, a.clone()))).await;
    let look_ahead = ctx.look_ahead();
    let wants = |field: &str| {
        look_ahead.field("edges").field("node").field(field).exists() || look_ahead.field("nodes").field(field).exists()
    };
    // Independent of each other, so they run at once, each on its own pooled connection.
    let topics = async {
        if wants("topics") {
            loaders.artefact_topics.prefetch(rows.iter().map(|a| a.id)).await?;
        }
        AppResult::Ok(())
    };
    let organisations = async {
        if wants("organisation") {
            loaders.organisations.prefetch(rows.iter().filter_map(|a| a.organisation_id)).await?;
        }
        AppResult::Ok(())
    };
    let people = async {
        if wants("sharedBy") {
            loaders.members.prefetch(rows.iter().map(|a| a.created_by)).await?;
        }
        AppResult::Ok(())
    };
    futures_util::try_join!(topics, organisations, people)?;
    Ok(())
}

#[derive(Default)]
pub struct ArtefactQuery;

#[Object]
impl ArtefactQuery {
    /// Artefacts, newest first or most reused first, optionally narrowed by kind,
    /// status, topic (slug) or maintaining organisation (slug).
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn artefacts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        kind: Option<ArtefactKind>,
        status: Option<ArtefactStatus>,
        topic: Option<String>,
        organisation: Option<String>,
        #[graphql(default)] sort: ArtefactSort,
    ) -> async_graphql::Result<Connection<String, Artefact>> {
        let page = Page::<(i64, i64)>::new(first, after, last, before)?;
        let db = &ctx.state().db;
        let mut filter = Filter { kind, status, ..Filter::default() };
        // An unknown topic or organisation matches nothing.
        let nothing = || Ok(page.connection(Vec::new(), |a: &Artefact| super::sort_key(sort, a)));
        if let Some(slug) = topic {
            match topics::by_slug(db, &slug).await? {
                // A merged topic's artefacts now carry the topic it was merged into (as
                // search does, follow it: old links keep working).
                Some(topic) => filter.topic_id = Some(topic.merged_into.unwrap_or(topic.id)),
                None => return nothing(),
            }
        }
        if let Some(slug) = organisation {
            match organisations::by_slug(db, &slug).await? {
                Some(organisation) => filter.organisation_id = Some(organisation.id),
                None => return nothing(),
            }
        }
        let rows = super::list(db, filter, sort, &page.keyset()).await?;
        prefetch(ctx, &rows).await?;
        Ok(page.connection(rows, |a| super::sort_key(sort, a)))
    }
}

/// The fields an artefact is shared with, for sharing and editing alike.
#[derive(InputObject)]
pub struct ArtefactFields {
    pub title: String,
    pub kind: ArtefactKind,
    /// Markdown, at most 50 KB.
    pub description: String,
    /// Where it lives: an http or https address.
    pub url: String,
    /// An SPDX licence identifier (`OGL-UK-3.0`, `MIT`, `CC-BY-4.0`, …).
    pub licence: String,
    pub status: ArtefactStatus,
    /// The organisation that maintains it: one you belong to; optional.
    pub organisation_id: Option<ID>,
    /// The artefact it was adapted from; optional.
    pub adapted_from_id: Option<ID>,
    /// One to five topics.
    pub topic_ids: Vec<ID>,
    /// Up to 10 case studies that produced or used it.
    #[graphql(default)]
    pub case_study_ids: Vec<ID>,
    /// A code artefact's publiccode.yml, as text (at most 64 KiB); null or empty for none
    /// (on an edit, that removes the one it had). Checked for its version, name, url,
    /// licence, maintenance type, development status and description.
    pub publiccode: Option<String>,
}

#[derive(InputObject)]
pub struct CreateArtefactInput {
    #[graphql(flatten)]
    pub fields: ArtefactFields,
}

#[derive(InputObject)]
pub struct UpdateArtefactInput {
    pub id: ID,
    /// The version you started editing from.
    pub version: i64,
    #[graphql(flatten)]
    pub fields: ArtefactFields,
    /// What changed, for readers of its history ("Moved to version 2 of the library"): one
    /// line, up to 300 characters; leave it out for a typo fixed.
    #[graphql(default)]
    pub change_note: String,
}

#[derive(InputObject)]
pub struct RecordReuseInput {
    pub artefact_id: ID,
    /// The organisation that reused it: one you belong to.
    pub organisation_id: ID,
    /// What you did with it; at most 1,000 characters.
    pub note: String,
    /// Your own case study about it; optional.
    pub case_study_id: Option<ID>,
}

#[derive(InputObject)]
pub struct WithdrawReuseInput {
    pub artefact_id: ID,
    pub organisation_id: ID,
}

#[derive(SimpleObject, Default)]
pub struct ArtefactPayload {
    pub artefact: Option<Artefact>,
    pub user_errors: Vec<UserError>,
}

fn payload(artefact: Option<Artefact>, user_errors: Vec<UserError>) -> ArtefactPayload {
    ArtefactPayload { artefact, user_errors }
}

fn no_such(field: &str) -> UserError {
    UserError::new(field, UserErrorCode::NotFound, "There is no such artefact.")
}

async fn artefact(ctx: &Context<'_>, id: &ID) -> AppResult<Option<Artefact>> {
    match relay::parse_global_id_of("Artefact", id) {
        Ok(number) => ctx.loaders().artefacts.load_one(number).await,
        Err(_) => Ok(None),
    }
}

/// A published case study behind `id` (what an artefact or a reuse may point to).
async fn published_case_study(ctx: &Context<'_>, id: &ID) -> AppResult<Option<CaseStudy>> {
    let Ok(number) = relay::parse_global_id_of("CaseStudy", id) else { return Ok(None) };
    Ok(case_studies::graphql::visible(ctx, number)
        .await?
        .filter(|c| c.status == case_studies::CaseStudyStatus::Published))
}

/// Checks every field and resolves ids; all problems at once. `editing` is the artefact
/// being edited, whose lineage must not loop back to itself.
async fn validate(
    ctx: &Context<'_>,
    member_id: i64,
    editing: Option<i64>,
    draft: &ArtefactFields,
) -> AppResult<Result<Fields, Vec<UserError>>> {
    let mut problems: Vec<UserError> =
        crate::text::check_line("title", "Title", &draft.title, super::TITLE_MAX, true).into_iter().collect();
    // Stored as parsed, so the address kept is the one a browser would follow.
    let url = match organisations::web_address("url", "The address", &draft.url, true) {
        Ok(url) => url.unwrap_or_default(),
        Err(problem) => {
            problems.push(problem);
            String::new()
        }
    };
    if draft.description.trim().is_empty() {
        problems.push(UserError::new("description", UserErrorCode::Blank, "Describe the artefact."));
    } else if draft.description.len() > super::DESCRIPTION_MAX_BYTES {
        problems.push(UserError::new(
            "description",
            UserErrorCode::TooLong,
            "The description must be 50 KB or shorter.",
        ));
    }
    let licence = super::canonical_licence(&draft.licence);
    if draft.licence.trim().is_empty() {
        problems.push(UserError::new(
            "licence",
            UserErrorCode::Blank,
            "Enter the licence, as an SPDX identifier such as OGL-UK-3.0 or MIT.",
        ));
    } else if licence.is_none() {
        problems.push(UserError::new(
            "licence",
            UserErrorCode::Invalid,
            "Enter the licence as an SPDX identifier, such as OGL-UK-3.0, MIT or CC-BY-4.0.",
        ));
    }
    let publiccode = match draft.publiccode.as_deref().filter(|text| !text.trim().is_empty()) {
        None => None,
        Some(_) if draft.kind != ArtefactKind::Code => {
            problems.push(UserError::new(
                publiccode::FIELD,
                UserErrorCode::Invalid,
                "Only code artefacts carry a publiccode.yml: choose the kind Code, or leave it empty.",
            ));
            None
        }
        Some(text) => match publiccode::parse(text) {
            Ok(parsed) => Some(parsed),
            Err(found) => {
                problems.extend(found);
                None
            }
        },
    };

    let topic_ids = match topics::graphql::resolve(ctx, &draft.topic_ids).await? {
        Ok(ids) => ids,
        Err(problem) => {
            problems.push(problem);
            Vec::new()
        }
    };
    let organisation_id = match draft.organisation_id.as_ref() {
        None => None,
        Some(id) => match organisations::graphql::resolve_own(ctx, id, member_id).await? {
            Ok(id) => Some(id),
            Err(problem) => {
                problems.push(problem);
                None
            }
        },
    };
    let mut adapted_from_id = None;
    if let Some(id) = draft.adapted_from_id.as_ref() {
        match artefact(ctx, id).await? {
            None => problems.push(UserError::new(
                "adaptedFromId",
                UserErrorCode::NotFound,
                "There is no such artefact to have adapted from.",
            )),
            Some(origin) => match editing {
                Some(this) if super::would_loop(&ctx.state().db, this, origin.id).await? => {
                    problems.push(UserError::new(
                        "adaptedFromId",
                        UserErrorCode::Invalid,
                        "An artefact cannot be adapted from itself.",
                    ))
                }
                _ => adapted_from_id = Some(origin.id),
            },
        }
    }
    let mut case_study_ids = Vec::new();
    if draft.case_study_ids.len() > super::CASE_STUDIES_MAX {
        problems.push(UserError::new(
            "caseStudyIds",
            UserErrorCode::Invalid,
            format!("Link at most {} case studies.", super::CASE_STUDIES_MAX),
        ));
    } else {
        for id in &draft.case_study_ids {
            match published_case_study(ctx, id).await? {
                Some(case_study) if !case_study_ids.contains(&case_study.id) => case_study_ids.push(case_study.id),
                Some(_) => {}
                None => {
                    problems.push(UserError::new(
                        "caseStudyIds",
                        UserErrorCode::NotFound,
                        "One of the case studies does not exist or is not published yet.",
                    ));
                    break;
                }
            }
        }
    }

    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    Ok(Ok(Fields {
        title: draft.title.clone(),
        kind: draft.kind,
        description_source: draft.description.clone(),
        url,
        licence: licence.unwrap_or_default().to_string(),
        status: draft.status,
        organisation_id,
        adapted_from_id,
        topic_ids,
        case_study_ids,
        publiccode,
    }))
}

#[derive(Default)]
pub struct ArtefactMutation;

#[Object]
impl ArtefactMutation {
    /// Shares an artefact: public at once.
    async fn create_artefact(
        &self,
        ctx: &Context<'_>,
        input: CreateArtefactInput,
    ) -> async_graphql::Result<ArtefactPayload> {
        let viewer = ctx.require_viewer()?;
        let fields = match validate(ctx, viewer.member.id, None, &input.fields).await? {
            Ok(fields) => fields,
            Err(problems) => return Ok(payload(None, problems)),
        };
        let artefact = super::create(&ctx.state().db, viewer.member.id, &fields).await?;
        Ok(payload(Some(artefact), vec![]))
    }

    /// Saves an edit. Refused with a CONFLICT user error, and nothing saved, when someone
    /// saved a newer version since `version`.
    async fn update_artefact(
        &self,
        ctx: &Context<'_>,
        input: UpdateArtefactInput,
    ) -> async_graphql::Result<ArtefactPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(current) = artefact(ctx, &input.id).await? else { return Ok(payload(None, vec![no_such("id")])) };
        if !can_edit(ctx, &current).await? {
            return Err(AppError::Forbidden.into());
        }
        let note = crate::text::check_line(
            "changeNote",
            "The change note",
            &input.change_note,
            history::CHANGE_NOTE_MAX,
            false,
        );
        let fields = match (validate(ctx, viewer.member.id, Some(current.id), &input.fields).await?, note) {
            (Ok(fields), None) => fields,
            (Ok(_), Some(problem)) => return Ok(payload(None, vec![problem])),
            (Err(mut problems), note) => {
                problems.extend(note);
                return Ok(payload(None, problems));
            }
        };
        let db = &ctx.state().db;
        match super::update(db, current.id, input.version, viewer.member.id, &fields, &input.change_note).await? {
            EditOutcome::Saved(saved) => Ok(payload(Some(saved), vec![])),
            EditOutcome::Conflict(current) => {
                Ok(payload(Some(current.clone()), vec![UserError::conflict(current.version)]))
            }
        }
    }

    /// Records that your organisation reused an artefact, with your story of it: one
    /// record per organisation and artefact, holding a story from each member who tells
    /// one. Telling yours again edits yours; a colleague's stays as they wrote it.
    async fn record_reuse(&self, ctx: &Context<'_>, input: RecordReuseInput) -> async_graphql::Result<ArtefactPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(artefact) = artefact(ctx, &input.artefact_id).await? else {
            return Ok(payload(None, vec![no_such("artefactId")]));
        };
        let mut problems = Vec::new();
        let organisation_id =
            match organisations::graphql::resolve_own(ctx, &input.organisation_id, viewer.member.id).await? {
                Ok(id) if Some(id) == artefact.organisation_id => {
                    problems.push(UserError::new(
                        "organisationId",
                        UserErrorCode::Invalid,
                        "That organisation maintains this artefact; reuse is recorded by other organisations.",
                    ));
                    None
                }
                Ok(id) => Some(id),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            };
        if input.note.trim().is_empty() {
            problems.push(UserError::new("note", UserErrorCode::Blank, "Say how your organisation reused it."));
        } else if let Some(problem) = accounts::check_text("note", "Note", &input.note, reuse::NOTE_MAX, true) {
            problems.push(problem);
        }
        let mut case_study_id = None;
        if let Some(id) = input.case_study_id.as_ref() {
            match published_case_study(ctx, id).await? {
                Some(case_study) => case_study_id = Some(case_study.id),
                None => problems.push(UserError::new(
                    "caseStudyId",
                    UserErrorCode::NotFound,
                    "There is no such published case study.",
                )),
            }
        }
        let Some(organisation_id) = organisation_id.filter(|_| problems.is_empty()) else {
            return Ok(payload(Some(artefact), problems));
        };
        let db = &ctx.state().db;
        reuse::record(db, artefact.id, organisation_id, &input.note, case_study_id, viewer.member.id).await?;
        // Read back after the write: the count and the stories have changed.
        let saved = super::by_ids(db, &[artefact.id]).await?.remove(&artefact.id);
        Ok(payload(saved, vec![]))
    }

    /// Takes back your organisation's reuse record.
    async fn withdraw_reuse(
        &self,
        ctx: &Context<'_>,
        input: WithdrawReuseInput,
    ) -> async_graphql::Result<ArtefactPayload> {
        let viewer = ctx.require_viewer()?;
        let Some(artefact) = artefact(ctx, &input.artefact_id).await? else {
            return Ok(payload(None, vec![no_such("artefactId")]));
        };
        let organisation_id =
            match organisations::graphql::resolve_own(ctx, &input.organisation_id, viewer.member.id).await? {
                Ok(id) => id,
                Err(problem) => return Ok(payload(Some(artefact), vec![problem])),
            };
        let db = &ctx.state().db;
        if !reuse::withdraw(db, artefact.id, organisation_id).await? {
            let problem = UserError::new(
                "organisationId",
                UserErrorCode::NotFound,
                "That organisation has not recorded reuse of it.",
            );
            return Ok(payload(Some(artefact), vec![problem]));
        }
        let saved = super::by_ids(db, &[artefact.id]).await?.remove(&artefact.id);
        Ok(payload(saved, vec![]))
    }
}
