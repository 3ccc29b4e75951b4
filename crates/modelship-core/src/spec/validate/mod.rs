//! Semantic validation of documents that deserialized: every rule of SPEC.md's
//! "Validation rules", plus what a platform engineer expects of a Kubernetes spec.
//!
//! Rules work on the typed values and return [`Finding`]s: a [`FieldPath`] and a
//! [`Violation`]. `load` maps each path through the document's node tree to a line and
//! column, so validation itself knows nothing of YAML.
//!
//! ```text
//! ModelService + RepositoryConfig --service()--> Vec<Finding> --locate--> Diagnostic
//! RepositoryConfig                --config()---> Vec<Finding>
//! ```
//!
//! | rule | field | violation |
//! |---|---|---|
//! | name: RFC 1035 label, at most 45 characters | `metadata.name` | `Name` |
//! | namespace: RFC 1123 label | `metadata.namespace`, `spec.defaultNamespace` | `Namespace` |
//! | label and annotation keys, label values | `metadata.labels`, `metadata.annotations`, selectors | `LabelKey`, `LabelValue` |
//! | no reserved key (`modelship.dev/*`, the `app.kubernetes.io/` keys modelship sets) | `metadata.labels`, `metadata.annotations` | `ReservedKey` |
//! | the namespace is not protected (system namespaces, `protectedNamespaces`) | `metadata.namespace`, else `metadata.name` (the default namespace) | `ProtectedNamespace` |
//! | the file is owned by a tenant (the first whose `paths` match) | `metadata` | `NoTenant` (`tenants::Boundaries`) |
//! | the namespace is one its tenant may use, and not modelship's own | `metadata.namespace`, else `metadata.name` | `TenantNamespace`, `ProtectedNamespace` (`tenants::Boundaries`) |
//! | a tenant within `maxGPUs` (live services counted first) | `metadata.name` | `OverBudget` (`crate::budget`) |
//! | `model.version` is a label value | `spec.model.version` | `LabelValue` |
//! | images pinned: a tag other than `latest`, or a digest | `spec.runtime.image`, `modelLoader.image` | `Image` |
//! | quantities and durations parse | (while reading) | reported by `de` |
//! | cpu and memory positive; `cpuLimit >= cpu` | `spec.resources` | `NotPositive`, `CpuLimitBelowRequest` |
//! | `model.size`, `gpu.shm` positive | `spec.model.size`, `spec.gpu.shm` | `NotPositive` |
//! | `loadTimeout >= 10s` (the startup probe period) | `spec.model.loadTimeout` | `DurationTooShort` |
//! | `maxReplicas >= 1`, `maxReplicas >= minReplicas` | `spec.autoscaling` | `MaxReplicasZero`, `MaxBelowMin` |
//! | `minReplicas: 0` only with an external metric | `spec.autoscaling.minReplicas` | `ScaleToZero` |
//! | at least one metric | `spec.autoscaling.metrics` | `NoMetrics` |
//! | exactly one key per metric | (while reading) | reported by `de` |
//! | percent metrics in 1..100 (cpu, memory: > 0) | `spec.autoscaling.metrics[i]` | `Percent` |
//! | value metric targets positive | `spec.autoscaling.metrics[i]` | `NotPositive` |
//! | custom metric selector only for external | `...custom.selector` | `SelectorNeedsExternal` |
//! | stabilization windows at most 1h | `spec.autoscaling.scale*Stabilization` | `DurationTooLong` |
//! | canary steps: present, in 1..100, strictly increasing, ending at 100 | `spec.rollout.steps` | `Step*` |
//! | `stepInterval >= 30s` | `spec.rollout.stepInterval` | `DurationTooShort` |
//! | steps, stepInterval, analysis, manualGates only with canary | `spec.rollout` | `CanaryOnly` |
//! | manual gates among the steps | `spec.rollout.manualGates[i]` | `GateNotAStep` |
//! | analysis `successRate` in 0..100 | `spec.rollout.analysis.successRate` | `Percent` |
//! | `gpu.count` in 1..16 | `spec.gpu.count` | `GpuCount` |
//! | `gpu.type` keys in the catalog, not an empty list | `spec.gpu.type` | `UnknownGpuType`, `Empty` |
//! | `partition` and `shared` not both | `spec.gpu.partition` | `PartitionAndShared` |
//! | `shm` only with `gpu` | | structural: `shm` is a field of `gpu` |
//! | `model.uri` scheme known and well-formed (`pvc://<claim>/<path>`) | `spec.model.uri` | `Uri` |
//! | loader schemes need `modelLoader.image` | `spec.model.uri` | `LoaderImageMissing` |
//! | ports in 1..65535 and distinct | `spec.runtime.*port` | `PortZero`, `PortClash` |
//! | env names are C identifiers, not the device plugin's nor modelship's | `spec.runtime.env` | `EnvName`, `EnvReserved`, `EnvFromModel` |
//! | secret, claim and priority class names are RFC 1123 subdomains | several | `ObjectName` |
//! | health and readiness paths start with `/` | `spec.runtime.*Path` | `HttpPath` |
//! | router `gateway-api` needs `traffic.gateway` | `spec.traffic.router`, `spec.traffic.router` of the config | `GatewayMissing` |
//! | hosts are DNS names | `spec.traffic.hosts[i]` | `Hostname` |
//! | `maxUnavailable` >= 0 or a percentage 0%..100% | `spec.disruption.maxUnavailable` | `MaxUnavailable` |
//! | tolerations: known operator and effect | `...tolerations[i]` | `Toleration` |
//! | network peers name a namespace or pod labels | `spec.network.allowFrom[i]` | `EmptyPeer` |
//! | the same namespace/name twice in a repository | `metadata.name` | `Duplicate` (in `load`) |
//! | config: catalog products non-empty | `spec.gpu.catalog.<key>.product` | `Empty` |
//! | config: tenant names RFC 1123 labels and unique; paths and namespaces non-empty, valid globs or names | `spec.tenants[i]` | `TenantName`, `DuplicateTenant`, `Empty`, `Glob`, `Namespace` |
//! | config: service globs valid | `spec.services[i]` | `Glob` |
//! | config: metric names, shared resource name non-empty | `spec.metricNames`, `spec.gpu` | `Empty` |
//! | config: prometheus url is http(s) | `spec.prometheus.url` | `PrometheusUrl` |
//! | config: the preview label is a GitHub label name (1..50 characters, no newline) | `spec.previews.label` | `GithubLabel` |
//! | config: approvers are GitHub logins or `org/team` slugs | `spec.github.approvers` | `Approver` |
//! | config: analysis series are Prometheus metric and label names | `spec.analysis` | `PromName` |
//! | canary analysis needs `prometheus.url` in modelship.yaml | `spec.rollout.analysis` | `PrometheusMissing` |

mod config;
pub mod names;
mod service;

use std::fmt;

use super::node::FieldPath;
use names::NameError;

pub use config::config;
pub use service::service;

/// One broken rule at one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub path: FieldPath,
    /// Report at the key rather than the value (a bad label key, env name...).
    pub at_key: bool,
    pub violation: Violation,
}

/// Every rule a document can break after it deserialized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Violation {
    /// `metadata.name` is not an RFC 1035 label of at most 45 characters.
    #[error("invalid name `{name}`: {reason}")]
    Name { name: String, reason: NameError },
    /// A namespace is not an RFC 1123 label.
    #[error("invalid namespace `{name}`: {reason}")]
    Namespace { name: String, reason: NameError },
    /// A name of another object (Secret, claim, PriorityClass) is not an RFC 1123 subdomain.
    #[error("invalid object name `{name}`: {reason}")]
    ObjectName { name: String, reason: NameError },
    /// A label or annotation key is malformed.
    #[error("invalid key `{key}`: {reason}")]
    LabelKey { key: String, reason: NameError },
    /// A label value is malformed.
    #[error("`{value}` is not a valid label value: {reason}")]
    LabelValue { value: String, reason: NameError },
    /// A service targets a system namespace or one of `protectedNamespaces`.
    #[error("namespace `{0}` is protected: no service may target it")]
    ProtectedNamespace(String),
    /// A spec file that no tenant's `paths` match (modelship.yaml names tenants).
    #[error("{file} is owned by no tenant; tenants' paths: {}", paths.join(", "))]
    NoTenant { file: String, paths: Vec<String> },
    /// A service in a namespace its tenant may not use.
    #[error("tenant {tenant} may not use namespace `{namespace}`; its namespaces: {}", allowed.join(", "))]
    TenantNamespace {
        tenant: String,
        namespace: String,
        allowed: Vec<String>,
    },
    /// A service that does not fit in its tenant's `maxGPUs` (`crate::budget`).
    #[error("tenant {tenant}: {total} GPUs at maximum scale, over maxGPUs {max}")]
    OverBudget {
        tenant: String,
        /// The GPUs of the tenant's services counted before this one, and this one's.
        total: u64,
        max: u32,
        /// This service's GPUs at its peak.
        own: u64,
    },
    /// A tenant name that is not an RFC 1123 label.
    #[error("invalid tenant name `{name}`: {reason}")]
    TenantName { name: String, reason: NameError },
    /// Two tenants with the same name.
    #[error("tenant {0} is named twice")]
    DuplicateTenant(String),
    /// A label or annotation key that modelship sets itself ([`names::reserved_key`]).
    #[error("`{key}` is reserved: modelship sets it on the objects it writes")]
    ReservedKey { key: String },
    /// An image without a tag or digest.
    #[error("image `{0}` has no tag")]
    Untagged(String),
    /// An image tagged `latest`.
    #[error("image `{0}` uses the tag `latest`")]
    Latest(String),
    /// An empty image or one with whitespace.
    #[error("image reference `{0}` is empty or has spaces")]
    EmptyImage(String),
    /// A digest that is not `sha256:` and 64 hex digits.
    #[error("image `{0}` has a malformed digest")]
    BadDigest(String),
    /// A quantity or count that must be above zero.
    #[error("must be greater than zero (found {0})")]
    NotPositive(String),
    /// `cpuLimit` below the cpu request.
    #[error("cpuLimit {limit} is below the cpu request {request}")]
    CpuLimitBelowRequest { limit: String, request: String },
    /// A duration below its minimum.
    #[error("{value} is too short: at least {min}")]
    DurationTooShort { value: String, min: &'static str },
    /// A duration above its maximum.
    #[error("{value} is too long: at most {max}")]
    DurationTooLong { value: String, max: &'static str },
    /// `maxReplicas` is 0.
    #[error("maxReplicas must be at least 1")]
    MaxReplicasZero,
    /// `maxReplicas` below `minReplicas`.
    #[error("maxReplicas {max} is below minReplicas {min}")]
    MaxBelowMin { max: u32, min: u32 },
    /// `minReplicas: 0` without an external metric.
    #[error("minReplicas 0 needs an external metric")]
    ScaleToZero,
    /// `autoscaling.metrics` is empty.
    #[error("at least one metric is required")]
    NoMetrics,
    /// A percentage out of its range.
    #[error("{value} is out of range: expected {range}")]
    Percent { value: String, range: &'static str },
    /// A custom metric selector on a pods metric.
    #[error("selector applies to external metrics only")]
    SelectorNeedsExternal,
    /// A canary rollout without steps.
    #[error("a canary rollout needs steps")]
    StepsMissing,
    /// A canary weight outside 1..100.
    #[error("step {0} is out of range: weights are 1..100")]
    StepOutOfRange(u32),
    /// A canary weight not above the one before it.
    #[error("step {step} does not increase on {previous}: steps must strictly increase")]
    StepNotIncreasing { step: u32, previous: u32 },
    /// Canary steps that do not end at 100.
    #[error("the last step is {0}; steps must end at 100")]
    StepsEndAt100(u32),
    /// A canary-only field with the rolling strategy.
    #[error("`{0}` applies to the canary strategy only")]
    CanaryOnly(&'static str),
    /// A manual gate that is not a step.
    #[error("manual gate {gate} is not one of the steps")]
    GateNotAStep { gate: u32, steps: Vec<u32> },
    /// `gpu.count` outside 1..16.
    #[error("gpu.count {0} is out of range: 1..16")]
    GpuCount(u32),
    /// A `gpu.type` key missing from the catalog.
    #[error("GPU type `{key}` is not in the catalog")]
    UnknownGpuType { key: String, catalog: Vec<String> },
    /// Both `partition` and `shared`.
    #[error("partition and shared cannot be combined")]
    PartitionAndShared,
    /// `model.uri` without `scheme://`.
    #[error("model.uri `{0}` has no scheme")]
    UriNoScheme(String),
    /// `model.uri` with a scheme modelship does not know.
    #[error("unknown model.uri scheme `{0}`")]
    UriScheme(String),
    /// `model.uri` with a known scheme but a malformed rest.
    #[error("malformed model.uri `{uri}`: {reason}")]
    UriMalformed { uri: String, reason: String },
    /// A loader scheme without `modelLoader.image` in modelship.yaml.
    #[error(
        "model.uri scheme `{0}` needs a model loader, and modelship.yaml sets no modelLoader.image"
    )]
    LoaderImageMissing(String),
    /// A port 0.
    #[error("port 0 is not valid: ports are 1..65535")]
    PortZero,
    /// Two ports with the same number.
    #[error("port {port} is also used by {other}")]
    PortClash { port: u16, other: &'static str },
    /// An env name that is not a C identifier.
    #[error("invalid environment variable name `{name}`: {reason}")]
    EnvName { name: String, reason: NameError },
    /// An env name the GPU device plugin owns.
    #[error("`{0}` is set by the GPU device plugin and must not be set here")]
    EnvReserved(String),
    /// An env name modelship sets from `spec.model`.
    #[error("`{0}` is set by modelship from spec.model and must not be set here")]
    EnvFromModel(String),
    /// An HTTP path that does not start with `/`.
    #[error("`{0}` must start with /")]
    HttpPath(String),
    /// Router gateway-api without a gateway in modelship.yaml.
    #[error("router gateway-api needs traffic.gateway in modelship.yaml")]
    GatewayMissing,
    /// A hostname that is not a DNS name.
    #[error("invalid host `{host}`: {reason}")]
    Hostname { host: String, reason: NameError },
    /// A negative or malformed `maxUnavailable`.
    #[error("maxUnavailable `{0}` must be a count >= 0 or a percentage 0%..100%")]
    MaxUnavailable(String),
    /// A toleration with an unknown operator or effect.
    #[error("{field} `{value}` is not one of {allowed}")]
    Toleration {
        field: &'static str,
        value: String,
        allowed: &'static str,
    },
    /// A network peer with neither namespace nor podLabels.
    #[error("an allowFrom entry needs namespace, podLabels or both")]
    EmptyPeer,
    /// Two services with the same namespace and name.
    #[error("service {service} is defined twice")]
    Duplicate {
        service: crate::service_id::ServiceId,
        first: String,
    },
    /// A required text that is empty.
    #[error("must not be empty")]
    Empty,
    /// A service glob that does not parse.
    #[error("invalid glob `{glob}`: {reason}")]
    Glob { glob: String, reason: String },
    /// A Prometheus URL that is not http(s).
    #[error("prometheus url `{0}` must start with http:// or https://")]
    PrometheusUrl(String),
    /// A preview label GitHub cannot hold.
    #[error("`{label}` is not a GitHub label name: {reason}")]
    GithubLabel { label: String, reason: NameError },
    /// An approver that is neither a GitHub login nor an `org/team` slug.
    #[error("approver `{approver}` is not a GitHub login or org/team slug: {reason}")]
    Approver { approver: String, reason: NameError },
    /// A canary analysis without a Prometheus to ask.
    #[error("canary analysis needs prometheus.url in modelship.yaml")]
    PrometheusMissing,
    /// A Prometheus metric or label name that Prometheus would refuse.
    #[error("`{name}` is not a valid Prometheus {kind} name")]
    PromName { kind: &'static str, name: String },
}

impl Violation {
    /// How to fix it, when there is more to say than the message.
    pub fn hint(&self) -> Option<String> {
        let text = match self {
            Violation::Name { .. } => {
                "a name is lowercase letters, digits and '-', starts with a letter and has at \
                 most 45 characters (room for suffixes such as -canary)"
                    .to_string()
            }
            Violation::Untagged(_) | Violation::Latest(_) => {
                "pin a version tag (image:1.2.3) or a digest (image@sha256:...)".to_string()
            }
            Violation::ScaleToZero => {
                "add a `custom: {name: ..., type: external, target: ...}` metric, or set minReplicas >= 1"
                    .to_string()
            }
            Violation::StepsMissing => "for example steps: [10, 25, 50, 100]".to_string(),
            Violation::CanaryOnly(_) => "set strategy: canary, or remove the field".to_string(),
            Violation::GateNotAStep { steps, .. } => format!("steps are {}", join(steps)),
            Violation::UnknownGpuType { key, catalog } if catalog.is_empty() => {
                let _ = key;
                "the GPU catalog in modelship.yaml (spec.gpu.catalog) is empty".to_string()
            }
            Violation::UnknownGpuType { key, catalog } => {
                match super::de::closest(key, catalog.iter().map(String::as_str)) {
                    Some(best) => format!("did you mean {best}?"),
                    None => format!("catalog keys: {}", catalog.join(", ")),
                }
            }
            Violation::UriNoScheme(_) | Violation::UriScheme(_) => {
                format!("known schemes: {}", names::URI_SCHEMES.join(", "))
            }
            Violation::LoaderImageMissing(_) => {
                "set spec.modelLoader.image in modelship.yaml".to_string()
            }
            Violation::EnvFromModel(_) => {
                "MODEL_NAME, MODEL_VERSION and MODEL_PATH come from spec.model.name, \
                 spec.model.version and the model volume"
                    .to_string()
            }
            Violation::ReservedKey { key } if key.starts_with("modelship.dev/") => {
                "modelship.dev/ keys are modelship's bookkeeping; a rollout command is sent \
                 with `modelship rollout approve|abort|retry NAMESPACE/NAME` or a comment \
                 command, never from a spec"
                    .to_string()
            }
            Violation::ReservedKey { .. } => {
                "modelship sets app.kubernetes.io/{managed-by,instance,name,version,component} \
                 from the spec; remove the key, or use another one (app.kubernetes.io/part-of, \
                 team: ...)"
                    .to_string()
            }
            Violation::ProtectedNamespace(_) => {
                "kube-system, kube-public and kube-node-lease are never targets, nor the \
                 namespaces of protectedNamespaces in modelship.yaml (default: modelship, \
                 where modelship runs); choose another namespace"
                    .to_string()
            }
            Violation::NoTenant { .. } => {
                "add the file to a tenant's paths in modelship.yaml, or move it under one"
                    .to_string()
            }
            Violation::TenantNamespace { tenant, .. } => format!(
                "choose one of tenant {tenant}'s namespaces, or widen its namespaces in \
                 modelship.yaml (a change to tenants takes effect when merged)"
            ),
            Violation::OverBudget { own, .. } => format!(
                "this service needs {own} GPUs at its peak (maxReplicas, or replicas, times \
                 gpu.count, canary peak included); services that already run are counted \
                 first, then the rest in path order; lower its scale or raise maxGPUs in \
                 modelship.yaml"
            ),
            Violation::EnvReserved(_) => {
                "the device plugin assigns GPUs; request them with gpu.count".to_string()
            }
            Violation::GatewayMissing => {
                "set spec.traffic.gateway {name, namespace} in modelship.yaml".to_string()
            }
            Violation::Duplicate { first, .. } => format!("first defined at {first}"),
            Violation::Approver { .. } => {
                "a login is letters, digits and single hyphens (at most 39 characters), for \
                 example octocat; a team is org/team-slug"
                    .to_string()
            }
            Violation::PrometheusMissing => {
                "set spec.prometheus.url in modelship.yaml, or remove the analysis".to_string()
            }
            Violation::PromName { kind: "label", .. } => {
                "label names are letters, digits and _, not starting with a digit".to_string()
            }
            Violation::PromName { .. } => {
                "metric names are letters, digits, _ and :, not starting with a digit".to_string()
            }
            Violation::PartitionAndShared => {
                "a MIG partition is a dedicated slice; time-sliced sharing is another mode"
                    .to_string()
            }
            _ => return None,
        };
        Some(text)
    }
}

fn join(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Collects findings while walking a document.
#[derive(Debug, Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn at(&mut self, path: FieldPath, violation: Violation) {
        self.0.push(Finding {
            path,
            at_key: false,
            violation,
        });
    }

    fn at_key(&mut self, path: FieldPath, violation: Violation) {
        self.0.push(Finding {
            path,
            at_key: true,
            violation,
        });
    }

    /// Checks the keys and values of a label map.
    fn labels<'a>(
        &mut self,
        path: &FieldPath,
        labels: impl IntoIterator<Item = (&'a String, &'a String)>,
        check_values: bool,
    ) {
        for (key, value) in labels {
            if let Err(reason) = names::label_key(key) {
                let key_path = path.key(key.clone());
                self.at_key(
                    key_path,
                    Violation::LabelKey {
                        key: key.clone(),
                        reason,
                    },
                );
            }
            if check_values && let Err(reason) = names::label_value(value) {
                self.at(
                    path.key(key.clone()),
                    Violation::LabelValue {
                        value: value.clone(),
                        reason,
                    },
                );
            }
        }
    }

    /// Checks a reference to another object by name.
    fn object_name(&mut self, path: FieldPath, name: &str) {
        if let Err(reason) = names::rfc1123_subdomain(name) {
            self.at(
                path,
                Violation::ObjectName {
                    name: name.to_string(),
                    reason,
                },
            );
        }
    }

    /// Checks an image reference.
    fn image(&mut self, path: FieldPath, image: &str) {
        let text = image.to_string();
        let violation = match names::image(image) {
            Ok(()) => return,
            Err(names::ImageProblem::Empty) => Violation::EmptyImage(text),
            Err(names::ImageProblem::Untagged) => Violation::Untagged(text),
            Err(names::ImageProblem::Latest) => Violation::Latest(text),
            Err(names::ImageProblem::BadDigest) => Violation::BadDigest(text),
        };
        self.at(path, violation);
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.violation)
    }
}
