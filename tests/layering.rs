//! The layering is a fact, not a convention: the core crate depends on no client, runtime
//! or network crate, only the cluster's writer calls kube's write APIs, and the CLI
//! writes only through the engine.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Crates the pure core must never pull in, directly or through another crate.
const FORBIDDEN: [&str; 10] = [
    "kube",
    "kube-client",
    "tokio",
    "git2",
    "axum",
    "hyper",
    "reqwest",
    "octocrab",
    "tower",
    "notify",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_core_crate_has_no_client_runtime_or_network_crate_in_its_tree() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .current_dir(root())
        .args([
            "tree",
            "--offline",
            "--package",
            "modelship-core",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("cargo tree runs");
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(names.contains(&"modelship-core"), "{tree}");
    assert!(names.contains(&"k8s-openapi"), "the tree was read: {tree}");
    let found: Vec<&&str> = FORBIDDEN.iter().filter(|c| names.contains(c)).collect();
    assert!(
        found.is_empty(),
        "modelship-core depends on {found:?}:\n{tree}"
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source directory readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The non-comment lines of every Rust file under `src/`, by path relative to the root.
fn sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files
        .into_iter()
        .map(|file| {
            let relative = file
                .strip_prefix(root())
                .unwrap_or(&file)
                .display()
                .to_string();
            let text = std::fs::read_to_string(&file).expect("source readable");
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            (relative, code)
        })
        .collect()
}

#[test]
fn only_the_writer_calls_kubes_write_apis() {
    let kube_writes = [
        "api.patch(",
        "api.delete(",
        "api.create(",
        "api.replace(",
        "Patch::Apply",
        "patch_status(",
    ];
    let mut offenders = Vec::new();
    for (relative, code) in sources() {
        let is_writer = relative == "src/cluster/writer.rs";
        // The leader election writes its Lease through kube-lease-manager, not through
        // these calls; tests of modules may patch the sandbox.
        let test_module = relative.ends_with("_tests.rs") || relative.ends_with("tests.rs");
        if !is_writer && !test_module && kube_writes.iter().any(|c| code.contains(c)) {
            offenders.push(format!("{relative} writes to the API"));
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn the_cli_writes_only_through_the_engine() {
    // The CLI hands a Writer to the engine and never calls one itself: what changes, what
    // is pruned and how far a rollout goes are the engine's decisions.
    let writer_calls = [
        "writer.apply(",
        "writer.delete(",
        "writer.ensure_namespace(",
        "writer.annotate(",
        "writer.label(",
        "writer.record_event(",
    ];
    let offenders: Vec<String> = sources()
        .into_iter()
        .filter(|(relative, _)| relative.starts_with("src/cli/"))
        .filter(|(_, code)| writer_calls.iter().any(|c| code.contains(c)))
        .map(|(relative, _)| format!("{relative} calls the writer"))
        .collect();
    assert!(offenders.is_empty(), "{offenders:#?}");
}
