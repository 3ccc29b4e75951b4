//! Applying a plan through the one [`Writer`]: for each service that changes, the
//! namespace first (with `create_namespaces`), then server-side apply of what is created
//! or updated in the apply order, then the deletes of its orphans in reverse order; the
//! services gone from the repository are pruned last, in reverse order, within the guard.
//! Unchanged and blocked objects are never written.
//!
//! The step (`step.rs`) calls [`apply_service`] for its service; [`prune`] runs once per
//! revision, for `modelship apply` and the daemon alike.

use serde_json::Value;

use crate::cluster::{self, Writer};
use crate::meta::{ObjectKey, ServiceId};
use crate::plan::{Action, ObjectPlan, PruneMode, ServicePlan, ServiceStatus};
use crate::state::DesiredService;

/// How a plan is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Strategy {
    pub prune: PruneMode,
    /// Create the namespaces of services that write something when they are missing.
    pub create_namespaces: bool,
}

/// What applying one service did.
#[derive(Debug, Default)]
pub struct ServiceReport {
    /// The namespace, when it was created for this service.
    pub namespace_created: Option<String>,
    /// Objects written with server-side apply, with what the server stored.
    pub applied: Vec<(ObjectKey, Value)>,
    /// Objects deleted (orphans).
    pub deleted: Vec<ObjectKey>,
    /// Objects that failed; the other objects of the service were still written.
    pub failures: Vec<cluster::Error>,
}

impl ServiceReport {
    /// Writes and deletes made.
    pub fn writes(&self) -> usize {
        self.applied.len() + self.deleted.len()
    }
}

/// What pruning did.
#[derive(Debug, Default)]
pub struct PruneReport {
    /// Services whose every object was deleted.
    pub pruned: Vec<ServiceId>,
    /// Objects deleted.
    pub deleted: Vec<ObjectKey>,
    /// Objects of removed services left in place because pruning is off.
    pub kept: Vec<ObjectKey>,
    /// Objects that failed to delete, with their service.
    pub failures: Vec<(ServiceId, cluster::Error)>,
}

/// What applying a whole revision did (`modelship apply`).
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub namespaces_created: Vec<String>,
    pub applied: Vec<ObjectKey>,
    pub deleted: Vec<ObjectKey>,
    /// Objects of removed services left in place because pruning was off.
    pub not_pruned: Vec<ObjectKey>,
    pub failures: Vec<cluster::Error>,
}

impl ApplyReport {
    /// True when every planned write and delete succeeded.
    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Applies one present service of a plan: its namespace, its creates and updates in apply
/// order (bodies from `desired`), then its orphans' deletes in reverse order. A blocked,
/// removed or unchanged service writes nothing.
pub async fn apply_service(
    writer: &Writer,
    service: &ServicePlan,
    desired: &DesiredService,
    strategy: &Strategy,
) -> ServiceReport {
    let mut report = ServiceReport::default();
    if service.status != ServiceStatus::Present || !service.has_changes() {
        return report;
    }
    if strategy.create_namespaces {
        match writer.ensure_namespace(service.id.namespace()).await {
            Ok(true) => report.namespace_created = Some(service.id.namespace().to_string()),
            Ok(false) => {}
            Err(error) => {
                report.failures.push(error);
                return report;
            }
        }
    }
    let writes = service
        .objects
        .iter()
        .filter(|o| matches!(o.action, Action::Create | Action::Update));
    for object in writes {
        let body = desired
            .objects
            .iter()
            .find(|d| ObjectKey::of(d).as_ref() == Some(&object.key));
        let Some(body) = body else {
            // The plan was made from this desired state: every written key is in it.
            continue;
        };
        if object.ownership == Some(crate::plan::Ownership::Adopted)
            && let Err(error) = writer.replace(&object.key, &object.api_version, body).await
        {
            report.failures.push(error);
            continue;
        }
        match writer.apply(&object.key, &object.api_version, body).await {
            Ok(stored) => report.applied.push((object.key.clone(), stored)),
            Err(error) => report.failures.push(error),
        }
    }
    let deletes = service
        .objects
        .iter()
        .filter(|o| o.action == Action::Delete);
    for object in deletes.rev() {
        match delete(writer, object).await {
            Ok(()) => report.deleted.push(object.key.clone()),
            Err(error) => report.failures.push(error),
        }
    }
    report
}

/// Prunes the services gone from a fully valid repository (`gone`: the plans the revision
/// marks [`ServiceStatus::Removed`]; others are skipped), each in reverse apply order.
/// With [`PruneMode::Keep`] nothing is deleted and their objects are reported as kept. The
/// caller has asked the mass-prune guard first (`Revision::guard`), over the whole
/// revision: this function never judges a part of it.
pub async fn prune(writer: &Writer, gone: &[ServicePlan], mode: PruneMode) -> PruneReport {
    let mut report = PruneReport::default();
    let removed = gone.iter().filter(|s| s.status == ServiceStatus::Removed);
    if mode == PruneMode::Keep {
        report.kept = removed
            .flat_map(|s| s.objects.iter().map(|o| o.key.clone()))
            .collect();
        return report;
    }
    for service in removed {
        let id = service.id.clone();
        let mut failed = false;
        for object in service.objects.iter().rev() {
            match delete(writer, object).await {
                Ok(()) => report.deleted.push(object.key.clone()),
                Err(error) => {
                    failed = true;
                    report.failures.push((id.clone(), error));
                }
            }
        }
        if !failed {
            report.pruned.push(id);
        }
    }
    report
}

async fn delete(writer: &Writer, object: &ObjectPlan) -> cluster::Result<()> {
    writer
        .delete(&object.key, &object.api_version, object.live_uid.as_deref())
        .await
}
