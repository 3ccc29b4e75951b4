//! The Kubernetes edge: connecting, resolving kinds, reading live state, applying a plan
//! with server-side apply, pruning, and waiting for Deployments to become healthy.
//!
//! ```text
//! connect ──> Client ──> Kinds (built-ins known, CRDs by discovery)
//!                 │
//!   read_live ────┤  one cluster-wide LIST per kind, by label ──> plan::LiveSet
//!                 │  (read_live_in: one per kind and namespace of --namespaces)
//!   read_namespace_labels  one LIST of Namespaces (only when policies are loaded;
//!                          read_namespace_labels_in: one GET per namespace)
//!   Writer ───────┤  SSA of one object (manager modelship, force), delete with a UID
//!                 │  precondition, namespace creation: the engine decides, this writes
//!   wait_healthy ─┘  one LIST of Deployments per namespace per poll
//! ```
//!
//! Every request goes through [`retry::retry`]: 429, 409, 5xx and connection errors are
//! retried with exponential backoff and jitter, a bounded number of times.

mod connect;
mod error;
mod health;
mod kinds;
mod live;
mod previews;
pub mod retry;
mod scope;
mod writer;

pub use connect::{ConnectOptions, connect};
pub use error::{Error, Result};
pub use health::{DeploymentHealth, HealthOptions, wait_healthy};
pub use kinds::{Kinds, Resolved, api_resource};
pub use live::{
    find_named, read_live, read_live_in, read_namespace_labels, read_namespace_labels_in,
    read_preview_live,
};
pub use previews::{
    PreviewNamespace, existing_namespaces, read_config_map, read_preview_namespaces,
};
pub use retry::RetryPolicy;
pub use scope::{Namespaces, NamespacesError};
pub use writer::{WriteMode, Writer};
