//! Preview environments of pull requests: the services a pull request changes, compiled
//! by the same compiler into namespaces of their own, scaled down. Pure.
//!
//! ```text
//! Repository (the PR's head) + changed services + PR number
//!   └─ per service: skipped (GPU not allowed, namespace name too long, compile error)
//!      or preview_spec: namespace <ns>-pr-<n>, one replica, no HPA, no PDB, a rolling
//!                       update, route hosts pr-<n>.<host>
//!         └─ compile_service (the one compiler) ─▶ objects labelled modelship.dev/preview=<n>
//! ```
//!
//! Decisions:
//! - A preview runs one replica and no HorizontalPodAutoscaler or PodDisruptionBudget: it
//!   is for looking at, not for load. A canary service is previewed as a rolling update
//!   (a preview has no traffic to analyse).
//! - Route hosts (`traffic.hosts`) get the prefix `pr-<n>.`; the in-cluster address is
//!   `http://<name>.<ns>-pr-<n>.svc.cluster.local:<port>`.
//! - GPU services are previewed only with `previews.gpu: true`; otherwise they are listed
//!   as skipped, so the comment says so. So are services whose placement reaches system
//!   nodes ([`system_placement`]).
//! - Secrets and claims a spec refers to (`credentialsSecret`, `envFromSecrets`,
//!   `pvc://`) are not copied: they must exist in the preview namespace.
//! - Each preview namespace is a box: the `restricted` Pod Security profile
//!   ([`POD_SECURITY`]), a ResourceQuota and a LimitRange from `previews.quota`, and egress
//!   denied but DNS and the namespace's own pods ([`namespace_box`]).
//! - Every object carries `modelship.dev/preview: "<n>"`, which keeps it out of the main
//!   reconcile ([`crate::ownership::Instance::selector`]): the main branch never plans, heals or
//!   prunes a preview, and a preview never touches the main branch's objects.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{Source, compile_service};
use crate::meta::{LABEL_CREATED_BY, LABEL_PREVIEW, MANAGED_BY_VALUE, ServiceId};
use crate::plan::render::capacity::{self, PriceList};
use crate::service_id::InvalidServiceId;
use crate::spec::{LoadedService, PreviewQuota, Repository, RepositoryConfig, TrafficSpec};
use crate::state::DesiredService;

/// The longest namespace name Kubernetes accepts (an RFC 1123 label).
const MAX_NAMESPACE: usize = 63;

/// Why a changed service gets no preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// It asks for GPUs and `previews.gpu` is false.
    Gpu,
    /// `<namespace>-pr-<n>` is longer than 63 characters.
    NamespaceTooLong(String),
    /// The preview spec did not compile.
    Compile(String),
    /// `spec.placement` reaches system nodes (a `system-*` priority class, a toleration or
    /// node selector of control-plane nodes): refused in previews.
    Placement(String),
    /// The preview namespace exists and was not created by this instance for this pull
    /// request: it is never applied to, nor deleted.
    NamespaceTaken(String),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Gpu => {
                f.write_str("uses GPUs; set `previews.gpu: true` in modelship.yaml to preview it")
            }
            Skip::NamespaceTooLong(ns) => {
                write!(
                    f,
                    "the preview namespace `{ns}` would be longer than {MAX_NAMESPACE} characters"
                )
            }
            Skip::Compile(error) => write!(f, "the preview does not compile: {error}"),
            Skip::Placement(why) => write!(
                f,
                "previews never run on system nodes: {why}; remove it from `spec.placement` to preview the service"
            ),
            Skip::NamespaceTaken(ns) => write!(
                f,
                "the namespace `{ns}` exists and was not created by modelship for this pull request: it is left alone"
            ),
        }
    }
}

/// One previewed service.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewService {
    /// The service in the repository.
    pub source: ServiceId,
    /// Its preview: namespace `<ns>-pr-<n>`, objects labelled with the PR.
    pub service: DesiredService,
    /// Route hosts, prefixed `pr-<n>.`.
    pub hosts: Vec<String>,
    /// The in-cluster URL of its HTTP port.
    pub url: String,
    /// USD per hour of its GPUs (priced from the catalog).
    pub hourly: f64,
}

/// The preview of one pull request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Previews {
    pub pr: u64,
    /// Sorted by preview (namespace, name).
    pub services: Vec<PreviewService>,
    /// Changed services not previewed, and why.
    pub skipped: Vec<(ServiceId, Skip)>,
    /// `previews.quota` of the followed branch: the bounds of each preview namespace.
    pub quota: PreviewQuota,
}

impl Previews {
    /// The preview namespaces, sorted.
    pub fn namespaces(&self) -> BTreeSet<String> {
        self.services
            .iter()
            .map(|s| s.service.id.namespace().to_string())
            .collect()
    }

    /// Skips the services whose preview namespace is one of `taken` (it exists and is
    /// not this pull request's own), with [`Skip::NamespaceTaken`].
    pub fn leave_alone(&mut self, taken: &BTreeSet<String>) {
        let (kept, left): (Vec<_>, Vec<_>) = std::mem::take(&mut self.services)
            .into_iter()
            .partition(|s| !taken.contains(s.service.id.namespace()));
        self.services = kept;
        for service in left {
            let namespace = service.service.id.namespace().to_string();
            self.skipped
                .push((service.source, Skip::NamespaceTaken(namespace)));
        }
        self.skipped.sort_by(|a, b| a.0.cmp(&b.0));
    }

    /// USD per hour of every previewed service.
    pub fn hourly(&self) -> f64 {
        self.services.iter().map(|s| s.hourly).sum()
    }
}

/// The Pod Security Admission labels of every preview namespace: the `restricted` profile
/// enforced, warned and audited (compiled pods satisfy it: non-root, RuntimeDefault
/// seccomp, every capability dropped, no privilege escalation).
pub const POD_SECURITY: [(&str, &str); 4] = [
    ("pod-security.kubernetes.io/enforce", "restricted"),
    ("pod-security.kubernetes.io/enforce-version", "latest"),
    ("pod-security.kubernetes.io/warn", "restricted"),
    ("pod-security.kubernetes.io/audit", "restricted"),
];

/// The name of the ResourceQuota, LimitRange and egress NetworkPolicy of a preview
/// namespace.
pub const BOX_NAME: &str = "modelship-preview";

/// The box of one preview namespace, besides its labels ([`POD_SECURITY`]): a
/// ResourceQuota and a LimitRange from `previews.quota`, and a NetworkPolicy denying
/// egress but DNS and the namespace's own pods. Labelled with the PR, not managed (the
/// preview's plan never sees them; they go with the namespace).
pub fn namespace_box(namespace: &str, pr: u64, quota: &PreviewQuota) -> Vec<Value> {
    let metadata = json!({
        "name": BOX_NAME,
        "namespace": namespace,
        "labels": {LABEL_CREATED_BY: MANAGED_BY_VALUE, LABEL_PREVIEW: pr.to_string()},
    });
    let (cpu, memory) = (quota.cpu.to_string(), quota.memory.to_string());
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": metadata,
            "spec": {"hard": {
                "requests.cpu": cpu,
                "requests.memory": memory,
                "limits.memory": memory,
                "pods": quota.pods.to_string(),
                "requests.nvidia.com/gpu": quota.gpus.to_string(),
            }},
        }),
        // Requests for containers that set none (a quota needs them); memory limits, which
        // compiled containers always set, at most the whole quota.
        json!({
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": metadata,
            "spec": {"limits": [{
                "type": "Container",
                "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                "default": {"memory": "512Mi"},
                "max": {"memory": memory},
            }]},
        }),
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata,
            "spec": {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    },
                    {"to": [{"podSelector": {}}]},
                ],
            },
        }),
    ]
}

/// The namespace of the preview of `namespace` for pull request `pr`.
pub fn preview_namespace(namespace: &str, pr: u64) -> String {
    format!("{namespace}-pr-{pr}")
}

/// The spec of a service's preview: another namespace, one replica, no autoscaling, no
/// disruption budget, a rolling update, hosts prefixed `pr-<n>.`. Fails when the preview
/// namespace cannot name a service (too long).
pub fn preview_spec(
    svc: &LoadedService,
    config: &RepositoryConfig,
    pr: u64,
) -> Result<LoadedService, InvalidServiceId> {
    let mut service = svc.service.clone();
    service.metadata.namespace = Some(preview_namespace(svc.namespace(), pr));
    let spec = &mut service.spec;
    spec.replicas = Some(1);
    spec.autoscaling = None;
    spec.disruption = None;
    spec.rollout = None;
    if let Some(traffic) = &mut spec.traffic {
        *traffic = TrafficSpec {
            hosts: traffic
                .hosts
                .iter()
                .map(|h| format!("pr-{pr}.{h}"))
                .collect(),
            ..traffic.clone()
        };
    }
    LoadedService::new(service, svc.file.clone(), svc.line, config)
}

/// Compiles the previews of the `changed` services of a repository for pull request `pr`.
pub fn compile_previews(
    repository: &Repository,
    changed: &BTreeSet<ServiceId>,
    pr: u64,
    source: &Source,
) -> Previews {
    let config = &repository.config;
    let prices = PriceList::from_catalog(&config.spec.gpu.catalog);
    let mut previews = Previews {
        pr,
        quota: config.spec.previews.quota.clone(),
        ..Previews::default()
    };
    for svc in &repository.services {
        if !changed.contains(svc.id()) {
            continue;
        }
        match preview_service(svc, config, pr, source, &prices) {
            Ok(preview) => previews.services.push(preview),
            Err(skip) => previews.skipped.push((svc.id().clone(), skip)),
        }
    }
    previews
        .services
        .sort_by(|a, b| a.service.id.cmp(&b.service.id));
    previews.skipped.sort_by(|a, b| a.0.cmp(&b.0));
    previews
}

/// Node label and taint keys of control-plane nodes.
const CONTROL_PLANE_KEYS: [&str; 2] = [
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
];

/// What in a service's placement reaches system nodes, if anything: a `system-*`
/// priority class (they preempt cluster components' peers), a node selector or a
/// toleration of control-plane nodes, or a toleration of every taint.
pub fn system_placement(svc: &LoadedService) -> Option<String> {
    let placement = svc.service.spec.placement.as_ref()?;
    if let Some(class) = &placement.priority_class_name
        && class.starts_with("system-")
    {
        return Some(format!("`priorityClassName: {class}`"));
    }
    if let Some(key) = placement
        .node_selector
        .keys()
        .find(|k| CONTROL_PLANE_KEYS.contains(&k.as_str()))
    {
        return Some(format!("the node selector `{key}`"));
    }
    placement.tolerations.iter().find_map(|t| match &t.key {
        Some(key) if CONTROL_PLANE_KEYS.contains(&key.as_str()) => {
            Some(format!("the toleration of `{key}`"))
        }
        None if t.operator.as_deref() == Some("Exists") => {
            Some("a toleration of every taint (`operator: Exists` without a key)".to_string())
        }
        _ => None,
    })
}

fn preview_service(
    svc: &LoadedService,
    config: &RepositoryConfig,
    pr: u64,
    source: &Source,
    prices: &PriceList,
) -> Result<PreviewService, Skip> {
    if svc.service.spec.gpu.is_some() && !config.spec.previews.gpu {
        return Err(Skip::Gpu);
    }
    if let Some(why) = system_placement(svc) {
        return Err(Skip::Placement(why));
    }
    let namespace = preview_namespace(svc.namespace(), pr);
    if namespace.len() > MAX_NAMESPACE {
        return Err(Skip::NamespaceTooLong(namespace));
    }
    let spec = preview_spec(svc, config, pr).map_err(|e| Skip::Compile(e.to_string()))?;
    let compiled =
        compile_service(&spec, config, source).map_err(|e| Skip::Compile(e.to_string()))?;
    let mut objects = Vec::with_capacity(compiled.objects.len());
    for object in &compiled.objects {
        let mut json = object.to_json().map_err(|e| Skip::Compile(e.to_string()))?;
        if let Some(labels) = json
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.insert(LABEL_PREVIEW.to_string(), Value::String(pr.to_string()));
        }
        objects.push(json);
    }
    let hourly = capacity::of_objects(objects.iter(), prices).hourly;
    let port = spec.service.spec.runtime.port.unwrap_or(8080);
    Ok(PreviewService {
        source: svc.id().clone(),
        url: format!("http://{}.{namespace}.svc.cluster.local:{port}", svc.name()),
        hosts: spec
            .service
            .spec
            .traffic
            .as_ref()
            .map(|t| t.hosts.clone())
            .unwrap_or_default(),
        hourly,
        service: DesiredService {
            id: spec.id().clone(),
            file: svc.file.clone(),
            objects,
        },
    })
}

#[cfg(test)]
#[path = "preview_tests.rs"]
mod tests;
