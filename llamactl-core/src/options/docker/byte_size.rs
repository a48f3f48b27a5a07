//! [`ByteSize`]: `shm_size` and `memory`, in bytes or with a unit.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes: `shm_size`, `memory`.
///
/// Reads a positive integer (bytes) or a string `<number>[unit]` with the unit `b`, `k`/`kb`/`kib`,
/// `m`/`mb`/`mib`, `g`/`gb`/`gib` or `t`/`tb`/`tib` (case-insensitive, powers of 1024 like
/// docker). A fraction is accepted when it comes to a whole number of bytes (`"1.5g"`). Written
/// back as the number of bytes; displayed with the largest exact unit (`1g`).
///
/// ```
/// use llamactl_core::options::docker::ByteSize;
///
/// assert_eq!(ByteSize::parse("512m").map(ByteSize::bytes), Ok(512 << 20));
/// assert_eq!(ByteSize::parse("1.5G").map(ByteSize::bytes), Ok(3 << 29));
/// assert!(ByteSize::parse("0").is_err());
/// assert_eq!(ByteSize(1 << 30).to_string(), "1g");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const BYTE_SIZE_EXPECTED: &str = "a number of bytes or a string with a unit k, m, g or t (e.g. \"1g\")";

impl ByteSize {
    /// Parses `"1g"`, `"512mb"`, `"64K"`, `"1.5g"` or `"1048576"`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        if t.starts_with('-') {
            return Err(format!("{text:?}: a size must not be negative"));
        }
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            "t" | "tb" | "tib" => 40,
            _ => return Err(format!("{text:?} is not a size: expected {BYTE_SIZE_EXPECTED}")),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (number.contains('.') && !digits(fraction)) {
            return Err(format!("{text:?} is not a size: expected {BYTE_SIZE_EXPECTED}"));
        }
        let too_large = || format!("{text:?} is too large");
        let unit_bytes: u128 = 1 << shift;
        let mut bytes = whole.parse::<u128>().ok().and_then(|w| w.checked_mul(unit_bytes)).ok_or_else(too_large)?;
        let fraction = fraction.trim_end_matches('0');
        if !fraction.is_empty() {
            let not_whole = || format!("{text:?} is not a whole number of bytes");
            // Exact arithmetic: fraction / 10^len * unit must be an integer.
            let scale =
                u32::try_from(fraction.len()).ok().and_then(|len| 10u128.checked_pow(len)).ok_or_else(not_whole)?;
            let numerator =
                fraction.parse::<u128>().ok().and_then(|f| f.checked_mul(unit_bytes)).ok_or_else(not_whole)?;
            if !numerator.is_multiple_of(scale) {
                return Err(not_whole());
            }
            bytes = bytes.checked_add(numerator / scale).ok_or_else(too_large)?;
        }
        let bytes = u64::try_from(bytes).map_err(|_| too_large())?;
        if bytes == 0 {
            return Err(format!("{text:?}: a size must be greater than zero"));
        }
        Ok(ByteSize(bytes))
    }

    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, unit) in [(40, "t"), (30, "g"), (20, "m"), (10, "k")] {
            if self.0 != 0 && self.0.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ByteSizeVisitor)
    }
}

struct ByteSizeVisitor;

impl Visitor<'_> for ByteSizeVisitor {
    type Value = ByteSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(BYTE_SIZE_EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
        ByteSize::parse(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
        if v == 0 {
            return Err(E::custom("a size must be greater than zero"));
        }
        Ok(ByteSize(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!("{v}: a size must not be negative"))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
        Err(E::custom(format!("{v} is not a whole number of bytes; expected {BYTE_SIZE_EXPECTED}")))
    }
}
