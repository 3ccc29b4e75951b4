//! What `plan` and `apply` print of the canary rollouts the engine's steps advanced:
//! where each stands and what changed (`apply`), the steps, gates and peak of those a
//! plan starts or moves (`plan`, text and JSON), and when `apply --wait` looks again.

use std::io::Write;
use std::time::Duration;

use jiff::Timestamp;

use crate::engine::rollout::RolloutReport;
use crate::rollout::PhaseName;

/// How often `rollout status --watch` redraws, and `apply --wait` looks at rollouts
/// waiting on readiness.
pub const POLL: Duration = Duration::from_secs(2);

/// What `apply` says of the rollouts it advanced: where each stands and what changed.
pub fn print_advanced(report: &RolloutReport, out: &mut impl Write) {
    for rollout in &report.services {
        let id = &rollout.id;
        for transition in &rollout.transitions {
            let _ = writeln!(out, "rollout {id}: {}", transition.message);
        }
        if let Some(crate::rollout::CommandOutcome::Ignored(command, why)) = &rollout.command {
            let _ = writeln!(out, "rollout {id}: command {command:?} ignored: {why}");
        }
        for note in &rollout.notes {
            let _ = writeln!(out, "warning: rollout {id}: {note}");
        }
        if rollout.state.phase.is_active() || !rollout.transitions.is_empty() {
            let _ = writeln!(out, "rollout {id}: {}", rollout.status);
        }
    }
}

/// What `plan` says of canary services whose template changes: the steps and gates, the
/// interval, and the peak GPUs and hourly cost during the rollout.
pub fn plan_text(report: &RolloutReport) -> String {
    let mut out = String::new();
    for rollout in &report.services {
        if !rollout.in_plan() {
            continue;
        }
        let plan = &rollout.plan;
        let steps: Vec<String> = plan
            .steps
            .iter()
            .map(|w| {
                if plan.gates.contains(w) {
                    format!("[approve] {w}%")
                } else {
                    format!("{w}%")
                }
            })
            .collect();
        out += &format!(
            "Canary {}: {} ({}), each step {}s then analysed\n",
            rollout.id,
            steps.join(" -> "),
            rollout.status,
            plan.step_interval.as_secs()
        );
        let footprint = &rollout.footprint;
        if footprint.peak_gpus > 0 {
            out += &format!(
                "  peak {} GPUs ({} per pod)",
                footprint.peak_gpus, footprint.gpus_per_pod
            );
            if let Some(cost) = footprint.peak_hourly_cost {
                out += &format!(", ${cost:.2}/h at the peak");
            }
            out += "\n";
        }
    }
    out
}

/// The `rollouts` of `plan -o json`: the canary services whose rollout the plan starts
/// or moves, as `plan_text` lists them (schema in `plan::render::json`).
pub fn plan_json(report: &RolloutReport) -> serde_json::Value {
    let rollouts: Vec<serde_json::Value> = report
        .services
        .iter()
        .filter(|rollout| rollout.in_plan())
        .map(|rollout| {
            let plan = &rollout.plan;
            serde_json::json!({
                "namespace": rollout.id.namespace(),
                "name": rollout.id.name(),
                "steps": plan.steps,
                "gates": plan.gates,
                "stepIntervalSeconds": plan.step_interval.as_secs(),
                "loadTimeoutSeconds": plan.load_timeout.as_secs(),
                "failureLimit": plan.failure_limit,
                "inconclusiveLimit": plan.inconclusive_limit,
                "status": rollout.status,
                "footprint": rollout.footprint,
            })
        })
        .collect();
    serde_json::Value::Array(rollouts)
}

/// How long `apply --wait` sleeps before advancing again: until the earliest rollout is
/// due, or [`POLL`] while one waits on readiness (starting, promoting).
pub fn next_wake(report: &RolloutReport, now: Timestamp) -> Duration {
    let waiting_on_readiness = report.services.iter().any(|s| {
        matches!(
            s.state.phase.name(),
            PhaseName::Starting | PhaseName::Promoting
        )
    });
    let due = report
        .requeue_at()
        .map(|at| at.duration_since(now))
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(POLL);
    let wake = if waiting_on_readiness {
        due.min(POLL)
    } else {
        due
    };
    wake.max(Duration::from_millis(100))
}

/// True when a rollout rolled back or paused: `apply --wait` exits 1 then.
pub fn needs_attention(report: &RolloutReport) -> bool {
    report.services.iter().any(|s| {
        matches!(
            s.state.phase.name(),
            PhaseName::RolledBack | PhaseName::Paused
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_report_wakes_after_the_poll_and_needs_nothing() {
        let report = RolloutReport::default();
        assert_eq!(next_wake(&report, Timestamp::UNIX_EPOCH), POLL);
        assert!(!needs_attention(&report));
        assert_eq!(plan_text(&report), "");
    }
}
