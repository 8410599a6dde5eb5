//! Proving who holds an address, and what that proof allows: verifying an address (on
//! registration and on a change of address), resetting a forgotten password, and the
//! security mail around them ("someone tried to register with your address", "your
//! address is being changed").
//!
//! A link carries a random 256-bit token; only its SHA-256 is stored, as for sessions
//! ([`super::credentials`]), so a copy of the database opens nothing. A token is used
//! once: the statement that marks it used is guarded by
//! `used_at IS NULL AND expires_at > now` and runs in the transaction that acts on it,
//! so two uses at the same moment succeed once (PostgreSQL re-checks the guard after
//! waiting for the other's row lock; SQLite's write transactions run one at a time). A
//! new link of a purpose ends the member's older live ones, so only the latest mail
//! works. At most [`LINKS_PER_HOUR`] links of a purpose are made for a member in an
//! hour, counted under the member's row lock; past that nothing is sent, and the caller
//! answers exactly as if it had been, since a reset request must not reveal whether an
//! address has an account.
//!
//! Security mail (all of it here) has no unsubscribe link and goes even to addresses
//! that are unverified or bouncing: it is how a member gets back in.

use serde_json::json;
use sqlx::Row;

use super::{credentials, normalize_email, Member, NewMember};
use crate::{
    db::{self, Db, Dialect, Tx},
    error::AppResult,
    mail::{self, Mailer, Outgoing},
};

const HOUR_MS: i64 = 60 * 60 * 1000;
/// How long a verification link works: long enough to find the mail the next day.
pub const VERIFY_LIFETIME_MS: i64 = 24 * HOUR_MS;
/// How long a password reset link works: short, as it is as good as the password.
pub const RESET_LIFETIME_MS: i64 = HOUR_MS;
/// Links of one purpose made for one member in an hour: enough to retry, too few to
/// flood someone's inbox through us.
pub const LINKS_PER_HOUR: i64 = 5;
/// Longer than any token we make; anything longer is refused before hashing.
const TOKEN_MAX: usize = 100;

crate::text_enum! {
    /// What a link is for.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Purpose {
        VerifyEmail => "verify_email",
        ResetPassword => "reset_password",
    }
}

impl Purpose {
    fn lifetime_ms(self) -> i64 {
        match self {
            Purpose::VerifyEmail => VERIFY_LIFETIME_MS,
            Purpose::ResetPassword => RESET_LIFETIME_MS,
        }
    }

    /// The site path a link of this purpose opens.
    fn path(self, secret: &str) -> String {
        match self {
            Purpose::VerifyEmail => format!("/verify-email/{secret}"),
            Purpose::ResetPassword => format!("/reset-password/{secret}"),
        }
    }
}

/// A link that still works, as its holder may see it (without using it).
#[derive(Clone, Debug)]
pub struct LiveLink {
    pub purpose: Purpose,
    pub member_id: i64,
    /// The address the link was sent to (for a verification, the one it confirms).
    pub email: String,
    pub expires_at: i64,
}

/// A link just made, to put in a message.
struct Issued {
    id: i64,
    secret: String,
}

/// Makes a link of `purpose` for the member, sent to `email`, ending their older live
/// ones; `None` once they have had [`LINKS_PER_HOUR`] in the last hour.
async fn issue(
    tx: &mut Tx,
    dialect: Dialect,
    member_id: i64,
    purpose: Purpose,
    email: &str,
    now: i64,
) -> AppResult<Option<Issued>> {
    // The member's row lock makes the count and the insert one step on PostgreSQL, so
    // requests at once cannot all slip under the cap (SQLite's write lock does already).
    sqlx::query(&format!("SELECT id FROM members WHERE id = $1{}", dialect.for_update()))
        .bind(member_id)
        .fetch_optional(&mut **tx)
        .await?;
    let recent: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM account_tokens WHERE member_id = $1 AND purpose = $2 AND created_at > $3",
    )
    .bind(member_id)
    .bind(purpose.as_str())
    .bind(now - HOUR_MS)
    .fetch_one(&mut **tx)
    .await?;
    if recent >= LINKS_PER_HOUR {
        tracing::info!(member_id, purpose = purpose.as_str(), "no link sent: too many in the last hour");
        return Ok(None);
    }
    // Older links stop working: only the latest mail counts.
    sqlx::query(
        "UPDATE account_tokens SET expires_at = $1 \
         WHERE member_id = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(member_id)
    .bind(purpose.as_str())
    .execute(&mut **tx)
    .await?;
    let secret = credentials::new_token("");
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO account_tokens (member_id, purpose, token_hash, email, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(member_id)
    .bind(purpose.as_str())
    .bind(credentials::token_hash(&secret))
    .bind(email.trim())
    .bind(now)
    .bind(now + purpose.lifetime_ms())
    .fetch_one(&mut **tx)
    .await?;
    Ok(Some(Issued { id, secret }))
}

/// The link behind a token, if it still works; using it is another matter.
pub async fn live_link(db: &Db, secret: &str, now: i64) -> AppResult<Option<LiveLink>> {
    if secret.is_empty() || secret.len() > TOKEN_MAX {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT purpose, member_id, email, expires_at FROM account_tokens \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(credentials::token_hash(secret))
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(LiveLink {
        purpose: row.try_get("purpose")?,
        member_id: row.try_get("member_id")?,
        email: row.try_get::<Option<String>, _>("email")?.unwrap_or_default(),
        expires_at: row.try_get("expires_at")?,
    }))
}

/// Marks a live token of `purpose` used and returns its member and address; `None` when
/// it is unknown, used, expired or for something else. The guard makes this the one
/// use, however many try at once.
async fn use_token(tx: &mut Tx, secret: &str, purpose: Purpose, now: i64) -> AppResult<Option<(i64, String)>> {
    if secret.is_empty() || secret.len() > TOKEN_MAX {
        return Ok(None);
    }
    let row = sqlx::query(
        "UPDATE account_tokens SET used_at = $1 \
         WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
         RETURNING member_id, email",
    )
    .bind(now)
    .bind(credentials::token_hash(secret))
    .bind(purpose.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        Some(row) => {
            Ok(Some((row.try_get("member_id")?, row.try_get::<Option<String>, _>("email")?.unwrap_or_default())))
        }
        None => Ok(None),
    }
}

/// The address and display name mail to the member goes to, read inside `tx`.
async fn addressee(tx: &mut Tx, member_id: i64) -> AppResult<Option<(String, String)>> {
    let row = sqlx::query("SELECT email, display_name FROM members WHERE id = $1")
        .bind(member_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(row) => Some((row.try_get("email")?, row.try_get("display_name")?)),
        None => None,
    })
}

/// Who a verification link goes to: a member, by name, at the address it confirms
/// (theirs, or the one they are changing to).
struct Recipient<'a> {
    member_id: i64,
    display_name: &'a str,
    email: &'a str,
    /// A change of address, not a new account.
    change: bool,
}

/// Queues a verification link; `Some(token id)` unless the hourly cap stopped it.
async fn queue_verification(
    tx: &mut Tx,
    dialect: Dialect,
    mailer: &Mailer,
    to: Recipient<'_>,
    now: i64,
) -> AppResult<Option<i64>> {
    let Recipient { member_id, display_name, email, change } = to;
    let Some(link) = issue(tx, dialect, member_id, Purpose::VerifyEmail, email, now).await? else {
        return Ok(None);
    };
    let outgoing = Outgoing {
        key: format!("verify:{}", link.id),
        member_id: Some(member_id),
        to_address: email,
        to_name: display_name,
        template: "verify_email",
        list: None,
        subject: "Confirm your email address for Kettle".to_string(),
        context: json!({
            "display_name": display_name,
            "email": email.trim(),
            "change": change,
            "path": Purpose::VerifyEmail.path(&link.secret),
            "hours": VERIFY_LIFETIME_MS / HOUR_MS,
        }),
    };
    mail::enqueue(tx, mailer, outgoing).await?;
    Ok(Some(link.id))
}

// ---------------------------------------------------------------------------------------
// Registration

/// Registers a member and sends the link to verify their address, in one transaction. An
/// address that already has an account gets a "someone tried to register with your
/// address" message instead (at most one an hour), and the caller answers the same way:
/// `None` here, a new member otherwise.
pub async fn register(db: &Db, mailer: &Mailer, new: NewMember<'_>) -> AppResult<Option<Member>> {
    let now = db::now_millis();
    let email = new.email.trim().to_string();
    let mut tx = db.begin_write().await?;
    let member = super::insert_member_in(&mut tx, new).await?;
    match &member {
        Some(member) => {
            let to =
                Recipient { member_id: member.id, display_name: &member.display_name, email: &email, change: false };
            queue_verification(&mut tx, db.dialect, mailer, to, now).await?;
        }
        None => {
            let existing: Option<(i64, String, String)> =
                sqlx::query_as("SELECT id, email, display_name FROM members WHERE email_normalized = $1")
                    .bind(normalize_email(&email))
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some((id, address, name)) = existing {
                let outgoing = Outgoing {
                    // One an hour at most, however many tries: a flood of registrations
                    // must not become a flood of mail to the address's owner.
                    key: format!("register_attempt:{id}:{}", now / HOUR_MS),
                    member_id: Some(id),
                    to_address: &address,
                    to_name: &name,
                    template: "register_attempt",
                    list: None,
                    subject: "Someone tried to create a Kettle account with your email address".to_string(),
                    context: json!({ "display_name": name, "email": address }),
                };
                mail::enqueue(&mut tx, mailer, outgoing).await?;
            }
        }
    }
    tx.commit().await?;
    mailer.queued();
    Ok(member)
}

// ---------------------------------------------------------------------------------------
// Verification

/// The outcome of following a verification link.
// Returned once per request and matched at once: boxing the member would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
pub enum Verified {
    /// The address is verified (and, for a change, now the member's).
    Done(Member),
    /// Unknown, used or expired: nothing changed.
    Invalid,
    /// The new address of a change belongs to another account now: nothing changed.
    Taken,
}

/// Uses a verification link: the address it was sent to is verified and, if it differs
/// from the member's (a change of address), becomes theirs. Their next digest is set
/// from then on.
pub async fn verify_email(db: &Db, secret: &str) -> AppResult<Verified> {
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    let Some((member_id, email)) = use_token(&mut tx, secret, Purpose::VerifyEmail, now).await? else {
        return Ok(Verified::Invalid);
    };
    // Empty only for rows no code of ours writes; verify the current address then.
    let new_address = (!email.trim().is_empty()).then(|| email.trim().to_string());
    let updated = sqlx::query(
        "UPDATE members SET email = COALESCE($1, email), email_normalized = COALESCE($2, email_normalized), \
         email_verified_at = $3, email_bouncing_at = NULL, updated_at = $3 WHERE id = $4",
    )
    .bind(new_address.as_deref())
    .bind(new_address.as_deref().map(normalize_email))
    .bind(now)
    .bind(member_id)
    .execute(&mut *tx)
    .await;
    match updated {
        Ok(_) => {}
        // Dropping the transaction undoes the token's use too: nothing changed.
        Err(err) if db::is_unique_violation(&err, "members", "email_normalized") => return Ok(Verified::Taken),
        Err(err) => return Err(err.into()),
    }
    // Reset links went to the address as it was; the account is no longer theirs to reset.
    sqlx::query(
        "UPDATE account_tokens SET expires_at = $1 \
         WHERE member_id = $2 AND purpose = 'reset_password' AND used_at IS NULL AND expires_at > $1 AND email <> $3",
    )
    .bind(now)
    .bind(member_id)
    .bind(email.trim())
    .execute(&mut *tx)
    .await?;
    mail::digest::reschedule(&mut tx, member_id, now).await?;
    tx.commit().await?;
    tracing::info!(member_id, "email address verified");
    match super::member_by_id(db, member_id).await? {
        Some(member) => Ok(Verified::Done(member)),
        None => Ok(Verified::Invalid),
    }
}

/// Where [`resend_verification`] sent the link, or why it did not.
pub enum Resent {
    /// Sent (or, past the hourly cap, quietly not) to this address.
    To(String),
    /// The address is verified and no change is waiting.
    NothingToVerify,
}

/// Sends the member a fresh verification link: for the address they are changing to, if
/// a change is waiting, or else for their own address if it is unverified.
pub async fn resend_verification(db: &Db, mailer: &Mailer, member_id: i64) -> AppResult<Resent> {
    let now = db::now_millis();
    let Some(member) = super::member_by_id(db, member_id).await? else { return Ok(Resent::NothingToVerify) };
    let pending = pending_email(db, &member).await?;
    let (address, change) = match pending {
        Some(address) => (address, true),
        None if member.email_verified_at.is_none() => (member.email.clone(), false),
        None => return Ok(Resent::NothingToVerify),
    };
    let mut tx = db.begin_write().await?;
    let to = Recipient { member_id: member.id, display_name: &member.display_name, email: &address, change };
    queue_verification(&mut tx, db.dialect, mailer, to, now).await?;
    tx.commit().await?;
    mailer.queued();
    Ok(Resent::To(address))
}

/// The address the member is changing to and has not confirmed yet: the one their
/// latest live verification link is for, when it is not their address already.
pub async fn pending_email(db: &Db, member: &Member) -> AppResult<Option<String>> {
    let email: Option<Option<String>> = sqlx::query_scalar(
        "SELECT email FROM account_tokens WHERE member_id = $1 AND purpose = 'verify_email' \
         AND used_at IS NULL AND expires_at > $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(member.id)
    .bind(db::now_millis())
    .fetch_optional(&db.pool)
    .await?;
    Ok(email.flatten().filter(|e| normalize_email(e) != normalize_email(&member.email)))
}

// ---------------------------------------------------------------------------------------
// Changing address

/// Starts a change of address: a verification link to the new address (which becomes
/// the member's only when it is followed) and a notice to the current one, so that
/// someone who took over a session cannot quietly move the account away. Whether the new
/// address belongs to someone else is not checked here: the answer must not tell.
pub async fn request_email_change(db: &Db, mailer: &Mailer, member: &Member, new_email: &str) -> AppResult<()> {
    let now = db::now_millis();
    let new_email = new_email.trim();
    let mut tx = db.begin_write().await?;
    let Some((current, name)) = addressee(&mut tx, member.id).await? else { return Ok(()) };
    let to = Recipient { member_id: member.id, display_name: &name, email: new_email, change: true };
    if let Some(token_id) = queue_verification(&mut tx, db.dialect, mailer, to, now).await? {
        let outgoing = Outgoing {
            key: format!("email_changed:{token_id}"),
            member_id: Some(member.id),
            to_address: &current,
            to_name: &name,
            template: "email_changed",
            list: None,
            subject: "Your Kettle email address is being changed".to_string(),
            context: json!({ "display_name": name, "old_email": current, "new_email": new_email }),
        };
        mail::enqueue(&mut tx, mailer, outgoing).await?;
    }
    tx.commit().await?;
    mailer.queued();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Passwords

/// Sends a password reset link to the member with this address, if there is one. The
/// caller answers the same either way.
pub async fn request_password_reset(db: &Db, mailer: &Mailer, email: &str) -> AppResult<()> {
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    let member: Option<(i64, String, String)> =
        sqlx::query_as("SELECT id, email, display_name FROM members WHERE email_normalized = $1")
            .bind(normalize_email(email))
            .fetch_optional(&mut *tx)
            .await?;
    let Some((member_id, address, name)) = member else {
        tracing::info!("password reset asked for an address without an account");
        return Ok(());
    };
    if let Some(link) = issue(&mut tx, db.dialect, member_id, Purpose::ResetPassword, &address, now).await? {
        let outgoing = Outgoing {
            key: format!("reset:{}", link.id),
            member_id: Some(member_id),
            to_address: &address,
            to_name: &name,
            template: "reset_password",
            list: None,
            subject: "Reset your Kettle password".to_string(),
            context: json!({
                "display_name": name,
                "email": address,
                "path": Purpose::ResetPassword.path(&link.secret),
                "minutes": RESET_LIFETIME_MS / 60_000,
            }),
        };
        mail::enqueue(&mut tx, mailer, outgoing).await?;
    }
    tx.commit().await?;
    mailer.queued();
    Ok(())
}

/// Uses a reset link: sets the password (already hashed), ends every session of the
/// member and cancels a change of address waiting for confirmation, in one transaction. Following the link proved they get mail at the address it
/// went to, so if that is still theirs, it counts as verified. `None` for a link that
/// does not work: nothing changed.
pub async fn reset_password(db: &Db, secret: &str, password_hash: &str) -> AppResult<Option<Member>> {
    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    let Some((member_id, email)) = use_token(&mut tx, secret, Purpose::ResetPassword, now).await? else {
        return Ok(None);
    };
    let verified = sqlx::query(
        "UPDATE members SET password_hash = $1, updated_at = $2, \
         email_verified_at = CASE WHEN email_normalized = $3 THEN $2 ELSE email_verified_at END, \
         email_bouncing_at = CASE WHEN email_normalized = $3 THEN NULL ELSE email_bouncing_at END \
         WHERE id = $4",
    )
    .bind(password_hash)
    .bind(now)
    .bind(normalize_email(&email))
    .bind(member_id)
    .execute(&mut *tx)
    .await?;
    if verified.rows_affected() == 0 {
        return Ok(None);
    }
    credentials::end_sessions_in(&mut tx, member_id, None).await?;
    // A change of address waiting for confirmation may be an intruder's way to keep the
    // account (the notice to the old address says to reset the password): it ends too.
    // Addresses are ASCII (see `check_email`), so LOWER matches `normalize_email`.
    sqlx::query(
        "UPDATE account_tokens SET expires_at = $1 \
         WHERE member_id = $2 AND purpose = 'verify_email' AND used_at IS NULL AND expires_at > $1 \
         AND LOWER(email) <> (SELECT email_normalized FROM members WHERE id = $2)",
    )
    .bind(now)
    .bind(member_id)
    .execute(&mut *tx)
    .await?;
    mail::digest::reschedule(&mut tx, member_id, now).await?;
    tx.commit().await?;
    tracing::info!(member_id, "password reset by link; every session ended");
    super::member_by_id(db, member_id).await
}

/// Sets a signed-in member's password (already hashed) and ends their other sessions,
/// keeping `keep` (the one that asked) so they stay signed in where they are.
pub async fn change_password(db: &Db, member_id: i64, password_hash: &str, keep: Option<i64>) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE members SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(password_hash)
        .bind(db::now_millis())
        .bind(member_id)
        .execute(&mut *tx)
        .await?;
    credentials::end_sessions_in(&mut tx, member_id, keep).await?;
    tx.commit().await?;
    tracing::info!(member_id, "password changed; other sessions ended");
    Ok(())
}

/// Marks the member's address verified because an identity provider vouches for it (or
/// an administrator made the account), unless it already is. `email` is the address
/// vouched for: nothing happens if it is not the member's.
pub async fn mark_verified(tx: &mut Tx, member_id: i64, email: &str, now: i64) -> AppResult<()> {
    let changed = sqlx::query(
        "UPDATE members SET email_verified_at = $1, updated_at = $1 \
         WHERE id = $2 AND email_normalized = $3 AND email_verified_at IS NULL",
    )
    .bind(now)
    .bind(member_id)
    .bind(normalize_email(email))
    .execute(&mut **tx)
    .await?;
    if changed.rows_affected() > 0 {
        mail::digest::reschedule(tx, member_id, now).await?;
    }
    Ok(())
}

/// [`mark_verified`] in a transaction of its own.
pub async fn mark_verified_now(db: &Db, member_id: i64, email: &str) -> AppResult<()> {
    let mut tx = db.begin_write().await?;
    mark_verified(&mut tx, member_id, email, db::now_millis()).await?;
    tx.commit().await?;
    Ok(())
}
