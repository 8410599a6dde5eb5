//! The account API: `viewer`, the `Member` and `AccessToken` types, and the mutations to
//! register, sign in and out, edit a profile and manage access tokens.

use async_graphql::{connection::Connection, Context, InputObject, Object, SimpleObject, ID};

use super::{
    credentials::{self, AccessToken, CreateTokenOutcome, Credential},
    passwords,
    recovery::{self, Purpose, Resent, Verified},
    Member, NewMember, ProfileChanges, Role,
};
use crate::{
    error::{AppError, AppResult},
    graphql::{
        relay::{self, Page},
        ContextExt, DateTime, UserError, UserErrorCode,
    },
    limits::Limit,
    notifications::{
        self,
        follows::FollowLevel,
        graphql::{Follow, NotificationSettings},
        Notification,
    },
};

impl Member {
    /// Whether the viewer may see this member's address and its state: themself, or an
    /// admin.
    fn visible_to(&self, ctx: &Context<'_>) -> bool {
        ctx.viewer().is_some_and(|viewer| viewer.member.id == self.id || viewer.member.role == Role::Admin)
    }
}

#[Object]
impl Member {
    pub async fn id(&self) -> ID {
        relay::global_id("Member", self.id)
    }

    /// Unique and URL-safe: `@handle` mentions them, `/members/@handle` is their profile.
    async fn handle(&self) -> &str {
        &self.handle
    }

    async fn display_name(&self) -> &str {
        &self.display_name
    }

    async fn bio(&self) -> &str {
        &self.bio
    }

    /// IANA time zone name, such as Europe/London; times are shown to the member in it.
    async fn time_zone(&self) -> &str {
        &self.time_zone
    }

    async fn role(&self) -> Role {
        self.role
    }

    async fn joined_at(&self) -> DateTime {
        DateTime(self.created_at)
    }

    /// The organisations the member belongs to (approved memberships), by name.
    async fn organisations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<crate::organisations::Organisation>> {
        let loaders = ctx.loaders();
        let ids = loaders.member_organisations.load_one(self.id).await?.unwrap_or_default();
        let found = loaders.organisations.load_many(ids.iter().copied()).await?;
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    /// The artefacts the member shared, newest first (at most `first`, up to 50; hidden
    /// ones left out).
    #[graphql(complexity = "first.clamp(0, 50) as usize * child_complexity")]
    async fn artefacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i64,
    ) -> async_graphql::Result<Vec<crate::artefacts::Artefact>> {
        let ids = crate::artefacts::shared_by(&ctx.state().db, self.id, first).await?;
        let found = ctx.loaders().artefacts.load_many(ids.iter().copied()).await?;
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    /// The meetup groups the member belongs to, by name (at most 50).
    async fn meetup_groups(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<crate::meetups::Group>> {
        let ids = crate::meetups::groups_of(&ctx.state().db, self.id).await?;
        let found = ctx.loaders().meetup_groups.load_many(ids.iter().copied()).await?;
        let mut groups: Vec<crate::meetups::Group> = ids.iter().filter_map(|id| found.get(id).cloned()).collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }

    /// Organisations the member asked to join whose admins have not decided yet, oldest
    /// request first. Only the member themself sees them; empty for everyone else.
    async fn pending_organisations(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::organisations::Organisation>> {
        if ctx.viewer().map(|v| v.member.id) != Some(self.id) {
            return Ok(Vec::new());
        }
        let ids = crate::organisations::pending_for(&ctx.state().db, self.id).await?;
        let found = ctx.loaders().organisations.load_many(ids.iter().copied()).await?;
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    /// Requests to join the organisations the member administers, oldest first (at most
    /// 50): what is waiting for them to decide. Only the member themself sees them; empty
    /// for everyone else.
    async fn join_requests_to_decide(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::organisations::JoinRequest>> {
        if ctx.viewer().map(|v| v.member.id) != Some(self.id) {
            return Ok(Vec::new());
        }
        Ok(crate::organisations::requests_for_admin(&ctx.state().db, self.id).await?)
    }

    /// Only the member themself and admins see this; null for everyone else.
    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        self.visible_to(ctx).then_some(self.email.as_str())
    }

    /// From when the member may choose a new handle (`changeHandle`); null when they may
    /// now. Only the member themself and admins see this; null for everyone else.
    async fn next_handle_change_at(&self, ctx: &Context<'_>) -> Option<DateTime> {
        let now = crate::db::now_millis();
        self.visible_to(ctx).then(|| self.handle_changeable_from().filter(|at| *at > now).map(DateTime)).flatten()
    }

    /// Whether the member has confirmed that they receive mail at `email` (following the
    /// link sent to it). Until then they get no mail but verification. Only the member
    /// themself and admins see this; null for everyone else.
    async fn email_verified(&self, ctx: &Context<'_>) -> Option<bool> {
        self.visible_to(ctx).then_some(self.email_verified_at.is_some())
    }

    /// Whether mail to `email` failed for good; mail (but security mail such as password
    /// resets) stops until the address is verified again. Only the member themself and
    /// admins see this; null for everyone else.
    async fn email_bouncing(&self, ctx: &Context<'_>) -> Option<bool> {
        self.visible_to(ctx).then_some(self.email_bouncing_at.is_some())
    }

    /// The address the member asked to change to (`changeEmail`) and has not confirmed
    /// yet; it becomes `email` when they follow the link sent to it. Only the member
    /// themself and admins see this; null for everyone else.
    async fn pending_email(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        if !self.visible_to(ctx) {
            return Ok(None);
        }
        Ok(recovery::pending_email(&ctx.state().db, self).await?)
    }

    /// The identity providers the member signs in with. Only the member themself may
    /// see them; empty for everyone else.
    async fn identities(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ConnectedIdentity>> {
        if ctx.viewer().map(|v| v.member.id) != Some(self.id) {
            return Ok(Vec::new());
        }
        let config = &ctx.state().config;
        Ok(super::oauth::identities(&ctx.state().db, self.id)
            .await?
            .into_iter()
            .map(|identity| ConnectedIdentity {
                label: super::oauth::provider(config, &identity.provider)
                    .map_or_else(|| identity.provider.clone(), |p| p.label.clone()),
                provider: identity.provider,
                email: identity.email,
                created_at: DateTime(identity.created_at),
                last_used_at: DateTime(identity.last_used_at),
            })
            .collect())
    }

    /// Whether the member has a password (or signs in only through providers). Only the
    /// member themself may see it; null for everyone else.
    async fn has_password(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<bool>> {
        if ctx.viewer().map(|v| v.member.id) != Some(self.id) {
            return Ok(None);
        }
        Ok(Some(
            super::member_with_password(&ctx.state().db, &self.email).await?.is_some_and(|(_, hash)| hash.is_some()),
        ))
    }

    /// The member's personal access tokens that are not revoked, newest first. Only the
    /// member themself may list them.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn access_tokens(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, AccessToken>> {
        let viewer = ctx.require_viewer()?;
        if viewer.member.id != self.id {
            return Err(AppError::Forbidden.into());
        }
        let page = Page::<i64>::new(first, after, last, before)?;
        let tokens = credentials::list_access_tokens(&ctx.state().db, self.id, &page.keyset()).await?;
        Ok(page.connection(tokens, |t| t.id))
    }

    /// The images the member uploaded, newest first. Only the member themself may list
    /// them.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn images(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, crate::uploads::Image>> {
        let viewer = ctx.require_viewer()?;
        if viewer.member.id != self.id {
            return Err(AppError::Forbidden.into());
        }
        let page = Page::<i64>::new(first, after, last, before)?;
        let images = crate::uploads::of_member(&ctx.state().db, self.id, &page.keyset()).await?;
        Ok(page.connection(images, |i| i.id))
    }

    /// How much of their image quota the member has used. Only the member themself sees
    /// it; null for everyone else.
    async fn image_quota(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::uploads::graphql::ImageQuota>> {
        if ctx.viewer().map(|v| v.member.id) != Some(self.id) {
            return Ok(None);
        }
        let state = ctx.state();
        let used_bytes = crate::uploads::used_by(&state.db, self.id).await?;
        Ok(Some(crate::uploads::graphql::ImageQuota { used_bytes, limit_bytes: state.config.image_quota_bytes }))
    }

    /// The suspension in force, if any: why, and until when. Only the member themself,
    /// moderators and admins see it; null for everyone else.
    async fn suspension(&self, ctx: &Context<'_>) -> Option<crate::moderation::graphql::admin::MemberSuspension> {
        crate::moderation::graphql::admin::suspension_of(ctx, self)
    }

    /// Every suspension of the member, newest first, lifted or not. Moderators and admins
    /// only; null for everyone else.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn suspension_history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Option<Connection<String, crate::moderation::suspensions::Suspension>>> {
        let page = Page::<i64>::new(first, after, last, before)?;
        Ok(crate::moderation::graphql::admin::suspension_history(ctx, self, page).await?)
    }

    /// The viewer's level of following this member; null when not following (or signed out).
    async fn viewer_follow_level(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<FollowLevel>> {
        Ok(notifications::graphql::viewer_follow_level(ctx, "Member", self.id).await?)
    }

    /// The member's notifications, newest first, grouped: a burst about one thing is one
    /// entry. Only the member themself may list them.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        #[graphql(desc = "Only unread entries (each standing for its unread notifications).")] unread_only: Option<
            bool,
        >,
    ) -> async_graphql::Result<Connection<String, Notification>> {
        let page = Page::<i64>::new(first, after, last, before)?;
        Ok(notifications::graphql::notifications(ctx, self, page, unread_only.unwrap_or(false)).await?)
    }

    /// How many unread entries the member's notifications have. Only for the member themself.
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(notifications::graphql::unread_count(ctx, self).await?)
    }

    /// The id of the member's newest notification: where a live client starts
    /// (`notificationAdded(after:)`). Only for the member themself.
    async fn latest_notification_id(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ID>> {
        Ok(notifications::graphql::latest_notification_id(ctx, self).await?)
    }

    /// What is new in what the member follows (watched or in their digest) since they
    /// last looked (`markNewForYouSeen`), newest first. Only for the member themself.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn new_for_you(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Notification>> {
        let page = Page::<i64>::new(first, after, last, before)?;
        Ok(notifications::graphql::new_for_you(ctx, self, page).await?)
    }

    /// When the member last looked at what is new for them; null if never.
    async fn followed_seen_at(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DateTime>> {
        Ok(notifications::graphql::followed_seen_at(ctx, self).await?)
    }

    /// What the member follows, newest first. Only for the member themself.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn follows(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Follow>> {
        let page = Page::<i64>::new(first, after, last, before)?;
        Ok(notifications::graphql::follows(ctx, self, page).await?)
    }

    /// The member's personal data exports that have not expired, newest first. Only for
    /// the member themself.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn data_exports(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, crate::privacy::graphql::DataExportView>> {
        let page = Page::<i64>::new(first, after, last, before)?;
        Ok(crate::privacy::graphql::data_exports(ctx, self, page).await?)
    }

    /// Which kinds of notification the member gets. Only for the member themself.
    async fn notification_settings(&self, ctx: &Context<'_>) -> async_graphql::Result<NotificationSettings> {
        Ok(notifications::graphql::settings(ctx, self).await?)
    }
}

/// A personal access token for scripts. The secret itself is shown only once, when the
/// token is created.
#[Object]
impl AccessToken {
    pub async fn id(&self) -> ID {
        relay::global_id("AccessToken", self.id)
    }

    async fn name(&self) -> &str {
        &self.name
    }

    /// The last four characters of the secret, to tell tokens apart.
    async fn hint(&self) -> &str {
        &self.hint
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.created_at)
    }

    /// When the token was last used, to the nearest hour.
    async fn last_used_at(&self) -> Option<DateTime> {
        self.last_used_at.map(DateTime)
    }

    async fn expires_at(&self) -> Option<DateTime> {
        self.expires_at.map(DateTime)
    }

    async fn revoked_at(&self) -> Option<DateTime> {
        self.revoked_at.map(DateTime)
    }
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in member; null when signed out.
    async fn viewer(&self, ctx: &Context<'_>) -> Option<Member> {
        ctx.viewer().map(|v| v.member.clone())
    }

    /// A member by handle (with or without the `@`); null when there is none.
    async fn member(&self, ctx: &Context<'_>, handle: String) -> async_graphql::Result<Option<Member>> {
        Ok(super::member_by_handle(&ctx.state().db, &handle).await?)
    }

    /// The member directory: members by handle, A to Z; with `startingWith`, those whose
    /// handle starts with it, typed as a name or a handle ("Grace H", "@grace-h"): what
    /// `@mention` suggestions ask. Up to 30 characters are looked at.
    #[graphql(complexity = "first.or(last).unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] starting_with: String,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<String, Member>> {
        let page = Page::<String>::new(first, after, last, before)?;
        let typed: String = starting_with.chars().take(super::DIRECTORY_PREFIX_MAX).collect();
        let prefix = super::handle_prefix(&typed);
        // Typed text with nothing a handle holds ("%", "?") matches no one, not everyone.
        let rows = if prefix.is_empty() && !typed.trim().trim_start_matches('@').is_empty() {
            Vec::new()
        } else {
            super::directory(&ctx.state().db, &prefix, &page.keyset()).await?
        };
        Ok(page.connection(rows, |m| m.handle.clone()))
    }

    /// A link sent by mail (to verify an address or reset a password), if it still works:
    /// what a page shows before the link is used. Looking does not use it. Null for a
    /// link that is unknown, used or expired.
    async fn account_link(&self, ctx: &Context<'_>, token: String) -> async_graphql::Result<Option<AccountLink>> {
        let link = recovery::live_link(&ctx.state().db, token.trim(), crate::db::now_millis()).await?;
        Ok(link.map(|link| AccountLink {
            purpose: match link.purpose {
                Purpose::VerifyEmail => AccountLinkPurpose::VerifyEmail,
                Purpose::ResetPassword => AccountLinkPurpose::ResetPassword,
            },
            // The address a verification link confirms; a reset link names nobody.
            email: (link.purpose == Purpose::VerifyEmail).then_some(link.email),
            expires_at: DateTime(link.expires_at),
        }))
    }

    /// The identity providers this Kettle offers for signing in, by name.
    async fn oauth_providers(&self, ctx: &Context<'_>) -> Vec<OAuthProviderView> {
        ctx.state()
            .config
            .oauth_providers
            .iter()
            .map(|p| OAuthProviderView { name: p.name.clone(), label: p.label.clone() })
            .collect()
    }
}

/// What a link sent by mail is for.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum AccountLinkPurpose {
    VerifyEmail,
    ResetPassword,
}

/// A link sent by mail that still works (see `accountLink`).
#[derive(SimpleObject)]
pub struct AccountLink {
    pub purpose: AccountLinkPurpose,
    /// For a verification link, the address it confirms; null for a reset link.
    pub email: Option<String>,
    pub expires_at: DateTime,
}

/// An identity provider members can sign in with: `/auth/<name>/start` begins.
#[derive(SimpleObject)]
#[graphql(name = "OAuthProvider")]
pub struct OAuthProviderView {
    pub name: String,
    /// What to call it: "Sign in with <label>".
    pub label: String,
}

/// A provider identity a member signs in with.
#[derive(SimpleObject)]
pub struct ConnectedIdentity {
    /// The provider's name, as in `oauthProviders`.
    pub provider: String,
    pub label: String,
    /// The email the provider gave when it was connected.
    pub email: Option<String>,
    pub created_at: DateTime,
    pub last_used_at: DateTime,
}

#[derive(InputObject)]
pub struct DisconnectIdentityInput {
    /// The provider's name, as in `oauthProviders`.
    pub provider: String,
}

#[derive(InputObject)]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub display_name: String,
}

#[derive(InputObject)]
pub struct VerifyEmailInput {
    /// The token from the link in the mail (`/verify-email/<token>`).
    pub token: String,
}

#[derive(InputObject)]
pub struct RequestPasswordResetInput {
    pub email: String,
}

#[derive(InputObject)]
pub struct ResetPasswordInput {
    /// The token from the link in the mail (`/reset-password/<token>`).
    pub token: String,
    pub password: String,
}

#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// Required when the member has a password (members who sign in only through a
    /// provider set their first one without).
    pub current_password: Option<String>,
    pub new_password: String,
}

#[derive(InputObject)]
pub struct ChangeEmailInput {
    /// The new address; it becomes the member's when they follow the link sent to it.
    pub email: String,
    /// Required when the member has a password.
    pub current_password: Option<String>,
}

#[derive(InputObject)]
pub struct SignInInput {
    pub email: String,
    pub password: String,
}

#[derive(InputObject, Default)]
pub struct SignOutInput {
    /// Also end every other session of this member, on every device.
    #[graphql(default)]
    pub everywhere: bool,
}

#[derive(InputObject)]
pub struct UpdateProfileInput {
    /// Leave out a field to keep it as it is.
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub time_zone: Option<String>,
}

#[derive(InputObject)]
pub struct ChangeHandleInput {
    /// 2 to 30 lower-case letters, digits and single hyphens between them (an `@` before
    /// it is ignored).
    pub handle: String,
}

#[derive(InputObject)]
pub struct CreateAccessTokenInput {
    /// What the token is for, such as "weekly report script".
    pub name: String,
    /// Days until the token stops working (1 to 366); leave out for no expiry.
    pub expires_in_days: Option<i32>,
}

#[derive(InputObject)]
pub struct RevokeAccessTokenInput {
    pub id: ID,
}

/// The result of `register` and `signIn`.
#[derive(SimpleObject, Default)]
pub struct SessionPayload {
    pub member: Option<Member>,
    /// The session token, for API clients (`Authorization: Bearer …`). Browsers get it
    /// as an HttpOnly cookie as well.
    pub token: Option<String>,
    pub expires_at: Option<DateTime>,
    pub user_errors: Vec<UserError>,
}

/// The result of `register`: the same whether or not the address already had an account.
#[derive(SimpleObject, Default)]
pub struct RegisterPayload {
    /// The address the verification link went to.
    pub email: Option<String>,
    pub user_errors: Vec<UserError>,
}

/// The result of `verifyEmail`. A visitor who was signed out is signed in (the link
/// proved they hold the address), with the session's token as for `signIn`.
#[derive(SimpleObject, Default)]
pub struct VerifyEmailPayload {
    pub member: Option<Member>,
    pub token: Option<String>,
    pub expires_at: Option<DateTime>,
    pub user_errors: Vec<UserError>,
}

/// The result of `resendVerification`.
#[derive(SimpleObject, Default)]
pub struct ResendVerificationPayload {
    /// The address the link went to.
    pub email: Option<String>,
    pub user_errors: Vec<UserError>,
}

/// The result of `requestPasswordReset`: the same whether or not the address has an
/// account.
#[derive(SimpleObject, Default)]
pub struct RequestPasswordResetPayload {
    /// True once the request is accepted: a link has gone to the address if it has an
    /// account.
    pub sent: bool,
    pub user_errors: Vec<UserError>,
}

/// The result of `changePassword` and `changeEmail`.
#[derive(SimpleObject, Default)]
pub struct AccountChangePayload {
    pub member: Option<Member>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject, Default)]
pub struct SignOutPayload {
    pub signed_out: bool,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject, Default)]
pub struct UpdateProfilePayload {
    pub member: Option<Member>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject, Default)]
pub struct CreateAccessTokenPayload {
    pub access_token: Option<AccessToken>,
    /// The secret, shown only this once.
    pub token: Option<String>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject, Default)]
pub struct RevokeAccessTokenPayload {
    pub access_token: Option<AccessToken>,
    pub user_errors: Vec<UserError>,
}

/// Starts a session for `member` and hands its token to the browser as a cookie too.
async fn start_session(ctx: &Context<'_>, member: Member) -> AppResult<SessionPayload> {
    let state = ctx.state();
    let session = credentials::create_session(&state.db, member.id).await?;
    ctx.append_http_header(
        "Set-Cookie",
        credentials::session_cookie(Some(&session.token), credentials::SESSION_IDLE_MS, state.config.is_https()),
    );
    Ok(SessionPayload {
        member: Some(member),
        token: Some(session.token),
        expires_at: Some(DateTime(session.expires_at)),
        user_errors: vec![],
    })
}

/// The viewer, signed in with a session: changing how one signs in needs one, so that an
/// access token (made for a script) cannot take over the account.
fn require_session<'c>(ctx: &'c Context<'_>) -> AppResult<&'c super::Identity> {
    let viewer = ctx.require_viewer()?;
    match viewer.via {
        Credential::Session { .. } => Ok(viewer),
        Credential::AccessToken { .. } => Err(AppError::Forbidden),
    }
}

/// Checks the member's current password before a change to how they sign in, throttled
/// like signing in (a stolen session must not become a way to guess the password).
/// `None` when it is right, or when the member has no password to check. With `verify`
/// false (the form has other problems) a given password is not checked, only its absence
/// reported.
async fn check_current_password(
    ctx: &Context<'_>,
    member: &Member,
    given: Option<String>,
    verify: bool,
) -> AppResult<Option<UserError>> {
    let state = ctx.state();
    let stored = super::member_with_password(&state.db, &member.email).await?.and_then(|(_, hash)| hash);
    if stored.is_none() {
        return Ok(None);
    }
    let given = given.unwrap_or_default();
    if given.is_empty() {
        return Ok(Some(UserError::new("currentPassword", UserErrorCode::Blank, "Enter your current password.")));
    }
    if !verify {
        return Ok(None);
    }
    if given.chars().count() > passwords::MAX_LENGTH {
        return Ok(Some(wrong_current_password()));
    }
    let address = ctx.request().client_ip;
    let delay = super::throttle::before_attempt(&state.limiter, &member.email, address).await?;
    tokio::time::sleep(delay).await;
    if passwords::verify(given, stored).await? {
        super::throttle::succeeded(&state.limiter, &member.email).await?;
        Ok(None)
    } else {
        super::throttle::failed(&state.limiter, address).await?;
        Ok(Some(wrong_current_password()))
    }
}

fn wrong_current_password() -> UserError {
    UserError::new("currentPassword", UserErrorCode::InvalidCredentials, "Your current password is incorrect.")
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates an account with an email and password and sends a link to verify the
    /// address; sign in with the password to start using it. The answer is the same when
    /// the address already has an account (which is told by mail instead), so this
    /// reveals nobody's address.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> async_graphql::Result<RegisterPayload> {
        if !ctx.state().config.registration_open {
            let closed =
                UserError::general(UserErrorCode::Invalid, "This Kettle is not taking new members at the moment.");
            return Ok(RegisterPayload { user_errors: vec![closed], ..Default::default() });
        }
        let problems: Vec<UserError> = [
            super::check_email("email", &input.email),
            super::check_display_name("displayName", &input.display_name),
            passwords::check_new_password(
                "password",
                &input.password,
                &[input.email.trim(), input.display_name.trim()],
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !problems.is_empty() {
            return Ok(RegisterPayload { user_errors: problems, ..Default::default() });
        }
        // Counted before the expensive hash, so a flood (or fifty aliased registrations in
        // one request) costs us little.
        if let Some(address) = ctx.request().client_ip {
            ctx.state().limiter.check(Limit::RegisterAddress, &address.to_string(), 1).await?;
        }
        // Hashed in both cases, so that a taken address answers no faster than a new one.
        let hash = passwords::hash(input.password).await?;
        let new = NewMember {
            email: &input.email,
            display_name: &input.display_name,
            password_hash: Some(&hash),
            role: Role::Member,
        };
        let state = ctx.state();
        match recovery::register(&state.db, &state.mailer, new).await? {
            Some(member) => tracing::info!(member_id = member.id, "member registered"),
            None => tracing::info!("registration with an address that has an account"),
        }
        Ok(RegisterPayload { email: Some(input.email.trim().to_string()), user_errors: vec![] })
    }

    /// Confirms an address with the token from the link mailed to it: the member's own
    /// address, or (after `changeEmail`) the new one, which then becomes theirs. A visitor
    /// who is signed out is signed in. A link works once, for 24 hours.
    async fn verify_email(
        &self,
        ctx: &Context<'_>,
        input: VerifyEmailInput,
    ) -> async_graphql::Result<VerifyEmailPayload> {
        let problem = |code, message: &str| VerifyEmailPayload {
            user_errors: vec![UserError::new("token", code, message)],
            ..Default::default()
        };
        let state = ctx.state();
        let member =
            match recovery::verify_email(&state.db, input.token.trim()).await? {
                Verified::Done(member) => member,
                Verified::Invalid => return Ok(problem(
                    UserErrorCode::Invalid,
                    "This link has expired or has already been used. Sign in and ask for a new one from your settings.",
                )),
                Verified::Taken => {
                    return Ok(problem(
                        UserErrorCode::Taken,
                        "That address now belongs to another account, so your address has not changed.",
                    ))
                }
            };
        if ctx.viewer().is_some() || member.is_suspended(crate::db::now_millis()) {
            return Ok(VerifyEmailPayload { member: Some(member), ..Default::default() });
        }
        let session = start_session(ctx, member).await?;
        Ok(VerifyEmailPayload {
            member: session.member,
            token: session.token,
            expires_at: session.expires_at,
            user_errors: vec![],
        })
    }

    /// Sends the signed-in member a new link to confirm their address (or the address
    /// they are changing to). At most five links an hour are sent; past that, nothing more
    /// goes until the hour is up.
    async fn resend_verification(&self, ctx: &Context<'_>) -> async_graphql::Result<ResendVerificationPayload> {
        let viewer = ctx.require_viewer()?;
        let state = ctx.state();
        match recovery::resend_verification(&state.db, &state.mailer, viewer.member.id).await? {
            Resent::To(email) => Ok(ResendVerificationPayload { email: Some(email), user_errors: vec![] }),
            Resent::NothingToVerify => Ok(ResendVerificationPayload {
                email: None,
                user_errors: vec![UserError::general(
                    UserErrorCode::Invalid,
                    "Your email address is already confirmed.",
                )],
            }),
        }
    }

    /// Sends a link to reset the password to this address, if it has an account. The
    /// answer is the same either way, so this reveals nobody's address. The link works
    /// once, for an hour.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        input: RequestPasswordResetInput,
    ) -> async_graphql::Result<RequestPasswordResetPayload> {
        if let Some(problem) = super::check_email("email", &input.email) {
            return Ok(RequestPasswordResetPayload { sent: false, user_errors: vec![problem] });
        }
        let state = ctx.state();
        if let Some(address) = ctx.request().client_ip {
            state.limiter.check(Limit::PasswordResetAddress, &address.to_string(), 1).await?;
        }
        recovery::request_password_reset(&state.db, &state.mailer, &input.email).await?;
        Ok(RequestPasswordResetPayload { sent: true, user_errors: vec![] })
    }

    /// Sets a new password with the token from a reset link, ends every session of the
    /// member (personal access tokens keep working: revoke them in settings), and signs
    /// in. Following the link also confirms the address it was sent to.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        input: ResetPasswordInput,
    ) -> async_graphql::Result<SessionPayload> {
        let invalid = || SessionPayload {
            user_errors: vec![UserError::new(
                "token",
                UserErrorCode::Invalid,
                "This link has expired or has already been used. Ask for a new one.",
            )],
            ..Default::default()
        };
        let state = ctx.state();
        let token = input.token.trim();
        let link = recovery::live_link(&state.db, token, crate::db::now_millis()).await?;
        let Some(link) = link.filter(|l| l.purpose == Purpose::ResetPassword) else { return Ok(invalid()) };
        let Some(member) = super::member_by_id(&state.db, link.member_id).await? else { return Ok(invalid()) };
        if let Some(problem) =
            passwords::check_new_password("password", &input.password, &[&member.email, &member.display_name])
        {
            return Ok(SessionPayload { user_errors: vec![problem], ..Default::default() });
        }
        let hash = passwords::hash(input.password).await?;
        // Used by someone else meanwhile (a second tab): the guard lets one through.
        let Some(member) = recovery::reset_password(&state.db, token, &hash).await? else { return Ok(invalid()) };
        // Whoever was guessing at the old password no longer holds the member back.
        super::throttle::succeeded(&state.limiter, &member.email).await?;
        if member.is_suspended(crate::db::now_millis()) {
            return Ok(SessionPayload {
                user_errors: vec![UserError::general(
                    UserErrorCode::Invalid,
                    format!("Your password has been changed. {}", member.suspension_notice()),
                )],
                ..Default::default()
            });
        }
        Ok(start_session(ctx, member).await?)
    }

    /// Changes the signed-in member's password (or sets a first one for a member who signs
    /// in only through a provider) and ends their other sessions; this one stays. Needs a
    /// signed-in session, not an access token.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> async_graphql::Result<AccountChangePayload> {
        let viewer = require_session(ctx)?;
        let member = &viewer.member;
        let mut problems: Vec<UserError> =
            passwords::check_new_password("newPassword", &input.new_password, &[&member.email, &member.display_name])
                .into_iter()
                .collect();
        if let Some(wrong) = check_current_password(ctx, member, input.current_password, problems.is_empty()).await? {
            problems.insert(0, wrong);
        }
        if !problems.is_empty() {
            return Ok(AccountChangePayload { member: None, user_errors: problems });
        }
        let state = ctx.state();
        let hash = passwords::hash(input.new_password).await?;
        let keep = match viewer.via {
            Credential::Session { id } => Some(id),
            Credential::AccessToken { .. } => None,
        };
        recovery::change_password(&state.db, member.id, &hash, keep).await?;
        Ok(AccountChangePayload { member: Some(member.clone()), user_errors: vec![] })
    }

    /// Starts changing the signed-in member's address: a link goes to the new address,
    /// which becomes theirs when they follow it (`pendingEmail` until then), and a notice
    /// goes to the current one. The answer is the same whether or not the new address has
    /// an account. Needs a signed-in session, not an access token.
    async fn change_email(
        &self,
        ctx: &Context<'_>,
        input: ChangeEmailInput,
    ) -> async_graphql::Result<AccountChangePayload> {
        let viewer = require_session(ctx)?;
        let member = &viewer.member;
        let mut problems: Vec<UserError> = super::check_email("email", &input.email).into_iter().collect();
        if problems.is_empty() && super::normalize_email(&input.email) == super::normalize_email(&member.email) {
            problems.push(UserError::new("email", UserErrorCode::Invalid, "That is already your email address."));
        }
        if let Some(wrong) = check_current_password(ctx, member, input.current_password, problems.is_empty()).await? {
            problems.push(wrong);
        }
        if !problems.is_empty() {
            return Ok(AccountChangePayload { member: None, user_errors: problems });
        }
        let state = ctx.state();
        recovery::request_email_change(&state.db, &state.mailer, member, &input.email).await?;
        Ok(AccountChangePayload { member: Some(member.clone()), user_errors: vec![] })
    }

    /// Signs in with email and password. A wrong email and a wrong password get the same
    /// answer; repeated failures are slowed down and then refused for a while.
    async fn sign_in(&self, ctx: &Context<'_>, input: SignInInput) -> async_graphql::Result<SessionPayload> {
        let wrong = || SessionPayload {
            user_errors: vec![UserError::general(
                UserErrorCode::InvalidCredentials,
                "Email address or password is incorrect.",
            )],
            ..Default::default()
        };
        if input.email.len() > super::EMAIL_MAX * 4 || input.password.chars().count() > passwords::MAX_LENGTH {
            return Ok(wrong());
        }
        let state = ctx.state();
        let address = ctx.request().client_ip;
        let delay = super::throttle::before_attempt(&state.limiter, &input.email, address).await?;
        tokio::time::sleep(delay).await;

        let found = super::member_with_password(&state.db, &input.email).await?;
        let (member, stored_hash) = match found {
            Some((member, hash)) => (Some(member), hash),
            None => (None, None),
        };
        if !passwords::verify(input.password, stored_hash).await? {
            super::throttle::failed(&state.limiter, address).await?;
            return Ok(wrong());
        }
        let member = member.expect("a verified password belongs to a member");
        super::throttle::succeeded(&state.limiter, &input.email).await?;
        if member.is_suspended(crate::db::now_millis()) {
            return Ok(SessionPayload {
                user_errors: vec![UserError::general(UserErrorCode::Invalid, member.suspension_notice())],
                ..Default::default()
            });
        }
        Ok(start_session(ctx, member).await?)
    }

    /// Ends the current session (and, with `everywhere`, all of the member's sessions).
    async fn sign_out(&self, ctx: &Context<'_>, input: Option<SignOutInput>) -> async_graphql::Result<SignOutPayload> {
        let input = input.unwrap_or_default();
        let state = ctx.state();
        ctx.append_http_header("Set-Cookie", credentials::session_cookie(None, 0, state.config.is_https()));
        let Some(viewer) = ctx.viewer() else {
            return Ok(SignOutPayload { signed_out: true, user_errors: vec![] });
        };
        if input.everywhere {
            credentials::revoke_all_sessions(&state.db, viewer.member.id).await?;
        } else {
            match viewer.via {
                Credential::Session { id } => credentials::revoke_session(&state.db, id).await?,
                Credential::AccessToken { .. } => {
                    return Ok(SignOutPayload {
                        signed_out: false,
                        user_errors: vec![UserError::general(
                            UserErrorCode::Invalid,
                            "You are using an access token, which does not sign out: revoke the token instead.",
                        )],
                    })
                }
            }
        }
        Ok(SignOutPayload { signed_out: true, user_errors: vec![] })
    }

    /// Disconnects an identity provider from the signed-in member. Refused while it is
    /// their only way to sign in (no password and no other provider).
    async fn disconnect_identity(
        &self,
        ctx: &Context<'_>,
        input: DisconnectIdentityInput,
    ) -> async_graphql::Result<UpdateProfilePayload> {
        let viewer = ctx.require_viewer()?;
        let problem = |code, message: &str| UpdateProfilePayload {
            member: Some(viewer.member.clone()),
            user_errors: vec![UserError::new("provider", code, message)],
        };
        let provider = input.provider.trim().to_ascii_lowercase();
        Ok(match super::oauth::disconnect(&ctx.state().db, viewer.member.id, &provider).await? {
            super::oauth::Disconnected::Done => {
                UpdateProfilePayload { member: Some(viewer.member.clone()), user_errors: vec![] }
            }
            super::oauth::Disconnected::NotConnected => {
                problem(UserErrorCode::NotFound, "That provider is not connected to your account.")
            }
            super::oauth::Disconnected::LastWayIn => problem(
                UserErrorCode::Invalid,
                "This is the only way you can sign in: connect another provider or set a password first.",
            ),
        })
    }

    /// Changes the signed-in member's display name, bio or time zone.
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: UpdateProfileInput,
    ) -> async_graphql::Result<UpdateProfilePayload> {
        let viewer = ctx.require_viewer()?;
        let problems: Vec<UserError> = [
            input.display_name.as_deref().and_then(|n| super::check_display_name("displayName", n)),
            input.bio.as_deref().and_then(|b| super::check_text("bio", "Bio", b, super::BIO_MAX, false)),
            input.time_zone.as_deref().and_then(|z| super::check_time_zone("timeZone", z)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !problems.is_empty() {
            return Ok(UpdateProfilePayload { member: None, user_errors: problems });
        }
        let changes = ProfileChanges { display_name: input.display_name, bio: input.bio, time_zone: input.time_zone };
        let member = super::update_profile(&ctx.state().db, viewer.member.id, &changes).await?;
        Ok(UpdateProfilePayload { member: Some(member), user_errors: vec![] })
    }

    /// Changes the signed-in member's handle, once every 30 days. The handle it replaces
    /// stays theirs: `member(handle:)` and `/members/@old` still find them, `@old` in new
    /// text still mentions them, and nobody else can take it (`TAKEN`); they may take it
    /// back. Too soon after the last change it answers `LIMIT_REACHED`, saying when.
    async fn change_handle(
        &self,
        ctx: &Context<'_>,
        input: ChangeHandleInput,
    ) -> async_graphql::Result<UpdateProfilePayload> {
        let viewer = ctx.require_viewer()?;
        let handle = input.handle.trim().trim_start_matches('@');
        if let Some(problem) = super::check_handle("handle", handle) {
            return Ok(UpdateProfilePayload { member: None, user_errors: vec![problem] });
        }
        let problem = match super::change_handle(&ctx.state().db, viewer.member.id, handle).await? {
            super::HandleChange::Changed(member) => {
                return Ok(UpdateProfilePayload { member: Some(member), user_errors: vec![] })
            }
            super::HandleChange::Taken => UserError::new(
                "handle",
                UserErrorCode::Taken,
                "Someone else has that handle, or had it. Choose another.",
            ),
            super::HandleChange::TooSoon(next) => UserError::new(
                "handle",
                UserErrorCode::LimitReached,
                format!(
                    "You changed your handle less than 30 days ago. You can change it again from {}.",
                    crate::text::moment(next, &viewer.member.time_zone, crate::text::DATE_TIME)
                ),
            ),
        };
        Ok(UpdateProfilePayload { member: None, user_errors: vec![problem] })
    }

    /// Creates a personal access token. Needs a signed-in session: a token cannot mint
    /// further tokens.
    async fn create_access_token(
        &self,
        ctx: &Context<'_>,
        input: CreateAccessTokenInput,
    ) -> async_graphql::Result<CreateAccessTokenPayload> {
        let viewer = ctx.require_viewer()?;
        if matches!(viewer.via, Credential::AccessToken { .. }) {
            return Err(AppError::Forbidden.into());
        }
        let mut problems: Vec<UserError> =
            crate::text::check_line("name", "Token name", &input.name, credentials::TOKEN_NAME_MAX, true)
                .into_iter()
                .collect();
        if let Some(days) = input.expires_in_days {
            if !(1..=credentials::TOKEN_EXPIRY_DAYS_MAX).contains(&days) {
                problems.push(UserError::new(
                    "expiresInDays",
                    UserErrorCode::Invalid,
                    format!("Expiry must be between 1 and {} days.", credentials::TOKEN_EXPIRY_DAYS_MAX),
                ));
            }
        }
        if !problems.is_empty() {
            return Ok(CreateAccessTokenPayload { user_errors: problems, ..Default::default() });
        }
        match credentials::create_access_token(&ctx.state().db, viewer.member.id, &input.name, input.expires_in_days)
            .await?
        {
            CreateTokenOutcome::Created { token, secret } => {
                Ok(CreateAccessTokenPayload { access_token: Some(token), token: Some(secret), user_errors: vec![] })
            }
            CreateTokenOutcome::LimitReached => Ok(CreateAccessTokenPayload {
                user_errors: vec![UserError::general(
                    UserErrorCode::LimitReached,
                    format!(
                        "You already have {} tokens. Revoke one you no longer use first.",
                        credentials::TOKENS_PER_MEMBER_MAX
                    ),
                )],
                ..Default::default()
            }),
        }
    }

    /// Revokes one of your access tokens; it stops working at once.
    async fn revoke_access_token(
        &self,
        ctx: &Context<'_>,
        input: RevokeAccessTokenInput,
    ) -> async_graphql::Result<RevokeAccessTokenPayload> {
        let viewer = ctx.require_viewer()?;
        let not_found = || RevokeAccessTokenPayload {
            access_token: None,
            user_errors: vec![UserError::new("id", UserErrorCode::NotFound, "You have no active token with that id.")],
        };
        let Ok(token_id) = relay::parse_global_id_of("AccessToken", &input.id) else { return Ok(not_found()) };
        match credentials::revoke_access_token(&ctx.state().db, viewer.member.id, token_id).await? {
            Some(token) => Ok(RevokeAccessTokenPayload { access_token: Some(token), user_errors: vec![] }),
            None => Ok(not_found()),
        }
    }
}
