//! The value model shared by every backend: [`Value`] and the [`params!`](crate::params) macro.

use chrono::{DateTime, NaiveDateTime, Utc};
use std::fmt;
use uuid::Uuid;

/// One database value: a bound parameter or a column of a [`Row`](crate::Row).
///
/// Each backend maps its native types onto these variants and back; the
/// mapping is documented on the driver. Exact decimals travel as text so no
/// precision is lost on the way.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// SQL `NULL` / a missing value.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A JSON document.
    Json(serde_json::Value),
    /// A point in time, in UTC.
    Timestamp(DateTime<Utc>),
    /// A UUID.
    Uuid(Uuid),
    /// An exact decimal number in its canonical text form, such as `"-12.3400"`.
    Decimal(String),
}

impl Value {
    /// The variant's name, as used in decode errors (`"int"`, `"text"`...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Json(_) => "json",
            Value::Timestamp(_) => "timestamp",
            Value::Uuid(_) => "uuid",
            Value::Decimal(_) => "decimal",
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A decimal value from its text form, checked to be a plain decimal
    /// number (optional sign, digits, optional fraction).
    pub fn decimal(text: impl Into<String>) -> crate::Result<Value> {
        let text = text.into();
        let digits = text.strip_prefix(['-', '+']).unwrap_or(&text);
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let ok = !(int.is_empty() && frac.is_empty())
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
            && !(digits.ends_with('.') && frac.is_empty() && int.is_empty());
        if ok {
            Ok(Value::Decimal(text))
        } else {
            Err(crate::Error::invalid_input(format!(
                "{text:?} is not a decimal number"
            )))
        }
    }

    /// A JSON value from anything serde can serialize.
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> crate::Result<Value> {
        serde_json::to_value(value).map(Value::Json).map_err(|e| {
            crate::Error::invalid_input(format!("value cannot be serialized as JSON: {e}"))
                .with_source(e)
        })
    }

    /// The canonical text form of a timestamp as dbx stores it in text
    /// columns: RFC 3339 in UTC with microseconds, so it sorts as text.
    pub fn timestamp_text(ts: &DateTime<Utc>) -> String {
        ts.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Bool(v) => write!(f, "Bool({v})"),
            Value::Int(v) => write!(f, "Int({v})"),
            Value::Float(v) => write!(f, "Float({v:?})"),
            Value::Text(v) => write!(f, "Text({v:?})"),
            Value::Bytes(v) => write!(f, "Bytes({} bytes)", v.len()),
            Value::Json(v) => write!(f, "Json({v})"),
            Value::Timestamp(v) => write!(f, "Timestamp({})", Value::timestamp_text(v)),
            Value::Uuid(v) => write!(f, "Uuid({v})"),
            Value::Decimal(v) => write!(f, "Decimal({v})"),
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Int(i64::from(v)) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Float(f64::from(v))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Bytes(v.to_vec())
    }
}
impl<const N: usize> From<&[u8; N]> for Value {
    fn from(v: &[u8; N]) -> Self {
        Value::Bytes(v.to_vec())
    }
}
impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        Value::Json(v)
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(v: DateTime<Utc>) -> Self {
        Value::Timestamp(v)
    }
}
impl From<NaiveDateTime> for Value {
    fn from(v: NaiveDateTime) -> Self {
        Value::Timestamp(v.and_utc())
    }
}
impl From<Uuid> for Value {
    fn from(v: Uuid) -> Self {
        Value::Uuid(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
impl From<&Value> for Value {
    fn from(v: &Value) -> Self {
        v.clone()
    }
}

impl TryFrom<u64> for Value {
    type Error = crate::Error;
    fn try_from(v: u64) -> crate::Result<Self> {
        i64::try_from(v).map(Value::Int).map_err(|_| {
            crate::Error::new(
                crate::ErrorKind::OutOfRange,
                format!("{v} does not fit in a signed 64-bit integer"),
            )
        })
    }
}

/// Build a parameter list for a statement: `params![42, "ada", None::<i64>]`.
///
/// Each argument is converted with `Into<Value>`; the macro evaluates to a
/// `&[Value]` that lives until the end of the enclosing statement, so it is
/// written directly in the call: `sql.query("SELECT $1", params![1]).await`.
/// Placeholders are `$1..$N` on every SQL backend and bind by number.
#[macro_export]
macro_rules! params {
    () => { &[] as &[$crate::Value] };
    ($($v:expr),+ $(,)?) => { &[$($crate::Value::from($v)),+] as &[$crate::Value] };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_macro_converts_each_argument() {
        let p = crate::params![1, "a", None::<i64>, true, 2.5, vec![1u8, 2]];
        assert_eq!(
            p,
            &[
                Value::Int(1),
                Value::Text("a".into()),
                Value::Null,
                Value::Bool(true),
                Value::Float(2.5),
                Value::Bytes(vec![1, 2]),
            ]
        );
        assert!(crate::params![].is_empty());
    }

    #[test]
    fn decimal_is_checked() {
        assert!(Value::decimal("-12.340").is_ok());
        assert!(Value::decimal("7").is_ok());
        assert!(Value::decimal(".5").is_ok());
        for bad in ["", "-", "1e5", "1.2.3", "abc", "1,5", "."] {
            let e = Value::decimal(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn u64_out_of_range_is_typed() {
        assert_eq!(Value::try_from(5u64).unwrap(), Value::Int(5));
        let e = Value::try_from(u64::MAX).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::OutOfRange);
    }

    #[test]
    fn debug_does_not_dump_bytes() {
        assert_eq!(
            format!("{:?}", Value::Bytes(vec![0; 1000])),
            "Bytes(1000 bytes)"
        );
    }
}
