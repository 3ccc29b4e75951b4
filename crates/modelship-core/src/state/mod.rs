//! The two sides every plan compares: the desired state (what a repository compiles to)
//! and the live state (what the cluster holds of ours). Both the policies and the plan
//! read them; neither depends on the other through them.

mod desired;
mod live;

use serde_json::Value;

pub use desired::desired_state;
pub use live::{LiveSet, LiveState};

/// The compiled objects of one valid service.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredService {
    pub namespace: String,
    pub name: String,
    /// Repository file the service was written in.
    pub file: String,
    /// Objects as JSON, each with `apiVersion`, `kind` and `metadata`.
    pub objects: Vec<Value>,
}

/// What the repository asks for, and what it cannot vouch for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredState {
    /// Valid services with their compiled objects.
    pub services: Vec<DesiredService>,
    /// (namespace, name) of services whose spec failed: their live objects are blocked.
    pub invalid: Vec<(String, String)>,
    /// True when the repository has no error at all: only then may services be pruned.
    pub repository_valid: bool,
}
