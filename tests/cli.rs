//! The `modelship` binary end to end: exit codes, stdout/stderr discipline, determinism.

mod support;

use support::binary::{output_blocking as modelship, text};
use support::example_repo;

#[test]
fn validate_accepts_the_example_repository() {
    let out = modelship(&["validate", example_repo().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("5 services valid"),
        "stderr: {}",
        text(&out.stderr)
    );
}

#[test]
fn render_prints_every_service_and_is_byte_identical_across_runs() {
    let dir = example_repo();
    let first = modelship(&["render", dir.to_str().unwrap()]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "stderr: {}",
        text(&first.stderr)
    );
    let second = modelship(&["render", dir.to_str().unwrap()]);
    assert_eq!(first.stdout, second.stdout, "render is not deterministic");

    let yaml = text(&first.stdout);
    for service in [
        "fraud-detection",
        "transaction-anomaly",
        "llm-chat",
        "image-classifier",
        "text-embedding",
    ] {
        assert!(
            yaml.contains(&format!("modelship.dev/service: {service}")),
            "{service} missing"
        );
    }
    for kind in [
        "ServiceAccount",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "HTTPRoute",
        "VirtualService",
        "DestinationRule",
    ] {
        assert!(
            yaml.contains(&format!("kind: {kind}\n")),
            "no {kind} rendered"
        );
    }
}

#[test]
fn render_of_one_service_as_json_is_a_list_of_only_its_objects() {
    let out = modelship(&[
        "render",
        example_repo().to_str().unwrap(),
        "--service",
        "llm-chat",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let list: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("render -o json prints JSON");
    let items = list["items"].as_array().expect("a List with items");
    assert!(
        items.len() >= 5,
        "llm-chat compiles to at least 5 objects, got {}",
        items.len()
    );
    for item in items {
        assert_eq!(
            item["metadata"]["labels"]["modelship.dev/service"],
            "llm-chat"
        );
    }
}

#[test]
fn render_of_an_unknown_service_fails_with_exit_2() {
    let out = modelship(&[
        "render",
        example_repo().to_str().unwrap(),
        "--service",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("no service named `nope`"),
        "{}",
        text(&out.stderr)
    );
}

/// A repository with one error in each of two files.
fn broken_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let services = dir.path().join("services");
    std::fs::create_dir_all(&services).unwrap();
    let valid =
        std::fs::read_to_string(example_repo().join("services/risk/fraud-detection.yaml")).unwrap();
    std::fs::write(
        services.join("a.yaml"),
        valid.replace("maxReplicas: 20", "maxReplica: 20"),
    )
    .unwrap();
    std::fs::write(
        services.join("b.yaml"),
        "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata:\n  name: b\nspec:\n  model: {name: m, version: \"1\"}\n  runtime: {image: \"example.com/server:latest\"}\n  resources: {cpu: \"1\", memory: 1Gi}\n",
    )
    .unwrap();
    dir
}

#[test]
fn validate_reports_errors_in_two_files_and_exits_2() {
    let dir = broken_repo();
    let out = modelship(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("services/a.yaml:")
            && stderr.contains("spec.autoscaling.maxReplica: unknown field"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean maxReplicas?"), "{stderr}");
    assert!(
        stderr.contains("services/b.yaml:7:") && stderr.contains("spec.runtime.image"),
        "{stderr}"
    );
}

#[test]
fn render_of_an_invalid_repository_prints_nothing_on_stdout() {
    let dir = broken_repo();
    let out = modelship(&["render", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
}

#[test]
fn an_unreadable_directory_exits_1() {
    let out = modelship(&["validate", "/no/such/repository"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/no/such/repository"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn run_refuses_a_webhook_secret_shorter_than_16_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let out = modelship(&[
        "run",
        "--repo",
        example_repo().to_str().unwrap(),
        "--webhook-secret-file",
        secret.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the webhook secret") && stderr.contains("at least 16"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
