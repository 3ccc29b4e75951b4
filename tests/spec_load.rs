//! Loading whole repositories: the full example of SPEC.md, several files with errors,
//! config handling, invalid services and the diagnostic format.

use std::collections::BTreeMap;
use std::path::Path;

use modelship::meta::ServiceId;
use modelship::spec::{
    self, CustomMetricType, GpuTypes, IntOrPercent, MetricSpec, ModelFormat, Repository, Router,
    Strategy,
};

/// Reads every YAML file under a fixture directory, keyed by its relative path.
fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("fixture dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let rel = path.strip_prefix(root).expect("relative");
                let key = rel.to_string_lossy().replace('\\', "/");
                files.insert(key, std::fs::read(&path).expect("read"));
            }
        }
    }
    files
}

fn fixture(name: &str) -> BTreeMap<String, Vec<u8>> {
    read_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/spec")
            .join(name),
    )
}

fn repo(files: &[(&str, &str)]) -> Repository {
    let files = files
        .iter()
        .map(|(path, text)| (path.to_string(), text.as_bytes().to_vec()))
        .collect();
    spec::load(&files)
}

fn rendered(repo: &Repository) -> Vec<String> {
    repo.diagnostics.iter().map(ToString::to_string).collect()
}

const SERVICE: &str = "apiVersion: modelship.dev/v1alpha1
kind: ModelService
metadata:
  name: NAME
spec:
  model: {name: m, version: \"1\"}
  runtime: {image: \"r.example.com/s:1\"}
  resources: {cpu: \"1\", memory: 1Gi}
";

fn service(name: &str) -> String {
    SERVICE.replace("NAME", name)
}

#[test]
fn the_full_example_loads_without_diagnostics_and_fills_every_field() {
    let repo = spec::load(&fixture("full"));
    assert_eq!(rendered(&repo), Vec::<String>::new());
    assert!(repo.is_valid());
    assert!(repo.invalid.is_empty());
    assert_eq!(repo.config.spec.default_namespace, "ml-serving");
    assert_eq!(repo.config.spec.traffic.router, Router::GatewayApi);
    assert_eq!(repo.config.spec.gpu.catalog.len(), 4);
    assert_eq!(repo.config.spec.gpu.catalog["l4"].hourly_cost, Some(0.80));
    assert_eq!(repo.services.len(), 1);
    let loaded = &repo.services[0];
    assert_eq!(loaded.file, "services/risk/fraud.yaml");
    assert_eq!(loaded.namespace(), "ml-prod");
    let s = &loaded.service;
    assert_eq!(s.metadata.name, "fraud-detection");
    assert_eq!(s.metadata.labels["team"], "risk");
    assert_eq!(s.metadata.annotations["example.com/note"], "fraud scoring");
    let spec = &s.spec;
    assert_eq!(spec.owner.as_deref(), Some("risk-ml@example.com"));
    // Written as a plain 1.10: kept as text, not the float 1.1.
    assert_eq!(spec.model.version, "1.10");
    assert_eq!(spec.model.uri.as_deref(), Some("s3://models/fraud/1.10"));
    assert_eq!(spec.model.format, Some(ModelFormat::Onnx));
    assert_eq!(spec.model.size.as_ref().map(|q| q.as_str()), Some("20Gi"));
    assert_eq!(
        spec.model.load_timeout.as_ref().map(|d| d.as_secs()),
        Some(600)
    );
    assert_eq!(spec.model.credentials_secret.as_deref(), Some("s3-creds"));
    let rt = &spec.runtime;
    assert_eq!(rt.image, "registry.example.com/triton:24.05");
    assert_eq!(rt.command, ["tritonserver"]);
    assert_eq!(rt.args, ["--model-repository=/mnt/models"]);
    assert_eq!(rt.env["WORKERS"], "4");
    assert_eq!(rt.env_from_secrets, ["api-keys"]);
    assert_eq!(
        (rt.port, rt.grpc_port, rt.metrics_port),
        (Some(8080), Some(8081), Some(9090))
    );
    assert_eq!(rt.health_path.as_deref(), Some("/health"));
    assert_eq!(rt.readiness_path.as_deref(), Some("/ready"));
    assert_eq!(spec.resources.cpu.value(), 2.0);
    assert_eq!(
        spec.resources.cpu_limit.as_ref().map(|q| q.value()),
        Some(4.0)
    );
    assert_eq!(spec.resources.memory.as_str(), "8Gi");
    let gpu = spec.gpu.as_ref().expect("gpu");
    assert_eq!(gpu.count, 1);
    assert_eq!(
        gpu.gpu_type,
        Some(GpuTypes::Any(vec!["a100-80gb".into(), "h100-80gb".into()]))
    );
    assert_eq!(gpu.partition.as_deref(), Some("1g.10gb"));
    assert!(!gpu.shared);
    assert_eq!(gpu.shm.as_ref().map(|q| q.as_str()), Some("2Gi"));
    assert_eq!(spec.replicas, Some(2));
    let a = spec.autoscaling.as_ref().expect("autoscaling");
    assert_eq!((a.min_replicas, a.max_replicas), (Some(1), 10));
    assert_eq!(a.metrics.len(), 7);
    assert_eq!(a.metrics[0], MetricSpec::Cpu(70));
    assert_eq!(a.metrics[4], MetricSpec::GpuUtilization(80));
    let MetricSpec::Custom(external) = &a.metrics[6] else {
        panic!("not custom: {:?}", a.metrics[6]);
    };
    assert_eq!(external.metric_type, CustomMetricType::External);
    assert_eq!(external.target.value(), 1000.0);
    assert_eq!(external.selector["queue"], "fraud");
    assert_eq!(
        a.scale_down_stabilization.as_ref().map(|d| d.as_secs()),
        Some(300)
    );
    let r = spec.rollout.as_ref().expect("rollout");
    assert_eq!(r.strategy, Strategy::Canary);
    assert_eq!(r.steps, [10, 25, 50, 100]);
    assert_eq!(r.manual_gates, [50]);
    let analysis = r.analysis.as_ref().expect("analysis");
    assert_eq!(analysis.success_rate, Some(99.0));
    assert_eq!(
        analysis.latency_p99.as_ref().map(|d| d.value().as_millis()),
        Some(500)
    );
    assert_eq!(
        (analysis.min_requests, analysis.failure_limit),
        (Some(100), Some(2))
    );
    assert_eq!(analysis.queries[0].name, "drift");
    assert!(analysis.queries[0].query.contains("{{namespace}}"));
    assert_eq!(analysis.queries[0].max, Some(0.3));
    let traffic = spec.traffic.as_ref().expect("traffic");
    assert_eq!(traffic.router, Some(Router::GatewayApi));
    assert_eq!(traffic.hosts, ["fraud.ml.example.com"]);
    let placement = spec.placement.as_ref().expect("placement");
    assert_eq!(placement.node_selector["pool"], "gpu");
    assert_eq!(placement.tolerations[0].value.as_deref(), Some("ml"));
    assert_eq!(placement.spread_across_zones, Some(true));
    assert_eq!(placement.priority_class_name.as_deref(), Some("ml-high"));
    assert_eq!(
        spec.disruption
            .as_ref()
            .and_then(|d| d.max_unavailable.clone()),
        Some(IntOrPercent::Int(1))
    );
    let network = spec.network.as_ref().expect("network");
    assert_eq!(network.allow_from[0].namespace.as_deref(), Some("apps"));
    assert_eq!(
        network.allow_from[1]
            .pod_labels
            .as_ref()
            .map(|l| l["app"].as_str()),
        Some("gateway")
    );
    assert_eq!(
        spec.security
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem),
        Some(true)
    );
}

#[test]
fn errors_in_two_files_are_both_reported_and_good_services_still_load() {
    let bad_a = service("a").replace("memory: 1Gi", "memory: 1Gi, gpus: 2");
    let bad_b = service("b").replace("image: \"r.example.com/s:1\"", "image: \"r.example.com/s\"");
    let repo = repo(&[
        ("services/a.yaml", &bad_a),
        ("services/b.yaml", &bad_b),
        ("services/c.yaml", &service("c")),
    ]);
    assert_eq!(
        rendered(&repo),
        [
            "services/a.yaml:8:38: error: spec.resources.gpus: unknown field; expected one of: cpu, cpuLimit, memory",
            "services/b.yaml:7:20: error: spec.runtime.image: image `r.example.com/s` has no tag; pin a version tag (image:1.2.3) or a digest (image@sha256:...)",
        ]
    );
    let names: Vec<&str> = repo.services.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["c"]);
    assert_eq!(repo.invalid, ids(&[("default", "a"), ("default", "b")]));
}

#[test]
fn unknown_fields_are_each_reported_with_a_suggestion() {
    let text = service("llm").replace(
        "  resources:",
        "  autoscaling:\n    minReplicas: 1\n    maxReplica: 3\n    metrics: [{cpu: 70}]\n    scaleDown: 5m\n  resources:",
    );
    let repo = repo(&[("services/llm.yaml", &text)]);
    assert_eq!(
        rendered(&repo),
        [
            "services/llm.yaml:9:5: error: spec.autoscaling.maxReplicas: missing required field",
            "services/llm.yaml:10:5: error: spec.autoscaling.maxReplica: unknown field; did you mean maxReplicas?",
            "services/llm.yaml:12:5: error: spec.autoscaling.scaleDown: unknown field; expected one of: minReplicas, maxReplicas, metrics, scaleDownStabilization, scaleUpStabilization",
        ],
        "{:#?}",
        repo.diagnostics
    );
}

fn ids(pairs: &[(&str, &str)]) -> Vec<ServiceId> {
    pairs
        .iter()
        .map(|(ns, name)| ServiceId::new(*ns, *name).unwrap())
        .collect()
}

#[test]
fn a_service_defined_twice_is_an_error_at_the_second_and_neither_is_applied() {
    let other_ns = service("a").replace("  name: a\n", "  name: a\n  namespace: other\n");
    let repo = repo(&[
        ("services/one.yaml", &service("a")),
        (
            "services/two.yaml",
            &format!("{}---\n{}", service("b"), service("a")),
        ),
        ("services/three.yaml", &other_ns),
    ]);
    assert_eq!(
        rendered(&repo),
        [
            "services/two.yaml:13:9: error: metadata.name: service default/a is defined twice; first defined at services/one.yaml:4"
        ]
    );
    assert_eq!(repo.invalid, ids(&[("default", "a")]));
    let loaded: Vec<ServiceId> = repo.services.iter().map(|s| s.id().clone()).collect();
    assert_eq!(loaded, ids(&[("default", "b"), ("other", "a")]));
}

#[test]
fn documents_of_a_stream_load_with_their_lines_and_empty_documents_are_skipped() {
    let text = format!(
        "---\n# nothing here\n---\n{}---\n---\n{}",
        service("x"),
        service("y")
    );
    let repo = repo(&[("services/many.yml", &text)]);
    assert_eq!(rendered(&repo), Vec::<String>::new());
    let found: Vec<(&str, usize)> = repo.services.iter().map(|s| (s.name(), s.line)).collect();
    assert_eq!(found, [("x", 4), ("y", 14)]);
}

#[test]
fn non_utf8_files_are_located_and_their_services_kept_untouched() {
    let mut bytes = service("broken").into_bytes();
    let at = bytes.len() - 3;
    bytes.insert(at, 0xff);
    let mut files = BTreeMap::new();
    files.insert("services/bin.yaml".to_string(), bytes);
    let repo = spec::load(&files);
    assert_eq!(
        rendered(&repo),
        [
            "services/bin.yaml:8:35: error: not valid UTF-8 (byte 192); YAML files must be UTF-8 encoded"
        ]
    );
    assert_eq!(repo.invalid, ids(&[("default", "broken")]));
    assert!(repo.services.is_empty());
}

#[test]
fn a_syntax_error_keeps_the_name_and_the_other_documents() {
    let broken = service("broken").replace("resources: {cpu", "resources: [{cpu");
    let text = format!("{broken}---\n{}", service("fine"));
    let repo = repo(&[("services/s.yaml", &text)]);
    let shown = rendered(&repo);
    assert_eq!(shown.len(), 1, "{shown:#?}");
    assert_eq!(
        shown[0],
        "services/s.yaml:8:14: error: YAML syntax error: unclosed bracket '['"
    );
    assert_eq!(repo.invalid, ids(&[("default", "broken")]));
    assert_eq!(repo.services.len(), 1);
    assert_eq!(repo.services[0].name(), "fine");
}

#[test]
fn unknown_kinds_are_errors_and_their_names_are_protected() {
    let text = service("job").replace("kind: ModelService", "kind: ModelJob");
    let repo = repo(&[("services/job.yaml", &text)]);
    assert_eq!(
        rendered(&repo),
        [
            "services/job.yaml:2:7: error: kind: unknown kind `ModelJob`; service files hold ModelService documents"
        ]
    );
    assert_eq!(repo.invalid, ids(&[("default", "job")]));
}

#[test]
fn a_wrong_api_version_does_not_hide_other_errors() {
    let text = service("v")
        .replace("modelship.dev/v1alpha1", "modelship.dev/v2")
        .replace("memory: 1Gi", "memory: 1Gi, gpu: 1");
    let repo = repo(&[("services/v.yaml", &text)]);
    assert_eq!(
        rendered(&repo),
        [
            "services/v.yaml:1:13: error: apiVersion: unsupported apiVersion `modelship.dev/v2`; expected modelship.dev/v1alpha1",
            "services/v.yaml:8:38: error: spec.resources.gpu: unknown field; did you mean cpu?",
        ]
    );
    assert_eq!(repo.invalid, ids(&[("default", "v")]));
}

#[test]
fn config_globs_and_default_namespace_decide_what_loads() {
    let config = "apiVersion: modelship.dev/v1alpha1\nkind: RepositoryConfig\nspec:\n  defaultNamespace: ml\n  services: [\"models/*.yaml\"]\n";
    let repo = repo(&[
        ("modelship.yaml", config),
        ("models/a.yaml", &service("a")),
        ("models/deep/b.yaml", &service("b")),
        ("services/c.yaml", &service("c")),
        ("policies/p.yaml", "not: [a service"),
    ]);
    assert_eq!(rendered(&repo), Vec::<String>::new());
    let names: Vec<&str> = repo.services.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["a"]);
    assert_eq!(repo.services[0].namespace(), "ml");
}

#[test]
fn an_invalid_config_keeps_every_service_untouched() {
    let config = "apiVersion: modelship.dev/v1alpha1\nkind: RepositoryConfig\nspec:\n  defaultNamespace: ml\n  gpu: {catalog: {l4: {}}}\n";
    let repo = repo(&[
        ("modelship.yaml", config),
        ("services/a.yaml", &service("a")),
    ]);
    assert_eq!(
        rendered(&repo),
        ["modelship.yaml:5:23: error: spec.gpu.catalog.l4.product: missing required field"]
    );
    assert!(repo.services.is_empty());
    assert_eq!(repo.invalid, ids(&[("ml", "a")]));
}

#[test]
fn a_misnamed_config_file_is_reported() {
    let config = "apiVersion: modelship.dev/v1alpha1\nkind: RepositoryConfig\n";
    let repo = repo(&[
        ("modelship.yml", config),
        ("services/a.yaml", &service("a")),
    ]);
    assert_eq!(
        rendered(&repo),
        [
            "modelship.yml: error: the repository configuration is read from modelship.yaml; rename the file to modelship.yaml"
        ]
    );
    assert!(repo.services.is_empty());
    assert_eq!(repo.invalid, ids(&[("default", "a")]));
}

#[test]
fn anchors_and_merge_keys_resolve_inside_a_service() {
    let text = "apiVersion: modelship.dev/v1alpha1
kind: ModelService
metadata:
  name: anchored
  labels: &labels {team: risk}
  annotations: *labels
spec:
  model: {name: m, version: \"1\"}
  runtime: {image: \"r.example.com/s:1\"}
  resources: &res {cpu: \"1\", memory: 1Gi}
  placement:
    nodeSelector:
      <<: *labels
      pool: gpu
";
    let repo = repo(&[("services/a.yaml", text)]);
    assert_eq!(rendered(&repo), Vec::<String>::new());
    let s = &repo.services[0].service;
    assert_eq!(s.metadata.annotations["team"], "risk");
    let selector = &s.spec.placement.as_ref().expect("placement").node_selector;
    assert_eq!(selector.len(), 2);
    assert_eq!(selector["team"], "risk");
}

#[test]
fn diagnostics_are_sorted_by_file_line_and_column_across_files() {
    // Fields that fail to read, required or not, do not hide rules elsewhere.
    let a = service("a")
        .replace("name: a", "name: A")
        .replace("memory: 1Gi", "memory: lots")
        + "  replicas: many\n";
    let repo = repo(&[("services/b.yaml", &service("B")), ("services/a.yaml", &a)]);
    let places: Vec<(String, usize, usize)> = repo
        .diagnostics
        .iter()
        .map(|d| (d.file.clone(), d.line, d.column))
        .collect();
    assert_eq!(
        places,
        [
            ("services/a.yaml".to_string(), 4, 9),
            ("services/a.yaml".to_string(), 8, 33),
            ("services/a.yaml".to_string(), 9, 13),
            ("services/b.yaml".to_string(), 4, 9),
        ]
    );
}

#[test]
fn a_broken_document_naming_a_loaded_service_keeps_both_untouched() {
    let broken = service("a").replace("resources: {cpu", "resources: [{cpu");
    let repo = repo(&[
        ("services/a.yaml", &service("a")),
        ("services/b.yaml", &broken),
    ]);
    assert_eq!(
        rendered(&repo),
        [
            "services/b.yaml:4:9: error: metadata.name: service default/a is defined twice; first defined at services/a.yaml:4",
            "services/b.yaml:8:14: error: YAML syntax error: unclosed bracket '['",
        ]
    );
    assert!(repo.services.is_empty());
    assert_eq!(repo.invalid, ids(&[("default", "a")]));
}

#[test]
fn odd_documents_get_clear_diagnostics() {
    let cases: [(&str, String, &[&str]); 6] = [
        (
            "a list instead of a mapping",
            "- a\n- b\n".to_string(),
            &["services/x.yaml:1:1: error: expected a ModelService mapping, found a list"],
        ),
        (
            "metadata left empty",
            service("x").replace("metadata:\n  name: x\n", "metadata:\n"),
            &["services/x.yaml:3:9: error: metadata: expected a mapping, found an empty value"],
        ),
        (
            "a quoted port",
            service("x").replace("s:1\"}", "s:1\", port: \"8080\"}"),
            &[
                "services/x.yaml:7:47: error: spec.runtime.port: expected a non-negative integer, found \"8080\"",
            ],
        ),
        (
            "a byte order mark",
            format!("\u{feff}{}", service("x")),
            &[],
        ),
        (
            "tabs for indentation",
            service("x").replace("  name: x", "\tname: x"),
            &["services/x.yaml:4:2: error: YAML syntax error: tabs disallowed"],
        ),
        ("a null document", "~\n".to_string(), &[]),
    ];
    for (name, text, expected) in cases {
        let repo = repo(&[("services/x.yaml", &text)]);
        let shown = rendered(&repo);
        assert_eq!(shown.len(), expected.len(), "{name}: {shown:#?}");
        for (got, want) in shown.iter().zip(expected) {
            assert!(
                got.starts_with(want),
                "{name}: {got} does not start with {want}"
            );
        }
    }
}
