//! The pages. Each handler reads its form (if any), runs the page's GraphQL document
//! through [`Visit`], and renders a template; a form with problems is shown again with an
//! error summary and each message beside its field, and a form that worked redirects.

use poem::{handler, http::StatusCode, web::Path, Body, Request, Response};
use serde_json::{json, Value};

use super::visit::{safe_return_to, time_zone_names, Mutation, Stop, Visit};

pub(super) fn respond(result: Result<Response, Stop>) -> Response {
    result.unwrap_or_else(|stop| *stop)
}

/// Turns `userErrors` into what the templates show: a summary whose links go to each
/// field, and each message beside its field. Errors about no field in particular link to
/// the form's first field.
pub(super) fn form_errors(errors: &[Value], first_field: &str) -> Value {
    let list: Vec<Value> = errors
        .iter()
        .map(|e| json!({ "field": e["field"].as_str().unwrap_or(first_field), "message": e["message"] }))
        .collect();
    let mut by_field = serde_json::Map::new();
    for error in &list {
        let field = error["field"].as_str().unwrap_or(first_field).to_string();
        by_field.entry(field).or_insert_with(|| error["message"].clone());
    }
    json!({ "list": list, "by_field": by_field })
}

pub(super) fn refused(message: String, first_field: &str) -> Value {
    form_errors(&[json!({ "field": first_field, "message": message })], first_field)
}

async fn home_page(request: &Request) -> Result<Response, Stop> {
    let visit = Visit::new(request).await?;
    let data = visit.query("home", json!({})).await?;
    let flags = query_params(request);
    let extra = json!({
        "signed_out": flags.contains_key("signed_out"),
        "account_deleted": flags.contains_key("account_deleted"),
    });
    Ok(visit.render(StatusCode::OK, "home.html", &data, extra))
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
            let errors = match visit.mutate("register", "register", json!({ "input": input })).await? {
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

pub(super) fn query_params(request: &Request) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes()).into_owned().collect()
}

#[handler]
pub async fn sign_in(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let return_to = safe_return_to(form.get("return_to"));
            let input = json!({ "email": form.text("email"), "password": form.text("password") });
            let errors = match visit.mutate("sign_in", "signIn", json!({ "input": input })).await? {
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
            visit.mutate("sign_out", "signOut", json!({})).await?;
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
            let errors = match visit.mutate("update_profile", "updateProfile", json!({ "input": input })).await? {
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
            let errors =
                match visit.mutate("create_access_token", "createAccessToken", json!({ "input": input })).await? {
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
            match visit
                .mutate("revoke_access_token", "revokeAccessToken", json!({ "input": { "id": form.text("id") } }))
                .await?
            {
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
            let errors =
                match visit.mutate("disconnect_identity", "disconnectIdentity", json!({ "input": input })).await? {
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

/// A member's public profile, at `/members/@handle`.
#[handler]
pub async fn member(request: &Request, Path(path): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let Some(handle) = path.strip_prefix('@') else { return Ok(visit.not_found().await) };
            let data = visit.query("member", json!({ "handle": handle })).await?;
            if data["member"].is_null() {
                return Ok(visit.not_found().await);
            }
            let saved = query_params(request).remove("saved");
            Ok(visit.render(StatusCode::OK, "member.html", &data, json!({ "saved": saved })))
        }
        .await,
    )
}

/// The home page, and the "page not found" page for every path no other route takes.
/// (Both live here because poem's router lets a catch-all route win over "/" itself.)
#[handler]
pub async fn home_or_not_found(request: &Request) -> Response {
    if request.uri().path() == "/" {
        return respond(home_page(request).await);
    }
    respond(
        async {
            let visit = Visit::new(request).await?;
            Ok(visit.not_found().await)
        }
        .await,
    )
}
