//! Policies through the `modelship` binary: `validate` denies on a Deny violation (exit 2),
//! prints warnings without failing, reports broken policies, and `policies export` writes
//! one file per policy.

mod support;

use support::binary::{output_blocking as modelship, text};
use support::example_repo;

/// A copy of example-repo with `edit` applied to llm-chat's spec.
fn llm_chat_edited(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = support::example_copy();
    let spec = dir.path().join("services/genai/llm-chat.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, edit(text)).unwrap();
    dir
}

fn to_docker_hub(text: String) -> String {
    text.replace(
        "registry.example.com/genai/vllm-openai:0.6.3",
        "docker.io/vllm/vllm-openai:0.6.3",
    )
}

#[test]
fn a_deny_violation_makes_validate_exit_2_at_the_spec() {
    let repo = llm_chat_edited(to_docker_hub);
    let out = modelship(&["validate", repo.path().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("services/genai/llm-chat.yaml:2: error: Deployment genai/llm-chat: images must come from registry.example.com or nvcr.io: docker.io/vllm/vllm-openai:0.6.3 [policy allowed-registries, policies/allowed-registries.yaml:26]"),
        "{stderr}"
    );
    assert!(!stderr.contains("services valid"), "{stderr}");
}

#[test]
fn warn_bindings_print_warnings_and_validate_still_passes() {
    let repo = llm_chat_edited(to_docker_hub);
    std::fs::write(
        repo.path().join("policies/allowed-registries-binding.yaml"),
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata:\n  name: registries-warn\nspec:\n  policyName: allowed-registries\n  validationActions: [Warn]\n",
    )
    .unwrap();
    let out = modelship(&["validate", repo.path().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("services/genai/llm-chat.yaml:2: warning: Deployment genai/llm-chat: images must come from"), "{stderr}");
    assert!(stderr.contains("5 services valid"), "{stderr}");
}

#[test]
fn extra_policy_directories_are_checked_and_located() {
    let extra = tempfile::tempdir().unwrap();
    std::fs::write(
        extra.path().join("replicas.yaml"),
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: two-gpus\nspec:\n  matchConstraints:\n    resourceRules:\n      - {apiGroups: [modelship.dev], apiVersions: [v1alpha1], resources: [modelservices], operations: [CREATE]}\n  validations:\n    - expression: \"!has(object.spec.gpu) || object.spec.gpu.count <= 2\"\n      messageExpression: \"'at most 2 GPUs, found ' + string(object.spec.gpu.count)\"\n",
    )
    .unwrap();
    let extra_dir = extra.path().to_str().unwrap();
    let out = modelship(&[
        "validate",
        example_repo().to_str().unwrap(),
        "--policies",
        extra_dir,
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("services/genai/llm-chat.yaml:2: error: ModelService genai/llm-chat: at most 2 GPUs, found 4 [policy two-gpus, {extra_dir}/replicas.yaml:10]")),
        "{stderr}"
    );

    std::fs::write(extra.path().join("broken.yaml"), "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: broken}\nspec:\n  matchConstraints:\n    resourceRules: [{apiGroups: ['*'], apiVersions: ['*'], resources: ['*'], operations: ['*']}]\n  validations:\n    - expression: object.metadata.name.isSemver(\n").unwrap();
    let out = modelship(&[
        "validate",
        example_repo().to_str().unwrap(),
        "--policies",
        extra_dir,
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{extra_dir}/broken.yaml:8:19: error: spec.validations[0].expression: syntax error in `object.metadata.name.isSemver(`")),
        "{stderr}"
    );
}

#[test]
fn policies_export_writes_one_file_per_cluster_policy() {
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("admission");
    let out = modelship(&[
        "policies",
        "export",
        example_repo().to_str().unwrap(),
        "-o",
        target.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let mut names: Vec<String> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "allowed-registries.yaml",
            "gpu-increase-limit.yaml",
            "memory-request-equals-limit.yaml",
            "no-latest-images.yaml",
            "no-privileged-pods.yaml"
        ]
    );
    assert!(
        stderr.contains("note: policies/require-owner.yaml: skipped policy require-owner"),
        "{stderr}"
    );
    assert!(stderr.contains("wrote 5 policies to"), "{stderr}");
}
