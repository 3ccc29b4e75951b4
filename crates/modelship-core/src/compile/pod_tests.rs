use super::*;
use crate::compile::testutil::{
    autoscaled, cpu_service, ctx_for, gpu_config, gpu_service, loaded, quantity,
};
use crate::spec::{
    GpuTypes, ModelService, PlacementSpec, RepositoryConfig, SecuritySpec,
    Toleration as SpecToleration,
};

fn template(svc: ModelService) -> PodTemplateSpec {
    template_with(svc, &gpu_config(), Track::Stable)
}

fn template_with(svc: ModelService, config: &RepositoryConfig, track: Track) -> PodTemplateSpec {
    let loaded = loaded(svc);
    pod_template(&ctx_for(&loaded, config), track).unwrap()
}

fn pod(svc: ModelService) -> PodSpec {
    template(svc).spec.unwrap()
}

fn server(svc: ModelService) -> Container {
    pod(svc).containers.remove(0)
}

#[test]
fn probes_use_the_http_port_and_paths() {
    let mut svc = cpu_service("m");
    svc.spec.runtime.health_path = Some("/live".into());
    let cases = [
        (cpu_service("m"), "/health", "/health"),
        (svc.clone(), "/live", "/live"),
        (
            {
                svc.spec.runtime.readiness_path = Some("/ready".into());
                svc
            },
            "/live",
            "/ready",
        ),
    ];
    for (svc, live, ready) in cases {
        let c = server(svc);
        let path = |p: &Option<Probe>| {
            let get = p.as_ref().unwrap().http_get.as_ref().unwrap();
            assert_eq!(get.port, IntOrString::String("http".into()));
            get.path.clone().unwrap()
        };
        assert_eq!(path(&c.liveness_probe), live);
        assert_eq!(path(&c.startup_probe), live);
        assert_eq!(path(&c.readiness_probe), ready);
    }
}

#[test]
fn startup_probe_is_sized_from_load_timeout() {
    let cases = [
        (None, 30),
        (Some("10m"), 60),
        (Some("45s"), 5),
        (Some("5s"), 1),
        (Some("1h"), 360),
    ];
    for (timeout, threshold) in cases {
        let mut svc = cpu_service("m");
        svc.spec.model.load_timeout = timeout.map(|t| t.parse().unwrap());
        let probe = server(svc).startup_probe.unwrap();
        assert_eq!(probe.period_seconds, Some(10));
        assert_eq!(probe.failure_threshold, Some(threshold), "{timeout:?}");
    }
}

#[test]
fn containers_are_restricted() {
    let cases = [(None, true), (Some(true), true), (Some(false), false)];
    for (spec_value, read_only) in cases {
        let mut svc = cpu_service("m");
        svc.spec.security = spec_value.map(|v| SecuritySpec {
            read_only_root_filesystem: Some(v),
        });
        let pod = pod(svc);
        let sc = pod.containers[0].security_context.clone().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
        assert_eq!(sc.read_only_root_filesystem, Some(read_only));
        let psc = pod.security_context.unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let tmp = pod.containers[0].volume_mounts.clone().unwrap();
        assert!(
            tmp.iter()
                .any(|m| m.mount_path == "/tmp" && m.name == "tmp")
        );
        assert!(
            pod.volumes
                .unwrap()
                .iter()
                .any(|v| v.name == "tmp" && v.empty_dir.is_some())
        );
    }
}

#[test]
fn env_is_sorted_with_model_variables() {
    let mut svc = cpu_service("m");
    svc.spec.runtime.env.insert("ZED".into(), "z".into());
    svc.spec
        .runtime
        .env
        .insert("LOG_LEVEL".into(), "info".into());
    let names = |svc: ModelService| -> Vec<(String, String)> {
        server(svc)
            .env
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.value.unwrap_or_default()))
            .collect()
    };
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        names(svc.clone()),
        [
            pair("LOG_LEVEL", "info"),
            pair("MODEL_NAME", "m-model"),
            pair("MODEL_VERSION", "1.0.0"),
            pair("ZED", "z"),
        ]
    );
    svc.spec.model.uri = Some("pvc://models/m".into());
    assert!(names(svc).contains(&pair("MODEL_PATH", "/mnt/models")));
}

#[test]
fn reserved_env_is_refused() {
    for var in [
        "MODEL_PATH",
        "MODEL_NAME",
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
    ] {
        let mut svc = gpu_service("m");
        svc.spec.runtime.env.insert(var.into(), "0".into());
        let loaded = loaded(svc);
        let err = pod_template(&ctx_for(&loaded, &gpu_config()), Track::Stable).unwrap_err();
        assert_eq!(err, CompileError::ReservedEnv { var: var.into() });
    }
}

#[test]
fn gpu_pods_never_set_visible_devices() {
    let env = server(gpu_service("m")).env.unwrap();
    assert!(env.iter().all(|e| !e.name.ends_with("VISIBLE_DEVICES")));
}

#[test]
fn env_from_secrets_in_order() {
    let mut svc = cpu_service("m");
    svc.spec.runtime.env_from_secrets = vec!["b-keys".into(), "a-keys".into()];
    let refs: Vec<String> = server(svc)
        .env_from
        .unwrap()
        .into_iter()
        .map(|e| e.secret_ref.unwrap().name)
        .collect();
    assert_eq!(refs, ["b-keys", "a-keys"]);
}

#[test]
fn ports_list_metrics_only_when_distinct() {
    /// (port, grpcPort, metricsPort, expected container ports, scrape port)
    type Case = (
        Option<u16>,
        Option<u16>,
        Option<u16>,
        &'static [(&'static str, i32)],
        &'static str,
    );
    let cases: [Case; 5] = [
        (None, None, None, &[("http", 8080)], "8080"),
        (Some(9000), None, None, &[("http", 9000)], "9000"),
        (
            None,
            Some(8081),
            Some(9090),
            &[("http", 8080), ("grpc", 8081), ("metrics", 9090)],
            "9090",
        ),
        (None, None, Some(8080), &[("http", 8080)], "8080"),
        (
            None,
            Some(8081),
            Some(8081),
            &[("http", 8080), ("grpc", 8081)],
            "8081",
        ),
    ];
    for (port, grpc, metrics, expected, scrape_port) in cases {
        let mut svc = cpu_service("m");
        svc.spec.runtime.port = port;
        svc.spec.runtime.grpc_port = grpc;
        svc.spec.runtime.metrics_port = metrics;
        let t = template(svc);
        let got: Vec<(String, i32)> = t.spec.unwrap().containers[0]
            .ports
            .clone()
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.container_port))
            .collect();
        let want: Vec<(String, i32)> = expected.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        assert_eq!(got, want);
        let annotations = t.metadata.unwrap().annotations.unwrap();
        assert_eq!(annotations["prometheus.io/scrape"], "true");
        assert_eq!(annotations["prometheus.io/port"], scrape_port);
        assert_eq!(annotations["prometheus.io/path"], "/metrics");
        assert!(!annotations.contains_key("modelship.dev/spec-hash"));
        assert!(!annotations.contains_key("modelship.dev/source"));
    }
}

#[test]
fn resources_request_cpu_and_pin_memory() {
    let q = |s: &str| Quantity(s.to_string());
    let mut limited = cpu_service("m");
    limited.spec.resources.cpu_limit = Some(quantity("4"));
    let cases = [(cpu_service("m"), None), (limited, Some(q("4")))];
    for (svc, cpu_limit) in cases {
        let r = server(svc).resources.unwrap();
        let requests = r.requests.unwrap();
        let limits = r.limits.unwrap();
        assert_eq!(requests["cpu"], q("1"));
        assert_eq!(requests["memory"], q("2Gi"));
        assert_eq!(limits["memory"], q("2Gi"));
        assert_eq!(limits.get("cpu").cloned(), cpu_limit);
    }
}

#[test]
fn gpu_pods_get_limits_affinity_tolerations_runtime_and_shm() {
    let mut svc = gpu_service("m");
    if let Some(g) = svc.spec.gpu.as_mut() {
        g.count = 2;
        g.gpu_type = Some(GpuTypes::One("a100-80gb".into()));
    }
    svc.spec.placement = Some(PlacementSpec {
        tolerations: vec![SpecToleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("ml".into()),
            effect: Some("NoSchedule".into()),
            toleration_seconds: None,
        }],
        ..PlacementSpec::default()
    });
    let pod = pod(svc);
    let limits = pod.containers[0].resources.clone().unwrap().limits.unwrap();
    assert_eq!(limits["nvidia.com/gpu"], Quantity("2".into()));
    let tolerations: Vec<String> = pod
        .tolerations
        .unwrap()
        .into_iter()
        .map(|t| t.key.unwrap())
        .collect();
    assert_eq!(tolerations, ["nvidia.com/gpu", "dedicated"]);
    assert_eq!(pod.runtime_class_name.as_deref(), Some("nvidia"));
    assert!(pod.affinity.is_some());
    let mounts = pod.containers[0].volume_mounts.clone().unwrap();
    assert!(mounts.iter().any(|m| m.mount_path == "/dev/shm"));
}

#[test]
fn cpu_pods_get_no_gpu_placement() {
    let pod = pod(cpu_service("m"));
    assert!(pod.tolerations.is_none());
    assert!(pod.runtime_class_name.is_none());
    assert!(pod.affinity.is_none());
    let limits = pod.containers[0].resources.clone().unwrap().limits.unwrap();
    assert!(limits.keys().all(|k| !k.starts_with("nvidia.com/")));
    assert!(pod.volumes.unwrap().iter().all(|v| v.name != "dshm"));
}

#[test]
fn zone_spread_defaults_from_replicas() {
    let with = |replicas: Option<u32>, spread: Option<bool>| {
        let mut svc = cpu_service("m");
        svc.spec.replicas = replicas;
        svc.spec.placement = spread.map(|s| PlacementSpec {
            spread_across_zones: Some(s),
            ..PlacementSpec::default()
        });
        svc
    };
    let cases = [
        (with(None, None), false),
        (with(Some(2), None), true),
        (with(Some(3), Some(false)), false),
        (with(Some(1), Some(true)), true),
        (autoscaled(cpu_service("m"), 1, 5), false),
        (autoscaled(cpu_service("m"), 2, 5), true),
    ];
    for (i, (svc, expected)) in cases.into_iter().enumerate() {
        let spread = pod(svc).topology_spread_constraints;
        assert_eq!(spread.is_some(), expected, "case {i}");
        if let Some(c) = spread {
            assert_eq!(c[0].topology_key, "topology.kubernetes.io/zone");
            assert_eq!(c[0].when_unsatisfiable, "ScheduleAnyway");
            assert_eq!(c[0].max_skew, 1);
        }
    }
}

#[test]
fn placement_and_identity() {
    let mut svc = cpu_service("fraud");
    svc.spec.placement = Some(PlacementSpec {
        node_selector: [("pool".to_string(), "inference".to_string())].into(),
        priority_class_name: Some("ml-high".into()),
        ..PlacementSpec::default()
    });
    let pod = pod(svc);
    assert_eq!(pod.node_selector.unwrap()["pool"], "inference");
    assert_eq!(pod.priority_class_name.as_deref(), Some("ml-high"));
    assert_eq!(pod.service_account_name.as_deref(), Some("fraud"));
}

#[test]
fn pods_carry_their_track() {
    for track in [Track::Stable, Track::Canary] {
        let t = template_with(cpu_service("m"), &RepositoryConfig::default(), track);
        let labels = t.metadata.unwrap().labels.unwrap();
        assert_eq!(labels["modelship.dev/track"], track.as_str());
        assert_eq!(labels["app.kubernetes.io/version"], "1.0.0");
    }
}
