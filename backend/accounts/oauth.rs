//! Signing in with an organisation's identity provider: OAuth2's authorization-code flow
//! with PKCE (S256), through the `oauth2` crate.
//!
//! A sign-in starts by storing a single-use state (only its hash), the PKCE verifier, the
//! browser it belongs to (a hash of its `kettle_csrf` cookie) and where to return, for
//! ten minutes. The callback takes the state back exactly once, exchanges the code with
//! the verifier, reads the user info, and then signs in the member linked to that
//! identity, or links it to the member with the same verified email, or creates a member.
//! A signed-in member can also connect a provider from settings.
//!
//! Every failure is a [`Failure`]: a status and a sentence for the person, logged, and
//! nothing written. The HTTP client follows no redirects and gives up after five seconds.

use std::time::Duration;

use oauth2::{
    basic::{BasicClient, BasicErrorResponseType},
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpClientError, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, StandardErrorResponse, TokenResponse, TokenUrl,
};
use poem::http::StatusCode;
use secrecy::ExposeSecret;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{insert_member, normalize_email, NewMember, Role};
use crate::{
    config::{Config, OAuthProvider},
    db::{self, Db},
    error::AppResult,
};

/// How long a sign-in may take between leaving for the provider and coming back.
pub const STATE_TTL_MS: i64 = 10 * 60 * 1000;
/// How long the provider has to answer each request.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest user-info response read.
const USERINFO_MAX_BYTES: usize = 64 * 1024;
const SUBJECT_MAX: usize = 255;

/// The client for talking to providers: no redirects (a token or user-info endpoint that
/// redirects is misconfigured or compromised, and following it could send the code or
/// token elsewhere), and a timeout.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROVIDER_TIMEOUT)
        .connect_timeout(PROVIDER_TIMEOUT)
        .user_agent("Kettle")
        .build()?)
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a sign-in through a provider did not work: what the person sees, and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

impl Failure {
    fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Failure {
        Failure { status, title, message: message.into() }
    }

    pub fn declined(provider: &OAuthProvider) -> Failure {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "Sign-in cancelled",
            format!("You declined to let Kettle use your {} account, so you are not signed in.", provider.label),
        )
    }

    pub fn stale_state() -> Failure {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "This sign-in link has expired",
            "The sign-in took too long, was already used, or was started in another browser. Start again from the sign-in page.",
        )
    }

    fn code_refused(provider: &OAuthProvider) -> Failure {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "The sign-in was refused",
            format!(
                "{} did not accept the sign-in (it may have expired). Start again from the sign-in page.",
                provider.label
            ),
        )
    }

    fn unreachable(provider: &OAuthProvider, timed_out: bool) -> Failure {
        let (status, why) = if timed_out {
            (StatusCode::GATEWAY_TIMEOUT, "did not answer in time")
        } else {
            (StatusCode::BAD_GATEWAY, "could not be reached")
        };
        Failure::new(
            status,
            "The sign-in service is not responding",
            format!("{} {why}, so you are not signed in. Try again in a few minutes.", provider.label),
        )
    }

    fn email_taken(provider: &OAuthProvider) -> Failure {
        Failure::new(
            StatusCode::CONFLICT,
            "That email address already has an account",
            format!(
                "{} has not verified your email address, so Kettle cannot tell that the account is yours. Sign in with \
                 your password, then connect {} from your settings.",
                provider.label, provider.label
            ),
        )
    }

    pub fn bad_response(provider: &OAuthProvider) -> Failure {
        Failure::new(
            StatusCode::BAD_GATEWAY,
            "The sign-in service answered wrongly",
            format!(
                "{} sent an answer Kettle could not use, so you are not signed in. Try again later.",
                provider.label
            ),
        )
    }
}

/// A sign-in in progress, as stored between start and callback.
pub struct PendingState {
    pub provider: String,
    pub pkce_verifier: String,
    pub return_to: String,
    pub link_member_id: Option<i64>,
    browser_hash: String,
    expires_at: i64,
}

/// The address to send the person to, and the state recorded for their return.
pub async fn start(
    db: &Db,
    config: &Config,
    provider: &OAuthProvider,
    browser: &str,
    return_to: &str,
    link_member_id: Option<i64>,
) -> AppResult<String> {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client(config, provider)?
        .authorize_url(CsrfToken::new_random)
        .add_scopes(provider.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge)
        .url();
    let now = db::now_millis();
    sqlx::query(
        "INSERT INTO oauth_states (state_hash, provider, pkce_verifier, browser_hash, return_to, link_member_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(sha256_hex(state.secret()))
    .bind(&provider.name)
    .bind(verifier.secret())
    .bind(sha256_hex(browser))
    .bind(return_to)
    .bind(link_member_id)
    .bind(now)
    .bind(now + STATE_TTL_MS)
    .execute(&db.pool)
    .await?;
    Ok(url.to_string())
}

/// Takes a state back, once: it is deleted whether or not it is still good, so a
/// replayed callback always fails. `None` unless it exists, is this provider's, belongs
/// to this browser and has not expired.
pub async fn take_state(db: &Db, state: &str, provider: &str, browser: &str) -> AppResult<Option<PendingState>> {
    let row = sqlx::query(
        "DELETE FROM oauth_states WHERE state_hash = $1 \
         RETURNING provider, pkce_verifier, browser_hash, return_to, link_member_id, expires_at",
    )
    .bind(sha256_hex(state))
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let pending = PendingState {
        provider: row.try_get("provider")?,
        pkce_verifier: row.try_get("pkce_verifier")?,
        browser_hash: row.try_get("browser_hash")?,
        return_to: row.try_get("return_to")?,
        link_member_id: row.try_get("link_member_id")?,
        expires_at: row.try_get("expires_at")?,
    };
    let good = pending.provider == provider
        && pending.browser_hash == sha256_hex(browser)
        && pending.expires_at > db::now_millis();
    Ok(good.then_some(pending))
}

/// Forgets sign-ins that were never finished. Called with the session clean-up.
pub async fn delete_expired_states(db: &Db) -> AppResult<u64> {
    let result =
        sqlx::query("DELETE FROM oauth_states WHERE expires_at <= $1").bind(db::now_millis()).execute(&db.pool).await?;
    Ok(result.rows_affected())
}

fn redirect_url(config: &Config, provider: &OAuthProvider) -> AppResult<RedirectUrl> {
    let url = config
        .public_url
        .join(&format!("/auth/{}/callback", provider.name))
        .map_err(|e| anyhow::anyhow!("the callback address for {}: {e}", provider.name))?;
    Ok(RedirectUrl::from_url(url))
}

type Client = oauth2::Client<
    StandardErrorResponse<BasicErrorResponseType>,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    StandardErrorResponse<oauth2::RevocationErrorResponseType>,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn client(config: &Config, provider: &OAuthProvider) -> AppResult<Client> {
    Ok(BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_client_secret(ClientSecret::new(provider.client_secret.expose_secret().to_string()))
        .set_auth_uri(AuthUrl::from_url(provider.auth_url.clone()))
        .set_token_uri(TokenUrl::from_url(provider.token_url.clone()))
        .set_redirect_uri(redirect_url(config, provider)?))
}

/// Who the provider says the person is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// Exchanges the code (with the PKCE verifier) and reads the user info.
pub async fn profile(
    http: &reqwest::Client,
    config: &Config,
    provider: &OAuthProvider,
    code: &str,
    verifier: &str,
) -> AppResult<Result<Profile, Failure>> {
    let exchanged = client(config, provider)?
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
        .request_async(http)
        .await;
    let token = match exchanged {
        Ok(token) => token,
        Err(err) => {
            let failure = match &err {
                RequestTokenError::ServerResponse(response) => {
                    tracing::warn!(provider = %provider.name, error = %response.error(), "the token endpoint refused the code");
                    Failure::code_refused(provider)
                }
                RequestTokenError::Request(HttpClientError::Reqwest(e)) => {
                    tracing::warn!(provider = %provider.name, error = %e, "the token endpoint could not be reached");
                    Failure::unreachable(provider, e.is_timeout())
                }
                other => {
                    tracing::warn!(provider = %provider.name, error = %other, "the token endpoint's answer was unusable");
                    Failure::bad_response(provider)
                }
            };
            return Ok(Err(failure));
        }
    };
    let response = http
        .get(provider.userinfo_url.clone())
        .bearer_auth(token.access_token().secret())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await;
    let response = match response {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => {
            tracing::warn!(provider = %provider.name, status = %response.status(), "the user-info endpoint refused");
            return Ok(Err(Failure::bad_response(provider)));
        }
        Err(e) => {
            tracing::warn!(provider = %provider.name, error = %e, "the user-info endpoint could not be reached");
            return Ok(Err(Failure::unreachable(provider, e.is_timeout())));
        }
    };
    let body = match read_limited(response, USERINFO_MAX_BYTES).await {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(provider = %provider.name, error = %e, "the user-info response could not be read");
            return Ok(Err(Failure::unreachable(provider, e.is_timeout())));
        }
    };
    match serde_json::from_slice::<Value>(&body).ok().and_then(|json| read_profile(provider, &json)) {
        Some(profile) => Ok(Ok(profile)),
        None => {
            tracing::warn!(provider = %provider.name, "the user-info response lacked a usable subject");
            Ok(Err(Failure::bad_response(provider)))
        }
    }
}

/// Reads at most `limit` bytes of a body (more counts as unreadable).
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            body.clear();
            break;
        }
    }
    Ok(body)
}

/// The profile in a user-info document, read through the provider's field names.
pub fn read_profile(provider: &OAuthProvider, json: &Value) -> Option<Profile> {
    let text = |field: &str| match json.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let subject = text(&provider.subject_field).filter(|s| s.len() <= SUBJECT_MAX)?;
    let email = text(&provider.email_field).filter(|e| super::check_email("email", e).is_none());
    let email_verified = match provider.email_verified_field.as_deref().and_then(|f| json.get(f)) {
        Some(Value::Bool(verified)) => *verified,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    // A name the display-name rules refuse (a line break would reach mail headers) is
    // dropped, and the email's local part used instead, as when there is none.
    let name = text(&provider.name_field)
        .map(|n| n.chars().take(super::DISPLAY_NAME_MAX).collect::<String>())
        .filter(|n| super::check_display_name("name", n).is_none());
    Some(Profile { subject, email, email_verified, name })
}

/// The member an identity is linked to.
pub async fn member_for(db: &Db, provider: &str, subject: &str) -> AppResult<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT member_id FROM member_identities WHERE provider = $1 AND subject = $2")
        .bind(provider)
        .bind(subject)
        .fetch_optional(&db.pool)
        .await?)
}

/// Links an identity to a member; false when it (or this provider for this member) was
/// already linked.
async fn link(db: &Db, provider: &str, profile: &Profile, member_id: i64) -> AppResult<bool> {
    let now = db::now_millis();
    let inserted = sqlx::query(
        "INSERT INTO member_identities (provider, subject, member_id, email, created_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING",
    )
    .bind(provider)
    .bind(&profile.subject)
    .bind(member_id)
    .bind(profile.email.as_deref())
    .bind(now)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

async fn touch(db: &Db, provider: &str, subject: &str) -> AppResult<()> {
    sqlx::query("UPDATE member_identities SET last_used_at = $1 WHERE provider = $2 AND subject = $3")
        .bind(db::now_millis())
        .bind(provider)
        .bind(subject)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Who signs in with this profile: the linked member, or the member with the same
/// verified email (now linked), or a new member. `Err` says why nobody may; a suspended
/// member may not, as with a password.
pub async fn sign_in(
    db: &Db,
    config: &Config,
    provider: &OAuthProvider,
    profile: &Profile,
) -> AppResult<Result<i64, Failure>> {
    let member_id = match who_signs_in(db, config, provider, profile).await? {
        Ok(member_id) => member_id,
        Err(failure) => return Ok(Err(failure)),
    };
    if let Some(member) = super::member_by_id(db, member_id).await?.filter(|m| m.is_suspended(db::now_millis())) {
        return Ok(Err(Failure::new(StatusCode::FORBIDDEN, "This account is suspended", member.suspension_notice())));
    }
    Ok(Ok(member_id))
}

async fn who_signs_in(
    db: &Db,
    config: &Config,
    provider: &OAuthProvider,
    profile: &Profile,
) -> AppResult<Result<i64, Failure>> {
    if let Some(member_id) = member_for(db, &provider.name, &profile.subject).await? {
        touch(db, &provider.name, &profile.subject).await?;
        vouch(db, profile, member_id).await?;
        return Ok(Ok(member_id));
    }
    let Some(email) = profile.email.as_deref() else {
        return Ok(Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "No email address was shared",
            format!("{} did not share your email address, which Kettle needs to create your account.", provider.label),
        )));
    };
    let existing: Option<i64> = sqlx::query_scalar("SELECT id FROM members WHERE email_normalized = $1")
        .bind(normalize_email(email))
        .fetch_optional(&db.pool)
        .await?;
    if let Some(member_id) = existing {
        if !profile.email_verified {
            tracing::warn!(provider = %provider.name, "an unverified provider email matched an existing member");
            return Ok(Err(Failure::email_taken(provider)));
        }
        if !link(db, &provider.name, profile, member_id).await? {
            return Ok(Err(already_connected(provider)));
        }
        vouch(db, profile, member_id).await?;
        return Ok(Ok(member_id));
    }
    if !config.registration_open {
        return Ok(Err(Failure::new(
            StatusCode::FORBIDDEN,
            "Registration is closed",
            "This Kettle is not taking new members at the moment.",
        )));
    }
    let local_part = email.split('@').next().unwrap_or("member");
    let display_name = profile.name.clone().unwrap_or_else(|| local_part.to_string());
    let new = NewMember { email, display_name: &display_name, password_hash: None, role: Role::Member };
    let Some(member) = insert_member(db, new).await? else {
        // Someone registered this email a moment ago; signing them in now would skip the
        // verified-email check above, so refuse as if it had been there all along.
        return Ok(Err(Failure::email_taken(provider)));
    };
    if !link(db, &provider.name, profile, member.id).await? {
        // The same identity was linked at the same moment (a double-clicked callback): undo
        // the member just created and use the one that won, so nothing is left half made.
        sqlx::query("DELETE FROM members WHERE id = $1").bind(member.id).execute(&db.pool).await?;
        return match member_for(db, &provider.name, &profile.subject).await? {
            Some(member_id) => Ok(Ok(member_id)),
            None => Ok(Err(already_connected(provider))),
        };
    }
    vouch(db, profile, member.id).await?;
    Ok(Ok(member.id))
}

/// A provider that says it verified the email it gave vouches for the member's address,
/// when that is the member's: it counts as verified, as if they had followed our link.
async fn vouch(db: &Db, profile: &Profile, member_id: i64) -> AppResult<()> {
    match profile.email.as_deref() {
        Some(email) if profile.email_verified => super::recovery::mark_verified_now(db, member_id, email).await,
        _ => Ok(()),
    }
}

fn already_connected(provider: &OAuthProvider) -> Failure {
    Failure::new(
        StatusCode::CONFLICT,
        "That account is already connected",
        format!(
            "This {} account is connected to another Kettle member, or you already connected another one.",
            provider.label
        ),
    )
}

/// Connects a provider identity to a signed-in member.
pub async fn connect(
    db: &Db,
    provider: &OAuthProvider,
    profile: &Profile,
    member_id: i64,
) -> AppResult<Result<(), Failure>> {
    let outcome = match member_for(db, &provider.name, &profile.subject).await? {
        Some(owner) if owner == member_id => Ok(()),
        Some(_) => Err(already_connected(provider)),
        None if link(db, &provider.name, profile, member_id).await? => Ok(()),
        None => Err(already_connected(provider)),
    };
    if outcome.is_ok() {
        vouch(db, profile, member_id).await?;
    }
    Ok(outcome)
}

/// An identity linked to a member.
#[derive(Clone, Debug)]
pub struct LinkedIdentity {
    pub provider: String,
    pub email: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
}

/// A member's identities, by provider name.
pub async fn identities(db: &Db, member_id: i64) -> AppResult<Vec<LinkedIdentity>> {
    let rows = sqlx::query(
        "SELECT provider, email, created_at, last_used_at FROM member_identities WHERE member_id = $1 ORDER BY provider LIMIT 50",
    )
    .bind(member_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(LinkedIdentity {
                provider: r.try_get("provider")?,
                email: r.try_get("email")?,
                created_at: r.try_get("created_at")?,
                last_used_at: r.try_get("last_used_at")?,
            })
        })
        .collect::<sqlx::Result<_>>()
        .map_err(Into::into)
}

pub enum Disconnected {
    Done,
    NotConnected,
    /// It is the member's only way to sign in.
    LastWayIn,
}

/// Disconnects a provider, unless it is the member's last way to sign in (no password
/// and no other identity). One transaction, so two disconnects at once cannot both pass
/// the check.
pub async fn disconnect(db: &Db, member_id: i64, provider: &str) -> AppResult<Disconnected> {
    let mut tx = db.begin_write().await?;
    // Locks the member's row on PostgreSQL (SQLite's write transaction already excludes
    // other writers), so the count below cannot change under us.
    let password: Option<Option<String>> =
        sqlx::query_scalar(&format!("SELECT password_hash FROM members WHERE id = $1{}", db.dialect.for_update()))
            .bind(member_id)
            .fetch_optional(&mut *tx)
            .await?;
    let has_password = password.flatten().is_some();
    let connected: Vec<String> = sqlx::query_scalar("SELECT provider FROM member_identities WHERE member_id = $1")
        .bind(member_id)
        .fetch_all(&mut *tx)
        .await?;
    if !connected.iter().any(|p| p == provider) {
        return Ok(Disconnected::NotConnected);
    }
    if !has_password && connected.len() == 1 {
        return Ok(Disconnected::LastWayIn);
    }
    sqlx::query("DELETE FROM member_identities WHERE member_id = $1 AND provider = $2")
        .bind(member_id)
        .bind(provider)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Disconnected::Done)
}

/// The provider configured under `name`.
pub fn provider<'c>(config: &'c Config, name: &str) -> Option<&'c OAuthProvider> {
    config.oauth_providers.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(verified_field: Option<&str>) -> OAuthProvider {
        let config = Config::from_vars([
            ("KETTLE_OAUTH_LOCAL_CLIENT_ID".to_string(), "kettle".to_string()),
            ("KETTLE_OAUTH_LOCAL_CLIENT_SECRET".to_string(), "s3cret".to_string()),
            ("KETTLE_OAUTH_LOCAL_AUTH_URL".to_string(), "http://127.0.0.1:1/authorize".to_string()),
            ("KETTLE_OAUTH_LOCAL_TOKEN_URL".to_string(), "http://127.0.0.1:1/token".to_string()),
            ("KETTLE_OAUTH_LOCAL_USERINFO_URL".to_string(), "http://127.0.0.1:1/userinfo".to_string()),
            ("KETTLE_OAUTH_LOCAL_EMAIL_VERIFIED_FIELD".to_string(), verified_field.unwrap_or("").to_string()),
        ])
        .unwrap();
        config.oauth_providers[0].clone()
    }

    #[test]
    fn profiles_are_read_through_the_configured_fields() {
        let provider = local(Some("email_verified"));
        let json = serde_json::json!({ "sub": 42, "email": "ada@example.org", "email_verified": true, "name": "Ada" });
        let profile = read_profile(&provider, &json).unwrap();
        assert_eq!(profile.subject, "42");
        assert!(profile.email_verified);
        assert_eq!(read_profile(&provider, &serde_json::json!({ "email": "x@example.org" })), None);
        let unverifying = local(None);
        assert!(!read_profile(&unverifying, &json).unwrap().email_verified, "never verified when not configured");
        let bad_email = serde_json::json!({ "sub": "a", "email": "not an email" });
        assert_eq!(read_profile(&provider, &bad_email).unwrap().email, None);
    }
}
