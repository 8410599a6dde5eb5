//! Password hashing and the strength rule.
//!
//! Hashes are argon2id with the crate's default (OWASP-recommended) parameters. Hashing
//! takes tens of milliseconds of CPU and 19 MiB of memory by design, so it runs on the
//! blocking pool, never on an async worker thread where it would stall every other
//! request, and at most one per core at a time ([`HASHING`]): more at once would not
//! finish sooner, but each would hold its 19 MiB, so sixteen clients signing in together
//! grew the process by hundreds of megabytes. Excess requests wait their turn.

use std::sync::LazyLock;

use anyhow::anyhow;
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use tokio::sync::Semaphore;

use crate::error::{AppResult, UserError, UserErrorCode};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 256;

/// Checks a new password: length first, then zxcvbn, whose dictionaries hold the
/// commonest leaked passwords, English words and names, and which also penalises the
/// member's own email and name.
pub fn check_new_password(field: &str, password: &str, personal: &[&str]) -> Option<UserError> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Some(UserError::new(
            field,
            UserErrorCode::TooShort,
            format!("Password must be {MIN_LENGTH} characters or more."),
        ));
    }
    if length > MAX_LENGTH {
        return Some(UserError::new(
            field,
            UserErrorCode::TooLong,
            format!("Password must be {MAX_LENGTH} characters or fewer."),
        ));
    }
    // zxcvbn's cost grows with length; the first 64 characters decide the matter.
    let prefix: String = password.chars().take(64).collect();
    let estimate = zxcvbn::zxcvbn(&prefix, personal);
    if (estimate.score() as u8) < 3 {
        let hint = estimate.feedback().and_then(|f| f.warning()).map(|w| format!(" ({w})")).unwrap_or_default();
        return Some(UserError::new(
            field,
            UserErrorCode::WeakPassword,
            format!("Choose a password that is harder to guess{hint}. A few unrelated words together work well."),
        ));
    }
    None
}

/// Hashing slots: one per core.
static HASHING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(slots()));

fn slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs `work` on the blocking pool once a hashing slot is free.
async fn in_a_slot<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let _slot = HASHING.acquire().await.map_err(|e| anyhow!("the password hashing slots are closed: {e}"))?;
    tokio::task::spawn_blocking(work).await.map_err(|e| anyhow!("the password hashing task failed: {e}"))
}

pub async fn hash(password: String) -> AppResult<String> {
    Ok(in_a_slot(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow!("hashing a password failed: {e}"))
    })
    .await??)
}

/// Verifies `password` against `stored`. With no stored hash (an unknown email, or a
/// member without a password) it still does the same work against a dummy hash, so the
/// answer takes as long either way and timing does not reveal who has an account.
pub async fn verify(password: String, stored: Option<String>) -> AppResult<bool> {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(b"not a real password", &salt).expect("hashing a constant").to_string()
    });
    Ok(in_a_slot(move || -> anyhow::Result<bool> {
        let (hash, real) = match &stored {
            Some(hash) => (hash.as_str(), true),
            None => (DUMMY.as_str(), false),
        };
        let parsed = PasswordHash::new(hash).map_err(|e| anyhow!("a stored password hash is malformed: {e}"))?;
        let matches = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(real && matches)
    })
    .await??)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With every slot taken, a hash waits; it runs as soon as one is given back.
    #[tokio::test]
    async fn hashing_waits_for_a_free_slot() {
        // All of them, once any other test's hash has given its slot back.
        let taken = HASHING.acquire_many(slots() as u32).await.unwrap();
        let waiting = tokio::spawn(hash("kettle whistles over marmalade".into()));
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "a hash ran with no slot free");
        drop(taken);
        assert!(waiting.await.unwrap().unwrap().starts_with("$argon2id$"));
    }

    #[test]
    fn strength() {
        let weak = ["password123", "1234567890", "qwertyuiop", "aaaaaaaaaaaa", "iloveyou123", "Password1!"];
        for password in weak {
            assert!(check_new_password("password", password, &[]).is_some(), "{password} accepted");
        }
        assert!(check_new_password("password", "short", &[]).unwrap().code == UserErrorCode::TooShort);
        assert!(check_new_password("password", &"x".repeat(300), &[]).unwrap().code == UserErrorCode::TooLong);
        assert!(check_new_password("password", "kettle whistles over marmalade", &[]).is_none());
        // The member's own details make a password guessable.
        assert!(check_new_password("password", "ada.lovelace@example.org", &["ada.lovelace@example.org"]).is_some());
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let hashed = hash("correct horse battery staple".into()).await.unwrap();
        assert!(hashed.starts_with("$argon2id$"));
        assert!(verify("correct horse battery staple".into(), Some(hashed.clone())).await.unwrap());
        assert!(!verify("wrong horse battery staple".into(), Some(hashed)).await.unwrap());
        assert!(!verify("not a real password".into(), None).await.unwrap());
    }
}
