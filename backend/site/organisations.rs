//! The organisation pages: the list, adding an organisation, its page (with its case
//! studies and artefacts), asking to join, and its admins deciding on requests.

use poem::{handler, http::StatusCode, web::Path, Body, Request, Response};
use serde_json::{json, Value};

use super::{
    forms::{form_errors, query_params, refused, respond},
    visit::{Mutation, Stop, Visit},
};

const KINDS: [&str; 6] = ["COUNCIL", "CENTRAL_GOVERNMENT", "NHS", "CHARITY", "SUPPLIER", "OTHER"];

#[handler]
pub async fn list(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let after = query_params(request).remove("after").filter(|a| a.len() <= 200);
            let data = visit.query("organisations", json!({ "after": after })).await?;
            Ok(visit.render(StatusCode::OK, "organisations.html", &data, json!({})))
        }
        .await,
    )
}

async fn render_form(visit: &Visit, status: StatusCode, values: Value, errors: Value) -> Result<Response, Stop> {
    let data = visit.query("organisation_new", json!({})).await?;
    let context = json!({ "values": values, "errors": errors, "kinds": KINDS });
    Ok(visit.render(status, "organisation_form.html", &data, context))
}

#[handler]
pub async fn new_form(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            render_form(&visit, StatusCode::OK, json!({ "kind": KINDS[0] }), Value::Null).await
        }
        .await,
    )
}

#[handler]
pub async fn create(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let values =
                json!({ "name": form.text("name"), "kind": form.text("kind"), "website": form.text("website") });
            let kind = form.get("kind").filter(|k| KINDS.contains(k)).unwrap_or(KINDS[0]);
            let website = Some(form.text("website")).filter(|w| !w.trim().is_empty());
            let input = json!({ "name": form.text("name"), "kind": kind, "website": website });
            let errors = match visit.mutate("create_organisation", json!({ "input": input })).await? {
                Mutation::Done(payload) => {
                    let slug = payload["organisation"]["slug"].as_str().unwrap_or_default();
                    return Ok(visit.redirect(&format!("/organisations/{slug}?created=1")));
                }
                Mutation::Invalid(errors) => form_errors(&errors, "name"),
                Mutation::Refused(message) => refused(message, "name"),
            };
            render_form(&visit, StatusCode::UNPROCESSABLE_ENTITY, values, errors).await
        }
        .await,
    )
}

#[handler]
pub async fn show(request: &Request, Path(slug): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let params = query_params(request);
            let after = params.get("after").filter(|a| a.len() <= 200);
            let data = visit.query("organisation", json!({ "slug": slug, "after": after })).await?;
            if data["organisation"].is_null() {
                return Ok(visit.not_found().await);
            }
            let membership = &data["organisation"]["viewerMembership"];
            // Only admins may see who is waiting; for them, one more document.
            let requests = if membership["role"] == "ADMIN" && membership["status"] == "APPROVED" {
                visit.query("organisation_requests", json!({ "slug": slug })).await?["organisation"]
                    ["membershipRequests"]
                    .clone()
            } else {
                Value::Null
            };
            let extra = json!({
                "requests": requests,
                "created": params.contains_key("created"),
                "decided": params.get("decided"),
            });
            Ok(visit.render(StatusCode::OK, "organisation.html", &data, extra))
        }
        .await,
    )
}

/// The organisation's global id, from its page's slug.
async fn organisation_id(visit: &Visit, slug: &str) -> Result<Option<Value>, Stop> {
    let data = visit.query("organisation_id", json!({ "slug": slug })).await?;
    Ok(Some(data["organisation"]["id"].clone()).filter(|id| !id.is_null()))
}

#[handler]
pub async fn join(request: &Request, body: Body, Path(slug): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, _) = Visit::posted(request, body).await?;
            let Some(id) = organisation_id(&visit, &slug).await? else { return Ok(visit.not_found().await) };
            visit.mutate("request_to_join", json!({ "input": { "organisationId": id } })).await?;
            Ok(visit.redirect(&format!("/organisations/{slug}")))
        }
        .await,
    )
}

#[handler]
pub async fn decide(request: &Request, body: Body, Path(slug): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let Some(id) = organisation_id(&visit, &slug).await? else { return Ok(visit.not_found().await) };
            let approve = form.get("decision") == Some("approve");
            let input = json!({ "organisationId": id, "memberId": form.text("memberId"), "approve": approve });
            match visit.mutate("decide_membership", json!({ "input": input })).await? {
                Mutation::Done(_) => {
                    let decided = if approve { "approved" } else { "declined" };
                    Ok(visit.redirect(&format!("/organisations/{slug}?decided={decided}")))
                }
                Mutation::Invalid(_) | Mutation::Refused(_) => Ok(visit.not_found().await),
            }
        }
        .await,
    )
}
