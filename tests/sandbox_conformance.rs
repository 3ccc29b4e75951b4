//! The sandbox through the real kube client: verbs, selectors, errors, dry runs,
//! bookkeeping and defaulting behave like kube-apiserver.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use modelship::sandbox::{Sandbox, Verb};
use serde_json::json;
use support::sandbox::{configmap, deployment, service, status_of};
use support::within;

async fn sandbox() -> Sandbox {
    within(Sandbox::start()).await.expect("sandbox starts")
}

fn rv_of(cm: &ConfigMap) -> u64 {
    cm.metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .expect("numeric resourceVersion")
}

#[tokio::test]
async fn every_verb_round_trips() {
    let sb = sandbox().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sb.client());
    within(async {
        let created = cms
            .create(&PostParams::default(), &configmap("a", &[]))
            .await
            .expect("create");
        // kube-apiserver keeps no generation for ConfigMaps (it does for Deployments).
        assert_eq!(created.metadata.generation, None);
        assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
        let got = cms.get("a").await.expect("get");
        assert_eq!(got.metadata.uid, created.metadata.uid);

        let mut changed = got.clone();
        changed.data = Some([("key".to_string(), "v2".to_string())].into());
        let replaced = cms
            .replace("a", &PostParams::default(), &changed)
            .await
            .expect("replace");
        assert!(rv_of(&replaced) > rv_of(&got));
        assert_eq!(
            replaced
                .data
                .as_ref()
                .and_then(|d| d.get("key"))
                .map(String::as_str),
            Some("v2")
        );

        let merged = cms
            .patch(
                "a",
                &PatchParams::default(),
                &Patch::Merge(json!({ "data": { "extra": "1" } })),
            )
            .await
            .expect("merge patch");
        assert_eq!(merged.data.as_ref().map(|d| d.len()), Some(2));
        let ops: json_patch::Patch =
            serde_json::from_value(json!([{ "op": "remove", "path": "/data/extra" }]))
                .expect("patch ops");
        let jsoned = cms
            .patch("a", &PatchParams::default(), &Patch::Json::<()>(ops))
            .await
            .expect("json patch");
        assert_eq!(jsoned.data.as_ref().map(|d| d.len()), Some(1));
        let smp = cms
            .patch(
                "a",
                &PatchParams::default(),
                &Patch::Strategic(json!({ "data": { "s": "1" } })),
            )
            .await
            .expect("strategic patch");
        assert_eq!(
            smp.data
                .as_ref()
                .and_then(|d| d.get("s"))
                .map(String::as_str),
            Some("1")
        );

        let listed = cms.list(&ListParams::default()).await.expect("list");
        assert_eq!(listed.items.len(), 1);
        assert!(listed.metadata.resource_version.is_some());

        cms.delete("a", &DeleteParams::default())
            .await
            .expect("delete");
        assert_eq!(status_of(cms.get("a").await).code, 404);
        assert_eq!(
            status_of(cms.delete("a", &DeleteParams::default()).await).code,
            404
        );
    })
    .await;
    let counts = sb.requests();
    assert_eq!(counts.get(Verb::Create, "configmaps"), 1);
    assert_eq!(counts.get(Verb::Update, "configmaps"), 1);
    assert_eq!(counts.get(Verb::Patch, "configmaps"), 3);
    assert_eq!(counts.get(Verb::Delete, "configmaps"), 2);
    assert_eq!(counts.total_writes(), 7);
}

#[tokio::test]
async fn generate_name_gives_unique_names() {
    let sb = sandbox().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sb.client());
    let mut cm = configmap("", &[]);
    cm.metadata.name = None;
    cm.metadata.generate_name = Some("gen-".into());
    let (a, b) = within(async {
        let a = cms
            .create(&PostParams::default(), &cm)
            .await
            .expect("first");
        let b = cms
            .create(&PostParams::default(), &cm)
            .await
            .expect("second");
        (
            a.metadata.name.unwrap_or_default(),
            b.metadata.name.unwrap_or_default(),
        )
    })
    .await;
    assert!(a.starts_with("gen-") && a.len() == 9, "{a}");
    assert_ne!(a, b);
}

#[tokio::test]
async fn selectors_filter_lists_in_one_and_all_namespaces() {
    let sb = sandbox().await;
    let client = sb.client();
    within(async {
        let other: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace =
            serde_json::from_value(json!({ "metadata": { "name": "team-b" } })).expect("ns");
        other
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace");
        let a: Api<ConfigMap> = Api::default_namespaced(client.clone());
        let b: Api<ConfigMap> = Api::namespaced(client.clone(), "team-b");
        a.create(
            &PostParams::default(),
            &configmap("web", &[("app", "web"), ("tier", "gpu")]),
        )
        .await
        .expect("web");
        a.create(&PostParams::default(), &configmap("api", &[("app", "api")]))
            .await
            .expect("api");
        b.create(&PostParams::default(), &configmap("web", &[("app", "web")]))
            .await
            .expect("b/web");

        let names = |l: kube::core::ObjectList<ConfigMap>| {
            l.items
                .into_iter()
                .map(|c| {
                    format!(
                        "{}/{}",
                        c.metadata.namespace.unwrap_or_default(),
                        c.metadata.name.unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
        };
        let all: Api<ConfigMap> = Api::all(client.clone());
        let cases = [
            (
                ListParams::default().labels("app=web"),
                vec!["default/web", "team-b/web"],
            ),
            (
                ListParams::default().labels("app!=web"),
                vec!["default/api"],
            ),
            (
                ListParams::default().labels("app in (api,web),tier"),
                vec!["default/web"],
            ),
            (
                ListParams::default().labels("app notin (web)"),
                vec!["default/api"],
            ),
            (
                ListParams::default().labels("!tier"),
                vec!["default/api", "team-b/web"],
            ),
            (
                ListParams::default().fields("metadata.name=web"),
                vec!["default/web", "team-b/web"],
            ),
            (
                ListParams::default().fields("metadata.namespace=team-b"),
                vec!["team-b/web"],
            ),
        ];
        for (params, expected) in cases {
            let got = names(all.list(&params).await.expect("list"));
            assert_eq!(
                got, expected,
                "selector {:?} / {:?}",
                params.label_selector, params.field_selector
            );
        }
        assert_eq!(
            names(
                a.list(&ListParams::default().labels("app=web"))
                    .await
                    .expect("list")
            ),
            vec!["default/web"]
        );
        let bad = status_of(all.list(&ListParams::default().labels("app in web")).await);
        assert_eq!((bad.code, bad.reason.as_str()), (400, "BadRequest"));
    })
    .await;
}

#[tokio::test]
async fn stale_resource_version_conflicts() {
    let sb = sandbox().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sb.client());
    within(async {
        let first = cms
            .create(&PostParams::default(), &configmap("a", &[]))
            .await
            .expect("create");
        let mut newer = first.clone();
        newer.data = Some([("key".to_string(), "newer".to_string())].into());
        cms.replace("a", &PostParams::default(), &newer)
            .await
            .expect("first update");
        let mut stale = first.clone();
        stale.data = Some([("key".to_string(), "stale".to_string())].into());
        let status = status_of(cms.replace("a", &PostParams::default(), &stale).await);
        assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
        assert!(
            status.message.contains("the object has been modified"),
            "{}",
            status.message
        );
        let live = cms.get("a").await.expect("get");
        assert_eq!(
            live.data
                .as_ref()
                .and_then(|d| d.get("key"))
                .map(String::as_str),
            Some("newer")
        );
    })
    .await;
}

#[tokio::test]
async fn error_bodies_are_kube_statuses() {
    let sb = sandbox().await;
    let client = sb.client();
    within(async {
        let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
        cms.create(&PostParams::default(), &configmap("a", &[]))
            .await
            .expect("create");
        let dup = status_of(
            cms.create(&PostParams::default(), &configmap("a", &[]))
                .await,
        );
        assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
        assert_eq!(dup.message, "configmaps \"a\" already exists");

        let missing = status_of(
            Api::<Deployment>::default_namespaced(client.clone())
                .get("nope")
                .await,
        );
        assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
        assert_eq!(missing.message, "deployments.apps \"nope\" not found");

        let nowhere: Api<ConfigMap> = Api::namespaced(client.clone(), "absent");
        let no_ns = status_of(
            nowhere
                .create(&PostParams::default(), &configmap("a", &[]))
                .await,
        );
        assert_eq!(
            (no_ns.code, no_ns.message.as_str()),
            (404, "namespaces \"absent\" not found")
        );

        let bad_name = status_of(
            cms.create(&PostParams::default(), &configmap("Not_Valid", &[]))
                .await,
        );
        assert_eq!((bad_name.code, bad_name.reason.as_str()), (422, "Invalid"));

        let renamed = status_of(
            cms.replace("other", &PostParams::default(), &configmap("a", &[]))
                .await,
        );
        assert_eq!((renamed.code, renamed.reason.as_str()), (400, "BadRequest"));
        assert!(
            renamed
                .message
                .contains("does not match the name on the URL"),
            "{}",
            renamed.message
        );

        let no_manager = client
            .request_text(
                http::Request::patch("/api/v1/namespaces/default/configmaps/a")
                    .header("Content-Type", "application/apply-patch+yaml")
                    .body(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n".to_vec())
                    .expect("request"),
            )
            .await;
        assert_eq!(status_of(no_manager).code, 400);

        let unknown = client
            .request_text(
                http::Request::get("/apis/nothing.example/v1/things")
                    .body(Vec::new())
                    .expect("request"),
            )
            .await;
        assert_eq!(status_of(unknown).code, 404);
    })
    .await;
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let sb = sandbox().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sb.client());
    let dry_post = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let dry_patch = PatchParams {
        dry_run: true,
        ..PatchParams::apply("tester")
    };
    within(async {
        let would = cms.create(&dry_post, &configmap("a", &[])).await.expect("dry create");
        assert_eq!(would.metadata.name.as_deref(), Some("a"));
        assert_eq!(status_of(cms.get("a").await).code, 404);

        let live = cms.create(&PostParams::default(), &configmap("a", &[])).await.expect("create");
        let rv = sb.resource_version();
        let mut changed = live.clone();
        changed.data = Some([("key".to_string(), "dry".to_string())].into());
        let replaced = cms.replace("a", &dry_post, &changed).await.expect("dry replace");
        assert_eq!(replaced.data.as_ref().and_then(|d| d.get("key")).map(String::as_str), Some("dry"));
        let applied = cms.patch("a", &dry_patch, &Patch::Apply(json!({ "apiVersion": "v1", "kind": "ConfigMap", "data": { "applied": "yes" } }))).await.expect("dry apply");
        assert_eq!(applied.data.as_ref().and_then(|d| d.get("applied")).map(String::as_str), Some("yes"));
        cms.delete("a", &DeleteParams { dry_run: true, ..Default::default() }).await.expect("dry delete");

        assert_eq!(sb.resource_version(), rv, "a dry run moved the resourceVersion");
        let after = cms.get("a").await.expect("still there");
        assert_eq!(after.data, live.data);
        assert_eq!(after.metadata.resource_version, live.metadata.resource_version);
    })
    .await;
    assert_eq!(
        sb.requests().total_writes(),
        5,
        "dry runs are still counted as requests"
    );
}

#[tokio::test]
async fn generation_moves_only_with_the_spec() {
    let sb = sandbox().await;
    let deploys: Api<Deployment> = Api::default_namespaced(sb.client());
    within(async {
        deploys
            .create(&PostParams::default(), &deployment("web", Some(1)))
            .await
            .expect("create");
        let labelled = deploys
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "labels": { "x": "y" } } })),
            )
            .await
            .expect("label");
        assert_eq!(labelled.metadata.generation, Some(1));
        let scaled = deploys
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "replicas": 3 } })),
            )
            .await
            .expect("scale");
        assert_eq!(scaled.metadata.generation, Some(2));
        let status_only = deploys
            .patch_status(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": { "replicas": 7 }, "spec": { "replicas": 9 } })),
            )
            .await
            .expect("status patch");
        assert_eq!(status_only.metadata.generation, Some(2));
        assert_eq!(
            status_only.spec.and_then(|s| s.replicas),
            Some(3),
            "a status write changed the spec"
        );
        let main = deploys
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": { "replicas": 1 } })),
            )
            .await
            .expect("main patch");
        assert_ne!(
            main.status.and_then(|s| s.replicas),
            Some(1),
            "a main-resource write changed status"
        );
        let unchanged = deploys
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "replicas": 3 } })),
            )
            .await
            .expect("no-op");
        assert_eq!(unchanged.metadata.generation, Some(2));
    })
    .await;
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects() {
    let sb = sandbox().await;
    let client = sb.client();
    within(async {
        let nss: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace =
            serde_json::from_value(json!({ "metadata": { "name": "doomed" } })).expect("ns");
        nss.create(&PostParams::default(), &ns)
            .await
            .expect("create ns");
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
        cms.create(&PostParams::default(), &configmap("a", &[]))
            .await
            .expect("cm");
        nss.delete("doomed", &DeleteParams::default())
            .await
            .expect("delete ns");
        assert_eq!(status_of(cms.get("a").await).code, 404);
        assert_eq!(status_of(nss.get("doomed").await).code, 404);
        assert!(nss.get("default").await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn services_get_unique_cluster_ips() {
    let sb = sandbox().await;
    let svcs: Api<Service> = Api::default_namespaced(sb.client());
    within(async {
        svcs.create(&PostParams::default(), &service("a"))
            .await
            .expect("a");
        svcs.create(&PostParams::default(), &service("b"))
            .await
            .expect("b");
        let ip = |s: Service| s.spec.and_then(|s| s.cluster_ip).unwrap_or_default();
        let (a, b) = (
            ip(svcs.get("a").await.expect("get a")),
            ip(svcs.get("b").await.expect("get b")),
        );
        assert!(a.starts_with("10.9") && b.starts_with("10.9"), "{a} {b}");
        assert_ne!(a, b);
        let kept = svcs
            .patch(
                "a",
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "labels": { "x": "y" } } })),
            )
            .await
            .expect("patch");
        assert_eq!(ip(kept), a);
    })
    .await;
}

#[tokio::test]
async fn delete_collection_removes_matching_objects() {
    let sb = sandbox().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(sb.client());
    within(async {
        for (name, app) in [("a", "web"), ("b", "web"), ("c", "api")] {
            cms.create(&PostParams::default(), &configmap(name, &[("app", app)]))
                .await
                .expect("create");
        }
        let deleted = cms
            .delete_collection(
                &DeleteParams::default(),
                &ListParams::default().labels("app=web"),
            )
            .await
            .expect("delete collection");
        let names: Vec<String> = deleted
            .left()
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|c| c.metadata.name)
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(names, vec!["a", "b"]);
        let left: Vec<String> = cms
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        assert_eq!(left, vec!["c"]);
    })
    .await;
}

#[tokio::test]
async fn malformed_requests_get_client_errors_not_crashes() {
    let sb = sandbox().await;
    let client = sb.client();
    let cms = "/api/v1/namespaces/default/configmaps";
    let deploy = "/apis/apps/v1/namespaces/default/deployments/web";
    within(async {
        let deploys: Api<Deployment> = Api::default_namespaced(client.clone());
        deploys
            .create(&PostParams::default(), &deployment("web", Some(1)))
            .await
            .expect("create");
        Api::<ConfigMap>::default_namespaced(client.clone())
            .create(&PostParams::default(), &configmap("a", &[]))
            .await
            .expect("create cm");
        let cases: Vec<(&str, String, Option<&str>, &str, u16)> = vec![
            ("POST", cms.to_string(), None, "not json", 400),
            ("POST", cms.to_string(), None, "[1, 2]", 400),
            ("PUT", format!("{cms}/a"), None, "{", 400),
            (
                "PATCH",
                format!("{cms}/a"),
                Some("application/json-patch+json"),
                r#"{"op": "add"}"#,
                400,
            ),
            (
                "PATCH",
                format!("{cms}/a"),
                Some("application/json-patch+json"),
                r#"[{"op": "test", "path": "/data/key", "value": "other"}]"#,
                422,
            ),
            (
                "PATCH",
                format!("{cms}/a"),
                Some("application/json-patch+json"),
                r#"[{"op": "replace", "path": "", "value": "scalar"}]"#,
                400,
            ),
            (
                "PATCH",
                format!("{cms}/a"),
                Some("application/merge-patch+json"),
                r#"{"metadata": {"name": "renamed"}}"#,
                400,
            ),
            (
                "PATCH",
                format!("{cms}/a?fieldManager=t"),
                Some("application/apply-patch+yaml"),
                "- a\n- b\n",
                400,
            ),
            (
                "PATCH",
                format!("{cms}/a?fieldManager=t"),
                Some("application/apply-patch+yaml"),
                "apiVersion: v1\nkind: ConfigMap\nmetadata: 5\n",
                400,
            ),
            ("PATCH", format!("{cms}/a"), Some("text/plain"), "x", 415),
            (
                "PATCH",
                format!("{cms}/a?dryRun=Some"),
                Some("application/merge-patch+json"),
                "{}",
                400,
            ),
            (
                "PUT",
                format!("{deploy}/scale"),
                None,
                r#"{"kind": "Scale", "apiVersion": "autoscaling/v1"}"#,
                422,
            ),
            ("GET", format!("{deploy}/logs"), None, "", 404),
            (
                "GET",
                format!("{cms}?watch=true&resourceVersion=abc"),
                None,
                "",
                400,
            ),
            (
                "GET",
                format!("{cms}?labelSelector=a%20b%20c"),
                None,
                "",
                400,
            ),
            ("DELETE", format!("{cms}/a"), None, "garbage", 400),
            ("POST", format!("{cms}/a"), None, "{}", 405),
        ];
        for (method, uri, content_type, body, code) in cases {
            let mut req = http::Request::builder().method(method).uri(&uri);
            if let Some(ct) = content_type {
                req = req.header("Content-Type", ct);
            }
            let req = req.body(body.as_bytes().to_vec()).expect("request");
            match client.request_text(req).await {
                Err(kube::Error::Api(status)) => {
                    assert_eq!(
                        status.code, code,
                        "{method} {uri} {body:?}: {}",
                        status.message
                    )
                }
                other => panic!("{method} {uri} {body:?}: expected {code}, got {other:?}"),
            }
        }
        // Built-in kinds must keep their shape: a patch that breaks it is refused.
        let weird = deploys
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": "oops" })),
            )
            .await;
        let weird = status_of(weird);
        assert_eq!(weird.code, 400, "{}", weird.message);
        assert!(deploys.get_scale("web").await.is_ok());
        assert!(deploys.get("web").await.is_ok(), "the server survived");
    })
    .await;
}
