//! The repository format: `ModelService` and `RepositoryConfig` documents, loading a tree
//! of files into them, and validating every rule of the spec with located diagnostics.
//!
//! ```text
//! files (path, bytes) --load--> Repository { config, services, diagnostics, invalid }
//!
//! load:  bytes --parse--> node tree (line:col) --de--> types --validate--> findings
//!                              |                    |                        |
//!                              +--------------------+---- Diagnostic <-------+ (located
//!                                                                              via the tree)
//! ```
//!
//! - `parse`: YAML streams into located [`node::Node`] trees (aliases bounded, merge keys).
//! - `de`: a serde deserializer over a tree that reports every problem with its field path.
//! - `validate`: the semantic rules, on typed values, as [`validate::Finding`]s.
//! - `load`: the repository walk: config, service globs, headers, duplicates, and the
//!   service id of every failed document so that its live objects stay untouched.
//!
//! Nothing here touches the filesystem: callers hand in file contents (see
//! `crate::cli` for the directory walk), so the same code checks a local directory, a
//! git tree and untrusted pull-request content. No input makes it panic.

pub mod de;
pub mod diagnostic;
pub mod load;
pub mod node;
pub mod parse;
mod recover;
pub mod tenants;
pub mod types;
pub mod units;
pub mod validate;

pub use diagnostic::{Diagnostic, Severity};
pub use load::{CONFIG_FILE, LoadOptions, load, load_with};
pub use node::FieldPath;
pub use tenants::{Owner, Tenancy, Tenant};
pub use types::*;
pub use units::{Duration, Quantity, UnitError};

use crate::service_id::{InvalidServiceId, ServiceId};

/// A ModelService together with where it was written, and the service it names.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedService {
    pub service: ModelService,
    /// Path of the file relative to the repository root, with `/` separators.
    pub file: String,
    /// 1-based line of the document's first line in that file.
    pub line: usize,
    /// The namespace (`metadata.namespace`, else the repository's default) and name, read
    /// once when the service is built: a loaded service always names a valid service.
    id: ServiceId,
    /// Where `metadata.name` is written (the document's line, column 0, until the loader
    /// says).
    pub(crate) name_at: node::Mark,
}

impl LoadedService {
    /// A service as written in `file` at `line`; its namespace defaults to `config`'s.
    /// Fails when the namespace or name cannot name a service (validation reports such a
    /// spec, so the loader never builds one).
    pub fn new(
        service: ModelService,
        file: impl Into<String>,
        line: usize,
        config: &RepositoryConfig,
    ) -> Result<Self, InvalidServiceId> {
        let namespace = service
            .metadata
            .namespace
            .as_deref()
            .unwrap_or(&config.spec.default_namespace);
        let id = ServiceId::new(namespace, service.metadata.name.as_str())?;
        Ok(LoadedService {
            service,
            file: file.into(),
            line,
            id,
            name_at: node::Mark { line, column: 0 },
        })
    }

    /// The service: its namespace and name.
    pub fn id(&self) -> &ServiceId {
        &self.id
    }

    /// The namespace the service lands in.
    pub fn namespace(&self) -> &str {
        self.id.namespace()
    }

    /// The service name (`metadata.name`).
    pub fn name(&self) -> &str {
        self.id.name()
    }
}

/// Everything read from one repository snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Repository {
    pub config: RepositoryConfig,
    /// Valid services, sorted by id (namespace, then name).
    pub services: Vec<LoadedService>,
    /// Every problem found, sorted by (file, line, column). Services with an error are not
    /// in `services`; `invalid` names them so that nothing of theirs is ever pruned.
    pub diagnostics: Vec<Diagnostic>,
    /// The services of documents that failed to load or validate, sorted. Their live
    /// objects must be left untouched.
    pub invalid: Vec<ServiceId>,
    /// The governing settings ([`tenants::GOVERNING`]) the files' modelship.yaml changes
    /// but that were taken from the followed branch instead ([`LoadOptions::governing`]):
    /// they take effect when merged.
    pub deferred_settings: Vec<&'static str>,
}

impl Repository {
    /// True when no diagnostic is an error.
    pub fn is_valid(&self) -> bool {
        !self
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}
