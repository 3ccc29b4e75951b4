//! The shape of list and map fields of the built-in kinds the sandbox serves, as
//! kube-apiserver's OpenAPI publishes it.
//!
//! Server-side apply and strategic merge patch both need to know, for a field path such as
//! `spec.template.spec.containers[].ports`, whether a list is *associative* (`listType=map`,
//! items identified by key fields), a *set* (`listType=set`, items identified by value) or
//! *atomic* (replaced as a whole), and whether a map is atomic (`structType=atomic` /
//! `mapType=atomic`). This module answers those questions from tables transcribed from the
//! markers of `k8s.io/api` (`+listType`, `+listMapKey`, `+patchMergeKey`,
//! `+patchStrategy`, `+structType`, `+mapType`); each table entry cites the Go field it
//! comes from. The same markers are visible in k8s-openapi's generated `DeepMerge` impls
//! (`merge_strategies::list::map`, `list::set`, `map::atomic`).
//!
//! Data flow: callers build an [`ObjectSchema`] from an object's `apiVersion`/`kind`, then
//! ask it about paths made of [`PathElement`]s (the same elements `fieldset` uses; any
//! list-item element stands for "an item of this list").
//!
//! Lists of built-in kinds without a marker are atomic, as in kube-apiserver (the OpenAPI
//! default). Objects of unknown kinds (CRD objects such as HTTPRoute) have every list atomic
//! and every map granular; only their `metadata` follows `ObjectMeta`, as for CRDs.

use super::fieldset::PathElement;

/// One key field of an associative list, with the default kube-apiserver's OpenAPI gives
/// it (structured-merge-diff uses that default when an item omits the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyField {
    /// JSON name of the key field.
    pub name: &'static str,
    /// Default string value of the key field, if the schema has one.
    pub default: Option<&'static str>,
}

/// How a list field merges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    /// `listType=atomic` (or no marker): replaced as a whole, owned as one leaf.
    Atomic,
    /// `listType=set`: scalar items identified by value (`v:"value"`).
    Set,
    /// `listType=map`: object items identified by their key fields (`k:{...}`).
    Map(&'static [KeyField]),
}

/// How strategic merge patch treats a list field (`patchStrategy` / `patchMergeKey`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchStrategy {
    /// No patch strategy: the patch's list replaces the live list.
    Replace,
    /// `patchStrategy=merge` on a list of scalars: union of values.
    MergePrimitives,
    /// `patchStrategy=merge` with `patchMergeKey`: items merged by this key.
    MergeByKey(&'static str),
}

/// A list rule: its server-side apply type and its strategic-merge-patch strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ListRule {
    list_type: ListType,
    patch: PatchStrategy,
}

const fn key(name: &'static str) -> KeyField {
    KeyField {
        name,
        default: None,
    }
}

const NAME: &[KeyField] = &[key("name")];
const TYPE: &[KeyField] = &[key("type")];
const UID: &[KeyField] = &[key("uid")];
const IP: &[KeyField] = &[key("ip")];
const MOUNT_PATH: &[KeyField] = &[key("mountPath")];
const DEVICE_PATH: &[KeyField] = &[key("devicePath")];
/// `ContainerPort.Protocol` and `ServicePort.Protocol` default to TCP in the OpenAPI.
const TCP: Option<&str> = Some("TCP");
const CONTAINER_PORT: &[KeyField] = &[
    key("containerPort"),
    KeyField {
        name: "protocol",
        default: TCP,
    },
];
const SERVICE_PORT: &[KeyField] = &[
    key("port"),
    KeyField {
        name: "protocol",
        default: TCP,
    },
];
const TOPOLOGY_SPREAD: &[KeyField] = &[key("topologyKey"), key("whenUnsatisfiable")];

/// `listType=map` with `patchStrategy=merge` and `patchMergeKey` = the first key.
const fn map_list(keys: &'static [KeyField]) -> ListRule {
    let patch = match keys {
        [first, ..] => PatchStrategy::MergeByKey(first.name),
        [] => PatchStrategy::Replace,
    };
    ListRule {
        list_type: ListType::Map(keys),
        patch,
    }
}

/// A built-in kind the schema knows, by API group and kind (versions share the shape for
/// the fields we track).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    /// apps Deployment, ReplicaSet, StatefulSet, DaemonSet: pod template at `spec.template`.
    Workload,
    /// core Pod: pod spec at `spec`.
    Pod,
    /// core Service.
    Service,
    /// core ServiceAccount.
    ServiceAccount,
    /// autoscaling HorizontalPodAutoscaler.
    Hpa,
    /// policy PodDisruptionBudget.
    Pdb,
    /// networking.k8s.io NetworkPolicy.
    NetworkPolicy,
    /// core Namespace.
    Namespace,
    /// admissionregistration.k8s.io ValidatingAdmissionPolicy.
    Vap,
    /// admissionregistration.k8s.io ValidatingAdmissionPolicyBinding.
    VapBinding,
    /// Kinds without associative lists: ConfigMap, Secret, Lease.
    Plain,
}

/// The merge schema of one object type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectSchema {
    known: Option<Known>,
}

/// Splits `apiVersion` into its group ("" for the core group).
fn group_of(api_version: &str) -> &str {
    match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

impl ObjectSchema {
    /// The schema of objects of `apiVersion`/`kind`.
    pub fn for_type(api_version: &str, kind: &str) -> Self {
        let known = match (group_of(api_version), kind) {
            ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
                Some(Known::Workload)
            }
            ("", "Pod") => Some(Known::Pod),
            ("", "Service") => Some(Known::Service),
            ("", "ServiceAccount") => Some(Known::ServiceAccount),
            ("", "Namespace") => Some(Known::Namespace),
            ("", "ConfigMap" | "Secret") => Some(Known::Plain),
            ("coordination.k8s.io", "Lease") => Some(Known::Plain),
            ("autoscaling", "HorizontalPodAutoscaler") => Some(Known::Hpa),
            ("policy", "PodDisruptionBudget") => Some(Known::Pdb),
            ("networking.k8s.io", "NetworkPolicy") => Some(Known::NetworkPolicy),
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => Some(Known::Vap),
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
                Some(Known::VapBinding)
            }
            _ => None,
        };
        Self { known }
    }

    /// The schema of `obj`, from its `apiVersion` and `kind` (unknown when absent).
    pub fn for_object(obj: &serde_json::Value) -> Self {
        let field = |name: &str| obj.get(name).and_then(|v| v.as_str()).unwrap_or("");
        Self::for_type(field("apiVersion"), field("kind"))
    }

    /// Whether the kind is a built-in kind this schema describes (strategic merge patch is
    /// only defined for those).
    pub fn is_known(&self) -> bool {
        self.known.is_some()
    }

    /// Whether the kind has a `status` subresource, so that writes to the main resource
    /// (and applied configurations) ignore `status`.
    pub fn has_status_subresource(&self) -> bool {
        matches!(
            self.known,
            Some(
                Known::Workload
                    | Known::Pod
                    | Known::Service
                    | Known::Hpa
                    | Known::Pdb
                    | Known::Namespace
                    | Known::Vap
            )
        )
    }

    /// The server-side apply type of the list at `path`.
    pub fn list_type(&self, path: &[PathElement]) -> ListType {
        self.list_rule(path).list_type
    }

    /// The strategic-merge-patch strategy of the list at `path`.
    pub fn patch_strategy(&self, path: &[PathElement]) -> PatchStrategy {
        self.list_rule(path).patch
    }

    /// Whether the map at `path` is atomic (replaced and owned as a whole).
    pub fn is_atomic_map(&self, path: &[PathElement]) -> bool {
        if self.known.is_none() {
            return false;
        }
        let dotted = dotted(path);
        let last = dotted.rsplit('.').next().unwrap_or("");
        // LabelSelector (`+structType=atomic`, apimachinery meta/v1 types.go), used by
        // Deployment/PDB `spec.selector`, NetworkPolicy `podSelector`/`namespaceSelector`,
        // topologySpreadConstraints `labelSelector`, VAP `namespaceSelector`/`objectSelector`;
        // ServiceSpec.Selector and PodSpec.NodeSelector (`+mapType=atomic`);
        // ConfigMapKeySelector, SecretKeySelector, ObjectFieldSelector,
        // ResourceFieldSelector (`+structType=atomic`, core/v1 types.go).
        const ATOMIC_BY_NAME: &[&str] = &[
            "selector",
            "podSelector",
            "namespaceSelector",
            "objectSelector",
            "labelSelector",
            "nodeSelector",
            "configMapKeyRef",
            "secretKeyRef",
            "fieldRef",
            "resourceFieldRef",
        ];
        // NodeSelector (`+structType=atomic`): nodeAffinity.requiredDuringScheduling...
        ATOMIC_BY_NAME.contains(&last)
            || dotted.ends_with("nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution")
    }

    fn list_rule(&self, path: &[PathElement]) -> ListRule {
        const ATOMIC: ListRule = ListRule {
            list_type: ListType::Atomic,
            patch: PatchStrategy::Replace,
        };
        let dotted = dotted(path);
        if let Some(rule) = metadata_rule(&dotted) {
            return rule;
        }
        let Some(known) = self.known else {
            return ATOMIC;
        };
        let pod_prefix = match known {
            Known::Workload => Some("spec.template.spec."),
            Known::Pod => Some("spec."),
            _ => None,
        };
        if let Some(rest) = pod_prefix.and_then(|p| dotted.strip_prefix(p))
            && let Some(rule) = pod_spec_rule(rest)
        {
            return rule;
        }
        kind_rule(known, &dotted).unwrap_or(ATOMIC)
    }
}

/// Renders a path as `a.b[].c` (any list item element becomes `[]`).
fn dotted(path: &[PathElement]) -> String {
    let mut out = String::new();
    for element in path {
        match element {
            PathElement::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            _ => out.push_str("[]"),
        }
    }
    out
}

/// ObjectMeta lists, at the object's and at a pod template's metadata.
fn metadata_rule(dotted: &str) -> Option<ListRule> {
    let rest = dotted
        .strip_prefix("metadata.")
        .or_else(|| dotted.strip_prefix("spec.template.metadata."))?;
    match rest {
        // ObjectMeta.OwnerReferences: +patchMergeKey=uid +patchStrategy=merge
        // +listType=map +listMapKey=uid
        "ownerReferences" => Some(map_list(UID)),
        // ObjectMeta.Finalizers: +patchStrategy=merge +listType=set
        "finalizers" => Some(ListRule {
            list_type: ListType::Set,
            patch: PatchStrategy::MergePrimitives,
        }),
        _ => None,
    }
}

/// PodSpec and Container lists, relative to the pod spec.
fn pod_spec_rule(rest: &str) -> Option<ListRule> {
    for containers in [
        "containers[].",
        "initContainers[].",
        "ephemeralContainers[].",
    ] {
        if let Some(field) = rest.strip_prefix(containers) {
            return container_rule(field);
        }
    }
    match rest {
        // PodSpec.Containers, InitContainers, EphemeralContainers: +patchMergeKey=name
        // +patchStrategy=merge +listType=map +listMapKey=name
        "containers" | "initContainers" | "ephemeralContainers" => Some(map_list(NAME)),
        // PodSpec.Volumes: +patchMergeKey=name +patchStrategy=merge,retainKeys
        // +listType=map +listMapKey=name
        "volumes" => Some(map_list(NAME)),
        // PodSpec.ImagePullSecrets, SchedulingGates, ResourceClaims: +patchMergeKey=name
        // +patchStrategy=merge +listType=map +listMapKey=name
        "imagePullSecrets" | "schedulingGates" | "resourceClaims" => Some(map_list(NAME)),
        // PodSpec.HostAliases: +patchMergeKey=ip +patchStrategy=merge +listType=map
        // +listMapKey=ip
        "hostAliases" => Some(map_list(IP)),
        // PodSpec.TopologySpreadConstraints: +patchMergeKey=topologyKey
        // +patchStrategy=merge +listType=map +listMapKey=topologyKey
        // +listMapKey=whenUnsatisfiable
        "topologySpreadConstraints" => Some(map_list(TOPOLOGY_SPREAD)),
        // Tolerations, ReadinessGates, affinity terms, dnsConfig lists: +listType=atomic
        _ => None,
    }
}

/// Container lists, relative to one container.
fn container_rule(field: &str) -> Option<ListRule> {
    match field {
        // Container.Ports: +patchMergeKey=containerPort +patchStrategy=merge
        // +listType=map +listMapKey=containerPort +listMapKey=protocol
        "ports" => Some(map_list(CONTAINER_PORT)),
        // Container.Env: +patchMergeKey=name +patchStrategy=merge +listType=map
        // +listMapKey=name
        "env" => Some(map_list(NAME)),
        // Container.VolumeMounts: +patchMergeKey=mountPath +patchStrategy=merge
        // +listType=map +listMapKey=mountPath
        "volumeMounts" => Some(map_list(MOUNT_PATH)),
        // Container.VolumeDevices: +patchMergeKey=devicePath +patchStrategy=merge
        // +listType=map +listMapKey=devicePath
        "volumeDevices" => Some(map_list(DEVICE_PATH)),
        // ResourceRequirements.Claims: +listType=map +listMapKey=name
        "resources.claims" => Some(ListRule {
            list_type: ListType::Map(NAME),
            patch: PatchStrategy::Replace,
        }),
        // Command, Args, EnvFrom, ResizePolicy: +listType=atomic
        _ => None,
    }
}

/// Lists specific to one kind, by full dotted path.
fn kind_rule(known: Known, dotted: &str) -> Option<ListRule> {
    match (known, dotted) {
        // DeploymentStatus.Conditions, HorizontalPodAutoscalerStatus.Conditions (v2),
        // PodDisruptionBudgetStatus.Conditions, NamespaceStatus.Conditions,
        // ServiceStatus.Conditions, ValidatingAdmissionPolicyStatus.Conditions,
        // PodStatus.Conditions: +patchMergeKey=type +patchStrategy=merge +listType=map
        // +listMapKey=type
        (
            Known::Workload
            | Known::Hpa
            | Known::Pdb
            | Known::Namespace
            | Known::Service
            | Known::Vap
            | Known::Pod,
            "status.conditions",
        ) => Some(map_list(TYPE)),
        // ServiceSpec.Ports: +patchMergeKey=port +patchStrategy=merge +listType=map
        // +listMapKey=port +listMapKey=protocol
        (Known::Service, "spec.ports") => Some(map_list(SERVICE_PORT)),
        // ServiceAccount.Secrets: +patchMergeKey=name +patchStrategy=merge +listType=map
        // +listMapKey=name (ImagePullSecrets is +listType=atomic)
        (Known::ServiceAccount, "secrets") => Some(map_list(NAME)),
        // ValidatingAdmissionPolicySpec.Variables and MatchConditions: +patchMergeKey=name
        // +patchStrategy=merge +listType=map +listMapKey=name (Validations and
        // AuditAnnotations are +listType=atomic)
        (Known::Vap, "spec.variables" | "spec.matchConditions") => Some(map_list(NAME)),
        // ValidatingAdmissionPolicyBindingSpec.ValidationActions: +listType=set
        (Known::VapBinding, "spec.validationActions") => Some(ListRule {
            list_type: ListType::Set,
            patch: PatchStrategy::Replace,
        }),
        // HPA metrics and behavior policies, NetworkPolicy ingress/egress/policyTypes and
        // their peers and ports, Namespace spec.finalizers: +listType=atomic
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(dotted: &str) -> Vec<PathElement> {
        let mut out = Vec::new();
        for part in dotted.split('.') {
            match part.strip_suffix("[]") {
                Some(name) => {
                    out.push(PathElement::Field(name.to_string()));
                    out.push(PathElement::Index(0));
                }
                None => out.push(PathElement::Field(part.to_string())),
            }
        }
        out
    }

    #[test]
    fn list_types_follow_the_api_markers() {
        let deployment = ObjectSchema::for_type("apps/v1", "Deployment");
        let service = ObjectSchema::for_type("v1", "Service");
        let route = ObjectSchema::for_type("gateway.networking.k8s.io/v1", "HTTPRoute");
        let binding = ObjectSchema::for_type(
            "admissionregistration.k8s.io/v1",
            "ValidatingAdmissionPolicyBinding",
        );
        let cases: &[(&ObjectSchema, &str, ListType)] = &[
            (
                &deployment,
                "spec.template.spec.containers",
                ListType::Map(NAME),
            ),
            (
                &deployment,
                "spec.template.spec.initContainers",
                ListType::Map(NAME),
            ),
            (
                &deployment,
                "spec.template.spec.containers[].ports",
                ListType::Map(CONTAINER_PORT),
            ),
            (
                &deployment,
                "spec.template.spec.containers[].env",
                ListType::Map(NAME),
            ),
            (
                &deployment,
                "spec.template.spec.containers[].volumeMounts",
                ListType::Map(MOUNT_PATH),
            ),
            (
                &deployment,
                "spec.template.spec.containers[].command",
                ListType::Atomic,
            ),
            (
                &deployment,
                "spec.template.spec.containers[].envFrom",
                ListType::Atomic,
            ),
            (
                &deployment,
                "spec.template.spec.volumes",
                ListType::Map(NAME),
            ),
            (
                &deployment,
                "spec.template.spec.tolerations",
                ListType::Atomic,
            ),
            (
                &deployment,
                "spec.template.spec.topologySpreadConstraints",
                ListType::Map(TOPOLOGY_SPREAD),
            ),
            (
                &deployment,
                "spec.template.spec.hostAliases",
                ListType::Map(IP),
            ),
            (&deployment, "metadata.finalizers", ListType::Set),
            (&deployment, "metadata.ownerReferences", ListType::Map(UID)),
            (&deployment, "status.conditions", ListType::Map(TYPE)),
            (&service, "spec.ports", ListType::Map(SERVICE_PORT)),
            (&service, "spec.ipFamilies", ListType::Atomic),
            (&route, "spec.rules", ListType::Atomic),
            (&route, "metadata.finalizers", ListType::Set),
            (&binding, "spec.validationActions", ListType::Set),
        ];
        for (schema, at, want) in cases {
            assert_eq!(schema.list_type(&path(at)), *want, "{at}");
        }
    }

    #[test]
    fn patch_strategies_follow_the_api_markers() {
        let deployment = ObjectSchema::for_type("apps/v1", "Deployment");
        let cases = [
            (
                "spec.template.spec.containers",
                PatchStrategy::MergeByKey("name"),
            ),
            (
                "spec.template.spec.containers[].ports",
                PatchStrategy::MergeByKey("containerPort"),
            ),
            (
                "spec.template.spec.containers[].args",
                PatchStrategy::Replace,
            ),
            ("metadata.finalizers", PatchStrategy::MergePrimitives),
        ];
        for (at, want) in cases {
            assert_eq!(deployment.patch_strategy(&path(at)), want, "{at}");
        }
    }

    #[test]
    fn atomic_maps_are_known_for_built_in_kinds_only() {
        let deployment = ObjectSchema::for_type("apps/v1", "Deployment");
        let route = ObjectSchema::for_type("gateway.networking.k8s.io/v1", "HTTPRoute");
        assert!(deployment.is_atomic_map(&path("spec.selector")));
        assert!(!deployment.is_atomic_map(&path("spec.template.metadata.labels")));
        assert!(!route.is_atomic_map(&path("spec.selector")));
        assert!(deployment.has_status_subresource());
        assert!(!ObjectSchema::for_type("v1", "ConfigMap").has_status_subresource());
    }
}
