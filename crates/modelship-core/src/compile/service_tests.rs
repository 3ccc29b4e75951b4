use super::testutil::{autoscaled, cpu_service, gpu_config, gpu_service, loaded};
use super::*;
use crate::spec::{LoadedService, ModelService, NetworkSpec, Repository, RolloutSpec, TrafficSpec};

fn canary(mut svc: ModelService, router: Router) -> ModelService {
    svc.spec.rollout = Some(RolloutSpec {
        strategy: Strategy::Canary,
        steps: vec![10, 100],
        step_interval: None,
        manual_gates: Vec::new(),
        analysis: None,
    });
    svc.spec.traffic = Some(TrafficSpec {
        router: Some(router),
        hosts: Vec::new(),
    });
    svc
}

fn with_network(mut svc: ModelService) -> ModelService {
    svc.spec.network = Some(NetworkSpec::default());
    svc
}

fn with_replicas(mut svc: ModelService, n: u32) -> ModelService {
    svc.spec.replicas = Some(n);
    svc
}

fn keys(svc: ModelService) -> Vec<(Kind, String)> {
    compile_service(&loaded(svc), &gpu_config(), &Source::local())
        .unwrap()
        .objects
        .iter()
        .map(|o| (o.kind(), o.name().to_string()))
        .collect()
}

#[test]
fn each_shape_compiles_to_its_object_set() {
    use Kind::*;
    let k = |kind: Kind, name: &str| (kind, name.to_string());
    let cases = [
        (
            cpu_service("m"),
            vec![k(ServiceAccount, "m"), k(Service, "m"), k(Deployment, "m")],
        ),
        (
            autoscaled(with_network(cpu_service("m")), 2, 4),
            vec![
                k(ServiceAccount, "m"),
                k(Service, "m"),
                k(Deployment, "m"),
                k(HorizontalPodAutoscaler, "m"),
                k(PodDisruptionBudget, "m"),
                k(NetworkPolicy, "m"),
            ],
        ),
        (
            canary(with_replicas(gpu_service("m"), 2), Router::GatewayApi),
            vec![
                k(ServiceAccount, "m"),
                k(Service, "m"),
                k(Service, "m-canary"),
                k(Service, "m-stable"),
                k(Deployment, "m"),
                k(PodDisruptionBudget, "m"),
                k(HttpRoute, "m"),
            ],
        ),
        (
            canary(cpu_service("m"), Router::Istio),
            vec![
                k(ServiceAccount, "m"),
                k(Service, "m"),
                k(Service, "m-canary"),
                k(Service, "m-stable"),
                k(Deployment, "m"),
                k(DestinationRule, "m"),
                k(VirtualService, "m"),
            ],
        ),
        (
            canary(cpu_service("m"), Router::Replicas),
            vec![k(ServiceAccount, "m"), k(Service, "m"), k(Deployment, "m")],
        ),
    ];
    for (i, (svc, expected)) in cases.into_iter().enumerate() {
        assert_eq!(keys(svc), expected, "case {i}");
    }
}

#[test]
fn source_annotation_forms() {
    let cases = [
        (
            Some("github.com/a/b"),
            Some("abc123"),
            "github.com/a/b@abc123:services/x.yaml",
        ),
        (None, Some("abc123"), "abc123:services/x.yaml"),
        (Some("github.com/a/b"), None, "local:services/x.yaml"),
        (None, None, "local:services/x.yaml"),
    ];
    for (repo, commit, expected) in cases {
        let source = Source {
            repo: repo.map(str::to_string),
            commit: commit.map(str::to_string),
            ..Source::default()
        };
        assert_eq!(source.annotation("services/x.yaml"), expected);
    }
}

#[test]
fn every_object_is_in_the_resolved_namespace_with_hash_and_source() {
    let config = gpu_config();
    let mut explicit = cpu_service("a");
    explicit.metadata.namespace = Some("team".into());
    let cases = [(explicit, "team"), (cpu_service("b"), "default")];
    for (svc, namespace) in cases {
        let source = Source {
            repo: Some("r".into()),
            commit: Some("c".into()),
            instance: "team-a".parse().unwrap(),
        };
        let compiled = compile_service(&loaded(svc.clone()), &config, &source).unwrap();
        assert_eq!(compiled.id.namespace(), namespace);
        assert_eq!(compiled.spec_hash, spec_hash(&svc, namespace));
        for o in &compiled.objects {
            assert_eq!(o.namespace(), namespace);
            let annotations = o.metadata().annotations.clone().unwrap();
            assert_eq!(annotations[ANNOTATION_SPEC_HASH], compiled.spec_hash);
            assert_eq!(annotations[ANNOTATION_SOURCE], "r@c:services/test.yaml");
            let labels = o.metadata().labels.clone().unwrap();
            assert_eq!(labels["modelship.dev/instance"], "team-a", "{}", o.key());
        }
    }
}

#[test]
fn repository_collects_errors_and_sorts_services() {
    let mut broken = cpu_service("broken");
    broken.spec.model.uri = Some("ftp://nowhere/model".into());
    let mut late = cpu_service("zeta");
    late.metadata.namespace = Some("a".into());
    let services: Vec<LoadedService> = [cpu_service("beta"), broken, late, cpu_service("alpha")]
        .into_iter()
        .map(loaded)
        .collect();
    let repo = Repository {
        config: gpu_config(),
        services,
        ..Repository::default()
    };
    let set = compile_repository(&repo, &Source::local());
    let names: Vec<(&str, &str)> = set
        .services
        .iter()
        .map(|s| (s.id.namespace(), s.id.name()))
        .collect();
    assert_eq!(
        names,
        [("a", "zeta"), ("default", "alpha"), ("default", "beta")]
    );
    assert_eq!(set.errors.len(), 1);
    assert_eq!(set.errors[0].id.name(), "broken");
    assert!(matches!(
        set.errors[0].error,
        CompileError::UnknownScheme { .. }
    ));
    let objects = set.objects();
    assert_eq!(objects.first().map(|o| o.namespace()), Some("a"));
    let keys: Vec<ObjectKey> = objects.iter().map(|o| o.key()).collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| a.apply_order().cmp(&b.apply_order()));
    assert_eq!(keys, sorted);
}

#[test]
fn canary_deployment_has_explicit_replicas_even_under_an_hpa() {
    let svc = loaded(autoscaled(cpu_service("m"), 2, 8));
    let d = compile_canary_deployment(&svc, &gpu_config(), &Source::local(), 3).unwrap();
    assert_eq!(d.metadata.name.as_deref(), Some("m-canary"));
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    let labels = spec.template.metadata.unwrap().labels.unwrap();
    assert_eq!(labels[LABEL_TRACK], "canary");
}

#[test]
fn errors_name_the_problem() {
    let cases = [
        (
            CompileError::NoModelLoader {
                uri: "s3://b/m".into(),
            },
            "modelLoader.image",
        ),
        (CompileError::NoGateway, "traffic.gateway"),
        (CompileError::UnknownGpuType { key: "v100".into() }, "v100"),
        (
            CompileError::OutOfRange {
                field: "spec.replicas",
                value: 1 << 40,
            },
            "spec.replicas",
        ),
    ];
    for (error, needle) in cases {
        let message = error.to_string();
        assert!(message.contains(needle), "{message}");
    }
}
