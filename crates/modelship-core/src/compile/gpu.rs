//! GPU placement: which extended resource a pod asks for, which nodes it may land on, and
//! what a GPU pod needs besides (tolerations, runtime class, a memory-backed /dev/shm).
//!
//! ```text
//! gpu { count, type, partition, shared, shm } + RepositoryConfig.gpu
//!   ──▶ GpuPlacement { resource limit, node affinity, tolerations, runtimeClassName, shm }
//! ```
//!
//! The device plugin owns `CUDA_VISIBLE_DEVICES` and `NVIDIA_VISIBLE_DEVICES`; nothing here
//! sets them (see `pod.rs`, which refuses them in the user env).

use k8s_openapi::api::core::v1::{
    Affinity, EmptyDirVolumeSource, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::CompileError;
use crate::spec::{self, GpuSpec, RepositoryConfig};

/// Node label the NVIDIA GPU feature discovery sets to the product name.
pub(crate) const PRODUCT_LABEL: &str = "nvidia.com/gpu.product";
const WHOLE_GPU: &str = "nvidia.com/gpu";
const MIG_PREFIX: &str = "nvidia.com/mig-";
const DEFAULT_SHM: &str = "1Gi";
const SHM_VOLUME: &str = "dshm";

/// What a GPU spec adds to a pod.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GpuPlacement {
    /// The extended resource name and the count, for `limits`.
    pub resource: (String, Quantity),
    pub affinity: Option<Affinity>,
    /// The catalog tolerations (placement tolerations are added by the pod).
    pub tolerations: Vec<Toleration>,
    pub runtime_class_name: Option<String>,
    pub shm_volume: Volume,
    pub shm_mount: VolumeMount,
}

/// The extended resource of a GPU spec: MIG profile, shared (time-sliced) or whole GPUs.
pub(crate) fn resource_name(
    gpu: &GpuSpec,
    config: &RepositoryConfig,
) -> Result<String, CompileError> {
    match (&gpu.partition, gpu.shared) {
        (Some(_), true) => Err(CompileError::PartitionAndShared),
        (Some(profile), false) => Ok(format!("{MIG_PREFIX}{profile}")),
        (None, true) => Ok(config.spec.gpu.shared_resource_name.clone()),
        (None, false) => Ok(WHOLE_GPU.to_string()),
    }
}

/// The node products acceptable for `gpu.type`, de-duplicated in the order written.
pub(crate) fn products(
    gpu: &GpuSpec,
    config: &RepositoryConfig,
) -> Result<Vec<String>, CompileError> {
    let Some(types) = &gpu.gpu_type else {
        return Ok(Vec::new());
    };
    let mut products: Vec<String> = Vec::new();
    for key in types.keys() {
        let model = config
            .spec
            .gpu
            .catalog
            .get(key)
            .ok_or_else(|| CompileError::UnknownGpuType { key: key.clone() })?;
        if !products.contains(&model.product) {
            products.push(model.product.clone());
        }
    }
    Ok(products)
}

/// Everything a GPU spec adds to the pod.
pub(crate) fn placement(
    gpu: &GpuSpec,
    config: &RepositoryConfig,
) -> Result<GpuPlacement, CompileError> {
    let products = products(gpu, config)?;
    let affinity = (!products.is_empty()).then(|| Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: PRODUCT_LABEL.to_string(),
                        operator: "In".to_string(),
                        values: Some(products),
                    }]),
                    match_fields: None,
                }],
            }),
            preferred_during_scheduling_ignored_during_execution: None,
        }),
        ..Affinity::default()
    });
    let shm = gpu.shm.as_ref().map_or(DEFAULT_SHM, spec::Quantity::as_str);
    Ok(GpuPlacement {
        resource: (resource_name(gpu, config)?, Quantity(gpu.count.to_string())),
        affinity,
        tolerations: config.spec.gpu.tolerations.iter().map(toleration).collect(),
        runtime_class_name: config.spec.gpu.runtime_class_name.clone(),
        shm_volume: Volume {
            name: SHM_VOLUME.to_string(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".to_string()),
                size_limit: Some(Quantity(shm.to_string())),
            }),
            ..Volume::default()
        },
        shm_mount: VolumeMount {
            name: SHM_VOLUME.to_string(),
            mount_path: "/dev/shm".to_string(),
            ..VolumeMount::default()
        },
    })
}

/// A spec toleration as a Kubernetes one.
pub(crate) fn toleration(t: &spec::Toleration) -> Toleration {
    Toleration {
        key: t.key.clone(),
        operator: t.operator.clone(),
        value: t.value.clone(),
        effect: t.effect.clone(),
        toleration_seconds: t.toleration_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::testutil::gpu_config;
    use crate::spec::GpuTypes;

    fn gpu(count: u32) -> GpuSpec {
        GpuSpec {
            count,
            gpu_type: None,
            partition: None,
            shared: false,
            shm: None,
        }
    }

    #[test]
    fn each_gpu_mode_asks_for_its_resource() {
        let config = gpu_config();
        let cases = [
            (gpu(2), Ok("nvidia.com/gpu")),
            (
                GpuSpec {
                    partition: Some("1g.10gb".into()),
                    ..gpu(1)
                },
                Ok("nvidia.com/mig-1g.10gb"),
            ),
            (
                GpuSpec {
                    shared: true,
                    ..gpu(1)
                },
                Ok("nvidia.com/gpu.shared"),
            ),
            (
                GpuSpec {
                    shared: true,
                    partition: Some("1g.10gb".into()),
                    ..gpu(1)
                },
                Err(CompileError::PartitionAndShared),
            ),
        ];
        for (spec, expected) in cases {
            let got = placement(&spec, &config).map(|p| p.resource);
            let want = expected.map(|name| (name.to_string(), Quantity(spec.count.to_string())));
            assert_eq!(got, want, "{spec:?}");
        }
    }

    #[test]
    fn types_become_required_product_affinity() {
        let config = gpu_config();
        let spec = GpuSpec {
            gpu_type: Some(GpuTypes::Any(vec![
                "h100-80gb".into(),
                "a100-80gb".into(),
                "h100-80gb".into(),
            ])),
            ..gpu(1)
        };
        let p = placement(&spec, &config).unwrap();
        let terms = p
            .affinity
            .unwrap()
            .node_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .unwrap()
            .node_selector_terms;
        let req = &terms[0].match_expressions.as_ref().unwrap()[0];
        assert_eq!(req.key, "nvidia.com/gpu.product");
        assert_eq!(req.operator, "In");
        assert_eq!(
            req.values.as_deref().unwrap(),
            ["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB"]
        );
    }

    #[test]
    fn untyped_gpus_have_no_affinity_and_unknown_types_fail() {
        let config = gpu_config();
        assert!(placement(&gpu(1), &config).unwrap().affinity.is_none());
        let spec = GpuSpec {
            gpu_type: Some(GpuTypes::One("v100".into())),
            ..gpu(1)
        };
        assert_eq!(
            placement(&spec, &config).unwrap_err(),
            CompileError::UnknownGpuType { key: "v100".into() }
        );
    }

    #[test]
    fn shm_is_memory_backed_with_default_1gi() {
        let config = gpu_config();
        let default = placement(&gpu(1), &config).unwrap();
        let dir = default.shm_volume.empty_dir.unwrap();
        assert_eq!(dir.medium.as_deref(), Some("Memory"));
        assert_eq!(dir.size_limit, Some(Quantity("1Gi".into())));
        assert_eq!(default.shm_mount.mount_path, "/dev/shm");
        let sized = GpuSpec {
            shm: Some("4Gi".parse().unwrap()),
            ..gpu(1)
        };
        let dir = placement(&sized, &config)
            .unwrap()
            .shm_volume
            .empty_dir
            .unwrap();
        assert_eq!(dir.size_limit, Some(Quantity("4Gi".into())));
    }

    #[test]
    fn catalog_tolerations_and_runtime_class_come_from_config() {
        let config = gpu_config();
        let p = placement(&gpu(1), &config).unwrap();
        assert_eq!(p.tolerations.len(), 1);
        assert_eq!(p.tolerations[0].key.as_deref(), Some("nvidia.com/gpu"));
        assert_eq!(p.runtime_class_name.as_deref(), Some("nvidia"));
    }
}
