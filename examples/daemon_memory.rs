//! Measures the daemon with many services: time until the first revision is reconciled,
//! resident memory of the daemon process, and writes of a no-change cycle.
//!
//! ```sh
//! cargo run --release --example daemon_memory                    # 1,000 small services
//! cargo run --release --example daemon_memory -- 1000 example    # example-repo's five
//!                                                 # services, cycled (about 6.8 objects each)
//! cargo run --release --example daemon_memory -- 10000 small git # followed through Git
//! cargo run --release --example daemon_memory -- 10 small bomb   # and 120 paths to one
//!                                                 # 3.9 MB blob, refused by the limits
//! cargo run --release --example daemon_memory -- 10 small bomb-unlimited  # the same with
//!                                                 # the revision limits lifted, to compare
//! cargo run --release --example daemon_memory -- 30 dense git    # valid specs as large as
//!                                                 # the limits allow (45,000 env entries each)
//! ```
//!
//! The third argument says how the repository is followed: as a directory (the default),
//! or committed into a bare Git repository and fetched as the daemon of `deploy/` does.
//!
//! The sandbox API server runs in a child process (this same executable with the argument
//! `sandbox`), so the memory measured is the daemon's alone: its watch cache, the compiled
//! repository, the status board, the kube client and the runtime.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use git2::{Repository, Signature};
use modelship::daemon::{self, Backoff, DaemonConfig, DriftMode};
use modelship::source::{GitAuth, GitConfig, GitSource, LocalSource, RevisionLimits, Source};
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
        Some("dense") => Shape::Dense,
        _ => Shape::Small,
    };
    let follow = match args.get(3).map(String::as_str) {
        Some("git") => Follow::Git(Bomb::None),
        Some("bomb") => Follow::Git(Bomb::Refused),
        Some("bomb-unlimited") => Follow::Git(Bomb::Unlimited),
        _ => Follow::Directory,
    };
    runtime.block_on(measure(services, shape, follow));
}

/// How the daemon follows the generated repository.
#[derive(Clone, Copy)]
enum Follow {
    Directory,
    /// Committed into a bare repository, with or without the blob bomb.
    Git(Bomb),
}

#[derive(Clone, Copy, PartialEq)]
enum Bomb {
    None,
    /// 120 paths to one 3.9 MB blob, within the default limits (refused).
    Refused,
    /// The same with the revision limits lifted.
    Unlimited,
}

/// Paths of the bomb, all pointing at one blob.
const BOMB_PATHS: usize = 120;

/// Commits the directory `root` (its `services/` files) into a new bare repository at
/// `bare`, with the bomb when asked; returns the repository's path.
fn commit_repository(root: &Path, bare: &Path, bomb: Bomb) {
    let repo = Repository::init_bare(bare).expect("bare repository");
    let mut services = repo.treebuilder(None).expect("treebuilder");
    for entry in std::fs::read_dir(root.join("services")).expect("services") {
        let path = entry.expect("entry").path();
        let blob = repo
            .blob(&std::fs::read(&path).expect("read"))
            .expect("blob");
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        services.insert(name, blob, 0o100644).expect("insert");
    }
    if bomb != Bomb::None {
        let line = "# padding of a file that many paths hold\n";
        let text = format!("a: 1\n{}", line.repeat(3_900_000 / line.len()));
        let blob = repo.blob(text.as_bytes()).expect("blob");
        for i in 0..BOMB_PATHS {
            services
                .insert(format!("bomb-{i:03}.yaml"), blob, 0o100644)
                .expect("insert");
        }
    }
    let services = services.write().expect("tree");
    let mut top = repo.treebuilder(None).expect("treebuilder");
    top.insert("services", services, 0o040000).expect("insert");
    if root.join("modelship.yaml").exists() {
        let config = std::fs::read(root.join("modelship.yaml")).expect("config");
        let blob = repo.blob(&config).expect("blob");
        top.insert("modelship.yaml", blob, 0o100644)
            .expect("insert");
    }
    let tree = repo
        .find_tree(top.write().expect("tree"))
        .expect("find tree");
    let signature = Signature::now("bench", "bench@example.com").expect("signature");
    repo.commit(
        Some("refs/heads/main"),
        &signature,
        &signature,
        "bench",
        &tree,
        &[],
    )
    .expect("commit");
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
    /// Small services with 45,000 env entries each: about 1 MB and 90,000 nodes a file,
    /// near the YAML limit of a document; 30 of them near the byte limit of a revision.
    Dense,
}

/// Entries of the env of a [`Shape::Dense`] service.
const DENSE_ENV: usize = 45_000;

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

fn write_repository(root: &Path, services: usize, env: usize) {
    std::fs::create_dir_all(root.join("services")).expect("mkdir");
    let env: String = (0..env).map(|e| format!(", E{e}: v{e}")).collect();
    for i in 0..services {
        let namespace = format!("ml-{}", i % NAMESPACES);
        let replicas = if i % 3 == 0 { 2 } else { 1 };
        let doc = format!(
            "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: model-{i}, namespace: {namespace}}}\nspec:\n  model: {{name: model-{i}, version: \"1.0.{i}\"}}\n  runtime: {{image: \"registry.example.com/server:1.{i}\", env: {{LOG_LEVEL: info{env}}}}}\n  resources: {{cpu: \"1\", memory: 2Gi}}\n  replicas: {replicas}\n"
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

async fn measure(services: usize, shape: Shape, follow: Follow) {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo: PathBuf = dir.path().join("repo");
    match shape {
        Shape::Small => write_repository(&repo, services, 0),
        Shape::Dense => write_repository(&repo, services, DENSE_ENV),
        Shape::Example => write_example_repository(&repo, services),
    }
    let source = match follow {
        Follow::Directory => Source::Local(LocalSource::new(&repo)),
        Follow::Git(bomb) => {
            let bare = dir.path().join("remote.git");
            commit_repository(&repo, &bare, bomb);
            let git = GitSource::new(GitConfig {
                url: bare.display().to_string(),
                branch: "main".into(),
                path: ".".into(),
                cache_dir: dir.path().join("cache"),
                auth: GitAuth::Anonymous,
                ca_file: None,
            });
            Source::Git(match bomb {
                Bomb::Unlimited => git.with_limits(RevisionLimits {
                    max_files: usize::MAX,
                    max_file_bytes: u64::MAX,
                    max_total_bytes: u64::MAX,
                    max_nodes: u64::MAX,
                }),
                _ => git,
            })
        }
    };
    let kubeconfig = dir.path().join("kubeconfig");
    let mut sandbox = start_sandbox(&kubeconfig);
    let client = client(&kubeconfig).await;
    let (before_rss, _) = memory_kib();

    let config = DaemonConfig {
        source,
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
    let deadline = Instant::now() + Duration::from_secs(3600);
    while !handles.board.read().await.ready {
        assert!(
            Instant::now() < deadline,
            "not ready within an hour (a debug build of 10,000 services takes minutes)"
        );
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
    if let Some(error) = &board.source_error {
        println!("source error:             {error}");
    }
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
