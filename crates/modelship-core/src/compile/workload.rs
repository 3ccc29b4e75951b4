//! The Deployments of a service: `<name>` (track stable) and, while a canary rollout runs,
//! `<name>-canary` (track canary). Both come from the same pod template compiler.
//!
//! ```text
//! Ctx + Track + replicas ──deployment──▶ Deployment { selector: instance + track,
//!                                                     template: pod::pod_template }
//! ```
//!
//! The stable Deployment has no `spec.replicas` when an HPA owns the count.

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels::{selector, track_labels, track_object_meta};
use super::pod::{load_timeout_secs, pod_template};
use super::{CompileError, Ctx, Track, to_i32};

/// The least `progressDeadlineSeconds` (the Kubernetes default).
const MIN_PROGRESS_DEADLINE_SECS: u64 = 600;
/// Time allowed on top of the model load for pulling images and scheduling.
const PROGRESS_SLACK_SECS: u64 = 300;

/// The stable Deployment `<name>`: `replicas` (default 1) unless autoscaling owns it.
pub(crate) fn stable_deployment(ctx: &Ctx) -> Result<Deployment, CompileError> {
    let replicas = match ctx.spec.autoscaling {
        Some(_) => None,
        None => Some(to_i32(
            "spec.replicas",
            u64::from(ctx.spec.replicas.unwrap_or(1)),
        )?),
    };
    deployment(ctx, Track::Stable, replicas)
}

/// The Deployment of a track; `replicas: None` leaves the count to an HPA.
pub(crate) fn deployment(
    ctx: &Ctx,
    track: Track,
    replicas: Option<i32>,
) -> Result<Deployment, CompileError> {
    let progress_deadline = (load_timeout_secs(ctx).saturating_add(PROGRESS_SLACK_SECS))
        .max(MIN_PROGRESS_DEADLINE_SECS);
    Ok(Deployment {
        metadata: track_object_meta(ctx, track.object_name(ctx.name), track),
        spec: Some(DeploymentSpec {
            replicas,
            selector: selector(track_labels(ctx, track)),
            template: pod_template(ctx, track)?,
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::String("25%".to_string())),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            progress_deadline_seconds: Some(to_i32("progressDeadlineSeconds", progress_deadline)?),
            ..DeploymentSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::testutil::{autoscaled, cpu_service, ctx_for, loaded};
    use crate::spec::RepositoryConfig;

    #[test]
    fn replicas_are_set_unless_an_hpa_owns_them() {
        let config = RepositoryConfig::default();
        let mut fixed = cpu_service("m");
        fixed.spec.replicas = Some(3);
        let mut scaled = autoscaled(cpu_service("m"), 2, 6);
        scaled.spec.replicas = Some(3);
        let cases = [
            (cpu_service("m"), Some(1)),
            (fixed, Some(3)),
            (scaled, None),
        ];
        for (svc, expected) in cases {
            let loaded = loaded(svc);
            let d = stable_deployment(&ctx_for(&loaded, &config)).unwrap();
            assert_eq!(d.spec.unwrap().replicas, expected);
        }
    }

    #[test]
    fn tracks_have_their_own_name_and_immutable_selector() {
        let config = RepositoryConfig::default();
        let loaded = loaded(cpu_service("fraud"));
        let ctx = ctx_for(&loaded, &config);
        for (track, name) in [(Track::Stable, "fraud"), (Track::Canary, "fraud-canary")] {
            let d = deployment(&ctx, track, Some(2)).unwrap();
            assert_eq!(d.metadata.name.as_deref(), Some(name));
            let spec = d.spec.unwrap();
            let match_labels = spec.selector.match_labels.unwrap();
            assert_eq!(match_labels.len(), 2);
            assert_eq!(match_labels["app.kubernetes.io/instance"], "fraud");
            assert_eq!(match_labels["modelship.dev/track"], track.as_str());
            let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
            for (k, v) in &match_labels {
                assert_eq!(pod_labels.get(k), Some(v), "pod label {k}");
            }
        }
    }

    #[test]
    fn progress_deadline_covers_the_model_load() {
        let config = RepositoryConfig::default();
        let cases = [(None, 600), (Some("10m"), 900), (Some("30s"), 600)];
        for (timeout, expected) in cases {
            let mut svc = cpu_service("m");
            svc.spec.model.load_timeout = timeout.map(|t| t.parse().unwrap());
            let loaded = loaded(svc);
            let d = stable_deployment(&ctx_for(&loaded, &config)).unwrap();
            assert_eq!(
                d.spec.unwrap().progress_deadline_seconds,
                Some(expected),
                "{timeout:?}"
            );
        }
    }
}
