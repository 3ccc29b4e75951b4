//! Progressive canary rollouts: the state machine, the analysis it waits on, and the
//! desired objects each state stands for. Pure like the rest of the core: no clock, no
//! network, no cluster; the engine hands in time, live facts and measured values, and
//! applies what comes out.
//!
//! ```text
//!  spec ──RolloutPlan::from_spec──▶ RolloutPlan (steps, gates, interval, budgets)
//!
//!  RolloutState (annotation modelship.dev/rollout, JSON)
//!     + Observation { now, revision, desired/stable template hash, readiness,
//!                     analysis of the ended step, command }
//!     ──machine::advance──▶ Advance { state, analyse: window?, requeue_at, transitions }
//!
//!  analyse window ──analysis::AnalysisQueries::build──▶ PromQL per check
//!     ──(engine: metrics::Prometheus::observe)──▶ Observation values
//!     ──AnalysisQueries::classify──▶ StepAnalysis { checks: [verdict, value, threshold] }
//!
//!  compiled ServiceObjects + state.desired(plan) + live stable template
//!     ──overlay::overlay──▶ stable kept at its live template, <name>-canary,
//!                           route weights (HTTPRoute / VirtualService) or replica split
//!  footprint::footprint ──▶ pods and GPUs per step, peak GPUs, peak hourly cost (plan)
//! ```
//!
//! Modules: `plan` (resolved settings), `state` (phases, persisted state), `machine`
//! (transitions), `verdict` (check results), `analysis` (queries and classification),
//! `overlay` (desired objects per state), `split` (replicas per track at a weight),
//! `footprint` (pods, GPUs and cost per step), `recorded` (the plan kept on the cluster),
//! `status` (what people see, and the command annotation they write).
//!
//! Rules where SPEC.md is silent are written down in the README section "Canary rollouts"
//! and beside the code: failures count over the whole rollout, inconclusive analyses count
//! in a row (a pass resets them) with a budget of [`DEFAULT_INCONCLUSIVE_LIMIT`], a failed
//! or inconclusive analysis holds the step for another full interval, and commands are
//! applied after Git changes are taken into account.

mod analysis;
mod footprint;
mod machine;
mod overlay;
mod plan;
mod recorded;
mod split;
mod state;
mod status;
mod verdict;

pub use analysis::{AnalysisQueries, Check, CheckKind, QueryResult, SeriesNames, render_template};
pub use footprint::{Footprint, StepFootprint, footprint};
pub use machine::{
    Advance, AnalysisWindow, Command, CommandOutcome, Observation, Transition, advance,
};
pub use overlay::{
    LiveStable, OverlaySummary, desired_template_hash, live_template_hash, overlay, template_hash,
};
pub use plan::{
    DEFAULT_FAILURE_LIMIT, DEFAULT_INCONCLUSIVE_LIMIT, DEFAULT_LOAD_TIMEOUT, DEFAULT_MIN_REQUESTS,
    DEFAULT_STEP_INTERVAL, RolloutPlan,
};
pub use recorded::{ANNOTATION_PLAN, RecordedPlan};
pub use state::{
    ANNOTATION_ROLLOUT, ANNOTATION_TEMPLATE_HASH, Desired, PauseReason, Phase, PhaseName, Position,
    RollbackReason, RolloutState, STATE_VERSION, StableTemplate,
};
pub use status::{ANNOTATION_COMMAND, CommandRequest, RolloutStatus};
pub use verdict::{CheckResult, StepAnalysis, Threshold, Verdict};

/// What can go wrong in rollout code. Each is a clear error for the engine to report.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The stored state is not valid JSON of a [`RolloutState`].
    #[error("rollout state annotation is unreadable: {0}")]
    BadState(String),
    /// The recorded rollout plan is not valid JSON of a [`RecordedPlan`].
    #[error("rollout plan annotation is unreadable: {0}")]
    BadPlan(String),
    /// The stored state has a format version this modelship does not read.
    #[error("rollout state has format version {0}, this modelship reads version 1")]
    StateVersion(u32),
    /// The compiled objects of the service have no stable Deployment to roll out.
    #[error("service {0} has no compiled Deployment")]
    NoDeployment(String),
    /// The canary Deployment could not be compiled.
    #[error("cannot compile the canary Deployment: {0}")]
    Compile(#[from] crate::compile::CompileError),
    /// A pod template could not be hashed (a bug, reported instead of a panic).
    #[error("cannot hash the pod template: {0}")]
    Hash(String),
    /// A command annotation that is not `approve`, `abort` or `retry` (with `@<hash>`).
    #[error(
        "`{0}` is not a rollout command: expected approve, abort or retry, optionally @<template hash>"
    )]
    BadCommand(String),
}

impl Error {
    /// The metric label of the cause (`modelship_errors_total{cause}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::BadState(_) | Error::BadPlan(_) | Error::StateVersion(_) => "rollout-state",
            Error::NoDeployment(_) | Error::Compile(_) | Error::Hash(_) => "rollout-compile",
            Error::BadCommand(_) => "rollout-command",
        }
    }
}

/// Results of rollout code.
pub type Result<T, E = Error> = std::result::Result<T, E>;
