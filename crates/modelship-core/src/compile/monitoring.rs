//! The PodMonitor (Prometheus Operator, monitoring.coreos.com/v1) of a service, when
//! modelship.yaml sets `prometheus.podMonitor: true`. It scrapes both tracks' pods on the
//! metrics port and turns the pod labels `modelship.dev/service` and `modelship.dev/track`
//! into the series labels `service` and `track` that the default canary queries select
//! by (the operator adds `namespace` itself).
//!
//! ```text
//! prometheus.podMonitor ──▶ PodMonitor <name> { selector: instance,
//!                                               podMetricsEndpoints: [{port, /metrics,
//!                                                 relabelings: pod labels -> service, track}] }
//! ```

use super::Ctx;
use super::crd::{MatchLabels, PodMetricsEndpoint, PodMonitor, PodMonitorSpec, Relabeling};
use super::labels::{LABEL_SERVICE, LABEL_TRACK, instance_labels, object_meta};

/// The series labels the relabelling writes, by the pod label they come from.
const SERIES_LABELS: [(&str, &str); 2] = [(LABEL_SERVICE, "service"), (LABEL_TRACK, "track")];

/// PodMonitor `<name>` when modelship.yaml asks for one.
pub(crate) fn pod_monitor(ctx: &Ctx) -> Option<PodMonitor> {
    let wanted = ctx
        .config
        .spec
        .prometheus
        .as_ref()
        .is_some_and(|p| p.pod_monitor);
    if !wanted {
        return None;
    }
    let relabelings = SERIES_LABELS
        .iter()
        .map(|(pod_label, series_label)| Relabeling {
            action: Some("replace".to_string()),
            source_labels: vec![meta_label(pod_label)],
            target_label: Some((*series_label).to_string()),
        })
        .collect();
    Some(PodMonitor {
        metadata: object_meta(ctx, ctx.name.to_string()),
        spec: PodMonitorSpec {
            selector: MatchLabels {
                match_labels: instance_labels(ctx),
            },
            pod_metrics_endpoints: vec![PodMetricsEndpoint {
                port: metrics_port_name(ctx).to_string(),
                path: Some("/metrics".to_string()),
                relabelings,
            }],
        },
    })
}

/// The name of the container port that serves `/metrics`.
fn metrics_port_name(ctx: &Ctx) -> &'static str {
    let runtime = &ctx.spec.runtime;
    match runtime.metrics_port {
        _ if ctx.separate_metrics_port().is_some() => "metrics",
        Some(port) if Some(port) == runtime.grpc_port && port != ctx.http_port() => "grpc",
        _ => "http",
    }
}

/// Prometheus' discovery label of a pod label: `__meta_kubernetes_pod_label_` and the
/// label name with every character outside `[a-zA-Z0-9_]` turned into `_`.
pub fn meta_label(pod_label: &str) -> String {
    let sanitized: String = pod_label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("__meta_kubernetes_pod_label_{sanitized}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::testutil::{cpu_service, ctx_for, loaded};
    use crate::spec::{PrometheusConfig, RepositoryConfig};

    fn config(pod_monitor: bool) -> RepositoryConfig {
        let mut config = RepositoryConfig::default();
        config.spec.prometheus = Some(PrometheusConfig {
            url: "http://prometheus:9090".to_string(),
            pod_monitor,
        });
        config
    }

    #[test]
    fn only_when_modelship_yaml_asks() {
        let svc = loaded(cpu_service("chat"));
        assert!(pod_monitor(&ctx_for(&svc, &config(false))).is_none());
        assert!(pod_monitor(&ctx_for(&svc, &RepositoryConfig::default())).is_none());
        assert!(pod_monitor(&ctx_for(&svc, &config(true))).is_some());
    }

    #[test]
    fn relabels_the_pod_labels_to_service_and_track() {
        let svc = loaded(cpu_service("chat"));
        let config = config(true);
        let monitor = pod_monitor(&ctx_for(&svc, &config)).unwrap();
        let json = serde_json::to_value(&monitor).unwrap();
        assert_eq!(json["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(
            json["spec"]["selector"]["matchLabels"],
            serde_json::json!({"app.kubernetes.io/instance": "chat"})
        );
        assert_eq!(
            json["spec"]["podMetricsEndpoints"][0],
            serde_json::json!({"port": "http", "path": "/metrics", "relabelings": [
                {"action": "replace",
                 "sourceLabels": ["__meta_kubernetes_pod_label_modelship_dev_service"],
                 "targetLabel": "service"},
                {"action": "replace",
                 "sourceLabels": ["__meta_kubernetes_pod_label_modelship_dev_track"],
                 "targetLabel": "track"}]})
        );
    }

    #[test]
    fn scrapes_the_port_that_serves_metrics() {
        let config = config(true);
        let port_of = |metrics: Option<u16>, grpc: Option<u16>| {
            let mut svc = cpu_service("chat");
            svc.spec.runtime.metrics_port = metrics;
            svc.spec.runtime.grpc_port = grpc;
            let svc = loaded(svc);
            pod_monitor(&ctx_for(&svc, &config))
                .unwrap()
                .spec
                .pod_metrics_endpoints[0]
                .port
                .clone()
        };
        assert_eq!(port_of(None, None), "http");
        assert_eq!(port_of(Some(8080), None), "http");
        assert_eq!(port_of(Some(9090), None), "metrics");
        assert_eq!(port_of(Some(9000), Some(9000)), "grpc");
    }
}
