//! The one Kubernetes resource quantity (`2`, `500m`, `8Gi`, `1e3`): specs are validated,
//! policies compare and plans match live values with the same exact value, so a quantity
//! can never compare differently in two places.
//!
//! A quantity is held exactly, as a whole number of nano-units (`1n`, the finest precision
//! Kubernetes keeps), rounded up like the API server rounds. Equality compares values, so
//! `1` equals `1000m`.

use std::fmt;

/// Nano-units per unit.
const NANOS: i128 = 1_000_000_000;

/// An exact Kubernetes quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    nanos: i128,
}

/// Why a text is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text does not have the form of a quantity.
    #[error(
        "`{0}` is not a quantity (expected a number with an optional suffix: 500m, 2, 8Gi, 1e3)"
    )]
    Syntax(String),
    /// The quantity does not fit the exact representation.
    #[error("`{0}` is out of range")]
    OutOfRange(String),
}

impl QuantityError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            QuantityError::Syntax(_) => "quantity_syntax",
            QuantityError::OutOfRange(_) => "quantity_out_of_range",
        }
    }
}

impl Quantity {
    /// Parses Kubernetes quantity syntax: `[+-]digits[.digits]` then a binary suffix
    /// (`Ki`..`Ei`), a decimal suffix (`n u m k M G T P E`) or an exponent (`e3`, `E-2`).
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let syntax = || QuantityError::Syntax(text.to_string());
        let range = || QuantityError::OutOfRange(text.to_string());
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(syntax());
        }
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return Err(range());
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| syntax())?
        };
        let (numerator, denominator) = suffix_scale(suffix).ok_or_else(syntax)?;
        let denominator = pow10(fraction.len() as u32)
            .and_then(|scale| scale.checked_mul(denominator))
            .ok_or_else(range)?;
        let scaled = mantissa.checked_mul(numerator).ok_or_else(range)?;
        // Kubernetes rounds a quantity finer than 1n up, away from zero.
        let mut nanos = scaled / denominator + i128::from(scaled % denominator != 0);
        if negative {
            nanos = -nanos;
        }
        Ok(Quantity { nanos })
    }

    /// The whole number `value`.
    pub fn from_int(value: i64) -> Quantity {
        Quantity {
            nanos: i128::from(value) * NANOS,
        }
    }

    /// True when the value is a whole number that fits an `int`.
    pub fn is_integer(&self) -> bool {
        self.nanos % NANOS == 0 && i64::try_from(self.nanos / NANOS).is_ok()
    }

    /// The value as an `int`, when it is whole and fits.
    pub fn as_integer(&self) -> Option<i64> {
        if self.nanos % NANOS == 0 {
            i64::try_from(self.nanos / NANOS).ok()
        } else {
            None
        }
    }

    /// The value as a float, possibly rounded.
    pub fn as_approximate_float(&self) -> f64 {
        self.nanos as f64 / NANOS as f64
    }

    /// -1, 0 or 1 by the sign of the value.
    pub fn signum(&self) -> i64 {
        self.nanos.signum() as i64
    }

    /// The sum, when it fits.
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        self.nanos
            .checked_add(other.nanos)
            .map(|nanos| Quantity { nanos })
    }

    /// The difference, when it fits.
    pub fn checked_sub(self, other: Quantity) -> Option<Quantity> {
        self.nanos
            .checked_sub(other.nanos)
            .map(|nanos| Quantity { nanos })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.nanos / NANOS;
        let fraction = (self.nanos % NANOS).abs();
        if fraction == 0 {
            write!(f, "{whole}")
        } else {
            let sign = if self.nanos < 0 && whole == 0 {
                "-"
            } else {
                ""
            };
            let fraction = format!("{fraction:09}");
            write!(f, "{sign}{whole}.{}", fraction.trim_end_matches('0'))
        }
    }
}

/// 10^exp, when it fits.
fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

/// The factor (numerator, denominator) turning the number into nano-units.
fn suffix_scale(suffix: &str) -> Option<(i128, i128)> {
    let binary = |power: u32| 1024i128.checked_pow(power).map(|m| (m * NANOS, 1));
    let decimal = |exp: i32| {
        let exp = exp + 9;
        if exp >= 0 {
            pow10(exp as u32).map(|m| (m, 1))
        } else {
            pow10(exp.unsigned_abs()).map(|d| (1, d))
        }
    };
    match suffix {
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "" => decimal(0),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let exp: i32 = exponent.parse().ok()?;
            decimal(exp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap()
    }

    #[test]
    fn parses_every_suffix_exactly() {
        let cases: &[(&str, i128)] = &[
            ("1", NANOS),
            ("500m", NANOS / 2),
            ("1.5", NANOS * 3 / 2),
            ("8Gi", 8 * (1 << 30) * NANOS),
            ("1Ki", 1024 * NANOS),
            ("2k", 2000 * NANOS),
            ("1M", 1_000_000 * NANOS),
            ("1e3", 1000 * NANOS),
            ("1E-3", NANOS / 1000),
            ("100n", 100),
            ("3u", 3000),
            ("-2", -2 * NANOS),
            ("+.5", NANOS / 2),
            ("0", 0),
        ];
        for (text, nanos) in cases {
            assert_eq!(q(text).nanos, *nanos, "{text}");
        }
    }

    #[test]
    fn rounds_below_a_nano_up() {
        assert_eq!(q("0.1n").nanos, 1);
        assert_eq!(q("1.0000000001").nanos, NANOS + 1);
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        for text in [
            "", "Gi", "1.2.3", "1GB", "1 Gi", "abc", "1e", "1e+", "--1", "1K", ".",
        ] {
            assert!(Quantity::parse(text).is_err(), "{text:?} parsed");
        }
        assert!(matches!(
            Quantity::parse("99999999999999999999999999999999Ei"),
            Err(QuantityError::OutOfRange(_))
        ));
    }

    #[test]
    fn integer_views() {
        assert_eq!(q("2k").as_integer(), Some(2000));
        assert_eq!(q("1500m").as_integer(), None);
        assert!(!q("1500m").is_integer());
        assert_eq!(q("1500m").as_approximate_float(), 1.5);
        assert_eq!(q("16Ei").as_integer(), None, "beyond int64");
        assert_eq!(q("1500m").to_string(), "1.5");
        assert_eq!(q("-500m").to_string(), "-0.5");
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,40}") {
            let _ = Quantity::parse(&text);
        }

        #[test]
        fn integers_round_trip(n in -1_000_000_000i64..1_000_000_000) {
            prop_assert_eq!(q(&n.to_string()).as_integer(), Some(n));
            prop_assert_eq!(q(&format!("{n}000m")).as_integer(), Some(n));
        }
    }
}
