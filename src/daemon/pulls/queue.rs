//! The queue from the webhook handler to the pull-request worker: bounded, so a flood of
//! webhooks never grows the daemon's memory; each job with the delivery id it came with.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc};

use super::{Followed, Job};

/// Pieces of pull-request work waiting at most: in the channel, and in the worker's map.
/// A delivery beyond is refused (503, GitHub can redeliver it), so a flood of webhooks
/// never grows the daemon's memory.
pub const QUEUE_CAPACITY: usize = 256;

/// The queue is full: the delivery is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{QUEUE_CAPACITY} pieces of pull-request work are waiting already")]
pub struct QueueFull;

/// A job and the `X-GitHub-Delivery` id it came with (empty for the worker's own).
#[derive(Debug, Clone)]
pub(super) struct Queued {
    pub(super) job: Job,
    pub(super) delivery: String,
}

/// The queue from the webhook handler to the worker, bounded ([`QUEUE_CAPACITY`]). The
/// receiving end is taken by the worker of whichever term of leadership runs.
#[derive(Clone)]
pub struct PullQueue {
    tx: mpsc::Sender<Queued>,
    pub(super) rx: Arc<Mutex<mpsc::Receiver<Queued>>>,
    /// The work the worker holds (its map), published by the worker.
    pub(super) held: Arc<std::sync::atomic::AtomicUsize>,
    /// The repository deliveries must be about.
    pub followed: Followed,
}

impl PullQueue {
    /// A queue for the deliveries of `followed`.
    pub fn new(followed: Followed) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        PullQueue {
            tx,
            rx: Arc::new(Mutex::new(rx)),
            held: Arc::default(),
            followed,
        }
    }

    /// Queues the job of delivery `delivery`, never blocking (the HTTP handler only
    /// queues); refused when [`QUEUE_CAPACITY`] pieces of work wait already.
    pub fn push(&self, job: Job, delivery: &str) -> Result<(), QueueFull> {
        let held = self.held.load(std::sync::atomic::Ordering::Relaxed);
        let waiting = QUEUE_CAPACITY - self.tx.capacity();
        if held + waiting >= QUEUE_CAPACITY {
            return Err(QueueFull);
        }
        let queued = Queued {
            job,
            delivery: delivery.to_string(),
        };
        // Full is the only error that matters: the receiver lives as long as the queue.
        match self.tx.try_send(queued) {
            Err(mpsc::error::TrySendError::Full(_)) => Err(QueueFull),
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        }
    }

    /// The jobs queued and not taken yet (for tests of the handler).
    #[cfg(test)]
    pub(crate) fn drain(&self) -> Vec<Job> {
        let mut jobs = Vec::new();
        if let Ok(mut rx) = self.rx.try_lock() {
            while let Ok(queued) = rx.try_recv() {
                jobs.push(queued.job);
            }
        }
        jobs
    }
}
