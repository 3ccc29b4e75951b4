//! The daemon: follows a repository and keeps the cluster in line with it.
//!
//! Four subsystems, a folder each:
//!
//! ```text
//!            webhook (serve/) ─┐   file watch ─┐
//!   interval ──────────────────┴───────────────┴─▶ reconcile/fetcher.rs ──new revision──┐
//!                                                                                       ▼
//!   reconcile/cache.rs (watchers, managed-by=modelship) ──touched──▶ reconcile/ (the loop:
//!        ▲                                                     a scheduler over ServiceId →
//!        │                                                     entry; engine::reconcile_service)
//!        └──────────────── recorded writes ◀── cluster::Writer ◀────┘
//!   serve/: /status (a view of the loop's map), /readyz, /metrics, /hooks/github
//!   pulls/: the pull-request worker (plans, previews, comment commands, merge outcomes)
//!   leader/: the Lease, and the leader's Pod labelled `modelship.dev/leader` for webhooks
//! ```
//!
//! The daemon has no planner or writer of its own: it supplies the engine with a live
//! view (its watch cache) and triggers, as the CLI supplies LISTs and one run.
//!
//! Safety: an invalid or failing service is left alone and never blocks the others; objects
//! are pruned only when the whole repository is valid and the mass-prune guard allows; a
//! restart resumes from the cluster itself (the watch cache), so a restart with nothing
//! changed writes nothing.

pub mod leader;
pub mod pulls;
pub mod reconcile;
pub mod serve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use tokio::sync::{Notify, RwLock, mpsc, watch};

pub use crate::backoff::Backoff;
use crate::cluster::{RetryPolicy, WriteMode, Writer};
pub use crate::engine::DriftMode;
use crate::plan::PruneMode;
use crate::source::{Secret, Source};
pub use leader::label::PodRef;
pub use pulls::{GitHubConfig, PullQueue};
pub use serve::metrics::Metrics;
pub use serve::status::{Board, ServiceStatus};

/// Leader election on a Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    pub namespace: String,
    pub lease_name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// Seconds a lease stays valid without renewal.
    pub duration_seconds: u64,
}

/// The resolved configuration of a daemon (tests build it by hand).
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub source: Source,
    /// Repository name written in `modelship.dev/source` annotations.
    pub repo_name: Option<String>,
    pub branch: String,
    pub interval: Duration,
    pub listen: SocketAddr,
    pub webhook_secret: Option<Secret>,
    pub drift: DriftMode,
    pub create_namespaces: bool,
    /// Where live objects are listed and watched, and services may be: every namespace,
    /// or those of `--namespaces` (RoleBindings instead of a ClusterRoleBinding).
    pub namespaces: crate::cluster::Namespaces,
    /// How services gone from the repository are pruned ([`PruneMode::Guarded`] or
    /// [`PruneMode::Unguarded`]; [`PruneMode::Keep`] never prunes).
    pub prune: PruneMode,
    /// Services reconciled at once.
    pub concurrency: usize,
    pub backoff: Backoff,
    /// `None`: this replica always writes.
    pub election: Option<Election>,
    /// The daemon's own Pod, labelled `modelship.dev/leader` while it leads (webhook
    /// routing); `None` outside a Pod (no `POD_NAME`/`POD_NAMESPACE`): not labelled.
    pub pod: Option<PodRef>,
    /// `None`: pull-request events are acknowledged and not acted on.
    pub github: Option<GitHubConfig>,
    /// Rollout settings that do not come from specs (the test-only step interval).
    pub rollout: crate::engine::rollout::Settings,
    /// The modelship instance (`--instance`): the label of its objects, the only ones it
    /// reads, heals and prunes.
    pub instance: crate::ownership::Instance,
    /// How canary analysis authenticates to Prometheus (credential files).
    pub prometheus_auth: crate::prometheus::Auth,
}

impl DaemonConfig {
    /// The namespace the daemon runs in, which no service may target: its Pod's
    /// (`POD_NAMESPACE` from the downward API, which `deploy/` sets with `POD_NAME`), else
    /// `modelship`, as the CLI assumes.
    pub fn own_namespace(&self) -> &str {
        self.pod
            .as_ref()
            .map_or(crate::spec::tenants::DEFAULT_OWN_NAMESPACE, |pod| {
                pod.namespace.as_str()
            })
    }
}

/// Why the daemon could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The HTTP listener could not be bound.
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The directory watch of a local source could not be set up.
    #[error(transparent)]
    Watch(#[from] crate::source::LocalError),
    /// Leader election failed.
    #[error(transparent)]
    Leader(#[from] leader::LeaderError),
}

impl DaemonError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            DaemonError::Listen { .. } => "listen",
            DaemonError::Watch(e) => e.metric_label(),
            DaemonError::Leader(e) => e.metric_label(),
        }
    }
}

/// A running daemon's handles, for the command and for tests.
#[derive(Clone)]
pub struct Handles {
    pub board: Arc<RwLock<Board>>,
    pub metrics: Arc<Metrics>,
    /// Wakes the source (what a webhook does).
    pub trigger: Arc<Notify>,
    /// The address the HTTP server listens on.
    pub addr: SocketAddr,
    /// The pull-request work queue, when GitHub is configured.
    pub pulls: Option<PullQueue>,
    /// What the label of the daemon's Pod should say (`leader/label.rs`).
    wanted_label: Arc<watch::Sender<leader::label::Wanted>>,
}

/// Binds the HTTP server, then runs until `shutdown` becomes true: serves health, metrics
/// and webhooks at once; reconciles while leader (always, without election). `started`
/// receives the handles once the listener is bound.
pub async fn run(
    config: DaemonConfig,
    client: Client,
    shutdown: watch::Receiver<bool>,
    started: Option<tokio::sync::oneshot::Sender<Handles>>,
) -> Result<(), DaemonError> {
    let board = Arc::new(RwLock::new(Board::default()));
    let metrics = Arc::new(Metrics::new());
    let trigger = Arc::new(Notify::new());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| DaemonError::Listen {
            addr: config.listen,
            source,
        })?;
    tracing::info!(%addr, "serving /healthz /readyz /metrics /status /hooks/github");
    let pulls = config
        .github
        .as_ref()
        .map(|github| PullQueue::new(pulls::Followed::new(github.repository.clone())));
    let state = serve::HttpState {
        board: board.clone(),
        metrics: metrics.clone(),
        trigger: trigger.clone(),
        webhook_secret: config.webhook_secret.clone(),
        branch: config.branch.clone(),
        pulls: pulls.clone(),
        deliveries: Arc::default(),
    };
    let mut http_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        let stop = async move {
            let _ = http_shutdown.wait_for(|stop| *stop).await;
        };
        serve::serve(listener, serve::router(state), stop).await;
    });
    // A fresh process is no leader yet: a stale label (a container restarted in the
    // same Pod) is removed first; without election it leads from the start.
    let (wanted_label, wanted) = watch::channel(match config.election {
        Some(_) => leader::label::Wanted::Standby,
        None => leader::label::Wanted::Leader,
    });
    let labeler = leader::label::start(
        config.pod.clone(),
        Writer::new(client.clone(), RetryPolicy::default(), WriteMode::Persist),
        wanted,
        config.backoff,
        &board,
        &metrics,
    )
    .await;
    let handles = Handles {
        board: board.clone(),
        metrics: metrics.clone(),
        trigger: trigger.clone(),
        addr,
        pulls,
        wanted_label: Arc::new(wanted_label),
    };
    if config.election.is_none() {
        board.write().await.leader = true;
        metrics.leader.set(1);
    }
    if let Some(started) = started {
        let _ = started.send(handles.clone());
    }
    let result = match config.election.clone() {
        None => reconcile(&config, &client, &handles, shutdown.clone()).await,
        Some(election) => {
            leader::run_as_leader(&election, &client, &handles, shutdown.clone(), |stop| {
                reconcile(&config, &client, &handles, stop)
            })
            .await
        }
    };
    handles
        .wanted_label
        .send_replace(leader::label::Wanted::Stopped);
    if let Some(labeler) = labeler {
        // Bounded: one GET and one patch, each with its own timeout.
        let _ = tokio::time::timeout(Duration::from_secs(30), labeler).await;
    }
    let _ = server.await;
    result
}

/// Runs the source task, the watch cache and the loop until `stop` becomes true.
async fn reconcile(
    config: &DaemonConfig,
    client: &Client,
    handles: &Handles,
    stop: watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    let _watch = match &config.source {
        Source::Local(local) => Some(local.watch(handles.trigger.clone())?),
        Source::Git(_) => None,
    };
    let (touched_tx, touched_rx) = mpsc::unbounded_channel();
    let kinds = reconcile::cache::served_kinds(client).await;
    let (cache, watchers) = reconcile::cache::LiveCache::start(
        client,
        &kinds,
        &config.instance,
        &config.namespaces,
        touched_tx,
    );
    // Warm the cache before the first decision, so a restart sees what it already applied.
    if !cache.wait_ready(Duration::from_secs(30)).await {
        tracing::warn!("watch cache not warm after 30s; reconciling anyway");
    }
    let (snapshots_tx, snapshots_rx) = watch::channel(None);
    let fetcher = tokio::spawn(reconcile::fetcher::run(
        config.source.clone(),
        config.interval,
        handles.trigger.clone(),
        snapshots_tx,
        handles.metrics.clone(),
        handles.board.clone(),
        stop.clone(),
    ));
    let shared = Arc::new(reconcile::Shared {
        config: config.clone(),
        client: client.clone(),
        owners: reconcile::owners::CacheOwners {
            cache: cache.clone(),
            cluster: crate::engine::ClusterOwners::new(client.clone(), RetryPolicy::default()),
        },
        cache,
        writer: Writer::new(client.clone(), RetryPolicy::default(), WriteMode::Persist),
        metrics: handles.metrics.clone(),
        board: handles.board.clone(),
        analyst: crate::engine::rollout::PrometheusAnalyst::with_auth(
            crate::prometheus::DEFAULT_TIMEOUT,
            config.prometheus_auth.clone(),
        ),
    });
    let worker = start_pulls(config, &shared, handles, &snapshots_rx, &stop);
    reconcile::Runner::new(shared)
        .run(snapshots_rx, touched_rx, stop)
        .await;
    let _ = fetcher.await;
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    for watcher in watchers {
        watcher.abort();
    }
    Ok(())
}

/// Starts the pull-request worker when GitHub is configured.
fn start_pulls(
    config: &DaemonConfig,
    shared: &Arc<reconcile::Shared>,
    handles: &Handles,
    snapshots: &watch::Receiver<Option<Arc<crate::source::Snapshot>>>,
    stop: &watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let (github, queue) = (config.github.as_ref()?, handles.pulls.clone()?);
    let client = match github.client(handles.metrics.forge.clone()) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "GitHub client: pull requests are not acted on");
            handles.metrics.error(error.metric_label());
            return None;
        }
    };
    let worker = pulls::Worker::new(
        shared.clone(),
        client,
        github.api_url.clone(),
        snapshots.clone(),
        queue.followed.clone(),
    );
    Some(tokio::spawn(worker.run(queue, stop.clone())))
}
