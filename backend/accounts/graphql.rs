//! The account API: `viewer`, the `Member` and `AccessToken` types, and the mutations to
//! register, sign in and out, edit a profile and manage access tokens.

use async_graphql::{connection::Connection, Context, InputObject, Object, SimpleObject, ID};

use super::{
    credentials::{self, AccessToken, CreateTokenOutcome, Credential},
    passwords, Member, NewMember, ProfileChanges, Role,
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
        Ok(crate::organisations::of_member(&ctx.state().db, self.id).await?)
    }

    /// Only the member themself and admins see this; null for everyone else.
    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        let viewer = ctx.viewer()?;
        (viewer.member.id == self.id || viewer.member.role == Role::Admin).then_some(self.email.as_str())
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
        let hash = passwords::hash(input.password).await?;
        let new = NewMember {
            email: &input.email,
            display_name: &input.display_name,
            password_hash: Some(&hash),
            role: Role::Member,
        };
        match super::insert_member(&ctx.state().db, new).await? {
            Some(member) => tracing::info!(member_id = member.id, "member registered"),
            None => tracing::info!("registration with an address that has an account"),
        }
        Ok(RegisterPayload { email: Some(input.email.trim().to_string()), user_errors: vec![] })
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
        if member.suspended_at.is_some() {
            return Ok(SessionPayload {
                user_errors: vec![UserError::general(
                    UserErrorCode::Invalid,
                    "This account is suspended. Contact the site's moderators if you think this is a mistake.",
                )],
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
