//! The desired objects of each rollout state, applied to the sandbox through the real
//! client: the canary Deployment and the HTTPRoute weights land, the stable Deployment
//! keeps its live template while the rollout runs, the state annotation reads back, a
//! second plan changes nothing, and promotion and rollback remove the canary. Also on
//! the real cluster of `MODELSHIP_TEST_KUBECONFIG` (`support::target`).

mod support;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject};
use modelship::compile::{Source, compile_repository};
use modelship::engine::Prepared;
use modelship::rollout::{
    self, ANNOTATION_ROLLOUT, LiveStable, Observation, Phase, RollbackReason, RolloutPlan,
    RolloutState, desired_template_hash, live_template_hash,
};
use support::target::{Target, on_each_target};
use support::*;

const NS: &str = "genai";
const NAME: &str = "llm-chat";
const FILE: &str = "services/genai/llm-chat.yaml";

fn t(minutes: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap() + SignedDuration::from_mins(minutes)
}

async fn deployment(sandbox: &Target, name: &str) -> Option<Deployment> {
    let api: Api<Deployment> = Api::namespaced(sandbox.client(), &sandbox.ns(NS));
    tokio::time::timeout(STEP, api.get_opt(name))
        .await
        .unwrap()
        .unwrap()
}

async fn route_weights(sandbox: &Target) -> Vec<(String, i64)> {
    let resource = http_route_resource();
    let api: Api<DynamicObject> =
        Api::namespaced_with(sandbox.client(), &sandbox.ns(NS), &resource);
    let route = tokio::time::timeout(STEP, api.get(NAME))
        .await
        .unwrap()
        .unwrap();
    route.data["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let name = b["name"].as_str().unwrap().to_string();
            (name, b["weight"].as_i64().unwrap())
        })
        .collect()
}

async fn assert_weights(sandbox: &Target, stable: i64, canary: i64) {
    let expected = vec![
        ("llm-chat-stable".to_string(), stable),
        ("llm-chat-canary".to_string(), canary),
    ];
    assert_eq!(route_weights(sandbox).await, expected);
}

async fn assert_stable_version(sandbox: &Target, version: &str) {
    let live = deployment(sandbox, NAME).await.unwrap();
    assert_eq!(model_version(&live), version);
}

fn model_version(d: &Deployment) -> String {
    let containers = &d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers;
    let env = containers[0].env.as_ref().unwrap();
    let version = env.iter().find(|e| e.name == "MODEL_VERSION").unwrap();
    version.value.clone().unwrap()
}

/// llm-chat's loaded spec and rollout plan.
fn llm_chat(loaded: &Prepared) -> (&modelship::spec::LoadedService, RolloutPlan) {
    let svc = loaded
        .repository
        .services
        .iter()
        .find(|s| s.name() == NAME)
        .unwrap();
    (svc, RolloutPlan::from_spec(&svc.service.spec).unwrap())
}

/// The repository at `dir` with llm-chat's objects overlaid for `state`, as the engine
/// would build them.
async fn overlaid(sandbox: &Target, dir: &std::path::Path, state: &RolloutState) -> Prepared {
    let mut loaded = load_repo(dir).prepared;
    let source = Source::local();
    let mut compiled = compile_repository(&loaded.repository, &source);
    let (svc, plan) = llm_chat(&loaded);
    let live = deployment(sandbox, NAME).await.map(|d| LiveStable {
        template_hash: live_template_hash(&d).map(str::to_string),
        template: d.spec.unwrap().template,
    });
    let objects = compiled
        .services
        .iter_mut()
        .find(|s| s.id.name() == NAME)
        .unwrap();
    rollout::overlay(
        objects,
        svc,
        &loaded.repository.config,
        &source,
        state,
        &rollout::RecordedPlan::of(
            &plan,
            &rollout::footprint(&svc.service.spec, &loaded.repository.config, &plan),
        ),
        live.as_ref(),
    )
    .unwrap();
    loaded.desired = modelship::state::desired_state(&loaded.repository, &compiled);
    loaded
}

/// Compiles, asks the state machine, overlays and applies once; then checks a second plan
/// is empty. Returns the new state.
async fn reconcile(
    sandbox: &Target,
    dir: &std::path::Path,
    state: &RolloutState,
    now: Timestamp,
) -> RolloutState {
    let loaded = load_repo(dir);
    let compiled = compile_repository(&loaded.repository, &Source::local());
    let objects = compiled
        .services
        .iter()
        .find(|s| s.id.name() == NAME)
        .unwrap();
    let desired_hash = desired_template_hash(objects).unwrap();
    let live = deployment(sandbox, NAME).await;
    let (_, plan) = llm_chat(&loaded);
    let observation = Observation {
        now,
        revision: "r",
        desired_hash: &desired_hash,
        stable_hash: live.as_ref().and_then(live_template_hash),
        canary_ready: false,
        stable_ready: false,
        analysis: None,
        command: None,
    };
    let next = rollout::advance(state, &plan, &observation).state;
    apply_state(sandbox, dir, &next).await;
    next
}

async fn apply_state(sandbox: &Target, dir: &std::path::Path, state: &RolloutState) {
    let loaded = overlaid(sandbox, dir, state).await;
    apply_desired(sandbox, &loaded).await;
    let again = overlaid(sandbox, dir, state).await;
    let plan = plan_desired(sandbox, &again).await;
    assert!(!plan.has_changes(), "{}", changes(&plan).join("\n"));
}

#[tokio::test]
async fn each_state_applies_as_its_objects() {
    on_each_target(
        "each_state_applies_as_its_objects",
        each_state_applies_as_its_objects_on,
    )
    .await;
}

async fn each_state_applies_as_its_objects_on(sandbox: Target) {
    let repo = sandbox.example_copy();

    // First deployment: no canary, the template hash is recorded.
    let stable = reconcile(&sandbox, repo.path(), &RolloutState::default(), t(0)).await;
    assert_eq!(stable.phase, Phase::Stable);
    let live = deployment(&sandbox, NAME).await.unwrap();
    let first_hash = live_template_hash(&live).unwrap().to_string();
    assert_eq!(first_hash, stable.template_hash);
    assert!(deployment(&sandbox, "llm-chat-canary").await.is_none());

    // A new model version starts a canary at weight 0; stable keeps 3.1.0.
    edit(
        repo.path(),
        FILE,
        "version: \"3.1.0\"",
        "version: \"3.2.0\"",
    );
    let starting = reconcile(&sandbox, repo.path(), &stable, t(1)).await;
    assert!(
        matches!(starting.phase, Phase::Starting { .. }),
        "{starting:?}"
    );
    assert_ne!(starting.template_hash, first_hash);
    let live = deployment(&sandbox, NAME).await.unwrap();
    assert_eq!(model_version(&live), "3.1.0");
    assert_eq!(live_template_hash(&live), Some(first_hash.as_str()));
    let stored = live.metadata.annotations.as_ref().unwrap()[ANNOTATION_ROLLOUT].clone();
    assert_eq!(RolloutState::from_json(&stored).unwrap(), starting);
    let canary = deployment(&sandbox, "llm-chat-canary").await.unwrap();
    assert_eq!(model_version(&canary), "3.2.0");
    assert_eq!(canary.spec.as_ref().unwrap().replicas, Some(1));
    assert_weights(&sandbox, 100, 0).await;

    // Step 2 (weight 25).
    let progressing = RolloutState {
        phase: Phase::Progressing {
            step: 1,
            since: t(2),
        },
        ..starting.clone()
    };
    apply_state(&sandbox, repo.path(), &progressing).await;
    assert_weights(&sandbox, 75, 25).await;
    assert_stable_version(&sandbox, "3.1.0").await;

    // Rolled back: weight 0, canary gone, stable untouched.
    let rolled_back = RolloutState {
        phase: Phase::RolledBack {
            at: t(3),
            reason: RollbackReason::AnalysisFailed,
        },
        ..progressing.clone()
    };
    apply_state(&sandbox, repo.path(), &rolled_back).await;
    assert!(deployment(&sandbox, "llm-chat-canary").await.is_none());
    assert_stable_version(&sandbox, "3.1.0").await;
    assert_weights(&sandbox, 100, 0).await;

    // Promoting, then promoted: stable takes 3.2.0 and the canary goes.
    let promoting = RolloutState {
        phase: Phase::Promoting { since: t(4) },
        ..progressing
    };
    apply_state(&sandbox, repo.path(), &promoting).await;
    let live = deployment(&sandbox, NAME).await.unwrap();
    assert_eq!(model_version(&live), "3.2.0");
    assert_eq!(
        live_template_hash(&live),
        Some(promoting.template_hash.as_str())
    );
    assert_weights(&sandbox, 0, 100).await;
    let promoted = RolloutState {
        phase: Phase::Promoted { at: t(5) },
        ..promoting
    };
    apply_state(&sandbox, repo.path(), &promoted).await;
    assert!(deployment(&sandbox, "llm-chat-canary").await.is_none());
    assert_weights(&sandbox, 100, 0).await;
}
