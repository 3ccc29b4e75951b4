//! Shared pieces of the end-to-end rollout tests: a sandbox, a copy of example-repo whose
//! `prometheus.url` points at a real Prometheus scraping an [`Exporter`] the test drives
//! per track, the `modelship` binary with the test-only step interval, and readers of
//! the rollout state, the route weights and the Events in the sandbox.
#![allow(dead_code)]

use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DynamicObject, ListParams};
use modelship::rollout::{ANNOTATION_ROLLOUT, RolloutState};
use modelship::sandbox::Sandbox;

use crate::common::{STEP, edit, example_copy, http_route_resource};
use crate::prometheus_support::{Exporter, PrometheusServer, Traffic, prometheus_binary};

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

/// A sandbox, a repository copy and a Prometheus scraping the exporter.
pub struct Env {
    pub sandbox: Sandbox,
    pub repo: tempfile::TempDir,
    pub exporter: Exporter,
    pub prometheus: PrometheusServer,
}

/// The environment, or `None` (with the reason printed) when Prometheus is missing.
pub async fn env() -> Option<Env> {
    let binary = match prometheus_binary() {
        Ok(binary) => binary,
        Err(why) => {
            eprintln!("skipped: {why}");
            return None;
        }
    };
    let exporter = Exporter::default();
    let target = exporter.serve().await;
    let prometheus = PrometheusServer::start(&binary, target).await;
    let repo = example_copy();
    edit(
        repo.path(),
        "modelship.yaml",
        "http://prometheus.monitoring.svc:9090",
        &prometheus.url,
    );
    let sandbox = tokio::time::timeout(
        STEP,
        Sandbox::builder()
            .controller_delay(Duration::from_millis(200))
            .start(),
    )
    .await
    .expect("sandbox starts in time")
    .expect("sandbox starts");
    Some(Env {
        sandbox,
        repo,
        exporter,
        prometheus,
    })
}

/// The `modelship` binary with the test step interval, against the sandbox.
pub fn command(env: &Env, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_modelship"));
    command
        .args(args)
        .arg("--kubeconfig")
        .arg(env.sandbox.kubeconfig_path())
        .env("NO_COLOR", "1")
        .env("MODELSHIP_TEST_STEP_INTERVAL", INTERVAL)
        .env_remove("MODELSHIP_LOG")
        .env_remove("RUST_LOG")
        .kill_on_drop(true);
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

/// `modelship apply DIR --create-namespaces --wait --timeout 3m`.
pub async fn apply_wait(env: &Env) -> Output {
    let dir = env.repo.path().to_string_lossy().into_owned();
    modelship(
        env,
        &[
            "apply",
            &dir,
            "--create-namespaces",
            "--wait",
            "--timeout",
            "3m",
        ],
    )
    .await
}

/// `modelship apply DIR --create-namespaces` (one advance).
pub async fn apply_once(env: &Env) -> Output {
    let dir = env.repo.path().to_string_lossy().into_owned();
    modelship(env, &["apply", &dir, "--create-namespaces"]).await
}

/// `modelship rollout status NS/NAME --dir DIR -o json`, parsed.
pub async fn status_json(env: &Env, namespace: &str, name: &str) -> serde_json::Value {
    let dir = env.repo.path().to_string_lossy().into_owned();
    let target = format!("{namespace}/{name}");
    let out = modelship(
        env,
        &["rollout", "status", &target, "--dir", &dir, "-o", "json"],
    )
    .await;
    assert!(out.status.success(), "rollout status failed");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    shown[0]["rollout"].clone()
}

pub async fn deployment(sandbox: &Sandbox, namespace: &str, name: &str) -> Option<Deployment> {
    let api: Api<Deployment> = Api::namespaced(sandbox.client(), namespace);
    tokio::time::timeout(STEP, api.get_opt(name))
        .await
        .expect("in time")
        .expect("get")
}

/// The rollout state stored on the stable Deployment.
pub async fn state(sandbox: &Sandbox, namespace: &str, name: &str) -> Option<RolloutState> {
    let live = deployment(sandbox, namespace, name).await?;
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
pub async fn model_version(sandbox: &Sandbox, namespace: &str, name: &str) -> String {
    let live = deployment(sandbox, namespace, name)
        .await
        .expect("deployment");
    env_value(&live, "MODEL_VERSION")
}

/// The (stable, canary) weights of an HTTPRoute's first rule.
pub async fn route_weights(sandbox: &Sandbox, namespace: &str, name: &str) -> (i64, i64) {
    let resource = http_route_resource();
    let api: Api<DynamicObject> = Api::namespaced_with(sandbox.client(), namespace, &resource);
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

/// The reasons of the Events recorded on Deployment `name`, oldest first.
pub async fn event_reasons(sandbox: &Sandbox, namespace: &str, name: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(sandbox.client(), namespace);
    let events = tokio::time::timeout(STEP, api.list(&ListParams::default()))
        .await
        .expect("in time")
        .expect("events");
    let mut ours: Vec<(String, String)> = events
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
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
