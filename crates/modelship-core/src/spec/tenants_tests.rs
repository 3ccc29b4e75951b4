use super::*;
use crate::compile::testutil::cpu_service;

fn tenant(name: &str, paths: &[&str], namespaces: &[&str]) -> Tenant {
    Tenant {
        name: name.to_string(),
        paths: paths.iter().map(ToString::to_string).collect(),
        namespaces: namespaces.iter().map(ToString::to_string).collect(),
        max_gpus: None,
    }
}

fn config(tenants: Vec<Tenant>) -> RepositoryConfig {
    let mut config = RepositoryConfig::default();
    config.spec.default_namespace = "ml".to_string();
    config.spec.tenants = tenants;
    config
}

/// Two tenants whose paths overlap: `risk` is listed first and owns its folder; `platform`
/// owns every other service file.
fn overlapping() -> RepositoryConfig {
    config(vec![
        tenant("risk", &["services/risk/**"], &["risk-prod", "risk-*"]),
        tenant("platform", &["services/**"], &["ml", "shared"]),
    ])
}

fn owner_name(config: &RepositoryConfig, path: &str) -> Option<String> {
    match Tenancy::new(&config.spec).owner(path) {
        Owner::Implicit => Some("(implicit)".to_string()),
        Owner::Tenant(t) => Some(t.name.clone()),
        Owner::Unowned => None,
    }
}

#[test]
fn a_file_belongs_to_the_first_tenant_whose_paths_match() {
    let cases = [
        ("services/risk/fraud.yaml", Some("risk")),
        ("services/risk/deep/nested.yaml", Some("risk")),
        ("services/search.yaml", Some("platform")),
        ("services/riskier/x.yaml", Some("platform")),
        ("other/x.yaml", None),
    ];
    let config = overlapping();
    for (path, expected) in cases {
        assert_eq!(
            owner_name(&config, path).as_deref(),
            expected,
            "owner of {path}"
        );
    }
    // The other order: the broad tenant first takes everything.
    let mut reversed = overlapping();
    reversed.spec.tenants.reverse();
    assert_eq!(
        owner_name(&reversed, "services/risk/fraud.yaml").as_deref(),
        Some("platform")
    );
}

#[test]
fn path_globs_do_not_cross_folders_with_a_single_star() {
    let config = config(vec![tenant("a", &["services/a/*.yaml"], &["ml"])]);
    assert_eq!(
        owner_name(&config, "services/a/x.yaml").as_deref(),
        Some("a")
    );
    assert_eq!(owner_name(&config, "services/a/b/x.yaml"), None);
}

#[test]
fn without_tenants_one_implicit_tenant_owns_every_path_and_namespace() {
    let config = config(Vec::new());
    let tenancy = Tenancy::new(&config.spec);
    assert_eq!(tenancy.owner("anything/at/all.yaml"), Owner::Implicit);
    assert!(tenancy.may_use(Owner::Implicit, "any-namespace"));
    let boundaries = Boundaries::new(&config, DEFAULT_OWN_NAMESPACE);
    let mut svc = cpu_service("svc");
    svc.metadata.namespace = Some("anywhere".to_string());
    assert_eq!(boundaries.check("elsewhere/svc.yaml", &svc), Vec::new());
}

#[test]
fn namespaces_are_names_or_globs() {
    let config = overlapping();
    let tenancy = Tenancy::new(&config.spec);
    let risk = tenancy.owner("services/risk/a.yaml");
    let cases = [
        ("risk-prod", true),
        ("risk-staging", true),
        ("risk", false),
        ("ml", false),
    ];
    for (namespace, allowed) in cases {
        assert_eq!(tenancy.may_use(risk, namespace), allowed, "{namespace}");
    }
}

fn violation(config: &RepositoryConfig, file: &str, namespace: Option<&str>) -> Vec<Violation> {
    let mut svc = cpu_service("svc");
    svc.metadata.namespace = namespace.map(str::to_string);
    Boundaries::new(config, "modelship-system")
        .check(file, &svc)
        .into_iter()
        .map(|f| f.violation)
        .collect()
}

#[test]
fn a_spec_outside_every_tenant_is_an_error_at_its_metadata() {
    let config = overlapping();
    let mut svc = cpu_service("svc");
    svc.metadata.namespace = Some("ml".to_string());
    let findings = Boundaries::new(&config, DEFAULT_OWN_NAMESPACE).check("other/svc.yaml", &svc);
    let [finding] = findings.as_slice() else {
        panic!("one finding: {findings:?}");
    };
    assert_eq!(finding.path.to_string(), "metadata");
    assert_eq!(
        finding.violation.to_string(),
        "other/svc.yaml is owned by no tenant; tenants' paths: services/risk/**, services/**"
    );
}

#[test]
fn a_namespace_its_tenant_may_not_use_is_an_error_naming_the_tenant() {
    let config = overlapping();
    let cases: [(&str, Option<&str>, Vec<Violation>); 5] = [
        ("services/risk/a.yaml", Some("risk-prod"), vec![]),
        (
            "services/risk/a.yaml",
            Some("ml"),
            vec![Violation::TenantNamespace {
                tenant: "risk".into(),
                namespace: "ml".into(),
                allowed: vec!["risk-prod".into(), "risk-*".into()],
            }],
        ),
        // The default namespace counts as the service's namespace.
        (
            "services/risk/a.yaml",
            None,
            vec![Violation::TenantNamespace {
                tenant: "risk".into(),
                namespace: "ml".into(),
                allowed: vec!["risk-prod".into(), "risk-*".into()],
            }],
        ),
        ("services/b.yaml", None, vec![]),
        // modelship's own namespace is never a target, whatever the tenant allows.
        (
            "services/b.yaml",
            Some("modelship-system"),
            vec![Violation::ProtectedNamespace("modelship-system".into())],
        ),
    ];
    for (file, namespace, expected) in cases {
        let mut config = config.clone();
        config.spec.tenants[1]
            .namespaces
            .push("modelship-*".to_string());
        assert_eq!(
            violation(&config, file, namespace),
            expected,
            "{file} in {namespace:?}"
        );
    }
}

#[test]
fn the_namespace_error_is_at_the_namespace_or_at_the_name_for_the_default() {
    let config = overlapping();
    let boundaries = Boundaries::new(&config, DEFAULT_OWN_NAMESPACE);
    let mut svc = cpu_service("svc");
    let at = |svc: &ModelService| {
        boundaries.check("services/risk/a.yaml", svc)[0]
            .path
            .to_string()
    };
    assert_eq!(at(&svc), "metadata.name");
    svc.metadata.namespace = Some("ml".to_string());
    assert_eq!(at(&svc), "metadata.namespace");
}

#[test]
fn a_configured_protected_namespace_is_reported_once_by_validation() {
    let mut config = overlapping();
    config.spec.protected_namespaces = vec!["shared".to_string()];
    assert_eq!(
        violation(&config, "services/b.yaml", Some("shared")),
        vec![]
    );
    assert_eq!(
        violation(&config, "services/risk/b.yaml", Some("kube-system")),
        vec![]
    );
}

#[test]
fn the_branch_governs_the_settings_that_decide_what_a_change_may_do() {
    let branch = overlapping();
    let mut head = overlapping();
    head.spec.tenants[0].namespaces.push("ml".to_string());
    head.spec.prometheus = Some(crate::spec::PrometheusConfig {
        url: "http://evil.example.com".to_string(),
        pod_monitor: false,
    });
    head.spec.default_namespace = "elsewhere".to_string();
    let changed = govern(&mut head.spec, &branch.spec);
    assert_eq!(changed, ["tenants", "prometheus"]);
    assert_eq!(head.spec.tenants, branch.spec.tenants);
    assert_eq!(head.spec.prometheus, None);
    // Not a governing setting: the head's own.
    assert_eq!(head.spec.default_namespace, "elsewhere");
    let mut same = overlapping();
    assert!(govern(&mut same.spec, &branch.spec).is_empty());
}
