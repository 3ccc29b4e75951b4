//! Policies in a plan against the sandbox, through the real client: the live Deployment is
//! the `oldObject`, so raising a service's GPUs 4x in one change is denied (the plan is
//! blocked), doubling them is not, and a first apply is a CREATE that no update rule sees.
//! Through the `modelship` binary: `plan` and `apply` block only the denied service and
//! exit 2, namespace labels come from the cluster, and a broken policy stops everything.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};
use modelship::plan;
use modelship::policy::{PolicySet, Violation, check_desired, policy_files};
use modelship::sandbox::Verb;
use serde_json::{Value, json};
use support::target::{Target, on_each_target};
use support::*;

const SPEC: &str = "services/genai/image-classifier.yaml";

/// The policies of the repository at `dir` (example-repo's copy of the baseline).
fn policies(dir: &std::path::Path) -> PolicySet {
    let files = modelship::source::read_dir(dir).expect("repository readable");
    let (set, diagnostics) = PolicySet::load(&policy_files(&files));
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    set
}

/// Applies example-repo, sets image-classifier's GPUs per pod to `count`, and returns the
/// plan's action for its Deployment and the policy violations.
async fn change_gpus(sandbox: &Target, count: &str) -> (plan::Action, Vec<Violation>) {
    let repo = sandbox.example_copy();
    apply_with_rollouts(sandbox, repo.path()).await;
    edit(repo.path(), SPEC, "count: 1", &format!("count: {count}"));
    let loaded = load_repo(repo.path());
    let live = read_live(sandbox, &loaded).await;
    let plan = plan::plan(&loaded.desired, &live).expect("plan");
    let action = plan
        .services
        .iter()
        .flat_map(|s| &s.objects)
        .find(|o| o.key.kind == "Deployment" && o.key.name == "image-classifier")
        .map(|o| o.action)
        .expect("the Deployment is planned");
    let violations = check_desired(
        &loaded.repository,
        &loaded.desired,
        &live,
        &BTreeMap::new(),
        &policies(repo.path()),
    )
    .expect("policies evaluate");
    (action, violations)
}

#[tokio::test]
async fn raising_gpus_4x_blocks_the_plan() {
    on_each_target(
        "raising_gpus_4x_blocks_the_plan",
        raising_gpus_4x_blocks_the_plan_on,
    )
    .await;
}

async fn raising_gpus_4x_blocks_the_plan_on(cluster: Target) {
    let (action, violations) = change_gpus(&cluster, "4").await;
    assert_eq!(action, plan::Action::Update);
    let denied: Vec<&Violation> = violations.iter().filter(|v| v.is_deny()).collect();
    let printed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert_eq!(denied.len(), 1, "{}", printed.join("\n"));
    let v = denied[0];
    assert_eq!(
        (
            v.policy.as_str(),
            v.kind.as_str(),
            v.namespace.as_deref(),
            v.name.as_str()
        ),
        (
            "gpu-increase-limit",
            "Deployment",
            Some(cluster.ns("genai").as_str()),
            "image-classifier"
        )
    );
    assert_eq!(
        v.message,
        "GPUs would grow from 2 to 8, more than 2x in one change; raise them in steps"
    );
    let source = v.source.as_ref().expect("the spec is named");
    assert_eq!((source.file.as_str(), source.line), (SPEC, 2));
}

#[tokio::test]
async fn doubling_gpus_passes() {
    on_each_target("doubling_gpus_passes", doubling_gpus_passes_on).await;
}

async fn doubling_gpus_passes_on(cluster: Target) {
    let (action, violations) = change_gpus(&cluster, "2").await;
    assert_eq!(action, plan::Action::Update);
    let printed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(violations.is_empty(), "{}", printed.join("\n"));
}

#[tokio::test]
async fn a_first_apply_is_a_create_and_passes() {
    on_each_target(
        "a_first_apply_is_a_create_and_passes",
        a_first_apply_is_a_create_and_passes_on,
    )
    .await;
}

async fn a_first_apply_is_a_create_and_passes_on(cluster: Target) {
    let loaded = load_repo(&cluster.example_repo());
    let live = read_live(&cluster, &loaded).await;
    assert!(live.is_empty());
    let violations = check_desired(
        &loaded.repository,
        &loaded.desired,
        &live,
        &BTreeMap::new(),
        &policies(&cluster.example_repo()),
    )
    .expect("policies evaluate");
    let printed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(violations.is_empty(), "{}", printed.join("\n"));
}

/// Runs the `modelship` binary against the cluster with a deadline.
async fn modelship(sandbox: &Target, args: &[&str]) -> Output {
    binary::output(binary::on_cluster(sandbox.kubeconfig_path(), args), STEP).await
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn dir(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

const LLM: &str = "services/genai/llm-chat.yaml";
const FRAUD: &str = "services/risk/fraud-detection.yaml";
/// What gpu-increase-limit says of llm-chat's GPUs per pod raised 4 -> 16 with `replicas`
/// live replicas (its HPA owns the count: 1 on the sandbox, which runs no HPA controller;
/// minReplicas 2 on a real cluster once the HPA controller has scaled it).
fn growth(replicas: i64) -> String {
    format!(
        "GPUs would grow from {} to {}, more than 2x in one change; raise them in steps",
        4 * replicas,
        16 * replicas
    )
}

async fn deployment(sandbox: &Target, namespace: &str, name: &str) -> Deployment {
    let api: Api<Deployment> = Api::namespaced(sandbox.client(), namespace);
    tokio::time::timeout(STEP, api.get(name))
        .await
        .expect("GET in time")
        .expect("the Deployment exists")
}

fn gpu_limit(deployment: &Deployment) -> Option<String> {
    let spec = deployment.spec.as_ref()?.template.spec.as_ref()?;
    let limits = spec.containers[0].resources.as_ref()?.limits.as_ref()?;
    limits.get("nvidia.com/gpu").map(|q| q.0.clone())
}

fn image(deployment: &Deployment) -> Option<String> {
    let spec = deployment.spec.as_ref()?.template.spec.as_ref()?;
    spec.containers[0].image.clone()
}

/// example-repo applied to a fresh sandbox, then, in a copy, llm-chat's GPUs raised 4 -> 16
/// and fraud-detection's image bumped (a change no policy minds).
async fn raised_llm_chat(sandbox: &Target) -> (tempfile::TempDir, i64) {
    let repo = sandbox.example_copy();
    apply_with_rollouts(sandbox, repo.path()).await;
    let replicas = sandbox
        .autoscaled_replicas(&sandbox.ns("genai"), "llm-chat")
        .await;
    edit(repo.path(), LLM, "count: 4", "count: 16");
    edit(
        repo.path(),
        FRAUD,
        "xgboost-server:2.1.0",
        "xgboost-server:2.1.1",
    );
    (repo, replicas.into())
}

fn json_service<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} is in the plan"))
}

#[tokio::test]
async fn plan_blocks_only_the_denied_service() {
    on_each_target(
        "plan_blocks_only_the_denied_service",
        plan_blocks_only_the_denied_service_on,
    )
    .await;
}

async fn plan_blocks_only_the_denied_service_on(sandbox: Target) {
    let (repo, replicas) = raised_llm_chat(&sandbox).await;
    sandbox.reset_requests();
    let out = modelship(&sandbox, &["plan", dir(repo.path()), "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // What the binary asked: only the sandbox counts the requests it serves.
    if let Some(requests) = sandbox.served_requests() {
        assert_eq!(
            requests.get(Verb::List, "namespaces"),
            1,
            "namespace labels cost one LIST"
        );
        assert_eq!(requests.total_writes(), 0);
    }
    let genai = sandbox.ns("genai");
    assert!(
        stderr(&out).contains(&format!(
            "error: 1 service denied by policy ({genai}/llm-chat): apply would leave their \
             objects untouched and apply the other services"
        )),
        "{}",
        stderr(&out)
    );
    let plan: Value = serde_json::from_str(&stdout(&out)).expect("JSON plan");

    let llm = json_service(&plan, "llm-chat");
    assert_eq!(
        (&llm["status"], &llm["reason"]),
        (&json!("blocked"), &json!("policy-denied"))
    );
    let objects = llm["objects"].as_array().unwrap();
    assert!(
        objects
            .iter()
            .all(|o| o["action"] != "create" && o["action"] != "update" && o["action"] != "delete")
    );
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["name"] == "llm-chat")
        .expect("the Deployment is planned");
    assert_eq!(deployment["action"], "blocked");
    let growth = llm["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["policy"] == "gpu-increase-limit")
        .expect("gpu-increase-limit denies");
    assert_eq!(growth["action"], "deny");
    assert_eq!(
        (&growth["kind"], &growth["name"]),
        (&json!("Deployment"), &json!("llm-chat"))
    );
    assert_eq!(growth["message"], self::growth(replicas).as_str());
    assert_eq!(growth["source"], json!({"file": LLM, "line": 2}));

    let fraud = json_service(&plan, "fraud-detection");
    assert_eq!(fraud["status"], "present");
    assert_eq!(fraud["violations"], json!([]));
    let updates: Vec<&Value> = fraud["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] == "update")
        .collect();
    assert_eq!(updates.len(), 1, "{fraud}");
    for service in plan["services"].as_array().unwrap() {
        if service["name"] != "llm-chat" {
            assert_eq!(service["status"], "present", "{service}");
        }
    }
}

#[tokio::test]
async fn apply_leaves_the_denied_service_untouched_and_applies_the_others() {
    on_each_target(
        "apply_leaves_the_denied_service_untouched_and_applies_the_others",
        apply_leaves_the_denied_service_untouched_and_applies_the_others_on,
    )
    .await;
}

async fn apply_leaves_the_denied_service_untouched_and_applies_the_others_on(sandbox: Target) {
    let (repo, replicas) = raised_llm_chat(&sandbox).await;
    let genai = sandbox.ns("genai");
    let before = deployment(&sandbox, &genai, "llm-chat").await;
    assert_eq!(gpu_limit(&before).as_deref(), Some("4"));
    sandbox.reset_requests();

    let out = modelship(&sandbox, &["apply", dir(repo.path())]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("{genai}/llm-chat (blocked: denied by policy)")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{LLM}:2: error: Deployment {genai}/llm-chat: {} [policy gpu-increase-limit, \
             policies/gpu-increase-limit.yaml:",
            growth(replicas)
        )),
        "{text}"
    );
    assert!(
        stderr(&out).contains(&format!(
            "error: 1 service denied by policy ({genai}/llm-chat): their objects were left \
             untouched; the other services were applied"
        )),
        "{}",
        stderr(&out)
    );
    // What the binary wrote: only the sandbox counts the requests it serves.
    if let Some(requests) = sandbox.served_requests() {
        assert_eq!(requests.verb_total(Verb::Apply), 1, "{requests:?}");
        assert_eq!(requests.verb_total(Verb::Delete), 0, "{requests:?}");
    }

    let after = deployment(&sandbox, &genai, "llm-chat").await;
    assert_eq!(gpu_limit(&after).as_deref(), Some("4"));
    assert_eq!(before.metadata.generation, after.metadata.generation);
    // The status may move (the Deployment controller), the object may not.
    assert_eq!(before.spec, after.spec);
    assert_eq!(
        annotations_but_controllers(&before.metadata),
        annotations_but_controllers(&after.metadata)
    );
    let fraud = deployment(&sandbox, &sandbox.ns("risk-prod"), "fraud-detection").await;
    assert_eq!(
        image(&fraud).as_deref(),
        Some("registry.example.com/risk/xgboost-server:2.1.1")
    );
}

#[tokio::test]
async fn namespace_labels_come_from_the_cluster() {
    on_each_target(
        "namespace_labels_come_from_the_cluster",
        namespace_labels_come_from_the_cluster_on,
    )
    .await;
}

async fn namespace_labels_come_from_the_cluster_on(cluster: Target) {
    let repo = cluster.example_copy();
    apply_with_rollouts(&cluster, repo.path()).await;
    let out = modelship(&cluster, &["plan", dir(repo.path())]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // production-gpu-canary selects namespaces labelled as production: text-embedding is a
    // GPU service of genai rolled out without a canary.
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    let label = json!({"metadata": {"labels": {"modelship.dev/tier": "production"}}});
    tokio::time::timeout(
        STEP,
        namespaces.patch(
            &cluster.ns("genai"),
            &PatchParams::default(),
            &Patch::Merge(&label),
        ),
    )
    .await
    .expect("patch in time")
    .expect("namespace labelled");
    let out = modelship(&cluster, &["plan", dir(repo.path())]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "1 service denied by policy ({}/text-embedding)",
            cluster.ns("genai")
        )),
        "{text}"
    );
    assert!(
        text.contains("GPU services in production namespaces need spec.rollout.strategy: canary"),
        "{text}"
    );
}

#[tokio::test]
async fn a_broken_policy_stops_plan_and_apply_before_the_cluster() {
    on_each_target(
        "a_broken_policy_stops_plan_and_apply_before_the_cluster",
        a_broken_policy_stops_plan_and_apply_before_the_cluster_on,
    )
    .await;
}

async fn a_broken_policy_stops_plan_and_apply_before_the_cluster_on(cluster: Target) {
    let repo = cluster.example_copy();
    let extra = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        extra.path().join("broken.yaml"),
        "apiVersion: admissionregistration.k8s.io/v1\n\
         kind: ValidatingAdmissionPolicy\n\
         metadata: {name: broken}\n\
         spec:\n  validations:\n    - expression: \"object.spec.(\"\n",
    )
    .expect("write the policy");
    let (repo_dir, extra_dir) = (dir(repo.path()), dir(extra.path()));
    let plan_args = ["plan", repo_dir, "--policies", extra_dir];
    let apply_args = [
        "apply",
        repo_dir,
        "--policies",
        extra_dir,
        "--create-namespaces",
    ];
    for args in [&plan_args[..], &apply_args[..]] {
        let command = args[0];
        cluster.reset_requests();
        let out = modelship(&cluster, args).await;
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        let errors = stderr(&out);
        assert!(
            errors.contains(&format!("{}/broken.yaml:6:", extra.path().display())),
            "{command}: {errors}"
        );
        assert!(
            errors.contains("nothing was planned or applied"),
            "{errors}"
        );
        assert_eq!(stdout(&out), "", "{command}");
        // Only the sandbox counts the requests it serves.
        if let Some(requests) = cluster.served_requests() {
            assert_eq!(requests.total(), 0, "{command}: the cluster is not asked");
        }
    }
}
