//! Retention: how long Kettle keeps what it no longer needs, in one place.
//!
//! [`PERIODS`] is the schedule, read by the pruning below and shown on the privacy page,
//! so what the page promises is what the code does. [`run`] is called by the server's
//! housekeeping every hour; every step is a bounded batch through an index, and deleting
//! twice is harmless, so several instances may run it at once. Notifications and
//! dispatched events are pruned by the dispatcher too (`notifications::dispatch::prune`),
//! with the same constants; sent mail by `mail::queue::prune`.
//!
//! Rate-limit counts are not rows: in Redis each key carries its window as a TTL and
//! expires by itself; in process, the store sweeps expired windows when it fills (see
//! `limits::memory`), and a count never outlives its window by more than that.

use crate::{
    db::{self, Db},
    error::AppResult,
    mail,
    notifications::dispatch,
};

const HOUR_MS: i64 = 60 * 60 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Account tokens (verification and reset links) are kept this long after they were used
/// or expired, so "this link was already used" can still be told; then they go.
pub const ACCOUNT_TOKENS_MS: i64 = 7 * DAY_MS;
/// A provider sign-in that was started but never finished.
pub const OAUTH_STATES_MS: i64 = HOUR_MS;
/// How long a personal data export can be downloaded; it is deleted, content and all,
/// the moment it expires.
pub const DATA_EXPORT_MS: i64 = 7 * DAY_MS;

/// How many rows one statement deletes, so no prune holds a lock for long.
const BATCH: i64 = 1_000;

/// One line of the retention schedule.
#[derive(Clone, Copy, Debug)]
pub struct Period {
    /// What is kept, in plain words.
    pub what: &'static str,
    /// How long after `after` it is deleted, in milliseconds; 0 means at once.
    pub millis: i64,
    /// From when the period counts.
    pub after: &'static str,
}

/// The schedule, as the privacy page shows it.
pub const PERIODS: [Period; 9] = [
    Period { what: "Sign-in sessions", millis: 0, after: "they expire (30 days unused, 180 days at most)" },
    Period {
        what: "Email verification and password reset links",
        millis: ACCOUNT_TOKENS_MS,
        after: "they were used or expired",
    },
    Period { what: "Unfinished sign-ins with an identity provider", millis: OAUTH_STATES_MS, after: "they started" },
    Period {
        what: "Notifications you have read",
        millis: dispatch::KEEP_READ_NOTIFICATIONS.as_secs() as i64 * 1000,
        after: "you read them",
    },
    Period {
        what: "Notifications waiting for a digest",
        millis: dispatch::KEEP_DIGEST_NOTIFICATIONS.as_secs() as i64 * 1000,
        after: "they were made",
    },
    Period {
        what: "Any notification",
        millis: dispatch::KEEP_ANY_NOTIFICATION.as_secs() as i64 * 1000,
        after: "it was made",
    },
    Period {
        what: "Records of site events, once notifications were made from them",
        millis: dispatch::KEEP_DISPATCHED_EVENTS.as_secs() as i64 * 1000,
        after: "they were handled",
    },
    Period { what: "Copies of mail we sent you", millis: mail::queue::KEEP_MILLIS, after: "it was sent" },
    Period { what: "Personal data exports", millis: 0, after: "their download link expires (7 days)" },
];

/// "at once", "1 hour", "7 days": a period for people.
pub fn describe(millis: i64) -> String {
    match millis {
        0 => "at once".to_string(),
        m if m % DAY_MS == 0 => plural(m / DAY_MS, "day"),
        m if m % HOUR_MS == 0 => plural(m / HOUR_MS, "hour"),
        m => plural((m + 59_999) / 60_000, "minute"),
    }
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// What one run removed, by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub sessions: u64,
    pub account_tokens: u64,
    pub oauth_states: u64,
    pub data_exports: u64,
    pub notifications_and_events: u64,
    pub mail: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.sessions
            + self.account_tokens
            + self.oauth_states
            + self.data_exports
            + self.notifications_and_events
            + self.mail
    }
}

/// Deletes everything past its period at `now`.
pub async fn run(db: &Db, now: i64) -> AppResult<Pruned> {
    Ok(Pruned {
        sessions: batched(db, "sessions", "id", "expires_at <= $1", now).await?,
        account_tokens: batched(
            db,
            "account_tokens",
            "id",
            "(used_at IS NOT NULL AND used_at < $1) OR expires_at < $1",
            now - ACCOUNT_TOKENS_MS,
        )
        .await?,
        oauth_states: batched(db, "oauth_states", "state_hash", "expires_at <= $1", now).await?
            + batched(db, "oauth_states", "state_hash", "created_at < $1", now - OAUTH_STATES_MS).await?,
        data_exports: batched(db, "data_exports", "id", "expires_at <= $1", now).await?,
        notifications_and_events: dispatch::prune(db, now).await?,
        mail: mail::queue::prune(db, now).await?,
    })
}

/// Deletes rows of `table` matching `condition` (on `$1` = `before`), [`BATCH`] at a time.
async fn batched(db: &Db, table: &str, key: &str, condition: &str, before: i64) -> AppResult<u64> {
    let sql = format!("DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {condition} LIMIT $2)");
    let mut deleted = 0;
    loop {
        let n = sqlx::query(&sql).bind(before).bind(BATCH).execute(&db.pool).await?.rows_affected();
        deleted += n;
        if n < BATCH as u64 {
            return Ok(deleted);
        }
    }
}

/// The server's hourly housekeeping: prunes, and logs what went.
pub async fn housekeeping(db: &Db) {
    match run(db, db::now_millis()).await {
        Ok(pruned) if pruned.total() == 0 => {}
        Ok(pruned) => tracing::info!(?pruned, "pruned data past its retention period"),
        Err(err) => tracing::warn!(error = ?err, "could not prune data past its retention period"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_as_words() {
        assert_eq!(describe(0), "at once");
        assert_eq!(describe(HOUR_MS), "1 hour");
        assert_eq!(describe(7 * DAY_MS), "7 days");
        assert_eq!(describe(90 * DAY_MS), "90 days");
        assert_eq!(describe(90_000), "2 minutes");
    }
}
