//! The sandbox driven by the real `kubectl` binary: discovery, server-side apply, diff,
//! get (with server-side Table printing), the `create` generators (protobuf bodies),
//! delete and watch must work as against a real cluster.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use modelship::sandbox::Sandbox;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const KUBECTL: &str = "/usr/bin/kubectl";
const LIMIT: Duration = Duration::from_secs(60);

const MANIFEST: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: llama
  namespace: default
  labels:
    app: llama
spec:
  replicas: 2
  selector:
    matchLabels:
      app: llama
  template:
    metadata:
      labels:
        app: llama
    spec:
      containers:
        - name: server
          image: ghcr.io/example/llama:1.0
          ports:
            - containerPort: 8080
              name: http
---
apiVersion: v1
kind: Service
metadata:
  name: llama
  namespace: default
spec:
  selector:
    app: llama
  ports:
    - name: http
      port: 80
      targetPort: http
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: llama
  namespace: default
spec:
  parentRefs:
    - name: gateway
  rules:
    - backendRefs:
        - name: llama
          port: 80
"#;

fn kubectl_binary() -> &'static str {
    assert!(
        Path::new(KUBECTL).exists(),
        "{KUBECTL} is missing: install kubectl (v1.32) to run the kubectl conformance tests"
    );
    KUBECTL
}

/// kubectl's discovery cache, kept beside the sandbox's kubeconfig (removed with it)
/// instead of piling up in `~/.kube/cache` under ever-new ports.
fn cache_dir(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox
        .kubeconfig_path()
        .parent()
        .map_or_else(std::env::temp_dir, Path::to_path_buf)
        .join("kubectl-cache")
}

/// Runs kubectl against the sandbox with a deadline; returns its output.
async fn kubectl(sandbox: &Sandbox, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(kubectl_binary());
    cmd.arg("--kubeconfig")
        .arg(sandbox.kubeconfig_path())
        .arg("--cache-dir")
        .arg(cache_dir(sandbox))
        .args(args)
        .kill_on_drop(true);
    match tokio::time::timeout(LIMIT, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("kubectl {args:?} did not start: {e}"),
        Err(_) => panic!("kubectl {args:?} did not finish within {LIMIT:?}"),
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn ok(sandbox: &Sandbox, args: &[&str]) -> String {
    let out = kubectl(sandbox, args).await;
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn manifest_file() -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), MANIFEST).expect("write manifest");
    file
}

#[tokio::test]
async fn get_all_namespaces_lists_builtin_objects() {
    let sandbox = Sandbox::start().await.expect("sandbox starts");
    let out = ok(&sandbox, &["get", "namespaces"]).await;
    for ns in ["default", "kube-system", "kube-public"] {
        assert!(out.contains(ns), "namespace {ns} missing from:\n{out}");
    }
    let crds = ok(&sandbox, &["get", "crd", "-A"]).await;
    assert!(
        crds.contains("httproutes.gateway.networking.k8s.io"),
        "{crds}"
    );
    let all = ok(&sandbox, &["get", "deploy,svc,cm", "-A"]).await;
    assert!(!all.contains("error"), "{all}");
}

#[tokio::test]
async fn server_side_apply_then_diff_is_clean() {
    let sandbox = Sandbox::start().await.expect("sandbox starts");
    let file = manifest_file();
    let path = file.path().to_str().expect("utf-8 path");
    let applied = ok(&sandbox, &["apply", "--server-side", "-f", path]).await;
    for line in [
        "deployment.apps/llama serverside-applied",
        "service/llama serverside-applied",
        "httproute.gateway.networking.k8s.io/llama serverside-applied",
    ] {
        assert!(applied.contains(line), "missing {line:?} in:\n{applied}");
    }
    let diff = kubectl(&sandbox, &["diff", "--server-side", "-f", path]).await;
    assert_eq!(
        diff.status.code(),
        Some(0),
        "diff right after apply must be empty: {}",
        text(&diff)
    );

    let changed = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp file");
    std::fs::write(
        changed.path(),
        MANIFEST.replace("replicas: 2", "replicas: 3"),
    )
    .expect("write");
    let changed_path = changed.path().to_str().expect("utf-8 path");
    let diff = kubectl(&sandbox, &["diff", "--server-side", "-f", changed_path]).await;
    assert_eq!(
        diff.status.code(),
        Some(1),
        "a changed manifest must diff: {}",
        text(&diff)
    );
    let shown = String::from_utf8_lossy(&diff.stdout);
    assert!(
        shown.contains("-  replicas: 2") && shown.contains("+  replicas: 3"),
        "{}",
        text(&diff)
    );
    let again = ok(&sandbox, &["apply", "--server-side", "-f", path]).await;
    assert!(
        again.contains("deployment.apps/llama serverside-applied"),
        "{again}"
    );

    let deploys = ok(&sandbox, &["get", "deploy", "-A"]).await;
    assert!(deploys.contains("llama"), "{deploys}");
    let routes = ok(
        &sandbox,
        &["get", "httproutes", "-n", "default", "-o", "name"],
    )
    .await;
    assert_eq!(routes.trim(), "httproute.gateway.networking.k8s.io/llama");

    let deleted = ok(&sandbox, &["delete", "-f", path, "--timeout=30s"]).await;
    assert!(
        deleted.contains("deployment.apps \"llama\" deleted"),
        "{deleted}"
    );
    let after = kubectl(&sandbox, &["get", "deploy", "llama"]).await;
    assert!(
        !after.status.success(),
        "deployment still there: {}",
        text(&after)
    );
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("NotFound"),
        "{}",
        text(&after)
    );
}

#[tokio::test]
async fn get_watch_receives_an_event() {
    let sandbox = Sandbox::start().await.expect("sandbox starts");
    let kubeconfig = sandbox.kubeconfig_path().to_path_buf();
    let mut child = Command::new(kubectl_binary())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(cache_dir(&sandbox))
        .args([
            "get",
            "configmaps",
            "-w",
            "-o",
            "name",
            "--request-timeout=0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + LIMIT;
    let mut created = false;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if !created {
            // Create only once kubectl is watching: poll the watch counter.
            if sandbox
                .requests()
                .get(modelship::sandbox::Verb::Watch, "configmaps")
                > 0
            {
                ok(
                    &sandbox,
                    &["create", "configmap", "watched", "--from-literal=a=b"],
                )
                .await;
                created = true;
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains("configmap/watched") => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            Ok(line) => seen.push(line),
            Err(_) => {}
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("kubectl get -w saw no event for configmap/watched within {LIMIT:?}; saw {seen:?}");
}

#[tokio::test]
async fn create_generators_send_protobuf_that_reads_back_as_json() {
    let sandbox = Sandbox::start().await.expect("sandbox starts");
    let created = [
        (
            vec!["create", "namespace", "demo"],
            "namespace/demo created",
        ),
        (
            vec![
                "create",
                "configmap",
                "cfg",
                "-n",
                "demo",
                "--from-literal=a=b",
            ],
            "configmap/cfg created",
        ),
        (
            vec![
                "create",
                "secret",
                "generic",
                "sec",
                "-n",
                "demo",
                "--from-literal=token=s3cret",
            ],
            "secret/sec created",
        ),
        (
            vec!["create", "serviceaccount", "bot", "-n", "demo"],
            "serviceaccount/bot created",
        ),
    ];
    for (args, line) in created {
        let out = ok(&sandbox, &args).await;
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }

    let client = sandbox.client();
    let ns = kube::Api::<Namespace>::all(client.clone())
        .get("demo")
        .await
        .expect("namespace reads back");
    assert_eq!(ns.metadata.name.as_deref(), Some("demo"));
    let cm = kube::Api::<ConfigMap>::namespaced(client.clone(), "demo")
        .get("cfg")
        .await
        .expect("configmap reads back");
    assert_eq!(
        cm.data,
        Some([("a".to_string(), "b".to_string())].into_iter().collect())
    );
    let secret = kube::Api::<Secret>::namespaced(client.clone(), "demo")
        .get("sec")
        .await
        .expect("secret reads back");
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    let token = secret
        .data
        .as_ref()
        .and_then(|d| d.get("token"))
        .map(|b| b.0.as_slice());
    assert_eq!(token, Some(b"s3cret".as_slice()));
    let sa = kube::Api::<ServiceAccount>::namespaced(client, "demo")
        .get("bot")
        .await
        .expect("serviceaccount reads back");
    assert_eq!(sa.metadata.namespace.as_deref(), Some("demo"));

    let refused = kubectl(
        &sandbox,
        &["create", "deployment", "web", "-n", "demo", "--image=nginx"],
    )
    .await;
    assert!(!refused.status.success(), "{}", text(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("not Deployment (apps/v1)") && err.contains("kubectl apply -f"),
        "{}",
        text(&refused)
    );
}

/// Waits until the simulated controller reports `n` ready replicas of default/llama.
async fn wait_ready(sandbox: &Sandbox, n: i32) {
    let deploys: kube::Api<Deployment> = kube::Api::namespaced(sandbox.client(), "default");
    let ready =
        kube::runtime::wait::await_condition(deploys, "llama", move |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref())
                .and_then(|s| s.ready_replicas)
                == Some(n)
        });
    tokio::time::timeout(LIMIT, ready)
        .await
        .expect("llama becomes ready in time")
        .expect("wait for llama");
}

#[tokio::test]
async fn get_deployments_prints_the_ready_column() {
    let sandbox = Sandbox::builder()
        .controller_delay(Duration::from_millis(10))
        .start()
        .await
        .expect("sandbox starts");
    let file = manifest_file();
    let path = file.path().to_str().expect("utf-8 path");
    ok(&sandbox, &["apply", "--server-side", "-f", path]).await;
    wait_ready(&sandbox, 2).await;

    let out = ok(&sandbox, &["get", "deploy", "-A"]).await;
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.first().map(Vec::as_slice),
        Some(
            [
                "NAMESPACE",
                "NAME",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "AGE"
            ]
            .as_slice()
        ),
        "{out}"
    );
    let llama = rows.iter().find(|r| r.get(1) == Some(&"llama"));
    assert_eq!(
        llama.map(|r| &r[..5]),
        Some(["default", "llama", "2/2", "2", "2"].as_slice()),
        "{out}"
    );

    let svc = ok(&sandbox, &["get", "svc", "llama"]).await;
    let header: Vec<&str> = svc
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ],
        "{svc}"
    );
    assert!(svc.contains("ClusterIP") && svc.contains("80/TCP"), "{svc}");
    let ns = ok(&sandbox, &["get", "ns", "default"]).await;
    assert!(
        ns.starts_with("NAME") && ns.contains("STATUS") && ns.contains("Active"),
        "{ns}"
    );
}

#[tokio::test]
async fn get_watch_keeps_the_table_columns() {
    use tokio::io::AsyncBufReadExt;
    let sandbox = Sandbox::builder()
        .controller_delay(Duration::from_millis(10))
        .start()
        .await
        .expect("sandbox starts");
    let file = manifest_file();
    let path = file.path().to_str().expect("utf-8 path");
    ok(&sandbox, &["apply", "--server-side", "-f", path]).await;
    wait_ready(&sandbox, 2).await;

    let mut child = tokio::process::Command::new(kubectl_binary())
        .arg("--kubeconfig")
        .arg(sandbox.kubeconfig_path())
        .arg("--cache-dir")
        .arg(cache_dir(&sandbox))
        .args([
            "get",
            "deploy",
            "-n",
            "default",
            "-w",
            "--request-timeout=0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut seen = Vec::new();
    let watched = tokio::time::timeout(LIMIT, async {
        let mut scaled = false;
        while let Ok(Some(line)) = lines.next_line().await {
            let cells: Vec<String> = line.split_whitespace().map(String::from).collect();
            seen.push(cells.clone());
            if cells.first().map(String::as_str) != Some("llama") {
                continue;
            }
            if !scaled {
                ok(&sandbox, &["scale", "deploy", "llama", "--replicas=3"]).await;
                scaled = true;
            } else if cells.get(1).map(String::as_str) == Some("3/3") {
                return true;
            }
        }
        false
    })
    .await;
    let _ = child.kill().await;
    assert_eq!(watched, Ok(true), "no 3/3 row for llama; saw {seen:?}");
    assert_eq!(
        seen[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{seen:?}"
    );
    assert!(
        seen[1..]
            .iter()
            .all(|row| row.first().map(String::as_str) == Some("llama")),
        "the header must be printed once: {seen:?}"
    );
}
