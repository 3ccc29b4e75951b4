//! Leader election on a Lease (kube-lease-manager): with several replicas exactly one
//! reconciles; the others serve health and metrics and take over when the leader's lease
//! expires. On shutdown the leader finishes its in-flight work and releases the lease, so a
//! standby takes over at once instead of after the lease duration. While it leads, the
//! replica's Pod carries the label `modelship.dev/leader: "true"` (`leader/label.rs`), so
//! that webhooks reach the leader only.
//!
//! ```text
//! standby ──lease acquired──▶ leader (reconcile running) ──lease lost──▶ standby
//!                                   └──shutdown──▶ finish in-flight, release, exit
//! ```

pub mod label;
mod pod;

use std::future::Future;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;

use super::{DaemonError, Election, Handles};
use label::Wanted;

/// Why leader election failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The lease manager could not be created (Lease API unreachable or forbidden).
    #[error("leader election on lease {lease}: {source}")]
    Lease {
        lease: String,
        #[source]
        source: LeaseManagerError,
    },
}

impl LeaderError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            LeaderError::Lease { .. } => "leader_lease",
        }
    }
}

/// Runs `work` while this replica holds the lease, until `shutdown` becomes true. `work`
/// receives a stop signal that fires when the lease is lost or on shutdown.
pub async fn run_as_leader<F, Fut>(
    election: &Election,
    client: &Client,
    handles: &Handles,
    mut shutdown: watch::Receiver<bool>,
    mut work: F,
) -> Result<(), DaemonError>
where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = Result<(), DaemonError>>,
{
    let lease_error = |source| LeaderError::Lease {
        lease: format!("{}/{}", election.namespace, election.lease_name),
        source,
    };
    let duration = election.duration_seconds.max(3);
    let manager = LeaseManagerBuilder::new(client.clone(), &election.lease_name)
        .with_namespace(&election.namespace)
        .with_identity(&election.identity)
        .with_duration(duration)
        .with_grace((duration / 3).max(1))
        .with_field_manager(format!("modelship-{}", election.identity))
        .build()
        .await
        .map_err(lease_error)?;
    let (mut is_leader, task) = manager.watch().await;
    // A standby is ready: it serves health and metrics and stands by to take over. Were it
    // unready, a rolling update whose new pod starts as standby would never finish.
    handles.board.write().await.ready = true;
    tracing::info!(identity = %election.identity, lease = %election.lease_name, "waiting for the leader lease");
    let mut result = Ok(());
    loop {
        tokio::select! {
            acquired = is_leader.wait_for(|leader| *leader) => {
                if acquired.is_err() { break; }
            }
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        tracing::info!(identity = %election.identity, "acquired the leader lease: reconciling");
        set_leader(handles, true).await;
        let (stop_tx, stop_rx) = watch::channel(false);
        let outcome = {
            let run = work(stop_rx);
            tokio::pin!(run);
            tokio::select! {
                outcome = &mut run => outcome,
                _ = lost_or_stopped(&mut is_leader, &mut shutdown) => {
                    let _ = stop_tx.send(true);
                    run.await
                }
            }
        };
        set_leader(handles, false).await;
        if let Err(error) = outcome {
            result = Err(error);
            break;
        }
        if *shutdown.borrow() {
            break;
        }
        tracing::warn!(identity = %election.identity, "lost the leader lease: standing by");
    }
    // Closing the channel makes the lease task release the lease and end.
    drop(is_leader);
    match task.await {
        Ok(Ok(_)) => tracing::info!("leader lease released"),
        Ok(Err(error)) => tracing::warn!(%error, "releasing the leader lease failed"),
        Err(error) => tracing::warn!(%error, "lease task failed"),
    }
    result
}

async fn lost_or_stopped(
    is_leader: &mut watch::Receiver<bool>,
    shutdown: &mut watch::Receiver<bool>,
) {
    tokio::select! {
        _ = is_leader.wait_for(|leader| !*leader) => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

async fn set_leader(handles: &Handles, leader: bool) {
    handles.board.write().await.leader = leader;
    handles.metrics.leader.set(i64::from(leader));
    // The Pod's label follows (webhook routing, `leader/label.rs`), without waiting.
    handles.wanted_label.send_replace(if leader {
        Wanted::Leader
    } else {
        Wanted::Standby
    });
}
