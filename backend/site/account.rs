//! The account pages: registering, signing in and out, the settings page (profile, access
//! tokens, connected identities), and the pages mail leads to: confirming an address (`/verify-email/<token>`), the
//! forgotten-password journey (`/forgot-password`, then `/reset-password/<token>` from the
//! mail), and the settings forms that change an address or a password or send a
//! verification link again.
//!
//! A link from a mail is never used by opening it: link scanners and mail previews open
//! every link in a message. The page shows a form instead, and only posting it (a person
//! pressing the button) uses the link.

use poem::{handler, http::StatusCode, web::Path, Body, Request, Response};
use serde_json::{json, Value};

use super::{
    forms::{form_errors, query_params, refused, respond},
    visit::{safe_return_to, time_zone_names, Mutation, Stop, Visit},
};

/// Longer than any token we mail; anything else is a page that does not exist.
const TOKEN_MAX: usize = 100;

/// The token from a link's path, if it could be one of ours.
fn token_from(path: &str) -> Option<&str> {
    let plausible = !path.is_empty()
        && path.len() <= TOKEN_MAX
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plausible.then_some(path)
}

/// The page behind a link, if the link still works and is for `purpose`; otherwise the
/// page saying it does not (404, with what to do instead).
async fn link_page(visit: &Visit, token: &str, purpose: &str) -> Result<Value, Stop> {
    let data = visit.query("account_link", json!({ "token": token })).await?;
    if data["accountLink"]["purpose"] != purpose {
        return Err(Box::new(expired(visit, &data, purpose)));
    }
    Ok(data)
}

/// "This link has expired", for either kind of link.
fn expired(visit: &Visit, data: &Value, purpose: &str) -> Response {
    visit.render(StatusCode::NOT_FOUND, "link_expired.html", data, json!({ "purpose": purpose }))
}

// ---------------------------------------------------------------------------------------
// Verifying an address

/// `GET /verify-email/<token>`: a button that confirms the address (nothing changes yet).
#[handler]
pub async fn verify_form(request: &Request, Path(token): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let Some(token) = token_from(&token) else { return Ok(visit.not_found().await) };
            let data = link_page(&visit, token, "VERIFY_EMAIL").await?;
            Ok(visit.render(StatusCode::OK, "verify_email.html", &data, json!({ "token": token })))
        }
        .await,
    )
}

/// `POST /verify-email/<token>`: confirms the address, signing in a visitor who was not.
#[handler]
pub async fn verify(request: &Request, Path(token): Path<String>, body: Body) -> Response {
    respond(
        async {
            let (mut visit, _) = Visit::posted(request, body).await?;
            let Some(token) = token_from(&token) else { return Ok(visit.not_found().await) };
            let outcome = visit.mutate("verify_email", json!({ "input": { "token": token } })).await?;
            let message = match outcome {
                Mutation::Done(_) => return Ok(visit.redirect("/settings?saved=verified")),
                Mutation::Invalid(errors) if errors.iter().any(|e| e["code"] == "TAKEN") => {
                    errors[0]["message"].as_str().unwrap_or_default().to_string()
                }
                Mutation::Invalid(_) => {
                    let data = visit.query("viewer", json!({})).await?;
                    return Ok(expired(&visit, &data, "VERIFY_EMAIL"));
                }
                Mutation::Refused(message) => message,
            };
            let data = visit.query("account_link", json!({ "token": token })).await?;
            let errors = refused(message, "confirm");
            let extra = json!({ "token": token, "errors": errors });
            Ok(visit.render(StatusCode::UNPROCESSABLE_ENTITY, "verify_email.html", &data, extra))
        }
        .await,
    )
}

// ---------------------------------------------------------------------------------------
// A forgotten password

/// `GET /forgot-password`: asks for the address to send a reset link to.
#[handler]
pub async fn forgot_form(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let data = visit.query("viewer", json!({})).await?;
            Ok(visit.render(StatusCode::OK, "forgot_password.html", &data, json!({ "values": {} })))
        }
        .await,
    )
}

/// `POST /forgot-password`: sends the link if the address has an account, and says the
/// same either way.
#[handler]
pub async fn forgot(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let email = form.text("email");
            let input = json!({ "email": email });
            let errors = match visit.mutate("request_password_reset", json!({ "input": input })).await? {
                Mutation::Done(_) => {
                    let data = visit.query("viewer", json!({})).await?;
                    let extra = json!({ "reason": "reset", "email": email.trim() });
                    return Ok(visit.render(StatusCode::OK, "check_email.html", &data, extra));
                }
                Mutation::Invalid(errors) => form_errors(&errors, "email"),
                Mutation::Refused(message) => refused(message, "email"),
            };
            let data = visit.query("viewer", json!({})).await?;
            let extra = json!({ "errors": errors, "values": { "email": email } });
            Ok(visit.render(StatusCode::UNPROCESSABLE_ENTITY, "forgot_password.html", &data, extra))
        }
        .await,
    )
}

/// `GET /reset-password/<token>`: the new password form (the link is not used yet).
#[handler]
pub async fn reset_form(request: &Request, Path(token): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let Some(token) = token_from(&token) else { return Ok(visit.not_found().await) };
            let data = link_page(&visit, token, "RESET_PASSWORD").await?;
            Ok(visit.render(StatusCode::OK, "reset_password.html", &data, json!({ "token": token })))
        }
        .await,
    )
}

/// `POST /reset-password/<token>`: sets the password, signs out every other session and
/// signs in here.
#[handler]
pub async fn reset(request: &Request, Path(token): Path<String>, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(token) = token_from(&token) else { return Ok(visit.not_found().await) };
            let input = json!({ "token": token, "password": form.text("password") });
            let errors = match visit.mutate("reset_password", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect("/settings?saved=password-reset")),
                Mutation::Invalid(errors) if errors.iter().any(|e| e["field"] == "token") => {
                    let data = visit.query("viewer", json!({})).await?;
                    return Ok(expired(&visit, &data, "RESET_PASSWORD"));
                }
                Mutation::Invalid(errors) => form_errors(&errors, "password"),
                Mutation::Refused(message) => refused(message, "password"),
            };
            let data = visit.query("account_link", json!({ "token": token })).await?;
            let extra = json!({ "token": token, "errors": errors });
            Ok(visit.render(StatusCode::UNPROCESSABLE_ENTITY, "reset_password.html", &data, extra))
        }
        .await,
    )
}

// ---------------------------------------------------------------------------------------
// Settings: the address and the password

/// `POST /settings/verification`: sends the verification link again.
#[handler]
pub async fn resend_verification(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, _) = Visit::posted(request, body).await?;
            let errors = match visit.mutate("resend_verification", json!({})).await? {
                Mutation::Done(_) => return Ok(visit.redirect("/settings?saved=verification-sent#email")),
                Mutation::Invalid(errors) => {
                    let errors: Vec<Value> = errors.iter().map(|e| json!({ "message": e["message"] })).collect();
                    form_errors(&errors, "email")
                }
                Mutation::Refused(message) => refused(message, "email"),
            };
            render_settings(&visit, StatusCode::UNPROCESSABLE_ENTITY, json!({ "email_errors": errors })).await
        }
        .await,
    )
}

/// `POST /settings/email`: starts a change of address (a link goes to the new one).
#[handler]
pub async fn change_email(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let input = json!({ "email": form.text("newEmail"), "currentPassword": form.get("emailPassword") });
            let errors = match visit.mutate("change_email", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect("/settings?saved=email-change-sent#email")),
                Mutation::Invalid(errors) => form_errors(
                    &renamed(errors, &[("email", "newEmail"), ("currentPassword", "emailPassword")]),
                    "newEmail",
                ),
                Mutation::Refused(message) => refused(message, "newEmail"),
            };
            let extra = json!({ "email_errors": errors, "email_values": { "newEmail": form.text("newEmail") } });
            render_settings(&visit, StatusCode::UNPROCESSABLE_ENTITY, extra).await
        }
        .await,
    )
}

/// `POST /settings/handle`: chooses a new handle (the old one keeps leading here).
#[handler]
pub async fn change_handle(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let input = json!({ "handle": form.text("handle") });
            let errors = match visit.mutate("change_handle", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect("/settings?saved=handle#handle-heading")),
                Mutation::Invalid(errors) => form_errors(&errors, "handle"),
                Mutation::Refused(message) => refused(message, "handle"),
            };
            let extra = json!({ "handle_errors": errors, "handle_values": { "handle": form.text("handle") } });
            render_settings(&visit, StatusCode::UNPROCESSABLE_ENTITY, extra).await
        }
        .await,
    )
}

/// `POST /settings/password`: changes (or sets) the password; other sessions end.
#[handler]
pub async fn change_password(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let input =
                json!({ "currentPassword": form.get("currentPassword"), "newPassword": form.text("newPassword") });
            let errors = match visit.mutate("change_password", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect("/settings?saved=password#password")),
                Mutation::Invalid(errors) => form_errors(&errors, "currentPassword"),
                Mutation::Refused(message) => refused(message, "currentPassword"),
            };
            render_settings(&visit, StatusCode::UNPROCESSABLE_ENTITY, json!({ "password_errors": errors })).await
        }
        .await,
    )
}

/// `userErrors` with their fields renamed to the form's: the settings page holds several
/// forms, and two fields cannot share an id.
fn renamed(errors: Vec<Value>, names: &[(&str, &str)]) -> Vec<Value> {
    errors
        .into_iter()
        .map(|mut error| {
            if let Some((_, to)) = names.iter().find(|(from, _)| error["field"] == *from) {
                error["field"] = json!(to);
            }
            error
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_tokens_are_looked_up() {
        assert_eq!(token_from("abcDEF012-_"), Some("abcDEF012-_"));
        for bad in ["", "a b", "a/b", "a.b", "%00", &"a".repeat(101)] {
            assert_eq!(token_from(bad), None, "{bad:?}");
        }
    }
}

#[handler]
pub async fn register_form(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if visit.signed_in() {
                return Ok(visit.redirect("/"));
            }
            let data = visit.query("viewer", json!({})).await?;
            Ok(visit.render(StatusCode::OK, "register.html", &data, json!({ "values": {} })))
        }
        .await,
    )
}

#[handler]
pub async fn register(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let input = json!({ "email": form.text("email"), "displayName": form.text("displayName"), "password": form.text("password") });
            let errors = match visit.mutate("register", json!({ "input": input })).await? {
                // The same page whether the address was new or already had an account
                // (which is told by mail instead): the page reveals nobody's address.
                Mutation::Done(payload) => {
                    let data = visit.query("viewer", json!({})).await?;
                    let extra = json!({ "reason": "register", "email": payload["email"] });
                    return Ok(visit.render(StatusCode::OK, "check_email.html", &data, extra));
                }
                Mutation::Invalid(errors) => form_errors(&errors, "email"),
                Mutation::Refused(message) => refused(message, "email"),
            };
            let data = visit.query("viewer", json!({})).await?;
            let values = json!({ "email": form.text("email"), "displayName": form.text("displayName") });
            Ok(visit.render(StatusCode::UNPROCESSABLE_ENTITY, "register.html", &data, json!({ "errors": errors, "values": values })))
        }
        .await,
    )
}

#[handler]
pub async fn sign_in_form(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let return_to = safe_return_to(query_params(request).get("return_to").map(String::as_str));
            if visit.signed_in() {
                return Ok(visit.redirect(return_to.as_deref().unwrap_or("/")));
            }
            let data = visit.query("sign_in_page", json!({})).await?;
            Ok(visit.render(StatusCode::OK, "sign_in.html", &data, json!({ "values": {}, "return_to": return_to })))
        }
        .await,
    )
}

#[handler]
pub async fn sign_in(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let return_to = safe_return_to(form.get("return_to"));
            let input = json!({ "email": form.text("email"), "password": form.text("password") });
            let errors = match visit.mutate("sign_in", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect(return_to.as_deref().unwrap_or("/"))),
                Mutation::Invalid(errors) => form_errors(&errors, "email"),
                Mutation::Refused(message) => refused(message, "email"),
            };
            let data = visit.query("sign_in_page", json!({})).await?;
            let values = json!({ "email": form.text("email") });
            let extra = json!({ "errors": errors, "values": values, "return_to": return_to });
            Ok(visit.render(StatusCode::UNPROCESSABLE_ENTITY, "sign_in.html", &data, extra))
        }
        .await,
    )
}

#[handler]
pub async fn sign_out(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, _) = Visit::posted(request, body).await?;
            visit.mutate("sign_out", json!({})).await?;
            Ok(visit.redirect("/?signed_out=1"))
        }
        .await,
    )
}

/// The settings page, optionally with a form's errors or a new token to show.
pub(super) async fn render_settings(visit: &Visit, status: StatusCode, extra: Value) -> Result<Response, Stop> {
    if !visit.signed_in() {
        return Err(Box::new(visit.sign_in_first()));
    }
    let data = visit.query("settings", json!({})).await?;
    let mut context = json!({ "time_zones": time_zone_names() });
    if let (Some(object), Value::Object(more)) = (context.as_object_mut(), extra) {
        object.extend(more);
    }
    Ok(visit.render(status, "settings.html", &data, context))
}

#[handler]
pub async fn settings(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let mut params = query_params(request);
            let extra = json!({ "saved": params.remove("saved"), "connected": params.remove("connected") });
            render_settings(&visit, StatusCode::OK, extra).await
        }
        .await,
    )
}

#[handler]
pub async fn update_profile(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let input = json!({ "displayName": form.text("displayName"), "bio": form.text("bio"), "timeZone": form.text("timeZone") });
            let errors = match visit.mutate("update_profile", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect("/settings?saved=profile")),
                Mutation::Invalid(errors) => form_errors(&errors, "displayName"),
                Mutation::Refused(message) => refused(message, "displayName"),
            };
            let values = json!({ "displayName": form.text("displayName"), "bio": form.text("bio"), "timeZone": form.text("timeZone") });
            render_settings(&visit, StatusCode::UNPROCESSABLE_ENTITY, json!({ "profile_errors": errors, "profile_values": values }))
                .await
        }
        .await,
    )
}

#[handler]
pub async fn create_token(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let expires = form.text("expiresInDays");
            let expires_in_days: Value = match expires.trim() {
                "" | "never" => Value::Null,
                days => match days.parse::<i32>() {
                    Ok(days) => json!(days),
                    Err(_) => json!(-1),
                },
            };
            let input = json!({ "name": form.text("name"), "expiresInDays": expires_in_days });
            let errors = match visit.mutate("create_access_token", json!({ "input": input })).await? {
                Mutation::Done(payload) => {
                    // The secret is shown on this response only: it is never stored, so
                    // this page is not a redirect.
                    let extra =
                        json!({ "new_token": payload["token"], "new_token_name": payload["accessToken"]["name"] });
                    return render_settings(&visit, StatusCode::OK, extra).await;
                }
                Mutation::Invalid(errors) => form_errors(&errors, "name"),
                Mutation::Refused(message) => refused(message, "name"),
            };
            let values = json!({ "name": form.text("name"), "expiresInDays": expires });
            render_settings(
                &visit,
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "token_errors": errors, "token_values": values }),
            )
            .await
        }
        .await,
    )
}

#[handler]
pub async fn revoke_token(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            match visit.mutate("revoke_access_token", json!({ "input": { "id": form.text("id") } })).await? {
                Mutation::Done(_) => Ok(visit.redirect("/settings?saved=revoked")),
                // Already revoked or not theirs: the list shows the truth either way.
                Mutation::Invalid(_) | Mutation::Refused(_) => Ok(visit.redirect("/settings")),
            }
        }
        .await,
    )
}

#[handler]
pub async fn disconnect_identity(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let input = json!({ "provider": form.text("provider") });
            let errors = match visit.mutate("disconnect_identity", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect("/settings?saved=disconnected")),
                // The summary links to the connections section: the error is about the
                // account as a whole, not a field.
                Mutation::Invalid(errors) => {
                    let errors: Vec<Value> = errors.iter().map(|e| json!({ "message": e["message"] })).collect();
                    form_errors(&errors, "connections")
                }
                Mutation::Refused(message) => refused(message, "connections"),
            };
            render_settings(&visit, StatusCode::UNPROCESSABLE_ENTITY, json!({ "connection_errors": errors })).await
        }
        .await,
    )
}
