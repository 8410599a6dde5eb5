//! `/uploads/<key>.<ext>` and `/uploads/<key>-<width>.<ext>`: the images members
//! uploaded, from Kettle's own origin.
//!
//! An address never changes what it serves, so it is cached for a year as immutable.
//! The response is only ever an image Kettle encoded itself, and carries a policy that
//! lets nothing in it run, should a browser be talked into reading it as anything else.

use poem::{
    handler,
    http::{header, StatusCode},
    web::{Data, Path},
    Response,
};

use crate::{app::AppState, uploads};

#[handler]
pub async fn serve(Path(name): Path<String>, Data(state): Data<&AppState>) -> Response {
    let not_found = || {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("text/plain; charset=utf-8")
            .header(header::CACHE_CONTROL, "public, max-age=60")
            .body("There is no such image.\n")
    };
    let Some((key, width)) = uploads::parse_address(&name) else { return not_found() };
    match uploads::file(&state.db, key, width).await {
        Ok(Some((format, data))) if name.ends_with(format.extension()) => Response::builder()
            .content_type(format.media_type())
            .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
            .header(header::CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox")
            .header(header::CONTENT_DISPOSITION, "inline")
            .body(data),
        Ok(_) => not_found(),
        Err(err) => {
            err.log_if_internal();
            Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .content_type("text/plain; charset=utf-8")
                .header(header::CACHE_CONTROL, "no-store")
                .body("The image could not be read just now; try again.\n")
        }
    }
}
