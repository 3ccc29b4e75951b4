//! Ownership on a cluster, through the `modelship` binary: an object of the same name that
//! modelship did not create is a conflict shown on its plan line and blocks its service
//! (the others apply, the object is left as it was, a prune never deletes it); a person
//! hands it over with `modelship.dev/adopt`; two instances side by side each see, prune
//! and heal only their own objects.

mod support;

use std::path::Path;
use std::process::Output;

use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::target::{Target, on_each_target};
use support::*;

/// `modelship ARGS` on the cluster, to its end.
async fn modelship(cluster: &Target, args: &[&str]) -> Output {
    binary::output(binary::on_cluster(cluster.kubeconfig_path(), args), STEP).await
}

fn apply_args<'a>(dir: &'a Path, instance: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "apply",
        path_str(dir),
        "--create-namespaces",
        "--instance",
        instance,
    ];
    args.extend_from_slice(extra);
    args
}

async fn get<K>(cluster: &Target, namespace: &str, name: &str) -> Option<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(cluster.client(), namespace);
    tokio::time::timeout(STEP, api.get_opt(name))
        .await
        .expect("GET in time")
        .expect("GET")
}

fn selector(service: &Service) -> serde_json::Value {
    json!(service.spec.as_ref().and_then(|s| s.selector.clone()))
}

fn label<'a>(meta: &'a kube::api::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

#[tokio::test]
async fn an_object_modelship_did_not_create_blocks_its_service_until_adopted() {
    on_each_target(
        "an_object_modelship_did_not_create_blocks_its_service_until_adopted",
        an_object_modelship_did_not_create_blocks_its_service_until_adopted_on,
    )
    .await;
}

async fn an_object_modelship_did_not_create_blocks_its_service_until_adopted_on(cluster: Target) {
    let repo = cluster.example_copy();
    let risk = cluster.namespace("risk-prod").await;
    let genai = cluster.ns("genai");
    // Another team's Service, with the name of a service of the repository.
    let services: Api<Service> = Api::namespaced(cluster.client(), &risk);
    let theirs: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "fraud-detection", "labels": {"app": "payments-api"}},
        "spec": {"selector": {"app": "payments-api"}, "ports": [{"port": 80}]}
    }))
    .unwrap();
    tokio::time::timeout(STEP, services.create(&PostParams::default(), &theirs))
        .await
        .unwrap()
        .expect("the other team's Service is created");

    let out = modelship(&cluster, &apply_args(repo.path(), "modelship", &[])).await;
    let (stdout, stderr) = (binary::text(&out.stdout), binary::text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    let line = format!("! Service {risk}/fraud-detection: exists, not managed by modelship");
    assert!(stdout.contains(&line), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{risk}/fraud-detection (blocked: an object exists that is not its own)"
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains("error: 1 service blocked by objects it does not own")
            && stderr.contains(&format!(
                "annotate it modelship.dev/adopt={risk}/fraud-detection"
            )),
        "{stderr}"
    );
    let after: Service = get(&cluster, &risk, "fraud-detection").await.unwrap();
    assert_eq!(selector(&after), json!({"app": "payments-api"}));
    assert_eq!(label(&after.metadata, "app.kubernetes.io/managed-by"), None);
    assert!(
        get::<ServiceAccount>(&cluster, &risk, "fraud-detection")
            .await
            .is_none(),
        "nothing of the blocked service is written"
    );
    for (namespace, name) in [(&risk, "transaction-anomaly"), (&genai, "text-embedding")] {
        assert!(
            get::<ServiceAccount>(&cluster, namespace, name)
                .await
                .is_some(),
            "{namespace}/{name} applied beside the blocked service"
        );
    }

    // Gone from the repository: a prune never deletes what modelship did not create.
    let spec = repo.path().join("services/risk/fraud-detection.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::remove_file(&spec).unwrap();
    let out = modelship(
        &cluster,
        &apply_args(repo.path(), "modelship", &["--prune"]),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", binary::text(&out.stderr));
    let kept: Service = get(&cluster, &risk, "fraud-detection").await.unwrap();
    assert_eq!(selector(&kept), json!({"app": "payments-api"}));
    std::fs::write(&spec, text).unwrap();

    // A person hands it over: it is adopted, with the service's selector and labels.
    let handover = json!({"metadata": {"annotations": {
        "modelship.dev/adopt": format!("{risk}/fraud-detection")}}});
    tokio::time::timeout(
        STEP,
        services.patch(
            "fraud-detection",
            &PatchParams::default(),
            &Patch::Merge(&handover),
        ),
    )
    .await
    .unwrap()
    .expect("annotated");
    let out = modelship(&cluster, &["plan", path_str(repo.path())]).await;
    let stdout = binary::text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "~ Service {risk}/fraud-detection: adopted (modelship.dev/adopt): replaced by this service's object"
        )),
        "{stdout}"
    );
    let out = modelship(&cluster, &apply_args(repo.path(), "modelship", &[])).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        binary::text(&out.stdout),
        binary::text(&out.stderr)
    );
    let adopted: Service = get(&cluster, &risk, "fraud-detection").await.unwrap();
    assert_eq!(
        label(&adopted.metadata, "app.kubernetes.io/managed-by"),
        Some("modelship")
    );
    assert_eq!(
        label(&adopted.metadata, "modelship.dev/service"),
        Some("fraud-detection")
    );
    // Replaced by the service's object: nothing of the previous owner's stays.
    let adopted_selector = selector(&adopted);
    assert_eq!(
        adopted_selector["app.kubernetes.io/instance"],
        json!("fraud-detection"),
        "{adopted_selector}"
    );
    assert!(adopted_selector.get("app").is_none(), "{adopted_selector}");
    let ports = adopted
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    assert!(ports.iter().all(|p| p.port != 80), "{ports:?}");
    let out = modelship(&cluster, &["plan", path_str(repo.path())]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "in sync after adoption: {}",
        binary::text(&out.stdout)
    );
}

#[tokio::test]
async fn two_instances_side_by_side_each_prune_and_see_only_their_own() {
    on_each_target(
        "two_instances_side_by_side_each_prune_and_see_only_their_own",
        two_instances_side_by_side_each_prune_and_see_only_their_own_on,
    )
    .await;
}

async fn two_instances_side_by_side_each_prune_and_see_only_their_own_on(cluster: Target) {
    let risk = cluster.ns("risk-prod");
    let genai = cluster.ns("genai");
    // Instance a: the risk services; instance b: the genai ones.
    let a = cluster.example_copy();
    std::fs::remove_dir_all(a.path().join("services/genai")).unwrap();
    let b = cluster.example_copy();
    std::fs::remove_dir_all(b.path().join("services/risk")).unwrap();
    for (dir, instance) in [(&a, "team-a"), (&b, "team-b")] {
        let out = modelship(&cluster, &apply_args(dir.path(), instance, &["--prune"])).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{instance}: {}",
            binary::text(&out.stderr)
        );
    }
    let sa: ServiceAccount = get(&cluster, &genai, "text-embedding").await.unwrap();
    assert_eq!(
        label(&sa.metadata, "modelship.dev/instance"),
        Some("team-b")
    );

    // Each sees only its own: a's plan is in sync and names none of b's services.
    let out = modelship(
        &cluster,
        &["plan", path_str(a.path()), "--instance", "team-a"],
    )
    .await;
    let stdout = binary::text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains(&genai), "{stdout}");

    // b drops a service and prunes: only its objects go; a's are untouched.
    std::fs::remove_file(b.path().join("services/genai/text-embedding.yaml")).unwrap();
    let out = modelship(&cluster, &apply_args(b.path(), "team-b", &["--prune"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", binary::text(&out.stderr));
    assert!(
        get::<ServiceAccount>(&cluster, &genai, "text-embedding")
            .await
            .is_none()
    );
    for name in ["fraud-detection", "transaction-anomaly"] {
        assert!(
            get::<ServiceAccount>(&cluster, &risk, name).await.is_some(),
            "{name} of team-a kept"
        );
    }
    assert!(
        get::<ServiceAccount>(&cluster, &genai, "llm-chat")
            .await
            .is_some()
    );

    // b taking a service of a's name is a conflict that names the owner.
    support::repo::copy_dir(
        &a.path().join("services/risk"),
        &b.path().join("services/risk"),
    );
    let out = modelship(&cluster, &apply_args(b.path(), "team-b", &[])).await;
    let stdout = binary::text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "! Deployment {risk}/fraud-detection: exists, managed by modelship instance team-a"
        )),
        "{stdout}"
    );
    let sa: ServiceAccount = get(&cluster, &risk, "fraud-detection").await.unwrap();
    assert_eq!(
        label(&sa.metadata, "modelship.dev/instance"),
        Some("team-a")
    );
}

#[tokio::test]
async fn the_daemon_blocks_a_conflicting_service_and_adopts_it_once_handed_over() {
    on_each_target(
        "the_daemon_blocks_a_conflicting_service_and_adopts_it_once_handed_over",
        the_daemon_blocks_a_conflicting_service_and_adopts_it_once_handed_over_on,
    )
    .await;
}

async fn the_daemon_blocks_a_conflicting_service_and_adopts_it_once_handed_over_on(
    cluster: Target,
) {
    use support::daemon::{Place, Remote, Running, config, metrics, status};
    let namespace = cluster.namespace(support::daemon::NS).await;
    let place = Place {
        client: cluster.client(),
        namespace: namespace.clone(),
        patience: cluster.patience(),
    };
    // A ServiceAccount `beta` someone else made, before the repository names a service so.
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client(), &namespace);
    let theirs: ServiceAccount = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "beta", "labels": {"team": "payments"}}
    }))
    .unwrap();
    tokio::time::timeout(STEP, accounts.create(&PostParams::default(), &theirs))
        .await
        .unwrap()
        .expect("their ServiceAccount is created");
    let remote = Remote::new();
    remote.commit(&place.files(&[("alpha", "1"), ("beta", "1")]));
    let cache = tempfile::tempdir().unwrap();
    let daemon = Running::start(
        config(
            remote.path().display().to_string(),
            cache.path(),
            std::time::Duration::from_millis(200),
        ),
        cluster.client(),
    )
    .await;
    place.wait_image("alpha", "1").await;
    let beta = place.key("beta");
    let error = place
        .eventually("beta blocked by the conflict", || async {
            let status = status(daemon.addr()).await;
            let service = &status["services"][&beta];
            (service["state"] == "invalid")
                .then(|| service["last_error"].as_str().map(str::to_string))
                .flatten()
        })
        .await;
    assert!(
        error.contains(&format!(
            "ServiceAccount {namespace}/beta exists, not managed by modelship"
        )),
        "{error}"
    );
    assert_eq!(
        place.image("beta").await,
        None,
        "nothing of beta is written"
    );
    let text = metrics(daemon.addr()).await;
    assert!(
        text.contains(r#"modelship_errors_total{cause="ownership"}"#),
        "{text}"
    );

    // Handed over: the daemon looks again on its own and adopts it.
    let handover = json!({"metadata": {"annotations": {"modelship.dev/adopt": beta}}});
    tokio::time::timeout(
        STEP,
        accounts.patch("beta", &PatchParams::default(), &Patch::Merge(&handover)),
    )
    .await
    .unwrap()
    .expect("annotated");
    place.wait_image("beta", "1").await;
    let adopted: ServiceAccount = get(&cluster, &namespace, "beta").await.unwrap();
    assert_eq!(
        label(&adopted.metadata, "app.kubernetes.io/managed-by"),
        Some("modelship")
    );
    assert_eq!(
        label(&adopted.metadata, "team"),
        None,
        "replaced by beta's own"
    );
    daemon.stop().await;
}
