//! The moderation API: `flag` for any member; for moderators and admins the queue
//! (`moderationQueue`, `review`), `decideReview`, and `hideContent`/`restoreContent`
//! without a flag. Also the one rule item resolvers use for hidden content
//! ([`sees_hidden`]): the authors and the moderators see a hidden item and why; everyone
//! else sees `hidden: true` and a placeholder instead of its content.

use std::collections::HashSet;

use async_graphql::{connection::Connection, Context, InputObject, Object, SimpleObject, ID};

use crate::moderation::{
    flags::{self, FlagReason, Flagged},
    reviews::{self, Decide, Decided, Decision, Edit, Flag, Review, ReviewStatus, Target, TargetType},
};
use crate::{
    accounts::{self, Identity, Member, Role},
    artefacts, case_studies, comments,
    error::{AppError, AppResult},
    graphql::{
        relay::{self, Page},
        ContextExt, DateTime, Node, UserError, UserErrorCode,
    },
    markdown, meetups, text,
};

/// What everyone but the authors and the moderators see instead of a hidden item's title.
pub const HIDDEN_TITLE: &str = "Hidden by the moderators";

fn is_moderator(member: &Member) -> bool {
    matches!(member.role, Role::Moderator | Role::Admin)
}

/// The viewer, if a moderator or an admin: unauthenticated or forbidden otherwise.
pub fn require_moderator<'a>(ctx: &'a Context<'_>) -> AppResult<&'a Identity> {
    let viewer = ctx.require_viewer()?;
    if !is_moderator(&viewer.member) {
        return Err(AppError::Forbidden);
    }
    Ok(viewer)
}

/// Whether the viewer sees a hidden item whose authors are `authors` as it is.
pub fn sees_hidden(ctx: &Context<'_>, authors: &[i64]) -> bool {
    ctx.viewer().is_some_and(|v| is_moderator(&v.member) || authors.contains(&v.member.id))
}

/// Why an item is hidden, for those who may know (its authors and the moderators).
pub fn hidden_reason(ctx: &Context<'_>, hidden_reason: Option<&str>, authors: &[i64]) -> Option<String> {
    hidden_reason.filter(|_| sees_hidden(ctx, authors)).map(str::to_string)
}

/// A flag, as moderators (and its flagger) see it.
pub struct FlagView(pub Flag);

#[Object(name = "Flag")]
impl FlagView {
    async fn id(&self) -> ID {
        relay::global_id("Flag", self.0.id)
    }

    async fn reason(&self) -> FlagReason {
        self.0.reason
    }

    /// What the flagger added; required with OTHER.
    async fn note(&self) -> &str {
        &self.0.note
    }

    /// In hundredths: a plain member's flag weighs 100 (see the README, "Moderation").
    async fn weight(&self) -> i64 {
        self.0.weight
    }

    async fn flagger(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
        Ok(ctx.loaders().members.load_one(self.0.flagger_id).await?)
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
}

/// One item's review: its flags, their weight, and the decision once made.
pub struct ReviewView {
    pub review: Review,
    pub flags: Vec<Flag>,
}

#[Object(name = "Review")]
impl ReviewView {
    pub async fn id(&self) -> ID {
        relay::global_id("Review", self.review.id)
    }

    async fn target_type(&self) -> TargetType {
        self.review.target.kind
    }

    /// What was flagged; null once it is gone.
    async fn target(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Node>> {
        let target = self.review.target;
        Ok(crate::graphql::load_node(ctx, &relay::global_id(target.kind.node_name(), target.id)).await?)
    }

    /// The site page of what was flagged (a comment's is its place on its subject's page).
    async fn target_path(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let target = self.review.target;
        Ok(match target.kind {
            TargetType::CaseStudy => format!("/case-studies/{}", target.id),
            TargetType::Artefact => format!("/artefacts/{}", target.id),
            TargetType::MeetupEvent => format!("/meetups/events/{}", target.id),
            TargetType::Member => format!("/members/{}", target.id),
            TargetType::Comment => match ctx.loaders().comments.load_one(target.id).await? {
                Some(comment) => match comment.subject {
                    comments::Subject::CaseStudy(id) => format!("/case-studies/{id}#comment-{}", target.id),
                    comments::Subject::Artefact(id) => format!("/artefacts/{id}#comment-{}", target.id),
                },
                None => "/moderation".to_string(),
            },
        })
    }

    /// The sum of its flags' weights, in hundredths; the queue is ordered by it.
    async fn weight(&self) -> i64 {
        self.review.weight
    }

    async fn flag_count(&self) -> i64 {
        self.review.flag_count
    }

    /// The first 50 flags, oldest first (`flagCount` says how many there are).
    async fn flags(&self) -> Vec<FlagView> {
        self.flags.iter().cloned().map(FlagView).collect()
    }

    async fn status(&self) -> ReviewStatus {
        self.review.status
    }

    /// Whether enough weighted flags hid the item before anyone reviewed it.
    async fn auto_hidden(&self) -> bool {
        self.review.auto_hidden_at.is_some()
    }

    async fn auto_hidden_at(&self) -> Option<DateTime> {
        self.review.auto_hidden_at.map(DateTime)
    }

    async fn decision(&self) -> Option<Decision> {
        self.review.decision
    }

    async fn decision_reason(&self) -> Option<&str> {
        self.review.decision_reason.as_deref()
    }

    async fn decided_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
        match self.review.decided_by {
            Some(id) => Ok(ctx.loaders().members.load_one(id).await?),
            None => Ok(None),
        }
    }

    async fn decided_at(&self) -> Option<DateTime> {
        self.review.decided_at.map(DateTime)
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.review.created_at)
    }
}

/// A review by id with its flags, for moderators.
pub async fn review_view(ctx: &Context<'_>, id: i64) -> AppResult<Option<ReviewView>> {
    let db = &ctx.state().db;
    let Some(review) = reviews::by_ids(db, &[id]).await?.remove(&id) else { return Ok(None) };
    let flags = reviews::flags_of(db, &[id]).await?.remove(&id).unwrap_or_default();
    Ok(Some(ReviewView { review, flags }))
}

/// `node(id:)` for a review: moderators only, null for anyone else.
pub async fn review_node(ctx: &Context<'_>, id: i64) -> AppResult<Option<ReviewView>> {
    if !ctx.viewer().is_some_and(|v| is_moderator(&v.member)) {
        return Ok(None);
    }
    review_view(ctx, id).await
}

#[derive(Default)]
pub struct ModerationQuery;

#[Object]
impl ModerationQuery {
    /// Open reviews, heaviest first (moderators and admins only).
    async fn moderation_queue(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, ReviewView>> {
        require_moderator(ctx)?;
        let page = Page::<(i64, i64)>::new(first, after, last, before)?;
        let db = &ctx.state().db;
        let rows = reviews::queue(db, &page.keyset()).await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut flags = reviews::flags_of(db, &ids).await?;
        // One statement for every flagger on the page.
        let flaggers: HashSet<i64> = flags.values().flatten().map(|f| f.flagger_id).collect();
        ctx.loaders().members.load_many(flaggers).await?;
        let views: Vec<ReviewView> = rows
            .into_iter()
            .map(|review| {
                let flags = flags.remove(&review.id).unwrap_or_default();
                ReviewView { review, flags }
            })
            .collect();
        Ok(page.connection(views, |v| (v.review.weight, v.review.id)))
    }

    /// How many reviews are open (moderators and admins only).
    async fn moderation_queue_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        require_moderator(ctx)?;
        Ok(reviews::open_count(&ctx.state().db).await?)
    }

    /// One review, open or decided (moderators and admins only).
    async fn review(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<ReviewView>> {
        require_moderator(ctx)?;
        let Ok(number) = relay::parse_global_id_of("Review", &id) else { return Ok(None) };
        Ok(review_view(ctx, number).await?)
    }
}

#[derive(InputObject)]
pub struct FlagInput {
    /// A case study, artefact, comment, meetup event or member.
    pub target_id: ID,
    pub reason: FlagReason,
    /// At most 1,000 characters; required with OTHER.
    pub note: Option<String>,
}

#[derive(SimpleObject, Default)]
pub struct FlagPayload {
    pub flag: Option<FlagView>,
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct DecideReviewInput {
    pub review_id: ID,
    pub decision: Decision,
    /// Why, in at most 1,000 characters: recorded in the audit log and shown to the author
    /// of a hidden item.
    pub reason: String,
    /// EDIT: a new title (case study, artefact, meetup) or display name (member).
    pub title: Option<String>,
    /// EDIT: a new summary (case study).
    pub summary: Option<String>,
    /// EDIT: new Markdown (body, description or comment), or a member's new bio.
    pub body: Option<String>,
    /// SUSPEND: until when; leave out to suspend until lifted.
    pub suspend_until: Option<DateTime>,
}

#[derive(SimpleObject, Default)]
pub struct DecideReviewPayload {
    pub review: Option<ReviewView>,
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct ModerateContentInput {
    /// A case study, artefact, comment or meetup event.
    pub target_id: ID,
    /// Why, in at most 1,000 characters (shown to the author when hiding).
    pub reason: String,
}

#[derive(SimpleObject, Default)]
pub struct ModerateContentPayload {
    /// Whether the item is hidden now.
    pub hidden: Option<bool>,
    pub user_errors: Vec<UserError>,
}

fn check_reason(reason: &str) -> Option<UserError> {
    if reason.trim().is_empty() {
        return Some(UserError::new("reason", UserErrorCode::Blank, "Give a reason."));
    }
    accounts::check_text("reason", "The reason", reason, reviews::REASON_MAX, true)
}

/// The target behind a global id, if it is of a kind that can be flagged.
fn parse_target(id: &ID) -> Option<Target> {
    let (type_name, number) = relay::parse_global_id(id).ok()?;
    Some(Target { kind: TargetType::from_node_name(&type_name)?, id: number })
}

/// Checks an edit's text against the limits of what it replaces and renders it.
async fn prepare_edit(
    ctx: &Context<'_>,
    kind: TargetType,
    input: &DecideReviewInput,
) -> AppResult<Result<Edit, UserError>> {
    let (title, summary, body) = (input.title.as_deref(), input.summary.as_deref(), input.body.as_deref());
    if title.is_none() && summary.is_none() && body.is_none() {
        return Ok(Err(UserError::new("body", UserErrorCode::Blank, "Give the text that replaces what was written.")));
    }
    let title_max = match kind {
        TargetType::CaseStudy => case_studies::TITLE_MAX,
        TargetType::Artefact => artefacts::TITLE_MAX,
        _ => meetups::events::TITLE_MAX,
    };
    if let Some(title) = title {
        let problem = if kind == TargetType::Member {
            accounts::check_display_name("title", title)
        } else {
            text::check_line("title", "The title", title, title_max, true)
        };
        if let Some(problem) = problem {
            return Ok(Err(problem));
        }
    }
    if let Some(summary) = summary {
        if let Some(problem) = text::check_line("summary", "The summary", summary, case_studies::SUMMARY_MAX, true) {
            return Ok(Err(problem));
        }
    }
    let body = match body {
        None => None,
        Some(body) => {
            let too_long = match kind {
                TargetType::CaseStudy => body.len() > case_studies::BODY_MAX_BYTES,
                TargetType::Artefact => body.len() > artefacts::DESCRIPTION_MAX_BYTES,
                TargetType::MeetupEvent => body.len() > meetups::events::DESCRIPTION_MAX_BYTES,
                TargetType::Comment => body.chars().count() > comments::BODY_MAX,
                TargetType::Member => body.chars().count() > accounts::BIO_MAX,
            };
            if too_long {
                return Ok(Err(UserError::new("body", UserErrorCode::TooLong, "The new text is too long for this.")));
            }
            if let Some(problem) = text::check("body", "The new text", body) {
                return Ok(Err(problem));
            }
            if kind == TargetType::Comment && body.trim().is_empty() {
                return Ok(Err(UserError::new("body", UserErrorCode::Blank, "Write the comment's new text.")));
            }
            let rendered = if kind == TargetType::Member {
                markdown::Rendered { html: String::new(), mentions: Vec::new(), mentioned_ids: Vec::new() }
            } else {
                markdown::render_linked(&ctx.state().db, body.trim()).await?
            };
            Some((body.trim().to_string(), rendered))
        }
    };
    Ok(Ok(Edit { title: title.map(|t| t.trim().to_string()), summary: summary.map(|s| s.trim().to_string()), body }))
}

#[derive(Default)]
pub struct ModerationMutation;

#[Object]
impl ModerationMutation {
    /// Reports a case study, artefact, comment, meetup or member to the moderators. A
    /// member flags a thing once, and never their own.
    async fn flag(&self, ctx: &Context<'_>, input: FlagInput) -> async_graphql::Result<FlagPayload> {
        let viewer = ctx.require_viewer()?;
        let problem = |field: &str, code, message: &str| FlagPayload {
            flag: None,
            user_errors: vec![UserError::new(field, code, message)],
        };
        let not_found = || problem("targetId", UserErrorCode::NotFound, "There is no such thing to flag.");
        let Some(target) = parse_target(&input.target_id) else { return Ok(not_found()) };
        let db = &ctx.state().db;
        let Some(info) = reviews::describe(db, None, target).await?.filter(|i| i.public) else {
            return Ok(not_found());
        };
        if target.kind == TargetType::Member && target.id == viewer.member.id {
            return Ok(problem("targetId", UserErrorCode::Invalid, "You cannot flag yourself."));
        }
        if info.authors.contains(&viewer.member.id) {
            return Ok(problem("targetId", UserErrorCode::Invalid, "You cannot flag what you wrote."));
        }
        let note = input.note.as_deref().unwrap_or("");
        if let Some(error) = accounts::check_text("note", "The note", note, flags::NOTE_MAX, false) {
            return Ok(FlagPayload { flag: None, user_errors: vec![error] });
        }
        if input.reason == FlagReason::Other && note.trim().is_empty() {
            return Ok(problem("note", UserErrorCode::Blank, "Say what is wrong with it."));
        }
        match flags::flag(db, viewer.member.id, viewer.member.role, target, input.reason, note).await? {
            Flagged::Already => {
                Ok(problem("targetId", UserErrorCode::AlreadyFlagged, "You have already flagged this. Thank you."))
            }
            Flagged::Done { flag_id, .. } => {
                Ok(FlagPayload { flag: reviews::flag_by_id(db, flag_id).await?.map(FlagView), user_errors: vec![] })
            }
        }
    }

    /// Decides a review once (moderators and admins only). A second decision of the same
    /// review is refused with ALREADY_DECIDED and changes nothing.
    async fn decide_review(
        &self,
        ctx: &Context<'_>,
        input: DecideReviewInput,
    ) -> async_graphql::Result<DecideReviewPayload> {
        let viewer = require_moderator(ctx)?;
        let problem = |error: UserError| DecideReviewPayload { review: None, user_errors: vec![error] };
        let Ok(review_id) = relay::parse_global_id_of("Review", &input.review_id) else {
            return Ok(problem(UserError::new("reviewId", UserErrorCode::NotFound, "There is no such review.")));
        };
        let db = &ctx.state().db;
        let Some(review) = reviews::by_ids(db, &[review_id]).await?.remove(&review_id) else {
            return Ok(problem(UserError::new("reviewId", UserErrorCode::NotFound, "There is no such review.")));
        };
        if let Some(error) = check_reason(&input.reason) {
            return Ok(problem(error));
        }
        let now = crate::db::now_millis();
        let suspend_until = input.suspend_until.map(|d| d.0);
        if suspend_until.is_some() && input.decision != Decision::Suspend {
            return Ok(problem(UserError::new(
                "suspendUntil",
                UserErrorCode::Invalid,
                "Give an end date only when suspending.",
            )));
        }
        if suspend_until.is_some_and(|until| until <= now) {
            return Ok(problem(UserError::new(
                "suspendUntil",
                UserErrorCode::Invalid,
                "The end must be in the future.",
            )));
        }
        if input.decision != Decision::Edit
            && (input.title.is_some() || input.summary.is_some() || input.body.is_some())
        {
            return Ok(problem(UserError::new("body", UserErrorCode::Invalid, "Give new text only when editing.")));
        }
        let edit = if input.decision == Decision::Edit {
            match prepare_edit(ctx, review.target.kind, &input).await? {
                Ok(edit) => Some(edit),
                Err(error) => return Ok(problem(error)),
            }
        } else {
            None
        };
        let decided = reviews::decide(
            db,
            Decide {
                actor_id: viewer.member.id,
                review_id,
                decision: input.decision,
                reason: input.reason.trim(),
                edit,
                suspend_until,
            },
        )
        .await?;
        // What this request loaded before the decision may have changed.
        ctx.loaders().case_studies.clear::<i64>();
        ctx.loaders().artefacts.clear::<i64>();
        ctx.loaders().comments.clear::<i64>();
        ctx.loaders().members.clear::<i64>();
        match decided {
            Decided::Done(review) => {
                let flags = reviews::flags_of(db, &[review.id]).await?.remove(&review.id).unwrap_or_default();
                Ok(DecideReviewPayload { review: Some(ReviewView { review, flags }), user_errors: vec![] })
            }
            Decided::AlreadyDecided => Ok(DecideReviewPayload {
                review: review_view(ctx, review_id).await?,
                user_errors: vec![UserError::new(
                    "reviewId",
                    UserErrorCode::AlreadyDecided,
                    "Another moderator has already decided this review. Nothing was changed.",
                )],
            }),
            Decided::Unfit(field, message) => Ok(problem(UserError::new(field, UserErrorCode::Invalid, message))),
        }
    }

    /// Hides an item without a flag (moderators and admins only); audited.
    async fn hide_content(
        &self,
        ctx: &Context<'_>,
        input: ModerateContentInput,
    ) -> async_graphql::Result<ModerateContentPayload> {
        moderate(ctx, input, true).await
    }

    /// Shows a hidden item again (moderators and admins only); audited.
    async fn restore_content(
        &self,
        ctx: &Context<'_>,
        input: ModerateContentInput,
    ) -> async_graphql::Result<ModerateContentPayload> {
        moderate(ctx, input, false).await
    }
}

async fn moderate(
    ctx: &Context<'_>,
    input: ModerateContentInput,
    hide: bool,
) -> async_graphql::Result<ModerateContentPayload> {
    let viewer = require_moderator(ctx)?;
    let problem = |field: &str, code, message: &str| ModerateContentPayload {
        hidden: None,
        user_errors: vec![UserError::new(field, code, message)],
    };
    let target = parse_target(&input.target_id).filter(|t| t.kind != TargetType::Member);
    let db = &ctx.state().db;
    let info = match target {
        Some(target) => reviews::describe(db, None, target).await?,
        None => None,
    };
    let (Some(target), Some(_)) = (target, info) else {
        return Ok(problem(
            "targetId",
            UserErrorCode::NotFound,
            "There is no such case study, artefact, comment or meetup.",
        ));
    };
    if let Some(error) = check_reason(&input.reason) {
        return Ok(ModerateContentPayload { hidden: None, user_errors: vec![error] });
    }
    let reason = input.reason.trim();
    reviews::set_hidden(db, viewer.member.id, target, hide.then_some(reason), reason).await?;
    ctx.loaders().case_studies.clear::<i64>();
    ctx.loaders().artefacts.clear::<i64>();
    ctx.loaders().comments.clear::<i64>();
    Ok(ModerateContentPayload { hidden: Some(hide), user_errors: vec![] })
}

pub mod admin {
    //! The API moderators and admins use on people and on the site itself: suspending a
    //! member and lifting it, changing roles, reading the audit log, and site settings.
    //!
    //! Who may do what:
    //! - `suspendMember` and `liftSuspension`: moderators on plain members, admins on anyone;
    //!   nobody on themselves ([`suspensions::may_act_on`]);
    //! - `setMemberRole` and `setAutoHideWeight`: admins only;
    //! - `auditLog`, `siteSettings`, and a member's `suspensionHistory`: moderators and admins.
    //!
    //! Each mutation records itself in the audit log in the transaction of the change (the
    //! domain functions it calls do that), so nothing here can change without a row.

    use async_graphql::{connection::Connection, Context, InputObject, Object, SimpleObject, ID};

    use crate::moderation::{
        audit::{self, Record},
        settings,
        suspensions::{self, Outcome, Suspension},
    };
    use crate::{
        accounts::{self, Identity, Member, Role, RoleChange, RoleTarget},
        db,
        error::{AppError, AppResult},
        graphql::{
            relay::{self, Page},
            ContextExt, DateTime, Node, UserError, UserErrorCode,
        },
    };

    /// The smallest and largest auto-hide threshold, in hundredths of a plain member's flag:
    /// at least one flag's worth, and no more than a hundred.
    pub const AUTO_HIDE_WEIGHT_RANGE: std::ops::RangeInclusive<i64> = 100..=10_000;

    /// The viewer, if a moderator or an admin.
    fn moderator<'c>(ctx: &'c Context<'_>) -> AppResult<&'c Identity> {
        let viewer = ctx.require_viewer()?;
        match viewer.member.role {
            Role::Moderator | Role::Admin => Ok(viewer),
            Role::Member => Err(AppError::Forbidden),
        }
    }

    /// The viewer, if an admin.
    fn admin<'c>(ctx: &'c Context<'_>) -> AppResult<&'c Identity> {
        let viewer = ctx.require_viewer()?;
        match viewer.member.role {
            Role::Admin => Ok(viewer),
            Role::Moderator | Role::Member => Err(AppError::Forbidden),
        }
    }

    /// Whether the viewer is a moderator or an admin (for fields that are null for others).
    fn is_moderator(ctx: &Context<'_>) -> bool {
        ctx.viewer().is_some_and(|v| matches!(v.member.role, Role::Moderator | Role::Admin))
    }

    /// A reason for an action: the text policy, present, and at most
    /// [`suspensions::REASON_MAX`] characters.
    fn check_reason(value: &str) -> Option<UserError> {
        if let Some(problem) = accounts::check_text("reason", "Reason", value, suspensions::REASON_MAX, false) {
            return Some(problem);
        }
        value.trim().is_empty().then(|| UserError::new("reason", UserErrorCode::Blank, "Enter a reason."))
    }

    /// The member a mutation is about, checked before its input: one the viewer may not act
    /// on is refused (`FORBIDDEN`) whatever the rest says.
    async fn target_member(ctx: &Context<'_>, viewer: &Identity, id: &ID) -> AppResult<Member> {
        let number = relay::parse_global_id_of("Member", id)?;
        let member = ctx.loaders().members.load_one(number).await?.ok_or(AppError::NotFound("That member"))?;
        if member.id != viewer.member.id && !suspensions::may_act_on(viewer.member.role, member.role) {
            return Err(AppError::Forbidden);
        }
        Ok(member)
    }

    // ---------------------------------------------------------------------------------------
    // Member fields (resolved from `accounts::graphql`)

    /// A suspension in force: the member cannot sign in until it ends or is lifted.
    #[derive(SimpleObject)]
    pub struct MemberSuspension {
        /// Why, as the member is told it.
        pub reason: String,
        pub starts_at: DateTime,
        /// When it ends by itself; null: until a moderator lifts it.
        pub ends_at: Option<DateTime>,
    }

    /// `Member.suspension`: for the member themself, moderators and admins.
    pub fn suspension_of(ctx: &Context<'_>, member: &Member) -> Option<MemberSuspension> {
        let own = ctx.viewer().is_some_and(|v| v.member.id == member.id);
        if !(own || is_moderator(ctx)) || !member.is_suspended(db::now_millis()) {
            return None;
        }
        Some(MemberSuspension {
            reason: member.suspension_reason.clone().unwrap_or_default(),
            starts_at: DateTime(member.suspended_at.unwrap_or_default()),
            ends_at: member.suspended_until.map(DateTime),
        })
    }

    /// `Member.suspensionHistory`: for moderators and admins; null for everyone else.
    pub async fn suspension_history(
        ctx: &Context<'_>,
        member: &Member,
        page: Page<i64>,
    ) -> AppResult<Option<Connection<String, Suspension>>> {
        if !is_moderator(ctx) {
            return Ok(None);
        }
        let rows = suspensions::history(&ctx.state().db, member.id, &page.keyset()).await?;
        Ok(Some(page.connection(rows, |s| s.id)))
    }

    /// One suspension of a member, lifted or not.
    #[Object]
    impl Suspension {
        async fn id(&self) -> ID {
            relay::global_id("Suspension", self.id)
        }

        async fn reason(&self) -> &str {
            &self.reason
        }

        async fn starts_at(&self) -> DateTime {
            DateTime(self.starts_at)
        }

        /// When it was due to end by itself; null: until lifted.
        async fn ends_at(&self) -> Option<DateTime> {
            self.ends_at.map(DateTime)
        }

        /// Who suspended them; null once that member is gone.
        async fn suspended_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
            Ok(match self.created_by {
                Some(id) => ctx.loaders().members.load_one(id).await?,
                None => None,
            })
        }

        /// When it was lifted, or replaced by a later suspension.
        async fn lifted_at(&self) -> Option<DateTime> {
            self.lifted_at.map(DateTime)
        }

        async fn lifted_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
            Ok(match self.lifted_by {
                Some(id) => ctx.loaders().members.load_one(id).await?,
                None => None,
            })
        }

        async fn lift_reason(&self) -> Option<&str> {
            self.lift_reason.as_deref()
        }
    }

    // ---------------------------------------------------------------------------------------
    // The audit log

    /// The GraphQL type name for each kind of audit target, and back: a target is given and
    /// shown as a global id, so a client can pass one it has straight to the filter.
    const TARGET_TYPES: &[(&str, &str)] = &[
        ("member", "Member"),
        ("case_study", "CaseStudy"),
        ("artefact", "Artefact"),
        ("comment", "Comment"),
        ("meetup_event", "MeetupEvent"),
        ("topic", "Topic"),
        ("site_setting", "SiteSetting"),
    ];

    fn graphql_type(target_type: &str) -> Option<&'static str> {
        TARGET_TYPES.iter().find(|(t, _)| *t == target_type).map(|(_, g)| *g)
    }

    fn target_type(graphql_type: &str) -> Option<&'static str> {
        TARGET_TYPES.iter().find(|(_, g)| *g == graphql_type).map(|(t, _)| *t)
    }

    /// One action of a moderator or admin. Rows are never changed or removed.
    #[Object(name = "AuditEntry")]
    impl Record {
        async fn id(&self) -> ID {
            relay::global_id("AuditEntry", self.id)
        }

        /// Who acted; null for the operator at the command line, or a member since erased.
        async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Member>> {
            Ok(match self.actor_id {
                Some(id) => ctx.loaders().members.load_one(id).await?,
                None => None,
            })
        }

        /// What was done: the moderators' decisions (`hide`, `restore`, `edit`, `dismiss`),
        /// `suspend`, `lift_suspension`, `set_role`, `merge_topic`, `delete_comment`,
        /// `set_site_setting`, or `erase_member`.
        async fn action(&self) -> &str {
            &self.action
        }

        /// The kind of thing acted on: `member`, `case_study`, `artefact`, `comment`,
        /// `meetup_event`, `topic` or `site_setting`.
        async fn target_type(&self) -> &str {
            &self.target_type
        }

        /// The global id of what was acted on (what the `target` filter takes), whether or
        /// not it still exists.
        async fn target_id(&self) -> ID {
            match graphql_type(&self.target_type) {
                Some(type_name) => relay::global_id(type_name, self.target_id),
                None => ID(format!("{}:{}", self.target_type, self.target_id)),
            }
        }

        /// What was acted on, if it still exists and the viewer may see it.
        async fn target(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Node>> {
            let Some(type_name) = graphql_type(&self.target_type) else { return Ok(None) };
            Ok(crate::graphql::load_node(ctx, &relay::global_id(type_name, self.target_id)).await?)
        }

        async fn reason(&self) -> &str {
            &self.reason
        }

        /// What it was, as JSON, for changes of a value; null otherwise.
        async fn before(&self) -> Option<&str> {
            self.before.as_deref()
        }

        /// What it became, as JSON; null when there is nothing to say.
        async fn after(&self) -> Option<&str> {
            self.after.as_deref()
        }

        async fn created_at(&self) -> DateTime {
            DateTime(self.created_at)
        }
    }

    /// Settings admins change from the site.
    #[derive(SimpleObject)]
    pub struct SiteSettings {
        /// The weighted flags (in hundredths: a plain member's flag weighs 100) at which an
        /// item is hidden until a moderator reviews it.
        pub auto_hide_weight: i64,
    }

    #[derive(Default)]
    pub struct AdminQuery;

    #[Object]
    impl AdminQuery {
        /// What moderators and admins did, newest first. Each filter narrows it: `actor` (a
        /// member's id), `target` (the id of what was acted on), `action` (such as
        /// `suspend`). Moderators and admins only.
        #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
        #[allow(clippy::too_many_arguments)]
        async fn audit_log(
            &self,
            ctx: &Context<'_>,
            first: Option<i32>,
            after: Option<String>,
            last: Option<i32>,
            before: Option<String>,
            actor: Option<ID>,
            target: Option<ID>,
            action: Option<String>,
        ) -> async_graphql::Result<Connection<String, Record>> {
            moderator(ctx)?;
            let page = Page::<i64>::new(first, after, last, before)?;
            let actor_id = actor.map(|id| relay::parse_global_id_of("Member", &id)).transpose()?;
            let target = match target {
                Some(id) => {
                    let (type_name, number) = relay::parse_global_id(&id)?;
                    let kind = target_type(&type_name)
                        .ok_or_else(|| AppError::bad_input(format!("Nothing of type {type_name} is audited.")))?;
                    Some((kind.to_string(), number))
                }
                None => None,
            };
            let action = action.map(|a| a.trim().to_string()).filter(|a| !a.is_empty());
            if action.as_ref().is_some_and(|a| a.chars().count() > audit::ACTION_MAX) {
                return Err(
                    AppError::bad_input(format!("action must be {} characters or fewer.", audit::ACTION_MAX)).into()
                );
            }
            let filter = audit::Filter { actor_id, target, action };
            let rows = audit::list(&ctx.state().db, &filter, &page.keyset()).await?;
            Ok(page.connection(rows, |r| r.id))
        }

        /// The site's settings. Moderators and admins only.
        async fn site_settings(&self, ctx: &Context<'_>) -> async_graphql::Result<SiteSettings> {
            moderator(ctx)?;
            Ok(SiteSettings { auto_hide_weight: settings::current_auto_hide_weight(&ctx.state().db).await? })
        }
    }

    #[derive(InputObject)]
    pub struct SuspendMemberInput {
        pub member_id: ID,
        /// Why: the member is shown it when they try to sign in (up to 500 characters).
        pub reason: String,
        /// When it ends by itself, in the future; leave out to suspend until lifted.
        pub until: Option<DateTime>,
    }

    #[derive(InputObject)]
    pub struct LiftSuspensionInput {
        pub member_id: ID,
        /// Why, for the audit log (up to 500 characters).
        pub reason: String,
    }

    #[derive(InputObject)]
    pub struct SetMemberRoleInput {
        pub member_id: ID,
        pub role: Role,
        /// Why, for the audit log (up to 500 characters).
        pub reason: String,
    }

    #[derive(InputObject)]
    pub struct SetAutoHideWeightInput {
        /// In hundredths of a plain member's flag, from 100 to 10000.
        pub weight: i64,
        /// Why, for the audit log (up to 500 characters).
        pub reason: String,
    }

    /// The result of `suspendMember`, `liftSuspension` and `setMemberRole`.
    #[derive(SimpleObject, Default)]
    pub struct MemberModerationPayload {
        pub member: Option<Member>,
        pub user_errors: Vec<UserError>,
    }

    impl MemberModerationPayload {
        fn problems(user_errors: Vec<UserError>) -> Self {
            MemberModerationPayload { member: None, user_errors }
        }
    }

    #[derive(SimpleObject, Default)]
    pub struct SiteSettingsPayload {
        pub site_settings: Option<SiteSettings>,
        pub user_errors: Vec<UserError>,
    }

    fn yourself(what: &str) -> UserError {
        UserError::new("memberId", UserErrorCode::Invalid, format!("You cannot {what} yourself."))
    }

    #[derive(Default)]
    pub struct AdminMutation;

    #[Object]
    impl AdminMutation {
        /// Suspends a member until a time, or until lifted: they are signed out everywhere at
        /// once, their access tokens stop working, and signing in tells them why and until
        /// when. Replaces a suspension already in force. Moderators (of plain members) and
        /// admins; audited.
        async fn suspend_member(
            &self,
            ctx: &Context<'_>,
            input: SuspendMemberInput,
        ) -> async_graphql::Result<MemberModerationPayload> {
            let viewer = moderator(ctx)?;
            let member = target_member(ctx, viewer, &input.member_id).await?;
            if member.id == viewer.member.id {
                return Ok(MemberModerationPayload::problems(vec![yourself("suspend")]));
            }
            let mut problems: Vec<UserError> = check_reason(&input.reason).into_iter().collect();
            let now = db::now_millis();
            match input.until {
                Some(DateTime(until)) if until <= now => problems.push(UserError::new(
                    "until",
                    UserErrorCode::Invalid,
                    "The end of the suspension must be in the future.",
                )),
                Some(DateTime(until)) if until - now > suspensions::UNTIL_MAX_MS => problems.push(UserError::new(
                    "until",
                    UserErrorCode::Invalid,
                    "The end of the suspension must be within 10 years. Leave it out to suspend until lifted.",
                )),
                _ => {}
            }
            if !problems.is_empty() {
                return Ok(MemberModerationPayload::problems(problems));
            }
            let until = input.until.map(|t| t.0);
            match suspensions::suspend(&ctx.state().db, &viewer.member, member.id, until, &input.reason).await? {
                Outcome::Done(member) => Ok(MemberModerationPayload { member: Some(member), user_errors: vec![] }),
                Outcome::Yourself => Ok(MemberModerationPayload::problems(vec![yourself("suspend")])),
                Outcome::NotSuspended => {
                    Err(AppError::internal(anyhow::anyhow!("suspending reported nothing to lift")).into())
                }
            }
        }

        /// Lifts a member's suspension: they can sign in again. Moderators (of plain members)
        /// and admins; audited.
        async fn lift_suspension(
            &self,
            ctx: &Context<'_>,
            input: LiftSuspensionInput,
        ) -> async_graphql::Result<MemberModerationPayload> {
            let viewer = moderator(ctx)?;
            let member = target_member(ctx, viewer, &input.member_id).await?;
            if member.id == viewer.member.id {
                return Ok(MemberModerationPayload::problems(vec![yourself("lift a suspension of")]));
            }
            if let Some(problem) = check_reason(&input.reason) {
                return Ok(MemberModerationPayload::problems(vec![problem]));
            }
            match suspensions::lift(&ctx.state().db, &viewer.member, member.id, &input.reason).await? {
                Outcome::Done(member) => Ok(MemberModerationPayload { member: Some(member), user_errors: vec![] }),
                Outcome::Yourself => Ok(MemberModerationPayload::problems(vec![yourself("lift a suspension of")])),
                Outcome::NotSuspended => Ok(MemberModerationPayload::problems(vec![UserError::new(
                    "memberId",
                    UserErrorCode::Invalid,
                    "This member is not suspended.",
                )])),
            }
        }

        /// Makes a member a plain member, a moderator or an admin. Admins only; the last admin
        /// cannot be demoted. Audited, with the role before and after.
        async fn set_member_role(
            &self,
            ctx: &Context<'_>,
            input: SetMemberRoleInput,
        ) -> async_graphql::Result<MemberModerationPayload> {
            let viewer = admin(ctx)?;
            let number = relay::parse_global_id_of("Member", &input.member_id)?;
            if let Some(problem) = check_reason(&input.reason) {
                return Ok(MemberModerationPayload::problems(vec![problem]));
            }
            let target = RoleTarget::Id(number);
            match accounts::change_role(
                &ctx.state().db,
                Some(viewer.member.id),
                target,
                input.role,
                input.reason.trim(),
            )
            .await?
            {
                RoleChange::Done(member) => Ok(MemberModerationPayload { member: Some(member), user_errors: vec![] }),
                RoleChange::NotFound => Err(AppError::NotFound("That member").into()),
                RoleChange::LastAdmin => Ok(MemberModerationPayload::problems(vec![UserError::new(
                    "role",
                    UserErrorCode::Invalid,
                    "This is the last admin. Make someone else an admin first.",
                )])),
            }
        }

        /// Sets the weighted flags at which an item is hidden until reviewed. Admins only;
        /// audited.
        async fn set_auto_hide_weight(
            &self,
            ctx: &Context<'_>,
            input: SetAutoHideWeightInput,
        ) -> async_graphql::Result<SiteSettingsPayload> {
            let viewer = admin(ctx)?;
            let mut problems: Vec<UserError> = Vec::new();
            if !AUTO_HIDE_WEIGHT_RANGE.contains(&input.weight) {
                problems.push(UserError::new(
                    "weight",
                    UserErrorCode::Invalid,
                    format!(
                        "The threshold must be between {} and {}.",
                        AUTO_HIDE_WEIGHT_RANGE.start(),
                        AUTO_HIDE_WEIGHT_RANGE.end()
                    ),
                ));
            }
            problems.extend(check_reason(&input.reason));
            if !problems.is_empty() {
                return Ok(SiteSettingsPayload { site_settings: None, user_errors: problems });
            }
            let db = &ctx.state().db;
            settings::set_auto_hide_weight(db, viewer.member.id, input.weight, input.reason.trim()).await?;
            let settings = SiteSettings { auto_hide_weight: settings::current_auto_hide_weight(db).await? };
            Ok(SiteSettingsPayload { site_settings: Some(settings), user_errors: vec![] })
        }
    }
}
