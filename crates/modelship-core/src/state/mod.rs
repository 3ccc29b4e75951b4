//! The two sides every plan compares: the desired state (what a repository compiles to)
//! and the live state (what the cluster holds of ours). Both the policies and the plan
//! read them; neither depends on the other through them.

mod desired;
mod live;

use serde_json::Value;

use crate::service_id::ServiceId;

pub use desired::{assemble, desired_service, desired_state};
pub use live::{LiveSet, LiveState};

/// The compiled objects of one valid service.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredService {
    pub id: ServiceId,
    /// Repository file the service was written in.
    pub file: String,
    /// Objects as JSON, each with `apiVersion`, `kind` and `metadata`.
    pub objects: Vec<Value>,
}

/// What the repository asks for, and what it cannot vouch for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredState {
    /// Valid services with their compiled objects, sorted by id.
    pub services: Vec<DesiredService>,
    /// Services whose spec failed, sorted: their live objects are blocked.
    pub invalid: Vec<ServiceId>,
    /// True when the repository has no error at all: only then may services be pruned.
    pub repository_valid: bool,
}

impl DesiredState {
    /// The index of a valid service in `services` (sorted by id).
    pub fn position(&self, id: &ServiceId) -> Option<usize> {
        self.services.binary_search_by(|s| s.id.cmp(id)).ok()
    }

    /// A valid service by id.
    pub fn service(&self, id: &ServiceId) -> Option<&DesiredService> {
        self.services.get(self.position(id)?)
    }
}
