//! The member directory and a member's public profile page.

use poem::{handler, http::StatusCode, web::Path, Request, Response};
use serde_json::json;

use super::{
    forms::{query_params, respond},
    visit::Visit,
};

/// The member directory, A to Z by handle: `?q=` narrows it to handles starting with
/// what was typed (a name or a handle), `?after=` pages on. Where to find someone's
/// handle to mention them without JavaScript.
#[handler]
pub async fn directory(request: &Request) -> Response {
    respond(
        async {
            let visit = Visit::new(request).await?;
            let params = query_params(request);
            let typed: String = params.get("q").map(|q| q.chars().take(100).collect()).unwrap_or_default();
            let after = params.get("after").filter(|a| a.len() <= 200);
            let data = visit.query("members", json!({ "startingWith": typed, "after": after })).await?;
            Ok(visit.render(StatusCode::OK, "members.html", &data, json!({ "q": typed })))
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
            // Found by a handle they gave up (or typed in capitals): the address they have
            // now. Not a permanent redirect, since they may take the old handle back.
            if let Some(current) = data["member"]["handle"].as_str().filter(|current| *current != handle) {
                return Ok(visit.redirect(&format!("/members/@{current}")));
            }
            let saved = query_params(request).remove("saved");
            Ok(visit.render(StatusCode::OK, "member.html", &data, json!({ "saved": saved })))
        }
        .await,
    )
}
