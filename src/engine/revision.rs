//! A revision, opened once: its id, the prepared services, and the labels of the
//! namespaces its policies see. The CLI, the daemon and pull requests open revisions the
//! same way ([`namespace_labels`] is the one place that decides which namespaces policies
//! see: those of the repository's services and those of every service with live objects),
//! then hand them to the step ([`super::step`]).
//!
//! ```text
//! files ──prepare──▶ Prepared ─┐
//! live services (a LiveState) ─┴─ namespace_labels (one LIST of Namespaces),
//!                                 tenants' GPU budgets (live services first) ─▶ Revision
//! Revision × live ──plan_all / apply_all──▶ every service's step + the gone services
//!                                           (census → mass-prune guard → prune)
//! ```
//!
//! [`plan_all`] and [`apply_all`] are what `modelship plan`, `modelship apply` and a pull
//! request's plan run: a loop of the step over every service of the revision, plus the
//! services gone from it. The daemon schedules the same step itself.

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::apply::{self, ApplyReport, Strategy};
use super::rollout::{Analyst, RolloutReport, Settings};
use super::step::{DriftMode, Mode, ServiceOutcome, Step, Trigger};
use super::{NamespaceLabels, Prepared};
use crate::cluster::{self, Kinds, RetryPolicy, Writer};
use crate::meta::ServiceId;
use crate::plan::{self, Detail, MassPrune, Plan, PruneMode, ServicePlan, ServiceStatus, Summary};
use crate::source::RevisionId;
use crate::state::LiveState;

/// A prepared revision with what its policies see of the cluster.
#[derive(Debug)]
pub struct Revision {
    pub id: RevisionId,
    pub prepared: Prepared,
    /// The labels of the namespaces policies see (`namespaceObject`, `namespaceSelector`).
    pub labels: NamespaceLabels,
}

impl Revision {
    /// A revision of `prepared` whose policies see `labels`. `live` names the services
    /// with live objects: tenants' GPU budgets count them first, so a new service never
    /// pushes out one that runs ([`Prepared::enforce_budgets`]; empty: path order).
    pub fn new(
        mut prepared: Prepared,
        labels: NamespaceLabels,
        live: &BTreeSet<ServiceId>,
    ) -> Self {
        prepared.enforce_budgets(live);
        Revision {
            id: prepared.revision().clone(),
            prepared,
            labels,
        }
    }

    /// Every service the revision names: the valid ones and those that failed to load,
    /// validate or compile (whose live objects are left untouched), sorted.
    pub fn services(&self) -> BTreeSet<ServiceId> {
        // Every invalid service has its error (`Prepared::errors`).
        let valid = self.prepared.desired.services.iter().map(|s| s.id.clone());
        valid.chain(self.prepared.errors.keys().cloned()).collect()
    }

    /// True when the revision names this service.
    pub fn names(&self, id: &ServiceId) -> bool {
        self.prepared.desired.position(id).is_some() || self.prepared.errors.contains_key(id)
    }

    /// True when nothing may be pruned: the repository has errors, or a policy file has.
    fn prunes(&self) -> bool {
        self.prepared.desired.repository_valid && !self.prepared.policies_broken()
    }

    /// The plans of the services with live objects that the revision no longer names:
    /// removed from a fully valid repository, left alone otherwise.
    pub fn gone(&self, live: &dyn LiveState, detail: Detail) -> Vec<ServicePlan> {
        plan::plan_gone(&|id| self.names(id), live, self.prunes(), detail)
    }

    /// What the mass-prune guard judges: every service of the revision as present (the
    /// guard counts them, by folder too) beside the gone ones. `None` when it allows.
    pub fn guard(&self, gone: &[ServicePlan]) -> Option<MassPrune> {
        let mut census = Plan {
            services: gone.to_vec(),
        };
        for id in self.services() {
            let file = self.prepared.loaded(&id).map(|s| s.file.clone());
            census.services.push(ServicePlan {
                id,
                file,
                status: ServiceStatus::Present,
                objects: Vec::new(),
                summary: Summary::default(),
                violations: Vec::new(),
            });
        }
        plan::check_mass_prune(&census)
    }
}

/// A revision reads as the prepared repository it holds.
impl std::ops::Deref for Revision {
    type Target = Prepared;

    fn deref(&self) -> &Prepared {
        &self.prepared
    }
}

/// The namespaces whose labels the policies of `prepared` see: those of its services and
/// those of every service with live objects (`live_services`), so a policy on a namespace
/// judges a pull request as it judges the merge. Empty without policies (no request).
pub fn policy_namespaces(
    prepared: &Prepared,
    live_services: impl IntoIterator<Item = ServiceId>,
) -> BTreeSet<String> {
    if prepared.policies.is_empty() {
        return BTreeSet::new();
    }
    prepared
        .desired
        .services
        .iter()
        .map(|s| s.id.namespace().to_string())
        .chain(
            live_services
                .into_iter()
                .map(|id| id.namespace().to_string()),
        )
        .collect()
}

/// Reads the labels of the namespaces the policies of `prepared` see (one LIST of
/// Namespaces, only when the repository has policies).
pub async fn namespace_labels(
    client: &kube::Client,
    prepared: &Prepared,
    live_services: impl IntoIterator<Item = ServiceId>,
    retry: &RetryPolicy,
) -> cluster::Result<NamespaceLabels> {
    let namespaces = policy_namespaces(prepared, live_services);
    if namespaces.is_empty() {
        return Ok(NamespaceLabels::new());
    }
    let mut kinds = Kinds::new(client.clone(), *retry);
    cluster::read_namespace_labels(client, &mut kinds, &namespaces, retry).await
}

/// [`namespace_labels`] within `scope`: with `--namespaces`, one GET per namespace of the
/// scope instead of a LIST of every Namespace.
pub async fn namespace_labels_in(
    client: &kube::Client,
    prepared: &Prepared,
    live_services: impl IntoIterator<Item = ServiceId>,
    retry: &RetryPolicy,
    scope: &cluster::Namespaces,
) -> cluster::Result<NamespaceLabels> {
    let namespaces = policy_namespaces(prepared, live_services);
    if namespaces.is_empty() {
        return Ok(NamespaceLabels::new());
    }
    let mut kinds = Kinds::new(client.clone(), *retry);
    cluster::read_namespace_labels_in(client, &mut kinds, &namespaces, retry, scope).await
}

/// The whole revision as one run sees it: the plan of every service (each step's and the
/// gone services'), the rollouts the steps advanced, and each step's outcome.
#[derive(Debug, Default)]
pub struct Sweep {
    pub plan: Plan,
    pub rollouts: RolloutReport,
    pub outcomes: Vec<ServiceOutcome>,
}

impl Sweep {
    fn collect(outcomes: Vec<ServiceOutcome>, gone: Vec<ServicePlan>) -> Self {
        let mut sweep = Sweep::default();
        for outcome in &outcomes {
            sweep.plan.services.push(outcome.plan.clone());
            if let Some(rollout) = &outcome.rollout {
                sweep.rollouts.services.push(rollout.clone());
            }
        }
        sweep.plan.services.extend(gone);
        sweep.plan.services.sort_by(|a, b| a.id.cmp(&b.id));
        sweep.outcomes = outcomes;
        sweep
    }

    /// The first step that failed for a reason that is not the service's own (a plan that
    /// could not be made): the whole run fails then.
    pub fn failure(&self) -> Option<&super::Error> {
        self.outcomes.iter().find_map(|o| match &o.error {
            Some(super::step::Error::Plan(error)) => Some(error),
            _ => None,
        })
    }
}

/// What a whole run over a revision needs besides the live view.
pub struct Run<'a, A> {
    pub revision: &'a Revision,
    pub now: Timestamp,
    pub analyst: &'a A,
    pub settings: Settings,
    pub detail: Detail,
    /// Who holds the objects the steps would create.
    pub owners: &'a dyn super::Owners,
}

impl<'a, A: Analyst> Run<'a, A> {
    fn step(&self, mode: Mode<'a>) -> Step<'a, A> {
        Step {
            revision: self.revision,
            now: self.now,
            analyst: self.analyst,
            settings: self.settings,
            detail: self.detail,
            owners: self.owners,
            mode,
        }
    }

    /// Plans every service of the revision, read-only (`modelship plan`, a pull
    /// request's plan): canary rollouts are advanced to show what applying would do, and
    /// nothing is written.
    pub async fn plan_all(&self, live: &(dyn LiveState + Sync)) -> Sweep {
        let step = self.step(Mode::ReadOnly);
        let mut outcomes = Vec::new();
        for id in self.revision.services() {
            outcomes.push(step.reconcile_service(&id, live, Trigger::Change).await);
        }
        Sweep::collect(outcomes, self.revision.gone(live, self.detail))
    }

    /// Plans every service of a proposed revision (a pull request's head), read-only, as
    /// [`Run::plan_all`] does, except that rollouts are not advanced: a canary shows the
    /// rollout the change would start, and a live rollout stays where it is (no analysis
    /// is run, no command read).
    pub async fn plan_proposal(&self, live: &(dyn LiveState + Sync)) -> Sweep {
        let step = self.step(Mode::Proposal);
        let mut outcomes = Vec::new();
        for id in self.revision.services() {
            outcomes.push(step.reconcile_service(&id, live, Trigger::Change).await);
        }
        Sweep::collect(outcomes, self.revision.gone(live, self.detail))
    }

    /// Applies the revision (`modelship apply`): every service's step with writes, then
    /// the gone services pruned as `strategy` says. When pruning is guarded and the guard
    /// trips, nothing at all is written: the read-only plan and the guard's verdict are
    /// returned.
    pub async fn apply_all(
        &self,
        live: &(dyn LiveState + Sync),
        writer: &'a Writer,
        strategy: Strategy,
    ) -> (Sweep, Result<ApplyReport, MassPrune>) {
        let gone = self.revision.gone(live, self.detail);
        if strategy.prune == PruneMode::Guarded
            && let Some(guard) = self.revision.guard(&gone)
        {
            return (self.plan_all(live).await, Err(guard));
        }
        let step = self.step(Mode::Write {
            writer,
            strategy,
            drift: DriftMode::Heal,
        });
        let mut outcomes = Vec::new();
        for id in self.revision.services() {
            outcomes.push(step.reconcile_service(&id, live, Trigger::Change).await);
        }
        let mut sweep = Sweep::collect(outcomes, gone);
        let mut report = ApplyReport::default();
        for outcome in &mut sweep.outcomes {
            let written = std::mem::take(&mut outcome.written);
            report.namespaces_created.extend(written.namespace_created);
            report
                .applied
                .extend(written.applied.into_iter().map(|(key, _)| key));
            report.deleted.extend(written.deleted);
            report.failures.extend(written.failures);
        }
        let gone: Vec<ServicePlan> = sweep
            .plan
            .services
            .iter()
            .filter(|s| s.status == ServiceStatus::Removed)
            .cloned()
            .collect();
        let pruned = apply::prune(writer, &gone, strategy.prune).await;
        report.deleted.extend(pruned.deleted);
        report.not_pruned.extend(pruned.kept);
        report
            .failures
            .extend(pruned.failures.into_iter().map(|(_, error)| error));
        (sweep, Ok(report))
    }
}
