//! CPU-bound work (rendering Markdown, decoding and re-encoding images) off the async
//! workers, at most one job per core at once.

use std::sync::LazyLock;

use anyhow::anyhow;
use tokio::sync::Semaphore;

use crate::error::AppResult;

/// Runs `work` on tokio's blocking pool, holding one of as many permits as there are
/// CPUs. A render of the largest text takes milliseconds and an image up to a second,
/// but on an async worker even that stalls every other request on the worker, and a
/// burst of them would stall them all (`/healthz` included); the permits stop a burst
/// from queueing more jobs than there are cores to run them, and so also bound the
/// memory decoding images takes at once. The permit moves into the task, so a request
/// that gives up does not free a core that is still busy.
pub async fn off_the_workers<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    static PERMITS: LazyLock<Semaphore> =
        LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())));
    let permit = PERMITS.acquire().await.map_err(|e| anyhow!("the CPU work permits are closed: {e}"))?;
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|e| anyhow!("a CPU-bound task failed: {e}"))?;
    Ok(result)
}
