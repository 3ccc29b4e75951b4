//! Validation rules of `modelship.yaml` and of services against it, table-driven like
//! `spec_rules.rs`.

mod support;

use support::spec::*;

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
            "a protected default namespace",
            BASE.to_string(),
            &bad("  defaultNamespace: modelship\n"),
            (
                SVC,
                4,
                9,
                "metadata.name",
                "namespace `modelship` is protected",
            ),
        ),
        cfg(
            "a namespace protected by modelship.yaml",
            edit("name: svc\n", "name: svc\n  namespace: payments\n"),
            &bad("  protectedNamespaces: [payments]\n"),
            (
                SVC,
                5,
                14,
                "metadata.namespace",
                "namespace `payments` is protected",
            ),
        ),
        cfg(
            "protected namespace format",
            BASE.to_string(),
            &bad("  protectedNamespaces: [ML]\n"),
            (
                CFG,
                4,
                25,
                "spec.protectedNamespaces[0]",
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
            "canary analysis needs prometheus",
            svc("  rollout: {strategy: canary, steps: [50, 100], analysis: {successRate: 99}}\n"),
            no_catalog,
            (
                SVC,
                9,
                59,
                "spec.rollout.analysis",
                "canary analysis needs prometheus.url in modelship.yaml; set spec.prometheus.url",
            ),
        ),
        cfg(
            "analysis metric name",
            BASE.to_string(),
            &bad("  analysis: {requests: {metric: http-requests}}\n"),
            (
                CFG,
                4,
                33,
                "spec.analysis.requests.metric",
                "`http-requests` is not a valid Prometheus metric name; metric names are letters",
            ),
        ),
        cfg(
            "analysis status label",
            BASE.to_string(),
            &bad("  analysis: {requests: {statusLabel: \"a:b\"}}\n"),
            (
                CFG,
                4,
                38,
                "spec.analysis.requests.statusLabel",
                "`a:b` is not a valid Prometheus label name; label names are letters",
            ),
        ),
        cfg(
            "analysis latency metric",
            BASE.to_string(),
            &bad("  analysis: {latency: {metric: 9lives}}\n"),
            (
                CFG,
                4,
                32,
                "spec.analysis.latency.metric",
                "`9lives` is not a valid Prometheus metric name",
            ),
        ),
        cfg(
            "podMonitor is a bool",
            BASE.to_string(),
            &bad("  prometheus: {url: \"http://p:9090\", podMonitor: sometimes}\n"),
            (CFG, 4, 50, "spec.prometheus.podMonitor", ""),
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
            "preview label empty",
            BASE.to_string(),
            &bad("  previews: {label: \"\"}\n"),
            (
                CFG,
                4,
                21,
                "spec.previews.label",
                "`` is not a GitHub label name: must not be empty",
            ),
        ),
        cfg(
            "previews unknown field",
            BASE.to_string(),
            &bad("  previews: {labl: pr-preview}\n"),
            (
                CFG,
                4,
                14,
                "spec.previews.labl",
                "unknown field; did you mean label?",
            ),
        ),
        cfg(
            "approver malformed",
            BASE.to_string(),
            &bad("  github: {approvers: [octocat, \"bad login\"]}\n"),
            (
                CFG,
                4,
                33,
                "spec.github.approvers[1]",
                "approver `bad login` is not a GitHub login or org/team slug",
            ),
        ),
        cfg(
            "github unknown field",
            BASE.to_string(),
            &bad("  github: {aprovers: [octocat]}\n"),
            (
                CFG,
                4,
                12,
                "spec.github.aprovers",
                "unknown field; did you mean approvers?",
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
            "modelship's own namespace, even when protectedNamespaces leaves it out",
            edit("name: svc\n", "name: svc\n  namespace: modelship\n"),
            &bad("  protectedNamespaces: [payments]\n"),
            (
                SVC,
                5,
                14,
                "metadata.namespace",
                "namespace `modelship` is protected",
            ),
        ),
        cfg(
            "tenant name",
            BASE.to_string(),
            &bad("  tenants: [{name: Risk, paths: [\"services/**\"], namespaces: [default]}]\n"),
            (
                CFG,
                4,
                20,
                "spec.tenants[0].name",
                "invalid tenant name `Risk`",
            ),
        ),
        cfg(
            "tenant named twice",
            BASE.to_string(),
            &bad(concat!(
                "  tenants:\n",
                "    - {name: risk, paths: [\"services/**\"], namespaces: [default]}\n",
                "    - {name: risk, paths: [\"other/**\"], namespaces: [default]}\n",
            )),
            (
                CFG,
                6,
                14,
                "spec.tenants[1].name",
                "tenant risk is named twice",
            ),
        ),
        cfg(
            "tenant without paths",
            BASE.to_string(),
            &bad("  tenants: [{name: risk, paths: [], namespaces: [default]}]\n"),
            (CFG, 4, 33, "spec.tenants[0].paths", "must not be empty"),
        ),
        cfg(
            "tenant path glob",
            BASE.to_string(),
            &bad("  tenants: [{name: risk, paths: [\"services/[\"], namespaces: [default]}]\n"),
            (
                CFG,
                4,
                34,
                "spec.tenants[0].paths[0]",
                "invalid glob `services/[`",
            ),
        ),
        cfg(
            "tenant namespace name",
            BASE.to_string(),
            &bad("  tenants: [{name: risk, paths: [\"services/**\"], namespaces: [Risk]}]\n"),
            (
                CFG,
                4,
                63,
                "spec.tenants[0].namespaces[0]",
                "invalid namespace `Risk`",
            ),
        ),
        cfg(
            "a spec no tenant owns",
            BASE.to_string(),
            &bad(
                "  tenants: [{name: risk, paths: [\"services/risk/**\"], namespaces: [default]}]\n",
            ),
            (
                SVC,
                3,
                1,
                "metadata",
                "services/svc.yaml is owned by no tenant; tenants' paths: services/risk/**",
            ),
        ),
        cfg(
            "a namespace the tenant may not use",
            edit("name: svc\n", "name: svc\n  namespace: payments\n"),
            &bad("  tenants: [{name: risk, paths: [\"services/**\"], namespaces: [\"risk-*\"]}]\n"),
            (
                SVC,
                5,
                14,
                "metadata.namespace",
                "tenant risk may not use namespace `payments`; its namespaces: risk-*; choose one",
            ),
        ),
        cfg(
            "the default namespace the tenant may not use",
            BASE.to_string(),
            &bad("  tenants: [{name: risk, paths: [\"services/**\"], namespaces: [\"risk-*\"]}]\n"),
            (
                SVC,
                4,
                9,
                "metadata.name",
                "tenant risk may not use namespace `default`",
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

#[test]
fn every_rule_reports_one_located_diagnostic() {
    assert_cases(&config_cases());
}

/// A tenant's GPU budget needs the live services, so it is counted after loading
/// (`budget::enforce`): the error is located like the others.
#[test]
fn a_tenant_over_its_gpu_budget_is_an_error_at_the_service_name() {
    let config = format!(
        "{CONFIG}  tenants: [{{name: risk, paths: [\"services/**\"], namespaces: [default], maxGPUs: 4}}]\n"
    );
    let mut files = std::collections::BTreeMap::new();
    files.insert(CFG.to_string(), config.into_bytes());
    let small = with("  gpu: {count: 1}\n");
    files.insert(
        "services/a.yaml".to_string(),
        small.replace("name: svc", "name: a").into_bytes(),
    );
    let big = with("  gpu: {count: 2}\n  replicas: 3\n");
    files.insert(
        "services/b.yaml".to_string(),
        big.replace("name: svc", "name: b").into_bytes(),
    );
    let mut repo = modelship::spec::load(&files);
    assert!(repo.diagnostics.is_empty(), "{:?}", repo.diagnostics);
    modelship::budget::enforce(&mut repo, &Default::default());
    let shown: Vec<String> = repo.diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "services/b.yaml:4:9: error: metadata.name: tenant risk: 7 GPUs at maximum scale, over \
          maxGPUs 4; this service needs 6 GPUs at its peak (maxReplicas, or replicas, times \
          gpu.count, canary peak included); services that already run are counted first, then \
          the rest in path order; lower its scale or raise maxGPUs in modelship.yaml"
        ]
    );
    let names: Vec<&str> = repo.services.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["a"]);
}
