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
