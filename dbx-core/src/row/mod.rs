//! Result rows and their typed decoding through serde.

use crate::{Error, Result, Value};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use std::fmt;
use std::sync::Arc;

/// One result row: column names (shared by all rows of a result) and values.
///
/// Decode a column with [`get`](Row::get) or the whole row into a struct,
/// tuple or scalar with [`decode`](Row::decode):
///
/// ```
/// # use dbx_core::{Row, Value};
/// #[derive(serde::Deserialize)]
/// struct User { id: i64, name: String, email: Option<String> }
///
/// let row = Row::new(vec!["id".into(), "name".into(), "email".into()].into(),
///                    vec![Value::Int(7), Value::Text("ada".into()), Value::Null]);
/// let name: String = row.get("name")?;
/// let user: User = row.decode()?;
/// assert_eq!((user.id, user.name.as_str(), user.email), (7, "ada", None));
/// let (id, n): (i64, String) = Row::new(vec!["a".into(), "b".into()].into(),
///     vec![Value::Int(1), Value::Text("x".into())]).decode()?;
/// # Ok::<(), dbx_core::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// A row from column names and values of equal length.
    pub fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        debug_assert_eq!(columns.len(), values.len());
        Row { columns, values }
    }

    /// The column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Consume the row, keeping its values.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The raw value of a column, by name or position.
    pub fn value(&self, column: impl ColumnIndex) -> Result<&Value> {
        let i = column.index_in(self)?;
        Ok(&self.values[i])
    }

    /// Decode one column, by name or position, into `T` (any serde type;
    /// `Option<T>` for nullable columns).
    pub fn get<T: DeserializeOwned>(&self, column: impl ColumnIndex) -> Result<T> {
        let i = column.index_in(self)?;
        T::deserialize(ValueDeserializer(&self.values[i]))
            .map_err(|e| Error::decode(format!("column {:?}: {}", self.columns[i], e.0)))
    }

    /// Decode the whole row: a struct (fields by column name), a tuple
    /// (columns by position), or, for a one-column row, a scalar.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(RowDeserializer(self))
            .map_err(|e| Error::decode(format!("row ({}): {}", self.columns.join(", "), e.0)))
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.columns.iter().zip(self.values.iter()))
            .finish()
    }
}

/// A column position or name accepted by [`Row::get`].
pub trait ColumnIndex: sealed::Sealed {
    /// The position of this column in `row`, or an invalid-input error naming it.
    fn index_in(&self, row: &Row) -> Result<usize>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for usize {}
    impl Sealed for &str {}
}

impl ColumnIndex for usize {
    fn index_in(&self, row: &Row) -> Result<usize> {
        if *self < row.len() {
            Ok(*self)
        } else {
            Err(Error::invalid_input(format!(
                "column index {self} is out of range: the row has {} columns",
                row.len()
            )))
        }
    }
}

impl ColumnIndex for &str {
    fn index_in(&self, row: &Row) -> Result<usize> {
        row.columns.iter().position(|c| c == self).ok_or_else(|| {
            Error::invalid_input(format!(
                "no column named {self:?}; the row has: {}",
                row.columns.join(", ")
            ))
        })
    }
}

/// The serde error used while decoding; turned into an [`Error`] of kind
/// [`Decode`](crate::ErrorKind::Decode).
#[derive(Debug)]
pub(crate) struct DeError(pub(crate) String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for DeError {}
impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

fn json_err(e: serde_json::Error) -> DeError {
    DeError(e.to_string())
}

/// Integer targets also accept a whole-number [`Value::Decimal`] (PostgreSQL's
/// `SUM(bigint)` is `numeric`), range-checked by the target type.
macro_rules! int_from_decimal {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.0 {
                Value::Decimal(s) => {
                    let whole = s.strip_suffix(|c| c == '.').unwrap_or(s);
                    let whole = whole.split_once('.').map_or(whole, |(i, f)| {
                        if f.bytes().all(|b| b == b'0') { i } else { s }
                    });
                                        if let Ok(n) = whole.parse::<i64>() {
                        visitor.visit_i64(n)
                    } else if let Ok(n) = whole.parse::<u64>() {
                        visitor.visit_u64(n)
                    } else {
                        Err(DeError(format!("decimal {s} is not a whole number that fits 64 bits")))
                    }
                }
                _ => self.deserialize_any(visitor),
            }
        }
    )*};
}

/// Deserializes one [`Value`].
pub(crate) struct ValueDeserializer<'a>(pub(crate) &'a Value);

impl<'a> ValueDeserializer<'a> {
    fn text_form(&self) -> Option<String> {
        match self.0 {
            Value::Timestamp(t) => Some(Value::timestamp_text(t)),
            Value::Uuid(u) => Some(u.to_string()),
            _ => None,
        }
    }

    fn unexpected(&self, expected: &str) -> DeError {
        DeError(format!(
            "invalid type: {} value, expected {expected}",
            self.0.type_name()
        ))
    }
}

impl<'de> de::Deserializer<'de> for ValueDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Text(s) | Value::Decimal(s) => visitor.visit_borrowed_str(s),
            Value::Bytes(b) => visitor.visit_borrowed_bytes(b),
            Value::Json(j) => j.deserialize_any(visitor).map_err(json_err),
            Value::Timestamp(_) | Value::Uuid(_) => {
                visitor.visit_string(self.text_form().unwrap_or_default())
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Bool(b) => visitor.visit_bool(*b),
            // SQLite and others store booleans as 0/1.
            Value::Int(0) => visitor.visit_bool(false),
            Value::Int(1) => visitor.visit_bool(true),
            Value::Json(serde_json::Value::Bool(b)) => visitor.visit_bool(*b),
            _ => Err(self.unexpected("a boolean")),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Decimal(s) => match s.parse::<f64>() {
                Ok(f) => visitor.visit_f64(f),
                Err(_) => Err(DeError(format!("decimal {s:?} is not a valid float"))),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            Value::Json(serde_json::Value::Null) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            _ => Err(self.unexpected("null")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            // `Vec<u8>` asks for a sequence; hand it the bytes one by one.
            Value::Bytes(b) => {
                visitor.visit_seq(de::value::SeqDeserializer::new(b.iter().copied()))
            }
            Value::Json(j) => j.deserialize_seq(visitor).map_err(json_err),
            // JSON kept in a text column (SQLite has no JSON type).
            Value::Text(s) => serde_json::Deserializer::from_str(s)
                .deserialize_seq(visitor)
                .map_err(json_err),
            _ => Err(self.unexpected("a sequence")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Json(j) => j.deserialize_map(visitor).map_err(json_err),
            Value::Text(s) => serde_json::Deserializer::from_str(s)
                .deserialize_map(visitor)
                .map_err(json_err),
            _ => Err(self.unexpected("a map")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Text(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Json(j) => j
                .deserialize_enum(name, variants, visitor)
                .map_err(json_err),
            _ => Err(self.unexpected("an enum variant name")),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Bytes(b) => visitor.visit_borrowed_bytes(b),
            Value::Text(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
            _ => Err(self.unexpected("bytes")),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    int_from_decimal! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    serde::forward_to_deserialize_any! {
        char str string unit_struct tuple_struct identifier ignored_any
    }
}

/// Deserializes a whole row: as a map (structs), a sequence (tuples) or,
/// with one column, as that column.
struct RowDeserializer<'a>(&'a Row);

impl<'a> RowDeserializer<'a> {
    fn single(&self) -> Result<ValueDeserializer<'a>, DeError> {
        match self.0.values.as_slice() {
            [v] => Ok(ValueDeserializer(v)),
            vs => Err(DeError(format!(
                "a row of {} columns cannot be decoded into a single value",
                vs.len()
            ))),
        }
    }
}

macro_rules! forward_single {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.single()?.$method(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for RowDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(RowMap {
            row: self.0,
            next: 0,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // A one-column row decoded into a sequence (`Vec<u8>` from a bytes
        // column, `Vec<T>` from a JSON array) means that column; tuples
        // (`deserialize_tuple`) always take the columns in order.
        if self.0.values.len() == 1 {
            return self.single()?.deserialize_seq(visitor);
        }
        visitor.visit_seq(RowSeq {
            values: self.0.values.iter(),
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_seq(RowSeq {
            values: self.0.values.iter(),
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self.single()?)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.single()?.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.single()?.deserialize_any(visitor)
    }

    forward_single! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_option
        deserialize_unit deserialize_identifier deserialize_ignored_any
    }
}

struct RowMap<'a> {
    row: &'a Row,
    next: usize,
}

impl<'de> MapAccess<'de> for RowMap<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.row.columns.get(self.next) {
            Some(name) => seed
                .deserialize(de::value::BorrowedStrDeserializer::new(name.as_str()))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let i = self.next;
        self.next += 1;
        seed.deserialize(ValueDeserializer(&self.row.values[i]))
            .map_err(|e| DeError(format!("column {:?}: {}", self.row.columns[i], e.0)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.row.len() - self.next)
    }
}

struct RowSeq<'a> {
    values: std::slice::Iter<'a, Value>,
}

impl<'de> SeqAccess<'de> for RowSeq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.values.next() {
            Some(v) => seed.deserialize(ValueDeserializer(v)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.values.len())
    }
}

#[cfg(test)]
mod tests;
