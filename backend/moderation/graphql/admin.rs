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
        match accounts::change_role(&ctx.state().db, Some(viewer.member.id), target, input.role, input.reason.trim())
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
