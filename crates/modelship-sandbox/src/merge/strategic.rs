//! Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds,
//! after apimachinery's `strategicpatch`.
//!
//! The patch is walked alongside the live object: maps merge field by field (`null`
//! deletes a field); lists follow the field's `patchStrategy` from [`ObjectSchema`]:
//! merged by `patchMergeKey` (containers, ports, env, volumes, ...), unioned (lists of
//! scalars with `patchStrategy=merge`, e.g. `metadata.finalizers`) or replaced (all other
//! lists). Directives:
//!
//! - `$patch: delete` in a map deletes that map; in a keyed list item, deletes the item;
//! - `$patch: replace` in a map replaces it by the patch's map; a list element
//!   `{"$patch": "replace"}` replaces the whole list by the patch's other elements;
//! - `$retainKeys: [..]` keeps only the listed fields of the merged map;
//! - `$deleteFromPrimitiveList/<field>: [..]` removes those values from a scalar list;
//! - `$setElementOrder/<field>` is accepted and ignored: merged lists keep the live order
//!   with new items appended.
//!
//! Unknown kinds (CRD objects) are refused with [`MergeError::Invalid`], as kube-apiserver
//! refuses strategic merge patches for custom resources (415).

use serde_json::{Map, Value};

use super::MergeError;
use super::fieldset::{Path, PathElement, path_string};
use super::schema::{ObjectSchema, PatchStrategy};

/// Applies the strategic merge patch `patch` to `live` (a built-in kind).
pub fn strategic_merge(live: &Value, patch: &Value) -> Result<Value, MergeError> {
    let schema = ObjectSchema::for_object(live);
    if !schema.is_known() {
        let text = |name: &str| live.get(name).and_then(Value::as_str).unwrap_or("");
        return Err(MergeError::Invalid(format!(
            "strategic merge patch is not supported for {} {}",
            text("apiVersion"),
            text("kind")
        )));
    }
    let patch = patch
        .as_object()
        .ok_or_else(|| MergeError::Invalid("a strategic merge patch must be an object".into()))?;
    let mut path = Vec::new();
    match merge_map(live.as_object(), patch, &mut path, &schema)? {
        Some(merged) => Ok(Value::Object(merged)),
        None => Err(MergeError::Invalid(
            "$patch: delete cannot delete the whole object".into(),
        )),
    }
}

fn invalid(path: &Path, message: &str) -> MergeError {
    let at = if path.is_empty() {
        ".".to_string()
    } else {
        path_string(path)
    };
    MergeError::Invalid(format!("{at}: {message}"))
}

/// Merges `patch` into `live`; `None` means the map is deleted (`$patch: delete`).
fn merge_map(
    live: Option<&Map<String, Value>>,
    patch: &Map<String, Value>,
    path: &mut Path,
    schema: &ObjectSchema,
) -> Result<Option<Map<String, Value>>, MergeError> {
    match patch.get("$patch") {
        None => {}
        Some(Value::String(d)) if d == "merge" => {}
        Some(Value::String(d)) if d == "delete" => return Ok(None),
        Some(Value::String(d)) if d == "replace" => return Ok(Some(clean_map(patch))),
        Some(other) => return Err(invalid(path, &format!("unknown $patch directive {other}"))),
    }
    let mut out = live.cloned().unwrap_or_default();
    for (name, value) in patch {
        if name == "$patch" || name == "$retainKeys" || name.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = name.strip_prefix("$deleteFromPrimitiveList/") {
            delete_from_primitive_list(&mut out, field, value, path)?;
            continue;
        }
        if name.starts_with('$') {
            return Err(invalid(path, &format!("unknown directive {name}")));
        }
        path.push(PathElement::Field(name.clone()));
        let merged = merge_field(out.get(name), value, path, schema);
        path.pop();
        match merged? {
            Some(merged) => out.insert(name.clone(), merged),
            None => out.remove(name),
        };
    }
    if let Some(retain) = patch.get("$retainKeys") {
        let keys = retain
            .as_array()
            .filter(|keys| keys.iter().all(Value::is_string))
            .ok_or_else(|| invalid(path, "$retainKeys must be a list of strings"))?;
        out.retain(|name, _| keys.iter().any(|k| k.as_str() == Some(name.as_str())));
    }
    Ok(Some(out))
}

/// The merged value of one field; `None` deletes it.
fn merge_field(
    live: Option<&Value>,
    patch: &Value,
    path: &mut Path,
    schema: &ObjectSchema,
) -> Result<Option<Value>, MergeError> {
    match patch {
        Value::Null => Ok(None),
        Value::Object(patch_map) => {
            let merged = merge_map(live.and_then(Value::as_object), patch_map, path, schema)?;
            Ok(merged.map(Value::Object))
        }
        Value::Array(items) => {
            let live_items = live.and_then(Value::as_array).map(Vec::as_slice);
            merge_list(live_items, items, path, schema).map(|l| Some(Value::Array(l)))
        }
        scalar => Ok(Some(scalar.clone())),
    }
}

fn is_replace_directive(item: &Value) -> bool {
    item.as_object()
        .is_some_and(|m| m.len() == 1 && m.get("$patch").and_then(Value::as_str) == Some("replace"))
}

fn merge_list(
    live: Option<&[Value]>,
    patch: &[Value],
    path: &mut Path,
    schema: &ObjectSchema,
) -> Result<Vec<Value>, MergeError> {
    let strategy = schema.patch_strategy(path);
    if strategy == PatchStrategy::Replace || patch.iter().any(is_replace_directive) {
        return Ok(patch
            .iter()
            .filter(|item| !is_replace_directive(item))
            .map(clean)
            .collect());
    }
    let mut out: Vec<Value> = live.unwrap_or_default().to_vec();
    match strategy {
        PatchStrategy::MergeByKey(key) => {
            for item in patch {
                merge_keyed_item(&mut out, item, key, path, schema)?;
            }
        }
        _ => {
            for item in patch {
                if !out.contains(item) {
                    out.push(clean(item));
                }
            }
        }
    }
    Ok(out)
}

fn merge_keyed_item(
    out: &mut Vec<Value>,
    item: &Value,
    key: &str,
    path: &mut Path,
    schema: &ObjectSchema,
) -> Result<(), MergeError> {
    let Some(item_map) = item.as_object() else {
        return Err(invalid(path, "items of a merged list must be objects"));
    };
    let Some(key_value) = item_map.get(key) else {
        return Err(invalid(path, &format!("item lacks the merge key {key:?}")));
    };
    let position = out.iter().position(|v| v.get(key) == Some(key_value));
    path.push(PathElement::Key(format!("{{{key:?}:{key_value}}}")));
    let merged = merge_map(
        position.and_then(|i| out.get(i)).and_then(Value::as_object),
        item_map,
        path,
        schema,
    );
    path.pop();
    match (merged?, position) {
        (Some(merged), Some(i)) => {
            if let Some(slot) = out.get_mut(i) {
                *slot = Value::Object(merged);
            }
        }
        (Some(merged), None) => out.push(Value::Object(merged)),
        (None, _) => out.retain(|v| v.get(key) != Some(key_value)),
    }
    Ok(())
}

fn delete_from_primitive_list(
    out: &mut Map<String, Value>,
    field: &str,
    values: &Value,
    path: &Path,
) -> Result<(), MergeError> {
    let values = values
        .as_array()
        .ok_or_else(|| invalid(path, "$deleteFromPrimitiveList needs a list"))?;
    if let Some(list) = out.get_mut(field).and_then(Value::as_array_mut) {
        list.retain(|v| !values.contains(v));
    }
    Ok(())
}

/// A patch value without directives (for values that land in the object as they are).
fn clean(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(clean_map(map)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|item| !is_replace_directive(item))
                .map(clean)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn clean_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
        .map(|(k, v)| (k.clone(), clean(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::test_support::arb_config;
    use crate::merge::tree;
    use serde_json::json;

    fn deployment(containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "d", "finalizers": ["a"]},
               "spec": {"replicas": 1, "template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn strategic_merge_table() {
        let two = json!([
            {"name": "a", "image": "a:1", "args": ["x"], "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "b:1"}
        ]);
        let cases = [
            (
                "containers merged by name; primitive list replaced; new item appended",
                json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "a", "image": "a:2", "args": ["y"]},
                    {"name": "c", "image": "c:1"}]}}}}),
                deployment(json!([
                    {"name": "a", "image": "a:2", "args": ["y"], "ports": [{"containerPort": 80}]},
                    {"name": "b", "image": "b:1"},
                    {"name": "c", "image": "c:1"}])),
            ),
            (
                "$patch: delete removes a keyed item",
                json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "b", "$patch": "delete"}]}}}}),
                deployment(json!([
                    {"name": "a", "image": "a:1", "args": ["x"], "ports": [{"containerPort": 80}]}])),
            ),
            (
                "null deletes a key; ports merged by containerPort",
                json!({"spec": {"replicas": null, "template": {"spec": {"containers": [
                    {"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]}}}}),
                {
                    let mut d = deployment(json!([
                        {"name": "a", "image": "a:1", "args": ["x"],
                         "ports": [{"containerPort": 80, "name": "http"}]},
                        {"name": "b", "image": "b:1"}]));
                    d["spec"].as_object_mut().map(|s| s.remove("replicas"));
                    d
                },
            ),
            (
                "list replace directive and set-element-order tolerated",
                json!({"spec": {"template": {"spec": {
                    "$setElementOrder/containers": [{"name": "z"}],
                    "containers": [{"$patch": "replace"}, {"name": "z", "image": "z:1"}]}}}}),
                deployment(json!([{"name": "z", "image": "z:1"}])),
            ),
            (
                "finalizers unioned; $deleteFromPrimitiveList",
                json!({"metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]}}),
                {
                    let mut d = deployment(two.clone());
                    d["metadata"]["finalizers"] = json!(["b"]);
                    d
                },
            ),
            (
                "$retainKeys and map $patch: replace",
                json!({"spec": {"$retainKeys": ["template"], "template": {"$patch": "replace",
                    "spec": {"containers": []}}}}),
                {
                    let mut d = deployment(json!([]));
                    d["spec"].as_object_mut().map(|s| s.remove("replicas"));
                    d
                },
            ),
        ];
        for (name, patch, want) in cases {
            let got = strategic_merge(&deployment(two.clone()), &patch);
            assert_eq!(got, Ok(want), "{name}");
        }
    }

    proptest::proptest! {
        /// Without directives, nulls or set lists, a strategic merge patch and a
        /// server-side apply merge agree: both merge keyed lists by key and replace the
        /// rest.
        #[test]
        fn agrees_with_apply_merge(live in arb_config(), patch in arb_config()) {
            let schema = ObjectSchema::for_object(&live);
            let merged = strategic_merge(&live, &patch);
            proptest::prop_assert_eq!(merged, Ok(tree::merge(&live, &patch, &schema)));
        }

        #[test]
        fn patching_twice_equals_patching_once(live in arb_config(), patch in arb_config()) {
            let once = strategic_merge(&live, &patch).expect("valid patch");
            proptest::prop_assert_eq!(strategic_merge(&once, &patch), Ok(once.clone()));
            proptest::prop_assert_eq!(strategic_merge(&once, &json!({})), Ok(once));
        }
    }

    #[test]
    fn strategic_merge_errors() {
        let route = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute"});
        let live = deployment(json!([{"name": "a"}]));
        let cases = [
            (
                route.clone(),
                json!({"spec": {}}),
                "not supported for gateway.networking.k8s.io/v1 HTTPRoute",
            ),
            (live.clone(), json!([1]), "must be an object"),
            (live.clone(), json!({"$patch": "delete"}), "whole object"),
            (
                live.clone(),
                json!({"spec": {"$patch": "explode"}}),
                "unknown $patch directive",
            ),
            (
                live.clone(),
                json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
                "lacks the merge key \"name\"",
            ),
            (live, json!({"spec": {"$bogus": 1}}), "unknown directive"),
        ];
        for (live, patch, want) in cases {
            match strategic_merge(&live, &patch) {
                Err(MergeError::Invalid(message)) => {
                    assert!(message.contains(want), "{message} should contain {want}")
                }
                other => panic!("expected Invalid for {patch}, got {other:?}"),
            }
        }
    }
}
