//! GPUs and their hourly cost, before (live) and after (desired), per service: the figures
//! of the pull-request comment's headline and service tables.
//!
//! ```text
//! DesiredState ─┐
//! LiveState ────┼─ estimate ──▶ Capacities { service id ─▶ {before, after} }
//! PriceList ────┘   (GpuConfig.catalog: product ─▶ hourlyCost)
//! ```
//!
//! Pure, read from compiled (or live) objects alone, so both sides are counted the same
//! way: a service runs its Deployment's GPUs per pod times its minimum scale (the HPA's
//! `minReplicas`, else `spec.replicas`, else 1). A pod's price per GPU is that of the
//! catalog product its node affinity requires (`nvidia.com/gpu.product In [...]`); when
//! several products are allowed, the dearest (an upper bound). MIG slices and time-sliced
//! GPUs count one each and are priced as a whole GPU of their product (an upper bound
//! too). GPUs with no priced product are counted in `unpriced`, never guessed.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::plan::{DesiredState, LiveState, ServiceId};
use crate::spec::types::GpuModel;

/// Hours in an average month (365.25 × 24 / 12, rounded as cloud price lists do).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Node label the GPU feature discovery sets; the compiler requires it by affinity.
const PRODUCT_LABEL: &str = "nvidia.com/gpu.product";

/// USD per GPU-hour by node product, from the catalog's `hourlyCost`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceList {
    by_product: BTreeMap<String, f64>,
}

impl PriceList {
    /// The prices of a GPU catalog; entries without `hourlyCost` are left out.
    pub fn from_catalog(catalog: &BTreeMap<String, GpuModel>) -> Self {
        let by_product = catalog
            .values()
            .filter_map(|model| Some((model.product.clone(), model.hourly_cost?)))
            .collect();
        PriceList { by_product }
    }

    /// The dearest price among `products`, `None` when none is priced.
    fn dearest<'a>(&self, products: impl Iterator<Item = &'a str>) -> Option<f64> {
        products
            .filter_map(|p| self.by_product.get(p).copied())
            .reduce(f64::max)
    }
}

/// GPUs of one side of a service and what they cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Capacity {
    /// GPUs (whole, MIG slices and shared slots) at the minimum scale.
    pub gpus: u64,
    /// USD per hour of the priced GPUs.
    pub hourly: f64,
    /// GPUs whose product has no `hourlyCost`: not in `hourly`.
    pub unpriced: u64,
}

impl Capacity {
    fn add(&mut self, other: Capacity) {
        self.gpus += other.gpus;
        self.hourly += other.hourly;
        self.unpriced += other.unpriced;
    }
}

/// Before (live) and after (desired) of one service.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServiceCapacity {
    pub before: Capacity,
    pub after: Capacity,
}

/// The peak during a canary rollout, while stable and canary pods run side by side.
/// The rollout module fills it per service; the comment shows it when given.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Peak {
    pub gpus: u64,
    /// USD per hour at the peak.
    pub hourly: f64,
}

/// Capacities of every service of a plan, keyed by service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Capacities {
    pub services: BTreeMap<ServiceId, ServiceCapacity>,
}

impl Capacities {
    /// The capacity of one service; zero when unknown.
    pub fn of(&self, id: &ServiceId) -> ServiceCapacity {
        self.services.get(id).copied().unwrap_or_default()
    }

    /// Sums of every service, before and after.
    pub fn total(&self) -> ServiceCapacity {
        let mut total = ServiceCapacity::default();
        for service in self.services.values() {
            total.before.add(service.before);
            total.after.add(service.after);
        }
        total
    }
}

/// Counts every service of the desired and the live state. A service whose spec is
/// invalid keeps its live figures on both sides (nothing of it changes).
pub fn estimate(desired: &DesiredState, live: &dyn LiveState, prices: &PriceList) -> Capacities {
    let live_of = |id: &ServiceId| {
        let objects = live
            .owned_by_service(id)
            .into_iter()
            .filter_map(|key| live.get(key));
        of_objects(objects, prices)
    };
    let mut services = BTreeMap::new();
    for id in live.services() {
        let before = live_of(&id);
        services.insert(
            id,
            ServiceCapacity {
                before,
                after: Capacity::default(),
            },
        );
    }
    for id in &desired.invalid {
        let entry = services.entry(id.clone()).or_default();
        entry.after = entry.before;
    }
    for service in &desired.services {
        let entry = services.entry(service.id.clone()).or_default();
        entry.after = of_objects(service.objects.iter(), prices);
    }
    Capacities { services }
}

/// The capacity of one service's objects (live or desired).
pub fn of_objects<'a>(objects: impl Iterator<Item = &'a Value>, prices: &PriceList) -> Capacity {
    let mut per_pod: Option<(u64, Option<f64>)> = None;
    let mut replicas: Option<u64> = None;
    let mut hpa_min: Option<u64> = None;
    for object in objects {
        match object.get("kind").and_then(Value::as_str) {
            // The canary Deployment (`<name>-canary`) is the rollout's, not the service's
            // resting state: the rollout reports its peak separately.
            Some("Deployment") if !is_canary(object) => {
                per_pod = Some(pod_gpus(object, prices));
                replicas = object.pointer("/spec/replicas").and_then(Value::as_u64);
            }
            Some("HorizontalPodAutoscaler") => {
                hpa_min = Some(
                    object
                        .pointer("/spec/minReplicas")
                        .and_then(Value::as_u64)
                        .unwrap_or(1),
                );
            }
            _ => {}
        }
    }
    let Some((gpus_per_pod, price)) = per_pod else {
        return Capacity::default();
    };
    let scale = hpa_min.or(replicas).unwrap_or(1);
    let gpus = gpus_per_pod * scale;
    match price {
        Some(price) => Capacity {
            gpus,
            hourly: gpus as f64 * price,
            unpriced: 0,
        },
        None => Capacity {
            gpus,
            hourly: 0.0,
            unpriced: gpus,
        },
    }
}

fn is_canary(deployment: &Value) -> bool {
    deployment
        .pointer("/spec/template/metadata/labels/modelship.dev~1track")
        .and_then(Value::as_str)
        == Some("canary")
}

/// GPUs per pod (the `nvidia.com/*` limits of every container) and their price.
fn pod_gpus(deployment: &Value, prices: &PriceList) -> (u64, Option<f64>) {
    let pod = deployment.pointer("/spec/template/spec");
    let containers = pod
        .and_then(|p| p.get("containers"))
        .and_then(Value::as_array);
    let gpus: u64 = containers
        .into_iter()
        .flatten()
        .filter_map(|c| c.pointer("/resources/limits").and_then(Value::as_object))
        .flatten()
        .filter(|(name, _)| name.starts_with("nvidia.com/"))
        .map(|(_, v)| match v {
            Value::String(s) => s.parse().unwrap_or(0),
            other => other.as_u64().unwrap_or(0),
        })
        .sum();
    let terms = pod
        .and_then(|p| {
            p.pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        })
        .and_then(Value::as_array);
    let products = terms
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("matchExpressions").and_then(Value::as_array))
        .flatten()
        .filter(|e| e.get("key").and_then(Value::as_str) == Some(PRODUCT_LABEL))
        .filter_map(|e| e.get("values").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str);
    (gpus, prices.dearest(products))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prices() -> PriceList {
        let model = |product: &str, cost: Option<f64>| GpuModel {
            product: product.to_string(),
            memory: None,
            hourly_cost: cost,
        };
        PriceList::from_catalog(&BTreeMap::from([
            ("a100".to_string(), model("A100", Some(3.67))),
            ("h100".to_string(), model("H100", Some(6.98))),
            ("free".to_string(), model("MYSTERY", None)),
        ]))
    }

    fn deployment(gpus: &str, products: &[&str], replicas: Option<u64>) -> Value {
        let mut d = json!({
            "kind": "Deployment",
            "spec": {"template": {"spec": {
                "containers": [{"name": "server", "resources": {"limits": {"nvidia.com/gpu": gpus}}}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": PRODUCT_LABEL, "operator": "In", "values": products}
                    ]}]
                }}}
            }}}
        });
        if let Some(r) = replicas {
            d["spec"]["replicas"] = json!(r);
        }
        d
    }

    #[test]
    fn gpus_times_minimum_scale_at_the_dearest_allowed_product() {
        let hpa = json!({"kind": "HorizontalPodAutoscaler", "spec": {"minReplicas": 2, "maxReplicas": 6}});
        let objects = [deployment("4", &["H100", "A100"], None), hpa];
        let capacity = of_objects(objects.iter(), &prices());
        assert_eq!(capacity.gpus, 8);
        assert!((capacity.hourly - 8.0 * 6.98).abs() < 1e-9);
        assert_eq!(capacity.unpriced, 0);
    }

    #[test]
    fn replicas_without_an_hpa_and_unpriced_products() {
        let objects = [deployment("1", &["MYSTERY"], Some(3))];
        let capacity = of_objects(objects.iter(), &prices());
        assert_eq!((capacity.gpus, capacity.unpriced), (3, 3));
        assert_eq!(capacity.hourly, 0.0);
    }

    #[test]
    fn cpu_services_and_canary_deployments_count_nothing() {
        let cpu = json!({"kind": "Deployment", "spec": {"replicas": 4, "template": {"spec": {
            "containers": [{"name": "server", "resources": {"limits": {"memory": "1Gi"}}}]}}}});
        assert_eq!(of_objects([cpu].iter(), &prices()), Capacity::default());
        let mut canary = deployment("1", &["A100"], Some(1));
        canary["spec"]["template"]["metadata"] =
            json!({"labels": {"modelship.dev/track": "canary"}});
        assert_eq!(of_objects([canary].iter(), &prices()), Capacity::default());
    }
}
