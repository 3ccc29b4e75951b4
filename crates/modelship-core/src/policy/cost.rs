//! The cost budget of one expression's evaluation. The `cel` interpreter has no cost
//! limit of its own, so the expression it runs is a metered copy of the compiled one:
//!
//! ```text
//! compiled AST ──meter──▶ every read of a variable (`object.spec.x`, an iteration
//!                          variable) and every comprehension range wrapped in
//!                          `@cost(…)`, which charges 1 + the size of a list or map
//! evaluate: BUDGET set to MAX_COST ─ each @cost charges ─ past the budget: unwinds to
//!           `evaluate::run`, reported as EvalError::Budget at the policy's file:line
//! ```
//!
//! A comprehension charges the length of its range before it iterates, so nested loops
//! (`l.all(x, l.all(y, …))`) pay for every inner iteration and are stopped before they
//! run; a body that copies a list (`l.map(x, object.spec.l)`) pays for each copy. The
//! macros' accumulators are left bare: the interpreter recognises `map`, `filter`, `all`
//! and `exists` by their shape and runs them without copying. Expressions are also
//! bounded in length at load ([`MAX_EXPRESSION_BYTES`]).

use std::cell::Cell;
use std::collections::HashSet;

use cel::common::ast::{CallExpr, EntryExpr, Expr};
use cel::common::types::DYN_TYPE;
use cel::common::value::CowVal;
use cel::{DeclarationError, Env, ExecutionError, IdedExpr};

/// Most cost units (variable reads, list and map elements) one evaluation of one
/// expression may spend: the per-call limit of Kubernetes' CEL.
pub const MAX_COST: u64 = 1_000_000;

/// Longest expression, in bytes of source.
pub const MAX_EXPRESSION_BYTES: usize = 5 * 1024;

/// The function the metered copy calls.
const COST_FUNCTION: &str = "@cost";

/// The variables a policy sees at its root; their reads are metered.
const ROOT_VARIABLES: &[&str] = &[
    "object",
    "oldObject",
    "request",
    "namespaceObject",
    "variables",
    "params",
];

thread_local! {
    /// What is left of the current evaluation's budget on this thread.
    static LEFT: Cell<u64> = const { Cell::new(MAX_COST) };
}

/// The payload an evaluation past its budget unwinds with (not a panic: no hook runs).
#[derive(Debug)]
pub struct OverBudget;

/// Registers `@cost` on the environment.
pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload(COST_FUNCTION, "cost_dyn", vec![DYN_TYPE], charge)
}

/// Gives this thread's next evaluation the whole budget.
pub fn reset() {
    LEFT.with(|left| left.set(MAX_COST));
}

/// `@cost(x)`: charges 1 + the size of a list or map, then gives `x` back. Past the
/// budget it unwinds with [`OverBudget`] rather than failing: an error inside `all` or
/// `exists` may be dropped by CEL's error semantics, and the evaluation must stop.
fn charge<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let Some(value) = args.into_iter().next() else {
        return Err(ExecutionError::function_error(COST_FUNCTION, "no argument"));
    };
    let size = match value.get_type().name() {
        "list" | "map" => value
            .as_sizer()
            .map_or(0, |s| u64::try_from(*s.size().inner()).unwrap_or(0)),
        _ => 0,
    };
    let over = LEFT.with(|left| match left.get().checked_sub(1 + size) {
        Some(rest) => {
            left.set(rest);
            false
        }
        None => {
            left.set(0);
            true
        }
    });
    if over {
        std::panic::resume_unwind(Box::new(OverBudget));
    }
    Ok(value)
}

/// The metered copy of `expression` (see the module docs).
pub fn meter(expression: &IdedExpr) -> IdedExpr {
    let mut copy = expression.clone();
    let mut scope = Scope::default();
    scope.walk(&mut copy);
    copy
}

/// Iteration and accumulator variables of the comprehensions around a node.
#[derive(Default)]
struct Scope {
    iteration: Vec<String>,
    accumulators: HashSet<String>,
}

impl Scope {
    /// Whether a read rooted at `name` is of data (metered), rather than of a type, a
    /// namespace or an accumulator.
    fn is_data(&self, name: &str) -> bool {
        !self.accumulators.contains(name)
            && (ROOT_VARIABLES.contains(&name) || self.iteration.iter().any(|v| v == name))
    }

    fn walk(&mut self, node: &mut IdedExpr) {
        match &mut node.expr {
            Expr::Ident(name) => {
                if self.is_data(name) {
                    wrap(node);
                }
            }
            Expr::Select(select) => {
                if root_name(&select.operand.expr).is_some_and(|name| self.is_data(name)) {
                    wrap(node);
                } else {
                    self.walk(&mut select.operand);
                }
            }
            Expr::Call(call) => {
                if let Some(target) = &mut call.target {
                    self.walk(target);
                }
                for arg in &mut call.args {
                    self.walk(arg);
                }
            }
            Expr::List(list) => list.elements.iter_mut().for_each(|e| self.walk(e)),
            Expr::Map(map) => map.entries.iter_mut().for_each(|e| self.entry(e)),
            Expr::Struct(strct) => strct.entries.iter_mut().for_each(|e| self.entry(e)),
            Expr::Comprehension(comprehension) => {
                self.walk(&mut comprehension.iter_range);
                if !is_cost_call(&comprehension.iter_range) {
                    wrap(&mut comprehension.iter_range);
                }
                self.walk(&mut comprehension.accu_init);
                let added_accumulator = self.accumulators.insert(comprehension.accu_var.clone());
                self.iteration.push(comprehension.iter_var.clone());
                if let Some(second) = &comprehension.iter_var2 {
                    self.iteration.push(second.clone());
                }
                self.walk(&mut comprehension.loop_cond);
                self.walk(&mut comprehension.loop_step);
                self.walk(&mut comprehension.result);
                self.iteration.pop();
                if comprehension.iter_var2.is_some() {
                    self.iteration.pop();
                }
                if added_accumulator {
                    self.accumulators.remove(&comprehension.accu_var);
                }
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn entry(&mut self, entry: &mut cel::common::ast::IdedEntryExpr) {
        match &mut entry.expr {
            EntryExpr::StructField(field) => self.walk(&mut field.value),
            EntryExpr::MapEntry(map_entry) => {
                self.walk(&mut map_entry.key);
                self.walk(&mut map_entry.value);
            }
        }
    }
}

/// The identifier a chain of field selections starts from.
fn root_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Ident(name) => Some(name),
        Expr::Select(select) => root_name(&select.operand.expr),
        _ => None,
    }
}

fn is_cost_call(node: &IdedExpr) -> bool {
    matches!(&node.expr, Expr::Call(call) if call.func_name == COST_FUNCTION)
}

/// `x` becomes `@cost(x)`, keeping the node's id (errors stay located where they were).
fn wrap(node: &mut IdedExpr) {
    let inner = std::mem::take(node);
    node.id = inner.id;
    node.expr = Expr::Call(CallExpr {
        func_name: COST_FUNCTION.to_string(),
        target: None,
        args: vec![inner],
    });
}
