//! The engine's rollout step with a fake clock, fake verdicts and a live state built by
//! hand: example-repo's llm-chat (gateway-api, steps 5, 25, 50 gated, 100) from its first
//! deployment through a version bump to promotion, and to a rollback.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::*;
use crate::rollout::{CheckKind, Command, Phase, RollbackReason};
use crate::state::LiveSet;

const LLM: &str = "llm-chat";

/// What [`drive`] did: the rollouts advanced, and the services that could not be.
#[derive(Debug, Default)]
struct Driven {
    services: Vec<ServiceRollout>,
    failures: Vec<(ServiceId, Error)>,
}

/// Advances every canary service of `prepared` (but those in `skip`) at `now` and puts
/// the desired objects of each new state into it: the rollout part of the engine's step,
/// with the objects it plans kept where the tests can read them.
async fn drive<A: Analyst>(
    prepared: &mut Prepared,
    live: &LiveSet,
    now: Timestamp,
    analyst: &A,
    settings: Settings,
    skip: &BTreeSet<ServiceId>,
) -> Driven {
    drive_as(
        Advancing::Live,
        prepared,
        live,
        now,
        analyst,
        settings,
        skip,
    )
    .await
}

/// [`drive`], advancing as `advancing` says (a pull request's head: a proposal).
async fn drive_as<A: Analyst>(
    advancing: Advancing,
    prepared: &mut Prepared,
    live: &LiveSet,
    now: Timestamp,
    analyst: &A,
    settings: Settings,
    skip: &BTreeSet<ServiceId>,
) -> Driven {
    let mut driven = Driven::default();
    let mut objects = Vec::new();
    {
        let ctx = Context {
            prepared,
            revision: prepared.revision().as_str(),
            now,
            analyst,
            advancing,
        };
        let config = &prepared.repository.config;
        for svc in &prepared.repository.services {
            let id = svc.id().clone();
            let Some(plan) = settings.plan(svc) else {
                continue;
            };
            if skip.contains(&id) || !prepared.spec_hashes.contains_key(&id) {
                continue;
            }
            let compiled = crate::compile::compile_service(svc, config, prepared.source())
                .expect("a prepared service compiles");
            match advance(&ctx, svc, plan, compiled, live).await {
                Ok((desired, rollout)) => {
                    objects.push((id, desired));
                    driven.services.push(rollout);
                }
                Err(error) => driven.failures.push((id, error)),
            }
        }
    }
    for (id, desired) in objects {
        prepared.set_service_objects(&id, desired);
    }
    driven
}

fn id() -> ServiceId {
    ServiceId::new("genai", LLM).unwrap()
}

fn t(minutes: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap() + SignedDuration::from_mins(minutes)
}

/// Verdicts the test decides: every check passes, or the success rate fails.
struct FakeAnalyst {
    healthy: bool,
    calls: Mutex<Vec<(u32, Timestamp)>>,
}

impl FakeAnalyst {
    fn new(healthy: bool) -> Self {
        FakeAnalyst {
            healthy,
            calls: Mutex::new(Vec::new()),
        }
    }

    fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

impl Analyst for FakeAnalyst {
    fn observe(
        &self,
        url: Option<&str>,
        queries: &AnalysisQueries,
        at: Timestamp,
    ) -> impl Future<Output = Vec<QueryResult>> + Send {
        assert_eq!(url, Some("http://prometheus.monitoring.svc:9090"));
        let window = queries.checks[0]
            .query
            .rsplit('[')
            .next()
            .and_then(|w| w.trim_end_matches("s]))").parse::<u32>().ok())
            .unwrap_or(0);
        self.calls.lock().unwrap().push((window, at));
        let results = queries
            .checks
            .iter()
            .map(|check| {
                let value = match check.kind {
                    CheckKind::Requests => 10_000.0,
                    CheckKind::SuccessRate if !self.healthy => 50.0,
                    _ => check.threshold.max.or(check.threshold.min).unwrap_or(0.0),
                };
                QueryResult::Values(vec![value])
            })
            .collect();
        std::future::ready(results)
    }
}

fn files(version: &str) -> BTreeMap<String, Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo");
    let mut files = crate::source::read_dir(&root).unwrap();
    let path = "services/genai/llm-chat.yaml".to_string();
    let text = String::from_utf8(files[&path].clone()).unwrap();
    let text = text.replace("version: \"3.1.0\"", &format!("version: \"{version}\""));
    files.insert(path, text.into_bytes());
    files
}

fn prepared(version: &str) -> Prepared {
    super::super::prepare(
        &files(version),
        &BTreeMap::new(),
        &crate::compile::Source::local(),
    )
}

/// The cluster after an apply of `prepared`: every desired object stored (generation 1,
/// a uid), Deployments ready when `ready` says so, plus the annotations of `extra`.
fn applied(prepared: &Prepared, ready: &dyn Fn(&str) -> bool, extra: &[(&str, &str)]) -> LiveSet {
    let mut live = LiveSet::new();
    for service in &prepared.desired().services {
        for object in &service.objects {
            let mut object = object.clone();
            let name = object["metadata"]["name"].as_str().unwrap().to_string();
            object["metadata"]["generation"] = json!(1);
            object["metadata"]["uid"] = json!(format!("uid-{name}"));
            if object["kind"] == "Deployment" {
                let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
                let up = if ready(&name) { replicas } else { 0 };
                object["status"] = json!({"observedGeneration": 1, "replicas": replicas,
                    "updatedReplicas": up, "availableReplicas": up});
                if name == LLM {
                    for (key, value) in extra {
                        object["metadata"]["annotations"][*key] = json!(value);
                    }
                }
            }
            live.insert(object);
        }
    }
    live
}

fn all_ready(_: &str) -> bool {
    true
}

fn object(prepared: &Prepared, kind: &str, name: &str) -> Option<Value> {
    let service = prepared.service(&id())?.into_owned();
    service
        .objects
        .into_iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn model_version(deployment: &Value) -> String {
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let version = env.iter().find(|e| e["name"] == "MODEL_VERSION").unwrap();
    version["value"].as_str().unwrap().to_string()
}

fn weights(prepared: &Prepared) -> Vec<i64> {
    let route = object(prepared, "HTTPRoute", LLM).unwrap();
    route["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["weight"].as_i64().unwrap())
        .collect()
}

/// One engine run: prepare `version`, drive at `now` over `live`.
async fn run(
    version: &str,
    live: &LiveSet,
    now: Timestamp,
    analyst: &FakeAnalyst,
) -> (Prepared, ServiceRollout) {
    let mut prepared = prepared(version);
    let skip = BTreeSet::new();
    let report = drive(
        &mut prepared,
        live,
        now,
        analyst,
        Settings::default(),
        &skip,
    )
    .await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let rollout = report
        .services
        .into_iter()
        .find(|s| s.id == id())
        .expect("llm-chat is a canary service");
    (prepared, rollout)
}

/// One run of a proposal (a pull request's head): prepare `version`, drive at `now`.
async fn propose(
    version: &str,
    live: &LiveSet,
    now: Timestamp,
    analyst: &FakeAnalyst,
) -> (Prepared, ServiceRollout) {
    let mut prepared = prepared(version);
    let skip = BTreeSet::new();
    let settings = Settings::default();
    let report = drive_as(
        Advancing::Proposal,
        &mut prepared,
        live,
        now,
        analyst,
        settings,
        &skip,
    )
    .await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let rollout = report.services.into_iter().find(|s| s.id == id()).unwrap();
    (prepared, rollout)
}

#[tokio::test]
async fn a_proposal_never_analyses_nor_moves_a_live_rollout() {
    let analyst = FakeAnalyst::new(true);
    let (first, _) = run("3.1.0", &LiveSet::new(), t(0), &analyst).await;
    let (starting, _) = run("3.2.0", &applied(&first, &all_ready, &[]), t(2), &analyst).await;
    let (step1, live_state) = run(
        "3.2.0",
        &applied(&starting, &all_ready, &[]),
        t(4),
        &analyst,
    )
    .await;
    let hash = live_state.state.template_hash.clone();
    let approve = format!("approve@{hash}");
    let live = applied(&step1, &all_ready, &[(ANNOTATION_COMMAND, &approve)]);

    // The step is due and a command waits: a proposal leaving the template alone shows
    // the rollout where the cluster has it, asks Prometheus nothing, reads no command.
    let (same, rollout) = propose("3.2.0", &live, t(30), &analyst).await;
    assert_eq!(rollout.state, live_state.state);
    assert_eq!(rollout.state, rollout.previous);
    assert!(rollout.transitions.is_empty());
    assert!(rollout.command.is_none());
    assert!(rollout.analysis.is_none());
    assert_eq!(analyst.calls(), 0);
    assert_eq!(weights(&same), [95, 5]);
    let stable = object(&same, "Deployment", LLM).unwrap();
    assert_eq!(
        stable["metadata"]["annotations"][ANNOTATION_ROLLOUT],
        json!(live_state.state.to_json().unwrap())
    );

    // A proposal that changes the template shows the rollout the merge would start.
    let (_, rollout) = propose("3.3.0", &live, t(30), &analyst).await;
    assert!(matches!(rollout.state.phase, Phase::Starting { .. }));
    assert_eq!(rollout.transitions.len(), 1);
    assert_eq!(analyst.calls(), 0);
}

#[tokio::test]
async fn a_version_bump_rolls_out_step_by_step_and_is_promoted() {
    let analyst = FakeAnalyst::new(true);
    // First deployment: no canary, the template hash and the state are recorded.
    let (first, rollout) = run("3.1.0", &LiveSet::new(), t(0), &analyst).await;
    assert_eq!(rollout.state.phase, Phase::Stable);
    assert!(object(&first, "Deployment", "llm-chat-canary").is_none());
    let stable = object(&first, "Deployment", LLM).unwrap();
    assert!(stable["metadata"]["annotations"][ANNOTATION_TEMPLATE_HASH].is_string());
    let live = applied(&first, &all_ready, &[]);

    // The same revision again: the same objects (nothing to write).
    let (again, rollout) = run("3.1.0", &live, t(1), &analyst).await;
    assert!(rollout.transitions.is_empty());
    assert_eq!(again.desired().services, first.desired().services);

    // The version bump starts a canary; the stable keeps 3.1.0, weight 0.
    let (starting, rollout) = run("3.2.0", &live, t(2), &analyst).await;
    assert!(matches!(rollout.state.phase, Phase::Starting { .. }));
    assert_eq!(rollout.transitions[0].to, PhaseName::Starting);
    let canary = object(&starting, "Deployment", "llm-chat-canary").unwrap();
    assert_eq!(model_version(&canary), "3.2.0");
    let stable = object(&starting, "Deployment", LLM).unwrap();
    assert_eq!(model_version(&stable), "3.1.0");
    assert_eq!(weights(&starting), [100, 0]);
    let state: RolloutState = RolloutState::from_json(
        stable["metadata"]["annotations"][ANNOTATION_ROLLOUT]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(state, rollout.state);

    // Canary not ready yet: still starting, requeued at the load timeout.
    let not_ready = applied(&starting, &|name| name != "llm-chat-canary", &[]);
    let (_, rollout) = run("3.2.0", &not_ready, t(3), &analyst).await;
    assert!(matches!(rollout.state.phase, Phase::Starting { .. }));
    assert_eq!(rollout.requeue_at, Some(t(2 + 20)), "loadTimeout 20m");

    // Ready: step 1, weight 5, analysed after the 10m interval.
    let live = applied(&starting, &all_ready, &[]);
    let (step1, rollout) = run("3.2.0", &live, t(4), &analyst).await;
    assert_eq!(
        rollout.state.phase,
        Phase::Progressing {
            step: 0,
            since: t(4)
        }
    );
    assert_eq!(weights(&step1), [95, 5]);
    assert_eq!(rollout.requeue_at, Some(t(14)));
    assert_eq!(rollout.status.seconds_left, Some(600));
    let live = applied(&step1, &all_ready, &[]);

    // Before the interval: nothing happens, nothing is asked of Prometheus.
    let (_, rollout) = run("3.2.0", &live, t(13), &analyst).await;
    assert!(rollout.transitions.is_empty());
    assert_eq!(analyst.calls(), 0);

    // After it: one analysis over the 10-minute window, then weight 25.
    let (step2, rollout) = run("3.2.0", &live, t(14), &analyst).await;
    assert_eq!(analyst.calls.lock().unwrap()[0], (600, t(14)));
    assert_eq!(
        rollout.state.phase,
        Phase::Progressing {
            step: 1,
            since: t(14)
        }
    );
    assert_eq!(rollout.analysis.as_ref().unwrap().checks.len(), 4);
    assert_eq!(weights(&step2), [75, 25]);
    let live = applied(&step2, &all_ready, &[]);

    // Then the gate before 50: traffic stays at 25 until approved.
    let (gate, rollout) = run("3.2.0", &live, t(24), &analyst).await;
    assert!(matches!(
        rollout.state.phase,
        Phase::WaitingForGate { step: 2, .. }
    ));
    assert_eq!(weights(&gate), [75, 25]);
    assert!(rollout.settled());
    let hash = rollout.state.template_hash.clone();
    let waiting = applied(&gate, &all_ready, &[]);
    let (_, rollout) = run("3.2.0", &waiting, t(40), &analyst).await;
    assert!(matches!(rollout.state.phase, Phase::WaitingForGate { .. }));

    // A stale approval (another template) is ignored; the right one moves to 50.
    let stale = applied(&gate, &all_ready, &[(ANNOTATION_COMMAND, "approve@other")]);
    let (_, rollout) = run("3.2.0", &stale, t(41), &analyst).await;
    assert!(matches!(rollout.state.phase, Phase::WaitingForGate { .. }));
    assert_eq!(rollout.command_annotation.as_deref(), Some("approve@other"));
    let approve = format!("approve@{hash}");
    let approved = applied(&gate, &all_ready, &[(ANNOTATION_COMMAND, &approve)]);
    let (step3, rollout) = run("3.2.0", &approved, t(42), &analyst).await;
    assert_eq!(
        rollout.state.phase,
        Phase::Progressing {
            step: 2,
            since: t(42)
        }
    );
    assert_eq!(
        rollout.command,
        Some(CommandOutcome::Applied(Command::Approve))
    );
    assert_eq!(weights(&step3), [50, 50]);
    let stable = object(&step3, "Deployment", LLM).unwrap();
    assert!(
        stable["metadata"]["annotations"][ANNOTATION_COMMAND].is_null(),
        "the command is not desired: the engine clears it"
    );
    let live = applied(&step3, &all_ready, &[]);

    // 100, then promotion: the stable takes 3.2.0 while the canary still serves.
    let (step4, _) = run("3.2.0", &live, t(52), &analyst).await;
    assert_eq!(weights(&step4), [0, 100]);
    let live = applied(&step4, &all_ready, &[]);
    let (promoting, rollout) = run("3.2.0", &live, t(62), &analyst).await;
    assert!(matches!(rollout.state.phase, Phase::Promoting { .. }));
    assert_eq!(
        model_version(&object(&promoting, "Deployment", LLM).unwrap()),
        "3.2.0"
    );
    assert!(object(&promoting, "Deployment", "llm-chat-canary").is_some());
    let live = applied(&promoting, &all_ready, &[]);
    let (promoted, rollout) = run("3.2.0", &live, t(63), &analyst).await;
    assert!(matches!(rollout.state.phase, Phase::Promoted { .. }));
    assert!(object(&promoted, "Deployment", "llm-chat-canary").is_none());
    assert_eq!(weights(&promoted), [100, 0]);
    assert_eq!(analyst.calls(), 4, "one analysis per step");
    let event = event_body(&rollout, &rollout.transitions[0], t(63), 0);
    assert_eq!(event["reason"], "RolloutPromoted");
    assert_eq!(event["involvedObject"]["uid"], "uid-llm-chat");
    assert_eq!(event["type"], "Normal");
}

#[tokio::test]
async fn a_failing_canary_rolls_back_at_the_failure_limit() {
    let analyst = FakeAnalyst::new(false);
    let (first, _) = run("3.1.0", &LiveSet::new(), t(0), &analyst).await;
    let live = applied(&first, &all_ready, &[]);
    let (starting, _) = run("3.2.0", &live, t(1), &analyst).await;
    let live = applied(&starting, &all_ready, &[]);
    let (step1, _) = run("3.2.0", &live, t(2), &analyst).await;
    let live = applied(&step1, &all_ready, &[]);
    // First failure: held at 5 for another interval.
    let (held, rollout) = run("3.2.0", &live, t(12), &analyst).await;
    assert_eq!(
        rollout.state.phase,
        Phase::Progressing {
            step: 0,
            since: t(12)
        }
    );
    assert_eq!((rollout.state.failures, weights(&held)), (1, vec![95, 5]));
    let live = applied(&held, &all_ready, &[]);
    // Second: rolled back, canary no longer desired, stable untouched.
    let (back, rollout) = run("3.2.0", &live, t(22), &analyst).await;
    assert!(matches!(
        rollout.state.phase,
        Phase::RolledBack {
            reason: RollbackReason::AnalysisFailed,
            ..
        }
    ));
    assert!(object(&back, "Deployment", "llm-chat-canary").is_none());
    assert_eq!(
        model_version(&object(&back, "Deployment", LLM).unwrap()),
        "3.1.0"
    );
    let event = event_body(&rollout, &rollout.transitions[0], t(22), 0);
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("RolloutRolledBack"))
    );
    let last = rollout.status.last_analysis.as_ref().unwrap();
    assert!(
        last.checks
            .iter()
            .any(|c| c.name == "successRate" && c.value == Some(50.0))
    );
    // The same template is not tried again.
    let live = applied(&back, &all_ready, &[]);
    let (_, rollout) = run("3.2.0", &live, t(60), &analyst).await;
    assert!(matches!(rollout.state.phase, Phase::RolledBack { .. }));
    assert!(rollout.transitions.is_empty());
}

#[tokio::test]
async fn changes_outside_the_pod_template_and_unreadable_state_start_no_direct_replacement() {
    let analyst = FakeAnalyst::new(true);
    let (first, _) = run("3.1.0", &LiveSet::new(), t(0), &analyst).await;
    let live = applied(&first, &all_ready, &[]);
    // maxReplicas is not in the pod template: applied at once, no canary.
    let mut files = files("3.1.0");
    let path = "services/genai/llm-chat.yaml".to_string();
    let text = String::from_utf8(files[&path].clone()).unwrap();
    files.insert(
        path,
        text.replace("maxReplicas: 6", "maxReplicas: 8")
            .into_bytes(),
    );
    let mut scaled =
        super::super::prepare(&files, &BTreeMap::new(), &crate::compile::Source::local());
    let skip = BTreeSet::new();
    let report = drive(
        &mut scaled,
        &live,
        t(1),
        &analyst,
        Settings::default(),
        &skip,
    )
    .await;
    let rollout = report.services.iter().find(|s| s.id == id()).unwrap();
    assert_eq!(rollout.state.phase, Phase::Stable);
    assert_eq!(
        rollout.state.revision,
        first.revision().as_str(),
        "the template's first revision is kept"
    );
    assert_ne!(scaled.revision(), first.revision());
    assert!(object(&scaled, "Deployment", "llm-chat-canary").is_none());

    // A state annotation edited into nonsense: a new template still goes through a canary.
    let broken = applied(&first, &all_ready, &[(ANNOTATION_ROLLOUT, "{not json")]);
    let (started, rollout) = run("3.2.0", &broken, t(2), &analyst).await;
    assert!(matches!(rollout.state.phase, Phase::Starting { .. }));
    assert_eq!(rollout.notes.len(), 1, "{:?}", rollout.notes);
    assert_eq!(
        model_version(&object(&started, "Deployment", LLM).unwrap()),
        "3.1.0"
    );
}

#[test]
fn the_test_step_interval_parses_or_names_the_variable() {
    let settings = Settings::with_step_interval("2s").unwrap();
    assert_eq!(settings.step_interval, Some(SignedDuration::from_secs(2)));
    let error = Settings::with_step_interval("soon")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("MODELSHIP_TEST_STEP_INTERVAL=soon"),
        "{error}"
    );
}

/// example-repo with `edits` (file, from, to) applied.
fn edited(edits: &[(&str, &str, &str)]) -> Prepared {
    let mut files = files("3.1.0");
    for (file, from, to) in edits {
        let text = String::from_utf8(files[*file].clone()).unwrap();
        assert!(text.contains(from), "{file} has {from}");
        files.insert(file.to_string(), text.replacen(from, to, 1).into_bytes());
    }
    super::super::prepare(&files, &BTreeMap::new(), &crate::compile::Source::local())
}

/// Drives every canary service of `prepared` at `now`.
async fn drive_all(prepared: &mut Prepared, live: &LiveSet, now: Timestamp) -> Driven {
    let analyst = FakeAnalyst::new(true);
    let report = drive(
        prepared,
        live,
        now,
        &analyst,
        Settings::default(),
        &BTreeSet::new(),
    )
    .await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    report
}

fn object_of(prepared: &Prepared, id: &ServiceId, kind: &str, name: &str) -> Option<Value> {
    let service = prepared.service(id)?.into_owned();
    service
        .objects
        .into_iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

#[tokio::test]
async fn istio_route_weights_and_the_replica_split_follow_the_step() {
    const FRAUD: &str = "services/risk/fraud-detection.yaml";
    const IMAGES: &str = "services/genai/image-classifier.yaml";
    let canary = (
        "strategy: rolling",
        "strategy: canary\n    steps: [50, 100]",
    );
    let images = ("genai", "image-classifier");
    let fraud = ("risk-prod", "fraud-detection");
    let key = |(ns, name): (&str, &str)| ServiceId::new(ns, name).unwrap();
    let mut first = edited(&[(FRAUD, canary.0, canary.1)]);
    drive_all(&mut first, &LiveSet::new(), t(0)).await;
    let live = applied(&first, &all_ready, &[]);
    let bumped = [
        (FRAUD, canary.0, canary.1),
        (FRAUD, "version: \"1.4.2\"", "version: \"1.4.3\""),
        (IMAGES, "version: \"2024.11.1\"", "version: \"2024.12.1\""),
    ];
    let mut starting = edited(&bumped);
    drive_all(&mut starting, &live, t(1)).await;
    let live = applied(&starting, &all_ready, &[]);
    let mut stepped = edited(&bumped);
    let report = drive_all(&mut stepped, &live, t(2)).await;
    let stepping: Vec<&ServiceRollout> = report
        .services
        .iter()
        .filter(|r| r.id == key(images) || r.id == key(fraud))
        .collect();
    assert_eq!(stepping.len(), 2);
    for rollout in stepping {
        assert!(
            matches!(rollout.state.phase, Phase::Progressing { step: 0, .. }),
            "{rollout:?}"
        );
    }
    // istio: every route of the VirtualService (http and grpc) at 90/10 by subset.
    let vs = object_of(&stepped, &key(images), "VirtualService", "image-classifier").unwrap();
    for route in vs["spec"]["http"].as_array().unwrap() {
        let weights: Vec<(String, i64)> = route["route"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let subset = d["destination"]["subset"].as_str().unwrap().to_string();
                (subset, d["weight"].as_i64().unwrap())
            })
            .collect();
        assert_eq!(
            weights,
            [("stable".into(), 90), ("canary".into(), 10)],
            "{route}"
        );
    }
    let canary_pods = object_of(
        &stepped,
        &key(images),
        "Deployment",
        "image-classifier-canary",
    )
    .unwrap()["spec"]["replicas"]
        .clone();
    assert_eq!(canary_pods, 1, "10% of 2 replicas, at least one pod");
    // replicas under an HPA: the canary runs half of minReplicas 3, the HPA keeps stable.
    let deployment = object_of(
        &stepped,
        &key(fraud),
        "Deployment",
        "fraud-detection-canary",
    )
    .unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    let stable = object_of(&stepped, &key(fraud), "Deployment", "fraud-detection").unwrap();
    assert!(
        stable["spec"]["replicas"].is_null(),
        "the HPA owns the stable count"
    );
    assert_eq!(
        stable["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"], "1.4.2",
        "the stable keeps its live template"
    );
}

#[test]
fn recorded_statuses_read_the_state_and_plan_of_each_stable_deployment() {
    let plan = RolloutPlan {
        steps: vec![10, 100],
        step_interval: SignedDuration::from_mins(5),
        gates: BTreeSet::new(),
        load_timeout: SignedDuration::from_mins(5),
        failure_limit: 2,
        inconclusive_limit: 3,
    };
    let recorded = RecordedPlan {
        plan,
        peak_gpus: 8,
        peak_hourly_cost: Some(32.0),
    };
    let state = RolloutState {
        revision: "r2".into(),
        template_hash: "h2".into(),
        phase: Phase::Progressing {
            step: 0,
            since: t(0),
        },
        ..RolloutState::default()
    };
    let deployment = |name: &str, annotations: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"namespace": "ml", "name": name, "annotations": annotations}})
    };
    let deployments = [
        deployment(
            "b",
            json!({ANNOTATION_ROLLOUT: state.to_json().unwrap(),
                   ANNOTATION_PLAN: recorded.to_json().unwrap()}),
        ),
        // A rolling service: no rollout state, not shown, nothing said.
        deployment("plain", json!({})),
        deployment("a", json!({ANNOTATION_ROLLOUT: state.to_json().unwrap()})),
        deployment(
            "c",
            json!({ANNOTATION_ROLLOUT: "{broken", ANNOTATION_PLAN: recorded.to_json().unwrap()}),
        ),
    ];
    let (statuses, notes) = recorded_statuses(&deployments, t(2));
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    let (id, status) = &statuses[0];
    assert_eq!(id.to_string(), "ml/b");
    assert_eq!(status.phase, PhaseName::Progressing);
    assert_eq!(
        (status.step, status.steps, status.weight),
        (Some(1), 2, Some(10))
    );
    assert_eq!(status.seconds_left, Some(180));
    assert_eq!(status.peak_gpus, Some(8));
    assert_eq!(status.revision, "r2");
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].starts_with("ml/a: no modelship.dev/rollout-plan annotation yet"),
        "{notes:?}"
    );
    assert!(
        notes[1].starts_with("ml/c: rollout state annotation is unreadable"),
        "{notes:?}"
    );
}
