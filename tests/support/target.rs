//! One test body, two clusters: [`on_each_target`] runs a test on the sandbox, then, when
//! `MODELSHIP_TEST_KUBECONFIG` names a cluster, on that real cluster, through the same
//! [`Target`] interface. The sandbox is fast and always there; the real API server is the
//! judge (DESIGN.md, testing tiers).
//!
//! ```text
//!  #[tokio::test] fn x() ── on_each_target("x", x_on) ──> x_on(Target::Sandbox)
//!                                                    └──> x_on(Target::Real)   (when set)
//! ```
//!
//! On the real cluster:
//! - **Namespaces of its own.** Every namespace a test names goes through
//!   [`Target::ns`], which prefixes it with a fresh `t<hex>-` (identity on the sandbox), and
//!   [`Target::example_copy`] / [`Target::example_repo`] rename example-repo's namespaces
//!   the same way. When the target drops, pass or fail, every namespace with its prefix is
//!   deleted.
//! - **One test at a time.** modelship owns every object labelled
//!   `app.kubernetes.io/managed-by: modelship` in a cluster (a plan shows the services of
//!   other tests as services to prune), so real targets are taken one after the other (a
//!   process-wide lock), and each first waits until no such object is left from an
//!   earlier test (namespaces still being deleted, or another test binary).
//! - **Requests counted by the client.** The sandbox counts the requests it serves; a real
//!   API server does not tell, so the real target's [`Target::client`] records every
//!   resource request it sends, classified as the sandbox classifies them, and
//!   [`Target::requests`] / [`Target::writes`] answer from that record. Requests of other
//!   clients (kubectl, the CLI run with a kubeconfig) are not in it.
//!
//! Tests that are about the sandbox's own hooks (fault injection, holding a Deployment
//! unready, a sandbox without CRDs) stay on the sandbox and call [`sandbox_only`], which
//! says on stderr, when the real tier is enabled, why they are not run there.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use http::header::CONTENT_TYPE;
use modelship::sandbox::counters::Counters;
use modelship::sandbox::path::{self, Route};
use modelship::sandbox::{RequestCounts, Sandbox, Verb, Write};

use super::real;

/// The longest a real target waits for the objects of earlier tests to go.
const ALONE_LIMIT: Duration = Duration::from_secs(240);

/// Real targets, one at a time in a process.
static REAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `body` on the sandbox, then on the real cluster when the tier is enabled.
pub async fn on_each_target<F, Fut>(test: &str, body: F)
where
    F: Fn(Target) -> Fut,
    Fut: Future<Output = ()>,
{
    let body = &body;
    on_each_kind(test, |kind| async move { body(kind.start().await).await }).await;
}

/// Runs `body` once per kind of cluster, for tests that start several clusters of a kind
/// (each [`Kind::start`] on the real cluster waits until the one before is cleaned up).
pub async fn on_each_kind<F, Fut>(test: &str, body: F)
where
    F: Fn(Kind) -> Fut,
    Fut: Future<Output = ()>,
{
    for kind in kinds(test) {
        eprintln!("{test}: on the {kind}");
        body(kind).await;
    }
}

/// The sandbox, and the real cluster when the tier is enabled (else a note, once per
/// test binary, that it is not).
fn kinds(test: &str) -> Vec<Kind> {
    let Some(kubeconfig) = real::kubeconfig() else {
        static SAID: OnceLock<()> = OnceLock::new();
        if SAID.set(()).is_ok() {
            real::say(&format!(
                "{test} and the other sandbox tests of this binary ran on the sandbox only: \
                 {} is not set (`scripts/control-plane up DIR` starts a real control plane; \
                 see the README)",
                real::ENV
            ));
        }
        return vec![Kind::Sandbox];
    };
    vec![
        Kind::Sandbox,
        Kind::Real {
            kubeconfig,
            prefix: None,
        },
    ]
}

/// A kind of cluster to start targets of.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A fresh sandbox per target.
    Sandbox,
    /// The real cluster of this kubeconfig, with a fresh namespace prefix per target, or
    /// with this one for every target (see [`Kind::same_namespaces`]).
    Real {
        kubeconfig: PathBuf,
        prefix: Option<String>,
    },
}

impl Kind {
    /// This kind, with targets whose namespaces have the same names (each real target
    /// then first waits until the namespaces of the one before are gone), for tests that
    /// compare what two targets hold, names and spec hashes included.
    pub fn same_namespaces(&self) -> Kind {
        match self {
            Kind::Sandbox => Kind::Sandbox,
            Kind::Real { kubeconfig, .. } => Kind::Real {
                kubeconfig: kubeconfig.clone(),
                prefix: Some(unique_prefix()),
            },
        }
    }

    /// A target of this kind.
    pub async fn start(&self) -> Target {
        match self {
            Kind::Sandbox => Target::sandbox().await,
            Kind::Real { kubeconfig, prefix } => Target::real(kubeconfig, prefix.clone()).await,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Sandbox => f.write_str("sandbox"),
            Kind::Real { kubeconfig, .. } => {
                write!(f, "real cluster of {}", kubeconfig.display())
            }
        }
    }
}

/// Notes that `test` runs on the sandbox only, and why, when the real tier is enabled.
pub fn sandbox_only(test: &str, why: &str) {
    if real::kubeconfig().is_some() {
        real::say(&format!(
            "{test}: sandbox only, not run on the real cluster: {why}"
        ));
    }
}

/// A cluster to run a test against.
pub enum Target {
    /// The embedded API server.
    Sandbox(Sandbox),
    /// The cluster of `MODELSHIP_TEST_KUBECONFIG`.
    Real(Real),
}

/// A real cluster, held by one test.
pub struct Real {
    kubeconfig: PathBuf,
    client: kube::Client,
    recorded: Counters,
    prefix: String,
    /// Cluster-scoped objects of the test (`kind/name`), deleted when it ends.
    cluster_scoped: std::sync::Mutex<Vec<String>>,
    /// example-repo with this test's namespaces, made on first use.
    example: OnceLock<tempfile::TempDir>,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Target {
    /// A fresh sandbox.
    pub async fn sandbox() -> Self {
        Target::Sandbox(super::engine::sandbox().await)
    }

    /// The real cluster of `kubeconfig`, once no earlier test's objects are left on it.
    /// With `prefix`, the test's namespaces have that prefix (the target waits until no
    /// namespace of an earlier target with it is left); a fresh one otherwise.
    pub async fn real(kubeconfig: &Path, prefix: Option<String>) -> Self {
        let turn = REAL.lock().await;
        real::prerequisites(kubeconfig).await;
        let recorded = Counters::default();
        let client = recording_client(real::config(kubeconfig).await, recorded.clone());
        wait_alone(&client).await;
        let prefix = match prefix {
            Some(prefix) => {
                wait_namespaces_gone(&client, &prefix).await;
                prefix
            }
            None => unique_prefix(),
        };
        recorded.reset();
        Target::Real(Real {
            kubeconfig: kubeconfig.to_path_buf(),
            client,
            recorded,
            prefix,
            cluster_scoped: std::sync::Mutex::default(),
            example: OnceLock::new(),
            _turn: turn,
        })
    }

    /// `sandbox` or `real cluster`.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Sandbox(_) => "sandbox",
            Target::Real(_) => "real cluster",
        }
    }

    /// True on the real cluster.
    pub fn is_real(&self) -> bool {
        matches!(self, Target::Real(_))
    }

    /// The sandbox, for its test hooks; `None` on the real cluster.
    pub fn as_sandbox(&self) -> Option<&Sandbox> {
        match self {
            Target::Sandbox(sandbox) => Some(sandbox),
            Target::Real(_) => None,
        }
    }

    /// A client of the cluster (on the real one, a client whose requests are recorded).
    pub fn client(&self) -> kube::Client {
        match self {
            Target::Sandbox(sandbox) => sandbox.client(),
            Target::Real(real) => real.client.clone(),
        }
    }

    /// A kubeconfig file for the cluster.
    pub fn kubeconfig_path(&self) -> &Path {
        match self {
            Target::Sandbox(sandbox) => sandbox.kubeconfig_path(),
            Target::Real(real) => &real.kubeconfig,
        }
    }

    /// Requests so far: all the sandbox served, or those [`Target::client`] sent.
    pub fn requests(&self) -> RequestCounts {
        match self {
            Target::Sandbox(sandbox) => sandbox.requests(),
            Target::Real(real) => real.recorded.snapshot(),
        }
    }

    /// The requests the cluster served, from every client (the `modelship` binary,
    /// kubectl): the sandbox counts them; `None` on a real API server, which does not tell.
    pub fn served_requests(&self) -> Option<RequestCounts> {
        self.as_sandbox().map(Sandbox::requests)
    }

    /// The writes so far, in order (see [`Target::requests`]).
    pub fn writes(&self) -> Vec<Write> {
        match self {
            Target::Sandbox(sandbox) => sandbox.writes(),
            Target::Real(real) => real.recorded.writes(),
        }
    }

    /// Forgets the requests so far.
    pub fn reset_requests(&self) {
        match self {
            Target::Sandbox(sandbox) => sandbox.reset_requests(),
            Target::Real(real) => real.recorded.reset(),
        }
    }

    /// The test's name for namespace `base`: `base` itself on the sandbox, `base` behind
    /// the test's own prefix on the real cluster.
    pub fn ns(&self, base: &str) -> String {
        match self {
            Target::Sandbox(_) => base.to_string(),
            Target::Real(real) => format!("{}{base}", real.prefix),
        }
    }

    /// The line `namespace: NS` of a spec in namespace `base` (see [`Target::ns`]), for
    /// edits of a repository copy.
    pub fn ns_line(&self, base: &str) -> String {
        format!("namespace: {}", self.ns(base))
    }

    /// A writable copy of example-repo whose namespaces are the test's own.
    pub fn example_copy(&self) -> tempfile::TempDir {
        let dir = super::example_copy();
        self.retarget(dir.path());
        dir
    }

    /// example-repo as it is shipped, in the test's own namespaces: the repository itself
    /// on the sandbox, a copy made once per target on the real cluster.
    pub fn example_repo(&self) -> PathBuf {
        match self {
            Target::Sandbox(_) => super::example_repo(),
            Target::Real(real) => real
                .example
                .get_or_init(|| self.example_copy())
                .path()
                .to_path_buf(),
        }
    }

    /// How long a test waits for the cluster to converge (Deployments ready, say): a real
    /// cluster schedules and starts pods, and deletes those of earlier tests first.
    pub fn patience(&self) -> Duration {
        match self {
            Target::Sandbox(_) => Duration::from_secs(20),
            Target::Real(_) => Duration::from_secs(180),
        }
    }

    /// The test's namespace for `base` ([`Target::ns`]), created unless it exists (the
    /// sandbox's `default` always does).
    pub async fn namespace(&self, base: &str) -> String {
        use k8s_openapi::api::core::v1::Namespace;
        let name = self.ns(base);
        if self.as_sandbox().is_some() && base == "default" {
            return name;
        }
        let namespaces: kube::Api<Namespace> = kube::Api::all(self.client());
        let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"modelship.dev/test": "true"}}});
        let params = kube::api::PatchParams::apply("modelship-tests");
        tokio::time::timeout(
            super::STEP,
            namespaces.patch(&name, &params, &kube::api::Patch::Apply(body)),
        )
        .await
        .expect("namespace applied in time")
        .unwrap_or_else(|e| panic!("namespace {name}: {e}"));
        name
    }

    /// Deletes the cluster-scoped object `what` (`resource.group/name`, as kubectl names
    /// it) when the test ends, pass or fail; nothing on the sandbox, which goes as a whole.
    pub fn delete_at_end(&self, what: &str) {
        if let Target::Real(real) = self {
            real.cluster_scoped
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(what.to_string());
        }
    }

    /// The replicas of Deployment `namespace/name`, whose HorizontalPodAutoscaler owns
    /// the count, once the autoscaler has acted: on a real cluster the HPA controller
    /// scales it to at least `minReplicas` (the test waits for that); the sandbox runs no
    /// HPA controller, so the Deployment keeps the defaulted count.
    pub async fn autoscaled_replicas(&self, namespace: &str, name: &str) -> i32 {
        use k8s_openapi::api::apps::v1::Deployment;
        use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
        let deployments: kube::Api<Deployment> = kube::Api::namespaced(self.client(), namespace);
        let hpas: kube::Api<HorizontalPodAutoscaler> =
            kube::Api::namespaced(self.client(), namespace);
        let min = match self {
            Target::Sandbox(_) => 0,
            Target::Real(_) => {
                let hpa = tokio::time::timeout(super::STEP, hpas.get(name))
                    .await
                    .expect("GET in time")
                    .expect("the HorizontalPodAutoscaler exists");
                hpa.spec.and_then(|s| s.min_replicas).unwrap_or(1)
            }
        };
        let deadline = tokio::time::Instant::now() + self.patience();
        loop {
            let deployment = tokio::time::timeout(super::STEP, deployments.get(name))
                .await
                .expect("GET in time")
                .expect("the Deployment exists");
            let replicas = deployment.spec.and_then(|s| s.replicas).unwrap_or(1);
            if replicas >= min {
                return replicas;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{namespace}/{name}: still {replicas} replicas after {:?}, the autoscaler \
                 wants at least {min}",
                self.patience()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The claim `vision-models` that example-repo's image-classifier mounts, in the
    /// test's namespace for `base`, bound to a PersistentVolume of its own: a real
    /// scheduler places no pod whose claim is missing or unbound. Nothing on the sandbox,
    /// which schedules no pods.
    pub async fn model_claim(&self, base: &str) {
        let Target::Real(real) = self else { return };
        let namespace = self.ns(base);
        let volume = format!("vision-models-{namespace}");
        self.delete_at_end(&format!("persistentvolume/{volume}"));
        let yaml = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n---\napiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {volume}\nspec:\n  capacity: {{storage: 100Gi}}\n  accessModes: [ReadOnlyMany]\n  persistentVolumeReclaimPolicy: Retain\n  storageClassName: \"\"\n  hostPath: {{path: /var/lib/models}}\n  claimRef: {{namespace: {namespace}, name: vision-models}}\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: vision-models\n  namespace: {namespace}\nspec:\n  accessModes: [ReadOnlyMany]\n  storageClassName: \"\"\n  volumeName: {volume}\n  resources: {{requests: {{storage: 100Gi}}}}\n"
        );
        let file = tempfile::NamedTempFile::new().expect("a temporary file");
        std::fs::write(file.path(), yaml).expect("write the claim");
        let path = file.path().to_str().expect("temporary paths are UTF-8");
        real::kubectl_ok(&real.kubeconfig, &["apply", "-f", path]).await;
    }

    /// Renames the namespace of every spec under `dir/services` (the `metadata.namespace`
    /// line, `  namespace: NAME`) to the test's own ([`Target::ns`]).
    pub fn retarget(&self, dir: &Path) {
        if let Target::Real(_) = self {
            retarget_dir(&dir.join("services"), &|text: &str| {
                let mut out = String::with_capacity(text.len());
                for line in text.split_inclusive('\n') {
                    match line.strip_prefix("  namespace: ") {
                        Some(rest) if !rest.trim().is_empty() && !rest.contains(' ') => {
                            out.push_str("  ");
                            out.push_str(&self.ns_line(rest.trim_end()));
                            out.push_str(&rest[rest.trim_end().len()..]);
                        }
                        _ => out.push_str(line),
                    }
                }
                out
            });
        }
    }

    /// The base name of the test's namespace `namespace` (the inverse of [`Target::ns`]);
    /// other names as they are.
    pub fn base_ns<'a>(&self, namespace: &'a str) -> &'a str {
        match self {
            Target::Sandbox(_) => namespace,
            Target::Real(real) => namespace.strip_prefix(&real.prefix).unwrap_or(namespace),
        }
    }

    /// A copy of the repository at `dir` in the test's namespaces.
    pub fn copy_of(&self, dir: &Path) -> tempfile::TempDir {
        let copy = super::copy_of(dir);
        self.retarget(copy.path());
        copy
    }
}

fn retarget_dir(dir: &Path, rewrite: &dyn Fn(&str) -> String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            retarget_dir(&path, rewrite);
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            std::fs::write(&path, rewrite(&text)).expect("rewrite a spec");
        }
    }
}

impl super::HasClient for Target {
    fn client(&self) -> kube::Client {
        Target::client(self)
    }
}

impl Real {
    /// Runs `kubectl ARGS EXTRA` to completion, outside any runtime (for `Drop`); its
    /// stdout, or `None` after saying on stderr what failed.
    fn kubectl_quietly(&self, args: &[&str], extra: &[String]) -> Option<String> {
        let out = std::process::Command::new(real::kubectl_program())
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg("--request-timeout=30s")
            .args(args)
            .args(extra)
            .stdin(std::process::Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => {
                Some(String::from_utf8_lossy(&out.stdout).into_owned())
            }
            Ok(out) => {
                eprintln!(
                    "cleanup: kubectl {args:?} {extra:?} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                None
            }
            Err(e) => {
                eprintln!("cleanup: kubectl could not run: {e}");
                None
            }
        }
    }
}

impl Drop for Real {
    /// Deletes every namespace of the test (without waiting: the next real target waits
    /// until their objects are gone) and its cluster-scoped objects.
    fn drop(&mut self) {
        let delete = ["delete", "--ignore-not-found", "--wait=false"];
        let scoped = std::mem::take(
            self.cluster_scoped
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if !scoped.is_empty() {
            self.kubectl_quietly(&delete, &scoped);
        }
        let Some(list) = self.kubectl_quietly(&["get", "namespaces", "-o", "name"], &[]) else {
            return;
        };
        let mine: Vec<String> = list
            .lines()
            .filter(|l| l.starts_with(&format!("namespace/{}", self.prefix)))
            .map(str::to_string)
            .collect();
        if !mine.is_empty() {
            self.kubectl_quietly(&delete, &mine);
        }
    }
}

/// `t<hex>-`, unique to this process and call.
fn unique_prefix() -> String {
    format!("t{}-", real::unique_tag())
}

/// A client of `config` that records each resource request in `recorded`.
fn recording_client(config: kube::Config, recorded: Counters) -> kube::Client {
    let layer = tower::util::MapRequestLayer::new(move |request: http::Request<_>| {
        if let Some(write) = classify(&request) {
            recorded.record(write.verb, &write.resource);
            if write.verb.is_write() {
                recorded.record_write(write);
            }
        }
        request
    });
    kube::client::ClientBuilder::try_from(config)
        .expect("a client for the test cluster")
        .with_layer(&layer)
        .build()
}

/// A resource request as the sandbox counts it (`Write` carries every request here, reads
/// included); `None` for discovery and other paths.
fn classify<B>(request: &http::Request<B>) -> Option<Write> {
    let Some(Route::Resource(rp)) = path::parse(request.uri().path()) else {
        return None;
    };
    let query = request.uri().query().unwrap_or_default();
    let watch = query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1");
    let apply = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/apply-patch"));
    let verb = match (request.method().as_str(), rp.name.is_some()) {
        ("GET", true) => Verb::Get,
        ("GET", false) if watch => Verb::Watch,
        ("GET", false) => Verb::List,
        ("POST", _) => Verb::Create,
        ("PUT", _) => Verb::Update,
        ("PATCH", _) if apply => Verb::Apply,
        ("PATCH", _) => Verb::Patch,
        ("DELETE", _) => Verb::Delete,
        _ => return None,
    };
    let resource = match &rp.subresource {
        Some(sub) => format!("{}/{sub}", rp.plural),
        None => rp.plural.clone(),
    };
    Some(Write {
        verb,
        resource,
        namespace: rp.namespace.unwrap_or_default(),
        name: rp.name.unwrap_or_default(),
    })
}

/// Waits until no namespace whose name starts with `prefix` is left.
async fn wait_namespaces_gone(client: &kube::Client, prefix: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + ALONE_LIMIT;
    loop {
        let list = tokio::time::timeout(super::STEP, namespaces.list(&Default::default()))
            .await
            .expect("namespaces listed in time")
            .expect("namespaces listed");
        let left: Vec<String> = list
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .filter(|n| n.starts_with(prefix))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "namespaces {left:?} are still being deleted after {ALONE_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until no object labelled managed-by=modelship is left in the cluster.
async fn wait_alone(client: &kube::Client) {
    use modelship::cluster::{Kinds, read_live};
    use modelship::plan::{DesiredState, LiveState};
    let retry = super::fast_retry();
    let deadline = tokio::time::Instant::now() + ALONE_LIMIT;
    loop {
        let mut kinds = Kinds::new(client.clone(), retry);
        let live = tokio::time::timeout(
            super::STEP,
            read_live(
                client,
                &mut kinds,
                &DesiredState::default(),
                &retry,
                &Default::default(),
            ),
        )
        .await
        .expect("live state read in time")
        .expect("live state read");
        let left: Vec<String> = live
            .services()
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "objects managed by modelship are still in the cluster after {ALONE_LIMIT:?} \
             (a test's namespaces that were not deleted?): {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
