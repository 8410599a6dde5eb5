//! "Your images" (`/settings/images`): the images a member uploaded, with what they take
//! of the quota and the Markdown that shows each, and deleting one after a page that
//! asks.

use poem::{handler, http::StatusCode, web::Path, Body, Request, Response};
use serde_json::json;

use super::{
    forms::{query_params, respond},
    page_id,
    visit::{Mutation, Visit},
};

#[handler]
pub async fn list(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let params = query_params(request);
            let data = visit.query("my_images", json!({ "after": params.get("after") })).await?;
            let extra = json!({ "deleted": params.contains_key("deleted") });
            Ok(visit.render(StatusCode::OK, "settings_images.html", &data, extra))
        }
        .await,
    )
}

/// Asks before an image is deleted, showing it.
#[handler]
pub async fn delete_form(request: &Request, Path(number): Path<String>) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            if !visit.signed_in() {
                return Ok(visit.sign_in_first());
            }
            let Some(id) = page_id("Image", &number) else { return Ok(visit.not_found().await) };
            let data = visit.query("image_delete", json!({ "id": id })).await?;
            // Someone else's image, or none, is not found: whose images exist is not told.
            if data["node"]["id"].is_null() {
                return Ok(visit.not_found().await);
            }
            Ok(visit.render(StatusCode::OK, "image_delete.html", &data, json!({ "number": number })))
        }
        .await,
    )
}

#[handler]
pub async fn delete(request: &Request, body: Body, Path(number): Path<String>) -> Response {
    respond(
        async {
            let (mut visit, _) = Visit::posted(request, body).await?;
            let Some(id) = page_id("Image", &number) else { return Ok(visit.not_found().await) };
            match visit.mutate("delete_image", json!({ "input": { "id": id } })).await? {
                Mutation::Done(_) => Ok(visit.redirect("/settings/images?deleted=1")),
                Mutation::Invalid(_) | Mutation::Refused(_) => Ok(visit.not_found().await),
            }
        }
        .await,
    )
}
