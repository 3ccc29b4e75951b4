//! Tests of server-side apply and update ownership tracking.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::merge::test_support::{arb_config, arb_config_of, containers, deployment};
use crate::merge::{ApplyOptions, Conflict, UpdateManager, apply_defaults};

const T1: &str = "2026-01-01T00:00:01Z";
const T2: &str = "2026-01-01T00:00:02Z";

fn apply(live: Option<&Value>, config: &Value, manager: &str) -> Result<Value, MergeError> {
    server_side_apply(
        live,
        config,
        &ApplyOptions {
            manager,
            force: false,
            now: T1,
        },
    )
}

fn force_apply(live: &Value, config: &Value, manager: &str) -> Value {
    server_side_apply(
        Some(live),
        config,
        &ApplyOptions {
            manager,
            force: true,
            now: T2,
        },
    )
    .expect("forced apply succeeds")
}

fn ok(result: Result<Value, MergeError>) -> Value {
    result.expect("apply succeeds")
}

/// The fieldsV1 of `manager`'s entry, `None` without one.
fn fields_of(obj: &Value, manager: &str) -> Option<Value> {
    obj.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
        .map(|e| e["fieldsV1"].clone())
}

fn without_managed(obj: &Value) -> Value {
    without_managed_fields(obj)
}

#[test]
fn create_owns_exactly_the_applied_fields() {
    let config = deployment(json!({"replicas": 2}));
    let created = ok(apply(None, &config, "ci"));
    assert_eq!(without_managed(&created), config);
    assert_eq!(
        created["metadata"]["managedFields"],
        json!([{
            "manager": "ci", "operation": "Apply", "apiVersion": "apps/v1", "time": T1,
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}
        }])
    );
}

#[test]
fn two_managers_merge_associative_lists_by_key() {
    let live = ok(apply(
        None,
        &containers(json!([{"name": "a", "image": "a:1"}])),
        "one",
    ));
    let merged = ok(apply(
        Some(&live),
        &containers(json!([{"name": "b", "image": "b:1"}])),
        "two",
    ));
    assert_eq!(
        merged["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])
    );
    let item = |name: &str| {
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
            format!("k:{{\"name\":\"{name}\"}}"): {".": {}, "f:image": {}, "f:name": {}}}}}}})
    };
    assert_eq!(fields_of(&merged, "one"), Some(item("a")));
    assert_eq!(fields_of(&merged, "two"), Some(item("b")));
}

#[test]
fn ownership_table() {
    struct Case {
        name: &'static str,
        first: Value,
        second: Value,
        /// Expected `.spec` after `second` applies (as manager "two").
        spec: Value,
        /// Expected fieldsV1 of manager "one" afterwards.
        one: Option<Value>,
    }
    let cases = [
        Case {
            name: "equal values are shared without conflict",
            first: deployment(json!({"replicas": 3, "paused": false})),
            second: deployment(json!({"replicas": 3})),
            spec: json!({"replicas": 3, "paused": false}),
            one: Some(json!({"f:spec": {"f:paused": {}, "f:replicas": {}}})),
        },
        Case {
            name: "a field in another manager's list item is merged in",
            first: containers(json!([{"name": "a", "image": "a:1"}])),
            second: containers(json!([{"name": "a", "image": "a:1", "tty": true}])),
            spec: json!({"template": {"spec": {"containers": [
                {"name": "a", "image": "a:1", "tty": true}]}}}),
            one: Some(
                json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"a\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}),
            ),
        },
    ];
    for case in cases {
        let live = ok(apply(None, &case.first, "one"));
        let result = ok(apply(Some(&live), &case.second, "two"));
        assert_eq!(result["spec"], case.spec, "{}", case.name);
        assert_eq!(fields_of(&result, "one"), case.one, "{}", case.name);
    }
}

#[test]
fn conflicting_values_fail_without_force() {
    let live = ok(apply(None, &deployment(json!({"replicas": 3})), "one"));
    let error =
        apply(Some(&live), &deployment(json!({"replicas": 5})), "two").expect_err("conflict");
    assert_eq!(
        error,
        MergeError::Conflicts(vec![Conflict {
            manager: "one".into(),
            field: ".spec.replicas".into(),
            update: None,
        }])
    );
    assert_eq!(
        error.to_string(),
        "Apply failed with 1 conflict: conflict with \"one\": .spec.replicas"
    );
}

#[test]
fn several_conflicts_are_listed_by_manager() {
    let live = ok(apply(
        None,
        &deployment(json!({"replicas": 3, "paused": true})),
        "one",
    ));
    let error = apply(
        Some(&live),
        &deployment(json!({"replicas": 5, "paused": false})),
        "two",
    )
    .expect_err("conflicts");
    assert_eq!(
        error.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"one\":\n- .spec.paused\n- .spec.replicas"
    );
}

#[test]
fn force_moves_ownership_to_the_applier() {
    let live = ok(apply(
        None,
        &deployment(json!({"replicas": 3, "paused": true})),
        "one",
    ));
    let forced = force_apply(&live, &deployment(json!({"replicas": 5})), "two");
    assert_eq!(forced["spec"], json!({"replicas": 5, "paused": true}));
    assert_eq!(
        fields_of(&forced, "one"),
        Some(json!({"f:spec": {"f:paused": {}}}))
    );
    assert_eq!(
        fields_of(&forced, "two"),
        Some(json!({"f:spec": {"f:replicas": {}}}))
    );
}

#[test]
fn dropped_fields_are_removed_unless_another_applier_owns_them() {
    struct Case {
        name: &'static str,
        /// Manager "two" applies this (if any) after "one"'s first apply.
        other: Option<Value>,
        want_labels: Value,
    }
    let first = deployment(json!({"replicas": 1}));
    let mut first = first;
    first["metadata"]["labels"] = json!({"a": "1", "b": "2"});
    let mut second = deployment(json!({"replicas": 1}));
    second["metadata"]["labels"] = json!({"a": "1"});
    let mut shared = deployment(json!({}));
    shared["metadata"]["labels"] = json!({"b": "2"});
    let cases = [
        Case {
            name: "sole owner drops a label: removed",
            other: None,
            want_labels: json!({"a": "1"}),
        },
        Case {
            name: "shared label dropped by one applier: kept",
            other: Some(shared),
            want_labels: json!({"a": "1", "b": "2"}),
        },
    ];
    for case in cases {
        let mut live = ok(apply(None, &first, "one"));
        if let Some(other) = &case.other {
            live = ok(apply(Some(&live), other, "two"));
        }
        let result = ok(apply(Some(&live), &second, "one"));
        assert_eq!(
            result["metadata"]["labels"], case.want_labels,
            "{}",
            case.name
        );
        assert_eq!(
            fields_of(&result, "one"),
            Some(json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:replicas": {}}})),
            "{}",
            case.name
        );
    }
}

#[test]
fn dropped_list_items_are_removed() {
    let live = ok(apply(
        None,
        &containers(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])),
        "one",
    ));
    let result = ok(apply(
        Some(&live),
        &containers(json!([{"name": "a", "image": "a:1"}])),
        "one",
    ));
    assert_eq!(
        result["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "a:1"}])
    );
}

#[test]
fn record_update_moves_ownership_and_conflicts_with_appliers() {
    let live = ok(apply(
        None,
        &deployment(json!({"replicas": 3, "paused": false})),
        "ci",
    ));
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(5);
    record_update(Some(&live), &mut edited, "kubectl-edit", T2);
    assert_eq!(
        fields_of(&edited, "kubectl-edit"),
        Some(json!({"f:spec": {"f:replicas": {}}}))
    );
    assert_eq!(
        fields_of(&edited, "ci"),
        Some(json!({"f:spec": {"f:paused": {}}}))
    );
    let entry = edited["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["manager"] == "kubectl-edit"))
        .cloned();
    assert_eq!(
        entry.map(|e| (e["operation"].clone(), e["time"].clone())),
        Some((json!("Update"), json!(T2)))
    );

    let error = apply(
        Some(&edited),
        &deployment(json!({"replicas": 3, "paused": false})),
        "ci",
    )
    .expect_err("conflict with the updater");
    assert_eq!(
        error,
        MergeError::Conflicts(vec![Conflict {
            manager: "kubectl-edit".into(),
            field: ".spec.replicas".into(),
            update: Some(UpdateManager {
                api_version: "apps/v1".into(),
                time: Some(T2.into()),
            }),
        }])
    );
    assert_eq!(
        error.to_string(),
        format!(
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1 at {T2}: .spec.replicas"
        )
    );
}

#[test]
fn record_update_on_create_owns_everything_but_identity() {
    let mut created = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}});
    record_update(None, &mut created, "kubectl-create", T1);
    assert_eq!(
        fields_of(&created, "kubectl-create"),
        Some(json!({"f:data": {".": {}, "f:k": {}},
                    "f:metadata": {"f:labels": {".": {}, "f:a": {}}}}))
    );
}

#[test]
fn record_update_without_changes_adds_no_entry() {
    let live = ok(apply(None, &deployment(json!({"replicas": 1})), "ci"));
    let mut same = live.clone();
    record_update(Some(&live), &mut same, "other", T2);
    assert_eq!(same, live);
}

#[test]
fn status_of_status_subresource_kinds_is_ignored() {
    let mut config = deployment(json!({"replicas": 1}));
    config["status"] = json!({"replicas": 7});
    let created = ok(apply(None, &config, "ci"));
    assert_eq!(created.get("status"), None);
    assert_eq!(
        fields_of(&created, "ci"),
        Some(json!({"f:spec": {"f:replicas": {}}}))
    );
}

#[test]
fn unchanged_reapply_returns_the_live_object() {
    let live = ok(apply(None, &deployment(json!({"replicas": 1})), "ci"));
    let again = server_side_apply(
        Some(&live),
        &deployment(json!({"replicas": 1})),
        &ApplyOptions {
            manager: "ci",
            force: false,
            now: T2,
        },
    );
    assert_eq!(again, Ok(live));
}

#[test]
fn defaulted_fields_are_unowned_and_survive_reapply() {
    let config =
        containers(json!([{"name": "a", "image": "a:1", "ports": [{"containerPort": 80}]}]));
    let mut live = ok(apply(None, &config, "ci"));
    let owned = fields_of(&live, "ci");
    apply_defaults(&mut live);
    let again = ok(apply(Some(&live), &config, "ci"));
    assert_eq!(again, live, "re-applying after defaulting changes nothing");
    assert_eq!(fields_of(&again, "ci"), owned);
}

#[test]
fn first_apply_to_an_unmanaged_object_credits_before_first_apply() {
    let live = deployment(json!({"replicas": 2}));
    let error = apply(Some(&live), &deployment(json!({"replicas": 4})), "ci")
        .expect_err("the existing value is owned");
    assert!(error.to_string().contains("before-first-apply"), "{error}");
}

#[test]
fn invalid_configurations_are_rejected() {
    let cases = [
        (json!([]), "must be an object"),
        (json!({"kind": "Deployment"}), "apiVersion must be set"),
        (json!({"apiVersion": "apps/v1"}), "kind must be set"),
        (
            containers(json!([{"image": "x"}])),
            "lacks key field \"name\"",
        ),
    ];
    for (config, want) in cases {
        match apply(None, &config, "ci") {
            Err(MergeError::Invalid(message)) => {
                assert!(message.contains(want), "{message} should contain {want}")
            }
            other => panic!("expected Invalid for {config}, got {other:?}"),
        }
    }
    let live = ok(apply(None, &deployment(json!({})), "ci"));
    let mut with_managed_fields = deployment(json!({}));
    with_managed_fields["metadata"]["managedFields"] = json!([]);
    let mut other_version = deployment(json!({}));
    other_version["apiVersion"] = json!("apps/v1beta2");
    let against_live = [
        (
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}),
            "does not match the live object's kind",
        ),
        (with_managed_fields, "metadata.managedFields must be nil"),
        (
            other_version,
            "Incorrect version specified in apply patch. Specified patch version: apps/v1beta2, expected: apps/v1",
        ),
    ];
    for (config, want) in against_live {
        match apply(Some(&live), &config, "ci") {
            Err(MergeError::Invalid(message)) => {
                assert!(message.contains(want), "{message} should contain {want}")
            }
            other => panic!("expected Invalid for {config}, got {other:?}"),
        }
    }
}

/// The fields of `obj` (without managedFields) as an applier would own them.
fn field_set(obj: &Value) -> FieldSet {
    let schema = ObjectSchema::for_object(obj);
    FieldSet::from_value(&without_managed(obj), &schema).expect("valid object")
}

/// `set` without paths that have descendants in it (an empty map in one configuration
/// and its filled version in another describe the same fields).
fn leaves(set: FieldSet) -> FieldSet {
    set.filter(|path| !set.has_descendant(path))
}

/// `config` without `spec.replicas`.
fn without_replicas(mut config: Value) -> Value {
    if let Some(spec) = config["spec"].as_object_mut() {
        spec.remove("replicas");
    }
    config
}

proptest! {
    #[test]
    fn disjoint_appliers_keep_each_others_fields(
        first in arb_config_of("x"),
        other in arb_config_of("y"),
        next in arb_config_of("x"),
    ) {
        let other = without_replicas(other);
        let live = ok(apply(None, &first, "one"));
        let live = ok(apply(Some(&live), &other, "two"));
        prop_assert_eq!(
            leaves(field_set(&live)),
            leaves(field_set(&first).union(&field_set(&other)))
        );
        let live = ok(apply(Some(&live), &next, "one"));
        prop_assert_eq!(
            leaves(field_set(&live)),
            leaves(field_set(&next).union(&field_set(&other)))
        );
    }

    #[test]
    fn reapplying_the_same_config_changes_nothing(config in arb_config()) {
        let mut live = ok(apply(None, &config, "ci"));
        apply_defaults(&mut live);
        let again = ok(apply(Some(&live), &config, "ci"));
        prop_assert_eq!(again, live);
    }

    #[test]
    fn a_sole_applier_ends_with_exactly_its_last_config(
        first in arb_config(),
        second in arb_config(),
    ) {
        let schema = ObjectSchema::for_object(&second);
        let live = ok(apply(None, &first, "ci"));
        let result = ok(apply(Some(&live), &second, "ci"));
        let got = FieldSet::from_value(&without_managed(&result), &schema).expect("valid");
        let want = FieldSet::from_value(&second, &schema).expect("valid");
        prop_assert_eq!(got, want);
    }
}

#[test]
fn status_updates_are_recorded_on_the_status_subresource() {
    let live = ok(apply(None, &deployment(json!({"replicas": 1})), "ci"));
    let mut written = live.clone();
    written["status"] =
        json!({"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]});
    record_status_update(&live, &mut written, "kube-controller-manager", T2);
    let entry = written["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["manager"] == "kube-controller-manager"))
        .cloned()
        .expect("status entry");
    assert_eq!(entry["subresource"], json!("status"));
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:status": {"f:conditions": {".": {}, "k:{\"type\":\"Available\"}": {
            ".": {}, "f:status": {}, "f:type": {}}}, "f:replicas": {}}})
    );
    // The applier's spec ownership is untouched.
    assert_eq!(
        fields_of(&written, "ci"),
        Some(json!({"f:spec": {"f:replicas": {}}}))
    );
}

#[test]
fn lists_of_unknown_kinds_are_atomic() {
    let route = |backends: Value| {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
               "metadata": {"name": "r"}, "spec": {"rules": [{"backendRefs": backends}]}})
    };
    let live = ok(apply(
        None,
        &route(json!([{"name": "a", "weight": 90}])),
        "ci",
    ));
    assert_eq!(
        fields_of(&live, "ci"),
        Some(json!({"f:spec": {"f:rules": {}}}))
    );
    let error = apply(
        Some(&live),
        &route(json!([{"name": "a", "weight": 50}])),
        "rollout",
    )
    .expect_err("the whole list is one field");
    assert_eq!(
        error,
        MergeError::Conflicts(vec![Conflict {
            manager: "ci".into(),
            field: ".spec.rules".into(),
            update: None,
        }])
    );
}

#[test]
fn set_list_items_are_owned_by_value() {
    let with_finalizers = |values: Value| {
        let mut config = deployment(json!({}));
        config["metadata"]["finalizers"] = values;
        config
    };
    let live = ok(apply(None, &with_finalizers(json!(["a/one"])), "one"));
    let live = ok(apply(
        Some(&live),
        &with_finalizers(json!(["b/two"])),
        "two",
    ));
    assert_eq!(live["metadata"]["finalizers"], json!(["a/one", "b/two"]));
    let result = ok(apply(Some(&live), &with_finalizers(json!([])), "one"));
    assert_eq!(result["metadata"]["finalizers"], json!(["b/two"]));
    assert_eq!(
        fields_of(&result, "two"),
        Some(json!({"f:metadata": {"f:finalizers": {"v:\"b/two\"": {}}}}))
    );
}

#[test]
fn switching_a_volume_source_drops_the_old_one() {
    let with_volume =
        |volume: Value| deployment(json!({"template": {"spec": {"volumes": [volume]}}}));
    let live = ok(apply(
        None,
        &with_volume(json!({"name": "v", "emptyDir": {}})),
        "ci",
    ));
    let result = ok(apply(
        Some(&live),
        &with_volume(json!({"name": "v", "configMap": {"name": "c"}})),
        "ci",
    ));
    assert_eq!(
        result["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "v", "configMap": {"name": "c"}}])
    );
}

#[test]
fn updates_start_from_the_managed_fields_the_client_sends() {
    let live = ok(apply(None, &deployment(json!({"replicas": 1})), "ci"));
    let ci_only = json!({"f:spec": {"f:replicas": {}}});
    let cases = [
        ("absent: the live entries", None, Some(ci_only.clone())),
        (
            "empty list: the live entries",
            Some(json!([])),
            Some(ci_only.clone()),
        ),
        (
            "malformed: the live entries",
            Some(json!([{"operation": "Bogus"}])),
            Some(ci_only),
        ),
        ("[{}]: cleared", Some(json!([{}])), None),
        (
            "rewritten: the client's entries",
            Some(
                json!([{"manager": "ci", "operation": "Apply", "apiVersion": "apps/v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:paused": {}}}}]),
            ),
            Some(json!({"f:spec": {"f:paused": {}}})),
        ),
    ];
    for (name, given, want) in cases {
        let mut new = without_managed(&live);
        if let Some(given) = given {
            new["metadata"]["managedFields"] = given;
        }
        record_update(Some(&live), &mut new, "kubectl", T2);
        assert_eq!(fields_of(&new, "ci"), want, "{name}");
        assert_eq!(fields_of(&new, "kubectl"), None, "{name}: nothing changed");
    }
}

#[test]
fn status_applies_touch_only_status_and_are_tracked_per_subresource() {
    let live = ok(apply(None, &deployment(json!({"replicas": 1})), "ci"));
    let mut config = deployment(json!({"replicas": 9}));
    config["status"] =
        json!({"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]});
    let opts = ApplyOptions {
        manager: "ci",
        force: false,
        now: T2,
    };
    let result = server_side_apply_status(&live, &config, &opts).expect("status apply");
    assert_eq!(result["spec"], json!({"replicas": 1}));
    assert_eq!(result["status"], config["status"]);
    let entries: Vec<(Value, Value)> = result["metadata"]["managedFields"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["manager"].clone(), e["subresource"].clone()))
        .collect();
    assert_eq!(
        entries,
        [(json!("ci"), Value::Null), (json!("ci"), json!("status"))]
    );
    assert_eq!(
        server_side_apply_status(&result, &config, &opts),
        Ok(result.clone()),
        "re-applying the same status changes nothing"
    );
}

#[test]
fn service_ports_are_keyed_by_port_and_defaulted_protocol() {
    let service = |target: u16| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"ports": [{"name": "http", "port": 80, "targetPort": target}]}})
    };
    let mut live = ok(apply(None, &service(8080), "ci"));
    apply_defaults(&mut live);
    assert_eq!(live["spec"]["ports"][0]["protocol"], json!("TCP"));
    assert_eq!(ok(apply(Some(&live), &service(8080), "ci")), live);
    let error = apply(Some(&live), &service(9090), "other").expect_err("conflict");
    assert_eq!(
        error.to_string(),
        "Apply failed with 1 conflict: conflict with \"ci\": .spec.ports[port=80,protocol=\"TCP\"].targetPort"
    );
}
