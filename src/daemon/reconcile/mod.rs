//! The reconcile loop: a scheduler over one map of `ServiceId` to an [`Entry`] holding the
//! service's phase in the loop and its last outcome. Every reconcile is the engine's step
//! (`engine::Step::reconcile_service`), the one `modelship apply` runs per service; the
//! loop only decides when: on a revision, a watch event, a retry after a backoff, or a
//! rollout that is due. `/status` is a view of the map: each entry's last outcome is
//! written to its `ServiceStatus` on the board with the entry ([`record`]).
//!
//! ```text
//! snapshot ──prepare (Keep::Specs) + engine::namespace_labels──▶ Revision
//!    ├──▶ every service it names: Queued(Revision)
//!    └──▶ the gone services (cache view) ── Revision::guard ── engine::prune
//! watch event (service touched) ──▶ Queued(Touched)      retry timer ──▶ Queued(Retry)
//!                                          │ ≤ concurrency at once
//!       Running ── engine step over the cache's view of the service ──▶ ServiceOutcome
//!          next: Idle | RetryAt(backoff) | RolloutDue(the rollout's due time)
//! RolloutDue timer ──▶ Queued(Rollout)
//! ```
//!
//! Each service's place in the loop is one [`Phase`] in one map, so it is always in exactly
//! one state. One service's failure never touches another.

pub mod cache;
pub mod fetcher;
pub mod live;
pub(crate) mod owners;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use kube::Client;
use tokio::sync::{RwLock, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant as TokioInstant;

use super::DaemonConfig;
use super::serve::metrics::Metrics;
use super::serve::status::{Board, ServiceStatus};
use crate::backoff::{Backoff, Jitter};
use crate::cluster::{RetryPolicy, Writer};
use crate::compile;
use crate::engine::{
    self, Keep, Mode, NamespaceLabels, Next, Prepared, Revision, ServiceOutcome, Step, Strategy,
    Trigger, Verdict, rollout,
};
use crate::meta::ServiceId;
use crate::plan::{BlockReason, Detail, PruneMode};
use crate::source::Snapshot;
use crate::spec::LoadOptions;

/// Why a service is reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A new revision or spec.
    Revision,
    /// A watch event on one of its objects.
    Touched,
    /// A scheduled retry.
    Retry,
    /// A canary rollout is due (the end of a step, a load timeout).
    Rollout,
}

/// Where one service stands in the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing to do until a revision, a watch event or a retry.
    Idle,
    /// Waiting for a free reconcile slot.
    Queued(Reason),
    /// A reconcile runs; `again` holds a trigger that came meanwhile (it runs next).
    Running { again: Option<Reason> },
    /// The last reconcile failed; it is retried at `at`, as attempt `attempt`.
    RetryAt { at: TokioInstant, attempt: u32 },
    /// In sync, with a canary rollout that is due again at `at`.
    RolloutDue { at: TokioInstant },
}

/// One service the loop knows, by its phase in the loop. What its last step found is its
/// view on the board (`ServiceStatus`, on `/status`), written with the entry.
#[derive(Debug, Clone)]
struct Entry {
    phase: Phase,
    /// The spec hash last found in sync: a change seen under it is drift.
    applied: Option<String>,
    /// Failed attempts since the last success.
    failures: u32,
}

impl Entry {
    fn new() -> Self {
        Entry {
            phase: Phase::Idle,
            applied: None,
            failures: 0,
        }
    }

    /// Asks for a reconcile; a running one is followed by another.
    fn trigger(&mut self, reason: Reason) {
        self.phase = match self.phase {
            Phase::Running { again } => Phase::Running {
                again: again.or(Some(reason)),
            },
            Phase::Queued(queued) => Phase::Queued(queued),
            Phase::Idle | Phase::RetryAt { .. } | Phase::RolloutDue { .. } => Phase::Queued(reason),
        };
    }
}

/// A finished step, with when and for which revision it ran.
#[derive(Debug)]
struct Done {
    outcome: ServiceOutcome,
    revision: String,
    seconds: f64,
}

/// Everything a reconcile needs, shared by the tasks.
pub(crate) struct Shared {
    pub config: DaemonConfig,
    pub client: Client,
    pub cache: cache::LiveCache,
    /// Who holds the objects a step would create: the cache, then the API.
    pub owners: owners::CacheOwners,
    pub writer: Writer,
    pub metrics: Arc<Metrics>,
    pub board: Arc<RwLock<Board>>,
    pub analyst: rollout::PrometheusAnalyst,
}

impl Shared {
    fn strategy(&self) -> Strategy {
        Strategy {
            prune: self.config.prune,
            create_namespaces: self.config.create_namespaces,
        }
    }

    /// The labels of the namespaces a revision's policies see (`engine::namespace_labels`:
    /// its services' and every live service's namespaces; within `--namespaces`, one GET
    /// each). Unknown, with a warning, when they cannot be read.
    pub(crate) async fn namespace_labels(&self, prepared: &Prepared) -> NamespaceLabels {
        let live = self.cache.read().await.services();
        let retry = RetryPolicy::default();
        let scope = &self.config.namespaces;
        let read = engine::namespace_labels_in(&self.client, prepared, live, &retry, scope).await;
        read.unwrap_or_else(|error| {
            tracing::warn!(%error, "namespace labels unknown to policies");
            self.metrics.error(error.metric_label());
            NamespaceLabels::new()
        })
    }
}

/// The loop's state.
pub(crate) struct Runner {
    shared: Arc<Shared>,
    revision: Option<Arc<Revision>>,
    services: BTreeMap<ServiceId, Entry>,
    /// The Warn violations each service's last plan showed (for `/status` diagnostics).
    warnings: BTreeMap<ServiceId, Vec<String>>,
    jitter: Jitter,
    backoff: Backoff,
    /// Services of the first revision not reconciled yet (readiness).
    first_pending: Option<BTreeSet<ServiceId>>,
}

impl Runner {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let backoff = shared.config.backoff;
        Runner {
            shared,
            revision: None,
            services: BTreeMap::new(),
            warnings: BTreeMap::new(),
            jitter: Jitter::from_clock(),
            backoff,
            first_pending: None,
        }
    }

    /// Runs until `shutdown`; in-flight reconciles finish before it returns.
    pub(crate) async fn run(
        mut self,
        mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
        mut touched: mpsc::UnboundedReceiver<ServiceId>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tasks: JoinSet<Done> = JoinSet::new();
        // The current snapshot, if the source already has one.
        snapshots.mark_changed();
        loop {
            self.start_queued(&mut tasks);
            let next_retry = self.next_retry();
            tokio::select! {
                changed = snapshots.changed() => {
                    if changed.is_err() { break; }
                    let snapshot = snapshots.borrow_and_update().clone();
                    if let Some(snapshot) = snapshot {
                        self.on_snapshot(&snapshot).await;
                    }
                }
                Some(id) = touched.recv() => self.on_touched(&id),
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok(done) = done {
                        self.on_done(done).await;
                    }
                }
                _ = crate::time::sleep_until(next_retry), if next_retry.is_some() => {
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
            if let Ok(done) = done {
                self.on_done(done).await;
            }
        }
    }

    fn next_retry(&self) -> Option<TokioInstant> {
        self.services
            .values()
            .filter_map(|e| match e.phase {
                Phase::RetryAt { at, .. } | Phase::RolloutDue { at } => Some(at),
                _ => None,
            })
            .min()
    }

    /// A watch event: the service is looked at again, when the revision names it.
    fn on_touched(&mut self, id: &ServiceId) {
        let named = self.revision.as_ref().is_some_and(|r| r.names(id));
        if let (true, Some(entry)) = (named, self.services.get_mut(id)) {
            entry.trigger(Reason::Touched);
        }
    }

    async fn on_snapshot(&mut self, snapshot: &Snapshot) {
        let source = compile::Source {
            repo: self.shared.config.repo_name.clone(),
            commit: snapshot.revision.commit().map(str::to_string),
            instance: self.shared.config.instance.clone(),
        };
        // Held until the next revision: a service's objects are compiled by its step.
        let load = LoadOptions {
            own_namespace: self.shared.config.own_namespace(),
            governing: None,
        };
        let mut prepared = engine::prepare_with(
            &snapshot.files,
            &BTreeMap::new(),
            &source,
            Keep::Specs,
            load,
        );
        // A service outside --namespaces is refused here, before any request is made.
        prepared.confine(&self.shared.config.namespaces);
        let labels = self.shared.namespace_labels(&prepared).await;
        let live = self.shared.cache.read().await.services();
        let revision = Arc::new(Revision::new(prepared, labels, &live));
        let named = revision.services();
        {
            let mut board = self.shared.board.write().await;
            board.revision = Some(revision.id.to_string());
        }
        self.warnings.retain(|id, _| named.contains(id));
        // Services the revision no longer names leave the loop (their view stays on the
        // board: pruned, kept by the guard, or as last seen).
        self.services.retain(|id, _| named.contains(id));
        self.publish_diagnostics(&revision).await;
        for id in &named {
            self.services
                .entry(id.clone())
                .or_insert_with(Entry::new)
                .trigger(Reason::Revision);
        }
        self.revision = Some(revision.clone());
        if self.first_pending.is_none() {
            self.first_pending = Some(named);
            self.check_ready().await;
        }
        self.prune(&revision).await;
    }

    /// Puts the revision's problems on the board: its diagnostics, and the Warn
    /// violations its services' last plans showed.
    async fn publish_diagnostics(&self, revision: &Revision) {
        let mut diagnostics = revision.prepared.error_lines();
        diagnostics.extend(self.warnings.values().flatten().cloned());
        self.shared.board.write().await.diagnostics = diagnostics;
    }

    /// Prunes the services the revision no longer names, within the guard (the engine
    /// decides), and shows them pruned.
    async fn prune(&mut self, revision: &Revision) {
        let gone = {
            let cache = self.shared.cache.read().await;
            let ids: BTreeSet<ServiceId> = cache
                .services()
                .into_iter()
                .filter(|id| !revision.names(id))
                .collect();
            if ids.is_empty() {
                Vec::new()
            } else {
                revision.gone(&cache.view(Some(&ids)), Detail::Decisions)
            }
        };
        let strategy = self.shared.strategy();
        let guard = match strategy.prune {
            PruneMode::Guarded => revision.guard(&gone),
            PruneMode::Keep | PruneMode::Unguarded => None,
        };
        if let Some(guard) = guard {
            tracing::error!(%guard, "mass-prune guard: nothing pruned");
            self.shared
                .metrics
                .error(BlockReason::MassPrune.metric_label());
            let message = guard.to_string();
            let mut board = self.shared.board.write().await;
            board.mass_prune = Some(message.clone());
            // The services the guard keeps: blocked, with its verdict, until a revision
            // names them again or the guard allows their pruning.
            for id in &guard.kept {
                let status = board.service(id);
                status.verdict = Some(Verdict::Blocked {
                    reason: BlockReason::MassPrune,
                    message: message.clone(),
                });
                status.last_error = Some(message.clone());
            }
            self.shared.metrics.set_services(board.counts());
            return;
        }
        self.shared.board.write().await.mass_prune = None;
        let report = engine::prune(&self.shared.writer, &gone, strategy.prune).await;
        for key in &report.deleted {
            self.shared.metrics.writes.inc();
            self.shared.cache.forget(key).await;
        }
        let mut board = self.shared.board.write().await;
        for id in &report.pruned {
            tracing::info!(namespace = id.namespace(), service = id.name(), "pruned");
            self.services.remove(id);
            let status = board.service(id);
            status.verdict = Some(Verdict::Pruned);
            status.last_error = None;
            self.shared
                .metrics
                .reconciled(Verdict::Pruned.as_str(), 0.0);
        }
        for (id, error) in &report.failures {
            board.service(id).last_error = Some(error.to_string());
            self.shared.metrics.error(error.metric_label());
        }
        self.shared.metrics.set_services(board.counts());
    }

    fn due_retries(&mut self) {
        let now = TokioInstant::now();
        for entry in self.services.values_mut() {
            match entry.phase {
                Phase::RetryAt { at, .. } if at <= now => {
                    entry.phase = Phase::Queued(Reason::Retry);
                }
                Phase::RolloutDue { at } if at <= now => {
                    entry.phase = Phase::Queued(Reason::Rollout);
                }
                _ => {}
            }
        }
    }

    fn start_queued(&mut self, tasks: &mut JoinSet<Done>) {
        let Some(revision) = self.revision.clone() else {
            return;
        };
        let limit = self.shared.config.concurrency.max(1);
        let running = self
            .services
            .values()
            .filter(|e| matches!(e.phase, Phase::Running { .. }))
            .count();
        let mut free = limit.saturating_sub(running);
        for (id, entry) in &mut self.services {
            if free == 0 {
                break;
            }
            let Phase::Queued(reason) = entry.phase else {
                continue;
            };
            let spec_hash = revision.prepared.spec_hashes.get(id);
            // A change under a spec already found in sync is drift; anything else a change.
            let trigger = if reason != Reason::Revision
                && entry.applied.is_some()
                && entry.applied.as_ref() == spec_hash
            {
                Trigger::Recheck
            } else {
                Trigger::Change
            };
            entry.phase = Phase::Running { again: None };
            free -= 1;
            tasks.spawn(reconcile(
                self.shared.clone(),
                revision.clone(),
                id.clone(),
                trigger,
            ));
        }
    }

    async fn on_done(&mut self, done: Done) {
        let Done {
            outcome,
            revision,
            seconds,
        } = done;
        let metrics = &self.shared.metrics;
        let verdict = &outcome.verdict;
        metrics.reconciled(verdict.as_str(), seconds);
        if outcome.drift && outcome.written.writes() > 0 {
            metrics.drift_corrections.inc();
        }
        if let Some(cause) = verdict.cause() {
            metrics.error(cause);
        }
        for warning in &outcome.warnings {
            tracing::warn!(error = %warning, "rollout event or command not recorded");
            metrics.error(warning.metric_label());
        }
        if let Some(rollout) = &outcome.rollout {
            metrics
                .rollouts
                .observe(&outcome.id, &rollout.status, rollout.analysis.as_ref());
        }
        let warnings: Vec<String> = outcome
            .plan
            .violations
            .iter()
            .filter(|v| !v.is_deny())
            .map(|v| {
                tracing::warn!(policy = %v, "policy");
                v.to_string()
            })
            .collect();
        let warnings_changed = if warnings.is_empty() {
            self.warnings.remove(&outcome.id).is_some()
        } else {
            self.warnings.insert(outcome.id.clone(), warnings.clone()) != Some(warnings)
        };
        let current = self
            .revision
            .as_ref()
            .is_some_and(|r| r.id.as_str() == revision);
        if let Some(entry) = self.services.get_mut(&outcome.id) {
            let mut board = self.shared.board.write().await;
            let status = board.service(&outcome.id);
            record(
                entry,
                status,
                &outcome,
                revision,
                current,
                (&self.backoff, &mut self.jitter),
            );
            self.shared.metrics.set_services(board.counts());
        }
        if warnings_changed && let Some(revision) = self.revision.clone() {
            self.publish_diagnostics(&revision).await;
        }
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

/// Records a step's outcome in its service's entry and its view on the board, and
/// schedules the next step: a trigger that came meanwhile first, then a step of the newest
/// revision if this one was older, then what the step asked for (a retry after a backoff,
/// a rollout due, or nothing).
fn record(
    entry: &mut Entry,
    status: &mut ServiceStatus,
    outcome: &ServiceOutcome,
    revision: String,
    current: bool,
    (backoff, jitter): (&Backoff, &mut Jitter),
) {
    let again = match entry.phase {
        Phase::Running { again } => again,
        _ => None,
    };
    status.objects = outcome.objects;
    status.last_writes = outcome.written.writes();
    if let Some(rollout) = &outcome.rollout {
        status.rollout = Some(rollout.status.clone());
    }
    status.verdict = Some(outcome.verdict.clone());
    if let Some(message) = outcome.verdict.message() {
        status.last_error = Some(message.to_string());
    }
    if outcome.next == Next::Retry {
        entry.failures += 1;
        status.failures = entry.failures;
        let delay = backoff.delay(entry.failures, jitter.unit());
        tracing::warn!(
            namespace = outcome.id.namespace(),
            service = outcome.id.name(),
            error = outcome.verdict.message().unwrap_or_default(),
            retry_in = ?delay,
            "reconcile failed"
        );
        entry.phase = match again {
            Some(Reason::Revision) => Phase::Queued(Reason::Revision),
            _ => Phase::RetryAt {
                at: TokioInstant::now() + delay,
                attempt: entry.failures,
            },
        };
        return;
    }
    status.revision = Some(revision);
    status.spec_hash.clone_from(&outcome.spec_hash);
    entry.failures = 0;
    status.failures = 0;
    if outcome.verdict.is_in_sync() {
        status.last_error = None;
        entry.applied.clone_from(&outcome.spec_hash);
    }
    entry.phase = match (again, outcome.next) {
        (Some(reason), _) => Phase::Queued(reason),
        // A reconcile of an older revision is followed by one of the newest.
        (None, _) if !current => Phase::Queued(Reason::Revision),
        (None, Next::At(at)) => Phase::RolloutDue { at: instant_of(at) },
        (None, Next::Idle | Next::Retry) => Phase::Idle,
    };
}

/// The instant of the runtime's clock at a wall-clock time (now when it has passed).
fn instant_of(at: jiff::Timestamp) -> TokioInstant {
    let wait = at.duration_since(jiff::Timestamp::now());
    TokioInstant::now() + std::time::Duration::try_from(wait).unwrap_or_default()
}

/// One step of one service over the cache's view of its objects, at the daemon's clock.
#[tracing::instrument(skip_all, fields(namespace = id.namespace(), service = id.name(), revision = %revision.id))]
async fn reconcile(
    shared: Arc<Shared>,
    revision: Arc<Revision>,
    id: ServiceId,
    trigger: Trigger,
) -> Done {
    let started = Instant::now();
    let only = BTreeSet::from([id.clone()]);
    let live = shared.cache.read().await.view(Some(&only));
    let step = Step {
        revision: &revision,
        // The daemon's clock; the engine never reads one itself.
        now: jiff::Timestamp::now(),
        analyst: &shared.analyst,
        settings: shared.config.rollout,
        detail: Detail::Decisions,
        owners: &shared.owners,
        mode: Mode::Write {
            writer: &shared.writer,
            strategy: shared.strategy(),
            drift: shared.config.drift,
        },
    };
    let outcome = step.reconcile_service(&id, &live, trigger).await;
    // Record what the server returned at once, so that the watch event of our own write
    // (or a re-check before it arrives) sees the service in sync.
    for (_, stored) in &outcome.written.applied {
        shared.cache.record(stored.clone()).await;
    }
    for key in &outcome.written.deleted {
        shared.cache.forget(key).await;
    }
    for _ in 0..outcome.written.writes() {
        shared.metrics.writes.inc();
    }
    Done {
        outcome,
        revision: revision.id.to_string(),
        seconds: started.elapsed().as_secs_f64(),
    }
}
