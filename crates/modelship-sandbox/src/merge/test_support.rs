//! Test builders shared by the merge tests: Deployment configurations, by hand and
//! random.

use proptest::prelude::*;
use serde_json::{Value, json};

/// A Deployment applied configuration named `ml/web` with the given `spec`.
pub(super) fn deployment(spec: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ml"},
        "spec": spec,
    })
}

pub(super) fn containers(items: Value) -> Value {
    deployment(json!({"template": {"spec": {"containers": items}}}))
}

/// Random Deployment configurations: labels, replicas, containers with env and ports.
pub(super) fn arb_config() -> impl Strategy<Value = Value> {
    arb_config_of("")
}

/// Random Deployment configurations whose label keys and container names start with
/// `prefix` (so that two prefixes give disjoint configurations).
pub(super) fn arb_config_of(prefix: &'static str) -> impl Strategy<Value = Value> {
    let container = (
        "[a-c]",
        "[a-z]{1,3}:[0-9]",
        proptest::collection::btree_map("[A-C]", "[a-z]{0,2}", 0..3),
        proptest::collection::btree_set(1u16..4, 0..3),
        proptest::option::of(proptest::collection::vec("[a-z]{1,2}", 0..3)),
    )
        .prop_map(move |(name, image, env, ports, args)| {
            let name = format!("{prefix}{name}");
            let env: Vec<Value> = env
                .into_iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect();
            let ports: Vec<Value> = ports
                .into_iter()
                .map(|p| json!({"containerPort": 8000 + p}))
                .collect();
            let mut container = json!({"name": name, "image": image, "env": env, "ports": ports});
            if let Some(args) = args {
                container["args"] = json!(args);
            }
            container
        });
    (
        proptest::collection::btree_map("[a-c]", "[a-z]{1,2}", 0..3),
        proptest::option::of(0u8..5),
        proptest::collection::vec(container, 0..3),
    )
        .prop_map(move |(labels, replicas, items)| {
            let labels: std::collections::BTreeMap<String, String> = labels
                .into_iter()
                .map(|(k, v)| (format!("{prefix}{k}"), v))
                .collect();
            let mut seen = std::collections::BTreeSet::new();
            let items: Vec<Value> = items
                .into_iter()
                .filter(|c| seen.insert(c["name"].to_string()))
                .collect();
            let mut config = containers(Value::Array(items));
            config["metadata"]["labels"] = json!(labels);
            if let Some(replicas) = replicas {
                config["spec"]["replicas"] = json!(replicas);
            }
            config
        })
}
