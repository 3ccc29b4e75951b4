//! Planning against the sandbox through the real client: quiet after apply, exact on a
//! one-field edit, drift by another manager, HPA-owned replicas, missing CRDs. Each test
//! but the last also runs on the real cluster of `MODELSHIP_TEST_KUBECONFIG`
//! (`support::target`).

mod support;

use modelship::plan::Action;
use modelship::sandbox::Verb;
use support::target::{Target, on_each_target, sandbox_only};
use support::*;

#[tokio::test]
async fn applied_repository_plans_quiet_and_reapply_writes_nothing() {
    on_each_target(
        "applied_repository_plans_quiet_and_reapply_writes_nothing",
        applied_repository_plans_quiet_and_reapply_writes_nothing_on,
    )
    .await;
}

async fn applied_repository_plans_quiet_and_reapply_writes_nothing_on(cluster: Target) {
    let loaded = load_repo(&cluster.example_repo());
    assert!(loaded.desired.repository_valid);
    let report = apply_ok(&cluster, &loaded, &options()).await;
    assert!(!report.applied.is_empty());
    assert_eq!(
        report.namespaces_created,
        [cluster.ns("genai"), cluster.ns("risk-prod")]
    );

    let plan = plan_repo(&cluster, &loaded).await;
    assert!(changes(&plan).is_empty(), "{}", changes(&plan).join("\n"));
    assert_eq!(plan.count(Action::Unchanged), report.applied.len());

    cluster.reset_requests();
    let report = apply_ok(&cluster, &loaded, &options()).await;
    assert!(report.applied.is_empty());
    let requests = cluster.requests();
    assert_eq!(requests.total_writes(), 0, "{requests:?}");
    assert_eq!(
        requests.verb_total(Verb::Get),
        0,
        "no GET per object: {requests:?}"
    );
}

#[tokio::test]
async fn one_field_spec_edit_plans_exactly_that_field() {
    on_each_target(
        "one_field_spec_edit_plans_exactly_that_field",
        one_field_spec_edit_plans_exactly_that_field_on,
    )
    .await;
}

async fn one_field_spec_edit_plans_exactly_that_field_on(cluster: Target) {
    let repo = cluster.example_copy();
    apply_ok(&cluster, &load_repo(repo.path()), &options()).await;
    edit(
        repo.path(),
        "services/risk/fraud-detection.yaml",
        "xgboost-server:2.1.0",
        "xgboost-server:2.1.1",
    );
    let plan = plan_repo(&cluster, &load_repo(repo.path())).await;
    let changed = changes(&plan);
    assert_eq!(changed.len(), 1, "{}", changed.join("\n"));
    let service = plan
        .services
        .iter()
        .find(|s| s.id.name() == "fraud-detection")
        .unwrap();
    let deployment = service
        .objects
        .iter()
        .find(|o| o.action == Action::Update)
        .unwrap();
    assert_eq!(deployment.key.kind, "Deployment");
    let paths: Vec<String> = deployment
        .changes
        .iter()
        .map(|c| c.path.to_string())
        .collect();
    assert_eq!(
        paths,
        ["spec.template.spec.containers[name=server].image"],
        "{}",
        deployment.diff
    );
    assert_eq!(service.summary.images.len(), 1);
}

#[tokio::test]
async fn edit_by_another_manager_is_drift_and_apply_restores_it() {
    on_each_target(
        "edit_by_another_manager_is_drift_and_apply_restores_it",
        edit_by_another_manager_is_drift_and_apply_restores_it_on,
    )
    .await;
}

async fn edit_by_another_manager_is_drift_and_apply_restores_it_on(cluster: Target) {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, Patch, PatchParams};

    let loaded = load_repo(&cluster.example_repo());
    apply_ok(&cluster, &loaded, &options()).await;

    // What `kubectl edit` does: a patch under field manager kubectl-edit.
    let api: Api<Deployment> = Api::namespaced(cluster.client(), &cluster.ns("risk-prod"));
    let params = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    let drift = serde_json::json!({"spec": {"template": {"spec": {"containers": [
        {"name": "server", "image": "registry.example.com/risk/xgboost-server:hotfix"}]}}}});
    tokio::time::timeout(
        STEP,
        api.patch("fraud-detection", &params, &Patch::Strategic(&drift)),
    )
    .await
    .unwrap()
    .unwrap();
    let label = serde_json::json!({"metadata": {"labels": {"team": "someone-else"}}});
    tokio::time::timeout(
        STEP,
        api.patch("fraud-detection", &params, &Patch::Merge(&label)),
    )
    .await
    .unwrap()
    .unwrap();

    let plan = plan_repo(&cluster, &loaded).await;
    let changed = changes(&plan);
    assert_eq!(changed.len(), 1, "{}", changed.join("\n"));
    let object = plan
        .services
        .iter()
        .flat_map(|s| &s.objects)
        .find(|o| o.action == Action::Update)
        .unwrap();
    let mut paths: Vec<String> = object.changes.iter().map(|c| c.path.to_string()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "metadata.labels.team",
            "spec.template.spec.containers[name=server].image"
        ],
        "{}",
        object.diff
    );

    let report = apply_ok(&cluster, &loaded, &options()).await;
    assert_eq!(report.applied.len(), 1);
    let live = api.get("fraud-detection").await.unwrap();
    let image = live.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(
        image.as_deref(),
        Some("registry.example.com/risk/xgboost-server:2.1.0")
    );
    let plan = plan_repo(&cluster, &loaded).await;
    assert!(changes(&plan).is_empty(), "{}", changes(&plan).join("\n"));
}

#[tokio::test]
async fn hpa_owned_replicas_are_never_drift() {
    on_each_target(
        "hpa_owned_replicas_are_never_drift",
        hpa_owned_replicas_are_never_drift_on,
    )
    .await;
}

async fn hpa_owned_replicas_are_never_drift_on(cluster: Target) {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, Patch, PatchParams};

    let loaded = load_repo(&cluster.example_repo());
    apply_ok(&cluster, &loaded, &options()).await;

    // The HPA controller scales through the scale subresource.
    let api: Api<Deployment> = Api::namespaced(cluster.client(), &cluster.ns("risk-prod"));
    let params = PatchParams {
        field_manager: Some("horizontal-pod-autoscaler".into()),
        ..PatchParams::default()
    };
    let scale = serde_json::json!({"spec": {"replicas": 7}});
    tokio::time::timeout(
        STEP,
        api.patch_scale("fraud-detection", &params, &Patch::Merge(&scale)),
    )
    .await
    .unwrap()
    .unwrap();

    let plan = plan_repo(&cluster, &loaded).await;
    assert!(changes(&plan).is_empty(), "{}", changes(&plan).join("\n"));
    cluster.reset_requests();
    let report = apply_ok(&cluster, &loaded, &options()).await;
    assert!(report.applied.is_empty());
    assert_eq!(cluster.requests().total_writes(), 0);
    // On a real cluster the HPA controller itself owns `replicas` and moves it on its
    // own time (with no metrics server it settles at its own choice), so the value is
    // checked where nothing but this test scales: modelship's part, no write, holds on both.
    if !cluster.is_real() {
        let live = api.get("fraud-detection").await.unwrap();
        assert_eq!(live.spec.unwrap().replicas, Some(7));
    }
}

#[tokio::test]
async fn missing_route_crd_is_a_clear_error() {
    // Needs a cluster without the Gateway API CRDs: a sandbox started so.
    sandbox_only(
        "missing_route_crd_is_a_clear_error",
        "it needs a cluster without the HTTPRoute CRD",
    );
    let sandbox = tokio::time::timeout(
        STEP,
        modelship::sandbox::Sandbox::builder()
            .preload_crds(false)
            .start(),
    )
    .await
    .unwrap()
    .unwrap();
    let loaded = load_repo(&example_repo());
    let client = sandbox.client();
    let mut kinds = modelship::cluster::Kinds::new(client.clone(), fast_retry());
    let error = tokio::time::timeout(
        STEP,
        modelship::cluster::read_live(
            &client,
            &mut kinds,
            &loaded.desired,
            &fast_retry(),
            &Default::default(),
        ),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "HTTPRoute (gateway.networking.k8s.io/v1) is not served by the cluster: \
         install the Gateway API CRDs or use router replicas"
    );
    assert_eq!(error.metric_label(), "kind_not_served");
}
