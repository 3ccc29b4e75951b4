//! The reconcile loop: turns revisions and watch events into per-service reconciles through
//! the engine, with a concurrency limit, per-service retries with backoff, and isolation
//! (one service's failure never touches another).
//!
//! ```text
//! snapshot ──engine::prepare──▶ Prepared ──engine::plan_in_chunks (all, over the cache)──▶ Plan
//!    │                                     blocked services → /status; prune (guarded)
//!    └──▶ every present service Queued(Revision)
//! watch event (service touched) ──▶ Queued(Touched)      retry timer ──▶ Queued(Retry)
//!                                          │ ≤ concurrency at once
//!       Running ── engine::plan (this service) ── engine::apply_service ──▶ Idle | RetryAt
//!          canary service: engine::rollout::advance_service (the daemon's clock) and
//!          rollout::plan_service first, rollout::record after ──▶ RolloutDue(requeue_at)
//! RolloutDue timer ──▶ Queued(Rollout)
//! ```
//!
//! Each service's place in the loop is one [`Phase`] in one map, so it is always in exactly
//! one state.

pub mod cache;
pub mod fetcher;
pub mod live;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use kube::Client;
use tokio::sync::{RwLock, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant as TokioInstant;

use super::serve::metrics::Metrics;
use super::serve::status::{Board, ServiceState};
use super::{DaemonConfig, DriftMode};
use crate::backoff::{Backoff, Jitter};
use crate::cluster::{self, Kinds, RetryPolicy, Writer};
use crate::compile;
use crate::engine::{self, Cause, Keep, NamespaceLabels, Prepared, Scope, Strategy, rollout};
use crate::meta::ServiceId;
use crate::plan::{Detail, Plan, ServicePlan, ServiceStatus};
use crate::source::Snapshot;
use cache::LiveCache;

/// Services planned at once when a revision is planned whole.
const PLAN_CHUNK: usize = 50;

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

/// One service of the current revision.
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

/// Why one service reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The service could not be planned.
    #[error(transparent)]
    Plan(#[from] engine::Error),
    /// A write failed.
    #[error(transparent)]
    Apply(#[from] cluster::Error),
    /// The service's canary rollout could not be advanced.
    #[error(transparent)]
    Rollout(#[from] rollout::Error),
}

impl ReconcileError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::Plan(e) => e.metric_label(),
            ReconcileError::Apply(e) => e.metric_label(),
            ReconcileError::Rollout(e) => e.metric_label(),
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
    /// Set when the engine blocked the service (a policy denied it with live context).
    blocked: Option<(Cause, String)>,
    objects: usize,
    seconds: f64,
    /// What the engine did to the service's canary rollout.
    rollout: Option<rollout::ServiceRollout>,
}

/// Everything a reconcile needs, shared by the tasks.
pub(super) struct Shared {
    pub config: DaemonConfig,
    pub client: Client,
    pub cache: LiveCache,
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
}

/// A revision prepared by the engine, with the namespace labels its policies see.
struct Revision {
    id: String,
    prepared: Prepared,
    labels: NamespaceLabels,
}

/// The loop's state.
pub(super) struct Runner {
    shared: Arc<Shared>,
    revision: Option<Arc<Revision>>,
    services: BTreeMap<ServiceId, Entry>,
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
            services: BTreeMap::new(),
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
            let next_retry = self.next_retry();
            tokio::select! {
                changed = snapshots.changed() => {
                    if changed.is_err() { break; }
                    let snapshot = snapshots.borrow_and_update().clone();
                    if let Some(snapshot) = snapshot {
                        self.on_snapshot(&snapshot).await;
                    }
                }
                Some(id) = touched.recv() => {
                    if let Some(entry) = self.services.get_mut(&id) {
                        entry.trigger(Reason::Touched);
                    }
                }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok(outcome) = done {
                        self.on_outcome(outcome).await;
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
            if let Ok(outcome) = done {
                self.on_outcome(outcome).await;
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

    async fn on_snapshot(&mut self, snapshot: &Snapshot) {
        let source = compile::Source {
            repo: self.shared.config.repo_name.clone(),
            commit: (!snapshot.revision.starts_with("local-")).then(|| snapshot.revision.clone()),
        };
        // Held until the next revision: a service's objects are compiled when it is planned.
        let prepared =
            engine::prepare_keeping(&snapshot.files, &BTreeMap::new(), &source, Keep::Specs);
        let labels = self.namespace_labels(&prepared).await;
        let plan = {
            let cache = self.shared.cache.read().await;
            engine::plan_in_chunks(
                &prepared,
                &|only| cache.view(Some(only)),
                &cache.services(),
                &labels,
                PLAN_CHUNK,
                Detail::Decisions,
            )
        };
        let plan = match plan {
            Ok(plan) => plan,
            Err(error) => {
                tracing::error!(%error, revision = %snapshot.revision, "revision could not be planned");
                self.shared.metrics.error(error.metric_label());
                let mut board = self.shared.board.write().await;
                board.revision = Some(snapshot.revision.clone());
                board.diagnostics = vec![error.to_string()];
                return;
            }
        };
        let revision = Arc::new(Revision {
            id: snapshot.revision.clone(),
            prepared,
            labels,
        });
        self.publish(&revision, &plan).await;
        let present: BTreeSet<ServiceId> = plan
            .services
            .iter()
            .filter(|s| s.status == ServiceStatus::Present)
            .map(|s| (s.namespace.clone(), s.name.clone()))
            .collect();
        self.services.retain(|id, _| present.contains(id));
        for id in &present {
            self.services
                .entry(id.clone())
                .or_insert_with(Entry::new)
                .trigger(Reason::Revision);
        }
        self.revision = Some(revision);
        if self.first_pending.is_none() {
            self.first_pending = Some(present);
            self.check_ready().await;
        }
        self.prune(&plan).await;
    }

    /// The labels of the namespaces a revision's policies see (one LIST of Namespaces, and
    /// only when the repository has policies).
    async fn namespace_labels(&self, prepared: &Prepared) -> NamespaceLabels {
        if prepared.policies.is_empty() {
            return NamespaceLabels::new();
        }
        let mut namespaces: BTreeSet<String> = prepared
            .desired
            .services
            .iter()
            .map(|s| s.namespace.clone())
            .collect();
        namespaces.extend(
            self.shared
                .cache
                .read()
                .await
                .services()
                .into_iter()
                .map(|(namespace, _)| namespace),
        );
        let retry = RetryPolicy::default();
        let mut kinds = Kinds::new(self.shared.client.clone(), retry);
        match cluster::read_namespace_labels(&self.shared.client, &mut kinds, &namespaces, &retry)
            .await
        {
            Ok(labels) => labels,
            Err(error) => {
                tracing::warn!(%error, "namespace labels unknown to policies");
                self.shared.metrics.error(error.metric_label());
                NamespaceLabels::new()
            }
        }
    }

    /// Puts a revision's verdicts on the board: its diagnostics, policy reports and blocked
    /// services.
    async fn publish(&self, revision: &Revision, plan: &Plan) {
        let prepared = &revision.prepared;
        let mut diagnostics = prepared.error_lines();
        for violation in plan.violations().filter(|v| !v.is_deny()) {
            tracing::warn!(policy = %violation, "policy");
            diagnostics.push(violation.to_string());
        }
        let mut board = self.shared.board.write().await;
        board.revision = Some(revision.id.clone());
        board.diagnostics = diagnostics;
        for service in &plan.services {
            if let Some((cause, error)) = blocked(prepared, service) {
                let status = board.service(&service.namespace, &service.name);
                status.state = ServiceState::Invalid;
                status.last_error = Some(error);
                self.shared.metrics.reconciled("invalid", 0.0);
                self.shared.metrics.error(cause.metric_label());
            }
        }
        self.shared.metrics.set_services(board.counts());
    }

    /// Prunes what the revision's plan removes, within the guard (the engine decides).
    async fn prune(&mut self, plan: &Plan) {
        let result = engine::prune(&self.shared.writer, plan, &self.shared.strategy()).await;
        let mut board = self.shared.board.write().await;
        let report = match result {
            Ok(report) => {
                board.mass_prune = None;
                report
            }
            Err(guard) => {
                tracing::error!(%guard, "mass-prune guard: nothing pruned");
                self.shared.metrics.error("mass_prune");
                board.mass_prune = Some(guard.to_string());
                return;
            }
        };
        for key in &report.deleted {
            self.shared.metrics.writes.inc();
            self.shared.cache.forget(key).await;
        }
        for (namespace, name) in &report.pruned {
            tracing::info!(%namespace, service = %name, "pruned");
            let status = board.service(namespace, name);
            status.state = ServiceState::Pruned;
            status.last_error = None;
            self.shared.metrics.reconciled("pruned", 0.0);
        }
        for ((namespace, name), error) in &report.failures {
            board.service(namespace, name).last_error = Some(error.to_string());
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

    fn start_queued(&mut self, tasks: &mut JoinSet<Outcome>) {
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
            let spec_hash = revision.prepared.spec_hashes.get(id).cloned();
            // A change under a spec already found in sync is drift; anything else a change.
            let drift =
                reason != Reason::Revision && entry.applied.is_some() && entry.applied == spec_hash;
            entry.phase = Phase::Running { again: None };
            free -= 1;
            tasks.spawn(reconcile(
                self.shared.clone(),
                revision.clone(),
                id.clone(),
                drift,
            ));
        }
    }

    async fn on_outcome(&mut self, outcome: Outcome) {
        let metrics = &self.shared.metrics;
        metrics.reconciled(outcome.state.as_str(), outcome.seconds);
        if outcome.drift && outcome.writes > 0 {
            metrics.drift_corrections.inc();
        }
        let current = self
            .revision
            .as_ref()
            .is_some_and(|r| r.id == outcome.revision);
        let mut board = self.shared.board.write().await;
        let status = board.service(&outcome.id.0, &outcome.id.1);
        status.state = outcome.state;
        status.objects = outcome.objects;
        status.last_writes = outcome.writes;
        if let Some(rollout) = &outcome.rollout {
            status.rollout = Some(rollout.status.clone());
            metrics
                .rollouts
                .observe(&outcome.id, &rollout.status, rollout.analysis.as_ref());
        }
        let due = outcome
            .rollout
            .as_ref()
            .and_then(|r| r.requeue_at)
            .map(instant_of);
        let entry = self.services.get_mut(&outcome.id);
        let again = match entry.as_ref().map(|e| e.phase) {
            Some(Phase::Running { again }) => again,
            _ => None,
        };
        if let Some((cause, error)) = &outcome.blocked {
            status.last_error = Some(error.clone());
            metrics.error(cause.metric_label());
        }
        match (&outcome.error, entry) {
            (_, None) => {}
            (None, Some(entry)) => {
                status.revision = Some(outcome.revision.clone());
                status.spec_hash = Some(outcome.spec_hash.clone());
                status.failures = 0;
                if outcome.state == ServiceState::InSync {
                    status.last_error = None;
                    entry.applied = Some(outcome.spec_hash.clone());
                }
                entry.failures = 0;
                entry.phase = match again {
                    Some(reason) => Phase::Queued(reason),
                    // A reconcile of an older revision is followed by one of the newest.
                    None if !current => Phase::Queued(Reason::Revision),
                    None => due.map_or(Phase::Idle, |at| Phase::RolloutDue { at }),
                };
            }
            (Some(error), Some(entry)) => {
                metrics.error(error.metric_label());
                entry.failures += 1;
                status.failures = entry.failures;
                status.last_error = Some(error.to_string());
                let delay = self.backoff.delay(entry.failures, self.jitter.unit());
                tracing::warn!(namespace = %outcome.id.0, service = %outcome.id.1, %error, retry_in = ?delay, "reconcile failed");
                entry.phase = match again {
                    Some(Reason::Revision) => Phase::Queued(Reason::Revision),
                    _ => Phase::RetryAt {
                        at: TokioInstant::now() + delay,
                        attempt: entry.failures,
                    },
                };
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

/// Why the engine blocked a service, with what to show; `None` when it is not blocked.
fn blocked(prepared: &Prepared, service: &ServicePlan) -> Option<(Cause, String)> {
    let id = (service.namespace.clone(), service.name.clone());
    if let Some(error) = prepared.errors.get(&id) {
        return Some((error.cause, error.message.clone()));
    }
    let cause = Cause::of(service)?;
    let messages: Vec<String> = service
        .violations
        .iter()
        .filter(|v| v.is_deny())
        .map(ToString::to_string)
        .collect();
    let message = if messages.is_empty() {
        "a policy file of the repository has errors".to_string()
    } else {
        messages.join("; ")
    };
    Some((cause, message))
}

/// The instant of the runtime's clock at a wall-clock time (now when it has passed).
fn instant_of(at: jiff::Timestamp) -> TokioInstant {
    let wait = at.duration_since(jiff::Timestamp::now());
    TokioInstant::now() + std::time::Duration::try_from(wait).unwrap_or_default()
}

/// Reconciles one service: advances its canary rollout (if it has one) and plans it with
/// the engine over the cache's view of its objects, then (unless drift is only reported)
/// applies what the plan changes and records the rollout's transitions.
#[tracing::instrument(skip_all, fields(namespace = %id.0, service = %id.1, revision = %revision.id))]
async fn reconcile(
    shared: Arc<Shared>,
    revision: Arc<Revision>,
    id: ServiceId,
    drift: bool,
) -> Outcome {
    let started = Instant::now();
    let prepared = &revision.prepared;
    let mut outcome = Outcome {
        spec_hash: prepared.spec_hashes.get(&id).cloned().unwrap_or_default(),
        objects: 0,
        id,
        revision: revision.id.clone(),
        state: ServiceState::InSync,
        writes: 0,
        drift,
        error: None,
        blocked: None,
        seconds: 0.0,
        rollout: None,
    };
    let only = BTreeSet::from([outcome.id.clone()]);
    let live = shared.cache.read().await.view(Some(&only));
    // The daemon's clock; the engine never reads one itself.
    let now = jiff::Timestamp::now();
    let planned = plan_service(&shared, &revision, &outcome.id, &live, now).await;
    let (plan, desired) = match planned {
        Ok((plan, desired, rollout)) => {
            if let Some(rollout) = &rollout {
                // A rollout's own progress is not drift.
                outcome.drift &= rollout.state == rollout.previous;
            }
            outcome.rollout = rollout;
            (plan, desired)
        }
        Err(error) => {
            outcome.state = ServiceState::Failed;
            outcome.error = Some(error);
            outcome.seconds = started.elapsed().as_secs_f64();
            return outcome;
        }
    };
    outcome.objects = desired.as_ref().map_or(0, |d| d.objects.len());
    let (Some(service), Some(desired)) = (plan.services.first(), desired) else {
        outcome.seconds = started.elapsed().as_secs_f64();
        return outcome;
    };
    let mut applied = !service.has_changes();
    if let Some(blocked) = blocked(prepared, service) {
        outcome.state = ServiceState::Invalid;
        outcome.blocked = Some(blocked);
        applied = false;
    } else if service.has_changes() && outcome.drift && shared.config.drift == DriftMode::Warn {
        tracing::warn!(
            changes = service.count(crate::plan::Action::Update)
                + service.count(crate::plan::Action::Create),
            "drift detected (not healed: --drift=warn)"
        );
        outcome.state = ServiceState::Drifted;
    } else if service.has_changes() {
        if outcome.drift {
            tracing::info!("drift detected: healing");
        }
        let report =
            engine::apply_service(&shared.writer, service, &desired, &shared.strategy()).await;
        outcome.writes = report.writes();
        for _ in 0..report.writes() {
            shared.metrics.writes.inc();
        }
        // Record what the server returned at once, so that the watch event of our own
        // write (or a re-check before it arrives) sees the service in sync.
        for (_, stored) in report.applied {
            shared.cache.record(stored).await;
        }
        for key in &report.deleted {
            shared.cache.forget(key).await;
        }
        match report.failures.into_iter().next() {
            Some(error) => {
                outcome.state = ServiceState::Failed;
                outcome.error = Some(error.into());
            }
            None => {
                applied = true;
                tracing::info!(writes = outcome.writes, "applied");
            }
        }
    }
    if applied && let Some(rollout) = &outcome.rollout {
        for transition in &rollout.transitions {
            tracing::info!(
                from = transition.from.as_str(),
                to = transition.to.as_str(),
                "rollout: {}",
                transition.message
            );
        }
        for error in rollout::record(&shared.writer, &[rollout], now).await {
            tracing::warn!(%error, "rollout event or command not recorded");
            shared.metrics.error(error.metric_label());
        }
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome
}

/// Plans one service through the engine: a canary service with the desired objects of its
/// advanced rollout, any other with its compiled objects.
async fn plan_service(
    shared: &Shared,
    revision: &Revision,
    id: &ServiceId,
    live: &crate::state::LiveSet,
    now: jiff::Timestamp,
) -> Result<
    (
        Plan,
        Option<crate::state::DesiredService>,
        Option<rollout::ServiceRollout>,
    ),
    ReconcileError,
> {
    let prepared = &revision.prepared;
    let ctx = rollout::Context {
        prepared,
        revision: &revision.id,
        now,
        analyst: &shared.analyst,
        settings: shared.config.rollout,
    };
    let detail = Detail::Decisions;
    match rollout::advance_service(&ctx, id, live).await? {
        Some((objects, advanced)) => {
            let (plan, desired) =
                rollout::plan_service(prepared, id, objects, live, &revision.labels, detail)?;
            Ok((plan, Some(desired), Some(advanced)))
        }
        None => {
            let only = BTreeSet::from([id.clone()]);
            let scope = Scope::Services(&only);
            let plan = engine::plan_with(prepared, live, &revision.labels, scope, detail)?;
            Ok((plan, prepared.service(id).map(Cow::into_owned), None))
        }
    }
}
