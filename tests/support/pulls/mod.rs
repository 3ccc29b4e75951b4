//! Helpers of the pull-request tests of the daemon: a bare "remote" whose main branch and
//! `refs/pull/<n>/head` hold whole trees, signed `pull_request` and `issue_comment`
//! deliveries, a daemon wired to the GitHub double, and the [`world::World`] of the
//! daemon's pull-request tests (a cluster, a remote, the double, a daemon).
pub mod world;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use modelship::daemon::{DaemonConfig, GitHubConfig};
use modelship::forge::{Credentials, RetryPolicy, Secret};

use crate::support::daemon::{SECRET, config, http};
use crate::support::forge::{Double, TOKEN};

pub const REPO: &str = "acme/models";

/// The author of the pull requests of [`pull_request`], and the sender of its deliveries
/// (the double grants her write permission in [`world::World::start`]).
pub const AUTHOR: &str = "alice";

/// A modelship.yaml with the default namespace `namespace`, a GPU catalog and `extra`
/// lines under spec.
pub fn modelship_yaml(namespace: &str, extra: &str) -> String {
    format!(
        "apiVersion: modelship.dev/v1alpha1\nkind: RepositoryConfig\nmetadata: {{name: t}}\nspec:\n  defaultNamespace: {namespace}\n  gpu:\n    catalog:\n      l4: {{product: NVIDIA-L4, memory: 24Gi, hourlyCost: 0.80}}\n{extra}"
    )
}

/// A GPU service of `namespace`.
pub fn gpu_service(namespace: &str, name: &str, tag: &str) -> String {
    format!(
        "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  model: {{name: {name}, version: \"1.0.0\"}}\n  runtime: {{image: \"registry.example.com/{name}:{tag}\"}}\n  resources: {{cpu: \"1\", memory: 1Gi}}\n  gpu: {{count: 1, type: l4}}\n"
    )
}

/// A scaled service (HPA and PDB on main) of `namespace`.
pub fn scaled_service(namespace: &str, name: &str, tag: &str) -> String {
    format!(
        "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  model: {{name: {name}, version: \"1.0.0\"}}\n  runtime: {{image: \"registry.example.com/{name}:{tag}\"}}\n  resources: {{cpu: \"1\", memory: 1Gi}}\n  autoscaling: {{minReplicas: 2, maxReplicas: 4, metrics: [{{cpu: 70}}]}}\n"
    )
}

/// A daemon configuration following `remote` with GitHub pointed at the double.
pub fn pulls_config(
    remote: &Path,
    cache: &Path,
    double: &Double,
    interval: Duration,
) -> DaemonConfig {
    let mut config = config(remote.display().to_string(), cache, interval);
    config.github = Some(GitHubConfig {
        api_url: double.url.clone(),
        credentials: Credentials::Token(Secret::new(TOKEN)),
        retry: RetryPolicy {
            base: Duration::from_millis(5),
            max: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        state_namespace: "modelship".into(),
        repository: REPO.parse().ok(),
    });
    config
}

/// A `pull_request` payload of a branch of [`REPO`] by [`AUTHOR`], sent by her.
pub fn pull_request(action: &str, number: u64, sha: &str, labels: &[&str]) -> Value {
    json!({
        "action": action,
        "number": number,
        "sender": {"login": AUTHOR},
        "pull_request": {
            "number": number,
            "user": {"login": AUTHOR},
            "head": {"sha": sha, "ref": "feature", "repo": {"full_name": REPO}},
            "base": {"ref": "main"},
            "labels": labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
            "merged": false,
            "merge_commit_sha": null,
        },
        "repository": {"full_name": REPO},
    })
}

/// An `issue_comment` payload on pull request `number`.
pub fn issue_comment(number: u64, user: &str, body: &str, id: u64) -> Value {
    json!({
        "action": "created",
        "issue": {"number": number, "pull_request": {"url": "x"}},
        "comment": {"id": id, "body": body, "user": {"login": user, "type": "User"}},
        "repository": {"full_name": REPO},
    })
}

/// Delivers `payload` as `event`, signed with `secret` (unsigned with `None`); returns
/// the HTTP status and body.
pub async fn deliver(
    addr: SocketAddr,
    event: &str,
    payload: &Value,
    secret: Option<&str>,
    delivery: &str,
) -> (u16, String) {
    let body = serde_json::to_vec(payload).unwrap();
    let mut headers = vec![
        ("x-github-event", event.to_string()),
        ("x-github-delivery", delivery.to_string()),
        ("content-type", "application/json".to_string()),
    ];
    if let Some(secret) = secret {
        headers.push((
            "x-hub-signature-256",
            modelship::source::webhook::sign(secret.as_bytes(), &body),
        ));
    }
    http(addr, "POST", "/hooks/github", &headers, &body).await
}

/// Delivers a signed event with the right secret and expects 202.
pub async fn deliver_ok(addr: SocketAddr, event: &str, payload: &Value, delivery: &str) {
    let (code, body) = deliver(addr, event, payload, Some(SECRET), delivery).await;
    assert_eq!(code, 202, "{body}");
}

/// The statuses of `sha` in the double, as (context, state).
pub fn statuses_of(double: &Double, sha: &str) -> Vec<(String, String)> {
    double
        .statuses()
        .into_iter()
        .filter(|s| s.sha == sha)
        .map(|s| (s.context, s.state))
        .collect()
}
