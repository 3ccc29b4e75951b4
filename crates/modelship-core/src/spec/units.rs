//! Validated scalar newtypes: Kubernetes quantities (`2`, `500m`, `8Gi`) and durations
//! (`500ms`, `30s`, `5m`, `1h30m`). A quantity's value is the one exact
//! [`crate::quantity::Quantity`] that policies and plans use too.
//!
//! Both keep the text the user wrote (that is what goes into objects, unchanged) next to
//! the parsed value (what validation and compile compute with). Both deserialize from a
//! YAML string or number and fail with a message that says what the accepted forms are.
//! They ask the deserializer for a string, so YAML deserializers hand over the scalar text
//! as written (`1.50` stays `1.50`, not the float `1.5`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A Kubernetes resource quantity, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    text: String,
    exact: crate::quantity::Quantity,
}

/// A quantity or duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not a Kubernetes quantity.
    #[error(
        "`{0}` is not a quantity: expected a number with an optional suffix (500m, 2, 1.5, 8Gi, 100M)"
    )]
    Quantity(String),
    /// Not a duration.
    #[error("`{0}` is not a duration: expected a number and a unit (500ms, 30s, 5m, 1h30m)")]
    Duration(String),
}

impl UnitError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            UnitError::Quantity(_) => "unit_quantity",
            UnitError::Duration(_) => "unit_duration",
        }
    }
}

impl Quantity {
    /// The text as written, which is what objects carry.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The exact value in base units (cores, bytes, or a plain number).
    pub fn exact(&self) -> crate::quantity::Quantity {
        self.exact
    }

    /// The value in base units, possibly rounded (for display and ratios).
    pub fn value(&self) -> f64 {
        self.exact.as_approximate_float()
    }
}

impl FromStr for Quantity {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let exact =
            crate::quantity::Quantity::parse(s).map_err(|_| UnitError::Quantity(s.to_string()))?;
        Ok(Quantity {
            text: s.to_string(),
            exact,
        })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = deserializer.deserialize_str(ScalarText("a quantity such as 500m, 2 or 8Gi"))?;
        text.parse().map_err(de::Error::custom)
    }
}

/// A duration written like Go's `time.ParseDuration` (`500ms`, `30s`, `5m`, `1h30m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duration {
    text: String,
    value: std::time::Duration,
}

impl Duration {
    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed duration.
    pub fn value(&self) -> std::time::Duration {
        self.value
    }

    /// Whole seconds, rounded down.
    pub fn as_secs(&self) -> u64 {
        self.value.as_secs()
    }
}

impl FromStr for Duration {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || UnitError::Duration(s.to_string());
        if s.is_empty() || s.trim() != s {
            return Err(err());
        }
        if s == "0" {
            return Ok(Duration {
                text: s.to_string(),
                value: std::time::Duration::ZERO,
            });
        }
        let mut rest = s;
        let mut total_nanos: u128 = 0;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .ok_or_else(err)?;
            let (number, tail) = rest.split_at(digits);
            if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
                return Err(err());
            }
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let nanos_per_unit: f64 = match unit {
                "ns" => 1.0,
                "us" | "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                _ => return Err(err()),
            };
            let amount: f64 = number.parse().map_err(|_| err())?;
            let nanos = amount * nanos_per_unit;
            // Ten years is far beyond any timeout a spec can mean; reject overflow here.
            if !nanos.is_finite() || nanos > 3.2e17 {
                return Err(err());
            }
            total_nanos += nanos as u128;
            rest = tail;
        }
        let value = std::time::Duration::from_nanos(u64::try_from(total_nanos).map_err(|_| err())?);
        Ok(Duration {
            text: s.to_string(),
            value,
        })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = deserializer.deserialize_str(ScalarText("a duration such as 30s, 5m or 1h"))?;
        text.parse().map_err(de::Error::custom)
    }
}

/// Reads a scalar (string or number) as its text.
struct ScalarText(&'static str);

impl de::Visitor<'_> for ScalarText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_keep_their_text_and_compare_by_the_one_exact_value() {
        let q = |text: &str| text.parse::<Quantity>().unwrap();
        assert_eq!(q("1000m").exact(), q("1").exact());
        assert_eq!(
            q("8Gi").exact(),
            crate::quantity::Quantity::parse("8589934592").unwrap()
        );
        assert!(
            q("1").exact() < q("1.0000000001").exact(),
            "rounded up to 1n, as Kubernetes does"
        );
        assert_eq!(q("1000m").as_str(), "1000m");
        assert!(" 1".parse::<Quantity>().is_err());
        assert!(
            "99999999999999999999999999999999Ei"
                .parse::<Quantity>()
                .is_err()
        );
    }

    #[test]
    fn quantities_parse_to_base_units() {
        let cases = [
            ("2", 2.0),
            ("500m", 0.5),
            ("1.5", 1.5),
            ("8Gi", 8.0 * 1073741824.0),
            ("100M", 1e8),
            ("1e3", 1000.0),
            ("20Gi", 20.0 * 1073741824.0),
        ];
        for (text, expected) in cases {
            let q: Quantity = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(
                (q.value() - expected).abs() < 1e-6,
                "{text}: {} != {expected}",
                q.value()
            );
            assert_eq!(q.as_str(), text);
        }
    }

    #[test]
    fn bad_quantities_are_rejected() {
        for text in ["", "Gi", "8GB", "eight", "1.2.3", " 2", "8 Gi", "--1", "."] {
            assert!(text.parse::<Quantity>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn durations_parse() {
        let cases = [
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("0", 0),
        ];
        for (text, millis) in cases {
            let d: Duration = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(d.value().as_millis(), millis, "{text}");
        }
    }

    #[test]
    fn bad_durations_are_rejected() {
        for text in ["", "5", "5 m", "m", "1x", "1.s", "99999999999h", "-5m"] {
            assert!(text.parse::<Duration>().is_err(), "{text:?} parsed");
        }
    }
}
