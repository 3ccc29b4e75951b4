//! An embedded Kubernetes API server for tests, demos and `--sandbox`.
pub mod merge;
