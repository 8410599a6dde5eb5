//! Live delivery across instances through Redis pub/sub.
//!
//! Each instance keeps two connections to Redis, whatever the number of clients:
//! - one subscription to `<prefix>:live:deliveries` and `<prefix>:live:events`, whose
//!   messages go to this instance's hub (deliveries) or wake its dispatcher (events);
//! - one connection for publishing, fed by a bounded queue, so that [`Bus::publish`]
//!   returns at once. When Redis does not answer, what is queued is dropped and counted,
//!   and once a publication gets through again a `resync` goes first, which tells every
//!   instance to end its live subscriptions so that their clients replay from the
//!   database what was dropped.
//!
//! The subscription pings Redis every few seconds and reconnects with backoff when the
//! connection is lost; once subscribed again, it ends every live subscription on the
//! instance for the same reason (anything published meanwhile was missed here).

use std::{
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use futures_util::{future::BoxFuture, StreamExt};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use tokio::{sync::Notify, task::JoinHandle, time::Instant};

use super::{Bus, BusStats, BusStatus, CloseReason, Delivery, Hub};
use crate::notifications::Notification;

/// Publications waiting for the connection to Redis.
const QUEUE: usize = 1024;
/// Notifications per Redis message: one event for ten thousand followers is sent in
/// parts of a size Redis and the subscribers handle without a pause.
const CHUNK: usize = 500;
/// How long connecting, publishing or a ping may take.
const TIMEOUT: Duration = Duration::from_secs(1);
/// How often the subscription checks that Redis still answers.
const PING_EVERY: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// After failing to reach Redis, publications are dropped without trying for this long.
const PUBLISH_RETRY: Duration = Duration::from_secs(1);

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum WireOut<'a> {
    Delivery { notifications: &'a [Notification] },
    Resync,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum WireIn {
    Delivery { notifications: Vec<Notification> },
    Resync,
}

enum Outgoing {
    Delivery(Delivery),
    Wake,
}

const CONNECTING: u8 = 0;
const CONNECTED: u8 = 1;
const RECONNECTING: u8 = 2;
const STOPPED: u8 = 3;

struct Shared {
    client: redis::Client,
    deliveries_channel: String,
    events_channel: String,
    /// This instance's name on the events channel, so it does not wake itself twice.
    instance: String,
    hub: Arc<Hub>,
    wake: Arc<Notify>,
    status: AtomicU8,
    /// A wake-up is queued and not yet sent.
    wake_pending: AtomicBool,
    /// A delivery was dropped since the last publication that got through.
    lost: AtomicBool,
    /// When a dropped delivery was last logged (Unix ms), so an outage logs once a while.
    drop_logged_at: AtomicI64,
    stats: BusStats,
}

pub struct RedisBus {
    shared: Arc<Shared>,
    queue: tokio::sync::mpsc::Sender<Outgoing>,
    waiting: Mutex<Option<tokio::sync::mpsc::Receiver<Outgoing>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl RedisBus {
    pub fn new(client: redis::Client, prefix: &str) -> RedisBus {
        let (queue, waiting) = tokio::sync::mpsc::channel(QUEUE);
        let mut instance = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut instance);
        RedisBus {
            shared: Arc::new(Shared {
                client,
                deliveries_channel: format!("{prefix}:live:deliveries"),
                events_channel: format!("{prefix}:live:events"),
                instance: instance.iter().map(|b| format!("{b:02x}")).collect(),
                hub: Hub::new(),
                wake: Arc::new(Notify::new()),
                status: AtomicU8::new(CONNECTING),
                wake_pending: AtomicBool::new(false),
                lost: AtomicBool::new(false),
                drop_logged_at: AtomicI64::new(0),
                stats: BusStats::default(),
            }),
            queue,
            waiting: Mutex::new(Some(waiting)),
            tasks: Mutex::new(Vec::new()),
        }
    }
}

impl Bus for RedisBus {
    fn publish(&self, delivery: Delivery) {
        self.shared.stats.published_now();
        if delivery.notifications.is_empty() {
            return;
        }
        if self.queue.try_send(Outgoing::Delivery(delivery)).is_err() {
            self.shared.dropped("the queue to Redis is full");
        }
    }

    fn events_committed(&self) {
        self.shared.wake.notify_one();
        if !self.shared.wake_pending.swap(true, Ordering::AcqRel) && self.queue.try_send(Outgoing::Wake).is_err() {
            self.shared.wake_pending.store(false, Ordering::Release);
        }
    }

    fn events_announced(&self) -> BoxFuture<'static, ()> {
        let wake = self.shared.wake.clone();
        Box::pin(async move { wake.notified().await })
    }

    fn hub(&self) -> &Arc<Hub> {
        &self.shared.hub
    }

    fn status(&self) -> BusStatus {
        match self.shared.status.load(Ordering::Acquire) {
            CONNECTING => BusStatus::RedisConnecting,
            CONNECTED => BusStatus::RedisConnected,
            RECONNECTING => BusStatus::RedisReconnecting,
            _ => BusStatus::Stopped,
        }
    }

    fn stats(&self) -> &BusStats {
        &self.shared.stats
    }

    fn start(&self) {
        let Some(waiting) = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.push(tokio::spawn(subscribe_loop(self.shared.clone())));
        tasks.push(tokio::spawn(publish_loop(self.shared.clone(), waiting)));
    }

    fn stop(&self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
        self.shared.status.store(STOPPED, Ordering::Release);
        self.shared.hub.close();
    }
}

impl Shared {
    fn set_status(&self, status: u8) {
        // Stopping is final.
        let _ = self.status.fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| (s != STOPPED).then_some(status));
    }

    fn dropped(&self, why: &str) {
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        self.lost.store(true, Ordering::Release);
        let now = crate::db::now_millis();
        let last = self.drop_logged_at.load(Ordering::Relaxed);
        if now - last > 10_000
            && self.drop_logged_at.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(
                reason = why,
                dropped = self.stats.dropped.load(Ordering::Relaxed),
                "live delivery: dropped a publication; its clients will catch up from the database"
            );
        }
    }

    fn receive(&self, message: &redis::Msg) {
        let channel = message.get_channel_name();
        let payload = message.get_payload_bytes();
        if channel == self.events_channel {
            if payload != self.instance.as_bytes() {
                self.wake.notify_one();
            }
        } else if channel == self.deliveries_channel {
            match serde_json::from_slice::<WireIn>(payload) {
                Ok(WireIn::Delivery { notifications }) => {
                    self.hub.deliver(notifications);
                }
                Ok(WireIn::Resync) => self.resync("a publication was lost"),
                Err(err) => tracing::warn!(error = %err, "live delivery: ignored a message that is not a delivery"),
            }
        }
    }

    fn resync(&self, why: &str) {
        let ended = self.hub.end_all(CloseReason::Resync);
        self.stats.resyncs.fetch_add(1, Ordering::Relaxed);
        if ended > 0 {
            tracing::info!(
                subscriptions = ended,
                reason = why,
                "live delivery: told clients to reconnect and catch up"
            );
        }
    }
}

async fn connect(shared: &Shared) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = shared.client.get_async_pubsub().await?;
    pubsub.subscribe(&[&shared.deliveries_channel, &shared.events_channel]).await?;
    Ok(pubsub)
}

/// Keeps this instance subscribed for as long as the bus runs.
async fn subscribe_loop(shared: Arc<Shared>) {
    let mut backoff = BACKOFF_MIN;
    let mut outage: Option<Instant> = None;
    loop {
        match tokio::time::timeout(TIMEOUT, connect(&shared)).await {
            Ok(Ok(pubsub)) => {
                shared.set_status(CONNECTED);
                backoff = BACKOFF_MIN;
                match outage.take() {
                    Some(since) => {
                        tracing::info!(
                            seconds = since.elapsed().as_secs(),
                            "live delivery resumed: Redis answers again"
                        );
                        shared.resync("Redis was away");
                    }
                    // Clients may have subscribed before this instance did.
                    None => shared.resync("live delivery started"),
                }
                let (mut sink, mut stream) = pubsub.split();
                let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
                loop {
                    tokio::select! {
                        message = stream.next() => match message {
                            Some(message) => shared.receive(&message),
                            None => break,
                        },
                        _ = ping.tick() => {
                            if !matches!(tokio::time::timeout(TIMEOUT, sink.ping::<redis::Value>()).await, Ok(Ok(_))) {
                                break;
                            }
                        }
                    }
                }
                tracing::warn!("live delivery paused: lost the connection to Redis; reconnecting");
                outage = Some(Instant::now());
            }
            failed => {
                if outage.is_none() {
                    let error = match failed {
                        Ok(Err(err)) => err.to_string(),
                        _ => "timed out".to_string(),
                    };
                    tracing::warn!(error = %error, "live delivery paused: cannot subscribe in Redis; retrying");
                    outage = Some(Instant::now());
                }
            }
        }
        shared.set_status(RECONNECTING);
        let jitter = rand::thread_rng().gen_range(0..=backoff.as_millis() as u64 / 2);
        tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Sends what [`Bus::publish`] and [`Bus::events_committed`] queued. After a delivery was
/// dropped it also retries on its own, every [`PUBLISH_RETRY`], until it can tell every
/// instance to resync: a client must not wait for the next notification to learn that it
/// missed one.
async fn publish_loop(shared: Arc<Shared>, mut queue: tokio::sync::mpsc::Receiver<Outgoing>) {
    let mut link = Link::default();
    loop {
        let item = if shared.lost.load(Ordering::Acquire) {
            match tokio::time::timeout(PUBLISH_RETRY, queue.recv()).await {
                Ok(None) => return,
                Ok(Some(item)) => Some(item),
                Err(_) => None,
            }
        } else {
            match queue.recv().await {
                None => return,
                Some(item) => Some(item),
            }
        };
        let (channel, payloads, is_delivery) = match &item {
            None => (&shared.deliveries_channel, Vec::new(), false),
            Some(Outgoing::Wake) => {
                shared.wake_pending.store(false, Ordering::Release);
                (&shared.events_channel, vec![shared.instance.clone()], false)
            }
            Some(Outgoing::Delivery(delivery)) => {
                let payloads = delivery
                    .notifications
                    .chunks(CHUNK)
                    .filter_map(|part| serde_json::to_string(&WireOut::Delivery { notifications: part }).ok())
                    .collect();
                (&shared.deliveries_channel, payloads, true)
            }
        };
        // A connection that died while idle (Redis restarted) is replaced at once, once.
        let mut sent = false;
        for _ in 0..2 {
            let Some(redis) = link.connection(&shared.client).await else { break };
            if send_all(&shared, redis, channel, &payloads).await {
                sent = true;
                break;
            }
            link.connection = None;
        }
        if !sent {
            link.retry_at = Some(Instant::now() + PUBLISH_RETRY);
            if is_delivery {
                shared.dropped("Redis did not take a publication");
            }
        }
    }
}

/// The publishing connection, made when needed; after a failure to connect, no new try
/// for [`PUBLISH_RETRY`], so that publications are dropped at once rather than each
/// waiting for Redis.
#[derive(Default)]
struct Link {
    connection: Option<redis::aio::MultiplexedConnection>,
    retry_at: Option<Instant>,
}

impl Link {
    async fn connection(&mut self, client: &redis::Client) -> Option<&mut redis::aio::MultiplexedConnection> {
        if self.connection.is_none() {
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                return None;
            }
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT));
            match tokio::time::timeout(TIMEOUT, client.get_multiplexed_async_connection_with_config(&config)).await {
                Ok(Ok(fresh)) => {
                    self.connection = Some(fresh);
                    self.retry_at = None;
                }
                _ => {
                    self.retry_at = Some(Instant::now() + PUBLISH_RETRY);
                    return None;
                }
            }
        }
        self.connection.as_mut()
    }
}

/// Publishes `payloads`, preceded by a resync if anything was dropped since the last
/// success. A part sent twice after a retry is harmless: subscriptions skip ids they sent.
async fn send_all(
    shared: &Shared,
    redis: &mut redis::aio::MultiplexedConnection,
    channel: &str,
    payloads: &[String],
) -> bool {
    if shared.lost.load(Ordering::Acquire) {
        let resync = serde_json::to_string(&WireOut::Resync).unwrap_or_default();
        if !publish(redis, &shared.deliveries_channel, &resync).await {
            return false;
        }
        shared.lost.store(false, Ordering::Release);
        tracing::info!("live delivery: Redis takes publications again; told every instance to resync");
    }
    for payload in payloads {
        if !publish(redis, channel, payload).await {
            return false;
        }
    }
    true
}

async fn publish(connection: &mut redis::aio::MultiplexedConnection, channel: &str, payload: &str) -> bool {
    let mut command = redis::cmd("PUBLISH");
    command.arg(channel).arg(payload);
    matches!(tokio::time::timeout(TIMEOUT, command.query_async::<i64>(connection)).await, Ok(Ok(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::hub::tests::notification;

    #[test]
    fn deliveries_travel_as_tagged_json() {
        let notifications = vec![notification(5, 2)];
        let text = serde_json::to_string(&WireOut::Delivery { notifications: &notifications }).unwrap();
        assert!(text.starts_with(r#"{"type":"delivery","notifications":[{"id":5,"#), "{text}");
        assert!(
            matches!(serde_json::from_str::<WireIn>(&text).unwrap(), WireIn::Delivery { notifications } if notifications[0].id == 5)
        );
        let resync = serde_json::to_string(&WireOut::Resync).unwrap();
        assert_eq!(resync, r#"{"type":"resync"}"#);
        assert!(matches!(serde_json::from_str::<WireIn>(&resync).unwrap(), WireIn::Resync));
    }

    #[tokio::test]
    async fn publishing_without_redis_drops_and_never_waits() {
        // Nothing listens on port 1: every connection attempt fails at once.
        let bus = RedisBus::new(redis::Client::open("redis://127.0.0.1:1").unwrap(), "test");
        bus.start();
        let started = std::time::Instant::now();
        for i in 0..(QUEUE as i64 * 2) {
            bus.publish(Delivery { notifications: vec![notification(i + 1, 1)] });
        }
        assert!(started.elapsed() < Duration::from_secs(1), "publishing waited: {:?}", started.elapsed());
        // Everything is dropped, sooner (queue full) or later (no Redis).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while bus.stats().dropped.load(Ordering::Relaxed) < QUEUE as u64 * 2 {
            assert!(std::time::Instant::now() < deadline, "dropped {}", bus.stats().dropped.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(bus.status(), BusStatus::RedisReconnecting);
        bus.stop();
        assert_eq!(bus.status(), BusStatus::Stopped);
    }
}
