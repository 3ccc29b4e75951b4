//! Schema-aware operations on JSON object trees, shared by apply and update: merging an
//! applied configuration into a live object, and removing the value at a field-set path.
//!
//! Both walk the object with the path so far, so that [`ObjectSchema`] can tell how each
//! list merges (associative by key, set by value, atomic) and which maps are atomic.

use serde_json::{Map, Value};

use super::fieldset::{Path, PathElement, item_element};
use super::schema::{ListType, ObjectSchema};

/// Merges `config` into `live` like structured-merge-diff's `Merge`: maps merge field by
/// field (a `null` in the config removes the field), associative and set lists merge item
/// by item (live order kept, new items appended), atomic lists and maps, and scalars, are
/// replaced by the config's value.
pub(super) fn merge(live: &Value, config: &Value, schema: &ObjectSchema) -> Value {
    let mut path = Vec::new();
    merge_at(live, config, &mut path, schema)
}

fn merge_at(live: &Value, config: &Value, path: &mut Path, schema: &ObjectSchema) -> Value {
    match (live, config) {
        (Value::Object(live_map), Value::Object(config_map))
            if path.is_empty() || !schema.is_atomic_map(path) =>
        {
            Value::Object(merge_maps(live_map, config_map, path, schema))
        }
        (Value::Array(live_items), Value::Array(config_items)) => match schema.list_type(path) {
            ListType::Atomic => strip_nulls(config),
            list_type => Value::Array(merge_lists(
                live_items,
                config_items,
                list_type,
                path,
                schema,
            )),
        },
        _ => strip_nulls(config),
    }
}

fn merge_maps(
    live: &Map<String, Value>,
    config: &Map<String, Value>,
    path: &mut Path,
    schema: &ObjectSchema,
) -> Map<String, Value> {
    let mut out = live.clone();
    for (name, config_value) in config {
        if config_value.is_null() {
            out.remove(name);
            continue;
        }
        path.push(PathElement::Field(name.clone()));
        let merged = match live.get(name) {
            Some(live_value) => merge_at(live_value, config_value, path, schema),
            None => strip_nulls(config_value),
        };
        path.pop();
        out.insert(name.clone(), merged);
    }
    out
}

fn merge_lists(
    live: &[Value],
    config: &[Value],
    list_type: ListType,
    path: &mut Path,
    schema: &ObjectSchema,
) -> Vec<Value> {
    let config_elements: Vec<PathElement> = config
        .iter()
        .enumerate()
        .map(|(i, item)| item_element(item, i, list_type))
        .collect();
    let mut used = vec![false; config.len()];
    let mut out = Vec::with_capacity(live.len() + config.len());
    for (i, live_item) in live.iter().enumerate() {
        let element = item_element(live_item, i, list_type);
        let matching = config_elements.iter().position(|e| *e == element);
        match matching.and_then(|j| config.get(j).map(|item| (j, item))) {
            Some((j, config_item)) => {
                if let Some(flag) = used.get_mut(j) {
                    *flag = true;
                }
                path.push(element);
                out.push(merge_at(live_item, config_item, path, schema));
                path.pop();
            }
            None => out.push(live_item.clone()),
        }
    }
    for (item, was_used) in config.iter().zip(used) {
        if !was_used {
            out.push(strip_nulls(item));
        }
    }
    out
}

/// A copy of `value` without `null` map fields (an applied `null` never lands in the
/// object).
pub(super) fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// Removes the value at `path` (a field, or a list item by its element). Maps and lists
/// that the removal leaves empty are removed too, as a typed API server omits empty
/// optional maps and lists.
/// Returns whether something was removed.
pub(super) fn remove_path(value: &mut Value, path: &[PathElement], schema: &ObjectSchema) -> bool {
    let mut prefix = Vec::new();
    remove_at(value, path, &mut prefix, schema)
}

fn remove_at(
    value: &mut Value,
    path: &[PathElement],
    prefix: &mut Path,
    schema: &ObjectSchema,
) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    match (first, value) {
        (PathElement::Field(name), Value::Object(map)) => {
            if rest.is_empty() {
                return map.remove(name).is_some();
            }
            let Some(child) = map.get_mut(name) else {
                return false;
            };
            prefix.push(first.clone());
            let removed = remove_at(child, rest, prefix, schema);
            prefix.pop();
            let emptied = child.as_object().is_some_and(Map::is_empty)
                || child.as_array().is_some_and(Vec::is_empty);
            if removed && emptied {
                map.remove(name);
            }
            removed
        }
        (PathElement::Field(_), _) => false,
        (element, Value::Array(items)) => {
            let list_type = schema.list_type(prefix);
            let position = items
                .iter()
                .enumerate()
                .position(|(i, item)| item_element(item, i, list_type) == *element);
            let Some(index) = position else {
                return false;
            };
            if rest.is_empty() {
                items.remove(index);
                return true;
            }
            let Some(item) = items.get_mut(index) else {
                return false;
            };
            prefix.push(element.clone());
            let removed = remove_at(item, rest, prefix, schema);
            prefix.pop();
            removed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> ObjectSchema {
        ObjectSchema::for_type("apps/v1", "Deployment")
    }

    #[test]
    fn merge_table() {
        let cases = [
            (
                "associative list merged by key, live order kept, new items appended",
                json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "a", "image": "a:1", "tty": true},
                    {"name": "b", "image": "b:1"}]}}}}),
                json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "c", "image": "c:1"},
                    {"name": "a", "image": "a:2"}]}}}}),
                json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "a", "image": "a:2", "tty": true},
                    {"name": "b", "image": "b:1"},
                    {"name": "c", "image": "c:1"}]}}}}),
            ),
            (
                "atomic list replaced",
                json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "a", "args": ["x", "y"]}]}}}}),
                json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "a", "args": ["z"]}]}}}}),
                json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "a", "args": ["z"]}]}}}}),
            ),
            (
                "atomic map replaced, granular map merged, null removes",
                json!({"metadata": {"labels": {"a": "1", "b": "2"}},
                       "spec": {"selector": {"matchLabels": {"a": "1", "b": "2"}}}}),
                json!({"metadata": {"labels": {"b": null, "c": "3"}},
                       "spec": {"selector": {"matchLabels": {"c": "3"}}}}),
                json!({"metadata": {"labels": {"a": "1", "c": "3"}},
                       "spec": {"selector": {"matchLabels": {"c": "3"}}}}),
            ),
            (
                "set list unioned; ports keyed with the protocol default",
                json!({"metadata": {"finalizers": ["x"]},
                       "spec": {"template": {"spec": {"containers": [{"name": "a",
                          "ports": [{"containerPort": 80, "protocol": "TCP", "name": "h"}]}]}}}}),
                json!({"metadata": {"finalizers": ["y", "x"]},
                       "spec": {"template": {"spec": {"containers": [{"name": "a",
                          "ports": [{"containerPort": 80, "name": "http"}]}]}}}}),
                json!({"metadata": {"finalizers": ["x", "y"]},
                       "spec": {"template": {"spec": {"containers": [{"name": "a",
                          "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]}]}}}}),
            ),
        ];
        for (name, live, config, want) in cases {
            assert_eq!(merge(&live, &config, &deployment()), want, "{name}");
        }
    }

    #[test]
    fn remove_path_removes_items_and_empty_maps() {
        let mut value = json!({
            "metadata": {"labels": {"a": "1"}},
            "spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}}
        });
        let schema = deployment();
        let label = vec![
            PathElement::Field("metadata".into()),
            PathElement::Field("labels".into()),
            PathElement::Field("a".into()),
        ];
        assert!(remove_path(&mut value, &label, &schema));
        let container = vec![
            PathElement::Field("spec".into()),
            PathElement::Field("template".into()),
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::Key(r#"{"name":"a"}"#.into()),
        ];
        assert!(remove_path(&mut value, &container, &schema));
        assert!(!remove_path(&mut value, &container, &schema));
        assert_eq!(
            value,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "b"}]}}}})
        );
        let last = vec![
            PathElement::Field("spec".into()),
            PathElement::Field("template".into()),
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::Key(r#"{"name":"b"}"#.into()),
        ];
        assert!(remove_path(&mut value, &last, &schema));
        assert_eq!(value, json!({}), "emptied lists and maps go too");
    }
}
