//! The rules of `modelship.yaml` (`RepositoryConfig`).

use super::{Findings, Violation, names};
use crate::spec::node::FieldPath;
use crate::spec::tenants::Tenant;
use crate::spec::types::{RepositoryConfig, Router};

/// Checks every rule of the repository configuration.
pub fn config(config: &RepositoryConfig) -> Vec<super::Finding> {
    let mut out = Findings::default();
    let spec = FieldPath::root().key("spec");
    let c = &config.spec;
    if let Err(reason) = names::rfc1123_label(&c.default_namespace, 63) {
        out.at(
            spec.key("defaultNamespace"),
            Violation::Namespace {
                name: c.default_namespace.clone(),
                reason,
            },
        );
    }
    for (i, namespace) in c.protected_namespaces.iter().enumerate() {
        if let Err(reason) = names::rfc1123_label(namespace, 63) {
            out.at(
                spec.key("protectedNamespaces").index(i),
                Violation::Namespace {
                    name: namespace.clone(),
                    reason,
                },
            );
        }
    }
    tenants(&mut out, &spec.key("tenants"), &c.tenants);
    for (i, glob) in c.services.iter().enumerate() {
        if let Err(error) = globset::Glob::new(glob) {
            out.at(
                spec.key("services").index(i),
                Violation::Glob {
                    glob: glob.clone(),
                    reason: error.kind().to_string(),
                },
            );
        }
    }
    if c.traffic.router == Router::GatewayApi && c.traffic.gateway.is_none() {
        out.at(spec.key("traffic").key("router"), Violation::GatewayMissing);
    }
    if let Some(gateway) = &c.traffic.gateway {
        let path = spec.key("traffic").key("gateway");
        out.object_name(path.key("name"), &gateway.name);
        if let Some(namespace) = &gateway.namespace
            && let Err(reason) = names::rfc1123_label(namespace, 63)
        {
            let name = namespace.clone();
            out.at(path.key("namespace"), Violation::Namespace { name, reason });
        }
    }
    if let Some(prometheus) = &c.prometheus
        && !(prometheus.url.starts_with("http://") || prometheus.url.starts_with("https://"))
    {
        out.at(
            spec.key("prometheus").key("url"),
            Violation::PrometheusUrl(crate::meta::redact_userinfo(&prometheus.url)),
        );
    }
    let analysis = spec.key("analysis");
    let series = [
        (
            analysis.key("requests").key("metric"),
            &c.analysis.requests.metric,
            names::PromName::Metric,
        ),
        (
            analysis.key("requests").key("statusLabel"),
            &c.analysis.requests.status_label,
            names::PromName::Label,
        ),
        (
            analysis.key("latency").key("metric"),
            &c.analysis.latency.metric,
            names::PromName::Metric,
        ),
    ];
    for (path, name, kind) in series {
        if !kind.is_valid(name) {
            let name = name.clone();
            out.at(
                path,
                Violation::PromName {
                    kind: kind.as_str(),
                    name,
                },
            );
        }
    }
    let metric_names = [
        ("requestsPerSecond", &c.metric_names.requests_per_second),
        ("queueLength", &c.metric_names.queue_length),
        ("gpuUtilization", &c.metric_names.gpu_utilization),
    ];
    for (field, name) in metric_names {
        if name.trim().is_empty() {
            out.at(spec.key("metricNames").key(field), Violation::Empty);
        }
    }
    if let Some(loader) = &c.model_loader {
        out.image(spec.key("modelLoader").key("image"), &loader.image);
    }
    if let Err(reason) = names::github_label(&c.previews.label) {
        let label = c.previews.label.clone();
        out.at(
            spec.key("previews").key("label"),
            Violation::GithubLabel { label, reason },
        );
    }
    for (i, approver) in c.github.approvers.iter().enumerate() {
        if let Err(reason) = names::github_approver(approver) {
            let approver = approver.clone();
            out.at(
                spec.key("github").key("approvers").index(i),
                Violation::Approver { approver, reason },
            );
        }
    }
    let gpu = spec.key("gpu");
    super::service::tolerations(&mut out, &gpu.key("tolerations"), &c.gpu.tolerations);
    if c.gpu.shared_resource_name.trim().is_empty() {
        out.at(gpu.key("sharedResourceName"), Violation::Empty);
    }
    for (key, model) in &c.gpu.catalog {
        let at = gpu.key("catalog").key(key.clone());
        if model.product.trim().is_empty() {
            out.at(at.key("product"), Violation::Empty);
        } else if let Err(reason) = names::label_value(&model.product) {
            let value = model.product.clone();
            out.at(at.key("product"), Violation::LabelValue { value, reason });
        }
    }
    out.0
}

/// `tenants`: names unique labels, paths and namespaces given, globs that parse.
fn tenants(out: &mut Findings, path: &FieldPath, tenants: &[Tenant]) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, tenant) in tenants.iter().enumerate() {
        let at = path.index(i);
        if let Err(reason) = names::rfc1123_label(&tenant.name, 63) {
            let name = tenant.name.clone();
            out.at(at.key("name"), Violation::TenantName { name, reason });
        } else if !seen.insert(tenant.name.as_str()) {
            out.at(
                at.key("name"),
                Violation::DuplicateTenant(tenant.name.clone()),
            );
        }
        for (field, patterns) in [("paths", &tenant.paths), ("namespaces", &tenant.namespaces)] {
            if patterns.is_empty() {
                out.at(at.key(field), Violation::Empty);
            }
            for (j, pattern) in patterns.iter().enumerate() {
                let item = at.key(field).index(j);
                let is_glob = pattern.contains(['*', '?', '[', '{']);
                if field == "namespaces" && !is_glob {
                    if let Err(reason) = names::rfc1123_label(pattern, 63) {
                        let name = pattern.clone();
                        out.at(item, Violation::Namespace { name, reason });
                    }
                } else if let Err(error) = globset::Glob::new(pattern) {
                    let glob = pattern.clone();
                    let reason = error.kind().to_string();
                    out.at(item, Violation::Glob { glob, reason });
                }
            }
        }
    }
}
