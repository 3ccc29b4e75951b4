//! Unit tests of planning: projection, normalisation, diffs, actions, redaction, prune.

use serde_json::{Value, json};

use super::*;

/// A desired Deployment of service `svc` in namespace `ns`.
fn mk_deployment(image: &str, cpu: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "svc", "namespace": "ns", "labels": {
            "app.kubernetes.io/managed-by": "modelship",
            "modelship.dev/service": "svc",
            "app.kubernetes.io/version": "1"}},
        "spec": {"template": {"spec": {"containers": [{
            "name": "server", "image": image,
            "ports": [{"name": "http", "containerPort": 8080}],
            "resources": {"requests": {"cpu": cpu, "memory": "1Gi"},
                          "limits": {"memory": "1Gi"}}}]}}}
    })
}

/// What a server makes of a desired object: defaults, bookkeeping, status, and a
/// managedFields entry for modelship owning exactly the desired fields.
fn mk_live(desired: &Value) -> Value {
    let mut live = desired.clone();
    live["metadata"]["uid"] = json!("uid-1");
    live["metadata"]["resourceVersion"] = json!("7");
    live["metadata"]["generation"] = json!(2);
    live["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("2");
    live["metadata"]["managedFields"] = json!([
        {"manager": "modelship", "operation": "Apply", "fieldsV1": fields_of(desired)}
    ]);
    live["status"] = json!({"replicas": 1});
    if let Some(spec) = live.get_mut("spec").and_then(Value::as_object_mut) {
        spec.entry("replicas").or_insert(json!(1));
        spec.insert("revisionHistoryLimit".into(), json!(10));
    }
    if let Some(containers) = live.pointer_mut("/spec/template/spec/containers") {
        for c in containers.as_array_mut().into_iter().flatten() {
            c["terminationMessagePath"] = json!("/dev/termination-log");
            c["imagePullPolicy"] = json!("IfNotPresent");
            for p in c["ports"].as_array_mut().into_iter().flatten() {
                p["protocol"] = json!("TCP");
            }
        }
    }
    live
}

/// The fieldsV1 set of an object (keyed lists by merge key).
fn fields_of(value: &Value) -> Value {
    fields_in(value, "")
}

fn fields_in(value: &Value, field: &str) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                out.insert(format!("f:{k}"), fields_in(v, k));
            }
            Value::Object(out)
        }
        Value::Array(items) if items.iter().all(|i| project::list_key(field, i).is_some()) => {
            let mut out = serde_json::Map::new();
            for item in items {
                let key: serde_json::Map<String, Value> = project::list_key(field, item)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                let mut node = fields_in(item, field);
                node["."] = json!({});
                out.insert(format!("k:{}", Value::Object(key)), node);
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}

fn desired_of(objects: Vec<Value>) -> DesiredState {
    DesiredState {
        services: vec![DesiredService {
            id: ServiceId::new("ns", "svc").unwrap(),
            file: "services/svc.yaml".into(),
            objects,
        }],
        invalid: vec![],
        repository_valid: true,
    }
}

fn only_object(plan: &Plan) -> &ObjectPlan {
    assert_eq!(plan.services.len(), 1);
    assert_eq!(plan.services[0].objects.len(), 1);
    &plan.services[0].objects[0]
}

fn paths(object: &ObjectPlan) -> Vec<String> {
    object.changes.iter().map(|c| c.path.to_string()).collect()
}

#[test]
fn server_defaults_and_bookkeeping_are_not_drift() {
    let desired = mk_deployment("img:1", json!("500m"));
    let live: LiveSet = [mk_live(&desired)].into_iter().collect();
    let plan = plan(&desired_of(vec![desired]), &live).unwrap();
    let object = only_object(&plan);
    assert_eq!(object.action, Action::Unchanged, "{:?}", object.changes);
    assert!(object.diff.is_empty());
    assert!(object.patch.0.is_empty());
    assert!(!plan.has_changes());
}

#[test]
fn canonicalised_scalars_compare_by_meaning() {
    // (live spelling, desired spelling, field, parent, equivalent)
    let cases = [
        (json!("0.5"), json!("500m"), "cpu", "requests", true),
        (json!("1"), json!(1), "cpu", "requests", true),
        (json!("1Gi"), json!("1024Mi"), "memory", "limits", true),
        (json!("1G"), json!("1Gi"), "memory", "limits", false),
        (json!(8080), json!("8080"), "targetPort", "", true),
        (json!(8080), json!("http"), "targetPort", "", false),
        (json!("0.5"), json!("500m"), "value", "env", false),
        (json!("500m"), json!("0.5"), "averageValue", "target", true),
        (json!(2.0), json!(2), "replicas", "spec", true),
        (json!("1"), json!(1), "replicas", "spec", false),
    ];
    for (live, desired, field, parent, expected) in cases {
        assert_eq!(
            project::equivalent(&live, &desired, field, parent),
            expected,
            "{live} vs {desired} at {parent}.{field}"
        );
    }
}

#[test]
fn quantity_spelled_differently_by_the_server_is_unchanged() {
    let desired = mk_deployment("img:1", json!("500m"));
    let mut live = mk_live(&desired);
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] =
        json!("0.5");
    let live: LiveSet = [live].into_iter().collect();
    let plan = plan(&desired_of(vec![desired]), &live).unwrap();
    assert_eq!(only_object(&plan).action, Action::Unchanged);
}

#[test]
fn one_field_edit_plans_exactly_that_field() {
    let before = mk_deployment("img:1", json!("500m"));
    let live: LiveSet = [mk_live(&before)].into_iter().collect();
    let desired = mk_deployment("img:2", json!("500m"));
    let plan = plan(&desired_of(vec![desired]), &live).unwrap();
    let object = only_object(&plan);
    assert_eq!(object.action, Action::Update);
    assert_eq!(
        paths(object),
        ["spec.template.spec.containers[name=server].image"]
    );
    assert_eq!(object.changes[0].before, Some(json!("img:1")));
    assert_eq!(object.changes[0].after, Some(json!("img:2")));
    assert!(
        object.diff.contains("-        image: img:1"),
        "{}",
        object.diff
    );
    assert!(
        object.diff.contains("+        image: img:2"),
        "{}",
        object.diff
    );
    assert_eq!(object.patch.0.len(), 1);
    let summary = &plan.services[0].summary;
    assert_eq!(summary.images.len(), 1);
    assert_eq!(summary.images[0].after.as_deref(), Some("img:2"));
}

#[test]
fn keyed_lists_match_by_key_not_position() {
    let mut desired = mk_deployment("img:1", json!("1"));
    desired["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]);
    let mut live = mk_live(&desired);
    // The server returns env in another order, with one var another manager added.
    live["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "C", "value": "x"}, {"name": "B", "value": "2"}, {"name": "A", "value": "1"}]);
    let plan = plan(
        &desired_of(vec![desired]),
        &[live].into_iter().collect::<LiveSet>(),
    )
    .unwrap();
    assert_eq!(only_object(&plan).action, Action::Unchanged);
}

#[test]
fn field_another_manager_owns_and_we_do_not_send_is_not_drift() {
    let desired = mk_deployment("img:1", json!("1"));
    let mut live = mk_live(&desired);
    live["spec"]["replicas"] = json!(7);
    live["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"manager": "horizontal-pod-autoscaler", "operation": "Update",
                     "subresource": "scale", "fieldsV1": {"f:spec": {"f:replicas": {}}}}),
        );
    let plan = plan(
        &desired_of(vec![desired]),
        &[live].into_iter().collect::<LiveSet>(),
    )
    .unwrap();
    assert_eq!(only_object(&plan).action, Action::Unchanged);
}

#[test]
fn drift_by_another_manager_on_a_field_we_send_is_an_update() {
    let desired = mk_deployment("img:1", json!("1"));
    let mut live = mk_live(&desired);
    live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("hotfix:9");
    let plan = plan(
        &desired_of(vec![desired]),
        &[live].into_iter().collect::<LiveSet>(),
    )
    .unwrap();
    let object = only_object(&plan);
    assert_eq!(object.action, Action::Update);
    assert_eq!(
        paths(object),
        ["spec.template.spec.containers[name=server].image"]
    );
}

#[test]
fn field_we_applied_before_and_no_longer_send_is_a_removal() {
    let mut before = mk_deployment("img:1", json!("1"));
    before["spec"]["replicas"] = json!(3);
    before["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "A", "value": "1"}, {"name": "OLD", "value": "2"}]);
    let live = mk_live(&before);
    let mut desired = mk_deployment("img:1", json!("1"));
    desired["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "A", "value": "1"}]);
    let plan = plan(
        &desired_of(vec![desired]),
        &[live].into_iter().collect::<LiveSet>(),
    )
    .unwrap();
    let object = only_object(&plan);
    assert_eq!(object.action, Action::Update);
    let mut got = paths(object);
    got.sort();
    assert_eq!(
        got,
        [
            "spec.replicas",
            "spec.template.spec.containers[name=server].env[name=OLD]"
        ]
    );
    assert!(object.changes.iter().all(|c| c.kind == ChangeKind::Remove));
}

#[test]
fn shared_field_we_stop_sending_is_not_a_removal() {
    let mut before = mk_deployment("img:1", json!("1"));
    before["spec"]["replicas"] = json!(3);
    let mut live = mk_live(&before);
    live["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"manager": "kubectl", "operation": "Apply",
                     "fieldsV1": {"f:spec": {"f:replicas": {}}}}));
    let desired = mk_deployment("img:1", json!("1"));
    let plan = plan(
        &desired_of(vec![desired]),
        &[live].into_iter().collect::<LiveSet>(),
    )
    .unwrap();
    assert_eq!(only_object(&plan).action, Action::Unchanged);
}

#[test]
fn absent_object_is_created_and_orphan_of_present_service_deleted() {
    let desired = mk_deployment("img:1", json!("1"));
    let orphan = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "svc", "namespace": "ns", "uid": "u-pdb", "labels": {
            "app.kubernetes.io/managed-by": "modelship", "modelship.dev/service": "svc"}},
        "spec": {"maxUnavailable": 1}});
    let plan = plan(
        &desired_of(vec![desired]),
        &[orphan].into_iter().collect::<LiveSet>(),
    )
    .unwrap();
    let objects = &plan.services[0].objects;
    let actions: Vec<(&str, Action)> = objects
        .iter()
        .map(|o| (o.key.kind.as_str(), o.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("Deployment", Action::Create),
            ("PodDisruptionBudget", Action::Delete)
        ]
    );
    assert_eq!(objects[1].live_uid.as_deref(), Some("u-pdb"));
    assert!(
        objects[0].diff.contains("+kind: Deployment"),
        "{}",
        objects[0].diff
    );
    let summary = &plan.services[0].summary;
    assert_eq!(
        summary.replicas,
        Some(Delta {
            before: None,
            after: Some("1".into())
        })
    );
    assert_eq!(summary.gpus, None, "a CPU-only service has no GPU line");
    assert!(
        objects[1].diff.contains("-kind: PodDisruptionBudget"),
        "{}",
        objects[1].diff
    );
}

fn mk_other_service(namespace: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": {
            "app.kubernetes.io/managed-by": "modelship", "modelship.dev/service": name}}})
}

#[test]
fn removed_service_is_pruned_only_from_a_valid_repository() {
    let live: LiveSet = [mk_other_service("ns", "gone")].into_iter().collect();
    let mut desired = desired_of(vec![mk_deployment("img:1", json!("1"))]);
    let valid = plan(&desired, &live).unwrap();
    let gone = valid
        .services
        .iter()
        .find(|s| s.id.name() == "gone")
        .unwrap();
    assert_eq!(gone.status, ServiceStatus::Removed);
    assert_eq!(gone.objects[0].action, Action::Delete);

    desired.repository_valid = false;
    let invalid = plan(&desired, &live).unwrap();
    let gone = invalid
        .services
        .iter()
        .find(|s| s.id.name() == "gone")
        .unwrap();
    assert_eq!(
        gone.status,
        ServiceStatus::Blocked(BlockReason::RepositoryInvalid)
    );
    assert_eq!(gone.objects[0].action, Action::Blocked);
    assert_eq!(invalid.count(Action::Delete), 0);
}

#[test]
fn invalid_service_objects_are_blocked() {
    let live: LiveSet = [mk_other_service("ns", "broken")].into_iter().collect();
    let mut desired = desired_of(vec![]);
    desired.services.clear();
    desired.invalid = vec![ServiceId::new("ns", "broken").unwrap()];
    desired.repository_valid = false;
    let plan = plan(&desired, &live).unwrap();
    assert_eq!(plan.services.len(), 1);
    assert_eq!(
        plan.services[0].status,
        ServiceStatus::Blocked(BlockReason::InvalidSpec)
    );
    assert_eq!(plan.services[0].objects[0].action, Action::Blocked);
    assert!(!plan.has_changes());
}

#[test]
fn objects_not_labelled_as_ours_are_never_planned() {
    let mut foreign = mk_other_service("ns", "foreign");
    foreign["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("helm");
    let live: LiveSet = [foreign].into_iter().collect();
    assert!(live.is_empty());
}

fn mk_secret(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "svc", "namespace": "ns", "labels": {
            "app.kubernetes.io/managed-by": "modelship", "modelship.dev/service": "svc"}},
        "data": data})
}

#[test]
fn secret_values_are_redacted_in_every_output() {
    // "c2VjcmV0LW9uZQ==" is base64 of secret-one.
    let mut live = mk_live(&mk_secret(
        json!({"a": "c2VjcmV0LW9uZQ==", "b": "c2FtZQ=="}),
    ));
    live["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"a\":\"c2VjcmV0LW9uZQ==\"}}"});
    let mut desired = mk_secret(json!({"b": "c2FtZQ=="}));
    desired["stringData"] = json!({"a": "secret-two"});
    let live: LiveSet = [live].into_iter().collect();
    let plan = plan(&desired_of(vec![desired]), &live).unwrap();
    let object = only_object(&plan);
    assert_eq!(object.action, Action::Update);
    assert_eq!(paths(object), ["data.a"]);
    assert_eq!(object.changes[0].after, Some(json!(REDACTED_CHANGED)));
    for output in [
        render::render(&plan, render::Format::Text, false),
        render::render(&plan, render::Format::Text, true),
        render::render(&plan, render::Format::Markdown, false),
        render::render(&plan, render::Format::Json, false),
        format!("{:?}", plan),
    ] {
        for secret in [
            "c2VjcmV0LW9uZQ==",
            "secret-one",
            "secret-two",
            "c2FtZQ==",
            "c2VjcmV0LXR3bw==",
        ] {
            assert!(!output.contains(secret), "{secret} leaked into\n{output}");
        }
        assert!(output.contains("redacted"), "{output}");
    }

    // Deleting a Secret shows no value either.
    let live: LiveSet = [mk_secret(json!({"a": "c2VjcmV0LW9uZQ=="}))]
        .into_iter()
        .collect();
    let plan = super::plan(&desired_of(vec![]), &live).unwrap();
    let json = render::render(&plan, render::Format::Json, false);
    assert!(json.contains("\"delete\""), "{json}");
    assert!(!json.contains("c2VjcmV0LW9uZQ=="), "{json}");
}

#[test]
fn equal_secret_is_unchanged() {
    let secret = mk_secret(json!({"a": "c2VjcmV0LW9uZQ=="}));
    let mut desired = mk_secret(json!({}));
    desired["stringData"] = json!({"a": "secret-one"});
    desired.as_object_mut().unwrap().remove("data");
    let live: LiveSet = [mk_live(&secret)].into_iter().collect();
    let plan = plan(&desired_of(vec![desired]), &live).unwrap();
    assert_eq!(only_object(&plan).action, Action::Unchanged);
}

#[test]
fn summary_reports_version_replicas_and_gpus() {
    let mut before = mk_deployment("img:1", json!("1"));
    before["spec"]["replicas"] = json!(2);
    before["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] =
        json!("1");
    let live: LiveSet = [mk_live(&before)].into_iter().collect();
    let mut desired = before.clone();
    desired["metadata"]["labels"]["app.kubernetes.io/version"] = json!("2");
    desired["spec"]["replicas"] = json!(3);
    let plan = plan(&desired_of(vec![desired]), &live).unwrap();
    let summary = &plan.services[0].summary;
    assert_eq!(
        summary.version,
        Some(Delta {
            before: Some("1".into()),
            after: Some("2".into())
        })
    );
    assert_eq!(
        summary.replicas,
        Some(Delta {
            before: Some("2".into()),
            after: Some("3".into())
        })
    );
    assert_eq!(
        summary.gpus,
        Some(Delta {
            before: Some(2),
            after: Some(3)
        })
    );
    assert!(summary.images.is_empty());
}

#[test]
fn renderers_show_changes_and_counts() {
    let live: LiveSet = [mk_live(&mk_deployment("img:1", json!("1")))]
        .into_iter()
        .collect();
    let plan = plan(&desired_of(vec![mk_deployment("img:2", json!("1"))]), &live).unwrap();

    let text = render::render(&plan, render::Format::Text, false);
    assert!(text.starts_with("Plan: 1 to update\n"), "{text}");
    assert!(text.contains("ns/svc"), "{text}");
    assert!(text.contains("image server img:1 -> img:2"), "{text}");
    assert!(!text.contains('\x1b'), "no colour when not asked: {text}");
    let colored = render::render(&plan, render::Format::Text, true);
    assert!(colored.contains("\x1b[32m+"), "{colored}");

    let md = render::render(&plan, render::Format::Markdown, false);
    assert!(
        md.contains("<details><summary><b>ns/svc</b>: 1 to update</summary>"),
        "{md}"
    );
    assert!(md.contains("```diff\n"), "{md}");
    assert!(md.contains("| `ns/svc` | present | 1 to update |"), "{md}");

    let json: Value =
        serde_json::from_str(&render::render(&plan, render::Format::Json, false)).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["hasChanges"], true);
    assert_eq!(json["counts"]["update"], 1);
    let object = &json["services"][0]["objects"][0];
    assert_eq!(json["services"][0]["status"], "present");
    assert_eq!(object["action"], "update");
    assert_eq!(object["kind"], "Deployment");
    assert_eq!(
        object["changes"][0]["path"],
        "spec.template.spec.containers[name=server].image"
    );
    assert_eq!(object["patch"][0]["op"], "replace");
}

#[test]
fn json_names_the_block_reason() {
    let live: LiveSet = [mk_other_service("ns", "broken")].into_iter().collect();
    let desired = DesiredState {
        services: vec![],
        invalid: vec![ServiceId::new("ns", "broken").unwrap()],
        repository_valid: false,
    };
    let plan = plan(&desired, &live).unwrap();
    let json: Value = serde_json::from_str(&render::json::json(&plan)).unwrap();
    assert_eq!(json["services"][0]["status"], "blocked");
    assert_eq!(json["services"][0]["reason"], "invalid-spec");
    assert_eq!(json["hasChanges"], false);
}

#[test]
fn unnamed_desired_object_is_an_error() {
    let err = plan(
        &desired_of(vec![json!({"kind": "Service"})]),
        &LiveSet::new(),
    )
    .unwrap_err();
    assert_eq!(err.metric_label(), "plan_unnamed_object");
}

#[test]
fn a_new_source_annotation_alone_is_not_a_change() {
    let mut before = mk_deployment("img:1", json!("1"));
    before["metadata"]["annotations"] =
        json!({"modelship.dev/source": "repo@aaa:services/svc.yaml"});
    let live: LiveSet = [mk_live(&before)].into_iter().collect();
    let mut desired = before.clone();
    desired["metadata"]["annotations"]["modelship.dev/source"] =
        json!("repo@bbb:services/svc.yaml");
    let unchanged = plan(&desired_of(vec![desired.clone()]), &live).unwrap();
    assert_eq!(only_object(&unchanged).action, Action::Unchanged);

    desired["spec"]["template"]["spec"]["containers"][0]["image"] = json!("img:2");
    let changed = plan(&desired_of(vec![desired]), &live).unwrap();
    assert_eq!(
        paths(only_object(&changed)),
        ["spec.template.spec.containers[name=server].image"]
    );
}

mod properties {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use crate::plan::project::project;

    /// JSON trees with keys that have no special meaning to the projection.
    fn tree() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::from),
            "[a-z0-9]{0,6}".prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-e]", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// What a server adds: a field nobody sent in every map (`x-` keys never collide with
    /// `[a-e]` ones), bookkeeping, status.
    fn with_server_additions(value: &Value, extra: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut out: Map<String, Value> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), with_server_additions(v, extra)))
                    .collect();
                out.insert("x-defaulted".into(), extra.clone());
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| with_server_additions(v, extra))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    proptest! {
        #[test]
        fn server_additions_never_show(spec in tree(), extra in tree()) {
            let desired = json!({"apiVersion": "v1", "kind": "Thing",
                "metadata": {"name": "n", "namespace": "ns"}, "spec": spec});
            let mut live = with_server_additions(&desired, &extra);
            live["metadata"]["resourceVersion"] = json!("9");
            live["status"] = json!({"ready": true});
            prop_assert_eq!(project(&live, &desired), desired);
        }

        #[test]
        fn fast_equality_agrees_with_projection(a in tree(), b in tree(), extra in tree(), own in any::<bool>()) {
            let desired = json!({"kind": "Thing", "metadata": {"name": "n"}, "spec": a});
            let mut live = json!({"kind": "Thing", "metadata": {"name": "n"}, "spec": b});
            if own {
                // modelship owns whatever the live object has under spec.
                let fields = super::fields_of(&live["spec"]);
                live["metadata"]["managedFields"] = json!([{"manager": "modelship",
                    "operation": "Apply", "fieldsV1": {"f:spec": fields}}]);
            }
            let similar = with_server_additions(&desired, &extra);
            for live in [&live, &similar] {
                prop_assert_eq!(
                    crate::plan::project::projects_to_desired(live, &desired, &[]),
                    project(live, &desired) == desired
                );
            }
        }

        #[test]
        fn patch_turns_projected_live_into_desired(a in tree(), b in tree()) {
            let desired = json!({"kind": "Thing", "spec": a});
            let live = json!({"kind": "Thing", "spec": b});
            let mut projected = project(&live, &desired);
            let patch = json_patch::diff(&projected, &desired);
            json_patch::patch(&mut projected, &patch).unwrap();
            prop_assert_eq!(projected, desired);
        }
    }
}

mod detail;
mod guard;
