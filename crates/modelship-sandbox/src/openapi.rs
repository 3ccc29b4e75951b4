//! A minimal OpenAPI v3 surface, just enough for kubectl.
//!
//! kubectl (1.27+) decides whether the server validates fields itself by looking for the
//! `fieldValidation` query parameter on the PATCH operation of a kind in
//! `/openapi/v3/<group-version>`. When it finds it, it sends `fieldValidation=Strict` and
//! skips client-side schema validation (which would need full schemas). So the sandbox
//! serves, per group-version, one PATCH operation per kind carrying its
//! `x-kubernetes-group-version-kind` and the query parameters; no schemas. `/openapi/v2`
//! is not served (kubectl copes).

use super::registry::Registry;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the index of group-version documents with content hashes.
pub fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let doc = group_version(registry, &group, &version).unwrap_or(Value::Null);
            let hash = Sha256::digest(doc.to_string().as_bytes());
            let hex: String = hash.iter().take(16).map(|b| format!("{b:02X}")).collect();
            let path = gv_path(&group, &version);
            paths.insert(
                path.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={hex}") }),
            );
        }
    }
    json!({ "paths": paths })
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let params = json!([
        { "name": "dryRun", "in": "query", "schema": { "type": "string" } },
        { "name": "fieldManager", "in": "query", "schema": { "type": "string" } },
        { "name": "fieldValidation", "in": "query", "schema": { "type": "string" } },
        { "name": "force", "in": "query", "schema": { "type": "boolean" } }
    ]);
    let mut paths = Map::new();
    for t in registry
        .types()
        .iter()
        .filter(|t| t.group == group && t.serves(version))
    {
        let scope = if t.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        };
        let path = format!("/{}{scope}/{}/{{name}}", gv_path(group, version), t.plural);
        let op = json!({
            "operationId": format!("patch{}", t.kind),
            "parameters": params,
            "responses": { "200": { "description": "OK" } },
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": { "group": group, "version": version, "kind": t.kind },
        });
        paths.insert(path, json!({ "patch": op }));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.33.0" },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_advertise_field_validation() {
        let doc = group_version(&Registry::builtin(), "apps", "v1").expect("apps/v1");
        let op = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(
            op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation"))
        );
        let root = root(&Registry::builtin());
        assert!(
            root["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .is_some_and(|u| u.starts_with("/openapi/v3/api/v1?hash="))
        );
    }
}
