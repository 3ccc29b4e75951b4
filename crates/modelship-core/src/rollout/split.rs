//! The replica split of a canary rollout: how many pods each track runs at one weight,
//! for every router. The overlay applies it and the footprint counts it, so what `plan`
//! shows is what the engine applies.

use crate::spec::{ModelServiceSpec, Router};

/// The replica counts of the two tracks at one weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Split {
    /// Replicas of the stable Deployment when the rollout sets them (router replicas,
    /// no HPA); `None` leaves them as compiled.
    pub stable: Option<i32>,
    pub canary: i32,
}

/// The replicas a service runs at rest: `replicas`, or `minReplicas` under an HPA.
pub(crate) fn base_replicas(spec: &ModelServiceSpec) -> i32 {
    let base = match &spec.autoscaling {
        Some(a) => a.min_replicas.unwrap_or(1),
        None => spec.replicas.unwrap_or(1),
    };
    i32::try_from(base.max(1)).unwrap_or(i32::MAX)
}

/// The replica split at `weight`. Weighted routers: the canary gets `weight`% of the base
/// replicas, at least 1; stable is untouched. Router replicas: the base replicas are split
/// between the tracks by the weight, never fewer than one canary pod, and the stable track
/// keeps at least one pod until weight 100 (then none). Under an HPA the stable count is
/// the HPA's, so only the canary follows the weight.
pub(crate) fn replicas_at(spec: &ModelServiceSpec, router: Router, weight: u32) -> Split {
    let base = base_replicas(spec);
    let weight = i64::from(weight.min(100));
    let share = |total: i32| -> i32 {
        let exact = (i64::from(total) * weight + 50) / 100;
        i32::try_from(exact).unwrap_or(total).clamp(1, total)
    };
    match router {
        Router::Replicas if spec.autoscaling.is_none() => {
            if weight >= 100 {
                Split {
                    stable: Some(0),
                    canary: base,
                }
            } else {
                let canary = share(base);
                Split {
                    stable: Some((base - canary).max(1)),
                    canary,
                }
            }
        }
        _ => Split {
            stable: None,
            canary: share(base),
        },
    }
}
