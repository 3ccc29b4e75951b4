//! Differences between a projected live object and a desired object: field changes,
//! RFC 6902 patches, unified YAML diffs, and the redaction of Secret values.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};
use similar::TextDiff;

use super::project::list_key;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Segment {
    /// A map key.
    Field(String),
    /// An item of a keyed list, named by its merge key (`name=server`).
    Key(String),
    /// An item of an atomic list, by position.
    Index(usize),
}

/// A path to a field, printed as `spec.template.spec.containers[name=server].image`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath(pub Vec<Segment>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Field(name) if i == 0 => write!(f, "{name}")?,
                Segment::Field(name) => write!(f, ".{name}")?,
                Segment::Key(key) => write!(f, "[{key}]")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What happens to one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The field is set where it was absent.
    Add,
    /// The field is taken away.
    Remove,
    /// The field gets another value.
    Replace,
}

/// A changed field with its value before (projected live) and after (desired).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: FieldPath,
    pub kind: ChangeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// The field changes that turn `before` into `after`, keyed lists matched by key.
pub fn changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(
        Some(before),
        Some(after),
        "",
        &mut FieldPath::default(),
        &mut out,
    );
    out
}

fn walk(
    before: Option<&Value>,
    after: Option<&Value>,
    field: &str,
    path: &mut FieldPath,
    out: &mut Vec<FieldChange>,
) {
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => walk_maps(b, a, path, out),
        (Some(Value::Array(b)), Some(Value::Array(a))) if b != a => {
            walk_lists(b, a, field, path, out)
        }
        (Some(b), Some(a)) if b != a => out.push(change(path, ChangeKind::Replace, before, after)),
        (None, Some(_)) => out.push(change(path, ChangeKind::Add, None, after)),
        (Some(_), None) => out.push(change(path, ChangeKind::Remove, before, None)),
        _ => {}
    }
}

fn change(
    path: &FieldPath,
    kind: ChangeKind,
    before: Option<&Value>,
    after: Option<&Value>,
) -> FieldChange {
    FieldChange {
        path: path.clone(),
        kind,
        before: before.cloned(),
        after: after.cloned(),
    }
}

fn walk_maps(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    path: &mut FieldPath,
    out: &mut Vec<FieldChange>,
) {
    let removed = before.keys().filter(|k| !after.contains_key(*k));
    for key in after.keys().chain(removed) {
        path.0.push(Segment::Field(key.clone()));
        walk(before.get(key), after.get(key), key, path, out);
        path.0.pop();
    }
}

fn walk_lists(
    before: &[Value],
    after: &[Value],
    field: &str,
    path: &mut FieldPath,
    out: &mut Vec<FieldChange>,
) {
    let keyed = before
        .iter()
        .chain(after)
        .all(|v| list_key(field, v).is_some());
    if keyed {
        let find = |list: &'_ [Value], item: &Value| -> Option<usize> {
            let key = list_key(field, item);
            list.iter().position(|v| list_key(field, v) == key)
        };
        let removed = before.iter().filter(|b| find(after, b).is_none());
        for item in after.iter().chain(removed) {
            path.0.push(Segment::Key(key_text(field, item)));
            let b = find(before, item).map(|i| &before[i]);
            let a = find(after, item).map(|i| &after[i]);
            walk(b, a, field, path, out);
            path.0.pop();
        }
    } else if before.len() == after.len() && after.iter().all(Value::is_object) {
        for (i, (b, a)) in before.iter().zip(after).enumerate() {
            path.0.push(Segment::Index(i));
            walk(Some(b), Some(a), field, path, out);
            path.0.pop();
        }
    } else {
        out.push(change(
            path,
            ChangeKind::Replace,
            Some(&Value::Array(before.to_vec())),
            Some(&Value::Array(after.to_vec())),
        ));
    }
}

fn key_text(field: &str, item: &Value) -> String {
    let parts = list_key(field, item).unwrap_or_default();
    let parts: Vec<String> = parts
        .iter()
        .map(|(name, value)| match value {
            Value::String(s) => format!("{name}={s}"),
            other => format!("{name}={other}"),
        })
        .collect();
    parts.join(",")
}

/// A unified diff of two objects as YAML. `None` on either side stands for "no object".
pub fn unified_yaml(before: Option<&Value>, after: Option<&Value>, title: &str) -> String {
    let before = before.map(to_yaml).unwrap_or_default();
    let after = after.map(to_yaml).unwrap_or_default();
    if before == after {
        return String::new();
    }
    TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{title}"), &format!("desired/{title}"))
        .to_string()
}

/// YAML text of a value; JSON values always serialize, the fallback is never taken.
pub fn to_yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|_| value.to_string())
}

/// The text that stands in for every Secret value in every output.
pub const REDACTED: &str = "(redacted)";
/// The text that stands in for a Secret value that changes.
pub const REDACTED_CHANGED: &str = "(redacted, changed)";

/// Folds a desired Secret's `stringData` into `data` (base64), as a server stores it, so
/// that it compares with the live object.
pub fn fold_string_data(secret: &mut Value) {
    use base64::Engine as _;
    let Some(map) = secret.as_object_mut() else {
        return;
    };
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return;
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Some(data) = data.as_object_mut() {
        for (key, value) in string_data {
            let text = value.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            data.insert(key, Value::String(encoded));
        }
    }
}

/// Replaces the values of a Secret's `data` (and any `stringData`) on both sides, keeping
/// which keys are added, removed or changed visible: an unchanged value reads
/// [`REDACTED`] on both sides, a changing one [`REDACTED`] before and [`REDACTED_CHANGED`]
/// after. The `last-applied-configuration` annotation, which may copy the data, goes too.
pub fn redact_secret(before: Option<&mut Value>, after: Option<&mut Value>) {
    let before_data = before.as_deref().and_then(|b| b.get("data")).cloned();
    if let Some(before) = before {
        redact_side(before, None);
    }
    if let Some(after) = after {
        redact_side(after, Some(before_data.as_ref()));
    }
}

/// Redacts one side; `compare` is `Some(before's data)` on the desired side.
fn redact_side(object: &mut Value, compare: Option<Option<&Value>>) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    map.remove("stringData");
    if let Some(Value::Object(data)) = map.get_mut("data") {
        for (key, value) in data.iter_mut() {
            let changed = match compare {
                Some(before) => before.and_then(|b| b.get(key)).is_some_and(|b| b != value),
                None => false,
            };
            let text = if changed { REDACTED_CHANGED } else { REDACTED };
            *value = Value::String(text.to_string());
        }
    }
    if let Some(annotations) = map
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}
