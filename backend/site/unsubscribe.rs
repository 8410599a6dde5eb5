//! `/unsubscribe/<token>`: the one-click unsubscribe link in every message that is not
//! about the account's security (RFC 8058).
//!
//! A `GET` only asks: link scanners and previews follow every link in a message, and
//! must unsubscribe nobody. A `POST` unsubscribes: the button on that page, or the mail
//! client itself, which posts `List-Unsubscribe=One-Click` from its own servers with no
//! cookie. So the `POST` needs no session and no CSRF token: the signed token in the path
//! is the authority, and it cannot be forged or turned into another member's or another
//! list's (see [`crate::mail::unsubscribe`]). A forged or malformed token is a page that
//! does not exist, and changes nothing.

use poem::{handler, http::StatusCode, web::Path, Body, Request, Response};
use serde_json::json;

use super::{
    forms::respond,
    visit::{Form, Mutation, Visit, FORM_LIMIT},
};
use crate::mail::unsubscribe::{self, List};

/// `GET /unsubscribe/<token>`: what the link would do, and a button to do it.
#[handler]
pub async fn confirm(request: &Request, Path(token): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let Some((_, list)) = unsubscribe::verify(&visit.state().mailer, &token) else {
                return Ok(visit.not_found().await);
            };
            let data = visit.query("viewer", json!({})).await?;
            let extra = json!({ "token": token, "list": unsubscribe::describe(list), "digest": list == List::Digest, "done": false });
            Ok(visit.render(StatusCode::OK, "unsubscribe.html", &data, extra))
        }
        .await,
    )
}

/// `POST /unsubscribe/<token>`: unsubscribes, without a session or a CSRF token.
#[handler]
pub async fn leave(request: &Request, Path(token): Path<String>, body: Body) -> Response {
    respond(
        async {
            let mut visit = Visit::new(request).await?;
            // What was sent does not matter (`List-Unsubscribe=One-Click`, or the page's
            // empty form); it is read within the forms' size limit, and not checked for a
            // CSRF token on purpose.
            Form::read(request, body, FORM_LIMIT).await?;
            let list = match visit.mutate("unsubscribe", json!({ "input": { "token": token } })).await? {
                Mutation::Done(payload) => payload["list"].as_str().and_then(List::parse),
                Mutation::Invalid(_) => None,
                Mutation::Refused(message) => {
                    return Ok(visit
                        .error_page(StatusCode::UNPROCESSABLE_ENTITY, "You are still subscribed", &message)
                        .await)
                }
            };
            let Some(list) = list else { return Ok(visit.not_found().await) };
            let data = visit.query("viewer", json!({})).await?;
            let extra = json!({ "token": token, "list": unsubscribe::describe(list), "digest": list == List::Digest, "done": true });
            Ok(visit.render(StatusCode::OK, "unsubscribe.html", &data, extra))
        }
        .await,
    )
}
