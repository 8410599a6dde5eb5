//! The one rate limiter: every limit Kettle enforces on how often someone may do
//! something goes through [`RateLimiter`].
//!
//! A limit is a count per fixed window (`sign_in_account=10/900`: ten in fifteen
//! minutes), kept under a key naming the limit and its subject (an account, a client
//! address, a member). Adding to a count and reading the result is one atomic step — a
//! Lua script in Redis, a mutex in process — so a hundred parallel attempts cannot all
//! see "under the limit" before any of them is counted.
//!
//! With `KETTLE_REDIS_URL` set, counts live in Redis and every instance shares them;
//! without it they live in this process (the embedded mode has one). If Redis stops
//! answering, counting falls back to this process, so the site stays up with limits
//! per instance rather than none, and `/readyz` says so ([`RateLimiter::store_status`]).
//!
//! [`client`] finds the client's address, believing `X-Forwarded-For` only from
//! `KETTLE_TRUSTED_PROXIES`.

pub mod client;
mod memory;
mod redis_store;

use std::{
    fmt,
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::{anyhow, bail};

use crate::error::{AppError, AppResult};
pub use memory::MemoryStore;
pub use redis_store::RedisStore;

/// Every limit, by the name an operator overrides it with in `KETTLE_RATE_LIMITS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Sign-in attempts for one email, counted before the password is checked; a
    /// successful sign-in clears the count.
    SignInAccount,
    /// Failed sign-ins from one client address; past it, only accounts with no recent
    /// failure are checked (see `accounts::throttle`).
    SignInAddress,
    /// New accounts from one client address.
    RegisterAddress,
    /// Mutations by one signed-in member (writing case studies, artefacts, comments,
    /// RSVPs…).
    WritesMember,
    /// Markdown previews by one client (member, or address when signed out).
    PreviewClient,
    /// The summed complexity of the GraphQL operations one client address runs.
    GraphqlCostClient,
    /// Password reset requests from one client address (each member also gets at most a
    /// few reset links an hour, whoever asks: see `accounts::recovery`).
    PasswordResetAddress,
    /// Personal data exports one member asks for (each is a full copy of their data).
    DataExportMember,
    /// Images one member uploads (each is decoded and re-encoded, which costs CPU).
    UploadsMember,
    /// Messages the organisers send to those going to one meetup, whichever organiser
    /// writes: counted per meetup, since it is its attendees' inboxes that fill up.
    MeetupMessagesEvent,
}

impl Limit {
    pub const ALL: [Limit; 10] = [
        Limit::SignInAccount,
        Limit::SignInAddress,
        Limit::RegisterAddress,
        Limit::WritesMember,
        Limit::PreviewClient,
        Limit::GraphqlCostClient,
        Limit::PasswordResetAddress,
        Limit::DataExportMember,
        Limit::UploadsMember,
        Limit::MeetupMessagesEvent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Limit::SignInAccount => "sign_in_account",
            Limit::SignInAddress => "sign_in_address",
            Limit::RegisterAddress => "register_address",
            Limit::WritesMember => "writes_member",
            Limit::PreviewClient => "preview_client",
            Limit::GraphqlCostClient => "graphql_cost_client",
            Limit::PasswordResetAddress => "password_reset_address",
            Limit::DataExportMember => "data_export_member",
            Limit::UploadsMember => "uploads_member",
            Limit::MeetupMessagesEvent => "meetup_messages_event",
        }
    }

    pub fn default_rule(self) -> Rule {
        let rule = |count, seconds| Rule { count, window: Duration::from_secs(seconds) };
        match self {
            Limit::SignInAccount => rule(10, 15 * 60),
            Limit::SignInAddress => rule(100, 15 * 60),
            Limit::RegisterAddress => rule(30, 60 * 60),
            Limit::WritesMember => rule(300, 60 * 60),
            Limit::PreviewClient => rule(60, 60),
            Limit::GraphqlCostClient => rule(200_000, 60),
            Limit::PasswordResetAddress => rule(20, 60 * 60),
            Limit::DataExportMember => rule(3, 24 * 60 * 60),
            Limit::UploadsMember => rule(60, 60 * 60),
            Limit::MeetupMessagesEvent => rule(3, 24 * 60 * 60),
        }
    }
}

/// At most `count` in each `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub count: u64,
    pub window: Duration,
}

/// The rule for each limit: the defaults, with `KETTLE_RATE_LIMITS` overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules([Rule; 10]);

impl Default for Rules {
    fn default() -> Self {
        Rules(Limit::ALL.map(Limit::default_rule))
    }
}

impl Rules {
    pub fn get(&self, limit: Limit) -> Rule {
        self.0[limit as usize]
    }

    /// Reads `name=count/seconds, …` over the defaults.
    pub fn parse(text: &str) -> anyhow::Result<Rules> {
        let mut rules = Rules::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item.split_once('=').ok_or_else(|| anyhow!("{item:?} is not name=count/seconds"))?;
            let limit = Limit::ALL.into_iter().find(|l| l.name() == name.trim()).ok_or_else(|| {
                let names: Vec<&str> = Limit::ALL.iter().map(|l| l.name()).collect();
                anyhow!("{:?} is not a limit; the limits are {}", name.trim(), names.join(", "))
            })?;
            let (count, seconds) =
                value.split_once('/').ok_or_else(|| anyhow!("{item:?} is not name=count/seconds"))?;
            let count: u64 = count.trim().parse().map_err(|_| anyhow!("{item:?}: the count must be a whole number"))?;
            let seconds: u64 = seconds
                .trim()
                .parse()
                .map_err(|_| anyhow!("{item:?}: the window must be a whole number of seconds"))?;
            if count == 0 || !(1..=7 * 24 * 60 * 60).contains(&seconds) {
                bail!("{item:?}: the count must be at least 1 and the window from 1 second to a week");
            }
            rules.0[limit as usize] = Rule { count, window: Duration::from_secs(seconds) };
        }
        Ok(rules)
    }
}

/// A count after adding to it, and how long until its window ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    pub count: u64,
    pub resets_in: Duration,
}

/// Where counts live. Each method is one atomic step.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Adds `weight` to the count under `key`, starting a window of `window` if there was
    /// none, and returns the new count.
    async fn add(&self, key: &str, weight: u64, window: Duration) -> anyhow::Result<Count>;
    /// The count under `key` without changing it (zero when there is none).
    async fn peek(&self, key: &str) -> anyhow::Result<Count>;
    async fn clear(&self, key: &str) -> anyhow::Result<()>;
}

#[derive(Clone, Copy)]
enum Operation {
    Add(u64, Duration),
    Peek,
    Clear,
}

impl Operation {
    async fn run(self, store: &dyn Store, key: &str) -> anyhow::Result<Count> {
        match self {
            Operation::Add(weight, window) => store.add(key, weight, window).await,
            Operation::Peek => store.peek(key).await,
            Operation::Clear => store.clear(key).await.map(|()| Count { count: 0, resets_in: Duration::ZERO }),
        }
    }
}

/// How long after Redis failed the limiter counts in process without trying it again.
const REDIS_RETRY: Duration = Duration::from_secs(2);

pub struct RateLimiter {
    rules: Rules,
    redis: Option<RedisStore>,
    memory: MemoryStore,
    /// When Redis last failed (Unix ms), or 0; while recent, counts stay in process.
    redis_failed_at: AtomicI64,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter").field("rules", &self.rules).field("redis", &self.redis.is_some()).finish()
    }
}

impl RateLimiter {
    pub fn new(rules: Rules, redis: Option<RedisStore>) -> RateLimiter {
        RateLimiter { rules, redis, memory: MemoryStore::new(200_000), redis_failed_at: AtomicI64::new(0) }
    }

    pub fn in_process(rules: Rules) -> Arc<RateLimiter> {
        Arc::new(RateLimiter::new(rules, None))
    }

    pub fn rule(&self, limit: Limit) -> Rule {
        self.rules.get(limit)
    }

    fn key(limit: Limit, subject: &str) -> String {
        format!("limit:{}:{subject}", limit.name())
    }

    /// The store to use now: Redis unless it failed within [`REDIS_RETRY`].
    fn store(&self) -> Option<&RedisStore> {
        let redis = self.redis.as_ref()?;
        let failed_at = self.redis_failed_at.load(Ordering::Relaxed);
        let recently = failed_at != 0 && crate::db::now_millis() - failed_at < REDIS_RETRY.as_millis() as i64;
        (!recently).then_some(redis)
    }

    fn redis_failed(&self, err: &anyhow::Error) {
        let previous = self.redis_failed_at.swap(crate::db::now_millis(), Ordering::Relaxed);
        if previous == 0 {
            tracing::warn!(error = %format!("{err:#}"), "rate limits: Redis is not answering; counting in this process until it does");
        }
    }

    fn redis_answered(&self) {
        if self.redis_failed_at.swap(0, Ordering::Relaxed) != 0 {
            tracing::info!("rate limits: Redis answers again; counts are shared again");
        }
    }

    /// Runs one operation on Redis, falling back to this process when Redis fails.
    async fn apply(&self, key: &str, operation: Operation) -> AppResult<Count> {
        if let Some(redis) = self.store() {
            match operation.run(redis, key).await {
                Ok(count) => {
                    self.redis_answered();
                    return Ok(count);
                }
                Err(err) => self.redis_failed(&err),
            }
        }
        operation.run(&self.memory, key).await.map_err(AppError::internal)
    }

    /// Counts `weight` against `limit` for `subject`, refusing with `RATE_LIMITED` when
    /// that takes the count past the limit. The attempt is counted either way.
    pub async fn check(&self, limit: Limit, subject: &str, weight: u64) -> AppResult<Count> {
        let count = self.add(limit, subject, weight).await?;
        if count.count > self.rule(limit).count {
            return Err(AppError::RateLimited { retry_after: count.resets_in.max(Duration::from_secs(1)) });
        }
        Ok(count)
    }

    /// Adds to a count without refusing.
    pub async fn add(&self, limit: Limit, subject: &str, weight: u64) -> AppResult<Count> {
        self.apply(&Self::key(limit, subject), Operation::Add(weight, self.rule(limit).window)).await
    }

    pub async fn peek(&self, limit: Limit, subject: &str) -> AppResult<Count> {
        self.apply(&Self::key(limit, subject), Operation::Peek).await
    }

    pub async fn clear(&self, limit: Limit, subject: &str) -> AppResult<()> {
        self.apply(&Self::key(limit, subject), Operation::Clear).await.map(|_| ())
    }

    /// For `/readyz`: where counts are kept right now.
    pub fn store_status(&self) -> &'static str {
        match (&self.redis, self.store()) {
            (None, _) => "in process",
            (Some(_), Some(_)) => "redis",
            (Some(_), None) => "in process (redis is not answering)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_over_the_defaults() {
        let rules = Rules::parse("sign_in_account=3/60, graphql_cost_client = 10/1").unwrap();
        assert_eq!(rules.get(Limit::SignInAccount), Rule { count: 3, window: Duration::from_secs(60) });
        assert_eq!(rules.get(Limit::GraphqlCostClient), Rule { count: 10, window: Duration::from_secs(1) });
        assert_eq!(rules.get(Limit::RegisterAddress), Limit::RegisterAddress.default_rule());
        assert_eq!(Rules::parse("").unwrap(), Rules::default());
        for bad in
            ["nope=1/1", "sign_in_account=1", "sign_in_account=x/1", "sign_in_account=0/1", "sign_in_account=1/0"]
        {
            assert!(Rules::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn refuses_past_the_limit_and_counts_atomically() {
        let rules = Rules::parse("register_address=5/60").unwrap();
        let limiter = RateLimiter::in_process(rules);
        let attempts = (0..50).map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.check(Limit::RegisterAddress, "192.0.2.1", 1).await.is_ok() })
        });
        let allowed =
            futures_util::future::join_all(attempts).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
        assert_eq!(allowed, 5);
        let err = limiter.check(Limit::RegisterAddress, "192.0.2.1", 1).await.unwrap_err();
        assert!(matches!(err, AppError::RateLimited { retry_after } if retry_after <= Duration::from_secs(60)));
        // Another subject has its own count; clearing forgets.
        limiter.check(Limit::RegisterAddress, "192.0.2.2", 1).await.unwrap();
        limiter.clear(Limit::RegisterAddress, "192.0.2.1").await.unwrap();
        assert_eq!(limiter.peek(Limit::RegisterAddress, "192.0.2.1").await.unwrap().count, 0);
    }

    #[tokio::test]
    async fn falls_back_to_counting_in_process_when_redis_is_down() {
        // Nothing listens on port 1: every Redis call fails at once.
        let redis = RedisStore::new(redis::Client::open("redis://127.0.0.1:1").unwrap(), "test".into());
        let limiter = RateLimiter::new(Rules::parse("register_address=2/60").unwrap(), Some(redis));
        assert_eq!(limiter.store_status(), "redis");
        limiter.check(Limit::RegisterAddress, "a", 1).await.unwrap();
        assert_eq!(limiter.store_status(), "in process (redis is not answering)");
        limiter.check(Limit::RegisterAddress, "a", 1).await.unwrap();
        assert!(limiter.check(Limit::RegisterAddress, "a", 1).await.is_err());
    }
}
