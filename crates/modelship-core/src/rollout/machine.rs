//! [`advance`]: one step of the rollout state machine. Pure: the clock, the live
//! Deployments, the verdicts and the commands of people are all inputs, so the same inputs
//! always give the same state, and a restart that reads the state back resumes exactly.
//!
//! One call handles, in this order:
//!
//! 1. **Git.** A desired template hash other than the state's starts a rollout (or
//!    restarts a running one from weight 0 with the newest revision); the same hash as the
//!    live stable Deployment ends a running rollout (Git went back); a service whose stable
//!    Deployment has no template hash yet (its first deployment) is applied directly, never
//!    as a canary. A rolled-back hash is not tried again.
//! 2. **A command** of a person: abort, retry or approve (see [`Command`]).
//! 3. **Time and readiness.** Starting and Promoting wait for readiness within the load
//!    timeout; a step held for `stepInterval` asks for its analysis
//!    ([`Advance::analyse`]) and, given the verdicts, advances, holds, rolls back or pauses.
//!
//! The engine calls `advance` again with the analysis when it asked for one, applies
//! [`RolloutState::desired`] through the overlay, stores the state, and calls again at
//! [`Advance::requeue_at`] or when a Deployment's readiness changes.

use jiff::{SignedDuration, Timestamp};

use super::plan::RolloutPlan;
use super::state::{PauseReason, Phase, PhaseName, Position, RollbackReason, RolloutState};
use super::verdict::{StepAnalysis, Verdict};

/// A person's instruction, from `modelship rollout approve|abort|retry NAMESPACE/NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Let a rollout waiting at a gate move on to the gated weight.
    Approve,
    /// Roll back a running or paused rollout now (not once promotion has begun).
    Abort,
    /// Try a rolled-back template again, or resume a paused rollout where it stopped.
    Retry,
}

/// What became of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// The command took effect; the engine may clear it.
    Applied(Command),
    /// The command does not apply to the current phase; the text says why.
    Ignored(Command, String),
}

/// The live facts and the time one call of [`advance`] decides on.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The engine's clock.
    pub now: Timestamp,
    /// The revision (commit) the desired objects were compiled from.
    pub revision: &'a str,
    /// The pod-template hash of the desired stable Deployment.
    pub desired_hash: &'a str,
    /// The template hash recorded on the live stable Deployment; `None` when there is no
    /// stable Deployment yet, or it was written before modelship recorded hashes.
    pub stable_hash: Option<&'a str>,
    /// The canary Deployment is ready (its generation observed, every replica available).
    pub canary_ready: bool,
    /// The stable Deployment is ready, likewise.
    pub stable_ready: bool,
    /// The analysis of the step that ended, when [`Advance::analyse`] asked for one.
    pub analysis: Option<&'a StepAnalysis>,
    /// A person's command, if one is pending.
    pub command: Option<Command>,
}

/// A window of time to analyse: the step that just ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalysisWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The canary's weight during the window.
    pub weight: u32,
}

impl AnalysisWindow {
    /// The window's length, at least one second (PromQL ranges must be positive).
    pub fn duration(&self) -> SignedDuration {
        self.end
            .duration_since(self.start)
            .max(SignedDuration::from_secs(1))
    }
}

/// One change of phase, for Kubernetes Events and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: PhaseName,
    pub to: PhaseName,
    /// In words: `step 2 of 4: weight 25`, `rolled back: analysis failed: ...`.
    pub message: String,
}

/// The result of one [`advance`].
#[derive(Debug, Clone, PartialEq)]
pub struct Advance {
    pub state: RolloutState,
    /// Set when a step is due: run these checks over the window and call again with them.
    pub analyse: Option<AnalysisWindow>,
    /// When time alone changes something next (end of a step, a load timeout).
    pub requeue_at: Option<Timestamp>,
    /// The phase changes of this call, in order.
    pub transitions: Vec<Transition>,
    pub command: Option<CommandOutcome>,
}

/// Advances `state` as far as the observation allows.
pub fn advance(state: &RolloutState, plan: &RolloutPlan, obs: &Observation) -> Advance {
    let mut run = Run {
        plan,
        obs,
        state: state.clone(),
        out: Vec::new(),
        analyse: None,
        command: None,
        started: false,
    };
    run.follow_git();
    if let Some(command) = obs.command {
        run.command(command);
    }
    run.progress();
    let requeue_at = run.requeue_at();
    Advance {
        state: run.state,
        analyse: run.analyse,
        requeue_at,
        transitions: run.out,
        command: run.command,
    }
}

/// The working data of one `advance`.
struct Run<'a> {
    plan: &'a RolloutPlan,
    obs: &'a Observation<'a>,
    state: RolloutState,
    out: Vec<Transition>,
    analyse: Option<AnalysisWindow>,
    command: Option<CommandOutcome>,
    /// A rollout (re)started in this call: the canary readiness observed belongs to the
    /// Deployment as it was before this call's template, so it is not trusted yet.
    started: bool,
}

impl Run<'_> {
    fn now(&self) -> Timestamp {
        self.obs.now
    }

    fn go(&mut self, phase: Phase, message: String) {
        self.out.push(Transition {
            from: self.state.phase.name(),
            to: phase.name(),
            message,
        });
        self.state.phase = phase;
    }

    /// Starts a rollout of the desired template from weight 0, forgetting the last one.
    fn start(&mut self, message: &str) {
        self.state.revision = self.obs.revision.to_string();
        self.state.template_hash = self.obs.desired_hash.to_string();
        self.state.failures = 0;
        self.state.inconclusive = 0;
        self.state.approvals.clear();
        self.state.last_analysis = None;
        self.started = true;
        let since = self.now();
        self.go(
            Phase::Starting { since },
            format!("{message}: canary of revision {}", self.obs.revision),
        );
    }

    /// Records the desired template as the stable one, without a rollout.
    fn settle(&mut self, message: &str) {
        self.state.revision = self.obs.revision.to_string();
        self.state.template_hash = self.obs.desired_hash.to_string();
        if self.state.phase != Phase::Stable {
            self.go(Phase::Stable, message.to_string());
        }
    }

    fn follow_git(&mut self) {
        let desired = self.obs.desired_hash;
        let Some(stable) = self.obs.stable_hash else {
            // First deployment (or a stable Deployment from before template hashes):
            // never a canary. A running rollout cannot exist without a stable Deployment.
            self.settle("first deployment: applied without a canary");
            return;
        };
        let same_as_state = desired == self.state.template_hash;
        match &self.state.phase {
            Phase::Stable | Phase::Promoted { .. } if desired == stable => {
                self.state.revision = self.obs.revision.to_string();
                self.state.template_hash = desired.to_string();
            }
            Phase::Stable | Phase::Promoted { .. } => self.start("new pod template"),
            Phase::RolledBack { .. } if same_as_state => {}
            Phase::RolledBack { .. } if desired == stable => {
                self.settle("Git is back at the stable template");
            }
            Phase::RolledBack { .. } => self.start("new pod template after a rollback"),
            _ if same_as_state => {}
            _ if desired == stable => {
                self.settle("rollout cancelled: Git is back at the stable template");
            }
            _ => self.start("rollout restarted by a new pod template"),
        }
    }

    fn command(&mut self, command: Command) {
        let outcome = match (command, &self.state.phase) {
            (Command::Abort, Phase::Promoting { .. }) => Err("promotion has begun"),
            (Command::Abort, phase) if phase.is_active() => {
                self.roll_back(RollbackReason::Aborted, "by `modelship rollout abort`");
                Ok(())
            }
            (Command::Retry, Phase::RolledBack { .. }) => {
                self.start("retry");
                Ok(())
            }
            (Command::Retry, Phase::Paused { at, .. }) => {
                let (at, since) = (*at, self.now());
                self.state.inconclusive = 0;
                let phase = match at {
                    Position::Step(step) => Phase::Progressing { step, since },
                    Position::Promoting => Phase::Promoting { since },
                };
                self.go(phase, "resumed by `modelship rollout retry`".to_string());
                Ok(())
            }
            (Command::Approve, Phase::WaitingForGate { step, .. }) => {
                let step = *step;
                self.state.approvals.insert(self.plan.weight(step));
                self.enter_step(step, "approved");
                Ok(())
            }
            (Command::Abort, _) => Err("no rollout is running"),
            (Command::Retry, _) => Err("the rollout is neither rolled back nor paused"),
            (Command::Approve, _) => Err("the rollout is not waiting at a gate"),
        };
        self.command = Some(match outcome {
            Ok(()) => CommandOutcome::Applied(command),
            Err(why) => CommandOutcome::Ignored(command, why.to_string()),
        });
    }

    fn roll_back(&mut self, reason: RollbackReason, detail: &str) {
        let at = self.now();
        self.go(
            Phase::RolledBack { at, reason },
            format!(
                "rolled back revision {}: {}: {detail}",
                self.state.revision,
                reason.as_str()
            ),
        );
    }

    /// Moves to step `step`, or to its gate when it has one not yet approved.
    fn enter_step(&mut self, step: usize, why: &str) {
        let since = self.now();
        let weight = self.plan.weight(step);
        let total = self.plan.steps.len();
        if self.plan.gated(step) && !self.state.approvals.contains(&weight) {
            self.go(
                Phase::WaitingForGate { step, since },
                format!("waiting for approval before weight {weight}"),
            );
        } else {
            self.go(
                Phase::Progressing { step, since },
                format!("{why}: step {} of {total}: weight {weight}", step + 1),
            );
        }
    }

    fn progress(&mut self) {
        let now = self.now();
        match self.state.phase.clone() {
            Phase::Starting { since } => {
                if self.obs.canary_ready && !self.started {
                    self.enter_step(0, "canary ready");
                } else if now.duration_since(since) > self.plan.load_timeout {
                    let detail = format!("waited {}", human(self.plan.load_timeout));
                    self.roll_back(RollbackReason::CanaryNotReady, &detail);
                }
            }
            Phase::Progressing { step, since } => self.step_due(step, since),
            Phase::Promoting { since } => {
                let updated = self.obs.stable_hash == Some(self.state.template_hash.as_str());
                if updated && self.obs.stable_ready {
                    let message = format!("promoted revision {}", self.state.revision);
                    self.go(Phase::Promoted { at: now }, message);
                } else if now.duration_since(since) > self.plan.load_timeout {
                    let phase = Phase::Paused {
                        at: Position::Promoting,
                        since: now,
                        reason: PauseReason::StableNotReady,
                    };
                    self.go(phase, PauseReason::StableNotReady.as_str().to_string());
                }
            }
            Phase::Stable
            | Phase::WaitingForGate { .. }
            | Phase::Promoted { .. }
            | Phase::RolledBack { .. }
            | Phase::Paused { .. } => {}
        }
    }

    /// A step held for its interval is analysed, then advances, holds, rolls back or
    /// pauses.
    fn step_due(&mut self, step: usize, since: Timestamp) {
        let now = self.now();
        if now.duration_since(since) < self.plan.step_interval {
            return;
        }
        let weight = self.plan.weight(step);
        // An analysis taken before this step started belongs to another window.
        let Some(analysis) = self.obs.analysis.filter(|a| a.at >= since) else {
            self.analyse = Some(AnalysisWindow {
                start: since,
                end: now,
                weight,
            });
            return;
        };
        self.state.last_analysis = Some(analysis.clone());
        let verdict = analysis.verdict();
        match verdict {
            Verdict::Pass => {
                self.state.inconclusive = 0;
                if step >= self.plan.last_step() {
                    let message = format!("every step passed: promoting {}", self.state.revision);
                    self.go(Phase::Promoting { since: now }, message);
                } else {
                    self.enter_step(step + 1, "analysis passed");
                }
            }
            Verdict::Fail => {
                self.state.failures += 1;
                if self.state.failures >= self.plan.failure_limit {
                    self.roll_back(RollbackReason::AnalysisFailed, &analysis.summary());
                } else {
                    let count = (self.state.failures, self.plan.failure_limit);
                    self.hold(step, "failed", count, analysis);
                }
            }
            Verdict::NoData | Verdict::Error => {
                self.state.inconclusive += 1;
                if self.state.inconclusive >= self.plan.inconclusive_limit {
                    let phase = Phase::Paused {
                        at: Position::Step(step),
                        since: now,
                        reason: PauseReason::Inconclusive,
                    };
                    self.go(phase, format!("paused: {}", analysis.summary()));
                } else {
                    let count = (self.state.inconclusive, self.plan.inconclusive_limit);
                    self.hold(step, "inconclusive", count, analysis);
                }
            }
        }
    }

    /// Holds step `step` for another full window after an analysis that did not pass.
    fn hold(
        &mut self,
        step: usize,
        what: &str,
        (count, limit): (u32, u32),
        analysis: &StepAnalysis,
    ) {
        let weight = self.plan.weight(step);
        let message = format!(
            "analysis {what} ({count} of {limit}), holding weight {weight}: {}",
            analysis.summary()
        );
        let since = self.now();
        self.go(Phase::Progressing { step, since }, message);
    }

    fn requeue_at(&self) -> Option<Timestamp> {
        let after = |since: Timestamp, wait: SignedDuration| since.checked_add(wait).ok();
        match &self.state.phase {
            _ if self.analyse.is_some() => Some(self.now()),
            Phase::Starting { since } | Phase::Promoting { since } => {
                after(*since, self.plan.load_timeout)
            }
            Phase::Progressing { since, .. } => after(*since, self.plan.step_interval),
            _ => None,
        }
    }
}

/// `5m`, `90s`: a duration for messages.
fn human(duration: SignedDuration) -> String {
    let secs = duration.as_secs();
    if secs % 60 == 0 && secs > 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
