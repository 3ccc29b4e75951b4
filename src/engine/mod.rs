//! The engine: the one road from a snapshot of the repository to the cluster. The CLI
//! (`plan`, `apply`) and the daemon (`run`) both drive it, so every decision (what a spec
//! compiles to, what a policy denies, what changes, in which order it is written, what is
//! pruned and when the guard refuses) is made here once, the same way for both.
//!
//! ```text
//! snapshot files (+ extra policy files)
//!     │ prepare: load + validate (spec), compile, load policies
//!     ▼
//! Prepared { repository, desired, policies, per-service errors }
//!     │ rollout::plan_all (CLI) / rollout::advance_service (daemon): canary services
//!     │   advanced at the caller's clock, analysed on Prometheus, their objects replaced
//!     │   by those of the new rollout state (see `rollout`)
//!     │ plan(prepared, live, namespace labels, scope)
//!     │   plan::plan over any LiveState (the CLI's LISTs, the daemon's watch cache)
//!     │   + policies with live context (oldObject, namespace labels) + enforce
//!     ▼
//! Plan ──apply(writer, plan, strategy)──▶ cluster::Writer (SSA in apply order, deletes
//!          apply_service / prune            reversed, namespaces, prune guard)
//! ```
//!
//! The callers only supply what differs between them: a live view, a writer, a strategy
//! and a trigger (one run for the CLI, a loop for the daemon).

mod apply;
pub mod comment;
mod prepare;
pub mod preview;
pub mod rollout;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

pub use apply::{ApplyReport, PruneReport, ServiceReport, Strategy, apply, apply_service, prune};
pub use prepare::{Cause, Keep, Prepared, ServiceError, prepare, prepare_keeping};

use crate::meta::ServiceId;
use crate::plan::{self, BlockReason, Detail, Plan, ServiceStatus};
use crate::policy;
use crate::state::{DesiredState, LiveSet, LiveState};

/// Labels of namespaces by name, as policies see them (`namespaceObject`,
/// `namespaceSelector`); a namespace missing here has unknown labels.
pub type NamespaceLabels = BTreeMap<String, BTreeMap<String, String>>;

/// Which services a plan covers.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// The whole repository and every live service: the only scope that can prune.
    All,
    /// These services only (the daemon re-planning a service a watch event touched). The
    /// live view needs to hold only their objects; nothing is ever pruned from here.
    Services(&'a BTreeSet<ServiceId>),
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A compiled object has no name: a compiler bug.
    #[error(transparent)]
    Plan(#[from] plan::Error),
    /// A policy could not be evaluated.
    #[error(transparent)]
    Policy(#[from] policy::Error),
}

impl Error {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Plan(e) => e.metric_label(),
            Error::Policy(e) => e.metric_label(),
        }
    }
}

/// Plans the prepared repository against a live view and enforces its policies, with the
/// live objects as `oldObject` and `labels` as the namespaces' labels.
///
/// A repository whose policy files have errors plans every service as
/// [`BlockReason::PoliciesBroken`] and prunes nothing: without its policies nothing can be
/// checked, so nothing is written.
pub fn plan(
    prepared: &Prepared,
    live: &dyn LiveState,
    labels: &NamespaceLabels,
    scope: Scope<'_>,
) -> Result<Plan, Error> {
    plan_with(prepared, live, labels, scope, Detail::Full)
}

/// [`plan`], rendering changes as `detail` says: the daemon, which shows no diffs, plans
/// with [`Detail::Decisions`] (the same decisions, no patches or diffs built).
pub fn plan_with(
    prepared: &Prepared,
    live: &dyn LiveState,
    labels: &NamespaceLabels,
    scope: Scope<'_>,
    detail: Detail,
) -> Result<Plan, Error> {
    let desired = scoped(prepared, scope);
    plan_desired(prepared, &desired, live, labels, scope, detail)
}

/// [`plan_with`] over a desired state of `scope` the caller built (the rollout engine's
/// overlay of one service).
pub(crate) fn plan_desired(
    prepared: &Prepared,
    desired: &DesiredState,
    live: &dyn LiveState,
    labels: &NamespaceLabels,
    scope: Scope<'_>,
    detail: Detail,
) -> Result<Plan, Error> {
    let mut plan = plan::plan_with(desired, live, detail)?;
    if let Scope::Services(only) = scope {
        plan.services
            .retain(|s| only.contains(&(s.namespace.clone(), s.name.clone())));
    }
    if prepared.policies_broken() {
        for service in &mut plan.services {
            if service.status == ServiceStatus::Present {
                plan::block(service, BlockReason::PoliciesBroken);
            }
        }
    } else if !prepared.policies.is_empty() {
        let only = match scope {
            Scope::All => None,
            Scope::Services(only) => Some(only),
        };
        let violations = policy::check_desired_of(
            &prepared.repository,
            desired,
            live,
            labels,
            &prepared.policies,
            only,
        )?;
        plan::enforce(&mut plan, violations);
    }
    Ok(plan)
}

/// The plan of the whole repository, as [`plan_with`] makes it for [`Scope::All`], made a
/// chunk of services at a time: only one chunk's desired and live objects are parsed at
/// once, which is what a long-running caller keeping only specs (the daemon, `Keep::Specs`) needs.
/// `view` gives the live objects of a set of services; `live_services` names every
/// service with live objects.
pub fn plan_in_chunks(
    prepared: &Prepared,
    view: &dyn Fn(&BTreeSet<ServiceId>) -> LiveSet,
    live_services: &BTreeSet<ServiceId>,
    labels: &NamespaceLabels,
    chunk: usize,
    detail: Detail,
) -> Result<Plan, Error> {
    let known: BTreeSet<ServiceId> = prepared
        .desired
        .services
        .iter()
        .map(|s| (s.namespace.clone(), s.name.clone()))
        .chain(prepared.desired.invalid.iter().cloned())
        .collect();
    let ids: Vec<&ServiceId> = known.iter().collect();
    let mut services = Vec::new();
    for chunk in ids.chunks(chunk.max(1)) {
        let only: BTreeSet<ServiceId> = chunk.iter().map(|id| (*id).clone()).collect();
        let live = view(&only);
        services
            .extend(plan_with(prepared, &live, labels, Scope::Services(&only), detail)?.services);
    }
    let gone: BTreeSet<ServiceId> = live_services.difference(&known).cloned().collect();
    if !gone.is_empty() {
        let live = view(&gone);
        let nothing = DesiredState {
            services: Vec::new(),
            invalid: Vec::new(),
            repository_valid: prepared.desired.repository_valid && !prepared.policies_broken(),
        };
        services.extend(plan::plan_with(&nothing, &live, detail)?.services);
    }
    services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(Plan { services })
}

/// The desired state of `scope`; borrowed when it is the whole repository with its objects kept.
fn scoped<'a>(prepared: &'a Prepared, scope: Scope<'_>) -> Cow<'a, DesiredState> {
    match scope {
        Scope::All if !prepared.policies_broken() => prepared.desired(),
        Scope::All => Cow::Owned(DesiredState {
            repository_valid: false,
            ..prepared.desired().into_owned()
        }),
        Scope::Services(only) => Cow::Owned(DesiredState {
            services: only
                .iter()
                .filter_map(|id| prepared.service(id).map(Cow::into_owned))
                .collect(),
            invalid: prepared
                .desired
                .invalid
                .iter()
                .filter(|id| only.contains(*id))
                .cloned()
                .collect(),
            // Only these services are in view: nothing else may be pruned from here.
            repository_valid: false,
        }),
    }
}
