//! How traffic reaches the model: the Services of the service, and the route objects of
//! the configured router at rest (stable 100, canary 0). The rollout engine later owns the
//! weights.
//!
//! ```text
//! always                              ──▶ Service <name> (both tracks)
//! canary + gateway-api|istio          ──▶ Services <name>-stable, <name>-canary
//! router gateway-api                  ──▶ HTTPRoute <name> ─▶ <name>-stable 100 / <name>-canary 0
//!                                                           (rolling: <name>)
//! router istio                        ──▶ VirtualService <name> ─▶ subsets stable 100 / canary 0
//!                                         DestinationRule <name> { subsets by track label }
//! router replicas                     ──▶ nothing: traffic follows the replica counts
//! ```

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::crd::{
    DestinationRule, DestinationRuleSpec, HttpBackendRef, HttpPathMatch, HttpRoute, HttpRouteMatch,
    HttpRouteRule, HttpRouteSpec, IstioDestination, IstioHttpMatch, IstioHttpRoute,
    IstioPortSelector, IstioRouteDestination, IstioSubset, ParentRef, VirtualService,
    VirtualServiceSpec,
};
use super::labels::{LABEL_TRACK, instance_labels, object_meta, track_labels, track_object_meta};
use super::{CompileError, Ctx, Object, Track};
use crate::spec::Router;

/// Weights at rest: all traffic on stable.
const STABLE_WEIGHT: i32 = 100;
const CANARY_WEIGHT: i32 = 0;
const MESH: &str = "mesh";

/// Service `<name>`, plus `<name>-stable` and `<name>-canary` when a router splits a canary.
pub(crate) fn services(ctx: &Ctx) -> Vec<Service> {
    let mut services = vec![Service {
        metadata: object_meta(ctx, ctx.name.to_string()),
        spec: Some(service_spec(ctx, instance_labels(ctx))),
        status: None,
    }];
    if ctx.routes_canary() {
        for track in [Track::Stable, Track::Canary] {
            let name = track_service_name(ctx.name, track);
            services.push(Service {
                metadata: track_object_meta(ctx, name, track),
                spec: Some(service_spec(ctx, track_labels(ctx, track))),
                status: None,
            });
        }
    }
    services
}

/// The per-track Service of service `name`: `<name>-stable` / `<name>-canary` (the
/// HTTPRoute backends the rollout engine weights).
pub fn track_service_name(name: &str, track: Track) -> String {
    format!("{name}-{}", track.as_str())
}

fn service_spec(ctx: &Ctx, selector: std::collections::BTreeMap<String, String>) -> ServiceSpec {
    let port = |name: &str, number: u16| ServicePort {
        name: Some(name.to_string()),
        port: i32::from(number),
        target_port: Some(IntOrString::String(name.to_string())),
        protocol: Some("TCP".to_string()),
        ..ServicePort::default()
    };
    let mut ports = vec![port("http", ctx.http_port())];
    if let Some(grpc) = ctx.spec.runtime.grpc_port {
        ports.push(port("grpc", grpc));
    }
    if let Some(metrics) = ctx.separate_metrics_port() {
        ports.push(port("metrics", metrics));
    }
    ServiceSpec {
        type_: Some("ClusterIP".to_string()),
        selector: Some(selector),
        ports: Some(ports),
        ..ServiceSpec::default()
    }
}

/// The route objects of the service's router.
pub(crate) fn routes(ctx: &Ctx) -> Result<Vec<Object>, CompileError> {
    Ok(match ctx.router {
        Router::GatewayApi => vec![Object::HttpRoute(Box::new(http_route(ctx)?))],
        Router::Istio => vec![
            Object::VirtualService(Box::new(virtual_service(ctx))),
            Object::DestinationRule(Box::new(destination_rule(ctx))),
        ],
        Router::Replicas => Vec::new(),
    })
}

/// HTTPRoute `<name>` on the configured Gateway.
fn http_route(ctx: &Ctx) -> Result<HttpRoute, CompileError> {
    let gateway = ctx
        .config
        .spec
        .traffic
        .gateway
        .as_ref()
        .ok_or(CompileError::NoGateway)?;
    let port = i32::from(ctx.http_port());
    let backend_refs = if ctx.routes_canary() {
        vec![
            HttpBackendRef {
                name: track_service_name(ctx.name, Track::Stable),
                port,
                weight: Some(STABLE_WEIGHT),
            },
            HttpBackendRef {
                name: track_service_name(ctx.name, Track::Canary),
                port,
                weight: Some(CANARY_WEIGHT),
            },
        ]
    } else {
        vec![HttpBackendRef {
            name: ctx.name.to_string(),
            port,
            weight: None,
        }]
    };
    Ok(HttpRoute {
        metadata: object_meta(ctx, ctx.name.to_string()),
        spec: HttpRouteSpec {
            parent_refs: vec![ParentRef {
                name: gateway.name.clone(),
                namespace: gateway.namespace.clone(),
            }],
            hostnames: hosts(ctx).to_vec(),
            rules: vec![HttpRouteRule {
                matches: vec![HttpRouteMatch {
                    path: Some(HttpPathMatch {
                        match_type: "PathPrefix".to_string(),
                        value: "/".to_string(),
                    }),
                }],
                backend_refs,
            }],
        },
    })
}

fn hosts<'a>(ctx: &Ctx<'a>) -> &'a [String] {
    ctx.spec
        .traffic
        .as_ref()
        .map_or(&[], |t| t.hosts.as_slice())
}

/// The in-cluster name of Service `<name>`.
fn cluster_host(ctx: &Ctx) -> String {
    format!("{}.{}.svc.cluster.local", ctx.name, ctx.namespace)
}

/// VirtualService `<name>`: the mesh (and the gateway for external hosts) routes to the
/// stable and canary subsets; gRPC from the mesh keeps its port.
fn virtual_service(ctx: &Ctx) -> VirtualService {
    let host = cluster_host(ctx);
    let mut hosts_list = vec![host.clone()];
    hosts_list.extend(hosts(ctx).iter().cloned());
    let mut gateways = vec![MESH.to_string()];
    if let (false, Some(gw)) = (hosts(ctx).is_empty(), &ctx.config.spec.traffic.gateway) {
        gateways.push(match &gw.namespace {
            Some(ns) => format!("{ns}/{}", gw.name),
            None => gw.name.clone(),
        });
    }
    let mut http = Vec::new();
    if let Some(grpc) = ctx.spec.runtime.grpc_port {
        http.push(IstioHttpRoute {
            name: Some("grpc".to_string()),
            matches: vec![IstioHttpMatch {
                port: Some(u32::from(grpc)),
                gateways: vec![MESH.to_string()],
            }],
            route: destinations(ctx, &host, grpc),
        });
    }
    http.push(IstioHttpRoute {
        name: Some("http".to_string()),
        matches: Vec::new(),
        route: destinations(ctx, &host, ctx.http_port()),
    });
    VirtualService {
        metadata: object_meta(ctx, ctx.name.to_string()),
        spec: VirtualServiceSpec {
            hosts: hosts_list,
            gateways,
            http,
        },
    }
}

/// Stable 100 / canary 0 under canary; the whole host under rolling.
fn destinations(ctx: &Ctx, host: &str, port: u16) -> Vec<IstioRouteDestination> {
    let destination = |subset: Option<Track>, weight| IstioRouteDestination {
        destination: IstioDestination {
            host: host.to_string(),
            subset: subset.map(|t| t.as_str().to_string()),
            port: Some(IstioPortSelector {
                number: u32::from(port),
            }),
        },
        weight,
    };
    if ctx.routes_canary() {
        vec![
            destination(Some(Track::Stable), Some(STABLE_WEIGHT)),
            destination(Some(Track::Canary), Some(CANARY_WEIGHT)),
        ]
    } else {
        vec![destination(None, None)]
    }
}

/// DestinationRule `<name>`: subsets `stable` and `canary` by the track label.
fn destination_rule(ctx: &Ctx) -> DestinationRule {
    let subset = |track: Track| IstioSubset {
        name: track.as_str().to_string(),
        labels: [(LABEL_TRACK.to_string(), track.as_str().to_string())].into(),
    };
    DestinationRule {
        metadata: object_meta(ctx, ctx.name.to_string()),
        spec: DestinationRuleSpec {
            host: cluster_host(ctx),
            subsets: vec![subset(Track::Stable), subset(Track::Canary)],
        },
    }
}

#[cfg(test)]
#[path = "traffic_tests.rs"]
mod tests;
