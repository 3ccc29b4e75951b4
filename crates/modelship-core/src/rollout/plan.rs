//! [`RolloutPlan`]: the resolved rollout settings of one canary service (steps, gates,
//! intervals, budgets), with the defaults of SPEC.md filled in. The state machine reads
//! only this, never the spec.

use std::collections::BTreeSet;

use jiff::SignedDuration;

use crate::spec::{ModelServiceSpec, Strategy};

/// `stepInterval` when a canary spec sets none.
pub const DEFAULT_STEP_INTERVAL: SignedDuration = SignedDuration::from_mins(5);
/// `model.loadTimeout` when a spec sets none (the compiler's default too).
pub const DEFAULT_LOAD_TIMEOUT: SignedDuration = SignedDuration::from_mins(5);
/// `analysis.failureLimit` when a spec sets none.
pub const DEFAULT_FAILURE_LIMIT: u32 = 2;
/// `analysis.minRequests` when a spec sets none: a step without a single request is
/// inconclusive.
pub const DEFAULT_MIN_REQUESTS: u64 = 1;
/// Consecutive inconclusive analyses (no data or error) before a rollout pauses.
pub const DEFAULT_INCONCLUSIVE_LIMIT: u32 = 3;

/// The rollout settings of one canary service, resolved. Serialized (durations in ISO
/// 8601, `PT5M`) in the recorded plan of the stable Deployment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPlan {
    /// Canary weights in percent, strictly increasing, ending at 100 (validated in spec).
    pub steps: Vec<u32>,
    /// How long each step is held before its analysis.
    pub step_interval: SignedDuration,
    /// Weights that wait for an approval before traffic moves to them.
    pub gates: BTreeSet<u32>,
    /// How long a new Deployment (canary, then stable at promotion) may take to be ready.
    pub load_timeout: SignedDuration,
    /// Analyses with a failing check before the rollout rolls back.
    pub failure_limit: u32,
    /// Consecutive analyses with no data or an error before the rollout pauses.
    pub inconclusive_limit: u32,
}

impl RolloutPlan {
    /// The plan of a service with `rollout.strategy: canary`; `None` for rolling services.
    /// A canary spec without steps (validation refuses it) gets the single step 100.
    pub fn from_spec(spec: &ModelServiceSpec) -> Option<RolloutPlan> {
        let rollout = spec.rollout.as_ref()?;
        if rollout.strategy != Strategy::Canary {
            return None;
        }
        let analysis = rollout.analysis.as_ref();
        let steps = if rollout.steps.is_empty() {
            vec![100]
        } else {
            rollout.steps.clone()
        };
        Some(RolloutPlan {
            steps,
            step_interval: rollout
                .step_interval
                .as_ref()
                .map_or(DEFAULT_STEP_INTERVAL, |d| signed(d.value())),
            gates: rollout.manual_gates.iter().copied().collect(),
            load_timeout: spec
                .model
                .load_timeout
                .as_ref()
                .map_or(DEFAULT_LOAD_TIMEOUT, |d| signed(d.value())),
            failure_limit: analysis
                .and_then(|a| a.failure_limit)
                .unwrap_or(DEFAULT_FAILURE_LIMIT)
                .max(1),
            inconclusive_limit: DEFAULT_INCONCLUSIVE_LIMIT,
        })
    }

    /// The same plan with another step interval. SPEC.md's minimum of 30s holds for specs;
    /// this is the documented escape hatch for tests and demos that cannot wait minutes.
    pub fn with_step_interval(mut self, interval: SignedDuration) -> RolloutPlan {
        self.step_interval = interval;
        self
    }

    /// The weight of step `index`; 0 past the end (never reached by the machine).
    pub fn weight(&self, index: usize) -> u32 {
        self.steps.get(index).copied().unwrap_or(0)
    }

    /// The weight traffic is at before step `index` starts: the previous step's, or 0.
    pub fn weight_before(&self, index: usize) -> u32 {
        index
            .checked_sub(1)
            .map_or(0, |previous| self.weight(previous))
    }

    /// True when step `index` waits for an approval before it starts.
    pub fn gated(&self, index: usize) -> bool {
        self.steps
            .get(index)
            .is_some_and(|weight| self.gates.contains(weight))
    }

    /// The last step's index.
    pub fn last_step(&self) -> usize {
        self.steps.len().saturating_sub(1)
    }
}

/// The plan the rollout unit tests share: steps 5, 25, 50 (gated), 100; one minute each;
/// load timeout 5m; failure limit 2; inconclusive limit 3.
#[cfg(test)]
pub(crate) fn example() -> RolloutPlan {
    RolloutPlan {
        steps: vec![5, 25, 50, 100],
        step_interval: SignedDuration::from_secs(60),
        gates: BTreeSet::from([50]),
        load_timeout: SignedDuration::from_secs(300),
        failure_limit: 2,
        inconclusive_limit: 3,
    }
}

/// A std duration as a jiff one, saturating (spec durations are far below the limit).
fn signed(duration: std::time::Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::testutil::cpu_service;
    use crate::spec::{AnalysisSpec, RolloutSpec};

    #[test]
    fn rolling_services_have_no_plan() {
        let mut svc = cpu_service("m");
        assert_eq!(RolloutPlan::from_spec(&svc.spec), None);
        svc.spec.rollout = Some(RolloutSpec {
            strategy: Strategy::Rolling,
            steps: Vec::new(),
            step_interval: None,
            manual_gates: Vec::new(),
            analysis: None,
        });
        assert_eq!(RolloutPlan::from_spec(&svc.spec), None);
    }

    #[test]
    fn canary_plan_takes_the_spec_and_fills_defaults() {
        let mut svc = cpu_service("m");
        svc.spec.model.load_timeout = Some("10m".parse().unwrap());
        svc.spec.rollout = Some(RolloutSpec {
            strategy: Strategy::Canary,
            steps: vec![5, 25, 50, 100],
            step_interval: Some("2m".parse().unwrap()),
            manual_gates: vec![50],
            analysis: Some(AnalysisSpec {
                success_rate: Some(99.0),
                latency_p99: None,
                min_requests: None,
                failure_limit: Some(3),
                queries: Vec::new(),
            }),
        });
        let plan = RolloutPlan::from_spec(&svc.spec).unwrap();
        assert_eq!(plan.steps, vec![5, 25, 50, 100]);
        assert_eq!(plan.step_interval, SignedDuration::from_mins(2));
        assert_eq!(plan.load_timeout, SignedDuration::from_mins(10));
        assert_eq!(plan.failure_limit, 3);
        assert!(plan.gated(2) && !plan.gated(1) && !plan.gated(9));
        assert_eq!((plan.weight_before(0), plan.weight_before(2)), (0, 25));
        assert_eq!(plan.last_step(), 3);

        svc.spec.rollout.as_mut().unwrap().analysis = None;
        svc.spec.model.load_timeout = None;
        let plan = RolloutPlan::from_spec(&svc.spec).unwrap();
        assert_eq!(plan.failure_limit, DEFAULT_FAILURE_LIMIT);
        assert_eq!(plan.load_timeout, DEFAULT_LOAD_TIMEOUT);
        let short = plan.with_step_interval(SignedDuration::from_secs(1));
        assert_eq!(short.step_interval, SignedDuration::from_secs(1));
    }
}
