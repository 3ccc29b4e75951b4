//! Evaluating a [`PolicySet`] against one [`Subject`], with the semantics of a
//! ValidatingAdmissionPolicy at admission:
//!
//! ```text
//! policy matchConstraints + binding matchResources select the subject?
//!   -> matchConditions (all true, else skipped; an error follows failurePolicy)
//!   -> variables (evaluated in order; an error surfaces only where the variable is read)
//!   -> validations (false -> message / messageExpression; error -> failurePolicy)
//!   -> one Violation per failure and per action of each binding (Deny, Warn, Audit)
//! ```
//!
//! Policies see `object`, `oldObject` (null on CREATE), `request` (operation, namespace,
//! name, kind, resource), `namespaceObject` (null when the namespace labels are unknown)
//! and `variables`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use cel::common::types::{CelBool, CelMap, CelMapKey, CelNull, CelString};
use cel::common::value::Val;
use cel::{Context, Value};
use serde_json::json;

use super::cost;
use super::document::{Action, FailurePolicy};
use super::library::json_to_val;
use super::load::{Binding, CompiledValidation, Expression, Policy, PolicySet};
use super::matching::{Identity, SourceRef, Subject, matches};

/// A failed validation of one object, for one action of one binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The policy's `metadata.name`.
    pub policy: String,
    /// The binding's name; `None` for a policy without binding (implicitly Deny).
    pub binding: Option<String>,
    pub action: Action,
    /// The object: kind, namespace (none when cluster-scoped) and name.
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub message: String,
    /// `Invalid`, `Forbidden`, ... as the validation says; `InternalError` when the
    /// expression failed to evaluate.
    pub reason: String,
    /// The spec file and line that produced the object, when the caller gave them.
    pub source: Option<SourceRef>,
    /// The policy file and the line of the failing expression.
    pub policy_file: String,
    pub policy_line: usize,
}

impl Violation {
    /// True when this violation blocks the plan.
    pub fn is_deny(&self) -> bool {
        self.action == Action::Deny
    }

    /// `error`, `warning` or `info`, by action.
    pub fn severity(&self) -> &'static str {
        match self.action {
            Action::Deny => "error",
            Action::Warn => "warning",
            Action::Audit => "info",
        }
    }
}

/// Printed like a diagnostic, at the spec that produced the object:
/// `services/llm.yaml:3: error: Deployment genai/llm-chat: GPU count above 8 [policy gpu-budget, policies/gpu.yaml:12]`
impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) if source.line > 0 => write!(f, "{}:{}: ", source.file, source.line)?,
            Some(source) => write!(f, "{}: ", source.file)?,
            None => {}
        }
        write!(f, "{}: {} ", self.severity(), self.kind)?;
        if let Some(namespace) = &self.namespace {
            write!(f, "{namespace}/")?;
        }
        write!(
            f,
            "{}: {} [policy {}, {}:{}]",
            self.name, self.message, self.policy, self.policy_file, self.policy_line
        )
    }
}

/// Why an expression gave no verdict. Its text follows ``expression `…` failed: `` in the
/// violation's message, where failurePolicy Fail makes it one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// The interpreter refused the expression (a missing field, a bad argument...).
    #[error("{0}")]
    Execution(#[from] cel::ExecutionError),
    /// The interpreter panicked on the expression.
    #[error("the expression could not be evaluated")]
    Panicked,
    /// The evaluation spent its whole cost budget ([`super::cost::MAX_COST`]) and was
    /// stopped.
    #[error(
        "stopped: the evaluation went over its cost budget of {} (reads of values, and elements of the lists and maps read)",
        super::cost::MAX_COST
    )]
    OverBudget,
    /// A condition or validation gave a value of another type than bool.
    #[error("evaluated to {0} instead of bool")]
    NotBool(String),
    /// A matchCondition failed to evaluate.
    #[error("matchCondition {name}: {source}")]
    MatchCondition {
        /// The condition's name.
        name: String,
        source: Box<EvalError>,
    },
    /// A variable reads another variable that failed.
    #[error("reads variables.{0}, which failed")]
    ReadsFailed(String),
    /// A validation reads a variable that failed.
    #[error("variables.{name}: {source}")]
    Variable {
        /// The variable's name.
        name: String,
        source: Box<EvalError>,
    },
}

impl EvalError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            EvalError::Execution(_) => "execution",
            EvalError::Panicked => "panicked",
            EvalError::OverBudget => "over_budget",
            EvalError::NotBool(_) => "not_bool",
            EvalError::MatchCondition { source, .. } | EvalError::Variable { source, .. } => {
                source.metric_label()
            }
            EvalError::ReadsFailed(_) => "variable",
        }
    }
}

/// Why a policy did not pass, before it is multiplied by the binding's actions.
struct Failure {
    message: String,
    reason: String,
    line: usize,
}

impl PolicySet {
    /// Every violation of every policy for `subject`, in policy order.
    pub fn evaluate(&self, subject: &Subject<'_>) -> Vec<Violation> {
        let identity = subject.identity();
        let applicable: Vec<(&Policy, Vec<&Binding>)> = self
            .policies
            .iter()
            .filter(|policy| matches(&policy.match_constraints, subject, &identity, true))
            .map(|policy| (policy, selected_bindings(policy, subject, &identity)))
            .filter(|(_, bindings)| !bindings.is_empty())
            .collect();
        let Some(env) = self.env.as_ref().filter(|_| !applicable.is_empty()) else {
            return Vec::new();
        };
        // The subject is turned into CEL values once; each policy evaluates in a child
        // scope of this context.
        let request = request_json(&identity);
        let namespace = namespace_json(subject, &identity);
        let mut root = Context::with_env(env.clone());
        root.add_variable_as_val("object", json_to_val(subject.object));
        root.add_variable_as_val(
            "oldObject",
            subject.old_object.map_or_else(null, json_to_val),
        );
        root.add_variable_as_val("request", json_to_val(&request));
        root.add_variable_as_val("namespaceObject", json_to_val(&namespace));
        root.add_variable_as_val("variables", Box::new(CelMap::from(HashMap::new())));
        let mut violations = Vec::new();
        for (policy, bindings) in applicable {
            for failure in failures(policy, &root) {
                for binding in &bindings {
                    for &action in &binding.actions {
                        violations.push(Violation {
                            policy: policy.name.clone(),
                            binding: binding.name.clone(),
                            action,
                            kind: identity.kind.clone(),
                            namespace: identity.namespace.clone(),
                            name: identity.name.clone(),
                            message: failure.message.clone(),
                            reason: failure.reason.clone(),
                            source: subject.source.cloned(),
                            policy_file: policy.file.clone(),
                            policy_line: failure.line,
                        });
                    }
                }
            }
        }
        violations
    }
}

/// The bindings of `policy` whose `matchResources` select the subject.
fn selected_bindings<'p>(
    policy: &'p Policy,
    subject: &Subject<'_>,
    identity: &Identity,
) -> Vec<&'p Binding> {
    policy
        .bindings
        .iter()
        .filter(|b| {
            b.match_resources
                .as_ref()
                .is_none_or(|m| matches(m, subject, identity, false))
        })
        .collect()
}

/// Why `policy` fails for the subject bound in `root`: matchConditions, then variables,
/// then each validation.
fn failures(policy: &Policy, root: &Context<'_, '_>) -> Vec<Failure> {
    let fail = |expression: &Expression, error: EvalError| {
        (policy.failure_policy == FailurePolicy::Fail).then(|| Failure {
            message: format!("expression `{}` failed: {error}", expression.source),
            reason: "InternalError".to_string(),
            line: expression.line,
        })
    };
    match match_conditions(policy, root) {
        Applies::No => return Vec::new(),
        Applies::Failed(expression, error) => {
            return fail(expression, error).into_iter().collect();
        }
        Applies::Yes => {}
    }
    let (values, errors) = variables(policy, root);
    let mut scope = root.new_inner_scope();
    scope.add_variable_as_val("variables", variables_map(&values, |_| true));
    policy
        .validations
        .iter()
        .filter_map(|validation| {
            let failed_variable = validation.expression.variables.iter().find_map(|name| {
                errors.get(name).map(|e| EvalError::Variable {
                    name: name.clone(),
                    source: Box::new(e.clone()),
                })
            });
            if let Some(error) = failed_variable {
                return fail(&validation.expression, error);
            }
            match run(&validation.expression, &scope).and_then(as_bool) {
                Ok(true) => None,
                Ok(false) => Some(Failure {
                    message: message(validation, &scope),
                    reason: validation.reason.clone(),
                    line: validation.expression.line,
                }),
                Err(error) => fail(&validation.expression, error),
            }
        })
        .collect()
}

fn null<'v>() -> Box<dyn Val + 'v> {
    Box::new(CelNull)
}

/// `request` as an admission request carries it.
fn request_json(identity: &Identity) -> serde_json::Value {
    json!({
        "operation": identity.operation.as_str(),
        "namespace": identity.namespace.clone().unwrap_or_default(),
        "name": identity.name,
        "kind": {"group": identity.group, "version": identity.version, "kind": identity.kind},
        "resource": {"group": identity.group, "version": identity.version, "resource": identity.resource},
        "requestKind": {"group": identity.group, "version": identity.version, "kind": identity.kind},
        "requestResource": {"group": identity.group, "version": identity.version, "resource": identity.resource},
        "subResource": "",
        "dryRun": false,
    })
}

/// `namespaceObject`: the namespace with its labels when known, else null.
fn namespace_json(subject: &Subject<'_>, identity: &Identity) -> serde_json::Value {
    match (&identity.namespace, subject.namespace_labels) {
        (Some(name), Some(labels)) => json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels},
        }),
        _ => serde_json::Value::Null,
    }
}

enum Applies<'p> {
    Yes,
    No,
    Failed(&'p Expression, EvalError),
}

/// Kubernetes semantics: any false condition skips the policy, even when another failed.
fn match_conditions<'p>(policy: &'p Policy, context: &Context<'_, '_>) -> Applies<'p> {
    let mut failed = None;
    for condition in &policy.match_conditions {
        match run(&condition.expression, context).and_then(as_bool) {
            Ok(true) => {}
            Ok(false) => return Applies::No,
            Err(error) => {
                failed.get_or_insert((
                    &condition.expression,
                    EvalError::MatchCondition {
                        name: condition.name.clone(),
                        source: Box::new(error),
                    },
                ));
            }
        }
    }
    match failed {
        Some((expression, error)) => Applies::Failed(expression, error),
        None => Applies::Yes,
    }
}

type Values<'v> = Vec<(String, Box<dyn Val + 'v>)>;

/// Evaluates the variables in order; each sees the ones before it.
fn variables<'v>(
    policy: &Policy,
    root: &Context<'_, 'v>,
) -> (Values<'v>, BTreeMap<String, EvalError>) {
    let mut values: Values<'v> = Vec::new();
    let mut errors = BTreeMap::new();
    for variable in &policy.variables {
        let expression = &variable.expression;
        if let Some(name) = expression
            .variables
            .iter()
            .find(|n| errors.contains_key(*n))
        {
            errors.insert(variable.name.clone(), EvalError::ReadsFailed(name.clone()));
            continue;
        }
        // Only the variables this one reads (directly or not) are copied into its scope.
        let mut scope = root.new_inner_scope();
        scope.add_variable_as_val(
            "variables",
            variables_map(&values, |name| expression.variables.contains(name)),
        );
        match run(expression, &scope) {
            Ok(value) => values.push((variable.name.clone(), value)),
            Err(error) => {
                errors.insert(variable.name.clone(), error);
            }
        }
    }
    (values, errors)
}

/// The `variables` map: copies of the values whose name is `wanted`.
fn variables_map<'v>(values: &Values<'v>, wanted: impl Fn(&str) -> bool) -> Box<dyn Val + 'v> {
    let map: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> = values
        .iter()
        .filter(|(name, _)| wanted(name))
        .map(|(name, value)| (CelMapKey::from(name.clone()), value.clone_as_boxed()))
        .collect();
    Box::new(CelMap::from(map))
}

/// Evaluates `expression` (its metered copy, within the cost budget); a panic inside the
/// interpreter is an error like any other.
fn run<'v>(
    expression: &Expression,
    context: &Context<'_, 'v>,
) -> Result<Box<dyn Val + 'v>, EvalError> {
    cost::reset();
    let result = catch_unwind(AssertUnwindSafe(|| {
        Value::resolve_val(&expression.metered, context).map(|value| value.clone_as_boxed())
    }));
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(EvalError::Execution(error)),
        Err(payload) if payload.is::<cost::OverBudget>() => Err(EvalError::OverBudget),
        Err(_) => Err(EvalError::Panicked),
    }
}

fn as_bool(value: Box<dyn Val + '_>) -> Result<bool, EvalError> {
    value
        .downcast_ref::<CelBool>()
        .map(|b| *b.inner())
        .ok_or_else(|| EvalError::NotBool(value.get_type().name().to_string()))
}

/// The message of a failed validation: messageExpression when it gives a non-empty single
/// line, else message, else the expression (as Kubernetes does).
fn message(validation: &CompiledValidation, context: &Context<'_, '_>) -> String {
    let from_expression = validation.message_expression.as_ref().and_then(|m| {
        let value = run(m, context).ok()?;
        let text = value
            .downcast_ref::<CelString>()?
            .inner()
            .trim()
            .to_string();
        (!text.is_empty() && !text.contains('\n')).then_some(text)
    });
    from_expression
        .or_else(|| validation.message.clone())
        .unwrap_or_else(|| format!("failed expression: {}", validation.expression.source))
}
