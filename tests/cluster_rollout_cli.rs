//! Canary rollouts end to end through the `modelship` binary: the sandbox and the real
//! cluster of `MODELSHIP_TEST_KUBECONFIG` (each test runs on both), a real Prometheus scraping a metrics endpoint the test drives per track, and the test-only
//! step interval (MODELSHIP_TEST_STEP_INTERVAL=4s; specs keep SPEC.md's 30s minimum).
//!
//! - example-repo's llm-chat (gateway-api): a version bump goes 5, 25, waits at the gate,
//!   50 after `rollout approve`, 100, and is promoted with healthy metrics; it rolls back
//!   within failureLimit with bad ones;
//! - no traffic: held as inconclusive, then paused, never promoted; `rollout abort`;
//! - Prometheus stopped mid-rollout: held, then paused, never promoted;
//! - a new commit mid-rollout restarts from weight 0 with the newest revision;
//! - image-classifier (istio) and fraud-detection made a canary (replicas) promoted.

mod support;

use modelship::rollout::{Phase, RollbackReason};
use support::prometheus::Traffic;
use support::rollout::*;
use support::{bump_llm_chat_version, edit};

const GENAI: &str = "genai";
const LLM: &str = "llm-chat";

/// Runs `body` on each cluster ([`on_each_cluster`]) after [`bumped`].
async fn bumped_on_each_cluster<F, Fut>(test: &str, canary: Option<Traffic>, body: F)
where
    F: Fn(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let body = &body;
    on_each_cluster(
        test,
        |env| async move { body(bumped(env, canary).await).await },
    )
    .await;
}

/// A first deployment of the whole repository, then llm-chat's version bump, with the
/// canary track of llm-chat receiving `canary` traffic (the stable track gets the
/// opposite, so a query that does not select the canary gives the wrong verdict).
async fn bumped(env: Env, canary: Option<Traffic>) -> Env {
    env.exporter.set(&env.ns(GENAI), LLM, "canary", canary);
    let stable = if canary == Some(HEALTHY) {
        BROKEN
    } else {
        HEALTHY
    };
    env.exporter
        .set(&env.ns(GENAI), LLM, "stable", Some(stable));
    let first = apply_wait(&env).await;
    assert!(first.status.success(), "first deployment");
    let state = state(&env.cluster, &env.ns(GENAI), LLM)
        .await
        .expect("state");
    assert_eq!(
        state.phase,
        Phase::Stable,
        "a first deployment is no canary"
    );
    assert!(!has_canary(&env).await, "no llm-chat-canary");
    bump_llm_chat_version(env.repo.path());
    env
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test]
async fn llm_chat_goes_5_25_gate_50_100_and_is_promoted_with_healthy_metrics() {
    bumped_on_each_cluster(
        "llm_chat_goes_5_25_gate_50_100_and_is_promoted_with_healthy_metrics",
        Some(HEALTHY),
        llm_chat_goes_5_25_gate_50_100_and_is_promoted_with_healthy_metrics_on,
    )
    .await;
}

async fn llm_chat_goes_5_25_gate_50_100_and_is_promoted_with_healthy_metrics_on(env: Env) {
    // plan shows the steps, the gate and what the rollout costs at its peak.
    let dir = env.repo.path().to_string_lossy().into_owned();
    let plan = modelship(&env, &["plan", &dir]).await;
    let printed = text(&plan);
    assert!(
        printed.contains(&format!(
            "Canary {}: 5% -> 25% -> [approve] 50% -> 100%",
            env.service(GENAI, LLM)
        )),
        "{printed}"
    );
    assert!(
        printed.contains("peak 20 GPUs (4 per pod), $139.60/h at the peak"),
        "{printed}"
    );
    assert!(printed.contains("Deployment/llm-chat-canary"), "{printed}");
    // plan -o json says the same, for scripts.
    let plan = modelship(&env, &["plan", &dir, "-o", "json"]).await;
    assert_eq!(plan.status.code(), Some(1), "changes to apply");
    let document: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("JSON");
    let rollouts = document["rollouts"].as_array().expect("rollouts");
    assert_eq!(
        rollouts.len(),
        1,
        "only llm-chat's rollout moves: {rollouts:?}"
    );
    let planned = &rollouts[0];
    assert_eq!(planned["namespace"], env.ns(GENAI));
    assert_eq!(planned["name"], LLM);
    assert_eq!(planned["steps"], serde_json::json!([5, 25, 50, 100]));
    assert_eq!(planned["gates"], serde_json::json!([50]));
    assert_eq!(planned["status"]["phase"], "starting", "{planned}");
    assert_eq!(planned["footprint"]["peakGpus"], 20);
    assert_eq!(planned["footprint"]["gpusPerPod"], 4);
    let cost = planned["footprint"]["peakHourlyCost"]
        .as_f64()
        .expect("a cost");
    assert!((cost - 139.6).abs() < 1e-6, "{cost}");

    // apply --wait drives to the gate; rollout status --watch follows it there.
    let applying = command(&env, &apply_wait_args(&dir))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("apply starts");
    support::wait_for(
        "the first step",
        std::time::Duration::from_secs(60),
        || async { matches!(state_phase(&env).await, Phase::Progressing { .. }) },
    )
    .await;
    let watch = modelship(
        &env,
        &["rollout", "status", &env.service(GENAI, LLM), "--watch"],
    )
    .await;
    assert!(
        watch.status.success(),
        "the gate settles the watch with exit 0"
    );
    let watched = text(&watch);
    assert!(
        watched.contains(&format!("{}: progressing step", env.service(GENAI, LLM))),
        "{watched}"
    );
    let last = watched
        .lines()
        .rev()
        .find(|l| l.starts_with(&format!("{}:", env.service(GENAI, LLM))));
    assert!(
        last.unwrap_or_default()
            .contains("waiting-for-gate step 3/4 weight 25"),
        "{watched}"
    );
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        applying.wait_with_output(),
    )
    .await
    .expect("apply finishes")
    .expect("apply exits");
    assert!(out.status.success(), "stops at the gate with exit 0");
    let printed = text(&out);
    assert!(printed.contains("step 1 of 4: weight 5"), "{printed}");
    assert!(printed.contains("step 2 of 4: weight 25"), "{printed}");
    assert!(
        printed.contains("waiting for approval before weight 50"),
        "{printed}"
    );
    let state = state(&env.cluster, &env.ns(GENAI), LLM).await.unwrap();
    assert!(
        matches!(state.phase, Phase::WaitingForGate { step: 2, .. }),
        "{state:?}"
    );
    assert_eq!(
        route_weights(&env.cluster, &env.ns(GENAI), LLM).await,
        (75, 25)
    );
    assert_eq!(
        model_version(&env.cluster, &env.ns(GENAI), LLM).await,
        "3.1.0"
    );
    assert_eq!(
        model_version(&env.cluster, &env.ns(GENAI), "llm-chat-canary").await,
        "3.2.0"
    );
    let status = status_json(&env, GENAI, LLM).await;
    assert_eq!(status["phase"], "waiting-for-gate");
    assert_eq!((&status["step"], &status["steps"]), (&3.into(), &4.into()));
    assert_eq!(status["weight"], 25);
    // Every canary service in the cluster, without naming one.
    let all = status_all_json(&env, None).await;
    let shown: Vec<String> = all
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["namespace"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect();
    for canary in [LLM, "image-classifier"] {
        assert!(shown.contains(&env.service(GENAI, canary)), "{shown:?}");
    }
    assert_eq!(
        status["peakGpus"], 20,
        "(2 + 1 surge) stable + 2 canary pods x 4 GPUs"
    );
    let checks = status["lastAnalysis"]["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "requests",
            "successRate",
            "latencyP99",
            "time-to-first-token"
        ]
    );
    assert!(checks.iter().all(|c| c["verdict"] == "pass"), "{checks:?}");
    assert_eq!(checks[1]["value"], 100.0);
    assert_eq!(checks[1]["threshold"]["min"], 99.5);

    // Nothing moves without the approval.
    let again = apply_once(&env).await;
    assert!(again.status.success());
    let waiting = state_phase(&env).await;
    assert!(matches!(waiting, Phase::WaitingForGate { .. }));

    let approve = modelship(&env, &["rollout", "approve", &env.service(GENAI, LLM)]).await;
    assert!(approve.status.success(), "{}", text(&approve));
    let out = apply_wait(&env).await;
    assert!(out.status.success(), "promoted with exit 0");
    let printed = text(&out);
    assert!(
        printed.contains("approved: step 3 of 4: weight 50"),
        "{printed}"
    );
    assert!(printed.contains("step 4 of 4: weight 100"), "{printed}");
    assert!(printed.contains("promoted revision"), "{printed}");
    assert!(matches!(state_phase(&env).await, Phase::Promoted { .. }));
    assert_eq!(
        model_version(&env.cluster, &env.ns(GENAI), LLM).await,
        "3.2.0"
    );
    assert!(!has_canary(&env).await, "no llm-chat-canary");
    assert_eq!(
        route_weights(&env.cluster, &env.ns(GENAI), LLM).await,
        (100, 0)
    );
    let live = deployment(&env.cluster, &env.ns(GENAI), LLM).await.unwrap();
    let annotations = live.metadata.annotations.unwrap();
    assert!(
        !annotations.contains_key(modelship::rollout::ANNOTATION_COMMAND),
        "the command was cleared"
    );
    let reasons = event_reasons(&env.cluster, &env.ns(GENAI), LLM).await;
    let expected = [
        "RolloutStable",
        "RolloutStarting",
        "RolloutProgressing",
        "RolloutProgressing",
        "RolloutWaitingForGate",
        "RolloutProgressing",
        "RolloutProgressing",
        "RolloutPromoting",
        "RolloutPromoted",
    ];
    let found: Vec<&str> = reasons
        .iter()
        .map(String::as_str)
        .filter(|r| *r != "RolloutStable")
        .collect();
    assert_eq!(found, expected[1..], "{reasons:?}");
}

/// True while the Deployment llm-chat-canary exists.
async fn has_canary(env: &Env) -> bool {
    deployment(&env.cluster, &env.ns(GENAI), "llm-chat-canary")
        .await
        .is_some()
}

async fn state_phase(env: &Env) -> Phase {
    state(&env.cluster, &env.ns(GENAI), LLM)
        .await
        .unwrap()
        .phase
}

#[tokio::test]
async fn a_failing_canary_rolls_back_within_the_failure_limit() {
    bumped_on_each_cluster(
        "a_failing_canary_rolls_back_within_the_failure_limit",
        Some(BROKEN),
        a_failing_canary_rolls_back_within_the_failure_limit_on,
    )
    .await;
}

async fn a_failing_canary_rolls_back_within_the_failure_limit_on(env: Env) {
    let out = apply_wait(&env).await;
    assert_eq!(out.status.code(), Some(1), "a rollback fails apply --wait");
    let state = state(&env.cluster, &env.ns(GENAI), LLM).await.unwrap();
    assert!(
        matches!(
            state.phase,
            Phase::RolledBack {
                reason: RollbackReason::AnalysisFailed,
                ..
            }
        ),
        "{state:?}"
    );
    assert_eq!(state.failures, 2, "failureLimit 2");
    assert!(!has_canary(&env).await, "no llm-chat-canary");
    assert_eq!(
        model_version(&env.cluster, &env.ns(GENAI), LLM).await,
        "3.1.0"
    );
    assert_eq!(
        route_weights(&env.cluster, &env.ns(GENAI), LLM).await,
        (100, 0)
    );
    let status = status_json(&env, GENAI, LLM).await;
    assert_eq!(status["phase"], "rolled-back");
    let checks = status["lastAnalysis"]["checks"].as_array().unwrap();
    let rate = checks.iter().find(|c| c["name"] == "successRate").unwrap();
    assert_eq!(rate["verdict"], "fail");
    assert!(
        (rate["value"].as_f64().unwrap() - 50.0).abs() < 5.0,
        "{rate}"
    );
    // The same template is not tried again.
    let again = apply_once(&env).await;
    assert!(again.status.success());
    assert!(matches!(state_phase(&env).await, Phase::RolledBack { .. }));
    assert!(!has_canary(&env).await, "no llm-chat-canary");
}

#[tokio::test]
async fn no_traffic_is_held_as_inconclusive_and_never_promoted() {
    bumped_on_each_cluster(
        "no_traffic_is_held_as_inconclusive_and_never_promoted",
        None,
        no_traffic_is_held_as_inconclusive_and_never_promoted_on,
    )
    .await;
}

async fn no_traffic_is_held_as_inconclusive_and_never_promoted_on(env: Env) {
    let out = apply_wait(&env).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "a paused rollout fails apply --wait"
    );
    let state = state(&env.cluster, &env.ns(GENAI), LLM).await.unwrap();
    assert!(matches!(state.phase, Phase::Paused { .. }), "{state:?}");
    assert_eq!((state.failures, state.inconclusive), (0, 3));
    // The watch of a paused rollout ends at once, with exit 1: a person is needed.
    let llm = env.service(GENAI, LLM);
    let watch = modelship(&env, &["rollout", "status", &llm, "--watch"]).await;
    assert_eq!(watch.status.code(), Some(1), "{}", text(&watch));
    assert!(text(&watch).contains("paused"), "{}", text(&watch));
    // A rolling service has no rollout to show.
    let fraud = env.service("risk-prod", "fraud-detection");
    let out = modelship(&env, &["rollout", "status", &fraud]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("has no canary rollout in the cluster"),
        "{}",
        text(&out)
    );
    assert_eq!(
        route_weights(&env.cluster, &env.ns(GENAI), LLM).await,
        (95, 5)
    );
    assert_eq!(
        model_version(&env.cluster, &env.ns(GENAI), LLM).await,
        "3.1.0"
    );
    let last = state.last_analysis.unwrap();
    assert!(
        last.checks
            .iter()
            .all(|c| c.verdict != modelship::rollout::Verdict::Pass)
    );
    // A person aborts: rolled back, canary gone.
    let abort = modelship(&env, &["rollout", "abort", &env.service(GENAI, LLM)]).await;
    assert!(abort.status.success());
    let out = apply_once(&env).await;
    assert!(out.status.success());
    assert!(matches!(
        state_phase(&env).await,
        Phase::RolledBack {
            reason: RollbackReason::Aborted,
            ..
        }
    ));
    assert!(!has_canary(&env).await, "no llm-chat-canary");
}

#[tokio::test]
async fn prometheus_stopped_mid_rollout_holds_and_never_promotes() {
    bumped_on_each_cluster(
        "prometheus_stopped_mid_rollout_holds_and_never_promotes",
        Some(HEALTHY),
        prometheus_stopped_mid_rollout_holds_and_never_promotes_on,
    )
    .await;
}

async fn prometheus_stopped_mid_rollout_holds_and_never_promotes_on(mut env: Env) {
    // Drive by hand until the first step passed, then stop Prometheus.
    let mut passed = false;
    for _ in 0..60 {
        apply_once(&env).await;
        if matches!(state_phase(&env).await, Phase::Progressing { step: 1, .. }) {
            passed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(passed, "the first step passed");
    env.prometheus.stop().await;
    let out = apply_wait(&env).await;
    assert_eq!(out.status.code(), Some(1));
    let state = state(&env.cluster, &env.ns(GENAI), LLM).await.unwrap();
    assert!(matches!(state.phase, Phase::Paused { .. }), "{state:?}");
    assert_eq!(
        route_weights(&env.cluster, &env.ns(GENAI), LLM).await,
        (75, 25)
    );
    assert_eq!(
        model_version(&env.cluster, &env.ns(GENAI), LLM).await,
        "3.1.0"
    );
    let last = state.last_analysis.unwrap();
    for check in &last.checks {
        assert_eq!(check.verdict, modelship::rollout::Verdict::Error);
        let message = check.message.as_deref().unwrap_or_default();
        assert!(message.contains("unreachable"), "{message}");
    }
}

#[tokio::test]
async fn a_new_commit_mid_rollout_restarts_from_weight_zero() {
    bumped_on_each_cluster(
        "a_new_commit_mid_rollout_restarts_from_weight_zero",
        Some(HEALTHY),
        a_new_commit_mid_rollout_restarts_from_weight_zero_on,
    )
    .await;
}

async fn a_new_commit_mid_rollout_restarts_from_weight_zero_on(env: Env) {
    for _ in 0..60 {
        apply_once(&env).await;
        if matches!(state_phase(&env).await, Phase::Progressing { .. }) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let first = state(&env.cluster, &env.ns(GENAI), LLM).await.unwrap();
    assert!(
        matches!(first.phase, Phase::Progressing { .. }),
        "{first:?}"
    );
    assert_eq!(
        route_weights(&env.cluster, &env.ns(GENAI), LLM).await,
        (95, 5)
    );
    edit(
        env.repo.path(),
        "services/genai/llm-chat.yaml",
        "version: \"3.2.0\"",
        "version: \"3.3.0\"",
    );
    let out = apply_once(&env).await;
    assert!(
        text(&out).contains("rollout restarted by a new pod template"),
        "{}",
        text(&out)
    );
    let restarted = state(&env.cluster, &env.ns(GENAI), LLM).await.unwrap();
    assert!(
        matches!(restarted.phase, Phase::Starting { .. }),
        "{restarted:?}"
    );
    assert_ne!(restarted.template_hash, first.template_hash);
    assert_eq!(
        route_weights(&env.cluster, &env.ns(GENAI), LLM).await,
        (100, 0)
    );
    assert_eq!(
        model_version(&env.cluster, &env.ns(GENAI), "llm-chat-canary").await,
        "3.3.0"
    );
    assert_eq!(
        model_version(&env.cluster, &env.ns(GENAI), LLM).await,
        "3.1.0"
    );
}

#[tokio::test]
async fn istio_and_replicas_canaries_are_promoted() {
    on_each_cluster(
        "istio_and_replicas_canaries_are_promoted",
        istio_and_replicas_canaries_are_promoted_on,
    )
    .await;
}

async fn istio_and_replicas_canaries_are_promoted_on(env: Env) {
    // fraud-detection becomes a canary over the replicas router.
    edit(
        env.repo.path(),
        "services/risk/fraud-detection.yaml",
        "strategy: rolling",
        "strategy: canary\n    steps: [50, 100]",
    );
    env.exporter
        .set(&env.ns(GENAI), "image-classifier", "canary", Some(HEALTHY));
    env.exporter.set(
        &env.ns("risk-prod"),
        "fraud-detection",
        "canary",
        Some(HEALTHY),
    );
    assert!(apply_wait(&env).await.status.success());
    edit(
        env.repo.path(),
        "services/genai/image-classifier.yaml",
        "version: \"2024.11.1\"",
        "version: \"2024.12.1\"",
    );
    edit(
        env.repo.path(),
        "services/risk/fraud-detection.yaml",
        "version: \"1.4.2\"",
        "version: \"1.4.3\"",
    );
    let out = apply_wait(&env).await;
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    assert!(printed.contains("step 1 of 3: weight 10"), "{printed}");
    assert!(printed.contains("step 1 of 2: weight 50"), "{printed}");
    for (namespace, name, version) in [
        (GENAI, "image-classifier", "2024.12.1"),
        ("risk-prod", "fraud-detection", "1.4.3"),
    ] {
        let state = state(&env.cluster, &env.ns(namespace), name).await.unwrap();
        assert!(
            matches!(state.phase, Phase::Promoted { .. }),
            "{name}: {state:?}"
        );
        assert_eq!(state.failures, 0);
        assert_eq!(
            model_version(&env.cluster, &env.ns(namespace), name).await,
            version
        );
        let canary = format!("{name}-canary");
        assert!(
            deployment(&env.cluster, &env.ns(namespace), &canary)
                .await
                .is_none()
        );
        let reasons = event_reasons(&env.cluster, &env.ns(namespace), name).await;
        assert!(
            reasons.contains(&"RolloutPromoted".to_string()),
            "{reasons:?}"
        );
    }
}
