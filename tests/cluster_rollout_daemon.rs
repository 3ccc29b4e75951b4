//! Canary rollouts driven by `modelship run`, end to end: the sandbox and the real cluster
//! of `MODELSHIP_TEST_KUBECONFIG` (each test runs on both), a real Prometheus and the
//! test-only step interval (4s). The daemon is killed with SIGKILL mid-step and
//! restarted: it resumes the same step with the time already spent (state lives only in
//! the cluster). With two replicas under leader election, the new leader resumes a
//! rollout the old one left. `/status` and `/metrics` show the rollout.

mod support;

use std::time::Duration;

use jiff::SignedDuration;
use modelship::rollout::Phase;
use support::bump_llm_chat_version;
use support::rollout::*;
use support::wait_for;
use tokio::process::Child;

const GENAI: &str = "genai";
const LLM: &str = "llm-chat";

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("address").port()
}

/// `modelship run` on the repository copy, serving on `port`; with `leader`, under leader
/// election with that identity and the lease in namespace `leases`.
fn daemon(env: &Env, port: u16, leader: Option<(&str, &str)>) -> Child {
    let dir = env.repo.path().to_string_lossy().into_owned();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "run",
        "--repo",
        &dir,
        "--listen",
        &listen,
        "--create-namespaces",
    ];
    if let Some((_, leases)) = leader {
        args.extend(["--leader-elect", "--lease-namespace", leases]);
    }
    let mut command = command(env, &args);
    if let Some((identity, _)) = leader {
        command.env("POD_NAME", identity);
    }
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("modelship run starts")
}

/// Kills a daemon with SIGKILL (tokio's kill) and waits until it is gone.
async fn kill(mut child: Child) {
    child.start_kill().expect("SIGKILL");
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}

async fn phase(env: &Env) -> Option<Phase> {
    state(&env.cluster, &env.ns(GENAI), LLM)
        .await
        .map(|s| s.phase)
}

async fn wait_phase(env: &Env, what: &str, pred: impl Fn(&Phase) -> bool) {
    let limit = env.cluster.patience().max(Duration::from_secs(120));
    wait_for(what, limit, || async {
        phase(env).await.is_some_and(|p| pred(&p))
    })
    .await;
}

async fn get(port: u16, path: &str) -> String {
    let url = format!("http://127.0.0.1:{port}{path}");
    let response = reqwest::get(&url).await.expect("the daemon answers");
    response.text().await.expect("a body")
}

async fn approve(env: &Env) {
    let out = modelship(env, &["rollout", "approve", &env.service(GENAI, LLM)]).await;
    assert!(out.status.success(), "approve");
}

/// The step and its start of a progressing rollout.
fn step_of(phase: &Phase) -> Option<(usize, jiff::Timestamp)> {
    match phase {
        Phase::Progressing { step, since } => Some((*step, *since)),
        _ => None,
    }
}

#[tokio::test]
async fn a_killed_daemon_resumes_the_same_step_with_the_time_spent() {
    on_each_cluster(
        "a_killed_daemon_resumes_the_same_step_with_the_time_spent",
        a_killed_daemon_resumes_the_same_step_with_the_time_spent_on,
    )
    .await;
}

async fn a_killed_daemon_resumes_the_same_step_with_the_time_spent_on(env: Env) {
    env.exporter
        .set(&env.ns(GENAI), LLM, "canary", Some(HEALTHY));
    let port = free_port();
    let first = daemon(&env, port, None);
    wait_phase(&env, "the first deployment", |p| *p == Phase::Stable).await;
    bump_llm_chat_version(env.repo.path());
    wait_phase(&env, "a step of the canary", |p| step_of(p).is_some()).await;
    kill(first).await;
    let at_kill = phase(&env).await.and_then(|p| step_of(&p));
    let (step, since) = at_kill.expect("killed mid-step");

    let second = daemon(&env, port, None);
    wait_for(
        "the restarted daemon to be ready",
        Duration::from_secs(60),
        || async {
            reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await;
    let resumed = phase(&env).await.expect("state");
    let interval = SignedDuration::from_secs(4);
    match step_of(&resumed) {
        // Still the same step: its start is the one before the kill, not the restart's.
        Some((now_step, now_since)) if now_step == step => assert_eq!(now_since, since),
        // Or the step's time was up and the next one began after it, never before.
        Some((now_step, now_since)) => {
            assert_eq!(now_step, step + 1, "{resumed:?}");
            assert!(now_since >= since + interval, "{resumed:?}");
        }
        None => assert!(
            matches!(resumed, Phase::WaitingForGate { .. }),
            "{resumed:?}"
        ),
    }

    wait_phase(&env, "the gate", |p| {
        matches!(p, Phase::WaitingForGate { .. })
    })
    .await;
    approve(&env).await;
    wait_phase(&env, "promotion", |p| matches!(p, Phase::Promoted { .. })).await;
    assert_eq!(
        model_version(&env.cluster, &env.ns(GENAI), LLM).await,
        "3.2.0"
    );
    wait_for(
        "the canary to be deleted",
        Duration::from_secs(30),
        || async {
            deployment(&env.cluster, &env.ns(GENAI), "llm-chat-canary")
                .await
                .is_none()
        },
    )
    .await;
    let status: serde_json::Value =
        serde_json::from_str(&get(port, "/status").await).expect("JSON");
    let service = status["services"][&env.service(GENAI, LLM)].clone();
    assert_eq!(service["rollout"]["phase"], "promoted", "{service}");
    let metrics = get(port, "/metrics").await;
    assert!(
        metrics.contains(&format!(
            r#"modelship_rollout_phase{{namespace="{}",service="llm-chat",phase="promoted"}} 1"#,
            env.ns(GENAI)
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            r#"modelship_rollout_weight{{namespace="{}",service="llm-chat"}} 0"#,
            env.ns(GENAI)
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"modelship_analysis_checks_total{verdict="pass"}"#),
        "{metrics}"
    );
    let reasons = event_reasons(&env.cluster, &env.ns(GENAI), LLM).await;
    assert!(
        reasons.contains(&"RolloutPromoted".to_string()),
        "{reasons:?}"
    );
    kill(second).await;
}

#[tokio::test]
async fn the_new_leader_resumes_the_rollout() {
    on_each_cluster(
        "the_new_leader_resumes_the_rollout",
        the_new_leader_resumes_the_rollout_on,
    )
    .await;
}

async fn the_new_leader_resumes_the_rollout_on(env: Env) {
    env.exporter
        .set(&env.ns(GENAI), LLM, "canary", Some(HEALTHY));
    let leases = env.cluster.namespace("default").await;
    let ports = [free_port(), free_port()];
    let mut replicas = vec![
        Some(daemon(&env, ports[0], Some(("replica-a", &leases)))),
        Some(daemon(&env, ports[1], Some(("replica-b", &leases)))),
    ];
    wait_phase(&env, "the first deployment", |p| *p == Phase::Stable).await;
    bump_llm_chat_version(env.repo.path());
    wait_phase(&env, "a step of the canary", |p| step_of(p).is_some()).await;
    let mut leader = None;
    for (index, port) in ports.iter().enumerate() {
        if get(*port, "/metrics").await.contains("modelship_leader 1") {
            leader = Some(index);
        }
    }
    let leader = leader.expect("one replica leads");
    let before = phase(&env).await.and_then(|p| step_of(&p)).expect("a step");
    kill(replicas[leader].take().expect("running")).await;
    // The other replica takes the lease (15 s) and drives on from the stored state.
    wait_phase(&env, "the gate, reached by the new leader", |p| {
        matches!(p, Phase::WaitingForGate { .. })
    })
    .await;
    let standby = ports[1 - leader];
    assert!(
        get(standby, "/metrics")
            .await
            .contains("modelship_leader 1")
    );
    let state = state(&env.cluster, &env.ns(GENAI), LLM)
        .await
        .expect("state");
    assert!(state.approvals.is_empty());
    assert_eq!(state.failures, 0);
    assert!(
        before.0 < 2,
        "the gate is after the step the old leader ran"
    );
    approve(&env).await;
    wait_phase(&env, "promotion by the new leader", |p| {
        matches!(p, Phase::Promoted { .. })
    })
    .await;
    assert_eq!(
        model_version(&env.cluster, &env.ns(GENAI), LLM).await,
        "3.2.0"
    );
    for replica in replicas.into_iter().flatten() {
        kill(replica).await;
    }
}
