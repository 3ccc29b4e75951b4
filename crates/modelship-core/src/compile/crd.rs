//! Typed structs for the kinds k8s-openapi does not carry: Gateway API `HTTPRoute`
//! (gateway.networking.k8s.io/v1), Istio `VirtualService` / `DestinationRule`
//! (networking.istio.io/v1) and the Prometheus Operator's `PodMonitor`
//! (monitoring.coreos.com/v1). Only the fields modelship sets are modelled; unknown fields
//! are ignored when reading, so live objects with more fields still deserialize.
//!
//! Serialization writes `apiVersion` and `kind` first, like k8s-openapi does for built-in
//! kinds, so every `Object` renders the same way.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

use crate::kinds;

/// A top-level resource: `metadata` and `spec`, with the `apiVersion` and `kind` of its
/// row in [`crate::kinds::TABLE`] as constants, written first on serialization.
macro_rules! resource {
    ($(#[$doc:meta])* $name:ident, $spec:ty, $row:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        pub struct $name {
            pub metadata: ObjectMeta,
            pub spec: $spec,
        }

        impl $name {
            pub const API_VERSION: &'static str = $row.api_version;
            pub const KIND: &'static str = $row.kind;
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serialize_resource(serializer, Self::API_VERSION, Self::KIND, &self.metadata, &self.spec)
            }
        }
    };
}

/// Writes `{apiVersion, kind, metadata, spec}`.
fn serialize_resource<S: serde::Serializer, T: Serialize>(
    serializer: S,
    api_version: &'static str,
    kind: &'static str,
    metadata: &ObjectMeta,
    spec: &T,
) -> Result<S::Ok, S::Error> {
    let mut state = serializer.serialize_struct(kind, 4)?;
    state.serialize_field("apiVersion", api_version)?;
    state.serialize_field("kind", kind)?;
    state.serialize_field("metadata", metadata)?;
    state.serialize_field("spec", spec)?;
    state.end()
}

resource! {
    /// `HTTPRoute` of the Gateway API.
    HttpRoute, HttpRouteSpec, kinds::HTTP_ROUTE
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<HttpRouteRule>,
}

/// A Gateway the route attaches to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HttpRouteMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<HttpBackendRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathMatch>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpPathMatch {
    /// `Exact`, `PathPrefix` or `RegularExpression`.
    #[serde(rename = "type")]
    pub match_type: String,
    pub value: String,
}

/// A Service backend with its share of the traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpBackendRef {
    pub name: String,
    pub port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

resource! {
    /// Istio `VirtualService`.
    VirtualService, VirtualServiceSpec, kinds::VIRTUAL_SERVICE
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<IstioHttpRoute>,
}

/// One HTTP route of a VirtualService: traffic to `port` of the host, split by weight.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioHttpRoute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<IstioHttpMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route: Vec<IstioRouteDestination>,
}

/// Matches requests sent to one port of the host, through the given gateways.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioHttpMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// `mesh` for traffic between sidecars; gateway names otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioRouteDestination {
    pub destination: IstioDestination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioDestination {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IstioPortSelector>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioPortSelector {
    pub number: u32,
}

resource! {
    /// Istio `DestinationRule`.
    DestinationRule, DestinationRuleSpec, kinds::DESTINATION_RULE
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    pub host: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<IstioSubset>,
}

/// A named group of the host's pods, chosen by labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioSubset {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

resource! {
    /// Prometheus Operator `PodMonitor`.
    PodMonitor, PodMonitorSpec, kinds::POD_MONITOR
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMonitorSpec {
    /// The pods to scrape, in the PodMonitor's own namespace.
    pub selector: MatchLabels,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_metrics_endpoints: Vec<PodMetricsEndpoint>,
}

/// A label selector with `matchLabels` only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchLabels {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

/// One scraped port of the selected pods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMetricsEndpoint {
    /// The container port's name.
    pub port: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabelings: Vec<Relabeling>,
}

/// A Prometheus relabelling rule (the operator's `RelabelConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relabeling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_serialize_with_api_version_and_kind_first() {
        let route = HttpRoute {
            metadata: ObjectMeta {
                name: Some("r".into()),
                ..ObjectMeta::default()
            },
            spec: HttpRouteSpec {
                hostnames: vec!["a.example.com".into()],
                ..HttpRouteSpec::default()
            },
        };
        let json = serde_json::to_value(&route).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
        assert_eq!(json["apiVersion"], "gateway.networking.k8s.io/v1");
        assert_eq!(json["kind"], "HTTPRoute");
        assert_eq!(json["spec"]["hostnames"][0], "a.example.com");
        assert!(json["spec"].get("rules").is_none());
        let back: HttpRoute = serde_json::from_value(json).unwrap();
        assert_eq!(back, route);
    }

    #[test]
    fn istio_match_serializes_as_match() {
        let route = IstioHttpRoute {
            name: Some("http".into()),
            matches: vec![IstioHttpMatch {
                port: Some(8080),
                gateways: vec!["mesh".into()],
            }],
            route: vec![],
        };
        let json = serde_json::to_value(&route).unwrap();
        assert_eq!(json["match"][0]["port"], 8080);
        assert_eq!(json["match"][0]["gateways"][0], "mesh");
    }
}
