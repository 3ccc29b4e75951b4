//! The shared vocabulary of every layer: object identity ([`ObjectKey`]), the one apply
//! order of kinds ([`kind_order`], read from [`crate::kinds`]; deletes run in reverse), the
//! labels and annotations
//! modelship puts on what it writes, and its field manager.
//!
//! Compile writes these labels, the plan and the live views read them, the engine writes
//! with [`FIELD_MANAGER`]: each is defined here once, so no two layers can disagree.

use std::fmt;

use serde_json::Value;

/// A service's namespace and name ([`crate::service_id`]).
pub use crate::service_id::ServiceId;

/// A URL as it may be shown (errors, annotations, `/status`, comments): the credentials of
/// a `user:password@` in its authority replaced by `***`, the rest kept. Text that is no
/// URL is handled the same way (`user:pass@host:9090` gives `***@host:9090`).
pub fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// The field manager of every server-side apply modelship makes.
pub const FIELD_MANAGER: &str = "modelship";

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_VERSION: &str = "app.kubernetes.io/version";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// The label every object modelship writes carries, with value [`MANAGED_BY_VALUE`]:
/// the only objects modelship ever updates or prunes.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`LABEL_MANAGED_BY`] on everything modelship owns.
pub const MANAGED_BY_VALUE: &str = "modelship";
/// The label naming the service an object was compiled from.
pub const LABEL_SERVICE: &str = "modelship.dev/service";
pub const LABEL_OWNER: &str = "modelship.dev/owner";
/// `stable` or `canary` on pods and on the track Services.
pub const LABEL_TRACK: &str = "modelship.dev/track";
/// Put on namespaces that `--create-namespaces` created (never pruned).
pub const LABEL_CREATED_BY: &str = "app.kubernetes.io/created-by";
pub const ANNOTATION_SPEC_HASH: &str = "modelship.dev/spec-hash";
/// `<repo>@<commit>:<file>` (`local` outside Git).
pub const ANNOTATION_SOURCE: &str = "modelship.dev/source";
/// The pull-request number on a preview's objects and namespaces. The main reconcile
/// never reads, plans or prunes an object carrying it ([`crate::ownership::Instance::selector`]).
pub const LABEL_PREVIEW: &str = "modelship.dev/preview";
/// `OWNER/NAME` of the pull request's repository, on a preview's namespaces.
pub const ANNOTATION_PREVIEW_REPO: &str = "modelship.dev/preview-repository";

/// Identifies one Kubernetes object: API group, kind, namespace and name.
///
/// The version is not part of the identity: the same object is served under several
/// versions of its group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// API group, empty for the core group (`""` for Service, `apps` for Deployment).
    pub group: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectKey {
    /// Builds a key from parts.
    pub fn new(group: &str, kind: &str, namespace: &str, name: &str) -> Self {
        ObjectKey {
            group: group.to_string(),
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// Reads the key of a JSON object; `None` when `apiVersion`, `kind` or `metadata.name`
    /// is missing.
    pub fn of(object: &Value) -> Option<Self> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        let metadata = object.get("metadata")?;
        let name = metadata.get("name")?.as_str()?;
        let namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        Some(ObjectKey::new(group_of(api_version), kind, namespace, name))
    }

    /// The position of this kind in the apply order (lower first; deletes run in reverse).
    pub fn order(&self) -> u8 {
        kind_order(&self.kind)
    }

    /// The sort key of the apply order: namespace, kind order, kind, name. Compiled
    /// objects, renders and the engine's writes all follow it.
    pub fn apply_order(&self) -> (&str, u8, &str, &str) {
        (&self.namespace, self.order(), &self.kind, &self.name)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// The group part of an `apiVersion` (`apps/v1` -> `apps`, `v1` -> ``).
pub fn group_of(api_version: &str) -> &str {
    api_version
        .rsplit_once('/')
        .map(|(group, _)| group)
        .unwrap_or("")
}

/// The position of a kind in the apply order: what others refer to comes first, deletes
/// run in reverse. Read from [`crate::kinds::TABLE`]; kinds it does not hold go last
/// ([`crate::kinds::UNKNOWN_ORDER`]).
pub fn kind_order(kind: &str) -> u8 {
    crate::kinds::find_kind(kind).map_or(crate::kinds::UNKNOWN_ORDER, |row| row.order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn userinfo_is_never_shown() {
        for (url, shown) in [
            (
                "https://u:p@prom.example:9090/x?a=b@c",
                "https://***@prom.example:9090/x?a=b@c",
            ),
            ("http://prometheus:9090", "http://prometheus:9090"),
            ("http://token@prometheus/p@q", "http://***@prometheus/p@q"),
            ("user:pass@prom:9090", "***@prom:9090"),
        ] {
            assert_eq!(redact_userinfo(url), shown);
        }
    }

    #[test]
    fn key_of_reads_group_kind_namespace_name() {
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "namespace": "ns"}});
        assert_eq!(
            ObjectKey::of(&object),
            Some(ObjectKey::new("apps", "Deployment", "ns", "a"))
        );
        let core = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}});
        assert_eq!(
            ObjectKey::of(&core),
            Some(ObjectKey::new("", "Namespace", "", "ns"))
        );
        assert_eq!(ObjectKey::of(&json!({"kind": "Service"})), None);
    }

    #[test]
    fn apply_order_of_each_kind_is_unchanged() {
        let orders = [
            ("Namespace", 0),
            ("ServiceAccount", 1),
            ("Secret", 2),
            ("ConfigMap", 2),
            ("PersistentVolumeClaim", 3),
            ("Service", 4),
            ("Deployment", 5),
            ("HorizontalPodAutoscaler", 6),
            ("PodDisruptionBudget", 7),
            ("NetworkPolicy", 8),
            ("DestinationRule", 9),
            ("HTTPRoute", 10),
            ("VirtualService", 10),
            ("PodMonitor", 11),
            ("Event", 12),
            ("Pod", 12),
            ("Widget", 12),
        ];
        for (kind, order) in orders {
            assert_eq!(kind_order(kind), order, "{kind}");
        }
    }

    #[test]
    fn apply_order_puts_dependencies_first() {
        let mut kinds = vec![
            "HTTPRoute",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
            "Deployment",
            "Service",
            "ServiceAccount",
            "Namespace",
        ];
        kinds.sort_by_key(|k| kind_order(k));
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "Service",
                "Deployment",
                "HorizontalPodAutoscaler",
                "PodDisruptionBudget",
                "NetworkPolicy",
                "HTTPRoute"
            ]
        );
        assert!(kind_order("DestinationRule") < kind_order("VirtualService"));
        assert!(kind_order("VirtualService") < kind_order("PodMonitor"));
        assert!(kind_order("PodMonitor") < kind_order("SomethingUnknown"));
        assert!(kind_order("Widget") > kind_order("HTTPRoute"));
    }
}
