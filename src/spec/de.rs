//! Typed values from a located node tree, with every problem located and reported.
//!
//! A serde `Deserializer` over [`Node`] (like `serde_json::Value`'s) that knows the field
//! path of the node it reads. Instead of stopping at the first problem it records each one
//! as a [`Problem`] (path, line and column, message, hint):
//!
//! - unknown keys of a struct are recorded one by one (with a did-you-mean hint from the
//!   struct's own field list) and skipped, so a typo never hides the next one;
//! - any other failure (wrong type, bad quantity, unknown enum value, missing field) is
//!   recorded, its path is *poisoned*, and the document is read again with poisoned values
//!   left out. A poisoned optional field or list item is simply absent on the next pass;
//!   a poisoned required field makes its parent fail silently (already reported). Each pass
//!   reports at least one new problem or poisons one more path, and the number of passes
//!   is bounded, so every independent problem of a document is found in one run.
//!
//! Scalars follow YAML 1.2: a string target reads the text exactly as written (`1.10`
//! stays `1.10`); other targets resolve plain scalars by the core schema, and quoted
//! scalars are always strings.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, Expected, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, VariantAccess, Visitor,
};

use super::node::{Entry, FieldPath, Mark, Node, ScalarStyle, Value};

/// Passes over one document before giving up on finding more problems.
const MAX_PASSES: usize = 64;

/// A problem found while reading typed values out of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `poisoned` paths were left out (optional fields absent, list items dropped).
    pub value: Option<T>,
    pub problems: Vec<Problem>,
    /// Paths whose values failed and were left out.
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
            Err(_) if ctx.is_poisoned(&root) || ctx.progress() == progress => break,
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
    poisoned: RefCell<HashSet<FieldPath>>,
}

impl Ctx {
    fn report(&self, problem: Problem) {
        let mut problems = self.problems.borrow_mut();
        if !problems.contains(&problem) {
            problems.push(problem);
        }
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
    fn read<T: DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, Error> {
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

fn exactly_one_key(entries: &[Entry], variants: &[&str]) -> String {
    let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let found = if keys.is_empty() {
        "found none".to_string()
    } else {
        format!("found {}: {}", keys.len(), keys.join(", "))
    };
    format!(
        "must have exactly one key, {found}\none of {}; write each as its own list item",
        variants.join(", ")
    )
}

/// Resolves a scalar by the YAML 1.2 core schema (plain) or as a string (quoted).
fn visit_scalar<'de, V: Visitor<'de>>(
    text: &str,
    style: ScalarStyle,
    visitor: V,
) -> Result<V::Value, Error> {
    if style == ScalarStyle::Text {
        return visitor.visit_str(text);
    }
    if super::node::is_null_text(text) {
        return visitor.visit_unit();
    }
    match text {
        "true" | "True" | "TRUE" => return visitor.visit_bool(true),
        "false" | "False" | "FALSE" => return visitor.visit_bool(false),
        _ => {}
    }
    if let Some(int) = parse_int(text) {
        return match u64::try_from(int) {
            Ok(unsigned) => visitor.visit_u64(unsigned),
            Err(_) => match i64::try_from(int) {
                Ok(signed) => visitor.visit_i64(signed),
                Err(_) => visitor.visit_str(text),
            },
        };
    }
    match parse_float(text) {
        Some(float) => visitor.visit_f64(float),
        None => visitor.visit_str(text),
    }
}

/// Core-schema integers: `[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`.
fn parse_int(text: &str) -> Option<i128> {
    if let Some(octal) = text.strip_prefix("0o") {
        return i128::from_str_radix(octal, 8)
            .ok()
            .filter(|_| !octal.is_empty());
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return i128::from_str_radix(hex, 16)
            .ok()
            .filter(|_| !hex.is_empty());
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Core-schema floats: `1.5`, `.5`, `1e3`, `-2.5E-3`, `.inf`, `-.inf`, `.nan`.
fn parse_float(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let negative = text.starts_with('-');
    match unsigned {
        ".inf" | ".Inf" | ".INF" => {
            return Some(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        ".nan" | ".NaN" | ".NAN" if unsigned == text => return Some(f64::NAN),
        _ => {}
    }
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let mantissa_ok = mantissa.bytes().any(|b| b.is_ascii_digit())
        && mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && mantissa.bytes().filter(|&b| b == b'.').count() <= 1;
    let exponent_ok = exponent.is_none_or(|e| {
        let digits = e.strip_prefix(['-', '+']).unwrap_or(e);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    if mantissa_ok && exponent_ok {
        text.parse().ok()
    } else {
        None
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

/// The items of a list, leaving out poisoned ones.
struct Items<'a> {
    de: De<'a>,
    items: std::iter::Enumerate<std::slice::Iter<'a, std::rc::Rc<Node>>>,
}

impl<'a> Items<'a> {
    fn new(de: De<'a>, items: &'a [std::rc::Rc<Node>]) -> Self {
        Items {
            de,
            items: items.iter().enumerate(),
        }
    }
}

impl<'a> SeqAccess<'a> for Items<'a> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        for (index, item) in self.items.by_ref() {
            let path = self.de.path.index(index);
            if !self.de.ctx.is_poisoned(&path) {
                return self.de.child(item, path).read(seed).map(Some);
            }
        }
        Ok(None)
    }
}

/// The entries of a mapping, leaving out poisoned ones.
struct Entries<'a> {
    de: De<'a>,
    entries: std::vec::IntoIter<&'a Entry>,
    value: Option<&'a Entry>,
}

impl<'a> Entries<'a> {
    fn new(de: De<'a>, entries: Vec<&'a Entry>) -> Self {
        Entries {
            de,
            entries: entries.into_iter(),
            value: None,
        }
    }
}

impl<'a> MapAccess<'a> for Entries<'a> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        for entry in self.entries.by_ref() {
            if !self
                .de
                .ctx
                .is_poisoned(&self.de.path.key(entry.key.clone()))
            {
                self.value = Some(entry);
                return seed
                    .deserialize(entry.key.as_str().into_deserializer())
                    .map(Some);
            }
        }
        Ok(None)
    }

    fn next_value_seed<T: DeserializeSeed<'a>>(&mut self, seed: T) -> Result<T::Value, Error> {
        let entry = self
            .value
            .take()
            .ok_or_else(|| Error::Message("a value was read before its key".to_string()))?;
        let path = self.de.path.key(entry.key.clone());
        self.de.child(&entry.value, path).read(seed)
    }
}

/// One variant of an enum: a plain name, or the single key of a mapping and its value.
struct Variant<'a> {
    name: &'a str,
    value: Option<&'a Entry>,
    de: De<'a>,
}

impl<'a> EnumAccess<'a> for Variant<'a> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'a>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let name = seed.deserialize(self.name.into_deserializer())?;
        Ok((name, self))
    }
}

impl<'a> Variant<'a> {
    fn value(self) -> Result<De<'a>, Error> {
        match self.value {
            Some(entry) => {
                let path = self.de.path.key(entry.key.clone());
                Ok(self.de.child(&entry.value, path))
            }
            None => Err(Error::Message(format!(
                "`{}` needs a value, written `{}: <value>`",
                self.name, self.name
            ))),
        }
    }
}

impl<'a> VariantAccess<'a> for Variant<'a> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            Some(entry) if !entry.value.is_null() => {
                Err(Error::Message(format!("`{}` takes no value", self.name)))
            }
            _ => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, Error> {
        self.value()?.read(seed)
    }

    fn tuple_variant<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self.value()?, visitor)
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_struct(self.value()?, "", fields, visitor)
    }
}

/// `did you mean X?` for a close match among `candidates`, else the list of them.
pub fn suggest(word: &str, candidates: &[&str]) -> String {
    match closest(word, candidates.iter().copied()) {
        Some(best) => format!("did you mean {best}?"),
        None => format!("expected one of: {}", candidates.join(", ")),
    }
}

/// The candidate closest to `word` when it is close enough to be a likely typo.
pub fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// A message and an optional hint, separated by a newline in `Error::Message`.
fn split_hint(message: String) -> (String, Option<String>) {
    match message.split_once('\n') {
        Some((message, hint)) => (message.to_string(), Some(hint.to_string())),
        None => (message, None),
    }
}

/// Friendlier wording for serde's messages about our untagged enums.
fn rewrite_message(message: &str) -> String {
    match message {
        "data did not match any variant of untagged enum GpuTypes" => {
            "expected a GPU catalog key or a list of keys".to_string()
        }
        "data did not match any variant of untagged enum IntOrPercent" => {
            "expected an integer or a percentage such as \"25%\"".to_string()
        }
        other => other.to_string(),
    }
}

fn expected_text(exp: &dyn Expected) -> String {
    let text = exp.to_string();
    match text.as_str() {
        "u8" | "u16" | "u32" | "u64" | "u128" => "a non-negative integer".to_string(),
        "i8" | "i16" | "i32" | "i64" | "i128" => "an integer".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a boolean" => "true or false".to_string(),
        "a sequence" => "a list".to_string(),
        "a map" => "a mapping".to_string(),
        _ if text.starts_with("struct ") => "a mapping".to_string(),
        _ => text,
    }
}

fn unexpected_text(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Unit => "an empty value".to_string(),
        Unexpected::Map => "a mapping".to_string(),
        Unexpected::Seq => "a list".to_string(),
        Unexpected::Str(s) => format!("\"{s}\""),
        Unexpected::Unsigned(n) => n.to_string(),
        Unexpected::Signed(n) => n.to_string(),
        Unexpected::Float(n) => n.to_string(),
        Unexpected::Bool(b) => b.to_string(),
        other => other.to_string(),
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
