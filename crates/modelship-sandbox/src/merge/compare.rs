//! Comparison of two versions of an object into the field sets that were added, modified
//! and removed, like structured-merge-diff's `Compare`. Ownership tracking is built on it:
//! an `Update` manager gains `added ∪ modified`, every other manager loses `removed`, and
//! an applier conflicts with other managers on `added ∪ modified`.
//!
//! Leaves are scalars, atomic lists and atomic maps; list items are recorded by their
//! element (key, value or index). A map or list that appears or disappears as a whole is
//! recorded too (the `".": {}` of kube's Update entries), except the object's root and the
//! fields a new typed object of a built-in kind already has (`metadata`, `spec`,
//! `template`, ..., see `STRUCT_FIELDS`), like kube-apiserver comparing against a zero Go
//! object on create.

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
    let mut walker = Walker {
        schema,
        out: Comparison::default(),
        path: Vec::new(),
    };
    walker.walk(Some(old), Some(new), true);
    walker.out
}

/// Fields of built-in kinds that a zero Go object already has: non-pointer structs
/// (`spec`, `status`, `template`, `strategy`, container `resources`, HPA `scaleTargetRef`,
/// Service `status.loadBalancer`) and fields without `omitempty` (`PodSpec.Containers`,
/// serialized as `null`). They exist only where their parent exists in the zero object:
/// the `resources` of a new container is new.
const STRUCT_FIELDS: &[&str] = &[
    "spec",
    "status",
    "template",
    "strategy",
    "resources",
    "scaleTargetRef",
    "loadBalancer",
    "containers",
];

fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// The state of one comparison walk.
struct Walker<'a> {
    schema: &'a ObjectSchema,
    out: Comparison,
    path: Path,
}

impl Walker<'_> {
    /// Whether field `name` of a map that exists in a zero object exists there too.
    fn in_zero_object(&self, name: &str) -> bool {
        name == "metadata" || (self.schema.is_known() && STRUCT_FIELDS.contains(&name))
    }

    /// Compares the values at the current path; `zero` tells whether the path exists in a
    /// zero typed object (the root, `spec`, ...).
    fn walk(&mut self, old: Option<&Value>, new: Option<&Value>, zero: bool) {
        let (old, new) = (present(old), present(new));
        let atomic_map = !self.path.is_empty() && self.schema.is_atomic_map(&self.path);
        let granular_list = self.schema.list_type(&self.path) != ListType::Atomic;
        match (old, new) {
            (None, None) => {}
            (Some(Value::Object(_)) | None, Some(Value::Object(_)) | None) if !atomic_map => {
                self.record_container(old.is_some(), new.is_some(), zero);
                self.walk_maps(
                    old.and_then(Value::as_object),
                    new.and_then(Value::as_object),
                    zero,
                );
            }
            (Some(Value::Array(_)) | None, Some(Value::Array(_)) | None) if granular_list => {
                self.record_container(old.is_some(), new.is_some(), zero);
                self.walk_lists(
                    old.and_then(Value::as_array).map(Vec::as_slice),
                    new.and_then(Value::as_array).map(Vec::as_slice),
                );
            }
            (None, Some(_)) => self.out.added.insert(self.path.clone()),
            (Some(_), None) => self.out.removed.insert(self.path.clone()),
            (Some(a), Some(b)) => {
                if a != b {
                    self.out.modified.insert(self.path.clone());
                }
            }
        }
    }

    /// Records the appearance or disappearance of a whole map or list, unless a zero
    /// object already has it.
    fn record_container(&mut self, old_present: bool, new_present: bool, zero: bool) {
        if zero {
            return;
        }
        match (old_present, new_present) {
            (false, true) => self.out.added.insert(self.path.clone()),
            (true, false) => self.out.removed.insert(self.path.clone()),
            _ => {}
        }
    }

    fn walk_maps(
        &mut self,
        old: Option<&Map<String, Value>>,
        new: Option<&Map<String, Value>>,
        zero: bool,
    ) {
        let mut names: Vec<&String> = old.into_iter().flat_map(|m| m.keys()).collect();
        for name in new.into_iter().flat_map(|m| m.keys()) {
            if !old.is_some_and(|m| m.contains_key(name)) {
                names.push(name);
            }
        }
        for name in names {
            let child_zero = zero && self.in_zero_object(name);
            self.path.push(PathElement::Field(name.clone()));
            self.walk(
                old.and_then(|m| m.get(name)),
                new.and_then(|m| m.get(name)),
                child_zero,
            );
            self.path.pop();
        }
    }

    fn walk_lists(&mut self, old: Option<&[Value]>, new: Option<&[Value]>) {
        let list_type = self.schema.list_type(&self.path);
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
            self.path.push(element.clone());
            match (&old_item, &new_item) {
                (None, Some(_)) => self.out.added.insert(self.path.clone()),
                (Some(_), None) => self.out.removed.insert(self.path.clone()),
                _ => {}
            }
            if list_type != ListType::Set {
                self.walk(old_item.as_ref(), new_item.as_ref(), false);
            }
            self.path.pop();
        }
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

    /// What kube-apiserver records for `kubectl create deployment web --image=nginx`
    /// (after defaulting): `.` on maps that appear (labels, rollingUpdate), none on the
    /// structs and lists a zero Deployment already has.
    #[test]
    fn create_of_a_defaulted_deployment_matches_kube() {
        let schema = ObjectSchema::for_type("apps/v1", "Deployment");
        let mut created = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"labels": {"app": "web"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}
        });
        crate::merge::apply_defaults(&mut created);
        let got = compare(&json!({}), &created, &schema).added.to_json();
        let want = json!({
            "f:apiVersion": {}, "f:kind": {},
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {},
                "f:selector": {},
                "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}},
                    "f:type": {}},
                "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {
                        "f:containers": {"k:{\"name\":\"nginx\"}": {".": {},
                            "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {},
                            "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}},
                        "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                        "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}
                    }
                }
            }
        });
        assert_eq!(got, want);
    }

    #[test]
    fn unknown_kinds_record_new_spec_maps() {
        let schema = ObjectSchema::for_type("example.com/v1", "Widget");
        let got = compare(&json!({}), &json!({"spec": {"a": 1}}), &schema);
        assert_eq!(got.added.to_json(), json!({"f:spec": {".": {}, "f:a": {}}}));
    }
}
