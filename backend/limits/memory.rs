//! Counts in this process: the embedded mode's store, and the fallback when Redis is down.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{Count, Store};

/// Counts behind one mutex, bounded in size: when full, expired entries are swept, and if
/// it is still full the oldest windows are dropped, so memory stays bounded whatever the
/// number of addresses or accounts seen.
pub struct MemoryStore {
    entries: Mutex<HashMap<String, (u64, Instant)>>,
    max_keys: usize,
}

impl MemoryStore {
    pub fn new(max_keys: usize) -> MemoryStore {
        MemoryStore { entries: Mutex::new(HashMap::new()), max_keys }
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn add(&self, key: &str, weight: u64, window: Duration) -> anyhow::Result<Count> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if entries.len() >= self.max_keys && !entries.contains_key(key) {
            entries.retain(|_, (_, ends)| *ends > now);
            if entries.len() >= self.max_keys {
                // Still full of live windows: forget the half that end soonest.
                let mut ends: Vec<Instant> = entries.values().map(|(_, ends)| *ends).collect();
                ends.sort();
                let cut = ends[ends.len() / 2];
                entries.retain(|_, (_, ends)| *ends > cut);
            }
        }
        let entry = entries.entry(key.to_string()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 = entry.0.saturating_add(weight);
        Ok(Count { count: entry.0, resets_in: entry.1 - now })
    }

    async fn peek(&self, key: &str) -> anyhow::Result<Count> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        Ok(match entries.get(key) {
            Some(&(count, ends)) if ends > now => Count { count, resets_in: ends - now },
            _ => Count { count: 0, resets_in: Duration::ZERO },
        })
    }

    async fn clear(&self, key: &str) -> anyhow::Result<()> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stays_bounded_and_windows_expire() {
        let store = MemoryStore::new(10);
        for i in 0..50 {
            store.add(&format!("k{i}"), 1, Duration::from_secs(60)).await.unwrap();
        }
        assert!(store.entries.lock().unwrap().len() <= 10);
        assert_eq!(store.peek("k49").await.unwrap().count, 1);
        store.add("short", 3, Duration::from_millis(20)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(store.peek("short").await.unwrap().count, 0);
        assert_eq!(store.add("short", 1, Duration::from_secs(1)).await.unwrap().count, 1);
    }
}
