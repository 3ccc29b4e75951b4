//! Helpers of the daemon integration tests: a bare Git "remote" written with git2, specs,
//! a daemon started on loopback against a cluster, and a minimal HTTP client. The specs
//! and the Deployments they compile to are in namespace [`NS`] (`ml`), or, through a
//! [`Place`], in a namespace of the test's own (a real cluster is shared).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::{Oid, Repository, Signature};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use modelship::daemon::{self, Backoff, DaemonConfig, DriftMode, Election, Handles};
use modelship::source::{GitAuth, GitConfig, GitSource, Secret, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::support::poll::{LIMIT, eventually_within};

/// The secret webhooks are signed with.
pub const SECRET: &str = "webhook-secret-of-the-tests";

/// The namespace of the services of [`service`] and [`files`].
pub const NS: &str = "ml";

/// A ModelService document in namespace [`NS`].
pub fn service(name: &str, image_tag: &str) -> String {
    service_in(NS, name, image_tag)
}

/// A ModelService document in `namespace`.
pub fn service_in(namespace: &str, name: &str, image_tag: &str) -> String {
    format!(
        "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  model: {{name: {name}, version: \"1.0.0\"}}\n  runtime: {{image: \"registry.example.com/{name}:{image_tag}\"}}\n  resources: {{cpu: \"1\", memory: 1Gi}}\n"
    )
}

/// Where a test's services live: a namespace of a cluster, and how long to wait there.
pub struct Place {
    pub client: kube::Client,
    pub namespace: String,
    pub patience: Duration,
}

impl Place {
    /// Namespace [`NS`] of the cluster of `client`, waited on for [`LIMIT`].
    pub fn ml(client: kube::Client) -> Self {
        Place {
            client,
            namespace: NS.to_string(),
            patience: LIMIT,
        }
    }

    /// Files of a repository with the given services at the given tags, here.
    pub fn files(&self, services: &[(&str, &str)]) -> Vec<(String, String)> {
        files_in(&self.namespace, services)
    }

    /// The key of service `name` on `/status` (`namespace/name`).
    pub fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.namespace)
    }

    /// The image of Deployment `name` here, if it exists.
    pub async fn image(&self, name: &str) -> Option<String> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let deploy = tokio::time::timeout(LIMIT, api.get_opt(name))
            .await
            .ok()?
            .ok()??;
        deploy
            .spec?
            .template
            .spec?
            .containers
            .first()?
            .image
            .clone()
    }

    /// Waits until Deployment `name` here runs `tag`.
    pub async fn wait_image(&self, name: &str, tag: &str) {
        let want = format!("registry.example.com/{name}:{tag}");
        eventually_within(self.patience, &format!("{name} at {tag}"), || {
            let want = want.clone();
            async move { (self.image(name).await.as_deref() == Some(want.as_str())).then_some(()) }
        })
        .await;
    }

    /// Polls `check` until it returns `Some`, for as long as this place is waited on.
    pub async fn eventually<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        eventually_within(self.patience, what, check).await
    }
}

/// A bare repository standing for the remote.
pub struct Remote {
    pub dir: tempfile::TempDir,
}

impl Remote {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Repository::init_bare(dir.path()).unwrap();
        Remote { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Commits exactly `files` on main (flat paths below `services/`).
    pub fn commit(&self, files: &[(String, String)]) -> Oid {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(name, content)| (format!("services/{name}"), content.clone()))
            .collect();
        let files: Vec<(&str, String)> =
            files.iter().map(|(p, c)| (p.as_str(), c.clone())).collect();
        commit_to(self.dir.path(), "refs/heads/main", &files)
    }
}

/// Writes a tree of `files` (paths with `/`) into `repo`.
fn tree(repo: &Repository, files: &BTreeMap<String, String>) -> Oid {
    let mut here = repo.treebuilder(None).unwrap();
    let mut below: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (path, content) in files {
        match path.split_once('/') {
            Some((dir, rest)) => {
                below
                    .entry(dir.to_string())
                    .or_default()
                    .insert(rest.to_string(), content.clone());
            }
            None => {
                let blob = repo.blob(content.as_bytes()).unwrap();
                here.insert(path, blob, 0o100644).unwrap();
            }
        }
    }
    for (dir, files) in below {
        let sub = tree(repo, &files);
        here.insert(&dir, sub, 0o040000).unwrap();
    }
    here.write().unwrap()
}

/// Commits exactly `files` on `reference` of the bare repository at `path`, on top of
/// `parent` (default: the reference's current commit).
pub fn commit_to(path: &Path, reference: &str, files: &[(&str, String)]) -> Oid {
    let repo = Repository::open_bare(path).unwrap();
    let files: BTreeMap<String, String> = files
        .iter()
        .map(|(p, c)| (p.to_string(), c.clone()))
        .collect();
    let tree = repo.find_tree(tree(&repo, &files)).unwrap();
    let signature = Signature::now("test", "test@example.com").unwrap();
    let parent = repo
        .refname_to_id(reference)
        .or_else(|_| repo.refname_to_id("refs/heads/main"))
        .ok()
        .map(|id| repo.find_commit(id).unwrap());
    let parents: Vec<_> = parent.iter().collect();
    repo.commit(
        Some(reference),
        &signature,
        &signature,
        "change",
        &tree,
        &parents,
    )
    .unwrap()
}

/// A configuration following `url` on main, listening on a random loopback port.
pub fn config(url: String, cache: &std::path::Path, interval: Duration) -> DaemonConfig {
    DaemonConfig {
        source: Source::Git(GitSource::new(GitConfig {
            url,
            branch: "main".into(),
            path: ".".into(),
            cache_dir: cache.to_path_buf(),
            auth: GitAuth::Anonymous,
            ca_file: None,
        })),
        repo_name: Some("test/models".into()),
        branch: "main".into(),
        interval,
        listen: "127.0.0.1:0".parse().unwrap(),
        webhook_secret: Some(Secret::new(SECRET)),
        drift: DriftMode::Heal,
        create_namespaces: true,
        namespaces: modelship::cluster::Namespaces::All,
        prune: modelship::plan::PruneMode::Guarded,
        concurrency: 4,
        backoff: Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(500),
        },
        election: None,
        pod: None,
        github: None,
        rollout: Default::default(),
        instance: Default::default(),
        prometheus_auth: Default::default(),
    }
}

/// An election config for replica `identity`, with its Lease in `default`.
pub fn election(identity: &str) -> Election {
    election_in("default", identity)
}

/// An election config for replica `identity`, with its Lease in `namespace`.
pub fn election_in(namespace: &str, identity: &str) -> Election {
    Election {
        namespace: namespace.into(),
        lease_name: "modelship".into(),
        identity: identity.into(),
        duration_seconds: 3,
    }
}

/// A daemon running in the background.
pub struct Running {
    pub handles: Handles,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), daemon::DaemonError>>,
}

impl Running {
    pub async fn start(config: DaemonConfig, client: kube::Client) -> Self {
        let (stop, shutdown) = watch::channel(false);
        let (started_tx, started_rx) = oneshot::channel();
        let task = tokio::spawn(daemon::run(config, client, shutdown, Some(started_tx)));
        let handles = tokio::time::timeout(LIMIT, started_rx)
            .await
            .expect("daemon started in time")
            .expect("daemon reported its handles");
        Running {
            handles,
            stop,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.handles.addr
    }

    pub async fn wait_ready(&self) {
        self.wait_ready_within(LIMIT).await;
    }

    /// Waits until the daemon is ready (its first sync done), for at most `limit`.
    pub async fn wait_ready_within(&self, limit: Duration) {
        let board = self.handles.board.clone();
        eventually_within(limit, "daemon ready", || {
            let board = board.clone();
            async move { board.read().await.ready.then_some(()) }
        })
        .await;
    }

    /// Stops gracefully and waits for the end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(LIMIT, self.task)
            .await
            .expect("daemon stopped in time")
            .expect("daemon task joined")
            .expect("daemon ended without error");
    }
}

/// The image of Deployment ml/`name`, if it exists.
pub async fn image(client: &kube::Client, name: &str) -> Option<String> {
    Place::ml(client.clone()).image(name).await
}

/// Waits until Deployment ml/`name` runs `tag`.
pub async fn wait_image(client: &kube::Client, name: &str, tag: &str) {
    Place::ml(client.clone()).wait_image(name, tag).await;
}

/// A plain HTTP/1.1 request; returns (status, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Delivers a push webhook for main, signed with `secret`.
pub async fn push_webhook(addr: SocketAddr, secret: &str) -> u16 {
    // The repository the pull-request tests follow (`support::pulls::REPO`): a daemon
    // that knows its repository refuses pushes about another.
    let body =
        br#"{"ref":"refs/heads/main","after":"0000","repository":{"full_name":"acme/models"}}"#;
    let signature = modelship::source::webhook::sign(secret.as_bytes(), body);
    let headers = [
        ("x-github-event", "push".to_string()),
        ("x-hub-signature-256", signature),
        ("content-type", "application/json".to_string()),
    ];
    http(addr, "POST", "/hooks/github", &headers, body).await.0
}

/// The /status document.
pub async fn status(addr: SocketAddr) -> serde_json::Value {
    let (code, body) = http(addr, "GET", "/status", &[], b"").await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The /metrics text.
pub async fn metrics(addr: SocketAddr) -> String {
    http(addr, "GET", "/metrics", &[], b"").await.1
}

/// Files of a repository with the given services at the given tags, in [`NS`].
pub fn files(services: &[(&str, &str)]) -> Vec<(String, String)> {
    files_in(NS, services)
}

/// Files of a repository with the given services at the given tags, in `namespace`.
pub fn files_in(namespace: &str, services: &[(&str, &str)]) -> Vec<(String, String)> {
    services
        .iter()
        .map(|(name, tag)| (format!("{name}.yaml"), service_in(namespace, name, tag)))
        .collect()
}
