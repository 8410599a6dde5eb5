//! The moderators' and admins' pages: the audit log (`/admin/audit`, filtered by a GET
//! form so a filtered view is a link to share), site settings (`/admin/settings`), and
//! the forms on a member's page that suspend them, lift a suspension, or change their
//! role (`/members/@handle/suspend`, `…/lift`, `…/role`).
//!
//! Who may see and do what is the API's decision: a member who opens these pages gets the
//! "you cannot see this page" answer the API's `FORBIDDEN` turns into.

use poem::{handler, http::StatusCode, web::Path, Body, Request, Response};
use serde_json::{json, Value};

use super::{
    forms::{form_errors, query_params, refused, respond},
    visit::{Form, Mutation, Stop, Visit},
};
use crate::{graphql::relay, moderation::audit};

/// The longest filter value the audit page reads from its address.
const FILTER_MAX: usize = 200;

/// `GET /admin/audit`: the log, newest first, with the filters from the address.
#[handler]
pub async fn audit_log(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let params = query_params(request);
            let param = |name: &str| -> String {
                params.get(name).map(|v| v.trim().chars().take(FILTER_MAX).collect()).unwrap_or_default()
            };
            let (actor, action, target) = (param("actor"), param("action"), param("target"));
            let mut problems: Vec<Value> = Vec::new();
            let actor_id = match actor.as_str() {
                "" => Value::Null,
                handle => match member_id(&visit, handle).await? {
                    Some(id) => id,
                    None => {
                        problems
                            .push(json!({ "field": "actor", "message": format!("Nobody has the handle {handle}.") }));
                        Value::Null
                    }
                },
            };
            let target_id = match target.as_str() {
                "" => Value::Null,
                handle if handle.starts_with('@') => match member_id(&visit, handle).await? {
                    Some(id) => id,
                    None => {
                        problems
                            .push(json!({ "field": "target", "message": format!("Nobody has the handle {handle}.") }));
                        Value::Null
                    }
                },
                id if relay::parse_global_id(id).is_ok() => json!(id),
                _ => {
                    problems.push(
                        json!({ "field": "target", "message": "Enter a member's handle, or an id from the log." }),
                    );
                    Value::Null
                }
            };
            let known_action = audit::ACTIONS.contains(&action.as_str());
            let after = params.get("after").filter(|a| a.len() <= FILTER_MAX).cloned();
            let variables = json!({
                "actor": actor_id,
                "target": target_id,
                "action": if known_action { json!(action) } else { Value::Null },
                "after": after,
            });
            // A filter that names nobody shows nothing rather than everything.
            let data = if problems.is_empty() {
                visit.query("admin_audit", variables).await?
            } else {
                let mut data = visit.query("admin_audit", json!({ "action": "", "after": Value::Null })).await?;
                data["auditLog"] = Value::Null;
                data
            };
            let query: String = [("actor", &actor), ("action", &action), ("target", &target)]
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| {
                    format!("{k}={}&", url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>())
                })
                .collect();
            let errors = if problems.is_empty() { Value::Null } else { form_errors(&problems, "actor") };
            let extra = json!({
                "values": { "actor": actor, "action": action, "target": target },
                "actions": audit::ACTIONS,
                "errors": errors,
                "query": query,
            });
            Ok(visit.render(StatusCode::OK, "admin_audit.html", &data, extra))
        }
        .await,
    )
}

/// The global id of the member with this handle, if there is one.
async fn member_id(visit: &Visit, handle: &str) -> Result<Option<Value>, Stop> {
    let data = visit.query("admin_member_id", json!({ "handle": handle })).await?;
    Ok(data.pointer("/member/id").filter(|id| id.is_string()).cloned())
}

/// `GET /admin/settings`: the settings form (admins; moderators may read the values
/// through the API, but only admins change them, so only admins get the page).
#[handler]
pub async fn settings(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let saved = query_params(request).contains_key("saved");
            render_settings(&visit, StatusCode::OK, json!({ "saved": saved })).await
        }
        .await,
    )
}

async fn render_settings(visit: &Visit, status: StatusCode, extra: Value) -> Result<Response, Stop> {
    if !visit.signed_in() {
        return Ok(visit.sign_in_first());
    }
    let data = visit.query("admin_settings", json!({})).await?;
    if data.pointer("/viewer/role") != Some(&json!("ADMIN")) {
        return Err(Box::new(
            visit
                .error_page(StatusCode::FORBIDDEN, "You cannot see this page", "Only admins change site settings.")
                .await,
        ));
    }
    Ok(visit.render(status, "admin_settings.html", &data, extra))
}

/// `POST /admin/settings`: saves the auto-hide threshold.
#[handler]
pub async fn save_settings(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let weight = form.text("weight");
            let input = match weight.trim().parse::<i64>() {
                Ok(number) => json!({ "weight": number, "reason": form.text("reason") }),
                Err(_) => {
                    let errors = form_errors(
                        &[json!({ "field": "weight", "message": "Enter the threshold as a whole number, such as 300." })],
                        "weight",
                    );
                    let extra = json!({ "errors": errors, "values": { "weight": weight, "reason": form.text("reason") } });
                    return render_settings(&visit, StatusCode::UNPROCESSABLE_ENTITY, extra).await;
                }
            };
            let errors = match visit
                .mutate("admin_set_auto_hide_weight", json!({ "input": input }))
                .await?
            {
                Mutation::Done(_) => return Ok(visit.redirect("/admin/settings?saved=1")),
                Mutation::Invalid(errors) => form_errors(&errors, "weight"),
                Mutation::Refused(message) => refused(message, "weight"),
            };
            let extra = json!({ "errors": errors, "values": { "weight": weight, "reason": form.text("reason") } });
            render_settings(&visit, StatusCode::UNPROCESSABLE_ENTITY, extra).await
        }
        .await,
    )
}

// ---------------------------------------------------------------------------------------
// The forms on a member's page

/// The member page again, with a form's problems (or a notice) in `extra`.
async fn member_page(visit: &Visit, handle: &str, status: StatusCode, extra: Value) -> Result<Response, Stop> {
    let data = visit.query("member", json!({ "handle": handle })).await?;
    if data["member"].is_null() {
        return Ok(visit.not_found().await);
    }
    Ok(visit.render(status, "member.html", &data, extra))
}

/// The handle in `/members/@handle/…`.
fn handle_of(path: &str) -> Option<&str> {
    path.strip_prefix('@').filter(|h| !h.is_empty() && h.len() <= 100)
}

/// `userErrors` with `reason` renamed to the form's field, since the member page holds
/// several forms and two fields cannot share an id.
fn renamed(errors: Vec<Value>, reason_field: &str) -> Vec<Value> {
    errors
        .into_iter()
        .map(|mut error| {
            if error["field"] == "reason" {
                error["field"] = json!(reason_field);
            }
            error
        })
        .collect()
}

/// The start of the day a date input names, in `zone`, as the API's DateTime; `Err` with
/// the message for the form when it is not a date. Empty: no end.
fn until_from(form: &Form, zone: &str) -> Result<Value, String> {
    let (day, month, year) = (form.text("untilDay"), form.text("untilMonth"), form.text("untilYear"));
    let (day, month, year) = (day.trim(), month.trim(), year.trim());
    if day.is_empty() && month.is_empty() && year.is_empty() {
        return Ok(Value::Null);
    }
    let invalid = || "Enter the date the suspension ends as a day, month and year, such as 8 12 2026.".to_string();
    let (Ok(day), Ok(month), Ok(year)) = (day.parse::<i8>(), month.parse::<i8>(), year.parse::<i16>()) else {
        return Err(invalid());
    };
    let date = jiff::civil::Date::new(year, month, day).map_err(|_| invalid())?;
    let zone = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let start = date.to_zoned(zone).map_err(|_| invalid())?;
    Ok(json!(start.timestamp().to_string()))
}

/// `POST /members/@handle/suspend`.
#[handler]
pub async fn suspend(request: &Request, Path(path): Path<String>, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(handle) = handle_of(&path) else { return Ok(visit.not_found().await) };
            let values = json!({
                "reason": form.text("reason"),
                "untilDay": form.text("untilDay"),
                "untilMonth": form.text("untilMonth"),
                "untilYear": form.text("untilYear"),
            });
            let zone = visit.query("viewer", json!({})).await?;
            let zone = zone.pointer("/viewer/timeZone").and_then(|z| z.as_str()).unwrap_or("Europe/London").to_string();
            let errors = match until_from(&form, &zone) {
                Err(message) => form_errors(&[json!({ "field": "until", "message": message })], "until"),
                Ok(until) => {
                    let input =
                        json!({ "memberId": form.text("memberId"), "reason": form.text("reason"), "until": until });
                    match visit.mutate("admin_suspend_member", json!({ "input": input })).await? {
                        Mutation::Done(_) => {
                            return Ok(visit.redirect(&format!("/members/@{handle}?saved=suspended#moderation")))
                        }
                        Mutation::Invalid(errors) => form_errors(&errors, "reason"),
                        Mutation::Refused(message) => refused(message, "reason"),
                    }
                }
            };
            let extra = json!({ "suspend_errors": errors, "suspend_values": values });
            member_page(&visit, handle, StatusCode::UNPROCESSABLE_ENTITY, extra).await
        }
        .await,
    )
}

/// `POST /members/@handle/lift`.
#[handler]
pub async fn lift(request: &Request, Path(path): Path<String>, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(handle) = handle_of(&path) else { return Ok(visit.not_found().await) };
            let input = json!({ "memberId": form.text("memberId"), "reason": form.text("liftReason") });
            let errors = match visit.mutate("admin_lift_suspension", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect(&format!("/members/@{handle}?saved=lifted#moderation"))),
                Mutation::Invalid(errors) => form_errors(&renamed(errors, "liftReason"), "liftReason"),
                Mutation::Refused(message) => refused(message, "liftReason"),
            };
            let extra = json!({ "lift_errors": errors, "lift_values": { "liftReason": form.text("liftReason") } });
            member_page(&visit, handle, StatusCode::UNPROCESSABLE_ENTITY, extra).await
        }
        .await,
    )
}

/// `POST /members/@handle/role`.
#[handler]
pub async fn set_role(request: &Request, Path(path): Path<String>, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(handle) = handle_of(&path) else { return Ok(visit.not_found().await) };
            let role = form.text("role");
            if !["MEMBER", "MODERATOR", "ADMIN"].contains(&role.as_str()) {
                let errors =
                    form_errors(&[json!({ "field": "role", "message": "Choose a role from the list." })], "role");
                return member_page(&visit, handle, StatusCode::UNPROCESSABLE_ENTITY, json!({ "role_errors": errors }))
                    .await;
            }
            let input = json!({ "memberId": form.text("memberId"), "role": role, "reason": form.text("roleReason") });
            let errors = match visit.mutate("admin_set_member_role", json!({ "input": input })).await? {
                Mutation::Done(_) => return Ok(visit.redirect(&format!("/members/@{handle}?saved=role#moderation"))),
                Mutation::Invalid(errors) => form_errors(&renamed(errors, "roleReason"), "role"),
                Mutation::Refused(message) => refused(message, "role"),
            };
            let extra = json!({ "role_errors": errors, "role_values": { "roleReason": form.text("roleReason") } });
            member_page(&visit, handle, StatusCode::UNPROCESSABLE_ENTITY, extra).await
        }
        .await,
    )
}
