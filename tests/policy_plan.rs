//! Policies in a plan against the sandbox, through the real client: the live Deployment is
//! the `oldObject`, so raising a service's GPUs 4x in one change is denied (the plan is
//! blocked), doubling them is not, and a first apply is a CREATE that no update rule sees.

mod common;

use std::collections::BTreeMap;

use common::*;
use modelship::cluster::{self, Kinds};
use modelship::plan::{self, LiveSet};
use modelship::policy::{PolicySet, Violation, check_desired, policy_files};
use modelship::sandbox::Sandbox;

const SPEC: &str = "services/genai/image-classifier.yaml";

async fn read_live(sandbox: &Sandbox, loaded: &modelship::cli::cluster::Loaded) -> LiveSet {
    let client = sandbox.client();
    let mut kinds = Kinds::new(client.clone(), fast_retry());
    let retry = fast_retry();
    let read = cluster::read_live(
        &client,
        &mut kinds,
        &loaded.namespaces,
        &loaded.desired,
        &retry,
    );
    tokio::time::timeout(STEP, read)
        .await
        .expect("live state read in time")
        .expect("live state read")
}

/// The policies of the repository at `dir` (example-repo's copy of the baseline).
fn policies(dir: &std::path::Path) -> PolicySet {
    let files = modelship::source::read_dir(dir).expect("repository readable");
    let (set, diagnostics) = PolicySet::load(&policy_files(&files));
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    set
}

/// Applies example-repo, sets image-classifier's GPUs per pod to `count`, and returns the
/// plan's action for its Deployment and the policy violations.
async fn change_gpus(count: &str) -> (plan::Action, Vec<Violation>) {
    let sandbox = sandbox().await;
    let repo = example_copy();
    apply_ok(&sandbox, &load_repo(repo.path()), &options()).await;
    edit(repo.path(), SPEC, "count: 1", &format!("count: {count}"));
    let loaded = load_repo(repo.path());
    let live = read_live(&sandbox, &loaded).await;
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
    let (action, violations) = change_gpus("4").await;
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
            Some("genai"),
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
    let (action, violations) = change_gpus("2").await;
    assert_eq!(action, plan::Action::Update);
    let printed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(violations.is_empty(), "{}", printed.join("\n"));
}

#[tokio::test]
async fn a_first_apply_is_a_create_and_passes() {
    let sandbox = sandbox().await;
    let loaded = load_repo(&example_repo());
    let live = read_live(&sandbox, &loaded).await;
    assert!(live.is_empty());
    let violations = check_desired(
        &loaded.repository,
        &loaded.desired,
        &live,
        &BTreeMap::new(),
        &policies(&example_repo()),
    )
    .expect("policies evaluate");
    let printed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(violations.is_empty(), "{}", printed.join("\n"));
}
