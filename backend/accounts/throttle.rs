//! Slowing down, then refusing, repeated failed sign-ins.
//!
//! Failures are counted per account (the normalised email) and per client address, each
//! in a window that restarts with every failure. Past a few failures each further attempt
//! waits a little longer before it is checked; past the limit attempts are refused with
//! `RATE_LIMITED` until the window runs out. A successful sign-in clears the account's
//! count. The counts live behind [`AttemptStore`]: in this process for now, and a Redis
//! store can take its place for several instances without the policy changing.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use crate::error::{AppError, AppResult};

/// Failure counts that expire `window` after the latest failure.
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// The current count under `key` and how long until it expires.
    async fn failures(&self, key: &str) -> AppResult<(u32, Duration)>;
    /// Adds a failure under `key` and restarts its window.
    async fn record_failure(&self, key: &str, window: Duration) -> AppResult<()>;
    async fn clear(&self, key: &str) -> AppResult<()>;
}

/// Counts in this process, bounded in size: when full, expired entries are swept, and if
/// it is still full new keys go uncounted rather than the memory growing without end.
pub struct InProcessAttempts {
    entries: Mutex<HashMap<String, (u32, Instant)>>,
    max_keys: usize,
}

impl InProcessAttempts {
    pub fn new(max_keys: usize) -> Self {
        InProcessAttempts { entries: Mutex::new(HashMap::new()), max_keys }
    }
}

#[async_trait]
impl AttemptStore for InProcessAttempts {
    async fn failures(&self, key: &str) -> AppResult<(u32, Duration)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        Ok(match entries.get(key) {
            Some(&(count, expires)) if expires > now => (count, expires - now),
            _ => (0, Duration::ZERO),
        })
    }

    async fn record_failure(&self, key: &str, window: Duration) -> AppResult<()> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if entries.len() >= self.max_keys && !entries.contains_key(key) {
            entries.retain(|_, (_, expires)| *expires > now);
            if entries.len() >= self.max_keys {
                return Ok(());
            }
        }
        let entry = entries.entry(key.to_string()).or_insert((0, now));
        let count = if entry.1 > now { entry.0 } else { 0 };
        *entry = (count.saturating_add(1), now + window);
        Ok(())
    }

    async fn clear(&self, key: &str) -> AppResult<()> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        Ok(())
    }
}

struct Limit {
    /// Failures after which each attempt is delayed.
    slow_after: u32,
    /// Failures after which attempts are refused.
    refuse_at: u32,
}

const WINDOW: Duration = Duration::from_secs(15 * 60);
const PER_ACCOUNT: Limit = Limit { slow_after: 3, refuse_at: 10 };
const PER_ADDRESS: Limit = Limit { slow_after: 20, refuse_at: 100 };
const DELAY_STEP: Duration = Duration::from_millis(100);
const DELAY_MAX: Duration = Duration::from_secs(1);

pub struct SignInThrottle {
    store: Box<dyn AttemptStore>,
}

impl SignInThrottle {
    pub fn new(store: Box<dyn AttemptStore>) -> Self {
        SignInThrottle { store }
    }

    fn keys(email: &str, address: Option<IpAddr>) -> [(Option<String>, Limit); 2] {
        [
            (Some(format!("sign-in:account:{}", super::normalize_email(email))), PER_ACCOUNT),
            (address.map(|a| format!("sign-in:address:{a}")), PER_ADDRESS),
        ]
    }

    /// Call before checking a password: refuses when over a limit, otherwise waits as long
    /// as recent failures call for.
    pub async fn before_attempt(&self, email: &str, address: Option<IpAddr>) -> AppResult<()> {
        let mut delay = Duration::ZERO;
        for (key, limit) in Self::keys(email, address) {
            let Some(key) = key else { continue };
            let (failures, remaining) = self.store.failures(&key).await?;
            if failures >= limit.refuse_at {
                return Err(AppError::RateLimited { retry_after: remaining });
            }
            if failures >= limit.slow_after {
                delay = delay.max((DELAY_STEP * (failures - limit.slow_after + 1)).min(DELAY_MAX));
            }
        }
        tokio::time::sleep(delay).await;
        Ok(())
    }

    pub async fn failed(&self, email: &str, address: Option<IpAddr>) -> AppResult<()> {
        for (key, _) in Self::keys(email, address) {
            if let Some(key) = key {
                self.store.record_failure(&key, WINDOW).await?;
            }
        }
        Ok(())
    }

    pub async fn succeeded(&self, email: &str) -> AppResult<()> {
        let [(Some(account), _), _] = Self::keys(email, None) else { return Ok(()) };
        self.store.clear(&account).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_after_the_limit_and_forgets_on_success() {
        let throttle = SignInThrottle::new(Box::new(InProcessAttempts::new(1000)));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..PER_ACCOUNT.refuse_at {
            throttle.failed("Ada@example.org", Some(ip)).await.unwrap();
        }
        let err = throttle.before_attempt("ada@EXAMPLE.org", None).await.unwrap_err();
        assert!(matches!(err, AppError::RateLimited { retry_after } if retry_after > Duration::from_secs(60)));
        // Another account from the same address is not locked out by one account's failures.
        throttle.before_attempt("grace@example.org", Some(ip)).await.unwrap();
        throttle.succeeded("ada@example.org").await.unwrap();
        throttle.before_attempt("ada@example.org", Some(ip)).await.unwrap();
    }

    #[tokio::test]
    async fn the_store_stays_bounded() {
        let store = InProcessAttempts::new(10);
        for i in 0..50 {
            store.record_failure(&format!("k{i}"), WINDOW).await.unwrap();
        }
        assert_eq!(store.entries.lock().unwrap().len(), 10);
        assert_eq!(store.failures("k49").await.unwrap().0, 0);
        assert_eq!(store.failures("k0").await.unwrap().0, 1);
    }
}
