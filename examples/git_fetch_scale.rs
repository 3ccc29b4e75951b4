//! Measures the Git source on a large repository: 10,000 service files in 100 team
//! directories and a long history. Reports time and peak resident memory of the first
//! fetch into an empty cache, of a fetch with nothing new, and of a fetch that brings one
//! changed file, with how many blobs each read.
//!
//! ```sh
//! cargo run --example git_fetch_scale                    # 10,000 files, 2,000 commits
//! cargo run --example git_fetch_scale -- 1000 200        # other sizes
//! ```
//!
//! The repository is written and changed by child processes (this same executable with
//! `generate` or `change`), and served by another (`serve`: `git http-backend` behind the
//! TLS server of the tests, with a token and a private CA), so the measuring process does
//! nothing but fetch, over git's smart HTTP as in production. Peak memory is the
//! process's VmHWM, reset before each fetch through /proc/self/clear_refs (Linux).

#[path = "../tests/support/git/mod.rs"]
mod git_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use git_support::remote;

use git2::{Oid, Repository};
use modelship::source::{GitAuth, GitConfig, GitSource, ReadStats, SecretSource};

const TOKEN: &str = "bench-token";

const TEAMS: usize = 100;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("generate") => generate(Path::new(&args[2]), number(&args, 3), number(&args, 4)),
        Some("change") => change_one(Path::new(&args[2]), number(&args, 3)),
        Some("serve") => serve(Path::new(&args[2])),
        _ => {
            let services = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
            let commits = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2_000);
            measure(services, commits);
        }
    }
}

fn number(args: &[String], index: usize) -> usize {
    args.get(index)
        .and_then(|a| a.parse().ok())
        .expect("a number argument")
}

fn path_of(i: usize) -> String {
    format!("services/team-{:02}/model-{i:05}.yaml", i % TEAMS)
}

fn document(i: usize, revision: usize) -> String {
    format!(
        "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: model-{i}, namespace: ml-{team}}}\nspec:\n  model: {{name: model-{i}, version: \"1.0.{revision}\"}}\n  runtime: {{image: \"registry.example.com/server:1.{revision}\", env: {{LOG_LEVEL: info}}}}\n  resources: {{cpu: \"1\", memory: 2Gi}}\n  replicas: {replicas}\n",
        team = i % TEAMS,
        replicas = 1 + i % 3,
    )
}

/// The child: a bare repository at `dir` with `services` files, then `commits` commits
/// each changing one file.
fn generate(dir: &Path, services: usize, commits: usize) {
    let repo = Repository::init_bare(dir).expect("init");
    let remote = remote::Remote::open(repo);
    let files: Vec<(String, String)> = (0..services)
        .map(|i| (path_of(i), document(i, 0)))
        .collect();
    remote.commit("main", &files);
    for n in 1..=commits {
        let i = (n * 7919) % services;
        change(&remote, i, n);
    }
    // A server's repository is packed (pushes arrive as packs, gc packs the rest).
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["repack", "-a", "-d", "-q"])
        .status()
        .expect("git repack runs");
    assert!(status.success(), "git repack failed");
}

/// Commits a new version of file `i` on main, rewriting only the trees on its path.
fn change(remote: &remote::Remote, i: usize, revision: usize) -> Oid {
    let repo = &remote.repo;
    let head = repo
        .find_commit(repo.refname_to_id("refs/heads/main").expect("main"))
        .expect("head");
    let root = head.tree().expect("tree");
    let path = path_of(i);
    let blob = repo.blob(document(i, revision).as_bytes()).expect("blob");
    let (dir, name) = path.rsplit_once('/').expect("a directory");
    let tree = replace(repo, &root, dir, name, blob);
    remote.commit_tree("main", tree, &format!("change {path}"))
}

/// `tree` with `dir/name` set to `blob`, writing new trees along `dir` only.
fn replace(repo: &Repository, tree: &git2::Tree<'_>, dir: &str, name: &str, blob: Oid) -> Oid {
    let mut builder = repo.treebuilder(Some(tree)).expect("builder");
    match dir.split_once('/') {
        None if dir.is_empty() => {
            builder.insert(name, blob, 0o100644).expect("insert");
        }
        split => {
            let (first, rest) = split.unwrap_or((dir, ""));
            let child = tree
                .get_name(first)
                .and_then(|e| repo.find_tree(e.id()).ok())
                .expect("directory exists");
            let id = replace(repo, &child, rest, name, blob);
            builder.insert(first, id, 0o040000).expect("insert");
        }
    }
    builder.write().expect("write tree")
}

/// The child: one more commit changing one file.
fn change_one(dir: &Path, services: usize) {
    let remote = remote::Remote::open(Repository::open_bare(dir).expect("open"));
    change(&remote, services / 2, 1_000_000);
}

/// The child: serves the repositories below `root` over HTTPS, writes the CA to
/// `root/ca.crt`, prints the address, and runs until its stdin closes.
fn serve(root: &Path) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let server = git_support::https::GitHttps::start(root, "x-access-token", TOKEN)
            .await
            .expect("git http-backend is installed (scripts/setup)");
        server.ca.write_ca(&root.join("ca.crt"));
        println!("{}", server.addr);
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
        })
        .await;
    });
}

fn run_child(args: &[&str]) {
    let status = Command::new(std::env::current_exe().expect("own path"))
        .args(args)
        .status()
        .expect("child runs");
    assert!(status.success(), "child {args:?} failed");
}

/// Peak and current resident memory of this process, in MiB (VmHWM, VmRSS).
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn reset_peak() {
    // "5" resets the peak resident set size to the current one (Linux 4.0 and later).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn timed_fetch(label: &str, git: &GitSource) -> ReadStats {
    reset_peak();
    let (_, before) = memory();
    let started = Instant::now();
    let (snapshot, stats) = git.fetch_blocking_with_stats().expect("fetch");
    let elapsed = started.elapsed();
    let (peak, after) = memory();
    println!(
        "{label:<24} {:>9.1} ms  peak RSS {peak:>6.1} MiB (+{:.1} over {before:.1})  RSS after {after:.1} MiB  files {}  blobs read {}  reused {}",
        elapsed.as_secs_f64() * 1000.0,
        peak - before,
        snapshot.files.len(),
        stats.blobs_read,
        stats.files_reused,
    );
    stats
}

/// The object-database part of the last fetch alone: reading the new head's tree with and
/// without the previous commit's read to reuse.
fn read_alone(cache: &Path) {
    use modelship::source::RevisionLimits;
    use modelship::source::git_tree::read_commit;
    let limits = RevisionLimits::default();
    let repo = Repository::open_bare(cache).expect("cache");
    let head = repo
        .refname_to_id("refs/modelship/main")
        .expect("fetched ref");
    let parent = repo
        .find_commit(head)
        .and_then(|c| c.parent_id(0))
        .expect("a parent");
    let (previous, _) = read_commit(&repo, parent, ".", None, limits).expect("read parent");
    for (label, base) in [
        ("read, no reuse", None),
        ("read, reusing parent", Some(&previous)),
    ] {
        let started = Instant::now();
        let (_, stats) = read_commit(&repo, head, ".", base, limits).expect("read head");
        println!(
            "{label:<24} {:>9.1} ms  blobs read {}  reused {}",
            started.elapsed().as_secs_f64() * 1000.0,
            stats.blobs_read,
            stats.files_reused
        );
    }
}

fn measure(services: usize, commits: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo_dir = dir.path().join("models.git");
    let repo_arg = repo_dir.display().to_string();
    let started = Instant::now();
    run_child(&[
        "generate",
        &repo_arg,
        &services.to_string(),
        &commits.to_string(),
    ]);
    println!(
        "generated {services} files and {} commits in {:.1} s",
        commits + 1,
        started.elapsed().as_secs_f64()
    );
    let mut server = Command::new(std::env::current_exe().expect("own path"))
        .args(["serve", &dir.path().display().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server starts");
    let mut addr = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut addr)
        .expect("server address");
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).expect("token file");
    let git = GitSource::new(GitConfig {
        url: format!("https://{}/models.git", addr.trim()),
        branch: "main".into(),
        path: ".".into(),
        cache_dir: dir.path().join("cache"),
        auth: GitAuth::Basic {
            username: "x-access-token".into(),
            password: SecretSource::File(token),
        },
        ca_file: Some(dir.path().join("ca.crt")),
    });
    let (_, idle) = memory();
    println!("RSS before fetching: {idle:.1} MiB");
    timed_fetch("first fetch (empty cache)", &git);
    timed_fetch("fetch, nothing new", &git);
    // A restart: the cache is on disk, nothing is new, but no previous read to reuse.
    let restarted = GitSource::new(git.config().clone());
    timed_fetch("restart, nothing new", &restarted);
    run_child(&["change", &repo_arg, &services.to_string()]);
    let stats = timed_fetch("fetch, one file changed", &git);
    assert_eq!(stats.blobs_read, 1, "one changed file is one blob read");
    read_alone(&dir.path().join("cache"));
    drop(server.stdin.take());
    let _ = server.wait();
}
