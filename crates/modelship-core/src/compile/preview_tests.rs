use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::*;
use crate::meta::{LABEL_MANAGED_BY, LABEL_PREVIEW};
use crate::spec;

const CONFIG: &str = "apiVersion: modelship.dev/v1alpha1\nkind: RepositoryConfig\nmetadata: {name: t}\nspec:\n  defaultNamespace: ml\n  traffic:\n    router: gateway-api\n    gateway: {name: gw, namespace: gateway-system}\n  prometheus: {url: \"http://prom:9090\"}\n  gpu:\n    catalog:\n      l4: {product: NVIDIA-L4, memory: 24Gi, hourlyCost: 0.80}\n";

fn big(name: &str) -> String {
    format!(
        "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: {name}}}\nspec:\n  model: {{name: m, version: \"1.0.0\"}}\n  runtime: {{image: \"r.example.com/s:1\", port: 9000}}\n  resources: {{cpu: \"1\", memory: 1Gi}}\n  autoscaling:\n    minReplicas: 3\n    maxReplicas: 9\n    metrics: [{{cpu: 70}}]\n  rollout: {{strategy: canary, steps: [50, 100], stepInterval: 1m, analysis: {{successRate: 99}}}}\n  traffic: {{hosts: [{name}.example.com]}}\n  disruption: {{maxUnavailable: 1}}\n"
    )
}

fn gpu(name: &str) -> String {
    format!(
        "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: {name}}}\nspec:\n  model: {{name: m, version: \"1.0.0\"}}\n  runtime: {{image: \"r.example.com/s:1\"}}\n  resources: {{cpu: \"1\", memory: 1Gi}}\n  gpu: {{count: 2, type: l4}}\n"
    )
}

fn repository(config: &str, services: &[(&str, String)]) -> Repository {
    let mut files = BTreeMap::new();
    files.insert("modelship.yaml".to_string(), config.as_bytes().to_vec());
    for (name, text) in services {
        files.insert(format!("services/{name}.yaml"), text.as_bytes().to_vec());
    }
    let repository = spec::load(&files);
    assert!(repository.is_valid(), "{:?}", repository.diagnostics);
    repository
}

fn ids(names: &[&str]) -> BTreeSet<ServiceId> {
    names
        .iter()
        .map(|n| ServiceId::new("ml", *n).unwrap())
        .collect()
}

fn kinds(service: &DesiredService) -> Vec<&str> {
    service
        .objects
        .iter()
        .filter_map(|o| o.get("kind").and_then(Value::as_str))
        .collect()
}

fn object<'a>(service: &'a DesiredService, kind: &str) -> &'a Value {
    service
        .objects
        .iter()
        .find(|o| o.get("kind").and_then(Value::as_str) == Some(kind))
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn a_preview_is_one_replica_in_its_own_namespace_without_hpa_pdb_or_canary() {
    let repository = repository(CONFIG, &[("a", big("a")), ("b", big("b"))]);
    let previews = compile_previews(&repository, &ids(&["a"]), 7, &Source::default());
    assert_eq!(previews.services.len(), 1, "only the changed service");
    let preview = &previews.services[0];
    assert_eq!(preview.source.to_string(), "ml/a");
    assert_eq!(preview.service.id.namespace(), "ml-pr-7");
    assert_eq!(
        kinds(&preview.service),
        ["ServiceAccount", "Service", "Deployment", "HTTPRoute"],
        "no HPA, no PDB, no track Services of a canary"
    );
    let deployment = object(&preview.service, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    for object in &preview.service.objects {
        assert_eq!(object["metadata"]["namespace"], "ml-pr-7");
        assert_eq!(object["metadata"]["labels"][LABEL_PREVIEW], "7");
        assert_eq!(object["metadata"]["labels"][LABEL_MANAGED_BY], "modelship");
    }
    let route = object(&preview.service, "HTTPRoute");
    assert_eq!(route["spec"]["hostnames"][0], "pr-7.a.example.com");
    assert_eq!(preview.hosts, ["pr-7.a.example.com"]);
    assert_eq!(preview.url, "http://a.ml-pr-7.svc.cluster.local:9000");
    assert_eq!(
        previews.namespaces(),
        BTreeSet::from(["ml-pr-7".to_string()])
    );
}

#[test]
fn gpu_services_are_skipped_unless_previews_allow_them() {
    let services = [("g", gpu("g")), ("a", big("a"))];
    let skipped = compile_previews(
        &repository(CONFIG, &services),
        &ids(&["g", "a"]),
        3,
        &Source::default(),
    );
    assert_eq!(skipped.services.len(), 1);
    assert_eq!(
        skipped.skipped,
        [(ServiceId::new("ml", "g").unwrap(), Skip::Gpu)]
    );
    assert!(skipped.skipped[0].1.to_string().contains("previews.gpu"));
    assert_eq!(skipped.hourly(), 0.0);

    let allowing = format!("{CONFIG}  previews: {{gpu: true}}\n");
    let allowed = compile_previews(
        &repository(&allowing, &services),
        &ids(&["g"]),
        3,
        &Source::default(),
    );
    assert!(allowed.skipped.is_empty());
    let preview = &allowed.services[0];
    assert_eq!(
        object(&preview.service, "Deployment")["spec"]["replicas"],
        1
    );
    assert!(
        (preview.hourly - 1.6).abs() < 1e-9,
        "two L4 GPUs at 0.80: {}",
        preview.hourly
    );
}

#[test]
fn a_namespace_name_that_would_be_too_long_is_skipped_with_its_name() {
    let long = "n".repeat(58);
    let config = CONFIG.replace("defaultNamespace: ml", &format!("defaultNamespace: {long}"));
    let repository = repository(&config, &[("a", big("a"))]);
    let changed = BTreeSet::from([ServiceId::new(long.clone(), "a").unwrap()]);
    let previews = compile_previews(&repository, &changed, 12345, &Source::default());
    assert!(previews.services.is_empty());
    assert_eq!(
        previews.skipped[0].1,
        Skip::NamespaceTooLong(format!("{long}-pr-12345"))
    );
}

#[test]
fn a_spec_cannot_give_itself_the_preview_label() {
    // Validation refuses the key at its line...
    let text = big("a").replace(
        "metadata: {name: a}",
        "metadata: {name: a, labels: {modelship.dev/preview: \"1\", team: x}}",
    );
    let mut files = BTreeMap::new();
    files.insert("modelship.yaml".to_string(), CONFIG.as_bytes().to_vec());
    files.insert("services/a.yaml".to_string(), text.into_bytes());
    let loaded = spec::load(&files);
    assert!(!loaded.is_valid());
    assert!(
        loaded.diagnostics.iter().any(|d| d
            .to_string()
            .contains("`modelship.dev/preview` is reserved")),
        "{:?}",
        loaded.diagnostics
    );
    // ...and the compiler never writes it from a spec, should one get past validation.
    let mut repository = repository(
        CONFIG,
        &[(
            "a",
            big("a").replace(
                "metadata: {name: a}",
                "metadata: {name: a, labels: {team: x}}",
            ),
        )],
    );
    repository.services[0]
        .service
        .metadata
        .labels
        .insert(LABEL_PREVIEW.to_string(), "1".to_string());
    let compiled = crate::compile::compile_repository(&repository, &Source::default());
    for object in &compiled.services[0].objects {
        let labels = &object.metadata().labels;
        let labels = labels.as_ref().expect("labels");
        assert!(!labels.contains_key(LABEL_PREVIEW), "{labels:?}");
        assert_eq!(labels.get("team").map(String::as_str), Some("x"));
    }
}

#[test]
fn placements_that_reach_system_nodes_are_refused_in_previews() {
    let with = |placement: &str| {
        format!(
            "apiVersion: modelship.dev/v1alpha1\nkind: ModelService\nmetadata: {{name: p}}\nspec:\n  model: {{name: m, version: \"1.0.0\"}}\n  runtime: {{image: \"r.example.com/s:1\"}}\n  resources: {{cpu: \"1\", memory: 1Gi}}\n  placement: {placement}\n"
        )
    };
    for (placement, shown) in [
        (
            "{priorityClassName: system-node-critical}",
            "`priorityClassName: system-node-critical`",
        ),
        (
            "{nodeSelector: {node-role.kubernetes.io/control-plane: \"\"}}",
            "node selector",
        ),
        (
            "{tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]}",
            "toleration of",
        ),
        ("{tolerations: [{operator: Exists}]}", "every taint"),
    ] {
        let repo = repository(CONFIG, &[("p", with(placement))]);
        let previews = compile_previews(&repo, &ids(&["p"]), 7, &Source::local());
        assert!(previews.services.is_empty(), "{placement}");
        let (_, skip) = &previews.skipped[0];
        assert!(matches!(skip, Skip::Placement(_)), "{placement}: {skip:?}");
        let text = skip.to_string();
        assert!(
            text.contains(shown) && text.contains("system nodes"),
            "{text}"
        );
    }
    let fine = repository(CONFIG, &[("p", with("{priorityClassName: ml-high}"))]);
    let previews = compile_previews(&fine, &ids(&["p"]), 7, &Source::local());
    assert_eq!(previews.services.len(), 1, "{:?}", previews.skipped);
}

#[test]
fn each_preview_namespace_is_a_box_and_its_pods_satisfy_restricted() {
    let quota = PreviewQuota {
        pods: 4,
        gpus: 2,
        ..PreviewQuota::default()
    };
    let objects = namespace_box("ml-pr-7", 7, &quota);
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(kinds, ["ResourceQuota", "LimitRange", "NetworkPolicy"]);
    let hard = &objects[0]["spec"]["hard"];
    assert_eq!(hard["pods"], "4");
    assert_eq!(hard["requests.cpu"], "8");
    assert_eq!(hard["requests.memory"], "32Gi");
    assert_eq!(hard["requests.nvidia.com/gpu"], "2");
    assert_eq!(objects[1]["spec"]["limits"][0]["max"]["memory"], "32Gi");
    let egress = &objects[2]["spec"];
    assert_eq!(egress["policyTypes"], serde_json::json!(["Egress"]));
    assert_eq!(egress["egress"][0]["ports"][0]["port"], 53);
    for object in &objects {
        assert_eq!(object["metadata"]["namespace"], "ml-pr-7");
        assert_eq!(object["metadata"]["labels"][LABEL_PREVIEW], "7");
        assert!(object["metadata"]["labels"].get(LABEL_MANAGED_BY).is_none());
    }

    // What `restricted` asks of every container, init containers included.
    let repo = repository(CONFIG, &[("a", big("a"))]);
    let previews = compile_previews(&repo, &ids(&["a"]), 7, &Source::local());
    let deployment = object(&previews.services[0].service, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let containers = pod["containers"].as_array().unwrap().iter();
    let init = pod["initContainers"].as_array().into_iter().flatten();
    for container in containers.chain(init) {
        let context = &container["securityContext"];
        assert_eq!(context["allowPrivilegeEscalation"], false, "{container}");
        assert_eq!(context["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_ne!(context["privileged"], true);
        assert!(context["capabilities"].get("add").is_none());
    }
}
