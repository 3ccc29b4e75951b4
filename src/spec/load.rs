//! Loading a repository snapshot: file contents in, [`Repository`] out.
//!
//! ```text
//! files ──> modelship.yaml ──parse──> RepositoryConfig (defaults without the file)
//!   │                                      │ spec.services globs
//!   └──> service files ──parse──> documents ──header──> de ──> validate ──> services
//!                                     │ every problem, located           duplicates
//!                                     └──> diagnostics, invalid (namespace, name)
//! ```
//!
//! A document that fails anywhere is left out of `services`; when its name can still be
//! read from the node tree (even a tree cut short by a syntax error) it is listed in
//! `invalid`, so nothing it owns is ever pruned. When `modelship.yaml` itself has errors,
//! every service is listed as invalid: compiling them against a half-read configuration
//! could change objects it should not.

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::de::{self, Problem, closest};
use super::diagnostic::{Diagnostic, Severity};
use super::node::{FieldPath, Mark, Node};
use super::parse::{self, Document};
use super::types::{API_VERSION, ModelService, RepositoryConfig};
use super::validate::{self, Finding, Violation};
use super::{LoadedService, Repository};

/// The repository configuration file, at the root.
pub const CONFIG_FILE: &str = "modelship.yaml";

const SERVICE_KIND: &str = "ModelService";
const CONFIG_KIND: &str = "RepositoryConfig";

/// Loads and validates every document of a repository snapshot. `files` maps paths
/// relative to the root (with `/`) to contents; it holds the `*.yaml`/`*.yml` files of
/// the tree. Never fails: every problem is a located diagnostic of the result.
pub fn load(files: &BTreeMap<String, Vec<u8>>) -> Repository {
    let mut diagnostics = Vec::new();
    let (config, config_ok) = load_config(files, &mut diagnostics);
    let matcher = service_matcher(&config);
    let mut found = Vec::new();
    let mut invalid = Vec::new();
    for (path, bytes) in files {
        if path == CONFIG_FILE || !matcher.is_match(path) {
            continue;
        }
        let mut file = FileReport {
            file: path,
            config: &config,
            diagnostics: &mut diagnostics,
            found: &mut found,
            invalid: &mut invalid,
        };
        file.load(bytes);
    }
    let services = resolve_duplicates(found, &mut diagnostics, &mut invalid);
    let mut services: Vec<LoadedService> = if config_ok {
        services
    } else {
        invalid.extend(services.iter().map(|s| id_of(s, &config)));
        Vec::new()
    };
    services.sort_by_key(|s| id_of(s, &config));
    invalid.sort();
    invalid.dedup();
    diagnostics.sort_by(|a, b| {
        (&a.file, a.line, a.column, &a.field, &a.message)
            .cmp(&(&b.file, b.line, b.column, &b.field, &b.message))
    });
    Repository {
        config,
        services,
        diagnostics,
        invalid,
    }
}

fn id_of(service: &LoadedService, config: &RepositoryConfig) -> (String, String) {
    (
        service.namespace(config).to_string(),
        service.name().to_string(),
    )
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
    for doc in parse::parse_stream(&text) {
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
    let ok = report.diagnostics.len() == before;
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

/// A service document that passed every check, with where its name is written.
struct Found {
    service: LoadedService,
    id: (String, String),
    name_mark: Mark,
}

/// Loads the documents of one service file.
struct FileReport<'a> {
    file: &'a str,
    config: &'a RepositoryConfig,
    diagnostics: &'a mut Vec<Diagnostic>,
    found: &'a mut Vec<Found>,
    invalid: &'a mut Vec<(String, String)>,
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
            for doc in parse::parse_stream(&lossy) {
                if let Some(id) = doc.root.as_deref().and_then(|r| recover_id(r, self.config)) {
                    self.invalid.push(id);
                }
            }
            return;
        };
        for doc in parse::parse_stream(&text) {
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
        let Some(root) = doc.root.clone().filter(|r| !r.is_null()) else {
            if !doc.errors.is_empty() {
                self.invalid.extend(scan_id(text, doc.line, self.config));
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
                let findings = validate::service(&value, self.config);
                report.findings(&root, &read.poisoned, findings);
                service = header_ok.then_some(value);
            }
        }
        let clean = report.diagnostics.len() == before;
        match service {
            Some(service) if clean => {
                let name_mark = root.locate(&FieldPath::parse("metadata.name"), false);
                let service = LoadedService {
                    service,
                    file: self.file.to_string(),
                    line: root.mark.line,
                };
                let id = id_of(&service, self.config);
                self.found.push(Found {
                    service,
                    id,
                    name_mark,
                });
            }
            _ => {
                // A tree cut short, or with a duplicate key dropped, may hold a half-read
                // name or none: keep both readings.
                let broken = !doc.errors.is_empty();
                let scanned = broken.then(|| scan_id(text, doc.line, self.config));
                let ids = [recover_id(&root, self.config), scanned.flatten()];
                self.invalid.extend(ids.into_iter().flatten());
            }
        }
    }
}

/// (namespace, name) read line by line from the text of a document whose tree is broken
/// (cut short by a syntax error, or a duplicate `metadata` dropped): `metadata:` at column
/// 0, then indented `name:` and `namespace:` lines. Used only to keep such a service's
/// objects untouched.
fn scan_id(text: &str, from_line: usize, config: &RepositoryConfig) -> Option<(String, String)> {
    let lines = text.lines().skip(from_line.saturating_sub(1));
    let mut in_metadata = false;
    let (mut name, mut namespace) = (None, None);
    for (i, line) in lines.enumerate() {
        if i > 0 && (line.starts_with("---") || line.starts_with("...")) {
            break;
        }
        if !line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            in_metadata = line.trim_end() == "metadata:";
            continue;
        }
        if !in_metadata {
            continue;
        }
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        let value = value.split(" #").next().unwrap_or("").trim();
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        if value.is_empty() || value.contains(char::is_whitespace) {
            continue;
        }
        match key {
            "name" if name.is_none() => name = Some(value.to_string()),
            "namespace" if namespace.is_none() => namespace = Some(value.to_string()),
            _ => {}
        }
    }
    let namespace = namespace.unwrap_or_else(|| config.spec.default_namespace.clone());
    name.map(|name| (namespace, name))
}

/// (namespace, name) of a document whose `metadata.name` is still readable.
fn recover_id(root: &Node, config: &RepositoryConfig) -> Option<(String, String)> {
    let metadata = root.get("metadata")?;
    let name = metadata.get("name")?.as_text()?.trim();
    if name.is_empty() {
        return None;
    }
    let namespace = metadata
        .get("namespace")
        .and_then(Node::as_text)
        .unwrap_or(&config.spec.default_namespace);
    Some((namespace.to_string(), name.to_string()))
}

/// Drops every service whose (namespace, name) appears more than once, reporting each
/// occurrence after the first.
fn resolve_duplicates(
    found: Vec<Found>,
    diagnostics: &mut Vec<Diagnostic>,
    invalid: &mut Vec<(String, String)>,
) -> Vec<LoadedService> {
    let mut first: BTreeMap<(String, String), (String, Mark)> = BTreeMap::new();
    let mut duplicated = std::collections::BTreeSet::new();
    for f in &found {
        match first.get(&f.id) {
            None => {
                first.insert(f.id.clone(), (f.service.file.clone(), f.name_mark));
            }
            Some((file, mark)) => {
                let violation = Violation::Duplicate {
                    namespace: f.id.0.clone(),
                    name: f.id.1.clone(),
                    first: format!("{file}:{}", mark.line),
                };
                diagnostics.push(error(
                    &f.service.file,
                    f.name_mark,
                    "metadata.name",
                    &violation.to_string(),
                    violation.hint(),
                ));
                duplicated.insert(f.id.clone());
            }
        }
    }
    let (dups, unique): (Vec<Found>, Vec<Found>) =
        found.into_iter().partition(|f| duplicated.contains(&f.id));
    invalid.extend(dups.into_iter().map(|f| f.id));
    unique.into_iter().map(|f| f.service).collect()
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
