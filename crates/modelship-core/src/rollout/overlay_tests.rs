//! The desired objects of each rollout state, per router.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::*;
use crate::compile::testutil::{autoscaled, cpu_service, gpu_config, loaded};
use crate::compile::{Object, compile_service};
use crate::rollout::state::{Phase, RollbackReason, RolloutState};
use crate::rollout::{RolloutPlan, footprint};
use crate::spec::{ModelService, RolloutSpec, Router, Strategy, TrafficSpec};

fn canary(router: Router, replicas: u32) -> ModelService {
    let mut svc = cpu_service("chat");
    svc.spec.replicas = Some(replicas);
    svc.spec.rollout = Some(RolloutSpec {
        strategy: Strategy::Canary,
        steps: vec![5, 25, 50, 100],
        step_interval: Some("1m".parse().unwrap()),
        manual_gates: vec![50],
        analysis: None,
    });
    svc.spec.traffic = Some(TrafficSpec {
        router: Some(router),
        hosts: Vec::new(),
    });
    svc
}

fn state(phase: Phase) -> RolloutState {
    RolloutState {
        revision: "r2".to_string(),
        template_hash: "new-hash".to_string(),
        phase,
        ..RolloutState::default()
    }
}

fn progressing(step: usize) -> Phase {
    Phase::Progressing {
        step,
        since: Timestamp::UNIX_EPOCH,
    }
}

/// An old template: the compiled one with another image.
fn live_stable(objects: &ServiceObjects) -> LiveStable {
    let mut template = stable(objects).spec.clone().unwrap().template;
    template.spec.as_mut().unwrap().containers[0].image =
        Some("registry.example.com/server:0.9".to_string());
    LiveStable {
        template,
        template_hash: Some("old-hash".to_string()),
    }
}

fn deployment<'a>(objects: &'a ServiceObjects, name: &str) -> Option<&'a Deployment> {
    objects.objects.iter().find_map(|o| match o {
        Object::Deployment(d) if d.metadata.name.as_deref() == Some(name) => Some(d.as_ref()),
        _ => None,
    })
}

fn stable(objects: &ServiceObjects) -> &Deployment {
    deployment(objects, "chat").unwrap()
}

fn image(d: &Deployment) -> &str {
    let template: &PodTemplateSpec = &d.spec.as_ref().unwrap().template;
    template.spec.as_ref().unwrap().containers[0]
        .image
        .as_deref()
        .unwrap()
}

struct Applied {
    objects: ServiceObjects,
    summary: OverlaySummary,
}

fn apply(svc: &ModelService, phase: Phase) -> Applied {
    let config = gpu_config();
    let svc = loaded(svc.clone());
    let source = crate::compile::Source::local();
    let mut objects = compile_service(&svc, &config, &source).unwrap();
    let live = live_stable(&objects);
    let plan = RolloutPlan::from_spec(&svc.service.spec).unwrap();
    let recorded = RecordedPlan::of(&plan, &footprint(&svc.service.spec, &config, &plan));
    let summary = overlay(
        &mut objects,
        &svc,
        &config,
        &source,
        &state(phase),
        &recorded,
        Some(&live),
    )
    .unwrap();
    Applied { objects, summary }
}

fn route_weights(objects: &ServiceObjects) -> Vec<(String, Option<i32>)> {
    objects
        .objects
        .iter()
        .flat_map(|o| match o {
            Object::HttpRoute(r) => r.spec.rules[0]
                .backend_refs
                .iter()
                .map(|b| (b.name.clone(), b.weight))
                .collect(),
            Object::VirtualService(vs) => vs
                .spec
                .http
                .iter()
                .flat_map(|h| &h.route)
                .map(|d| (d.destination.subset.clone().unwrap_or_default(), d.weight))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn a_running_step_keeps_stable_live_and_weights_the_canary() {
    let applied = apply(&canary(Router::GatewayApi, 4), progressing(1));
    let objects = &applied.objects;
    assert_eq!(image(stable(objects)), "registry.example.com/server:0.9");
    let annotations = stable(objects).metadata.annotations.as_ref().unwrap();
    assert_eq!(annotations[ANNOTATION_TEMPLATE_HASH], "old-hash");
    let stored = RolloutState::from_json(&annotations[ANNOTATION_ROLLOUT]).unwrap();
    assert_eq!(stored, state(progressing(1)));
    // The plan it runs under is recorded beside it, for a status read from the cluster.
    let recorded =
        crate::rollout::RecordedPlan::from_json(&annotations[crate::rollout::ANNOTATION_PLAN])
            .unwrap();
    assert_eq!(recorded.plan.steps, [5, 25, 50, 100]);
    assert_eq!(recorded.plan.gates, [50].into());
    assert_eq!(recorded.peak_gpus, 0, "a CPU service");

    let canary = deployment(objects, "chat-canary").expect("canary Deployment");
    assert_eq!(image(canary), "registry.example.com/server:1.0");
    assert_eq!(canary.spec.as_ref().unwrap().replicas, Some(1), "25% of 4");
    let canary_hash = &canary.metadata.annotations.as_ref().unwrap()[ANNOTATION_TEMPLATE_HASH];
    assert_eq!(canary_hash, "new-hash");
    assert_eq!(
        route_weights(objects),
        vec![
            ("chat-stable".to_string(), Some(75)),
            ("chat-canary".to_string(), Some(25))
        ]
    );
    assert_eq!(stable(objects).spec.as_ref().unwrap().replicas, Some(4));
    assert_eq!(
        applied.summary,
        OverlaySummary {
            canary_weight: Some(25),
            canary_replicas: Some(1),
            stable_replicas: Some(4),
        }
    );
    let mut sorted = objects.objects.clone();
    crate::compile::sort_in_apply_order(&mut sorted);
    assert_eq!(
        objects.objects, sorted,
        "the canary takes its place in apply order"
    );
}

#[test]
fn istio_weights_every_route_of_the_virtual_service() {
    let mut svc = canary(Router::Istio, 2);
    svc.spec.runtime.grpc_port = Some(9000);
    let applied = apply(&svc, progressing(2));
    assert_eq!(
        route_weights(&applied.objects),
        vec![
            ("stable".to_string(), Some(50)),
            ("canary".to_string(), Some(50)),
            ("stable".to_string(), Some(50)),
            ("canary".to_string(), Some(50)),
        ]
    );
    assert_eq!(applied.summary.canary_replicas, Some(1));
}

#[test]
fn the_replicas_router_splits_replicas_between_the_deployments() {
    let cases = [
        (progressing(0), 3, 1),
        (progressing(2), 2, 2),
        (progressing(3), 0, 4),
    ];
    for (phase, stable_replicas, canary_replicas) in cases {
        let applied = apply(&canary(Router::Replicas, 4), phase.clone());
        let objects = &applied.objects;
        let stable_count = stable(objects).spec.as_ref().unwrap().replicas;
        let canary_count =
            deployment(objects, "chat-canary").and_then(|d| d.spec.as_ref()?.replicas);
        assert_eq!(stable_count, Some(stable_replicas), "{phase:?}");
        assert_eq!(canary_count, Some(canary_replicas), "{phase:?}");
        assert!(route_weights(objects).is_empty());
    }
}

#[test]
fn an_hpa_keeps_the_stable_replicas_and_the_canary_follows_min_replicas() {
    let svc = autoscaled(canary(Router::Replicas, 1), 4, 10);
    let applied = apply(&svc, progressing(2));
    assert_eq!(
        stable(&applied.objects).spec.as_ref().unwrap().replicas,
        None
    );
    assert_eq!(applied.summary.canary_replicas, Some(2));
}

#[test]
fn at_rest_and_after_a_rollback_there_is_no_canary() {
    let at_rest = apply(&canary(Router::GatewayApi, 2), Phase::Stable);
    assert!(deployment(&at_rest.objects, "chat-canary").is_none());
    assert_eq!(
        image(stable(&at_rest.objects)),
        "registry.example.com/server:1.0"
    );
    let desired = template_hash(&stable(&at_rest.objects).spec.clone().unwrap().template);
    let annotations = stable(&at_rest.objects)
        .metadata
        .annotations
        .clone()
        .unwrap();
    assert_eq!(annotations[ANNOTATION_TEMPLATE_HASH], desired.unwrap());
    assert_eq!(
        route_weights(&at_rest.objects),
        vec![
            ("chat-stable".to_string(), Some(100)),
            ("chat-canary".to_string(), Some(0))
        ]
    );

    let rolled_back = apply(
        &canary(Router::GatewayApi, 2),
        Phase::RolledBack {
            at: Timestamp::UNIX_EPOCH,
            reason: RollbackReason::AnalysisFailed,
        },
    );
    assert!(deployment(&rolled_back.objects, "chat-canary").is_none());
    assert_eq!(
        image(stable(&rolled_back.objects)),
        "registry.example.com/server:0.9",
        "stable untouched"
    );
    assert_eq!(
        route_weights(&rolled_back.objects),
        route_weights(&at_rest.objects)
    );
}

#[test]
fn promotion_gives_stable_the_new_template_while_the_canary_serves() {
    let applied = apply(
        &canary(Router::GatewayApi, 2),
        Phase::Promoting {
            since: Timestamp::UNIX_EPOCH,
        },
    );
    assert_eq!(
        image(stable(&applied.objects)),
        "registry.example.com/server:1.0"
    );
    assert_eq!(applied.summary.canary_weight, Some(100));
    assert_eq!(applied.summary.canary_replicas, Some(2));
}

#[test]
fn template_hashes_ignore_the_track_and_see_every_other_change() {
    let config = gpu_config();
    let source = crate::compile::Source::local();
    let svc = loaded(canary(Router::GatewayApi, 2));
    let objects = compile_service(&svc, &config, &source).unwrap();
    let stable_template = stable(&objects).spec.clone().unwrap().template;
    let canary = crate::compile::compile_canary_deployment(&svc, &config, &source, 1).unwrap();
    let canary_template = canary.spec.unwrap().template;
    assert_ne!(stable_template, canary_template);
    assert_eq!(
        template_hash(&stable_template),
        template_hash(&canary_template)
    );
    let mut changed = svc.clone();
    changed
        .service
        .spec
        .runtime
        .env
        .insert("A".into(), "b".into());
    let other = compile_service(&changed, &config, &source).unwrap();
    let other_template = stable(&other).spec.clone().unwrap().template;
    assert_ne!(
        template_hash(&stable_template),
        template_hash(&other_template)
    );
    let mut scaled = svc.clone();
    scaled.service.spec.replicas = Some(7);
    let same = compile_service(&scaled, &config, &source).unwrap();
    assert_eq!(
        template_hash(&stable_template),
        template_hash(&stable(&same).spec.clone().unwrap().template),
        "replicas are not the pod template"
    );
    assert_eq!(
        live_template_hash(&Deployment::default()),
        None,
        "no annotation, no hash"
    );
}
