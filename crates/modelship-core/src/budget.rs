//! GPU budgets of tenants (`maxGPUs` in modelship.yaml): which services fit, counted so
//! that a new service never pushes out one that already runs.
//!
//! ```text
//! Repository (valid services, tenants) + live services ──over_budget──▶ [(id, Diagnostic)]
//!   per tenant with maxGPUs: its services, live ones first, then the rest in path order
//!   (file, line); each adds its peak GPUs while the total stays within maxGPUs; one that
//!   does not fit is an error at its metadata.name naming the tenant, its budget and the
//!   total, and is not counted
//! enforce: those services leave `services` for `invalid` (their live objects are left
//!   untouched, as for any invalid spec)
//! ```
//!
//! A service's peak is its GPUs at maximum scale (`maxReplicas` under autoscaling, else
//! `replicas`) times `gpu.count`, and for a canary service the peak of its rollout at that
//! scale (`rollout::footprint`: both tracks, and the stable track's surge at promotion). A
//! MIG partition or a time-sliced (`shared`) GPU counts as `gpu.count` GPUs, as the
//! compiler asks for `gpu.count` of that resource and the footprint counts it.
//! Services that are invalid for another reason are not counted: their specs cannot be
//! read (their live objects, untouched, still run).

use std::collections::BTreeSet;

use crate::rollout::{RolloutPlan, footprint};
use crate::service_id::ServiceId;
use crate::spec::diagnostic::{self, Diagnostic, Severity};
use crate::spec::validate::Violation;
use crate::spec::{LoadedService, ModelServiceSpec, Owner, Repository, RepositoryConfig, Tenancy};

/// The GPUs `spec` may hold at once: at maximum scale, canary peak included.
pub fn peak_gpus(spec: &ModelServiceSpec, config: &RepositoryConfig) -> u64 {
    let per_pod = spec.gpu.as_ref().map_or(0, |g| g.count);
    if per_pod == 0 {
        return 0;
    }
    let max = match &spec.autoscaling {
        Some(autoscaling) => autoscaling.max_replicas,
        None => spec.replicas.unwrap_or(1),
    };
    let Some(plan) = RolloutPlan::from_spec(spec) else {
        return u64::from(max) * u64::from(per_pod);
    };
    // The footprint counts from the replicas at rest; at maximum scale they are `max`.
    let mut at_max = spec.clone();
    match &mut at_max.autoscaling {
        Some(autoscaling) => autoscaling.min_replicas = Some(max),
        None => at_max.replicas = Some(max),
    }
    u64::from(footprint(&at_max, config, &plan).peak_gpus)
}

/// The services of `repository` that do not fit in their tenant's `maxGPUs`, each with
/// its error. `live` names the services with live objects: they are counted first.
pub fn over_budget(
    repository: &Repository,
    live: &BTreeSet<ServiceId>,
) -> Vec<(ServiceId, Diagnostic)> {
    let config = &repository.config;
    let tenancy = Tenancy::new(&config.spec);
    let mut out = Vec::new();
    for tenant in &config.spec.tenants {
        let Some(max) = tenant.max_gpus else {
            continue;
        };
        let mut services: Vec<&LoadedService> = repository
            .services
            .iter()
            .filter(|s| tenancy.owner(&s.file) == Owner::Tenant(tenant))
            .collect();
        services.sort_by_key(|s| (!live.contains(s.id()), s.file.as_str(), s.line));
        let mut used = 0u64;
        for service in services {
            let own = peak_gpus(&service.service.spec, config);
            let total = used.saturating_add(own);
            if total <= u64::from(max) {
                used = total;
                continue;
            }
            let violation = Violation::OverBudget {
                tenant: tenant.name.clone(),
                total,
                max,
                own,
            };
            out.push((
                service.id().clone(),
                Diagnostic {
                    severity: Severity::Error,
                    file: service.file.clone(),
                    line: service.name_at.line,
                    column: service.name_at.column,
                    field: "metadata.name".to_string(),
                    message: violation.to_string(),
                    hint: violation.hint(),
                },
            ));
        }
    }
    out
}

/// Moves the services over their tenant's budget ([`over_budget`]) from `services` to
/// `invalid`, with their errors; returns them. Running it again changes nothing.
pub fn enforce(
    repository: &mut Repository,
    live: &BTreeSet<ServiceId>,
) -> Vec<(ServiceId, Diagnostic)> {
    let over = over_budget(repository, live);
    if over.is_empty() {
        return over;
    }
    let blocked: BTreeSet<&ServiceId> = over.iter().map(|(id, _)| id).collect();
    repository.services.retain(|s| !blocked.contains(s.id()));
    repository.invalid.extend(blocked.into_iter().cloned());
    repository.invalid.sort();
    repository.invalid.dedup();
    repository
        .diagnostics
        .extend(over.iter().map(|(_, d)| d.clone()));
    diagnostic::sort(&mut repository.diagnostics);
    over
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
