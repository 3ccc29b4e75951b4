//! Applying against the sandbox through the real client: prune only when asked and only
//! from a valid repository, the mass-prune guard, retries under injected faults, dry run,
//! the health wait, and the commands' exit codes.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::Api;
use modelship::cli::Exit;
use modelship::cli::cluster::{
    ApplyArgs, ClusterArgs, OutputFormat, PlanArgs, run_apply, run_plan,
};
use modelship::cluster::{self, Error, HealthOptions, WriteMode};
use modelship::engine::Strategy;
use modelship::plan::{Action, MassPruneReason, ObjectKey, PruneMode, ServiceStatus};
use modelship::sandbox::{FaultCode, FaultFilter, Verb};
use support::target::{Target, on_each_target, sandbox_only};
use support::*;

async fn service_account(
    sandbox: &impl HasClient,
    namespace: &str,
    name: &str,
) -> Option<ServiceAccount> {
    let api: Api<ServiceAccount> = Api::namespaced(sandbox.client(), namespace);
    tokio::time::timeout(STEP, api.get_opt(name))
        .await
        .unwrap()
        .unwrap()
}

fn pruning(mode: PruneMode) -> Strategy {
    Strategy {
        prune: mode,
        ..options()
    }
}

#[tokio::test]
async fn removed_service_is_pruned_only_with_prune() {
    on_each_target(
        "removed_service_is_pruned_only_with_prune",
        removed_service_is_pruned_only_with_prune_on,
    )
    .await;
}

async fn removed_service_is_pruned_only_with_prune_on(cluster: Target) {
    let repo = cluster.example_copy();
    apply_ok(&cluster, &load_repo(repo.path()), &options()).await;
    std::fs::remove_file(repo.path().join("services/genai/text-embedding.yaml")).unwrap();
    let loaded = load_repo(repo.path());

    let report = apply_ok(&cluster, &loaded, &options()).await;
    assert!(report.deleted.is_empty());
    assert!(!report.not_pruned.is_empty());
    assert!(
        service_account(&cluster, &cluster.ns("genai"), "text-embedding")
            .await
            .is_some()
    );

    let report = apply_ok(&cluster, &loaded, &pruning(PruneMode::Guarded)).await;
    assert_eq!(
        report.deleted.len(),
        report
            .deleted
            .iter()
            .filter(|k| k.name.starts_with("text-embedding"))
            .count()
    );
    assert!(!report.deleted.is_empty());
    assert!(
        service_account(&cluster, &cluster.ns("genai"), "text-embedding")
            .await
            .is_none()
    );
    let plan = plan_repo(&cluster, &loaded).await;
    assert!(
        plan.services
            .iter()
            .all(|s| s.id.name() != "text-embedding")
    );
    assert!(!plan.has_changes(), "{}", changes(&plan).join("\n"));
}

#[tokio::test]
async fn broken_spec_applies_the_others_and_deletes_nothing() {
    on_each_target(
        "broken_spec_applies_the_others_and_deletes_nothing",
        broken_spec_applies_the_others_and_deletes_nothing_on,
    )
    .await;
}

async fn broken_spec_applies_the_others_and_deletes_nothing_on(cluster: Target) {
    let repo = cluster.example_copy();
    apply_ok(&cluster, &load_repo(repo.path()), &options()).await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), &cluster.ns("risk-prod"));
    let before = deployments.get("transaction-anomaly").await.unwrap();

    edit(
        repo.path(),
        "services/risk/transaction-anomaly.yaml",
        "maxReplicas: 8",
        "maxReplica: 8",
    );
    edit(
        repo.path(),
        "services/risk/fraud-detection.yaml",
        "xgboost-server:2.1.0",
        "xgboost-server:2.1.1",
    );
    std::fs::remove_file(repo.path().join("services/genai/text-embedding.yaml")).unwrap();
    let loaded = load_repo(repo.path());
    assert!(!loaded.desired.repository_valid);

    let (plan, report) = apply_repo(&cluster, &loaded, &pruning(PruneMode::Unguarded)).await;
    let report = report.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(
        report.deleted.is_empty(),
        "nothing is pruned from an invalid repository"
    );
    assert_eq!(report.applied.len(), 1, "{:?}", report.applied);
    let broken = plan
        .services
        .iter()
        .find(|s| s.id.name() == "transaction-anomaly")
        .unwrap();
    assert!(matches!(broken.status, ServiceStatus::Blocked(_)));
    assert!(broken.objects.iter().all(|o| o.action == Action::Blocked));
    let gone = plan
        .services
        .iter()
        .find(|s| s.id.name() == "text-embedding")
        .unwrap();
    assert!(matches!(gone.status, ServiceStatus::Blocked(_)));

    // Untouched: the status may move (the Deployment controller), the object may not.
    let after = deployments.get("transaction-anomaly").await.unwrap();
    assert_eq!(before.metadata.generation, after.metadata.generation);
    assert_eq!(
        annotations_but_controllers(&before.metadata),
        annotations_but_controllers(&after.metadata)
    );
    assert_eq!(before.metadata.labels, after.metadata.labels);
    assert_eq!(before.spec, after.spec);
    assert!(
        service_account(&cluster, &cluster.ns("genai"), "text-embedding")
            .await
            .is_some()
    );
    let fraud = deployments.get("fraud-detection").await.unwrap();
    let image = fraud.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(
        image.as_deref(),
        Some("registry.example.com/risk/xgboost-server:2.1.1")
    );
}

#[tokio::test]
async fn a_tenant_s_service_in_a_namespace_it_may_not_use_is_blocked_and_the_rest_applies() {
    on_each_target(
        "a_tenant_s_service_in_a_namespace_it_may_not_use_is_blocked_and_the_rest_applies",
        a_tenant_s_service_in_a_namespace_it_may_not_use_is_blocked_and_the_rest_applies_on,
    )
    .await;
}

async fn a_tenant_s_service_in_a_namespace_it_may_not_use_is_blocked_and_the_rest_applies_on(
    cluster: Target,
) {
    let repo = cluster.example_copy();
    let (risk, genai) = (cluster.ns("risk-prod"), cluster.ns("genai"));
    let config = repo.path().join("modelship.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    let tenants = format!(
        "  tenants:\n    - {{name: risk, paths: [\"services/risk/**\"], namespaces: [\"{risk}\"]}}\n    - {{name: genai, paths: [\"services/genai/**\"], namespaces: [\"{genai}\"]}}\n"
    );
    std::fs::write(&config, text + &tenants).unwrap();
    // A genai service moved into risk's namespace.
    edit(
        repo.path(),
        "services/genai/image-classifier.yaml",
        &cluster.ns_line("genai"),
        &cluster.ns_line("risk-prod"),
    );
    let loaded = load_repo(repo.path());
    let errors: Vec<String> = loaded
        .repository
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("services/genai/image-classifier.yaml:6:")
            && errors[0].contains(&format!(
                "metadata.namespace: tenant genai may not use namespace `{risk}`; its namespaces: {genai}"
            )),
        "{errors:?}"
    );

    let (plan, report) = apply_repo(&cluster, &loaded, &options()).await;
    let report = report.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let blocked = plan
        .services
        .iter()
        .find(|s| s.id.name() == "image-classifier")
        .unwrap();
    assert_eq!(
        blocked.status,
        ServiceStatus::Blocked(modelship::plan::BlockReason::InvalidSpec)
    );
    assert!(
        service_account(&cluster, &risk, "image-classifier")
            .await
            .is_none(),
        "nothing of the blocked service is written"
    );
    for (namespace, name) in [(&risk, "fraud-detection"), (&genai, "llm-chat")] {
        assert!(
            service_account(&cluster, namespace, name).await.is_some(),
            "{namespace}/{name} applies"
        );
    }
}

#[tokio::test]
async fn mass_prune_is_refused_unless_allowed() {
    on_each_target(
        "mass_prune_is_refused_unless_allowed",
        mass_prune_is_refused_unless_allowed_on,
    )
    .await;
}

async fn mass_prune_is_refused_unless_allowed_on(cluster: Target) {
    let repo = cluster.example_copy();
    apply_ok(&cluster, &load_repo(repo.path()), &options()).await;
    // The team folder services/genai (three services) vanishes at once.
    std::fs::remove_dir_all(repo.path().join("services/genai")).unwrap();
    let loaded = load_repo(repo.path());

    cluster.reset_requests();
    let (_, result) = apply_repo(&cluster, &loaded, &pruning(PruneMode::Guarded)).await;
    match result {
        Err(guard) => {
            assert_eq!(
                guard.reasons,
                [
                    MassPruneReason::MostOfRepository {
                        removed: 3,
                        total: 5
                    },
                    MassPruneReason::Folder {
                        folder: "services/genai".into(),
                        removed: 3
                    }
                ]
            );
            let kept: Vec<String> = guard.kept.iter().map(|id| id.name().to_string()).collect();
            assert_eq!(kept, ["image-classifier", "llm-chat", "text-embedding"]);
            assert!(
                guard.to_string().contains(&format!(
                    "kept {g}/image-classifier, {g}/llm-chat, {g}/text-embedding",
                    g = cluster.ns("genai")
                )),
                "{guard}"
            );
        }
        other => panic!("expected the mass-prune guard, got {other:?}"),
    }
    assert_eq!(cluster.requests().total_writes(), 0);
    assert!(
        service_account(&cluster, &cluster.ns("genai"), "text-embedding")
            .await
            .is_some()
    );

    let report = apply_ok(&cluster, &loaded, &pruning(PruneMode::Unguarded)).await;
    assert!(!report.deleted.is_empty());
    for name in ["text-embedding", "image-classifier", "llm-chat"] {
        assert!(
            service_account(&cluster, &cluster.ns("genai"), name)
                .await
                .is_none(),
            "{name}"
        );
    }
    assert!(
        service_account(&cluster, &cluster.ns("risk-prod"), "fraud-detection")
            .await
            .is_some()
    );
}

#[tokio::test]
async fn the_only_service_of_a_namespace_is_pruned_with_the_guard_on() {
    on_each_target(
        "the_only_service_of_a_namespace_is_pruned_with_the_guard_on",
        the_only_service_of_a_namespace_is_pruned_with_the_guard_on_on,
    )
    .await;
}

async fn the_only_service_of_a_namespace_is_pruned_with_the_guard_on_on(cluster: Target) {
    let repo = cluster.example_copy();
    // llm-chat alone in namespace llm, as a team's repository often has.
    edit(
        repo.path(),
        "services/genai/llm-chat.yaml",
        &cluster.ns_line("genai"),
        &cluster.ns_line("llm"),
    );
    apply_ok(&cluster, &load_repo(repo.path()), &options()).await;
    std::fs::remove_file(repo.path().join("services/genai/llm-chat.yaml")).unwrap();
    let loaded = load_repo(repo.path());
    let report = apply_ok(&cluster, &loaded, &pruning(PruneMode::Guarded)).await;
    assert!(!report.deleted.is_empty());
    assert!(
        report
            .deleted
            .iter()
            .all(|k| k.namespace == cluster.ns("llm")),
        "{:?}",
        report.deleted
    );
    assert!(
        service_account(&cluster, &cluster.ns("llm"), "llm-chat")
            .await
            .is_none()
    );
    let plan = plan_repo(&cluster, &loaded).await;
    assert!(!plan.has_changes(), "{}", changes(&plan).join("\n"));
}

#[tokio::test]
async fn injected_faults_are_retried_and_apply_converges() {
    // Fault injection is the sandbox's own hook.
    sandbox_only(
        "injected_faults_are_retried_and_apply_converges",
        "faults are injected by the sandbox",
    );
    let sandbox = sandbox().await;
    let loaded = load_repo(&example_repo());
    sandbox
        .faults()
        .fail_rate(0.3, FaultCode::Unavailable, FaultFilter::any());
    sandbox.faults().fail_rate(
        0.2,
        FaultCode::TooManyRequests,
        FaultFilter::verb(Verb::Apply),
    );
    sandbox.faults().conflict_next_writes(3);

    let report = apply_ok(&sandbox, &loaded, &options()).await;
    let requests = sandbox.requests();
    assert!(
        requests.verb_total(Verb::Apply) > report.applied.len() as u64,
        "some writes were retried: {requests:?}"
    );

    sandbox.faults().clear();
    let plan = plan_repo(&sandbox, &loaded).await;
    assert!(!plan.has_changes(), "{}", changes(&plan).join("\n"));
}

#[tokio::test]
async fn dry_run_persists_nothing() {
    on_each_target("dry_run_persists_nothing", dry_run_persists_nothing_on).await;
}

async fn dry_run_persists_nothing_on(cluster: Target) {
    let repo = cluster.example_copy();
    apply_ok(&cluster, &load_repo(repo.path()), &options()).await;
    edit(
        repo.path(),
        "services/risk/fraud-detection.yaml",
        "xgboost-server:2.1.0",
        "xgboost-server:2.1.1",
    );
    let loaded = load_repo(repo.path());
    let (_, report) = apply_repo_with(&cluster, &loaded, &options(), WriteMode::DryRun).await;
    let report = report.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.applied.len(), 1);
    let plan = plan_repo(&cluster, &loaded).await;
    assert_eq!(
        plan.count(Action::Update),
        1,
        "the change is still to be made"
    );
}

#[tokio::test]
async fn wait_reports_the_deployment_that_is_not_ready() {
    // Holding one Deployment unready is the sandbox's own hook.
    sandbox_only(
        "wait_reports_the_deployment_that_is_not_ready",
        "a Deployment is held unready by the sandbox's controller",
    );
    let sandbox = sandbox().await;
    let loaded = load_repo(&example_repo());
    sandbox.hold_unready("risk-prod", "fraud-detection");
    apply_ok(&sandbox, &loaded, &options()).await;
    let keys: Vec<ObjectKey> = loaded
        .desired
        .services
        .iter()
        .flat_map(|s| &s.objects)
        .filter_map(ObjectKey::of)
        .filter(|k| k.kind == "Deployment")
        .collect();
    assert_eq!(keys.len(), 5);
    let short = HealthOptions {
        timeout: Duration::from_millis(1500),
        interval: Duration::from_millis(50),
        retry: fast_retry(),
    };
    let mut polls = 0;
    let error = cluster::wait_healthy(&sandbox.client(), &keys, &short, |_| polls += 1)
        .await
        .unwrap_err();
    assert!(polls > 1);
    match &error {
        Error::NotReady { deployments, .. } => {
            let names: Vec<&str> = deployments.iter().map(|d| d.name.as_str()).collect();
            assert_eq!(names, ["fraud-detection"], "{error}");
        }
        other => panic!("expected NotReady, got {other}"),
    }
    assert!(
        error
            .to_string()
            .contains("Deployment risk-prod/fraud-detection: "),
        "{error}"
    );

    sandbox.release("risk-prod", "fraud-detection");
    let ready = HealthOptions {
        timeout: Duration::from_secs(20),
        ..short
    };
    let health = cluster::wait_healthy(&sandbox.client(), &keys, &ready, |_| {})
        .await
        .unwrap();
    assert!(health.iter().all(|h| h.is_ready()));
}

#[tokio::test]
async fn plan_command_exit_codes_follow_kubectl_diff() {
    on_each_target(
        "plan_command_exit_codes_follow_kubectl_diff",
        plan_command_exit_codes_follow_kubectl_diff_on,
    )
    .await;
}

async fn plan_command_exit_codes_follow_kubectl_diff_on(cluster: Target) {
    let repo = cluster.example_copy();
    let args = |dir: &std::path::Path| PlanArgs {
        dir: dir.to_path_buf(),
        cluster: ClusterArgs {
            kubeconfig: Some(cluster.kubeconfig_path().to_path_buf()),
            context: None,
            instance: Default::default(),
        },
        policies: vec![],
        output: OutputFormat::Json,
    };
    let run =
        |args: PlanArgs| async move { tokio::time::timeout(STEP, run_plan(&args)).await.unwrap() };
    assert_eq!(run(args(repo.path())).await, Exit::Failure);
    // Applied as the CLI applies: canary services record their rollout state.
    apply_with_rollouts(&cluster, repo.path()).await;
    assert_eq!(run(args(repo.path())).await, Exit::Ok);
    edit(
        repo.path(),
        "services/risk/transaction-anomaly.yaml",
        "maxReplicas: 8",
        "maxReplica: 8",
    );
    assert_eq!(run(args(repo.path())).await, Exit::Invalid);
    let unreachable = PlanArgs {
        cluster: ClusterArgs {
            kubeconfig: Some(repo.path().join("no-such-kubeconfig")),
            context: None,
            instance: Default::default(),
        },
        ..args(&cluster.example_repo())
    };
    assert_eq!(run(unreachable).await, Exit::Cluster);
}

#[tokio::test]
async fn apply_prune_wait_removes_a_service_whose_namespace_left_the_repository() {
    on_each_target(
        "apply_prune_wait_removes_a_service_whose_namespace_left_the_repository",
        apply_prune_wait_removes_a_service_whose_namespace_left_the_repository_on,
    )
    .await;
}

async fn apply_prune_wait_removes_a_service_whose_namespace_left_the_repository_on(
    cluster: Target,
) {
    let repo = cluster.example_copy();
    cluster.model_claim("genai").await;
    edit(
        repo.path(),
        "services/genai/llm-chat.yaml",
        &cluster.ns_line("genai"),
        &cluster.ns_line("llm"),
    );
    let args = ApplyArgs {
        dir: repo.path().to_path_buf(),
        prune: true,
        allow_mass_prune: false,
        dry_run: false,
        wait: true,
        timeout: cluster.patience(),
        create_namespaces: true,
        cluster: ClusterArgs {
            kubeconfig: Some(cluster.kubeconfig_path().to_path_buf()),
            context: None,
            instance: Default::default(),
        },
        policies: vec![],
        output: OutputFormat::Text,
    };
    let limit = STEP + cluster.patience();
    let run = |args: ApplyArgs| async move {
        tokio::time::timeout(limit, run_apply(&args)).await.unwrap()
    };
    assert_eq!(run(args.clone()).await, Exit::Ok);
    assert!(
        service_account(&cluster, &cluster.ns("llm"), "llm-chat")
            .await
            .is_some()
    );
    // No file of the repository names namespace llm any more.
    std::fs::remove_file(repo.path().join("services/genai/llm-chat.yaml")).unwrap();
    assert_eq!(run(args).await, Exit::Ok);
    assert!(
        service_account(&cluster, &cluster.ns("llm"), "llm-chat")
            .await
            .is_none()
    );
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), &cluster.ns("llm"));
    assert!(deployments.get_opt("llm-chat").await.unwrap().is_none());
}

#[tokio::test]
async fn pod_monitors_are_applied_when_modelship_yaml_asks_and_pruned_when_it_stops() {
    on_each_target(
        "pod_monitors_are_applied_when_modelship_yaml_asks_and_pruned_when_it_stops",
        pod_monitors_are_applied_when_modelship_yaml_asks_and_pruned_when_it_stops_on,
    )
    .await;
}

async fn pod_monitors_are_applied_when_modelship_yaml_asks_and_pruned_when_it_stops_on(
    cluster: Target,
) {
    let repo = cluster.example_copy();
    edit(
        repo.path(),
        "modelship.yaml",
        "url: http://prometheus.monitoring.svc:9090\n",
        "url: http://prometheus.monitoring.svc:9090\n    podMonitor: true\n",
    );
    let loaded = load_repo(repo.path());
    apply_ok(&cluster, &loaded, &options()).await;
    let resource = kube::api::ApiResource {
        group: "monitoring.coreos.com".into(),
        version: "v1".into(),
        api_version: "monitoring.coreos.com/v1".into(),
        kind: "PodMonitor".into(),
        plural: "podmonitors".into(),
    };
    let monitors: Api<kube::api::DynamicObject> =
        Api::namespaced_with(cluster.client(), &cluster.ns("genai"), &resource);
    let monitor = tokio::time::timeout(STEP, monitors.get("text-embedding"))
        .await
        .unwrap()
        .unwrap();
    let relabelings = &monitor.data["spec"]["podMetricsEndpoints"][0]["relabelings"];
    assert_eq!(relabelings[1]["targetLabel"], "track", "{relabelings}");
    let plan = plan_repo(&cluster, &loaded).await;
    assert!(!plan.has_changes(), "{}", changes(&plan).join("\n"));

    edit(repo.path(), "modelship.yaml", "    podMonitor: true\n", "");
    let loaded = load_repo(repo.path());
    apply_ok(&cluster, &loaded, &options()).await;
    let gone = tokio::time::timeout(STEP, monitors.get_opt("text-embedding"))
        .await
        .unwrap()
        .unwrap();
    assert!(gone.is_none(), "a PodMonitor no longer compiled is deleted");
}
