//! The home page, and the page every address no other route takes gets.

use poem::{handler, http::StatusCode, Request, Response};
use serde_json::json;

use super::{
    forms::{query_params, respond},
    visit::{Stop, Visit},
};

async fn home_page(request: &Request) -> Result<Response, Stop> {
    let visit = Visit::new(request).await?;
    let data = visit.query("home", json!({})).await?;
    let flags = query_params(request);
    let extra = json!({
        "signed_out": flags.contains_key("signed_out"),
        "account_deleted": flags.contains_key("account_deleted"),
        "draft_deleted": flags.contains_key("draft_deleted"),
    });
    Ok(visit.render(StatusCode::OK, "home.html", &data, extra))
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
