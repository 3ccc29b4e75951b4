//! The objects that guard a service: its ServiceAccount (no API token), its
//! PodDisruptionBudget and its NetworkPolicy.
//!
//! ```text
//! always                          ──▶ ServiceAccount <name> { automountServiceAccountToken: false }
//! replicas / minReplicas >= 2     ──▶ PodDisruptionBudget <name> { maxUnavailable (default 1) }
//! network set                     ──▶ NetworkPolicy <name> { ingress to http/grpc from allowFrom }
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels::{instance_labels, object_meta, selector, track_labels};
use super::{Ctx, Track};
use crate::spec::{IntOrPercent, NetworkPeer};

/// The label the API server sets on every namespace to its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// ServiceAccount `<name>`, without an automatically mounted API token.
pub(crate) fn service_account(ctx: &Ctx) -> ServiceAccount {
    ServiceAccount {
        metadata: object_meta(ctx, ctx.name.to_string()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// PDB `<name>` over the stable pods, when replicas (or minReplicas) >= 2.
pub(crate) fn pod_disruption_budget(ctx: &Ctx) -> Option<PodDisruptionBudget> {
    if ctx.min_replicas() < 2 {
        return None;
    }
    let max_unavailable = match ctx
        .spec
        .disruption
        .as_ref()
        .and_then(|d| d.max_unavailable.as_ref())
    {
        None => IntOrString::Int(1),
        Some(IntOrPercent::Int(n)) => IntOrString::Int(*n),
        Some(IntOrPercent::Percent(p)) => IntOrString::String(p.clone()),
    };
    Some(PodDisruptionBudget {
        metadata: object_meta(ctx, ctx.name.to_string()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(max_unavailable),
            selector: Some(selector(track_labels(ctx, Track::Stable))),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_string()),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}

/// NetworkPolicy `<name>`, when `network` is set: http and grpc only from `allowFrom`, a
/// separate metrics port from any namespace of the cluster.
pub(crate) fn network_policy(ctx: &Ctx) -> Option<NetworkPolicy> {
    let network = ctx.spec.network.as_ref()?;
    let mut ingress = Vec::new();
    if !network.allow_from.is_empty() {
        let mut ports = vec![tcp_port(ctx.http_port())];
        if let Some(grpc) = ctx.spec.runtime.grpc_port {
            ports.push(tcp_port(grpc));
        }
        ingress.push(NetworkPolicyIngressRule {
            from: Some(network.allow_from.iter().map(peer).collect()),
            ports: Some(ports),
        });
    }
    if let Some(metrics) = ctx.separate_metrics_port() {
        ingress.push(NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector::default()),
                ..NetworkPolicyPeer::default()
            }]),
            ports: Some(vec![tcp_port(metrics)]),
        });
    }
    Some(NetworkPolicy {
        metadata: object_meta(ctx, ctx.name.to_string()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(instance_labels(ctx))),
            policy_types: Some(vec!["Ingress".to_string()]),
            // No rule at all (rather than an empty list) denies all ingress.
            ingress: (!ingress.is_empty()).then_some(ingress),
            egress: None,
        }),
    })
}

/// One allowed source: a namespace (by its name label), pods by labels, or both together.
fn peer(p: &NetworkPeer) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: p.namespace.as_ref().map(|ns| {
            selector(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_string(),
                ns.clone(),
            )]))
        }),
        pod_selector: p.pod_labels.clone().map(selector),
        ip_block: None,
    }
}

fn tcp_port(port: u16) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(port))),
        protocol: Some("TCP".to_string()),
        end_port: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::testutil::{autoscaled, cpu_service, ctx_for, loaded};
    use crate::spec::{DisruptionSpec, ModelService, NetworkSpec, RepositoryConfig};

    fn pdb_of(svc: ModelService) -> Option<PodDisruptionBudget> {
        let loaded = loaded(svc);
        pod_disruption_budget(&ctx_for(&loaded, &RepositoryConfig::default()))
    }

    fn with_replicas(n: u32) -> ModelService {
        let mut svc = cpu_service("m");
        svc.spec.replicas = Some(n);
        svc
    }

    fn with_disruption(mut svc: ModelService, max: IntOrPercent) -> ModelService {
        svc.spec.disruption = Some(DisruptionSpec {
            max_unavailable: Some(max),
        });
        svc
    }

    #[test]
    fn pdb_rules() {
        let cases = [
            (cpu_service("m"), None),
            (with_replicas(1), None),
            (with_replicas(2), Some(IntOrString::Int(1))),
            (autoscaled(cpu_service("m"), 1, 5), None),
            (
                autoscaled(cpu_service("m"), 3, 5),
                Some(IntOrString::Int(1)),
            ),
            (
                with_disruption(with_replicas(4), IntOrPercent::Int(2)),
                Some(IntOrString::Int(2)),
            ),
            (
                with_disruption(with_replicas(4), IntOrPercent::Percent("25%".into())),
                Some(IntOrString::String("25%".into())),
            ),
            (
                with_disruption(with_replicas(1), IntOrPercent::Int(1)),
                None,
            ),
        ];
        for (i, (svc, expected)) in cases.into_iter().enumerate() {
            let got = pdb_of(svc).map(|p| p.spec.unwrap().max_unavailable.unwrap());
            assert_eq!(got, expected, "case {i}");
        }
    }

    #[test]
    fn pdb_selects_the_stable_track() {
        let pdb = pdb_of(with_replicas(2)).unwrap();
        let labels = pdb.spec.unwrap().selector.unwrap().match_labels.unwrap();
        assert_eq!(labels["modelship.dev/track"], "stable");
        assert_eq!(labels["app.kubernetes.io/instance"], "m");
    }

    #[test]
    fn service_account_mounts_no_token() {
        let loaded = loaded(cpu_service("fraud"));
        let sa = service_account(&ctx_for(&loaded, &RepositoryConfig::default()));
        assert_eq!(sa.automount_service_account_token, Some(false));
        assert_eq!(sa.metadata.name.as_deref(), Some("fraud"));
    }

    fn policy_of(
        allow_from: Vec<NetworkPeer>,
        grpc: Option<u16>,
        metrics: Option<u16>,
    ) -> NetworkPolicySpec {
        let mut svc = cpu_service("m");
        svc.spec.network = Some(NetworkSpec { allow_from });
        svc.spec.runtime.grpc_port = grpc;
        svc.spec.runtime.metrics_port = metrics;
        let loaded = loaded(svc);
        network_policy(&ctx_for(&loaded, &RepositoryConfig::default()))
            .unwrap()
            .spec
            .unwrap()
    }

    fn ports(rule: &NetworkPolicyIngressRule) -> Vec<IntOrString> {
        rule.ports
            .iter()
            .flatten()
            .filter_map(|p| p.port.clone())
            .collect()
    }

    #[test]
    fn network_policy_opens_serving_ports_to_peers_only() {
        let peers = vec![
            NetworkPeer {
                namespace: Some("apps".into()),
                pod_labels: None,
            },
            NetworkPeer {
                namespace: None,
                pod_labels: Some(BTreeMap::from([("app".into(), "gateway".into())])),
            },
            NetworkPeer {
                namespace: Some("edge".into()),
                pod_labels: Some(BTreeMap::from([("role".into(), "proxy".into())])),
            },
        ];
        let spec = policy_of(peers, Some(8081), Some(9090));
        assert_eq!(spec.policy_types, Some(vec!["Ingress".to_string()]));
        let ingress = spec.ingress.unwrap();
        assert_eq!(ingress.len(), 2);
        assert_eq!(
            ports(&ingress[0]),
            [IntOrString::Int(8080), IntOrString::Int(8081)]
        );
        let from = ingress[0].from.clone().unwrap();
        let ns = |p: &NetworkPolicyPeer| {
            p.namespace_selector
                .as_ref()
                .and_then(|s| s.match_labels.as_ref())
                .map(|l| l["kubernetes.io/metadata.name"].clone())
        };
        let pods = |p: &NetworkPolicyPeer| {
            p.pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.as_ref())
                .map(|l| l.values().cloned().collect::<Vec<_>>())
        };
        assert_eq!((ns(&from[0]), pods(&from[0])), (Some("apps".into()), None));
        assert_eq!(
            (ns(&from[1]), pods(&from[1])),
            (None, Some(vec!["gateway".into()]))
        );
        assert_eq!(
            (ns(&from[2]), pods(&from[2])),
            (Some("edge".into()), Some(vec!["proxy".into()]))
        );
        assert_eq!(ports(&ingress[1]), [IntOrString::Int(9090)]);
        let metrics_from = ingress[1].from.clone().unwrap();
        assert_eq!(
            metrics_from[0].namespace_selector,
            Some(LabelSelector::default())
        );
    }

    #[test]
    fn empty_allow_from_denies_serving_ports() {
        let spec = policy_of(vec![], None, None);
        assert_eq!(spec.ingress, None);
        assert_eq!(spec.policy_types, Some(vec!["Ingress".to_string()]));
        let spec = policy_of(vec![], None, Some(8080));
        assert_eq!(spec.ingress, None, "metrics on the http port is not opened");
    }

    #[test]
    fn no_network_no_policy() {
        let loaded = loaded(cpu_service("m"));
        assert!(network_policy(&ctx_for(&loaded, &RepositoryConfig::default())).is_none());
    }
}
