//! Deploying and tearing down the preview of a pull request, through the one writer.
//!
//! ```text
//! Previews (compile::preview) + live objects labelled modelship.dev/preview=<n>
//!   ├─ each preview namespace: server-side applied, labelled with the PR and the
//!   │   `restricted` Pod Security profile, boxed (ResourceQuota, LimitRange, egress
//!   │   denied but DNS and the namespace)
//!   ├─ plan::plan (the one planner) ─▶ apply_service per service (SSA in apply order),
//!   │                                  prune: services no longer previewed, within this
//!   │                                  PR's objects only
//!   └─ the PR's namespaces that hold no preview any more: deleted
//! tear_down: every namespace of the PR deleted (their objects go with them)
//! ```
//!
//! The live view handed in holds only this PR's objects (`cluster::read_preview_live`),
//! so a preview can never prune anything of the main branch or of another PR; the main
//! reconcile never sees preview objects ([`crate::ownership::Instance::selector`]).

use serde_json::json;

use super::apply::{Strategy, apply_service, prune};
use crate::cluster::{self, PreviewNamespace, Writer};
use crate::compile::preview::{BOX_NAME, POD_SECURITY, Previews, namespace_box};
use crate::meta::{
    ANNOTATION_PREVIEW_REPO, LABEL_CREATED_BY, LABEL_PREVIEW, MANAGED_BY_VALUE, ObjectKey,
};
use crate::plan::{self, Detail, Plan, PruneMode};
use crate::state::{DesiredState, LiveSet};

/// Why a preview could not be deployed.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The preview could not be planned.
    #[error("planning the preview: {0}")]
    Plan(#[from] plan::Error),
    /// Writes failed; the others were made.
    #[error("{} preview write(s) failed; first: {first}", count)]
    Writes { count: usize, first: cluster::Error },
}

impl PreviewError {
    /// The label of this error in metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            PreviewError::Plan(e) => e.metric_label(),
            PreviewError::Writes { first, .. } => first.metric_label(),
        }
    }
}

/// What deploying a preview did.
#[derive(Debug, Default)]
pub struct PreviewReport {
    /// Objects written.
    pub applied: Vec<ObjectKey>,
    /// Objects deleted (services no longer previewed).
    pub deleted: Vec<ObjectKey>,
    /// Namespaces deleted (no preview left in them).
    pub namespaces_deleted: Vec<String>,
    /// The plan that was applied.
    pub plan: Plan,
}

/// The desired state of a preview.
pub fn desired(previews: &Previews) -> DesiredState {
    DesiredState {
        services: previews
            .services
            .iter()
            .map(|s| s.service.clone())
            .collect(),
        invalid: Vec::new(),
        repository_valid: true,
    }
}

/// Deploys `previews` of `repository` over `live` (this PR's live objects), then deletes
/// `existing` namespaces of the PR that no longer hold a preview.
pub async fn deploy(
    writer: &Writer,
    repository: &str,
    previews: &Previews,
    live: &LiveSet,
    existing: &[PreviewNamespace],
) -> Result<PreviewReport, PreviewError> {
    let mut failures = Vec::new();
    let wanted = previews.namespaces();
    for namespace in &wanted {
        if let Err(error) = apply_namespace(writer, namespace, previews, repository).await {
            failures.push(error);
        }
    }
    let desired = desired(previews);
    let plan = plan::plan_with(&desired, live, Detail::Decisions)?;
    let strategy = Strategy {
        prune: PruneMode::Unguarded,
        create_namespaces: false,
    };
    let mut report = PreviewReport::default();
    for service in &plan.services {
        let Some(objects) = desired.service(&service.id) else {
            continue;
        };
        let done = apply_service(writer, service, objects, &strategy).await;
        report
            .applied
            .extend(done.applied.into_iter().map(|(key, _)| key));
        report.deleted.extend(done.deleted);
        failures.extend(done.failures);
    }
    // Only this PR's objects are in view: what it no longer previews is pruned, unguarded.
    let pruned = prune(writer, &plan.services, PruneMode::Unguarded).await;
    report.deleted.extend(pruned.deleted);
    failures.extend(pruned.failures.into_iter().map(|(_, error)| error));
    let stale: Vec<&PreviewNamespace> = existing
        .iter()
        .filter(|ns| ns.pr == previews.pr && !wanted.contains(&ns.name))
        .collect();
    let (deleted, failed) = delete_namespaces(writer, stale).await;
    report.namespaces_deleted = deleted;
    failures.extend(failed);
    report.plan = plan;
    match failures.len() {
        0 => Ok(report),
        count => Err(PreviewError::Writes {
            count,
            first: failures.remove(0),
        }),
    }
}

/// Deletes every namespace of `namespaces` (their objects go with them); returns the
/// namespaces deleted and the failures.
pub async fn tear_down(
    writer: &Writer,
    namespaces: &[PreviewNamespace],
) -> (Vec<String>, Vec<cluster::Error>) {
    delete_namespaces(writer, namespaces.iter().collect()).await
}

async fn delete_namespaces(
    writer: &Writer,
    namespaces: Vec<&PreviewNamespace>,
) -> (Vec<String>, Vec<cluster::Error>) {
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for namespace in namespaces {
        let key = ObjectKey::new("", "Namespace", "", &namespace.name);
        match writer.delete(&key, "v1", namespace.uid.as_deref()).await {
            Ok(()) => deleted.push(namespace.name.clone()),
            Err(error) => failures.push(error),
        }
    }
    (deleted, failures)
}

/// Server-side applies a preview namespace with its labels (created by modelship, so never
/// pruned by the main reconcile; the PR's number; the `restricted` Pod Security profile),
/// then its box: ResourceQuota, LimitRange, default-deny egress NetworkPolicy.
async fn apply_namespace(
    writer: &Writer,
    namespace: &str,
    previews: &Previews,
    repository: &str,
) -> cluster::Result<()> {
    let mut labels = serde_json::Map::new();
    labels.insert(LABEL_CREATED_BY.into(), MANAGED_BY_VALUE.into());
    labels.insert(LABEL_PREVIEW.into(), previews.pr.to_string().into());
    for (key, value) in POD_SECURITY {
        labels.insert(key.into(), value.into());
    }
    let body = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": labels,
            "annotations": {ANNOTATION_PREVIEW_REPO: repository},
        },
    });
    let key = ObjectKey::new("", "Namespace", "", namespace);
    writer.apply(&key, "v1", &body).await?;
    for object in namespace_box(namespace, previews.pr, &previews.quota) {
        let api_version = object["apiVersion"].as_str().unwrap_or("v1").to_string();
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        let kind = object["kind"].as_str().unwrap_or_default();
        let key = ObjectKey::new(group, kind, namespace, BOX_NAME);
        writer.apply(&key, &api_version, &object).await?;
    }
    Ok(())
}
