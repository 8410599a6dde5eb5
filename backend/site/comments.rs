//! Commenting from the site: the forms on case study and artefact pages post here. A
//! comment that worked goes back to its place on the page; one with a problem comes
//! back on a page of its own with the text kept, so nothing typed is lost.

use poem::{handler, http::StatusCode, web::Path, Body, Request, Response};
use serde_json::{json, Value};

use super::{
    forms::{form_errors, refused, respond},
    node_path, page_id,
    visit::{Mutation, Stop, Visit},
    writing,
};

/// The comment form on a page of its own: to fix a comment that was refused, or to
/// edit one (`number`).
async fn render_form(
    visit: &Visit,
    status: StatusCode,
    subject: Value,
    number: Option<&str>,
    values: Value,
    extra: Value,
) -> Result<Response, Stop> {
    if subject.is_null() {
        return Ok(visit.not_found().await);
    }
    let data = json!({ "viewer": visit.query("viewer", json!({})).await?["viewer"], "subject": subject });
    let mut context = json!({ "number": number, "values": values });
    if let (Some(object), Value::Object(more)) = (context.as_object_mut(), extra) {
        object.extend(more);
    }
    Ok(visit.render(status, "comment_form.html", &data, context))
}

/// Where a comment shows: its subject's page, at the comment.
fn comment_anchor(subject_id: &str, comment_id: &str) -> String {
    let number = crate::graphql::relay::parse_global_id_of("Comment", comment_id).unwrap_or_default();
    format!("{}#comment-{number}", node_path(subject_id))
}

#[handler]
pub async fn post(request: &Request, body: Body) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted_with_image(request, body).await?;
            let subject_id = form.text("subjectId");
            let parent_id = Some(form.text("parentId")).filter(|p| !p.is_empty());
            if form.get("action") == Some("upload") {
                let mut values = json!({ "body": form.text("body"), "subjectId": subject_id, "parentId": parent_id });
                let (status, next) = writing::add_image(&mut visit, &form, &mut values, "body").await?;
                let subject = visit.query("comment_subject", json!({ "id": subject_id })).await?["subject"].clone();
                return render_form(&visit, status, subject, None, values, next).await;
            }
            let input = json!({ "subjectId": subject_id, "parentId": parent_id, "body": form.text("body") });
            let errors = match visit.mutate("post_comment", json!({ "input": input })).await? {
                Mutation::Done(payload) => {
                    let comment_id = payload["comment"]["id"].as_str().unwrap_or_default();
                    return Ok(visit.redirect(&comment_anchor(&subject_id, comment_id)));
                }
                Mutation::Invalid(errors) => form_errors(&errors, "body"),
                Mutation::Refused(message) => refused(message, "body"),
            };
            let subject = visit.query("comment_subject", json!({ "id": subject_id })).await?["subject"].clone();
            let values = json!({ "body": form.text("body"), "subjectId": subject_id, "parentId": parent_id });
            render_form(&visit, StatusCode::UNPROCESSABLE_ENTITY, subject, None, values, json!({ "errors": errors }))
                .await
        }
        .await,
    )
}

/// The comment behind `/comments/<number>` if the visitor wrote it.
async fn own_comment(visit: &Visit, number: &str) -> Result<Result<Value, Response>, Stop> {
    let Some(id) = page_id("Comment", number) else { return Ok(Err(visit.not_found().await)) };
    let comment = visit.query("comment", json!({ "id": id })).await?["comment"].clone();
    if comment.is_null() {
        return Ok(Err(visit.not_found().await));
    }
    if comment["viewerIsAuthor"] != true {
        let message = "Only the member who wrote a comment can edit it.";
        return Ok(Err(visit.error_page(StatusCode::FORBIDDEN, "You cannot edit this comment", message).await));
    }
    Ok(Ok(comment))
}

#[handler]
pub async fn edit_form(request: &Request, Path(number): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let comment = match own_comment(&visit, &number).await? {
                Ok(comment) => comment,
                Err(page) => return Ok(page),
            };
            let values = json!({ "body": comment["body"] });
            render_form(&visit, StatusCode::OK, comment["subject"].clone(), Some(&number), values, Value::Null).await
        }
        .await,
    )
}

#[handler]
pub async fn edit(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, form) = Visit::posted_with_image(request, body).await?;
            let comment = match own_comment(&visit, &number).await? {
                Ok(comment) => comment,
                Err(page) => return Ok(page),
            };
            if form.get("action") == Some("upload") {
                let mut values = json!({ "body": form.text("body") });
                let (status, next) = writing::add_image(&mut visit, &form, &mut values, "body").await?;
                return render_form(&visit, status, comment["subject"].clone(), Some(&number), values, next).await;
            }
            let input = json!({ "id": comment["id"], "body": form.text("body") });
            let errors = match visit.mutate("edit_comment", json!({ "input": input })).await? {
                Mutation::Done(_) => {
                    let subject_id = comment["subject"]["id"].as_str().unwrap_or_default();
                    return Ok(visit.redirect(&comment_anchor(subject_id, comment["id"].as_str().unwrap_or_default())));
                }
                Mutation::Invalid(errors) => form_errors(&errors, "body"),
                Mutation::Refused(message) => refused(message, "body"),
            };
            let values = json!({ "body": form.text("body") });
            let subject = comment["subject"].clone();
            render_form(
                &visit,
                StatusCode::UNPROCESSABLE_ENTITY,
                subject,
                Some(&number),
                values,
                json!({ "errors": errors }),
            )
            .await
        }
        .await,
    )
}

/// Asks before deleting a comment, showing it.
#[handler]
pub async fn delete_form(request: &Request, Path(number): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let Some(id) = page_id("Comment", &number) else { return Ok(visit.not_found().await) };
            let data = visit.query("comment_delete", json!({ "id": id })).await?;
            let comment = &data["comment"];
            if comment.is_null() || comment["deleted"] == true {
                return Ok(visit.not_found().await);
            }
            if comment["viewerCanDelete"] != true {
                let message = "Only the member who wrote a comment, and the moderators, can delete it.";
                return Ok(visit.error_page(StatusCode::FORBIDDEN, "You cannot delete this comment", message).await);
            }
            Ok(visit.render(StatusCode::OK, "comment_delete.html", &data, json!({ "number": number })))
        }
        .await,
    )
}

#[handler]
pub async fn delete(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, _) = Visit::posted(request, body).await?;
            let Some(id) = page_id("Comment", &number) else { return Ok(visit.not_found().await) };
            let comment = visit.query("comment", json!({ "id": id })).await?["comment"].clone();
            if comment.is_null() {
                return Ok(visit.not_found().await);
            }
            match visit.mutate("delete_comment", json!({ "input": { "id": id } })).await? {
                Mutation::Done(_) => {
                    let subject = node_path(comment["subject"]["id"].as_str().unwrap_or_default());
                    Ok(visit.redirect(&format!("{subject}#comments")))
                }
                Mutation::Invalid(_) | Mutation::Refused(_) => Ok(visit.not_found().await),
            }
        }
        .await,
    )
}
