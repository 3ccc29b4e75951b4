//! modelship: a GitOps reconciler for ML model serving on Kubernetes.
//!
//! The core (`spec`, `compile`) is pure: no network, no clock, no filesystem beyond what is
//! handed in. The edges (`sandbox`, `cli`) do I/O and stay thin.

pub mod cli;
pub mod cluster;
pub mod compile;
pub mod daemon;
pub mod metrics;
pub mod plan;
pub mod policy;
pub mod rollout;
pub mod sandbox;
pub mod source;
pub mod spec;
