//! Shared pieces of the end-to-end rollout tests: a cluster (the sandbox, or the real
//! cluster of `MODELSHIP_TEST_KUBECONFIG`: [`on_each_cluster`]), a copy of example-repo in
//! the test's namespaces whose `prometheus.url` points at a real Prometheus scraping an
//! [`Exporter`] the test drives per track, the `modelship` binary with the test-only step
//! interval, and readers of the rollout state, the route weights and the Events.

use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DynamicObject, ListParams};
use modelship::rollout::{ANNOTATION_ROLLOUT, RolloutState};
use modelship::sandbox::Sandbox;

use crate::support::prometheus::{Exporter, PrometheusServer, Traffic, prometheus_binary};
use crate::support::target::{Kind, Target, on_each_kind};
use crate::support::{HasClient, STEP, binary, edit, http_route_resource, real};

/// The test-only step interval every rollout of these tests runs with.
pub const INTERVAL: &str = "4s";

/// Healthy traffic: 100 requests a second, none failing, 80 ms each.
pub const HEALTHY: Traffic = Traffic {
    ok: 100,
    errors: 0,
    latency: 0.08,
};

/// A broken model: half the requests fail, 800 ms each.
pub const BROKEN: Traffic = Traffic {
    ok: 50,
    errors: 50,
    latency: 0.8,
};

/// A cluster, a repository copy in its namespaces and a Prometheus scraping the exporter.
pub struct Env {
    pub cluster: Target,
    pub repo: tempfile::TempDir,
    pub exporter: Exporter,
    pub prometheus: PrometheusServer,
}

impl Env {
    /// The test's name of namespace `base` (prefixed on the real cluster).
    pub fn ns(&self, base: &str) -> String {
        self.cluster.ns(base)
    }

    /// `NAMESPACE/NAME` of service `name` of namespace `base`, as the commands take it.
    pub fn service(&self, base: &str, name: &str) -> String {
        format!("{}/{name}", self.ns(base))
    }
}

/// Runs `body` on the sandbox, then on the real cluster when the tier is enabled, each
/// with an [`Env`]; nothing (with the reason printed) when Prometheus is missing.
pub async fn on_each_cluster<F, Fut>(test: &str, body: F)
where
    F: Fn(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let body = &body;
    on_each_kind(test, |kind| async move {
        if let Some(env) = env(&kind).await {
            body(env).await;
        }
    })
    .await;
}

/// The environment on a cluster of `kind`, or `None` (with the reason printed) when
/// Prometheus is missing. The sandbox's controllers take 200 ms to act, so readiness is
/// waited for, as on a real cluster.
pub async fn env(kind: &Kind) -> Option<Env> {
    let binary = match prometheus_binary() {
        Ok(binary) => binary,
        Err(why) => {
            real::say(&format!("skipped: {why}"));
            return None;
        }
    };
    let cluster = match kind {
        Kind::Sandbox => Target::Sandbox(
            tokio::time::timeout(
                STEP,
                Sandbox::builder()
                    .controller_delay(Duration::from_millis(200))
                    .start(),
            )
            .await
            .expect("sandbox starts in time")
            .expect("sandbox starts"),
        ),
        Kind::Real { .. } => kind.start().await,
    };
    // image-classifier mounts a claim, which a real scheduler waits for.
    cluster.model_claim("genai").await;
    let exporter = Exporter::default();
    let target = exporter.serve().await;
    let prometheus = PrometheusServer::start(&binary, target).await;
    let repo = cluster.example_copy();
    edit(
        repo.path(),
        "modelship.yaml",
        "http://prometheus.monitoring.svc:9090",
        &prometheus.url,
    );
    Some(Env {
        cluster,
        repo,
        exporter,
        prometheus,
    })
}

/// The `modelship` binary with the test step interval, against the test's cluster.
pub fn command(env: &Env, args: &[&str]) -> tokio::process::Command {
    let mut command = binary::on_cluster(env.cluster.kubeconfig_path(), args);
    command.env("MODELSHIP_TEST_STEP_INTERVAL", INTERVAL);
    command
}

/// Runs the binary to its end (at most three minutes).
pub async fn modelship(env: &Env, args: &[&str]) -> Output {
    let out = tokio::time::timeout(Duration::from_secs(180), command(env, args).output())
        .await
        .expect("modelship finishes in time")
        .expect("the modelship binary runs");
    eprintln!(
        "$ modelship {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The arguments of `modelship apply DIR --create-namespaces --wait --timeout 3m`.
pub fn apply_wait_args(dir: &str) -> [&str; 6] {
    [
        "apply",
        dir,
        "--create-namespaces",
        "--wait",
        "--timeout",
        "3m",
    ]
}

/// `modelship apply DIR --create-namespaces --wait --timeout 3m`, run to its end.
pub async fn apply_wait(env: &Env) -> Output {
    let dir = env.repo.path().to_string_lossy().into_owned();
    modelship(env, &apply_wait_args(&dir)).await
}

/// `modelship apply DIR --create-namespaces` (one advance).
pub async fn apply_once(env: &Env) -> Output {
    let dir = env.repo.path().to_string_lossy().into_owned();
    modelship(env, &["apply", &dir, "--create-namespaces"]).await
}

/// `modelship rollout status [NS/NAME] -o json`, parsed: run outside any checkout (the
/// state and the plan come from the cluster).
pub async fn status_all_json(env: &Env, target: Option<&str>) -> serde_json::Value {
    let mut args = vec!["rollout", "status", "-o", "json"];
    args.extend(target);
    let mut command = command(env, &args);
    command.current_dir(std::env::temp_dir());
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("rollout status finishes in time")
        .expect("the modelship binary runs");
    assert!(
        out.status.success(),
        "rollout status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The `rollout` of `modelship rollout status NS/NAME -o json` of service `name` of
/// namespace `base`.
pub async fn status_json(env: &Env, namespace: &str, name: &str) -> serde_json::Value {
    let target = env.service(namespace, name);
    let shown = status_all_json(env, Some(&target)).await;
    assert_eq!(shown.as_array().map(Vec::len), Some(1), "{shown}");
    shown[0]["rollout"].clone()
}

pub async fn deployment(
    cluster: &impl HasClient,
    namespace: &str,
    name: &str,
) -> Option<Deployment> {
    let api: Api<Deployment> = Api::namespaced(cluster.client(), namespace);
    tokio::time::timeout(STEP, api.get_opt(name))
        .await
        .expect("in time")
        .expect("get")
}

/// The rollout state stored on the stable Deployment.
pub async fn state(cluster: &impl HasClient, namespace: &str, name: &str) -> Option<RolloutState> {
    let live = deployment(cluster, namespace, name).await?;
    let text = live.metadata.annotations?.get(ANNOTATION_ROLLOUT)?.clone();
    Some(RolloutState::from_json(&text).expect("a readable state"))
}

/// The value of the env var `name` of a Deployment's first container.
pub fn env_value(deployment: &Deployment, name: &str) -> String {
    let spec = deployment.spec.as_ref().expect("spec");
    let pod = spec.template.spec.as_ref().expect("pod spec");
    let env = pod.containers[0].env.as_ref().expect("env");
    let var = env.iter().find(|e| e.name == name).expect("the variable");
    var.value.clone().unwrap_or_default()
}

/// The MODEL_VERSION of the live Deployment `name`.
pub async fn model_version(cluster: &impl HasClient, namespace: &str, name: &str) -> String {
    let live = deployment(cluster, namespace, name)
        .await
        .expect("deployment");
    env_value(&live, "MODEL_VERSION")
}

/// The (stable, canary) weights of an HTTPRoute's first rule.
pub async fn route_weights(cluster: &impl HasClient, namespace: &str, name: &str) -> (i64, i64) {
    let resource = http_route_resource();
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(), namespace, &resource);
    let route = tokio::time::timeout(STEP, api.get(name))
        .await
        .expect("in time")
        .expect("route");
    let refs = route.data["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .expect("backendRefs")
        .clone();
    let weight = |suffix: &str| {
        refs.iter()
            .find(|b| b["name"].as_str().is_some_and(|n| n.ends_with(suffix)))
            .and_then(|b| b["weight"].as_i64())
            .expect("a weighted backend")
    };
    (weight("-stable"), weight("-canary"))
}

/// The reasons of the rollout Events (`Rollout*`) recorded on Deployment `name`, oldest
/// first (a real cluster's controllers record theirs on it too: ScalingReplicaSet, ...).
pub async fn event_reasons(cluster: &impl HasClient, namespace: &str, name: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(cluster.client(), namespace);
    let events = tokio::time::timeout(STEP, api.list(&ListParams::default()))
        .await
        .expect("in time")
        .expect("events");
    let mut ours: Vec<(String, String)> = events
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(name)
                && e.involved_object.kind.as_deref() == Some("Deployment")
                && e.reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with("Rollout"))
        })
        .map(|e| {
            (
                e.metadata.name.unwrap_or_default(),
                e.reason.unwrap_or_default(),
            )
        })
        .collect();
    ours.sort();
    ours.into_iter().map(|(_, reason)| reason).collect()
}
