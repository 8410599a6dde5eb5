//! The pages of a case study's or an artefact's history: every version with its change
//! note, and any two compared word by word.

use poem::{handler, http::StatusCode, web::Path, Request, Response};
use serde_json::json;

use super::{
    forms::{query_params, respond},
    page_id,
    visit::{Stop, Visit},
};

/// What has a history on the site: its GraphQL type and its pages' address.
#[derive(Clone, Copy)]
struct Subject {
    type_name: &'static str,
    base: &'static str,
}

const CASE_STUDY: Subject = Subject { type_name: "CaseStudy", base: "/case-studies" };
const ARTEFACT: Subject = Subject { type_name: "Artefact", base: "/artefacts" };

/// Every version with its change note, and a form to compare two.
async fn list(request: &Request, subject: Subject, number: &str) -> Result<Response, Stop> {
    let visit = Visit::new(request).await?;
    let Some(id) = page_id(subject.type_name, number) else { return Ok(visit.not_found().await) };
    let data = visit.query("history", json!({ "id": id })).await?;
    if data["item"]["versions"].is_null() {
        return Ok(visit.not_found().await);
    }
    let context = json!({ "base": format!("{}/{number}", subject.base), "kind": subject.type_name });
    Ok(visit.render(StatusCode::OK, "history.html", &data, context))
}

/// Two versions compared: `?from=1&to=3`; the list of versions when either is missing.
async fn compare(request: &Request, subject: Subject, number: &str) -> Result<Response, Stop> {
    let visit = Visit::new(request).await?;
    let Some(id) = page_id(subject.type_name, number) else { return Ok(visit.not_found().await) };
    let base = format!("{}/{number}", subject.base);
    let params = query_params(request);
    let version = |name: &str| params.get(name).and_then(|v| v.trim().parse::<i32>().ok());
    let (Some(from), Some(to)) = (version("from"), version("to")) else {
        return Ok(visit.redirect(&format!("{base}/history")));
    };
    let data = visit.query("history_compare", json!({ "id": id, "from": from, "to": to })).await?;
    if data["item"]["compareVersions"].is_null() {
        return Ok(visit.not_found().await);
    }
    let context = json!({ "base": base, "kind": subject.type_name, "from": from, "to": to });
    Ok(visit.render(StatusCode::OK, "history_compare.html", &data, context))
}

#[handler]
pub async fn case_study(request: &Request, Path(number): Path<String>) -> Response {
    respond(list(request, CASE_STUDY, &number).await)
}

#[handler]
pub async fn case_study_compare(request: &Request, Path(number): Path<String>) -> Response {
    respond(compare(request, CASE_STUDY, &number).await)
}

#[handler]
pub async fn artefact(request: &Request, Path(number): Path<String>) -> Response {
    respond(list(request, ARTEFACT, &number).await)
}

#[handler]
pub async fn artefact_compare(request: &Request, Path(number): Path<String>) -> Response {
    respond(compare(request, ARTEFACT, &number).await)
}
