//! Slowing down, then refusing, repeated sign-ins, through the one rate limiter.
//!
//! Two counts, each in a fixed window ([`Limit::SignInAccount`], [`Limit::SignInAddress`]):
//! - **Per account** (the normalised email): every attempt is counted *before* its
//!   password is checked, in the same atomic step that reads the count, so parallel
//!   guesses cannot all slip under the limit; past a few, each attempt waits a little
//!   longer; past the limit, attempts are refused until the window ends. Signing in
//!   clears the count.
//! - **Per client address**: failures only. Past the limit the address is treated as
//!   hostile, but people behind one proxy or NAT share it, so it does not lock anyone
//!   out: attempts are slowed to the longest delay, and only accounts with no failed
//!   attempt in their current window are still checked. A member who types their
//!   password right gets in; a guesser gets one try per account, not ten.

use std::{net::IpAddr, time::Duration};

use crate::{
    error::{AppError, AppResult},
    limits::{Limit, RateLimiter},
};

/// Failures on an account after which each attempt waits.
const ACCOUNT_SLOW_AFTER: u64 = 3;
/// The share of the address limit after which attempts from it wait.
const ADDRESS_SLOW_AFTER_PERCENT: u64 = 20;
const DELAY_STEP: Duration = Duration::from_millis(100);
const DELAY_MAX: Duration = Duration::from_secs(2);

fn account_key(email: &str) -> String {
    super::normalize_email(email)
}

/// The wait before checking, after `failures` recent failures: none until `slow_after`,
/// then one step more for each.
fn delay_for(failures: u64, slow_after: u64) -> Duration {
    if failures < slow_after {
        return Duration::ZERO;
    }
    DELAY_STEP.saturating_mul(u32::try_from(failures - slow_after + 1).unwrap_or(u32::MAX)).min(DELAY_MAX)
}

/// Call before checking a password: counts the attempt, then refuses it or says how
/// long to wait before checking it, as recent failures call for.
pub async fn before_attempt(limiter: &RateLimiter, email: &str, address: Option<IpAddr>) -> AppResult<Duration> {
    let account = limiter.add(Limit::SignInAccount, &account_key(email), 1).await?;
    let account_rule = limiter.rule(Limit::SignInAccount);
    if account.count > account_rule.count {
        return Err(AppError::RateLimited { retry_after: account.resets_in.max(Duration::from_secs(1)) });
    }
    let mut delay = delay_for(account.count.saturating_sub(1), ACCOUNT_SLOW_AFTER);
    if let Some(address) = address {
        let failures = limiter.peek(Limit::SignInAddress, &address.to_string()).await?;
        let address_rule = limiter.rule(Limit::SignInAddress);
        if failures.count >= address_rule.count {
            // This attempt is the account's first in its window only if the count is 1.
            if account.count > 1 {
                return Err(AppError::RateLimited { retry_after: failures.resets_in.max(Duration::from_secs(1)) });
            }
            delay = DELAY_MAX;
        } else {
            delay = delay.max(delay_for(failures.count, address_rule.count * ADDRESS_SLOW_AFTER_PERCENT / 100));
        }
    }
    Ok(delay)
}

/// Records a failed attempt against the client's address (the account's attempt was
/// counted already).
pub async fn failed(limiter: &RateLimiter, address: Option<IpAddr>) -> AppResult<()> {
    if let Some(address) = address {
        limiter.add(Limit::SignInAddress, &address.to_string(), 1).await?;
    }
    Ok(())
}

pub async fn succeeded(limiter: &RateLimiter, email: &str) -> AppResult<()> {
    limiter.clear(Limit::SignInAccount, &account_key(email)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Rules;

    #[tokio::test]
    async fn refuses_after_the_limit_and_forgets_on_success() {
        let limiter = RateLimiter::in_process(Rules::parse("sign_in_account=4/900").unwrap());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..4 {
            before_attempt(&limiter, "Ada@example.org", Some(ip)).await.unwrap();
            failed(&limiter, Some(ip)).await.unwrap();
        }
        let err = before_attempt(&limiter, "ada@EXAMPLE.org", None).await.unwrap_err();
        assert!(matches!(err, AppError::RateLimited { retry_after } if retry_after > Duration::from_secs(60)));
        // Another account from the same address is not locked out by one account's failures.
        before_attempt(&limiter, "grace@example.org", Some(ip)).await.unwrap();
        succeeded(&limiter, "ada@example.org").await.unwrap();
        before_attempt(&limiter, "ada@example.org", Some(ip)).await.unwrap();
    }

    #[tokio::test]
    async fn a_hostile_address_still_lets_a_clean_account_try_once() {
        let limiter = RateLimiter::in_process(Rules::parse("sign_in_address=5/900").unwrap());
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        for i in 0..5 {
            let delay = before_attempt(&limiter, &format!("victim{i}@example.org"), Some(ip)).await.unwrap();
            assert!(delay < DELAY_MAX, "{delay:?}");
            failed(&limiter, Some(ip)).await.unwrap();
        }
        // Over the address limit: a member with no failures is still checked, slowly…
        assert_eq!(before_attempt(&limiter, "member@example.org", Some(ip)).await.unwrap(), DELAY_MAX);
        succeeded(&limiter, "member@example.org").await.unwrap();
        before_attempt(&limiter, "member@example.org", Some(ip)).await.unwrap();
        // …but an account that has failed once in this window gets no second try from here.
        before_attempt(&limiter, "victim0@example.org", Some(ip)).await.unwrap_err();
    }
}
