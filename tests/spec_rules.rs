//! Validation rules of a service's document shape, metadata, model, runtime and
//! resources, table-driven: each case is a small repository with one mistake and the
//! single diagnostic it must produce (file, line, column, field, message).

mod support;

use support::spec::*;

fn cases() -> Vec<Case> {
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
            "a system namespace",
            edit("name: svc\n", "name: svc\n  namespace: kube-system\n"),
            (
                SVC,
                5,
                14,
                "metadata.namespace",
                "namespace `kube-system` is protected",
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
            "reserved label key",
            edit(
                "name: svc\n",
                "name: svc\n  labels: {app.kubernetes.io/managed-by: helm}\n",
            ),
            (
                SVC,
                5,
                12,
                "metadata.labels[\"app.kubernetes.io/managed-by\"]",
                "`app.kubernetes.io/managed-by` is reserved",
            ),
        ),
        case(
            "reserved annotation key",
            edit(
                "name: svc\n",
                "name: svc\n  annotations: {modelship.dev/rollout-command: approve}\n",
            ),
            (
                SVC,
                5,
                17,
                "metadata.annotations[\"modelship.dev/rollout-command\"]",
                "`modelship.dev/rollout-command` is reserved",
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
            "env set from the model",
            edit("s:1\"}", "s:1\", env: {MODEL_PATH: /data}}"),
            (
                SVC,
                7,
                47,
                "spec.runtime.env.MODEL_PATH",
                "set by modelship from spec.model",
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
    ]
}

#[test]
fn every_rule_reports_one_located_diagnostic() {
    assert_cases(&cases());
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
