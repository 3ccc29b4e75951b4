//! Policies: `admissionregistration.k8s.io/v1` ValidatingAdmissionPolicy documents (and
//! their bindings) with CEL rules, checked on every ModelService and every compiled object
//! before anything is applied. The same files are enforced at admission in a cluster
//! (`modelship policies export`), so a rule is written once.
//!
//! ```text
//! policy files (path, bytes) --PolicySet::load--> PolicySet + located Diagnostics
//!                                                   |
//! Subject { object, oldObject, namespace labels, spec file:line }
//!                               --PolicySet::evaluate--> Vec<Violation> (Deny | Warn | Audit)
//! ```
//!
//! Callers: `modelship validate` uses [`check_repository`] (offline: no live objects,
//! namespace labels unknown); `plan` and `apply` use [`check_desired_by_service`] with
//! the live state and the namespaces' live labels, so the live object is `oldObject`, and
//! `plan::enforce` blocks each service a Deny violation names; `policies export` uses
//! [`export::export`].
//!
//! ModelService documents are subjects too, as resource `modelservices` of group
//! `modelship.dev`, version `v1alpha1` ([`service_object`]), so guard rails can be written
//! against the spec (`object.spec.gpu.count <= 8`) as well as against the objects.
//!
//! The module is pure: it takes file contents and JSON objects and does no I/O.

pub mod check;
pub mod cost;
pub mod document;
pub mod evaluate;
pub mod export;
pub mod library;
pub mod lists;
pub mod load;
pub mod matching;
pub mod quantity;
pub mod repository;
pub mod scope;

pub use document::{Action, FailurePolicy};
pub use evaluate::Violation;
pub use load::{PolicySet, SourceDocument, policy_files};
pub use matching::{Identity, Operation, SourceRef, Subject};
pub use repository::{
    ClusterView, ServiceViolations, check_desired, check_desired_by_service, check_desired_of,
    check_repository, check_service, service_object,
};

/// Errors of the policy module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document could not be written as YAML for export.
    #[error("cannot write {what} as YAML: {message}")]
    Serialize {
        /// The document, e.g. `ValidatingAdmissionPolicy gpu-budget`.
        what: String,
        message: String,
    },
    /// The instance to scope exported bindings to is not a label value.
    #[error("cannot scope the exported policies to instance `{instance}`: {reason}")]
    Instance {
        instance: String,
        reason: &'static str,
    },
    /// A ModelService could not be turned into the JSON a policy sees.
    #[error("cannot present ModelService {name} to policies: {source}")]
    Service {
        name: String,
        source: serde_json::Error,
    },
    /// A compiled object could not be turned into the JSON a policy sees.
    #[error("cannot present a compiled object to policies: {0}")]
    Object(#[from] crate::compile::CompileError),
}

impl Error {
    /// The label of this error in metrics: every cause counts as `policy`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Serialize { .. }
            | Error::Instance { .. }
            | Error::Service { .. }
            | Error::Object(_) => "policy",
        }
    }
}

#[cfg(test)]
mod tests;
