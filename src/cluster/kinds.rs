//! Kinds resolved into `ApiResource`s: the built-in rows of [`crate::kinds::TABLE`]
//! without a request, every other kind (the custom rows: Gateway API, Istio, Prometheus
//! Operator; and kinds the table does not hold) by discovery, once per client.

use std::collections::HashMap;

use kube::Client;
use kube::api::{ApiResource, GroupVersionKind};
use kube::discovery::{Scope, pinned_kind};

use super::retry::{RetryPolicy, retry};
use super::{Error, Result};
use crate::kinds::{self, ApiKind};

/// The API resource of a row of the table, from the row alone (no request).
pub fn api_resource(row: &ApiKind) -> ApiResource {
    let gvk = GroupVersionKind::gvk(row.group, row.version, row.kind);
    ApiResource::from_gvk_with_plural(&gvk, row.plural)
}

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
                hint: hint(api_version, kind),
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
fn hint(api_version: &str, kind: &str) -> &'static str {
    kinds::find(api_version, kind)
        .and_then(ApiKind::missing)
        .unwrap_or("install its CustomResourceDefinition")
}

/// A built-in row of the table, resolved without asking the cluster.
fn builtin(api_version: &str, kind: &str) -> Option<Resolved> {
    let row = kinds::find(api_version, kind).filter(|row| row.is_builtin())?;
    Some(Resolved {
        resource: api_resource(row),
        namespaced: row.namespaced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_resolve_without_discovery() {
        for row in kinds::TABLE.iter().filter(|row| row.is_builtin()) {
            let resolved = builtin(row.api_version, row.kind).unwrap();
            assert_eq!(resolved.resource.kind, row.kind);
            assert_eq!(resolved.resource.api_version, row.api_version);
            assert_eq!(resolved.namespaced, row.namespaced);
        }
        assert!(!builtin("v1", "Namespace").unwrap().namespaced);
        assert!(builtin("gateway.networking.k8s.io/v1", "HTTPRoute").is_none());
        assert!(
            builtin("v1", "Pod").is_none(),
            "not in the table: discovery"
        );
    }

    #[test]
    fn table_resources_match_k8s_openapi() {
        use k8s_openapi::api::apps::v1::Deployment;
        use k8s_openapi::api::core::v1::{Event, Namespace, Service};
        let erased = [
            ApiResource::erase::<Namespace>(&()),
            ApiResource::erase::<Service>(&()),
            ApiResource::erase::<Deployment>(&()),
            ApiResource::erase::<Event>(&()),
        ];
        for expected in erased {
            let resolved = builtin(&expected.api_version, &expected.kind).unwrap();
            assert_eq!(resolved.resource, expected);
        }
    }

    #[test]
    fn missing_route_crd_message_says_what_to_do() {
        let error = Error::KindNotServed {
            kind: "HTTPRoute".into(),
            api_version: "gateway.networking.k8s.io/v1".into(),
            hint: hint("gateway.networking.k8s.io/v1", "HTTPRoute"),
        };
        assert_eq!(
            error.to_string(),
            "HTTPRoute (gateway.networking.k8s.io/v1) is not served by the cluster: \
             install the Gateway API CRDs or use router replicas"
        );
    }
}
