//! Reading argument values: durations, JSON arguments, vectors and SQL
//! parameters. The `fn(&str) -> Result<T, String>` ones are clap value
//! parsers, so a bad value is a usage error (exit 2) naming the argument.

use dbx::Value;
use std::time::Duration;

/// A duration: a number followed by `ms`, `s`, `m`, `h` or `d`; a bare
/// number is seconds. Fractions are allowed (`1.5s`). Zero is refused.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.is_empty() {
        return Err(format!("`{text}` is not a duration (e.g. 250ms, 5s, 2m)"));
    }
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ms, s, m, h or d, e.g. 5s)"
            ));
        }
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 250ms, 5s, 2m)"))?;
    let d =
        Duration::try_from_secs_f64(n * scale).map_err(|_| format!("`{text}` is out of range"))?;
    if d.is_zero() {
        return Err(format!("`{text}`: a duration must be above zero"));
    }
    Ok(d)
}

/// A JSON object (filters, sorts, projections).
pub(crate) fn json_object(text: &str) -> Result<serde_json::Value, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    if !v.is_object() {
        return Err(format!(
            "expected a JSON object such as {{\"field\": 1}}, got {}",
            json_type(&v)
        ));
    }
    Ok(v)
}

/// A query vector from the command line (a newtype: clap would take a
/// `Vec` field for a list of arguments).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueryVector(pub(crate) Vec<f32>);

/// A vector: a non-empty JSON array of finite numbers.
pub(crate) fn vector(text: &str) -> Result<QueryVector, String> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("invalid JSON: {e} (expected an array such as [0.1, 0.2])"))?;
    let items = v
        .as_array()
        .ok_or_else(|| format!("expected a JSON array of numbers, got {}", json_type(&v)))?;
    if items.is_empty() {
        return Err("the vector is empty".into());
    }
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_f64()
                .map(|f| f as f32)
                .filter(|f| f.is_finite())
                .ok_or_else(|| format!("component {i} is not a finite 32-bit number: {x}"))
        })
        .collect::<Result<_, _>>()
        .map(QueryVector)
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// One SQL parameter from the command line, by the rule in `dbx query
/// --help`: `null`, `true`/`false`, a canonical integer, a float, a JSON
/// string literal, `@PATH` (a file's text), else text. With `raw`, text
/// (and `@PATH`) only.
pub(crate) fn sql_param(text: &str, raw: bool) -> Result<Value, String> {
    if let Some(rest) = text.strip_prefix('@') {
        if rest.starts_with('@') {
            return Ok(Value::Text(rest.to_owned()));
        }
        return std::fs::read_to_string(rest).map(Value::Text).map_err(|e| {
            format!(
                "cannot read parameter file `{rest}`: {e} (write @@ for a text starting with @)"
            )
        });
    }
    if raw {
        return Ok(Value::Text(text.to_owned()));
    }
    Ok(match text {
        "null" => Value::Null,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        t if is_integer(t) => match t.parse::<i64>() {
            Ok(i) => Value::Int(i),
            // Too big for i64: keep the digits rather than lose them.
            Err(_) => Value::Text(t.to_owned()),
        },
        t if is_float(t) => match t.parse::<f64>() {
            Ok(f) if f.is_finite() => Value::Float(f),
            _ => Value::Text(t.to_owned()),
        },
        t if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') => {
            match serde_json::from_str::<String>(t) {
                Ok(s) => Value::Text(s),
                Err(_) => Value::Text(t.to_owned()),
            }
        }
        t => Value::Text(t.to_owned()),
    })
}

/// `-?(0|[1-9][0-9]*)`: so `007` and `+5` stay text.
fn is_integer(t: &str) -> bool {
    let digits = t.strip_prefix('-').unwrap_or(t);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` with a fraction or an
/// exponent: no `inf`, `NaN`, `.5` or `1.`.
fn is_float(t: &str) -> bool {
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let int_ok = is_integer(int);
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    let exp_ok = exponent.is_none_or(|e| {
        let d = e.strip_prefix(['+', '-']).unwrap_or(e);
        !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
    });
    int_ok && frac_ok && exp_ok && (frac.is_some() || exponent.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(duration("0s").is_err());
        assert!(duration("soon").is_err());
        assert!(duration("5 parsecs").is_err());
        assert!(duration("").is_err());
    }

    #[test]
    fn params_are_typed_by_the_documented_rule() {
        let p = |t| sql_param(t, false).ok();
        assert_eq!(p("null"), Some(Value::Null));
        assert_eq!(p("true"), Some(Value::Bool(true)));
        assert_eq!(p("false"), Some(Value::Bool(false)));
        assert_eq!(p("42"), Some(Value::Int(42)));
        assert_eq!(p("-7"), Some(Value::Int(-7)));
        assert_eq!(p("0"), Some(Value::Int(0)));
        assert_eq!(p("007"), Some(Value::Text("007".into())));
        assert_eq!(p("+5"), Some(Value::Text("+5".into())));
        assert_eq!(p("1.5"), Some(Value::Float(1.5)));
        assert_eq!(p("-2e3"), Some(Value::Float(-2000.0)));
        assert_eq!(p("inf"), Some(Value::Text("inf".into())));
        assert_eq!(p("NaN"), Some(Value::Text("NaN".into())));
        assert_eq!(p("1."), Some(Value::Text("1.".into())));
        assert_eq!(p(".5"), Some(Value::Text(".5".into())));
        assert_eq!(p("\"42\""), Some(Value::Text("42".into())));
        assert_eq!(p("\"a\\\"b\""), Some(Value::Text("a\"b".into())));
        assert_eq!(p("NULL"), Some(Value::Text("NULL".into())));
        assert_eq!(
            p("99999999999999999999"),
            Some(Value::Text("99999999999999999999".into()))
        );
        assert_eq!(
            p("'; DROP TABLE x; --"),
            Some(Value::Text("'; DROP TABLE x; --".into()))
        );
        assert_eq!(p("@@me"), Some(Value::Text("@me".into())));
        assert!(sql_param("@/nonexistent/file", false).is_err());
        assert_eq!(sql_param("42", true).ok(), Some(Value::Text("42".into())));
        assert_eq!(
            sql_param("null", true).ok(),
            Some(Value::Text("null".into()))
        );
    }

    #[test]
    fn json_arguments() {
        assert!(json_object("{\"a\": 1}").is_ok());
        assert!(json_object("[1]").is_err());
        assert!(json_object("{").is_err());
        assert_eq!(
            vector("[0.5, 1, -2]"),
            Ok(QueryVector(vec![0.5, 1.0, -2.0]))
        );
        assert!(vector("[]").is_err());
        assert!(vector("[1, \"x\"]").is_err());
        assert!(vector("[1e40]").is_err());
        assert!(vector("{}").is_err());
    }
}
