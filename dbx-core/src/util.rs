//! Small helpers shared by several modules.

use crate::error::{Error, Result};
use serde_json::Value;
use std::time::Duration;

/// Parse `250ms`, `5s`, `1.5s`, `2m`, `1h` or a plain number of seconds.
pub fn parse_duration(field: &str, text: &str) -> Result<Duration> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let factor = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    let secs = num.parse::<f64>().ok().map(|n| n * factor);
    match secs {
        Some(s) if s.is_finite() && (0.0..1e12).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(Error::invalid_config(format!(
            "{field} {:?} is not a duration (write e.g. 250ms, 5s, 2m)",
            truncate(text, 40)
        ))),
    }
}

/// The first 64 characters of `s`, for messages about user input.
pub(crate) fn short(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The JSON type of `v`, with an article, for messages.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A size in bytes: a whole number, optionally followed by a unit (`B`,
/// `kB`, `KiB`, `MB`, `MiB`, `GB`, `GiB`, `TB`, `TiB`, in any case, a
/// space allowed before it); `None` if malformed or too large for a `u64`.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(factor)
}

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_units_and_reject_the_rest() {
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("512KB"), Some(512_000));
        assert_eq!(parse_size("2 gb"), Some(2_000_000_000));
        for bad in [
            "",
            "MiB",
            "-1",
            "1.5GiB",
            "12 parsecs",
            "99999999999999999999",
            "99999999 TiB",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }
}
