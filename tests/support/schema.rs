//! Strict OpenAPI schema checks with the PyPI tool `kubernetes-validate`, shared by the
//! tests that check what modelship emits (rendered objects, exported policies, `deploy/`).
//!
//! `scripts/setup` installs the tool into `.venv`; `MODELSHIP_KUBERNETES_VALIDATE` points
//! elsewhere. A missing tool fails the test with that hint: it is never a silent skip.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `kubernetes-validate` executable; panics with a setup hint when it is missing.
pub fn validator() -> PathBuf {
    let path = std::env::var_os("MODELSHIP_KUBERNETES_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/kubernetes-validate")
        });
    assert!(
        path.exists(),
        "kubernetes-validate not found at {}: run scripts/setup (or set MODELSHIP_KUBERNETES_VALIDATE)",
        path.display()
    );
    path
}

/// Validates `paths` strictly (unknown fields are errors) against Kubernetes `version`,
/// asserts that every document passed with no warning, and returns the tool's report.
pub fn assert_strictly_valid(paths: &[PathBuf], version: &str) -> String {
    let out = Command::new(validator())
        .args(["--strict", "-k", version])
        .args(paths)
        .output()
        .expect("kubernetes-validate runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "Kubernetes {version}: strict validation failed:\n{report}"
    );
    assert!(
        !report.contains("ERROR") && !report.contains("WARN"),
        "Kubernetes {version}:\n{report}"
    );
    report
}
