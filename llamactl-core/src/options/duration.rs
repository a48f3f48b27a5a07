//! Durations in instance options.
//!
//! The Go llamactl stores `idle_timeout` as whole minutes and `restart_delay` as whole seconds.
//! Those integers keep their meaning here; in addition a string with a unit (`"90s"`, `"500ms"`,
//! `"5m"`, `"1h"`) gives a finer grain. A value is written back as the plain integer whenever it
//! is a whole number of the field's default unit, so Go-era definitions round-trip unchanged.

use std::time::Duration;

use serde_json::Value;

/// The unit a bare number means for a given option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultUnit {
    /// Bare numbers are seconds (`restart_delay`, `startup_timeout`).
    Seconds,
    /// Bare numbers are minutes (`idle_timeout`, as in the Go llamactl).
    Minutes,
}

impl DefaultUnit {
    fn millis(self) -> u64 {
        match self {
            Self::Seconds => 1_000,
            Self::Minutes => 60_000,
        }
    }
}

/// Longest duration accepted in an option: one year, far beyond any sensible timeout, and small
/// enough that arithmetic on it never overflows.
pub const MAX_OPTION_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses a JSON value as a duration; the error text says what was expected.
pub(crate) fn parse(value: &Value, unit: DefaultUnit) -> Result<Duration, String> {
    let millis = match value {
        Value::Number(n) => {
            let count = n
                .as_u64()
                .ok_or_else(|| format!("expected a non-negative whole number or a string like \"30s\", got {n}"))?;
            count.checked_mul(unit.millis())
        }
        Value::String(s) => parse_text(s.trim(), unit)?,
        other => {
            return Err(format!("expected a number or a string like \"30s\", got {}", super::describe(other)));
        }
    };
    match millis {
        Some(ms) if Duration::from_millis(ms) <= MAX_OPTION_DURATION => Ok(Duration::from_millis(ms)),
        _ => Err(format!("{value} is longer than the maximum of 366 days")),
    }
}

fn parse_text(text: &str, unit: DefaultUnit) -> Result<Option<u64>, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let bad = || format!("{text:?} is not a duration (use a number with ms, s, m or h, e.g. \"30s\")");
    if digits.is_empty() {
        return Err(bad());
    }
    let count: u64 = digits.parse().map_err(|_| bad())?;
    let factor = match suffix.trim() {
        "" => unit.millis(),
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    Ok(count.checked_mul(factor))
}

/// Renders a duration for JSON: a bare integer in the default unit when exact, else a string.
pub(crate) fn render(duration: Duration, unit: DefaultUnit) -> Value {
    let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if millis % unit.millis() == 0 {
        return Value::from(millis / unit.millis());
    }
    if millis % 1_000 == 0 { Value::from(format!("{}s", millis / 1_000)) } else { Value::from(format!("{millis}ms")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bare_numbers_use_the_default_unit() {
        assert_eq!(parse(&json!(10), DefaultUnit::Minutes), Ok(Duration::from_secs(600)));
        assert_eq!(parse(&json!(5), DefaultUnit::Seconds), Ok(Duration::from_secs(5)));
        assert_eq!(parse(&json!("7"), DefaultUnit::Seconds), Ok(Duration::from_secs(7)));
        assert_eq!(parse(&json!(0), DefaultUnit::Minutes), Ok(Duration::ZERO));
    }

    #[test]
    fn suffixes() {
        let cases = [("250ms", 250), ("3s", 3_000), ("2m", 120_000), ("1h", 3_600_000), (" 4 s", 4_000)];
        for (text, ms) in cases {
            assert_eq!(parse(&json!(text.trim()), DefaultUnit::Minutes), Ok(Duration::from_millis(ms)), "{text}");
        }
    }

    #[test]
    fn rejects_garbage_negative_fractional_and_huge() {
        for bad in [json!(-1), json!(1.5), json!("soon"), json!("1d"), json!(true), json!("ms"), json!(u64::MAX)] {
            assert!(parse(&bad, DefaultUnit::Seconds).is_err(), "{bad}");
        }
    }

    #[test]
    fn render_round_trips() {
        for (ms, unit) in [
            (600_000, DefaultUnit::Minutes),
            (90_000, DefaultUnit::Minutes),
            (1_500, DefaultUnit::Seconds),
            (3_000, DefaultUnit::Seconds),
        ] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&render(d, unit), unit), Ok(d));
        }
        assert_eq!(render(Duration::from_secs(600), DefaultUnit::Minutes), json!(10));
        assert_eq!(render(Duration::from_secs(90), DefaultUnit::Minutes), json!("90s"));
    }
}
