//! `PartialObjectMetadata`: the metadata-only view clients ask for with
//! `Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1` (and
//! `...as=PartialObjectMetadataList...` for lists), e.g. kube's `get_metadata`,
//! `list_metadata` and `metadata_watcher`. Get, list and watch answers are reduced to
//! `kind`, `apiVersion` and `metadata`, as kube-apiserver does.

use serde_json::{Value, json};

const API_VERSION: &str = "meta.k8s.io/v1";

/// Whether an Accept header asks for the metadata-only view.
pub fn wanted(accept: &str) -> bool {
    accept.split(',').any(|m| {
        let params: Vec<&str> = m.split(';').map(str::trim).collect();
        params.contains(&"g=meta.k8s.io")
            && params
                .iter()
                .any(|p| *p == "as=PartialObjectMetadata" || *p == "as=PartialObjectMetadataList")
    })
}

/// One object reduced to its metadata.
pub fn object(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": API_VERSION,
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A `<Kind>List` reduced to a `PartialObjectMetadataList`.
pub fn list(list: &Value) -> Value {
    let items: Vec<Value> = list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(object)
        .collect();
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": API_VERSION,
        "metadata": list.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_view_keeps_only_metadata() {
        assert!(wanted(
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        ));
        assert!(!wanted("application/json"));
        let obj = json!({ "kind": "ConfigMap", "metadata": { "name": "a" }, "data": { "k": "v" } });
        let l = list(&json!({ "metadata": { "resourceVersion": "5" }, "items": [obj] }));
        assert_eq!(
            l["items"][0],
            json!({ "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": { "name": "a" } })
        );
        assert_eq!(l["metadata"]["resourceVersion"], "5");
    }
}
