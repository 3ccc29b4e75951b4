//! Table tests of every phase and transition, with a fake clock and fake verdicts.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::rollout::Error;
use crate::rollout::state::{
    PauseReason, Phase, PhaseName, Position, RollbackReason, StableTemplate,
};
use crate::rollout::verdict::{CheckResult, StepAnalysis, Threshold, Verdict};

const INTERVAL: i64 = 60;
const LOAD: i64 = 300;

/// Steps 5, 25, 50 (gated), 100; one minute (INTERVAL) each; load timeout LOAD.
fn plan() -> RolloutPlan {
    crate::rollout::plan::example()
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

/// The state of a rollout of template `new` (revision r2) in `phase`.
fn at(phase: Phase) -> RolloutState {
    RolloutState {
        revision: "r2".to_string(),
        template_hash: "new".to_string(),
        phase,
        ..RolloutState::default()
    }
}

fn stable_at(hash: &str) -> RolloutState {
    RolloutState {
        revision: "r1".to_string(),
        template_hash: hash.to_string(),
        ..RolloutState::default()
    }
}

fn analysis(when: i64, verdict: Verdict) -> StepAnalysis {
    StepAnalysis {
        at: t(when),
        weight: 5,
        checks: vec![CheckResult {
            name: "successRate".to_string(),
            verdict,
            value: (verdict != Verdict::NoData).then_some(97.0),
            threshold: Threshold {
                min: Some(99.0),
                max: None,
            },
            message: None,
        }],
    }
}

/// A fake observation: Git at template `new` (revision r2), stable live at `old`.
#[derive(Clone)]
struct Obs {
    now: i64,
    revision: &'static str,
    desired: &'static str,
    stable: Option<&'static str>,
    canary_ready: bool,
    stable_ready: bool,
    analysis: Option<StepAnalysis>,
    command: Option<Command>,
}

fn obs(now: i64) -> Obs {
    Obs {
        now,
        revision: "r2",
        desired: "new",
        stable: Some("old"),
        canary_ready: true,
        stable_ready: true,
        analysis: None,
        command: None,
    }
}

impl Obs {
    fn desired(mut self, hash: &'static str, revision: &'static str) -> Self {
        self.desired = hash;
        self.revision = revision;
        self
    }
    fn stable(mut self, hash: Option<&'static str>) -> Self {
        self.stable = hash;
        self
    }
    fn canary_ready(mut self, ready: bool) -> Self {
        self.canary_ready = ready;
        self
    }
    fn stable_ready(mut self, ready: bool) -> Self {
        self.stable_ready = ready;
        self
    }
    fn verdict(mut self, verdict: Verdict) -> Self {
        self.analysis = Some(analysis(self.now, verdict));
        self
    }
    fn command(mut self, command: Command) -> Self {
        self.command = Some(command);
        self
    }
    fn run(&self, state: &RolloutState) -> Advance {
        self.run_with(state, &plan())
    }
    fn run_with(&self, state: &RolloutState, plan: &RolloutPlan) -> Advance {
        let observation = Observation {
            now: t(self.now),
            revision: self.revision,
            desired_hash: self.desired,
            stable_hash: self.stable,
            canary_ready: self.canary_ready,
            stable_ready: self.stable_ready,
            analysis: self.analysis.as_ref(),
            command: self.command,
        };
        advance(state, plan, &observation)
    }
}

fn progressing(step: usize, since: i64) -> Phase {
    Phase::Progressing {
        step,
        since: t(since),
    }
}

fn paused_step(step: usize, since: i64) -> Phase {
    Phase::Paused {
        at: Position::Step(step),
        since: t(since),
        reason: PauseReason::Inconclusive,
    }
}

fn rolled_back(when: i64, reason: RollbackReason) -> Phase {
    Phase::RolledBack {
        at: t(when),
        reason,
    }
}

#[test]
fn every_phase_and_transition() {
    use Verdict::*;
    let starting = Phase::Starting { since: t(0) };
    let promoting = Phase::Promoting { since: t(0) };
    let gate = Phase::WaitingForGate {
        step: 2,
        since: t(0),
    };
    let cases: Vec<(&str, RolloutState, Obs, Phase)> = vec![
        // Stable and promoted: only a new pod template starts a rollout.
        (
            "first deployment is not a canary",
            RolloutState::default(),
            obs(0).stable(None),
            Phase::Stable,
        ),
        (
            "unchanged template stays stable",
            stable_at("new"),
            obs(0).stable(Some("new")),
            Phase::Stable,
        ),
        (
            "new template starts a canary",
            stable_at("old"),
            obs(10),
            Phase::Starting { since: t(10) },
        ),
        (
            "new template after a promotion starts again",
            at(Phase::Promoted { at: t(0) }).with_hash("old"),
            obs(10),
            Phase::Starting { since: t(10) },
        ),
        // Starting: readiness within the load timeout.
        (
            "canary not ready yet waits",
            at(starting.clone()),
            obs(LOAD).canary_ready(false),
            starting.clone(),
        ),
        (
            "canary ready enters the first step",
            at(starting.clone()),
            obs(30),
            progressing(0, 30),
        ),
        (
            "canary not ready within loadTimeout rolls back",
            at(starting.clone()),
            obs(LOAD + 1).canary_ready(false),
            rolled_back(LOAD + 1, RollbackReason::CanaryNotReady),
        ),
        // Progressing: held for stepInterval, then the analysis decides.
        (
            "a step is held for its interval",
            at(progressing(0, 0)),
            obs(INTERVAL - 1).verdict(Pass),
            progressing(0, 0),
        ),
        (
            "a due step without verdicts waits for its analysis",
            at(progressing(0, 0)),
            obs(INTERVAL),
            progressing(0, 0),
        ),
        (
            "an analysis older than the step is ignored",
            at(progressing(0, 30)),
            Obs {
                analysis: Some(analysis(10, Pass)),
                ..obs(INTERVAL + 30)
            },
            progressing(0, 30),
        ),
        (
            "pass advances",
            at(progressing(0, 0)),
            obs(INTERVAL).verdict(Pass),
            progressing(1, INTERVAL),
        ),
        (
            "pass before a gated weight waits at the gate",
            at(progressing(1, 0)),
            obs(INTERVAL).verdict(Pass),
            Phase::WaitingForGate {
                step: 2,
                since: t(INTERVAL),
            },
        ),
        (
            "pass on the last step promotes",
            at(progressing(3, 0)),
            obs(INTERVAL).verdict(Pass),
            Phase::Promoting { since: t(INTERVAL) },
        ),
        (
            "a failure below the limit holds the step for a new window",
            at(progressing(1, 0)),
            obs(INTERVAL).verdict(Fail),
            progressing(1, INTERVAL),
        ),
        (
            "the failure reaching failureLimit rolls back",
            RolloutState {
                failures: 1,
                ..at(progressing(1, 0))
            },
            obs(INTERVAL).verdict(Fail),
            rolled_back(INTERVAL, RollbackReason::AnalysisFailed),
        ),
        (
            "no data holds the step",
            at(progressing(1, 0)),
            obs(INTERVAL).verdict(NoData),
            progressing(1, INTERVAL),
        ),
        (
            "an error holds the step",
            at(progressing(1, 0)),
            obs(INTERVAL).verdict(Error),
            progressing(1, INTERVAL),
        ),
        (
            "the inconclusive budget spent pauses",
            RolloutState {
                inconclusive: 2,
                ..at(progressing(1, 0))
            },
            obs(INTERVAL).verdict(Error),
            paused_step(1, INTERVAL),
        ),
        // Gates.
        (
            "a gate waits without approval, whatever the time",
            at(gate.clone()),
            obs(10_000),
            gate.clone(),
        ),
        (
            "approve lets the gated weight start",
            at(gate.clone()),
            obs(100).command(Command::Approve),
            progressing(2, 100),
        ),
        // Promoting.
        (
            "promotion waits for the stable Deployment to take the template",
            at(promoting.clone()),
            obs(10),
            promoting.clone(),
        ),
        (
            "promotion waits for the stable Deployment to be ready",
            at(promoting.clone()),
            obs(10).stable(Some("new")).stable_ready(false),
            promoting.clone(),
        ),
        (
            "stable ready with the new template is promoted",
            at(promoting.clone()),
            obs(10).stable(Some("new")),
            Phase::Promoted { at: t(10) },
        ),
        (
            "stable not ready within loadTimeout pauses",
            at(promoting.clone()),
            obs(LOAD + 1).stable(Some("new")).stable_ready(false),
            Phase::Paused {
                at: Position::Promoting,
                since: t(LOAD + 1),
                reason: PauseReason::StableNotReady,
            },
        ),
        // Paused waits for a person.
        (
            "paused stays paused",
            at(paused_step(1, 0)),
            obs(10_000).verdict(Pass),
            paused_step(1, 0),
        ),
        (
            "retry resumes a paused step with a new window",
            at(paused_step(1, 0)),
            obs(500).command(Command::Retry),
            progressing(1, 500),
        ),
        (
            "retry resumes a paused promotion",
            at(Phase::Paused {
                at: Position::Promoting,
                since: t(0),
                reason: PauseReason::StableNotReady,
            }),
            obs(500).command(Command::Retry),
            Phase::Promoting { since: t(500) },
        ),
        // Rolled back: the same template is not retried.
        (
            "a rolled-back template is not retried",
            at(rolled_back(0, RollbackReason::AnalysisFailed)),
            obs(10_000),
            rolled_back(0, RollbackReason::AnalysisFailed),
        ),
        (
            "retry tries a rolled-back template again",
            at(rolled_back(0, RollbackReason::AnalysisFailed)),
            obs(100).command(Command::Retry),
            Phase::Starting { since: t(100) },
        ),
        (
            "a new template after a rollback starts a new rollout",
            at(rolled_back(0, RollbackReason::AnalysisFailed)),
            obs(100).desired("newer", "r3"),
            Phase::Starting { since: t(100) },
        ),
        (
            "Git back at the stable template after a rollback settles",
            at(rolled_back(0, RollbackReason::AnalysisFailed)),
            obs(100).desired("old", "r3"),
            Phase::Stable,
        ),
        // Abort.
        (
            "abort rolls back a running step",
            at(progressing(2, 0)),
            obs(10).command(Command::Abort),
            rolled_back(10, RollbackReason::Aborted),
        ),
        (
            "abort rolls back while starting",
            at(starting.clone()),
            obs(10).command(Command::Abort).canary_ready(false),
            rolled_back(10, RollbackReason::Aborted),
        ),
        (
            "abort rolls back at a gate",
            at(gate.clone()),
            obs(10).command(Command::Abort),
            rolled_back(10, RollbackReason::Aborted),
        ),
        (
            "abort rolls back a paused rollout",
            at(paused_step(1, 0)),
            obs(10).command(Command::Abort),
            rolled_back(10, RollbackReason::Aborted),
        ),
        (
            "abort is too late once promotion began",
            at(promoting.clone()),
            obs(10).command(Command::Abort),
            promoting.clone(),
        ),
        // A new commit mid-rollout.
        (
            "a new template mid-step restarts from weight 0",
            at(progressing(2, 0)),
            obs(30).desired("newer", "r3"),
            Phase::Starting { since: t(30) },
        ),
        (
            "a new template at a gate restarts",
            at(gate.clone()),
            obs(30).desired("newer", "r3"),
            Phase::Starting { since: t(30) },
        ),
        (
            "a new template while paused restarts",
            at(paused_step(1, 0)),
            obs(30).desired("newer", "r3"),
            Phase::Starting { since: t(30) },
        ),
        (
            "Git back at the stable template cancels a running rollout",
            at(progressing(2, 0)),
            obs(30).desired("old", "r3"),
            Phase::Stable,
        ),
        (
            "a new revision with the same template does not restart",
            at(progressing(2, 0)),
            obs(30).desired("new", "r3"),
            progressing(2, 0),
        ),
    ];
    for (name, state, obs, expected) in cases {
        let advance = obs.run(&state);
        assert_eq!(advance.state.phase, expected, "{name}");
        let changed = state.phase != expected;
        assert_eq!(
            !advance.transitions.is_empty(),
            changed,
            "{name}: transitions"
        );
    }
}

trait WithHash {
    fn with_hash(self, hash: &str) -> Self;
}

impl WithHash for RolloutState {
    fn with_hash(mut self, hash: &str) -> Self {
        self.template_hash = hash.to_string();
        self
    }
}

#[test]
fn a_due_step_asks_for_the_analysis_of_its_window() {
    let state = at(progressing(1, 0));
    let advance = obs(INTERVAL + 15).run(&state);
    assert_eq!(
        advance.analyse,
        Some(AnalysisWindow {
            start: t(0),
            end: t(INTERVAL + 15),
            weight: 25,
        })
    );
    assert_eq!(advance.requeue_at, Some(t(INTERVAL + 15)));
    let early = obs(INTERVAL - 1).run(&state);
    assert_eq!(early.analyse, None);
    assert_eq!(early.requeue_at, Some(t(INTERVAL)));
}

#[test]
fn counters_follow_the_verdicts() {
    let failed = obs(INTERVAL)
        .verdict(Verdict::Fail)
        .run(&at(progressing(0, 0)));
    assert_eq!((failed.state.failures, failed.state.inconclusive), (1, 0));
    let measured = failed.state.last_analysis.as_ref().unwrap();
    assert_eq!(measured.checks[0].value, Some(97.0));

    let held = RolloutState {
        inconclusive: 2,
        failures: 1,
        ..at(progressing(0, 0))
    };
    let passed = obs(INTERVAL).verdict(Verdict::Pass).run(&held);
    assert_eq!(
        passed.state.inconclusive, 0,
        "a pass resets the inconclusive run"
    );
    assert_eq!(
        passed.state.failures, 1,
        "failures count over the whole rollout"
    );

    let restarted = obs(30).desired("newer", "r3").run(&RolloutState {
        approvals: BTreeSet::from([50]),
        ..held
    });
    let s = &restarted.state;
    assert_eq!(
        (s.failures, s.inconclusive, s.revision.as_str()),
        (0, 0, "r3")
    );
    assert!(s.approvals.is_empty() && s.last_analysis.is_none());
    assert_eq!(s.template_hash, "newer");
}

#[test]
fn a_rollback_keeps_the_measured_values_and_says_why() {
    let state = RolloutState {
        failures: 1,
        ..at(progressing(1, 0))
    };
    let advance = obs(INTERVAL).verdict(Verdict::Fail).run(&state);
    let transition = &advance.transitions[0];
    assert_eq!(
        (transition.from, transition.to),
        (PhaseName::Progressing, PhaseName::RolledBack)
    );
    assert!(
        transition
            .message
            .contains("analysis failed: successRate 97 (min 99)"),
        "{}",
        transition.message
    );
    let kept = advance.state.last_analysis.unwrap();
    assert_eq!(kept.verdict(), Verdict::Fail);
    assert_eq!(advance.state.template_hash, "new");
    assert_eq!(advance.state.revision, "r2");
}

#[test]
fn commands_report_whether_they_applied() {
    let cases = [
        (at(progressing(0, 0)), Command::Approve, false),
        (at(progressing(0, 0)), Command::Retry, false),
        (stable_at("new"), Command::Abort, false),
        (at(Phase::Promoting { since: t(0) }), Command::Abort, false),
        (at(progressing(0, 0)), Command::Abort, true),
        (
            at(rolled_back(0, RollbackReason::Aborted)),
            Command::Retry,
            true,
        ),
    ];
    for (state, command, applied) in cases {
        let live = if state.phase == Phase::Stable {
            "new"
        } else {
            "old"
        };
        let advance = obs(1).stable(Some(live)).command(command).run(&state);
        let outcome = advance.command.unwrap();
        assert_eq!(
            matches!(outcome, CommandOutcome::Applied(_)),
            applied,
            "{command:?} in {:?}: {outcome:?}",
            state.phase
        );
    }
}

#[test]
fn an_approval_is_recorded_and_a_gate_on_the_first_step_waits() {
    let mut gated_first = plan();
    gated_first.gates = BTreeSet::from([5]);
    let starting = at(Phase::Starting { since: t(0) });
    let waiting = obs(20).run_with(&starting, &gated_first);
    assert_eq!(
        waiting.state.phase,
        Phase::WaitingForGate {
            step: 0,
            since: t(20)
        }
    );
    let approved = obs(40)
        .command(Command::Approve)
        .run_with(&waiting.state, &gated_first);
    assert_eq!(approved.state.phase, progressing(0, 40));
    assert_eq!(approved.state.approvals, BTreeSet::from([5]));
}

#[test]
fn the_desired_objects_follow_the_phase() {
    use StableTemplate::{Desired as New, Live};
    let plan = plan();
    let cases = [
        (Phase::Stable, None, New),
        (Phase::Starting { since: t(0) }, Some(0), Live),
        (progressing(1, 0), Some(25), Live),
        (
            Phase::WaitingForGate {
                step: 2,
                since: t(0),
            },
            Some(25),
            Live,
        ),
        (paused_step(1, 0), Some(25), Live),
        (Phase::Promoting { since: t(0) }, Some(100), New),
        (Phase::Promoted { at: t(0) }, None, New),
        (rolled_back(0, RollbackReason::Aborted), None, Live),
    ];
    for (phase, weight, stable) in cases {
        let desired = at(phase.clone()).desired(&plan);
        assert_eq!(desired.canary_weight, weight, "{phase:?}");
        assert_eq!(desired.stable, stable, "{phase:?}");
    }
}

#[test]
fn state_round_trips_through_json_and_resumes_the_same_step() {
    let state = RolloutState {
        failures: 1,
        inconclusive: 1,
        approvals: BTreeSet::from([50]),
        last_analysis: Some(analysis(50, Verdict::Fail)),
        ..at(progressing(2, 0))
    };
    let json = state.to_json().unwrap();
    assert!(json.contains(r#""phase":"progressing","step":2"#), "{json}");
    let back = RolloutState::from_json(&json).unwrap();
    assert_eq!(back, state);
    // A restart 45s into the step: 15s left, no new timer.
    assert_eq!(
        back.time_left(&plan(), t(45)),
        Some(SignedDuration::from_secs(15))
    );
    assert_eq!(obs(45).run(&back).requeue_at, Some(t(INTERVAL)));

    for phase in [
        Phase::Stable,
        Phase::Paused {
            at: Position::Promoting,
            since: t(0),
            reason: PauseReason::StableNotReady,
        },
        rolled_back(3, RollbackReason::CanaryNotReady),
    ] {
        let state = at(phase);
        assert_eq!(
            RolloutState::from_json(&state.to_json().unwrap()).unwrap(),
            state
        );
    }
}

#[test]
fn unreadable_state_is_an_error_not_a_panic() {
    assert!(matches!(
        RolloutState::from_json("{"),
        Err(Error::BadState(_))
    ));
    let future = at(Phase::Stable)
        .to_json()
        .unwrap()
        .replace(r#""version":1"#, r#""version":7"#);
    assert_eq!(
        RolloutState::from_json(&future),
        Err(Error::StateVersion(7))
    );
}

/// Drives a whole rollout with the fake clock: every step, the gate, promotion.
#[test]
fn a_healthy_rollout_goes_through_every_step_and_is_promoted() {
    let plan = plan();
    let mut state = stable_at("old");
    let mut now = 0;
    let mut weights = Vec::new();
    let mut stable = "old";
    for _ in 0..40 {
        // No canary exists before a rollout starts; afterwards the fake one is ready.
        let canary_exists = state.phase.is_active();
        let mut o = obs(now).stable(Some(stable)).canary_ready(canary_exists);
        if matches!(state.phase, Phase::WaitingForGate { .. }) {
            o = o.command(Command::Approve);
        }
        let mut advance = o.run_with(&state, &plan);
        if let Some(window) = advance.analyse {
            assert_eq!(window.duration(), SignedDuration::from_secs(INTERVAL));
            advance = o.verdict(Verdict::Pass).run_with(&state, &plan);
        }
        state = advance.state;
        if let Some(weight) = state.desired(&plan).canary_weight
            && weights.last() != Some(&weight)
        {
            weights.push(weight);
        }
        if matches!(state.phase, Phase::Promoting { .. }) {
            stable = "new"; // the engine applied the new template to stable
        }
        if matches!(state.phase, Phase::Promoted { .. }) {
            break;
        }
        now += INTERVAL;
    }
    assert!(matches!(state.phase, Phase::Promoted { .. }), "{state:?}");
    assert_eq!(weights, vec![0, 5, 25, 50, 100]);
    assert_eq!(state.approvals, BTreeSet::from([50]));
}
