//! Webhook routing to the leader: the daemon labels its own Pod
//! `modelship.dev/leader: "true"` while it leads, and the Service `modelship-webhooks` of
//! `deploy/` selects that label, so GitHub's deliveries reach the leader only. A standby
//! acknowledges pull-request events without acting on them (`serve/hooks.rs`) and GitHub
//! does not redeliver, so without this about half of them would be lost with two replicas.
//!
//! ```text
//!   start ──────────────────▶ label removed   (a container restarted in the same Pod
//!     │                                         keeps the Pod's labels: clear a stale one)
//!   lease acquired, or no --leader-elect ──▶ label "true"
//!   lease lost, shutdown ───▶ label removed
//! ```
//!
//! One task follows the wanted state (a watch channel fed by `leader::set_leader`) and
//! makes the Pod match it through the engine (`leader/pod.rs`, `mark_pod`: a read,
//! then, only when the label differs, a merge patch of just that label by the writer), so
//! a restart with nothing changed writes nothing. A failure (RBAC without `pods` get and patch, the Pod not found, the
//! API server unreachable) never stops the daemon or its reconciling: it is retried with
//! the daemon's backoff (at most [`MAX_RETRY`] apart), counted in
//! `modelship_errors_total{cause="leader_label"}`, logged as a warning once per change of
//! state, and shown on `/status` as `webhook_routing` ([`Routing`]). Without the Pod's
//! name and namespace (`POD_NAME`, `POD_NAMESPACE` from the downward API) nothing is done.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{RwLock, watch};
use tokio::task::JoinHandle;

use super::pod as leadership;
use crate::backoff::{Backoff, Jitter};
use crate::cluster::{self, Writer};
use crate::daemon::serve::metrics::Metrics;
use crate::daemon::serve::status::Board;

pub use super::pod::LABEL;

/// The longest wait between two attempts to label the Pod.
pub const MAX_RETRY: Duration = Duration::from_secs(30);

/// The longest one request to the API server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The daemon's own Pod (`POD_NAMESPACE`/`POD_NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for PodRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Whether webhooks are routed to the leader, as `/status` shows it (`webhook_routing`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Routing {
    /// `"off: no POD_NAME or POD_NAMESPACE"`: the daemon does not know its Pod.
    #[default]
    Off,
    /// `"pending"`: the Pod has not been read yet.
    Pending,
    /// `"leader-label"`: the Pod's label matches this replica's role (present on the
    /// leader, absent on a standby).
    InEffect,
    /// `"unavailable: REASON"`: the label could not be read or written; retried.
    Unavailable(String),
}

impl std::fmt::Display for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Routing::Off => f.write_str("off: no POD_NAME or POD_NAMESPACE"),
            Routing::Pending => f.write_str("pending"),
            Routing::InEffect => f.write_str("leader-label"),
            Routing::Unavailable(reason) => write!(f, "unavailable: {reason}"),
        }
    }
}

impl serde::Serialize for Routing {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What the Pod's label should say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// The label is present: this replica leads.
    Leader,
    /// The label is absent: this replica stands by (or is starting).
    Standby,
    /// The daemon is stopping: remove the label (one attempt) and end.
    Stopped,
}

/// Why the label could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// Reading or patching the Pod failed (not found, forbidden, unreachable).
    #[error("pod {pod}: {source}")]
    Cluster {
        pod: PodRef,
        #[source]
        source: cluster::Error,
    },
    /// The API server did not answer in time.
    #[error("pod {pod}: no answer from the API server within {}s", REQUEST_TIMEOUT.as_secs())]
    Timeout { pod: PodRef },
}

impl LabelError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        "leader_label"
    }
}

/// Starts the task that keeps the label of `pod` in line with `wanted`; `None` (and
/// routing off) when the Pod is not known.
pub async fn start(
    pod: Option<PodRef>,
    writer: Writer,
    wanted: watch::Receiver<Wanted>,
    backoff: Backoff,
    board: &Arc<RwLock<Board>>,
    metrics: &Arc<Metrics>,
) -> Option<JoinHandle<()>> {
    let Some(pod) = pod else {
        tracing::debug!("POD_NAME or POD_NAMESPACE unset: the Pod is not labelled as leader");
        board.write().await.webhook_routing = Routing::Off;
        return None;
    };
    board.write().await.webhook_routing = Routing::Pending;
    let labeler = Labeler {
        writer,
        pod,
        board: board.clone(),
        metrics: metrics.clone(),
        reported: (Wanted::Standby, Routing::Pending),
    };
    let backoff = Backoff {
        base: backoff.base,
        max: backoff.max.min(MAX_RETRY),
    };
    Some(tokio::spawn(labeler.run(wanted, backoff)))
}

struct Labeler {
    writer: Writer,
    pod: PodRef,
    board: Arc<RwLock<Board>>,
    metrics: Arc<Metrics>,
    /// The last state logged, so that each change is logged once.
    reported: (Wanted, Routing),
}

impl Labeler {
    async fn run(mut self, mut wanted: watch::Receiver<Wanted>, backoff: Backoff) {
        let mut jitter = Jitter::from_clock();
        // The state the Pod is known to be in, and failed attempts since.
        let mut applied: Option<Wanted> = None;
        let mut failures = 0u32;
        loop {
            let want = *wanted.borrow_and_update();
            if want == Wanted::Stopped {
                break;
            }
            if applied != Some(want) {
                if self.attempt(want).await {
                    applied = Some(want);
                    failures = 0;
                } else {
                    failures = failures.saturating_add(1);
                }
            }
            let retry = (applied != Some(want)).then(|| backoff.delay(failures, jitter.unit()));
            tokio::select! {
                changed = wanted.changed() => {
                    if changed.is_err() { break; }
                }
                _ = tokio::time::sleep(retry.unwrap_or_default()), if retry.is_some() => {}
            }
        }
        if applied != Some(Wanted::Standby) {
            self.attempt(Wanted::Stopped).await;
        }
    }

    /// One attempt to make the label say `want`; true when it does.
    async fn attempt(&mut self, want: Wanted) -> bool {
        let outcome = self.converge(want == Wanted::Leader).await;
        let routing = match &outcome {
            Ok(()) => Routing::InEffect,
            Err(error) => {
                self.metrics.error(error.metric_label());
                Routing::Unavailable(error.to_string())
            }
        };
        if self.reported != (want, routing.clone()) {
            match &routing {
                Routing::Unavailable(reason) => tracing::warn!(
                    pod = %self.pod, ?want, %reason,
                    "cannot label the Pod: webhooks are not routed to the leader; retrying"
                ),
                _ => tracing::info!(pod = %self.pod, ?want, "Pod labelled for webhook routing"),
            }
            self.reported = (want, routing.clone());
        }
        self.board.write().await.webhook_routing = routing;
        outcome.is_ok()
    }

    /// Makes the Pod's label say what `leader` wants, within [`REQUEST_TIMEOUT`].
    async fn converge(&self, leader: bool) -> Result<(), LabelError> {
        let (namespace, name) = (&self.pod.namespace, &self.pod.name);
        let marked = leadership::mark_pod(&self.writer, namespace, name, leader);
        match tokio::time::timeout(REQUEST_TIMEOUT, marked).await {
            Ok(Ok(written)) => {
                if written {
                    tracing::debug!(pod = %self.pod, leader, "Pod label {LABEL} patched");
                }
                Ok(())
            }
            Ok(Err(source)) => Err(LabelError::Cluster {
                pod: self.pod.clone(),
                source,
            }),
            Err(_) => Err(LabelError::Timeout {
                pod: self.pod.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_shows_as_one_string_on_status() {
        let shown = |routing: Routing| serde_json::to_value(routing).unwrap();
        assert_eq!(shown(Routing::Off), "off: no POD_NAME or POD_NAMESPACE");
        assert_eq!(shown(Routing::Pending), "pending");
        assert_eq!(shown(Routing::InEffect), "leader-label");
        assert_eq!(
            shown(Routing::Unavailable("reading pod ops/a: forbidden".into())),
            "unavailable: reading pod ops/a: forbidden"
        );
        let board = serde_json::to_value(Board::default()).unwrap();
        assert_eq!(
            board["webhook_routing"],
            "off: no POD_NAME or POD_NAMESPACE"
        );
    }
}
