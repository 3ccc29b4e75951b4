//! Loading policy files into a [`PolicySet`]: split each file into documents, parse them,
//! compile every expression with the CEL environment of [`super::library`], check it
//! (unknown functions and identifiers, type errors), and attach bindings to policies.
//! Every problem becomes a located [`Diagnostic`]; a policy with an error is left out, the
//! others load.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cel::{Env, Program};

use super::check::{self, Ty};
use super::document::{
    API_VERSION, Action, BINDING_KIND, BindingDocument, BindingSpec, DocumentText, FailurePolicy,
    Located, MatchResources, POLICY_KIND, PolicyDocument, PolicySpec, Validation, split_documents,
};
use super::library;
use super::matching::{MODELSHIP_GROUP, selector_problems};
use super::scope::{self, ANNOTATION_SCOPE, Scope};
use crate::spec::{Diagnostic, Severity};

/// Reasons a validation may give, as in the Kubernetes API.
const REASONS: &[&str] = &[
    "Unauthorized",
    "Forbidden",
    "Invalid",
    "RequestEntityTooLarge",
];

use super::cost::MAX_EXPRESSION_BYTES;

/// A compiled expression and where it was written.
#[derive(Debug)]
pub struct Expression {
    /// The CEL text.
    pub source: String,
    pub program: Program,
    /// What is evaluated: the program metered by [`super::cost`].
    pub metered: cel::IdedExpr,
    /// Field path such as `spec.validations[0].expression`.
    pub field: String,
    /// 1-based line in the policy file.
    pub line: usize,
    /// `variables.<name>` read, directly or through other variables.
    pub variables: BTreeSet<String>,
}

/// One `spec.validations[]` entry, compiled.
#[derive(Debug)]
pub struct CompiledValidation {
    pub expression: Expression,
    pub message: Option<String>,
    pub message_expression: Option<Expression>,
    pub reason: String,
}

/// A named expression (`matchConditions[]`, `variables[]`), compiled.
#[derive(Debug)]
pub struct NamedProgram {
    pub name: String,
    pub expression: Expression,
}

/// A binding of a policy: what it narrows to and what a failure does.
#[derive(Debug, Clone)]
pub struct Binding {
    /// `None` for the implicit binding of a policy that has none (action Deny).
    pub name: Option<String>,
    pub actions: Vec<Action>,
    pub match_resources: Option<MatchResources>,
}

/// A ValidatingAdmissionPolicy ready to evaluate.
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    /// Policy file and the line of its document.
    pub file: String,
    pub line: usize,
    pub failure_policy: FailurePolicy,
    pub match_constraints: MatchResources,
    pub match_conditions: Vec<NamedProgram>,
    pub variables: Vec<NamedProgram>,
    pub validations: Vec<CompiledValidation>,
    pub bindings: Vec<Binding>,
    /// Where `policies export` has the cluster enforce it (annotation
    /// `modelship.dev/scope`).
    pub scope: Scope,
}

impl Policy {
    /// True when every rule of the policy selects ModelService documents only, which a
    /// cluster never sees.
    pub fn is_modelservice_only(&self) -> bool {
        self.match_constraints
            .resource_rules
            .iter()
            .all(|r| !r.api_groups.is_empty() && r.api_groups.iter().all(|g| g == MODELSHIP_GROUP))
    }
}

/// A loaded document, kept as written for `policies export`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDocument {
    pub file: String,
    pub line: usize,
    pub kind: String,
    pub name: String,
    /// The document as JSON, in the order written.
    pub json: serde_json::Value,
}

/// Every policy of a repository and of the extra policy directories.
#[derive(Default)]
pub struct PolicySet {
    pub(crate) env: Option<Arc<Env>>,
    pub(crate) policies: Vec<Policy>,
    pub(crate) documents: Vec<SourceDocument>,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("policies", &self.policies)
            .field("documents", &self.documents)
            .finish_non_exhaustive()
    }
}

impl PolicySet {
    /// Loads every file of `files` (path -> contents) as policy documents. Problems are
    /// returned as diagnostics, sorted by file and line; policies with an error are left
    /// out of the set.
    pub fn load(files: &BTreeMap<String, Vec<u8>>) -> (PolicySet, Vec<Diagnostic>) {
        let mut loader = Loader::default();
        match library::env() {
            Ok(env) => {
                for (file, bytes) in files {
                    loader.file(&env, file, bytes);
                }
                loader.set.env = Some(env);
            }
            Err(e) => loader.set.env = report_env_error(&mut loader.diagnostics, files, &e),
        }
        loader.attach_bindings();
        let Loader {
            mut set,
            mut diagnostics,
            ..
        } = loader;
        set.policies.sort_by(|a, b| a.name.cmp(&b.name));
        diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        (set, diagnostics)
    }

    /// The loaded policies, by name.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The loaded documents (policies and bindings) as written.
    pub fn documents(&self) -> &[SourceDocument] {
        &self.documents
    }

    /// True when no policy is loaded.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

fn report_env_error(
    diagnostics: &mut Vec<Diagnostic>,
    files: &BTreeMap<String, Vec<u8>>,
    error: &cel::DeclarationError,
) -> Option<Arc<Env>> {
    for file in files.keys() {
        diagnostics.push(error_at(
            file,
            0,
            0,
            "",
            format!("the CEL library could not be set up: {error}"),
        ));
    }
    None
}

/// Selects the policy files of a repository: `policies/**/*.yaml` (and `.yml`).
pub fn policy_files(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .filter(|(path, _)| {
            path.starts_with("policies/") && (path.ends_with(".yaml") || path.ends_with(".yml"))
        })
        .map(|(path, bytes)| (path.clone(), bytes.clone()))
        .collect()
}

fn error_at(file: &str, line: usize, column: usize, field: &str, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: file.to_string(),
        line,
        column,
        field: field.to_string(),
        message,
        hint: None,
    }
}

/// The YAML limits of spec files (`spec::parse`), for policy documents too: nesting,
/// aliases and nodes (events, with aliases replayed) of one document.
fn yaml_options() -> serde_saphyr::Options {
    use crate::spec::parse::{MAX_ALIASES, MAX_DEPTH, MAX_NODES};
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_aliases: MAX_ALIASES,
            max_nodes: MAX_NODES,
            max_events: 4 * MAX_NODES,
        },
    }
}

#[derive(Default)]
struct Loader {
    set: PolicySet,
    diagnostics: Vec<Diagnostic>,
    bindings: Vec<(BindingDocument, String, usize)>,
}

/// The document being loaded: its file and text.
struct Doc<'a> {
    file: &'a str,
    text: DocumentText<'a>,
}

impl Doc<'_> {
    fn line(&self) -> usize {
        self.text.first_line + 1
    }

    /// Line and column in the file of a located value.
    fn position(&self, located: &Located) -> (usize, usize) {
        let line = located.referenced.line() as usize;
        if line == 0 {
            return (self.line(), 0);
        }
        (
            self.text.first_line + line,
            located.referenced.column() as usize,
        )
    }
}

impl Loader {
    fn error(&mut self, doc: &Doc<'_>, line: usize, column: usize, field: &str, message: String) {
        self.diagnostics
            .push(error_at(doc.file, line, column, field, message));
    }

    fn warning(&mut self, doc: &Doc<'_>, field: &str, message: String) {
        let mut diagnostic = error_at(doc.file, doc.line(), 0, field, message);
        diagnostic.severity = Severity::Warning;
        self.diagnostics.push(diagnostic);
    }

    fn file(&mut self, env: &Env, file: &str, bytes: &[u8]) {
        let Ok(text) = std::str::from_utf8(bytes) else {
            self.diagnostics
                .push(error_at(file, 0, 0, "", "not UTF-8 text".to_string()));
            return;
        };
        for text in split_documents(text) {
            self.document(env, &Doc { file, text });
        }
    }

    fn document(&mut self, env: &Env, doc: &Doc<'_>) {
        let json: serde_json::Value =
            match serde_saphyr::from_str_with_options(doc.text.text, yaml_options()) {
                Ok(json) => json,
                Err(e) => return self.yaml_error(doc, &e),
            };
        let field = |name: &str| json.get(name).and_then(|v| v.as_str()).unwrap_or_default();
        let (api_version, kind) = (field("apiVersion"), field("kind"));
        if api_version != API_VERSION || (kind != POLICY_KIND && kind != BINDING_KIND) {
            let message = format!(
                "expected apiVersion {API_VERSION} and kind {POLICY_KIND} or {BINDING_KIND}, found `{api_version}` `{kind}`"
            );
            return self.error(doc, doc.line(), 0, "", message);
        }
        let name = json
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let loaded = if kind == POLICY_KIND {
            match serde_saphyr::from_str_with_options::<PolicyDocument>(
                doc.text.text,
                yaml_options(),
            ) {
                Ok(policy) => self.policy(env, doc, policy),
                Err(e) => {
                    self.yaml_error(doc, &e);
                    false
                }
            }
        } else {
            match serde_saphyr::from_str_with_options::<BindingDocument>(
                doc.text.text,
                yaml_options(),
            ) {
                Ok(binding) => {
                    self.bindings
                        .push((binding, doc.file.to_string(), doc.line()));
                    true
                }
                Err(e) => {
                    self.yaml_error(doc, &e);
                    false
                }
            }
        };
        if loaded {
            self.set.documents.push(SourceDocument {
                file: doc.file.to_string(),
                line: doc.line(),
                kind: kind.to_string(),
                name,
                json,
            });
        }
    }

    fn yaml_error(&mut self, doc: &Doc<'_>, error: &serde_saphyr::Error) {
        let (line, column) = error
            .location()
            .map(|l| (doc.text.first_line + l.line() as usize, l.column() as usize))
            .unwrap_or((doc.line(), 0));
        let message = error.without_snippet().to_string();
        let message = message.lines().next().unwrap_or_default();
        // The location is ours (in file coordinates); drop the parser's own.
        let message = match message.rfind(" at line ") {
            Some(at) if message[at..].contains(", column ") => &message[..at],
            _ => message,
        };
        let mut diagnostic = error_at(doc.file, line, column, "", message.to_string());
        diagnostic.hint = unknown_field_hint(message);
        self.diagnostics.push(diagnostic);
    }

    /// An error about the whole document, at its first line.
    fn doc_error(&mut self, doc: &Doc<'_>, field: &str, message: &str) {
        self.error(doc, doc.line(), 0, field, message.to_string());
    }

    /// Checks and compiles one policy; true when it loaded.
    fn policy(&mut self, env: &Env, doc: &Doc<'_>, policy: PolicyDocument) -> bool {
        let errors = self.diagnostics.len();
        let name = policy.metadata.name.clone();
        let spec = policy.spec;
        self.policy_fields(doc, &name, &spec);
        let scope = self.scope(doc, &policy.metadata.annotations);
        let constraints = spec.match_constraints.clone().unwrap_or_default();
        self.selectors(doc, "spec.matchConstraints", &constraints);
        let match_conditions = self.named(
            env,
            doc,
            "spec.matchConditions",
            &spec.match_conditions,
            false,
        );
        let variables = self.named(env, doc, "spec.variables", &spec.variables, true);
        let validations = self.validations(env, doc, &spec.validations, &variables);
        let broken = self.diagnostics[errors..]
            .iter()
            .any(|d| d.severity == Severity::Error);
        if broken {
            return false;
        }
        self.set.policies.push(Policy {
            name,
            file: doc.file.to_string(),
            line: doc.line(),
            failure_policy: spec.failure_policy.unwrap_or_default(),
            match_constraints: constraints,
            match_conditions,
            variables,
            validations,
            bindings: Vec::new(),
            scope,
        });
        true
    }

    /// The policy's export scope; an unknown value is an error at the annotation.
    fn scope(&mut self, doc: &Doc<'_>, annotations: &BTreeMap<String, String>) -> Scope {
        Scope::of(annotations).unwrap_or_else(|message| {
            let (line, column) = match scope::locate(doc.text.text) {
                (0, _) => (doc.line(), 0),
                (line, column) => (doc.text.first_line + line, column),
            };
            let field = format!("metadata.annotations[{ANNOTATION_SCOPE}]");
            self.error(doc, line, column, &field, message);
            Scope::default()
        })
    }

    /// Problems of a policy's fields that need no compiling.
    fn policy_fields(&mut self, doc: &Doc<'_>, name: &str, spec: &PolicySpec) {
        if name.is_empty() {
            self.doc_error(doc, "metadata.name", "a policy needs a name");
        }
        if self.set.policies.iter().any(|p| p.name == name) {
            self.doc_error(
                doc,
                "metadata.name",
                &format!("policy `{name}` is defined twice"),
            );
        }
        if spec.param_kind.is_some() {
            self.doc_error(
                doc,
                "spec.paramKind",
                "policies with parameters are not supported",
            );
        }
        let no_rules = spec
            .match_constraints
            .as_ref()
            .is_none_or(|m| m.resource_rules.is_empty());
        if no_rules {
            let message =
                "matchConstraints.resourceRules is required: the policy would match nothing";
            self.doc_error(doc, "spec.matchConstraints.resourceRules", message);
        }
        if spec.validations.is_empty() {
            self.doc_error(
                doc,
                "spec.validations",
                "a policy needs at least one validation",
            );
        }
        if !spec.audit_annotations.is_empty() {
            let message = "auditAnnotations are only evaluated in the cluster".to_string();
            self.warning(doc, "spec.auditAnnotations", message);
        }
        for (i, v) in spec.validations.iter().enumerate() {
            if let Some(reason) = v.reason.as_deref().filter(|r| !REASONS.contains(r)) {
                let message = format!("unknown reason `{reason}` (one of {})", REASONS.join(", "));
                self.doc_error(doc, &format!("spec.validations[{i}].reason"), &message);
            }
            if v.message.as_deref().is_some_and(|m| m.contains('\n')) {
                let field = format!("spec.validations[{i}].message");
                self.doc_error(doc, &field, "a message must be one line");
            }
        }
    }

    /// Compiles the validations; a broken one is reported and left out.
    fn validations(
        &mut self,
        env: &Env,
        doc: &Doc<'_>,
        validations: &[Validation],
        variables: &[NamedProgram],
    ) -> Vec<CompiledValidation> {
        let declared: Vec<String> = variables.iter().map(|v| v.name.clone()).collect();
        let mut compiled = Vec::new();
        for (i, v) in validations.iter().enumerate() {
            let field = format!("spec.validations[{i}]");
            let expression = self.compile(
                env,
                doc,
                &format!("{field}.expression"),
                &v.expression,
                &declared,
                variables,
                Ty::Bool,
            );
            let message_expression = v.message_expression.as_ref().and_then(|m| {
                let field = format!("{field}.messageExpression");
                self.compile(env, doc, &field, m, &declared, variables, Ty::String)
            });
            if let Some(expression) = expression {
                compiled.push(CompiledValidation {
                    expression,
                    message: v.message.clone(),
                    message_expression,
                    reason: v.reason.clone().unwrap_or_else(|| "Invalid".to_string()),
                });
            }
        }
        compiled
    }

    fn selectors(&mut self, doc: &Doc<'_>, field: &str, rules: &MatchResources) {
        for (field, message) in selector_problems_of(field, rules) {
            self.doc_error(doc, &field, &message);
        }
    }

    /// Compiles `matchConditions` (no variables visible) or `variables` (each sees the
    /// ones before it).
    fn named(
        &mut self,
        env: &Env,
        doc: &Doc<'_>,
        field: &str,
        entries: &[super::document::NamedExpression],
        are_variables: bool,
    ) -> Vec<NamedProgram> {
        let mut compiled: Vec<NamedProgram> = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, entry) in entries.iter().enumerate() {
            let field = format!("{field}[{i}]");
            if !seen.insert(entry.name.clone()) {
                let message = format!("`{}` is defined twice", entry.name);
                self.doc_error(doc, &format!("{field}.name"), &message);
            }
            if are_variables && !is_identifier(&entry.name) {
                let message = format!(
                    "`{}` is not a CEL identifier (letters, digits and `_`, not starting with a digit)",
                    entry.name
                );
                self.doc_error(doc, &format!("{field}.name"), &message);
            }
            let declared: Vec<String> = if are_variables {
                compiled.iter().map(|v| v.name.clone()).collect()
            } else {
                Vec::new()
            };
            let expected = if are_variables { Ty::Dyn } else { Ty::Bool };
            let before: &[NamedProgram] = if are_variables { &compiled } else { &[] };
            if let Some(expression) = self.compile(
                env,
                doc,
                &format!("{field}.expression"),
                &entry.expression,
                &declared,
                before,
                expected,
            ) {
                compiled.push(NamedProgram {
                    name: entry.name.clone(),
                    expression,
                });
            }
        }
        compiled
    }

    /// Parses and checks one expression; reports and returns `None` when it is broken.
    #[allow(clippy::too_many_arguments)]
    fn compile(
        &mut self,
        env: &Env,
        doc: &Doc<'_>,
        field: &str,
        located: &Located,
        declared: &[String],
        variables: &[NamedProgram],
        expected: Ty,
    ) -> Option<Expression> {
        let (line, column) = doc.position(located);
        let source = located.value.clone();
        if source.len() > MAX_EXPRESSION_BYTES {
            let message = format!(
                "expression is {} bytes, longer than the limit of {MAX_EXPRESSION_BYTES}",
                source.len()
            );
            self.error(doc, line, column, field, message);
            return None;
        }
        let program = match compile_guarded(env, &source) {
            Ok(program) => program,
            Err(errors) => {
                // Block scalars are located at their first content line, so the line of
                // the error inside the expression adds up (an error at the end counts
                // on the last line).
                let last = source.trim_end().lines().count().saturating_sub(1);
                for (offset, message) in errors {
                    let line = line + offset.min(last);
                    self.error(
                        doc,
                        line,
                        column,
                        field,
                        format!("syntax error in `{}`: {message}", one_line(&source)),
                    );
                }
                return None;
            }
        };
        let report = check::check(program.expression(), declared);
        let mut broken = false;
        for problem in &report.problems {
            self.error(
                doc,
                line,
                column,
                field,
                format!("{problem} in `{}`", one_line(&source)),
            );
            broken = true;
        }
        if let Some(ty) = report
            .ty
            .filter(|&ty| expected != Ty::Dyn && ty != expected)
        {
            let message = format!(
                "type error: `{}` evaluates to {} but must evaluate to {}",
                one_line(&source),
                ty.name(),
                expected.name()
            );
            self.error(doc, line, column, field, message);
            broken = true;
        }
        if broken {
            return None;
        }
        let mut used = report.variables.clone();
        for variable in variables
            .iter()
            .filter(|v| report.variables.contains(&v.name))
        {
            used.extend(variable.expression.variables.iter().cloned());
        }
        Some(Expression {
            metered: super::cost::meter(program.expression()),
            source,
            program,
            field: field.to_string(),
            line,
            variables: used,
        })
    }

    /// Attaches each binding to its policy; policies without one get the implicit Deny.
    fn attach_bindings(&mut self) {
        let bindings = std::mem::take(&mut self.bindings);
        for (binding, file, line) in bindings {
            let spec = binding.spec;
            let mut problems = binding_problems(&spec);
            let policy = self
                .set
                .policies
                .iter_mut()
                .find(|p| p.name == spec.policy_name);
            if policy.is_none() {
                let message = format!(
                    "binding `{}` refers to no loaded policy `{}`",
                    binding.metadata.name, spec.policy_name
                );
                problems.push(("spec.policyName".to_string(), message));
            }
            match policy {
                Some(policy) if problems.is_empty() => policy.bindings.push(Binding {
                    name: Some(binding.metadata.name),
                    actions: dedup(&spec.validation_actions),
                    match_resources: spec.match_resources,
                }),
                _ => self.diagnostics.extend(
                    problems
                        .into_iter()
                        .map(|(field, message)| error_at(&file, line, 0, &field, message)),
                ),
            }
        }
        for policy in &mut self.set.policies {
            if policy.bindings.is_empty() {
                policy.bindings.push(Binding {
                    name: None,
                    actions: vec![Action::Deny],
                    match_resources: None,
                });
            }
        }
    }
}

fn dedup(actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// (field, message) of every problem of a binding that needs no policy.
fn binding_problems(spec: &BindingSpec) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| problems.push((field.to_string(), message));
    if spec.param_ref.is_some() {
        problem(
            "spec.paramRef",
            "bindings with parameters are not supported".to_string(),
        );
    }
    let actions = dedup(&spec.validation_actions);
    if actions.is_empty() {
        let message = "at least one of Deny, Warn, Audit is required".to_string();
        problem("spec.validationActions", message);
    }
    if actions.len() != spec.validation_actions.len() {
        problem(
            "spec.validationActions",
            "an action is listed twice".to_string(),
        );
    }
    if actions.contains(&Action::Deny) && actions.contains(&Action::Warn) {
        let message = "Deny and Warn cannot be used together".to_string();
        problem("spec.validationActions", message);
    }
    if let Some(rules) = &spec.match_resources {
        problems.extend(selector_problems_of("spec.matchResources", rules));
    }
    problems
}

/// (field, message) of the label selector problems of `rules`.
fn selector_problems_of(field: &str, rules: &MatchResources) -> Vec<(String, String)> {
    [
        ("namespaceSelector", &rules.namespace_selector),
        ("objectSelector", &rules.object_selector),
    ]
    .into_iter()
    .flat_map(|(name, selector)| {
        selector
            .iter()
            .flat_map(selector_problems)
            .map(move |message| (format!("{field}.{name}"), message))
    })
    .collect()
}

/// Compiles `source`, turning a parse failure (or a panic of the parser on hostile input)
/// into messages with the line offset inside the expression.
fn compile_guarded(env: &Env, source: &str) -> Result<Program, Vec<(usize, String)>> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| env.compile(source)));
    match result {
        Ok(Ok(program)) => Ok(program),
        Ok(Err(errors)) => Err(errors
            .errors
            .iter()
            .map(|e| {
                let offset = usize::try_from(e.pos.0 - 1).unwrap_or(0);
                (
                    offset,
                    format!(
                        "{} (at {}:{} of the expression)",
                        e.msg,
                        e.pos.0,
                        e.pos.1 + 1
                    ),
                )
            })
            .collect()),
        Err(_) => Err(vec![(0, "the expression could not be parsed".to_string())]),
    }
}

/// `did you mean reason?` for serde's "unknown field `reasn`, expected one of ...".
fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let candidates: Vec<&str> = rest
        .split_once("expected one of ")?
        .1
        .split(", ")
        .map(|c| c.trim_matches('`'))
        .collect();
    crate::spec::de::closest(field, candidates).map(|best| format!("did you mean {best}?"))
}

/// True for a CEL identifier, which a variable name must be to be read as `variables.<name>`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The expression on one line, shortened for messages.
fn one_line(source: &str) -> String {
    let joined = source.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > 120 {
        format!("{}...", joined.chars().take(117).collect::<String>())
    } else {
        joined
    }
}
