//! The source task: fetch on every interval tick and on every trigger (webhook, file
//! watch), publish each new revision. A failed fetch keeps the last good snapshot, and so
//! does a revision refused for a limit (counted as `result="refused"`, the limit on
//! `/status`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, RwLock, watch};

use crate::daemon::serve::metrics::Metrics;
use crate::daemon::serve::status::Board;
use crate::source::{Snapshot, Source};

/// Fetches `source` until `shutdown` fires; new revisions go to `snapshots`.
pub async fn run(
    source: Source,
    interval: Duration,
    trigger: Arc<Notify>,
    snapshots: watch::Sender<Option<Arc<Snapshot>>>,
    metrics: Arc<Metrics>,
    board: Arc<RwLock<Board>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = trigger.notified() => {}
            _ = shutdown.changed() => return,
        }
        let started = Instant::now();
        let result = source.fetch().await;
        let seconds = started.elapsed().as_secs_f64();
        let label = match &result {
            Ok(_) => "ok",
            Err(error) if error.is_refused() => "refused",
            Err(_) => "error",
        };
        metrics.fetched(label, seconds);
        match result {
            Ok(snapshot) => {
                board.write().await.source_error = None;
                let new = snapshots
                    .borrow()
                    .as_ref()
                    .is_none_or(|s| s.revision != snapshot.revision);
                if new {
                    tracing::info!(revision = %snapshot.revision, files = snapshot.files.len(), "new revision");
                    metrics.set_revision(snapshot.revision.as_str());
                    let _ = snapshots.send(Some(Arc::new(snapshot)));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "fetching the repository failed; keeping the last good revision");
                metrics.error(error.metric_label());
                let mut board = board.write().await;
                board.source_error = Some(error.to_string());
                // A source that never worked still lets the daemon report ready: it failed
                // cleanly and says so on /status.
                board.ready = true;
            }
        }
    }
}
