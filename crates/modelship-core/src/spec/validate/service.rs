//! The rules of a `ModelService`, section by section of its spec.

use super::{Findings, Violation, names};
use crate::spec::node::FieldPath;
use crate::spec::types::{
    AutoscalingSpec, CustomMetricType, GpuSpec, IntOrPercent, MetricSpec, ModelService, ModelSpec,
    NetworkSpec, PlacementSpec, RepositoryConfig, RolloutSpec, Router, RuntimeSpec, Strategy,
    Toleration,
};
use crate::spec::units::Quantity;

/// Longest service name: leaves room for suffixes such as `-canary` within 63 characters.
pub const MAX_NAME_LEN: usize = 45;

/// Env names the NVIDIA device plugin sets; a spec must not override them.
const RESERVED_ENV: [&str; 2] = ["CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"];
/// Set on the server container from `spec.model`; a second value would be ambiguous.
const MODEL_ENV: [&str; 3] = ["MODEL_NAME", "MODEL_VERSION", "MODEL_PATH"];

/// Checks every rule of one service against the repository configuration.
pub fn service(svc: &ModelService, config: &RepositoryConfig) -> Vec<super::Finding> {
    let mut out = Findings::default();
    let root = FieldPath::root();
    metadata(&mut out, svc, config);
    let spec = root.key("spec");
    let s = &svc.spec;
    model(&mut out, &spec.key("model"), &s.model, config);
    runtime(&mut out, &spec.key("runtime"), &s.runtime);
    let res = spec.key("resources");
    positive(&mut out, res.key("cpu"), &s.resources.cpu);
    positive(&mut out, res.key("memory"), &s.resources.memory);
    if let Some(limit) = &s.resources.cpu_limit
        && limit.exact() < s.resources.cpu.exact()
    {
        out.at(
            res.key("cpuLimit"),
            Violation::CpuLimitBelowRequest {
                limit: limit.to_string(),
                request: s.resources.cpu.to_string(),
            },
        );
    }
    if let Some(gpu) = &s.gpu {
        self::gpu(&mut out, &spec.key("gpu"), gpu, config);
    }
    if let Some(autoscaling) = &s.autoscaling {
        self::autoscaling(&mut out, &spec.key("autoscaling"), autoscaling);
    }
    if let Some(rollout) = &s.rollout {
        self::rollout(&mut out, &spec.key("rollout"), rollout);
        let analysed = rollout.strategy == Strategy::Canary && rollout.analysis.is_some();
        if analysed && config.spec.prometheus.is_none() {
            out.at(
                spec.key("rollout").key("analysis"),
                Violation::PrometheusMissing,
            );
        }
    }
    if let Some(traffic) = &s.traffic {
        let path = spec.key("traffic");
        if traffic.router == Some(Router::GatewayApi) && config.spec.traffic.gateway.is_none() {
            out.at(path.key("router"), Violation::GatewayMissing);
        }
        for (i, host) in traffic.hosts.iter().enumerate() {
            if let Err(reason) = names::hostname(host) {
                let host = host.clone();
                out.at(
                    path.key("hosts").index(i),
                    Violation::Hostname { host, reason },
                );
            }
        }
    }
    if let Some(placement) = &s.placement {
        self::placement(&mut out, &spec.key("placement"), placement);
    }
    if let Some(max) = s
        .disruption
        .as_ref()
        .and_then(|d| d.max_unavailable.as_ref())
    {
        let path = spec.key("disruption").key("maxUnavailable");
        if !max_unavailable_ok(max) {
            let text = match max {
                IntOrPercent::Int(n) => n.to_string(),
                IntOrPercent::Percent(p) => p.clone(),
            };
            out.at(path, Violation::MaxUnavailable(text));
        }
    }
    if let Some(network) = &s.network {
        self::network(&mut out, &spec.key("network"), network);
    }
    out.0
}

fn metadata(out: &mut Findings, svc: &ModelService, config: &RepositoryConfig) {
    let path = FieldPath::root().key("metadata");
    let name = &svc.metadata.name;
    if let Err(reason) = names::rfc1035_label(name, MAX_NAME_LEN) {
        let name = name.clone();
        out.at(path.key("name"), Violation::Name { name, reason });
    }
    if let Some(namespace) = &svc.metadata.namespace
        && let Err(reason) = names::rfc1123_label(namespace, 63)
    {
        let name = namespace.clone();
        out.at(path.key("namespace"), Violation::Namespace { name, reason });
    }
    // The namespace it targets: its own, else the repository's default (reported at the
    // name then, the line that makes the service).
    let (target, at) = match &svc.metadata.namespace {
        Some(namespace) => (namespace, path.key("namespace")),
        None => (&config.spec.default_namespace, path.key("name")),
    };
    if config.spec.is_protected(target) {
        out.at(at, Violation::ProtectedNamespace(target.clone()));
    }
    out.labels(&path.key("labels"), &svc.metadata.labels, true);
    out.labels(&path.key("annotations"), &svc.metadata.annotations, false);
    for (field, keys) in [
        ("labels", svc.metadata.labels.keys()),
        ("annotations", svc.metadata.annotations.keys()),
    ] {
        for key in keys.filter(|k| names::reserved_key(k)) {
            let key_path = path.key(field).key(key.clone());
            out.at_key(key_path, Violation::ReservedKey { key: key.clone() });
        }
    }
}

fn model(out: &mut Findings, path: &FieldPath, model: &ModelSpec, config: &RepositoryConfig) {
    if model.name.trim().is_empty() {
        out.at(path.key("name"), Violation::Empty);
    }
    if model.version.is_empty() {
        out.at(path.key("version"), Violation::Empty);
    } else if let Err(reason) = names::label_value(&model.version) {
        let value = model.version.clone();
        out.at(path.key("version"), Violation::LabelValue { value, reason });
    }
    if let Some(uri) = &model.uri {
        let at = path.key("uri");
        match names::model_uri(uri) {
            Ok(scheme) => {
                if names::LOADER_SCHEMES.contains(&scheme) && config.spec.model_loader.is_none() {
                    out.at(at, Violation::LoaderImageMissing(scheme.to_string()));
                }
            }
            Err(names::UriProblem::NoScheme) => out.at(at, Violation::UriNoScheme(uri.clone())),
            Err(names::UriProblem::UnknownScheme(s)) => out.at(at, Violation::UriScheme(s)),
            Err(names::UriProblem::Malformed(reason)) => {
                let uri = uri.clone();
                out.at(at, Violation::UriMalformed { uri, reason });
            }
        }
    }
    if let Some(size) = &model.size {
        positive(out, path.key("size"), size);
    }
    if let Some(timeout) = &model.load_timeout
        && timeout.as_secs() < 10
    {
        let value = timeout.to_string();
        out.at(
            path.key("loadTimeout"),
            Violation::DurationTooShort { value, min: "10s" },
        );
    }
    if let Some(secret) = &model.credentials_secret {
        out.object_name(path.key("credentialsSecret"), secret);
    }
}

fn runtime(out: &mut Findings, path: &FieldPath, rt: &RuntimeSpec) {
    out.image(path.key("image"), &rt.image);
    for name in rt.env.keys() {
        let at = path.key("env").key(name.clone());
        if let Err(reason) = names::env_name(name) {
            let name = name.clone();
            out.at_key(at, Violation::EnvName { name, reason });
        } else if RESERVED_ENV.contains(&name.as_str()) {
            out.at_key(at, Violation::EnvReserved(name.clone()));
        } else if MODEL_ENV.contains(&name.as_str()) {
            out.at_key(at, Violation::EnvFromModel(name.clone()));
        }
    }
    for (i, secret) in rt.env_from_secrets.iter().enumerate() {
        out.object_name(path.key("envFromSecrets").index(i), secret);
    }
    let http = rt.port.unwrap_or(8080);
    let ports = [
        ("port", rt.port, None),
        ("grpcPort", rt.grpc_port, Some((http, "port"))),
        // metricsPort may equal the HTTP port (its default), not the gRPC port.
        (
            "metricsPort",
            rt.metrics_port,
            rt.grpc_port.map(|g| (g, "grpcPort")),
        ),
    ];
    for (field, port, taken) in ports {
        match (port, taken) {
            (Some(0), _) => out.at(path.key(field), Violation::PortZero),
            (Some(port), Some((used, other))) if port == used => {
                out.at(path.key(field), Violation::PortClash { port, other });
            }
            _ => {}
        }
    }
    for field in ["healthPath", "readinessPath"] {
        let value = match field {
            "healthPath" => &rt.health_path,
            _ => &rt.readiness_path,
        };
        if let Some(p) = value
            && !p.starts_with('/')
        {
            out.at(path.key(field), Violation::HttpPath(p.clone()));
        }
    }
}

fn gpu(out: &mut Findings, path: &FieldPath, gpu: &GpuSpec, config: &RepositoryConfig) {
    if !(1..=16).contains(&gpu.count) {
        out.at(path.key("count"), Violation::GpuCount(gpu.count));
    }
    if let Some(types) = &gpu.gpu_type {
        if types.keys().is_empty() {
            out.at(path.key("type"), Violation::Empty);
        }
        let catalog: Vec<String> = config.spec.gpu.catalog.keys().cloned().collect();
        let many = matches!(types, crate::spec::types::GpuTypes::Any(_));
        for (i, key) in types.keys().iter().enumerate() {
            if !config.spec.gpu.catalog.contains_key(key) {
                let at = if many {
                    path.key("type").index(i)
                } else {
                    path.key("type")
                };
                let (key, catalog) = (key.clone(), catalog.clone());
                out.at(at, Violation::UnknownGpuType { key, catalog });
            }
        }
    }
    if gpu.partition.is_some() && gpu.shared {
        out.at(path.key("partition"), Violation::PartitionAndShared);
    }
    if let Some(shm) = &gpu.shm {
        positive(out, path.key("shm"), shm);
    }
}

fn autoscaling(out: &mut Findings, path: &FieldPath, a: &AutoscalingSpec) {
    let min = a.min_replicas.unwrap_or(1);
    if a.max_replicas == 0 {
        out.at(path.key("maxReplicas"), Violation::MaxReplicasZero);
    } else if a.max_replicas < min {
        out.at(
            path.key("maxReplicas"),
            Violation::MaxBelowMin {
                max: a.max_replicas,
                min,
            },
        );
    }
    let external = a
        .metrics
        .iter()
        .any(|m| matches!(m, MetricSpec::Custom(c) if c.metric_type == CustomMetricType::External));
    if min == 0 && !external {
        out.at(path.key("minReplicas"), Violation::ScaleToZero);
    }
    if a.metrics.is_empty() {
        out.at(path.key("metrics"), Violation::NoMetrics);
    }
    for (i, metric) in a.metrics.iter().enumerate() {
        metric_rules(out, &path.key("metrics").index(i), metric);
    }
    for field in ["scaleDownStabilization", "scaleUpStabilization"] {
        let value = match field {
            "scaleDownStabilization" => &a.scale_down_stabilization,
            _ => &a.scale_up_stabilization,
        };
        if let Some(d) = value
            && d.as_secs() > 3600
        {
            let value = d.to_string();
            out.at(
                path.key(field),
                Violation::DurationTooLong { value, max: "1h" },
            );
        }
    }
}

fn metric_rules(out: &mut Findings, path: &FieldPath, metric: &MetricSpec) {
    let percent = |out: &mut Findings, key: &str, value: u32, max: Option<u32>| {
        let too_big = max.is_some_and(|max| value > max);
        if value == 0 || too_big {
            let range = if max.is_some() { "1..100" } else { "> 0" };
            let value = value.to_string();
            out.at(path.key(key), Violation::Percent { value, range });
        }
    };
    match metric {
        MetricSpec::Cpu(v) => percent(out, "cpu", *v, None),
        MetricSpec::Memory(v) => percent(out, "memory", *v, None),
        MetricSpec::GpuUtilization(v) => percent(out, "gpuUtilization", *v, Some(100)),
        MetricSpec::RequestsPerSecond(q) => positive(out, path.key("requestsPerSecond"), q),
        MetricSpec::QueueLength(q) => positive(out, path.key("queueLength"), q),
        MetricSpec::Custom(custom) => {
            let at = path.key("custom");
            if custom.name.trim().is_empty() {
                out.at(at.key("name"), Violation::Empty);
            }
            positive(out, at.key("target"), &custom.target);
            if !custom.selector.is_empty() && custom.metric_type != CustomMetricType::External {
                out.at(at.key("selector"), Violation::SelectorNeedsExternal);
            }
            out.labels(&at.key("selector"), &custom.selector, true);
        }
    }
}

fn rollout(out: &mut Findings, path: &FieldPath, r: &RolloutSpec) {
    if r.strategy != Strategy::Canary {
        let present = [
            ("steps", !r.steps.is_empty()),
            ("stepInterval", r.step_interval.is_some()),
            ("analysis", r.analysis.is_some()),
            ("manualGates", !r.manual_gates.is_empty()),
        ];
        for (field, set) in present {
            if set {
                out.at(path.key(field), Violation::CanaryOnly(field));
            }
        }
        return;
    }
    let steps = path.key("steps");
    match r.steps.last() {
        None => out.at(steps.clone(), Violation::StepsMissing),
        Some(&last) if last != 100 && (1..=100).contains(&last) => out.at(
            steps.index(r.steps.len() - 1),
            Violation::StepsEndAt100(last),
        ),
        Some(_) => {}
    }
    for (i, &step) in r.steps.iter().enumerate() {
        if !(1..=100).contains(&step) {
            out.at(steps.index(i), Violation::StepOutOfRange(step));
        } else if let Some(&previous) = i.checked_sub(1).and_then(|p| r.steps.get(p))
            && step <= previous
        {
            out.at(
                steps.index(i),
                Violation::StepNotIncreasing { step, previous },
            );
        }
    }
    if let Some(interval) = &r.step_interval
        && interval.as_secs() < 30
    {
        let value = interval.to_string();
        out.at(
            path.key("stepInterval"),
            Violation::DurationTooShort { value, min: "30s" },
        );
    }
    for (i, &gate) in r.manual_gates.iter().enumerate() {
        if !r.steps.contains(&gate) {
            let steps = r.steps.clone();
            out.at(
                path.key("manualGates").index(i),
                Violation::GateNotAStep { gate, steps },
            );
        }
    }
    if let Some(rate) = r.analysis.as_ref().and_then(|a| a.success_rate)
        && !(0.0..=100.0).contains(&rate)
    {
        out.at(
            path.key("analysis").key("successRate"),
            Violation::Percent {
                value: rate.to_string(),
                range: "0..100",
            },
        );
    }
}

fn placement(out: &mut Findings, path: &FieldPath, p: &PlacementSpec) {
    out.labels(&path.key("nodeSelector"), &p.node_selector, true);
    tolerations(out, &path.key("tolerations"), &p.tolerations);
    if let Some(class) = &p.priority_class_name {
        out.object_name(path.key("priorityClassName"), class);
    }
}

/// Checks operators and effects of tolerations (shared with the repository config).
pub(super) fn tolerations(out: &mut Findings, path: &FieldPath, tolerations: &[Toleration]) {
    const OPERATORS: [&str; 2] = ["Exists", "Equal"];
    const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
    for (i, t) in tolerations.iter().enumerate() {
        if let Some(op) = &t.operator
            && !OPERATORS.contains(&op.as_str())
        {
            out.at(
                path.index(i).key("operator"),
                Violation::Toleration {
                    field: "operator",
                    value: op.clone(),
                    allowed: "Exists, Equal",
                },
            );
        }
        if let Some(effect) = &t.effect
            && !EFFECTS.contains(&effect.as_str())
        {
            out.at(
                path.index(i).key("effect"),
                Violation::Toleration {
                    field: "effect",
                    value: effect.clone(),
                    allowed: "NoSchedule, PreferNoSchedule, NoExecute",
                },
            );
        }
    }
}

fn network(out: &mut Findings, path: &FieldPath, n: &NetworkSpec) {
    for (i, peer) in n.allow_from.iter().enumerate() {
        let at = path.key("allowFrom").index(i);
        if peer.namespace.is_none() && peer.pod_labels.is_none() {
            out.at(at.clone(), Violation::EmptyPeer);
        }
        if let Some(namespace) = &peer.namespace
            && let Err(reason) = names::rfc1123_label(namespace, 63)
        {
            let name = namespace.clone();
            out.at(at.key("namespace"), Violation::Namespace { name, reason });
        }
        if let Some(labels) = &peer.pod_labels {
            out.labels(&at.key("podLabels"), labels, true);
        }
    }
}

fn max_unavailable_ok(value: &IntOrPercent) -> bool {
    match value {
        IntOrPercent::Int(n) => *n >= 0,
        IntOrPercent::Percent(text) => text
            .strip_suffix('%')
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n <= 100),
    }
}

fn positive(out: &mut Findings, path: FieldPath, quantity: &Quantity) {
    if quantity.exact().signum() <= 0 {
        out.at(path, Violation::NotPositive(quantity.to_string()));
    }
}
