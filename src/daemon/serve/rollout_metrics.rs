//! The rollout series of the daemon's `/metrics`:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `modelship_rollout_weight` | gauge | `namespace`, `service`: the canary's traffic weight in percent (0 without a canary) |
//! | `modelship_rollout_phase` | gauge (1 for the current phase, 0 for the others) | `namespace`, `service`, `phase` |
//! | `modelship_analysis_checks_total` | counter | `verdict` (pass, fail, no-data, error) |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::meta::ServiceId;
use crate::rollout::{PhaseName, RolloutStatus, StepAnalysis};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    pub namespace: String,
    pub service: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    pub namespace: String,
    pub service: String,
    pub phase: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabel {
    pub verdict: String,
}

/// The rollout metrics, registered in the daemon's registry.
#[derive(Debug, Default)]
pub struct RolloutMetrics {
    pub weight: Family<ServiceLabel, Gauge>,
    pub phase: Family<PhaseLabel, Gauge>,
    pub checks: Family<VerdictLabel, Counter>,
}

impl RolloutMetrics {
    /// Registers the series in `registry` (prefixed `modelship_`).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = RolloutMetrics::default();
        registry.register(
            "rollout_weight",
            "Traffic weight of the canary in percent (0 without a canary)",
            metrics.weight.clone(),
        );
        registry.register(
            "rollout_phase",
            "Rollout phase of a canary service (1 for the current phase)",
            metrics.phase.clone(),
        );
        registry.register(
            "analysis_checks",
            "Canary analysis checks by verdict",
            metrics.checks.clone(),
        );
        metrics
    }

    /// Records where a service's rollout stands, and the checks of an analysis it ran.
    pub fn observe(&self, id: &ServiceId, status: &RolloutStatus, analysis: Option<&StepAnalysis>) {
        let service = ServiceLabel {
            namespace: id.namespace().to_string(),
            service: id.name().to_string(),
        };
        self.weight
            .get_or_create(&service)
            .set(i64::from(status.weight.unwrap_or(0)));
        for phase in PhaseName::ALL {
            let label = PhaseLabel {
                namespace: id.namespace().to_string(),
                service: id.name().to_string(),
                phase: phase.as_str().to_string(),
            };
            self.phase
                .get_or_create(&label)
                .set(i64::from(phase == status.phase));
        }
        for check in analysis.into_iter().flat_map(|a| &a.checks) {
            let verdict = VerdictLabel {
                verdict: check.verdict.as_str().to_string(),
            };
            self.checks.get_or_create(&verdict).inc();
        }
    }
}
