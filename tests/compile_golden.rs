//! Golden files: every service of `example-repo/` compiled and rendered as YAML must match
//! `tests/golden/<namespace>/<name>.yaml` byte for byte.
//!
//! After an intended change of the output, rewrite the files and review the diff:
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo test --test compile_golden
//! git diff tests/golden
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use modelship::compile::{
    ANNOTATION_SOURCE, ANNOTATION_SPEC_HASH, DesiredSet, Kind, LABEL_COMPONENT, LABEL_INSTANCE,
    LABEL_MANAGED_BY, LABEL_NAME, LABEL_SERVICE, LABEL_VERSION, Source, compile_canary_deployment,
    compile_repository, render_yaml,
};
use modelship::spec::Repository;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The source the goldens are compiled with: a fixed commit of a fixed repository.
fn source() -> Source {
    Source {
        repo: Some("github.com/example/ml-platform".to_string()),
        commit: Some("4f2c9e1d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e".to_string()),
        instance: Default::default(),
    }
}

/// Reads and validates a repository directory the way the CLI does.
fn load_repository(dir: &Path) -> Repository {
    let files = modelship::source::read_dir(dir).expect("repository directory");
    let repo = modelship::spec::load(&files);
    assert!(repo.is_valid(), "{}: {:?}", dir.display(), repo.diagnostics);
    repo
}

fn example() -> (Repository, DesiredSet) {
    let repo = load_repository(&root().join("example-repo"));
    let set = compile_repository(&repo, &source());
    (repo, set)
}

/// A unified diff of golden vs compiled, for a readable failure.
fn diff(expected: &str, actual: &str, path: &Path) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{} (golden)", path.display()), "compiled")
        .to_string()
}

#[test]
fn example_repo_matches_golden_files() {
    let (repo, set) = example();
    assert!(set.errors.is_empty(), "compile errors: {:#?}", set.errors);
    assert_eq!(set.services.len(), repo.services.len());
    let golden_dir = root().join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    let mut expected_files = BTreeSet::new();
    for svc in &set.services {
        let path = golden_dir
            .join(svc.id.namespace())
            .join(format!("{}.yaml", svc.id.name()));
        expected_files.insert(path.clone());
        let actual = render_yaml(&svc.objects).expect("render");
        if update {
            fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
            fs::write(&path, &actual).expect("write golden");
            continue;
        }
        match fs::read_to_string(&path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(diff(&expected, &actual, &path)),
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    let mut present = Vec::new();
    collect_yaml(&golden_dir, &mut present);
    for stale in present.into_iter().filter(|p| !expected_files.contains(p)) {
        if update {
            fs::remove_file(&stale).expect("remove stale golden");
        } else {
            failures.push(format!(
                "{}: no service compiles to this file",
                stale.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended: UPDATE_GOLDEN=1 cargo test --test compile_golden",
        failures.join("\n")
    );
}

#[test]
fn compiling_and_rendering_twice_gives_the_same_bytes() {
    let (_, first) = example();
    let (_, second) = example();
    assert_eq!(first, second);
    let a = render_yaml(first.objects()).expect("render");
    let b = render_yaml(second.objects()).expect("render");
    assert_eq!(a, b);
    assert!(!a.is_empty());
}

#[test]
fn desired_set_is_in_apply_order() {
    let (_, set) = example();
    let keys: Vec<_> = set.objects().iter().map(|o| o.key()).collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| a.apply_order().cmp(&b.apply_order()));
    assert_eq!(keys, sorted);
    let unique: BTreeSet<_> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "duplicate object keys");
}

#[test]
fn every_object_carries_the_common_labels_and_annotations() {
    let (_, set) = example();
    for svc in &set.services {
        for object in &svc.objects {
            let meta = object.metadata();
            let labels = meta.labels.clone().unwrap_or_default();
            let annotations = meta.annotations.clone().unwrap_or_default();
            let what = object.key().to_string();
            for key in [
                LABEL_NAME,
                LABEL_INSTANCE,
                LABEL_VERSION,
                LABEL_COMPONENT,
                LABEL_MANAGED_BY,
                LABEL_SERVICE,
            ] {
                assert!(labels.contains_key(key), "{what}: label {key}");
            }
            assert_eq!(labels[LABEL_MANAGED_BY], "modelship", "{what}");
            assert_eq!(labels[LABEL_INSTANCE], svc.id.name(), "{what}");
            assert_eq!(annotations[ANNOTATION_SPEC_HASH], svc.spec_hash, "{what}");
            assert_eq!(
                annotations[ANNOTATION_SOURCE],
                format!(
                    "github.com/example/ml-platform@4f2c9e1d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e:{}",
                    svc.file
                ),
                "{what}"
            );
            assert_eq!(object.namespace(), svc.id.namespace(), "{what}");
        }
    }
}

#[test]
fn canary_deployment_differs_from_stable_only_by_track() {
    let (repo, set) = example();
    let loaded = repo
        .services
        .iter()
        .find(|s| s.name() == "llm-chat")
        .expect("llm-chat in example-repo");
    let canary = compile_canary_deployment(loaded, &repo.config, &source(), 1).expect("canary");
    let stable = set
        .objects()
        .into_iter()
        .find(|o| o.kind() == Kind::Deployment && o.name() == "llm-chat")
        .expect("stable deployment")
        .to_json()
        .expect("json");
    let mut canary = serde_json::to_value(&canary).expect("json");
    assert_eq!(canary["metadata"]["name"], "llm-chat-canary");
    assert_eq!(canary["spec"]["replicas"], 1);
    assert_eq!(
        canary["spec"]["selector"]["matchLabels"]["modelship.dev/track"],
        "canary"
    );
    // Put the stable values back: nothing else may differ.
    canary["metadata"]["name"] = "llm-chat".into();
    canary["metadata"]["labels"]["modelship.dev/track"] = "stable".into();
    canary["spec"]["selector"]["matchLabels"]["modelship.dev/track"] = "stable".into();
    canary["spec"]["template"]["metadata"]["labels"]["modelship.dev/track"] = "stable".into();
    canary["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]
        ["modelship.dev/track"] = "stable".into();
    canary["spec"]
        .as_object_mut()
        .expect("spec object")
        .remove("replicas");
    assert_eq!(canary, stable);
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("golden directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}
