//! A member's public profile page.

use poem::{handler, http::StatusCode, web::Path, Request, Response};
use serde_json::json;

use super::{
    forms::{query_params, respond},
    visit::Visit,
};

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
