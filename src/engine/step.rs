//! The one reconcile step of one service: how a service goes from an opened revision to a
//! verdict, the writes it made and when to look again. `modelship plan` and `apply`, the
//! daemon's loop and a pull request's plan all call [`Step::reconcile_service`]; they
//! differ only in where the live view comes from, whether writes are allowed ([`Mode`])
//! and how they schedule the next look ([`Next`]).
//!
//! ```text
//! Revision { id, prepared, namespace labels }, ServiceId, live view, clock
//!   │ failed to load, validate or compile ─────────────────────────▶ Blocked(cause)
//!   │ compile once (a canary: typed objects, for the rollout overlay)
//!   │ policies at rest (live object as oldObject, namespace labels) ─ Deny ─▶ Blocked
//!   │ canary: rollout::advance (analysis on the analyst) ── error ──▶ Blocked(Rollout)
//!   │         policies on the objects of the new rollout state
//!   │ plan once (desired x live)
//!   │ objects to create that exist (Owners), not adopted ─────────▶ Blocked(Ownership)
//!   │ enforce ─────────────────────────────────────────── Deny ──▶ Blocked(PolicyDenied)
//!   ▼
//! Mode::ReadOnly ─▶ InSync | Pending (Mode::Proposal: the same, live rollouts unmoved)
//! Mode::Write    ─▶ drift under --drift=warn: Drifted (nothing written)
//!                   apply_service (namespace, SSA in order, orphans) ─▶ Applied | Failed
//!                   then rollout::record (command cleared, one Event per transition)
//! next: Retry after a failure or an ownership conflict, At(the rollout's next due time),
//!       else Idle
//! ```
//!
//! Each service is compiled, advanced and planned once per step. Services gone from the
//! repository are not a step's: [`super::revision`] plans them and `apply::prune` deletes
//! them, per revision, within the mass-prune guard.

use std::borrow::Cow;

use jiff::Timestamp;

use super::apply::{ServiceReport, Strategy, apply_service};
use super::owners::{self, Owners};
use super::revision::Revision;
use super::rollout::{self, Analyst, ServiceRollout};
use crate::cluster::{self, WriteMode, Writer};
use crate::compile;
use crate::meta::ServiceId;
use crate::plan::{self, BlockReason, Detail, ServicePlan, ServiceStatus};
use crate::policy::{self, Violation};
use crate::spec::LoadedService;
use crate::state::{DesiredService, LiveState};

/// What to do when the cluster differs from a spec already found in sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriftMode {
    /// Re-apply the repository's values.
    #[default]
    Heal,
    /// Report the drift, write nothing.
    Warn,
}

/// Whether a step may write.
#[derive(Debug, Clone, Copy)]
pub enum Mode<'a> {
    /// Plan only: `modelship plan`.
    ReadOnly,
    /// Plan only, of a proposal (a pull request's head): a canary shows the rollout the
    /// change would start, and a live rollout is neither analysed nor advanced
    /// ([`rollout::Advancing::Proposal`]).
    Proposal,
    /// Write what the plan changes: `modelship apply`, the daemon.
    Write {
        writer: &'a Writer,
        strategy: Strategy,
        drift: DriftMode,
    },
}

/// Why a step runs: what decides whether a difference is drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A new revision, a first look, or a command: any difference is a change to make.
    Change,
    /// A second look at a spec already found in sync (a watch event, a retry, a rollout
    /// due): a difference that no rollout explains is drift.
    Recheck,
}

/// Where one service stands after its step: the one verdict of the engine, which plans,
/// `/status`, metrics and pull-request outcomes all read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The live objects match the repository; nothing was written.
    InSync,
    /// Changes are planned and were not written (read-only).
    Pending,
    /// The planned changes were written: the service is in sync.
    Applied { writes: usize },
    /// The cluster drifted from a spec found in sync and `--drift=warn` forbids healing.
    Drifted,
    /// The live objects are left untouched, and why.
    Blocked {
        reason: BlockReason,
        message: String,
    },
    /// The step failed (a write, or a plan that could not be made); retried. The typed
    /// error is [`ServiceOutcome::error`].
    Failed {
        /// The error's metric label.
        cause: &'static str,
        message: String,
    },
    /// Gone from a valid repository; every object was deleted.
    Pruned,
}

impl Verdict {
    /// The state shown on `/status` and the `result` label of reconcile metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::InSync | Verdict::Applied { .. } => "in-sync",
            Verdict::Pending => "pending",
            Verdict::Drifted => "drifted",
            Verdict::Blocked { .. } => "invalid",
            Verdict::Failed { .. } => "failed",
            Verdict::Pruned => "pruned",
        }
    }

    /// True when the service is in line with the repository (nothing left to write).
    pub fn is_in_sync(&self) -> bool {
        matches!(self, Verdict::InSync | Verdict::Applied { .. })
    }

    /// The message of a blocked or failed service.
    pub fn message(&self) -> Option<&str> {
        match self {
            Verdict::Blocked { message, .. } | Verdict::Failed { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The label of a blocked or failed service in `modelship_errors_total{cause}`.
    pub fn cause(&self) -> Option<&'static str> {
        match self {
            Verdict::Blocked { reason, .. } => Some(reason.metric_label()),
            Verdict::Failed { cause, .. } => Some(cause),
            _ => None,
        }
    }

    fn failed(error: &Error) -> Verdict {
        Verdict::Failed {
            cause: error.metric_label(),
            message: error.to_string(),
        }
    }
}

/// When a service wants its next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Not until a new revision, a watch event or a command.
    Idle,
    /// At this time: a canary rollout is due (the end of a step, a load timeout).
    At(Timestamp),
    /// After a backoff: the step failed.
    Retry,
}

/// Why a step failed. Its live objects were left as they were, or partly written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service could not be planned (a compiler bug, a policy that cannot be
    /// evaluated).
    #[error(transparent)]
    Plan(#[from] super::Error),
    /// A write failed: the first that did (every failure is in
    /// [`ServiceOutcome::written`]).
    #[error("{message}")]
    Apply {
        message: String,
        cause: &'static str,
    },
    /// The service is not one of the revision's (a caller bug).
    #[error("service {id} is not in revision {revision}")]
    Unknown { id: ServiceId, revision: String },
    /// Looking up the objects the service would create failed: nothing was written.
    #[error("looking up the objects to create: {0}")]
    Owners(#[source] Box<cluster::Error>),
}

impl Error {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Plan(e) => e.metric_label(),
            Error::Apply { cause, .. } => cause,
            Error::Unknown { .. } => "unknown_service",
            Error::Owners(e) => e.metric_label(),
        }
    }
}

/// What one step did to one service.
#[derive(Debug)]
pub struct ServiceOutcome {
    pub id: ServiceId,
    pub verdict: Verdict,
    /// Why the step failed, when it did ([`Verdict::Failed`]).
    pub error: Option<Error>,
    /// What was planned, as detailed as the step was asked to. A failed step that could
    /// not plan lists the live objects, untouched.
    pub plan: ServicePlan,
    /// The desired objects the step planned (a canary's as its rollout state has them);
    /// `None` when the service is blocked or failed.
    pub desired: Option<DesiredService>,
    /// What was written (nothing when read-only, blocked or in sync).
    pub written: ServiceReport,
    /// What the step did to the service's canary rollout.
    pub rollout: Option<ServiceRollout>,
    pub next: Next,
    /// True when a difference was drift (healed, or reported as [`Verdict::Drifted`]).
    pub drift: bool,
    /// The spec hash of the service at this revision (none when it did not compile).
    pub spec_hash: Option<String>,
    /// Objects the service compiles to.
    pub objects: usize,
    /// What went wrong recording the rollout (Events, the command annotation): reported,
    /// never fatal.
    pub warnings: Vec<cluster::Error>,
}

/// The step's inputs besides the service: the revision, the clock (the engine never
/// reads one), the analyst of canary rollouts, how much of a change to render, who holds
/// the objects it would create, and whether writes are allowed.
pub struct Step<'a, A> {
    pub revision: &'a Revision,
    pub now: Timestamp,
    pub analyst: &'a A,
    pub settings: rollout::Settings,
    pub detail: Detail,
    pub owners: &'a dyn Owners,
    pub mode: Mode<'a>,
}

/// A service planned by a step, before anything is written.
struct Decided {
    plan: ServicePlan,
    desired: Option<DesiredService>,
    rollout: Option<ServiceRollout>,
    blocked: Option<(BlockReason, String)>,
}

impl<A: Analyst> Step<'_, A> {
    /// Reconciles one service of the revision over `live` (which must hold its objects).
    pub async fn reconcile_service(
        &self,
        id: &ServiceId,
        live: &(dyn LiveState + Sync),
        trigger: Trigger,
    ) -> ServiceOutcome {
        let prepared = &self.revision.prepared;
        let spec_hash = prepared.spec_hashes.get(id).cloned();
        let decided = match self.decide(id, live).await {
            Ok(decided) => decided,
            Err(error) => {
                let plan = plan::plan_blocked(id, live, BlockReason::InvalidSpec, self.detail);
                return ServiceOutcome {
                    id: id.clone(),
                    verdict: Verdict::failed(&error),
                    error: Some(error),
                    plan,
                    desired: None,
                    written: ServiceReport::default(),
                    rollout: None,
                    next: Next::Retry,
                    drift: false,
                    spec_hash,
                    objects: 0,
                    warnings: Vec::new(),
                };
            }
        };
        let mut outcome = ServiceOutcome {
            id: id.clone(),
            verdict: Verdict::InSync,
            error: None,
            objects: decided.desired.as_ref().map_or(0, |d| d.objects.len()),
            plan: decided.plan,
            desired: decided.desired,
            written: ServiceReport::default(),
            next: Next::Idle,
            drift: false,
            spec_hash,
            rollout: decided.rollout,
            warnings: Vec::new(),
        };
        if let Some((reason, message)) = decided.blocked {
            // A conflict ends in the cluster (the object annotated for adoption, or
            // deleted), where no watch of ours looks: look again after a backoff.
            if reason == BlockReason::Ownership {
                outcome.next = Next::Retry;
            }
            outcome.verdict = Verdict::Blocked { reason, message };
            return outcome;
        }
        let due = outcome.rollout.as_ref().and_then(|r| r.requeue_at);
        outcome.next = due.map_or(Next::Idle, Next::At);
        let changes = outcome.plan.has_changes();
        let Mode::Write {
            writer,
            strategy,
            drift,
        } = self.mode
        else {
            if changes {
                outcome.verdict = Verdict::Pending;
            }
            return outcome;
        };
        // A rollout's own progress is not drift.
        let moved = outcome
            .rollout
            .as_ref()
            .is_some_and(|r| r.state != r.previous);
        outcome.drift = changes && trigger == Trigger::Recheck && !moved;
        if outcome.drift && drift == DriftMode::Warn {
            tracing::warn!(
                changes = outcome.plan.count(plan::Action::Update)
                    + outcome.plan.count(plan::Action::Create),
                "drift detected (not healed: --drift=warn)"
            );
            outcome.verdict = Verdict::Drifted;
            return outcome;
        }
        if changes {
            if outcome.drift {
                tracing::info!("drift detected: healing");
            }
            let Some(desired) = &outcome.desired else {
                return outcome;
            };
            outcome.written = apply_service(writer, &outcome.plan, desired, &strategy).await;
            if let Some(first) = outcome.written.failures.first() {
                let error = Error::Apply {
                    message: first.to_string(),
                    cause: first.metric_label(),
                };
                outcome.verdict = Verdict::failed(&error);
                outcome.error = Some(error);
                outcome.next = Next::Retry;
                return outcome;
            }
            let writes = outcome.written.writes();
            tracing::info!(writes, "applied");
            outcome.verdict = Verdict::Applied { writes };
        }
        if let Some(rollout) = &outcome.rollout
            && writer.mode() == WriteMode::Persist
        {
            for transition in &rollout.transitions {
                tracing::info!(
                    from = transition.from.as_str(),
                    to = transition.to.as_str(),
                    "rollout: {}",
                    transition.message
                );
            }
            outcome.warnings = rollout::record(writer, &[rollout], self.now).await;
        }
        outcome
    }

    /// Compiles, advances and plans the service once, with its policies; writes nothing.
    async fn decide(
        &self,
        id: &ServiceId,
        live: &(dyn LiveState + Sync),
    ) -> Result<Decided, Error> {
        let prepared = &self.revision.prepared;
        let blocked = |reason, message: String| Decided {
            plan: plan::plan_blocked(id, live, reason, self.detail),
            desired: None,
            rollout: None,
            blocked: Some((reason, message)),
        };
        if let Some(error) = prepared.errors.get(id) {
            return Ok(blocked(error.cause, error.message.clone()));
        }
        let unknown = || Error::Unknown {
            id: id.clone(),
            revision: self.revision.id.to_string(),
        };
        let svc = prepared.loaded(id).ok_or_else(unknown)?;
        let config = &prepared.repository.config;
        let canary = self.settings.plan(svc);
        // Compiled once: typed for a canary (the rollout overlays them), else as kept.
        let (at_rest, typed) = match canary {
            Some(_) => {
                // Compiling is pure: it succeeded for this spec when the revision was
                // prepared, so a failure here is reported like that one would have been.
                let compiled = compile::compile_service(svc, config, prepared.source())
                    .and_then(|objects| Ok((crate::state::desired_service(&objects)?, objects)));
                match compiled {
                    Ok((desired, objects)) => (desired, Some(objects)),
                    Err(error) => return Ok(blocked(BlockReason::Compile, error.to_string())),
                }
            }
            None => (
                prepared
                    .service(id)
                    .map(Cow::into_owned)
                    .ok_or_else(unknown)?,
                None,
            ),
        };
        if prepared.policies_broken() {
            let mut plan =
                plan::plan_service(&at_rest, live, self.detail).map_err(super::Error::from)?;
            plan::block(&mut plan, BlockReason::PoliciesBroken);
            return Ok(Decided {
                plan,
                desired: None,
                rollout: None,
                blocked: Some((
                    BlockReason::PoliciesBroken,
                    "a policy file of the repository has errors".to_string(),
                )),
            });
        }
        // What Git asks for at rest is judged first: a denied service is not rolled out.
        let at_rest_violations = self.violations(svc, &at_rest, live)?;
        let (desired, violations, rollout) = match (canary, typed) {
            (Some(rollout_plan), Some(objects)) if !denies(&at_rest_violations) => {
                let ctx = rollout::Context {
                    prepared,
                    revision: prepared.revision().as_str(),
                    now: self.now,
                    analyst: self.analyst,
                    advancing: match self.mode {
                        Mode::Proposal => rollout::Advancing::Proposal,
                        Mode::ReadOnly | Mode::Write { .. } => rollout::Advancing::Live,
                    },
                };
                match rollout::advance(&ctx, svc, rollout_plan, objects, live).await {
                    Ok((objects, advanced)) => {
                        let desired = DesiredService { objects, ..at_rest };
                        let violations = self.violations(svc, &desired, live)?;
                        (desired, violations, Some(advanced))
                    }
                    Err(error) => {
                        return Ok(blocked(BlockReason::Rollout, error.to_string()));
                    }
                }
            }
            _ => (at_rest, at_rest_violations, None),
        };
        let mut service =
            plan::plan_service(&desired, live, self.detail).map_err(super::Error::from)?;
        let wanted = owners::wanted(&service);
        if !wanted.is_empty() {
            let found = self
                .owners
                .find(&wanted)
                .await
                .map_err(|e| Error::Owners(Box::new(e)))?;
            let instance = &prepared.source().instance;
            plan::claim(&mut service, &desired, &found, instance, self.detail);
        }
        plan::enforce_service(&mut service, violations);
        let blocked = match service.status {
            ServiceStatus::Blocked(BlockReason::Ownership) => {
                Some((BlockReason::Ownership, plan::conflict_message(&service)))
            }
            ServiceStatus::Blocked(reason) => Some((reason, denial_message(&service))),
            _ => None,
        };
        Ok(Decided {
            plan: service,
            desired: blocked.is_none().then_some(desired),
            rollout,
            blocked,
        })
    }

    /// The policy violations of one service: its spec and its desired objects, with the
    /// live objects as `oldObject` and the revision's namespace labels.
    fn violations(
        &self,
        svc: &LoadedService,
        desired: &DesiredService,
        live: &dyn LiveState,
    ) -> Result<Vec<Violation>, Error> {
        let prepared = &self.revision.prepared;
        if prepared.policies.is_empty() {
            return Ok(Vec::new());
        }
        policy::check_service(
            svc,
            desired,
            live,
            &self.revision.labels,
            &prepared.policies,
        )
        .map_err(|e| Error::Plan(super::Error::Policy(e)))
    }
}

/// True when a violation denies.
fn denies(violations: &[Violation]) -> bool {
    violations.iter().any(Violation::is_deny)
}

/// What a blocked service shows: its Deny violations, or why nothing could be checked.
fn denial_message(service: &ServicePlan) -> String {
    let messages: Vec<String> = service
        .violations
        .iter()
        .filter(|v| v.is_deny())
        .map(ToString::to_string)
        .collect();
    if messages.is_empty() {
        "a policy file of the repository has errors".to_string()
    } else {
        messages.join("; ")
    }
}
