//! Every built-in object rendered from example-repo passes strict OpenAPI schema validation
//! (`kubernetes-validate --strict`) for the oldest and the newest Kubernetes versions the
//! tool knows: an independent check that what we emit is what an API server accepts.
//!
//! The tool comes from PyPI; `scripts/setup` installs it into `.venv`. This test fails,
//! rather than skips, when it is missing.

use std::path::Path;

use modelship::compile::{self, Source};

mod support;

const VERSIONS: [&str; 2] = ["1.33.0", "1.37.0"];

#[test]
fn rendered_builtin_objects_pass_strict_schema_validation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo");
    let files = modelship::source::read_dir(&root).unwrap();
    let repo = modelship::spec::load(&files);
    assert!(repo.is_valid(), "{:?}", repo.diagnostics);
    let desired = compile::compile_repository(&repo, &Source::local());
    assert!(desired.errors.is_empty(), "{:?}", desired.errors);

    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, object) in desired.objects().into_iter().enumerate() {
        let json = object.to_json().unwrap();
        let api_version = json["apiVersion"].as_str().unwrap_or_default();
        // Route kinds are CRDs with no schema in the tool; the sandbox tests cover them.
        if api_version.contains("gateway.networking.k8s.io") || api_version.contains("istio.io") {
            continue;
        }
        let path = dir
            .path()
            .join(format!("{i:03}-{}-{}.json", object.kind(), object.name()));
        std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        paths.push(path);
    }
    assert!(
        paths.len() >= 20,
        "expected the built-in objects of five services, got {}",
        paths.len()
    );

    for version in VERSIONS {
        support::schema::assert_strictly_valid(&paths, version);
    }
}
