//! The HorizontalPodAutoscaler (autoscaling/v2) of the stable Deployment.
//!
//! ```text
//! autoscaling { min, max, metrics[], stabilization } ──▶ HPA { scaleTargetRef: Deployment <name>,
//!                                                             metrics: Resource | Pods | External,
//!                                                             behavior: scaleUp / scaleDown windows }
//! ```

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, ExternalMetricSource, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec,
    MetricTarget, PodsMetricSource, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::labels::{object_meta, selector};
use super::{CompileError, Ctx, to_i32};
use crate::spec::{self, CustomMetricType, Duration};

/// Default scale-down window: 5 minutes, 10 for GPU services (GPU pods are slow to start).
const SCALE_DOWN_DEFAULT_SECS: u64 = 300;
const SCALE_DOWN_GPU_DEFAULT_SECS: u64 = 600;
/// The largest stabilization window the API accepts.
const MAX_WINDOW_SECS: u64 = 3600;

/// The HPA of the service, when `autoscaling` is set.
pub(crate) fn horizontal_pod_autoscaler(
    ctx: &Ctx,
) -> Result<Option<HorizontalPodAutoscaler>, CompileError> {
    let Some(a) = &ctx.spec.autoscaling else {
        return Ok(None);
    };
    let metrics = a
        .metrics
        .iter()
        .map(|m| metric(ctx, m))
        .collect::<Result<Vec<_>, _>>()?;
    let scale_down_default = if ctx.is_gpu() {
        SCALE_DOWN_GPU_DEFAULT_SECS
    } else {
        SCALE_DOWN_DEFAULT_SECS
    };
    let behavior = HorizontalPodAutoscalerBehavior {
        scale_down: Some(window(
            "autoscaling.scaleDownStabilization",
            a.scale_down_stabilization.as_ref(),
            scale_down_default,
        )?),
        scale_up: Some(window(
            "autoscaling.scaleUpStabilization",
            a.scale_up_stabilization.as_ref(),
            0,
        )?),
    };
    Ok(Some(HorizontalPodAutoscaler {
        metadata: object_meta(ctx, ctx.name.to_string()),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_string()),
                kind: "Deployment".to_string(),
                name: ctx.name.to_string(),
            },
            min_replicas: Some(to_i32(
                "autoscaling.minReplicas",
                u64::from(a.min_replicas.unwrap_or(1)),
            )?),
            max_replicas: to_i32("autoscaling.maxReplicas", u64::from(a.max_replicas))?,
            metrics: Some(metrics),
            behavior: Some(behavior),
        }),
        status: None,
    }))
}

/// A scaling rule with only the stabilization window set.
fn window(
    field: &'static str,
    value: Option<&Duration>,
    default_secs: u64,
) -> Result<HPAScalingRules, CompileError> {
    let secs = value.map_or(default_secs, Duration::as_secs);
    if secs > MAX_WINDOW_SECS {
        return Err(CompileError::OutOfRange { field, value: secs });
    }
    Ok(HPAScalingRules {
        stabilization_window_seconds: Some(to_i32(field, secs)?),
        ..HPAScalingRules::default()
    })
}

/// One spec metric as an HPA metric.
fn metric(ctx: &Ctx, m: &spec::MetricSpec) -> Result<MetricSpec, CompileError> {
    let names = &ctx.config.spec.metric_names;
    let spec = match m {
        spec::MetricSpec::Cpu(percent) => {
            resource_metric("cpu", "autoscaling.metrics.cpu", *percent)?
        }
        spec::MetricSpec::Memory(percent) => {
            resource_metric("memory", "autoscaling.metrics.memory", *percent)?
        }
        spec::MetricSpec::RequestsPerSecond(q) => {
            pods_metric(&names.requests_per_second, q.as_str())
        }
        spec::MetricSpec::QueueLength(q) => pods_metric(&names.queue_length, q.as_str()),
        spec::MetricSpec::GpuUtilization(percent) => {
            pods_metric(&names.gpu_utilization, &percent.to_string())
        }
        spec::MetricSpec::Custom(c) => match c.metric_type {
            CustomMetricType::Pods => pods_metric(&c.name, c.target.as_str()),
            CustomMetricType::External => MetricSpec {
                type_: "External".to_string(),
                external: Some(ExternalMetricSource {
                    metric: MetricIdentifier {
                        name: c.name.clone(),
                        selector: (!c.selector.is_empty()).then(|| selector(c.selector.clone())),
                    },
                    target: MetricTarget {
                        type_: "Value".to_string(),
                        value: Some(Quantity(c.target.as_str().to_string())),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            },
        },
    };
    Ok(spec)
}

/// A Resource metric targeting an average utilization percent.
fn resource_metric(
    name: &str,
    field: &'static str,
    percent: u32,
) -> Result<MetricSpec, CompileError> {
    Ok(MetricSpec {
        type_: "Resource".to_string(),
        resource: Some(ResourceMetricSource {
            name: name.to_string(),
            target: MetricTarget {
                type_: "Utilization".to_string(),
                average_utilization: Some(to_i32(field, u64::from(percent))?),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    })
}

/// A Pods metric targeting an average value per pod.
fn pods_metric(name: &str, average: &str) -> MetricSpec {
    MetricSpec {
        type_: "Pods".to_string(),
        pods: Some(PodsMetricSource {
            metric: MetricIdentifier {
                name: name.to_string(),
                selector: None,
            },
            target: MetricTarget {
                type_: "AverageValue".to_string(),
                average_value: Some(Quantity(average.to_string())),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::testutil::{autoscaled, cpu_service, ctx_for, gpu_service, loaded};
    use crate::spec::{CustomMetric, MetricSpec as M, RepositoryConfig};
    use std::collections::BTreeMap;

    fn hpa_with(metrics: Vec<M>) -> HorizontalPodAutoscaler {
        let mut svc = autoscaled(cpu_service("m"), 1, 4);
        if let Some(a) = svc.spec.autoscaling.as_mut() {
            a.metrics = metrics;
        }
        let loaded = loaded(svc);
        horizontal_pod_autoscaler(&ctx_for(&loaded, &RepositoryConfig::default()))
            .unwrap()
            .unwrap()
    }

    /// (type, metric name, target type, target value) of an HPA metric.
    fn summary(m: &MetricSpec) -> (String, String, String, String) {
        let (name, target) = match (&m.resource, &m.pods, &m.external) {
            (Some(r), _, _) => (r.name.clone(), &r.target),
            (_, Some(p), _) => (p.metric.name.clone(), &p.target),
            (_, _, Some(e)) => (e.metric.name.clone(), &e.target),
            _ => panic!("metric without source: {m:?}"),
        };
        let value = target
            .average_utilization
            .map(|u| u.to_string())
            .or_else(|| target.average_value.as_ref().map(|q| q.0.clone()))
            .or_else(|| target.value.as_ref().map(|q| q.0.clone()))
            .unwrap_or_default();
        (m.type_.clone(), name, target.type_.clone(), value)
    }

    #[test]
    fn each_metric_kind_compiles() {
        let custom = |metric_type| {
            M::Custom(CustomMetric {
                name: "my_metric".into(),
                metric_type,
                target: "50".parse().unwrap(),
                selector: BTreeMap::new(),
            })
        };
        let cases = [
            (M::Cpu(70), ("Resource", "cpu", "Utilization", "70")),
            (M::Memory(80), ("Resource", "memory", "Utilization", "80")),
            (
                M::RequestsPerSecond("100".parse().unwrap()),
                ("Pods", "http_requests_per_second", "AverageValue", "100"),
            ),
            (
                M::QueueLength("10".parse().unwrap()),
                ("Pods", "inference_queue_length", "AverageValue", "10"),
            ),
            (
                M::GpuUtilization(80),
                ("Pods", "DCGM_FI_DEV_GPU_UTIL", "AverageValue", "80"),
            ),
            (
                custom(CustomMetricType::Pods),
                ("Pods", "my_metric", "AverageValue", "50"),
            ),
            (
                custom(CustomMetricType::External),
                ("External", "my_metric", "Value", "50"),
            ),
        ];
        for (metric, (ty, name, target, value)) in cases {
            let hpa = hpa_with(vec![metric.clone()]);
            let metrics = hpa.spec.unwrap().metrics.unwrap();
            assert_eq!(metrics.len(), 1);
            let expected = (
                ty.to_string(),
                name.to_string(),
                target.to_string(),
                value.to_string(),
            );
            assert_eq!(summary(&metrics[0]), expected, "{metric:?}");
        }
    }

    #[test]
    fn external_selectors_become_match_labels() {
        let hpa = hpa_with(vec![M::Custom(CustomMetric {
            name: "queue_depth".into(),
            metric_type: CustomMetricType::External,
            target: "30".parse().unwrap(),
            selector: BTreeMap::from([("queue".into(), "fraud".into())]),
        })]);
        let metrics = hpa.spec.unwrap().metrics.unwrap();
        let selector = metrics[0]
            .external
            .as_ref()
            .unwrap()
            .metric
            .selector
            .clone()
            .unwrap();
        assert_eq!(selector.match_labels.unwrap()["queue"], "fraud");
    }

    #[test]
    fn behavior_defaults_depend_on_gpu() {
        let config = crate::compile::testutil::gpu_config();
        let cases = [
            (autoscaled(cpu_service("c"), 1, 3), None, None, (300, 0)),
            (autoscaled(gpu_service("g"), 1, 3), None, None, (600, 0)),
            (
                autoscaled(gpu_service("g"), 1, 3),
                Some("2m"),
                Some("30s"),
                (120, 30),
            ),
        ];
        for (mut svc, down, up, (want_down, want_up)) in cases {
            if let Some(a) = svc.spec.autoscaling.as_mut() {
                a.scale_down_stabilization = down.map(|d| d.parse().unwrap());
                a.scale_up_stabilization = up.map(|d| d.parse().unwrap());
            }
            let loaded = loaded(svc);
            let hpa = horizontal_pod_autoscaler(&ctx_for(&loaded, &config))
                .unwrap()
                .unwrap();
            let behavior = hpa.spec.unwrap().behavior.unwrap();
            assert_eq!(
                behavior.scale_down.unwrap().stabilization_window_seconds,
                Some(want_down)
            );
            assert_eq!(
                behavior.scale_up.unwrap().stabilization_window_seconds,
                Some(want_up)
            );
        }
    }

    #[test]
    fn hpa_targets_the_deployment_with_bounds() {
        let loaded = loaded(autoscaled(cpu_service("fraud"), 2, 10));
        let hpa = horizontal_pod_autoscaler(&ctx_for(&loaded, &RepositoryConfig::default()))
            .unwrap()
            .unwrap();
        let spec = hpa.spec.unwrap();
        assert_eq!(spec.scale_target_ref.kind, "Deployment");
        assert_eq!(spec.scale_target_ref.name, "fraud");
        assert_eq!(spec.min_replicas, Some(2));
        assert_eq!(spec.max_replicas, 10);
    }

    #[test]
    fn no_autoscaling_no_hpa_and_huge_windows_fail() {
        let loaded_plain = loaded(cpu_service("m"));
        let config = RepositoryConfig::default();
        assert!(
            horizontal_pod_autoscaler(&ctx_for(&loaded_plain, &config))
                .unwrap()
                .is_none()
        );
        let mut svc = autoscaled(cpu_service("m"), 1, 2);
        if let Some(a) = svc.spec.autoscaling.as_mut() {
            a.scale_down_stabilization = Some("2h".parse().unwrap());
        }
        let loaded = loaded(svc);
        assert!(matches!(
            horizontal_pod_autoscaler(&ctx_for(&loaded, &config)),
            Err(CompileError::OutOfRange { value: 7200, .. })
        ));
    }
}
