//! Values between JSON and dbx: parameters in, rows and KV values out.

use crate::error::ApiError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use dbx::Value;
use serde_json::{Map, Value as J};

/// A bound parameter from JSON. `null`, booleans, integers, floats and
/// strings map to the same dbx values; arrays and objects are JSON values;
/// an object with one of the keys `$bytes` (base64), `$uuid`, `$timestamp`
/// (RFC 3339), `$decimal` or `$json` is that typed value.
pub(crate) fn param(v: &J, at: &str) -> Result<Value, ApiError> {
    Ok(match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if n.is_u64() {
                return Err(ApiError::bad_request(format!(
                    "{at}: {n} does not fit a signed 64-bit integer"
                )));
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => Value::Text(s.clone()),
        J::Object(m) if m.len() == 1 && m.keys().all(|k| k.starts_with('$')) => typed(m, at)?,
        other => Value::Json(other.clone()),
    })
}

fn typed(m: &Map<String, J>, at: &str) -> Result<Value, ApiError> {
    let Some((k, v)) = m.iter().next() else {
        return Ok(Value::Null);
    };
    let text = |what: &str| {
        v.as_str()
            .ok_or_else(|| ApiError::bad_request(format!("{at}.{k}: expected {what} as a string")))
    };
    Ok(match k.as_str() {
        "$bytes" => Value::Bytes(
            B64.decode(text("base64")?)
                .map_err(|e| ApiError::bad_request(format!("{at}.$bytes: not base64: {e}")))?,
        ),
        "$uuid" => Value::Uuid(
            dbx::uuid::Uuid::parse_str(text("a UUID")?)
                .map_err(|e| ApiError::bad_request(format!("{at}.$uuid: {e}")))?,
        ),
        "$timestamp" => Value::Timestamp(
            dbx::chrono::DateTime::parse_from_rfc3339(text("an RFC 3339 time")?)
                .map_err(|e| ApiError::bad_request(format!("{at}.$timestamp: {e}")))?
                .with_timezone(&dbx::chrono::Utc),
        ),
        "$decimal" => Value::decimal(text("a decimal")?)
            .map_err(|e| ApiError::bad_request(format!("{at}.$decimal: {}", e.message())))?,
        "$json" => Value::Json(v.clone()),
        other => {
            return Err(ApiError::bad_request(format!(
                "{at}: unknown typed value `{other}` (expected $bytes, $uuid, $timestamp, $decimal or $json)"
            )));
        }
    })
}

/// Parameters from a JSON array (absent = none).
pub(crate) fn params(v: &[J]) -> Result<Vec<Value>, ApiError> {
    v.iter()
        .enumerate()
        .map(|(i, p)| param(p, &format!("params[{i}]")))
        .collect()
}

/// A column value as JSON: numbers, booleans and text as such, JSON
/// embedded, bytes as `{"$bytes": base64}`, timestamps RFC 3339, UUIDs and
/// decimals as strings, non-finite floats as strings.
pub(crate) fn to_json(v: &Value) -> J {
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .unwrap_or_else(|| J::String(f.to_string())),
        Value::Text(s) => J::String(s.clone()),
        Value::Bytes(b) => serde_json::json!({ "$bytes": B64.encode(b) }),
        Value::Json(j) => j.clone(),
        Value::Timestamp(t) => J::String(Value::timestamp_text(t)),
        Value::Uuid(u) => J::String(u.to_string()),
        Value::Decimal(d) => J::String(d.clone()),
        other => J::String(format!("{other:?}")),
    }
}

/// A KV value as JSON: `{"value": text}` when it is UTF-8, else
/// `{"value_base64": ...}`.
pub(crate) fn kv_value(key: &str, bytes: &[u8]) -> J {
    match std::str::from_utf8(bytes) {
        Ok(s) => serde_json::json!({ "key": key, "value": s }),
        Err(_) => serde_json::json!({ "key": key, "value_base64": B64.encode(bytes) }),
    }
}

/// A KV value from a request: `value` (text) or `value_base64`.
pub(crate) fn kv_bytes(
    value: Option<String>,
    value_base64: Option<String>,
) -> Result<Vec<u8>, ApiError> {
    match (value, value_base64) {
        (Some(v), None) => Ok(v.into_bytes()),
        (None, Some(b)) => B64
            .decode(b)
            .map_err(|e| ApiError::bad_request(format!("value_base64: not base64: {e}"))),
        _ => Err(ApiError::bad_request(
            "give exactly one of `value` (text) or `value_base64`",
        )),
    }
}
