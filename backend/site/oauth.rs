//! Signing in with an identity provider: `/auth/<provider>/start` sends the browser to
//! the provider, `/auth/<provider>/callback` brings it back signed in (or with the
//! provider connected, when it started from settings). The flow itself is in
//! `accounts::oauth`; this is its web side, which ends every failure on a page that
//! says what happened.

use poem::{handler, web::Path, Request, Response};

use super::{
    forms::{query_params, respond},
    visit::{safe_return_to, Stop, Visit},
};
use crate::accounts::{
    credentials::{self, SESSION_IDLE_MS},
    oauth::{self, Failure},
};

#[handler]
pub async fn start(request: &Request, Path(name): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let state = visit.state().clone();
            let Some(provider) = oauth::provider(&state.config, &name) else { return Ok(visit.not_found().await) };
            let params = query_params(request);
            let linking = params.get("link").is_some_and(|v| v == "1");
            if linking && !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let return_to = if linking {
                "/settings".to_string()
            } else {
                safe_return_to(params.get("return_to").map(String::as_str)).unwrap_or_else(|| "/".into())
            };
            let link_member = if linking { visit.member_id() } else { None };
            let browser = visit.browser_secret().to_string();
            let url = oauth::start(&state.db, &state.config, provider, &browser, &return_to, link_member)
                .await
                .map_err(|err| visit.failed(err))?;
            // The state is bound to the browser's CSRF cookie; a browser without one gets
            // it with this redirect (the visit sets it).
            Ok(visit.redirect(&url))
        }
        .await,
    )
}

#[handler]
pub async fn callback(request: &Request, Path(name): Path<String>) -> Response {
    respond(finish(request, &name).await)
}

async fn finish(request: &Request, name: &str) -> Result<Response, Stop> {
    let mut visit = Visit::new(request).await?;
    let state = visit.state().clone();
    let Some(provider) = oauth::provider(&state.config, name) else { return Ok(visit.not_found().await) };
    let params = query_params(request);
    // Whatever happens next, the state is used up.
    let pending = match params.get("state") {
        Some(s) => oauth::take_state(&state.db, s, &provider.name, visit.browser_secret())
            .await
            .map_err(|err| visit.failed(err))?,
        None => None,
    };
    if let Some(error) = params.get("error") {
        if error == "access_denied" {
            return failed_page(&visit, name, Failure::declined(provider)).await;
        }
        tracing::warn!(provider = %provider.name, error = %error.chars().take(100).collect::<String>(), "the provider returned an error");
        return failed_page(&visit, name, Failure::bad_response(provider)).await;
    }
    let Some(pending) = pending else { return failed_page(&visit, name, Failure::stale_state()).await };
    let Some(code) = params.get("code").filter(|c| !c.is_empty() && c.len() <= 2048) else {
        return failed_page(&visit, name, Failure::stale_state()).await;
    };
    let profile = oauth::profile(&state.provider_http, &state.config, provider, code, &pending.pkce_verifier)
        .await
        .map_err(|err| visit.failed(err))?;
    let profile = match profile {
        Ok(profile) => profile,
        Err(failure) => return failed_page(&visit, name, failure).await,
    };
    if let Some(member_id) = pending.link_member_id {
        return match oauth::connect(&state.db, provider, &profile, member_id).await.map_err(|err| visit.failed(err))? {
            Ok(()) => Ok(visit.redirect(&format!("/settings?connected={}", provider.name))),
            Err(failure) => failed_page(&visit, name, failure).await,
        };
    }
    let member_id =
        match oauth::sign_in(&state.db, &state.config, provider, &profile).await.map_err(|err| visit.failed(err))? {
            Ok(member_id) => member_id,
            Err(failure) => return failed_page(&visit, name, failure).await,
        };
    let session = credentials::create_session(&state.db, member_id).await.map_err(|err| visit.failed(err))?;
    visit.set_cookie(credentials::session_cookie(Some(&session.token), SESSION_IDLE_MS, state.config.is_https()));
    tracing::info!(provider = %provider.name, member_id, "signed in with a provider");
    Ok(visit.redirect(&pending.return_to))
}

/// The page a failed sign-in ends on; the failure is logged (without secrets).
async fn failed_page(visit: &Visit, provider: &str, failure: Failure) -> Result<Response, Stop> {
    tracing::warn!(provider, status = %failure.status, reason = failure.title, "a provider sign-in failed");
    Ok(visit.error_page(failure.status, failure.title, &failure.message).await)
}
