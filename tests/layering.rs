//! The layering is a fact, not a convention: the core crate depends on no client, runtime
//! or network crate, and nothing outside the engine writes to the cluster.

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

#[test]
fn only_the_engine_calls_the_writer_and_only_the_writer_patches_or_deletes() {
    // What writes: the Writer's methods, and kube's write calls.
    let writer_calls = [
        "writer.apply(",
        "writer.delete(",
        "writer.ensure_namespace(",
        "writer.annotate(",
        "writer.label(",
        "writer.record_event(",
    ];
    let kube_writes = [
        "api.patch(",
        "api.delete(",
        "api.create(",
        "api.replace(",
        "Patch::Apply",
        "patch_status(",
    ];
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut offenders = Vec::new();
    for file in files {
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
        let in_engine = relative.starts_with("src/engine/");
        let is_writer = relative == "src/cluster/writer.rs";
        if !in_engine && writer_calls.iter().any(|c| code.contains(c)) {
            offenders.push(format!("{relative} calls the writer"));
        }
        // The leader election writes its Lease through kube-lease-manager, not through
        // these calls; tests of modules may patch the sandbox.
        let test_module = relative.ends_with("_tests.rs") || relative.ends_with("tests.rs");
        if !is_writer && !test_module && kube_writes.iter().any(|c| code.contains(c)) {
            offenders.push(format!("{relative} writes to the API"));
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}
