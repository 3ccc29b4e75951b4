//! Loading a repository snapshot: file contents in, [`Repository`] out.
//!
//! ```text
//! files ──> modelship.yaml ──parse──> RepositoryConfig (defaults without the file)
//!   │                                      │ spec.services globs
//!   └──> service files ──parse──> documents ──header──> de ──> validate ──> services
//!                                     │ every problem, located     + tenants  duplicates
//!                                     └──> diagnostics, invalid service ids
//! ```
//!
//! A document that fails anywhere is left out of `services`; when its name can still be
//! read from the node tree (even a tree cut short by a syntax error) it is listed in
//! `invalid`, so nothing it owns is ever pruned. When `modelship.yaml` itself has errors,
//! every service is listed as invalid: compiling them against a half-read configuration
//! could change objects it should not.
//!
//! Besides the rules of `validate`, each spec is checked against its tenant
//! (`tenants::Boundaries`: the file owned, the namespace allowed, never modelship's own
//! namespace). For a pull request's head, [`LoadOptions::governing`] is the followed
//! branch's configuration: its tenants, protected namespaces, previews, github,
//! prometheus and analysis replace the head's. GPU budgets need the live services and are
//! counted after loading (`crate::budget`).

use std::collections::{BTreeMap, BTreeSet};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::de::{self, Problem, closest};
use super::diagnostic::{Diagnostic, Severity};
use super::node::{FieldPath, Mark, Node};
use super::parse::{self, Document};
use super::recover;
use super::tenants::{self, Boundaries, DEFAULT_OWN_NAMESPACE};
use super::types::{API_VERSION, ModelService, RepositoryConfig};
use super::validate::{self, Finding, Violation};
use super::{LoadedService, Repository};
use crate::service_id::ServiceId;

/// The repository configuration file, at the root.
pub const CONFIG_FILE: &str = "modelship.yaml";

const SERVICE_KIND: &str = "ModelService";
const CONFIG_KIND: &str = "RepositoryConfig";

/// What a load takes from outside the files.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions<'a> {
    /// The namespace modelship runs in: never a target. [`DEFAULT_OWN_NAMESPACE`] unless
    /// the daemon knows its own.
    pub own_namespace: &'a str,
    /// The followed branch's configuration when the files are a change under review (a
    /// pull request's head): its governing settings ([`tenants::GOVERNING`]) replace the
    /// files'. The files' own are still validated, and those they change are listed in
    /// [`Repository::deferred_settings`].
    pub governing: Option<&'a RepositoryConfig>,
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        LoadOptions {
            own_namespace: DEFAULT_OWN_NAMESPACE,
            governing: None,
        }
    }
}

/// Loads and validates every document of a repository snapshot. `files` maps paths
/// relative to the root (with `/`) to contents; it holds the `*.yaml`/`*.yml` files of
/// the tree. Never fails: every problem is a located diagnostic of the result.
pub fn load(files: &BTreeMap<String, Vec<u8>>) -> Repository {
    load_with(files, LoadOptions::default())
}

/// [`load`] with what `options` says of the world outside the files.
pub fn load_with(files: &BTreeMap<String, Vec<u8>>, options: LoadOptions<'_>) -> Repository {
    let mut diagnostics = Vec::new();
    let (mut config, config_ok) = load_config(files, &mut diagnostics);
    let deferred_settings = match options.governing {
        Some(branch) => tenants::govern(&mut config.spec, &branch.spec),
        None => Vec::new(),
    };
    let matcher = service_matcher(&config);
    // With errors in modelship.yaml every service is invalid anyway; what its tenants
    // would say of a spec then is noise.
    let boundaries = config_ok.then(|| Boundaries::new(&config, options.own_namespace));
    let mut named = Vec::new();
    for (path, bytes) in files {
        if path == CONFIG_FILE || !matcher.is_match(path) {
            continue;
        }
        let mut file = FileReport {
            file: path,
            config: &config,
            boundaries: boundaries.as_ref(),
            diagnostics: &mut diagnostics,
            named: &mut named,
        };
        file.load(bytes);
    }
    let (mut services, mut invalid) = resolve(named, &mut diagnostics);
    if !config_ok {
        invalid.extend(services.iter().map(|s| s.id().clone()));
        services.clear();
    }
    services.sort_by(|a, b| a.id().cmp(b.id()));
    invalid.sort();
    invalid.dedup();
    super::diagnostic::sort(&mut diagnostics);
    Repository {
        config,
        services,
        diagnostics,
        invalid,
        deferred_settings,
    }
}

/// Reads `modelship.yaml`; returns the configuration and whether it was free of errors.
fn load_config(
    files: &BTreeMap<String, Vec<u8>>,
    diagnostics: &mut Vec<Diagnostic>,
) -> (RepositoryConfig, bool) {
    let before = diagnostics.len();
    if files.contains_key("modelship.yml") && !files.contains_key(CONFIG_FILE) {
        diagnostics.push(error(
            "modelship.yml",
            Mark::default(),
            "",
            "the repository configuration is read from modelship.yaml",
            Some("rename the file to modelship.yaml".to_string()),
        ));
    }
    let Some(bytes) = files.get(CONFIG_FILE) else {
        return (RepositoryConfig::default(), diagnostics.len() == before);
    };
    let mut report = Report {
        file: CONFIG_FILE,
        diagnostics,
    };
    let Some(text) = report.utf8(bytes) else {
        return (RepositoryConfig::default(), false);
    };
    let mut config = None;
    let mut seen = false;
    for doc in parse::documents(&text) {
        report.parse_errors(&doc);
        let Some(root) = doc.root.filter(|r| !r.is_null()) else {
            continue;
        };
        if seen {
            report.push(
                root.mark,
                &FieldPath::root(),
                "modelship.yaml holds a single RepositoryConfig document".to_string(),
                None,
            );
            continue;
        }
        seen = true;
        if doc.truncated {
            continue;
        }
        let header_ok = report.header(&root, CONFIG_KIND);
        let read = de::from_node::<RepositoryConfig>(&root);
        report.problems(read.problems);
        if let Some(value) = read.value {
            report.findings(&root, &read.poisoned, validate::config(&value));
            config = header_ok.then_some(value);
        }
    }
    let ok = report.clean_since(before);
    (config.unwrap_or_default(), ok)
}

/// The globs of service files; invalid globs were reported by config validation.
fn service_matcher(config: &RepositoryConfig) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for pattern in &config.spec.services {
        if let Ok(glob) = GlobBuilder::new(pattern).literal_separator(true).build() {
            builder.add(glob);
        }
    }
    builder.build().unwrap_or_else(|_| GlobSet::empty())
}

/// A document that names a service: loaded when it passed every check, else failed.
struct Named {
    id: ServiceId,
    file: String,
    /// Where `metadata.name` is written.
    mark: Mark,
    service: Option<LoadedService>,
}

/// Loads the documents of one service file.
struct FileReport<'a> {
    file: &'a str,
    config: &'a RepositoryConfig,
    /// Tenants and modelship's own namespace; `None` when modelship.yaml has errors.
    boundaries: Option<&'a Boundaries<'a>>,
    diagnostics: &'a mut Vec<Diagnostic>,
    named: &'a mut Vec<Named>,
}

impl FileReport<'_> {
    fn load(&mut self, bytes: &[u8]) {
        let mut report = Report {
            file: self.file,
            diagnostics: self.diagnostics,
        };
        let Some(text) = report.utf8(bytes) else {
            // Still find out which services the file names, so they stay untouched.
            let lossy = String::from_utf8_lossy(bytes);
            for doc in parse::documents(&lossy) {
                self.failed(doc.root.as_deref(), &lossy, doc.line, true);
            }
            return;
        };
        for doc in parse::documents(&text) {
            self.document(&text, doc);
        }
    }

    fn document(&mut self, text: &str, doc: Document) {
        let mut report = Report {
            file: self.file,
            diagnostics: self.diagnostics,
        };
        let before = report.diagnostics.len();
        report.parse_errors(&doc);
        let broken = !doc.errors.is_empty();
        let Some(root) = doc.root.clone().filter(|r| !r.is_null()) else {
            if broken {
                self.failed(None, text, doc.line, true);
            }
            return;
        };
        // A document cut short by a syntax error is only searched for its name; reading
        // it would report the missing rest as errors of its own.
        let header_ok = !doc.truncated && report.header(&root, SERVICE_KIND);
        let is_service = root.get("kind").and_then(Node::as_text) == Some(SERVICE_KIND);
        let mut service = None;
        if header_ok || (is_service && !doc.truncated) {
            // With a wrong apiVersion, still report what else is wrong with the document.
            let read = de::from_node::<ModelService>(&root);
            report.problems(read.problems);
            if let Some(value) = read.value {
                let mut findings = validate::service(&value, self.config);
                if let Some(boundaries) = self.boundaries {
                    findings.extend(boundaries.check(self.file, &value));
                }
                report.findings(&root, &read.poisoned, findings);
                service = header_ok.then_some(value);
            }
        }
        let clean = report.clean_since(before);
        match service {
            Some(service) if clean => {
                // Validation refuses a name or namespace that cannot make an id; should
                // one pass, the document is recorded as failed rather than loaded.
                let Ok(mut service) =
                    LoadedService::new(service, self.file, root.mark.line, self.config)
                else {
                    self.failed(Some(&root), text, doc.line, broken);
                    return;
                };
                let mark = root.locate(&FieldPath::parse("metadata.name"), false);
                service.name_at = mark;
                self.named.push(Named {
                    id: service.id().clone(),
                    file: self.file.to_string(),
                    mark,
                    service: Some(service),
                });
            }
            _ => self.failed(Some(&root), text, doc.line, broken),
        }
    }

    /// Records every name a failed document may have meant.
    fn failed(&mut self, root: Option<&Node>, text: &str, line: usize, broken: bool) {
        for (id, mark) in recover::failed_ids(root, text, line, broken, self.config) {
            self.named.push(Named {
                id,
                file: self.file.to_string(),
                mark,
                service: None,
            });
        }
    }
}

/// Splits documents into loaded services and the ids of failed ones. A service named more
/// than once is an error at every occurrence after the first, and none of its
/// documents is applied.
fn resolve(
    named: Vec<Named>,
    diagnostics: &mut Vec<Diagnostic>,
) -> (Vec<LoadedService>, Vec<ServiceId>) {
    let mut first: BTreeMap<&ServiceId, &Named> = BTreeMap::new();
    let mut duplicated = BTreeSet::new();
    for n in &named {
        let Some(earlier) = first.get(&n.id) else {
            first.insert(&n.id, n);
            continue;
        };
        let violation = Violation::Duplicate {
            service: n.id.clone(),
            first: format!("{}:{}", earlier.file, earlier.mark.line),
        };
        let message = violation.to_string();
        diagnostics.push(error(
            &n.file,
            n.mark,
            "metadata.name",
            &message,
            violation.hint(),
        ));
        duplicated.insert(n.id.clone());
    }
    let mut services = Vec::new();
    let mut invalid = Vec::new();
    for n in named {
        match n.service {
            Some(service) if !duplicated.contains(&n.id) => services.push(service),
            _ => invalid.push(n.id),
        }
    }
    (services, invalid)
}

/// Turns problems of one file into diagnostics.
struct Report<'a> {
    file: &'a str,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl Report<'_> {
    fn push(&mut self, mark: Mark, path: &FieldPath, message: String, hint: Option<String>) {
        let field = path.to_string();
        self.diagnostics
            .push(error(self.file, mark, &field, &message, hint));
    }

    /// The text of the file, or a located diagnostic at its first invalid byte.
    fn utf8(&mut self, bytes: &[u8]) -> Option<String> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Some(text.to_string()),
            Err(err) => {
                let valid = bytes.get(..err.valid_up_to()).unwrap_or_default();
                let prefix = String::from_utf8_lossy(valid);
                let line = prefix.matches('\n').count() + 1;
                let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                self.push(
                    Mark { line, column },
                    &FieldPath::root(),
                    format!("not valid UTF-8 (byte {})", err.valid_up_to()),
                    Some("YAML files must be UTF-8 encoded".to_string()),
                );
                None
            }
        }
    }

    fn parse_errors(&mut self, doc: &Document) {
        for located in &doc.errors {
            self.push(
                located.mark,
                &FieldPath::root(),
                located.error.to_string(),
                None,
            );
        }
    }

    fn problems(&mut self, problems: Vec<Problem>) {
        for p in problems {
            self.push(p.mark, &p.path, p.message, p.hint);
        }
    }

    /// Reports findings, except those that may only stem from values left out because
    /// they failed to read (at, under or beside a poisoned path).
    fn findings(&mut self, root: &Node, poisoned: &[FieldPath], findings: Vec<Finding>) {
        for f in findings {
            let parent = f.path.parent();
            let related = poisoned
                .iter()
                .any(|p| f.path.starts_with(p) || p.starts_with(&parent));
            if related {
                continue;
            }
            let mark = root.locate(&f.path, f.at_key);
            self.push(mark, &f.path, f.violation.to_string(), f.violation.hint());
        }
    }

    /// True when no error was reported since `before` (warnings do not count).
    fn clean_since(&self, before: usize) -> bool {
        self.diagnostics
            .get(before..)
            .is_none_or(|new| new.iter().all(|d| d.severity != Severity::Error))
    }

    /// Checks `apiVersion` and `kind`; true when both are what `expected` needs.
    fn header(&mut self, root: &Node, expected: &str) -> bool {
        if !matches!(root.value, super::node::Value::Map(_)) {
            self.push(
                root.mark,
                &FieldPath::root(),
                format!("expected a {expected} mapping, found {}", root.describe()),
                None,
            );
            return false;
        }
        let api_ok = self.api_version(root);
        let path = FieldPath::root().key("kind");
        let kind = root.get("kind").and_then(Node::as_text);
        let kind_ok = match kind {
            Some(kind) if kind == expected => true,
            Some(kind) => {
                let hint = kind_hint(kind, expected);
                let mark = root.locate(&path, false);
                self.push(mark, &path, format!("unknown kind `{kind}`"), Some(hint));
                false
            }
            None => {
                let hint = format!("add `kind: {expected}`");
                let message = "missing required field".to_string();
                self.push(root.mark, &path, message, Some(hint));
                false
            }
        };
        api_ok && kind_ok
    }

    fn api_version(&mut self, root: &Node) -> bool {
        let path = FieldPath::root().key("apiVersion");
        match root.get("apiVersion").and_then(Node::as_text) {
            Some(API_VERSION) => true,
            Some(other) => {
                let mark = root.locate(&path, false);
                let message = format!("unsupported apiVersion `{other}`");
                self.push(
                    mark,
                    &path,
                    message,
                    Some(format!("expected {API_VERSION}")),
                );
                false
            }
            None => {
                let hint = format!("add `apiVersion: {API_VERSION}`");
                let message = "missing required field".to_string();
                self.push(root.mark, &path, message, Some(hint));
                false
            }
        }
    }
}

fn kind_hint(kind: &str, expected: &str) -> String {
    if let Some(best) = closest(kind, [expected]) {
        return format!("did you mean {best}?");
    }
    match (kind, expected) {
        (CONFIG_KIND, _) => format!("a {CONFIG_KIND} belongs in {CONFIG_FILE} at the root"),
        (_, SERVICE_KIND) => format!("service files hold {SERVICE_KIND} documents"),
        _ => format!("{CONFIG_FILE} holds a {CONFIG_KIND} document"),
    }
}

fn error(file: &str, mark: Mark, field: &str, message: &str, hint: Option<String>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: file.to_string(),
        line: mark.line,
        column: mark.column,
        field: field.to_string(),
        message: message.to_string(),
        hint,
    }
}
