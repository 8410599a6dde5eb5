//! One-click unsubscribe (RFC 8058): a link that leaves one list without signing in.
//!
//! The link carries `<member id>.<list>.<signature>`, the signature an HMAC-SHA256 of
//! the member and the list under a key every instance shares (`site_secrets`). So the
//! link cannot be forged, and it cannot be turned into another member's or another
//! list's link. A `POST` to it unsubscribes (what mail clients send, with
//! `List-Unsubscribe=One-Click`); a `GET` only shows a page with a button, so that link
//! scanners, which follow every link in a message, unsubscribe nobody.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Mailer;
use crate::{
    db::Db,
    error::AppResult,
    notifications::{inbox::MailChoice, NotificationKind},
};

/// What a member can unsubscribe from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    /// The daily or weekly digest.
    Digest,
    /// Mail at once about one kind of notification.
    Notifications(NotificationKind),
}

impl List {
    /// The list's name in links (`digest`, `mentioned`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            List::Digest => "digest",
            List::Notifications(kind) => kind.as_str(),
        }
    }

    pub fn parse(text: &str) -> Option<List> {
        match text {
            "digest" => Some(List::Digest),
            // Text from a link: an unknown list is no list, answered as a bad link.
            other => NotificationKind::parse(other).ok().map(List::Notifications),
        }
    }
}

fn signature(mailer: &Mailer, member_id: i64, list: List) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&mailer.signing_key).expect("HMAC takes a key of any length");
    mac.update(format!("unsubscribe:{member_id}:{}", list.as_str()).as_bytes());
    mac.finalize().into_bytes()[..16].to_vec()
}

/// The token for a member and a list.
pub fn token(mailer: &Mailer, member_id: i64, list: List) -> String {
    let signature: String = signature(mailer, member_id, list).iter().map(|b| format!("{b:02x}")).collect();
    format!("{member_id}.{}.{signature}", list.as_str())
}

/// The site path of the unsubscribe link (made absolute by the caller).
pub fn path(mailer: &Mailer, member_id: i64, list: List) -> String {
    format!("/unsubscribe/{}", token(mailer, member_id, list))
}

/// The member and list a token stands for, if it is one we signed.
pub fn verify(mailer: &Mailer, token: &str) -> Option<(i64, List)> {
    if token.len() > 200 {
        return None;
    }
    let mut parts = token.split('.');
    let (member, list, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || signature.len() != 32 {
        return None;
    }
    let member_id: i64 = member.parse().ok().filter(|id| *id > 0)?;
    let list = List::parse(list)?;
    let given: Vec<u8> =
        (0..16).map(|i| u8::from_str_radix(&signature[2 * i..2 * i + 2], 16).ok()).collect::<Option<_>>()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&mailer.signing_key).expect("HMAC takes a key of any length");
    mac.update(format!("unsubscribe:{member_id}:{}", list.as_str()).as_bytes());
    // Constant time: a timing difference must not reveal how much of a guess was right.
    mac.verify_truncated_left(&given).ok()?;
    Some((member_id, list))
}

/// What a list is, in words for a page or a message: "the digest", "mail about mentions".
pub fn describe(list: List) -> String {
    match list {
        List::Digest => "the digest".to_string(),
        List::Notifications(kind) => format!("mail about {}", super::notification_mail::about(kind)),
    }
}

/// Takes the member a token stands for off its list, if the token is one we signed and
/// the member still exists: the digest stops (`never`, nothing due), or the kind of
/// notification shows on the site only. Doing it again changes nothing more. `None`
/// for a forged, malformed or stale token, and then nothing changes.
pub async fn apply(db: &Db, mailer: &Mailer, token: &str) -> AppResult<Option<(i64, List)>> {
    let Some((member_id, list)) = verify(mailer, token) else { return Ok(None) };
    let now = crate::db::now_millis();
    let mut tx = db.begin_write().await?;
    let exists = sqlx::query("SELECT 1 FROM members WHERE id = $1").bind(member_id).fetch_optional(&mut *tx).await?;
    if exists.is_none() {
        tx.rollback().await?;
        return Ok(None);
    }
    match list {
        List::Digest => {
            sqlx::query("UPDATE members SET digest_frequency = 'never' WHERE id = $1")
                .bind(member_id)
                .execute(&mut *tx)
                .await?;
            super::digest::reschedule(&mut tx, member_id, now).await?;
        }
        List::Notifications(kind) => {
            crate::notifications::inbox::set_choice(&mut tx, member_id, kind, MailChoice::Site).await?;
        }
    }
    tx.commit().await?;
    Ok(Some((member_id, list)))
}
