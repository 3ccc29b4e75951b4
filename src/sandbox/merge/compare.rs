//! Comparison of two versions of an object into the field sets that were added, modified
//! and removed, like structured-merge-diff's `Compare`. Ownership tracking is built on it:
//! an `Update` manager gains `added ∪ modified`, every other manager loses `removed`, and
//! an applier conflicts with other managers on `added ∪ modified`.
//!
//! Leaves are scalars, atomic lists and atomic maps; list items are recorded by their
//! element (key, value or index). A map or list that appears or disappears as a whole is
//! recorded too (the `".": {}` of kube's Update entries), except the object's root and the
//! always-present structs of built-in kinds (`metadata`, `spec`, `status`, `template`,
//! `strategy`), which exist (empty) even in a new typed object.

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, Path, PathElement, item_element};
use super::schema::{ListType, ObjectSchema};

/// What changed between two objects.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Comparison {
    /// Paths present only in the new object.
    pub added: FieldSet,
    /// Leaves present in both with different values.
    pub modified: FieldSet,
    /// Paths present only in the old object.
    pub removed: FieldSet,
}

impl Comparison {
    /// `added ∪ modified`.
    pub fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }

    /// Applies `keep` to every set.
    pub fn filter(self, keep: impl Fn(&Path) -> bool) -> Comparison {
        Comparison {
            added: self.added.filter(&keep),
            modified: self.modified.filter(&keep),
            removed: self.removed.filter(&keep),
        }
    }
}

/// Compares `old` (the live object) with `new`.
pub(super) fn compare(old: &Value, new: &Value, schema: &ObjectSchema) -> Comparison {
    let mut comparison = Comparison::default();
    let mut path = Vec::new();
    walk(Some(old), Some(new), &mut path, schema, &mut comparison);
    comparison
}

/// Fields of built-in kinds that are non-pointer structs in Go, hence always present.
const STRUCT_FIELDS: &[&str] = &["spec", "status", "template", "strategy"];

fn is_always_present(path: &[PathElement], schema: &ObjectSchema) -> bool {
    match path.last() {
        None => true,
        Some(PathElement::Field(name)) => {
            name == "metadata" || (schema.is_known() && STRUCT_FIELDS.contains(&name.as_str()))
        }
        Some(_) => false,
    }
}

fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

fn walk(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut Path,
    schema: &ObjectSchema,
    out: &mut Comparison,
) {
    let (old, new) = (present(old), present(new));
    match (old, new) {
        (None, None) => {}
        (Some(Value::Object(_)) | None, Some(Value::Object(_)) | None)
            if path.is_empty() || !schema.is_atomic_map(path) =>
        {
            let old_map = old.and_then(Value::as_object);
            let new_map = new.and_then(Value::as_object);
            walk_maps(old_map, new_map, path, schema, out);
        }
        (Some(Value::Array(_)) | None, Some(Value::Array(_)) | None)
            if schema.list_type(path) != ListType::Atomic =>
        {
            let old_items = old.and_then(Value::as_array).map(Vec::as_slice);
            let new_items = new.and_then(Value::as_array).map(Vec::as_slice);
            walk_lists(old_items, new_items, path, schema, out);
        }
        (None, Some(_)) => out.added.insert(path.clone()),
        (Some(_), None) => out.removed.insert(path.clone()),
        (Some(a), Some(b)) => {
            if a != b {
                out.modified.insert(path.clone());
            }
        }
    }
}

/// Records the appearance or disappearance of a whole map or list.
fn record_container(
    old_present: bool,
    new_present: bool,
    path: &Path,
    schema: &ObjectSchema,
    out: &mut Comparison,
) {
    if is_always_present(path, schema) {
        return;
    }
    match (old_present, new_present) {
        (false, true) => out.added.insert(path.clone()),
        (true, false) => out.removed.insert(path.clone()),
        _ => {}
    }
}

fn walk_maps(
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
    path: &mut Path,
    schema: &ObjectSchema,
    out: &mut Comparison,
) {
    record_container(old.is_some(), new.is_some(), path, schema, out);
    let mut names: Vec<&String> = old.into_iter().flat_map(|m| m.keys()).collect();
    for name in new.into_iter().flat_map(|m| m.keys()) {
        if !old.is_some_and(|m| m.contains_key(name)) {
            names.push(name);
        }
    }
    for name in names {
        path.push(PathElement::Field(name.clone()));
        walk(
            old.and_then(|m| m.get(name)),
            new.and_then(|m| m.get(name)),
            path,
            schema,
            out,
        );
        path.pop();
    }
}

fn walk_lists(
    old: Option<&[Value]>,
    new: Option<&[Value]>,
    path: &mut Path,
    schema: &ObjectSchema,
    out: &mut Comparison,
) {
    record_container(old.is_some(), new.is_some(), path, schema, out);
    let list_type = schema.list_type(path);
    let index = |items: Option<&[Value]>| -> Vec<(PathElement, Value)> {
        items
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, item)| (item_element(item, i, list_type), item.clone()))
            .collect()
    };
    let old_items = index(old);
    let new_items = index(new);
    let mut elements: Vec<&PathElement> = old_items.iter().map(|(e, _)| e).collect();
    for (element, _) in &new_items {
        if !old_items.iter().any(|(e, _)| e == element) {
            elements.push(element);
        }
    }
    let find = |items: &[(PathElement, Value)], element: &PathElement| -> Option<Value> {
        items
            .iter()
            .find(|(e, _)| e == element)
            .map(|(_, v)| v.clone())
    };
    for element in elements {
        let old_item = find(&old_items, element);
        let new_item = find(&new_items, element);
        path.push(element.clone());
        match (&old_item, &new_item) {
            (None, Some(_)) => out.added.insert(path.clone()),
            (Some(_), None) => out.removed.insert(path.clone()),
            _ => {}
        }
        if list_type != ListType::Set {
            walk(old_item.as_ref(), new_item.as_ref(), path, schema, out);
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comparison_table() {
        let schema = ObjectSchema::for_type("apps/v1", "Deployment");
        let cases = [
            (
                json!({"spec": {"replicas": 1}}),
                json!({"spec": {"replicas": 3}}),
                json!({}),
                json!({"f:spec": {"f:replicas": {}}}),
                json!({}),
            ),
            (
                json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}}}),
                json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "1"}]}}}}),
                json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"b\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}),
                json!({}),
                json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}),
            ),
            (
                json!({"metadata": {"name": "x"}}),
                json!({"metadata": {"name": "x", "labels": {"a": "1"}, "finalizers": ["f"]}}),
                json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}},
                    "f:finalizers": {".": {}, "v:\"f\"": {}}}}),
                json!({}),
                json!({}),
            ),
            (
                json!({"spec": {"selector": {"matchLabels": {"a": "1"}}}}),
                json!({"spec": {"selector": {"matchLabels": {"a": "2"}}}}),
                json!({}),
                json!({"f:spec": {"f:selector": {}}}),
                json!({}),
            ),
        ];
        for (old, new, added, modified, removed) in cases {
            let got = compare(&old, &new, &schema);
            assert_eq!(got.added.to_json(), added, "added {old} -> {new}");
            assert_eq!(got.modified.to_json(), modified, "modified {old} -> {new}");
            assert_eq!(got.removed.to_json(), removed, "removed {old} -> {new}");
        }
    }

    #[test]
    fn unknown_kinds_record_new_spec_maps() {
        let schema = ObjectSchema::for_type("example.com/v1", "Widget");
        let got = compare(&json!({}), &json!({"spec": {"a": 1}}), &schema);
        assert_eq!(got.added.to_json(), json!({"f:spec": {".": {}, "f:a": {}}}));
    }
}
