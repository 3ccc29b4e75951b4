use super::*;
use crate::compile::testutil::{cpu_service, ctx_for, gpu_config, loaded};
use crate::spec::{ModelService, RepositoryConfig, RolloutSpec, Strategy, TrafficSpec};

fn shaped(strategy: Strategy, router: Router) -> ModelService {
    let mut svc = cpu_service("fraud");
    svc.metadata.namespace = Some("ml".into());
    svc.spec.rollout = Some(RolloutSpec {
        strategy,
        steps: Vec::new(),
        step_interval: None,
        manual_gates: Vec::new(),
        analysis: None,
    });
    svc.spec.traffic = Some(TrafficSpec {
        router: Some(router),
        hosts: vec!["fraud.ml.example.com".into()],
    });
    svc
}

fn compiled(
    svc: ModelService,
    config: &RepositoryConfig,
) -> (Vec<Service>, Result<Vec<Object>, CompileError>) {
    let loaded = loaded(svc);
    let ctx = ctx_for(&loaded, config);
    (services(&ctx), routes(&ctx))
}

#[test]
fn services_per_track_only_when_a_router_splits_a_canary() {
    let cases = [
        (Strategy::Rolling, Router::Replicas, vec!["fraud"]),
        (Strategy::Rolling, Router::GatewayApi, vec!["fraud"]),
        (Strategy::Canary, Router::Replicas, vec!["fraud"]),
        (
            Strategy::Canary,
            Router::GatewayApi,
            vec!["fraud", "fraud-stable", "fraud-canary"],
        ),
        (
            Strategy::Canary,
            Router::Istio,
            vec!["fraud", "fraud-stable", "fraud-canary"],
        ),
    ];
    for (strategy, router, names) in cases {
        let (services, _) = compiled(shaped(strategy, router), &gpu_config());
        let got: Vec<String> = services
            .iter()
            .map(|s| s.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(got, names, "{strategy:?} {router:?}");
        for s in &services {
            let selector = s.spec.as_ref().unwrap().selector.clone().unwrap();
            assert_eq!(selector["app.kubernetes.io/instance"], "fraud");
            let name = s.metadata.name.as_deref().unwrap();
            let track = selector.get("modelship.dev/track").map(String::as_str);
            let expected = name.strip_prefix("fraud-");
            assert_eq!(track, expected, "{name}");
        }
    }
}

#[test]
fn service_ports_are_named_and_target_container_ports() {
    let mut svc = cpu_service("m");
    svc.spec.runtime.grpc_port = Some(8081);
    svc.spec.runtime.metrics_port = Some(9090);
    let (services, _) = compiled(svc, &RepositoryConfig::default());
    let spec = services[0].spec.clone().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let ports: Vec<(String, i32, IntOrString)> = spec
        .ports
        .unwrap()
        .into_iter()
        .map(|p| (p.name.unwrap(), p.port, p.target_port.unwrap()))
        .collect();
    let s = |n: &str| IntOrString::String(n.to_string());
    assert_eq!(
        ports,
        [
            ("http".to_string(), 8080, s("http")),
            ("grpc".to_string(), 8081, s("grpc")),
            ("metrics".to_string(), 9090, s("metrics")),
        ]
    );
}

fn backends(objects: &[Object]) -> Vec<(String, Option<i32>)> {
    let Some(Object::HttpRoute(route)) = objects.first() else {
        panic!("expected an HTTPRoute, got {objects:?}");
    };
    route.spec.rules[0]
        .backend_refs
        .iter()
        .map(|b| (b.name.clone(), b.weight))
        .collect()
}

#[test]
fn http_route_weights_at_rest() {
    let cases = [
        (
            Strategy::Canary,
            vec![("fraud-stable", Some(100)), ("fraud-canary", Some(0))],
        ),
        (Strategy::Rolling, vec![("fraud", None)]),
    ];
    for (strategy, expected) in cases {
        let (_, routes) = compiled(shaped(strategy, Router::GatewayApi), &gpu_config());
        let routes = routes.unwrap();
        let want: Vec<(String, Option<i32>)> =
            expected.iter().map(|(n, w)| (n.to_string(), *w)).collect();
        assert_eq!(backends(&routes), want);
        let Object::HttpRoute(route) = &routes[0] else {
            unreachable!("checked by backends")
        };
        assert_eq!(
            route.spec.parent_refs,
            [ParentRef {
                name: "ml-gateway".into(),
                namespace: Some("gateway-system".into())
            }]
        );
        assert_eq!(route.spec.hostnames, ["fraud.ml.example.com"]);
        assert_eq!(route.spec.rules[0].backend_refs[0].port, 8080);
    }
}

#[test]
fn http_route_without_gateway_is_an_error() {
    let (_, routes) = compiled(
        shaped(Strategy::Canary, Router::GatewayApi),
        &RepositoryConfig::default(),
    );
    assert_eq!(routes.unwrap_err(), CompileError::NoGateway);
}

#[test]
fn istio_routes_split_subsets_by_track() {
    let mut svc = shaped(Strategy::Canary, Router::Istio);
    svc.spec.runtime.grpc_port = Some(8081);
    let (_, routes) = compiled(svc, &gpu_config());
    let routes = routes.unwrap();
    let [Object::VirtualService(vs), Object::DestinationRule(dr)] = routes.as_slice() else {
        panic!("expected VirtualService + DestinationRule, got {routes:?}");
    };
    let host = "fraud.ml.svc.cluster.local";
    assert_eq!(vs.spec.hosts, [host, "fraud.ml.example.com"]);
    assert_eq!(vs.spec.gateways, ["mesh", "gateway-system/ml-gateway"]);
    /// (route name, [(subset, port, weight)])
    type Route = (Option<String>, Vec<(Option<String>, u32, Option<i32>)>);
    let summary: Vec<Route> = vs
        .spec
        .http
        .iter()
        .map(|r| {
            let dests = r
                .route
                .iter()
                .map(|d| {
                    assert_eq!(d.destination.host, host);
                    (
                        d.destination.subset.clone(),
                        d.destination.port.as_ref().map_or(0, |p| p.number),
                        d.weight,
                    )
                })
                .collect();
            (r.name.clone(), dests)
        })
        .collect();
    let sub = |s: &str| Some(s.to_string());
    assert_eq!(
        summary,
        [
            (
                sub("grpc"),
                vec![
                    (sub("stable"), 8081, Some(100)),
                    (sub("canary"), 8081, Some(0))
                ]
            ),
            (
                sub("http"),
                vec![
                    (sub("stable"), 8080, Some(100)),
                    (sub("canary"), 8080, Some(0))
                ]
            ),
        ]
    );
    assert_eq!(vs.spec.http[0].matches[0].port, Some(8081));
    assert_eq!(dr.spec.host, host);
    let subsets: Vec<(String, String)> = dr
        .spec
        .subsets
        .iter()
        .map(|s| (s.name.clone(), s.labels["modelship.dev/track"].clone()))
        .collect();
    assert_eq!(
        subsets,
        [
            ("stable".into(), "stable".into()),
            ("canary".into(), "canary".into())
        ]
    );
}

#[test]
fn istio_rolling_routes_to_the_whole_host_and_mesh_only_without_hosts() {
    let mut svc = shaped(Strategy::Rolling, Router::Istio);
    if let Some(t) = svc.spec.traffic.as_mut() {
        t.hosts.clear();
    }
    let (_, routes) = compiled(svc, &gpu_config());
    let routes = routes.unwrap();
    let Some(Object::VirtualService(vs)) = routes.first() else {
        panic!("expected a VirtualService, got {routes:?}");
    };
    assert_eq!(vs.spec.gateways, ["mesh"]);
    assert_eq!(vs.spec.http.len(), 1);
    let route = &vs.spec.http[0].route;
    assert_eq!(route.len(), 1);
    assert_eq!(route[0].destination.subset, None);
    assert_eq!(route[0].weight, None);
}

#[test]
fn replicas_router_emits_no_routes() {
    let (_, routes) = compiled(
        shaped(Strategy::Canary, Router::Replicas),
        &RepositoryConfig::default(),
    );
    assert_eq!(routes.unwrap(), Vec::new());
}

#[test]
fn router_defaults_to_the_repository_config() {
    let mut svc = cpu_service("m");
    svc.spec.traffic = None;
    let mut config = gpu_config();
    config.spec.traffic.router = Router::GatewayApi;
    let (_, routes) = compiled(svc, &config);
    assert!(matches!(routes.unwrap().as_slice(), [Object::HttpRoute(_)]));
}
