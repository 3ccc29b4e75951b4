//! [`RolloutState`]: everything a canary rollout needs to resume after a restart, and the
//! [`Phase`] enum of the state machine. Times are timestamps, never timers, so a new
//! leader resumes a step with the time already spent. The state serializes to compact JSON
//! for the annotation [`ANNOTATION_ROLLOUT`].

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::plan::RolloutPlan;
use super::verdict::StepAnalysis;
use super::{Error, Result};

/// The annotation holding the rollout state (JSON) on the stable Deployment `<name>`.
pub const ANNOTATION_ROLLOUT: &str = "modelship.dev/rollout";
/// The annotation holding the pod-template hash a Deployment was compiled with.
pub const ANNOTATION_TEMPLATE_HASH: &str = "modelship.dev/template-hash";
/// The format version of the serialized state.
pub const STATE_VERSION: u32 = 1;

/// The phases of a canary rollout.
///
/// ```text
///            new template hash (not the first deployment)
///  Stable ──────────────────────────────▶ Starting ──canary ready──▶ Progressing{0}
///    ▲  ▲                                   │  (gate before steps[0]: WaitingForGate{0})
///    │  │ Git back to the stable template   └──not ready in loadTimeout──▶ RolledBack
///    │  │                                                                    ▲
///    │  │   Progressing{i} ──held stepInterval, analysis──┬─pass──▶ Progressing{i+1}
///    │  │        ▲  ▲                                    │       (WaitingForGate{i+1}
///    │  │        │  └─fail below failureLimit, or no data │        before a gated weight)
///    │  │        │    or error below their budget (hold)  ├─fail at failureLimit──┘
///    │  │        │                                        ├─inconclusive budget spent─▶ Paused
///    │  │  retry └────────────────────────────────────────┼────────────────────────── Paused
///    │  │                                                 └─pass on the last step──▶ Promoting
///    │  └───────────────────────────────── Promoted ◀──stable ready── Promoting
///    └── (a new hash from Promoted or RolledBack starts again at Starting)
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "camelCase")]
pub enum Phase {
    /// No rollout running: the stable Deployment runs the desired template. Also the
    /// state of a service's first deployment, which is never a canary.
    Stable,
    /// `<name>-canary` created at weight 0; waiting for it to be ready within
    /// `model.loadTimeout`.
    Starting { since: Timestamp },
    /// Traffic at `steps[step]` since `since`; analysed once `stepInterval` has passed.
    Progressing { step: usize, since: Timestamp },
    /// Waiting for `modelship rollout approve` before traffic moves to `steps[step]`.
    /// Traffic stays at the previous step's weight.
    WaitingForGate { step: usize, since: Timestamp },
    /// Every step passed: the stable Deployment takes the new template while the canary
    /// keeps serving; waiting for the stable one to be ready.
    Promoting { since: Timestamp },
    /// The new template is the stable one; the canary Deployment is gone.
    Promoted { at: Timestamp },
    /// The canary was taken out of traffic and deleted; the stable Deployment was never
    /// touched. This template hash is not tried again until Git changes it or a person
    /// runs `modelship rollout retry`.
    RolledBack {
        at: Timestamp,
        reason: RollbackReason,
    },
    /// Waiting for a person: analyses were inconclusive too often, or promotion did not
    /// become ready. Traffic stays where it was. `retry` resumes, `abort` rolls back.
    Paused {
        at: Position,
        since: Timestamp,
        reason: PauseReason,
    },
}

/// Where a paused rollout resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Position {
    /// At step `index` (a new window starts on resume).
    Step(usize),
    /// At promotion (the stable Deployment is given the load timeout again).
    Promoting,
}

/// Why a rollout rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackReason {
    /// Analyses failed `failureLimit` times; `lastAnalysis` holds the values.
    AnalysisFailed,
    /// The canary was not ready within `model.loadTimeout`.
    CanaryNotReady,
    /// `modelship rollout abort`.
    Aborted,
}

impl RollbackReason {
    /// In words, for events and status.
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackReason::AnalysisFailed => "analysis failed",
            RollbackReason::CanaryNotReady => "canary not ready within model.loadTimeout",
            RollbackReason::Aborted => "aborted by hand",
        }
    }
}

/// Why a rollout paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PauseReason {
    /// `inconclusiveLimit` analyses in a row had no data or an error.
    Inconclusive,
    /// The stable Deployment was not ready within `model.loadTimeout` after promotion.
    StableNotReady,
}

impl PauseReason {
    /// In words, for events and status.
    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::Inconclusive => "analysis inconclusive (no data or errors) too often",
            PauseReason::StableNotReady => "stable not ready within model.loadTimeout",
        }
    }
}

/// The phase without its data: the label of `modelship_rollout_phase` and of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseName {
    Stable,
    Starting,
    Progressing,
    WaitingForGate,
    Promoting,
    Promoted,
    RolledBack,
    Paused,
}

impl PhaseName {
    /// Every phase name, for metrics that export one series per phase.
    pub const ALL: [PhaseName; 8] = [
        PhaseName::Stable,
        PhaseName::Starting,
        PhaseName::Progressing,
        PhaseName::WaitingForGate,
        PhaseName::Promoting,
        PhaseName::Promoted,
        PhaseName::RolledBack,
        PhaseName::Paused,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseName::Stable => "stable",
            PhaseName::Starting => "starting",
            PhaseName::Progressing => "progressing",
            PhaseName::WaitingForGate => "waiting-for-gate",
            PhaseName::Promoting => "promoting",
            PhaseName::Promoted => "promoted",
            PhaseName::RolledBack => "rolled-back",
            PhaseName::Paused => "paused",
        }
    }
}

impl Phase {
    /// The phase's name.
    pub fn name(&self) -> PhaseName {
        match self {
            Phase::Stable => PhaseName::Stable,
            Phase::Starting { .. } => PhaseName::Starting,
            Phase::Progressing { .. } => PhaseName::Progressing,
            Phase::WaitingForGate { .. } => PhaseName::WaitingForGate,
            Phase::Promoting { .. } => PhaseName::Promoting,
            Phase::Promoted { .. } => PhaseName::Promoted,
            Phase::RolledBack { .. } => PhaseName::RolledBack,
            Phase::Paused { .. } => PhaseName::Paused,
        }
    }

    /// True while a canary Deployment exists (from Starting to Promoting, Paused included).
    pub fn is_active(&self) -> bool {
        !matches!(
            self,
            Phase::Stable | Phase::Promoted { .. } | Phase::RolledBack { .. }
        )
    }
}

/// The persisted state of one service's rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutState {
    /// Format version ([`STATE_VERSION`]).
    pub version: u32,
    /// The Git revision of `template_hash`: the one rolling out, promoted or rolled back.
    pub revision: String,
    /// The pod-template hash the phase is about. Empty before the first deployment.
    pub template_hash: String,
    #[serde(flatten)]
    pub phase: Phase,
    /// Analyses with a failing check during this rollout.
    pub failures: u32,
    /// Analyses in a row with no data or an error (reset by a pass).
    pub inconclusive: u32,
    /// Gate weights approved during this rollout.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub approvals: BTreeSet<u32>,
    /// The last analysis, with every value and threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_analysis: Option<StepAnalysis>,
}

impl Default for RolloutState {
    /// The state of a service modelship has no record of: stable, no template known.
    fn default() -> Self {
        RolloutState {
            version: STATE_VERSION,
            revision: String::new(),
            template_hash: String::new(),
            phase: Phase::Stable,
            failures: 0,
            inconclusive: 0,
            approvals: BTreeSet::new(),
            last_analysis: None,
        }
    }
}

/// Which template the stable Deployment `<name>` is applied with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StableTemplate {
    /// The desired (newly compiled) template.
    Desired,
    /// The live template, untouched: a rollout runs or was rolled back.
    Live,
}

/// What the cluster should look like for the state: the input of the overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desired {
    /// The canary's traffic weight in percent; `None`: no canary Deployment at all.
    pub canary_weight: Option<u32>,
    pub stable: StableTemplate,
}

impl RolloutState {
    /// Reads the state from the annotation's JSON.
    pub fn from_json(text: &str) -> Result<RolloutState> {
        let state: RolloutState =
            serde_json::from_str(text).map_err(|e| Error::BadState(e.to_string()))?;
        if state.version != STATE_VERSION {
            return Err(Error::StateVersion(state.version));
        }
        Ok(state)
    }

    /// The state as compact JSON, fields in declaration order (same state, same bytes).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::BadState(e.to_string()))
    }

    /// What the cluster should look like in this state.
    pub fn desired(&self, plan: &RolloutPlan) -> Desired {
        let live = |canary_weight| Desired {
            canary_weight,
            stable: StableTemplate::Live,
        };
        let promoting = Desired {
            canary_weight: Some(100),
            stable: StableTemplate::Desired,
        };
        match &self.phase {
            Phase::Stable | Phase::Promoted { .. } => Desired {
                canary_weight: None,
                stable: StableTemplate::Desired,
            },
            Phase::RolledBack { .. } => live(None),
            Phase::Starting { .. } => live(Some(0)),
            Phase::Progressing { step, .. } => live(Some(plan.weight(*step))),
            Phase::WaitingForGate { step, .. } => live(Some(plan.weight_before(*step))),
            Phase::Promoting { .. } => promoting,
            Phase::Paused {
                at: Position::Step(step),
                ..
            } => live(Some(plan.weight(*step))),
            Phase::Paused {
                at: Position::Promoting,
                ..
            } => promoting,
        }
    }

    /// The step index and its weight while a step runs or waits (status output).
    pub fn step(&self) -> Option<usize> {
        match &self.phase {
            Phase::Progressing { step, .. } | Phase::WaitingForGate { step, .. } => Some(*step),
            Phase::Paused {
                at: Position::Step(step),
                ..
            } => Some(*step),
            _ => None,
        }
    }

    /// Time left before the running step is analysed; `None` outside Progressing.
    pub fn time_left(&self, plan: &RolloutPlan, now: Timestamp) -> Option<SignedDuration> {
        match &self.phase {
            Phase::Progressing { since, .. } => {
                let left = plan.step_interval - now.duration_since(*since);
                Some(left.max(SignedDuration::ZERO))
            }
            _ => None,
        }
    }
}
