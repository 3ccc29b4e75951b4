//! The resource registry: which kinds the sandbox serves, and where.
//!
//! A [`ResourceType`] describes one resource (group, versions, plural, kind, scope,
//! subresources, short names). The [`Registry`] starts with the built-in kinds modelship
//! uses and grows or shrinks as CustomResourceDefinitions are created and deleted
//! ([`Registry::register_crd`], [`Registry::unregister_crd`]). Discovery documents
//! (`discovery.rs`) and request routing (`server.rs`) both read from it, so a kind is
//! either fully served or not at all.

use serde_json::Value;
use std::cmp::Ordering;

/// Verbs every served resource answers.
pub const VERBS: [&str; 7] = [
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// Errors turning a CRD object into a [`ResourceType`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// A required CRD field is missing or empty.
    #[error("spec.{0}: Required value")]
    MissingField(&'static str),
    /// `spec.scope` is neither `Namespaced` nor `Cluster`.
    #[error(
        "spec.scope: Unsupported value: \"{0}\": supported values: \"Cluster\", \"Namespaced\""
    )]
    BadScope(String),
    /// The CRD name is not `<plural>.<group>`.
    #[error("metadata.name: Invalid value: \"{0}\": must be spec.names.plural+\".\"+spec.group")]
    BadName(String),
    /// A CRD of a protected group (`k8s.io`, `kubernetes.io` and their subdomains) without
    /// the approval annotation, which kube-apiserver refuses (KEP 1111).
    #[error(
        "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111"
    )]
    NotApproved,
}

impl RegistryError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            RegistryError::MissingField(_) => "crd_missing_field",
            RegistryError::BadScope(_) => "crd_scope",
            RegistryError::BadName(_) => "crd_name",
            RegistryError::NotApproved => "crd_not_approved",
        }
    }
}

/// Whether kube-apiserver reserves `group` for APIs reviewed by the Kubernetes project.
fn is_protected_group(group: &str) -> bool {
    ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|g| group == *g || group.ends_with(&format!(".{g}")))
}

/// One served resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; "" for the core group.
    pub group: String,
    /// Served versions, preferred first.
    pub versions: Vec<String>,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Plural resource name used in URLs, e.g. `deployments`.
    pub plural: String,
    /// Lower-case singular name.
    pub singular: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names for kubectl (`deploy`).
    pub short_names: Vec<String>,
    /// Categories for kubectl (`all`).
    pub categories: Vec<String>,
    /// Whether a `/status` subresource exists (main-resource writes then ignore status).
    pub status_subresource: bool,
    /// Whether a `/scale` subresource exists.
    pub scale_subresource: bool,
    /// Whether the kind comes from a CRD (no strategic merge patch then).
    pub custom: bool,
}

impl ResourceType {
    /// Whether kube-apiserver keeps `metadata.generation` for this kind: its strategy sets
    /// 1 on create and counts spec changes. Custom resources and CRDs do, and of the
    /// built-in kinds served here the workload and policy kinds (measured against
    /// kube-apiserver v1.37.2); namespaces, serviceaccounts, configmaps, secrets, services,
    /// events and leases carry none.
    pub fn has_generation(&self) -> bool {
        self.custom
            || matches!(
                (self.group.as_str(), self.plural.as_str()),
                ("apps", _)
                    | ("autoscaling", "horizontalpodautoscalers")
                    | ("policy", "poddisruptionbudgets")
                    | ("networking.k8s.io", "networkpolicies")
                    | ("admissionregistration.k8s.io", _)
                    | ("apiextensions.k8s.io", "customresourcedefinitions")
            )
    }

    /// Whether `version` of this resource is served.
    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    /// `group/version` or `version` for the core group.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    /// Kind qualified by group as in validation messages (`Deployment.apps`).
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// The set of served resources.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<ResourceType>,
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    status: bool,
    scale: bool,
}

#[rustfmt::skip]
const BUILTINS: &[Builtin] = &[
    Builtin { group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: false, short: &["ns"], all: false, status: true, scale: false },
    Builtin { group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts", namespaced: true, short: &["sa"], all: false, status: false, scale: false },
    Builtin { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true, short: &["cm"], all: false, status: false, scale: false },
    Builtin { group: "", version: "v1", kind: "Secret", plural: "secrets", namespaced: true, short: &[], all: false, status: false, scale: false },
    Builtin { group: "", version: "v1", kind: "Service", plural: "services", namespaced: true, short: &["svc"], all: true, status: true, scale: false },
    Builtin { group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true, short: &["po"], all: true, status: true, scale: false },
    Builtin { group: "", version: "v1", kind: "Event", plural: "events", namespaced: true, short: &["ev"], all: false, status: false, scale: false },
    Builtin { group: "", version: "v1", kind: "ResourceQuota", plural: "resourcequotas", namespaced: true, short: &["quota"], all: false, status: true, scale: false },
    Builtin { group: "", version: "v1", kind: "LimitRange", plural: "limitranges", namespaced: true, short: &["limits"], all: false, status: false, scale: false },
    Builtin { group: "apps", version: "v1", kind: "Deployment", plural: "deployments", namespaced: true, short: &["deploy"], all: true, status: true, scale: true },
    Builtin { group: "autoscaling", version: "v2", kind: "HorizontalPodAutoscaler", plural: "horizontalpodautoscalers", namespaced: true, short: &["hpa"], all: true, status: true, scale: false },
    Builtin { group: "policy", version: "v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets", namespaced: true, short: &["pdb"], all: false, status: true, scale: false },
    Builtin { group: "networking.k8s.io", version: "v1", kind: "NetworkPolicy", plural: "networkpolicies", namespaced: true, short: &["netpol"], all: false, status: false, scale: false },
    Builtin { group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", namespaced: true, short: &[], all: false, status: false, scale: false },
    Builtin { group: "events.k8s.io", version: "v1", kind: "Event", plural: "events", namespaced: true, short: &["ev"], all: false, status: false, scale: false },
    Builtin { group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingAdmissionPolicy", plural: "validatingadmissionpolicies", namespaced: false, short: &[], all: false, status: true, scale: false },
    Builtin { group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingAdmissionPolicyBinding", plural: "validatingadmissionpolicybindings", namespaced: false, short: &[], all: false, status: false, scale: false },
    Builtin { group: "apiextensions.k8s.io", version: "v1", kind: "CustomResourceDefinition", plural: "customresourcedefinitions", namespaced: false, short: &["crd", "crds"], all: false, status: true, scale: false },
];

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The built-in kinds, no CRDs.
    pub fn builtin() -> Self {
        let types = BUILTINS
            .iter()
            .map(|b| ResourceType {
                group: b.group.into(),
                versions: vec![b.version.into()],
                kind: b.kind.into(),
                plural: b.plural.into(),
                singular: b.kind.to_lowercase(),
                namespaced: b.namespaced,
                short_names: b.short.iter().map(|s| s.to_string()).collect(),
                categories: if b.all { vec!["all".into()] } else { vec![] },
                status_subresource: b.status,
                scale_subresource: b.scale,
                custom: false,
            })
            .collect();
        Self { types }
    }

    /// All served resources, in registration order.
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The resource served at `group/version/plural`, if any.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural && t.serves(version))
    }

    /// The resource of `group` with `kind`, whatever the version.
    pub fn find_kind(&self, group: &str, kind: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind)
    }

    /// Groups in serving order with their versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) => {
                    for v in &t.versions {
                        if !versions.contains(v) {
                            versions.push(v.clone());
                        }
                    }
                    versions.sort_by(|a, b| version_priority(a, b));
                }
                None => groups.push((t.group.clone(), t.versions.clone())),
            }
        }
        groups
    }

    /// Registers (or replaces) the kind a CRD object defines.
    pub fn register_crd(&mut self, crd: &Value) -> Result<ResourceType, RegistryError> {
        let rt = crd_resource_type(crd)?;
        self.types
            .retain(|t| !(t.custom && t.group == rt.group && t.plural == rt.plural));
        self.types.push(rt.clone());
        Ok(rt)
    }

    /// Removes the kind a CRD object defined; returns it if it was registered.
    pub fn unregister_crd(&mut self, crd: &Value) -> Option<ResourceType> {
        let rt = crd_resource_type(crd).ok()?;
        let pos = self
            .types
            .iter()
            .position(|t| t.custom && t.group == rt.group && t.plural == rt.plural)?;
        Some(self.types.remove(pos))
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn str_list(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the resource a CRD defines (validating the fields routing needs).
pub fn crd_resource_type(crd: &Value) -> Result<ResourceType, RegistryError> {
    let group = str_at(crd, "/spec/group").ok_or(RegistryError::MissingField("group"))?;
    let plural =
        str_at(crd, "/spec/names/plural").ok_or(RegistryError::MissingField("names.plural"))?;
    let kind = str_at(crd, "/spec/names/kind").ok_or(RegistryError::MissingField("names.kind"))?;
    let name = str_at(crd, "/metadata/name").unwrap_or_default();
    if name != format!("{plural}.{group}") {
        return Err(RegistryError::BadName(name.to_string()));
    }
    let approved = str_at(crd, "/metadata/annotations/api-approved.kubernetes.io")
        .is_some_and(|a| !a.is_empty());
    if is_protected_group(group) && !approved {
        return Err(RegistryError::NotApproved);
    }
    let namespaced = match str_at(crd, "/spec/scope") {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        Some(other) => return Err(RegistryError::BadScope(other.to_string())),
        None => return Err(RegistryError::MissingField("scope")),
    };
    let version_list = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let served: Vec<&Value> = version_list
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
        .collect();
    let mut versions: Vec<String> = served
        .iter()
        .filter_map(|v| str_at(v, "/name").map(String::from))
        .collect();
    if versions.is_empty() {
        return Err(RegistryError::MissingField("versions"));
    }
    versions.sort_by(|a, b| version_priority(a, b));
    let status_subresource = served
        .iter()
        .any(|v| v.pointer("/subresources/status").is_some());
    let scale_subresource = served
        .iter()
        .any(|v| v.pointer("/subresources/scale").is_some());
    Ok(ResourceType {
        group: group.into(),
        versions,
        kind: kind.into(),
        plural: plural.into(),
        singular: str_at(crd, "/spec/names/singular")
            .map(String::from)
            .unwrap_or_else(|| kind.to_lowercase()),
        namespaced,
        short_names: str_list(crd, "/spec/names/shortNames"),
        categories: str_list(crd, "/spec/names/categories"),
        status_subresource,
        scale_subresource,
        custom: true,
    })
}

/// Orders versions as Kubernetes does: GA before beta before alpha, higher numbers
/// first, anything else last in lexical order.
pub fn version_priority(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u8, u64, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((3, major, 0));
        }
        let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
            (2, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (1, n)
        } else {
            return None;
        };
        Some((level, major, num.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(scope: &str) -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": { "name": "widgets.example.com" },
            "spec": {
                "group": "example.com",
                "scope": scope,
                "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"] },
                "versions": [
                    { "name": "v1beta1", "served": true, "storage": false },
                    { "name": "v1", "served": true, "storage": true, "subresources": { "status": {} } },
                    { "name": "v2alpha1", "served": false, "storage": false }
                ]
            }
        })
    }

    #[test]
    fn builtins_are_found_by_group_version_plural() {
        let r = Registry::builtin();
        let d = r.find("apps", "v1", "deployments").map(|t| t.kind.as_str());
        assert_eq!(d, Some("Deployment"));
        assert!(r.find("apps", "v2", "deployments").is_none());
        assert!(
            r.find("", "v1", "namespaces")
                .is_some_and(|t| !t.namespaced)
        );
        // Pods are stored (a daemon labels its own), with kubectl's short name.
        let pods = r.find("", "v1", "pods").expect("pods served");
        assert!(pods.namespaced && pods.short_names == ["po"]);
    }

    #[test]
    fn crd_registration_round_trips() {
        let mut r = Registry::builtin();
        let rt = r.register_crd(&crd("Namespaced")).expect("valid crd");
        assert_eq!(rt.versions, vec!["v1", "v1beta1"]);
        assert!(rt.status_subresource && rt.namespaced && rt.custom);
        assert!(r.find("example.com", "v1beta1", "widgets").is_some());
        assert!(r.find("example.com", "v2alpha1", "widgets").is_none());
        assert!(r.unregister_crd(&crd("Namespaced")).is_some());
        assert!(r.find("example.com", "v1", "widgets").is_none());
    }

    #[test]
    fn crd_with_bad_scope_is_rejected() {
        let err = crd_resource_type(&crd("Galaxy")).unwrap_err();
        assert_eq!(err, RegistryError::BadScope("Galaxy".into()));
    }

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1alpha1", "foo", "v2", "v1beta2", "v1", "v1beta1"];
        v.sort_by(|a, b| version_priority(a, b));
        assert_eq!(v, vec!["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }
}
