//! The reconcile loop: turns revisions and watch events into per-service reconciles, with
//! a concurrency limit, per-service retries with backoff, and isolation (one service's
//! failure never touches another).
//!
//! ```text
//! snapshots ──load+compile──▶ work per service ─┐
//! watch events (service touched) ───────────────┼─▶ queue ─▶ ≤ concurrency reconciles
//! retry timers (backoff + jitter) ──────────────┘             │ diff against the cache
//!                                                             │ SSA changed objects,
//!                                                             ▼ delete orphans
//!                                                  Board (/status), Metrics
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{RwLock, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant as TokioInstant;

use super::apply::{ApplyError, Writer};
use super::backoff::{Backoff, Jitter};
use super::cache::LiveCache;
use super::metrics::Metrics;
use super::status::{Board, ServiceState};
use super::sync::{ServiceId, ServiceWork, diff_service, prune_candidates, work_items};
use super::{DaemonConfig, DriftMode};
use crate::compile::{self, compile_repository};
use crate::source::Snapshot;
use crate::spec::Severity;

/// Why a service is reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// A new revision or spec.
    Revision,
    /// A watch event on one of its objects.
    Touched,
    /// A scheduled retry.
    Retry,
}

/// Why one service reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The plan of the service could not be made (a desired object without a name: a
    /// compiler bug).
    #[error(transparent)]
    Plan(#[from] crate::plan::Error),
    /// A write failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

impl ReconcileError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::Plan(e) => e.metric_label(),
            ReconcileError::Apply(e) => e.metric_label(),
        }
    }
}

/// The result of one service reconcile.
#[derive(Debug)]
struct Outcome {
    id: ServiceId,
    revision: String,
    spec_hash: String,
    state: ServiceState,
    writes: usize,
    drift: bool,
    error: Option<ReconcileError>,
    objects: usize,
    seconds: f64,
}

/// Everything a reconcile needs, shared by the tasks.
pub(super) struct Shared {
    pub config: DaemonConfig,
    pub cache: LiveCache,
    pub writer: Writer,
    pub metrics: Arc<Metrics>,
    pub board: Arc<RwLock<Board>>,
}

/// The loop's state.
pub(super) struct Runner {
    shared: Arc<Shared>,
    revision: Option<String>,
    work: BTreeMap<ServiceId, Arc<ServiceWork>>,
    /// spec-hash last applied with success, per service.
    applied: BTreeMap<ServiceId, String>,
    queue: BTreeMap<ServiceId, Reason>,
    running: BTreeSet<ServiceId>,
    retries: BTreeMap<ServiceId, (TokioInstant, u32)>,
    failures: BTreeMap<ServiceId, u32>,
    jitter: Jitter,
    backoff: Backoff,
    /// Services of the first revision not reconciled yet (readiness).
    first_pending: Option<BTreeSet<ServiceId>>,
}

impl Runner {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        let backoff = shared.config.backoff;
        Runner {
            shared,
            revision: None,
            work: BTreeMap::new(),
            applied: BTreeMap::new(),
            queue: BTreeMap::new(),
            running: BTreeSet::new(),
            retries: BTreeMap::new(),
            failures: BTreeMap::new(),
            jitter: Jitter::from_clock(),
            backoff,
            first_pending: None,
        }
    }

    /// Runs until `shutdown`; in-flight reconciles finish before it returns.
    pub(super) async fn run(
        mut self,
        mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
        mut touched: mpsc::UnboundedReceiver<ServiceId>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tasks: JoinSet<Outcome> = JoinSet::new();
        // The current snapshot, if the source already has one.
        snapshots.mark_changed();
        loop {
            self.start_queued(&mut tasks);
            let next_retry = self.retries.values().map(|(at, _)| *at).min();
            tokio::select! {
                changed = snapshots.changed() => {
                    if changed.is_err() { break; }
                    let snapshot = snapshots.borrow_and_update().clone();
                    if let Some(snapshot) = snapshot {
                        self.on_snapshot(&snapshot).await;
                    }
                }
                Some(id) = touched.recv() => {
                    if self.work.contains_key(&id) {
                        self.queue.entry(id).or_insert(Reason::Touched);
                    }
                }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok(outcome) = done {
                        self.on_outcome(outcome).await;
                    }
                }
                _ = sleep_until(next_retry), if next_retry.is_some() => {
                    self.due_retries();
                }
                _ = shutdown.changed() => break,
            }
        }
        tracing::info!(
            in_flight = tasks.len(),
            "stopping: finishing in-flight reconciles"
        );
        while let Some(done) = tasks.join_next().await {
            if let Ok(outcome) = done {
                self.on_outcome(outcome).await;
            }
        }
    }

    async fn on_snapshot(&mut self, snapshot: &Snapshot) {
        let source = compile::Source {
            repo: self.shared.config.repo_name.clone(),
            commit: (!snapshot.revision.starts_with("local-")).then(|| snapshot.revision.clone()),
        };
        let repository = crate::spec::load(&snapshot.files);
        let desired = compile_repository(&repository, &source);
        let (work, mut invalid) = work_items(&desired);
        let errors: Vec<String> = repository
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(ToString::to_string)
            .collect();
        for (namespace, name) in &repository.invalid {
            invalid.push(super::sync::InvalidService {
                namespace: namespace.clone(),
                name: name.clone(),
                error: format!("invalid spec: {}", errors.join("; ")),
                cause: "invalid_spec",
            });
        }
        let verdict = super::guard::check(&snapshot.files, &repository, &desired);
        for report in &verdict.reports {
            tracing::warn!(policy = %report, "policy");
        }
        let blocked: BTreeSet<ServiceId> = verdict
            .blocked
            .iter()
            .map(|s| (s.namespace.clone(), s.name.clone()))
            .collect();
        let work: Vec<ServiceWork> = work
            .into_iter()
            .filter(|w| !blocked.contains(&w.id()))
            .collect();
        invalid.extend(verdict.blocked);
        let errors: Vec<String> = errors.into_iter().chain(verdict.reports).collect();
        let repository_valid = repository.is_valid() && invalid.is_empty() && !verdict.broken;
        self.revision = Some(snapshot.revision.clone());
        self.work = work.into_iter().map(|w| (w.id(), Arc::new(w))).collect();
        {
            let mut board = self.shared.board.write().await;
            board.revision = Some(snapshot.revision.clone());
            board.diagnostics = errors;
            for service in &invalid {
                let status = board.service(&service.namespace, &service.name);
                status.state = ServiceState::Invalid;
                status.last_error = Some(service.error.clone());
                self.shared.metrics.reconciled("invalid", 0.0);
                self.shared.metrics.error(service.cause);
            }
            self.shared.metrics.set_services(board.counts());
        }
        for id in self.work.keys() {
            self.queue.insert(id.clone(), Reason::Revision);
            self.retries.remove(id);
        }
        if self.first_pending.is_none() {
            self.first_pending = Some(self.work.keys().cloned().collect());
            self.check_ready().await;
        }
        let present: BTreeSet<ServiceId> = self
            .work
            .keys()
            .cloned()
            .chain(
                invalid
                    .iter()
                    .map(|s| (s.namespace.clone(), s.name.clone())),
            )
            .collect();
        self.prune(&present, repository_valid).await;
    }

    async fn prune(&mut self, present: &BTreeSet<ServiceId>, repository_valid: bool) {
        let candidates = {
            let live = self.shared.cache.read().await;
            prune_candidates(
                present,
                repository_valid,
                self.shared.config.allow_mass_prune,
                &*live,
            )
        };
        let services = match candidates {
            Ok(services) => services,
            Err(guard) => {
                tracing::error!(%guard, "mass-prune guard: nothing pruned");
                self.shared.metrics.error("mass_prune");
                return;
            }
        };
        for (namespace, name) in services {
            let keys = {
                use super::sync::Live as _;
                self.shared.cache.read().await.owned_by(&namespace, &name)
            };
            let mut error = None;
            for key in keys.iter().rev() {
                match self.shared.writer.delete(key).await {
                    Ok(()) => {
                        self.shared.metrics.writes.inc();
                    }
                    Err(e) => error = Some(e),
                }
            }
            let mut board = self.shared.board.write().await;
            let status = board.service(&namespace, &name);
            match error {
                None => {
                    tracing::info!(%namespace, service = %name, objects = keys.len(), "pruned");
                    status.state = ServiceState::Pruned;
                    status.last_error = None;
                    self.shared.metrics.reconciled("pruned", 0.0);
                }
                Some(e) => {
                    status.last_error = Some(e.to_string());
                    self.shared.metrics.error(e.metric_label());
                }
            }
        }
    }

    fn due_retries(&mut self) {
        let now = TokioInstant::now();
        let due: Vec<ServiceId> = self
            .retries
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.retries.remove(&id);
            if self.work.contains_key(&id) {
                self.queue.entry(id).or_insert(Reason::Retry);
            }
        }
    }

    fn start_queued(&mut self, tasks: &mut JoinSet<Outcome>) {
        let limit = self.shared.config.concurrency.max(1);
        let ready: Vec<ServiceId> = self
            .queue
            .keys()
            .filter(|id| !self.running.contains(*id))
            .take(limit.saturating_sub(self.running.len()))
            .cloned()
            .collect();
        for id in ready {
            let Some(reason) = self.queue.remove(&id) else {
                continue;
            };
            let (Some(work), Some(revision)) = (self.work.get(&id), self.revision.clone()) else {
                continue;
            };
            // A change under a spec we already applied is drift; anything else is a change.
            let drift =
                reason != Reason::Revision && self.applied.get(&id) == Some(&work.spec_hash);
            self.running.insert(id);
            tasks.spawn(reconcile(
                self.shared.clone(),
                work.clone(),
                revision,
                drift,
            ));
        }
    }

    async fn on_outcome(&mut self, outcome: Outcome) {
        self.running.remove(&outcome.id);
        let metrics = &self.shared.metrics;
        metrics.reconciled(outcome.state.as_str(), outcome.seconds);
        if outcome.drift && outcome.writes > 0 {
            metrics.drift_corrections.inc();
        }
        let mut board = self.shared.board.write().await;
        let status = board.service(&outcome.id.0, &outcome.id.1);
        status.state = outcome.state;
        status.objects = outcome.objects;
        status.last_writes = outcome.writes;
        match &outcome.error {
            None => {
                status.revision = Some(outcome.revision.clone());
                status.spec_hash = Some(outcome.spec_hash.clone());
                status.failures = 0;
                if outcome.state == ServiceState::InSync {
                    status.last_error = None;
                    self.applied.insert(outcome.id.clone(), outcome.spec_hash);
                }
                self.failures.remove(&outcome.id);
            }
            Some(error) => {
                metrics.error(error.metric_label());
                let attempt = self.failures.entry(outcome.id.clone()).or_default();
                *attempt += 1;
                status.failures = *attempt;
                status.last_error = Some(error.to_string());
                let delay = self.backoff.delay(*attempt, self.jitter.unit());
                tracing::warn!(namespace = %outcome.id.0, service = %outcome.id.1, %error, retry_in = ?delay, "reconcile failed");
                self.retries
                    .insert(outcome.id.clone(), (TokioInstant::now() + delay, *attempt));
            }
        }
        metrics.set_services(board.counts());
        drop(board);
        if let Some(pending) = self.first_pending.as_mut() {
            pending.remove(&outcome.id);
        }
        self.check_ready().await;
    }

    async fn check_ready(&mut self) {
        if self.first_pending.as_ref().is_some_and(BTreeSet::is_empty) {
            let mut board = self.shared.board.write().await;
            if !board.ready {
                tracing::info!("first revision reconciled: ready");
            }
            board.ready = true;
        }
    }
}

async fn sleep_until(at: Option<TokioInstant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reconciles one service: diff against the cache, then (unless drift is only reported)
/// apply what differs and delete orphans.
#[tracing::instrument(skip_all, fields(namespace = %work.namespace, service = %work.name, %revision))]
async fn reconcile(
    shared: Arc<Shared>,
    work: Arc<ServiceWork>,
    revision: String,
    drift: bool,
) -> Outcome {
    let started = Instant::now();
    let diff = {
        let live = shared.cache.read().await;
        diff_service(&work, &*live)
    };
    let mut outcome = Outcome {
        id: work.id(),
        revision,
        spec_hash: work.spec_hash.clone(),
        state: ServiceState::InSync,
        writes: 0,
        drift,
        error: None,
        objects: work.objects.len(),
        seconds: 0.0,
    };
    let diff = match diff {
        Ok(diff) => diff,
        Err(error) => {
            outcome.state = ServiceState::Failed;
            outcome.error = Some(error.into());
            outcome.seconds = started.elapsed().as_secs_f64();
            return outcome;
        }
    };
    if !diff.is_empty() && drift && shared.config.drift == DriftMode::Warn {
        tracing::warn!(objects = ?diff.apply, orphans = ?diff.orphans, "drift detected (not healed: --drift=warn)");
        outcome.state = ServiceState::Drifted;
    } else if !diff.is_empty() {
        if drift {
            tracing::info!(objects = ?diff.apply, "drift detected: healing");
        }
        if let Err(error) = write(&shared, &work, &diff, &mut outcome.writes).await {
            outcome.state = ServiceState::Failed;
            outcome.error = Some(error.into());
        } else {
            tracing::info!(writes = outcome.writes, "applied");
        }
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome
}

async fn write(
    shared: &Shared,
    work: &ServiceWork,
    diff: &super::sync::ServiceDiff,
    writes: &mut usize,
) -> Result<(), ApplyError> {
    shared.writer.ensure_namespace(&work.namespace).await?;
    for key in &diff.apply {
        let Some(object) = work.object(key) else {
            continue;
        };
        let stored = shared.writer.apply(key, &object).await?;
        *writes += 1;
        shared.metrics.writes.inc();
        // Record what the server returned at once, so that the watch event of our own
        // write (or a re-check before it arrives) sees the service in sync.
        shared.cache.record(stored).await;
    }
    for key in &diff.orphans {
        shared.writer.delete(key).await?;
        *writes += 1;
        shared.metrics.writes.inc();
        shared.cache.forget(key).await;
    }
    Ok(())
}
