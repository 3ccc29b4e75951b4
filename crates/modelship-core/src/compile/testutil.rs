//! Builders of test specs for the compile unit tests.

use std::collections::BTreeMap;

use super::{Ctx, Source};
use crate::spec::{
    API_VERSION, AutoscalingSpec, GpuModel, GpuSpec, LoadedService, Metadata, MetricSpec,
    ModelLoader, ModelService, ModelServiceSpec, ModelSpec, ObjectRef, RepositoryConfig,
    ResourcesSpec, RuntimeSpec,
};

/// A minimal valid CPU service: model `<name>-model` 1.0.0, 1 CPU, 2Gi.
pub(crate) fn cpu_service(name: &str) -> ModelService {
    ModelService {
        api_version: API_VERSION.to_string(),
        kind: "ModelService".to_string(),
        metadata: Metadata {
            name: name.to_string(),
            ..Metadata::default()
        },
        spec: ModelServiceSpec {
            owner: None,
            model: ModelSpec {
                name: format!("{name}-model"),
                version: "1.0.0".to_string(),
                uri: None,
                format: None,
                size: None,
                load_timeout: None,
                credentials_secret: None,
            },
            runtime: RuntimeSpec {
                image: "registry.example.com/server:1.0".to_string(),
                command: Vec::new(),
                args: Vec::new(),
                env: BTreeMap::new(),
                env_from_secrets: Vec::new(),
                port: None,
                grpc_port: None,
                metrics_port: None,
                health_path: None,
                readiness_path: None,
            },
            resources: ResourcesSpec {
                cpu: quantity("1"),
                cpu_limit: None,
                memory: quantity("2Gi"),
            },
            gpu: None,
            replicas: None,
            autoscaling: None,
            rollout: None,
            traffic: None,
            placement: None,
            disruption: None,
            network: None,
            security: None,
        },
    }
}

/// A service on one whole GPU of any type.
pub(crate) fn gpu_service(name: &str) -> ModelService {
    let mut svc = cpu_service(name);
    svc.spec.gpu = Some(GpuSpec {
        count: 1,
        gpu_type: None,
        partition: None,
        shared: false,
        shm: None,
    });
    svc
}

/// The service with an HPA on CPU between `min` and `max` replicas.
pub(crate) fn autoscaled(mut svc: ModelService, min: u32, max: u32) -> ModelService {
    svc.spec.autoscaling = Some(AutoscalingSpec {
        min_replicas: Some(min),
        max_replicas: max,
        metrics: vec![MetricSpec::Cpu(70)],
        scale_down_stabilization: None,
        scale_up_stabilization: None,
    });
    svc
}

pub(crate) fn quantity(text: &str) -> crate::spec::Quantity {
    // Test input: a bad literal is a bug in the test itself.
    text.parse().unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn loaded(service: ModelService) -> LoadedService {
    LoadedService::new(
        service,
        "services/test.yaml",
        1,
        &RepositoryConfig::default(),
    )
    .expect("test services have valid names")
}

pub(crate) fn ctx_for<'a>(svc: &'a LoadedService, config: &'a RepositoryConfig) -> Ctx<'a> {
    Ctx::new(svc, config, &Source::local())
}

/// The GPU configuration of SPEC.md: catalog, runtime class, a gateway and a loader.
pub(crate) fn gpu_config() -> RepositoryConfig {
    let mut config = with_loader(RepositoryConfig::default());
    let gpu = &mut config.spec.gpu;
    gpu.runtime_class_name = Some("nvidia".to_string());
    for (key, product) in [
        ("a100-80gb", "NVIDIA-A100-SXM4-80GB"),
        ("h100-80gb", "NVIDIA-H100-80GB-HBM3"),
        ("l4", "NVIDIA-L4"),
        ("t4", "Tesla-T4"),
    ] {
        gpu.catalog.insert(
            key.to_string(),
            GpuModel {
                product: product.to_string(),
                memory: None,
                hourly_cost: None,
            },
        );
    }
    config.spec.traffic.gateway = Some(ObjectRef {
        name: "ml-gateway".to_string(),
        namespace: Some("gateway-system".to_string()),
    });
    config
}

/// The config with a model loader image.
pub(crate) fn with_loader(mut config: RepositoryConfig) -> RepositoryConfig {
    config.spec.model_loader = Some(ModelLoader {
        image: "registry.example.com/model-loader:1.0".to_string(),
    });
    config
}
