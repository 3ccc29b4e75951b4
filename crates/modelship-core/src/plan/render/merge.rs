//! What merging a pull request will do to one service: its rollout strategy as the spec
//! writes it (a rolling update, or the canary's steps, gates and analysis), for the
//! comment's "Merging will" line. Pure: read from the `ModelService` alone.

use std::fmt::Write as _;

use crate::spec::types::{ModelService, RolloutSpec, Strategy};

/// How a new pod template reaches the service's pods.
#[derive(Debug, Clone, PartialEq)]
pub enum Merge {
    /// A Kubernetes rolling update of the Deployment.
    Rolling,
    /// A canary rollout: traffic weights in order, gates before weights, analysis.
    Canary(Box<CanaryPlan>),
}

/// The canary a merge starts, as the spec writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryPlan {
    pub steps: Vec<u32>,
    /// `5m`, as written; `None` when the spec leaves it out.
    pub step_interval: Option<String>,
    /// Weights that wait for an approval before they start.
    pub gates: Vec<u32>,
    /// `success rate >= 99%`, `p99 latency <= 500ms`, `drift <= 0.3`...
    pub checks: Vec<String>,
    /// Failed checks before rollback.
    pub failure_limit: Option<u32>,
}

impl Merge {
    /// The strategy of a service's spec.
    pub fn of(service: &ModelService) -> Merge {
        match &service.spec.rollout {
            Some(rollout) if rollout.strategy == Strategy::Canary => {
                Merge::Canary(Box::new(canary(rollout)))
            }
            _ => Merge::Rolling,
        }
    }

    /// One sentence: what merging does to a service whose pods change. `id` is
    /// `namespace/name`, used in the approval command.
    pub fn sentence(&self, id: &str) -> String {
        match self {
            Merge::Rolling => "roll the pods out with a rolling update".to_string(),
            Merge::Canary(canary) => canary_sentence(canary, id),
        }
    }
}

fn canary(rollout: &RolloutSpec) -> CanaryPlan {
    let mut checks = Vec::new();
    let mut failure_limit = None;
    if let Some(analysis) = &rollout.analysis {
        if let Some(rate) = analysis.success_rate {
            checks.push(format!("success rate ≥ {rate}%"));
        }
        if let Some(latency) = &analysis.latency_p99 {
            checks.push(format!("p99 latency ≤ {latency}"));
        }
        for query in &analysis.queries {
            if let Some(max) = query.max {
                checks.push(format!("{} ≤ {max}", query.name));
            }
            if let Some(min) = query.min {
                checks.push(format!("{} ≥ {min}", query.name));
            }
        }
        if let Some(min) = analysis.min_requests {
            checks.push(format!("at least {min} requests per step"));
        }
        failure_limit = analysis.failure_limit;
    }
    CanaryPlan {
        steps: rollout.steps.clone(),
        step_interval: rollout.step_interval.as_ref().map(ToString::to_string),
        gates: rollout.manual_gates.clone(),
        checks,
        failure_limit,
    }
}

fn canary_sentence(canary: &CanaryPlan, id: &str) -> String {
    let steps: Vec<String> = canary
        .steps
        .iter()
        .map(|step| {
            if canary.gates.contains(step) {
                format!("⏸ gate, then {step}%")
            } else {
                format!("{step}%")
            }
        })
        .collect();
    let mut out = format!("start a canary: {}", steps.join(" → "));
    if let Some(interval) = &canary.step_interval {
        let _ = write!(out, ", {interval} per step");
    }
    if !canary.checks.is_empty() {
        let _ = write!(out, "; each step checks {}", canary.checks.join(", "));
        match canary.failure_limit {
            Some(limit) => {
                let _ = write!(out, " (rolled back after {limit} failed checks)");
            }
            None => out.push_str(" (rolled back when a check fails)"),
        }
    }
    if !canary.gates.is_empty() {
        let _ = write!(
            out,
            ". A gate waits for `/modelship approve {id}` from a user with write permission"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_sentence_names_steps_gates_checks_and_the_approval() {
        let canary = CanaryPlan {
            steps: vec![10, 50, 100],
            step_interval: Some("5m".to_string()),
            gates: vec![50],
            checks: vec!["success rate ≥ 99%".to_string()],
            failure_limit: Some(2),
        };
        assert_eq!(
            Merge::Canary(Box::new(canary)).sentence("ml/fraud"),
            "start a canary: 10% → ⏸ gate, then 50% → 100%, 5m per step; each step checks \
             success rate ≥ 99% (rolled back after 2 failed checks). A gate waits for \
             `/modelship approve ml/fraud` from a user with write permission"
        );
        assert_eq!(
            Merge::Rolling.sentence("ml/fraud"),
            "roll the pods out with a rolling update"
        );
    }
}
