//! The compiled objects: one enum over every kind modelship emits, declared in the apply
//! order of [`crate::kinds::TABLE`] (whose managed rows they are); objects are identified
//! by [`crate::meta::ObjectKey`].

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::CompileError;
use super::crd::{DestinationRule, HttpRoute, PodMonitor, VirtualService};
use crate::kinds::{self, ApiKind};
pub use crate::meta::ObjectKey;

/// Every kind modelship emits, declared in apply order: what others depend on first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    ServiceAccount,
    Service,
    Deployment,
    HorizontalPodAutoscaler,
    PodDisruptionBudget,
    NetworkPolicy,
    DestinationRule,
    HttpRoute,
    VirtualService,
    PodMonitor,
}

impl Kind {
    /// Every kind, in apply order: the managed rows of [`crate::kinds::TABLE`].
    pub const ALL: [Kind; 10] = [
        Kind::ServiceAccount,
        Kind::Service,
        Kind::Deployment,
        Kind::HorizontalPodAutoscaler,
        Kind::PodDisruptionBudget,
        Kind::NetworkPolicy,
        Kind::DestinationRule,
        Kind::HttpRoute,
        Kind::VirtualService,
        Kind::PodMonitor,
    ];

    /// The kind's row in [`crate::kinds::TABLE`].
    pub fn info(self) -> &'static ApiKind {
        match self {
            Kind::ServiceAccount => &kinds::SERVICE_ACCOUNT,
            Kind::Service => &kinds::SERVICE,
            Kind::Deployment => &kinds::DEPLOYMENT,
            Kind::HorizontalPodAutoscaler => &kinds::HORIZONTAL_POD_AUTOSCALER,
            Kind::PodDisruptionBudget => &kinds::POD_DISRUPTION_BUDGET,
            Kind::NetworkPolicy => &kinds::NETWORK_POLICY,
            Kind::DestinationRule => &kinds::DESTINATION_RULE,
            Kind::HttpRoute => &kinds::HTTP_ROUTE,
            Kind::VirtualService => &kinds::VIRTUAL_SERVICE,
            Kind::PodMonitor => &kinds::POD_MONITOR,
        }
    }

    /// `apiVersion` of the kind.
    pub fn api_version(self) -> &'static str {
        self.info().api_version
    }

    /// `kind` as the API spells it.
    pub fn as_str(self) -> &'static str {
        self.info().kind
    }

    /// The resource name in URLs (`deployments`, `httproutes`).
    pub fn plural(self) -> &'static str {
        self.info().plural
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
        ObjectKey::new(
            crate::meta::group_of(self.api_version()),
            self.kind().as_str(),
            self.namespace(),
            self.name(),
        )
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

/// Sorts objects in the apply order of [`ObjectKey::apply_order`].
pub fn sort_in_apply_order<T: std::borrow::Borrow<Object>>(objects: &mut [T]) {
    objects.sort_by_cached_key(|o| {
        let key = o.borrow().key();
        (
            key.namespace.clone(),
            key.order(),
            key.kind.clone(),
            key.name,
        )
    });
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
    fn kinds_are_the_managed_rows_of_the_table_in_its_order() {
        let compiled: Vec<&ApiKind> = Kind::ALL.iter().map(|k| k.info()).collect();
        let managed: Vec<&ApiKind> = kinds::managed().collect();
        assert_eq!(compiled, managed);
        for kind in Kind::ALL {
            assert_eq!(
                kinds::find(kind.api_version(), kind.as_str()),
                Some(kind.info())
            );
        }
    }

    #[test]
    fn kinds_are_declared_in_the_one_apply_order() {
        let mut sorted = Kind::ALL;
        sorted.sort_by_key(|k| crate::meta::kind_order(k.as_str()));
        assert_eq!(sorted, Kind::ALL);
        for pair in Kind::ALL.windows(2) {
            assert!(
                crate::meta::kind_order(pair[0].as_str())
                    <= crate::meta::kind_order(pair[1].as_str()),
                "{} before {}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn keys_sort_in_apply_order_by_namespace_then_kind_then_name() {
        let key = |ns: &str, kind: Kind, name: &str| {
            ObjectKey::new(
                crate::meta::group_of(kind.api_version()),
                kind.as_str(),
                ns,
                name,
            )
        };
        let mut keys = vec![
            key("b", Kind::ServiceAccount, "a"),
            key("a", Kind::Deployment, "a"),
            key("a", Kind::Service, "z"),
            key("a", Kind::Service, "b"),
            key("a", Kind::VirtualService, "a"),
            key("a", Kind::DestinationRule, "a"),
        ];
        keys.sort_by(|a, b| a.apply_order().cmp(&b.apply_order()));
        assert_eq!(
            keys,
            vec![
                key("a", Kind::Service, "b"),
                key("a", Kind::Service, "z"),
                key("a", Kind::Deployment, "a"),
                key("a", Kind::DestinationRule, "a"),
                key("a", Kind::VirtualService, "a"),
                key("b", Kind::ServiceAccount, "a"),
            ]
        );
    }
}
