//! Measures the daemon with many services: time until the first revision is reconciled,
//! resident memory of the daemon process, and writes of a no-change cycle.
//!
//! ```sh
//! cargo run --release --example daemon_memory                    # 1,000 small services
//! cargo run --release --example daemon_memory -- 1000 example    # example-repo's five
//!                                                 # services, cycled (about 6.8 objects each)
//! ```
//!
//! The sandbox API server runs in a child process (this same executable with the argument
//! `sandbox`), so the memory measured is the daemon's alone: its watch cache, the compiled
//! repository, the status board, the kube client and the runtime.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use modelship::daemon::{self, Backoff, DaemonConfig, DriftMode};
use modelship::source::{LocalSource, Source};
use tokio::sync::{oneshot, watch};

const NAMESPACES: usize = 10;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    if args.get(1).map(String::as_str) == Some("sandbox") {
        runtime.block_on(serve_sandbox(Path::new(&args[2])));
        return;
    }
    let services: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let shape = match args.get(2).map(String::as_str) {
        Some("example") => Shape::Example,
        _ => Shape::Small,
    };
    runtime.block_on(measure(services, shape));
}

/// The child: a sandbox that writes its kubeconfig and runs until its stdin closes.
async fn serve_sandbox(kubeconfig: &Path) {
    let stop = async {
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
        })
        .await;
    };
    modelship::sandbox::serve("127.0.0.1:0".parse().expect("addr"), Some(kubeconfig), stop)
        .await
        .expect("sandbox serves");
}

/// The services of the generated repository.
#[derive(Clone, Copy)]
enum Shape {
    /// One CPU model server each (about 3.3 objects).
    Small,
    /// example-repo's services cycled, with its modelship.yaml (GPUs, HPAs, canaries,
    /// routes: about 6.8 objects each).
    Example,
}

fn write_example_repository(root: &Path, services: usize) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo");
    std::fs::create_dir_all(root.join("services")).expect("mkdir");
    std::fs::copy(example.join("modelship.yaml"), root.join("modelship.yaml")).expect("config");
    let mut shapes = Vec::new();
    for team in ["genai", "risk"] {
        for entry in std::fs::read_dir(example.join("services").join(team)).expect("services") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read");
            let name = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .to_string();
            shapes.push((name, text));
        }
    }
    shapes.sort();
    for i in 0..services {
        let (name, text) = &shapes[i % shapes.len()];
        let doc = text.replacen(
            &format!("  name: {name}\n"),
            &format!("  name: {name}-{i}\n"),
            1,
        );
        std::fs::write(root.join(format!("services/{name}-{i}.yaml")), doc).expect("write");
    }
}

fn write_repository(root: &Path, services: usize) {
    std::fs::create_dir_all(root.join("services")).expect("mkdir");
    for i in 0..services {
        let namespace = format!("ml-{}", i % NAMESPACES);
        let replicas = if i % 3 == 0 { 2 } else { 1 };
        let doc = format!(
            "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: model-{i}, namespace: {namespace}}}\nspec:\n  model: {{name: model-{i}, version: \"1.0.{i}\"}}\n  runtime: {{image: \"registry.example.com/server:1.{i}\", env: {{LOG_LEVEL: info}}}}\n  resources: {{cpu: \"1\", memory: 2Gi}}\n  replicas: {replicas}\n"
        );
        std::fs::write(root.join(format!("services/model-{i}.yaml")), doc).expect("write");
    }
}

fn start_sandbox(kubeconfig: &Path) -> Child {
    let child = Command::new(std::env::current_exe().expect("current exe"))
        .arg("sandbox")
        .arg(kubeconfig)
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sandbox child starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubeconfig.exists() {
        assert!(Instant::now() < deadline, "sandbox wrote no kubeconfig");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

async fn client(kubeconfig: &Path) -> kube::Client {
    let file = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

/// (VmRSS, VmHWM) of this process in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn measure(services: usize, shape: Shape) {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo: PathBuf = dir.path().join("repo");
    match shape {
        Shape::Small => write_repository(&repo, services),
        Shape::Example => write_example_repository(&repo, services),
    }
    let kubeconfig = dir.path().join("kubeconfig");
    let mut sandbox = start_sandbox(&kubeconfig);
    let client = client(&kubeconfig).await;
    let (before_rss, _) = memory_kib();

    let config = DaemonConfig {
        source: Source::Local(LocalSource::new(&repo)),
        repo_name: None,
        branch: "main".into(),
        interval: Duration::from_secs(3600),
        listen: "127.0.0.1:0".parse().expect("addr"),
        webhook_secret: None,
        drift: DriftMode::Heal,
        create_namespaces: true,
        namespaces: modelship::cluster::Namespaces::All,
        prune: modelship::plan::PruneMode::Guarded,
        concurrency: 8,
        backoff: Backoff::default(),
        election: None,
        pod: None,
        github: None,
        rollout: Default::default(),
        instance: Default::default(),
        prometheus_auth: Default::default(),
    };
    let (stop, shutdown) = watch::channel(false);
    let (started_tx, started_rx) = oneshot::channel();
    let started = Instant::now();
    let task = tokio::spawn(daemon::run(config, client, shutdown, Some(started_tx)));
    let handles = started_rx.await.expect("daemon started");
    let deadline = Instant::now() + Duration::from_secs(600);
    while !handles.board.read().await.ready {
        assert!(Instant::now() < deadline, "not ready within 10 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready_after = started.elapsed();
    let writes_at_ready = handles.metrics.writes.get();
    let (rss_at_ready, _) = memory_kib();
    // A no-change cycle: re-read the directory (same revision) and re-check every service.
    handles.trigger.notify_one();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes_after = handles.metrics.writes.get();
    let (rss, hwm) = memory_kib();
    let board = handles.board.read().await;
    let objects: usize = board.services.values().map(|s| s.objects).sum();
    let in_sync = board
        .services
        .values()
        .filter(|s| s.state() == "in-sync")
        .count();
    println!("services in sync:         {in_sync}");
    println!("services:                 {services} ({objects} objects)");
    println!("first revision reconciled: {ready_after:.2?}");
    println!("writes to reach it:        {writes_at_ready}");
    println!(
        "writes of a no-change cycle: {}",
        writes_after - writes_at_ready
    );
    println!(
        "daemon resident memory:    {:.1} MiB when ready, {:.1} MiB after a no-change cycle, {:.1} MiB peak (process before the daemon: {:.1} MiB)",
        rss_at_ready as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        before_rss as f64 / 1024.0
    );
    drop(board);
    let _ = stop.send(true);
    let _ = task.await;
    drop(sandbox.stdin.take());
    let _ = sandbox.wait();
}
