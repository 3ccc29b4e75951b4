//! The mass-prune guard: a repository that suddenly lost most of its services is more
//! likely a mistake (a bad merge, a wrong `--path`) than an intent.

use std::collections::BTreeMap;

use super::{Plan, ServiceStatus};

/// A namespace where pruning would remove more than half of the services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassPrune {
    pub namespace: String,
    /// Services that would be pruned.
    pub removed: usize,
    /// Services with objects in the cluster or in the repository.
    pub total: usize,
}

/// Namespaces where the plan prunes more than half of the services (removed * 2 > total),
/// in namespace order; empty when pruning is within bounds.
pub fn check_mass_prune(plan: &Plan) -> Vec<MassPrune> {
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for service in &plan.services {
        let entry = counts.entry(&service.namespace).or_default();
        entry.1 += 1;
        if service.status == ServiceStatus::Removed {
            entry.0 += 1;
        }
    }
    counts
        .into_iter()
        .filter(|(_, (removed, total))| removed * 2 > *total)
        .map(|(namespace, (removed, total))| MassPrune {
            namespace: namespace.to_string(),
            removed,
            total,
        })
        .collect()
}
