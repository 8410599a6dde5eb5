//! The `web/` folder: templates, page documents and static assets.
//!
//! Release builds embed the folder in the binary; debug builds read it from disk on every
//! request (rust-embed's behaviour), so an edited template, query or stylesheet shows on
//! reload without a rebuild.
//!
//! Static files are served under content-hashed names (`/static/app.3f2a9c1d.css`) with a
//! year-long, immutable cache lifetime: a changed file gets a new name, so browsers never
//! hold a stale copy and never need to ask again for a current one.

use poem::{
    handler,
    http::{header, StatusCode},
    web::Path,
    Response,
};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/"]
#[exclude = "*.md"]
pub struct Web;

/// A text file from `web/`, such as `templates/home.html` or `queries/home.graphql`.
pub fn text(path: &str) -> Option<String> {
    Web::get(path).map(|file| String::from_utf8_lossy(&file.data).into_owned())
}

fn short_hash(file: &rust_embed::EmbeddedFile) -> String {
    file.metadata.sha256_hash()[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The URL of a static file, with its content hash in the name. Falls back to the plain
/// name (which 404s) when the file does not exist, so a typo shows up as a broken link.
pub fn url(name: &str) -> String {
    match Web::get(&format!("static/{name}")) {
        Some(file) => {
            let hash = short_hash(&file);
            match name.rsplit_once('.') {
                Some((stem, extension)) => format!("/static/{stem}.{hash}.{extension}"),
                None => format!("/static/{name}.{hash}"),
            }
        }
        None => format!("/static/{name}"),
    }
}

/// Serves `/static/<stem>.<hash>.<ext>`. A stale hash still gets the current file, but
/// with a short cache lifetime, so a page cached across a deploy keeps its styles.
#[handler]
pub fn serve(Path(requested): Path<String>) -> Response {
    let not_found = || Response::builder().status(StatusCode::NOT_FOUND).body("Not found\n");
    let mut parts: Vec<&str> = requested.split('.').collect();
    if parts.len() < 3 || requested.contains('/') || requested.contains("..") {
        return not_found();
    }
    let hash = parts.remove(parts.len() - 2).to_string();
    let name = parts.join(".");
    let Some(file) = Web::get(&format!("static/{name}")) else { return not_found() };
    let cache = if hash == short_hash(&file) { "public, max-age=31536000, immutable" } else { "public, max-age=60" };
    Response::builder()
        .header(header::CONTENT_TYPE, file.metadata.mimetype())
        .header(header::CACHE_CONTROL, cache)
        .body(file.data.into_owned())
}

/// What crawlers may visit: everything but private and machine pages.
const ROBOTS: &str = "User-agent: *\nDisallow: /settings\nDisallow: /moderation\nDisallow: /admin\nDisallow: /graphql\nDisallow: /auth\n";

#[handler]
pub fn robots() -> Response {
    Response::builder()
        .content_type("text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=86400")
        .body(ROBOTS)
}

/// `/favicon.ico`, which browsers ask for whatever the page says: the SVG icon itself.
#[handler]
pub fn favicon() -> Response {
    match Web::get("static/favicon.svg") {
        Some(file) => Response::builder()
            .content_type("image/svg+xml")
            .header(header::CACHE_CONTROL, "public, max-age=86400")
            .body(file.data.into_owned()),
        None => Response::builder().status(StatusCode::NOT_FOUND).body("Not found\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_urls_carry_the_content_hash() {
        let css = url("app.css");
        assert!(
            css.starts_with("/static/app.") && css.ends_with(".css") && css.len() == "/static/app.12345678.css".len(),
            "{css}"
        );
        assert_eq!(url("missing.css"), "/static/missing.css");
    }
}
