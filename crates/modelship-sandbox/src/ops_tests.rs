//! Unit tests of the verbs and the write path, without a server.

use super::*;
use serde_json::json;

const NOW: &str = "2026-01-01T00:00:00Z";

fn ctx() -> WriteCtx<'static> {
    WriteCtx {
        dry_run: false,
        manager: "tester",
        now: NOW,
    }
}

fn dry() -> WriteCtx<'static> {
    WriteCtx {
        dry_run: true,
        ..ctx()
    }
}

fn rt(c: &Cluster, group: &str, version: &str, plural: &str) -> ResourceType {
    c.registry
        .find(group, version, plural)
        .cloned()
        .expect("served")
}

fn cm(name: &str, value: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name }, "data": { "k": value } })
}

fn rv(v: &Value) -> &str {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
}

#[test]
fn create_does_the_bookkeeping() {
    let mut c = Cluster::new(100, 1, NOW);
    let cms = rt(&c, "", "v1", "configmaps");
    let a = c
        .create(&cms, Some("default"), cm("a", "1"), ctx())
        .expect("create");
    assert_eq!(
        a["metadata"].get("generation"),
        None,
        "kube-apiserver keeps no generation for ConfigMaps"
    );
    assert_eq!(a["metadata"]["creationTimestamp"], NOW);
    assert_eq!(a["metadata"]["namespace"], "default");
    let b = c
        .create(&cms, Some("default"), cm("b", "1"), ctx())
        .expect("create");
    assert_ne!(a["metadata"]["uid"], b["metadata"]["uid"]);
    assert!(rv(&b).parse::<u64>().ok() > rv(&a).parse::<u64>().ok());
    let dup = c.create(&cms, Some("default"), cm("a", "2"), ctx());
    assert!(matches!(dup, Err(ApiError::AlreadyExists(_))));
    let nowhere = c.create(&cms, Some("missing"), cm("a", "1"), ctx());
    assert_eq!(
        nowhere.map_err(|e| e.to_string()),
        Err("namespaces \"missing\" not found".into())
    );
}

#[test]
fn updates_check_resource_version_and_skip_no_ops() {
    let mut c = Cluster::new(100, 1, NOW);
    let cms = rt(&c, "", "v1", "configmaps");
    let main = WriteMode::Main { record: true };
    let a = c
        .create(&cms, Some("default"), cm("a", "1"), ctx())
        .expect("create");
    let same = c
        .update(&cms, Some("default"), "a", a.clone(), ctx(), main)
        .expect("no-op");
    assert_eq!(rv(&same), rv(&a), "an unchanged object was rewritten");
    let mut changed = a.clone();
    changed["data"]["k"] = json!("2");
    let b = c
        .update(&cms, Some("default"), "a", changed.clone(), ctx(), main)
        .expect("update");
    assert_ne!(rv(&b), rv(&a));
    assert_eq!(b["metadata"].get("generation"), None);
    let stale = c.update(&cms, Some("default"), "a", changed, ctx(), main);
    assert!(matches!(stale, Err(ApiError::Conflict(_))));
}

#[test]
fn status_and_main_writes_stay_in_their_lanes() {
    let mut c = Cluster::new(100, 1, NOW);
    let deploys = rt(&c, "apps", "v1", "deployments");
    let body = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "web" },
        "spec": { "replicas": 1, "selector": { "matchLabels": { "app": "web" } },
                  "template": { "metadata": { "labels": { "app": "web" } }, "spec": { "containers": [{ "name": "c", "image": "i" }] } } },
        "status": { "replicas": 9 }
    });
    let created = c
        .create(&deploys, Some("default"), body, ctx())
        .expect("create");
    assert!(
        created.get("status").is_none(),
        "status is not writable on create"
    );
    let mut status_write = created.clone();
    status_write["status"] = json!({ "replicas": 1 });
    status_write["spec"]["replicas"] = json!(5);
    let s = c
        .update(
            &deploys,
            Some("default"),
            "web",
            status_write,
            ctx(),
            WriteMode::Status,
        )
        .expect("status");
    assert_eq!(
        (
            s["status"]["replicas"].clone(),
            s["spec"]["replicas"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(s["metadata"]["generation"], 1);
    let mut main_write = s.clone();
    main_write["status"] = json!({ "replicas": 7 });
    main_write["spec"]["replicas"] = json!(3);
    let m = c
        .update(
            &deploys,
            Some("default"),
            "web",
            main_write,
            ctx(),
            WriteMode::Main { record: true },
        )
        .expect("main");
    assert_eq!(
        (
            m["status"]["replicas"].clone(),
            m["spec"]["replicas"].clone()
        ),
        (json!(1), json!(3))
    );
    assert_eq!(m["metadata"]["generation"], 2);
}

#[test]
fn dry_runs_store_nothing() {
    let mut c = Cluster::new(100, 1, NOW);
    let cms = rt(&c, "", "v1", "configmaps");
    let before = c.store.current_rv();
    let would = c
        .create(&cms, Some("default"), cm("a", "1"), dry())
        .expect("dry create");
    assert_eq!(would["data"]["k"], "1");
    assert_eq!(c.store.current_rv(), before);
    assert!(c.get(&cms, Some("default"), "a").is_err());
    c.create(&cms, Some("default"), cm("a", "1"), ctx())
        .expect("create");
    c.delete(&cms, Some("default"), "a", &json!({}), dry())
        .expect("dry delete");
    assert!(c.get(&cms, Some("default"), "a").is_ok());
}

#[test]
fn crds_bring_and_take_their_kind() {
    let mut c = Cluster::new(100, 1, NOW);
    let crds = rt(
        &c,
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
    );
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": { "name": "widgets.example.com" },
        "spec": { "group": "example.com", "scope": "Cluster",
                  "names": { "plural": "widgets", "singular": "widget", "kind": "Widget" },
                  "versions": [{ "name": "v1", "served": true, "storage": true }] }
    });
    let stored = c.create(&crds, None, crd, ctx()).expect("create crd");
    assert_eq!(stored["status"]["conditions"][1]["type"], "Established");
    let widgets = rt(&c, "example.com", "v1", "widgets");
    let w =
        json!({ "apiVersion": "example.com/v1", "kind": "Widget", "metadata": { "name": "w" } });
    c.create(&widgets, None, w, ctx()).expect("create widget");
    c.delete(&crds, None, "widgets.example.com", &json!({}), ctx())
        .expect("delete crd");
    assert!(c.registry.find("example.com", "v1", "widgets").is_none());
    assert_eq!(c.store.list(&key_of(&widgets), None).count(), 0);
    let bad = json!({ "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                      "metadata": { "name": "wrong" }, "spec": { "group": "g.io", "scope": "Cluster",
                      "names": { "plural": "xs", "kind": "X" }, "versions": [{ "name": "v1" }] } });
    let err = c.create(&crds, None, bad, ctx()).err().map(|e| e.code());
    assert_eq!(err, Some(422));
    // Protected groups need the approval annotation, as kube-apiserver requires.
    let protected = |annotations: Value| {
        json!({ "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": { "name": "gadgets.x.k8s.io", "annotations": annotations },
                "spec": { "group": "x.k8s.io", "scope": "Cluster",
                          "names": { "plural": "gadgets", "kind": "Gadget" },
                          "versions": [{ "name": "v1", "served": true, "storage": true }] } })
    };
    let err = c.create(&crds, None, protected(json!({})), ctx()).err();
    assert_eq!(err.as_ref().map(|e| e.code()), Some(422));
    let approved = json!({ "api-approved.kubernetes.io": "https://github.com/kubernetes/enhancements/pull/1111" });
    c.create(&crds, None, protected(approved), ctx())
        .expect("an approved CRD in a protected group");
}

#[test]
fn body_identity_must_match_the_url() {
    let c = Cluster::new(100, 1, NOW);
    let cms = rt(&c, "", "v1", "configmaps");
    let check = |body: Value| {
        Cluster::check_identity(&cms, "v1", &body, Some("default"), Some("a")).map_err(|e| e.code())
    };
    assert_eq!(check(cm("a", "1")), Ok(()));
    assert_eq!(check(cm("b", "1")), Err(400));
    assert_eq!(
        check(json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "a" } })),
        Err(400)
    );
    assert_eq!(
        check(json!({ "apiVersion": "v1", "metadata": { "name": "a" } })),
        Err(400)
    );
    let mut other_ns = cm("a", "1");
    other_ns["metadata"]["namespace"] = json!("elsewhere");
    assert_eq!(check(other_ns), Err(400));
}
