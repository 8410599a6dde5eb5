//! The data-rights part of the API: `requestDataExport`, `Member.dataExports`,
//! `deleteAccount` and, for admins, `eraseMember`.
//!
//! Deleting one's own account needs proof that the person at the keyboard is the member,
//! not someone who found a signed-in browser: the password, for members who have one.
//! Members who sign in only through an identity provider have no password to give, so
//! for them a *fresh* sign-in is the proof: the session making the request must have
//! been opened in the last [`REAUTH_MS`]. A passwordless member's sessions are only ever
//! opened by a provider sign-in (`/auth/<provider>/callback`) or by following a link sent
//! to their address, each a new proof of who they are; the settings page sends them
//! through the provider again (`/auth/<provider>/start?return_to=/settings/delete`).
//! An access token (made for a script) can never delete an account.

use std::sync::Arc;

use async_graphql::{connection::Connection, Context, InputObject, Object, SimpleObject, ID};

use super::{
    erasure::{self, Requester},
    export::{self, DataExport, ExportStatus},
};
use crate::{
    accounts::{self, credentials::Credential, passwords, Member, Role},
    db,
    error::{AppError, AppResult, UserError, UserErrorCode},
    graphql::{
        relay::{self, Page},
        ContextExt, DateTime,
    },
    limits::Limit,
};

/// How recent a provider sign-in must be to delete a passwordless account.
pub const REAUTH_MS: i64 = 10 * 60 * 1000;
/// The longest reason an admin may give for an erasure.
pub const REASON_MAX: usize = 500;

/// A personal data export, and where to download it once it is ready.
#[derive(Clone)]
pub struct DataExportView {
    export: DataExport,
    key: Arc<Vec<u8>>,
    base: url::Url,
}

#[Object(name = "DataExport")]
impl DataExportView {
    async fn id(&self) -> ID {
        relay::global_id("DataExport", self.export.id)
    }

    async fn status(&self) -> ExportStatus {
        self.export.status
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.export.created_at)
    }

    async fn ready_at(&self) -> Option<DateTime> {
        self.export.ready_at.map(DateTime)
    }

    /// After this the link stops working and the export is deleted.
    async fn expires_at(&self) -> DateTime {
        DateTime(self.export.expires_at)
    }

    /// Where to download the JSON, once ready: only while signed in as the member.
    async fn download_url(&self) -> Option<String> {
        (self.export.status == ExportStatus::Ready)
            .then(|| self.base.join(&self.export.path(&self.key)).map(|u| u.to_string()).ok())
            .flatten()
    }
}

async fn views(ctx: &Context<'_>, exports: Vec<DataExport>) -> AppResult<Vec<DataExportView>> {
    let state = ctx.state();
    let key = Arc::new(export::signing_key(&state.db).await?);
    let base = state.config.public_url.clone();
    Ok(exports.into_iter().map(|export| DataExportView { export, key: key.clone(), base: base.clone() }).collect())
}

/// `Member.dataExports`: the member's exports that have not expired, newest first. Only
/// the member themself may list them.
pub async fn data_exports(
    ctx: &Context<'_>,
    member: &Member,
    page: Page<i64>,
) -> AppResult<Connection<String, DataExportView>> {
    let viewer = ctx.require_viewer()?;
    if viewer.member.id != member.id {
        return Err(AppError::Forbidden);
    }
    let exports = export::list(&ctx.state().db, member.id, &page.keyset()).await?;
    let views = views(ctx, exports).await?;
    Ok(page.connection(views, |v| v.export.id))
}

#[derive(SimpleObject)]
pub struct RequestDataExportPayload {
    /// The export, pending until it is built (moments for most accounts).
    data_export: Option<DataExportView>,
    user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct DeleteAccountInput {
    /// The member's password; leave it out if you sign in only with an identity provider
    /// (and signed in with it in the last 10 minutes).
    password: Option<String>,
}

#[derive(SimpleObject)]
pub struct DeleteAccountPayload {
    /// True when the account was erased; the session has ended.
    erased: bool,
    user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct EraseMemberInput {
    member_id: ID,
    /// Why (a request's reference, say); goes into the audit log, so no personal data.
    reason: String,
}

#[derive(SimpleObject)]
pub struct EraseMemberPayload {
    erased: bool,
    user_errors: Vec<UserError>,
}

#[derive(Default)]
pub struct PrivacyMutation;

#[Object]
impl PrivacyMutation {
    /// Asks for a copy of everything Kettle holds about the signed-in member, as JSON. It
    /// is built in the background; `dataExports` shows when it is ready and its link,
    /// which works for 7 days. At most 3 a day.
    async fn request_data_export(&self, ctx: &Context<'_>) -> async_graphql::Result<RequestDataExportPayload> {
        let viewer = ctx.require_viewer()?;
        let state = ctx.state();
        state.limiter.check(Limit::DataExportMember, &viewer.member.id.to_string(), 1).await?;
        let export = export::request(&state.db, viewer.member.id).await?;
        let db = state.db.clone();
        let id = export.id;
        // Off the request: a large account takes a while, and the worker picks it up if
        // this task never finishes.
        tokio::spawn(async move {
            if let Err(err) = export::build(&db, id).await {
                tracing::warn!(error = ?err, export = id, "building a data export failed");
            }
        });
        let view = views(ctx, vec![export]).await?.pop();
        Ok(RequestDataExportPayload { data_export: view, user_errors: vec![] })
    }

    /// Deletes the signed-in member's account for good, after they confirm: with their
    /// password, or (without one) by having signed in with their provider in the last 10
    /// minutes. Personal data goes; content others rely on stays, attributed to "a former
    /// member". Needs a signed-in session, not an access token.
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        input: DeleteAccountInput,
    ) -> async_graphql::Result<DeleteAccountPayload> {
        let viewer = ctx.require_viewer()?;
        let Credential::Session { id: session_id } = viewer.via else { return Err(AppError::Forbidden.into()) };
        let state = ctx.state();
        let member = &viewer.member;
        let stored = accounts::member_with_password(&state.db, &member.email).await?.and_then(|(_, hash)| hash);
        let refused = |code, message: &str| DeleteAccountPayload {
            erased: false,
            user_errors: vec![UserError::new("password", code, message)],
        };
        if stored.is_some() {
            let given = input.password.unwrap_or_default();
            if given.is_empty() {
                return Ok(refused(UserErrorCode::Blank, "Enter your password to delete your account."));
            }
            let wrong = "Your password is incorrect.";
            if given.chars().count() > passwords::MAX_LENGTH {
                return Ok(refused(UserErrorCode::InvalidCredentials, wrong));
            }
            let address = ctx.request().client_ip;
            let delay = accounts::throttle::before_attempt(&state.limiter, &member.email, address).await?;
            tokio::time::sleep(delay).await;
            if !passwords::verify(given, stored).await? {
                accounts::throttle::failed(&state.limiter, address).await?;
                return Ok(refused(UserErrorCode::InvalidCredentials, wrong));
            }
            accounts::throttle::succeeded(&state.limiter, &member.email).await?;
        } else {
            let opened: Option<i64> = sqlx::query_scalar("SELECT created_at FROM sessions WHERE id = $1")
                .bind(session_id)
                .fetch_optional(&state.db.pool)
                .await?;
            if opened.is_none_or(|at| at < db::now_millis() - REAUTH_MS) {
                return Ok(refused(
                    UserErrorCode::Invalid,
                    "Sign in again with your identity provider, then delete your account within 10 minutes.",
                ));
            }
        }
        let erased = erasure::erase(&state.db, member.id, Requester::Themself).await?;
        ctx.append_http_header("Set-Cookie", accounts::credentials::session_cookie(None, 0, state.config.is_https()));
        Ok(DeleteAccountPayload { erased, user_errors: vec![] })
    }

    /// Erases a member on their request (admins only), as `deleteAccount` would, and
    /// records it in the audit log with the reason.
    async fn erase_member(
        &self,
        ctx: &Context<'_>,
        input: EraseMemberInput,
    ) -> async_graphql::Result<EraseMemberPayload> {
        let viewer = ctx.require_viewer()?;
        if viewer.member.role != Role::Admin {
            return Err(AppError::Forbidden.into());
        }
        let member_id = relay::parse_global_id_of("Member", &input.member_id)?;
        if let Some(problem) = accounts::check_text("reason", "Reason", &input.reason, REASON_MAX, true) {
            return Ok(EraseMemberPayload { erased: false, user_errors: vec![problem] });
        }
        if member_id == viewer.member.id {
            let problem = UserError::new(
                "memberId",
                UserErrorCode::Invalid,
                "You cannot erase yourself here: delete your own account from your settings.",
            );
            return Ok(EraseMemberPayload { erased: false, user_errors: vec![problem] });
        }
        let state = ctx.state();
        let requester = Requester::Admin { admin_id: viewer.member.id, reason: input.reason.trim() };
        if !erasure::erase(&state.db, member_id, requester).await? {
            return Err(AppError::NotFound("member").into());
        }
        Ok(EraseMemberPayload { erased: true, user_errors: vec![] })
    }
}
