//! Helpers of the tests of a real control plane only (`tests/real_*.rs`): the cluster
//! named by `MODELSHIP_TEST_KUBECONFIG` (`scripts/control-plane up DIR` starts one; kind or
//! k3d work too), namespaces of a test's own that are deleted when it ends, pass or fail,
//! and `kubectl` and the `modelship` binary pointed at that cluster.
//!
//! Without the variable every test of the tier prints why it is skipped and passes: the
//! tier is opt-in, as DESIGN.md's testing tiers say. Every wait here has a deadline.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use tokio::process::Command;

use super::ENV;
use crate::support::{binary, poll, real, repo};

/// The longest one command (kubectl, modelship) may run, `--wait` included.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// The longest a test polls the cluster for one condition.
pub const POLL_LIMIT: Duration = Duration::from_secs(180);

/// How often a test polls the cluster (its checks run kubectl or list objects).
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// Tests that fill the fake GPU nodes (example-repo's GPU services need all eight H100s)
/// take this lock, so that two of them never wait on each other's pods.
pub static GPU_NODES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cluster of the tier.
pub struct Cluster {
    pub kubeconfig: PathBuf,
    pub client: kube::Client,
}

/// The cluster, or `None` (after saying why on stderr) when the tier is not enabled.
pub async fn cluster(test: &str) -> Option<Cluster> {
    let Some(kubeconfig) = real::kubeconfig() else {
        real::say(&format!(
            "skipping {test}: {ENV} is not set; `scripts/control-plane up DIR` starts a real \
             control plane and prints the kubeconfig to set it to (see the README)"
        ));
        return None;
    };
    let config = real::config(&kubeconfig).await;
    let client = kube::Client::try_from(config).expect("a client for the test cluster");
    real::prerequisites(&kubeconfig).await;
    Some(Cluster { kubeconfig, client })
}

/// A suffix unique to this test process and call, for names on a shared cluster.
pub fn unique(base: &str) -> String {
    format!("{base}-{}", real::unique_tag())
}

impl Cluster {
    /// Runs kubectl against the cluster; the output, whatever the exit status.
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None).await
    }

    /// Runs kubectl with `stdin` as its standard input.
    pub async fn kubectl_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let command = real::kubectl_command(&self.kubeconfig, args);
        run(command, stdin, &format!("kubectl {}", args.join(" "))).await
    }

    /// Runs kubectl and fails the test unless it succeeds; its stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        succeeded(
            self.kubectl(args).await,
            &format!("kubectl {}", args.join(" ")),
        )
    }

    /// The `modelship` binary with `args`, then `--kubeconfig` for this cluster.
    pub fn modelship(&self, args: &[&str]) -> Command {
        binary::on_cluster(&self.kubeconfig, args)
    }

    /// Runs `modelship ARGS --kubeconfig ...` to completion.
    pub async fn run_modelship(&self, args: &[&str]) -> Output {
        run(
            self.modelship(args),
            None,
            &format!("modelship {}", args.join(" ")),
        )
        .await
    }

    /// Deletes what `kubectl delete ARGS` names when the guard drops.
    pub fn cleanup<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Cleanup {
        Cleanup {
            kubeconfig: self.kubeconfig.clone(),
            args: args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect(),
        }
    }

    /// Namespaces of the test's own, deleted when the guard drops.
    pub fn namespaces(&self, names: &[String]) -> Cleanup {
        let mut args = vec!["namespace".to_string()];
        args.extend(names.iter().cloned());
        self.cleanup(&args)
    }

    /// The claim `vision-models` that image-classifier mounts, in `namespace`, bound to a
    /// local PersistentVolume of its own (the scheduler places no pod whose claim is
    /// missing or unbound); the volume is deleted when the guard drops.
    pub async fn model_claim(&self, namespace: &str) -> Cleanup {
        let volume = format!("vision-models-{namespace}");
        let yaml = format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {volume}\nspec:\n  capacity: {{storage: 100Gi}}\n  accessModes: [ReadOnlyMany]\n  persistentVolumeReclaimPolicy: Retain\n  storageClassName: \"\"\n  hostPath: {{path: /var/lib/models}}\n  claimRef: {{namespace: {namespace}, name: vision-models}}\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: vision-models\n  namespace: {namespace}\nspec:\n  accessModes: [ReadOnlyMany]\n  storageClassName: \"\"\n  volumeName: {volume}\n  resources: {{requests: {{storage: 100Gi}}}}\n"
        );
        let cleanup = self.cleanup(&["persistentvolume", volume.as_str()]);
        let out = self
            .kubectl_stdin(&["apply", "-f", "-"], Some(yaml.as_bytes()))
            .await;
        succeeded(out, "creating the model volume");
        cleanup
    }

    /// Creates a namespace (with the test label, so a leftover is easy to find).
    pub async fn create_namespace(&self, name: &str, labels: &[(&str, &str)]) {
        let mut label_lines = String::from("    modelship.dev/test: \"true\"\n");
        for (k, v) in labels {
            label_lines.push_str(&format!("    {k}: \"{v}\"\n"));
        }
        let yaml = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n{label_lines}"
        );
        let out = self
            .kubectl_stdin(
                &[
                    "apply",
                    "--server-side",
                    "--field-manager=modelship-tests",
                    "-f",
                    "-",
                ],
                Some(yaml.as_bytes()),
            )
            .await;
        succeeded(out, &format!("creating namespace {name}"));
    }

    /// `kubectl apply -k deploy/` (once a previous run's `modelship` namespace is gone,
    /// after creating it with `labels` when given); everything it installed is deleted
    /// when the guard drops.
    pub async fn install_deploy(&self, labels: &[(&str, &str)]) -> Cleanup {
        use k8s_openapi::api::core::v1::Namespace;
        let namespaces: kube::Api<Namespace> = kube::Api::all(self.client.clone());
        self.eventually("the modelship namespace of an earlier run gone", || async {
            let phase = match namespaces.get_opt("modelship").await {
                Ok(None) => return Some(()),
                Ok(Some(ns)) => ns.status.and_then(|s| s.phase),
                Err(_) => None,
            };
            (phase.as_deref() == Some("Active")).then_some(())
        })
        .await;
        let deploy = crate::support::root().join("deploy");
        let cleanup = self.cleanup(&["-k", crate::support::path_str(&deploy)]);
        if !labels.is_empty() {
            self.create_namespace("modelship", labels).await;
        }
        self.kubectl_ok(&["apply", "-k", crate::support::path_str(&deploy)])
            .await;
        cleanup
    }

    /// Polls `check` every [`POLL_EVERY`] until it returns `Some`, failing after
    /// [`POLL_LIMIT`].
    pub async fn eventually<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        poll::until(what, POLL_LIMIT, POLL_EVERY, check, String::new).await
    }
}

/// What `kubectl delete ARGS` removes, deleted (without waiting) when this drops, also
/// when the test fails.
pub struct Cleanup {
    kubeconfig: PathBuf,
    args: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut command = std::process::Command::new(real::kubectl_program());
        command
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg("--request-timeout=30s")
            .args(["delete", "--ignore-not-found", "--wait=false"])
            .args(&self.args);
        match command.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "cleanup: kubectl delete {:?} failed: {}",
                self.args,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("cleanup: kubectl could not run: {e}"),
        }
    }
}

/// Runs a command with a deadline, feeding `stdin`.
pub async fn run(mut command: Command, stdin: Option<&[u8]>, what: &str) -> Output {
    use tokio::io::AsyncWriteExt;
    command
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(bytes)
            .await
            .unwrap_or_else(|e| panic!("{what}: writing stdin: {e}"));
    }
    tokio::time::timeout(COMMAND_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what}: still running after {COMMAND_LIMIT:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The stdout of a command that must have succeeded (else the test fails with stderr).
pub fn succeeded(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `modelship render DIR -o json`: the compiled objects.
pub async fn render(dir: &Path) -> Vec<serde_json::Value> {
    let mut command = binary::command(["render", "-o", "json"]);
    command.arg(dir);
    let out = succeeded(
        run(command, None, "modelship render").await,
        "modelship render",
    );
    let list: serde_json::Value = serde_json::from_str(&out).expect("render -o json prints JSON");
    list["items"].as_array().expect("a v1 List").clone()
}

/// `Kind namespace/name`, as `modelship validate` names objects.
pub fn object_key(object: &serde_json::Value) -> String {
    format!(
        "{} {}/{}",
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["namespace"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// A writable copy of example-repo whose namespaces `genai` and `risk-prod` are renamed
/// to fresh ones, deleted when this drops.
pub struct Example {
    pub repo: tempfile::TempDir,
    pub genai: String,
    pub risk: String,
    _cleanup: Cleanup,
}

impl Example {
    pub fn path(&self) -> &Path {
        self.repo.path()
    }

    /// The five services, as `namespace/name`.
    pub fn services(&self) -> Vec<String> {
        let genai = ["llm-chat", "image-classifier", "text-embedding"];
        let risk = ["fraud-detection", "transaction-anomaly"];
        genai
            .iter()
            .map(|s| format!("{}/{s}", self.genai))
            .chain(risk.iter().map(|s| format!("{}/{s}", self.risk)))
            .collect()
    }
}

impl Cluster {
    /// example-repo in namespaces of its own (not created: apply or the test does that).
    pub fn example(&self) -> Example {
        let repo = repo::example_copy();
        let genai = unique("genai");
        let risk = unique("risk");
        for (file, from, to) in [
            ("services/genai/llm-chat.yaml", "genai", &genai),
            ("services/genai/image-classifier.yaml", "genai", &genai),
            ("services/genai/text-embedding.yaml", "genai", &genai),
            ("services/risk/fraud-detection.yaml", "risk-prod", &risk),
            ("services/risk/transaction-anomaly.yaml", "risk-prod", &risk),
        ] {
            repo::edit(
                repo.path(),
                file,
                &format!("namespace: {from}\n"),
                &format!("namespace: {to}\n"),
            );
        }
        let cleanup = self.namespaces(&[genai.clone(), risk.clone()]);
        Example {
            repo,
            genai,
            risk,
            _cleanup: cleanup,
        }
    }
}
