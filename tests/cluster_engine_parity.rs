//! One behaviour suite, two entry points: every scenario starts two sandboxes from the same
//! live state (the example repository applied), then reconciles the same new repository
//! through `modelship apply --prune` (the engine driven once) on one and through the daemon
//! (the engine driven by its loop over a watch cache, a directory source) on the other. The
//! decisions must be the same: which objects are written and deleted, in which order within
//! each service, what is pruned or kept by the guard, what a policy denies with the live
//! object as `oldObject`, and the live objects left at the end. A decision that differs
//! between the two fails the test.
//!
//! Every scenario runs on sandboxes, then, when `MODELSHIP_TEST_KUBECONFIG` is set, on the
//! real cluster (`support::target`): there each entry point starts from namespaces of its
//! own, its writes are those its client sent, and namespaces are compared by their base
//! name.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use modelship::cluster::{Kinds, WriteMode};
use modelship::daemon::{Backoff, DaemonConfig, DriftMode};
use modelship::engine::Strategy;
use modelship::engine::rollout::PrometheusAnalyst;
use modelship::plan::{LiveState, PruneMode};
use modelship::sandbox::{Verb, Write};
use modelship::source::{LocalSource, Source};
use serde_json::json;
use support::daemon::Running;
use support::eventually;
use support::target::{Kind, Target, on_each_kind};
use support::{STEP, apply_with_rollouts, edit, example_copy, load_repo};

/// What one entry point decided.
#[derive(Debug, PartialEq)]
struct Decisions {
    /// Writes per object, in the order they arrived (namespace creation included).
    writes: Vec<(Verb, String, String, String)>,
    /// The live objects of ours at the end: (kind resource, namespace, name) -> spec.
    live: BTreeMap<(String, String, String), serde_json::Value>,
    /// True when the mass-prune guard refused.
    guarded: bool,
}

impl Decisions {
    /// The writes of each object's service, in order; the services' interleaving may differ
    /// (the daemon runs reconciles concurrently), the order within a service may not.
    fn per_service(&self) -> BTreeMap<String, Vec<(Verb, String, String)>> {
        let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for (verb, resource, namespace, name) in &self.writes {
            let service = name
                .strip_suffix("-stable")
                .or_else(|| name.strip_suffix("-canary"))
                .unwrap_or(name);
            // Namespaces are created by POST, which names no object in its path.
            let key = if resource == "namespaces" {
                "namespaces".to_string()
            } else {
                format!("{namespace}/{service}")
            };
            out.entry(key)
                .or_default()
                .push((*verb, resource.clone(), name.clone()));
        }
        out
    }
}

fn writes(cluster: &Target) -> Vec<(Verb, String, String, String)> {
    cluster
        .writes()
        .into_iter()
        // The simulated Deployment controller writes status; that is not ours.
        .filter(|w: &Write| !w.resource.ends_with("/status"))
        .map(|w| {
            let namespace = cluster.base_ns(&w.namespace).to_string();
            (w.verb, w.resource, namespace, w.name)
        })
        .collect()
}

/// True when a HorizontalPodAutoscaler of ours targets the Deployment `key`.
fn autoscaled(set: &modelship::state::LiveSet, key: &modelship::meta::ObjectKey) -> bool {
    let hpa = modelship::meta::ObjectKey::new(
        "autoscaling",
        "HorizontalPodAutoscaler",
        &key.namespace,
        &key.name,
    );
    set.get(&hpa).is_some()
}

/// Every live object labelled managed-by=modelship, by (kind, namespace, name), with the
/// part modelship decides (spec without server-allocated addresses, labels, annotations
/// other than the source).
async fn live(cluster: &Target) -> BTreeMap<(String, String, String), serde_json::Value> {
    let client = cluster.client();
    let mut kinds = Kinds::new(client.clone(), support::fast_retry());
    let desired = modelship::plan::DesiredState::default();
    let set = tokio::time::timeout(
        STEP,
        modelship::cluster::read_live(
            &client,
            &mut kinds,
            &desired,
            &support::fast_retry(),
            &Default::default(),
        ),
    )
    .await
    .expect("live read in time")
    .expect("live read");
    let mut out = BTreeMap::new();
    for id in set.services() {
        for key in set.owned_by_service(&id) {
            let Some(object) = set.get(key) else { continue };
            let mut spec = object["spec"].clone();
            if let Some(spec) = spec.as_object_mut() {
                // Allocated by the server in request order, which concurrency changes.
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
                // On a real cluster the HPA controller owns the replicas of an autoscaled
                // Deployment and sets them when it gets to it (1 until then, minReplicas
                // after): not modelship's decision.
                if cluster.is_real() && key.kind == "Deployment" && autoscaled(&set, key) {
                    spec.remove("replicas");
                }
            }
            let mut decided = json!({
                "labels": object["metadata"]["labels"],
                "spec": spec,
            });
            if let Some(annotations) = object["metadata"]["annotations"].as_object() {
                let mut annotations = annotations.clone();
                annotations.remove("modelship.dev/source");
                // Written by a real Deployment controller, when it gets to it: not ours.
                annotations.remove("deployment.kubernetes.io/revision");
                decided["annotations"] = json!(annotations);
            }
            out.insert(
                (
                    key.kind.clone(),
                    cluster.base_ns(&key.namespace).to_string(),
                    key.name.clone(),
                ),
                decided,
            );
        }
    }
    out
}

/// A cluster of `kind` holding `before` applied (the same live state for both entry
/// points), with its request log cleared.
async fn start_from(kind: &Kind, before: &Path) -> Target {
    let cluster = kind.start().await;
    let before = cluster.copy_of(before);
    apply_with_rollouts(&cluster, before.path()).await;
    cluster.reset_requests();
    cluster
}

/// `modelship apply --prune --create-namespaces` of `after`, through the engine.
async fn via_cli(kind: &Kind, before: &Path, after: &Path, setup: &Setup) -> Decisions {
    let sandbox = start_from(kind, before).await;
    setup(&sandbox).await;
    sandbox.reset_requests();
    let after = sandbox.copy_of(after);
    let revision = load_repo(after.path());
    let set = support::read_live(&sandbox, &revision).await;
    let strategy = Strategy {
        prune: PruneMode::Guarded,
        create_namespaces: true,
    };
    let writer = support::writer(&sandbox, WriteMode::Persist);
    let analyst = PrometheusAnalyst::default();
    let run = support::run(&revision, &analyst);
    let (_, result) = tokio::time::timeout(STEP, run.apply_all(&set, &writer, strategy))
        .await
        .expect("apply in time");
    let guarded = match result {
        Ok(report) => {
            assert!(report.failures.is_empty(), "{:?}", report.failures);
            false
        }
        Err(_) => {
            // The guard refused pruning (and `apply` wrote nothing); the present services
            // are still reconciled, as the daemon does, by an apply without prune.
            let keep = Strategy {
                prune: PruneMode::Keep,
                ..strategy
            };
            let (_, report) = run.apply_all(&set, &writer, keep).await;
            let report = report.expect("apply without prune");
            assert!(report.failures.is_empty(), "{:?}", report.failures);
            true
        }
    };
    Decisions {
        writes: writes(&sandbox),
        live: live(&sandbox).await,
        guarded,
    }
}

/// The daemon following the directory `after`, until every service is reconciled.
async fn via_daemon(kind: &Kind, before: &Path, after: &Path, setup: &Setup) -> Decisions {
    let sandbox = start_from(kind, before).await;
    setup(&sandbox).await;
    sandbox.reset_requests();
    let after = sandbox.copy_of(after);
    let config = DaemonConfig {
        source: Source::Local(LocalSource::new(after.path())),
        repo_name: None,
        branch: "main".into(),
        interval: std::time::Duration::from_secs(3600),
        listen: "127.0.0.1:0".parse().expect("address"),
        webhook_secret: None,
        drift: DriftMode::Heal,
        create_namespaces: true,
        namespaces: modelship::cluster::Namespaces::All,
        prune: PruneMode::Guarded,
        concurrency: 4,
        backoff: Backoff::default(),
        election: None,
        pod: None,
        github: None,
        rollout: Default::default(),
        instance: Default::default(),
        prometheus_auth: Default::default(),
    };
    let daemon = Running::start(config, sandbox.client()).await;
    daemon.wait_ready().await;
    let board = daemon.handles.board.clone();
    let guarded = eventually("every service reconciled", || {
        let board = board.clone();
        async move {
            let board = board.read().await;
            let settled = board.services.values().all(|s| s.state() != "pending");
            settled.then(|| board.mass_prune.is_some())
        }
    })
    .await;
    if guarded {
        let metrics = daemon.handles.metrics.encode();
        assert!(
            metrics.contains("modelship_errors_total{cause=\"mass_prune\"}"),
            "{metrics}"
        );
    }
    daemon.stop().await;
    Decisions {
        writes: writes(&sandbox),
        live: live(&sandbox).await,
        guarded,
    }
}

/// A change made to the live state before the new repository is reconciled.
type Setup = dyn Fn(&Target) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>;

fn no_setup(_: &Target) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
    Box::pin(async {})
}

/// Runs both entry points from `before` to `after` and asserts they decided alike;
/// returns the decisions for the scenario's own checks.
async fn both(kind: &Kind, before: &Path, after: &Path, setup: &Setup) -> Decisions {
    // The same namespace names for both (spec hashes cover the namespace).
    let kind = kind.same_namespaces();
    let cli = via_cli(&kind, before, after, setup).await;
    let daemon = via_daemon(&kind, before, after, setup).await;
    assert_eq!(
        cli.per_service(),
        daemon.per_service(),
        "writes differ between the CLI and the daemon"
    );
    assert_eq!(
        cli.live.keys().collect::<Vec<_>>(),
        daemon.live.keys().collect::<Vec<_>>(),
        "live objects differ"
    );
    let differing: Vec<String> = cli
        .live
        .iter()
        .filter(|(key, value)| daemon.live.get(*key) != Some(value))
        .map(|(key, value)| {
            let theirs = &daemon.live[key];
            let at = first_difference(value, theirs, String::new()).unwrap_or_default();
            format!("{key:?} first differs at {at}:\n cli:    {value}\n daemon: {theirs}")
        })
        .collect();
    assert!(
        differing.is_empty(),
        "live objects' content differs:\n{}",
        differing.join("\n")
    );
    assert_eq!(
        cli.guarded, daemon.guarded,
        "the prune guard decided differently"
    );
    cli
}

/// The JSON path of the first place where `a` and `b` differ, with both values there.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (l, r) = (&x.get(k), &y.get(k));
                match (l, r) {
                    (Some(l), Some(r)) => first_difference(l, r, format!("{at}.{k}")),
                    _ => Some(format!("{at}.{k}: {l:?} / {r:?}")),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(l, r, format!("{at}[{i}]"))),
        _ => (a != b).then(|| format!("{at}: {a} / {b}")),
    }
}

/// A new image of fraud-detection: one Deployment to update.
fn bump_fraud_detection(dir: &Path) {
    edit(
        dir,
        "services/risk/fraud-detection.yaml",
        "xgboost-server:2.1.0",
        "xgboost-server:2.1.1",
    );
}

fn deleted(decisions: &Decisions) -> BTreeSet<(String, String)> {
    decisions
        .writes
        .iter()
        .filter(|(verb, ..)| *verb == Verb::Delete)
        .map(|(_, resource, ns, name)| (resource.clone(), format!("{ns}/{name}")))
        .collect()
}

#[tokio::test]
async fn an_unchanged_repository_writes_nothing_in_either() {
    on_each_kind(
        "an_unchanged_repository_writes_nothing_in_either",
        an_unchanged_repository_writes_nothing_in_either_on,
    )
    .await;
}

async fn an_unchanged_repository_writes_nothing_in_either_on(kind: Kind) {
    let before = example_copy();
    let decisions = both(&kind, before.path(), before.path(), &no_setup).await;
    assert!(decisions.writes.is_empty(), "{:?}", decisions.writes);
}

#[tokio::test]
async fn a_vanished_team_folder_is_kept_by_the_guard_in_both() {
    on_each_kind(
        "a_vanished_team_folder_is_kept_by_the_guard_in_both",
        a_vanished_team_folder_is_kept_by_the_guard_in_both_on,
    )
    .await;
}

async fn a_vanished_team_folder_is_kept_by_the_guard_in_both_on(kind: Kind) {
    let before = example_copy();
    let after = example_copy();
    std::fs::remove_dir_all(after.path().join("services/genai")).expect("rm");
    let decisions = both(&kind, before.path(), after.path(), &no_setup).await;
    assert!(decisions.guarded);
    assert!(deleted(&decisions).is_empty());
    assert!(decisions.live.keys().any(|(_, ns, _)| ns == "genai"));
}

#[tokio::test]
async fn a_policy_with_the_live_object_denies_alike() {
    on_each_kind(
        "a_policy_with_the_live_object_denies_alike",
        a_policy_with_the_live_object_denies_alike_on,
    )
    .await;
}

async fn a_policy_with_the_live_object_denies_alike_on(kind: Kind) {
    // gpu-increase-limit compares with the live Deployment: 1 -> 4 GPUs per pod is denied.
    let before = example_copy();
    let after = example_copy();
    edit(
        after.path(),
        "services/genai/image-classifier.yaml",
        "count: 1",
        "count: 4",
    );
    bump_fraud_detection(after.path());
    let decisions = both(&kind, before.path(), after.path(), &no_setup).await;
    let written: BTreeSet<String> = decisions
        .writes
        .iter()
        .map(|(_, r, ns, n)| format!("{r} {ns}/{n}"))
        .collect();
    assert_eq!(
        written,
        BTreeSet::from(["deployments risk-prod/fraud-detection".to_string()])
    );
    // And the plan says why, in the CLI's words.
    let sandbox = start_from(&kind, before.path()).await;
    let after = sandbox.copy_of(after.path());
    let prepared = load_repo(after.path());
    let set = support::read_live(&sandbox, &prepared).await;
    let plan = support::plan_with_rollouts(&prepared, &set).await;
    let denied: Vec<&str> = plan.denied().map(|s| s.id.name()).collect();
    assert_eq!(denied, ["image-classifier"]);
}

fn drift(cluster: &Target) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
    Box::pin(async move {
        let api: Api<Deployment> = Api::namespaced(cluster.client(), &cluster.ns("risk-prod"));
        let patch = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "spec": {"template": {"spec": {"containers": [
                {"name": "server", "image": "registry.example.com/risk/xgboost-server:9.9.9"}]}}}});
        tokio::time::timeout(
            STEP,
            api.patch(
                "fraud-detection",
                &PatchParams::apply("someone-else").force(),
                &Patch::Apply(&patch),
            ),
        )
        .await
        .expect("patch in time")
        .expect("drift applied");
    })
}

#[tokio::test]
async fn drift_is_healed_alike() {
    on_each_kind("drift_is_healed_alike", drift_is_healed_alike_on).await;
}

async fn drift_is_healed_alike_on(kind: Kind) {
    let before = example_copy();
    let decisions = both(&kind, before.path(), before.path(), &drift).await;
    let written: Vec<_> = decisions
        .writes
        .iter()
        .map(|(v, r, ns, n)| format!("{v} {r} {ns}/{n}"))
        .collect();
    assert_eq!(written, ["apply deployments risk-prod/fraud-detection"]);
    let image = &decisions.live[&(
        "Deployment".to_string(),
        "risk-prod".to_string(),
        "fraud-detection".to_string(),
    )]["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(image, "registry.example.com/risk/xgboost-server:2.1.0");
}
