//! Applying a plan through the one [`Writer`]: for each service that changes, the
//! namespace first (with `create_namespaces`), then server-side apply of what is created
//! or updated in the apply order, then the deletes of its orphans in reverse order; the
//! services gone from the repository are pruned last, in reverse order, within the guard.
//! Unchanged and blocked objects are never written.
//!
//! [`apply`] is the CLI's whole run; the daemon calls [`apply_service`] per service (its
//! reconciles run concurrently) and [`prune`] once per revision. Both are the same code.

use serde_json::Value;

use crate::cluster::{self, Writer};
use crate::meta::{ObjectKey, ServiceId};
use crate::plan::{
    Action, MassPrune, ObjectPlan, Plan, PruneMode, ServicePlan, ServiceStatus, check_mass_prune,
};
use crate::state::{DesiredService, DesiredState};

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

/// What applying a plan did.
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

/// Applies a whole plan: every present service, then prune. When pruning is guarded and
/// the guard trips, nothing at all is written and the guard's verdict is returned.
pub async fn apply(
    writer: &Writer,
    plan: &Plan,
    desired: &DesiredState,
    strategy: &Strategy,
) -> Result<ApplyReport, MassPrune> {
    if strategy.prune == PruneMode::Guarded
        && let Some(guard) = check_mass_prune(plan)
    {
        return Err(guard);
    }
    let mut report = ApplyReport::default();
    for service in &plan.services {
        let Some(objects) = desired.service(&service.id) else {
            continue;
        };
        let done = apply_service(writer, service, objects, strategy).await;
        report.namespaces_created.extend(done.namespace_created);
        report
            .applied
            .extend(done.applied.into_iter().map(|(key, _)| key));
        report.deleted.extend(done.deleted);
        report.failures.extend(done.failures);
    }
    let pruned = prune(writer, plan, strategy).await?;
    report.deleted.extend(pruned.deleted);
    report.not_pruned.extend(pruned.kept);
    report
        .failures
        .extend(pruned.failures.into_iter().map(|(_, error)| error));
    Ok(report)
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

/// Prunes the services of the plan that are gone from a fully valid repository (the plan
/// marks them [`ServiceStatus::Removed`]), each in reverse apply order. With
/// [`PruneMode::Keep`] nothing is deleted and their objects are reported as kept; with
/// [`PruneMode::Guarded`] the guard is asked first and nothing is deleted when it trips.
pub async fn prune(
    writer: &Writer,
    plan: &Plan,
    strategy: &Strategy,
) -> Result<PruneReport, MassPrune> {
    let mut report = PruneReport::default();
    let removed = plan
        .services
        .iter()
        .filter(|s| s.status == ServiceStatus::Removed);
    match strategy.prune {
        PruneMode::Keep => {
            report.kept = removed
                .flat_map(|s| s.objects.iter().map(|o| o.key.clone()))
                .collect();
            return Ok(report);
        }
        PruneMode::Guarded => {
            if let Some(guard) = check_mass_prune(plan) {
                return Err(guard);
            }
        }
        PruneMode::Unguarded => {}
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
    Ok(report)
}

async fn delete(writer: &Writer, object: &ObjectPlan) -> cluster::Result<()> {
    writer
        .delete(&object.key, &object.api_version, object.live_uid.as_deref())
        .await
}
