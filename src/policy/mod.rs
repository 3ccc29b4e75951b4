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
//! ModelService documents are subjects too, as resource `modelservices` of group
//! `modelship.dev`, version `v1alpha1` ([`service_object`]), so guard rails can be written
//! against the spec (`object.spec.gpu.count <= 8`) as well as against the objects.
//!
//! The module is pure: it takes file contents and JSON objects and does no I/O.

pub mod check;
pub mod document;
pub mod evaluate;
pub mod export;
pub mod library;
pub mod lists;
pub mod load;
pub mod matching;
pub mod quantity;

use std::collections::BTreeMap;

pub use document::{Action, FailurePolicy};
pub use evaluate::Violation;
pub use load::{PolicySet, SourceDocument, policy_files};
pub use matching::{Identity, Operation, SourceRef, Subject};

use crate::spec::{LoadedService, RepositoryConfig};

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
    /// A ModelService could not be turned into the JSON a policy sees.
    #[error("cannot present ModelService {name} to policies: {source}")]
    Service {
        name: String,
        source: serde_json::Error,
    },
}

/// The ModelService as a policy sees it: the document with `metadata.namespace` resolved
/// to the namespace it lands in.
pub fn service_object(
    service: &LoadedService,
    config: &RepositoryConfig,
) -> Result<serde_json::Value, Error> {
    let mut object = serde_json::to_value(&service.service).map_err(|source| Error::Service {
        name: service.name().to_string(),
        source,
    })?;
    if let Some(metadata) = object.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        metadata.insert(
            "namespace".to_string(),
            serde_json::Value::String(service.namespace(config).to_string()),
        );
    }
    Ok(object)
}

/// The source reference of a loaded service.
pub fn service_source(service: &LoadedService) -> SourceRef {
    SourceRef {
        file: service.file.clone(),
        line: service.line,
    }
}

/// Checks every service of a repository (as `modelservices`) against `policies`, each as a
/// CREATE with the given namespace labels. Compiled objects are checked by the caller
/// with [`PolicySet::evaluate`], passing the live object when a plan has one.
pub fn check_services(
    services: &[LoadedService],
    config: &RepositoryConfig,
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
    policies: &PolicySet,
) -> Result<Vec<Violation>, Error> {
    let mut violations = Vec::new();
    for service in services {
        let object = service_object(service, config)?;
        let source = service_source(service);
        let subject = Subject::new(&object)
            .with_namespace_labels(namespace_labels.get(service.namespace(config)))
            .with_source(&source);
        violations.extend(policies.evaluate(&subject));
    }
    Ok(violations)
}

#[cfg(test)]
mod tests;
