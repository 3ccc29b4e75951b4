//! The real-cluster tier, part two: `modelship run` (the daemon binary) against a real API
//! server, with its garbage collector and RBAC.
//!
//! - first sync of example-repo, a no-change cycle (and a new revision that changes no
//!   object) with zero writes, drift healed, a removed service pruned with its ReplicaSets
//!   and pods following through garbage collection (ownerReferences);
//! - least privilege: `kubectl apply -k deploy/`, then the daemon with the token of the
//!   ServiceAccount it creates reconciles example-repo fully, and `kubectl auth can-i
//!   --list` for that account shows no wildcard;
//! - narrowed to the tenants' namespaces: the ClusterRoleBinding replaced by RoleBindings
//!   of the same ClusterRole in two namespaces, the daemon with `--namespaces` reconciles
//!   the services of both, refuses one of a third namespace as invalid, and is refused no
//!   request (no 403 in its log or its error metrics).
//!
//! The daemon owns every object labelled `app.kubernetes.io/managed-by: modelship` in the
//! cluster (it prunes those of services its repository lacks), so each test first waits
//! until the objects of earlier tests (namespaces still being deleted) are gone, and the
//! two tests take the [`GPU_NODES`] lock: two daemons on one cluster fight.
//!
//! Runs only when `MODELSHIP_TEST_KUBECONFIG` is set (see `support::real`).

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;
use support::real::{Cluster, GPU_NODES, POLL_EVERY, POLL_LIMIT, cluster, succeeded};
use support::{binary, path_str};

/// A `modelship run` child process on a loopback port, killed when dropped.
struct Daemon {
    _child: tokio::process::Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Daemon {
    /// Starts the daemon on `repo` (a directory source) with `kubeconfig`, and waits
    /// until its HTTP server answers.
    async fn start(cluster: &Cluster, kubeconfig: &Path, repo: &Path, log_dir: &Path) -> Self {
        Self::start_with(cluster, kubeconfig, repo, log_dir, &[]).await
    }

    /// [`Daemon::start`] with more arguments.
    async fn start_with(
        cluster: &Cluster,
        kubeconfig: &Path,
        repo: &Path,
        log_dir: &Path,
        extra: &[&str],
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = log_dir.join("daemon.log");
        let log_file = std::fs::File::create(&log).expect("daemon log");
        let listen = addr.to_string();
        let mut command = binary::on_cluster(
            kubeconfig,
            ["run", "--repo", path_str(repo), "--interval", "1s"],
        );
        command
            .args(["--listen", &listen, "--create-namespaces"])
            .args(["--log-format", "plain"])
            .args(extra)
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file);
        let child = command.spawn().expect("modelship run starts");
        let daemon = Daemon {
            _child: child,
            addr,
            log,
        };
        let _ = cluster;
        daemon
            .wait("the daemon's HTTP server", || async {
                tokio::net::TcpStream::connect(addr).await.ok().map(|_| ())
            })
            .await;
        daemon
    }

    /// Polls `check` until `Some`, failing with the end of the daemon's log.
    async fn wait<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        support::until(what, POLL_LIMIT, POLL_EVERY, check, || self.log_tail()).await
    }

    /// The end of the daemon's log.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("the end of the daemon's log:\n{tail}")
    }

    async fn status(&self) -> Value {
        support::daemon::status(self.addr).await
    }

    /// A counter or gauge of /metrics without labels (0 when absent).
    async fn metric(&self, name: &str) -> f64 {
        let text = support::daemon::metrics(self.addr).await;
        text.lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .filter_map(|v| v.trim().parse::<f64>().ok())
            .sum()
    }

    /// The sum of a counter over its labels.
    async fn metric_sum(&self, name: &str) -> f64 {
        let text = support::daemon::metrics(self.addr).await;
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    }

    /// Waits until every service of `services` (`namespace/name`) is in sync at the
    /// source's current revision; returns the status.
    async fn wait_in_sync(&self, services: &[String]) -> Value {
        let d = self;
        self.wait(&format!("{services:?} in sync"), || async move {
            let status = d.status().await;
            let revision = status["revision"].as_str()?.to_string();
            services
                .iter()
                .all(|s| {
                    let service = &status["services"][s];
                    service["state"] == "in-sync" && service["revision"] == revision.as_str()
                })
                .then_some(status.clone())
        })
        .await
    }
}

async fn image(client: &kube::Client, namespace: &str, name: &str) -> Option<String> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let d = deployments.get(name).await.ok()?;
    d.spec?.template.spec?.containers.first()?.image.clone()
}

/// Objects of `service` of kind `K` left in `namespace` (by the instance label).
async fn left<K>(client: &kube::Client, namespace: &str, service: &str) -> usize
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let selector = format!("app.kubernetes.io/instance={service}");
    api.list(&ListParams::default().labels(&selector))
        .await
        .map(|l| l.items.len())
        .unwrap_or(usize::MAX)
}

#[tokio::test]
async fn run_syncs_writes_nothing_when_unchanged_heals_drift_and_prunes() {
    let Some(cluster) = cluster("modelship run on a real cluster").await else {
        return;
    };
    let _gpus = GPU_NODES.lock().await;
    wait_until_alone(&cluster).await;
    let example = cluster.example();
    let (repo, risk) = (&example.repo, &example.risk);
    let logs = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(&cluster, &cluster.kubeconfig, repo.path(), logs.path()).await;
    let services = example.services();

    // First sync.
    daemon.wait_in_sync(&services).await;
    let writes = daemon.metric("modelship_writes_total").await;
    assert!(
        writes >= 20.0,
        "the first sync wrote every object: {writes}"
    );

    // No-change cycles: polls of the same revision, then a new revision (a comment) that
    // changes no object. Neither writes.
    let d = &daemon;
    let fetches = daemon.metric_sum("modelship_source_fetches_total").await;
    daemon
        .wait("two more source polls", || async move {
            (d.metric_sum("modelship_source_fetches_total").await >= fetches + 2.0).then_some(())
        })
        .await;
    let before = daemon.status().await["revision"].clone();
    support::edit(
        repo.path(),
        "services/risk/fraud-detection.yaml",
        "apiVersion:",
        "# a comment changes the revision, not the objects\napiVersion:",
    );
    daemon
        .wait("the new revision", || {
            let before = before.clone();
            async move { (d.status().await["revision"] != before).then_some(()) }
        })
        .await;
    daemon.wait_in_sync(&services).await;
    assert_eq!(
        daemon.metric("modelship_writes_total").await,
        writes,
        "no-change cycles write nothing"
    );

    // Drift: another manager changes the image; the daemon takes it back.
    let original = image(&cluster.client, risk, "transaction-anomaly")
        .await
        .expect("transaction-anomaly's image");
    cluster
        .kubectl_ok(&[
            "-n",
            risk,
            "patch",
            "deployment",
            "transaction-anomaly",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"registry.example.com/tampered:1"}]"#,
        ])
        .await;
    let client = cluster.client.clone();
    let ns = risk.clone();
    daemon
        .wait("the drifted image healed", || {
            let (client, ns, original) = (client.clone(), ns.clone(), original.clone());
            async move {
                (image(&client, &ns, "transaction-anomaly").await? == original).then_some(())
            }
        })
        .await;
    assert!(daemon.metric("modelship_drift_corrections_total").await >= 1.0);

    // Prune: the service's objects go, and the garbage collector takes its ReplicaSets
    // and pods (owned through ownerReferences) with them.
    assert!(left::<ReplicaSet>(&cluster.client, risk, "transaction-anomaly").await >= 1);
    std::fs::remove_file(repo.path().join("services/risk/transaction-anomaly.yaml"))
        .expect("remove spec");
    daemon
        .wait("transaction-anomaly pruned with its dependents", || {
            let (client, ns) = (client.clone(), ns.clone());
            async move {
                let gone = left::<Deployment>(&client, &ns, "transaction-anomaly").await == 0
                    && left::<ReplicaSet>(&client, &ns, "transaction-anomaly").await == 0
                    && left::<Pod>(&client, &ns, "transaction-anomaly").await == 0;
                gone.then_some(())
            }
        })
        .await;
    let status = daemon.status().await;
    assert_eq!(
        status["services"][format!("{risk}/fraud-detection")]["state"],
        "in-sync",
        "the other service stays: {status}"
    );
}

/// Waits until no object modelship manages is left in the cluster (a daemon started
/// earlier would take them for services to prune).
async fn wait_until_alone(cluster: &Cluster) {
    let kinds = "deployments,services,serviceaccounts,horizontalpodautoscalers,\
                 poddisruptionbudgets,networkpolicies,httproutes,virtualservices,destinationrules";
    let selector = "app.kubernetes.io/managed-by=modelship";
    cluster
        .eventually("the objects of earlier tests gone", || async {
            let out = cluster
                .kubectl(&["get", kinds, "-A", "-l", selector, "-o", "name"])
                .await;
            (out.status.success() && out.stdout.is_empty()).then_some(())
        })
        .await;
}

/// A kubeconfig for the cluster of `admin` that authenticates with `token`.
async fn token_kubeconfig(cluster: &Cluster, token: &str, path: &Path) {
    let view = cluster
        .kubectl_ok(&[
            "config",
            "view",
            "--raw",
            "--minify",
            "--flatten",
            "-o",
            "json",
        ])
        .await;
    let view: Value = serde_json::from_str(&view).expect("kubeconfig as JSON");
    let server = view["clusters"][0]["cluster"]["server"]
        .as_str()
        .expect("server");
    let ca = view["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap_or_default();
    let ca_line = if ca.is_empty() {
        "    insecure-skip-tls-verify: true".to_string()
    } else {
        format!("    certificate-authority-data: {ca}")
    };
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n{ca_line}\nusers:\n- name: modelship\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context: {{cluster: c, user: modelship}}\ncurrent-context: c\n"
    );
    std::fs::write(path, config).expect("write kubeconfig");
}

/// Rows of `kubectl auth can-i --list` that grant a wildcard resource or verb.
fn wildcards(list: &str) -> Vec<String> {
    list.lines()
        .skip(1)
        .filter(|row| {
            let columns: Vec<&str> = row.split_whitespace().collect();
            let resource = columns.first().copied().unwrap_or("");
            let verbs = row.rsplit_once('[').map(|(_, v)| v).unwrap_or("");
            resource == "*" || resource.starts_with("*.") || verbs.contains('*')
        })
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_deploy_service_account_reconciles_example_repo_without_wildcards() {
    let Some(cluster) = cluster("least privilege of deploy/").await else {
        return;
    };
    let _gpus = GPU_NODES.lock().await;
    // A previous run's deploy/ may still be going away: install_deploy waits until its
    // namespace is gone.
    let _deployed = cluster.install_deploy(&[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("modelship.kubeconfig");
    service_account_kubeconfig(&cluster, &kubeconfig).await;

    let as_account = |namespace: &str| {
        vec![
            format!("--kubeconfig={}", kubeconfig.display()),
            "-n".to_string(),
            namespace.to_string(),
            "auth".to_string(),
            "can-i".to_string(),
            "--list".to_string(),
        ]
    };
    for namespace in ["default", "modelship"] {
        let args = as_account(namespace);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = tokio::process::Command::new("kubectl");
        command.args(&args);
        let list = succeeded(
            support::real::run(command, None, "kubectl auth can-i --list").await,
            "kubectl auth can-i --list as the ServiceAccount",
        );
        assert!(
            list.contains("deployments.apps"),
            "the ClusterRole is bound: {list}"
        );
        assert_eq!(wildcards(&list), Vec::<String>::new(), "in {namespace}");
    }

    let example = cluster.example();
    let (repo, genai, risk) = (&example.repo, &example.genai, &example.risk);
    wait_until_alone(&cluster).await;
    let daemon = Daemon::start(&cluster, &kubeconfig, repo.path(), dir.path()).await;
    let status = daemon.wait_in_sync(&example.services()).await;
    assert_eq!(
        daemon.metric_sum("modelship_errors_total").await,
        0.0,
        "no request was refused: {status}\n{}",
        daemon.log_tail()
    );
    for (kind, namespace, name) in [
        ("httproute", &genai, "llm-chat"),
        ("virtualservice", &genai, "image-classifier"),
        ("horizontalpodautoscaler", &risk, "fraud-detection"),
    ] {
        cluster
            .kubectl_ok(&["-n", namespace, "get", kind, name, "-o", "name"])
            .await;
    }
}

/// A kubeconfig at `path` for the ServiceAccount modelship/modelship of deploy/.
async fn service_account_kubeconfig(cluster: &Cluster, path: &Path) {
    let token = cluster
        .kubectl_ok(&[
            "-n",
            "modelship",
            "create",
            "token",
            "modelship",
            "--duration=1h",
        ])
        .await;
    token_kubeconfig(cluster, token.trim(), path).await;
}

/// `kubectl auth can-i VERB RESOURCE -n NAMESPACE` as the account of `kubeconfig`.
async fn can_i(kubeconfig: &Path, verb: &str, resource: &str, namespace: &str) -> bool {
    let mut command = tokio::process::Command::new(support::real::kubectl_program());
    command.arg(format!("--kubeconfig={}", kubeconfig.display()));
    command.args(["-n", namespace, "auth", "can-i", verb, resource]);
    let out = support::real::run(command, None, "kubectl auth can-i").await;
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

/// The sum of `modelship_errors_total` over every cause but `exempt`.
async fn errors_but(daemon: &Daemon, exempt: &str) -> f64 {
    let text = support::daemon::metrics(daemon.addr).await;
    text.lines()
        .filter(|l| l.starts_with("modelship_errors_total"))
        .filter(|l| !l.contains(&format!("cause=\"{exempt}\"")))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn role_bindings_in_the_tenants_namespaces_are_enough_with_namespaces() {
    let Some(cluster) = cluster("deploy/ narrowed to the tenants' namespaces").await else {
        return;
    };
    let _gpus = GPU_NODES.lock().await;
    let _deployed = cluster.install_deploy(&[]).await;
    // No cluster-wide grant: RoleBindings of the same ClusterRole in each tenant namespace.
    cluster
        .kubectl_ok(&["delete", "clusterrolebinding", "modelship"])
        .await;
    let example = cluster.example();
    let (repo, genai, risk) = (&example.repo, &example.genai, &example.risk);
    let outside = support::real::unique("outside");
    let _outside = cluster.namespaces(std::slice::from_ref(&outside));
    for namespace in [genai, risk, &outside] {
        cluster.create_namespace(namespace, &[]).await;
    }
    for namespace in [genai, risk] {
        cluster
            .kubectl_ok(&[
                "-n",
                namespace,
                "create",
                "rolebinding",
                "modelship",
                "--clusterrole=modelship",
                "--serviceaccount=modelship:modelship",
            ])
            .await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("modelship.kubeconfig");
    service_account_kubeconfig(&cluster, &kubeconfig).await;
    cluster
        .eventually(
            "the RoleBindings in force, and nothing cluster-wide",
            || async {
                let granted = can_i(&kubeconfig, "patch", "deployments", genai).await
                    && can_i(&kubeconfig, "get", &format!("namespace/{risk}"), risk).await;
                let refused = !can_i(&kubeconfig, "list", "deployments", "default").await
                    && !can_i(&kubeconfig, "list", "deployments", &outside).await
                    && !can_i(&kubeconfig, "list", "namespaces", "default").await;
                (granted && refused).then_some(())
            },
        )
        .await;
    // A service of a namespace modelship is not bound in: refused as invalid.
    std::fs::write(
        repo.path().join("services/risk/elsewhere.yaml"),
        format!(
            "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: elsewhere, namespace: {outside}}}\nspec:\n  owner: risk@example.com\n  model: {{name: elsewhere, version: \"1.0.0\"}}\n  runtime: {{image: \"registry.example.com/risk/elsewhere:1.0\"}}\n  resources: {{cpu: 500m, memory: 1Gi}}\n"
        ),
    )
    .expect("write spec");

    let scope = format!("--namespaces={genai},{risk}");
    let daemon =
        Daemon::start_with(&cluster, &kubeconfig, repo.path(), dir.path(), &[&scope]).await;
    let status = daemon.wait_in_sync(&example.services()).await;
    let refused = &status["services"][format!("{outside}/elsewhere")];
    assert_eq!(refused["state"], "invalid", "{status}");
    assert!(
        refused["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("is not one of --namespaces")),
        "{refused}"
    );
    // Another poll, so that every list, watch and read of a cycle has been made.
    let d = &daemon;
    let fetches = daemon.metric_sum("modelship_source_fetches_total").await;
    daemon
        .wait("two more source polls", || async move {
            (d.metric_sum("modelship_source_fetches_total").await >= fetches + 2.0).then_some(())
        })
        .await;
    assert_eq!(
        errors_but(&daemon, "invalid_spec").await,
        0.0,
        "no request was refused: {status}\n{}",
        daemon.log_tail()
    );
    let log = std::fs::read_to_string(&daemon.log).expect("daemon log");
    for refused in ["403", "forbidden", "Forbidden"] {
        assert!(!mentions(&log, refused), "{refused} in the log:\n{log}");
    }
    for (kind, namespace, name) in [
        ("httproute", &genai, "llm-chat"),
        ("horizontalpodautoscaler", &risk, "fraud-detection"),
    ] {
        cluster
            .kubectl_ok(&["-n", namespace, "get", kind, name, "-o", "name"])
            .await;
    }
    let out = cluster
        .kubectl(&["-n", &outside, "get", "deployments", "-o", "name"])
        .await;
    assert!(
        out.stdout.is_empty(),
        "nothing written outside --namespaces"
    );
}

/// True when `word` appears in `text` on its own: not inside a longer number or word (a
/// timestamp's `51.340386` holds no status 403).
fn mentions(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let joined = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.');
        !joined(before) && !joined(after)
    })
}

#[test]
fn a_status_is_told_from_digits_of_a_timestamp() {
    assert!(!mentions("21:55:51.340386Z INFO applied", "403"));
    assert!(mentions("ApiError: forbidden (403)", "403"));
    assert!(mentions("code: 403, reason: Forbidden", "403"));
    assert!(mentions("User cannot list: forbidden", "forbidden"));
}
