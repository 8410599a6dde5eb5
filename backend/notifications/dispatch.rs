//! The dispatcher: turns outbox events into notification rows, on one instance at a time.
//!
//! Every instance runs [`Dispatcher::run`]; the one holding the `dispatcher` lease does the
//! work, the others wait to take the lease over when it expires (its holder died or lost
//! the database). A batch is: read pending events in id order, plan each one's
//! recipients, then in one transaction renew the lease (which fails, and so rolls the
//! batch back, if another instance took it over), insert the rows (unique per event and
//! recipient, so a batch done twice adds nothing), group them, and mark the events
//! dispatched. Only after the commit are the new inbox rows published on the bus. A
//! process killed mid-batch has committed nothing of it; whoever holds the lease next
//! does it again, whole.
//!
//! It wakes when the bus says events were committed, and sweeps every few seconds
//! regardless (which also renews the lease), so nothing waits long if a wake-up is lost.

use std::{collections::HashMap, sync::Arc, time::Duration};

use rand::RngCore;
use sqlx::Row;

use super::{recipients, Channel, Notification, COLUMNS};
use crate::{
    db::{self, Db, Tx},
    error::AppResult,
    outbox::{self, Recorded},
};

/// The lease's name in `leases`.
const LEASE: &str = "dispatcher";
/// How long a lease lasts without renewal: how long a dead holder delays dispatching.
const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often the holder sweeps (and so renews) even without a wake-up, and how often a
/// standby instance checks whether the lease is free.
const SWEEP: Duration = Duration::from_secs(2);
/// Events per batch; one transaction each.
const BATCH: i64 = 200;
/// Events planned concurrently (each holds a pooled connection while it queries).
const PLANS_AT_ONCE: usize = 4;
/// Rows per INSERT statement (12 parameters each, well under both databases' limits).
const ROWS_PER_INSERT: usize = 400;

/// How long things are kept: dispatched events, notifications after they are read,
/// digest rows, and any notification at all.
pub const KEEP_DISPATCHED_EVENTS: Duration = Duration::from_secs(30 * 24 * 3600);
pub const KEEP_READ_NOTIFICATIONS: Duration = Duration::from_secs(90 * 24 * 3600);
pub const KEEP_DIGEST_NOTIFICATIONS: Duration = Duration::from_secs(60 * 24 * 3600);
pub const KEEP_ANY_NOTIFICATION: Duration = Duration::from_secs(365 * 24 * 3600);

fn millis(duration: Duration) -> i64 {
    duration.as_millis() as i64
}

/// What one batch did.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: usize,
    /// The new inbox notifications, for live delivery.
    pub delivered: Vec<Notification>,
    /// How many rows were written (inbox and digest).
    pub written: usize,
}

/// This process's claim on dispatching.
pub struct Dispatcher {
    db: Db,
    /// Names this process in the lease table.
    holder: String,
    fence: std::sync::Mutex<Option<i64>>,
}

impl Dispatcher {
    pub fn new(db: Db) -> Arc<Dispatcher> {
        let mut bytes = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut bytes);
        let holder = format!("{}-{}", std::process::id(), bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        Arc::new(Dispatcher { db, holder, fence: std::sync::Mutex::new(None) })
    }

    fn fence(&self) -> Option<i64> {
        *self.fence.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_fence(&self, fence: Option<i64>) {
        *self.fence.lock().unwrap_or_else(|e| e.into_inner()) = fence;
    }

    /// Whether this process holds the lease (as far as it last knew).
    pub fn is_holder(&self) -> bool {
        self.fence().is_some()
    }

    /// Takes the lease if it is free or expired.
    async fn acquire(&self) -> AppResult<Option<i64>> {
        let now = db::now_millis();
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, fence, expires_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = $2, fence = leases.fence + 1, expires_at = $3 \
             WHERE leases.expires_at < $4 RETURNING fence",
        )
        .bind(LEASE)
        .bind(&self.holder)
        .bind(now + millis(LEASE_TTL))
        .bind(now)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(match row {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        })
    }

    /// Gives the lease up, so another instance takes over at once (on a clean stop).
    pub async fn release(&self) {
        if self.fence().is_none() {
            return;
        }
        let released = sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(LEASE)
            .bind(&self.holder)
            .execute(&self.db.pool)
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %err, "could not release the dispatcher lease; another instance takes over when it expires");
        }
        self.set_fence(None);
    }

    /// One round: take the lease if needed, then dispatch one batch. `None` when another
    /// instance holds the lease.
    pub async fn round(&self) -> AppResult<Option<Batch>> {
        if self.fence().is_none() {
            match self.acquire().await? {
                Some(fence) => {
                    tracing::info!(fence, "this instance now dispatches notifications");
                    self.set_fence(Some(fence));
                }
                None => return Ok(None),
            }
        }
        let Some(fence) = self.fence() else { return Ok(None) };
        let batch = dispatch_batch(&self.db, &self.holder, fence).await?;
        if batch.is_none() {
            tracing::warn!(fence, "the dispatcher lease was taken over; this instance stops dispatching");
            self.set_fence(None);
        }
        Ok(batch)
    }

    /// Dispatches for as long as the process runs: `publish` gets each batch's new inbox
    /// notifications after its commit; `woken` completes when events may be waiting.
    pub async fn run<W, F>(self: Arc<Self>, publish: impl Fn(Vec<Notification>), woken: W)
    where
        W: Fn() -> F,
        F: std::future::Future<Output = ()>,
    {
        let mut last_prune = 0i64;
        loop {
            let more = match self.round().await {
                Ok(Some(batch)) => {
                    if !batch.delivered.is_empty() {
                        publish(batch.delivered);
                    }
                    let now = db::now_millis();
                    if now - last_prune > 3_600_000 {
                        last_prune = now;
                        match prune(&self.db, now).await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(rows = n, "pruned old events and notifications"),
                            Err(err) => tracing::warn!(error = ?err, "could not prune old events and notifications"),
                        }
                    }
                    batch.events as i64 == BATCH
                }
                Ok(None) => false,
                Err(err) => {
                    tracing::warn!(error = ?err, "dispatching notifications failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    false
                }
            };
            if !more {
                tokio::select! {
                    _ = woken(), if self.is_holder() => {}
                    _ = tokio::time::sleep(SWEEP) => {}
                }
            }
        }
    }
}

/// Dispatches every pending event now, taking the lease for the while (or, if a server
/// holds it, waiting until it has dispatched them), and returns how many notifications
/// this call wrote. For `kettle seed`
/// and benchmarks, where no server runs the dispatcher; live subscribers are not told.
pub async fn dispatch_pending(db: &Db) -> AppResult<usize> {
    let dispatcher = Dispatcher::new(db.clone());
    let mut written = 0;
    let result = loop {
        match dispatcher.round().await {
            Ok(Some(batch)) if batch.events == 0 => break Ok(written),
            Ok(Some(batch)) => written += batch.written,
            // A server holds the lease: it is dispatching, so wait until nothing is left.
            Ok(None) => match pending_count(db).await {
                Ok(0) => break Ok(written),
                Ok(_) => tokio::time::sleep(SWEEP).await,
                Err(err) => break Err(err),
            },
            Err(err) => break Err(err),
        }
    };
    dispatcher.release().await;
    result
}

/// How many events wait to be dispatched.
pub async fn pending_count(db: &Db) -> AppResult<i64> {
    let row = sqlx::query("SELECT COUNT(*) FROM outbox_events WHERE dispatched_at IS NULL").fetch_one(&db.pool).await?;
    Ok(row.try_get(0)?)
}

/// Dispatches up to one batch of pending events under the lease `(holder, fence)`.
/// `None` when the lease is no longer ours (nothing was written).
pub async fn dispatch_batch(db: &Db, holder: &str, fence: i64) -> AppResult<Option<Batch>> {
    let rows = sqlx::query(&format!(
        "SELECT {} FROM outbox_events WHERE dispatched_at IS NULL ORDER BY id LIMIT $1",
        outbox::COLUMNS
    ))
    .bind(BATCH)
    .fetch_all(&db.pool)
    .await?;
    let events: Vec<Recorded> = rows.iter().map(Recorded::from_row).collect::<sqlx::Result<_>>()?;
    for event in &events {
        if let Err(reason) = &event.event {
            tracing::error!(event = event.id, %reason, "an outbox event does not decode; it is skipped");
        }
    }
    // Planning only reads, and each event's plan is independent of the others': a few at
    // once keep the pool busy instead of paying each query's round trip in turn.
    let mut plans = Vec::with_capacity(events.len());
    for chunk in events.chunks(PLANS_AT_ONCE) {
        let mut planning = Vec::with_capacity(chunk.len());
        for event in chunk {
            planning.push(recipients::plan(db, event));
        }
        for plan in futures_util::future::join_all(planning).await {
            plans.push(plan?);
        }
    }

    let now = db::now_millis();
    let mut tx = db.begin_write().await?;
    // The fence, not the expiry, says whether the lease is still ours: it rises only when
    // another instance takes the lease over. So a batch whose planning outlasted the
    // lease still commits if nobody took over meanwhile, and one that was overtaken
    // cannot (on PostgreSQL this UPDATE waits for the taker's row lock).
    let renewed = sqlx::query("UPDATE leases SET expires_at = $1 WHERE name = $2 AND holder = $3 AND fence = $4")
        .bind(now + millis(LEASE_TTL))
        .bind(LEASE)
        .bind(holder)
        .bind(fence)
        .execute(&mut *tx)
        .await?;
    if renewed.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    if events.is_empty() {
        tx.commit().await?;
        return Ok(Some(Batch::default()));
    }

    let before: i64 =
        sqlx::query("SELECT COALESCE(MAX(id), 0) FROM notifications").fetch_one(&mut *tx).await?.try_get(0)?;
    let rows: Vec<(&Recorded, &recipients::Plan, &recipients::Recipient)> = events
        .iter()
        .zip(&plans)
        .flat_map(|(event, plan)| plan.recipients.iter().map(move |r| (event, plan, r)))
        .collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len()).map(|i| format!("({})", db::placeholders(i * 12 + 1, 12))).collect();
        let sql = format!(
            "INSERT INTO notifications (member_id, event_id, kind, channel, subject_type, subject_id, subject_title, \
             actor_id, group_key, summary, path, created_at) VALUES {} ON CONFLICT (event_id, member_id) DO NOTHING",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (event, plan, recipient) in chunk {
            let group_key = match &plan.group_key {
                Some(key) => key.clone(),
                None => format!("event:{}", event.id),
            };
            query = query
                .bind(recipient.member_id)
                .bind(event.id)
                .bind(recipient.kind.as_str())
                .bind(recipient.channel.as_str())
                .bind(plan.subject_type)
                .bind(plan.subject_id)
                .bind(plan.subject_title.as_str())
                .bind(event.actor_id)
                .bind(group_key)
                .bind(recipient.summary.as_str())
                .bind(recipient.path.as_str())
                .bind(event.created_at);
        }
        query.execute(&mut *tx).await?;
    }
    for chunk in events.chunks(500) {
        let sql = format!(
            "UPDATE outbox_events SET dispatched_at = $1 WHERE dispatched_at IS NULL AND id IN ({})",
            db::placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(now);
        for event in chunk {
            query = query.bind(event.id);
        }
        query.execute(&mut *tx).await?;
    }
    // Every new row starts as its own group; then inbox rows join an unread group with
    // their key. Grouping is worked out here rather than in one UPDATE with correlated
    // subqueries, whose plan PostgreSQL may get badly wrong on a table it has no
    // statistics for yet (a fresh instance's first big batch went quadratic).
    let written =
        sqlx::query("UPDATE notifications SET group_id = id WHERE id > $1").bind(before).execute(&mut *tx).await?;
    let written = written.rows_affected() as usize;
    let mut delivered = if written == 0 {
        Vec::new()
    } else {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS}, group_key FROM notifications WHERE id > $1 AND channel = 'inbox' ORDER BY id"
        ))
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
        let mut keyed = Vec::with_capacity(rows.len());
        for row in &rows {
            keyed.push((Notification::from_row(row)?, row.try_get::<String, _>("group_key")?));
        }
        group(&mut tx, before, &mut keyed).await?;
        keyed.into_iter().map(|(n, _)| n).collect()
    };
    delivered.sort_by_key(|n| n.id);
    tx.commit().await?;
    debug_assert!(delivered.iter().all(|n| n.channel == Channel::Inbox));
    Ok(Some(Batch { events: events.len(), delivered, written }))
}

/// Puts new inbox rows (`rows`, in id order, with their group keys) into groups: each
/// joins the unread group its member already has for its key, or the first new row's
/// with that key, and counts its group's size so far. Rows whose key is their own event
/// (`event:…`) stand alone and need nothing.
async fn group(tx: &mut Tx, before: i64, rows: &mut [(Notification, String)]) -> AppResult<()> {
    let mut members_by_key: HashMap<&str, Vec<i64>> = HashMap::new();
    for (notification, key) in rows.iter() {
        if !key.starts_with("event:") {
            members_by_key.entry(key.as_str()).or_default().push(notification.member_id);
        }
    }
    // (member, key) → (group id, size so far). `+id` keeps SQLite, which has no
    // statistics here, from walking a member's whole inbox by id instead of using the
    // unread index.

    let mut groups: HashMap<(i64, String), (i64, i64)> = HashMap::new();
    for (key, members) in members_by_key {
        for chunk in members.chunks(500) {
            let sql = format!(
                "SELECT member_id, MIN(group_id), COUNT(*) FROM notifications WHERE group_key = $1 AND read_at IS NULL \
                 AND channel = 'inbox' AND +id <= $2 AND member_id IN ({}) GROUP BY member_id",
                db::placeholders(3, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(key).bind(before);
            for member in chunk {
                query = query.bind(*member);
            }
            for row in query.fetch_all(&mut **tx).await? {
                groups.insert((row.try_get(0)?, key.to_string()), (row.try_get(1)?, row.try_get(2)?));
            }
        }
    }
    let mut moves: HashMap<i64, Vec<i64>> = HashMap::new();
    for (notification, key) in rows.iter_mut() {
        if key.starts_with("event:") {
            continue;
        }
        let entry = groups.entry((notification.member_id, key.clone())).or_insert((notification.id, 0));
        entry.1 += 1;
        notification.group_size = entry.1;
        if entry.0 != notification.id {
            notification.group_id = entry.0;
            moves.entry(entry.0).or_default().push(notification.id);
        }
    }
    for (group_id, ids) in moves {
        for chunk in ids.chunks(500) {
            let sql =
                format!("UPDATE notifications SET group_id = $1 WHERE id IN ({})", db::placeholders(2, chunk.len()));
            let mut query = sqlx::query(&sql).bind(group_id);
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// Deletes what is past its retention; returns how many rows went.
pub async fn prune(db: &Db, now: i64) -> AppResult<u64> {
    let mut removed = 0;
    for (sql, before) in [
        (
            "DELETE FROM outbox_events WHERE dispatched_at IS NOT NULL AND dispatched_at < $1",
            now - millis(KEEP_DISPATCHED_EVENTS),
        ),
        ("DELETE FROM notifications WHERE read_at IS NOT NULL AND read_at < $1", now - millis(KEEP_READ_NOTIFICATIONS)),
        (
            "DELETE FROM notifications WHERE channel = 'digest' AND created_at < $1",
            now - millis(KEEP_DIGEST_NOTIFICATIONS),
        ),
        ("DELETE FROM notifications WHERE created_at < $1", now - millis(KEEP_ANY_NOTIFICATION)),
    ] {
        removed += sqlx::query(sql).bind(before).execute(&db.pool).await?.rows_affected();
    }
    Ok(removed)
}
