//! Field sets: the `FieldsV1` representation of `metadata.managedFields`.
//!
//! A [`FieldSet`] is a set of [`Path`]s into an object. Each path is a sequence of
//! [`PathElement`]s: a map field (`f:name`), an associative-list item by its key fields
//! (`k:{"name":"x"}`), a set-list item by value (`v:"x"`) or a list item by index (`i:0`).
//! A path in the set means "this field (or item) is owned"; its ancestors are not owned
//! unless they are in the set too.
//!
//! ```text
//!  applied config ──from_value(schema)──▶ FieldSet ──to_json──▶ fieldsV1
//!                                          ▲   │ union / difference / intersection
//!  fieldsV1 ────────────from_json──────────┘   ▼
//! ```
//!
//! The JSON form nests elements; a node that is itself a member and has children carries a
//! `".": {}` entry, a member without children is `{}` (structured-merge-diff's encoding).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::schema::{KeyField, ListType, ObjectSchema};

/// Errors of field-set parsing and construction.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FieldSetError {
    /// A `fieldsV1` node is not a JSON object.
    #[error("fieldsV1 at {path}: expected an object")]
    NotAnObject {
        /// Where in the field set.
        path: String,
    },
    /// A `fieldsV1` key has no known prefix (`f:`, `k:`, `v:`, `i:`, `.`) or a bad payload.
    #[error("fieldsV1 at {path}: invalid key {key:?}")]
    BadKey {
        /// Where in the field set.
        path: String,
        /// The offending key.
        key: String,
    },
    /// An item of an associative list lacks one of the list's key fields.
    #[error("{path}: associative list item lacks key field {field:?}")]
    MissingKey {
        /// The list's path.
        path: String,
        /// The missing key field.
        field: String,
    },
    /// An item of an associative list is not an object.
    #[error("{path}: associative list item is not an object")]
    ItemNotAnObject {
        /// The list's path.
        path: String,
    },
    /// Two items of an associative or set list have the same key.
    #[error("{path}: duplicate entries for key {key}")]
    Duplicate {
        /// The list's path.
        path: String,
        /// The duplicated key.
        key: String,
    },
}

impl FieldSetError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            FieldSetError::NotAnObject { .. } | FieldSetError::BadKey { .. } => "fieldset_json",
            FieldSetError::MissingKey { .. } | FieldSetError::ItemNotAnObject { .. } => {
                "fieldset_list_item"
            }
            FieldSetError::Duplicate { .. } => "fieldset_duplicate",
        }
    }
}

/// One step of a path into an object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of a map: `f:name`.
    Field(String),
    /// An associative-list item: canonical JSON object of its key fields, keys sorted.
    Key(String),
    /// A set-list item: canonical JSON of its value.
    Value(String),
    /// A list item by position (lists whose items have no identity).
    Index(usize),
}

/// A path from the object's root.
pub type Path = Vec<PathElement>;

/// A set of owned paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    paths: BTreeSet<Path>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `path`.
    pub fn insert(&mut self, path: Path) {
        self.paths.insert(path);
    }

    /// Whether `path` is in the set.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        self.paths.contains(path)
    }

    /// Whether the set holds a path strictly under `path`.
    pub fn has_descendant(&self, path: &[PathElement]) -> bool {
        self.paths
            .range(path.to_vec()..)
            .take_while(|p| p.starts_with(path))
            .any(|p| p.len() > path.len())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// The paths in order.
    pub fn iter(&self) -> impl Iterator<Item = &Path> {
        self.paths.iter()
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            paths: self.paths.union(&other.paths).cloned().collect(),
        }
    }

    /// Paths in `self` and not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            paths: self.paths.difference(&other.paths).cloned().collect(),
        }
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet {
            paths: self.paths.intersection(&other.paths).cloned().collect(),
        }
    }

    /// The paths for which `keep` holds.
    pub fn filter(&self, keep: impl Fn(&Path) -> bool) -> FieldSet {
        FieldSet {
            paths: self.paths.iter().filter(|p| keep(p)).cloned().collect(),
        }
    }

    /// The field set an applier of `value` owns: every scalar leaf, every list item
    /// (associative by key, set by value), every atomic list or map, and every empty map
    /// below the top level.
    /// Null fields are skipped. Fails on associative-list items without their keys and on
    /// duplicate keys, as kube-apiserver does.
    pub fn from_value(value: &Value, schema: &ObjectSchema) -> Result<FieldSet, FieldSetError> {
        let mut set = FieldSet::new();
        let mut path = Vec::new();
        collect(value, &mut path, schema, &mut set)?;
        Ok(set)
    }

    /// Parses a `fieldsV1` object.
    pub fn from_json(json: &Value) -> Result<FieldSet, FieldSetError> {
        let mut set = FieldSet::new();
        let mut path = Vec::new();
        parse_node(json, &mut path, &mut set)?;
        Ok(set)
    }

    /// Renders the set as a `fieldsV1` object.
    pub fn to_json(&self) -> Value {
        let mut root = Node::default();
        for path in &self.paths {
            let mut node = &mut root;
            for element in path {
                node = node.children.entry(element.clone()).or_default();
            }
            node.member = true;
        }
        root.to_json()
    }
}

/// A tree node used to render `fieldsV1`.
#[derive(Default)]
struct Node {
    member: bool,
    children: BTreeMap<PathElement, Node>,
}

impl Node {
    fn to_json(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".to_string(), Value::Object(Map::new()));
        }
        for (element, child) in &self.children {
            map.insert(element_key(element), child.to_json());
        }
        Value::Object(map)
    }
}

/// The `fieldsV1` key of one element.
fn element_key(element: &PathElement) -> String {
    match element {
        PathElement::Field(name) => format!("f:{name}"),
        PathElement::Key(key) => format!("k:{key}"),
        PathElement::Value(value) => format!("v:{value}"),
        PathElement::Index(index) => format!("i:{index}"),
    }
}

fn parse_node(json: &Value, path: &mut Path, set: &mut FieldSet) -> Result<(), FieldSetError> {
    let Some(map) = json.as_object() else {
        return Err(FieldSetError::NotAnObject {
            path: path_string(path),
        });
    };
    if !path.is_empty() && (map.is_empty() || map.contains_key(".")) {
        set.insert(path.clone());
    }
    for (key, child) in map {
        if key == "." {
            continue;
        }
        let element = parse_key(key).ok_or_else(|| FieldSetError::BadKey {
            path: path_string(path),
            key: key.clone(),
        })?;
        path.push(element);
        parse_node(child, path, set)?;
        path.pop();
    }
    Ok(())
}

/// Parses one `fieldsV1` key into an element (canonicalizing JSON payloads).
fn parse_key(key: &str) -> Option<PathElement> {
    let (prefix, rest) = key.split_at_checked(2)?;
    match prefix {
        "f:" => Some(PathElement::Field(rest.to_string())),
        "k:" => {
            let value: Value = serde_json::from_str(rest).ok()?;
            value
                .is_object()
                .then(|| PathElement::Key(canonical(&value)))
        }
        "v:" => {
            let value: Value = serde_json::from_str(rest).ok()?;
            Some(PathElement::Value(canonical(&value)))
        }
        "i:" => rest.parse().ok().map(PathElement::Index),
        _ => None,
    }
}

/// Canonical JSON text of a value: objects with sorted keys, compact.
pub fn canonical(value: &Value) -> String {
    sorted(value).to_string()
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let ordered: BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The key element of an associative-list item, with key defaults filled in. Fails with
/// the name of a missing key field (one without default), or with `None` when the item is
/// not an object.
pub fn key_element(item: &Value, keys: &[KeyField]) -> Result<PathElement, Option<String>> {
    let Some(object) = item.as_object() else {
        return Err(None);
    };
    let mut parts: BTreeMap<&str, Value> = BTreeMap::new();
    for key in keys {
        let value = match (object.get(key.name), key.default) {
            (Some(v), _) if !v.is_null() => v.clone(),
            (_, Some(default)) => Value::String(default.to_string()),
            _ => return Err(Some(key.name.to_string())),
        };
        parts.insert(key.name, value);
    }
    let map: Map<String, Value> = parts.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Ok(PathElement::Key(canonical(&Value::Object(map))))
}

/// The element identifying item `index` of a list of type `list_type`, falling back to
/// its index when the item has no identity (atomic lists, items without keys).
pub fn item_element(item: &Value, index: usize, list_type: ListType) -> PathElement {
    match list_type {
        ListType::Map(keys) => key_element(item, keys).unwrap_or(PathElement::Index(index)),
        ListType::Set => PathElement::Value(canonical(item)),
        ListType::Atomic => PathElement::Index(index),
    }
}

fn collect(
    value: &Value,
    path: &mut Path,
    schema: &ObjectSchema,
    set: &mut FieldSet,
) -> Result<(), FieldSetError> {
    match value {
        Value::Null => Ok(()),
        Value::Object(map) => {
            // An empty map is owned as a leaf (`emptyDir: {}`), except the top-level
            // sections (`spec: {}`), which every object of the kind has.
            let owned_empty = map.is_empty() && path.len() > 1;
            if owned_empty || (!path.is_empty() && schema.is_atomic_map(path)) {
                set.insert(path.clone());
                return Ok(());
            }
            for (name, child) in map {
                path.push(PathElement::Field(name.clone()));
                let result = collect(child, path, schema, set);
                path.pop();
                result?;
            }
            Ok(())
        }
        Value::Array(items) => collect_list(items, path, schema, set),
        _ => {
            set.insert(path.clone());
            Ok(())
        }
    }
}

fn collect_list(
    items: &[Value],
    path: &mut Path,
    schema: &ObjectSchema,
    set: &mut FieldSet,
) -> Result<(), FieldSetError> {
    let list_type = schema.list_type(path);
    if list_type == ListType::Atomic {
        set.insert(path.clone());
        return Ok(());
    }
    let mut seen = BTreeSet::new();
    for item in items {
        let element = match list_type {
            ListType::Map(keys) => key_element(item, keys).map_err(|missing| match missing {
                Some(field) => FieldSetError::MissingKey {
                    path: path_string(path),
                    field,
                },
                None => FieldSetError::ItemNotAnObject {
                    path: path_string(path),
                },
            })?,
            _ => PathElement::Value(canonical(item)),
        };
        if !seen.insert(element.clone()) {
            return Err(FieldSetError::Duplicate {
                path: path_string(path),
                key: element_key(&element),
            });
        }
        path.push(element);
        if matches!(list_type, ListType::Map(_)) {
            let result = collect(item, path, schema, set);
            if let Err(error) = result {
                path.pop();
                return Err(error);
            }
        }
        set.insert(path.clone());
        path.pop();
    }
    Ok(())
}

/// Renders a path like kube-apiserver's conflict messages:
/// `.spec.template.spec.containers[name="server"].image`, `.metadata.finalizers[="x"]`.
pub fn path_string(path: &[PathElement]) -> String {
    let mut out = String::new();
    for element in path {
        match element {
            PathElement::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            PathElement::Key(key) => {
                let parsed: Value = serde_json::from_str(key).unwrap_or(Value::Null);
                let fields: Vec<String> = parsed
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                out.push('[');
                out.push_str(&fields.join(","));
                out.push(']');
            }
            PathElement::Value(value) => {
                out.push_str("[=");
                out.push_str(value);
                out.push(']');
            }
            PathElement::Index(index) => {
                out.push_str(&format!("[{index}]"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.to_string())
    }

    fn set_of(paths: &[&[PathElement]]) -> FieldSet {
        let mut set = FieldSet::new();
        for path in paths {
            set.insert(path.to_vec());
        }
        set
    }

    #[test]
    fn applied_config_yields_kube_shaped_fields_v1() {
        let schema = ObjectSchema::for_type("apps/v1", "Deployment");
        let config = json!({
            "metadata": {"labels": {"app": "x"}, "finalizers": ["a/b"]},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "x"}},
                "template": {"spec": {
                    "containers": [{"name": "server", "image": "i:1",
                        "args": ["--a"], "ports": [{"containerPort": 80}]}],
                    "volumes": [{"name": "v", "emptyDir": {}}],
                    "nodeName": null
                }}
            }
        });
        let set = FieldSet::from_value(&config, &schema).expect("valid config");
        let want = json!({
            "f:metadata": {"f:finalizers": {"v:\"a/b\"": {}}, "f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {"f:spec": {
                    "f:containers": {"k:{\"name\":\"server\"}": {
                        ".": {}, "f:args": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                            ".": {}, "f:containerPort": {}
                        }}
                    }},
                    "f:volumes": {"k:{\"name\":\"v\"}": {".": {}, "f:emptyDir": {}, "f:name": {}}}
                }}
            }
        });
        assert_eq!(set.to_json(), want);
        assert_eq!(FieldSet::from_json(&want), Ok(set));
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let schema = ObjectSchema::for_type("apps/v1", "Deployment");
        let cases = [
            (
                json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
                "lacks key field \"name\"",
            ),
            (
                json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}}),
                "duplicate entries",
            ),
            (
                json!({"spec": {"template": {"spec": {"containers": ["a"]}}}}),
                "not an object",
            ),
        ];
        for (config, want) in cases {
            let error = FieldSet::from_value(&config, &schema).expect_err("invalid");
            assert!(
                error.to_string().contains(want),
                "{error} should contain {want}"
            );
        }
    }

    #[test]
    fn fields_v1_parse_errors_are_reported() {
        let cases = [
            json!({"x:bad": {}}),
            json!({"f:spec": []}),
            json!({"k:notjson": {}}),
            json!({"i:abc": {}}),
        ];
        for json in cases {
            assert!(FieldSet::from_json(&json).is_err(), "{json}");
        }
    }

    #[test]
    fn set_algebra() {
        let a = set_of(&[&[f("a")], &[f("b")]]);
        let b = set_of(&[&[f("b")], &[f("c")]]);
        assert_eq!(a.union(&b), set_of(&[&[f("a")], &[f("b")], &[f("c")]]));
        assert_eq!(a.difference(&b), set_of(&[&[f("a")]]));
        assert_eq!(a.intersection(&b), set_of(&[&[f("b")]]));
        assert!(a.difference(&a).is_empty());
        let nested = set_of(&[&[f("a"), f("b")], &[f("c")]]);
        assert!(nested.has_descendant(&[f("a")]));
        assert!(!nested.has_descendant(&[f("a"), f("b")]));
        assert!(!nested.has_descendant(&[f("c")]));
        assert!(!nested.has_descendant(&[f("b")]));
    }

    #[test]
    fn paths_render_like_kube() {
        let cases: &[(Vec<PathElement>, &str)] = &[
            (vec![f("spec"), f("replicas")], ".spec.replicas"),
            (
                vec![
                    f("c"),
                    PathElement::Key(r#"{"name":"s"}"#.into()),
                    f("image"),
                ],
                r#".c[name="s"].image"#,
            ),
            (
                vec![
                    f("p"),
                    PathElement::Key(r#"{"port":80,"protocol":"TCP"}"#.into()),
                ],
                r#".p[port=80,protocol="TCP"]"#,
            ),
            (
                vec![f("fin"), PathElement::Value(r#""x""#.into())],
                r#".fin[="x"]"#,
            ),
            (vec![f("l"), PathElement::Index(3)], ".l[3]"),
        ];
        for (path, want) in cases {
            assert_eq!(path_string(path), *want);
        }
    }
}
