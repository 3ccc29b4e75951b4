//! Server-side apply through the real kube client: creation, ownership shared between
//! managers, conflicts, force, removal of fields a manager stops sending, no-op applies,
//! and defaulting visible on read. Each test also runs on the real cluster of
//! `MODELSHIP_TEST_KUBECONFIG` (`support::target`), in a namespace of its own.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, Patch, PatchParams};
use modelship::sandbox::{Sandbox, Verb};
use serde_json::{Value, json};
use support::sandbox::status_of;
use support::target::{Target, on_each_target};
use support::within;

fn cm_config(data: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "settings" }, "data": data })
}

fn managers(cm: &ConfigMap) -> Vec<(String, String)> {
    cm.metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect()
}

async fn apply(
    api: &Api<ConfigMap>,
    manager: &str,
    force: bool,
    config: Value,
) -> kube::Result<ConfigMap> {
    let mut params = PatchParams::apply(manager);
    params.force = force;
    api.patch("settings", &params, &Patch::Apply(config)).await
}

#[tokio::test]
async fn apply_creates_then_shares_fields_between_managers() {
    on_each_target(
        "apply_creates_then_shares_fields_between_managers",
        apply_creates_then_shares_fields_between_managers_on,
    )
    .await;
}

async fn apply_creates_then_shares_fields_between_managers_on(sb: Target) {
    let cms: Api<ConfigMap> = Api::namespaced(sb.client(), &sb.namespace("default").await);
    within(async {
        let created = apply(
            &cms,
            "alice",
            false,
            cm_config(json!({ "shared": "1", "a": "x" })),
        )
        .await
        .expect("create by apply");
        // ConfigMaps carry no generation in kube-apiserver.
        assert_eq!(created.metadata.generation, None);
        assert_eq!(
            managers(&created),
            vec![("alice".to_string(), "Apply".to_string())]
        );
        let both = apply(
            &cms,
            "bob",
            false,
            cm_config(json!({ "shared": "1", "b": "y" })),
        )
        .await
        .expect("same value is no conflict");
        let mut names: Vec<String> = managers(&both).into_iter().map(|(m, _)| m).collect();
        names.sort();
        assert_eq!(names, vec!["alice", "bob"]);
        let data = both.data.unwrap_or_default();
        assert_eq!(
            (data.get("a"), data.get("b"), data.get("shared")),
            (Some(&"x".into()), Some(&"y".into()), Some(&"1".into()))
        );
    })
    .await;
    assert_eq!(sb.requests().get(Verb::Apply, "configmaps"), 2);
}

#[tokio::test]
async fn conflicting_apply_names_manager_and_field_until_forced() {
    on_each_target(
        "conflicting_apply_names_manager_and_field_until_forced",
        conflicting_apply_names_manager_and_field_until_forced_on,
    )
    .await;
}

async fn conflicting_apply_names_manager_and_field_until_forced_on(sb: Target) {
    let cms: Api<ConfigMap> = Api::namespaced(sb.client(), &sb.namespace("default").await);
    within(async {
        apply(&cms, "alice", false, cm_config(json!({ "owned": "alice" })))
            .await
            .expect("alice applies");
        let status =
            status_of(apply(&cms, "bob", false, cm_config(json!({ "owned": "bob" }))).await);
        assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
        assert!(
            status.message.contains("\"alice\""),
            "manager missing: {}",
            status.message
        );
        assert!(
            status.message.contains(".data.owned"),
            "field missing: {}",
            status.message
        );
        assert_eq!(
            cms.get("settings")
                .await
                .expect("get")
                .data
                .unwrap_or_default()
                .get("owned")
                .map(String::as_str),
            Some("alice")
        );

        let forced = apply(&cms, "bob", true, cm_config(json!({ "owned": "bob" })))
            .await
            .expect("force");
        assert_eq!(
            forced
                .data
                .unwrap_or_default()
                .get("owned")
                .map(String::as_str),
            Some("bob")
        );
        let back =
            status_of(apply(&cms, "alice", false, cm_config(json!({ "owned": "alice" }))).await);
        assert_eq!(back.code, 409, "bob now owns the field");
    })
    .await;
}

#[tokio::test]
async fn fields_dropped_by_their_only_manager_are_removed() {
    on_each_target(
        "fields_dropped_by_their_only_manager_are_removed",
        fields_dropped_by_their_only_manager_are_removed_on,
    )
    .await;
}

async fn fields_dropped_by_their_only_manager_are_removed_on(sb: Target) {
    let cms: Api<ConfigMap> = Api::namespaced(sb.client(), &sb.namespace("default").await);
    within(async {
        apply(
            &cms,
            "alice",
            false,
            cm_config(json!({ "keep": "1", "drop": "2" })),
        )
        .await
        .expect("first apply");
        apply(&cms, "bob", false, cm_config(json!({ "keep": "1" })))
            .await
            .expect("bob co-owns keep");
        let after = apply(&cms, "alice", false, cm_config(json!({})))
            .await
            .expect("alice sends nothing");
        let data = after.data.unwrap_or_default();
        assert_eq!(data.get("drop"), None, "a field only alice owned survived");
        assert_eq!(
            data.get("keep").map(String::as_str),
            Some("1"),
            "a field bob still owns was removed"
        );
    })
    .await;
}

#[tokio::test]
async fn repeated_apply_is_a_no_op() {
    on_each_target("repeated_apply_is_a_no_op", repeated_apply_is_a_no_op_on).await;
}

async fn repeated_apply_is_a_no_op_on(sb: Target) {
    let cms: Api<ConfigMap> = Api::namespaced(sb.client(), &sb.namespace("default").await);
    within(async {
        let first = apply(&cms, "alice", false, cm_config(json!({ "a": "1" })))
            .await
            .expect("apply");
        // The sandbox's one global resourceVersion shows that nothing at all was written;
        // a real API server has none to read.
        let rv = sb.as_sandbox().map(Sandbox::resource_version);
        let again = apply(&cms, "alice", false, cm_config(json!({ "a": "1" })))
            .await
            .expect("apply again");
        assert_eq!(
            again.metadata.resource_version,
            first.metadata.resource_version
        );
        assert_eq!(
            sb.as_sandbox().map(Sandbox::resource_version),
            rv,
            "an unchanged apply wrote"
        );
    })
    .await;
}

#[tokio::test]
async fn update_managers_conflict_with_appliers() {
    on_each_target(
        "update_managers_conflict_with_appliers",
        update_managers_conflict_with_appliers_on,
    )
    .await;
}

async fn update_managers_conflict_with_appliers_on(sb: Target) {
    let deploys: Api<Deployment> = Api::namespaced(sb.client(), &sb.namespace("default").await);
    let config = |replicas: i32| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "web" },
            "spec": {
                "replicas": replicas,
                "selector": { "matchLabels": { "app": "web" } },
                "template": { "metadata": { "labels": { "app": "web" } },
                              "spec": { "containers": [{ "name": "server", "image": "example/server:1" }] } }
            }
        })
    };
    within(async {
        deploys
            .patch(
                "web",
                &PatchParams::apply("modelship"),
                &Patch::Apply(config(2)),
            )
            .await
            .expect("apply");
        let scaler = PatchParams {
            field_manager: Some("autoscaler".into()),
            ..Default::default()
        };
        deploys
            .patch(
                "web",
                &scaler,
                &Patch::Merge(json!({ "spec": { "replicas": 5 } })),
            )
            .await
            .expect("autoscaler scales");
        let status = status_of(
            deploys
                .patch(
                    "web",
                    &PatchParams::apply("modelship"),
                    &Patch::Apply(config(2)),
                )
                .await,
        );
        assert_eq!(status.code, 409);
        assert!(
            status.message.contains("\"autoscaler\"") && status.message.contains(".spec.replicas"),
            "{}",
            status.message
        );
        let forced = deploys
            .patch(
                "web",
                &PatchParams::apply("modelship").force(),
                &Patch::Apply(config(2)),
            )
            .await
            .expect("force");
        assert_eq!(forced.spec.and_then(|s| s.replicas), Some(2));
    })
    .await;
}

#[tokio::test]
async fn defaults_are_visible_on_read() {
    on_each_target(
        "defaults_are_visible_on_read",
        defaults_are_visible_on_read_on,
    )
    .await;
}

async fn defaults_are_visible_on_read_on(sb: Target) {
    let client = sb.client();
    let namespace = sb.namespace("default").await;
    within(async {
        let svcs: Api<Service> = Api::namespaced(client.clone(), &namespace);
        let svc = json!({
            "apiVersion": "v1", "kind": "Service", "metadata": { "name": "web" },
            "spec": { "selector": { "app": "web" }, "ports": [{ "name": "http", "port": 80 }] }
        });
        svcs.patch("web", &PatchParams::apply("modelship"), &Patch::Apply(svc))
            .await
            .expect("apply service");
        let got = svcs.get("web").await.expect("get").spec.expect("spec");
        assert_eq!(got.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(got.session_affinity.as_deref(), Some("None"));
        let port = got
            .ports
            .unwrap_or_default()
            .into_iter()
            .next()
            .expect("port");
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
        assert!(got.cluster_ip.is_some_and(|ip| ip.starts_with("10.")));
    })
    .await;
}

/// One minimal valid object of every built-in kind (namespaced ones in `default`).
fn built_in_objects(namespace: &str) -> Vec<(kube::api::ApiResource, bool, Value)> {
    use kube::api::ApiResource;
    use kube::core::GroupVersionKind;
    let ar = |g: &str, v: &str, k: &str, plural: &str| {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, k), plural)
    };
    let selector = json!({ "matchLabels": { "app": "web" } });
    vec![
        (ar("", "v1", "Namespace", "namespaces"), false, json!({})),
        (
            ar("", "v1", "ServiceAccount", "serviceaccounts"),
            true,
            json!({}),
        ),
        (
            ar("", "v1", "ConfigMap", "configmaps"),
            true,
            json!({ "data": { "a": "b" } }),
        ),
        (
            ar("", "v1", "Secret", "secrets"),
            true,
            json!({ "stringData": { "a": "b" } }),
        ),
        (
            ar("", "v1", "Service", "services"),
            true,
            json!({ "spec": { "ports": [{ "port": 80 }] } }),
        ),
        (
            ar("", "v1", "Event", "events"),
            true,
            // kube-apiserver refuses an involvedObject of another namespace; the sandbox
            // checks no rules of a kind beyond its type.
            json!({ "involvedObject": { "kind": "Pod", "name": "p", "namespace": namespace },
                    "reason": "Test" }),
        ),
        (
            ar("apps", "v1", "Deployment", "deployments"),
            true,
            json!({ "spec": {
            "selector": selector,
            "template": { "metadata": { "labels": { "app": "web" } }, "spec": { "containers": [{ "name": "c", "image": "i" }] } } } }),
        ),
        (
            ar(
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
            ),
            true,
            json!({ "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" }, "maxReplicas": 3 } }),
        ),
        (
            ar(
                "policy",
                "v1",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
            ),
            true,
            json!({ "spec": { "selector": selector, "maxUnavailable": 1 } }),
        ),
        (
            ar(
                "networking.k8s.io",
                "v1",
                "NetworkPolicy",
                "networkpolicies",
            ),
            true,
            json!({ "spec": {
            "podSelector": selector, "ingress": [{ "ports": [{ "port": 8080 }] }] } }),
        ),
        (
            ar("coordination.k8s.io", "v1", "Lease", "leases"),
            true,
            json!({ "spec": {
            "holderIdentity": "me", "leaseDurationSeconds": 15, "renewTime": "2026-01-01T00:00:00.123456Z" } }),
        ),
        (
            ar("events.k8s.io", "v1", "Event", "events"),
            true,
            json!({ "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "x", "reportingInstance": "y", "action": "Test", "reason": "Test",
            "type": "Normal", "regarding": { "kind": "Pod", "name": "p", "namespace": namespace } }),
        ),
        (
            ar(
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingAdmissionPolicy",
                "validatingadmissionpolicies",
            ),
            false,
            json!({ "spec": {
            "matchConstraints": { "resourceRules": [{ "apiGroups": ["apps"], "apiVersions": ["v1"],
                "operations": ["CREATE"], "resources": ["deployments"] }] },
            "validations": [{ "expression": "true" }] } }),
        ),
        (
            ar(
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingAdmissionPolicyBinding",
                "validatingadmissionpolicybindings",
            ),
            false,
            json!({ "spec": {
            "policyName": "web", "validationActions": ["Deny"] } }),
        ),
    ]
}

#[tokio::test]
async fn every_built_in_kind_applies_and_reads_back() {
    on_each_target(
        "every_built_in_kind_applies_and_reads_back",
        every_built_in_kind_applies_and_reads_back_on,
    )
    .await;
}

async fn every_built_in_kind_applies_and_reads_back_on(sb: Target) {
    use kube::api::DynamicObject;
    let client = sb.client();
    let namespace = sb.namespace("default").await;
    // Cluster-scoped objects get a name of the test's own (deleted at its end).
    let cluster_name = sb.ns("web");
    within(async {
        for (ar, namespaced, mut body) in built_in_objects(&namespace) {
            let (api, name): (Api<DynamicObject>, &str) = if namespaced {
                (Api::namespaced_with(client.clone(), &namespace, &ar), "web")
            } else {
                sb.delete_at_end(&format!("{}.{}/{cluster_name}", ar.plural, ar.group));
                (Api::all_with(client.clone(), &ar), &cluster_name)
            };
            // core/v1 and events.k8s.io/v1 Events are one resource in kube-apiserver (two
            // in the sandbox): the second may not reuse the first's name.
            let name = if ar.group == "events.k8s.io" {
                "web-event"
            } else {
                name
            };
            if ar.kind == "ValidatingAdmissionPolicyBinding" {
                body["spec"]["policyName"] = json!(cluster_name);
            }
            let mut config = body.clone();
            config["apiVersion"] = json!(ar.api_version);
            config["kind"] = json!(ar.kind);
            // A label, so that the config owns a field of every kind: a real API server
            // writes once more on the second apply of a config that owns none (it drops
            // the applier's empty managedFields entry), which the sandbox does not model.
            config["metadata"] = json!({ "name": name, "labels": { "app": "web" } });
            let applied = api
                .patch(
                    name,
                    &PatchParams::apply("modelship"),
                    &Patch::Apply(config.clone()),
                )
                .await
                .unwrap_or_else(|e| panic!("apply {}: {e}", ar.kind));
            let read = api
                .get(name)
                .await
                .unwrap_or_else(|e| panic!("get {}: {e}", ar.kind));
            assert_eq!(read.metadata.uid, applied.metadata.uid, "{}", ar.kind);
            assert_eq!(
                read.types.as_ref().map(|t| t.kind.as_str()),
                Some(ar.kind.as_str())
            );
            let again = api
                .patch(
                    name,
                    &PatchParams::apply("modelship"),
                    &Patch::Apply(config),
                )
                .await
                .unwrap_or_else(|e| panic!("re-apply {}: {e}", ar.kind));
            if sb.is_real() && again.metadata.resource_version != read.metadata.resource_version {
                // A real cluster's controllers (HPA, disruption) write status beside an
                // apply; the sandbox simulates the Deployment controller only. Apart from
                // them, the object must be as it was.
                assert_eq!(ours(&again), ours(&read), "{} re-apply wrote", ar.kind);
            } else {
                assert_eq!(
                    again.metadata.resource_version, read.metadata.resource_version,
                    "{} re-apply wrote",
                    ar.kind
                );
            }
        }
    })
    .await;
}

/// An object without what controllers write beside an apply: its status, the
/// resourceVersion, the managedFields entries of managers other than `modelship` and the
/// Deployment controller's revision annotation.
fn ours(object: &kube::api::DynamicObject) -> Value {
    let mut object = serde_json::to_value(object).expect("an object is JSON");
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
        if let Some(Value::Array(fields)) = meta.get_mut("managedFields") {
            fields.retain(|f| f["manager"] == "modelship");
        }
        // The real Deployment controller's revision (the sandbox's writes none).
        if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
            annotations.remove("deployment.kubernetes.io/revision");
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    object
}
