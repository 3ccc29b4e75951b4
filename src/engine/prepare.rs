//! Preparing a snapshot: load and validate every spec, compile every valid service, load
//! the repository's policies (`policies/**`) and any extra policy files. Pure: the caller
//! hands in the files, so a directory, a Git commit and a pull request's head are
//! prepared alike.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::budget;
use crate::cluster::Namespaces;
use crate::compile::{self, Source};
use crate::meta::ServiceId;
use crate::plan::BlockReason;
use crate::policy::{PolicySet, policy_files};
use crate::source::RevisionId;
use crate::spec::{self, Diagnostic, LoadOptions, LoadedService, Repository, Severity};
use crate::state::{DesiredService, DesiredState, assemble, desired_service};

/// One service that cannot be reconciled, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// [`BlockReason::InvalidSpec`] or [`BlockReason::Compile`].
    pub cause: BlockReason,
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
    /// The index in `repository.services` of each compiled service.
    origins: BTreeMap<ServiceId, usize>,
    /// Services that failed to load, validate or compile, with what went wrong.
    pub errors: BTreeMap<ServiceId, ServiceError>,
    pub policies: PolicySet,
    /// Problems of the policy files.
    pub policy_diagnostics: Vec<Diagnostic>,
    /// The policy files a pull request's head adds, edits or removes, when its plan is
    /// judged by the followed branch's policies ([`Prepared::judge_by`]): they take effect
    /// when merged.
    pub deferred_policies: Vec<String>,
    /// Services that failed to compile, as `file: service ns/name: error` lines.
    pub compile_errors: Vec<String>,
    /// Where the source annotation of compiled objects points.
    source: Source,
    /// With [`Keep::Specs`]: for each service of `desired`, in
    /// the same order, its index in `repository.services`; its objects are compiled again
    /// when asked for (`desired`'s object lists are empty then).
    specs: Option<Vec<usize>>,
    /// The revision: the commit, or `local-<content hash>` outside git.
    revision: RevisionId,
}

/// What a prepared snapshot keeps of the objects it compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Every service's objects as JSON: what a one-shot command plans and applies.
    Objects,
    /// The specs only: each service is compiled again when asked for (compiling is pure,
    /// so the objects are the same). What a long-running caller holds between revisions:
    /// a repository's compiled objects cost many times its specs.
    Specs,
}

impl Prepared {
    /// True when a policy file has an error: nothing may be written or pruned then.
    pub fn policies_broken(&self) -> bool {
        self.policy_diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// Judges this revision (a pull request's head) by the policies of the followed
    /// branch's files `governing` (`policies/**`) and `extra_policies` (`--policies DIR`)
    /// instead of its own: a change never decides the rules it is judged by. The head's
    /// policy files that differ from the branch's are kept in
    /// [`Prepared::deferred_policies`], for the comment to say they take effect when merged.
    pub fn judge_by(
        &mut self,
        governing: &BTreeMap<String, Vec<u8>>,
        extra_policies: &BTreeMap<String, Vec<u8>>,
        head: &BTreeMap<String, Vec<u8>>,
    ) {
        let branch = policy_files(governing);
        let own = policy_files(head);
        let paths: BTreeSet<&String> = branch.keys().chain(own.keys()).collect();
        self.deferred_policies = paths
            .into_iter()
            .filter(|path| branch.get(*path) != own.get(*path))
            .cloned()
            .collect();
        let mut all = branch;
        all.extend(extra_policies.iter().map(|(k, v)| (k.clone(), v.clone())));
        let (policies, diagnostics) = if all.is_empty() {
            (PolicySet::default(), Vec::new())
        } else {
            PolicySet::load(&all)
        };
        self.policies = policies;
        self.policy_diagnostics = diagnostics;
    }

    /// The loaded spec of a compiled service.
    pub fn loaded(&self, id: &ServiceId) -> Option<&LoadedService> {
        self.repository.services.get(*self.origins.get(id)?)
    }

    /// The compiled objects of a valid service (compiled again when only specs are kept).
    pub fn service(&self, id: &ServiceId) -> Option<Cow<'_, DesiredService>> {
        self.service_at(self.desired.position(id)?)
    }

    fn service_at(&self, index: usize) -> Option<Cow<'_, DesiredService>> {
        let service = self.desired.services.get(index)?;
        let Some(specs) = &self.specs else {
            return Some(Cow::Borrowed(service));
        };
        if !service.objects.is_empty() {
            // Objects set by `set_service_objects` (a service always has some).
            return Some(Cow::Borrowed(service));
        }
        let loaded = self.repository.services.get(*specs.get(index)?)?;
        // Compiling is pure: it succeeded for this spec when the snapshot was prepared.
        let objects = compile::compile_loaded(loaded, &self.repository, &self.source).ok()?;
        desired_service(&objects).ok().map(Cow::Owned)
    }

    /// Where the prepared files came from, as the compiler annotated the objects.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The revision of the files: the commit of a Git snapshot, else `local-` and a hash
    /// of the content (what the daemon names a directory's revision).
    pub fn revision(&self) -> &RevisionId {
        &self.revision
    }

    /// Replaces the desired objects of a valid service (the rollout engine's overlay);
    /// `false` when the service is not one of the prepared valid services. When only
    /// specs are kept, the objects given are held for that service and returned instead
    /// of compiling it again.
    pub fn set_service_objects(&mut self, id: &ServiceId, objects: Vec<serde_json::Value>) -> bool {
        let Some(index) = self.desired.position(id) else {
            return false;
        };
        self.desired.services[index].objects = objects;
        true
    }

    /// The whole desired state (compiled again when only specs are kept).
    pub fn desired(&self) -> Cow<'_, DesiredState> {
        if self.specs.is_none() {
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

    /// Blocks the services over their tenant's GPU budget (`budget`), counting those with
    /// live objects (`live`) first, then the rest in path order: each becomes an invalid
    /// spec with its error, whose live objects are left untouched. Returns those errors
    /// (also added to the repository's diagnostics). Running it again changes nothing.
    pub fn enforce_budgets(&mut self, live: &BTreeSet<ServiceId>) -> Vec<Diagnostic> {
        let over = budget::enforce(&mut self.repository, live);
        if over.is_empty() {
            return Vec::new();
        }
        let blocked: BTreeSet<&ServiceId> = over.iter().map(|(id, _)| id).collect();
        self.desired.services.retain(|s| !blocked.contains(&s.id));
        self.desired
            .invalid
            .extend(blocked.iter().map(|id| (*id).clone()));
        self.desired.invalid.sort();
        self.desired.invalid.dedup();
        self.desired.repository_valid = false;
        for id in &blocked {
            self.spec_hashes.remove(*id);
        }
        // The specs left moved up in `repository.services`: index them again.
        let position: BTreeMap<&ServiceId, usize> = self
            .repository
            .services
            .iter()
            .enumerate()
            .map(|(index, s)| (s.id(), index))
            .collect();
        self.origins = self
            .desired
            .services
            .iter()
            .filter_map(|s| Some((s.id.clone(), *position.get(&s.id)?)))
            .collect();
        if self.specs.is_some() {
            self.specs = Some(
                self.desired
                    .services
                    .iter()
                    .filter_map(|s| position.get(&s.id).copied())
                    .collect(),
            );
        }
        // Every invalid spec's message lists the repository's errors: now with these.
        let message = invalid_message(&self.repository);
        for id in &self.repository.invalid {
            self.errors.insert(
                id.clone(),
                ServiceError {
                    cause: BlockReason::InvalidSpec,
                    message: message.clone(),
                },
            );
        }
        over.into_iter().map(|(_, d)| d).collect()
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

impl Prepared {
    /// Refuses every valid service whose namespace `scope` leaves out (`--namespaces`): it
    /// becomes invalid, with an error at its spec saying why, so nothing of it is read,
    /// written or pruned and no request meets a 403 there. Like any invalid service, it
    /// keeps the repository from pruning until it is moved or the scope widened.
    pub fn confine(&mut self, scope: &Namespaces) {
        let outside: Vec<ServiceId> = self
            .desired
            .services
            .iter()
            .map(|s| s.id.clone())
            .filter(|id| !scope.contains(id.namespace()))
            .collect();
        for id in outside {
            let Some(index) = self.desired.position(&id) else {
                continue;
            };
            self.desired.services.remove(index);
            if let Some(specs) = &mut self.specs {
                specs.remove(index);
            }
            self.spec_hashes.remove(&id);
            let loaded = self
                .origins
                .remove(&id)
                .and_then(|origin| self.repository.services.get(origin));
            let diagnostic = Diagnostic {
                severity: Severity::Error,
                file: loaded.map(|l| l.file.clone()).unwrap_or_default(),
                line: loaded.map_or(0, |l| l.line),
                column: 0,
                field: "metadata.namespace".to_string(),
                message: format!(
                    "service {id}: namespace `{}` is not one of --namespaces ({scope}): modelship may not read or write there",
                    id.namespace()
                ),
                hint: Some(
                    "add the namespace to --namespaces (with a RoleBinding of the modelship ClusterRole in it), or move the service".to_string(),
                ),
            };
            self.errors.insert(
                id.clone(),
                ServiceError {
                    cause: BlockReason::InvalidSpec,
                    message: diagnostic.to_string(),
                },
            );
            self.repository.diagnostics.push(diagnostic);
            self.desired.invalid.push(id);
            self.desired.repository_valid = false;
        }
        self.desired.invalid.sort();
        self.desired.invalid.dedup();
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
    prepare_keeping(files, extra_policies, source, Keep::Objects)
}

/// [`prepare`], keeping what `keep` says. With [`Keep::Specs`] the services are compiled
/// one at a time and their objects dropped at once, so no more than one service's objects
/// exist at any moment.
pub fn prepare_keeping(
    files: &BTreeMap<String, Vec<u8>>,
    extra_policies: &BTreeMap<String, Vec<u8>>,
    source: &Source,
    keep: Keep,
) -> Prepared {
    prepare_with(files, extra_policies, source, keep, LoadOptions::default())
}

/// [`prepare_keeping`], loading the specs as `load` says: the namespace modelship runs in,
/// and for a pull request's head the followed branch's configuration, whose governing
/// settings (tenants, protected namespaces, previews, github, prometheus, analysis) apply.
/// GPU budgets need the live services: [`Prepared::enforce_budgets`] (a
/// [`super::Revision`] enforces them when opened).
pub fn prepare_with(
    files: &BTreeMap<String, Vec<u8>>,
    extra_policies: &BTreeMap<String, Vec<u8>>,
    source: &Source,
    keep: Keep,
    load: LoadOptions<'_>,
) -> Prepared {
    let repository = spec::load_with(files, load);
    let mut services = Vec::new();
    let mut spec_hashes = BTreeMap::new();
    let mut origin_of = BTreeMap::new();
    let mut failures = Vec::new();
    let mut failed = Vec::new();
    for (index, loaded) in repository.services.iter().enumerate() {
        let compiled = match compile::compile_loaded(loaded, &repository, source) {
            Ok(compiled) => compiled,
            Err(failure) => {
                failed.push(failure.id.clone());
                failures.push(*failure);
                continue;
            }
        };
        match desired_service(&compiled) {
            Ok(mut service) => {
                if keep == Keep::Specs {
                    service.objects = Vec::new();
                }
                let id = compiled.id.clone();
                origin_of.insert(id.clone(), index);
                spec_hashes.insert(id, compiled.spec_hash);
                services.push((service, index));
            }
            // Objects that do not serialize: a compile failure like any other.
            Err(error) => {
                failed.push(compiled.id.clone());
                failures.push(compile::ServiceError {
                    id: compiled.id,
                    file: compiled.file,
                    error,
                });
            }
        }
    }
    failures.sort_by(|a, b| a.id.cmp(&b.id));
    // In the order of the desired state, so `specs[i]` belongs to `desired.services[i]`.
    services.sort_by(|(a, _), (b, _)| a.id.cmp(&b.id));
    let (services, origins): (Vec<DesiredService>, Vec<usize>) = services.into_iter().unzip();
    let specs = (keep == Keep::Specs).then_some(origins);
    let desired = assemble(&repository, services, failed);
    let mut errors = BTreeMap::new();
    if !repository.invalid.is_empty() {
        let message = invalid_message(&repository);
        for id in &repository.invalid {
            errors.insert(
                id.clone(),
                ServiceError {
                    cause: BlockReason::InvalidSpec,
                    message: message.clone(),
                },
            );
        }
    }
    let mut compile_errors = Vec::new();
    for failure in &failures {
        let line = format!(
            "{}: service {}: {}",
            failure.file, failure.id, failure.error
        );
        errors.insert(
            failure.id.clone(),
            ServiceError {
                cause: BlockReason::Compile,
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
        origins: origin_of,
        errors,
        policies,
        policy_diagnostics,
        deferred_policies: Vec::new(),
        compile_errors,
        source: source.clone(),
        specs,
        revision: match &source.commit {
            Some(commit) => RevisionId::Commit(commit.clone()),
            None => crate::source::local::content_revision(files),
        },
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
