//! Reading what Kettle sent: the `.eml` files under `<data dir>/mail/`, parsed by an
//! independent MIME parser (mail-parser), not by anything of Kettle's.

use std::{path::PathBuf, time::Duration};

use mail_parser::{MessageParser, MimeHeaders};

use crate::support::TestApp;

/// One message as a reader sees it.
#[derive(Clone, Debug)]
pub struct Mail {
    pub file: PathBuf,
    /// The whole file, as written.
    pub raw: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    /// Every header, names in lower case, values as written (unfolded, decoded).
    pub headers: Vec<(String, String)>,
    /// The top-level `Content-Type` (`multipart/alternative`).
    pub content_type: String,
    /// The `text/plain` and `text/html` parts, decoded.
    pub text: String,
    pub html: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The first link in the plain-text part that starts with `prefix` (absolute).
    pub fn link(&self, prefix: &str) -> Option<String> {
        self.text
            .split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '(' || c == ')')
            .find(|word| word.starts_with(prefix))
            .map(|word| word.trim_end_matches(['.', ',']).to_string())
    }
}

/// Parses one `.eml` file.
pub fn parse(file: PathBuf) -> Mail {
    let raw = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    let message = MessageParser::default().parse(raw.as_bytes()).unwrap_or_else(|| panic!("parse {}", file.display()));
    let headers = message
        .headers()
        .iter()
        .map(|h| {
            let value = match h.value() {
                mail_parser::HeaderValue::Text(t) => t.to_string(),
                mail_parser::HeaderValue::TextList(list) => list.join(", "),
                _ => String::from_utf8_lossy(&raw.as_bytes()[h.offset_start() as usize..h.offset_end() as usize])
                    .trim()
                    .to_string(),
            };
            (h.name().to_ascii_lowercase(), value)
        })
        .collect();
    let to = message.to().and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_string).unwrap_or_default();
    let content_type = message
        .content_type()
        .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()))
        .unwrap_or_default();
    Mail {
        to,
        subject: message.subject().unwrap_or_default().to_string(),
        message_id: message.message_id().unwrap_or_default().to_string(),
        headers,
        content_type,
        text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: message.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        file,
        raw,
    }
}

/// Every message written so far, oldest first (by file name, which starts with the
/// queue id).
pub fn all(app: &TestApp) -> Vec<Mail> {
    let dir = app.data_dir().join("mail");
    let Ok(entries) = std::fs::read_dir(&dir) else { return vec![] };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files.into_iter().map(parse).collect()
}

/// The messages to `address` so far.
pub fn to(app: &TestApp, address: &str) -> Vec<Mail> {
    all(app).into_iter().filter(|m| m.to.eq_ignore_ascii_case(address)).collect()
}

/// Waits (up to 20 seconds) until a message to `address` matches `wanted`, and returns it.
pub async fn wait_for(app: &TestApp, address: &str, wanted: impl Fn(&Mail) -> bool) -> Mail {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(mail) = to(app, address).into_iter().find(|m| wanted(m)) {
            return mail;
        }
        if tokio::time::Instant::now() > deadline {
            let subjects: Vec<String> = all(app).iter().map(|m| format!("{} -> {}", m.subject, m.to)).collect();
            panic!("no matching mail to {address} within 20 s; sent so far: {subjects:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
