//! The CEL environment policies are compiled and evaluated in: the CEL standard library,
//! the strings extension, and the Kubernetes libraries modelship provides (quantities and
//! the regex functions `find` and `findAll`), plus the conversion of JSON objects into CEL
//! values.
//!
//! [`SUPPORTED_FUNCTIONS`] is the list load-time checking holds expressions to: a call of
//! any other function is reported with its file and line before anything is evaluated,
//! instead of failing later at admission in one place and not the other.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt, INT_TYPE,
    STRING_TYPE,
};
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError};

use super::{cost, lists, quantity};

/// Functions an expression may call (macros such as `has`, `all`, `exists`, `exists_one`,
/// `map` and `filter` are expanded by the parser and never appear as calls).
pub const SUPPORTED_FUNCTIONS: &[&str] = &[
    // CEL standard library.
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bool",
    "bytes",
    "dyn",
    "type",
    // Optional values (`object.?spec.?gpu.orValue(...)`).
    "optional.none",
    "optional.of",
    "optional.ofNonZeroValue",
    "value",
    "hasValue",
    "or",
    "orValue",
    // Strings extension (Kubernetes `ext.Strings`).
    "charAt",
    "indexOf",
    "lastIndexOf",
    "join",
    "lowerAscii",
    "upperAscii",
    "trim",
    "replace",
    "split",
    "substring",
    "format",
    "reverse",
    "strings.quote",
    // Kubernetes regex library.
    "find",
    "findAll",
    // Kubernetes list library.
    "sum",
    "min",
    "max",
    "isSorted",
    // Kubernetes quantity library.
    "quantity",
    "isQuantity",
    "isLessThan",
    "isGreaterThan",
    "compareTo",
    "asInteger",
    "isInteger",
    "asApproximateFloat",
    "sign",
    "add",
    "sub",
];

/// Identifiers that name types rather than variables (`type(x) == string`).
pub const TYPE_IDENTIFIERS: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];

/// True for the interpreter's operators (`_+_`, `!_`, `@in`, ...), which are always there.
pub fn is_operator(function: &str) -> bool {
    function.starts_with(['_', '@', '!', '-'])
}

/// The environment, built once: it is immutable and shared by every policy.
pub fn env() -> Result<Arc<Env>, DeclarationError> {
    static ENV: OnceLock<Result<Arc<Env>, DeclarationError>> = OnceLock::new();
    ENV.get_or_init(|| build_env().map(Arc::new)).clone()
}

fn build_env() -> Result<Env, DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)?;
    env.add_extension(quantity::register)?;
    env.add_extension(lists::register)?;
    env.add_extension(cost::register)?;
    env.add_member_overload("find", "string_find", STRING_TYPE, vec![STRING_TYPE], find)?;
    env.add_member_overload(
        "findAll",
        "string_find_all",
        STRING_TYPE,
        vec![STRING_TYPE],
        find_all,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_n",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        find_all,
    )?;
    Ok(env)
}

/// Largest compiled regex a policy may use, in bytes of the regex program.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn string_arg<'a>(
    function: &str,
    args: &'a [CowVal<'_, '_>],
    n: usize,
) -> Result<&'a str, ExecutionError> {
    args.get(n)
        .and_then(|v| v.downcast_ref::<CelString>())
        .map(|s| s.inner())
        .ok_or_else(|| {
            ExecutionError::function_error(function, format!("argument {n} is not a string"))
        })
}

fn regex(function: &str, pattern: &str) -> Result<regex::Regex, ExecutionError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| ExecutionError::function_error(function, e))
}

/// `s.find(re)`: the first match, or `""`.
fn find<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let text = string_arg("find", &args, 0)?;
    let re = regex("find", string_arg("find", &args, 1)?)?;
    let found = re
        .find(text)
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    Ok(CowVal::owned(CelString::from(found)))
}

/// `s.findAll(re)` and `s.findAll(re, n)`: every match, or the first `n` (all when `n < 0`).
fn find_all<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let text = string_arg("findAll", &args, 0)?;
    let re = regex("findAll", string_arg("findAll", &args, 1)?)?;
    let limit = match args.get(2).and_then(|v| v.downcast_ref::<CelInt>()) {
        Some(n) if *n.inner() >= 0 => usize::try_from(*n.inner()).unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    let found: Vec<Box<dyn Val>> = re
        .find_iter(text)
        .take(limit)
        .map(|m| Box::new(CelString::from(m.as_str().to_string())) as Box<dyn Val>)
        .collect();
    Ok(CowVal::owned(CelList::from(found)))
}

/// A JSON value as a CEL value, borrowing its strings. Integers become `int` (as the
/// Kubernetes API server does), integers beyond `int` become `uint`, others `double`.
pub fn json_to_val<'v>(value: &'v serde_json::Value) -> Box<dyn Val + 'v> {
    use serde_json::Value as J;
    match value {
        J::Null => Box::new(CelNull),
        J::Bool(b) => Box::new(CelBool::from(*b)),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        J::String(s) => Box::new(CelString::from(s.as_str())),
        J::Array(items) => Box::new(CelList::from(
            items.iter().map(json_to_val).collect::<Vec<_>>(),
        )),
        J::Object(fields) => {
            let map: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> = fields
                .iter()
                .map(|(k, v)| (CelMapKey::from(k.as_str()), json_to_val(v)))
                .collect();
            Box::new(CelMap::from(map))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cel::{Context, Value};

    /// Why a sample expression gave no value.
    #[derive(Debug, thiserror::Error)]
    enum EvalError {
        /// It does not parse or names an undeclared function.
        #[error(transparent)]
        Compile(#[from] cel::ParseErrors),
        /// It failed while running.
        #[error(transparent)]
        Execute(#[from] cel::ExecutionError),
    }

    fn eval(expression: &str) -> Result<Value, EvalError> {
        let object = serde_json::json!({
            "spec": {"gpu": {"count": 4}, "image": "nvcr.io/nvidia/triton:24.05", "tags": ["a", "b"]},
            "big": 18446744073709551615u64,
            "ratio": 0.5
        });
        let env = env().unwrap();
        let program = env.compile(expression)?;
        let mut context = Context::with_env(env);
        context.add_variable_as_val("object", json_to_val(&object));
        Ok(program.execute(&context)?)
    }

    /// True when `result` is the CEL value `true`.
    fn is_true(result: &Result<Value, EvalError>) -> bool {
        matches!(result, Ok(Value::Bool(true)))
    }

    #[test]
    fn every_supported_function_is_callable() {
        let samples = [
            ("size", "size('ab') == 2"),
            ("contains", "'abc'.contains('b')"),
            ("startsWith", "'abc'.startsWith('a')"),
            ("endsWith", "'abc'.endsWith('c')"),
            ("matches", "'abc'.matches('^a.c$')"),
            ("int", "int('3') == 3"),
            ("uint", "uint(3) == 3u"),
            ("double", "double(1) == 1.0"),
            ("string", "string(1) == '1'"),
            ("bool", "bool('true')"),
            ("bytes", "bytes('a') == b'a'"),
            ("dyn", "dyn(1) == 1"),
            ("type", "type(1) == int"),
            ("optional.none", "!optional.none().hasValue()"),
            ("optional.of", "optional.of(1).value() == 1"),
            (
                "optional.ofNonZeroValue",
                "!optional.ofNonZeroValue(0).hasValue()",
            ),
            ("value", "object.?spec.?gpu.value() == {'count': 4}"),
            ("hasValue", "!object.?spec.?cpu.hasValue()"),
            ("or", "optional.none().or(optional.of(2)).value() == 2"),
            ("orValue", "object.?spec.?cpu.orValue(5) == 5"),
            ("charAt", "'abc'.charAt(1) == 'b'"),
            ("indexOf", "'abc'.indexOf('c') == 2"),
            ("lastIndexOf", "'abca'.lastIndexOf('a') == 3"),
            ("join", "['a', 'b'].join('-') == 'a-b'"),
            ("lowerAscii", "'AbC'.lowerAscii() == 'abc'"),
            ("upperAscii", "'abc'.upperAscii() == 'ABC'"),
            ("trim", "' a '.trim() == 'a'"),
            ("replace", "'aa'.replace('a', 'b') == 'bb'"),
            ("split", "'a/b'.split('/') == ['a', 'b']"),
            ("substring", "'abc'.substring(1) == 'bc'"),
            ("format", "'%s-%d'.format(['a', 1]) == 'a-1'"),
            ("reverse", "'abc'.reverse() == 'cba'"),
            ("strings.quote", "strings.quote('a') == '\"a\"'"),
            ("find", "'v1.2'.find('[0-9]+') == '1'"),
            (
                "findAll",
                "'v1.2'.findAll('[0-9]+') == ['1', '2'] && 'v1.2'.findAll('[0-9]', 1) == ['1']",
            ),
            (
                "sum",
                "[1, 2, 3].sum() == 6 && [].sum() == 0 && [0.5, 0.25].sum() == 0.75",
            ),
            ("min", "[3, 1, 2].min() == 1 && ['b', 'a'].min() == 'a'"),
            ("max", "[3, 1, 2].max() == 3"),
            ("isSorted", "[1, 2, 2].isSorted() && ![2, 1].isSorted()"),
            ("quantity", "quantity('1') == quantity('1000m')"),
            ("isQuantity", "isQuantity('8Gi') && !isQuantity('8GB')"),
            (
                "isLessThan",
                "quantity('1Gi').isLessThan(quantity('1025Mi'))",
            ),
            (
                "isGreaterThan",
                "quantity('2').isGreaterThan(quantity('1500m'))",
            ),
            (
                "compareTo",
                "quantity('1k').compareTo(quantity('1000')) == 0",
            ),
            ("asInteger", "quantity('2k').asInteger() == 2000"),
            ("isInteger", "!quantity('500m').isInteger()"),
            (
                "asApproximateFloat",
                "quantity('500m').asApproximateFloat() == 0.5",
            ),
            ("sign", "quantity('-1').sign() == -1"),
            (
                "add",
                "quantity('1').add(quantity('500m')) == quantity('1.5') && quantity('1').add(1) == quantity('2')",
            ),
            (
                "sub",
                "quantity('1').sub(quantity('500m')) == quantity('0.5') && quantity('1').sub(1) == quantity('0')",
            ),
        ];
        for function in SUPPORTED_FUNCTIONS {
            let (_, sample) = samples
                .iter()
                .find(|(name, _)| name == function)
                .unwrap_or_else(|| panic!("no sample for {function}"));
            let result = eval(sample);
            assert!(is_true(&result), "{function}: {sample}: {result:?}");
        }
    }

    #[test]
    fn macros_work_on_json_objects() {
        for expression in [
            "object.spec.gpu.count <= 4",
            "has(object.spec.gpu) && !has(object.spec.cpu)",
            "object.spec.tags.all(t, t.size() == 1)",
            "object.spec.tags.exists(t, t == 'b')",
            "object.spec.tags.exists_one(t, t == 'b')",
            "object.spec.tags.map(t, t + 'x') == ['ax', 'bx']",
            "object.spec.tags.filter(t, t != 'a') == ['b']",
            "object.spec.image.split('/')[0] == 'nvcr.io'",
            "object.big == 18446744073709551615u",
            "object.ratio == 0.5",
        ] {
            let result = eval(expression);
            assert!(is_true(&result), "{expression}: {result:?}");
        }
    }

    #[test]
    fn missing_fields_and_bad_arguments_are_errors_not_panics() {
        assert!(eval("object.spec.nothing == 1").is_err());
        assert!(eval("quantity('8GB')").is_err());
        assert!(eval("'a'.find('(')").is_err());
        assert!(eval("[].max()").is_err());
        assert!(eval("[{}, {}].min()").is_err());
        assert!(eval("quantity('2').asInteger() == quantity('16Ei').asInteger()").is_err());
    }
}
