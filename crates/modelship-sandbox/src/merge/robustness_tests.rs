//! Property tests over arbitrary JSON: no operation of the object algebra panics, and
//! defaulting is idempotent whatever the input.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{ApplyOptions, apply_defaults, record_update, server_side_apply, strategic_merge};

/// Field names that steer arbitrary objects into the paths the schema knows.
const NAMES: &[&str] = &[
    "metadata",
    "spec",
    "template",
    "containers",
    "name",
    "ports",
    "containerPort",
    "protocol",
    "env",
    "volumes",
    "finalizers",
    "labels",
    "managedFields",
    "status",
    "selector",
    "replicas",
    "strategy",
    "behavior",
    "egress",
    "$patch",
    "$retainKeys",
    "image",
    "fieldsV1",
    "operation",
    "manager",
    "conditions",
    "type",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0i64..100).prop_map(|n| json!(n)),
        prop::sample::select(vec!["a", "delete", "replace", "TCP", "Apply", "f:x", ""])
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(NAMES), inner), 0..5).prop_map(|fields| {
                let map: Map<String, Value> = fields
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                Value::Object(map)
            }),
        ]
    })
}

fn arb_kind() -> impl Strategy<Value = (&'static str, &'static str)> {
    prop::sample::select(vec![
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ])
}

fn typed(mut value: Value, (api_version, kind): (&str, &str)) -> Value {
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), json!(api_version));
        map.insert("kind".into(), json!(kind));
    }
    value
}

proptest! {
    #[test]
    fn nothing_panics_on_arbitrary_objects(
        live in arb_json(),
        other in arb_json(),
        kind in arb_kind(),
        force in any::<bool>(),
    ) {
        let live = typed(live, kind);
        let config = typed(other.clone(), kind);
        let opts = ApplyOptions { manager: "m", force, now: "2026-01-01T00:00:00Z" };
        let _ = server_side_apply(Some(&live), &config, &opts);
        let _ = server_side_apply(None, &config, &opts);
        let _ = strategic_merge(&live, &other);
        let mut new = config.clone();
        record_update(Some(&live), &mut new, "m", "2026-01-01T00:00:00Z");
    }

    #[test]
    fn defaulting_is_idempotent_on_arbitrary_objects(value in arb_json(), kind in arb_kind()) {
        let mut once = typed(value, kind);
        apply_defaults(&mut once);
        let mut twice = once.clone();
        apply_defaults(&mut twice);
        prop_assert_eq!(twice, once);
    }
}
