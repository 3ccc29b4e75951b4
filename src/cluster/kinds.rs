//! Kinds modelship writes, resolved into `ApiResource`s: built-in kinds from k8s-openapi
//! without a request, route kinds (Gateway API, Istio) by discovery, once per client.

use std::collections::HashMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::{ApiResource, GroupVersionKind};
use kube::discovery::{Scope, pinned_kind};

use super::retry::{RetryPolicy, retry};
use super::{Error, Result};

/// Built-in kinds whose live objects are always read (modelship may have written them).
pub const LISTED_BUILTINS: [(&str, &str); 6] = [
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
];

/// Custom kinds read when the cluster serves them (a service may have moved off a router,
/// or modelship.yaml may have stopped asking for PodMonitors).
pub const ROUTE_KINDS: [(&str, &str); 4] = [
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("networking.istio.io/v1", "VirtualService"),
    ("networking.istio.io/v1", "DestinationRule"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
];

/// A kind resolved for requests.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// Resolves kinds, caching discovery answers (including "not served").
#[derive(Clone)]
pub struct Kinds {
    client: Client,
    retry: RetryPolicy,
    cache: HashMap<(String, String), Option<Resolved>>,
}

impl Kinds {
    /// A resolver over a client.
    pub fn new(client: Client, retry: RetryPolicy) -> Self {
        Kinds {
            client,
            retry,
            cache: HashMap::new(),
        }
    }

    /// Resolves a kind; [`Error::KindNotServed`] when the cluster does not serve it.
    pub async fn resolve(&mut self, api_version: &str, kind: &str) -> Result<Resolved> {
        self.lookup(api_version, kind)
            .await?
            .ok_or_else(|| Error::KindNotServed {
                kind: kind.to_string(),
                api_version: api_version.to_string(),
                hint: hint(kind),
            })
    }

    /// Resolves a kind; `None` when the cluster does not serve it.
    pub async fn lookup(&mut self, api_version: &str, kind: &str) -> Result<Option<Resolved>> {
        if let Some(resolved) = builtin(api_version, kind) {
            return Ok(Some(resolved));
        }
        let cache_key = (api_version.to_string(), kind.to_string());
        if let Some(cached) = self.cache.get(&cache_key) {
            return Ok(cached.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = retry(&self.retry, || pinned_kind(&self.client, &gvk)).await;
        let resolved = match found {
            Ok((resource, capabilities)) => Some(Resolved {
                resource,
                namespaced: capabilities.scope == Scope::Namespaced,
            }),
            Err(kube::Error::Api(status)) if status.code == 404 => None,
            Err(kube::Error::Discovery(_)) => None,
            Err(source) => {
                return Err(Error::Discovery {
                    kind: kind.to_string(),
                    api_version: api_version.to_string(),
                    source,
                });
            }
        };
        self.cache.insert(cache_key, resolved.clone());
        Ok(resolved)
    }
}

/// What to do when a kind is missing.
fn hint(kind: &str) -> &'static str {
    match kind {
        "HTTPRoute" => "install the Gateway API CRDs or use router replicas",
        "VirtualService" | "DestinationRule" => {
            "install Istio (its networking CRDs) or use router replicas"
        }
        "PodMonitor" => "install the Prometheus Operator CRDs or set prometheus.podMonitor: false",
        _ => "install its CustomResourceDefinition",
    }
}

fn builtin(api_version: &str, kind: &str) -> Option<Resolved> {
    let (resource, namespaced) = match (api_version, kind) {
        ("v1", "Namespace") => (ApiResource::erase::<Namespace>(&()), false),
        ("v1", "ServiceAccount") => (ApiResource::erase::<ServiceAccount>(&()), true),
        ("v1", "Service") => (ApiResource::erase::<Service>(&()), true),
        ("v1", "Secret") => (ApiResource::erase::<Secret>(&()), true),
        ("v1", "Event") => (ApiResource::erase::<Event>(&()), true),
        ("v1", "ConfigMap") => (ApiResource::erase::<ConfigMap>(&()), true),
        ("v1", "PersistentVolumeClaim") => (ApiResource::erase::<PersistentVolumeClaim>(&()), true),
        ("apps/v1", "Deployment") => (ApiResource::erase::<Deployment>(&()), true),
        ("autoscaling/v2", "HorizontalPodAutoscaler") => {
            (ApiResource::erase::<HorizontalPodAutoscaler>(&()), true)
        }
        ("policy/v1", "PodDisruptionBudget") => {
            (ApiResource::erase::<PodDisruptionBudget>(&()), true)
        }
        ("networking.k8s.io/v1", "NetworkPolicy") => {
            (ApiResource::erase::<NetworkPolicy>(&()), true)
        }
        _ => return None,
    };
    Some(Resolved {
        resource,
        namespaced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_resolve_without_discovery() {
        for (api_version, kind) in LISTED_BUILTINS {
            let resolved = builtin(api_version, kind).unwrap();
            assert_eq!(resolved.resource.kind, kind);
            assert_eq!(resolved.resource.api_version, api_version);
            assert!(resolved.namespaced);
        }
        assert!(!builtin("v1", "Namespace").unwrap().namespaced);
        assert!(builtin("gateway.networking.k8s.io/v1", "HTTPRoute").is_none());
    }

    #[test]
    fn missing_route_crd_message_says_what_to_do() {
        let error = Error::KindNotServed {
            kind: "HTTPRoute".into(),
            api_version: "gateway.networking.k8s.io/v1".into(),
            hint: hint("HTTPRoute"),
        };
        assert_eq!(
            error.to_string(),
            "HTTPRoute (gateway.networking.k8s.io/v1) is not served by the cluster: \
             install the Gateway API CRDs or use router replicas"
        );
    }
}
