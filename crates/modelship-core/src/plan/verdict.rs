//! Policy verdicts in a plan: every violation is attached to the service it came from, and
//! a service with a Deny violation is blocked.
//!
//! ```text
//! Plan (from plan::plan) + violations by service id --enforce--> Plan
//!   Deny  -> status Blocked(PolicyDenied); objects that would be created, updated or
//!            deleted become Blocked (their diffs stay, to show what was refused)
//!   Warn  -> shown, nothing blocked
//!   Audit -> carried in the plan (JSON output), nothing blocked
//! ```
//!
//! Pure: the violations are computed by [`crate::policy::check_desired_by_service`].

use super::{Action, BlockReason, Plan, ServicePlan, ServiceStatus, Summary};
pub use crate::policy::ServiceViolations;
use crate::policy::Violation;

/// Attaches each service's violations to its plan and blocks the services a policy denies.
///
/// A denied service that is already blocked for another reason keeps that reason. A
/// violation of a service the plan does not hold (which the callers never produce) still
/// appears, as a service of its own with no objects, so a Deny can never go unseen.
pub fn enforce(plan: &mut Plan, violations: ServiceViolations) {
    for (id, found) in violations {
        if found.is_empty() {
            continue;
        }
        let position = plan.services.iter().position(|s| s.id == id);
        let service = match position {
            Some(index) => &mut plan.services[index],
            None => {
                plan.services.push(ServicePlan {
                    id,
                    file: None,
                    status: ServiceStatus::Present,
                    objects: Vec::new(),
                    summary: Summary::default(),
                    violations: Vec::new(),
                });
                // Just pushed: the vector is not empty.
                let last = plan.services.len() - 1;
                &mut plan.services[last]
            }
        };
        enforce_service(service, found);
    }
    plan.services.sort_by(|a, b| a.id.cmp(&b.id));
}

/// [`enforce`] for one service's plan and its violations: attaches them, and blocks the
/// service when one denies (unless it is already blocked for another reason).
pub fn enforce_service(service: &mut ServicePlan, found: Vec<Violation>) {
    service.violations.extend(found);
    if service.status == ServiceStatus::Present && service.violations.iter().any(Violation::is_deny)
    {
        block(service, BlockReason::PolicyDenied);
    }
}

/// Blocks a service for `reason`: nothing of it is written or deleted (its diffs stay, to
/// show what was refused).
pub fn block(service: &mut ServicePlan, reason: BlockReason) {
    service.status = ServiceStatus::Blocked(reason);
    for object in &mut service.objects {
        if matches!(
            object.action,
            Action::Create | Action::Update | Action::Delete
        ) {
            object.action = Action::Blocked;
        }
    }
}

impl Plan {
    /// The services a policy denies.
    pub fn denied(&self) -> impl Iterator<Item = &ServicePlan> {
        self.services
            .iter()
            .filter(|s| s.status == ServiceStatus::Blocked(BlockReason::PolicyDenied))
    }

    /// Every violation of every service, in service order.
    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.services.iter().flat_map(|s| &s.violations)
    }
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
