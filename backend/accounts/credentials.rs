//! Sign-in sessions and personal access tokens.
//!
//! Both are 256-bit random tokens shown to their holder once; only a SHA-256 of each is
//! stored, so a copy of the database signs nobody in. (A fast hash is right here: the
//! tokens are random, not guessable like passwords.) The prefix tells the two apart.
//!
//! Sessions slide: each use within the last day of their idle lifetime pushes the expiry
//! out again, up to an absolute limit, so an active member stays signed in and a stolen
//! but unused cookie dies.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{any::AnyRow, Row};

use super::{member_by_id, Member};
use crate::{
    db::{self, Db, Keyset, ListOrder, Tx},
    error::AppResult,
};

/// The session cookie's name. Behind https it carries the `__Host-` prefix, which
/// browsers accept only from a secure origin, for the whole host, with no `Domain`: a
/// neighbouring subdomain cannot plant or shadow it.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-kettle_session"
    } else {
        "kettle_session"
    }
}
const SESSION_PREFIX: &str = "kses_";
const TOKEN_PREFIX: &str = "kpat_";

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// A session unused for this long expires.
pub const SESSION_IDLE_MS: i64 = 30 * DAY_MS;
/// No session lives longer than this, however active.
pub const SESSION_MAX_MS: i64 = 180 * DAY_MS;
/// Sliding renewal writes at most once a day per session.
const SESSION_RENEW_AFTER_MS: i64 = DAY_MS;
/// `last_used_at` on access tokens is refreshed at most this often.
const TOKEN_TOUCH_MS: i64 = 60 * 60 * 1000;

pub const TOKEN_NAME_MAX: usize = 80;
pub const TOKENS_PER_MEMBER_MAX: i64 = 50;
pub const TOKEN_EXPIRY_DAYS_MAX: i32 = 366;

/// Who is making a request, and with which credential.
#[derive(Clone, Debug)]
pub struct Identity {
    pub member: Member,
    pub via: Credential,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    Session { id: i64 },
    AccessToken { id: i64 },
}

/// A random 256-bit token, base64url, after `prefix` (empty for links sent by mail).
pub(crate) fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored of a token: its SHA-256, in hex.
pub(crate) fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub struct NewSession {
    pub token: String,
    pub expires_at: i64,
}

pub async fn create_session(db: &Db, member_id: i64) -> AppResult<NewSession> {
    let token = new_token(SESSION_PREFIX);
    let now = db::now_millis();
    let expires_at = now + SESSION_IDLE_MS;
    sqlx::query("INSERT INTO sessions (member_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(member_id)
        .bind(token_hash(&token))
        .bind(now)
        .bind(expires_at)
        .execute(&db.pool)
        .await?;
    Ok(NewSession { token, expires_at })
}

/// Resolves a bearer token or session cookie to an identity. `None` for anything that
/// does not currently sign someone in: unknown, expired, revoked, or a suspended member.
pub async fn authenticate(db: &Db, token: &str) -> AppResult<Option<Identity>> {
    if token.len() > 100 {
        return Ok(None);
    }
    let now = db::now_millis();
    let hash = token_hash(token);
    let (member_id, via) = if token.starts_with(SESSION_PREFIX) {
        let row = sqlx::query(
            "SELECT id, member_id, created_at, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(&hash)
        .bind(now)
        .fetch_optional(&db.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let (id, member_id, created_at, expires_at): (i64, i64, i64, i64) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
        let renewed = (now + SESSION_IDLE_MS).min(created_at + SESSION_MAX_MS);
        if renewed - expires_at > SESSION_RENEW_AFTER_MS {
            sqlx::query("UPDATE sessions SET expires_at = $1 WHERE id = $2")
                .bind(renewed)
                .bind(id)
                .execute(&db.pool)
                .await?;
        }
        (member_id, Credential::Session { id })
    } else if token.starts_with(TOKEN_PREFIX) {
        let row = sqlx::query(
            "SELECT id, member_id FROM access_tokens WHERE token_hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(&hash)
        .bind(now)
        .fetch_optional(&db.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let (id, member_id): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        sqlx::query(
            "UPDATE access_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(now)
        .bind(id)
        .bind(now - TOKEN_TOUCH_MS)
        .execute(&db.pool)
        .await?;
        (member_id, Credential::AccessToken { id })
    } else {
        return Ok(None);
    };
    // A suspension takes effect on the next request of every session and token, and a
    // time-limited one ends by itself.
    let member = member_by_id(db, member_id).await?.filter(|m| !m.is_suspended(now));
    Ok(member.map(|member| Identity { member, via }))
}

pub async fn revoke_session(db: &Db, session_id: i64) -> AppResult<()> {
    sqlx::query("DELETE FROM sessions WHERE id = $1").bind(session_id).execute(&db.pool).await?;
    Ok(())
}

pub async fn revoke_all_sessions(db: &Db, member_id: i64) -> AppResult<()> {
    sqlx::query("DELETE FROM sessions WHERE member_id = $1").bind(member_id).execute(&db.pool).await?;
    Ok(())
}

/// Ends the member's sessions, all but `keep` (the one making the request), inside the
/// transaction that changes their password: a password someone else knew stops being
/// useful at the same moment as every session it opened.
pub(crate) async fn end_sessions_in(tx: &mut Tx, member_id: i64, keep: Option<i64>) -> AppResult<()> {
    sqlx::query("DELETE FROM sessions WHERE member_id = $1 AND ($2 IS NULL OR id <> $2)")
        .bind(member_id)
        .bind(keep)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Forgets sessions that can no longer be used. Called now and then by the server.
pub async fn delete_expired_sessions(db: &Db) -> AppResult<u64> {
    let result =
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(db::now_millis()).execute(&db.pool).await?;
    Ok(result.rows_affected())
}

/// A `Set-Cookie` value carrying a session token, or clearing it when `token` is `None`.
pub fn session_cookie(token: Option<&str>, max_age_ms: i64, secure: bool) -> String {
    let name = session_cookie_name(secure);
    let secure = if secure { "; Secure" } else { "" };
    match token {
        Some(token) => {
            format!("{name}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}", max_age_ms / 1000)
        }
        None => format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    }
}

// ---------------------------------------------------------------------------------------
// Personal access tokens

#[derive(Clone, Debug)]
pub struct AccessToken {
    pub id: i64,
    pub member_id: i64,
    pub name: String,
    pub hint: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const TOKEN_COLUMNS: &str = "id, member_id, name, token_hint, created_at, last_used_at, expires_at, revoked_at";

impl AccessToken {
    fn from_row(row: &AnyRow) -> sqlx::Result<AccessToken> {
        Ok(AccessToken {
            id: row.try_get("id")?,
            member_id: row.try_get("member_id")?,
            name: row.try_get("name")?,
            hint: row.try_get("token_hint")?,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }
}

pub enum CreateTokenOutcome {
    Created { token: AccessToken, secret: String },
    LimitReached,
}

/// Creates a token unless the member already has the maximum number of active ones.
/// The count and the insert happen under one lock, so requests at once cannot all slip
/// under the limit: SQLite's write transaction excludes other writers, and on PostgreSQL
/// (where a transaction alone does not stop two from counting the same rows) the
/// member's row is locked first, so one member's token requests queue behind each other.
pub async fn create_access_token(
    db: &Db,
    member_id: i64,
    name: &str,
    expires_in_days: Option<i32>,
) -> AppResult<CreateTokenOutcome> {
    let secret = new_token(TOKEN_PREFIX);
    let mut tx = db.begin_write().await?;
    sqlx::query(&format!("SELECT id FROM members WHERE id = $1{}", db.dialect.for_update()))
        .bind(member_id)
        .fetch_optional(&mut *tx)
        .await?;
    // After the lock: a request that waited counts expiry from when it goes ahead.
    let now = db::now_millis();
    let active: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM access_tokens WHERE member_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(member_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    if active >= TOKENS_PER_MEMBER_MAX {
        return Ok(CreateTokenOutcome::LimitReached);
    }
    let hint: String = secret.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    let sql = format!(
        "INSERT INTO access_tokens (member_id, name, token_hash, token_hint, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(member_id)
        .bind(name.trim())
        .bind(token_hash(&secret))
        .bind(hint)
        .bind(now)
        .bind(expires_in_days.map(|d| now + i64::from(d) * DAY_MS))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(CreateTokenOutcome::Created { token: AccessToken::from_row(&row)?, secret })
}

/// Revokes one of the member's own tokens; `None` when they have no such active token.
pub async fn revoke_access_token(db: &Db, member_id: i64, token_id: i64) -> AppResult<Option<AccessToken>> {
    let sql = format!(
        "UPDATE access_tokens SET revoked_at = $1 WHERE id = $2 AND member_id = $3 AND revoked_at IS NULL RETURNING {TOKEN_COLUMNS}"
    );
    let row = sqlx::query(&sql).bind(db::now_millis()).bind(token_id).bind(member_id).fetch_optional(&db.pool).await?;
    Ok(row.map(|r| AccessToken::from_row(&r)).transpose()?)
}

pub async fn access_token_by_id(db: &Db, token_id: i64) -> AppResult<Option<AccessToken>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM access_tokens WHERE id = $1");
    let row = sqlx::query(&sql).bind(token_id).fetch_optional(&db.pool).await?;
    Ok(row.map(|r| AccessToken::from_row(&r)).transpose()?)
}

/// A page of the member's tokens that are not revoked, newest first (keyset on id;
/// served by the `access_tokens_active` index).
pub async fn list_access_tokens(db: &Db, member_id: i64, keyset: &Keyset<i64>) -> AppResult<Vec<AccessToken>> {
    let order = keyset.direction(ListOrder::Descending);
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM access_tokens WHERE member_id = $1 AND revoked_at IS NULL AND {} \
         ORDER BY id {order} LIMIT $4",
        keyset.conditions("id", ListOrder::Descending, "$2", "$3")
    );
    let rows = sqlx::query(&sql)
        .bind(member_id)
        .bind(keyset.after)
        .bind(keyset.before)
        .bind(keyset.fetch)
        .fetch_all(&db.pool)
        .await?;
    Ok(rows.iter().map(AccessToken::from_row).collect::<sqlx::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let a = new_token(SESSION_PREFIX);
        let b = new_token(SESSION_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("kses_") && a.len() == 5 + 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn cookies() {
        let set = session_cookie(Some("kses_x"), SESSION_IDLE_MS, true);
        assert!(set.starts_with("__Host-kettle_session=kses_x; Path=/;"), "{set}");
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Secure"));
        assert!(session_cookie(Some("kses_x"), SESSION_IDLE_MS, false).starts_with("kettle_session=kses_x;"));
        assert!(set.contains("Max-Age=2592000"));
        assert!(!session_cookie(None, 0, false).contains("Secure"));
    }
}
