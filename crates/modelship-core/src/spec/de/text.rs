//! Scalar resolution and the wording of problems: how plain scalars resolve under the
//! YAML 1.2 core schema, and how serde's messages become ones a spec author reads.

use serde::de::{Expected, Unexpected, Visitor};

use super::Error;
use crate::spec::node::{Entry, ScalarStyle};

pub(super) fn exactly_one_key(entries: &[Entry], variants: &[&str]) -> String {
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
pub(super) fn visit_scalar<'de, V: Visitor<'de>>(
    text: &str,
    style: ScalarStyle,
    visitor: V,
) -> Result<V::Value, Error> {
    if style == ScalarStyle::Text {
        return visitor.visit_str(text);
    }
    if crate::spec::node::is_null_text(text) {
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
pub(super) fn split_hint(message: String) -> (String, Option<String>) {
    match message.split_once('\n') {
        Some((message, hint)) => (message.to_string(), Some(hint.to_string())),
        None => (message, None),
    }
}

/// Friendlier wording for serde's messages about our untagged enums.
pub(super) fn rewrite_message(message: &str) -> String {
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

pub(super) fn expected_text(exp: &dyn Expected) -> String {
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

pub(super) fn unexpected_text(unexp: &Unexpected<'_>) -> String {
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
