//! Rendering messages from `web/templates/mail/`: `<name>.txt` for the plain-text part
//! and `<name>.html` for the HTML part, each extending its `layout`.
//!
//! The HTML is made for mail clients, which drop `<style>` blocks and external
//! stylesheets: tables for layout, styles inline on each element, no scripts, no
//! images. Every link is absolute (the `link` function), since a message has no base.
//! Templates get what the caller gives, plus `base_url`, `subject` and, for everything
//! but security mail, `unsubscribe_url`.

use std::sync::LazyLock;

use minijinja::{Environment, State};
use rust_embed::RustEmbed;
use serde_json::Value;

use crate::error::AppResult;

#[derive(RustEmbed)]
#[folder = "web/templates/mail/"]
struct MailTemplates;

/// A rendered message body, both parts.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub text: String,
    pub html: String,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_loader(|name| Ok(MailTemplates::get(name).map(|file| String::from_utf8_lossy(&file.data).into_owned())));
    // `.txt` templates are not HTML-escaped (minijinja escapes by extension).
    // Marked safe: escaping would write the slashes as `&#x2f;`, which mail clients
    // decode but spam filters read as a disguised link. The base is our configured URL
    // and paths are our own, so there is nothing to escape; quotes are still refused.
    env.add_function("link", |state: &State, path: &str| -> minijinja::Value {
        let base = state.lookup("base_url").map(|v| v.to_string()).unwrap_or_default();
        let url = absolute(&base, path);
        if url.contains(['"', '<', '>', '\'', ' ', '&']) {
            return minijinja::Value::from(url);
        }
        minijinja::Value::from_safe_string(url)
    });
    let day_date_time_zone = format!("{} (%Z)", crate::text::DAY_DATE_TIME);
    env.add_filter("datetime", move |value: i64, zone: &str| crate::text::moment(value, zone, &day_date_time_zone));
    env.add_filter("date", |value: i64, zone: &str| crate::text::moment(value, zone, "%A %-d %B %Y"));
    env
}

/// `path` made absolute against `base` (a path starting with `/`, or already absolute).
pub fn absolute(base: &str, path: &str) -> String {
    if path.starts_with("https://") || path.starts_with("http://") {
        return path.to_string();
    }
    let base = base.trim_end_matches('/');
    if path.starts_with('/') {
        format!("{base}{path}")
    } else {
        format!("{base}/{path}")
    }
}

/// Renders `<name>.txt` and `<name>.html` with `context` (an object).
pub fn render(name: &str, context: &Value) -> AppResult<Rendered> {
    // Release builds parse each template once; debug builds reload, so an edited template
    // shows in the next message without a rebuild.
    static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(environment);
    let fresh;
    let env = if cfg!(debug_assertions) {
        fresh = environment();
        &fresh
    } else {
        &*ENVIRONMENT
    };
    let render = |file: String| -> AppResult<String> {
        let template = env.get_template(&file).map_err(|e| anyhow::anyhow!("mail template {file}: {e}"))?;
        Ok(template.render(context).map_err(|e| anyhow::anyhow!("mail template {file}: {e:#}"))?)
    };
    Ok(Rendered { text: render(format!("{name}.txt"))?, html: render(format!("{name}.html"))? })
}
