//! Compile + render of a repository of mixed-shape services (CPU, whole GPU, MIG, shared
//! GPU; rolling and canary over gateway-api, istio and replicas; fixed replicas and HPAs;
//! every model.uri scheme), at 100, 1,000 and 10,000 services to show the cost is linear.
//!
//! ```text
//! cargo bench --bench render -- --warm-up-time 1 --measurement-time 3
//! ```

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use modelship::compile::{Source, compile_repository, render_json, render_yaml};
use modelship::spec::{LoadedService, ModelService, Repository, RepositoryConfig};

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
    runtimeClassName: nvidia
    catalog:
      a100-80gb: {product: NVIDIA-A100-SXM4-80GB}
      h100-80gb: {product: NVIDIA-H100-80GB-HBM3}
      l4: {product: NVIDIA-L4}
      t4: {product: Tesla-T4}
"#;

/// The service shapes the generated repository cycles through.
const SHAPES: [&str; 6] = [
    // CPU, fixed replicas, rolling, replicas router.
    r#"
apiVersion: modelship.dev/v1alpha1
kind: ModelService
metadata: {name: cpu, labels: {team: a}}
spec:
  model: {name: m, version: "1.0.0", uri: "s3://models/m/1.0.0", size: 2Gi}
  runtime: {image: "registry.example.com/srv:1.0", env: {LOG_LEVEL: info}}
  resources: {cpu: "1", memory: 2Gi}
  traffic: {router: replicas}
"#,
    // CPU, HPA on cpu + rps, canary over gateway-api, network policy.
    r#"
apiVersion: modelship.dev/v1alpha1
kind: ModelService
metadata: {name: cpu-hpa}
spec:
  owner: team@example.com
  model: {name: m, version: "2.1.0", uri: "pvc://models/m/2.1.0"}
  runtime: {image: "registry.example.com/srv:2.1", port: 8080, metricsPort: 9090}
  resources: {cpu: "2", cpuLimit: "4", memory: 4Gi}
  autoscaling:
    minReplicas: 3
    maxReplicas: 20
    metrics: [{cpu: 70}, {requestsPerSecond: 250}]
  rollout: {strategy: canary, steps: [10, 50, 100], stepInterval: 1m}
  traffic: {hosts: [m.example.com]}
  network: {allowFrom: [{namespace: apps}, {podLabels: {app: gw}}]}
"#,
    // Whole GPUs, HPA on GPU utilization, canary over gateway-api, hf download.
    r#"
apiVersion: modelship.dev/v1alpha1
kind: ModelService
metadata: {name: gpu}
spec:
  model: {name: llm, version: "3.1.0", uri: "hf://org/llm", size: 160Gi, loadTimeout: 20m, credentialsSecret: hf}
  runtime: {image: "registry.example.com/vllm:0.6.3", envFromSecrets: [keys]}
  resources: {cpu: "16", memory: 200Gi}
  gpu: {count: 4, type: [h100-80gb, a100-80gb], shm: 16Gi}
  autoscaling:
    minReplicas: 2
    maxReplicas: 6
    metrics: [{queueLength: 8}, {gpuUtilization: 85}]
  rollout: {strategy: canary, steps: [5, 25, 50, 100], stepInterval: 10m}
  placement: {priorityClassName: ml-critical, tolerations: [{key: dedicated, operator: Equal, value: llm, effect: NoSchedule}]}
"#,
    // MIG slice, fixed replicas, canary over istio.
    r#"
apiVersion: modelship.dev/v1alpha1
kind: ModelService
metadata: {name: mig}
spec:
  model: {name: vision, version: "2024.11.1", uri: "pvc://vision/effnet"}
  runtime: {image: "nvcr.io/nvidia/tritonserver:24.05-py3", port: 8000, grpcPort: 8001, metricsPort: 8002}
  resources: {cpu: "2", memory: 8Gi}
  gpu: {count: 1, type: a100-80gb, partition: 1g.10gb}
  replicas: 2
  rollout: {strategy: canary, steps: [10, 100], stepInterval: 2m}
  traffic: {router: istio, hosts: [images.example.com]}
"#,
    // Shared (time-sliced) GPU, HPA, rolling over gateway-api.
    r#"
apiVersion: modelship.dev/v1alpha1
kind: ModelService
metadata: {name: shared}
spec:
  model: {name: emb, version: "1.5", uri: "gs://models/emb/1.5", size: 1Gi}
  runtime: {image: "registry.example.com/tei:1.5", grpcPort: 9000}
  resources: {cpu: "1", memory: 4Gi}
  gpu: {count: 1, type: [l4, t4], shared: true, shm: 2Gi}
  autoscaling:
    minReplicas: 2
    maxReplicas: 12
    metrics: [{requestsPerSecond: 400}, {gpuUtilization: 70}]
"#,
    // CPU from an OCI image volume, scale to zero on an external metric, istio rolling.
    r#"
apiVersion: modelship.dev/v1alpha1
kind: ModelService
metadata: {name: oci}
spec:
  model: {name: forest, version: "0.9.0", uri: "oci://registry.example.com/models/forest:0.9.0"}
  runtime: {image: "registry.example.com/sklearn:1.5.2"}
  resources: {cpu: 500m, memory: 1Gi}
  autoscaling:
    minReplicas: 0
    maxReplicas: 8
    metrics: [{custom: {name: queue_messages, type: external, target: "100", selector: {q: tx}}}]
  traffic: {router: istio}
"#,
];

/// A repository of `n` services cycling through the shapes, spread over 10 namespaces.
fn repository(n: usize) -> Repository {
    let config: RepositoryConfig = serde_saphyr::from_str(CONFIG).expect("bench config parses");
    let shapes: Vec<ModelService> = SHAPES
        .iter()
        .map(|text| serde_saphyr::from_str(text).expect("bench shape parses"))
        .collect();
    let mut services: Vec<LoadedService> = (0..n)
        .map(|i| {
            let mut service = shapes[i % shapes.len()].clone();
            service.metadata.name = format!("{}-{i:05}", service.metadata.name);
            service.metadata.namespace = Some(format!("team-{}", i % 10));
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

fn source() -> Source {
    Source {
        repo: Some("github.com/example/models".to_string()),
        commit: Some("0123456789abcdef0123456789abcdef01234567".to_string()),
    }
}

/// Compiles and renders everything; returns the YAML length so nothing is optimized away.
fn compile_and_render(repo: &Repository, source: &Source) -> usize {
    let set = compile_repository(repo, source);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    render_yaml(set.objects()).expect("renders").len()
}

fn bench(c: &mut Criterion) {
    let source = source();
    let mut group = c.benchmark_group("compile_render");
    group.sample_size(10);
    for n in [100, 1_000, 10_000] {
        let repo = repository(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &repo, |b, repo| {
            b.iter(|| compile_and_render(repo, &source));
        });
    }
    group.finish();

    let repo = repository(1_000);
    let mut group = c.benchmark_group("stages_1000");
    group.sample_size(10);
    group.bench_function("compile", |b| b.iter(|| compile_repository(&repo, &source)));
    let set = compile_repository(&repo, &source);
    group.bench_function("render_yaml", |b| {
        b.iter(|| render_yaml(set.objects()).expect("renders").len())
    });
    group.bench_function("render_json", |b| {
        b.iter(|| render_json(set.objects()).expect("renders").len())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
