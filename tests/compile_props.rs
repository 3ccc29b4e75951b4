//! Properties of the compiler over arbitrary specs, including ones validation would
//! reject: it never panics; what it compiles renders to YAML that reads back as the same
//! objects; every label value is a valid Kubernetes label value; the output is
//! deterministic; and fields that other controllers own are never emitted.

use std::collections::BTreeMap;

use modelship::compile::{Object, Source, compile_service, render_yaml};
use modelship::spec::{
    API_VERSION, AutoscalingSpec, CustomMetric, CustomMetricType, GpuModel, GpuSpec, GpuTypes,
    LoadedService, Metadata, MetricSpec, ModelLoader, ModelService, ModelServiceSpec, ModelSpec,
    ObjectRef, RepositoryConfig, ResourcesSpec, RolloutSpec, Router, RuntimeSpec,
    Strategy as RolloutStrategy, TrafficSpec,
};
use proptest::prelude::*;

fn quantity() -> impl Strategy<Value = modelship::spec::Quantity> {
    (
        0u32..100_000,
        prop::sample::select(vec!["", "m", "Mi", "Gi", "k"]),
    )
        .prop_map(|(n, suffix)| format!("{n}{suffix}").parse().expect("generated quantity"))
}

/// Mostly everyday counts, sometimes anything (validation would reject those).
fn count() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..50, 1 => any::<u32>()]
}

fn duration() -> impl Strategy<Value = modelship::spec::Duration> {
    (
        prop_oneof![4 => 0u64..120, 1 => 0u64..80_000],
        prop::sample::select(vec!["ms", "s", "m", "h"]),
    )
        .prop_map(|(n, unit)| format!("{n}{unit}").parse().expect("generated duration"))
}

fn metric() -> impl Strategy<Value = MetricSpec> {
    prop_oneof![
        count().prop_map(MetricSpec::Cpu),
        count().prop_map(MetricSpec::Memory),
        quantity().prop_map(MetricSpec::RequestsPerSecond),
        quantity().prop_map(MetricSpec::QueueLength),
        count().prop_map(MetricSpec::GpuUtilization),
        (".{0,20}", any::<bool>(), quantity()).prop_map(|(name, pods, target)| {
            MetricSpec::Custom(CustomMetric {
                name,
                metric_type: if pods {
                    CustomMetricType::Pods
                } else {
                    CustomMetricType::External
                },
                target,
                selector: BTreeMap::new(),
            })
        }),
    ]
}

fn gpu() -> impl Strategy<Value = Option<GpuSpec>> {
    let types = prop::option::of(prop::collection::vec(
        prop::sample::select(vec!["a100-80gb", "l4", "unknown"]),
        0..3,
    ));
    prop::option::of(
        (
            count(),
            types,
            prop::option::of("[a-z0-9.]{0,8}"),
            any::<bool>(),
            prop::option::of(quantity()),
        )
            .prop_map(|(count, types, partition, shared, shm)| GpuSpec {
                count,
                gpu_type: types.map(|t| GpuTypes::Any(t.into_iter().map(str::to_string).collect())),
                partition,
                shared,
                shm,
            }),
    )
}

fn autoscaling() -> impl Strategy<Value = Option<AutoscalingSpec>> {
    prop::option::of(
        (
            prop::option::of(count()),
            count(),
            prop::collection::vec(metric(), 0..4),
            prop::option::of(duration()),
            prop::option::of(duration()),
        )
            .prop_map(|(min, max, metrics, down, up)| AutoscalingSpec {
                min_replicas: min,
                max_replicas: max,
                metrics,
                scale_down_stabilization: down,
                scale_up_stabilization: up,
            }),
    )
}

fn uri() -> impl Strategy<Value = Option<String>> {
    let scheme = prop::sample::select(vec![
        "pvc://", "s3://", "gs://", "hf://", "https://", "oci://", "ftp://", "",
    ]);
    prop::option::of((scheme, "[ -~]{0,30}").prop_map(|(s, rest)| format!("{s}{rest}")))
}

prop_compose! {
    fn service()(
        name in "[a-z]([a-z0-9-]{0,43}[a-z0-9])?",
        model_name in ".{0,80}",
        version in ".{0,80}",
        owner in prop::option::of(".{0,80}"),
        uri in uri(),
        load_timeout in prop::option::of(duration()),
        ports in (prop::option::of(any::<u16>()), prop::option::of(any::<u16>()), prop::option::of(any::<u16>())),
        env in prop::collection::btree_map("[A-Z_]{1,22}", ".{0,10}", 0..4),
        replicas in prop::option::of(count()),
        gpu in gpu(),
        autoscaling in autoscaling(),
        router in prop::option::of(prop::sample::select(vec![Router::GatewayApi, Router::Istio, Router::Replicas])),
        canary in any::<bool>(),
        hosts in prop::collection::vec("[a-z.]{1,20}", 0..2),
    ) -> ModelService {
        ModelService {
            api_version: API_VERSION.to_string(),
            kind: "ModelService".to_string(),
            metadata: Metadata { name, ..Metadata::default() },
            spec: ModelServiceSpec {
                owner,
                model: ModelSpec {
                    name: model_name,
                    version,
                    uri,
                    format: None,
                    size: None,
                    load_timeout,
                    credentials_secret: None,
                },
                runtime: RuntimeSpec {
                    image: "registry.example.com/srv:1".to_string(),
                    command: Vec::new(),
                    args: Vec::new(),
                    env,
                    env_from_secrets: Vec::new(),
                    port: ports.0,
                    grpc_port: ports.1,
                    metrics_port: ports.2,
                    health_path: None,
                    readiness_path: None,
                },
                resources: ResourcesSpec {
                    cpu: "1".parse().expect("quantity"),
                    cpu_limit: None,
                    memory: "1Gi".parse().expect("quantity"),
                },
                gpu,
                replicas,
                autoscaling,
                rollout: Some(RolloutSpec {
                    strategy: if canary { RolloutStrategy::Canary } else { RolloutStrategy::Rolling },
                    steps: Vec::new(),
                    step_interval: None,
                    manual_gates: Vec::new(),
                    analysis: None,
                }),
                traffic: Some(TrafficSpec { router, hosts }),
                placement: None,
                disruption: None,
                network: None,
                security: None,
            },
        }
    }
}

fn config() -> RepositoryConfig {
    let mut config = RepositoryConfig::default();
    config.spec.model_loader = Some(ModelLoader {
        image: "registry.example.com/loader:1".to_string(),
    });
    config.spec.traffic.gateway = Some(ObjectRef {
        name: "gw".to_string(),
        namespace: Some("gateway-system".to_string()),
    });
    for (key, product) in [("a100-80gb", "NVIDIA-A100-SXM4-80GB"), ("l4", "NVIDIA-L4")] {
        config.spec.gpu.catalog.insert(
            key.to_string(),
            GpuModel {
                product: product.to_string(),
                memory: None,
                hourly_cost: None,
            },
        );
    }
    config
}

/// A Kubernetes label value: at most 63 characters, alphanumeric at both ends, `-_.` inside.
fn valid_label_value(v: &str) -> bool {
    let edges_ok = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    v.len() <= 63
        && edges_ok(v.chars().next())
        && edges_ok(v.chars().last())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn compile_never_panics_and_output_is_sound(svc in service()) {
        let config = config();
        // A name that makes no service id is refused by validation before compile.
        let Ok(loaded) = LoadedService::new(svc.clone(), "services/p.yaml", 1, &config) else {
            return Ok(());
        };
        let Ok(compiled) = compile_service(&loaded, &config, &Source::local()) else {
            return Ok(());
        };
        let again = compile_service(&loaded, &config, &Source::local());
        prop_assert_eq!(Ok(&compiled), again.as_ref());

        let yaml = render_yaml(&compiled.objects).expect("compiled objects render");
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml).expect("rendered YAML parses");
        let json: Vec<serde_json::Value> =
            compiled.objects.iter().map(|o| o.to_json().expect("json")).collect();
        prop_assert_eq!(docs, json);

        for object in &compiled.objects {
            for (key, value) in object.metadata().labels.iter().flatten() {
                prop_assert!(valid_label_value(value), "{} {}={:?}", object.key(), key, value);
            }
            if let Object::Deployment(d) = object {
                let spec = d.spec.as_ref().expect("deployment spec");
                prop_assert_eq!(spec.replicas.is_none(), svc.spec.autoscaling.is_some());
                let env = &spec.template.spec.as_ref().expect("pod spec").containers[0].env;
                for var in env.iter().flatten() {
                    prop_assert!(!var.name.ends_with("_VISIBLE_DEVICES"));
                }
            }
        }
    }
}
