//! Behaviour over time through the real kube client: watches (order, resume, bookmarks,
//! 410), the simulated Deployment controller and `/scale`, CRD registration, and fault
//! injection.

mod support;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::discovery::Discovery;
use modelship::sandbox::{FaultCode, FaultFilter, Sandbox, Verb};
use serde_json::json;
use std::time::Duration;
use support::sandbox::{configmap, deployment, status_of};
use support::{eventually, within};

fn name_of(event: &WatchEvent<ConfigMap>) -> String {
    match event {
        WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
            o.metadata.name.clone().unwrap_or_default()
        }
        WatchEvent::Bookmark(_) => "<bookmark>".into(),
        WatchEvent::Error(e) => format!("<error {}>", e.code),
    }
}

fn kind_of(event: &WatchEvent<ConfigMap>) -> &'static str {
    match event {
        WatchEvent::Added(_) => "ADDED",
        WatchEvent::Modified(_) => "MODIFIED",
        WatchEvent::Deleted(_) => "DELETED",
        WatchEvent::Bookmark(_) => "BOOKMARK",
        WatchEvent::Error(_) => "ERROR",
    }
}

fn no_bookmarks() -> WatchParams {
    WatchParams::default().disable_bookmarks()
}

#[tokio::test]
async fn watch_streams_changes_in_order_and_resumes() {
    let sb = within(Sandbox::start()).await.expect("sandbox");
    let cms: Api<ConfigMap> = Api::default_namespaced(sb.client());
    within(async {
        cms.create(&PostParams::default(), &configmap("before", &[]))
            .await
            .expect("create");
        let mut stream = cms
            .watch(&no_bookmarks(), "0")
            .await
            .expect("watch")
            .boxed();
        let first = stream.try_next().await.expect("event").expect("open");
        assert_eq!(
            (kind_of(&first), name_of(&first)),
            ("ADDED", "before".to_string())
        );

        cms.create(&PostParams::default(), &configmap("a", &[]))
            .await
            .expect("create a");
        let modified = cms
            .patch(
                "a",
                &PatchParams::default(),
                &Patch::Merge(json!({ "data": { "k": "2" } })),
            )
            .await
            .expect("patch a");
        cms.delete("a", &DeleteParams::default())
            .await
            .expect("delete a");
        let mut seen = Vec::new();
        for _ in 0..3 {
            let e = stream.try_next().await.expect("event").expect("open");
            seen.push(format!("{} {}", kind_of(&e), name_of(&e)));
        }
        assert_eq!(seen, vec!["ADDED a", "MODIFIED a", "DELETED a"]);

        let rv = modified.metadata.resource_version.expect("rv");
        let resumed: Vec<String> = cms
            .watch(&no_bookmarks().timeout(1), &rv)
            .await
            .expect("resume")
            .map(|e| e.map(|e| format!("{} {}", kind_of(&e), name_of(&e))))
            .try_collect()
            .await
            .expect("events");
        assert_eq!(
            resumed,
            vec!["DELETED a"],
            "resume from {rv} replays only later events"
        );
    })
    .await;
}

#[tokio::test]
async fn watch_selectors_and_bookmarks() {
    let sb = within(
        Sandbox::builder()
            .bookmark_interval(Duration::from_millis(50))
            .start(),
    )
    .await
    .expect("sandbox");
    let cms: Api<ConfigMap> = Api::default_namespaced(sb.client());
    within(async {
        let rv = cms
            .create(&PostParams::default(), &configmap("x", &[]))
            .await
            .expect("x")
            .metadata
            .resource_version
            .expect("rv");
        let mut stream = cms
            .watch(&WatchParams::default().labels("app=web"), &rv)
            .await
            .expect("watch")
            .boxed();
        cms.create(
            &PostParams::default(),
            &configmap("other", &[("app", "api")]),
        )
        .await
        .expect("other");
        cms.create(&PostParams::default(), &configmap("web", &[("app", "web")]))
            .await
            .expect("web");
        let mut saw_bookmark = false;
        let mut saw_web = false;
        while !(saw_bookmark && saw_web) {
            let e = stream.try_next().await.expect("event").expect("open");
            match &e {
                WatchEvent::Bookmark(b) => {
                    assert!(!b.metadata.resource_version.is_empty());
                    saw_bookmark = true;
                }
                WatchEvent::Added(o) => {
                    assert_eq!(
                        o.metadata.name.as_deref(),
                        Some("web"),
                        "selector let through {:?}",
                        o.metadata.name
                    );
                    saw_web = true;
                }
                other => panic!("unexpected {}", kind_of(other)),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn watch_from_expired_version_gets_410() {
    let sb = within(Sandbox::builder().watch_window(2).start())
        .await
        .expect("sandbox");
    let cms: Api<ConfigMap> = Api::default_namespaced(sb.client());
    within(async {
        let first = cms
            .create(&PostParams::default(), &configmap("a", &[]))
            .await
            .expect("a");
        for i in 0..4 {
            cms.patch(
                "a",
                &PatchParams::default(),
                &Patch::Merge(json!({ "data": { "i": i.to_string() } })),
            )
            .await
            .expect("patch");
        }
        let rv = first.metadata.resource_version.expect("rv");
        let mut stream = cms
            .watch(&no_bookmarks(), &rv)
            .await
            .expect("watch")
            .boxed();
        match stream.try_next().await.expect("event").expect("open") {
            WatchEvent::Error(status) => {
                assert_eq!(status.code, 410);
                assert_eq!(status.reason, "Expired");
                assert!(
                    status.message.starts_with("too old resource version"),
                    "{}",
                    status.message
                );
            }
            other => panic!("expected 410, got {}", kind_of(&other)),
        }
    })
    .await;
}

#[tokio::test]
async fn deployment_status_converges_and_scales() {
    let sb = within(
        Sandbox::builder()
            .controller_delay(Duration::from_millis(20))
            .start(),
    )
    .await
    .expect("sandbox");
    let deploys: Api<Deployment> = Api::default_namespaced(sb.client());
    within(async {
        deploys
            .create(&PostParams::default(), &deployment("web", Some(2)))
            .await
            .expect("create");
        let ready = |want: i32| {
            let deploys = deploys.clone();
            move || {
                let deploys = deploys.clone();
                async move {
                    let d = deploys.get("web").await.ok()?;
                    let s = d.status?;
                    (s.observed_generation == d.metadata.generation
                        && s.ready_replicas == Some(want)
                        && s.available_replicas == Some(want))
                    .then_some(s)
                }
            }
        };
        let status = eventually("2 ready replicas", ready(2)).await;
        assert_eq!(status.updated_replicas, Some(2));
        let conditions = status.conditions.unwrap_or_default();
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        );
        assert!(
            conditions.iter().any(|c| c.type_ == "Progressing"
                && c.reason.as_deref() == Some("NewReplicaSetAvailable"))
        );

        let scale = deploys.get_scale("web").await.expect("get scale");
        assert_eq!(scale.spec.and_then(|s| s.replicas), Some(2));
        assert_eq!(
            scale.status.map(|s| s.selector),
            Some(Some("app=web".into()))
        );
        deploys
            .patch_scale(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "replicas": 4 } })),
            )
            .await
            .expect("patch scale");
        eventually("4 ready replicas", ready(4)).await;
        let mut scale = deploys.get_scale("web").await.expect("get scale");
        scale.spec = Some(k8s_openapi::api::autoscaling::v1::ScaleSpec { replicas: Some(1) });
        deploys
            .replace_scale("web", &PostParams::default(), &scale)
            .await
            .expect("replace scale");
        let d = eventually("1 ready replica", ready(1)).await;
        assert_eq!(d.replicas, Some(1));
        assert_eq!(
            deploys.get("web").await.expect("get").metadata.generation,
            Some(3)
        );
    })
    .await;
}

#[tokio::test]
async fn held_deployments_stay_unready_until_released() {
    let sb = within(
        Sandbox::builder()
            .controller_delay(Duration::from_millis(10))
            .start(),
    )
    .await
    .expect("sandbox");
    let deploys: Api<Deployment> = Api::default_namespaced(sb.client());
    sb.hold_unready("default", "slow");
    within(async {
        deploys
            .create(&PostParams::default(), &deployment("slow", None))
            .await
            .expect("create");
        let unready = eventually("status observed", || async {
            let s = deploys.get("slow").await.ok()?.status?;
            s.observed_generation.is_some().then_some(s)
        })
        .await;
        assert_eq!(unready.ready_replicas, None);
        assert_eq!(unready.replicas, Some(1));
        assert!(
            unready
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Available" && c.status == "False")
        );
        sb.release("default", "slow");
        eventually("ready after release", || async {
            (deploys.get("slow").await.ok()?.status?.ready_replicas == Some(1)).then_some(())
        })
        .await;
    })
    .await;
}

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "widgets.example.com" },
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"] },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } }
            }]
        }
    }))
    .expect("valid CRD")
}

/// Whether legacy and aggregated discovery both list widgets (and agree).
async fn discovers_widgets(client: kube::Client) -> bool {
    let has = |d: &Discovery| {
        d.groups().any(|g| {
            g.name() == "example.com"
                && g.recommended_resources().iter().any(|(r, caps)| {
                    r.plural == "widgets" && caps.scope == kube::discovery::Scope::Namespaced
                })
        })
    };
    let legacy = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let aggregated = Discovery::new(client)
        .run_aggregated()
        .await
        .expect("aggregated discovery");
    assert_eq!(
        has(&legacy),
        has(&aggregated),
        "legacy and aggregated discovery disagree"
    );
    has(&legacy)
}

#[tokio::test]
async fn crds_register_and_unregister_kinds() {
    let sb = within(Sandbox::start()).await.expect("sandbox");
    let client = sb.client();
    within(async {
        let preloaded = Discovery::new(client.clone())
            .run()
            .await
            .expect("discovery");
        for group in ["gateway.networking.k8s.io", "networking.istio.io"] {
            assert!(preloaded.has_group(group), "{group} not preloaded");
        }
        assert!(!discovers_widgets(client.clone()).await);
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let created = crds
            .create(&PostParams::default(), &widget_crd())
            .await
            .expect("create CRD");
        let established = created
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default();
        assert!(
            established
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        );
        assert!(discovers_widgets(client.clone()).await);

        let ar = ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("example.com", "v1", "Widget"),
            "widgets",
        );
        let widgets: Api<DynamicObject> = Api::default_namespaced_with(client.clone(), &ar);
        let mut w = DynamicObject::new("w1", &ar);
        w.data = json!({ "spec": { "size": 3 } });
        widgets
            .create(&PostParams::default(), &w)
            .await
            .expect("create widget");
        let patched = widgets
            .patch(
                "w1",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "size": 4 } })),
            )
            .await
            .expect("merge patch");
        assert_eq!(patched.data["spec"]["size"], 4);
        let smp = status_of(
            widgets
                .patch(
                    "w1",
                    &PatchParams::default(),
                    &Patch::Strategic(json!({ "spec": { "size": 5 } })),
                )
                .await,
        );
        assert_eq!(
            (smp.code, smp.reason.as_str()),
            (415, "UnsupportedMediaType")
        );
        assert_eq!(
            widgets
                .list(&Default::default())
                .await
                .expect("list")
                .items
                .len(),
            1
        );

        crds.delete("widgets.example.com", &DeleteParams::default())
            .await
            .expect("delete CRD");
        assert!(!discovers_widgets(client.clone()).await);
        assert_eq!(status_of(widgets.get("w1").await).code, 404);
    })
    .await;
}

#[tokio::test]
async fn injected_faults_reach_the_client() {
    let sb = within(Sandbox::start()).await.expect("sandbox");
    let cms: Api<ConfigMap> = Api::default_namespaced(sb.client());
    within(async {
        cms.create(&PostParams::default(), &configmap("a", &[]))
            .await
            .expect("create");
        sb.faults().fail_rate(
            1.0,
            FaultCode::Internal,
            FaultFilter::verb(Verb::Get).on("configmaps"),
        );
        let status = status_of(cms.get("a").await);
        assert_eq!(
            (status.code, status.reason.as_str()),
            (500, "InternalError")
        );
        assert!(
            cms.list(&Default::default()).await.is_ok(),
            "the filter limits faults to GET"
        );
        sb.faults().clear();

        // kube's default client retries 429 and 503: without retries they are visible...
        let mut config = kube::Config::new(sb.url().parse().expect("url"));
        config.default_retry = false;
        let plain: Api<ConfigMap> =
            Api::default_namespaced(kube::Client::try_from(config).expect("client"));
        sb.faults()
            .fail_rate(1.0, FaultCode::TooManyRequests, FaultFilter::any());
        assert_eq!(status_of(plain.list(&Default::default()).await).code, 429);
        sb.faults().clear();
        sb.faults()
            .fail_rate(1.0, FaultCode::Unavailable, FaultFilter::any());
        assert_eq!(status_of(plain.list(&Default::default()).await).code, 503);
        sb.faults().clear();
        // ...and with retries, a partial failure rate costs extra requests but succeeds.
        sb.faults()
            .fail_rate(0.5, FaultCode::Unavailable, FaultFilter::verb(Verb::Get));
        sb.reset_requests();
        for _ in 0..10 {
            cms.get("a").await.expect("retried get succeeds");
        }
        assert!(
            sb.requests().get(Verb::Get, "configmaps") > 10,
            "no request was failed and retried"
        );
        sb.faults().clear();

        sb.faults().conflict_next_writes(1);
        let patch = Patch::Merge(json!({ "data": { "k": "v" } }));
        assert_eq!(
            status_of(cms.patch("a", &PatchParams::default(), &patch).await).code,
            409
        );
        cms.patch("a", &PatchParams::default(), &patch)
            .await
            .expect("second write succeeds");

        sb.faults().set_latency(Duration::from_millis(150));
        let started = tokio::time::Instant::now();
        cms.get("a").await.expect("slow get");
        assert!(started.elapsed() >= Duration::from_millis(150));
        sb.faults().clear();

        let mut stream = cms
            .watch(&no_bookmarks(), "0")
            .await
            .expect("watch")
            .boxed();
        assert!(matches!(
            stream.try_next().await,
            Ok(Some(WatchEvent::Added(_)))
        ));
        sb.faults().drop_watches();
        let ended = loop {
            match stream.next().await {
                None | Some(Err(_)) => break true,
                Some(Ok(_)) => continue,
            }
        };
        assert!(ended);
    })
    .await;
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sb = within(Sandbox::start()).await.expect("sandbox");
    let client = sb.client();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let _watch = within(cms.watch(&no_bookmarks(), "0"))
        .await
        .expect("watch open");
    within(sb.shutdown()).await.expect("clean shutdown");
    assert!(within(cms.list(&Default::default())).await.is_err());
}

/// Drives a kube-runtime watcher through list, add and delete; returns what it saw.
async fn watcher_sees(sb: &Sandbox, config: kube::runtime::watcher::Config) -> Vec<String> {
    use kube::runtime::watcher::{Event, watcher};
    let cms: Api<ConfigMap> = Api::default_namespaced(sb.client());
    cms.create(&PostParams::default(), &configmap("listed", &[]))
        .await
        .expect("listed");
    let mut stream = watcher(cms.clone(), config).boxed();
    let mut seen = Vec::new();
    let name = |o: &ConfigMap| o.metadata.name.clone().unwrap_or_default();
    loop {
        match stream
            .try_next()
            .await
            .expect("watcher event")
            .expect("open")
        {
            Event::Init => seen.push("init".to_string()),
            Event::InitApply(o) => seen.push(format!("init-apply {}", name(&o))),
            Event::InitDone => {
                seen.push("init-done".to_string());
                cms.create(&PostParams::default(), &configmap("later", &[]))
                    .await
                    .expect("later");
            }
            Event::Apply(o) => {
                seen.push(format!("apply {}", name(&o)));
                cms.delete("later", &DeleteParams::default())
                    .await
                    .expect("delete");
            }
            Event::Delete(o) => {
                seen.push(format!("delete {}", name(&o)));
                return seen;
            }
        }
    }
}

#[tokio::test]
async fn kube_runtime_watcher_lists_then_watches() {
    let sb = within(Sandbox::start()).await.expect("sandbox");
    let seen = within(watcher_sees(&sb, kube::runtime::watcher::Config::default())).await;
    assert_eq!(
        seen,
        vec![
            "init",
            "init-apply listed",
            "init-done",
            "apply later",
            "delete later"
        ]
    );
    let counts = sb.requests();
    assert_eq!(
        (
            counts.get(Verb::List, "configmaps"),
            counts.get(Verb::Watch, "configmaps")
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn kube_runtime_watcher_with_streaming_lists() {
    let sb = within(Sandbox::start()).await.expect("sandbox");
    let config = kube::runtime::watcher::Config::default().streaming_lists();
    let seen = within(watcher_sees(&sb, config)).await;
    assert_eq!(
        seen,
        vec![
            "init",
            "init-apply listed",
            "init-done",
            "apply later",
            "delete later"
        ]
    );
    assert_eq!(
        sb.requests().get(Verb::List, "configmaps"),
        0,
        "streaming lists need no LIST"
    );
}

#[tokio::test]
async fn serve_writes_a_kubeconfig_kube_can_load_and_stops_on_signal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kubeconfig");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let server = {
        let path = path.clone();
        tokio::spawn(async move {
            modelship::sandbox::serve(addr, Some(&path), async {
                let _ = stopped.await;
            })
            .await
        })
    };
    within(async {
        let kubeconfig = eventually("kubeconfig written", || async {
            kube::config::Kubeconfig::read_from(&path).ok()
        })
        .await;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kube accepts the kubeconfig");
        assert_eq!(config.default_namespace, "default");
        let client = kube::Client::try_from(config).expect("client");
        let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
        let names: Vec<String> = nss
            .list(&Default::default())
            .await
            .expect("list namespaces")
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        assert_eq!(names, vec!["default", "kube-public", "kube-system"]);
        let _ = stop.send(());
        server.await.expect("server task").expect("clean stop");
    })
    .await;
}

#[tokio::test]
async fn crd_preloading_can_be_turned_off() {
    let sb = within(Sandbox::builder().preload_crds(false).start())
        .await
        .expect("sandbox");
    let discovery = within(Discovery::new(sb.client()).run())
        .await
        .expect("discovery");
    assert!(!discovery.has_group("gateway.networking.k8s.io"));
    assert!(discovery.has_group("apps"));
}

#[tokio::test]
async fn metadata_only_views_for_get_list_and_watch() {
    let sb = within(Sandbox::start()).await.expect("sandbox");
    let cms: Api<ConfigMap> = Api::default_namespaced(sb.client());
    within(async {
        cms.create(&PostParams::default(), &configmap("a", &[("app", "web")]))
            .await
            .expect("create");
        let one = cms.get_metadata("a").await.expect("get metadata");
        assert_eq!(
            one.types.as_ref().map(|t| t.kind.as_str()),
            Some("PartialObjectMetadata")
        );
        assert_eq!(
            one.metadata.labels.and_then(|l| l.get("app").cloned()),
            Some("web".into())
        );
        let list = cms
            .list_metadata(&Default::default())
            .await
            .expect("list metadata");
        assert_eq!(list.items.len(), 1);
        assert_eq!(list.types.kind, "PartialObjectMetadataList");
        let mut stream = cms
            .watch_metadata(&no_bookmarks(), "0")
            .await
            .expect("watch metadata")
            .boxed();
        match stream.try_next().await.expect("event").expect("open") {
            WatchEvent::Added(o) => {
                assert_eq!(
                    o.types.map(|t| t.kind),
                    Some("PartialObjectMetadata".to_string())
                );
            }
            other => panic!("expected ADDED, got {other:?}"),
        }
    })
    .await;
}
