//! An embedded Kubernetes API server for tests, demos and `--sandbox`.

pub mod counters;
pub mod discovery;
pub mod faults;
pub mod merge;
mod merge_shim;
pub mod ops;
pub mod patch;
pub mod path;
pub mod registry;
pub mod rng;
pub mod selector;
pub mod services;
pub mod status;
pub mod store;
