//! Counts in Redis, shared by every instance.

use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::{Count, Store};

/// Adds to a count and starts its window in one step: a count whose key has no expiry
/// (a crash between two commands) cannot happen, because Redis runs the script whole.
const ADD: &str = r"
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {count, ttl}
";

/// Every call gives up after this long, so a Redis that hangs costs a request a
/// moment, not its whole time budget; the limiter then counts in process.
const TIMEOUT: Duration = Duration::from_millis(500);

pub struct RedisStore {
    client: redis::Client,
    /// Connected on first use, so a Redis that is down at start-up does not stop Kettle.
    connection: OnceCell<ConnectionManager>,
    /// Keeps Kettle's keys apart from anything else in the same Redis (`KETTLE_REDIS_PREFIX`).
    prefix: String,
    add: redis::Script,
}

impl RedisStore {
    pub fn new(client: redis::Client, prefix: String) -> RedisStore {
        RedisStore { client, connection: OnceCell::new(), prefix, add: redis::Script::new(ADD) }
    }

    async fn connection(&self) -> anyhow::Result<ConnectionManager> {
        let connection = self
            .connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(TIMEOUT))
                    .set_response_timeout(Some(TIMEOUT))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await
            .context("could not connect to Redis")?;
        Ok(connection.clone())
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn add(&self, key: &str, weight: u64, window: Duration) -> anyhow::Result<Count> {
        let mut connection = self.connection().await?;
        let mut invocation = self.add.key(self.key(key));
        invocation.arg(weight).arg(window.as_millis() as u64);
        let (count, ttl): (u64, i64) = tokio::time::timeout(TIMEOUT, invocation.invoke_async(&mut connection))
            .await
            .context("Redis did not answer in time")??;
        Ok(Count { count, resets_in: Duration::from_millis(ttl.max(0) as u64) })
    }

    async fn peek(&self, key: &str) -> anyhow::Result<Count> {
        let mut connection = self.connection().await?;
        let key = self.key(key);
        let mut pipe = redis::pipe();
        pipe.get(&key).pttl(&key);
        let (count, ttl): (Option<u64>, i64) = tokio::time::timeout(TIMEOUT, pipe.query_async(&mut connection))
            .await
            .context("Redis did not answer in time")??;
        Ok(match count {
            Some(count) if ttl > 0 => Count { count, resets_in: Duration::from_millis(ttl as u64) },
            _ => Count { count: 0, resets_in: Duration::ZERO },
        })
    }

    async fn clear(&self, key: &str) -> anyhow::Result<()> {
        let mut connection = self.connection().await?;
        let key = self.key(key);
        let mut command = redis::cmd("DEL");
        command.arg(&key);
        tokio::time::timeout(TIMEOUT, command.query_async::<i64>(&mut connection))
            .await
            .context("Redis did not answer in time")??;
        Ok(())
    }
}
