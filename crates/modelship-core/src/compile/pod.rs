//! The pod template of a track: the server container (image, ports, env, probes,
//! resources, security), the model storage and GPU additions, and scheduling placement.
//!
//! ```text
//! Ctx + Track ──pod_template──▶ PodTemplateSpec
//!   storage::model_storage ─▶ model volume, server mount, loader init container
//!   gpu::placement         ─▶ GPU limit, node affinity, tolerations, runtime class, /dev/shm
//!   placement              ─▶ nodeSelector, tolerations, zone spread, priority class
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, SecretEnvSource, SecurityContext, Toleration, TopologySpreadConstraint, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::gpu::{self, GpuPlacement};
use super::labels::{pod_labels, selector, track_labels};
use super::storage::{self, MODEL_PATH};
use super::{CompileError, Ctx, Track};

const SERVER_NAME: &str = "server";
const TMP_VOLUME: &str = "tmp";
const ZONE_KEY: &str = "topology.kubernetes.io/zone";
/// Default `model.loadTimeout`: 5 minutes.
const DEFAULT_LOAD_TIMEOUT_SECS: u64 = 300;
const STARTUP_PERIOD_SECS: u64 = 10;
/// Variables the user env may not set: modelship's own and the device plugin's.
const RESERVED_ENV: [&str; 5] = [
    "MODEL_NAME",
    "MODEL_VERSION",
    "MODEL_PATH",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
];

/// The pod template of the given track.
pub(crate) fn pod_template(ctx: &Ctx, track: Track) -> Result<PodTemplateSpec, CompileError> {
    let storage = storage::model_storage(ctx)?;
    let gpu = ctx
        .spec
        .gpu
        .as_ref()
        .map(|g| gpu::placement(g, ctx.config))
        .transpose()?;
    let mut volumes = vec![tmp_volume()];
    let mut mounts = vec![tmp_mount()];
    if let (Some(volume), Some(mount)) = (storage.volume, storage.mount.clone()) {
        volumes.push(volume);
        mounts.push(mount);
    }
    if let Some(g) = &gpu {
        volumes.push(g.shm_volume.clone());
        mounts.push(g.shm_mount.clone());
    }
    let server = Container {
        volume_mounts: Some(mounts),
        ..server_container(ctx, storage.mount.is_some(), gpu.as_ref())?
    };
    let placement = ctx.spec.placement.as_ref();
    let spec = PodSpec {
        service_account_name: Some(ctx.name.to_string()),
        security_context: Some(pod_security_context()),
        init_containers: storage.init_container.map(|c| vec![c]),
        containers: vec![server],
        volumes: Some(volumes),
        affinity: gpu.as_ref().and_then(|g| g.affinity.clone()),
        tolerations: non_empty(tolerations(ctx, gpu.as_ref())),
        runtime_class_name: gpu.as_ref().and_then(|g| g.runtime_class_name.clone()),
        node_selector: placement
            .map(|p| p.node_selector.clone())
            .filter(|s| !s.is_empty()),
        priority_class_name: placement.and_then(|p| p.priority_class_name.clone()),
        topology_spread_constraints: spreads_across_zones(ctx)
            .then(|| vec![zone_spread(ctx, track)]),
        ..PodSpec::default()
    };
    Ok(PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels(ctx, track)),
            annotations: Some(pod_annotations(ctx)),
            ..ObjectMeta::default()
        }),
        spec: Some(spec),
    })
}

/// User annotations plus the Prometheus scrape annotations (never spec-hash or source:
/// a new commit alone must not restart pods).
fn pod_annotations(ctx: &Ctx) -> BTreeMap<String, String> {
    let mut annotations = ctx.svc.metadata.annotations.clone();
    let metrics_port = ctx.spec.runtime.metrics_port.unwrap_or(ctx.http_port());
    for (key, value) in [
        ("prometheus.io/scrape", "true".to_string()),
        ("prometheus.io/port", metrics_port.to_string()),
        ("prometheus.io/path", "/metrics".to_string()),
    ] {
        annotations.insert(key.to_string(), value);
    }
    annotations
}

/// The model server container, without volume mounts.
fn server_container(
    ctx: &Ctx,
    has_model: bool,
    gpu: Option<&GpuPlacement>,
) -> Result<Container, CompileError> {
    let runtime = &ctx.spec.runtime;
    let health = runtime.health_path.as_deref().unwrap_or("/health");
    let readiness = runtime.readiness_path.as_deref().unwrap_or(health);
    Ok(Container {
        name: SERVER_NAME.to_string(),
        image: Some(runtime.image.clone()),
        command: non_empty(runtime.command.clone()),
        args: non_empty(runtime.args.clone()),
        ports: Some(container_ports(ctx)),
        env: Some(env(ctx, has_model)?),
        env_from: non_empty(
            runtime
                .env_from_secrets
                .iter()
                .map(|name| EnvFromSource {
                    secret_ref: Some(SecretEnvSource {
                        name: name.clone(),
                        optional: None,
                    }),
                    ..EnvFromSource::default()
                })
                .collect(),
        ),
        resources: Some(resources(ctx, gpu)),
        readiness_probe: Some(http_probe(readiness, 5, 3)),
        liveness_probe: Some(http_probe(health, 10, 3)),
        startup_probe: Some(http_probe(
            health,
            STARTUP_PERIOD_SECS as i32,
            startup_failure_threshold(ctx)?,
        )),
        security_context: Some(container_security_context(ctx)),
        ..Container::default()
    })
}

/// `http`, then `grpc`, then `metrics` when it is a port of its own.
fn container_ports(ctx: &Ctx) -> Vec<ContainerPort> {
    let port = |name: &str, number: u16| ContainerPort {
        name: Some(name.to_string()),
        container_port: i32::from(number),
        protocol: Some("TCP".to_string()),
        ..ContainerPort::default()
    };
    let mut ports = vec![port("http", ctx.http_port())];
    if let Some(grpc) = ctx.spec.runtime.grpc_port {
        ports.push(port("grpc", grpc));
    }
    if let Some(metrics) = ctx.separate_metrics_port() {
        ports.push(port("metrics", metrics));
    }
    ports
}

/// The user env and MODEL_NAME / MODEL_VERSION / MODEL_PATH, sorted by name.
fn env(ctx: &Ctx, has_model: bool) -> Result<Vec<EnvVar>, CompileError> {
    let mut vars: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, value) in &ctx.spec.runtime.env {
        if RESERVED_ENV.contains(&name.as_str()) {
            return Err(CompileError::ReservedEnv { var: name.clone() });
        }
        vars.insert(name, value);
    }
    vars.insert("MODEL_NAME", &ctx.spec.model.name);
    vars.insert("MODEL_VERSION", &ctx.spec.model.version);
    if has_model {
        vars.insert("MODEL_PATH", MODEL_PATH);
    }
    Ok(vars
        .into_iter()
        .map(|(name, value)| EnvVar {
            name: name.to_string(),
            value: Some(value.to_string()),
            value_from: None,
        })
        .collect())
}

/// An HTTP GET probe on the named port `http`.
fn http_probe(path: &str, period: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("http".to_string()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

/// ceil(loadTimeout / 10s), at least 1: the startup probe allows that long to load.
pub(crate) fn startup_failure_threshold(ctx: &Ctx) -> Result<i32, CompileError> {
    let secs = load_timeout_secs(ctx);
    let threshold = secs.div_ceil(STARTUP_PERIOD_SECS).max(1);
    super::to_i32("model.loadTimeout / 10s", threshold)
}

/// `model.loadTimeout` in seconds (default 5m), rounded up.
pub(crate) fn load_timeout_secs(ctx: &Ctx) -> u64 {
    ctx.spec
        .model
        .load_timeout
        .as_ref()
        .map_or(DEFAULT_LOAD_TIMEOUT_SECS, |d| {
            d.value().as_secs_f64().ceil() as u64
        })
}

/// CPU request (and limit with `cpuLimit`), memory request = limit, and the GPU limit.
fn resources(ctx: &Ctx, gpu: Option<&GpuPlacement>) -> ResourceRequirements {
    let r = &ctx.spec.resources;
    let mut limits = BTreeMap::new();
    limits.insert(
        "memory".to_string(),
        Quantity(r.memory.as_str().to_string()),
    );
    if let Some(cpu_limit) = &r.cpu_limit {
        limits.insert("cpu".to_string(), Quantity(cpu_limit.as_str().to_string()));
    }
    if let Some(g) = gpu {
        limits.insert(g.resource.0.clone(), g.resource.1.clone());
    }
    ResourceRequirements {
        limits: Some(limits),
        ..resource_requests(ctx)
    }
}

/// The model-loader init container's resources: the server's CPU and memory requests and
/// a memory limit equal to the memory request (no GPU, no CPU limit). Without the limit a
/// ResourceQuota on `limits.memory`, as GPU clusters set them, rejects every pod that
/// downloads its model: a quota on a limit requires that limit on every container,
/// init containers included.
pub(crate) fn loader_resources(ctx: &Ctx) -> ResourceRequirements {
    let memory = Quantity(ctx.spec.resources.memory.as_str().to_string());
    ResourceRequirements {
        limits: Some(BTreeMap::from([("memory".to_string(), memory)])),
        ..resource_requests(ctx)
    }
}

/// The CPU and memory requests only.
fn resource_requests(ctx: &Ctx) -> ResourceRequirements {
    let r = &ctx.spec.resources;
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(r.cpu.as_str().to_string())),
            (
                "memory".to_string(),
                Quantity(r.memory.as_str().to_string()),
            ),
        ])),
        ..ResourceRequirements::default()
    }
}

/// Restricted container security: no privilege escalation, no capabilities, non-root,
/// read-only root filesystem unless the spec turns it off.
pub(crate) fn container_security_context(ctx: &Ctx) -> SecurityContext {
    let read_only = ctx
        .spec
        .security
        .as_ref()
        .and_then(|s| s.read_only_root_filesystem)
        .unwrap_or(true);
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            add: None,
            drop: Some(vec!["ALL".to_string()]),
        }),
        read_only_root_filesystem: Some(read_only),
        run_as_non_root: Some(true),
        ..SecurityContext::default()
    }
}

/// Pod security: non-root, seccomp RuntimeDefault.
fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            localhost_profile: None,
        }),
        ..PodSecurityContext::default()
    }
}

fn tmp_volume() -> Volume {
    Volume {
        name: TMP_VOLUME.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// The writable /tmp every container gets.
pub(crate) fn tmp_mount() -> VolumeMount {
    VolumeMount {
        name: TMP_VOLUME.to_string(),
        mount_path: "/tmp".to_string(),
        ..VolumeMount::default()
    }
}

/// Catalog tolerations (GPU pods only), then placement tolerations, duplicates dropped.
fn tolerations(ctx: &Ctx, gpu: Option<&GpuPlacement>) -> Vec<Toleration> {
    let mut out: Vec<Toleration> = gpu.map(|g| g.tolerations.clone()).unwrap_or_default();
    let placement = ctx.spec.placement.iter().flat_map(|p| &p.tolerations);
    for t in placement.map(gpu::toleration) {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// `placement.spreadAcrossZones`, default true when replicas (or minReplicas) >= 2.
pub(crate) fn spreads_across_zones(ctx: &Ctx) -> bool {
    ctx.spec
        .placement
        .as_ref()
        .and_then(|p| p.spread_across_zones)
        .unwrap_or(ctx.min_replicas() >= 2)
}

/// Spread the track's pods over zones, best effort.
fn zone_spread(ctx: &Ctx, track: Track) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        max_skew: 1,
        topology_key: ZONE_KEY.to_string(),
        when_unsatisfiable: "ScheduleAnyway".to_string(),
        label_selector: Some(selector(track_labels(ctx, track))),
        match_label_keys: Some(vec!["pod-template-hash".to_string()]),
        ..TopologySpreadConstraint::default()
    }
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

#[cfg(test)]
#[path = "pod_tests.rs"]
mod tests;
