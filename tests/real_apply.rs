//! The real-cluster tier, part one: what a real API server (with its OpenAPI validation,
//! admission plugins, scheduler, controllers and fake nodes) says about example-repo.
//!
//! - every compiled object applies with server-side apply and `fieldValidation=Strict`
//!   without a warning, and a second apply leaves every resourceVersion as it was;
//! - `modelship apply --create-namespaces --wait` converges: GPU pods on the nodes that fit
//!   them and no other, CPU pods across both zones, Deployments ready;
//! - a ResourceQuota on `requests.cpu`, `limits.memory` and `requests.nvidia.com/gpu`
//!   admits every pod.
//!
//! Runs only when `MODELSHIP_TEST_KUBECONFIG` names a cluster (`scripts/control-plane up`);
//! otherwise each test says why it is skipped. Each test works in namespaces of its own
//! and deletes them at the end. Admission parity is in `real_admission.rs`, the
//! daemon in `real_daemon.rs`.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod, ResourceQuota};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use support::real::{Cluster, GPU_NODES, cluster, object_key, succeeded};

/// The API resource of an object's apiVersion and kind, found by discovery (cached).
async fn resource(
    client: &kube::Client,
    cache: &mut HashMap<(String, String), ApiResource>,
    object: &Value,
) -> ApiResource {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind");
    let key = (api_version.to_string(), kind.to_string());
    if let Some(found) = cache.get(&key) {
        return found.clone();
    }
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (found, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("{api_version} {kind} is not served: {e}"));
    cache.insert(key, found.clone());
    found
}

/// The field manager of the strict applies.
const STRICT_MANAGER: &str = "modelship-strict-check";

/// One server-side apply with `fieldValidation=Strict`: (the object after it, warnings).
async fn strict_apply(
    client: &kube::Client,
    resource: &ApiResource,
    object: &Value,
) -> (Value, Vec<String>) {
    let name = object["metadata"]["name"].as_str().expect("name");
    let namespace = object["metadata"]["namespace"].as_str();
    let url = <DynamicObject as kube::Resource>::url_path(resource, namespace);
    let params = PatchParams::apply(STRICT_MANAGER)
        .force()
        .validation_strict();
    let request = kube::core::Request::new(url)
        .patch(name, &params, &Patch::Apply(object))
        .expect("an apply request");
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap_or_else(|e| panic!("applying {} {name}: {e}", resource.kind));
    let status = response.status();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .expect("response body");
    let body = String::from_utf8_lossy(&body);
    assert!(
        status.is_success(),
        "{} {name} was refused ({status}): {body}",
        resource.kind
    );
    (
        serde_json::from_str(&body).expect("the applied object"),
        warnings,
    )
}

/// An object without what controllers write beside an apply: its status, the
/// resourceVersion and the managedFields entries of other managers.
fn apart_from_controllers(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
        if let Some(Value::Array(fields)) = meta.get_mut("managedFields") {
            fields.retain(|f| f["manager"] == STRICT_MANAGER);
        }
    }
    object
}

/// Applies every object strictly, failing on any warning. With `again`, each object was
/// applied before: the apply must change nothing. Its resourceVersion stays, unless a
/// controller wrote the status meanwhile; then all but the status (and that controller's
/// managedFields) equal what was there before. Returns how many objects a controller
/// moved.
async fn strict_apply_all(cluster: &Cluster, objects: &[Value], again: bool) -> usize {
    let mut cache = HashMap::new();
    let mut moved_by_controllers = 0;
    for object in objects {
        let resource = resource(&cluster.client, &mut cache, object).await;
        let key = object_key(object);
        let before = if again {
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
            let api: Api<DynamicObject> =
                Api::namespaced_with(cluster.client.clone(), namespace, &resource);
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let live = api.get(name).await.unwrap_or_else(|e| panic!("{key}: {e}"));
            Some(serde_json::to_value(live).expect("JSON"))
        } else {
            None
        };
        let (after, warnings) = strict_apply(&cluster.client, &resource, object).await;
        assert!(
            warnings.is_empty(),
            "{key}: the server warned: {warnings:?}"
        );
        let Some(before) = before else { continue };
        let version = |o: &Value| o["metadata"]["resourceVersion"].clone();
        if version(&before) != version(&after) {
            assert_eq!(
                apart_from_controllers(&before),
                apart_from_controllers(&after),
                "{key}: the second apply changed it"
            );
            moved_by_controllers += 1;
        }
    }
    moved_by_controllers
}

#[tokio::test]
async fn every_object_applies_strictly_without_warnings_and_a_second_apply_changes_nothing() {
    let Some(cluster) = cluster("strict apply of example-repo").await else {
        return;
    };
    let example = cluster.example();
    let (repo, genai, risk) = (&example.repo, &example.genai, &example.risk);
    for namespace in [&genai, &risk] {
        cluster.create_namespace(namespace, &[]).await;
    }
    let objects = support::real::render(repo.path()).await;
    assert!(objects.len() > 20, "example-repo compiles to its objects");
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    for kind in [
        "Deployment",
        "HorizontalPodAutoscaler",
        "HTTPRoute",
        "VirtualService",
    ] {
        assert!(kinds.contains(kind), "example-repo has a {kind}: {kinds:?}");
    }
    strict_apply_all(&cluster, &objects, false).await;
    let moved = strict_apply_all(&cluster, &objects, true).await;
    // Only Deployments, HPAs and PDBs have controllers writing their status.
    assert!(
        moved < objects.len() / 2,
        "{moved} of {} objects changed between the applies",
        objects.len()
    );
}

/// Live pods of a namespace (not being deleted), by the service they belong to.
async fn pods_by_service(client: &kube::Client, namespace: &str) -> BTreeMap<String, Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default())
        .await
        .expect("pods listed");
    let mut by_service: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    for pod in list.items {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let service = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app.kubernetes.io/instance"))
            .cloned()
            .unwrap_or_default();
        by_service.entry(service).or_default().push(pod);
    }
    by_service
}

fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn running_and_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Waits until `namespace` runs `replicas` ready pods of each service, then returns them.
async fn wait_for_pods(
    cluster: &Cluster,
    namespace: &str,
    replicas: &[(&str, usize)],
) -> BTreeMap<String, Vec<Pod>> {
    cluster
        .eventually(
            &format!("the pods of {namespace}: {replicas:?}"),
            || async {
                let pods = pods_by_service(&cluster.client, namespace).await;
                replicas
                    .iter()
                    .all(|(service, want)| {
                        pods.get(*service)
                            .is_some_and(|p| p.len() == *want && p.iter().all(running_and_ready))
                    })
                    .then_some(pods)
            },
        )
        .await
}

/// Node name to its zone.
async fn zones(client: &kube::Client) -> BTreeMap<String, String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default())
        .await
        .expect("nodes listed");
    list.items
        .into_iter()
        .filter_map(|n| {
            let zone = n
                .metadata
                .labels
                .as_ref()?
                .get("topology.kubernetes.io/zone")?
                .clone();
            Some((n.metadata.name?, zone))
        })
        .collect()
}

/// `modelship apply DIR --create-namespaces --wait`, which must succeed.
async fn apply_and_wait(cluster: &Cluster, dir: &Path) {
    let dir = support::path_str(dir);
    let out = cluster
        .run_modelship(&[
            "apply",
            dir,
            "--create-namespaces",
            "--wait",
            "--timeout",
            "4m",
        ])
        .await;
    succeeded(out, "modelship apply --create-namespaces --wait");
}

#[tokio::test]
async fn apply_wait_converges_with_gpu_pods_on_the_nodes_that_fit_them() {
    let Some(cluster) = cluster("apply --wait on the fake GPU nodes").await else {
        return;
    };
    let _gpus = GPU_NODES.lock().await;
    let example = cluster.example();
    let (repo, genai, risk) = (&example.repo, &example.genai, &example.risk);
    cluster.create_namespace(genai, &[]).await;
    let _volume = cluster.model_claim(genai).await;
    apply_and_wait(&cluster, repo.path()).await;

    // HPAs raise the Deployments they own to minReplicas after the first apply.
    let gpu = wait_for_pods(
        &cluster,
        genai,
        &[
            ("llm-chat", 2),
            ("image-classifier", 2),
            ("text-embedding", 2),
        ],
    )
    .await;
    for (service, node) in [
        ("llm-chat", "gpu-h100"),
        ("image-classifier", "gpu-a100-mig"),
        ("text-embedding", "gpu-l4-shared"),
    ] {
        for pod in &gpu[service] {
            // The H100s are three nodes (gpu-h100, gpu-h100-b, gpu-h100-c).
            assert!(
                node_of(pod) == node || node_of(pod).starts_with(&format!("{node}-")),
                "{service} pod {:?} on the node that fits it ({node}), not {}",
                pod.metadata.name,
                node_of(pod)
            );
        }
    }
    let cpu = wait_for_pods(
        &cluster,
        risk,
        &[("fraud-detection", 3), ("transaction-anomaly", 1)],
    )
    .await;
    let zones = zones(&cluster.client).await;
    let mut cpu_zones = BTreeSet::new();
    for (service, pods) in &cpu {
        for pod in pods {
            let node = node_of(pod);
            assert!(
                node.starts_with("cpu-"),
                "{service} pod on CPU node, not {node}"
            );
            cpu_zones.insert(zones.get(node).cloned().unwrap_or_default());
        }
    }
    let fraud_zones: BTreeSet<_> = cpu["fraud-detection"]
        .iter()
        .map(|p| zones.get(node_of(p)).cloned().unwrap_or_default())
        .collect();
    assert_eq!(
        fraud_zones.len(),
        2,
        "fraud-detection's three pods spread over both zones"
    );
    assert_eq!(cpu_zones.len(), 2, "CPU pods in both zones: {cpu_zones:?}");

    for namespace in [&genai, &risk] {
        let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), namespace);
        for d in deployments
            .list(&ListParams::default())
            .await
            .expect("deployments")
        {
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let ready = d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            assert_eq!(ready, want, "Deployment {:?} ready", d.metadata.name);
        }
    }
}

/// A quota as GPU clusters set them: every pod must state CPU requests, memory limits and
/// its GPUs, and the namespace's totals are capped.
fn quota(namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: compute\n  namespace: {namespace}\nspec:\n  hard:\n    requests.cpu: \"1000\"\n    limits.memory: 10Ti\n    requests.nvidia.com/gpu: \"16\"\n"
    )
}

#[tokio::test]
async fn a_quota_on_cpu_memory_limits_and_gpus_admits_every_pod() {
    let Some(cluster) = cluster("quota admission of example-repo").await else {
        return;
    };
    let _gpus = GPU_NODES.lock().await;
    let example = cluster.example();
    let (repo, genai, risk) = (&example.repo, &example.genai, &example.risk);
    for namespace in [&genai, &risk] {
        cluster.create_namespace(namespace, &[]).await;
    }
    let _volume = cluster.model_claim(genai).await;
    for namespace in [&genai, &risk] {
        let out = cluster
            .kubectl_stdin(&["apply", "-f", "-"], Some(quota(namespace).as_bytes()))
            .await;
        succeeded(out, "creating the ResourceQuota");
        // The quota controller must have computed the usage before pods are admitted.
        let quotas: Api<ResourceQuota> = Api::namespaced(cluster.client.clone(), namespace);
        cluster
            .eventually("the quota's first usage", || async {
                let q = quotas.get("compute").await.ok()?;
                q.status?.used.map(|_| ())
            })
            .await;
    }
    apply_and_wait(&cluster, repo.path()).await;

    for namespace in [&genai, &risk] {
        let sets: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), namespace);
        for set in sets
            .list(&ListParams::default())
            .await
            .expect("replicasets")
        {
            let failures: Vec<String> = set
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .filter(|c| c.type_ == "ReplicaFailure")
                .map(|c| c.message.clone().unwrap_or_default())
                .collect();
            assert!(
                failures.is_empty(),
                "ReplicaSet {:?}: {failures:?}",
                set.metadata.name
            );
        }
    }
    let quotas: Api<ResourceQuota> = Api::namespaced(cluster.client.clone(), genai);
    let used = cluster
        .eventually("GPUs counted by the quota", || async {
            let used = quotas.get("compute").await.ok()?.status?.used?;
            let gpus = used.get("requests.nvidia.com/gpu")?.0.clone();
            (gpus != "0").then_some(used)
        })
        .await;
    assert!(
        used.contains_key("limits.memory"),
        "memory limits counted: {used:?}"
    );
}
