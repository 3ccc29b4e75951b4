//! `plan` of 1,000 services against a warm sandbox: reading the live state (one LIST per
//! kind and namespace) and planning it, plus the pure planning step alone (measured after
//! the sandbox is stopped). Before measuring, it prints the API requests one plan makes
//! and checks it makes no write.
//!
//! ```text
//! cargo bench --bench plan -- --warm-up-time 1 --measurement-time 5
//! ```

use std::collections::BTreeSet;

use criterion::{Criterion, criterion_group, criterion_main};
use modelship::cluster::{self, ApplyOptions, Kinds, RetryPolicy};
use modelship::compile::{Source, compile_repository};
use modelship::plan::{self, DesiredState, LiveSet};
use modelship::sandbox::{Sandbox, Verb};
use modelship::spec::{LoadedService, ModelService, Repository, RepositoryConfig};

const SERVICES: usize = 1_000;
const NAMESPACES: usize = 10;

const CONFIG: &str = r#"
apiVersion: modelship.dev/v1alpha1
kind: RepositoryConfig
metadata: {name: bench}
spec:
  defaultNamespace: ml-serving
  traffic:
    router: gateway-api
    gateway: {name: ml-gateway, namespace: gateway-system}
  modelLoader: {image: "registry.example.com/model-loader:1.0"}
  gpu:
    catalog:
      a100-80gb: {product: NVIDIA-A100-SXM4-80GB}
"#;

/// Service shapes: CPU with fixed replicas; CPU with an HPA, a canary over gateway-api and
/// a network policy; a MIG slice over istio.
const SHAPES: [&str; 3] = [
    r#"
apiVersion: modelship.dev/v1alpha1
kind: ModelService
metadata: {name: cpu, labels: {team: a}}
spec:
  model: {name: m, version: "1.0.0", uri: "s3://models/m/1.0.0", size: 2Gi}
  runtime: {image: "registry.example.com/srv:1.0", env: {LOG_LEVEL: info}}
  resources: {cpu: "1", memory: 2Gi}
  replicas: 2
  traffic: {router: replicas}
"#,
    r#"
apiVersion: modelship.dev/v1alpha1
kind: ModelService
metadata: {name: hpa}
spec:
  model: {name: m, version: "2.1.0", uri: "pvc://models/m/2.1.0"}
  runtime: {image: "registry.example.com/srv:2.1", port: 8080, metricsPort: 9090}
  resources: {cpu: "2", cpuLimit: "4", memory: 4Gi}
  autoscaling:
    minReplicas: 3
    maxReplicas: 20
    metrics: [{cpu: 70}, {requestsPerSecond: 250}]
  rollout: {strategy: canary, steps: [10, 50, 100], stepInterval: 1m}
  network: {allowFrom: [{namespace: apps}]}
"#,
    r#"
apiVersion: modelship.dev/v1alpha1
kind: ModelService
metadata: {name: mig}
spec:
  model: {name: vision, version: "2024.11.1", uri: "pvc://vision/effnet"}
  runtime: {image: "nvcr.io/nvidia/tritonserver:24.05-py3", port: 8000, grpcPort: 8001}
  resources: {cpu: "2", memory: 8Gi}
  gpu: {count: 1, type: a100-80gb, partition: 1g.10gb}
  replicas: 2
  rollout: {strategy: canary, steps: [10, 100], stepInterval: 2m}
  traffic: {router: istio}
"#,
];

fn repository() -> Repository {
    let config: RepositoryConfig = serde_saphyr::from_str(CONFIG).expect("bench config parses");
    let shapes: Vec<ModelService> = SHAPES
        .iter()
        .map(|text| serde_saphyr::from_str(text).expect("bench shape parses"))
        .collect();
    let mut services: Vec<LoadedService> = (0..SERVICES)
        .map(|i| {
            let mut service = shapes[i % shapes.len()].clone();
            service.metadata.name = format!("{}-{i:05}", service.metadata.name);
            service.metadata.namespace = Some(format!("team-{}", i % NAMESPACES));
            LoadedService {
                file: format!("services/{}.yaml", service.metadata.name),
                service,
                line: 1,
            }
        })
        .collect();
    services
        .sort_by(|a, b| (a.namespace(&config), a.name()).cmp(&(b.namespace(&config), b.name())));
    Repository {
        config,
        services,
        diagnostics: Vec::new(),
        invalid: Vec::new(),
    }
}

fn retry() -> RetryPolicy {
    RetryPolicy::default()
}

async fn read_live(
    sandbox: &Sandbox,
    desired: &DesiredState,
    namespaces: &BTreeSet<String>,
) -> LiveSet {
    let client = sandbox.client();
    let mut kinds = Kinds::new(client.clone(), retry());
    cluster::read_live(&client, &mut kinds, namespaces, desired, &retry())
        .await
        .expect("live state read")
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let repo = repository();
    let compiled = compile_repository(&repo, &Source::local());
    let desired = plan::desired_state(&repo, &compiled);
    assert!(desired.repository_valid);
    let namespaces: BTreeSet<String> = desired
        .services
        .iter()
        .map(|s| s.namespace.clone())
        .collect();
    let sandbox = runtime.block_on(Sandbox::start()).expect("sandbox starts");

    // Warm the sandbox: apply everything once.
    runtime.block_on(async {
        let client = sandbox.client();
        let mut kinds = Kinds::new(client.clone(), retry());
        let live = read_live(&sandbox, &desired, &namespaces).await;
        let planned = plan::plan(&desired, &live).expect("plan");
        let options = ApplyOptions {
            create_namespaces: true,
            ..ApplyOptions::default()
        };
        let report = cluster::apply(&client, &mut kinds, &planned, &desired, &options)
            .await
            .expect("apply");
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        eprintln!("warm: {} objects applied", report.applied.len());
    });

    // Requests of one plan.
    sandbox.reset_requests();
    let live = runtime.block_on(read_live(&sandbox, &desired, &namespaces));
    let planned = plan::plan(&desired, &live).expect("plan");
    let requests = sandbox.requests();
    assert!(!planned.has_changes(), "a warm sandbox plans no change");
    assert_eq!(requests.total_writes(), 0, "planning never writes");
    eprintln!(
        "one plan of {SERVICES} services in {NAMESPACES} namespaces ({} live objects): \
         {} requests = {} LIST, {} GET (discovery), {} writes",
        live.len(),
        requests.total(),
        requests.verb_total(Verb::List),
        requests.verb_total(Verb::Get),
        requests.total_writes()
    );

    let mut group = c.benchmark_group("plan_1000");
    group.sample_size(10);
    group.bench_function("read_live_and_plan", |b| {
        b.iter(|| {
            let live = runtime.block_on(read_live(&sandbox, &desired, &namespaces));
            plan::plan(&desired, &live).expect("plan").services.len()
        })
    });
    // The sandbox's simulated Deployment controller keeps polling its 1,000 Deployments on
    // another thread; stop it so that the pure step is measured alone.
    drop(sandbox);
    group.bench_function("plan_only", |b| {
        b.iter(|| plan::plan(&desired, &live).expect("plan").services.len())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
