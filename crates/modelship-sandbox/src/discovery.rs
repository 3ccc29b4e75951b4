//! Discovery documents rendered from the [`Registry`].
//!
//! `/version`, `/api` (APIVersions), `/apis` (APIGroupList), `/api/v1` and
//! `/apis/<group>/<version>` (APIResourceList), and the aggregated form of `/api` and
//! `/apis` (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`, one request for
//! everything) when the Accept header asks for it, as kubectl and
//! `kube::Discovery::run_aggregated` do.

use super::registry::{Registry, ResourceType, VERBS};
use serde_json::{Value, json};

/// The Kubernetes version the sandbox reports (k8s-openapi is built for 1.33).
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-modelship-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`: the core group's versions.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }]
    })
}

/// `/apis`: every named group with its versions.
pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(group, versions)| {
            let gv = |v: &String| json!({ "groupVersion": format!("{group}/{v}"), "version": v });
            let preferred = versions.first().map(gv).unwrap_or(Value::Null);
            json!({
                "name": group,
                "versions": versions.iter().map(gv).collect::<Vec<_>>(),
                "preferredVersion": preferred,
            })
        })
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `/api/v1` or `/apis/<group>/<version>`; `None` when nothing is served there.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceType> = registry
        .types()
        .iter()
        .filter(|t| t.group == group && t.serves(version))
        .collect();
    if served.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let resources: Vec<Value> = served.iter().flat_map(|t| resource_entries(t)).collect();
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

fn resource_entries(t: &ResourceType) -> Vec<Value> {
    let mut main = json!({
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": VERBS,
    });
    if !t.short_names.is_empty() {
        main["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        main["categories"] = json!(t.categories);
    }
    let mut entries = vec![main];
    if t.status_subresource {
        entries.push(json!({
            "name": format!("{}/status", t.plural),
            "singularName": "",
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    if t.scale_subresource {
        entries.push(json!({
            "name": format!("{}/scale", t.plural),
            "singularName": "",
            "namespaced": t.namespaced,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        }));
    }
    entries
}

/// The media type of aggregated discovery v2 answers.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an Accept header asks for aggregated discovery v2.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|m| {
        let params: Vec<&str> = m.split(';').map(str::trim).collect();
        ["g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"]
            .iter()
            .all(|p| params.contains(p))
    })
}

/// Aggregated discovery: `/api` (`core` true, the core group) or `/apis` (named groups).
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let items: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = registry
                        .types()
                        .iter()
                        .filter(|t| t.group == group && t.serves(v))
                        .map(|t| aggregated_resource(t, v))
                        .collect();
                    json!({ "version": v, "resources": resources, "freshness": "Current" })
                })
                .collect();
            json!({ "metadata": { "name": group }, "versions": versions })
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

fn aggregated_resource(t: &ResourceType, version: &str) -> Value {
    let gvk = |group: &str, version: &str, kind: &str| json!({ "group": group, "version": version, "kind": kind });
    let mut subresources = Vec::new();
    if t.status_subresource {
        subresources.push(json!({
            "subresource": "status",
            "responseKind": gvk(&t.group, version, &t.kind),
            "verbs": ["get", "patch", "update"],
        }));
    }
    if t.scale_subresource {
        subresources.push(json!({
            "subresource": "scale",
            "responseKind": gvk("autoscaling", "v1", "Scale"),
            "verbs": ["get", "patch", "update"],
        }));
    }
    let mut r = json!({
        "resource": t.plural,
        "responseKind": gvk(&t.group, version, &t.kind),
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": VERBS,
        "subresources": subresources,
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_v1_lists_deployments_with_subresources() {
        let list = resource_list(&Registry::builtin(), "apps", "v1").expect("apps/v1 served");
        let names: Vec<&str> = list["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert_eq!(
            names,
            vec!["deployments", "deployments/status", "deployments/scale"]
        );
        assert_eq!(list["resources"][0]["shortNames"][0], "deploy");
        assert_eq!(list["resources"][2]["kind"], "Scale");
    }

    #[test]
    fn group_list_omits_core_and_unknown_versions() {
        let list = group_list(&Registry::builtin());
        let groups = list["groups"].as_array().cloned().unwrap_or_default();
        assert!(groups.iter().all(|g| g["name"] != ""));
        assert!(
            groups
                .iter()
                .any(|g| g["preferredVersion"]["groupVersion"] == "autoscaling/v2")
        );
        assert!(resource_list(&Registry::builtin(), "apps", "v1beta1").is_none());
    }
}

#[cfg(test)]
mod aggregated_tests {
    use super::*;

    #[test]
    fn accept_header_negotiation() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert!(wants_aggregated(kubectl));
        assert!(!wants_aggregated("application/json, */*"));
        assert!(!wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        ));
    }

    #[test]
    fn aggregated_documents_split_core_from_named_groups() {
        let r = Registry::builtin();
        let core = aggregated(&r, true);
        assert_eq!(core["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(core["items"][0]["metadata"]["name"], "");
        let named = aggregated(&r, false);
        let apps = named["items"]
            .as_array()
            .and_then(|items| items.iter().find(|g| g["metadata"]["name"] == "apps"))
            .cloned()
            .expect("apps group");
        let deploy = &apps["versions"][0]["resources"][0];
        assert_eq!(deploy["resource"], "deployments");
        assert_eq!(deploy["scope"], "Namespaced");
        assert_eq!(deploy["subresources"][1]["responseKind"]["kind"], "Scale");
    }
}
