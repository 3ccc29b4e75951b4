//! Preparing a snapshot: load and validate every spec, compile every valid service, load
//! the repository's policies (`policies/**`) and any extra policy files. Pure: the caller
//! hands in the files, so a directory, a Git commit and a pull request's head are
//! prepared alike.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::compile::{self, Source};
use crate::meta::ServiceId;
use crate::plan::{self, ServicePlan};
use crate::policy::{PolicySet, policy_files};
use crate::spec::{self, Diagnostic, Repository, Severity};
use crate::state::{DesiredService, DesiredState};

/// Why a service cannot be reconciled at this revision. Its live objects stay untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// Its spec failed to load or validate.
    InvalidSpec,
    /// Its spec is valid but could not be compiled.
    Compile,
    /// A policy denies its spec or one of its objects.
    PolicyDenied,
    /// A policy file of the repository has errors.
    PoliciesBroken,
}

impl Cause {
    /// The label of this cause in metrics.
    pub fn metric_label(self) -> &'static str {
        match self {
            Cause::InvalidSpec => "invalid_spec",
            Cause::Compile => "compile",
            Cause::PolicyDenied => "policy_denied",
            Cause::PoliciesBroken => "policies_broken",
        }
    }

    /// The cause of a plan's blocked service, when it is blocked.
    pub fn of(service: &ServicePlan) -> Option<Cause> {
        match service.status {
            plan::ServiceStatus::Blocked(plan::BlockReason::InvalidSpec) => {
                Some(Cause::InvalidSpec)
            }
            plan::ServiceStatus::Blocked(plan::BlockReason::PolicyDenied) => {
                Some(Cause::PolicyDenied)
            }
            plan::ServiceStatus::Blocked(plan::BlockReason::PoliciesBroken) => {
                Some(Cause::PoliciesBroken)
            }
            _ => None,
        }
    }
}

/// One service that cannot be reconciled, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub cause: Cause,
    pub message: String,
}

/// A snapshot loaded, validated, compiled, with its policies.
#[derive(Debug)]
pub struct Prepared {
    pub repository: Repository,
    /// The compiled services, and the services that are invalid.
    pub desired: DesiredState,
    /// The spec hash of each compiled service.
    pub spec_hashes: BTreeMap<ServiceId, String>,
    /// Services that failed to load, validate or compile, with what went wrong.
    pub errors: BTreeMap<ServiceId, ServiceError>,
    pub policies: PolicySet,
    /// Problems of the policy files.
    pub policy_diagnostics: Vec<Diagnostic>,
    /// Services that failed to compile, as `file: service ns/name: error` lines.
    pub compile_errors: Vec<String>,
    /// After [`Prepared::compact`]: the objects of each service of `desired`, in the same
    /// order, as compact JSON text (`desired`'s object lists are empty then).
    compact: Option<Vec<Vec<Box<[u8]>>>>,
    /// Where the files came from (the `modelship.dev/source` annotation).
    source: Source,
    /// The revision: the commit, or `local-<content hash>` outside git.
    revision: String,
}

impl Prepared {
    /// True when a policy file has an error: nothing may be written or pruned then.
    pub fn policies_broken(&self) -> bool {
        self.policy_diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// The compiled objects of a valid service (parsed again when compacted).
    pub fn service(&self, id: &ServiceId) -> Option<Cow<'_, DesiredService>> {
        self.service_at(self.desired.position(&id.0, &id.1)?)
    }

    fn service_at(&self, index: usize) -> Option<Cow<'_, DesiredService>> {
        let service = self.desired.services.get(index)?;
        match &self.compact {
            None => Some(Cow::Borrowed(service)),
            Some(compact) => Some(Cow::Owned(DesiredService {
                objects: compact
                    .get(index)?
                    .iter()
                    .filter_map(|json| serde_json::from_slice(json).ok())
                    .collect(),
                ..service.clone()
            })),
        }
    }

    /// Where the prepared files came from, as the compiler annotated the objects.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The revision of the files: the commit of a Git snapshot, else `local-` and a hash
    /// of the content (what the daemon names a directory's revision).
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// Replaces the desired objects of a valid service (the rollout engine's overlay);
    /// `false` when the service is not one of the prepared valid services.
    pub fn set_service_objects(&mut self, id: &ServiceId, objects: Vec<serde_json::Value>) -> bool {
        let Some(index) = self.desired.position(&id.0, &id.1) else {
            return false;
        };
        match self
            .compact
            .as_mut()
            .and_then(|compact| compact.get_mut(index))
        {
            Some(compact) => {
                *compact = objects
                    .iter()
                    // Serializing a Value cannot fail.
                    .map(|o| serde_json::to_vec(o).unwrap_or_default().into_boxed_slice())
                    .collect();
            }
            None => self.desired.services[index].objects = objects,
        }
        true
    }

    /// The whole desired state, parsed again when compacted.
    pub fn desired(&self) -> Cow<'_, DesiredState> {
        if self.compact.is_none() {
            return Cow::Borrowed(&self.desired);
        }
        let services = (0..self.desired.services.len())
            .filter_map(|index| self.service_at(index).map(Cow::into_owned))
            .collect();
        Cow::Owned(DesiredState {
            services,
            ..self.desired.clone()
        })
    }

    /// Keeps the compiled objects as compact JSON text, parsed again one service at a
    /// time when asked for: what a long-running caller holds between revisions (a parsed
    /// `Value` costs several times its text).
    pub fn compact(&mut self) {
        if self.compact.is_some() {
            return;
        }
        let compact = self
            .desired
            .services
            .iter_mut()
            .map(|service| {
                std::mem::take(&mut service.objects)
                    .iter()
                    // Serializing a Value cannot fail.
                    .map(|object| {
                        serde_json::to_vec(object)
                            .unwrap_or_default()
                            .into_boxed_slice()
                    })
                    .collect()
            })
            .collect();
        self.compact = Some(compact);
    }

    /// Every error diagnostic of the specs and policies, as `file:line:col: ...` lines.
    pub fn error_lines(&self) -> Vec<String> {
        self.repository
            .diagnostics
            .iter()
            .chain(&self.policy_diagnostics)
            .filter(|d| d.severity == Severity::Error)
            .map(ToString::to_string)
            .chain(self.compile_errors.iter().cloned())
            .collect()
    }
}

/// Prepares the snapshot `files` (paths relative to the repository root). `extra_policies`
/// are policy files from outside the repository (`--policies DIR`), keyed by a path that
/// names them in diagnostics. `source` says where the files come from, for the
/// `modelship.dev/source` annotation.
pub fn prepare(
    files: &BTreeMap<String, Vec<u8>>,
    extra_policies: &BTreeMap<String, Vec<u8>>,
    source: &Source,
) -> Prepared {
    let repository = spec::load(files);
    let compiled = compile::compile_repository(&repository, source);
    let desired = plan::desired_state(&repository, &compiled);
    let spec_hashes = compiled
        .services
        .iter()
        .map(|s| ((s.namespace.clone(), s.name.clone()), s.spec_hash.clone()))
        .collect();
    let mut errors = BTreeMap::new();
    if !repository.invalid.is_empty() {
        let message = invalid_message(&repository);
        for (namespace, name) in &repository.invalid {
            errors.insert(
                (namespace.clone(), name.clone()),
                ServiceError {
                    cause: Cause::InvalidSpec,
                    message: message.clone(),
                },
            );
        }
    }
    let mut compile_errors = Vec::new();
    for failure in &compiled.errors {
        let line = format!(
            "{}: service {}/{}: {}",
            failure.file, failure.namespace, failure.name, failure.error
        );
        errors.insert(
            (failure.namespace.clone(), failure.name.clone()),
            ServiceError {
                cause: Cause::Compile,
                message: line.clone(),
            },
        );
        compile_errors.push(line);
    }
    let mut all_policies = policy_files(files);
    all_policies.extend(extra_policies.iter().map(|(k, v)| (k.clone(), v.clone())));
    let (policies, policy_diagnostics) = if all_policies.is_empty() {
        (PolicySet::default(), Vec::new())
    } else {
        PolicySet::load(&all_policies)
    };
    Prepared {
        repository,
        desired,
        spec_hashes,
        errors,
        policies,
        policy_diagnostics,
        compile_errors,
        compact: None,
        source: source.clone(),
        revision: source
            .commit
            .clone()
            .unwrap_or_else(|| crate::source::local::content_revision(files)),
    }
}

/// What is wrong with an invalid service: the error diagnostics of the repository.
fn invalid_message(repository: &Repository) -> String {
    let errors: Vec<String> = repository
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    format!("invalid spec: {}", errors.join("; "))
}
