//! The real cluster of the tests: the kubeconfig named by `MODELSHIP_TEST_KUBECONFIG`
//! (`scripts/control-plane up DIR` starts one; kind or k3d work too), the `kubectl` to
//! drive it with, and the objects example-repo's pods refer to. Shared by the tests of a
//! real control plane only ([`tier`], `tests/real_*.rs`) and by those that run on both the
//! sandbox and a real cluster ([`super::target`], `tests/cluster_*.rs`).

pub mod tier;

pub use tier::*;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use tokio::sync::OnceCell;

/// The variable naming the kubeconfig of the cluster the real tier runs against.
pub const ENV: &str = "MODELSHIP_TEST_KUBECONFIG";

/// The variable naming the kubectl binary (`scripts/control-plane` builds one at the
/// control plane's own release and `scripts/test` sets this to it); `kubectl` from `PATH`
/// otherwise.
pub const KUBECTL_ENV: &str = "MODELSHIP_KUBECTL";

/// The kubeconfig of the real cluster, when the tier is enabled.
pub fn kubeconfig() -> Option<PathBuf> {
    std::env::var_os(ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The kubectl to run against the real cluster.
pub fn kubectl_program() -> OsString {
    std::env::var_os(KUBECTL_ENV)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "kubectl".into())
}

/// Hex digits unique to this test process and call, for names on a shared cluster.
pub fn unique_tag() -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{n}", (std::process::id() ^ nanos) & 0xfffff)
}

/// Prints `message` straight to stderr, past the test harness's capture, so that a skip
/// is always seen.
pub fn say(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// The config of the kubeconfig at `path` (the test fails when it is unusable).
pub async fn config(path: &Path) -> kube::Config {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("{ENV}={}: {e}", path.display()));
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("{ENV}={}: {e}", path.display()))
}

/// Runs kubectl (with a request timeout) against the cluster of `kubeconfig`.
pub fn kubectl_command(kubeconfig: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(kubectl_program());
    command
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg("--request-timeout=60s")
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs kubectl to completion; fails the test unless it succeeds. Its stdout.
pub async fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let what = format!("kubectl {}", args.join(" "));
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        kubectl_command(kubeconfig, args).output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{what}: still running after 300 s"))
    .unwrap_or_else(|e| panic!("{what}: cannot run {:?}: {e}", kubectl_program()));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The objects example-repo's pods refer to (PriorityClasses, the RuntimeClass) and the
/// CRDs of the traffic routers and of PodMonitor, applied once per test process. A CRD
/// the cluster already has is left alone (`scripts/control-plane` installs the Gateway
/// API's own HTTPRoute CRD; the sandbox's trimmed copies only fill gaps).
pub async fn prerequisites(kubeconfig: &Path) {
    static DONE: OnceCell<()> = OnceCell::const_new();
    DONE.get_or_init(|| apply_prerequisites(kubeconfig)).await;
}

async fn apply_prerequisites(kubeconfig: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let apply = [
        "apply",
        "--server-side",
        "--field-manager=modelship-tests",
        "-f",
    ];
    let prerequisites = root.join("testenv/cluster/prerequisites.yaml");
    let mut args = apply.to_vec();
    args.push(prerequisites.to_str().expect("test paths are UTF-8"));
    kubectl_ok(kubeconfig, &args).await;
    let crds = std::fs::read_dir(root.join("crates/modelship-sandbox/src/crds")).expect("the CRDs");
    for file in crds {
        let file = file.expect("a CRD file").path();
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("CRD file names are CRD names");
        let served = kubectl_command(kubeconfig, &["get", "crd", name, "-o", "name"])
            .output()
            .await
            .is_ok_and(|out| out.status.success());
        if served {
            continue;
        }
        let mut args = apply.to_vec();
        args.push(file.to_str().expect("test paths are UTF-8"));
        kubectl_ok(kubeconfig, &args).await;
        let crd = format!("crd/{name}");
        kubectl_ok(
            kubeconfig,
            &["wait", "--for=condition=established", "--timeout=60s", &crd],
        )
        .await;
    }
}
