//! The generated repository both benchmarks use: `n` services cycling through six
//! shapes (CPU with replicas, CPU with an HPA and a canary, GPUs, a MIG slice over istio,
//! time-sliced GPUs, scale to zero on an external metric), spread over 10 namespaces.

use modelship::spec::{LoadedService, ModelService, Repository, RepositoryConfig};

/// Namespaces the services are spread over.
pub const NAMESPACES: usize = 10;

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

/// A repository of `n` services cycling through the shapes, spread over `NAMESPACES` namespaces.
pub fn repository(n: usize) -> Repository {
    let config: RepositoryConfig = serde_saphyr::from_str(CONFIG).expect("bench config parses");
    let shapes: Vec<ModelService> = SHAPES
        .iter()
        .map(|text| serde_saphyr::from_str(text).expect("bench shape parses"))
        .collect();
    let mut services: Vec<LoadedService> = (0..n)
        .map(|i| {
            let mut service = shapes[i % shapes.len()].clone();
            service.metadata.name = format!("{}-{i:05}", service.metadata.name);
            service.metadata.namespace = Some(format!("team-{}", i % NAMESPACES));
            let file = format!("services/{}.yaml", service.metadata.name);
            LoadedService::new(service, file, 1, &config).expect("bench services have valid names")
        })
        .collect();
    services.sort_by(|a, b| a.id().cmp(b.id()));
    Repository {
        config,
        services,
        ..Repository::default()
    }
}

/// The same repository as files (`modelship.yaml` and one file per service), prepared by
/// the engine as any snapshot is.
#[allow(dead_code)]
pub fn prepared(n: usize) -> modelship::engine::Prepared {
    let repo = repository(n);
    let mut files = std::collections::BTreeMap::new();
    files.insert("modelship.yaml".to_string(), CONFIG.as_bytes().to_vec());
    for service in &repo.services {
        let text = serde_saphyr::to_string(&service.service).expect("bench service serializes");
        files.insert(service.file.clone(), text.into_bytes());
    }
    let prepared = modelship::engine::prepare(
        &files,
        &std::collections::BTreeMap::new(),
        &modelship::compile::Source::local(),
    );
    assert!(
        prepared.repository.diagnostics.is_empty(),
        "{:?}",
        prepared.repository.diagnostics.first()
    );
    assert_eq!(prepared.desired.services.len(), n);
    prepared
}
