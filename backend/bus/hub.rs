//! This instance's live subscribers, by member, and the signals that end their
//! connections.
//!
//! Every instance has one hub whatever the bus: a delivery, from this process or from
//! Redis, is handed to the subscriptions of each notification's member through a
//! *bounded* mailbox per subscription. Handing over never waits: a subscription whose
//! mailbox is full is too slow, and is ended (its connection closed) rather than let it
//! hold up everyone else or grow without bound; its client reconnects and replays from
//! its cursor. The map is read under a shared lock for a whole delivery, so one event with
//! ten thousand recipients takes the lock once.
//!
//! The hub also counts the open connections (for their limits) and keeps the signal
//! that closes each, so that shutting down reaches every one.

use std::{
    collections::{HashMap, VecDeque},
    future::poll_fn,
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering},
        Arc, Mutex, RwLock,
    },
    task::{Poll, Waker},
};

use tokio::sync::Notify;

use crate::notifications::Notification;

/// Notifications one subscription may have waiting before it counts as too slow: more
/// than one dispatcher batch can give one member. Unused room costs nothing (the channel
/// allocates as it fills).
pub const SUBSCRIBER_BUFFER: usize = 256;

/// Why the server ends a live connection; each maps to a WebSocket close code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CloseReason {
    /// The client did not take its notifications as fast as they came.
    TooSlow = 1,
    /// Live delivery was interrupted (Redis went away, or a publication was lost) and
    /// has resumed: whatever came meanwhile is in the database, so reconnect and replay.
    Resync = 2,
    /// The server is shutting down.
    ShuttingDown = 3,
}

impl CloseReason {
    fn from_u8(value: u8) -> Option<CloseReason> {
        match value {
            1 => Some(CloseReason::TooSlow),
            2 => Some(CloseReason::Resync),
            3 => Some(CloseReason::ShuttingDown),
            _ => None,
        }
    }
}

/// Raised by the hub to tell one connection to close, and why. The first reason wins.
#[derive(Debug, Default)]
pub struct ConnectionSignal {
    reason: AtomicU8,
    notify: Notify,
}

impl ConnectionSignal {
    pub fn new() -> Arc<ConnectionSignal> {
        Arc::new(ConnectionSignal::default())
    }

    pub fn raise(&self, reason: CloseReason) {
        if self.reason.compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            // A stored permit: a connection that is not waiting right now still sees it.
            self.notify.notify_one();
        }
    }

    pub fn reason(&self) -> Option<CloseReason> {
        CloseReason::from_u8(self.reason.load(Ordering::Acquire))
    }

    /// Completes once a reason was raised.
    pub async fn raised(&self) -> CloseReason {
        loop {
            if let Some(reason) = self.reason() {
                return reason;
            }
            self.notify.notified().await;
        }
    }
}

/// What waits for one subscription: at most [`SUBSCRIBER_BUFFER`] notifications, and
/// why the hub ended it. Small on purpose (no channel machinery): an idle subscriber's
/// mailbox is one allocation of a few dozen bytes.
#[derive(Default)]
struct Mailbox {
    state: Mutex<MailboxState>,
}

#[derive(Default)]
struct MailboxState {
    items: VecDeque<Arc<Notification>>,
    waker: Option<Waker>,
    ended: Option<CloseReason>,
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, MailboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a notification; `false` when the mailbox is full.
    fn put(&self, notification: Arc<Notification>) -> bool {
        let waker = {
            let mut state = self.lock();
            if state.ended.is_some() {
                return true;
            }
            if state.items.len() >= SUBSCRIBER_BUFFER {
                return false;
            }
            state.items.push_back(notification);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    fn end(&self, reason: CloseReason) {
        let waker = {
            let mut state = self.lock();
            state.ended.get_or_insert(reason);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

struct Slot {
    id: u64,
    mailbox: Arc<Mailbox>,
    connection: Option<Arc<ConnectionSignal>>,
}

impl Slot {
    fn end(self, reason: CloseReason) {
        self.mailbox.end(reason);
        if let Some(connection) = &self.connection {
            connection.raise(reason);
        }
    }
}

/// Who a connection counts against, for the limits on open connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    Member(i64),
    /// Not signed in (yet), by client address.
    Anonymous(Option<IpAddr>),
}

pub struct Hub {
    members: RwLock<HashMap<i64, Vec<Slot>>>,
    next_id: AtomicU64,
    subscriptions: AtomicUsize,
    closing: AtomicBool,
    connections: Mutex<Connections>,
}

/// The open connections, for their limits and to close them all at shutdown.
#[derive(Default)]
struct Connections {
    per_holder: HashMap<Holder, usize>,
    signals: HashMap<u64, Arc<ConnectionSignal>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            members: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            subscriptions: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            connections: Mutex::new(Connections::default()),
        }
    }
}

impl Hub {
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    /// Starts a live subscription to `member_id`'s notifications. Take it *before* reading
    /// what to replay from the database, so nothing committed in between is missed.
    pub fn subscribe(self: &Arc<Self>, member_id: i64, connection: Option<Arc<ConnectionSignal>>) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mailbox = Arc::new(Mailbox::default());
        let slot = Slot { id, mailbox: mailbox.clone(), connection };
        if self.closing.load(Ordering::Acquire) {
            slot.end(CloseReason::ShuttingDown);
        } else {
            self.write().entry(member_id).or_default().push(slot);
            self.subscriptions.fetch_add(1, Ordering::Relaxed);
        }
        Subscription { hub: self.clone(), member_id, id, mailbox }
    }

    /// Hands each notification to its member's subscriptions on this instance, without
    /// waiting; returns how many were handed over. Subscriptions too slow to take theirs
    /// are ended.
    pub fn deliver(&self, notifications: Vec<Notification>) -> usize {
        let mut delivered = 0;
        let mut too_slow = Vec::new();
        {
            let members = self.read();
            for notification in notifications {
                let Some(slots) = members.get(&notification.member_id) else { continue };
                let member_id = notification.member_id;
                let shared = Arc::new(notification);
                for slot in slots {
                    if slot.mailbox.put(shared.clone()) {
                        delivered += 1;
                    } else {
                        too_slow.push((member_id, slot.id));
                    }
                }
            }
        }
        if !too_slow.is_empty() {
            let mut members = self.write();
            for (member_id, id) in too_slow {
                if let Some(slot) = take_slot(&mut members, member_id, id) {
                    self.subscriptions.fetch_sub(1, Ordering::Relaxed);
                    slot.end(CloseReason::TooSlow);
                }
            }
        }
        delivered
    }

    /// Ends every subscription on this instance with `reason`; returns how many.
    pub fn end_all(&self, reason: CloseReason) -> usize {
        let members = std::mem::take(&mut *self.write());
        let mut ended = 0;
        for slot in members.into_values().flatten() {
            slot.end(reason);
            ended += 1;
        }
        self.subscriptions.fetch_sub(ended, Ordering::Relaxed);
        ended
    }

    /// Shutting down: every connection is told to close, and new ones and new
    /// subscriptions end at once.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        let signals: Vec<Arc<ConnectionSignal>> = self.lock_connections().signals.values().cloned().collect();
        for signal in signals {
            signal.raise(CloseReason::ShuttingDown);
        }
        self.end_all(CloseReason::ShuttingDown);
    }

    /// Live subscriptions on this instance.
    pub fn subscriptions(&self) -> usize {
        self.subscriptions.load(Ordering::Relaxed)
    }

    /// Open live connections on this instance.
    pub fn connections(&self) -> usize {
        self.lock_connections().signals.len()
    }

    /// Counts a new connection against `holder` unless it already has `limit` open here,
    /// or this instance has `total_limit`. The admission carries the signal that closes
    /// the connection, and counts for as long as it lives.
    pub fn admit(self: &Arc<Self>, holder: Holder, limit: usize, total_limit: usize) -> Option<Admission> {
        let signal = ConnectionSignal::new();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut connections = self.lock_connections();
            if connections.signals.len() >= total_limit || !connections.count(holder, limit) {
                return None;
            }
            connections.signals.insert(id, signal.clone());
        }
        if self.closing.load(Ordering::Acquire) {
            signal.raise(CloseReason::ShuttingDown);
        }
        Some(Admission { hub: self.clone(), holder, id, signal })
    }

    fn lock_connections(&self) -> std::sync::MutexGuard<'_, Connections> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remove(&self, member_id: i64, id: u64) {
        if take_slot(&mut self.write(), member_id, id).is_some() {
            self.subscriptions.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<i64, Vec<Slot>>> {
        self.members.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<i64, Vec<Slot>>> {
        self.members.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn take_slot(members: &mut HashMap<i64, Vec<Slot>>, member_id: i64, id: u64) -> Option<Slot> {
    let slots = members.get_mut(&member_id)?;
    let index = slots.iter().position(|s| s.id == id)?;
    let slot = slots.swap_remove(index);
    if slots.is_empty() {
        members.remove(&member_id);
    }
    Some(slot)
}

impl Connections {
    /// Counts one more for `holder`, unless it has `limit` already.
    fn count(&mut self, holder: Holder, limit: usize) -> bool {
        let count = self.per_holder.entry(holder).or_default();
        if *count >= limit {
            if *count == 0 {
                self.per_holder.remove(&holder);
            }
            return false;
        }
        *count += 1;
        true
    }

    fn uncount(&mut self, holder: Holder) {
        if let Some(count) = self.per_holder.get_mut(&holder) {
            *count -= 1;
            if *count == 0 {
                self.per_holder.remove(&holder);
            }
        }
    }
}

/// One open connection, counted against its holder until dropped.
pub struct Admission {
    hub: Arc<Hub>,
    holder: Holder,
    id: u64,
    signal: Arc<ConnectionSignal>,
}

impl Admission {
    pub fn holder(&self) -> Holder {
        self.holder
    }

    /// What the hub raises to close this connection.
    pub fn signal(&self) -> &Arc<ConnectionSignal> {
        &self.signal
    }

    /// Counts the connection against another holder (it signed in), unless that one has
    /// `limit` open already.
    pub fn change_holder(&mut self, holder: Holder, limit: usize) -> bool {
        if holder == self.holder {
            return true;
        }
        let mut connections = self.hub.lock_connections();
        if !connections.count(holder, limit) {
            return false;
        }
        connections.uncount(self.holder);
        self.holder = holder;
        true
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut connections = self.hub.lock_connections();
        connections.uncount(self.holder);
        connections.signals.remove(&self.id);
    }
}

/// A member's live notifications on this instance; leaves the hub when dropped.
pub struct Subscription {
    hub: Arc<Hub>,
    member_id: i64,
    id: u64,
    mailbox: Arc<Mailbox>,
}

impl Subscription {
    /// The next notification, or why the hub ended the subscription (once what was
    /// already waiting has been taken).
    pub async fn recv(&mut self) -> Result<Arc<Notification>, CloseReason> {
        poll_fn(|cx| {
            let mut state = self.mailbox.lock();
            if let Some(notification) = state.items.pop_front() {
                return Poll::Ready(Ok(notification));
            }
            if let Some(reason) = state.ended {
                return Poll::Ready(Err(reason));
            }
            if !state.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                state.waker = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(self.member_id, self.id);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::notifications::{Channel, NotificationKind};

    pub(crate) fn notification(id: i64, member_id: i64) -> Notification {
        Notification {
            id,
            member_id,
            kind: NotificationKind::NewComment,
            channel: Channel::Inbox,
            subject_type: "CaseStudy".into(),
            subject_id: 1,
            subject_title: "Bins".into(),
            actor_id: None,
            group_id: id,
            group_size: 1,
            summary: "A comment".into(),
            path: "/case-studies/1".into(),
            created_at: 0,
            read_at: None,
        }
    }

    #[tokio::test]
    async fn delivers_to_each_members_subscriptions_only() {
        let hub = Hub::new();
        let mut ada = hub.subscribe(1, None);
        let mut ada_again = hub.subscribe(1, None);
        let mut grace = hub.subscribe(2, None);
        assert_eq!(hub.subscriptions(), 3);
        assert_eq!(hub.deliver(vec![notification(10, 1), notification(11, 3)]), 2);
        assert_eq!(ada.recv().await.unwrap().id, 10);
        assert_eq!(ada_again.recv().await.unwrap().id, 10);
        assert!(grace.mailbox.lock().items.is_empty());
        drop(ada);
        assert_eq!(hub.subscriptions(), 2);
        assert_eq!(hub.deliver(vec![notification(12, 1), notification(13, 2)]), 2);
        assert_eq!(grace.recv().await.unwrap().id, 13);
    }

    #[tokio::test]
    async fn a_waiting_subscription_is_woken() {
        let hub = Hub::new();
        let mut live = hub.subscribe(1, None);
        let waiting = tokio::spawn(async move { live.recv().await.map(|n| n.id) });
        tokio::task::yield_now().await;
        hub.deliver(vec![notification(5, 1)]);
        assert_eq!(waiting.await.unwrap(), Ok(5));
    }

    #[tokio::test]
    async fn a_subscription_that_falls_behind_is_ended_and_its_connection_told() {
        let hub = Hub::new();
        let connection = ConnectionSignal::new();
        let mut slow = hub.subscribe(1, Some(connection.clone()));
        let burst: Vec<_> = (0..SUBSCRIBER_BUFFER as i64 + 1).map(|i| notification(i + 1, 1)).collect();
        assert_eq!(hub.deliver(burst), SUBSCRIBER_BUFFER);
        assert_eq!(connection.reason(), Some(CloseReason::TooSlow));
        assert_eq!(connection.raised().await, CloseReason::TooSlow);
        assert_eq!(hub.subscriptions(), 0);
        // What was waiting is still there, then the reason.
        for i in 0..SUBSCRIBER_BUFFER as i64 {
            assert_eq!(slow.recv().await.unwrap().id, i + 1);
        }
        assert_eq!(slow.recv().await.unwrap_err(), CloseReason::TooSlow);
    }

    #[tokio::test]
    async fn ending_all_and_closing() {
        let hub = Hub::new();
        let connection = ConnectionSignal::new();
        let mut a = hub.subscribe(1, Some(connection.clone()));
        let mut b = hub.subscribe(2, None);
        assert_eq!(hub.end_all(CloseReason::Resync), 2);
        assert_eq!(a.recv().await.unwrap_err(), CloseReason::Resync);
        assert_eq!(b.recv().await.unwrap_err(), CloseReason::Resync);
        assert_eq!(connection.reason(), Some(CloseReason::Resync));
        // Closing tells every open connection, subscribed or not, and any that comes later.
        let idle = hub.admit(Holder::Member(1), 5, 10).unwrap();
        hub.close();
        assert_eq!(idle.signal().reason(), Some(CloseReason::ShuttingDown));
        let late = hub.admit(Holder::Member(2), 5, 10).unwrap();
        assert_eq!(late.signal().reason(), Some(CloseReason::ShuttingDown));
        let mut subscribed_late = hub.subscribe(3, None);
        assert_eq!(subscribed_late.recv().await.unwrap_err(), CloseReason::ShuttingDown);
        assert_eq!(hub.subscriptions(), 0);
    }

    #[test]
    fn admissions_are_counted_per_holder_and_in_total() {
        let hub = Hub::new();
        let first = hub.admit(Holder::Member(1), 2, 3).unwrap();
        let _second = hub.admit(Holder::Member(1), 2, 3).unwrap();
        assert!(hub.admit(Holder::Member(1), 2, 3).is_none());
        let mut other = hub.admit(Holder::Anonymous(None), 2, 3).unwrap();
        assert!(hub.admit(Holder::Member(2), 2, 3).is_none(), "the instance is full");
        assert!(!other.change_holder(Holder::Member(1), 2), "member 1 has two already");
        drop(first);
        assert_eq!(hub.connections(), 2);
        assert!(other.change_holder(Holder::Member(1), 2));
        assert_eq!(other.holder(), Holder::Member(1));
        assert!(hub.admit(Holder::Member(1), 2, 3).is_none());
        assert!(hub.admit(Holder::Anonymous(None), 1, 3).is_some(), "the anonymous count went with it");
    }
}
