//! Where messages go: `.eml` files under `<data dir>/mail/` (the default, so the
//! embedded mode needs no mail server and a newcomer can open what was sent), or an SMTP
//! server (`KETTLE_SMTP_URL`).
//!
//! Also how a queued row becomes a message ([`build`]): every header is made by lettre,
//! which encodes names and subjects, so nothing a member typed can start a header of its
//! own.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use lettre::{
    message::{
        header::{Header, HeaderName, HeaderValue},
        Mailbox, MultiPart,
    },
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

use crate::config::Config;

/// The longest an SMTP server may take over any one step of a conversation, and over a
/// whole message: a stuck server must not hold the sender (and its claim) for long.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

pub enum Transport {
    /// One `.eml` file per message in this folder.
    Files(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Why a message did not go.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: the server was unreachable or busy, said 4xx, or refused
    /// us for a reason of our own (our credentials, our sender) that an operator can fix.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// The address cannot receive mail (a 5xx about the recipient): trying again is
    /// pointless, and the address is marked as bouncing.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

impl Transport {
    pub fn from_config(config: &Config) -> anyhow::Result<Transport> {
        use secrecy::ExposeSecret;
        match &config.smtp_url {
            None => Ok(Transport::Files(config.data_dir.join("mail"))),
            // lettre reads the URL's forms: `smtp://host:25` (plain), `smtp://…?tls=required`
            // (STARTTLS, port 587 by default), `smtps://…` (TLS, port 465), with
            // `user:password@` for AUTH. Its errors never quote the URL back, and neither
            // do ours: the URL may hold a password.
            Some(url) => Ok(Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(|e| anyhow::anyhow!("KETTLE_SMTP_URL is not usable: {e}"))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            )),
        }
    }

    /// Sends one message. `file_name` names it in the mail folder (`<queue id>-<template>`).
    pub async fn send(&self, file_name: &str, message: &Message) -> Result<(), SendError> {
        match self {
            Transport::Files(dir) => write_file(dir, file_name, &message.formatted())
                .await
                .map_err(|e| SendError::Temporary(format!("could not write to the mail folder: {e}"))),
            Transport::Smtp(smtp) => match tokio::time::timeout(SMTP_TIMEOUT, smtp.send(message.clone())).await {
                Err(_) => Err(SendError::Temporary(format!(
                    "the SMTP server did not finish within {} seconds",
                    SMTP_TIMEOUT.as_secs()
                ))),
                Ok(Ok(_)) => Ok(()),
                Ok(Err(err)) => Err(classify(&err)),
            },
        }
    }
}

/// Writes `<dir>/<name>.eml` whole or not at all: a reader (or a crash) never sees half a
/// message, since the file appears by a rename of a finished one.
async fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let path = dir.join(format!("{name}.eml"));
    let partial = dir.join(format!("{name}.eml.tmp"));
    let mut file = tokio::fs::File::create(&partial).await?;
    tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&partial, &path).await
}

/// Sorts a refusal into retry-later or give-up-and-mark-the-address.
///
/// Only a refusal about the *recipient* marks their address as bouncing: an enhanced
/// status `5.1.x` (bad mailbox or domain, but not `5.1.7`/`5.1.8`, which are about our
/// sender) or `5.2.1` (mailbox disabled), or, from a server without enhanced codes,
/// 550, 551 or 553. Any other 5xx — credentials refused (530, 535), relaying denied
/// (`5.7.1`), a command not understood (500–504), a full mailbox (`5.2.2`) — is no proof
/// that the address is gone, often our own configuration, and is retried with backoff
/// until it gives up; marking every member as bouncing because our password expired would
/// be far worse than a few retries.
fn classify(err: &lettre::transport::smtp::Error) -> SendError {
    let text = short(&err.to_string());
    if !err.is_permanent() {
        return SendError::Temporary(text);
    }
    let code = err.status().map(|c| c.to_string()).unwrap_or_default();
    // lettre shows a refusal as "permanent error (550): 5.1.1 no such user".
    let enhanced = text.split_once("): ").and_then(|(_, reply)| reply.split_whitespace().next()).filter(|word| {
        let parts: Vec<&str> = word.split('.').collect();
        parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    });
    let about_recipient = match enhanced {
        Some(status) => (status.starts_with("5.1.") && status != "5.1.7" && status != "5.1.8") || status == "5.2.1",
        None => matches!(code.as_str(), "550" | "551" | "553"),
    };
    if about_recipient {
        SendError::Permanent(text)
    } else {
        SendError::Temporary(text)
    }
}

/// An error short enough to keep in `mail_queue.last_error`, on one line.
pub fn short(text: &str) -> String {
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let mut short: String = one_line.chars().take(300).collect();
    if one_line.chars().count() > 300 {
        short.push('…');
    }
    short
}

/// What a queued row holds to make a message from.
#[derive(Clone, Debug)]
pub struct Outbound {
    pub to_address: String,
    pub to_name: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// `<…@host>`, the same on every attempt.
    pub message_id: String,
    /// Set on everything but security mail.
    pub unsubscribe_url: Option<String>,
}

/// Builds the message: `multipart/alternative` (text, then HTML), with `List-Unsubscribe`
/// and `List-Unsubscribe-Post` (RFC 8058) when there is an unsubscribe link. An `Err` is a
/// message that can never be built (an address lettre cannot read), not a delivery failure.
pub fn build(from: &Mailbox, mail: &Outbound, date: SystemTime) -> Result<Message, String> {
    let to_address =
        mail.to_address.trim().parse().map_err(|e| format!("the recipient's address is not usable: {e}"))?;
    // lettre encodes the name (RFC 2047) and quotes it, so a name holding CR, LF, quotes or
    // commas stays one display name; dropping control characters first keeps it tidy too.
    let to_name = one_line(&mail.to_name);
    let to = Mailbox::new(Some(to_name).filter(|n| !n.is_empty()), to_address);
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(one_line(&mail.subject))
        .message_id(Some(one_line(&mail.message_id)))
        .date(date)
        .header(AutoSubmitted);
    if let Some(url) = &mail.unsubscribe_url {
        builder = builder.header(ListUnsubscribe(one_line(url))).header(ListUnsubscribePost);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(mail.text_body.clone(), mail.html_body.clone()))
        .map_err(|e| format!("the message could not be built: {e}"))
}

/// `text` without control characters (CR and LF above all): what may go in a header.
fn one_line(text: &str) -> String {
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `Auto-Submitted: auto-generated` (RFC 3834): tells auto-responders not to answer.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// `List-Unsubscribe: <https://…/unsubscribe/…>` (RFC 2369).
#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.trim().trim_start_matches('<').trim_end_matches('>').to_string()))
    }

    fn display(&self) -> HeaderValue {
        // The link is ours (made by `Mailer::link`, ASCII), so it goes as written: an
        // encoder must not fold or encode inside the angle brackets.
        let value = format!("<{}>", self.0);
        HeaderValue::dangerous_new_pre_encoded(Self::name(), value.clone(), value)
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): the link unsubscribes
/// with one POST, without a page in between.
#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(name: &str, unsubscribe: Option<&str>) -> Outbound {
        Outbound {
            to_address: "ada@example.org".into(),
            to_name: name.into(),
            subject: "Hello\r\nBcc: evil@example.org".into(),
            text_body: "Hello, world.".into(),
            html_body: "<p>Hello, world.</p>".into(),
            message_id: "<abc@kettle.example.org>".into(),
            unsubscribe_url: unsubscribe.map(str::to_string),
        }
    }

    fn formatted(mail: &Outbound) -> String {
        let from: Mailbox = "Kettle <noreply@kettle.example.org>".parse().unwrap();
        String::from_utf8(build(&from, mail, SystemTime::UNIX_EPOCH).unwrap().formatted()).unwrap()
    }

    fn headers(raw: &str) -> Vec<&str> {
        raw.split("\r\n\r\n").next().unwrap().split("\r\n").filter(|l| !l.starts_with([' ', '\t'])).collect()
    }

    #[test]
    fn names_and_subjects_cannot_add_headers() {
        let raw = formatted(&outbound("Ada\r\nBcc: x@example.org", None));
        let names: Vec<&str> = headers(&raw).iter().filter_map(|l| l.split(':').next()).collect();
        assert!(!names.iter().any(|n| n.eq_ignore_ascii_case("bcc")), "{raw}");
        assert_eq!(names.iter().filter(|n| n.eq_ignore_ascii_case("to")).count(), 1, "{raw}");
        assert!(!names.iter().any(|n| n.eq_ignore_ascii_case("list-unsubscribe")), "{raw}");
    }

    #[test]
    fn list_mail_carries_one_click_unsubscribe() {
        let url = "https://kettle.example.org/unsubscribe/12.digest.0123456789abcdef0123456789abcdef";
        let raw = formatted(&outbound("Ada", Some(url)));
        let lines = headers(&raw);
        assert!(lines.contains(&format!("List-Unsubscribe: <{url}>").as_str()), "{raw}");
        assert!(lines.contains(&"List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{raw}");
        assert!(lines.contains(&"Auto-Submitted: auto-generated"), "{raw}");
        assert!(lines.contains(&"Message-ID: <abc@kettle.example.org>"), "{raw}");
    }

    #[test]
    fn short_errors_are_one_line() {
        assert_eq!(short("a\r\nb"), "a  b");
        assert_eq!(short(&"x".repeat(400)).chars().count(), 301);
    }
}
