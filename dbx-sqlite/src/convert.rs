//! Values: dbx values bound as SQLite parameters, and SQLite columns read
//! back as dbx values (by declared type).

use crate::error::{BACKEND, map_err};
use dbx_core::chrono::{DateTime, NaiveDateTime, Utc};
use dbx_core::{Error, Row, Value};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Statement, ToSql};
use std::sync::Arc;

/// A dbx value as a SQLite value.
pub(crate) struct Bind<'a>(pub(crate) &'a Value);

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Float(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Text(s) | Value::Decimal(s) => {
                ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
            }
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::Json(j) => ToSqlOutput::Owned(rusqlite::types::Value::Text(j.to_string())),
            Value::Timestamp(t) => {
                ToSqlOutput::Owned(rusqlite::types::Value::Text(Value::timestamp_text(t)))
            }
            Value::Uuid(u) => ToSqlOutput::Owned(rusqlite::types::Value::Text(u.to_string())),
            // `Value` is non-exhaustive for users; every variant is covered above.
            #[allow(unreachable_patterns)]
            other => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!("unsupported value {other:?}").into(),
                ));
            }
        })
    }
}

/// How a column's declared type refines what SQLite's storage class says.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decl {
    Plain,
    Bool,
    Json,
    Uuid,
    Timestamp,
    Decimal,
}

/// Whether `hay` contains `needle` (uppercase ASCII), ignoring ASCII case.
pub(crate) fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

impl Decl {
    pub(crate) fn of(decltype: Option<&str>) -> Decl {
        let Some(t) = decltype else {
            return Decl::Plain;
        };
        if contains_ci(t, "BOOL") {
            Decl::Bool
        } else if contains_ci(t, "JSON") {
            Decl::Json
        } else if contains_ci(t, "UUID") {
            Decl::Uuid
        } else if contains_ci(t, "TIMESTAMP") || contains_ci(t, "DATETIME") {
            Decl::Timestamp
        } else if contains_ci(t, "DECIMAL") || contains_ci(t, "NUMERIC") {
            Decl::Decimal
        } else {
            Decl::Plain
        }
    }
}

/// Column names and declared types of a prepared statement, shared by its rows.
pub(crate) struct Columns {
    pub(crate) names: Arc<[String]>,
    pub(crate) decl_types: Vec<Option<Box<str>>>,
    pub(crate) decls: Vec<Decl>,
}

impl Columns {
    pub(crate) fn matches(&self, stmt: &Statement<'_>) -> bool {
        stmt.column_count() == self.names.len()
            && stmt
                .columns()
                .zip(self.names.iter().zip(&self.decl_types))
                .all(|(c, (name, decl_type))| {
                    c.name() == name && c.decl_type() == decl_type.as_deref()
                })
    }

    pub(crate) fn of(stmt: &Statement<'_>) -> Columns {
        let cols = stmt.columns();
        let mut names = Vec::with_capacity(cols.len());
        let mut decl_types = Vec::with_capacity(cols.len());
        let mut decls = Vec::with_capacity(cols.len());
        for c in cols {
            names.push(c.name().to_owned());
            decl_types.push(c.decl_type().map(Box::from));
            decls.push(Decl::of(c.decl_type()));
        }
        Columns {
            names: names.into(),
            decl_types,
            decls,
        }
    }

    pub(crate) fn row(&self, r: &rusqlite::Row<'_>) -> Result<Row, Error> {
        let mut values = Vec::with_capacity(self.decls.len());
        for (i, decl) in self.decls.iter().enumerate() {
            let v = r.get_ref(i).map_err(map_err)?;
            values.push(to_value(v, *decl).map_err(|msg| {
                Error::decode(format!("column {:?}: {msg}", self.names[i])).with_backend(BACKEND)
            })?);
        }
        Ok(Row::new(self.names.clone(), values))
    }
}

pub(crate) fn to_value(v: ValueRef<'_>, decl: Decl) -> Result<Value, String> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) if decl == Decl::Bool && (i == 0 || i == 1) => Value::Bool(i == 1),
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(bytes) => {
            let s =
                std::str::from_utf8(bytes).map_err(|e| format!("text is not valid UTF-8 ({e})"))?;
            match decl {
                Decl::Json => {
                    serde_json::from_str(s).map_or_else(|_| Value::Text(s.to_owned()), Value::Json)
                }
                Decl::Uuid => s
                    .parse()
                    .map_or_else(|_| Value::Text(s.to_owned()), Value::Uuid),
                Decl::Timestamp => {
                    parse_timestamp(s).map_or_else(|| Value::Text(s.to_owned()), Value::Timestamp)
                }
                Decl::Decimal => Value::decimal(s).unwrap_or_else(|_| Value::Text(s.to_owned())),
                Decl::Plain | Decl::Bool => Value::Text(s.to_owned()),
            }
        }
        ValueRef::Blob(b) if decl == Decl::Uuid && b.len() == 16 => {
            let mut raw = [0u8; 16];
            raw.copy_from_slice(b);
            Value::Uuid(dbx_core::uuid::Uuid::from_bytes(raw))
        }
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    })
}

/// RFC 3339, or SQLite's own `YYYY-MM-DD HH:MM:SS[.fff]` (taken as UTC).
pub(crate) fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decltypes() {
        assert!(Decl::of(Some("boolean")) == Decl::Bool);
        assert!(Decl::of(Some("JSONB")) == Decl::Json);
        assert!(Decl::of(Some("TEXT")) == Decl::Plain);
        assert!(Decl::of(None) == Decl::Plain);
        assert!(Decl::of(Some("decimal(10,2)")) == Decl::Decimal);
    }

    #[test]
    fn timestamps() {
        assert!(parse_timestamp("2024-01-02 03:04:05").is_some());
        assert!(parse_timestamp("2024-01-02T03:04:05.123456Z").is_some());
        assert!(parse_timestamp("yesterday").is_none());
    }
}
