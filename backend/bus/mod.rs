//! The bus: how a notification written on one instance reaches a member connected to
//! any instance, and how the dispatcher learns that there is work.
//!
//! Two implementations sit behind [`Bus`]:
//! - [`InProcessBus`] (embedded mode, no `KETTLE_REDIS_URL`): a delivery goes straight
//!   to this process's [`Hub`].
//! - [`RedisBus`]: a delivery is published on a Redis channel (under
//!   `KETTLE_REDIS_PREFIX`) that every instance subscribes to, over one subscription
//!   connection each, and each hands it to its own hub.
//!
//! The bus is for speed only: the notification rows are committed before anything is
//! published, so a client that missed a delivery replays it from the database with its
//! cursor (see `notifications::graphql::live`). That is what happens when Redis goes away:
//! publishing drops what it cannot send (it never makes the dispatcher wait), the
//! subscription reconnects by itself with backoff, and once it is back every live
//! subscription on the instance is ended with [`CloseReason::Resync`], so that its
//! client reconnects and replays what came meanwhile. `/readyz` shows [`BusStatus`].
//!
//! For the dispatcher: after each committed batch, [`Bus::publish`]; to wait for work,
//! [`Bus::events_announced`], which completes after [`Bus::events_committed`] was called
//! on this or (through Redis) any instance.

mod hub;
mod memory;
mod redis_bus;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use hub::{Admission, CloseReason, ConnectionSignal, Holder, Hub, Subscription, SUBSCRIBER_BUFFER};
pub use memory::InProcessBus;
pub use redis_bus::RedisBus;

use crate::notifications::Notification;

/// New inbox notifications, at most one per recipient, after the commit that wrote them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub notifications: Vec<Notification>,
}

/// What live delivery is doing, for `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusStatus {
    InProcess,
    /// Not connected to Redis yet (the server has just started).
    RedisConnecting,
    RedisConnected,
    /// Redis went away: live delivery is paused until it is back.
    RedisReconnecting,
    Stopped,
}

impl BusStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BusStatus::InProcess => "in-process",
            BusStatus::RedisConnecting => "redis: connecting",
            BusStatus::RedisConnected => "redis: connected",
            BusStatus::RedisReconnecting => "redis: reconnecting",
            BusStatus::Stopped => "stopped",
        }
    }
}

/// Counts for operators and benchmarks.
#[derive(Debug, Default)]
pub struct BusStats {
    /// Deliveries handed to [`Bus::publish`].
    pub published: AtomicU64,
    /// Deliveries that could not be sent (Redis down, or the queue to it full).
    pub dropped: AtomicU64,
    /// Times every live subscription here was told to reconnect and replay.
    pub resyncs: AtomicU64,
    last_publish: Mutex<Option<Instant>>,
}

impl BusStats {
    fn published_now(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
        *self.last_publish.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// When [`Bus::publish`] was last called: right after the dispatcher's commit.
    pub fn last_publish(&self) -> Option<Instant> {
        *self.last_publish.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub trait Bus: Send + Sync {
    /// Carries new inbox notifications to their members' live subscriptions, on every
    /// instance. Call it after the commit that wrote them. It returns at once and never
    /// fails: what cannot be sent is dropped (and counted), and the clients concerned
    /// catch up from the database.
    fn publish(&self, delivery: Delivery);

    /// Announces that outbox events were committed, so that the dispatcher (on whichever
    /// instance holds its lease) wakes now rather than at its next sweep. Cheap: calls
    /// made while an announcement is still on its way are folded into it.
    fn events_committed(&self);

    /// Completes once events were announced since it last completed (an announcement
    /// made while nobody waits is kept for the next wait).
    fn events_announced(&self) -> BoxFuture<'static, ()>;

    /// This instance's live subscribers.
    fn hub(&self) -> &Arc<Hub>;

    fn status(&self) -> BusStatus;

    fn stats(&self) -> &BusStats;

    /// Starts the bus's background work (connecting to Redis); the server calls it once
    /// it serves.
    fn start(&self);

    /// Stops the background work and closes every live connection (going away).
    fn stop(&self);
}

/// The bus for this configuration: Redis when there is a client for it, else in process.
pub fn build(redis: Option<redis::Client>, prefix: &str) -> Arc<dyn Bus> {
    match redis {
        Some(client) => Arc::new(RedisBus::new(client, prefix)),
        None => Arc::new(InProcessBus::new()),
    }
}
