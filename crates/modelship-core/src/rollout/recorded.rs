//! [`RecordedPlan`]: the rollout plan a canary service runs under, recorded beside its
//! state on the stable Deployment (annotation [`ANNOTATION_PLAN`]), so that the cluster
//! alone tells where a rollout stands: `modelship rollout status` needs no checkout, and
//! shows the steps and interval the engine actually uses (a checkout may be another
//! commit).

use serde::{Deserialize, Serialize};

use super::footprint::Footprint;
use super::plan::RolloutPlan;
use super::state::RolloutState;
use super::status::RolloutStatus;
use super::{Error, Result};

/// The annotation holding the [`RecordedPlan`] (JSON) on the stable Deployment `<name>`.
pub const ANNOTATION_PLAN: &str = "modelship.dev/rollout-plan";

/// A rollout plan with the peak GPU figures of its footprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedPlan {
    #[serde(flatten)]
    pub plan: RolloutPlan,
    pub peak_gpus: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_hourly_cost: Option<f64>,
}

impl RecordedPlan {
    /// The record of `plan`, whose footprint is `footprint`.
    pub fn of(plan: &RolloutPlan, footprint: &Footprint) -> RecordedPlan {
        RecordedPlan {
            plan: plan.clone(),
            peak_gpus: footprint.peak_gpus,
            peak_hourly_cost: footprint.peak_hourly_cost,
        }
    }

    /// Reads the annotation's value.
    pub fn from_json(text: &str) -> Result<RecordedPlan> {
        serde_json::from_str(text).map_err(|e| Error::BadPlan(e.to_string()))
    }

    /// The annotation's value: compact JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::BadPlan(e.to_string()))
    }

    /// The status of `state` under this plan at `now`, with the recorded peak.
    pub fn status(&self, state: &RolloutState, now: jiff::Timestamp) -> RolloutStatus {
        let mut status = RolloutStatus::of(state, &self.plan, now, None);
        if self.peak_gpus > 0 {
            status.peak_gpus = Some(self.peak_gpus);
            status.peak_hourly_cost = self.peak_hourly_cost;
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use jiff::{SignedDuration, Timestamp};

    use super::*;
    use crate::rollout::Phase;

    #[test]
    fn a_recorded_plan_reads_back_and_gives_the_status_of_a_state() {
        let recorded = RecordedPlan {
            plan: crate::rollout::plan::example(),
            peak_gpus: 20,
            peak_hourly_cost: Some(139.6),
        };
        let text = recorded.to_json().unwrap();
        assert!(text.contains(r#""steps":[5,25,50,100]"#), "{text}");
        assert!(text.contains(r#""gates":[50]"#), "{text}");
        assert_eq!(RecordedPlan::from_json(&text).unwrap(), recorded);

        let since: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let state = RolloutState {
            phase: Phase::Progressing { step: 1, since },
            ..RolloutState::default()
        };
        let status = recorded.status(&state, since + SignedDuration::from_secs(20));
        assert_eq!((status.step, status.steps), (Some(2), 4));
        assert_eq!(status.weight, Some(25));
        assert_eq!(status.seconds_left, Some(40), "one minute a step");
        assert_eq!((status.failures, status.failure_limit), (0, 2));
        assert_eq!(status.peak_gpus, Some(20));
        assert_eq!(status.peak_hourly_cost, Some(139.6));
    }

    #[test]
    fn an_unreadable_record_is_an_error_not_a_panic() {
        for text in ["", "{", r#"{"steps":"x"}"#, "[]"] {
            assert!(
                matches!(RecordedPlan::from_json(text), Err(Error::BadPlan(_))),
                "{text}"
            );
        }
    }
}
