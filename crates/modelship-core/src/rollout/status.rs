//! What `modelship rollout status` and `/status` show of one rollout ([`RolloutStatus`],
//! JSON with camelCase fields), and the commands people send, as the text the CLI writes
//! and the engine reads ([`CommandRequest`], annotation [`ANNOTATION_COMMAND`]).

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::Serialize;

use super::Error;
use super::footprint::Footprint;
use super::machine::Command;
use super::plan::RolloutPlan;
use super::state::{Phase, PhaseName, Position, RolloutState};
use super::verdict::StepAnalysis;

/// The annotation on the stable Deployment `<name>` through which `modelship rollout
/// approve|abort|retry` asks the engine for a command: `<command>` or
/// `<command>@<template hash>` (then only for that rollout).
pub const ANNOTATION_COMMAND: &str = "modelship.dev/rollout-command";

/// One rollout, as shown to people.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    pub phase: PhaseName,
    pub revision: String,
    pub template_hash: String,
    /// The running or awaited step, counted from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    pub steps: usize,
    /// The canary's traffic weight; none without a canary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Seconds before the running step is analysed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_left: Option<i64>,
    /// What the rollout waits for, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// Why it rolled back or paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub failures: u32,
    pub failure_limit: u32,
    pub inconclusive: u32,
    pub inconclusive_limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_analysis: Option<StepAnalysis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_gpus: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_hourly_cost: Option<f64>,
}

impl RolloutStatus {
    /// The status of `state` at `now`; `footprint` adds the peak GPU figures.
    pub fn of(
        state: &RolloutState,
        plan: &RolloutPlan,
        now: Timestamp,
        footprint: Option<&Footprint>,
    ) -> RolloutStatus {
        let (waiting_for, reason) = match &state.phase {
            Phase::Starting { .. } => (Some("the canary to be ready".to_string()), None),
            Phase::WaitingForGate { step, .. } => (
                Some(format!(
                    "approval before weight {} (modelship rollout approve)",
                    plan.weight(*step)
                )),
                None,
            ),
            Phase::Promoting { .. } => (Some("the stable Deployment to be ready".into()), None),
            Phase::Paused { reason, .. } => (
                Some("a person: modelship rollout retry or abort".to_string()),
                Some(reason.as_str().to_string()),
            ),
            Phase::RolledBack { reason, .. } => (
                Some("a new commit or modelship rollout retry".to_string()),
                Some(reason.as_str().to_string()),
            ),
            _ => (None, None),
        };
        RolloutStatus {
            phase: state.phase.name(),
            revision: state.revision.clone(),
            template_hash: state.template_hash.clone(),
            step: state.step().map(|s| s + 1),
            steps: plan.steps.len(),
            weight: state.desired(plan).canary_weight,
            seconds_left: state.time_left(plan, now).map(|d| d.as_secs()),
            waiting_for,
            reason,
            failures: state.failures,
            failure_limit: plan.failure_limit,
            inconclusive: state.inconclusive,
            inconclusive_limit: plan.inconclusive_limit,
            last_analysis: state.last_analysis.clone(),
            peak_gpus: footprint.map(|f| f.peak_gpus),
            peak_hourly_cost: footprint.and_then(|f| f.peak_hourly_cost),
        }
    }
}

impl fmt::Display for RolloutStatus {
    /// One line: `progressing step 2/4 weight 25, 42s left`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.phase.as_str())?;
        if let Some(step) = self.step {
            write!(f, " step {step}/{}", self.steps)?;
        }
        if let Some(weight) = self.weight {
            write!(f, " weight {weight}")?;
        }
        if let Some(left) = self.seconds_left {
            write!(f, ", {left}s left")?;
        }
        if let Some(reason) = &self.reason {
            write!(f, ": {reason}")?;
        }
        if let Some(waiting) = &self.waiting_for {
            write!(f, "; waiting for {waiting}")?;
        }
        Ok(())
    }
}

/// A command as written in [`ANNOTATION_COMMAND`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRequest {
    pub command: Command,
    /// When set, the command is meant for the rollout of this template only.
    pub template_hash: Option<String>,
}

impl CommandRequest {
    /// The command, when it is meant for `state` (or for whatever runs).
    pub fn for_state(&self, state: &RolloutState) -> Option<Command> {
        let meant = self
            .template_hash
            .as_ref()
            .is_none_or(|hash| *hash == state.template_hash);
        meant.then_some(self.command)
    }
}

impl FromStr for CommandRequest {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, hash) = match text.trim().split_once('@') {
            Some((name, hash)) if !hash.is_empty() => (name, Some(hash.to_string())),
            Some(_) => return Err(Error::BadCommand(text.to_string())),
            None => (text.trim(), None),
        };
        let command = match name {
            "approve" => Command::Approve,
            "abort" => Command::Abort,
            "retry" => Command::Retry,
            _ => return Err(Error::BadCommand(text.to_string())),
        };
        Ok(CommandRequest {
            command,
            template_hash: hash,
        })
    }
}

impl fmt::Display for CommandRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.command {
            Command::Approve => "approve",
            Command::Abort => "abort",
            Command::Retry => "retry",
        };
        match &self.template_hash {
            Some(hash) => write!(f, "{name}@{hash}"),
            None => f.write_str(name),
        }
    }
}

/// Where a paused rollout stands, for people.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Step(step) => write!(f, "step {}", step + 1),
            Position::Promoting => f.write_str("promotion"),
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::rollout::state::{PauseReason, RollbackReason};

    fn plan() -> RolloutPlan {
        crate::rollout::plan::example()
    }

    fn state(phase: Phase) -> RolloutState {
        RolloutState {
            revision: "r2".into(),
            template_hash: "h2".into(),
            phase,
            ..RolloutState::default()
        }
    }

    #[test]
    fn status_lines_say_where_each_rollout_stands() {
        let t0 = Timestamp::UNIX_EPOCH;
        let at = |secs| t0 + SignedDuration::from_secs(secs);
        let cases = [
            (
                Phase::Progressing { step: 1, since: t0 },
                "progressing step 2/4 weight 25, 18s left",
            ),
            (
                Phase::WaitingForGate { step: 2, since: t0 },
                "waiting-for-gate step 3/4 weight 25; waiting for approval before weight 50 \
                 (modelship rollout approve)",
            ),
            (
                Phase::Paused {
                    at: Position::Step(1),
                    since: t0,
                    reason: PauseReason::Inconclusive,
                },
                "paused step 2/4 weight 25: analysis inconclusive (no data or errors) too \
                 often; waiting for a person: modelship rollout retry or abort",
            ),
            (
                Phase::RolledBack {
                    at: t0,
                    reason: RollbackReason::AnalysisFailed,
                },
                "rolled-back: analysis failed; waiting for a new commit or modelship rollout retry",
            ),
            (Phase::Stable, "stable"),
        ];
        for (phase, line) in cases {
            let status = RolloutStatus::of(&state(phase), &plan(), at(42), None);
            assert_eq!(status.to_string(), line);
        }
        let json = serde_json::to_value(RolloutStatus::of(
            &state(Phase::Progressing { step: 0, since: t0 }),
            &plan(),
            at(10),
            None,
        ))
        .unwrap();
        assert_eq!(json["phase"], "progressing");
        assert_eq!(json["secondsLeft"], 50);
        assert_eq!(json["failureLimit"], 2);
    }

    #[test]
    fn commands_parse_and_bind_to_a_rollout() {
        let request: CommandRequest = "approve@h2".parse().unwrap();
        assert_eq!(request.to_string(), "approve@h2");
        assert_eq!(
            request.for_state(&state(Phase::Stable)),
            Some(Command::Approve)
        );
        let stale: CommandRequest = "abort@h1".parse().unwrap();
        assert_eq!(stale.for_state(&state(Phase::Stable)), None);
        let any: CommandRequest = " retry ".parse().unwrap();
        assert_eq!(any.for_state(&state(Phase::Stable)), Some(Command::Retry));
        for bad in ["promote", "approve@", ""] {
            assert_eq!(
                bad.parse::<CommandRequest>(),
                Err(Error::BadCommand(bad.to_string()))
            );
        }
        assert_eq!(Position::Step(0).to_string(), "step 1");
    }
}
