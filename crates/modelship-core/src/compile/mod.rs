//! Compiles `ModelService` specs into the Kubernetes objects of SPEC.md ("What one
//! ModelService compiles to"). Pure: no I/O, no clock; the same input gives the same objects
//! and, through [`render_yaml`] / [`render_json`], the same bytes.
//!
//! ```text
//! Repository ──compile_repository──▶ DesiredSet { services: [ServiceObjects], errors }
//!   LoadedService + RepositoryConfig ──compile_service──▶ ServiceObjects { objects: [Object] }
//!       labels.rs      labels, annotations, spec-hash, the source annotation
//!       workload.rs    Deployment (stable, or the canary made by the rollout engine)
//!         pod.rs       pod template: container, probes, security, env, ports, placement
//!         storage.rs   model.uri schemes: pvc mount, loader init container, OCI image volume
//!         gpu.rs       GPU resource, node affinity, tolerations, runtime class, /dev/shm
//!       autoscaling.rs HorizontalPodAutoscaler autoscaling/v2 with behavior
//!       traffic.rs     Services per track, HTTPRoute, VirtualService, DestinationRule
//!         crd.rs       our typed structs for the Gateway API and Istio kinds
//!       guards.rs      ServiceAccount, PodDisruptionBudget, NetworkPolicy
//!       monitoring.rs  PodMonitor (prometheus.podMonitor: true)
//!   object.rs          `Object`, `Kind` (apply order) and `ObjectKey`
//!   render.rs          YAML stream / JSON List output
//!     yaml.rs          streaming block-style YAML emitter (a serde Serializer)
//! ```
//!
//! # Decisions where SPEC.md is silent
//!
//! - **Source annotation** `modelship.dev/source`: `<repo>@<commit>:<file>` when both are
//!   known, `<commit>:<file>` when only the commit is, and `local:<file>` outside git. It
//!   changes with every commit, so consumers that compare objects should ignore it (the
//!   spec-hash tells whether the spec changed); it is never put on pod templates, so a new
//!   commit alone never restarts pods.
//! - **spec-hash**: sha256 (hex) of the compact JSON of the typed `ModelService` with
//!   `metadata.namespace` resolved. Keys are in declaration order and maps sorted, so key
//!   order, quoting, comments and other formatting in the YAML never change it.
//!   RepositoryConfig changes are not part of it (they show in the object diff).
//! - **Labels**: `app.kubernetes.io/name` is `spec.model.name`, `instance` is
//!   `metadata.name`. Values taken from user text (model name, version, owner) are made
//!   label-safe: `@` becomes `_at_`, any other character outside `[A-Za-z0-9._-]` becomes
//!   `_`, the result is cut to 63 characters and trimmed to start and end alphanumeric; an
//!   empty result omits the label. User labels and annotations are copied first, so the
//!   modelship keys win on a clash; a user `modelship.dev/track` label is dropped.
//! - **Pod template metadata**: the object labels plus `modelship.dev/track`, the user
//!   annotations and the Prometheus scrape annotations; never spec-hash or source.
//! - **Selectors**: Deployments, PDB and the per-track Services select
//!   `app.kubernetes.io/instance` + `modelship.dev/track`; Service `<name>`, the
//!   NetworkPolicy and the Istio DestinationRule host select the instance only (both tracks).
//!   The PDB covers the stable track only: the canary is short-lived.
//! - **Deployment**: RollingUpdate with `maxUnavailable: 0`, `maxSurge: 25%` (never drop
//!   serving capacity while a new model loads); `progressDeadlineSeconds` is
//!   max(600, loadTimeout + 300) so a slow model load is not reported as a stuck rollout.
//! - **Probes**: readiness every 5s, liveness every 10s, both failureThreshold 3 on the
//!   named port `http`; startup probe on healthPath every 10s with failureThreshold
//!   ceil(loadTimeout / 10s), at least 1.
//! - **Security**: runAsNonRoot and seccomp RuntimeDefault at pod level;
//!   allowPrivilegeEscalation false, drop ALL, readOnlyRootFilesystem (default true) on
//!   every container. /tmp is always an emptyDir, whatever readOnlyRootFilesystem says.
//! - **Env**: user env plus `MODEL_NAME`, `MODEL_VERSION` and (when the model is mounted)
//!   `MODEL_PATH=/mnt/models`, all sorted by name. Setting one of those, or
//!   `CUDA_VISIBLE_DEVICES` / `NVIDIA_VISIBLE_DEVICES`, is a [`CompileError::ReservedEnv`].
//! - **Ports**: `metrics` is listed only when it differs from both `port` and `grpcPort`.
//! - **Model storage**: without `model.uri` there is no model volume (the model is in the
//!   image) and no `MODEL_PATH`. The loader init container gets the server's CPU and memory
//!   requests (init containers do not add to the pod's request, so this costs nothing in
//!   scheduling), the same security context, and writes to the `model` volume; the server
//!   mounts it read-only. A loader scheme without `modelLoader.image` configured is
//!   [`CompileError::NoModelLoader`]. OCI image volumes use `pullPolicy: IfNotPresent`.
//! - **GPU**: limits only (the API server copies extended-resource limits to requests);
//!   catalog products are de-duplicated in the order written; tolerations are the catalog
//!   ones followed by the placement ones, duplicates dropped. Non-GPU pods get the
//!   placement tolerations only.
//! - **Zone spread**: `maxSkew: 1`, ScheduleAnyway, selecting instance + track, with
//!   `matchLabelKeys: [pod-template-hash]` so old and new ReplicaSets spread separately.
//! - **Autoscaling**: gpuUtilization targets an AverageValue of the percent; custom pods
//!   metrics an AverageValue, custom external metrics a Value (with `matchLabels` from
//!   `selector`). Stabilization windows over 3600s (the HPA maximum) are
//!   [`CompileError::OutOfRange`].
//! - **PDB**: only when replicas (or minReplicas) >= 2, as the SPEC table says, even when
//!   `disruption` is written; `unhealthyPodEvictionPolicy: AlwaysAllow` so pods stuck
//!   loading a model never block a node drain.
//! - **NetworkPolicy**: http and grpc are open only to `allowFrom` (an empty list denies
//!   them to everyone). `namespace` is matched by the `kubernetes.io/metadata.name` label;
//!   `podLabels` alone means pods of the service's own namespace; both together mean those
//!   pods in that namespace. A distinct metrics port is open to every namespace of the
//!   cluster (`namespaceSelector: {}`) so Prometheus keeps scraping; when metrics share the
//!   http port, Prometheus must be one of the `allowFrom` peers to scrape.
//! - **Routes**: HTTPRoute `<name>` attaches to `traffic.gateway` of RepositoryConfig (its
//!   absence is [`CompileError::NoGateway`]), matches PathPrefix `/`, and routes to
//!   `<name>-stable` 100 / `<name>-canary` 0 under canary, to `<name>` under rolling. The
//!   VirtualService hosts are `<name>.<namespace>.svc.cluster.local` plus `traffic.hosts`;
//!   gateways are `mesh`, plus `<gwns>/<gw>` when hosts are given and a gateway is
//!   configured. The DestinationRule always defines subsets `stable` and `canary`. The
//!   VirtualService has one route per serving port: `grpc` (mesh traffic to the gRPC port,
//!   listed first) and `http` (everything else), each stable 100 / canary 0 under canary.
//!   HTTPRoute carries HTTP only (gRPC through a Gateway would need a GRPCRoute).
//! - **YAML output**: kubectl's layout (two-space indent, list items flush with their key,
//!   `{}` / `[]` for empty collections); a string is written plain only when no YAML 1.1 or
//!   1.2 reader could take it for a bool, null or number (`"3.1.0"`, `"16"`, `"yes"` are
//!   quoted), otherwise double-quoted with JSON escapes.
//! - **PodMonitor** `<name>` (only with `prometheus.podMonitor: true`): selects the
//!   instance (both tracks), scrapes `/metrics` on the port named `metrics` when it is a
//!   port of its own (else `grpc` or `http`, whichever it shares), and relabels the pod
//!   labels `modelship.dev/service` and `modelship.dev/track` to `service` and `track`.
//! - **Canary Deployment** `<name>-canary`: the same pod template with track `canary`,
//!   explicit replicas, and no HPA, PDB or route of its own.

mod autoscaling;
mod crd;
mod gpu;
mod guards;
mod labels;
mod monitoring;
mod object;
mod pod;
pub mod preview;
mod render;
mod storage;
mod traffic;
mod workload;
mod yaml;

#[cfg(test)]
pub(crate) mod testutil;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;

use crate::service_id::ServiceId;
use crate::spec::{self, ModelService, ModelServiceSpec, RepositoryConfig, Router, Strategy};

pub use crd::{
    DestinationRule, DestinationRuleSpec, HttpBackendRef, HttpPathMatch, HttpRoute, HttpRouteMatch,
    HttpRouteRule, HttpRouteSpec, IstioDestination, IstioHttpMatch, IstioHttpRoute,
    IstioPortSelector, IstioRouteDestination, IstioSubset, MatchLabels, ParentRef,
    PodMetricsEndpoint, PodMonitor, PodMonitorSpec, Relabeling, VirtualService, VirtualServiceSpec,
};
pub use labels::{
    ANNOTATION_SOURCE, ANNOTATION_SPEC_HASH, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY,
    LABEL_NAME, LABEL_OWNER, LABEL_SERVICE, LABEL_TRACK, LABEL_VERSION, MANAGED_BY_VALUE,
    label_value, spec_hash,
};
pub use monitoring::meta_label;
pub use object::{Kind, Object, ObjectKey, sort_in_apply_order};
pub use render::{render_json, render_yaml};
pub use traffic::track_service_name;

/// Where the specs were read from, and who compiles them: the `modelship.dev/source`
/// annotation and the `modelship.dev/instance` label of every object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// The repository, for example `github.com/acme/models`.
    pub repo: Option<String>,
    /// The commit the snapshot was taken at; `None` outside git.
    pub commit: Option<String>,
    /// The modelship instance the objects belong to (`--instance`).
    pub instance: crate::ownership::Instance,
}

impl Source {
    /// A local directory outside git.
    pub fn local() -> Self {
        Source::default()
    }

    /// The annotation value for a spec file: `<repo>@<commit>:<file>`, `<commit>:<file>`
    /// when the repository is unknown, `local:<file>` outside git.
    pub fn annotation(&self, file: &str) -> String {
        match (&self.repo, &self.commit) {
            (Some(repo), Some(commit)) => format!("{repo}@{commit}:{file}"),
            (None, Some(commit)) => format!("{commit}:{file}"),
            (_, None) => format!("local:{file}"),
        }
    }
}

/// Which Deployment a pod template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Track {
    /// Deployment `<name>`: the version serving at rest.
    Stable,
    /// Deployment `<name>-canary`: the new version while a canary rollout runs.
    Canary,
}

impl Track {
    /// The `modelship.dev/track` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Track::Stable => "stable",
            Track::Canary => "canary",
        }
    }

    /// The name of this track's Deployment (and per-track Service) of service `name`.
    pub fn object_name(self, name: &str) -> String {
        match self {
            Track::Stable => name.to_string(),
            Track::Canary => format!("{name}-canary"),
        }
    }
}

/// A spec that cannot be compiled. Validation should have caught each of these; compile
/// still refuses instead of producing a broken object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompileError {
    /// `model.uri` has a scheme modelship does not know, or no scheme.
    #[error(
        "model.uri `{uri}`: unknown scheme (expected pvc://, s3://, gs://, hf://, https:// or oci://)"
    )]
    UnknownScheme { uri: String },
    /// `model.uri` has a known scheme but lacks the claim or reference after it.
    #[error("model.uri `{uri}`: {reason}")]
    BadUri { uri: String, reason: &'static str },
    /// A downloading scheme is used but RepositoryConfig has no `modelLoader.image`.
    #[error("model.uri `{uri}` needs a loader, but modelship.yaml sets no modelLoader.image")]
    NoModelLoader { uri: String },
    /// `gpu.type` names a key missing from the GPU catalog.
    #[error("gpu.type `{key}` is not in the GPU catalog of modelship.yaml")]
    UnknownGpuType { key: String },
    /// `gpu.partition` and `gpu.shared` are both set.
    #[error("gpu.partition and gpu.shared cannot both be set")]
    PartitionAndShared,
    /// The router is gateway-api but RepositoryConfig names no gateway to attach to.
    #[error("traffic.router gateway-api needs traffic.gateway in modelship.yaml")]
    NoGateway,
    /// The env sets a variable modelship or the GPU device plugin owns.
    #[error("runtime.env sets `{var}`, which modelship or the GPU device plugin owns")]
    ReservedEnv { var: String },
    /// A number does not fit the Kubernetes field it goes to.
    #[error("{field} = {value} is out of range for Kubernetes")]
    OutOfRange { field: &'static str, value: u64 },
    /// An object could not be turned into JSON or YAML (a bug, reported instead of a panic).
    #[error("cannot serialize {kind} {name}: {message}")]
    Serialize {
        kind: &'static str,
        name: String,
        message: String,
    },
}

impl CompileError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            CompileError::UnknownScheme { .. }
            | CompileError::BadUri { .. }
            | CompileError::NoModelLoader { .. } => "compile_model_uri",
            CompileError::UnknownGpuType { .. } | CompileError::PartitionAndShared => "compile_gpu",
            CompileError::NoGateway => "compile_gateway",
            CompileError::ReservedEnv { .. } => "compile_env",
            CompileError::OutOfRange { .. } => "compile_out_of_range",
            CompileError::Serialize { .. } => "compile_serialize",
        }
    }
}

/// The objects of one ModelService, in apply order (kind order, then name).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceObjects {
    pub id: ServiceId,
    /// `modelship.dev/spec-hash` of the spec these objects were compiled from.
    pub spec_hash: String,
    /// The spec file, relative to the repository root.
    pub file: String,
    pub objects: Vec<Object>,
}

/// A service that failed to compile. Its live objects must be left untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceError {
    pub id: ServiceId,
    pub file: String,
    pub error: CompileError,
}

/// Everything compiled from one repository snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredSet {
    /// Compiled services, sorted by id.
    pub services: Vec<ServiceObjects>,
    /// Services that failed to compile, sorted by id.
    pub errors: Vec<ServiceError>,
}

impl DesiredSet {
    /// Every object, sorted by (namespace, kind order, name): the apply order.
    pub fn objects(&self) -> Vec<&Object> {
        let mut all: Vec<(ObjectKey, &Object)> = self
            .services
            .iter()
            .flat_map(|s| s.objects.iter())
            .map(|o| (o.key(), o))
            .collect();
        all.sort_by(|a, b| a.0.apply_order().cmp(&b.0.apply_order()));
        all.into_iter().map(|(_, o)| o).collect()
    }
}

/// Compiles every valid service of a repository. One failing service does not stop the
/// others; its error lands in `DesiredSet::errors`.
pub fn compile_repository(repo: &spec::Repository, source: &Source) -> DesiredSet {
    let mut set = DesiredSet::default();
    for svc in &repo.services {
        match compile_loaded(svc, repo, source) {
            Ok(objects) => set.services.push(objects),
            Err(error) => set.errors.push(*error),
        }
    }
    set.services.sort_by(|a, b| a.id.cmp(&b.id));
    set.errors.sort_by(|a, b| a.id.cmp(&b.id));
    set
}

/// Compiles one service of `repo`, its failure named with the service and its file: what
/// [`compile_repository`] does for each service, for callers that take one at a time.
pub fn compile_loaded(
    svc: &spec::LoadedService,
    repo: &spec::Repository,
    source: &Source,
) -> Result<ServiceObjects, Box<ServiceError>> {
    compile_service(svc, &repo.config, source).map_err(|error| {
        Box::new(ServiceError {
            id: svc.id().clone(),
            file: svc.file.clone(),
            error,
        })
    })
}

/// Compiles one service into its objects at rest (stable track only).
pub fn compile_service(
    svc: &spec::LoadedService,
    config: &RepositoryConfig,
    source: &Source,
) -> Result<ServiceObjects, CompileError> {
    let ctx = Ctx::new(svc, config, source);
    let mut objects = vec![
        Object::ServiceAccount(Box::new(guards::service_account(&ctx))),
        Object::Deployment(Box::new(workload::stable_deployment(&ctx)?)),
    ];
    objects.extend(
        traffic::services(&ctx)
            .into_iter()
            .map(|s| Object::Service(Box::new(s))),
    );
    if let Some(hpa) = autoscaling::horizontal_pod_autoscaler(&ctx)? {
        objects.push(Object::HorizontalPodAutoscaler(Box::new(hpa)));
    }
    if let Some(pdb) = guards::pod_disruption_budget(&ctx) {
        objects.push(Object::PodDisruptionBudget(Box::new(pdb)));
    }
    if let Some(policy) = guards::network_policy(&ctx) {
        objects.push(Object::NetworkPolicy(Box::new(policy)));
    }
    objects.extend(traffic::routes(&ctx)?);
    if let Some(monitor) = monitoring::pod_monitor(&ctx) {
        objects.push(Object::PodMonitor(Box::new(monitor)));
    }
    sort_in_apply_order(&mut objects);
    Ok(ServiceObjects {
        id: svc.id().clone(),
        spec_hash: ctx.spec_hash.clone(),
        file: svc.file.clone(),
        objects,
    })
}

/// The Deployment `<name>-canary` of a running canary rollout: the same compiler as the
/// stable Deployment, with track `canary` and `replicas` set explicitly.
pub fn compile_canary_deployment(
    svc: &spec::LoadedService,
    config: &RepositoryConfig,
    source: &Source,
    replicas: i32,
) -> Result<Deployment, CompileError> {
    let ctx = Ctx::new(svc, config, source);
    workload::deployment(&ctx, Track::Canary, Some(replicas))
}

/// The router of a service: its own `traffic.router`, else modelship.yaml's.
pub fn router_of(spec: &ModelServiceSpec, config: &RepositoryConfig) -> Router {
    spec.traffic
        .as_ref()
        .and_then(|t| t.router)
        .unwrap_or(config.spec.traffic.router)
}

/// What every part of the compiler needs to know about the service being compiled.
pub(crate) struct Ctx<'a> {
    pub svc: &'a ModelService,
    pub spec: &'a ModelServiceSpec,
    pub config: &'a RepositoryConfig,
    pub namespace: &'a str,
    pub name: &'a str,
    pub spec_hash: String,
    /// Labels of every object (see `labels::service_labels`).
    pub labels: BTreeMap<String, String>,
    /// Annotations of every object: user annotations, spec-hash and source.
    pub annotations: BTreeMap<String, String>,
    pub router: Router,
    pub strategy: Strategy,
}

impl<'a> Ctx<'a> {
    fn new(svc: &'a spec::LoadedService, config: &'a RepositoryConfig, source: &Source) -> Self {
        let namespace = svc.namespace();
        let spec = &svc.service.spec;
        let hash = spec_hash(&svc.service, namespace);
        Ctx {
            svc: &svc.service,
            spec,
            config,
            namespace,
            name: svc.name(),
            labels: labels::service_labels(&svc.service, &source.instance),
            annotations: labels::service_annotations(
                &svc.service,
                &hash,
                &source.annotation(&svc.file),
            ),
            spec_hash: hash,
            router: router_of(spec, config),
            strategy: spec
                .rollout
                .as_ref()
                .map(|r| r.strategy)
                .unwrap_or_default(),
        }
    }

    /// True when the service runs on GPUs.
    pub fn is_gpu(&self) -> bool {
        self.spec.gpu.is_some()
    }

    /// The replica floor: `autoscaling.minReplicas` (default 1) under an HPA, else
    /// `replicas` (default 1). Drives the PDB and the zone-spread default.
    pub fn min_replicas(&self) -> u32 {
        match &self.spec.autoscaling {
            Some(a) => a.min_replicas.unwrap_or(1),
            None => self.spec.replicas.unwrap_or(1),
        }
    }

    /// True when a canary needs its own Service and route backend.
    pub fn routes_canary(&self) -> bool {
        self.strategy == Strategy::Canary && self.router != Router::Replicas
    }

    /// The HTTP port (default 8080).
    pub fn http_port(&self) -> u16 {
        self.spec.runtime.port.unwrap_or(8080)
    }

    /// The metrics port when it is a port of its own (differs from http and grpc).
    pub fn separate_metrics_port(&self) -> Option<u16> {
        let runtime = &self.spec.runtime;
        runtime
            .metrics_port
            .filter(|&p| p != self.http_port() && Some(p) != runtime.grpc_port)
    }
}

/// Converts a spec count to the `i32` of the Kubernetes API.
pub(crate) fn to_i32(field: &'static str, value: u64) -> Result<i32, CompileError> {
    i32::try_from(value).map_err(|_| CompileError::OutOfRange { field, value })
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
