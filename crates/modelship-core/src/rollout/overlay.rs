//! The desired objects of a canary service in a given rollout state: the compiled objects
//! at rest, changed so that applying them (server-side apply, modelship's field manager)
//! is the rollout. Weights are desired state, never a side channel.
//!
//! ```text
//! ServiceObjects (at rest) + state.desired(plan) + live stable template
//!   stable Deployment <name>   template: desired, or kept live while a rollout runs;
//!                              replicas: the stable share under router replicas;
//!                              annotations template-hash, rollout (the state, JSON) and
//!                              rollout-plan (the plan and its peak GPUs: RecordedPlan)
//!   Deployment <name>-canary   while a canary exists: compile_canary_deployment, replicas
//!                              following the weight (at least 1)
//!   HTTPRoute <name>           backendRefs <name>-stable 100-w, <name>-canary w
//!   VirtualService <name>      every route: subset stable 100-w, canary w
//! ```

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use sha2::{Digest, Sha256};

use super::recorded::{ANNOTATION_PLAN, RecordedPlan};
use super::split::replicas_at;
use super::state::{ANNOTATION_ROLLOUT, ANNOTATION_TEMPLATE_HASH, RolloutState, StableTemplate};
use super::{Error, Result};
use crate::compile::{
    self, Object, ServiceObjects, Source, Track, compile_canary_deployment, router_of,
    sort_in_apply_order, track_service_name,
};
use crate::spec::{LoadedService, RepositoryConfig};

/// The live stable Deployment `<name>` as the overlay needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveStable {
    /// Its pod template, as modelship applied it (projected onto modelship's own fields,
    /// so server defaults are not claimed).
    pub template: PodTemplateSpec,
    /// Its `modelship.dev/template-hash` annotation; `None` when it has none.
    pub template_hash: Option<String>,
}

/// What the overlay did, for status and plan output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlaySummary {
    /// The canary's weight; `None` without a canary.
    pub canary_weight: Option<u32>,
    /// Replicas of `<name>-canary`, when it exists.
    pub canary_replicas: Option<i32>,
    /// Replicas of the stable Deployment, when modelship sets them (no HPA).
    pub stable_replicas: Option<i32>,
}

/// The sha256 (hex) of a compiled pod template, with every `modelship.dev/track` key
/// left out (pod labels, spread-constraint selectors), so the stable and the canary
/// templates of one revision hash alike.
pub fn template_hash(template: &PodTemplateSpec) -> Result<String> {
    let mut value = serde_json::to_value(template).map_err(|e| Error::Hash(e.to_string()))?;
    drop_track_keys(&mut value);
    let bytes = serde_json::to_vec(&value).map_err(|e| Error::Hash(e.to_string()))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn drop_track_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove(compile::LABEL_TRACK);
            map.values_mut().for_each(drop_track_keys);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_track_keys),
        _ => {}
    }
}

/// The template hash of the stable Deployment compiled for a service: the
/// `desired_hash` the state machine compares with the live one.
pub fn desired_template_hash(objects: &ServiceObjects) -> Result<String> {
    let name = objects.id.name();
    let stable = objects
        .objects
        .iter()
        .find_map(|o| match o {
            Object::Deployment(d) if d.metadata.name.as_deref() == Some(name) => Some(d),
            _ => None,
        })
        .ok_or_else(|| Error::NoDeployment(name.to_string()))?;
    template_hash(&deployment_template(stable))
}

/// The `modelship.dev/template-hash` annotation of a live Deployment.
pub fn live_template_hash(deployment: &Deployment) -> Option<&str> {
    deployment
        .metadata
        .annotations
        .as_ref()?
        .get(ANNOTATION_TEMPLATE_HASH)
        .map(String::as_str)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Turns the compiled objects of a canary service into the desired objects of `state`.
/// `objects` must be `compile_service` output for `svc`; the desired template hash is the
/// one [`template_hash`] gives for its stable Deployment. `recorded` is the plan the
/// rollout runs under with its footprint's peak, recorded on the stable Deployment.
pub fn overlay(
    objects: &mut ServiceObjects,
    svc: &LoadedService,
    config: &RepositoryConfig,
    source: &Source,
    state: &RolloutState,
    recorded: &RecordedPlan,
    live: Option<&LiveStable>,
) -> Result<OverlaySummary> {
    let plan = &recorded.plan;
    let desired = state.desired(plan);
    let spec = &svc.service.spec;
    let router = router_of(spec, config);
    let split = desired
        .canary_weight
        .map(|weight| replicas_at(spec, router, weight));
    let desired_hash = desired_template_hash(objects)?;
    let stable = stable_deployment(objects)?;
    let recorded_hash = match (desired.stable, live) {
        (StableTemplate::Live, Some(live)) => {
            if let Some(spec) = stable.spec.as_mut() {
                spec.template = live.template.clone();
            }
            live.template_hash.clone()
        }
        _ => Some(desired_hash),
    };
    let stable_replicas = match (split, desired.stable) {
        (Some(split), StableTemplate::Live) => split.stable,
        _ => None,
    };
    if let (Some(replicas), Some(spec)) = (stable_replicas, stable.spec.as_mut())
        && spec.replicas.is_some()
    {
        spec.replicas = Some(replicas);
    }
    let annotations = stable.metadata.annotations.get_or_insert_default();
    if let Some(hash) = recorded_hash {
        annotations.insert(ANNOTATION_TEMPLATE_HASH.to_string(), hash);
    }
    annotations.insert(ANNOTATION_ROLLOUT.to_string(), state.to_json()?);
    annotations.insert(ANNOTATION_PLAN.to_string(), recorded.to_json()?);
    let stable_replicas = stable.spec.as_ref().and_then(|s| s.replicas);

    let mut canary_replicas = None;
    if let (Some(weight), Some(split)) = (desired.canary_weight, split) {
        let mut canary = compile_canary_deployment(svc, config, source, split.canary)?;
        canary.metadata.annotations.get_or_insert_default().insert(
            ANNOTATION_TEMPLATE_HASH.to_string(),
            state.template_hash.clone(),
        );
        objects.objects.push(Object::Deployment(Box::new(canary)));
        canary_replicas = Some(split.canary);
        set_weights(objects, weight);
    }
    sort_in_apply_order(&mut objects.objects);
    Ok(OverlaySummary {
        canary_weight: desired.canary_weight,
        canary_replicas,
        stable_replicas,
    })
}

fn stable_deployment(objects: &mut ServiceObjects) -> Result<&mut Deployment> {
    let name = objects.id.name().to_string();
    objects
        .objects
        .iter_mut()
        .find_map(|o| match o {
            Object::Deployment(d) if d.metadata.name.as_deref() == Some(name.as_str()) => {
                Some(d.as_mut())
            }
            _ => None,
        })
        .ok_or(Error::NoDeployment(name))
}

fn deployment_template(deployment: &Deployment) -> PodTemplateSpec {
    deployment
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

/// Sets the canary weight on the route objects; the stable track gets the rest.
fn set_weights(objects: &mut ServiceObjects, weight: u32) {
    let canary = i32::try_from(weight.min(100)).unwrap_or(100);
    let stable = 100 - canary;
    let canary_backend = track_service_name(objects.id.name(), Track::Canary);
    let stable_backend = track_service_name(objects.id.name(), Track::Stable);
    for object in &mut objects.objects {
        match object {
            Object::HttpRoute(route) => {
                for backend in route
                    .spec
                    .rules
                    .iter_mut()
                    .flat_map(|r| &mut r.backend_refs)
                {
                    if backend.name == canary_backend {
                        backend.weight = Some(canary);
                    } else if backend.name == stable_backend {
                        backend.weight = Some(stable);
                    }
                }
            }
            Object::VirtualService(vs) => {
                for destination in vs.spec.http.iter_mut().flat_map(|r| &mut r.route) {
                    match destination.destination.subset.as_deref() {
                        Some("canary") => destination.weight = Some(canary),
                        Some("stable") => destination.weight = Some(stable),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "overlay_tests.rs"]
mod tests;
