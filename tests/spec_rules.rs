//! Every validation rule, table-driven: each case is a small repository with one mistake,
//! and the expectation is the single diagnostic it must produce (file, line, column,
//! field, and the message or a stable part of it).

use std::collections::BTreeMap;

use modelship::spec::{self, Diagnostic};

/// A valid service; `{meta}` extends metadata, `{extra}` adds lines to spec (from line 9).
const BASE: &str = "apiVersion: modelship.dev/v1alpha1
kind: ModelService
metadata:
  name: svc
spec:
  model: {name: m, version: \"1\"}
  runtime: {image: \"r.example.com/s:1\"}
  resources: {cpu: \"1\", memory: 1Gi}
";

/// A configuration with a GPU catalog, a gateway and a model loader.
const CONFIG: &str = "apiVersion: modelship.dev/v1alpha1
kind: RepositoryConfig
spec:
  traffic: {gateway: {name: gw, namespace: gateway-system}}
  modelLoader: {image: \"r.example.com/loader:1\"}
  gpu:
    catalog:
      a100-80gb: {product: NVIDIA-A100-SXM4-80GB}
      l4: {product: NVIDIA-L4}
";

/// The base service with `extra` appended to its spec (extra starts at line 9).
fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

/// The base service with one piece of text replaced.
fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in the base service");
    BASE.replace(from, to)
}

struct Case {
    name: &'static str,
    service: String,
    config: Option<String>,
    /// (file, line, column, field, message substring)
    expect: (&'static str, usize, usize, &'static str, &'static str),
}

fn case(
    name: &'static str,
    service: String,
    expect: (&'static str, usize, usize, &'static str, &'static str),
) -> Case {
    Case {
        name,
        service,
        config: Some(CONFIG.to_string()),
        expect,
    }
}

const SVC: &str = "services/svc.yaml";
const CFG: &str = "modelship.yaml";

fn run(case: &Case) -> Vec<Diagnostic> {
    let mut files = BTreeMap::new();
    files.insert(SVC.to_string(), case.service.as_bytes().to_vec());
    if let Some(config) = &case.config {
        files.insert(CFG.to_string(), config.as_bytes().to_vec());
    }
    spec::load(&files).diagnostics
}

fn service_cases() -> Vec<Case> {
    vec![
        // metadata
        case(
            "name format",
            edit("name: svc", "name: Svc_1"),
            (
                SVC,
                4,
                9,
                "metadata.name",
                "invalid name `Svc_1`: may contain only lowercase letters",
            ),
        ),
        case(
            "name length",
            edit("name: svc", &format!("name: {}", "a".repeat(46))),
            (
                SVC,
                4,
                9,
                "metadata.name",
                "is 46 characters long; at most 45",
            ),
        ),
        case(
            "name starts with a digit",
            edit("name: svc", "name: 1svc"),
            (
                SVC,
                4,
                9,
                "metadata.name",
                "must start with a lowercase letter",
            ),
        ),
        case(
            "namespace format",
            edit("name: svc\n", "name: svc\n  namespace: ML_prod\n"),
            (
                SVC,
                5,
                14,
                "metadata.namespace",
                "invalid namespace `ML_prod`",
            ),
        ),
        case(
            "label key",
            edit("name: svc\n", "name: svc\n  labels: {\"bad key\": x}\n"),
            (
                SVC,
                5,
                12,
                "metadata.labels[\"bad key\"]",
                "invalid key `bad key`",
            ),
        ),
        case(
            "label value",
            edit("name: svc\n", "name: svc\n  labels: {team: \"risk ml\"}\n"),
            (
                SVC,
                5,
                18,
                "metadata.labels.team",
                "`risk ml` is not a valid label value",
            ),
        ),
        case(
            "annotation key",
            edit("name: svc\n", "name: svc\n  annotations: {\"-x\": y}\n"),
            (
                SVC,
                5,
                17,
                "metadata.annotations[\"-x\"]",
                "must start and end with a letter or digit",
            ),
        ),
        // document shape
        case(
            "apiVersion",
            edit("modelship.dev/v1alpha1", "modelship.dev/v1"),
            (
                SVC,
                1,
                13,
                "apiVersion",
                "unsupported apiVersion `modelship.dev/v1`; expected modelship.dev/v1alpha1",
            ),
        ),
        case(
            "unknown kind",
            edit("kind: ModelService", "kind: Deployment"),
            (
                SVC,
                2,
                7,
                "kind",
                "unknown kind `Deployment`; service files hold ModelService documents",
            ),
        ),
        case(
            "kind typo",
            edit("kind: ModelService", "kind: ModelServce"),
            (SVC, 2, 7, "kind", "did you mean ModelService?"),
        ),
        case(
            "config kind in a service file",
            edit("kind: ModelService", "kind: RepositoryConfig"),
            (SVC, 2, 7, "kind", "belongs in modelship.yaml"),
        ),
        case(
            "missing kind",
            edit("kind: ModelService\n", ""),
            (
                SVC,
                1,
                1,
                "kind",
                "missing required field; add `kind: ModelService`",
            ),
        ),
        case(
            "missing required field",
            edit("  resources: {cpu: \"1\", memory: 1Gi}\n", ""),
            (SVC, 6, 3, "spec.resources", "missing required field"),
        ),
        case(
            "unknown field",
            with("  replica: 2\n"),
            (
                SVC,
                9,
                3,
                "spec.replica",
                "unknown field; did you mean replicas?",
            ),
        ),
        case(
            "wrong type",
            with("  replicas: two\n"),
            (
                SVC,
                9,
                13,
                "spec.replicas",
                "expected a non-negative integer, found \"two\"",
            ),
        ),
        case(
            "quoted number for an integer",
            with("  replicas: \"2\"\n"),
            (SVC, 9, 13, "spec.replicas", "found \"2\""),
        ),
        case(
            "negative integer",
            with("  replicas: -1\n"),
            (
                SVC,
                9,
                13,
                "spec.replicas",
                "invalid value -1: expected a non-negative integer",
            ),
        ),
        case(
            "YAML 1.1 boolean",
            with("  security: {readOnlyRootFilesystem: yes}\n"),
            (
                SVC,
                9,
                38,
                "spec.security.readOnlyRootFilesystem",
                "expected true or false, found \"yes\"",
            ),
        ),
        case(
            "enum value",
            edit("version: \"1\"}", "version: \"1\", format: onnxx}"),
            (
                SVC,
                6,
                42,
                "spec.model.format",
                "unknown value `onnxx`; did you mean onnx?",
            ),
        ),
        case(
            "enum value far from any",
            edit("version: \"1\"}", "version: \"1\", format: gguf}"),
            (
                SVC,
                6,
                42,
                "spec.model.format",
                "expected one of: onnx, pytorch, tensorflow, sklearn, xgboost, huggingface, custom",
            ),
        ),
        case(
            "duplicate key",
            with("  replicas: 1\n  replicas: 2\n"),
            (SVC, 10, 3, "", "duplicate key `replicas` (first at line 9)"),
        ),
        case(
            "syntax error",
            with("  replicas: [1\n"),
            (SVC, 9, 13, "", "YAML syntax error: unclosed bracket"),
        ),
        case(
            "custom tag",
            with("  replicas: !two 2\n"),
            (SVC, 9, 13, "", "unsupported tag `!two`"),
        ),
        // model
        case(
            "version label value",
            edit("version: \"1\"", "version: \"1.0 beta\""),
            (
                SVC,
                6,
                29,
                "spec.model.version",
                "`1.0 beta` is not a valid label value",
            ),
        ),
        case(
            "uri scheme",
            edit("version: \"1\"}", "version: \"1\", uri: \"ftp://x/y\"}"),
            (
                SVC,
                6,
                39,
                "spec.model.uri",
                "unknown model.uri scheme `ftp`; known schemes: pvc, s3, gs, hf, https, oci",
            ),
        ),
        case(
            "uri without scheme",
            edit("version: \"1\"}", "version: \"1\", uri: models/m}"),
            (SVC, 6, 39, "spec.model.uri", "has no scheme"),
        ),
        case(
            "pvc claim name",
            edit(
                "version: \"1\"}",
                "version: \"1\", uri: \"pvc://My_Claim/m\"}",
            ),
            (SVC, 6, 39, "spec.model.uri", "claim name `My_Claim`"),
        ),
        case(
            "bucket missing",
            edit("version: \"1\"}", "version: \"1\", uri: \"s3:///m\"}"),
            (
                SVC,
                6,
                39,
                "spec.model.uri",
                "needs a bucket or repository after s3://",
            ),
        ),
        case(
            "size quantity",
            edit("version: \"1\"}", "version: \"1\", size: 20GB}"),
            (SVC, 6, 40, "spec.model.size", "`20GB` is not a quantity"),
        ),
        case(
            "load timeout duration",
            edit("version: \"1\"}", "version: \"1\", loadTimeout: 5min}"),
            (
                SVC,
                6,
                47,
                "spec.model.loadTimeout",
                "`5min` is not a duration",
            ),
        ),
        case(
            "load timeout minimum",
            edit("version: \"1\"}", "version: \"1\", loadTimeout: 5s}"),
            (
                SVC,
                6,
                47,
                "spec.model.loadTimeout",
                "5s is too short: at least 10s",
            ),
        ),
        case(
            "credentials secret name",
            edit("version: \"1\"}", "version: \"1\", credentialsSecret: S3}"),
            (
                SVC,
                6,
                53,
                "spec.model.credentialsSecret",
                "invalid object name `S3`",
            ),
        ),
        // runtime
        case(
            "latest image",
            edit("s:1\"", "s:latest\""),
            (
                SVC,
                7,
                20,
                "spec.runtime.image",
                "image `r.example.com/s:latest` uses the tag `latest`",
            ),
        ),
        case(
            "untagged image behind a registry port",
            edit("r.example.com/s:1", "r.example.com:5000/s"),
            (
                SVC,
                7,
                20,
                "spec.runtime.image",
                "has no tag; pin a version tag",
            ),
        ),
        case(
            "malformed digest",
            edit("s:1\"", "s@sha256:abc\""),
            (SVC, 7, 20, "spec.runtime.image", "malformed digest"),
        ),
        case(
            "port zero",
            edit("s:1\"}", "s:1\", port: 0}"),
            (SVC, 7, 47, "spec.runtime.port", "port 0 is not valid"),
        ),
        case(
            "port out of range",
            edit("s:1\"}", "s:1\", port: 70000}"),
            (SVC, 7, 47, "spec.runtime.port", "invalid value 70000"),
        ),
        case(
            "ports distinct",
            edit("s:1\"}", "s:1\", grpcPort: 8080}"),
            (
                SVC,
                7,
                51,
                "spec.runtime.grpcPort",
                "port 8080 is also used by port",
            ),
        ),
        case(
            "metrics port clashes with grpc",
            edit("s:1\"}", "s:1\", grpcPort: 9000, metricsPort: 9000}"),
            (
                SVC,
                7,
                70,
                "spec.runtime.metricsPort",
                "also used by grpcPort",
            ),
        ),
        case(
            "env name",
            edit("s:1\"}", "s:1\", env: {LOG-LEVEL: x}}"),
            (
                SVC,
                7,
                47,
                "spec.runtime.env.LOG-LEVEL",
                "must be a C identifier",
            ),
        ),
        case(
            "reserved env",
            edit("s:1\"}", "s:1\", env: {CUDA_VISIBLE_DEVICES: \"0\"}}"),
            (
                SVC,
                7,
                47,
                "spec.runtime.env.CUDA_VISIBLE_DEVICES",
                "set by the GPU device plugin",
            ),
        ),
        case(
            "health path",
            edit("s:1\"}", "s:1\", healthPath: health}"),
            (
                SVC,
                7,
                53,
                "spec.runtime.healthPath",
                "`health` must start with /",
            ),
        ),
        case(
            "readiness path",
            edit("s:1\"}", "s:1\", readinessPath: ready}"),
            (
                SVC,
                7,
                56,
                "spec.runtime.readinessPath",
                "`ready` must start with /",
            ),
        ),
        case(
            "env from secret name",
            edit("s:1\"}", "s:1\", envFromSecrets: [API]}"),
            (
                SVC,
                7,
                58,
                "spec.runtime.envFromSecrets[0]",
                "invalid object name `API`",
            ),
        ),
        // resources
        case(
            "cpu quantity",
            edit("cpu: \"1\"", "cpu: two"),
            (SVC, 8, 20, "spec.resources.cpu", "`two` is not a quantity"),
        ),
        case(
            "memory positive",
            edit("memory: 1Gi", "memory: \"0\""),
            (
                SVC,
                8,
                33,
                "spec.resources.memory",
                "must be greater than zero",
            ),
        ),
        case(
            "cpu limit below request",
            edit("cpu: \"1\"", "cpu: \"1\", cpuLimit: 500m"),
            (
                SVC,
                8,
                35,
                "spec.resources.cpuLimit",
                "cpuLimit 500m is below the cpu request 1",
            ),
        ),
        // gpu
        case(
            "gpu count low",
            with("  gpu: {count: 0}\n"),
            (
                SVC,
                9,
                16,
                "spec.gpu.count",
                "gpu.count 0 is out of range: 1..16",
            ),
        ),
        case(
            "gpu count high",
            with("  gpu: {count: 17}\n"),
            (SVC, 9, 16, "spec.gpu.count", "gpu.count 17 is out of range"),
        ),
        case(
            "gpu count missing",
            with("  gpu: {type: l4}\n"),
            (SVC, 9, 8, "spec.gpu.count", "missing required field"),
        ),
        case(
            "gpu type close",
            with("  gpu: {count: 1, type: a100-80g}\n"),
            (
                SVC,
                9,
                25,
                "spec.gpu.type",
                "GPU type `a100-80g` is not in the catalog; did you mean a100-80gb?",
            ),
        ),
        case(
            "gpu type list",
            with("  gpu: {count: 1, type: [l4, h200]}\n"),
            (
                SVC,
                9,
                30,
                "spec.gpu.type[1]",
                "`h200` is not in the catalog; catalog keys: a100-80gb, l4",
            ),
        ),
        case(
            "partition and shared",
            with("  gpu: {count: 1, partition: 1g.10gb, shared: true}\n"),
            (
                SVC,
                9,
                30,
                "spec.gpu.partition",
                "partition and shared cannot be combined",
            ),
        ),
        case(
            "shm quantity",
            with("  gpu: {count: 1, shm: lots}\n"),
            (SVC, 9, 24, "spec.gpu.shm", "`lots` is not a quantity"),
        ),
        // autoscaling
        case(
            "max below min",
            with("  autoscaling: {minReplicas: 3, maxReplicas: 2, metrics: [{cpu: 70}]}\n"),
            (
                SVC,
                9,
                46,
                "spec.autoscaling.maxReplicas",
                "maxReplicas 2 is below minReplicas 3",
            ),
        ),
        case(
            "max zero",
            with(
                "  autoscaling: {minReplicas: 0, maxReplicas: 0, metrics: [{custom: {name: q, type: external, target: 1}}]}\n",
            ),
            (
                SVC,
                9,
                46,
                "spec.autoscaling.maxReplicas",
                "maxReplicas must be at least 1",
            ),
        ),
        case(
            "scale to zero",
            with("  autoscaling: {minReplicas: 0, maxReplicas: 2, metrics: [{cpu: 70}]}\n"),
            (
                SVC,
                9,
                30,
                "spec.autoscaling.minReplicas",
                "minReplicas 0 needs an external metric",
            ),
        ),
        case(
            "no metrics",
            with("  autoscaling: {maxReplicas: 2, metrics: []}\n"),
            (
                SVC,
                9,
                42,
                "spec.autoscaling.metrics",
                "at least one metric is required",
            ),
        ),
        case(
            "two keys in a metric",
            with("  autoscaling: {maxReplicas: 2, metrics: [{cpu: 70}, {cpu: 70, memory: 80}]}\n"),
            (
                SVC,
                9,
                54,
                "spec.autoscaling.metrics[1]",
                "must have exactly one key, found 2: cpu, memory",
            ),
        ),
        case(
            "no key in a metric",
            with("  autoscaling: {maxReplicas: 2, metrics: [{}]}\n"),
            (
                SVC,
                9,
                43,
                "spec.autoscaling.metrics[0]",
                "exactly one key, found none",
            ),
        ),
        case(
            "unknown metric",
            with("  autoscaling: {maxReplicas: 2, metrics: [{cpuu: 70}]}\n"),
            (
                SVC,
                9,
                44,
                "spec.autoscaling.metrics[0].cpuu",
                "unknown key; did you mean cpu?",
            ),
        ),
        case(
            "metric without value",
            with("  autoscaling: {maxReplicas: 2, metrics: [cpu]}\n"),
            (
                SVC,
                9,
                43,
                "spec.autoscaling.metrics[0]",
                "`cpu` needs a value",
            ),
        ),
        case(
            "percent metric zero",
            with("  autoscaling: {maxReplicas: 2, metrics: [{cpu: 0}]}\n"),
            (
                SVC,
                9,
                49,
                "spec.autoscaling.metrics[0].cpu",
                "0 is out of range: expected > 0",
            ),
        ),
        case(
            "gpu utilization above 100",
            with("  autoscaling: {maxReplicas: 2, metrics: [{gpuUtilization: 150}]}\n"),
            (
                SVC,
                9,
                60,
                "spec.autoscaling.metrics[0].gpuUtilization",
                "150 is out of range: expected 1..100",
            ),
        ),
        case(
            "rps quantity",
            with("  autoscaling: {maxReplicas: 2, metrics: [{requestsPerSecond: many}]}\n"),
            (
                SVC,
                9,
                63,
                "spec.autoscaling.metrics[0].requestsPerSecond",
                "`many` is not a quantity",
            ),
        ),
        case(
            "custom metric type",
            with(
                "  autoscaling: {maxReplicas: 2, metrics: [{custom: {name: q, type: object, target: 1}}]}\n",
            ),
            (
                SVC,
                9,
                68,
                "spec.autoscaling.metrics[0].custom.type",
                "unknown value `object`; expected one of: pods, external",
            ),
        ),
        case(
            "selector on a pods metric",
            with(
                "  autoscaling: {maxReplicas: 2, metrics: [{custom: {name: q, type: pods, target: 1, selector: {a: b}}}]}\n",
            ),
            (
                SVC,
                9,
                95,
                "spec.autoscaling.metrics[0].custom.selector",
                "selector applies to external metrics only",
            ),
        ),
        case(
            "stabilization duration",
            with(
                "  autoscaling: {maxReplicas: 2, metrics: [{cpu: 70}], scaleDownStabilization: 5 min}\n",
            ),
            (
                SVC,
                9,
                79,
                "spec.autoscaling.scaleDownStabilization",
                "`5 min` is not a duration",
            ),
        ),
        case(
            "stabilization too long",
            with(
                "  autoscaling: {maxReplicas: 2, metrics: [{cpu: 70}], scaleUpStabilization: 2h}\n",
            ),
            (
                SVC,
                9,
                77,
                "spec.autoscaling.scaleUpStabilization",
                "2h is too long: at most 1h",
            ),
        ),
        // rollout
        case(
            "strategy value",
            with("  rollout: {strategy: canry}\n"),
            (
                SVC,
                9,
                23,
                "spec.rollout.strategy",
                "unknown value `canry`; did you mean canary?",
            ),
        ),
        case(
            "canary without steps",
            with("  rollout: {strategy: canary}\n"),
            (
                SVC,
                9,
                12,
                "spec.rollout.steps",
                "a canary rollout needs steps",
            ),
        ),
        case(
            "steps increase",
            with("  rollout: {strategy: canary, steps: [10, 50, 50, 100]}\n"),
            (
                SVC,
                9,
                47,
                "spec.rollout.steps[2]",
                "step 50 does not increase on 50",
            ),
        ),
        case(
            "steps range",
            with("  rollout: {strategy: canary, steps: [0, 50, 100]}\n"),
            (
                SVC,
                9,
                39,
                "spec.rollout.steps[0]",
                "step 0 is out of range: weights are 1..100",
            ),
        ),
        case(
            "steps above 100",
            with("  rollout: {strategy: canary, steps: [50, 150]}\n"),
            (
                SVC,
                9,
                43,
                "spec.rollout.steps[1]",
                "step 150 is out of range",
            ),
        ),
        case(
            "steps end at 100",
            with("  rollout: {strategy: canary, steps: [10, 50]}\n"),
            (
                SVC,
                9,
                43,
                "spec.rollout.steps[1]",
                "the last step is 50; steps must end at 100",
            ),
        ),
        case(
            "step interval",
            with("  rollout: {strategy: canary, steps: [50, 100], stepInterval: 10s}\n"),
            (
                SVC,
                9,
                63,
                "spec.rollout.stepInterval",
                "10s is too short: at least 30s",
            ),
        ),
        case(
            "steps need canary",
            with("  rollout: {steps: [50, 100]}\n"),
            (
                SVC,
                9,
                20,
                "spec.rollout.steps",
                "`steps` applies to the canary strategy only; set strategy: canary",
            ),
        ),
        case(
            "interval needs canary",
            with("  rollout: {strategy: rolling, stepInterval: 1m}\n"),
            (
                SVC,
                9,
                46,
                "spec.rollout.stepInterval",
                "`stepInterval` applies to the canary strategy only",
            ),
        ),
        case(
            "analysis needs canary",
            with("  rollout: {analysis: {successRate: 99}}\n"),
            (
                SVC,
                9,
                23,
                "spec.rollout.analysis",
                "`analysis` applies to the canary strategy only",
            ),
        ),
        case(
            "gates need canary",
            with("  rollout: {manualGates: [50]}\n"),
            (
                SVC,
                9,
                26,
                "spec.rollout.manualGates",
                "`manualGates` applies to the canary strategy only",
            ),
        ),
        case(
            "gate not a step",
            with("  rollout: {strategy: canary, steps: [50, 100], manualGates: [40]}\n"),
            (
                SVC,
                9,
                63,
                "spec.rollout.manualGates[0]",
                "manual gate 40 is not one of the steps; steps are 50, 100",
            ),
        ),
        case(
            "success rate",
            with("  rollout: {strategy: canary, steps: [100], analysis: {successRate: 150}}\n"),
            (
                SVC,
                9,
                69,
                "spec.rollout.analysis.successRate",
                "150 is out of range: expected 0..100",
            ),
        ),
        case(
            "latency duration",
            with("  rollout: {strategy: canary, steps: [100], analysis: {latencyP99: fast}}\n"),
            (
                SVC,
                9,
                68,
                "spec.rollout.analysis.latencyP99",
                "`fast` is not a duration",
            ),
        ),
        // traffic, placement, disruption, network
        case(
            "router value",
            with("  traffic: {router: nginx}\n"),
            (
                SVC,
                9,
                21,
                "spec.traffic.router",
                "unknown value `nginx`; expected one of: gateway-api, istio, replicas",
            ),
        ),
        case(
            "host name",
            with("  traffic: {hosts: [\"Fraud Example\"]}\n"),
            (
                SVC,
                9,
                21,
                "spec.traffic.hosts[0]",
                "invalid host `Fraud Example`",
            ),
        ),
        case(
            "toleration operator",
            with("  placement: {tolerations: [{key: a, operator: Is}]}\n"),
            (
                SVC,
                9,
                48,
                "spec.placement.tolerations[0].operator",
                "operator `Is` is not one of Exists, Equal",
            ),
        ),
        case(
            "toleration effect",
            with("  placement: {tolerations: [{key: a, effect: NoRun}]}\n"),
            (
                SVC,
                9,
                46,
                "spec.placement.tolerations[0].effect",
                "effect `NoRun` is not one of",
            ),
        ),
        case(
            "node selector key",
            with("  placement: {nodeSelector: {\"a b\": c}}\n"),
            (
                SVC,
                9,
                30,
                "spec.placement.nodeSelector[\"a b\"]",
                "invalid key `a b`",
            ),
        ),
        case(
            "priority class name",
            with("  placement: {priorityClassName: ML_High}\n"),
            (
                SVC,
                9,
                34,
                "spec.placement.priorityClassName",
                "invalid object name `ML_High`",
            ),
        ),
        case(
            "max unavailable negative",
            with("  disruption: {maxUnavailable: -1}\n"),
            (
                SVC,
                9,
                32,
                "spec.disruption.maxUnavailable",
                "maxUnavailable `-1` must be a count >= 0 or a percentage",
            ),
        ),
        case(
            "max unavailable percent",
            with("  disruption: {maxUnavailable: \"150%\"}\n"),
            (SVC, 9, 32, "spec.disruption.maxUnavailable", "`150%`"),
        ),
        case(
            "max unavailable shape",
            with("  disruption: {maxUnavailable: [1]}\n"),
            (
                SVC,
                9,
                32,
                "spec.disruption.maxUnavailable",
                "expected an integer or a percentage",
            ),
        ),
        case(
            "empty network peer",
            with("  network: {allowFrom: [{}]}\n"),
            (
                SVC,
                9,
                25,
                "spec.network.allowFrom[0]",
                "needs namespace, podLabels or both",
            ),
        ),
        case(
            "network peer namespace",
            with("  network: {allowFrom: [{namespace: Apps}]}\n"),
            (
                SVC,
                9,
                37,
                "spec.network.allowFrom[0].namespace",
                "invalid namespace `Apps`",
            ),
        ),
    ]
}

fn config_cases() -> Vec<Case> {
    let svc = |extra: &str| with(extra);
    let cfg = |name, service: String, config: &str, expect| Case {
        name,
        service,
        config: Some(config.to_string()),
        expect,
    };
    let no_catalog = "apiVersion: modelship.dev/v1alpha1\nkind: RepositoryConfig\n";
    let bad = |spec: &str| format!("{no_catalog}spec:\n{spec}");
    vec![
        cfg(
            "loader image needed",
            edit("version: \"1\"}", "version: \"1\", uri: \"hf://org/m\"}"),
            no_catalog,
            (
                SVC,
                6,
                39,
                "spec.model.uri",
                "scheme `hf` needs a model loader, and modelship.yaml sets no modelLoader.image; set spec.modelLoader.image",
            ),
        ),
        cfg(
            "gateway needed by a service",
            svc("  traffic: {router: gateway-api}\n"),
            no_catalog,
            (
                SVC,
                9,
                21,
                "spec.traffic.router",
                "router gateway-api needs traffic.gateway",
            ),
        ),
        cfg(
            "empty catalog",
            svc("  gpu: {count: 1, type: l4}\n"),
            no_catalog,
            (
                SVC,
                9,
                25,
                "spec.gpu.type",
                "the GPU catalog in modelship.yaml (spec.gpu.catalog) is empty",
            ),
        ),
        cfg(
            "default namespace",
            BASE.to_string(),
            &bad("  defaultNamespace: ML\n"),
            (
                CFG,
                4,
                21,
                "spec.defaultNamespace",
                "invalid namespace `ML`",
            ),
        ),
        cfg(
            "glob",
            BASE.to_string(),
            &bad("  services: [\"services/[a.yaml\"]\n"),
            (
                CFG,
                4,
                14,
                "spec.services[0]",
                "invalid glob `services/[a.yaml`",
            ),
        ),
        cfg(
            "gateway needed by the default router",
            BASE.to_string(),
            &bad("  traffic: {router: gateway-api}\n"),
            (
                CFG,
                4,
                21,
                "spec.traffic.router",
                "router gateway-api needs traffic.gateway",
            ),
        ),
        cfg(
            "catalog product",
            BASE.to_string(),
            &bad("  gpu: {catalog: {l4: {product: \"\"}}}\n"),
            (
                CFG,
                4,
                33,
                "spec.gpu.catalog.l4.product",
                "must not be empty",
            ),
        ),
        cfg(
            "catalog product required",
            BASE.to_string(),
            &bad("  gpu: {catalog: {l4: {memory: 24Gi}}}\n"),
            (
                CFG,
                4,
                23,
                "spec.gpu.catalog.l4.product",
                "missing required field",
            ),
        ),
        cfg(
            "prometheus url",
            BASE.to_string(),
            &bad("  prometheus: {url: prometheus:9090}\n"),
            (
                CFG,
                4,
                21,
                "spec.prometheus.url",
                "must start with http:// or https://",
            ),
        ),
        cfg(
            "loader image pinned",
            BASE.to_string(),
            &bad("  modelLoader: {image: loader}\n"),
            (
                CFG,
                4,
                24,
                "spec.modelLoader.image",
                "image `loader` has no tag",
            ),
        ),
        cfg(
            "config unknown field",
            BASE.to_string(),
            &bad("  defaultNamespce: ml\n"),
            (
                CFG,
                4,
                3,
                "spec.defaultNamespce",
                "unknown field; did you mean defaultNamespace?",
            ),
        ),
        cfg(
            "config kind",
            BASE.to_string(),
            "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\n",
            (
                CFG,
                2,
                7,
                "kind",
                "unknown kind `ModelService`; modelship.yaml holds a RepositoryConfig document",
            ),
        ),
        cfg(
            "config tolerations",
            BASE.to_string(),
            &bad("  gpu: {tolerations: [{operator: Always}]}\n"),
            (
                CFG,
                4,
                34,
                "spec.gpu.tolerations[0].operator",
                "operator `Always` is not one of",
            ),
        ),
    ]
}

fn check(case: &Case) -> Result<(), String> {
    let diagnostics = run(case);
    let (file, line, column, field, message) = case.expect;
    let shown: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    let [d] = diagnostics.as_slice() else {
        return Err(format!(
            "{}: expected one diagnostic, got {shown:#?}",
            case.name
        ));
    };
    let full = d.to_string();
    let ok = d.file == file
        && d.line == line
        && d.column == column
        && d.field == field
        && full.contains(message);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{}: expected {file}:{line}:{column} {field:?} containing {message:?}, got {full}",
            case.name
        ))
    }
}

#[test]
fn every_service_rule_reports_one_located_diagnostic() {
    let failures: Vec<String> = service_cases()
        .iter()
        .filter_map(|c| check(c).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_config_rule_reports_one_located_diagnostic() {
    let failures: Vec<String> = config_cases()
        .iter()
        .filter_map(|c| check(c).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_base_cases_are_valid() {
    let base = case("base", BASE.to_string(), (SVC, 0, 0, "", ""));
    assert_eq!(run(&base), Vec::new());
    let accepted = [
        edit(
            "s:1\"",
            "s@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"",
        ),
        edit("r.example.com/s:1", "r.example.com:5000/team/s:2.1"),
        with(
            "  autoscaling: {minReplicas: 0, maxReplicas: 3, metrics: [{custom: {name: q, type: external, target: 10}}]}\n",
        ),
        with("  disruption: {maxUnavailable: 25%}\n"),
        with("  gpu: {count: 16, type: a100-80gb, shared: true}\n"),
        edit(
            "version: \"1\"}",
            "version: \"1\", uri: \"pvc://models/fraud/1\"}",
        ),
        edit(
            "version: \"1\"}",
            "version: \"1\", uri: \"oci://r.example.com/m:1\"}",
        ),
        with("  rollout: {strategy: canary, steps: [100], stepInterval: 30s}\n"),
    ];
    for text in accepted {
        let accepted = case("accepted", text.clone(), (SVC, 0, 0, "", ""));
        assert_eq!(run(&accepted), Vec::new(), "{text}");
    }
}
