use super::*;
use crate::compile::testutil::{autoscaled, gpu_config, gpu_service};
use crate::spec::{ModelService, RolloutSpec, Strategy, Tenant};

/// A GPU service of `count` GPUs per pod and `replicas` replicas.
fn gpus(name: &str, count: u32, replicas: u32) -> ModelService {
    let mut svc = gpu_service(name);
    svc.spec.replicas = Some(replicas);
    if let Some(gpu) = svc.spec.gpu.as_mut() {
        gpu.count = count;
    }
    svc
}

fn canary(mut svc: ModelService) -> ModelService {
    svc.spec.rollout = Some(RolloutSpec {
        strategy: Strategy::Canary,
        steps: vec![25, 50, 100],
        step_interval: None,
        manual_gates: Vec::new(),
        analysis: None,
    });
    svc
}

fn config(max_gpus: Option<u32>) -> RepositoryConfig {
    let mut config = gpu_config();
    config.spec.tenants = vec![
        Tenant {
            name: "risk".to_string(),
            paths: vec!["services/risk/**".to_string()],
            namespaces: vec!["*".to_string()],
            max_gpus,
        },
        Tenant {
            name: "rest".to_string(),
            paths: vec!["services/**".to_string()],
            namespaces: vec!["*".to_string()],
            max_gpus: None,
        },
    ];
    config
}

/// A repository of `services`, each written in its file.
fn repository(config: RepositoryConfig, services: Vec<(&str, ModelService)>) -> Repository {
    let services = services
        .into_iter()
        .map(|(file, svc)| LoadedService::new(svc, file, 1, &config).expect("valid names"))
        .collect();
    Repository {
        config,
        services,
        ..Repository::default()
    }
}

fn blocked(repo: &Repository, live: &[&str]) -> Vec<(String, String)> {
    let live: BTreeSet<ServiceId> = live
        .iter()
        .map(|name| ServiceId::new("default", *name).expect("valid"))
        .collect();
    over_budget(repo, &live)
        .into_iter()
        .map(|(id, d)| (id.name().to_string(), d.message))
        .collect()
}

#[test]
fn a_service_peaks_at_maximum_scale_times_gpus_per_pod() {
    let config = gpu_config();
    let cases: [(&str, ModelService, u64); 6] = [
        ("cpu only", crate::compile::testutil::cpu_service("c"), 0),
        ("replicas", gpus("a", 2, 3), 6),
        ("one replica by default", gpu_service("b"), 1),
        (
            "autoscaled: maxReplicas",
            autoscaled(gpus("d", 2, 1), 1, 5),
            10,
        ),
        // Istio-free default router (replicas): at 100% the canary holds every replica,
        // and promotion rolls the stable with a 25% surge meanwhile: 4 + 1 + 4 pods.
        ("canary at its peak", canary(gpus("e", 1, 4)), 9),
        (
            "autoscaled canary at maxReplicas",
            canary(autoscaled(gpus("f", 2, 1), 1, 4)),
            18,
        ),
    ];
    for (name, svc, expected) in cases {
        assert_eq!(peak_gpus(&svc.spec, &config), expected, "{name}");
    }
}

#[test]
fn a_shared_or_partitioned_gpu_counts_as_gpu_count() {
    let mut shared = gpus("s", 2, 2);
    if let Some(gpu) = shared.spec.gpu.as_mut() {
        gpu.shared = true;
    }
    assert_eq!(peak_gpus(&shared.spec, &gpu_config()), 4);
}

#[test]
fn services_over_the_budget_are_blocked_in_path_order() {
    let repo = repository(
        config(Some(8)),
        vec![
            ("services/risk/a.yaml", gpus("a", 2, 2)),
            ("services/risk/b.yaml", gpus("b", 4, 2)),
            ("services/risk/c.yaml", gpus("c", 4, 1)),
            ("services/other.yaml", gpus("other", 8, 8)),
        ],
    );
    assert_eq!(
        blocked(&repo, &[]),
        [(
            "b".to_string(),
            "tenant risk: 12 GPUs at maximum scale, over maxGPUs 8".to_string()
        )]
    );
}

#[test]
fn services_that_run_are_counted_first() {
    let repo = repository(
        config(Some(8)),
        vec![
            ("services/risk/a-new.yaml", gpus("new", 4, 2)),
            ("services/risk/b-running.yaml", gpus("running", 2, 3)),
        ],
    );
    // Path order would keep `new` and block `running`; the running one stays.
    assert_eq!(
        blocked(&repo, &["running"]),
        [(
            "new".to_string(),
            "tenant risk: 14 GPUs at maximum scale, over maxGPUs 8".to_string()
        )]
    );
    assert_eq!(blocked(&repo, &[])[0].0, "running");
}

#[test]
fn a_canary_peak_counts_against_the_budget() {
    let services = |svc| vec![("services/risk/a.yaml", svc)];
    assert!(blocked(&repository(config(Some(8)), services(gpus("a", 2, 4))), &[]).is_empty());
    assert_eq!(
        blocked(
            &repository(config(Some(8)), services(canary(gpus("a", 2, 4)))),
            &[]
        ),
        [(
            "a".to_string(),
            "tenant risk: 18 GPUs at maximum scale, over maxGPUs 8".to_string()
        )]
    );
}

#[test]
fn without_max_gpus_or_tenants_nothing_is_blocked() {
    let big = || vec![("services/risk/a.yaml", gpus("a", 8, 100))];
    assert!(blocked(&repository(config(None), big()), &[]).is_empty());
    assert!(blocked(&repository(gpu_config(), big()), &[]).is_empty());
}

#[test]
fn enforcing_moves_the_blocked_services_to_invalid_and_again_changes_nothing() {
    let mut repo = repository(
        config(Some(4)),
        vec![
            ("services/risk/a.yaml", gpus("a", 4, 1)),
            ("services/risk/b.yaml", gpus("b", 1, 1)),
        ],
    );
    let over = enforce(&mut repo, &BTreeSet::new());
    assert_eq!(over.len(), 1);
    let names: Vec<&str> = repo.services.iter().map(LoadedService::name).collect();
    assert_eq!(names, ["a"]);
    assert_eq!(repo.invalid, [ServiceId::new("default", "b").unwrap()]);
    let diagnostic = &repo.diagnostics[0];
    assert_eq!(
        (diagnostic.file.as_str(), diagnostic.field.as_str()),
        ("services/risk/b.yaml", "metadata.name")
    );
    assert!(diagnostic.hint.as_deref().unwrap().contains("needs 1 GPUs"));
    let before = repo.clone();
    assert!(enforce(&mut repo, &BTreeSet::new()).is_empty());
    assert_eq!(repo, before);
}
