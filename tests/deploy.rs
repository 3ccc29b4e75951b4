//! The installation in `deploy/`: `kubectl kustomize` builds it, every object passes
//! strict schema validation for Kubernetes 1.33, and the security properties the README
//! promises hold (least-privilege RBAC without wildcards, non-root, read-only root
//! filesystem, probes, two replicas with leader election, webhooks routed to the leader,
//! ingress only from the ingress controller and monitoring).
//!
//! kubectl and kubernetes-validate are installed by `scripts/setup`; this test fails,
//! rather than skips, when either is missing.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod support;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn kustomize() -> String {
    let out = Command::new("kubectl")
        .args(["kustomize", "deploy"])
        .current_dir(root())
        .output()
        .expect("kubectl not found: run scripts/setup");
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/ failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn objects(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml).unwrap()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in deploy/"))
}

#[test]
fn the_kustomization_builds_and_passes_strict_validation() {
    let yaml = kustomize();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deploy.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let report = support::schema::assert_strictly_valid(&[file], "1.33.0");
    let kinds: Vec<String> = objects(&yaml)
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    for (kind, count) in [
        ("Namespace", 1),
        ("ServiceAccount", 1),
        ("ClusterRole", 1),
        ("ClusterRoleBinding", 1),
        ("Role", 1),
        ("RoleBinding", 1),
        ("Deployment", 1),
        ("Service", 2),
        ("NetworkPolicy", 1),
    ] {
        assert_eq!(
            report
                .matches(&format!("resource {}/", kind.to_lowercase()))
                .count(),
            count,
            "{kind} validated {count} times:\n{report}"
        );
        assert!(kinds.iter().any(|k| k == kind), "{kind} in deploy/");
    }
}

#[test]
fn rbac_grants_named_verbs_on_named_resources_only() {
    let objects = objects(&kustomize());
    for kind in ["ClusterRole", "Role"] {
        for rule in find(&objects, kind)["rules"].as_array().unwrap() {
            for field in ["apiGroups", "resources", "verbs"] {
                for value in rule[field].as_array().unwrap() {
                    assert_ne!(value, "*", "{kind} has a wildcard in {field}: {rule}");
                }
            }
        }
    }
    let cluster_role = find(&objects, "ClusterRole");
    let verbs_of = |resource: &str| -> Vec<String> {
        rules_on(cluster_role, resource)
            .into_iter()
            .flat_map(|r| r["verbs"].as_array().unwrap().clone())
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        verbs_of("deployments"),
        ["get", "list", "watch", "create", "patch", "delete"]
    );
    // Every kind modelship writes: read by name (ownership checks), listed and watched,
    // applied and pruned; in the group the kind table names.
    for kind in modelship::kinds::managed() {
        let rules = rules_on(cluster_role, kind.plural);
        assert_eq!(rules.len(), 1, "{}: {rules:?}", kind.plural);
        assert_eq!(
            rules[0]["apiGroups"],
            serde_json::json!([kind.group]),
            "{}",
            kind.plural
        );
        assert_eq!(
            verbs_of(kind.plural),
            ["get", "list", "watch", "create", "patch", "delete"],
            "{}",
            kind.plural
        );
    }
    assert_eq!(
        verbs_of("namespaces"),
        ["get", "list", "create", "patch", "delete"]
    );
    assert_eq!(verbs_of("events"), ["create"], "rollout transitions only");
    assert!(
        verbs_of("secrets").is_empty(),
        "modelship never reads Secrets"
    );
}

#[test]
fn the_deployment_is_locked_down_and_highly_available() {
    let objects = objects(&kustomize());
    let deploy = find(&objects, "Deployment");
    assert_eq!(deploy["spec"]["replicas"], 2);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(pod["affinity"]["podAntiAffinity"].is_object());
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["limits"]["memory"].is_string());
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "run");
    assert!(args.contains(&"--leader-elect"));
    // The arguments parse as `modelship run` arguments.
    use clap::Parser;
    let mut argv = vec!["modelship"];
    argv.extend(&args);
    modelship::cli::Cli::try_parse_from(argv).expect("deployment args parse");
    let secrets: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["valueFrom"]["secretKeyRef"]["name"].as_str())
        .collect();
    assert_eq!(
        secrets,
        ["modelship-git", "modelship-webhook", "modelship-github"]
    );
    // The Git credentials are also files the daemon reads again at every fetch.
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "git-credentials")
        .expect("a git-credentials volume");
    assert_eq!(volume["secret"]["secretName"], "modelship-git");
    assert_eq!(volume["secret"]["optional"], true);
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "git-credentials")
        .expect("git-credentials mounted");
    assert_eq!(mount["mountPath"], "/etc/modelship/git");
    assert_eq!(mount["readOnly"], true);
}

/// The rules of a (Cluster)Role that name `resource`.
fn rules_on<'a>(role: &'a Value, resource: &str) -> Vec<&'a Value> {
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == resource)
        })
        .collect()
}

fn service<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no Service {name} in deploy/"))
}

#[test]
fn webhooks_go_to_the_leader_and_scrapes_to_every_replica() {
    let objects = objects(&kustomize());
    let template = &find(&objects, "Deployment")["spec"]["template"]["metadata"]["labels"];
    let webhooks = service(&objects, "modelship-webhooks");
    let selector = webhooks["spec"]["selector"].as_object().unwrap();
    assert_eq!(
        selector.get("modelship.dev/leader"),
        Some(&Value::from("true")),
        "the webhook Service selects the leader's Pod: {selector:?}"
    );
    for (key, value) in selector {
        if key != "modelship.dev/leader" {
            assert_eq!(&template[key], value, "{key} selects modelship's own Pods");
        }
    }
    assert_eq!(selector.len(), 3, "{selector:?}");
    assert_eq!(webhooks["spec"]["ports"][0]["port"], 8080);
    assert_eq!(webhooks["spec"]["ports"][0]["targetPort"], "http");
    let all = service(&objects, "modelship");
    assert!(
        all["spec"]["selector"]
            .get("modelship.dev/leader")
            .is_none(),
        "/metrics and /status of every replica"
    );
    assert_eq!(
        all["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );

    // The leader labels its own Pod: get and patch on pods, in its namespace only.
    let role = find(&objects, "Role");
    assert_eq!(role["metadata"]["namespace"], "modelship");
    let pods = rules_on(role, "pods");
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["apiGroups"], serde_json::json!([""]));
    assert_eq!(pods[0]["verbs"], serde_json::json!(["get", "patch"]));
    assert!(
        rules_on(find(&objects, "ClusterRole"), "pods").is_empty(),
        "no access to pods cluster-wide"
    );
}

#[test]
fn only_the_ingress_controller_and_monitoring_reach_the_daemon() {
    let objects = objects(&kustomize());
    let policy = find(&objects, "NetworkPolicy");
    assert_eq!(policy["metadata"]["namespace"], "modelship");
    let spec = &policy["spec"];
    let template = &find(&objects, "Deployment")["spec"]["template"]["metadata"]["labels"];
    let selector = spec["podSelector"]["matchLabels"].as_object().unwrap();
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(&template[key], value, "{key} selects modelship's own Pods");
    }
    // Ingress only: egress (API server, Git, GitHub, Prometheus) is left open.
    assert_eq!(spec["policyTypes"], serde_json::json!(["Ingress"]));
    let rules = spec["ingress"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    let container = &find(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        rules[0]["ports"],
        serde_json::json!([{"port": container["ports"][0]["name"], "protocol": "TCP"}]),
        "the daemon's one port"
    );
    let from: Vec<&Value> = rules[0]["from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|peer| {
            assert!(
                peer.get("podSelector").is_none() && peer.get("ipBlock").is_none(),
                "{peer}"
            );
            &peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        })
        .collect();
    assert_eq!(from, ["ingress-nginx", "monitoring"]);
}
