//! The compiled objects: one enum over every kind modelship emits, the kind order objects
//! are applied in, and the key that identifies an object in a cluster.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::CompileError;
use super::crd::{DestinationRule, HttpRoute, PodMonitor, VirtualService};

/// Every kind modelship emits, declared in apply order: what others depend on first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    ServiceAccount,
    Service,
    Deployment,
    HorizontalPodAutoscaler,
    PodDisruptionBudget,
    NetworkPolicy,
    HttpRoute,
    VirtualService,
    DestinationRule,
    PodMonitor,
}

impl Kind {
    /// Every kind, in apply order.
    pub const ALL: [Kind; 10] = [
        Kind::ServiceAccount,
        Kind::Service,
        Kind::Deployment,
        Kind::HorizontalPodAutoscaler,
        Kind::PodDisruptionBudget,
        Kind::NetworkPolicy,
        Kind::HttpRoute,
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::PodMonitor,
    ];

    /// `apiVersion` of the kind.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::ServiceAccount | Kind::Service => "v1",
            Kind::Deployment => "apps/v1",
            Kind::HorizontalPodAutoscaler => "autoscaling/v2",
            Kind::PodDisruptionBudget => "policy/v1",
            Kind::NetworkPolicy => "networking.k8s.io/v1",
            Kind::HttpRoute => "gateway.networking.k8s.io/v1",
            Kind::VirtualService | Kind::DestinationRule => "networking.istio.io/v1",
            Kind::PodMonitor => "monitoring.coreos.com/v1",
        }
    }

    /// `kind` as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ServiceAccount => "ServiceAccount",
            Kind::Service => "Service",
            Kind::Deployment => "Deployment",
            Kind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
            Kind::PodDisruptionBudget => "PodDisruptionBudget",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::HttpRoute => "HTTPRoute",
            Kind::VirtualService => "VirtualService",
            Kind::DestinationRule => "DestinationRule",
            Kind::PodMonitor => "PodMonitor",
        }
    }

    /// The resource name in URLs (`deployments`, `httproutes`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::ServiceAccount => "serviceaccounts",
            Kind::Service => "services",
            Kind::Deployment => "deployments",
            Kind::HorizontalPodAutoscaler => "horizontalpodautoscalers",
            Kind::PodDisruptionBudget => "poddisruptionbudgets",
            Kind::NetworkPolicy => "networkpolicies",
            Kind::HttpRoute => "httproutes",
            Kind::VirtualService => "virtualservices",
            Kind::DestinationRule => "destinationrules",
            Kind::PodMonitor => "podmonitors",
        }
    }

    /// The kind for an (apiVersion, kind) pair, if modelship emits it.
    pub fn from_api(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.api_version() == api_version && k.as_str() == kind)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies an object in a cluster. Orders as objects are applied: namespace, kind
/// order, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub kind: Kind,
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.kind, self.name)
    }
}

/// One compiled object. Variants are boxed: the typed objects are large (a Deployment is
/// over 2 KiB) and a repository holds thousands of them.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    ServiceAccount(Box<ServiceAccount>),
    Deployment(Box<Deployment>),
    Service(Box<Service>),
    HorizontalPodAutoscaler(Box<HorizontalPodAutoscaler>),
    PodDisruptionBudget(Box<PodDisruptionBudget>),
    NetworkPolicy(Box<NetworkPolicy>),
    HttpRoute(Box<HttpRoute>),
    VirtualService(Box<VirtualService>),
    DestinationRule(Box<DestinationRule>),
    PodMonitor(Box<PodMonitor>),
}

impl Object {
    /// The kind of the object.
    pub fn kind(&self) -> Kind {
        match self {
            Object::ServiceAccount(_) => Kind::ServiceAccount,
            Object::Deployment(_) => Kind::Deployment,
            Object::Service(_) => Kind::Service,
            Object::HorizontalPodAutoscaler(_) => Kind::HorizontalPodAutoscaler,
            Object::PodDisruptionBudget(_) => Kind::PodDisruptionBudget,
            Object::NetworkPolicy(_) => Kind::NetworkPolicy,
            Object::HttpRoute(_) => Kind::HttpRoute,
            Object::VirtualService(_) => Kind::VirtualService,
            Object::DestinationRule(_) => Kind::DestinationRule,
            Object::PodMonitor(_) => Kind::PodMonitor,
        }
    }

    /// `apiVersion` of the object.
    pub fn api_version(&self) -> &'static str {
        self.kind().api_version()
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::ServiceAccount(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::HorizontalPodAutoscaler(o) => &o.metadata,
            Object::PodDisruptionBudget(o) => &o.metadata,
            Object::NetworkPolicy(o) => &o.metadata,
            Object::HttpRoute(o) => &o.metadata,
            Object::VirtualService(o) => &o.metadata,
            Object::DestinationRule(o) => &o.metadata,
            Object::PodMonitor(o) => &o.metadata,
        }
    }

    /// `metadata.name` (compiled objects always have one).
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// `metadata.namespace` (compiled objects always have one).
    pub fn namespace(&self) -> &str {
        self.metadata().namespace.as_deref().unwrap_or_default()
    }

    /// The key of the object.
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            namespace: self.namespace().to_string(),
            kind: self.kind(),
            name: self.name().to_string(),
        }
    }

    /// The object as JSON, with `apiVersion` and `kind`, fields in API order.
    pub fn to_json(&self) -> Result<serde_json::Value, CompileError> {
        serde_json::to_value(self).map_err(|e| CompileError::Serialize {
            kind: self.kind().as_str(),
            name: self.name().to_string(),
            message: e.to_string(),
        })
    }
}

impl Serialize for Object {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Object::ServiceAccount(o) => o.serialize(serializer),
            Object::Deployment(o) => o.serialize(serializer),
            Object::Service(o) => o.serialize(serializer),
            Object::HorizontalPodAutoscaler(o) => o.serialize(serializer),
            Object::PodDisruptionBudget(o) => o.serialize(serializer),
            Object::NetworkPolicy(o) => o.serialize(serializer),
            Object::HttpRoute(o) => o.serialize(serializer),
            Object::VirtualService(o) => o.serialize(serializer),
            Object::DestinationRule(o) => o.serialize(serializer),
            Object::PodMonitor(o) => o.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_api_names() {
        for kind in Kind::ALL {
            assert_eq!(
                Kind::from_api(kind.api_version(), kind.as_str()),
                Some(kind)
            );
        }
        assert_eq!(Kind::from_api("v1", "ConfigMap"), None);
        assert_eq!(Kind::from_api("apps/v1", "Service"), None);
    }

    #[test]
    fn kind_order_is_apply_order() {
        let mut sorted = Kind::ALL;
        sorted.sort();
        assert_eq!(sorted, Kind::ALL);
        assert!(Kind::ServiceAccount < Kind::Deployment);
        assert!(Kind::Service < Kind::Deployment);
        assert!(Kind::NetworkPolicy < Kind::HttpRoute);
    }

    #[test]
    fn keys_sort_by_namespace_then_kind_then_name() {
        let key = |ns: &str, kind, name: &str| ObjectKey {
            namespace: ns.into(),
            kind,
            name: name.into(),
        };
        let mut keys = vec![
            key("b", Kind::ServiceAccount, "a"),
            key("a", Kind::Deployment, "a"),
            key("a", Kind::Service, "z"),
            key("a", Kind::Service, "b"),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                key("a", Kind::Service, "b"),
                key("a", Kind::Service, "z"),
                key("a", Kind::Deployment, "a"),
                key("b", Kind::ServiceAccount, "a"),
            ]
        );
    }
}
