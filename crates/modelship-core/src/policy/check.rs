//! Load-time checks of a parsed expression: every function it calls is one modelship
//! provides, every identifier is a variable a policy can see, every `variables.<name>` is
//! declared, and the types that are known without an object (literals and the results of
//! known functions) fit the operators and functions they are given to.
//!
//! The type check is deliberately partial: a field of `object` can hold anything, so it is
//! `dyn` and never a type error here; it becomes an evaluation error instead, which the
//! policy's `failurePolicy` handles. What is reported is certain to fail everywhere.

use std::collections::BTreeSet;

use cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue};

use super::library::{SUPPORTED_FUNCTIONS, TYPE_IDENTIFIERS, is_operator};

/// The variables every expression can see, as in a Kubernetes admission policy.
pub const ROOT_VARIABLES: &[&str] = &[
    "object",
    "oldObject",
    "request",
    "namespaceObject",
    "variables",
];

/// A type known at load time; `Dyn` is anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Dyn,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    List,
    Map,
    Quantity,
}

impl Ty {
    /// The CEL name of the type.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Dyn => "dyn",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Uint => "uint",
            Ty::Double => "double",
            Ty::String => "string",
            Ty::Bytes => "bytes",
            Ty::Null => "null",
            Ty::List => "list",
            Ty::Map => "map",
            Ty::Quantity => "kubernetes.Quantity",
        }
    }

    fn fits(self, expected: Ty) -> bool {
        self == Ty::Dyn || expected == Ty::Dyn || self == expected
    }

    fn is_number(self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }
}

/// One problem found in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A call of a function modelship does not provide.
    UnknownFunction(String),
    /// An identifier that is no variable of a policy.
    UnknownIdentifier(String),
    /// `variables.<name>` with no such variable declared before.
    UnknownVariable(String),
    /// A variable modelship does not provide (`params`, `authorizer`).
    Unsupported(String),
    /// A type that cannot fit.
    Type(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::UnknownFunction(name) => write!(f, "unknown function `{name}`"),
            Problem::UnknownIdentifier(name) => write!(f, "unknown identifier `{name}`"),
            Problem::UnknownVariable(name) => write!(f, "undeclared variable `variables.{name}`"),
            Problem::Unsupported(what) => f.write_str(what),
            Problem::Type(message) => write!(f, "type error: {message}"),
        }
    }
}

/// What a check found: the problems, and the `variables.<name>` the expression reads.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<Problem>,
    pub variables: BTreeSet<String>,
    /// The type of the whole expression, when known.
    pub ty: Option<Ty>,
}

/// Checks `expr`, where `declared` are the variable names it may read.
pub fn check(expr: &IdedExpr, declared: &[String]) -> Report {
    let mut checker = Checker {
        declared,
        bound: Vec::new(),
        report: Report::default(),
    };
    let ty = checker.visit(expr);
    checker.report.ty = (ty != Ty::Dyn).then_some(ty);
    checker.report
}

struct Checker<'a> {
    declared: &'a [String],
    /// Names bound by enclosing comprehensions.
    bound: Vec<String>,
    report: Report,
}

impl Checker<'_> {
    fn problem(&mut self, problem: Problem) {
        if !self.report.problems.contains(&problem) {
            self.report.problems.push(problem);
        }
    }

    fn visit(&mut self, expr: &IdedExpr) -> Ty {
        match &expr.expr {
            Expr::Unspecified => Ty::Dyn,
            Expr::Literal(literal) => literal_type(literal),
            Expr::Ident(name) => {
                self.identifier(name);
                Ty::Dyn
            }
            Expr::Select(select) => {
                if let Expr::Ident(root) = &select.operand.expr
                    && root == "variables"
                    && !self.bound.iter().any(|b| b == "variables")
                {
                    self.variable(&select.field);
                } else {
                    self.visit(&select.operand);
                }
                if select.test { Ty::Bool } else { Ty::Dyn }
            }
            Expr::List(list) => {
                for element in &list.elements {
                    self.visit(element);
                }
                Ty::List
            }
            Expr::Map(map) => {
                self.entries(&map.entries);
                Ty::Map
            }
            Expr::Struct(structure) => {
                self.entries(&structure.entries);
                self.problem(Problem::Unsupported(format!(
                    "message construction `{}{{...}}` is not supported",
                    structure.type_name
                )));
                Ty::Dyn
            }
            Expr::Comprehension(comprehension) => {
                self.visit(&comprehension.iter_range);
                self.visit(&comprehension.accu_init);
                let depth = self.bound.len();
                self.bound.push(comprehension.iter_var.clone());
                self.bound.extend(comprehension.iter_var2.clone());
                self.bound.push(comprehension.accu_var.clone());
                self.visit(&comprehension.loop_cond);
                self.visit(&comprehension.loop_step);
                let ty = self.visit(&comprehension.result);
                self.bound.truncate(depth);
                ty
            }
            Expr::Call(call) => self.call(call),
        }
    }

    fn entries(&mut self, entries: &[cel::common::ast::IdedEntryExpr]) {
        for entry in entries {
            match &entry.expr {
                EntryExpr::MapEntry(map_entry) => {
                    self.visit(&map_entry.key);
                    self.visit(&map_entry.value);
                }
                EntryExpr::StructField(field) => {
                    self.visit(&field.value);
                }
            }
        }
    }

    fn identifier(&mut self, name: &str) {
        if self.bound.iter().any(|b| b == name)
            || ROOT_VARIABLES.contains(&name)
            || TYPE_IDENTIFIERS.contains(&name)
        {
            return;
        }
        match name {
            "params" => self.problem(Problem::Unsupported(
                "`params` is not supported: modelship evaluates policies without parameter resources"
                    .to_string(),
            )),
            "authorizer" => self.problem(Problem::Unsupported(
                "`authorizer` is not supported: there is no requesting user before apply"
                    .to_string(),
            )),
            _ => self.problem(Problem::UnknownIdentifier(name.to_string())),
        }
    }

    fn variable(&mut self, name: &str) {
        if self.declared.iter().any(|d| d == name) {
            self.report.variables.insert(name.to_string());
        } else {
            self.problem(Problem::UnknownVariable(name.to_string()));
        }
    }

    fn call(&mut self, call: &CallExpr) -> Ty {
        // `strings.quote(x)` parses as a call of `quote` on the identifier `strings`.
        if let Some(target) = &call.target
            && let Expr::Ident(namespace) = &target.expr
            && !self.bound.contains(namespace)
            && !ROOT_VARIABLES.contains(&namespace.as_str())
        {
            let qualified = format!("{namespace}.{}", call.func_name);
            if SUPPORTED_FUNCTIONS.contains(&qualified.as_str()) {
                let args: Vec<Ty> = call.args.iter().map(|a| self.visit(a)).collect();
                return self.overload(&qualified, None, &args);
            }
        }
        let target = call.target.as_ref().map(|t| self.visit(t));
        let args: Vec<Ty> = call.args.iter().map(|a| self.visit(a)).collect();
        let name = call.func_name.as_str();
        if is_operator(name) {
            return self.operator(name, &args);
        }
        if !SUPPORTED_FUNCTIONS.contains(&name) {
            self.problem(Problem::UnknownFunction(name.to_string()));
            return Ty::Dyn;
        }
        self.overload(name, target, &args)
    }

    fn overload(&mut self, name: &str, target: Option<Ty>, args: &[Ty]) -> Ty {
        let candidates: Vec<&Signature> = SIGNATURES
            .iter()
            .filter(|s| s.name == name && s.receiver.is_some() == target.is_some())
            .filter(|s| s.args.len() == args.len())
            .collect();
        if candidates.is_empty() {
            let style = if target.is_some() {
                "a method"
            } else {
                "a function"
            };
            self.problem(Problem::Type(format!(
                "`{name}` is not {style} taking {} argument(s)",
                args.len()
            )));
            return Ty::Dyn;
        }
        let fitting: Vec<&&Signature> = candidates
            .iter()
            .filter(|s| s.receiver.zip(target).is_none_or(|(r, t)| t.fits(r)))
            .filter(|s| {
                s.args
                    .iter()
                    .zip(args)
                    .all(|(expected, ty)| ty.fits(*expected))
            })
            .collect();
        match fitting.as_slice() {
            [] => {
                let receiver = target.map(|t| format!("{}.", t.name())).unwrap_or_default();
                let args: Vec<&str> = args.iter().map(|t| t.name()).collect();
                self.problem(Problem::Type(format!(
                    "no overload of `{name}` for {receiver}({})",
                    args.join(", ")
                )));
                Ty::Dyn
            }
            [first, rest @ ..] if rest.iter().all(|s| s.result == first.result) => first.result,
            _ => Ty::Dyn,
        }
    }

    fn operator(&mut self, name: &str, args: &[Ty]) -> Ty {
        let mismatch = |checker: &mut Self, what: &str| {
            let args: Vec<&str> = args.iter().map(|t| t.name()).collect();
            checker.problem(Problem::Type(format!(
                "{what} `{}` cannot take ({})",
                operator_symbol(name),
                args.join(", ")
            )));
        };
        match (name, args) {
            ("_&&_" | "_||_", [a, b]) => {
                if !a.fits(Ty::Bool) || !b.fits(Ty::Bool) {
                    mismatch(self, "logical operator");
                }
                Ty::Bool
            }
            ("!_", [a]) => {
                if !a.fits(Ty::Bool) {
                    mismatch(self, "logical operator");
                }
                Ty::Bool
            }
            ("_?_:_", [c, a, b]) => {
                if !c.fits(Ty::Bool) {
                    mismatch(self, "conditional");
                }
                if a == b { *a } else { Ty::Dyn }
            }
            ("_<_" | "_<=_" | "_>_" | "_>=_", [a, b]) => {
                let orderable = |t: &Ty| !matches!(t, Ty::Null | Ty::Map | Ty::List | Ty::Quantity);
                let compatible = a.fits(*b) || (a.is_number() && b.is_number());
                if !orderable(a) || !orderable(b) || !compatible {
                    mismatch(self, "comparison");
                }
                Ty::Bool
            }
            ("_+_", [a, b]) => self.arithmetic(
                name,
                *a,
                *b,
                &[
                    Ty::Int,
                    Ty::Uint,
                    Ty::Double,
                    Ty::String,
                    Ty::Bytes,
                    Ty::List,
                ],
            ),
            ("_-_" | "_*_" | "_/_", [a, b]) => {
                self.arithmetic(name, *a, *b, &[Ty::Int, Ty::Uint, Ty::Double])
            }
            ("_%_", [a, b]) => self.arithmetic(name, *a, *b, &[Ty::Int, Ty::Uint]),
            ("-_", [a]) => {
                if !matches!(a, Ty::Dyn | Ty::Int | Ty::Double) {
                    mismatch(self, "negation");
                }
                *a
            }
            ("_==_" | "_!=_" | "@in" | "@not_strictly_false", _) => Ty::Bool,
            _ => Ty::Dyn,
        }
    }

    fn arithmetic(&mut self, name: &str, a: Ty, b: Ty, allowed: &[Ty]) -> Ty {
        let known = |t: Ty| t == Ty::Dyn || allowed.contains(&t);
        if !known(a) || !known(b) || (a != Ty::Dyn && b != Ty::Dyn && a != b) {
            self.problem(Problem::Type(format!(
                "operator `{}` cannot take ({}, {})",
                operator_symbol(name),
                a.name(),
                b.name()
            )));
            return Ty::Dyn;
        }
        if a == Ty::Dyn { b } else { a }
    }
}

fn operator_symbol(name: &str) -> &str {
    name.trim_matches('_').trim_end_matches('_')
}

fn literal_type(literal: &LiteralValue) -> Ty {
    match literal {
        LiteralValue::Boolean(_) => Ty::Bool,
        LiteralValue::Bytes(_) => Ty::Bytes,
        LiteralValue::Double(_) => Ty::Double,
        LiteralValue::Int(_) => Ty::Int,
        LiteralValue::Null => Ty::Null,
        LiteralValue::String(_) => Ty::String,
        LiteralValue::UInt(_) => Ty::Uint,
    }
}

/// One overload of a supported function, for the load-time type check.
struct Signature {
    name: &'static str,
    receiver: Option<Ty>,
    args: &'static [Ty],
    result: Ty,
}

const fn global(name: &'static str, args: &'static [Ty], result: Ty) -> Signature {
    Signature {
        name,
        receiver: None,
        args,
        result,
    }
}

const fn member(name: &'static str, receiver: Ty, args: &'static [Ty], result: Ty) -> Signature {
    Signature {
        name,
        receiver: Some(receiver),
        args,
        result,
    }
}

use Ty::{Bool as B, Double as D, Dyn as Any, Int as I, List as L, Quantity as Q, String as S};

const SIGNATURES: &[Signature] = &[
    global("size", &[Any], I),
    member("size", Any, &[], I),
    member("contains", S, &[S], B),
    member("startsWith", S, &[S], B),
    member("endsWith", S, &[S], B),
    member("matches", S, &[S], B),
    global("matches", &[S, S], B),
    global("int", &[Any], I),
    global("uint", &[Any], Ty::Uint),
    global("double", &[Any], D),
    global("string", &[Any], S),
    global("bool", &[Any], B),
    global("bytes", &[Any], Ty::Bytes),
    global("dyn", &[Any], Any),
    global("type", &[Any], Any),
    global("optional.none", &[], Any),
    global("optional.of", &[Any], Any),
    global("optional.ofNonZeroValue", &[Any], Any),
    member("value", Any, &[], Any),
    member("hasValue", Any, &[], B),
    member("or", Any, &[Any], Any),
    member("orValue", Any, &[Any], Any),
    member("charAt", S, &[I], S),
    member("indexOf", S, &[S], I),
    member("indexOf", S, &[S, I], I),
    member("lastIndexOf", S, &[S], I),
    member("lastIndexOf", S, &[S, I], I),
    member("join", L, &[], S),
    member("join", L, &[S], S),
    member("lowerAscii", S, &[], S),
    member("upperAscii", S, &[], S),
    member("trim", S, &[], S),
    member("reverse", S, &[], S),
    member("replace", S, &[S, S], S),
    member("replace", S, &[S, S, I], S),
    member("split", S, &[S], L),
    member("split", S, &[S, I], L),
    member("substring", S, &[I], S),
    member("substring", S, &[I, I], S),
    member("format", S, &[L], S),
    global("strings.quote", &[S], S),
    member("find", S, &[S], S),
    member("findAll", S, &[S], L),
    member("findAll", S, &[S, I], L),
    member("sum", L, &[], Any),
    member("min", L, &[], Any),
    member("max", L, &[], Any),
    member("isSorted", L, &[], B),
    global("quantity", &[S], Q),
    global("isQuantity", &[S], B),
    member("isLessThan", Q, &[Q], B),
    member("isGreaterThan", Q, &[Q], B),
    member("compareTo", Q, &[Q], I),
    member("asInteger", Q, &[], I),
    member("isInteger", Q, &[], B),
    member("asApproximateFloat", Q, &[], D),
    member("sign", Q, &[], I),
    member("add", Q, &[Q], Q),
    member("add", Q, &[I], Q),
    member("sub", Q, &[Q], Q),
    member("sub", Q, &[I], Q),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(expression: &str) -> Vec<String> {
        let env = super::super::library::env().unwrap();
        let program = env.compile(expression).unwrap();
        let declared = vec!["image".to_string()];
        check(program.expression(), &declared)
            .problems
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn accepts_what_policies_write() {
        for expression in [
            "object.spec.gpu.count <= 4",
            "has(object.spec.owner) && object.spec.owner != ''",
            "object.spec.template.spec.containers.all(c, c.image.startsWith('nvcr.io/'))",
            "variables.image.contains(':') && !variables.image.endsWith(':latest')",
            "quantity(object.a).isLessThan(quantity('1Gi'))",
            "oldObject == null || request.operation == 'CREATE'",
            "strings.quote('a') == '\"a\"'",
            "[1, 2].map(x, x * 2).exists(y, y == 4)",
            "object.x.split('/').size() > 1",
            "type(object.x) == string",
            "1 < 2.0",
        ] {
            assert_eq!(problems(expression), Vec::<String>::new(), "{expression}");
        }
    }

    #[test]
    fn reports_unknown_names_and_type_errors() {
        let cases = [
            (
                "object.spec.image.isSemver()",
                "unknown function `isSemver`",
            ),
            ("ip('1.2.3.4').family() == 4", "unknown function `ip`"),
            ("objekt.spec == 1", "unknown identifier `objekt`"),
            (
                "variables.imag == ''",
                "undeclared variable `variables.imag`",
            ),
            ("params.max > 1", "`params` is not supported"),
            (
                "quantity(1)",
                "type error: no overload of `quantity` for (int)",
            ),
            (
                "quantity('1').isLessThan(2)",
                "type error: no overload of `isLessThan`",
            ),
            (
                "'a' + 1 == 'a1'",
                "type error: operator `+` cannot take (string, int)",
            ),
            (
                "'a'.startsWith('a', 'b')",
                "type error: `startsWith` is not a method taking 2",
            ),
            (
                "!'yes'",
                "type error: logical operator `!` cannot take (string)",
            ),
            ("object.x < [1]", "type error: comparison"),
        ];
        for (expression, expected) in cases {
            let found = problems(expression);
            assert!(
                found.iter().any(|p| p.starts_with(expected)),
                "{expression}: expected {expected:?}, found {found:?}"
            );
        }
    }

    #[test]
    fn every_supported_function_has_a_signature_and_back() {
        for function in SUPPORTED_FUNCTIONS {
            assert!(
                SIGNATURES.iter().any(|s| s.name == *function),
                "{function} has no signature"
            );
        }
        for signature in SIGNATURES {
            assert!(
                SUPPORTED_FUNCTIONS.contains(&signature.name),
                "{} is not supported",
                signature.name
            );
        }
    }

    #[test]
    fn knows_result_types() {
        let env = super::super::library::env().unwrap();
        let ty = |e: &str| check(env.compile(e).unwrap().expression(), &[]).ty;
        assert_eq!(ty("'a' + 'b'"), Some(Ty::String));
        assert_eq!(ty("object.x"), None);
        assert_eq!(ty("size(object.x) > 1"), Some(Ty::Bool));
        assert_eq!(ty("quantity('1').asInteger()"), Some(Ty::Int));
    }
}
