//! The privacy pages: the notice (`/privacy`: cookies, what is stored, for how long, and
//! how to export or erase), "Your data" (`/settings/data`: ask for an export, download
//! it), and deleting an account (`/settings/delete`).
//!
//! The download (`/settings/data/export/<token>`) needs both the member's session and
//! the link's token: a link that leaks (a shared screen, a proxy log) downloads nothing
//! for anyone else, and the member can still bookmark it for the week it lasts. It is
//! served as a JSON attachment, never rendered, with no caching.

use poem::{
    handler,
    http::{header, StatusCode},
    web::Path,
    Body, Request, Response,
};
use serde_json::{json, Value};

use super::{
    forms::{form_errors, refused, respond},
    visit::{Mutation, Stop, Visit},
};
use crate::{
    accounts::credentials,
    privacy::{export, retention},
};

/// The cookies the site sets, as the notice lists them. Both are strictly necessary, so
/// no consent banner is asked for; anything added here must be too.
fn cookies(secure: bool) -> Value {
    json!([
        {
            "name": credentials::session_cookie_name(secure),
            "purpose": "Keeps you signed in. Set when you sign in; removed when you sign out.",
            "lasts": "30 days from your last visit, at most 180 days",
        },
        {
            "name": super::csrf::cookie_name(secure),
            "purpose": "Proves that a form you send was made by this site, not by another site (protection against cross-site request forgery).",
            "lasts": "Until you close your browser",
        },
    ])
}

fn schedule() -> Value {
    retention::PERIODS
        .iter()
        .map(|p| json!({ "what": p.what, "period": retention::describe(p.millis), "after": p.after }))
        .collect()
}

/// `GET /privacy`: the privacy notice.
#[handler]
pub async fn notice(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let data = visit.query("viewer", json!({})).await?;
            let secure = visit.state().config.is_https();
            let extra = json!({ "cookies": cookies(secure), "retention": schedule() });
            Ok(visit.render(StatusCode::OK, "privacy.html", &data, extra))
        }
        .await,
    )
}

async fn render_exports(visit: &Visit, status: StatusCode, extra: Value) -> Result<Response, Stop> {
    if !visit.signed_in() {
        return Err(Box::new(visit.sign_in_first()));
    }
    let data = visit.query("privacy_exports", json!({})).await?;
    Ok(visit.render(status, "settings_export.html", &data, extra))
}

/// `GET /settings/data`: the member's exports, and the button to ask for one.
#[handler]
pub async fn exports(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let asked = super::forms::query_params(request).contains_key("asked");
            render_exports(&visit, StatusCode::OK, json!({ "asked": asked })).await
        }
        .await,
    )
}

/// `POST /settings/data`: asks for an export.
#[handler]
pub async fn request_export(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, _) = Visit::posted(request, body).await?;
            let errors = match visit.mutate("privacy_request_export", json!({})).await? {
                Mutation::Done(_) => return Ok(visit.redirect("/settings/data?asked=1")),
                Mutation::Invalid(errors) => form_errors(&errors, "request-export"),
                Mutation::Refused(message) => refused(message, "request-export"),
            };
            render_exports(&visit, StatusCode::TOO_MANY_REQUESTS, json!({ "errors": errors })).await
        }
        .await,
    )
}

/// `GET /settings/data/export/<token>`: the export itself, for its member only.
#[handler]
pub async fn download(request: &Request, Path(token): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let Some(member_id) = visit.member_id() else { return Ok(visit.sign_in_first()) };
            let plausible = token.len() <= 100 && token.bytes().all(|b| b.is_ascii_hexdigit());
            let content = if plausible {
                export::download(&visit.state().db, member_id, &token).await.map_err(|err| visit.failed(err))?
            } else {
                None
            };
            let Some(content) = content else { return Ok(visit.not_found().await) };
            Ok(Response::builder()
                .status(StatusCode::OK)
                .content_type("application/json")
                .header(header::CONTENT_DISPOSITION, "attachment; filename=\"kettle-personal-data.json\"")
                .header(header::CACHE_CONTROL, "no-store")
                .header("X-Content-Type-Options", "nosniff")
                .body(content))
        }
        .await,
    )
}

async fn render_delete(visit: &Visit, status: StatusCode, extra: Value) -> Result<Response, Stop> {
    if !visit.signed_in() {
        return Err(Box::new(visit.sign_in_first()));
    }
    let data = visit.query("privacy_delete", json!({})).await?;
    Ok(visit.render(status, "settings_delete.html", &data, extra))
}

/// `GET /settings/delete`: what goes, what stays, and the confirmation.
#[handler]
pub async fn delete_form(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            render_delete(&visit, StatusCode::OK, json!({})).await
        }
        .await,
    )
}

/// `POST /settings/delete`: deletes the account, and signs out.
#[handler]
pub async fn delete(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let input = json!({ "password": form.get("password").filter(|p| !p.is_empty()) });
            let errors = match visit.mutate("privacy_delete_account", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect("/?account_deleted=1")),
                Mutation::Invalid(errors) => form_errors(&errors, "password"),
                Mutation::Refused(message) => refused(message, "password"),
            };
            render_delete(&visit, StatusCode::UNPROCESSABLE_ENTITY, json!({ "errors": errors })).await
        }
        .await,
    )
}
