//! The baseline policies of `policies/`: each with passing and failing objects, the copies
//! in `example-repo/policies/`, and the example repository passing them end to end
//! (spec -> compile -> policies).

use std::collections::BTreeMap;
use std::path::Path;

use modelship::compile::{Source, compile_repository};
use modelship::policy::{Action, ClusterView, PolicySet, Subject, check_repository, policy_files};
use modelship::spec;
use serde_json::{Value, json};

/// Every file under `dir`, keyed by its path relative to `dir` with `/` separators.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn project(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The shipped policies, as a repository's `policies/` folder.
fn shipped() -> BTreeMap<String, Vec<u8>> {
    read_tree(&project("policies"))
        .into_iter()
        .filter(|(path, _)| path.ends_with(".yaml"))
        .map(|(path, bytes)| (format!("policies/{path}"), bytes))
        .collect()
}

/// One shipped policy alone.
fn only(policy: &str) -> PolicySet {
    let files: BTreeMap<String, Vec<u8>> = shipped()
        .into_iter()
        .filter(|(path, _)| path == &format!("policies/{policy}.yaml"))
        .collect();
    assert_eq!(files.len(), 1, "no policies/{policy}.yaml");
    let (set, diagnostics) = PolicySet::load(&files);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    set
}

// ---- fixtures ----

fn container(name: &str, image: &str) -> Value {
    json!({"name": name, "image": image,
           "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "4Gi"}}})
}

fn with(mut value: Value, pointer: &str, field: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut value
    } else {
        value.pointer_mut(parent).unwrap()
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    target.as_object_mut().unwrap().insert(key, field);
    value
}

fn deployment(containers: Vec<Value>) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "llm-chat", "namespace": "genai"},
        "spec": {"replicas": 2, "template": {"spec": {"containers": containers}}}
    })
}

fn server(image: &str) -> Value {
    deployment(vec![container("server", image)])
}

fn gpu_deployment(gpus_per_pod: i64, replicas: Option<i64>) -> Value {
    let server = with(
        container("server", "nvcr.io/nvidia/tritonserver:24.05-py3"),
        "/resources/limits/nvidia.com~1gpu",
        json!(gpus_per_pod.to_string()),
    );
    let object = deployment(vec![server]);
    match replicas {
        Some(replicas) => with(object, "/spec/replicas", json!(replicas)),
        None => {
            let mut object = object;
            object["spec"].as_object_mut().unwrap().remove("replicas");
            object
        }
    }
}

fn model_service(spec_extra: Value) -> Value {
    let mut spec = json!({
        "owner": "genai@example.com",
        "model": {"name": "m", "version": "1"},
        "runtime": {"image": "registry.example.com/m:1"},
        "resources": {"cpu": "1", "memory": "1Gi"}
    });
    for (key, value) in spec_extra.as_object().unwrap() {
        if value.is_null() {
            spec.as_object_mut().unwrap().remove(key);
        } else {
            spec[key] = value.clone();
        }
    }
    json!({"apiVersion": "modelship.dev/v1alpha1", "kind": "ModelService",
           "metadata": {"name": "m", "namespace": "genai"}, "spec": spec})
}

// ---- cases ----

struct Case {
    policy: &'static str,
    name: &'static str,
    object: Value,
    old: Option<Value>,
    namespace_labels: Option<BTreeMap<String, String>>,
    /// `None`: passes; `Some(text)`: one Deny violation whose message contains `text`.
    fails_with: Option<&'static str>,
}

fn case(
    policy: &'static str,
    name: &'static str,
    object: Value,
    fails_with: Option<&'static str>,
) -> Case {
    Case {
        policy,
        name,
        object,
        old: None,
        namespace_labels: None,
        fails_with,
    }
}

fn production() -> Option<BTreeMap<String, String>> {
    Some([("modelship.dev/tier".to_string(), "production".to_string())].into())
}

fn cases() -> Vec<Case> {
    let init = |image: &str| {
        with(
            server("registry.example.com/server:1"),
            "/spec/template/spec/initContainers",
            json!([container("model-loader", image)]),
        )
    };
    let privileged = with(
        container("server", "nvcr.io/x:1"),
        "/securityContext",
        json!({"privileged": true}),
    );
    vec![
        case(
            "allowed-registries",
            "own registry",
            server("registry.example.com/genai/vllm:0.6.3"),
            None,
        ),
        case(
            "allowed-registries",
            "nvcr.io",
            server("nvcr.io/nvidia/tritonserver:24.05-py3"),
            None,
        ),
        case(
            "allowed-registries",
            "docker hub",
            server("vllm/vllm-openai:0.6.3"),
            Some("vllm/vllm-openai:0.6.3"),
        ),
        case(
            "allowed-registries",
            "look-alike host",
            server("registry.example.com.evil.io/x:1"),
            Some("registry.example.com.evil.io/x:1"),
        ),
        case(
            "allowed-registries",
            "init container",
            init("docker.io/busybox:1.36"),
            Some("docker.io/busybox:1.36"),
        ),
        case("no-latest-images", "tag", server("nvcr.io/x:24.05"), None),
        case(
            "no-latest-images",
            "digest",
            server(
                "nvcr.io/x@sha256:6f0f3b0b8c5e7a1d2c4e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c",
            ),
            None,
        ),
        case(
            "no-latest-images",
            "registry port and tag",
            server("registry.example.com:5000/x:1"),
            None,
        ),
        case(
            "no-latest-images",
            "latest",
            server("nvcr.io/x:latest"),
            Some("nvcr.io/x:latest"),
        ),
        case(
            "no-latest-images",
            "untagged",
            server("nvcr.io/x"),
            Some("nvcr.io/x"),
        ),
        case(
            "no-latest-images",
            "registry port, no tag",
            server("registry.example.com:5000/x"),
            Some("registry.example.com:5000/x"),
        ),
        case(
            "no-latest-images",
            "untagged init container",
            init("registry.example.com/loader"),
            Some("registry.example.com/loader"),
        ),
        case("require-owner", "owner", model_service(json!({})), None),
        case(
            "require-owner",
            "no owner",
            model_service(json!({"owner": null})),
            Some("spec.owner is required"),
        ),
        case(
            "require-owner",
            "blank owner",
            model_service(json!({"owner": "  "})),
            Some("spec.owner is required"),
        ),
        case("gpu-budget", "no GPU", model_service(json!({})), None),
        case(
            "gpu-budget",
            "8 GPUs",
            model_service(json!({"gpu": {"count": 8}})),
            None,
        ),
        case(
            "gpu-budget",
            "9 GPUs",
            model_service(json!({"gpu": {"count": 9}})),
            Some("spec.gpu.count is 9, above the budget of 8"),
        ),
        Case {
            namespace_labels: production(),
            ..case(
                "production-gpu-canary",
                "production canary",
                model_service(json!({"gpu": {"count": 1}, "rollout": {"strategy": "canary"}})),
                None,
            )
        },
        Case {
            namespace_labels: production(),
            ..case(
                "production-gpu-canary",
                "production CPU rolling",
                model_service(json!({"rollout": {"strategy": "rolling"}})),
                None,
            )
        },
        Case {
            namespace_labels: production(),
            ..case(
                "production-gpu-canary",
                "production GPU rolling",
                model_service(json!({"gpu": {"count": 1}, "rollout": {"strategy": "rolling"}})),
                Some("need spec.rollout.strategy: canary"),
            )
        },
        Case {
            namespace_labels: production(),
            ..case(
                "production-gpu-canary",
                "production GPU default strategy",
                model_service(json!({"gpu": {"count": 1}})),
                Some("need spec.rollout.strategy: canary"),
            )
        },
        Case {
            namespace_labels: Some(
                [("modelship.dev/tier".to_string(), "staging".to_string())].into(),
            ),
            ..case(
                "production-gpu-canary",
                "staging GPU rolling",
                model_service(json!({"gpu": {"count": 1}})),
                None,
            )
        },
        case(
            "production-gpu-canary",
            "unknown namespace labels",
            model_service(json!({"gpu": {"count": 1}})),
            None,
        ),
        case(
            "memory-request-equals-limit",
            "equal",
            server("nvcr.io/x:1"),
            None,
        ),
        case(
            "memory-request-equals-limit",
            "equal in other units",
            deployment(vec![with(
                container("server", "nvcr.io/x:1"),
                "/resources/limits/memory",
                json!("4096Mi"),
            )]),
            None,
        ),
        case(
            "memory-request-equals-limit",
            "limit above request",
            deployment(vec![with(
                container("server", "nvcr.io/x:1"),
                "/resources/limits/memory",
                json!("8Gi"),
            )]),
            Some("containers: server"),
        ),
        case(
            "memory-request-equals-limit",
            "no limit",
            deployment(vec![with(
                container("server", "nvcr.io/x:1"),
                "/resources/limits",
                json!({}),
            )]),
            Some("containers: server"),
        ),
        case(
            "memory-request-equals-limit",
            "no resources",
            deployment(vec![json!({"name": "bare", "image": "nvcr.io/x:1"})]),
            Some("containers: bare"),
        ),
        case("no-privileged-pods", "plain", server("nvcr.io/x:1"), None),
        case(
            "no-privileged-pods",
            "unprivileged context",
            deployment(vec![with(
                container("server", "nvcr.io/x:1"),
                "/securityContext",
                json!({"privileged": false}),
            )]),
            None,
        ),
        case(
            "no-privileged-pods",
            "privileged",
            deployment(vec![privileged]),
            Some("privileged containers are not allowed: server"),
        ),
        case(
            "no-privileged-pods",
            "host network",
            with(
                server("nvcr.io/x:1"),
                "/spec/template/spec/hostNetwork",
                json!(true),
            ),
            Some("host network"),
        ),
        case(
            "no-privileged-pods",
            "host PID",
            with(
                server("nvcr.io/x:1"),
                "/spec/template/spec/hostPID",
                json!(true),
            ),
            Some("host network, PID or IPC"),
        ),
        Case {
            old: Some(gpu_deployment(1, Some(2))),
            ..case(
                "gpu-increase-limit",
                "double",
                gpu_deployment(2, Some(2)),
                None,
            )
        },
        Case {
            old: Some(gpu_deployment(2, Some(2))),
            ..case(
                "gpu-increase-limit",
                "fewer",
                gpu_deployment(1, Some(2)),
                None,
            )
        },
        Case {
            old: Some(gpu_deployment(1, Some(2))),
            ..case(
                "gpu-increase-limit",
                "4x per pod",
                gpu_deployment(4, Some(2)),
                Some("GPUs would grow from 2 to 8"),
            )
        },
        Case {
            old: Some(gpu_deployment(2, Some(1))),
            ..case(
                "gpu-increase-limit",
                "3x replicas",
                gpu_deployment(2, Some(3)),
                Some("GPUs would grow from 2 to 6"),
            )
        },
        Case {
            old: Some(gpu_deployment(1, Some(3))),
            ..case(
                "gpu-increase-limit",
                "autoscaled keeps live replicas",
                gpu_deployment(2, None),
                None,
            )
        },
        Case {
            old: Some(gpu_deployment(0, Some(1))),
            ..case(
                "gpu-increase-limit",
                "from no GPU",
                gpu_deployment(4, Some(1)),
                None,
            )
        },
        case(
            "gpu-increase-limit",
            "create is not a change",
            gpu_deployment(16, Some(4)),
            None,
        ),
    ]
}

#[test]
fn each_shipped_policy_passes_and_fails_what_it_should() {
    let mut failures = Vec::new();
    for case in cases() {
        let set = only(case.policy);
        let subject = Subject::new(&case.object)
            .with_old_object(case.old.as_ref())
            .with_namespace_labels(case.namespace_labels.as_ref());
        let violations = set.evaluate(&subject);
        let outcome: Vec<(Action, String)> = violations
            .iter()
            .map(|v| (v.action, v.message.clone()))
            .collect();
        let ok = match case.fails_with {
            None => violations.is_empty(),
            Some(text) => {
                violations.len() == 1
                    && violations[0].is_deny()
                    && violations[0].message.contains(text)
            }
        };
        if !ok {
            failures.push(format!(
                "{} / {}: expected {:?}, got {outcome:?}",
                case.policy, case.name, case.fails_with
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shipped_policy_has_passing_and_failing_cases() {
    let (set, diagnostics) = PolicySet::load(&shipped());
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert!(set.policies().len() >= 7);
    let cases = cases();
    for policy in set.policies() {
        let of_policy = || cases.iter().filter(|c| c.policy == policy.name);
        assert!(
            of_policy().any(|c| c.fails_with.is_none()),
            "{}: no passing case",
            policy.name
        );
        assert!(
            of_policy().any(|c| c.fails_with.is_some()),
            "{}: no failing case",
            policy.name
        );
    }
}

#[test]
fn example_repo_carries_the_shipped_policies() {
    let copies = read_tree(&project("example-repo/policies"));
    let shipped = shipped();
    assert!(copies.keys().filter(|p| p.ends_with(".yaml")).count() >= 7);
    for (path, bytes) in copies.iter().filter(|(p, _)| p.ends_with(".yaml")) {
        let original = shipped.get(&format!("policies/{path}"));
        assert_eq!(
            original,
            Some(bytes),
            "example-repo/policies/{path} differs from policies/{path}"
        );
    }
}

#[test]
fn example_repo_passes_its_policies() {
    let files = read_tree(&project("example-repo"));
    let repo = spec::load(&files);
    assert!(repo.is_valid(), "{:?}", repo.diagnostics);
    let desired = compile_repository(&repo, &Source::local());
    assert!(desired.errors.is_empty(), "{:?}", desired.errors);
    let (policies, diagnostics) = PolicySet::load(&policy_files(&files));
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert!(policies.policies().len() >= 7);
    let violations = check_repository(&repo, &desired, &policies, &ClusterView::default()).unwrap();
    let printed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(printed.is_empty(), "{}", printed.join("\n"));
}

#[test]
fn a_repository_breaking_policies_is_reported_at_its_spec() {
    let mut files = read_tree(&project("example-repo"));
    let path = "services/genai/llm-chat.yaml";
    let text = String::from_utf8(files[path].clone()).unwrap();
    let broken = text
        .replace(
            "registry.example.com/genai/vllm-openai:0.6.3",
            "docker.io/vllm/vllm-openai:0.6.3",
        )
        .replace("  owner: genai-platform@example.com\n", "");
    files.insert(path.to_string(), broken.into_bytes());
    let repo = spec::load(&files);
    assert!(repo.is_valid(), "{:?}", repo.diagnostics);
    let desired = compile_repository(&repo, &Source::local());
    let (policies, _) = PolicySet::load(&policy_files(&files));
    let production: BTreeMap<String, String> =
        [("modelship.dev/tier".to_string(), "production".to_string())].into();
    let cluster = ClusterView {
        namespace_labels: [("genai".to_string(), production)].into(),
        ..ClusterView::default()
    };
    let violations = check_repository(&repo, &desired, &policies, &cluster).unwrap();
    let found: Vec<(String, String, String)> = violations
        .iter()
        .map(|v| {
            (
                v.policy.clone(),
                v.kind.clone(),
                v.source
                    .as_ref()
                    .map(|s| format!("{}:{}", s.file, s.line))
                    .unwrap_or_default(),
            )
        })
        .collect();
    let at = "services/genai/llm-chat.yaml:2".to_string();
    assert!(
        found.contains(&(
            "require-owner".to_string(),
            "ModelService".to_string(),
            at.clone()
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            "allowed-registries".to_string(),
            "Deployment".to_string(),
            at.clone()
        )),
        "{found:?}"
    );
    // text-embedding is a GPU service rolled out without a canary in a production namespace.
    assert!(
        found.contains(&(
            "production-gpu-canary".to_string(),
            "ModelService".to_string(),
            "services/genai/text-embedding.yaml:2".to_string()
        )),
        "{found:?}"
    );
    assert!(violations.iter().all(|v| v.is_deny()));
}
