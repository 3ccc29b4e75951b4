//! The engine: the one road from a snapshot of the repository to the cluster. The CLI
//! (`plan`, `apply`) and the daemon (`run`) both drive it, so every decision (what a spec
//! compiles to, what a policy denies, what changes, in which order it is written, what is
//! pruned and when the guard refuses) is made here once, the same way for both.
//!
//! ```text
//! snapshot files (+ extra policy files)
//!     │ prepare: load + validate (spec), compile, load policies
//!     ▼
//! Prepared ──revision: + the namespace labels policies see──▶ Revision
//!     │ step::Step::reconcile_service(id, live, trigger), per service:
//!     │   blocked causes, compile once, policies (oldObject, namespace labels),
//!     │   rollout::advance for a canary, plan once, then (Mode::Write) apply_service
//!     │   through cluster::Writer and rollout::record
//!     ▼
//! ServiceOutcome { verdict, plan, written, rollout, next }
//!     revision::Run::plan_all / apply_all: the step over every service + the gone ones
//!     (mass-prune guard, prune): `plan`, `apply`, pull requests
//!     the daemon: a scheduler over ServiceId → its last outcome
//! ```
//!
//! The callers only supply what differs between them: a live view (the CLI's LISTs, the
//! daemon's watch cache), whether writes are allowed, and how they schedule the next look.

mod apply;
pub mod comment;
pub mod owners;
mod prepare;
pub mod preview;
pub mod revision;
pub mod rollout;
pub mod step;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use apply::{ApplyReport, PruneReport, ServiceReport, Strategy, prune};
pub use owners::{ClusterOwners, Nobody, Owners};
pub use prepare::{Keep, Prepared, ServiceError, prepare, prepare_keeping, prepare_with};
pub use revision::{Revision, Run, Sweep, namespace_labels, namespace_labels_in};
pub use step::{DriftMode, Mode, Next, ServiceOutcome, Step, Trigger, Verdict};

use crate::plan;
use crate::policy;

/// Labels of namespaces by name, as policies see them (`namespaceObject`,
/// `namespaceSelector`); a namespace missing here has unknown labels.
pub type NamespaceLabels = BTreeMap<String, BTreeMap<String, String>>;

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
