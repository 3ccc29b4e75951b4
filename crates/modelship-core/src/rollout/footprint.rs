//! What a rollout costs while it runs, for `plan` output: the pods of both tracks at each
//! weight, the peak GPU count, and the peak hourly cost from the GPU catalog's
//! `hourlyCost`. The same replica split as the overlay (`split`), so the figures are what the
//! engine will apply.

use super::plan::RolloutPlan;
use super::split::{base_replicas, replicas_at};
use crate::compile::router_of;
use crate::spec::{ModelServiceSpec, RepositoryConfig};

/// The pods of one moment of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepFootprint {
    /// The canary weight; 0 while the canary starts.
    pub weight: u32,
    pub stable_pods: u32,
    pub canary_pods: u32,
    /// GPUs of both tracks together.
    pub gpus: u32,
}

/// The rollout's footprint: one entry for the start (weight 0), one per step, and one for
/// promotion (the stable Deployment rolling to the new template with its 25% surge while
/// the canary still serves).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Footprint {
    pub steps: Vec<StepFootprint>,
    pub promotion: StepFootprint,
    /// GPUs one pod asks for (0 for CPU services).
    pub gpus_per_pod: u32,
    pub peak_gpus: u32,
    /// Peak GPUs × the highest `hourlyCost` among the service's `gpu.type` keys; `None`
    /// for CPU services or when the catalog gives no cost.
    pub peak_hourly_cost: Option<f64>,
}

/// The footprint of a rollout of `spec` under `plan`. Services under an HPA are counted
/// at `minReplicas` (the HPA may run more).
pub fn footprint(
    spec: &ModelServiceSpec,
    config: &RepositoryConfig,
    plan: &RolloutPlan,
) -> Footprint {
    let router = router_of(spec, config);
    let base = to_u32(base_replicas(spec));
    let gpus_per_pod = spec.gpu.as_ref().map_or(0, |g| g.count);
    let at = |weight: u32| {
        let split = replicas_at(spec, router, weight);
        let stable_pods = split.stable.map_or(base, to_u32);
        let canary_pods = to_u32(split.canary);
        StepFootprint {
            weight,
            stable_pods,
            canary_pods,
            gpus: (stable_pods + canary_pods).saturating_mul(gpus_per_pod),
        }
    };
    let mut steps = vec![at(0)];
    steps.extend(plan.steps.iter().map(|w| at(*w)));
    let last = at(100);
    let stable_pods = base + base.div_ceil(4);
    let promotion = StepFootprint {
        weight: 100,
        stable_pods,
        canary_pods: last.canary_pods,
        gpus: (stable_pods + last.canary_pods).saturating_mul(gpus_per_pod),
    };
    let peak_gpus = steps
        .iter()
        .chain(std::iter::once(&promotion))
        .map(|s| s.gpus)
        .max()
        .unwrap_or(0);
    let cost = spec
        .gpu
        .as_ref()
        .and_then(|g| g.gpu_type.as_ref())
        .and_then(|types| {
            types
                .keys()
                .iter()
                .filter_map(|key| config.spec.gpu.catalog.get(key)?.hourly_cost)
                .reduce(f64::max)
        });
    Footprint {
        steps,
        promotion,
        gpus_per_pod,
        peak_gpus,
        peak_hourly_cost: cost.map(|per_gpu| per_gpu * f64::from(peak_gpus)),
    }
}

fn to_u32(count: i32) -> u32 {
    u32::try_from(count).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::testutil::{autoscaled, cpu_service, gpu_config, gpu_service};
    use crate::spec::{GpuTypes, Router, TrafficSpec};

    fn plan() -> RolloutPlan {
        RolloutPlan {
            steps: vec![5, 25, 50, 100],
            ..RolloutPlan::from_spec(&canary_spec()).unwrap()
        }
    }

    fn canary_spec() -> ModelServiceSpec {
        let mut svc = cpu_service("m");
        svc.spec.rollout = Some(crate::spec::RolloutSpec {
            strategy: crate::spec::Strategy::Canary,
            steps: vec![100],
            step_interval: None,
            manual_gates: Vec::new(),
            analysis: None,
        });
        svc.spec
    }

    fn routed(mut spec: ModelServiceSpec, router: Router) -> ModelServiceSpec {
        spec.traffic = Some(TrafficSpec {
            router: Some(router),
            hosts: Vec::new(),
        });
        spec
    }

    #[test]
    fn gpu_service_under_a_weighted_router_peaks_at_promotion() {
        let mut svc = gpu_service("llm");
        svc.spec.replicas = Some(4);
        let gpu = svc.spec.gpu.as_mut().unwrap();
        gpu.count = 2;
        gpu.gpu_type = Some(GpuTypes::Any(vec!["a100-80gb".into(), "l4".into()]));
        let mut config = gpu_config();
        config
            .spec
            .gpu
            .catalog
            .get_mut("a100-80gb")
            .unwrap()
            .hourly_cost = Some(3.5);
        config.spec.gpu.catalog.get_mut("l4").unwrap().hourly_cost = Some(0.8);
        let spec = routed(svc.spec, Router::Istio);
        let f = footprint(&spec, &config, &plan());
        let canary: Vec<u32> = f.steps.iter().map(|s| s.canary_pods).collect();
        assert_eq!(
            canary,
            vec![1, 1, 1, 2, 4],
            "weight 0, 5, 25, 50, 100 of 4 pods"
        );
        assert!(f.steps.iter().all(|s| s.stable_pods == 4));
        assert_eq!(f.promotion.stable_pods, 5, "4 pods plus a 25% surge");
        assert_eq!(f.peak_gpus, (5 + 4) * 2);
        assert_eq!(
            f.peak_hourly_cost,
            Some(18.0 * 3.5),
            "the dearest allowed type"
        );
    }

    #[test]
    fn replicas_router_splits_the_pods_between_tracks() {
        let mut spec = routed(canary_spec(), Router::Replicas);
        spec.replicas = Some(4);
        let f = footprint(&spec, &RepositoryConfig::default(), &plan());
        let split: Vec<(u32, u32)> = f
            .steps
            .iter()
            .map(|s| (s.stable_pods, s.canary_pods))
            .collect();
        assert_eq!(split, vec![(3, 1), (3, 1), (3, 1), (2, 2), (0, 4)]);
        assert_eq!(
            (f.gpus_per_pod, f.peak_gpus, f.peak_hourly_cost),
            (0, 0, None)
        );
    }

    #[test]
    fn one_replica_keeps_one_pod_per_track_and_hpa_services_count_min_replicas() {
        let spec = routed(canary_spec(), Router::Replicas);
        let f = footprint(&spec, &RepositoryConfig::default(), &plan());
        assert_eq!((f.steps[1].stable_pods, f.steps[1].canary_pods), (1, 1));
        let scaled = ModelServiceSpec {
            autoscaling: autoscaled(cpu_service("m"), 3, 9).spec.autoscaling,
            ..routed(canary_spec(), Router::Replicas)
        };
        let f = footprint(&scaled, &RepositoryConfig::default(), &plan());
        assert!(
            f.steps.iter().all(|s| s.stable_pods == 3),
            "the HPA's count"
        );
        assert_eq!(f.steps[4].canary_pods, 3);
    }
}
