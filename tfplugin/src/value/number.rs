//! cty numbers: arbitrary-precision decimals.
//!
//! Terraform numbers are big floats; a provider must not round them through `i64`/`f64`.
//! `BigDecimal` keeps every decimal digit, which is what HCL literals and JSON carry.

use bigdecimal::{BigDecimal, FromPrimitive, ToPrimitive};
use std::fmt;
use std::str::FromStr;

/// An arbitrary-precision number. Equality is numeric (`1.0 == 1`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Number(BigDecimal);

impl Number {
    /// The value as `i64` when it is an integer in range.
    pub fn to_i64(&self) -> Option<i64> {
        if self.0.is_integer() {
            self.0.to_i64()
        } else {
            None
        }
    }

    /// The value as `u64` when it is a non-negative integer in range.
    pub fn to_u64(&self) -> Option<u64> {
        if self.0.is_integer() {
            self.0.to_u64()
        } else {
            None
        }
    }

    /// The nearest `f64` (lossy for very precise numbers).
    pub fn to_f64_lossy(&self) -> f64 {
        self.0.to_f64().unwrap_or(f64::NAN)
    }

    /// The `f64` this number is exactly, if there is one.
    pub fn to_f64_exact(&self) -> Option<f64> {
        let f = self.0.to_f64()?;
        let back = BigDecimal::from_f64(f)?;
        (back == self.0).then_some(f)
    }

    /// From an `f64`, exactly (every finite double is a finite decimal); `None` for NaN/inf.
    pub fn from_f64(f: f64) -> Option<Number> {
        BigDecimal::from_f64(f).map(|d| Number(d.normalized()))
    }

    /// Decimal text without exponent, as cty writes numbers it cannot send as int/float.
    pub fn to_plain_string(&self) -> String {
        self.0.normalized().to_plain_string()
    }

    pub fn as_big_decimal(&self) -> &BigDecimal {
        &self.0
    }
}

impl From<i64> for Number {
    fn from(n: i64) -> Self {
        Number(BigDecimal::from(n))
    }
}

impl From<u64> for Number {
    fn from(n: u64) -> Self {
        Number(BigDecimal::from(n))
    }
}

impl From<BigDecimal> for Number {
    fn from(d: BigDecimal) -> Self {
        Number(d.normalized())
    }
}

/// The largest decimal exponent a number may have, either way. Text such as `1e1812897350`
/// parses in an instant, but writing it out or testing it for an integer takes billions of
/// digits (the fuzzer found a value that hung the msgpack codec). cty itself keeps numbers in
/// 512-bit floats, whose exponent stops near 10^±646 456 993, and no Terraform value comes
/// near this bound: a float64 ends at 10^308.
pub const MAX_DECIMAL_EXPONENT: i64 = 10_000;

impl FromStr for Number {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d = BigDecimal::from_str(s.trim())
            .map_err(|_| format!("{s:?} is not a number"))?
            .normalized();
        // value = digits × 10^-scale; the number of digits is bounded by the text's length.
        let (_, scale) = d.as_bigint_and_exponent();
        if scale.unsigned_abs() > MAX_DECIMAL_EXPONENT as u64 {
            let shown: String = s.trim().chars().take(40).collect();
            return Err(format!(
                "{shown:?} is out of range: numbers are handled up to 10^±{MAX_DECIMAL_EXPONENT}"
            ));
        }
        Ok(Number(d))
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_plain_string())
    }
}
