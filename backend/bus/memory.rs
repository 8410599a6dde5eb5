//! The embedded mode's bus: one process, so a delivery goes straight to its hub.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::Notify;

use super::{Bus, BusStats, BusStatus, Delivery, Hub};

#[derive(Default)]
pub struct InProcessBus {
    hub: Arc<Hub>,
    wake: Arc<Notify>,
    stats: BusStats,
}

impl InProcessBus {
    pub fn new() -> InProcessBus {
        InProcessBus::default()
    }
}

impl Bus for InProcessBus {
    fn publish(&self, delivery: Delivery) {
        self.stats.published_now();
        self.hub.deliver(delivery.notifications);
    }

    fn events_committed(&self) {
        self.wake.notify_one();
    }

    fn events_announced(&self) -> BoxFuture<'static, ()> {
        let wake = self.wake.clone();
        Box::pin(async move { wake.notified().await })
    }

    fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn status(&self) -> BusStatus {
        BusStatus::InProcess
    }

    fn stats(&self) -> &BusStats {
        &self.stats
    }

    fn start(&self) {}

    fn stop(&self) {
        self.hub.close();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bus::hub::tests::notification;

    #[tokio::test]
    async fn delivers_at_once_and_wakes_the_dispatcher() {
        let bus = InProcessBus::new();
        let mut live = bus.hub().subscribe(7, None);
        bus.publish(Delivery { notifications: vec![notification(1, 7), notification(2, 8)] });
        assert_eq!(live.recv().await.unwrap().id, 1);
        // An announcement made before anyone waits is kept for the next wait.
        bus.events_committed();
        tokio::time::timeout(Duration::from_secs(1), bus.events_announced()).await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(50), bus.events_announced()).await.is_err());
        assert_eq!(bus.status().as_str(), "in-process");
    }
}
