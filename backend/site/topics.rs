//! The topic pages: the curated list, each topic's page (its case studies and most reused
//! artefacts), and for admins and moderators the forms that keep the list tidy: add,
//! rename, and merge one topic into another.

use poem::{handler, http::StatusCode, web::Path, Body, Request, Response};
use serde_json::{json, Value};

use super::{
    forms::{form_errors, query_params, refused, respond},
    visit::{Form, Mutation, Stop, Visit},
};

#[handler]
pub async fn list(request: &Request) -> Response {
    respond(list_page(request, StatusCode::OK, json!({})).await)
}

async fn list_page(request: &Request, status: StatusCode, extra: Value) -> Result<Response, Stop> {
    let visit = Visit::new(request).await?;
    let data = visit.query("topics", json!({})).await?;
    let mut context = json!({ "added": query_params(request).get("added") });
    if let (Some(object), Value::Object(more)) = (context.as_object_mut(), extra) {
        object.extend(more);
    }
    Ok(visit.render(status, "topics.html", &data, context))
}

#[handler]
pub async fn create(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted(request, body).await?;
            let input = json!({ "name": form.text("name"), "description": form.text("description") });
            let errors = match visit.mutate("create_topic", json!({ "input": input })).await? {
                Mutation::Done(payload) => {
                    let slug = payload["topic"]["slug"].as_str().unwrap_or_default();
                    return Ok(visit.redirect(&format!("/topics?added={slug}")));
                }
                Mutation::Invalid(errors) => form_errors(&errors, "name"),
                Mutation::Refused(message) => refused(message, "name"),
            };
            list_page(request, StatusCode::UNPROCESSABLE_ENTITY, json!({ "errors": errors, "values": input })).await
        }
        .await,
    )
}

#[handler]
pub async fn show(request: &Request, Path(slug): Path<String>) -> Response {
    respond(show_page(request, &slug, StatusCode::OK, json!({})).await)
}

async fn show_page(request: &Request, slug: &str, status: StatusCode, extra: Value) -> Result<Response, Stop> {
    let visit = Visit::new(request).await?;
    let params = query_params(request);
    let after = params.get("after").filter(|a| a.len() <= 200);
    let data = visit.query("topic", json!({ "slug": slug, "after": after })).await?;
    if data["topic"].is_null() {
        return Ok(visit.not_found().await);
    }
    if let Some(target) = data["topic"]["mergedInto"]["slug"].as_str() {
        return Ok(visit.redirect(&format!("/topics/{target}?merged=1")));
    }
    let mut context = json!({ "merged": params.contains_key("merged"), "renamed": params.contains_key("renamed") });
    if let (Some(object), Value::Object(more)) = (context.as_object_mut(), extra) {
        object.extend(more);
    }
    Ok(visit.render(status, "topic.html", &data, context))
}

/// Runs a curation mutation on the topic at `slug`, then shows where it went: the topic
/// (renamed) or the one it was merged into.
async fn curate(
    request: &Request,
    body: Body,
    slug: &str,
    make: fn(&Form, Value) -> (&'static str, Value),
) -> Result<Response, Stop> {
    let (mut visit, form) = Visit::posted(request, body).await?;
    let id = visit.query("topic", json!({ "slug": slug })).await?["topic"]["id"].clone();
    if id.is_null() {
        return Ok(visit.not_found().await);
    }
    let (document, input) = make(&form, id);
    let errors = match visit.mutate(document, json!({ "input": input })).await? {
        Mutation::Done(payload) => {
            let target = payload["topic"]["slug"].as_str().unwrap_or(slug);
            let flag = if document == "rename_topic" { "renamed" } else { "merged" };
            return Ok(visit.redirect(&format!("/topics/{target}?{flag}=1")));
        }
        Mutation::Invalid(errors) => form_errors(&errors, "name"),
        Mutation::Refused(message) => refused(message, "name"),
    };
    show_page(request, slug, StatusCode::UNPROCESSABLE_ENTITY, json!({ "errors": errors, "values": input })).await
}

#[handler]
pub async fn rename(request: &Request, body: Body, Path(slug): Path<String>) -> Response {
    respond(
        curate(request, body, &slug, |form, id| {
            ("rename_topic", json!({ "id": id, "name": form.text("name"), "description": form.text("description") }))
        })
        .await,
    )
}

#[handler]
pub async fn merge(request: &Request, body: Body, Path(slug): Path<String>) -> Response {
    respond(
        curate(request, body, &slug, |form, id| ("merge_topic", json!({ "id": id, "intoId": form.text("intoId") })))
            .await,
    )
}
