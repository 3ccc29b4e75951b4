//! The real-cluster tier, part three: admission parity. example-repo's policies, exported
//! with `modelship policies export`, are applied to the real API server (each binding
//! scoped to the test's namespaces, each name given the test's suffix, so other tests on
//! the cluster never meet them). Then every compiled object of a repository of allowed and
//! denied services is sent to the server as a dry-run CREATE, and its admission decision
//! (allowed, or denied by which policy with which message) must equal what `modelship
//! validate` decided for that object. A property test generates image references around
//! the policies' thresholds (registry prefixes, ports, tags, digests). Spec validation
//! refuses `latest` and untagged images before any policy sees them, so no-latest-images
//! never denies a compiled object here; allowed-registries does.
//!
//! The exported bindings select modelship's objects only (`app.kubernetes.io/managed-by:
//! modelship` and `modelship.dev/instance`): with them in force, `deploy/` installs and
//! another team's Deployment that breaks a policy is admitted, while the same Deployment
//! labelled as modelship's is denied.
//!
//! Runs only when `MODELSHIP_TEST_KUBECONFIG` is set (see `support::real`).

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use support::real::{Cleanup, Cluster, cluster, object_key, succeeded};
use support::{binary, path_str};

/// The namespace label the exported bindings are scoped to.
const SCOPE_LABEL: &str = "modelship.dev/parity";

/// What admission decided for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Allowed,
    /// Denied by the policy (its exported name) with the message.
    Denied {
        policy: String,
        message: String,
    },
}

/// A ModelService in `namespace` running `image`.
fn service(name: &str, namespace: &str, image: &str) -> String {
    format!(
        "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  owner: parity@example.com\n  model: {{name: {name}, version: \"1.0.0\"}}\n  runtime: {{image: \"{image}\"}}\n  resources: {{cpu: 500m, memory: 1Gi}}\n"
    )
}

/// `modelship policies export` of the repository at `dir` (run in `dir`, so the
/// command's defaults, the current directory and stdout, pick the repository).
async fn export(dir: &Path) -> String {
    let mut command = binary::command(["policies", "export"]);
    command.current_dir(dir);
    succeeded(
        support::real::run(command, None, "modelship policies export").await,
        "modelship policies export",
    )
}

/// Scopes a binding to the namespaces labelled `SCOPE_LABEL=suffix` and renames the
/// policy and its bindings with the suffix.
fn scope(mut document: Value, suffix: &str) -> Value {
    let name = document["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_string();
    document["metadata"]["name"] = json!(format!("{name}-{suffix}"));
    if document["kind"] == "ValidatingAdmissionPolicyBinding" {
        let policy = document["spec"]["policyName"]
            .as_str()
            .expect("policyName")
            .to_string();
        document["spec"]["policyName"] = json!(format!("{policy}-{suffix}"));
        let resources = &mut document["spec"]["matchResources"];
        assert!(
            resources.get("namespaceSelector").is_none(),
            "exported binding {name} already selects namespaces"
        );
        resources["namespaceSelector"] = json!({"matchLabels": {SCOPE_LABEL: suffix}});
    }
    document
}

/// Exports the repository's policies and installs them, scoped and renamed; they are
/// removed when the guard drops.
async fn install(
    cluster: &Cluster,
    dir: &Path,
    suffix: &str,
) -> (Cleanup, tempfile::NamedTempFile) {
    let yaml = export(dir).await;
    // kubectl turns the YAML stream into JSON documents without writing to the server.
    let out = cluster
        .kubectl_stdin(
            &["create", "--dry-run=client", "-o", "json", "-f", "-"],
            Some(yaml.as_bytes()),
        )
        .await;
    let out = succeeded(out, "kubectl create --dry-run=client");
    let items: Vec<Value> = serde_json::Deserializer::from_str(&out)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("JSON documents");
    let bindings = items
        .iter()
        .filter(|d| d["kind"] == "ValidatingAdmissionPolicyBinding")
        .count();
    assert!(bindings >= 3, "example-repo exports its object policies");
    let scoped = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": items.into_iter().map(|d| scope(d, suffix)).collect::<Vec<_>>(),
    });
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(file.path(), scoped.to_string()).expect("write policies");
    let cleanup = cluster.cleanup(&["-f", path_str(file.path())]);
    cluster
        .kubectl_ok(&["apply", "-f", path_str(file.path())])
        .await;
    (cleanup, file)
}

/// The server's decision on a dry-run CREATE of `object`.
async fn admit(client: &kube::Client, object: &Value, suffix: &str) -> Decision {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let (resource, _) =
        kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .unwrap_or_else(|e| panic!("{api_version} {kind} is not served: {e}"));
    let namespace = object["metadata"]["namespace"].as_str().expect("namespace");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let dynamic: DynamicObject = serde_json::from_value(object.clone()).expect("an object");
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match api.create(&params, &dynamic).await {
        Ok(_) => Decision::Allowed,
        Err(kube::Error::Api(status)) => {
            parse_denial(&status.message, suffix).unwrap_or_else(|| {
                panic!("{kind} {namespace}: refused, but not by a policy: {status:?}")
            })
        }
        Err(e) => panic!("{kind} {namespace}: {e}"),
    }
}

/// `... ValidatingAdmissionPolicy 'P-suffix' with binding 'B' denied request: MESSAGE`.
fn parse_denial(message: &str, suffix: &str) -> Option<Decision> {
    let (_, rest) = message.split_once("ValidatingAdmissionPolicy '")?;
    let (policy, rest) = rest.split_once('\'')?;
    let (_, message) = rest.split_once("denied request: ")?;
    let policy = policy.strip_suffix(&format!("-{suffix}"))?;
    Some(Decision::Denied {
        policy: policy.to_string(),
        message: message.to_string(),
    })
}

/// `modelship validate DIR`'s policy errors: `Kind namespace/name` to the decision.
/// Lines look like `FILE:LINE: error: Kind ns/name: MESSAGE [policy NAME, FILE:LINE]`.
async fn validate(dir: &Path) -> BTreeMap<String, Decision> {
    let mut command = binary::command(["validate"]);
    command.arg(dir);
    let out = support::real::run(command, None, "modelship validate").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut decisions = BTreeMap::new();
    for line in stderr.lines() {
        let Some((_, rest)) = line.split_once(": error: ") else {
            continue;
        };
        let Some((rest, policy)) = rest.rsplit_once(" [policy ") else {
            continue;
        };
        let policy = policy.split(',').next().unwrap_or_default().to_string();
        let Some((object, message)) = rest.split_once(": ") else {
            continue;
        };
        let previous = decisions.insert(
            object.to_string(),
            Decision::Denied {
                policy,
                message: message.to_string(),
            },
        );
        assert!(
            previous.is_none(),
            "{object}: several denials; the test's services break one policy each"
        );
    }
    decisions
}

/// Installs the policies of `repo`, then compares the server's decision on every compiled
/// object with validate's; returns the number of objects denied.
async fn assert_parity(cluster: &Cluster, example: &support::real::Example) -> usize {
    let suffix = support::real::unique("p");
    for namespace in [&example.genai, &example.risk] {
        cluster
            .create_namespace(namespace, &[(SCOPE_LABEL, suffix.as_str())])
            .await;
    }
    let _installed = install(cluster, example.path(), &suffix).await;
    let expected = validate(example.path()).await;
    let objects = support::real::render(example.path()).await;
    // A denied object shows the policies are in force (the server loads them a moment
    // after they are created).
    let probe = objects
        .iter()
        .find(|o| expected.contains_key(&object_key(o)))
        .expect("the repository has a denied object");
    cluster
        .eventually("the exported policies in force", || async {
            (admit(&cluster.client, probe, &suffix).await != Decision::Allowed).then_some(())
        })
        .await;
    let mut denied = 0;
    for object in &objects {
        let key = object_key(object);
        let server = admit(&cluster.client, object, &suffix).await;
        let modelship = expected.get(&key).cloned().unwrap_or(Decision::Allowed);
        assert_eq!(
            server, modelship,
            "{key}: the API server and validate differ"
        );
        if server != Decision::Allowed {
            denied += 1;
        }
    }
    denied
}

#[tokio::test]
async fn exported_policies_decide_on_the_server_as_validate_decides() {
    let Some(cluster) = cluster("admission parity of the exported policies").await else {
        return;
    };
    let example = cluster.example();
    for (name, image) in [
        ("foreign-registry", "docker.io/library/nginx:1.27"),
        (
            "registry-with-port",
            "registry.example.com:5000/genai/server:1.0",
        ),
        ("no-registry", "server:1.0"),
        (
            "pinned-by-digest",
            "nvcr.io/nvidia/server@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
    ] {
        let file = example.path().join(format!("services/genai/{name}.yaml"));
        std::fs::write(file, service(name, &example.genai, image)).expect("write spec");
    }
    let denied = assert_parity(&cluster, &example).await;
    assert_eq!(denied, 3, "three of the services break a policy");
}

/// Image references around the thresholds of allowed-registries and no-latest-images.
fn image_reference() -> impl Strategy<Value = String> {
    let registry = prop::sample::select(vec![
        "registry.example.com/",
        "registry.example.com:5000/",
        "registry.example.com.evil.io/",
        "nvcr.io/",
        "nvcr.io.example/",
        "docker.io/",
        "",
    ]);
    let path = prop::sample::select(vec!["server", "team/server", "a/b/c"]);
    // Spec validation already refuses `latest` and untagged images, so only references
    // that reach the policies are generated.
    let tag = prop::sample::select(vec![
        ":1.0",
        ":latest-1",
        ":v2-latest",
        "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ]);
    (registry, path, tag).prop_map(|(r, p, t)| format!("{r}{p}{t}"))
}

#[tokio::test]
async fn generated_images_around_the_thresholds_decide_alike() {
    let Some(cluster) = cluster("admission parity, generated images").await else {
        return;
    };
    // One repository of generated services (one server round per object, so a batch
    // rather than one repository per case).
    let mut runner = TestRunner::default();
    let images = prop::collection::vec(image_reference(), 12)
        .new_tree(&mut runner)
        .expect("generated images")
        .current();
    let example = cluster.example();
    for (i, image) in images.iter().enumerate() {
        let name = format!("generated-{i}");
        let file = example.path().join(format!("services/genai/{name}.yaml"));
        std::fs::write(file, service(&name, &example.genai, image)).expect("write spec");
    }
    eprintln!("generated images: {images:?}");
    assert_parity(&cluster, &example).await;
}

/// A Deployment of another team in `namespace` whose memory request differs from its
/// limit (memory-request-equals-limit), from an allowed registry; `labels` added.
fn team_deployment(namespace: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "team-app", "namespace": namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app": "team-app"}},
            "template": {
                "metadata": {"labels": {"app": "team-app"}},
                "spec": {"containers": [{
                    "name": "app",
                    "image": "registry.example.com/team/app:1.0",
                    "resources": {"requests": {"cpu": "100m", "memory": "1Gi"},
                                  "limits": {"memory": "2Gi"}},
                }]},
            },
        },
    })
}

#[tokio::test]
async fn exported_policies_judge_only_what_modelship_manages() {
    let Some(cluster) = cluster("exported policies scoped to modelship's objects").await else {
        return;
    };
    let suffix = support::real::unique("s");
    let team = support::real::unique("team");
    let _team = cluster.namespaces(std::slice::from_ref(&team));
    cluster
        .create_namespace(&team, &[(SCOPE_LABEL, suffix.as_str())])
        .await;
    let example = cluster.example();
    let _installed = install(&cluster, example.path(), &suffix).await;
    let modelship = json!({
        "app.kubernetes.io/managed-by": "modelship",
        "modelship.dev/instance": "modelship",
    });
    let denied = team_deployment(&team, modelship.clone());
    // The policies are in force once the labelled Deployment is refused.
    let decision = cluster
        .eventually("the exported policies in force", || async {
            let decision = admit(&cluster.client, &denied, &suffix).await;
            (decision != Decision::Allowed).then_some(decision)
        })
        .await;
    assert_eq!(
        decision,
        Decision::Denied {
            policy: "memory-request-equals-limit".into(),
            message: "memory request must equal the memory limit in containers: app".into(),
        }
    );
    // Another team's Deployment, unlabelled or labelled by another instance, is admitted.
    let foreign = team_deployment(&team, json!({"team": "a"}));
    assert_eq!(
        admit(&cluster.client, &foreign, &suffix).await,
        Decision::Allowed
    );
    let mut other = modelship.clone();
    other["modelship.dev/instance"] = json!("other");
    let other = team_deployment(&team, other);
    assert_eq!(
        admit(&cluster.client, &other, &suffix).await,
        Decision::Allowed
    );
    // modelship's own installation (its Deployment's memory request is below its limit,
    // its image from ghcr.io) in a namespace the bindings cover.
    let _deployed = cluster
        .install_deploy(&[(SCOPE_LABEL, suffix.as_str())])
        .await;
    cluster
        .kubectl_ok(&[
            "-n",
            "modelship",
            "get",
            "deployment",
            "modelship",
            "-o",
            "name",
        ])
        .await;
}
