//! Starting and stopping a sandbox: [`Sandbox`], [`SandboxBuilder`] and [`serve`].
//!
//! `start` binds a listener (127.0.0.1:0 by default, so parallel tests never collide),
//! builds the shared state, preloads the CRD fixtures, spawns the HTTP server and the
//! Deployment controller, and writes a kubeconfig into a temporary directory. The
//! [`Sandbox`] handle owns all of that: dropping it (or awaiting [`Sandbox::shutdown`])
//! stops the server and removes the kubeconfig.

use super::controller;
use super::counters::{Counters, RequestCounts};
use super::faults::Faults;
use super::ops::{Cluster, WriteCtx};
use super::server::{self, Shared};
use super::status::ApiError;
use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The CRDs preloaded by default: Gateway API HTTPRoute, Istio VirtualService and
/// DestinationRule, and the Prometheus Operator's PodMonitor (trimmed schemas that keep
/// unknown fields).
pub const CRD_FIXTURES: [&str; 4] = [
    include_str!("crds/httproutes.gateway.networking.k8s.io.yaml"),
    include_str!("crds/virtualservices.networking.istio.io.yaml"),
    include_str!("crds/destinationrules.networking.istio.io.yaml"),
    include_str!("crds/podmonitors.monitoring.coreos.com.yaml"),
];

/// Errors starting or running a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("sandbox server failed: {0}")]
    Serve(std::io::Error),
    /// The kubeconfig could not be written.
    #[error("cannot write kubeconfig {path}: {source}")]
    Kubeconfig {
        /// Where it was to be written.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A CRD fixture did not load (a bug in the fixtures).
    #[error("CRD fixture rejected: {0}")]
    Fixture(String),
    /// The kube client could not be built for the sandbox URL.
    #[error("cannot build a kube client for {url}: {message}")]
    Client {
        /// The sandbox URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}

impl SandboxError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            SandboxError::Bind { .. } => "sandbox_bind",
            SandboxError::Serve(_) => "sandbox_serve",
            SandboxError::Kubeconfig { .. } => "sandbox_kubeconfig",
            SandboxError::Fixture(_) => "sandbox_fixture",
            SandboxError::Client { .. } => "sandbox_client",
        }
    }
}

/// A spawned server: its state, its stop switch and its task.
type Running = (
    Arc<Shared>,
    watch::Sender<bool>,
    JoinHandle<Result<(), SandboxError>>,
);

/// Options for a sandbox; [`Sandbox::builder`] starts with the defaults.
#[derive(Debug, Clone)]
pub struct SandboxBuilder {
    addr: SocketAddr,
    controller_delay: Duration,
    watch_window: usize,
    preload_crds: bool,
    fault_seed: u64,
    bookmark_interval: Duration,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            controller_delay: Duration::from_millis(100),
            watch_window: 1000,
            preload_crds: true,
            fault_seed: 1,
            bookmark_interval: Duration::from_secs(1),
        }
    }
}

impl SandboxBuilder {
    /// Listen address (default `127.0.0.1:0`, a random free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// How long the simulated Deployment controller takes to converge status (100 ms).
    pub fn controller_delay(mut self, delay: Duration) -> Self {
        self.controller_delay = delay;
        self
    }

    /// How many events the watch history keeps (1000); older starting points get 410.
    pub fn watch_window(mut self, events: usize) -> Self {
        self.watch_window = events;
        self
    }

    /// Whether the Gateway API and Istio CRDs are preloaded (yes).
    pub fn preload_crds(mut self, preload: bool) -> Self {
        self.preload_crds = preload;
        self
    }

    /// Seed for generated names, uids and injected faults (1).
    pub fn fault_seed(mut self, seed: u64) -> Self {
        self.fault_seed = seed;
        self
    }

    /// Interval between BOOKMARK events on watches that allow them (1 s).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval.max(Duration::from_millis(10));
        self
    }

    fn cluster(&self) -> Result<Cluster, SandboxError> {
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let mut cluster = Cluster::new(self.watch_window, self.fault_seed, &now);
        if self.preload_crds {
            let rt = cluster
                .registry
                .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
                .cloned()
                .ok_or_else(|| SandboxError::Fixture("CRDs are not served".into()))?;
            let ctx = WriteCtx {
                dry_run: false,
                manager: "sandbox",
                now: &now,
            };
            for text in CRD_FIXTURES {
                let crd: serde_json::Value = serde_saphyr::from_str(text)
                    .map_err(|e| SandboxError::Fixture(e.to_string()))?;
                cluster
                    .create(&rt, None, crd, ctx)
                    .map_err(|e: ApiError| SandboxError::Fixture(e.to_string()))?;
            }
        }
        Ok(cluster)
    }

    /// Starts the sandbox and returns its handle.
    pub async fn start(self) -> Result<Sandbox, SandboxError> {
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: self.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: self.addr,
            source,
        })?;
        let (shared, stop_tx, server) = self.spawn(listener, addr)?;
        let url = format!("http://{addr}");
        let dir = tempfile::tempdir().map_err(|source| SandboxError::Kubeconfig {
            path: std::env::temp_dir(),
            source,
        })?;
        let kubeconfig_path = dir.path().join("kubeconfig");
        write_kubeconfig(&kubeconfig_path, &url)?;
        let client = client_for(&url)?;
        Ok(Sandbox {
            url,
            shared,
            stop: stop_tx,
            server,
            client,
            kubeconfig_path,
            _dir: dir,
        })
    }

    fn spawn(&self, listener: TcpListener, addr: SocketAddr) -> Result<Running, SandboxError> {
        let cluster = self.cluster()?;
        let rv = cluster.store.current_rv();
        let shared = Arc::new(Shared {
            cluster: Mutex::new(cluster),
            changes: watch::channel(rv).0,
            counters: Counters::default(),
            faults: Faults::new(self.fault_seed),
            server_address: addr.to_string(),
            bookmark_interval: self.bookmark_interval,
            held: Mutex::new(HashSet::new()),
        });
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let controller = tokio::spawn(controller::run(shared.clone(), self.controller_delay));
        let app = server::router(shared.clone());
        let faults = shared.faults.clone();
        let server = tokio::spawn(async move {
            let signal = async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
                // Open watches would keep graceful shutdown waiting forever: end them.
                faults.drop_watches();
            };
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await;
            controller.abort();
            result.map_err(SandboxError::Serve)
        });
        Ok((shared, stop_tx, server))
    }

    /// Runs a sandbox until `shutdown` completes, optionally writing a kubeconfig.
    pub async fn serve(
        self,
        kubeconfig_path: Option<&Path>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SandboxError> {
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: self.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: self.addr,
            source,
        })?;
        if let Some(path) = kubeconfig_path {
            write_kubeconfig(path, &format!("http://{addr}"))?;
        }
        tracing::info!(%addr, "sandbox API server listening");
        let (_shared, stop_tx, server) = self.spawn(listener, addr)?;
        shutdown.await;
        let _ = stop_tx.send(true);
        server
            .await
            .map_err(|e| SandboxError::Serve(std::io::Error::other(e)))?
    }
}

/// Runs a sandbox with default options on `listen` until `shutdown` completes (the
/// `modelship sandbox` command).
pub async fn serve(
    listen: SocketAddr,
    kubeconfig_path: Option<&Path>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SandboxError> {
    SandboxBuilder::default()
        .listen(listen)
        .serve(kubeconfig_path, shutdown)
        .await
}

/// The kubeconfig text pointing at `url`: one cluster, context and user, no credentials.
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: {url}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: sandbox\n    namespace: default\ncurrent-context: sandbox\nusers:\n- name: sandbox\n  user: {{}}\npreferences: {{}}\n"
    )
}

fn write_kubeconfig(path: &Path, url: &str) -> Result<(), SandboxError> {
    std::fs::write(path, kubeconfig(url)).map_err(|source| SandboxError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    })
}

fn client_for(url: &str) -> Result<kube::Client, SandboxError> {
    let err = |message: String| SandboxError::Client {
        url: url.to_string(),
        message,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| err(e.to_string()))?;
    kube::Client::try_from(kube::Config::new(uri)).map_err(|e| err(e.to_string()))
}

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    url: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<Result<(), SandboxError>>,
    client: kube::Client,
    kubeconfig_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("url", &self.url)
            .field("kubeconfig_path", &self.kubeconfig_path)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts a sandbox with default options.
    pub async fn start() -> Result<Self, SandboxError> {
        SandboxBuilder::default().start().await
    }

    /// Options for a sandbox.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kube client for this sandbox (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A kubeconfig file for this sandbox (removed when the sandbox stops).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// Requests counted so far per (verb, resource).
    pub fn requests(&self) -> RequestCounts {
        self.shared.counters.snapshot()
    }

    /// Every write request so far, in the order they arrived.
    pub fn writes(&self) -> Vec<super::counters::Write> {
        self.shared.counters.writes()
    }

    /// Forgets the requests counted and logged so far.
    pub fn reset_requests(&self) {
        self.shared.counters.reset();
    }

    /// The fault plan of this sandbox.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Keeps the named Deployment unready until [`Sandbox::release`].
    pub fn hold_unready(&self, namespace: &str, name: &str) {
        self.held()
            .insert((namespace.to_string(), name.to_string()));
        self.shared.poke();
    }

    /// Lets a held Deployment become ready.
    pub fn release(&self, namespace: &str, name: &str) {
        self.held()
            .remove(&(namespace.to_string(), name.to_string()));
        self.shared.poke();
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        self.shared
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The latest resourceVersion of the cluster.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().store.current_rv()
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) -> Result<(), SandboxError> {
        let _ = self.stop.send(true);
        let server = std::mem::replace(&mut self.server, tokio::spawn(async { Ok(()) }));
        server
            .await
            .map_err(|e| SandboxError::Serve(std::io::Error::other(e)))?
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // The server task shuts down gracefully in the background (connection tasks are
        // its children, so aborting it would leave them serving); open watches end now.
        let _ = self.stop.send(true);
        self.shared.faults.drop_watches();
    }
}
