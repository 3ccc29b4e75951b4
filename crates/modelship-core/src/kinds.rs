//! The one table of the Kubernetes kinds modelship addresses by name: for each, its API
//! group, version and plural, whether it is namespaced, its place in the apply order,
//! and how the live side reads it. Pure data: the cluster layer turns a row into an API
//! resource, nothing here knows a client.
//!
//! ```text
//!                ┌──▶ compile::Kind        (apiVersion, kind, plural of what compile emits)
//!  kinds::TABLE ─┼──▶ meta::kind_order     (apply order; deletes run in reverse)
//!                ├──▶ cluster::Kinds       (built-ins resolved without discovery)
//!                └──▶ live reads, watches  (Builtin always, Custom when served)
//! ```
//!
//! Managed kinds (what compile emits) are [`Live::Builtin`] or [`Live::Custom`]. The rows
//! of [`Live::Unmanaged`] are kinds modelship writes or reads for its own bookkeeping
//! (namespaces it creates, the ConfigMap of pull-request outcomes, rollout Events) or
//! only orders (Secret, PersistentVolumeClaim): they are never listed or watched as a
//! service's object. A kind the table does not hold (Pod, for the leader label) is
//! resolved by discovery and applied last.

/// How the live side (the CLI's LISTs, the daemon's watches) reads a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// Managed and built into every cluster: always listed and watched.
    Builtin,
    /// Managed and defined by a CustomResourceDefinition: listed and watched only when
    /// discovery says the cluster serves it (a cluster that does not is skipped).
    Custom {
        /// What to install when a spec needs the kind and the cluster does not serve it.
        missing: &'static str,
    },
    /// Not managed: built in, never listed or watched as a service's object.
    Unmanaged,
}

/// One row of [`TABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiKind {
    /// API group, empty for the core group.
    pub group: &'static str,
    /// API version within the group (`v1`, `v2`).
    pub version: &'static str,
    /// `apiVersion` as objects spell it: `group/version`, or `version` in the core group.
    pub api_version: &'static str,
    /// `kind` as the API spells it.
    pub kind: &'static str,
    /// The resource name in URLs (`deployments`, `httproutes`).
    pub plural: &'static str,
    /// Whether objects of the kind live in a namespace.
    pub namespaced: bool,
    /// Position in the apply order: lower first, deletes in reverse. What others refer
    /// to comes first (a Deployment names its ServiceAccount; an HPA targets a
    /// Deployment; a route sends traffic to Services that must exist).
    pub order: u8,
    /// How the live side reads it.
    pub live: Live,
}

impl ApiKind {
    /// True for the kinds modelship compiles, plans and prunes.
    pub fn is_managed(&self) -> bool {
        self.live != Live::Unmanaged
    }

    /// True when every cluster serves the kind, so it resolves without discovery.
    pub fn is_builtin(&self) -> bool {
        !matches!(self.live, Live::Custom { .. })
    }

    /// What to install when the cluster does not serve the kind (custom kinds only).
    pub fn missing(&self) -> Option<&'static str> {
        match self.live {
            Live::Custom { missing } => Some(missing),
            Live::Builtin | Live::Unmanaged => None,
        }
    }
}

/// The apply order of kinds the table does not order: after every kind it does.
pub const UNKNOWN_ORDER: u8 = 12;

const GATEWAY_API: &str = "install the Gateway API CRDs or use router replicas";
const ISTIO: &str = "install Istio (its networking CRDs) or use router replicas";
const PROMETHEUS_OPERATOR: &str =
    "install the Prometheus Operator CRDs or set prometheus.podMonitor: false";

/// Namespaces modelship creates (`--create-namespaces`, previews) and reads the labels of.
pub const NAMESPACE: ApiKind = ApiKind {
    group: "",
    version: "v1",
    api_version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    namespaced: false,
    order: 0,
    live: Live::Unmanaged,
};
pub const SERVICE_ACCOUNT: ApiKind = ApiKind {
    group: "",
    version: "v1",
    api_version: "v1",
    kind: "ServiceAccount",
    plural: "serviceaccounts",
    namespaced: true,
    order: 1,
    live: Live::Builtin,
};
pub const SECRET: ApiKind = ApiKind {
    group: "",
    version: "v1",
    api_version: "v1",
    kind: "Secret",
    plural: "secrets",
    namespaced: true,
    order: 2,
    live: Live::Unmanaged,
};
/// The ConfigMap of pull-request outcomes is written through the writer.
pub const CONFIG_MAP: ApiKind = ApiKind {
    group: "",
    version: "v1",
    api_version: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    namespaced: true,
    order: 2,
    live: Live::Unmanaged,
};
pub const PERSISTENT_VOLUME_CLAIM: ApiKind = ApiKind {
    group: "",
    version: "v1",
    api_version: "v1",
    kind: "PersistentVolumeClaim",
    plural: "persistentvolumeclaims",
    namespaced: true,
    order: 3,
    live: Live::Unmanaged,
};
pub const SERVICE: ApiKind = ApiKind {
    group: "",
    version: "v1",
    api_version: "v1",
    kind: "Service",
    plural: "services",
    namespaced: true,
    order: 4,
    live: Live::Builtin,
};
pub const DEPLOYMENT: ApiKind = ApiKind {
    group: "apps",
    version: "v1",
    api_version: "apps/v1",
    kind: "Deployment",
    plural: "deployments",
    namespaced: true,
    order: 5,
    live: Live::Builtin,
};
pub const HORIZONTAL_POD_AUTOSCALER: ApiKind = ApiKind {
    group: "autoscaling",
    version: "v2",
    api_version: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    plural: "horizontalpodautoscalers",
    namespaced: true,
    order: 6,
    live: Live::Builtin,
};
pub const POD_DISRUPTION_BUDGET: ApiKind = ApiKind {
    group: "policy",
    version: "v1",
    api_version: "policy/v1",
    kind: "PodDisruptionBudget",
    plural: "poddisruptionbudgets",
    namespaced: true,
    order: 7,
    live: Live::Builtin,
};
pub const NETWORK_POLICY: ApiKind = ApiKind {
    group: "networking.k8s.io",
    version: "v1",
    api_version: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    plural: "networkpolicies",
    namespaced: true,
    order: 8,
    live: Live::Builtin,
};
/// Before the VirtualService whose subsets it defines.
pub const DESTINATION_RULE: ApiKind = ApiKind {
    group: "networking.istio.io",
    version: "v1",
    api_version: "networking.istio.io/v1",
    kind: "DestinationRule",
    plural: "destinationrules",
    namespaced: true,
    order: 9,
    live: Live::Custom { missing: ISTIO },
};
pub const HTTP_ROUTE: ApiKind = ApiKind {
    group: "gateway.networking.k8s.io",
    version: "v1",
    api_version: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    plural: "httproutes",
    namespaced: true,
    order: 10,
    live: Live::Custom {
        missing: GATEWAY_API,
    },
};
pub const VIRTUAL_SERVICE: ApiKind = ApiKind {
    group: "networking.istio.io",
    version: "v1",
    api_version: "networking.istio.io/v1",
    kind: "VirtualService",
    plural: "virtualservices",
    namespaced: true,
    order: 10,
    live: Live::Custom { missing: ISTIO },
};
pub const POD_MONITOR: ApiKind = ApiKind {
    group: "monitoring.coreos.com",
    version: "v1",
    api_version: "monitoring.coreos.com/v1",
    kind: "PodMonitor",
    plural: "podmonitors",
    namespaced: true,
    order: 11,
    live: Live::Custom {
        missing: PROMETHEUS_OPERATOR,
    },
};
/// Rollout records are Events: created, never applied in order.
pub const EVENT: ApiKind = ApiKind {
    group: "",
    version: "v1",
    api_version: "v1",
    kind: "Event",
    plural: "events",
    namespaced: true,
    order: UNKNOWN_ORDER,
    live: Live::Unmanaged,
};

/// Every kind modelship addresses by name, in apply order. The managed rows, in this
/// order, are exactly `compile::Kind::ALL`; the CLI lists and the daemon watches them in
/// this order.
pub static TABLE: [ApiKind; 15] = [
    NAMESPACE,
    SERVICE_ACCOUNT,
    SECRET,
    CONFIG_MAP,
    PERSISTENT_VOLUME_CLAIM,
    SERVICE,
    DEPLOYMENT,
    HORIZONTAL_POD_AUTOSCALER,
    POD_DISRUPTION_BUDGET,
    NETWORK_POLICY,
    DESTINATION_RULE,
    HTTP_ROUTE,
    VIRTUAL_SERVICE,
    POD_MONITOR,
    EVENT,
];

/// The row of an (`apiVersion`, `kind`) pair.
pub fn find(api_version: &str, kind: &str) -> Option<&'static ApiKind> {
    TABLE
        .iter()
        .find(|row| row.api_version == api_version && row.kind == kind)
}

/// The row of a kind in an API group, whatever its version.
pub fn find_in_group(group: &str, kind: &str) -> Option<&'static ApiKind> {
    TABLE
        .iter()
        .find(|row| row.group == group && row.kind == kind)
}

/// The row of a kind name (kind names are unique in the table).
pub fn find_kind(kind: &str) -> Option<&'static ApiKind> {
    TABLE.iter().find(|row| row.kind == kind)
}

/// The managed kinds, in apply order.
pub fn managed() -> impl Iterator<Item = &'static ApiKind> {
    TABLE.iter().filter(|row| row.is_managed())
}

#[cfg(test)]
mod tests {
    use std::any::TypeId;
    use std::collections::BTreeSet;

    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::core::v1::{
        ConfigMap, Event, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount,
    };
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use k8s_openapi::{NamespaceResourceScope, Resource};

    use super::*;

    /// A row as k8s-openapi describes the type.
    fn openapi<T: Resource>() -> (&'static str, &'static str, &'static str, &'static str, bool)
    where
        T::Scope: 'static,
    {
        (
            T::API_VERSION,
            T::GROUP,
            T::KIND,
            T::URL_PATH_SEGMENT,
            TypeId::of::<T::Scope>() == TypeId::of::<NamespaceResourceScope>(),
        )
    }

    #[test]
    fn built_in_rows_say_what_k8s_openapi_says() {
        let expected = [
            openapi::<Namespace>(),
            openapi::<ServiceAccount>(),
            openapi::<Secret>(),
            openapi::<ConfigMap>(),
            openapi::<PersistentVolumeClaim>(),
            openapi::<Service>(),
            openapi::<Deployment>(),
            openapi::<HorizontalPodAutoscaler>(),
            openapi::<PodDisruptionBudget>(),
            openapi::<NetworkPolicy>(),
            openapi::<Event>(),
        ];
        let builtins: Vec<_> = TABLE
            .iter()
            .filter(|row| row.is_builtin())
            .map(|row| {
                (
                    row.api_version,
                    row.group,
                    row.kind,
                    row.plural,
                    row.namespaced,
                )
            })
            .collect();
        assert_eq!(builtins, expected);
    }

    #[test]
    fn api_version_is_group_slash_version() {
        for row in &TABLE {
            let expected = if row.group.is_empty() {
                row.version.to_string()
            } else {
                format!("{}/{}", row.group, row.version)
            };
            assert_eq!(row.api_version, expected, "{}", row.kind);
        }
    }

    #[test]
    fn the_table_is_in_apply_order() {
        for pair in TABLE.windows(2) {
            assert!(
                pair[0].order <= pair[1].order,
                "{} before {}",
                pair[0].kind,
                pair[1].kind
            );
        }
        assert!(TABLE.iter().all(|row| row.order <= UNKNOWN_ORDER));
    }

    #[test]
    fn no_kind_is_listed_twice() {
        let names: BTreeSet<_> = TABLE.iter().map(|row| row.kind).collect();
        assert_eq!(names.len(), TABLE.len(), "kind names are unique");
        let resources: BTreeSet<_> = TABLE.iter().map(|row| (row.group, row.plural)).collect();
        assert_eq!(resources.len(), TABLE.len(), "resources are unique");
    }

    #[test]
    fn custom_kinds_are_managed_namespaced_and_say_what_to_install() {
        let custom: Vec<_> = TABLE
            .iter()
            .filter(|row| !row.is_builtin())
            .map(|row| row.kind)
            .collect();
        assert_eq!(
            custom,
            [
                "DestinationRule",
                "HTTPRoute",
                "VirtualService",
                "PodMonitor"
            ]
        );
        for row in TABLE.iter().filter(|row| !row.is_builtin()) {
            assert!(row.is_managed() && row.namespaced, "{}", row.kind);
            assert!(row.missing().is_some_and(|m| m.starts_with("install ")));
        }
        assert_eq!(DEPLOYMENT.missing(), None);
    }

    #[test]
    fn lookups_find_rows_by_api_version_group_or_name() {
        assert_eq!(find("apps/v1", "Deployment"), Some(&DEPLOYMENT));
        assert_eq!(find("apps/v2", "Deployment"), None);
        assert_eq!(find("v1", "Deployment"), None);
        assert_eq!(find_in_group("apps", "Deployment"), Some(&DEPLOYMENT));
        assert_eq!(find_in_group("", "Deployment"), None);
        assert_eq!(find_kind("HTTPRoute"), Some(&HTTP_ROUTE));
        assert_eq!(find_kind("Pod"), None);
    }
}
