//! modelship: a GitOps reconciler for ML model serving on Kubernetes.
//!
//! ```text
//! modelship-core (pure: spec, compile, policy, plan, state, meta, quantity, rollout)
//!        ▲
//! modelship: source (Git, directories) ─▶ engine ─▶ cluster (kube: live views, Writer)
//!            cli (plan, apply, ...) and daemon (run) both drive the engine
//! modelship-sandbox (the test double; optional, feature `sandbox`)
//! ```
//!
//! The core's modules are re-exported here, so `modelship::plan` and `crate::plan` name
//! the same thing everywhere.

pub use modelship_core::{
    budget, compile, kinds, meta, ownership, plan, policy, quantity, rollout, spec, state,
};
#[cfg(feature = "sandbox")]
pub use modelship_sandbox as sandbox;

pub mod backoff;
pub mod cli;
pub mod cluster;
pub mod daemon;
pub mod engine;
pub mod forge;
pub mod prometheus;
pub mod source;
pub mod time;
