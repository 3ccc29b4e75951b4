//! A streaming YAML emitter for compiled objects: a `serde::Serializer` that writes block
//! style straight into a `String`, with no intermediate tree.
//!
//! It exists for speed: the general serializer of serde-saphyr spends most of its time on
//! scalar style analysis, which made rendering the slowest stage by far. Kubernetes
//! objects need little of it: maps, lists, strings, integers and booleans. The layout is
//! the one kubectl writes (two-space indent, list items flush with their key, `{}` / `[]`
//! for empty collections).
//!
//! Strings are written plain only when every YAML 1.1 and 1.2 reader takes them as the
//! same string (printable ASCII, no indicator at the start, no `: ` or ` #`, not a bool,
//! null or number look-alike); otherwise they are double-quoted with JSON escapes, which
//! YAML reads the same way. Tests check the output reads back as the same JSON.

use std::fmt::Write as _;

use serde::ser::{self, Serialize};

/// Why an object could not be written as YAML.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The value uses a serde shape Kubernetes objects never have (bytes, tuple variants).
    #[error("unsupported value for YAML output: {0}")]
    Unsupported(&'static str),
    /// A map key is not a string.
    #[error("map keys must be strings")]
    NonStringKey,
    /// A custom error raised by a `Serialize` implementation.
    #[error("{0}")]
    Custom(String),
}

impl ser::Error for YamlError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        YamlError::Custom(msg.to_string())
    }
}

/// Appends `value` to `out` as one YAML document (no `---`).
pub(crate) fn write_document<T: Serialize + ?Sized>(
    out: &mut String,
    value: &T,
) -> Result<(), YamlError> {
    let mut emitter = Emitter {
        out,
        pending: Pending::LineStart,
    };
    value.serialize(Node {
        e: &mut emitter,
        column: 0,
    })
}

/// Where the cursor is when the next node starts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// At the start of a line: the node writes its own indentation.
    LineStart,
    /// Right after `key:`: a scalar follows after a space, a collection on the next line.
    AfterKey,
    /// Right after `- `: the node's first line continues here.
    AfterDash,
}

struct Emitter<'o> {
    out: &'o mut String,
    pending: Pending,
}

impl Emitter<'_> {
    fn indent(&mut self, column: usize) {
        self.out.extend(std::iter::repeat_n(' ', column));
    }

    /// Writes a scalar where the cursor is, ending the line.
    fn scalar(&mut self, column: usize, text: &str) {
        self.scalar_with(column, |out| out.push_str(text));
    }

    /// Like [`Emitter::scalar`], with the text written by `write`.
    fn scalar_with(&mut self, column: usize, write: impl FnOnce(&mut String)) {
        match self.pending {
            Pending::LineStart => self.indent(column),
            Pending::AfterKey => self.out.push(' '),
            Pending::AfterDash => {}
        }
        write(self.out);
        self.out.push('\n');
        self.pending = Pending::LineStart;
    }

    /// Positions the cursor for the first entry of a collection whose lines start at
    /// `column`; true when the entry must write its own indentation.
    fn open(&mut self) -> bool {
        match self.pending {
            Pending::AfterKey => {
                self.out.push('\n');
                true
            }
            Pending::AfterDash => false,
            Pending::LineStart => true,
        }
    }

    /// Closes a collection that had no entries.
    fn close_empty(&mut self, column: usize, empty: &str) {
        self.scalar(column, empty);
    }
}

/// Serializes one node whose lines start at `column`.
struct Node<'a, 'o> {
    e: &'a mut Emitter<'o>,
    column: usize,
}

/// A map or struct in progress.
struct MapNode<'a, 'o> {
    e: &'a mut Emitter<'o>,
    column: usize,
    first: bool,
}

/// A sequence in progress.
struct SeqNode<'a, 'o> {
    e: &'a mut Emitter<'o>,
    column: usize,
    first: bool,
}

impl MapNode<'_, '_> {
    fn key(&mut self, key: &str) {
        let indent = if self.first { self.e.open() } else { true };
        if indent {
            self.e.indent(self.column);
        }
        self.first = false;
        write_scalar_str(self.e.out, key);
        self.e.out.push(':');
        self.e.pending = Pending::AfterKey;
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), YamlError> {
        value.serialize(Node {
            e: self.e,
            column: self.column + 2,
        })
    }

    fn finish(self) -> Result<(), YamlError> {
        if self.first {
            self.e.close_empty(self.column, "{}");
        }
        Ok(())
    }
}

impl SeqNode<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), YamlError> {
        let indent = if self.first { self.e.open() } else { true };
        if indent {
            self.e.indent(self.column);
        }
        self.first = false;
        self.e.out.push_str("- ");
        self.e.pending = Pending::AfterDash;
        value.serialize(Node {
            e: self.e,
            column: self.column + 2,
        })
    }

    fn finish(self) -> Result<(), YamlError> {
        if self.first {
            self.e.close_empty(self.column, "[]");
        }
        Ok(())
    }
}

impl<'a, 'o> Node<'a, 'o> {
    /// Where the node's children start. A map under a key indents; a list under a key is
    /// flush with the key (kubectl style); anything after `- ` continues at the dash + 2.
    fn map(self) -> MapNode<'a, 'o> {
        let column = self.child_column(true);
        MapNode {
            e: self.e,
            column,
            first: true,
        }
    }

    fn seq(self) -> SeqNode<'a, 'o> {
        let column = self.child_column(false);
        SeqNode {
            e: self.e,
            column,
            first: true,
        }
    }

    /// `self.column` is two spaces deeper than the parent's lines; a list under `key:` is
    /// the one collection that starts at the parent's column instead.
    fn child_column(&self, is_map: bool) -> usize {
        if self.e.pending == Pending::AfterKey && !is_map {
            self.column.saturating_sub(2)
        } else {
            self.column
        }
    }

    fn text(self, text: &str) -> Result<(), YamlError> {
        self.e.scalar(self.column, text);
        Ok(())
    }
}

/// Appends a string scalar: plain when unambiguous, double-quoted otherwise.
fn write_scalar_str(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else {
        write_quoted(out, s);
    }
}

/// Double-quoted with JSON escapes (valid YAML double-quoted scalars).
fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                // Writing to a String never fails.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// True when `s` reads back as the same string in YAML 1.1 and 1.2 without quotes.
fn is_plain_safe(s: &str) -> bool {
    let bytes = s.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    let printable = bytes.iter().all(|&b| (0x20..0x7f).contains(&b));
    let bad_start = matches!(
        first,
        b' ' | b'?'
            | b':'
            | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
    ) || (first == b'-' && bytes.get(1).is_none_or(|&b| b == b' '));
    printable
        && !bad_start
        && last != b' '
        && last != b':'
        && !s.contains(": ")
        && !s.contains(" #")
        && !looks_like_other_type(s)
}

/// Bool, null and number look-alikes of YAML 1.1 (`yes`, `off`, `0o17`, `1:30`) and 1.2.
fn looks_like_other_type(s: &str) -> bool {
    const WORDS: [&str; 13] = [
        "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~", "=", "<<", "",
    ];
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if WORDS.contains(&lower.as_str()) || matches!(unsigned, ".inf" | ".nan" | "inf" | "nan") {
        return true;
    }
    // Anything that starts like a number and only holds number characters: integers in
    // any base, floats, exponents, sexagesimal, dotted versions (quoted for clarity).
    let starts_numeric = unsigned
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'.');
    if !starts_numeric {
        return false;
    }
    if let Some(hex) = unsigned.strip_prefix("0x") {
        return hex.bytes().all(|b| b.is_ascii_hexdigit() || b == b'_');
    }
    if let Some(digits) = unsigned
        .strip_prefix("0o")
        .or_else(|| unsigned.strip_prefix("0b"))
    {
        return digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    }
    unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'_' | b':' | b'e'))
}

impl<'a, 'o> ser::Serializer for Node<'a, 'o> {
    type Ok = ();
    type Error = YamlError;
    type SerializeSeq = SeqNode<'a, 'o>;
    type SerializeTuple = SeqNode<'a, 'o>;
    type SerializeTupleStruct = SeqNode<'a, 'o>;
    type SerializeTupleVariant = ser::Impossible<(), YamlError>;
    type SerializeMap = MapNode<'a, 'o>;
    type SerializeStruct = MapNode<'a, 'o>;
    type SerializeStructVariant = ser::Impossible<(), YamlError>;

    fn serialize_bool(self, v: bool) -> Result<(), YamlError> {
        self.text(if v { "true" } else { "false" })
    }
    fn serialize_i8(self, v: i8) -> Result<(), YamlError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), YamlError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), YamlError> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), YamlError> {
        // Writing to a String never fails.
        self.e.scalar_with(self.column, |out| {
            let _ = write!(out, "{v}");
        });
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), YamlError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), YamlError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), YamlError> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), YamlError> {
        // Writing to a String never fails.
        self.e.scalar_with(self.column, |out| {
            let _ = write!(out, "{v}");
        });
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), YamlError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), YamlError> {
        let text = if v.is_nan() {
            ".nan".to_string()
        } else if v.is_infinite() {
            if v > 0.0 { ".inf" } else { "-.inf" }.to_string()
        } else {
            let mut t = v.to_string();
            if !t.contains(['.', 'e', 'E']) {
                t.push_str(".0");
            }
            t
        };
        self.text(&text)
    }
    fn serialize_char(self, v: char) -> Result<(), YamlError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), YamlError> {
        self.e
            .scalar_with(self.column, |out| write_scalar_str(out, v));
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), YamlError> {
        Err(YamlError::Unsupported("bytes"))
    }
    fn serialize_none(self) -> Result<(), YamlError> {
        self.text("null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), YamlError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), YamlError> {
        self.text("null")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), YamlError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), YamlError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), YamlError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), YamlError> {
        let mut map = self.map();
        map.key(variant);
        map.value(value)?;
        map.finish()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<SeqNode<'a, 'o>, YamlError> {
        Ok(self.seq())
    }
    fn serialize_tuple(self, _: usize) -> Result<SeqNode<'a, 'o>, YamlError> {
        Ok(self.seq())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<SeqNode<'a, 'o>, YamlError> {
        Ok(self.seq())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, YamlError> {
        Err(YamlError::Unsupported("tuple variant"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapNode<'a, 'o>, YamlError> {
        Ok(self.map())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<MapNode<'a, 'o>, YamlError> {
        Ok(self.map())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, YamlError> {
        Err(YamlError::Unsupported("struct variant"))
    }
}

impl ser::SerializeSeq for SeqNode<'_, '_> {
    type Ok = ();
    type Error = YamlError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), YamlError> {
        self.element(value)
    }
    fn end(self) -> Result<(), YamlError> {
        self.finish()
    }
}

impl ser::SerializeTuple for SeqNode<'_, '_> {
    type Ok = ();
    type Error = YamlError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), YamlError> {
        self.element(value)
    }
    fn end(self) -> Result<(), YamlError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for SeqNode<'_, '_> {
    type Ok = ();
    type Error = YamlError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), YamlError> {
        self.element(value)
    }
    fn end(self) -> Result<(), YamlError> {
        self.finish()
    }
}

impl ser::SerializeMap for MapNode<'_, '_> {
    type Ok = ();
    type Error = YamlError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), YamlError> {
        let key = key.serialize(KeySerializer)?;
        self.key(&key);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), YamlError> {
        self.value(value)
    }
    fn end(self) -> Result<(), YamlError> {
        self.finish()
    }
}

impl ser::SerializeStruct for MapNode<'_, '_> {
    type Ok = ();
    type Error = YamlError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), YamlError> {
        self.key(key);
        self.value(value)
    }
    fn end(self) -> Result<(), YamlError> {
        self.finish()
    }
}

/// Accepts string keys only (all Kubernetes maps have string keys).
struct KeySerializer;

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = YamlError;
    type SerializeSeq = ser::Impossible<String, YamlError>;
    type SerializeTuple = ser::Impossible<String, YamlError>;
    type SerializeTupleStruct = ser::Impossible<String, YamlError>;
    type SerializeTupleVariant = ser::Impossible<String, YamlError>;
    type SerializeMap = ser::Impossible<String, YamlError>;
    type SerializeStruct = ser::Impossible<String, YamlError>;
    type SerializeStructVariant = ser::Impossible<String, YamlError>;

    fn serialize_str(self, v: &str) -> Result<String, YamlError> {
        Ok(v.to_string())
    }
    fn serialize_char(self, v: char) -> Result<String, YamlError> {
        Ok(v.to_string())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, YamlError> {
        Ok(variant.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<String, YamlError> {
        value.serialize(self)
    }
    fn serialize_bool(self, _: bool) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_i8(self, _: i8) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_i16(self, _: i16) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_i32(self, _: i32) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_i64(self, _: i64) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_u8(self, _: u8) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_u16(self, _: u16) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_u32(self, _: u32) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_u64(self, _: u64) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_f32(self, _: f32) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_f64(self, _: f64) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_none(self) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_unit(self) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, YamlError> {
        Err(YamlError::NonStringKey)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, YamlError> {
        Err(YamlError::NonStringKey)
    }
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;
