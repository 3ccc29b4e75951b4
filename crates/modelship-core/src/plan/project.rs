//! Projection of a live object onto the fields modelship applies.
//!
//! The live object holds far more than we send: server defaults, fields of other managers
//! (an HPA's `replicas`, a rollout's weights), status, bookkeeping. Comparing it whole with
//! the desired object would show all of that as drift. Instead the live object is projected
//! onto the desired object's field set:
//!
//! ```text
//!   live ──┐
//!          ├─ project ──> projected live  ── diff ──> changes
//! desired ─┤                                 ^
//!          └─────────────────────────────────┘
//! ```
//!
//! - maps keep only the keys the desired object has;
//! - keyed lists (containers, env, ports, volumes, ...) are matched by their merge key,
//!   in the desired order; other lists are matched by position;
//! - scalars a server canonicalises (`0.5` / `500m`, `8080` / `"8080"`) are compared by
//!   meaning and take the desired spelling when they mean the same;
//! - fields modelship applied before (its `managedFields` entry, operation Apply) but no
//!   longer sends are kept, so they show as removals, unless another manager shares them
//!   (server-side apply then leaves them in place).
//!
//! Nothing here needs a request to the server: the plan is exact without a dry run.

use serde_json::{Map, Value};

use crate::quantity::Quantity;

pub use crate::meta::FIELD_MANAGER;

/// A node of a `fieldsV1` tree (`{"f:spec": {"f:replicas": {}}}`).
type Fields = Map<String, Value>;

/// Projects `live` onto the fields of `desired` (see the module docs).
pub fn project(live: &Value, desired: &Value) -> Value {
    let (ours, others) = owners(live);
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => Value::Object(project_map(l, d, "", ours, &others)),
        _ => live.clone(),
    }
}

/// Splits the `managedFields` of a live object into modelship's applied field set and
/// everyone else's.
fn owners(live: &Value) -> (Option<&Fields>, Vec<&Fields>) {
    let mut ours = None;
    let mut others = Vec::new();
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array);
    for entry in entries.into_iter().flatten() {
        let Some(fields) = entry.get("fieldsV1").and_then(Value::as_object) else {
            continue;
        };
        let manager = entry.get("manager").and_then(Value::as_str);
        let operation = entry.get("operation").and_then(Value::as_str);
        if manager == Some(FIELD_MANAGER) && operation == Some("Apply") {
            ours = Some(fields);
        } else {
            others.push(fields);
        }
    }
    (ours, others)
}

fn child<'a>(node: Option<&'a Fields>, name: &str) -> Option<&'a Fields> {
    node.and_then(|n| n.get(name)).and_then(Value::as_object)
}

fn children<'a>(nodes: &[&'a Fields], name: &str) -> Vec<&'a Fields> {
    nodes
        .iter()
        .filter_map(|n| n.get(name).and_then(Value::as_object))
        .collect()
}

fn project_value(
    live: &Value,
    desired: &Value,
    field: &str,
    parent: &str,
    ours: Option<&Fields>,
    others: &[&Fields],
) -> Value {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => {
            Value::Object(project_map(l, d, field, ours, others))
        }
        (Value::Array(l), Value::Array(d)) => project_list(field, l, d, ours, others),
        _ if equivalent(live, desired, field, parent) => desired.clone(),
        _ => live.clone(),
    }
}

fn project_map(
    live: &Map<String, Value>,
    desired: &Map<String, Value>,
    field: &str,
    ours: Option<&Fields>,
    others: &[&Fields],
) -> Map<String, Value> {
    let mut out = Map::new();
    let owned = ours.is_some() || !others.is_empty();
    for (key, d) in desired {
        match live.get(key) {
            Some(l) => {
                // Owner trees are walked only where someone owns something.
                let (ours, others) = if owned {
                    let name = format!("f:{key}");
                    (child(ours, &name), children(others, &name))
                } else {
                    (None, Vec::new())
                };
                let value = project_value(l, d, key, field, ours, &others);
                out.insert(key.clone(), value);
            }
            // Servers drop empty maps and lists: absent and empty mean the same.
            None if is_empty(d) => {
                out.insert(key.clone(), d.clone());
            }
            None => {}
        }
    }
    let Some(ours) = ours else { return out };
    for (name, node) in ours {
        let Some(key) = name.strip_prefix("f:") else {
            continue;
        };
        if desired.contains_key(key) || others.iter().any(|o| o.contains_key(name)) {
            continue;
        }
        if let Some(l) = live.get(key) {
            out.insert(key.to_string(), owned_part(l, node));
        }
    }
    out
}

/// The part of a live value that a `fieldsV1` node covers: a removal shows what apply
/// takes away, not the whole subtree.
fn owned_part(live: &Value, node: &Value) -> Value {
    let (Value::Object(l), Some(node)) = (live, node.as_object()) else {
        return live.clone();
    };
    let fields: Vec<&str> = node.keys().filter_map(|k| k.strip_prefix("f:")).collect();
    if fields.is_empty() {
        return live.clone();
    }
    let mut out = Map::new();
    for key in fields {
        if let (Some(value), Some(sub)) = (l.get(key), node.get(&format!("f:{key}"))) {
            out.insert(key.to_string(), owned_part(value, sub));
        }
    }
    Value::Object(out)
}

fn project_list(
    field: &str,
    live: &[Value],
    desired: &[Value],
    ours: Option<&Fields>,
    others: &[&Fields],
) -> Value {
    if !desired.iter().all(|d| list_key(field, d).is_some()) {
        return project_positional(field, live, desired);
    }
    let mut out = Vec::with_capacity(desired.len());
    for d in desired {
        let key = list_key(field, d);
        let Some(l) = live.iter().find(|l| list_key(field, l) == key) else {
            continue;
        };
        let ours_item = item_node(ours, field, l);
        let others_item: Vec<&Fields> = others
            .iter()
            .filter_map(|o| item_node(Some(o), field, l))
            .collect();
        out.push(project_value(l, d, field, field, ours_item, &others_item));
    }
    let atomic = ours.is_some_and(|n| !n.keys().any(|k| k.starts_with("k:")));
    for l in live {
        let key = list_key(field, l);
        if key.is_some() && desired.iter().any(|d| list_key(field, d) == key) {
            continue;
        }
        let ours_item = item_node(ours, field, l).is_some();
        let shared = others
            .iter()
            .any(|o| item_node(Some(o), field, l).is_some());
        if atomic || (ours_item && !shared) {
            out.push(l.clone());
        }
    }
    Value::Array(out)
}

/// Lists without a merge key are atomic: server-side apply replaces them whole, so every
/// extra live item is a removal.
fn project_positional(field: &str, live: &[Value], desired: &[Value]) -> Value {
    let items = live.iter().enumerate().map(|(i, l)| match desired.get(i) {
        Some(d) => project_value(l, d, field, field, None, &[]),
        None => l.clone(),
    });
    Value::Array(items.collect())
}

/// True when [`project`] of `live` onto `desired` would give `desired` back, with the
/// `ignored` annotations of the top-level metadata compared only for presence. Answers the
/// steady-state question (nothing changed) without building the projection; it follows
/// `project` rule by rule, and a property test holds the two together.
pub fn projects_to_desired(live: &Value, desired: &Value, ignored: &[&str]) -> bool {
    let (ours, others) = owners(live);
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => {
            same_map(l, d, "", ours, &others, Level::Top, ignored)
        }
        _ => live == desired,
    }
}

/// Where a map sits, for the annotations compared by presence only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    TopMetadata,
    TopAnnotations,
    Inner,
}

fn same_value(
    live: &Value,
    desired: &Value,
    field: &str,
    parent: &str,
    owners: (Option<&Fields>, &[&Fields]),
    level: Level,
    ignored: &[&str],
) -> bool {
    let (ours, others) = owners;
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => same_map(l, d, field, ours, others, level, ignored),
        (Value::Array(l), Value::Array(d)) => same_list(field, l, d, ours, others),
        _ => equivalent(live, desired, field, parent),
    }
}

fn same_map(
    live: &Map<String, Value>,
    desired: &Map<String, Value>,
    field: &str,
    ours: Option<&Fields>,
    others: &[&Fields],
    level: Level,
    ignored: &[&str],
) -> bool {
    let owned = ours.is_some() || !others.is_empty();
    for (key, d) in desired {
        let Some(l) = live.get(key) else {
            if is_empty(d) {
                continue;
            }
            return false;
        };
        if level == Level::TopAnnotations && ignored.contains(&key.as_str()) {
            continue;
        }
        let (ours, others) = if owned {
            let name = format!("f:{key}");
            (child(ours, &name), children(others, &name))
        } else {
            (None, Vec::new())
        };
        let level = match (level, key.as_str()) {
            (Level::Top, "metadata") => Level::TopMetadata,
            (Level::TopMetadata, "annotations") => Level::TopAnnotations,
            _ => Level::Inner,
        };
        if !same_value(l, d, key, field, (ours, &others), level, ignored) {
            return false;
        }
    }
    let Some(ours) = ours else { return true };
    !ours.keys().any(|name| {
        name.strip_prefix("f:").is_some_and(|key| {
            !desired.contains_key(key)
                && !others.iter().any(|o| o.contains_key(name))
                && live.contains_key(key)
        })
    })
}

fn same_list(
    field: &str,
    live: &[Value],
    desired: &[Value],
    ours: Option<&Fields>,
    others: &[&Fields],
) -> bool {
    if !desired.iter().all(|d| list_key(field, d).is_some()) {
        return live.len() == desired.len()
            && live
                .iter()
                .zip(desired)
                .all(|(l, d)| same_value(l, d, field, field, (None, &[]), Level::Inner, &[]));
    }
    for d in desired {
        let key = list_key(field, d);
        let Some(l) = live.iter().find(|l| list_key(field, l) == key) else {
            return false;
        };
        let ours_item = item_node(ours, field, l);
        let others_item: Vec<&Fields> = others
            .iter()
            .filter_map(|o| item_node(Some(o), field, l))
            .collect();
        if !same_value(
            l,
            d,
            field,
            field,
            (ours_item, &others_item),
            Level::Inner,
            &[],
        ) {
            return false;
        }
    }
    let atomic = ours.is_some_and(|n| !n.keys().any(|k| k.starts_with("k:")));
    !live.iter().any(|l| {
        let key = list_key(field, l);
        if key.is_some() && desired.iter().any(|d| list_key(field, d) == key) {
            return false;
        }
        let ours_item = item_node(ours, field, l).is_some();
        let shared = others
            .iter()
            .any(|o| item_node(Some(o), field, l).is_some());
        atomic || (ours_item && !shared)
    })
}

/// The `k:{...}` node of a `fieldsV1` list node that names this live item.
///
/// Servers write the key as compact JSON with sorted field names, so a keyed item is found
/// by its name directly; other items by reading every key.
fn item_node<'a>(list: Option<&'a Fields>, field: &str, item: &Value) -> Option<&'a Fields> {
    let list = list?;
    if let Some(mut key) = list_key(field, item) {
        key.sort_by_key(|(name, _)| *name);
        let key: Map<String, Value> = key.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        return list
            .get(&format!("k:{}", Value::Object(key)))
            .and_then(Value::as_object);
    }
    list.iter().find_map(|(name, node)| {
        let key: Map<String, Value> = serde_json::from_str(name.strip_prefix("k:")?).ok()?;
        let matches = key.iter().all(|(k, v)| item.get(k) == Some(v));
        if matches { node.as_object() } else { None }
    })
}

/// The merge key of an item of the list `field`, as server-side apply matches them
/// (`x-kubernetes-list-map-keys` of the built-in types modelship writes). `None` when the
/// list is not keyed or the item lacks its key.
pub fn list_key(field: &str, item: &Value) -> Option<Vec<(&'static str, Value)>> {
    let one = |name: &'static str| Some(vec![(name, item.get(name)?.clone())]);
    let protocol = || {
        item.get("protocol")
            .cloned()
            .unwrap_or_else(|| Value::String("TCP".to_string()))
    };
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => one("name"),
        "volumeMounts" => one("mountPath"),
        "volumeDevices" => one("devicePath"),
        "hostAliases" => one("ip"),
        "conditions" => one("type"),
        "ports" => {
            let number = ["containerPort", "port"]
                .into_iter()
                .find_map(|name| Some((name, item.get(name)?.clone())))?;
            Some(vec![number, ("protocol", protocol())])
        }
        "topologySpreadConstraints" => Some(vec![
            ("topologyKey", item.get("topologyKey")?.clone()),
            ("whenUnsatisfiable", item.get("whenUnsatisfiable")?.clone()),
        ]),
        _ => None,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Fields whose values are resource quantities (`parent` is the enclosing map's key).
fn is_quantity(field: &str, parent: &str) -> bool {
    matches!(parent, "limits" | "requests" | "hard" | "capacity")
        || matches!(field, "sizeLimit" | "storage")
        || (parent == "target" && matches!(field, "averageValue" | "value"))
}

/// `IntOrString` fields: a server keeps what was sent, but `8080` and `"8080"` mean the
/// same port.
fn is_int_or_string(field: &str) -> bool {
    matches!(
        field,
        "targetPort" | "port" | "maxUnavailable" | "maxSurge" | "minAvailable"
    )
}

/// True when a live scalar means what the desired scalar says.
pub fn equivalent(live: &Value, desired: &Value, field: &str, parent: &str) -> bool {
    if live == desired {
        return true;
    }
    match (live, desired) {
        (Value::Number(l), Value::Number(d)) => l.as_f64() == d.as_f64(),
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            (is_int_or_string(field) || is_quantity(field, parent)) && *s == n.to_string()
        }
        (Value::String(l), Value::String(d)) if is_quantity(field, parent) => same_quantity(l, d),
        _ => false,
    }
}

fn same_quantity(a: &str, b: &str) -> bool {
    match (Quantity::parse(a), Quantity::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Metadata fields a server manages.
const SERVER_METADATA: [&str; 8] = [
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// True when an object carries status or server-managed metadata.
pub fn has_server_fields(object: &Value) -> bool {
    object.get("status").is_some()
        || object
            .get("metadata")
            .and_then(Value::as_object)
            .is_some_and(|m| SERVER_METADATA.iter().any(|k| m.contains_key(*k)))
}

/// Removes what the server manages from an object shown whole (a delete, or a create's
/// desired side): status and bookkeeping metadata.
pub fn strip_server_fields(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(map) = out.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in SERVER_METADATA {
            meta.remove(key);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
            annotations.remove("deployment.kubernetes.io/revision");
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    out
}
