//! Typed values from a located node tree, with every problem located and reported.
//!
//! A serde `Deserializer` over [`Node`] (like `serde_json::Value`'s) that knows the field
//! path of the node it reads. Instead of stopping at the first problem it records each one
//! as a [`Problem`] (path, line and column, message, hint):
//!
//! - unknown keys of a struct are recorded one by one (with a did-you-mean hint from the
//!   struct's own field list) and skipped, so a typo never hides the next one;
//! - any other failure (wrong type, bad quantity, unknown enum value, missing field) is
//!   recorded, its path is *poisoned*, and the document is read again: a poisoned list
//!   item is left out, any other poisoned value reads as a placeholder of its type (see
//!   `blank`), so its parent still builds and the rest of the document is still read and
//!   validated. Each pass reports at least one new problem or poisons one more path, and
//!   the number of passes is bounded, so every independent problem is found in one run.
//!
//! Scalars follow YAML 1.2: a string target reads the text exactly as written (`1.10`
//! stays `1.10`); other targets resolve plain scalars by the core schema, and quoted
//! scalars are always strings.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Expected, Unexpected, Visitor};

use super::node::{FieldPath, Mark, Node, Value};

mod access;
mod blank;
mod text;

use access::{Entries, Items, Variant};
use blank::Blank;
pub use text::{closest, suggest};
use text::{
    exactly_one_key, expected_text, rewrite_message, split_hint, unexpected_text, visit_scalar,
};

/// Passes over one document before giving up on finding more problems.
const MAX_PASSES: usize = 64;

/// Problems reported for one document; a document with more is hopeless, and a flood of
/// messages helps no one.
pub const MAX_PROBLEMS: usize = 100;

/// A problem found while reading typed values out of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Problem {
    pub mark: Mark,
    pub path: FieldPath,
    pub message: String,
    pub hint: Option<String>,
}

/// Why reading a value stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The problem was recorded as a [`Problem`] already; the value cannot be built.
    #[error("already reported")]
    Reported,
    /// A required field is absent from a mapping.
    #[error("missing required field `{0}`")]
    MissingField(String),
    /// Any other failure: wrong type, invalid value, a custom message of a type.
    #[error("{0}")]
    Message(String),
}

impl Error {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Reported => "spec_reported",
            Error::MissingField(_) => "spec_missing_field",
            Error::Message(_) => "spec_invalid",
        }
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::Message(rewrite_message(&msg.to_string()))
    }

    fn missing_field(field: &'static str) -> Self {
        Error::MissingField(field.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Error::Message(format!(
            "expected {}, found {}",
            expected_text(exp),
            unexpected_text(&unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Error::Message(format!(
            "invalid value {}: expected {}",
            unexpected_text(&unexp),
            expected_text(exp)
        ))
    }
}

/// What reading a document produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Read<T> {
    /// The value, when it could be built. With problems it is incomplete: values at
    /// `poisoned` paths are placeholders (options absent, list items dropped, other
    /// values zero or empty) and must not be judged.
    pub value: Option<T>,
    pub problems: Vec<Problem>,
    /// Paths whose values failed and were replaced by placeholders.
    pub poisoned: Vec<FieldPath>,
}

/// Reads a `T` from `node`, finding every problem of the document.
pub fn from_node<T: DeserializeOwned>(node: &Node) -> Read<T> {
    let ctx = Ctx::default();
    let root = FieldPath::root();
    let mut value = None;
    for _ in 0..MAX_PASSES {
        let progress = ctx.progress();
        let de = De {
            node,
            path: root.clone(),
            ctx: &ctx,
        };
        match de.read(std::marker::PhantomData::<T>) {
            Ok(read) => {
                value = Some(read);
                break;
            }
            Err(_) if ctx.is_poisoned(&root) || ctx.progress() == progress || ctx.is_full() => {
                break;
            }
            Err(_) => {}
        }
    }
    let mut poisoned: Vec<FieldPath> = ctx.poisoned.borrow().iter().cloned().collect();
    poisoned.sort();
    Read {
        value,
        problems: ctx.into_problems(),
        poisoned,
    }
}

/// Problems and poisoned paths of one document, shared by every deserializer of a pass.
#[derive(Debug, Default)]
struct Ctx {
    problems: RefCell<Vec<Problem>>,
    seen: RefCell<HashSet<Problem>>,
    poisoned: RefCell<HashSet<FieldPath>>,
}

impl Ctx {
    /// Records a problem once; past [`MAX_PROBLEMS`] the rest are dropped.
    fn report(&self, problem: Problem) {
        let mut problems = self.problems.borrow_mut();
        if problems.len() < MAX_PROBLEMS && self.seen.borrow_mut().insert(problem.clone()) {
            problems.push(problem);
        }
    }

    fn is_full(&self) -> bool {
        self.problems.borrow().len() >= MAX_PROBLEMS
    }

    fn poison(&self, path: &FieldPath) {
        self.poisoned.borrow_mut().insert(path.clone());
    }

    fn is_poisoned(&self, path: &FieldPath) -> bool {
        self.poisoned.borrow().contains(path)
    }

    fn progress(&self) -> (usize, usize) {
        (self.problems.borrow().len(), self.poisoned.borrow().len())
    }

    fn into_problems(self) -> Vec<Problem> {
        self.problems.into_inner()
    }
}

/// Deserializes one node.
struct De<'a> {
    node: &'a Node,
    path: FieldPath,
    ctx: &'a Ctx,
}

/// Where a deserializer reports the failure of its node.
struct Guard<'a> {
    mark: Mark,
    path: FieldPath,
    ctx: &'a Ctx,
}

impl Guard<'_> {
    /// Records a failure of this node (unless recorded deeper already) and poisons it.
    fn check<T>(self, result: Result<T, Error>) -> Result<T, Error> {
        let err = match result {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        match err {
            Error::Reported => return Err(Error::Reported),
            Error::MissingField(field) => {
                let child = self.path.key(field);
                if !self.ctx.is_poisoned(&child) {
                    self.ctx.report(Problem {
                        mark: self.mark,
                        path: child,
                        message: "missing required field".to_string(),
                        hint: None,
                    });
                }
            }
            Error::Message(message) => {
                let (message, hint) = split_hint(message);
                self.ctx.report(Problem {
                    mark: self.mark,
                    path: self.path.clone(),
                    message,
                    hint,
                });
            }
        }
        self.ctx.poison(&self.path);
        Err(Error::Reported)
    }
}

impl<'a> De<'a> {
    fn guard(&self) -> Guard<'a> {
        Guard {
            mark: self.node.mark,
            path: self.path.clone(),
            ctx: self.ctx,
        }
    }

    /// Reads a value of this node, recording a failure here even when it comes from the
    /// type itself after the node was read (a quantity that does not parse).
    /// A value that failed on an earlier pass reads as a placeholder.
    fn read<T: DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, Error> {
        if self.ctx.is_poisoned(&self.path) {
            return seed.deserialize(Blank).map_err(|_| Error::Reported);
        }
        let guard = self.guard();
        guard.check(seed.deserialize(self))
    }

    fn child(&self, node: &'a Node, path: FieldPath) -> De<'a> {
        De {
            node,
            path,
            ctx: self.ctx,
        }
    }

    fn invalid<T>(&self, exp: &dyn Expected) -> Result<T, Error> {
        Err(de::Error::invalid_type(self.unexpected(), exp))
    }

    fn unexpected(&self) -> Unexpected<'a> {
        match &self.node.value {
            Value::Map(_) => Unexpected::Map,
            Value::Seq(_) => Unexpected::Seq,
            Value::Scalar { .. } if self.node.is_null() => Unexpected::Unit,
            Value::Scalar { text, .. } => Unexpected::Str(text),
        }
    }

    fn any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Scalar { text, style } => visit_scalar(text, *style, visitor),
            Value::Seq(items) => visitor.visit_seq(Items::new(self, items)),
            Value::Map(entries) => {
                let entries = entries.iter().collect();
                visitor.visit_map(Entries::new(self, entries))
            }
        }
    }

    fn text<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Scalar { text, .. } if !self.node.is_null() => visitor.visit_str(text),
            _ => self.invalid(&visitor),
        }
    }

    fn structure<V: Visitor<'a>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Value::Map(entries) = &self.node.value else {
            return self.invalid(&visitor);
        };
        let mut known = Vec::with_capacity(entries.len());
        for entry in entries {
            if fields.contains(&entry.key.as_str()) {
                known.push(entry);
            } else {
                self.ctx.report(Problem {
                    mark: entry.key_mark,
                    path: self.path.key(entry.key.clone()),
                    message: "unknown field".to_string(),
                    hint: Some(suggest(&entry.key, fields)),
                });
            }
        }
        visitor.visit_map(Entries::new(self, known))
    }

    fn enumeration<V: Visitor<'a>>(
        self,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Scalar { text, .. } if !self.node.is_null() => {
                if !variants.contains(&text.as_str()) {
                    return Err(Error::Message(format!(
                        "unknown value `{text}`\n{}",
                        suggest(text, variants)
                    )));
                }
                visitor.visit_enum(Variant {
                    name: text,
                    value: None,
                    de: self,
                })
            }
            Value::Map(entries) => match entries.as_slice() {
                [entry] => {
                    if !variants.contains(&entry.key.as_str()) {
                        self.ctx.report(Problem {
                            mark: entry.key_mark,
                            path: self.path.key(entry.key.clone()),
                            message: "unknown key".to_string(),
                            hint: Some(suggest(&entry.key, variants)),
                        });
                        return Err(Error::Reported);
                    }
                    visitor.visit_enum(Variant {
                        name: &entry.key,
                        value: Some(entry),
                        de: self,
                    })
                }
                _ => Err(Error::Message(exactly_one_key(entries, variants))),
            },
            _ => self.invalid(&visitor),
        }
    }
}

macro_rules! forward_guarded {
    ($($method:ident => $inner:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
                let guard = self.guard();
                guard.check(self.$inner(visitor))
            }
        )*
    };
}

impl<'a> de::Deserializer<'a> for De<'a> {
    type Error = Error;

    forward_guarded! {
        deserialize_any => any,
        deserialize_bool => any,
        deserialize_i8 => any,
        deserialize_i16 => any,
        deserialize_i32 => any,
        deserialize_i64 => any,
        deserialize_i128 => any,
        deserialize_u8 => any,
        deserialize_u16 => any,
        deserialize_u32 => any,
        deserialize_u64 => any,
        deserialize_u128 => any,
        deserialize_f32 => any,
        deserialize_f64 => any,
        deserialize_char => text,
        deserialize_str => text,
        deserialize_string => text,
        deserialize_bytes => text,
        deserialize_byte_buf => text,
        deserialize_identifier => text,
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let guard = self.guard();
        let result = if self.node.is_null() {
            visitor.visit_unit()
        } else {
            self.invalid(&visitor)
        };
        guard.check(result)
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let guard = self.guard();
        let result = match &self.node.value {
            Value::Seq(items) => visitor.visit_seq(Items::new(self, items)),
            _ => self.invalid(&visitor),
        };
        guard.check(result)
    }

    fn deserialize_tuple<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let guard = self.guard();
        let result = match &self.node.value {
            Value::Map(entries) => {
                let entries = entries.iter().collect();
                visitor.visit_map(Entries::new(self, entries))
            }
            _ => self.invalid(&visitor),
        };
        guard.check(result)
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let guard = self.guard();
        guard.check(self.structure(fields, visitor))
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let guard = self.guard();
        guard.check(self.enumeration(variants, visitor))
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::spec::parse::parse_stream;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Probe {
        version: String,
        count: u32,
        #[serde(default)]
        ratio: Option<f64>,
        #[serde(default)]
        items: Vec<u32>,
    }

    /// (line, column, path, message) of a problem.
    type Seen = (usize, usize, String, String);

    fn read<T: DeserializeOwned>(text: &str) -> (Option<T>, Vec<Seen>) {
        let docs = parse_stream(text);
        let root = docs[0].root.clone().expect("root");
        let read = from_node::<T>(&root);
        let value = read.value;
        let problems = read
            .problems
            .into_iter()
            .map(|p| (p.mark.line, p.mark.column, p.path.to_string(), p.message))
            .collect();
        (value, problems)
    }

    #[test]
    fn strings_keep_the_text_as_written() {
        let (value, problems) = read::<Probe>("version: 1.10\ncount: 3\nratio: 0.5\n");
        assert!(problems.is_empty(), "{problems:?}");
        let value = value.expect("value");
        assert_eq!(value.version, "1.10");
        assert_eq!(value.ratio, Some(0.5));
    }

    #[test]
    fn every_problem_of_a_document_is_reported() {
        let (value, problems) =
            read::<Probe>("versio: x\ncount: \"3\"\nitems: [1, two, 3]\nextra: 1\n");
        assert!(value.is_none());
        assert_eq!(
            problems,
            vec![
                (1, 1, "versio".into(), "unknown field".into()),
                (4, 1, "extra".into(), "unknown field".into()),
                (
                    2,
                    8,
                    "count".into(),
                    "expected a non-negative integer, found \"3\"".into()
                ),
                (
                    3,
                    12,
                    "items[1]".into(),
                    "expected a non-negative integer, found \"two\"".into()
                ),
                (1, 1, "version".into(), "missing required field".into()),
            ]
        );
    }

    #[test]
    fn scalars_resolve_by_the_core_schema() {
        let cases: [(&str, Option<f64>); 6] = [
            ("1.5", Some(1.5)),
            ("-2", Some(-2.0)),
            ("1e3", Some(1000.0)),
            ("0x10", Some(16.0)),
            ("~", None),
            (".inf", Some(f64::INFINITY)),
        ];
        for (text, expected) in cases {
            let (value, problems) = read::<Option<f64>>(&format!("{text}\n"));
            assert!(problems.is_empty(), "{text}: {problems:?}");
            assert_eq!(value.flatten(), expected, "{text}");
        }
    }
}
