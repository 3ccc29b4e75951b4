//! `modelship policies export`: the shipped policies become Kubernetes YAML that passes
//! strict schema validation (`kubernetes-validate --strict`, Kubernetes 1.33), loads back
//! unchanged, keeps written bindings, and leaves out what only checks ModelService specs.
//!
//! kubernetes-validate comes from PyPI; `scripts/setup` installs it into `.venv`. The
//! schema test fails, rather than skips, when it is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use modelship::cli::Exit;
use modelship::cli::policies::{ExportConfig, export};
use modelship::policy::{Action, PolicySet, Subject};
use serde_json::json;

mod support;

const SPEC_ONLY: [&str; 3] = ["gpu-budget", "production-gpu-canary", "require-owner"];

/// Exports the project's policies (plus `extra` directories) into a fresh directory.
fn export_to_dir(extra: &[PathBuf]) -> (tempfile::TempDir, String) {
    let out = tempfile::tempdir().unwrap();
    let config = ExportConfig {
        root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        policy_dirs: extra.to_vec(),
        out_dir: Some(out.path().to_path_buf()),
        instance: "modelship".to_string(),
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = export(&config, &mut stdout, &mut stderr).unwrap();
    let stderr = String::from_utf8(stderr).unwrap();
    assert_eq!(code, Exit::Ok, "{stderr}");
    assert!(stdout.is_empty());
    (out, stderr)
}

fn exported_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn exported_policies_pass_strict_schema_validation() {
    let (out, _) = export_to_dir(&[]);
    let paths: Vec<PathBuf> = exported_files(out.path())
        .keys()
        .map(|name| out.path().join(name))
        .collect();
    assert!(paths.len() >= 5, "{paths:?}");
    let report = support::schema::assert_strictly_valid(&paths, "1.33.0");
    // Every document was checked: one policy and one binding per file.
    let validated = report.matches(" passed for resource ").count();
    assert_eq!(validated, 2 * paths.len(), "{report}");
}

#[test]
fn spec_only_policies_are_skipped_with_a_note() {
    let (out, stderr) = export_to_dir(&[]);
    let files = exported_files(out.path());
    for name in SPEC_ONLY {
        assert!(
            !files.contains_key(&format!("{name}.yaml")),
            "{name} exported"
        );
        assert!(
            stderr.contains(&format!(
                "skipped policy {name}: it only checks ModelService specs"
            )),
            "{stderr}"
        );
    }
    for name in [
        "allowed-registries",
        "no-latest-images",
        "memory-request-equals-limit",
        "no-privileged-pods",
        "gpu-increase-limit",
    ] {
        assert!(
            files.contains_key(&format!("{name}.yaml")),
            "{name} missing: {:?}",
            files.keys()
        );
    }
}

#[test]
fn exported_files_load_back_with_a_deny_binding_each() {
    let (out, _) = export_to_dir(&[]);
    let files: BTreeMap<String, Vec<u8>> = exported_files(out.path())
        .into_iter()
        .map(|(name, bytes)| (format!("policies/{name}"), bytes))
        .collect();
    let (set, diagnostics) = PolicySet::load(&files);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let bindings: Vec<_> = set
        .documents()
        .iter()
        .filter(|d| d.kind == "ValidatingAdmissionPolicyBinding")
        .collect();
    assert_eq!(bindings.len(), files.len());
    for binding in bindings {
        assert_eq!(
            binding.json["spec"]["validationActions"],
            json!(["Deny"]),
            "{}",
            binding.name
        );
    }
    // The exported rules behave as the originals: a Docker Hub image is denied, on the
    // objects modelship manages (the exported bindings select them by label).
    let mut object = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n",
            "labels": {"app.kubernetes.io/managed-by": "modelship", "modelship.dev/instance": "modelship"}},
        "spec": {"template": {"spec": {"containers": [{"name": "s", "image": "docker.io/x:1",
            "resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi"}}}]}}}});
    let denied = |object: &serde_json::Value| -> Vec<String> {
        set.evaluate(&Subject::new(object))
            .into_iter()
            .filter(|v| v.action == Action::Deny)
            .map(|v| v.policy)
            .collect()
    };
    assert_eq!(denied(&object), ["allowed-registries"]);
    // Another team's Deployment (or another instance's) is not modelship's to judge.
    object["metadata"]["labels"]["modelship.dev/instance"] = json!("other");
    assert_eq!(denied(&object), Vec::<String>::new());
    object["metadata"]["labels"] = json!({});
    assert_eq!(denied(&object), Vec::<String>::new());
}

/// The binding documents of every exported file, by policy name.
fn exported_bindings(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    exported_files(dir)
        .values()
        .flat_map(|bytes| {
            serde_saphyr::from_multiple::<serde_json::Value>(std::str::from_utf8(bytes).unwrap())
                .unwrap()
        })
        .filter(|d| d["kind"] == "ValidatingAdmissionPolicyBinding")
        .map(|d| (d["spec"]["policyName"].as_str().unwrap().to_string(), d))
        .collect()
}

#[test]
fn bindings_select_the_instance_given_and_cluster_wide_policies_everything() {
    let extra = tempfile::tempdir().unwrap();
    std::fs::write(
        extra.path().join("cluster-wide.yaml"),
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: cluster-wide\n  annotations:\n    modelship.dev/scope: cluster\nspec:\n  matchConstraints:\n    resourceRules:\n      - {apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE]}\n  validations:\n    - expression: \"!has(object.spec.hostNetwork)\"\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let config = ExportConfig {
        root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        policy_dirs: vec![extra.path().to_path_buf()],
        out_dir: Some(out.path().to_path_buf()),
        instance: "team-a".to_string(),
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = export(&config, &mut stdout, &mut stderr).unwrap();
    assert_eq!(code, Exit::Ok, "{}", String::from_utf8_lossy(&stderr));
    let bindings = exported_bindings(out.path());
    assert_eq!(bindings.len(), 6, "{:?}", bindings.keys());
    for (policy, binding) in &bindings {
        let expected = if policy == "cluster-wide" {
            serde_json::Value::Null
        } else {
            json!({"objectSelector": {"matchLabels": {
                "app.kubernetes.io/managed-by": "modelship",
                "modelship.dev/instance": "team-a",
            }}})
        };
        assert_eq!(binding["spec"]["matchResources"], expected, "{policy}");
    }
}

#[test]
fn an_instance_that_is_no_label_value_fails_the_command() {
    let config = ExportConfig {
        root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        policy_dirs: Vec::new(),
        out_dir: None,
        instance: "team/a".to_string(),
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let err = export(&config, &mut stdout, &mut stderr).unwrap_err();
    assert!(err.to_string().contains("instance `team/a`"), "{err:#}");
    assert!(stdout.is_empty());
}

#[test]
fn written_bindings_are_exported_and_mixed_rules_trimmed() {
    let extra = tempfile::tempdir().unwrap();
    std::fs::write(
        extra.path().join("replicas.yaml"),
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: replicas\n  uid: 1234\nspec:\n  matchConstraints:\n    resourceRules:\n      - {apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE]}\n      - {apiGroups: [modelship.dev], apiVersions: [v1alpha1], resources: [modelservices], operations: [CREATE]}\n  validations:\n    - expression: \"!has(object.spec.replicas) || object.spec.replicas <= 10\"\n---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: replicas-warn\nspec:\n  policyName: replicas\n  validationActions: [Warn, Audit]\n",
    )
    .unwrap();
    let (out, stderr) = export_to_dir(&[extra.path().to_path_buf()]);
    assert!(
        stderr.contains("policy replicas: rules on modelship.dev dropped"),
        "{stderr}"
    );
    let text = String::from_utf8(exported_files(out.path())["replicas.yaml"].clone()).unwrap();
    assert!(
        text.contains("replicas-warn") && text.contains("Warn") && text.contains("Audit"),
        "{text}"
    );
    assert!(
        !text.contains("modelservices") && !text.contains("uid"),
        "{text}"
    );
}

#[test]
fn broken_policies_export_nothing_and_exit_2() {
    let extra = tempfile::tempdir().unwrap();
    std::fs::write(
        extra.path().join("bad.yaml"),
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: bad\nspec:\n  matchConstraints:\n    resourceRules:\n      - {apiGroups: [apps], apiVersions: [v1], resources: [deployments], operations: [CREATE]}\n  validations:\n    - expression: object.spec.replicas.isSemver()\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let config = ExportConfig {
        root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        policy_dirs: vec![extra.path().to_path_buf()],
        out_dir: Some(out.path().join("out")),
        instance: "modelship".to_string(),
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    assert_eq!(
        export(&config, &mut stdout, &mut stderr).unwrap(),
        Exit::Invalid
    );
    let stderr = String::from_utf8(stderr).unwrap();
    let expected = format!(
        "{}/bad.yaml:10:19: error: spec.validations[0].expression: unknown function `isSemver`",
        extra.path().display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!out.path().join("out").exists());
}

#[test]
fn without_a_directory_the_yaml_goes_to_stdout() {
    let config = ExportConfig {
        root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        policy_dirs: Vec::new(),
        out_dir: None,
        instance: "modelship".to_string(),
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    assert_eq!(export(&config, &mut stdout, &mut stderr).unwrap(), Exit::Ok);
    let stdout = String::from_utf8(stdout).unwrap();
    assert_eq!(
        stdout.matches("kind: ValidatingAdmissionPolicy\n").count(),
        5,
        "{stdout}"
    );
    assert_eq!(
        stdout
            .matches("kind: ValidatingAdmissionPolicyBinding\n")
            .count(),
        5,
        "{stdout}"
    );
}
