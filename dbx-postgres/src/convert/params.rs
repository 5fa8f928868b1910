//! Parameters: dbx values coerced to the types the server inferred for a
//! statement, or typed by their own kind for unnamed statements.

use super::*;

/// One parameter, converted for the type the statement expects.
#[derive(Debug)]
pub(crate) enum Param<'a> {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    Oid(u32),
    F32(f32),
    F64(f64),
    /// UTF-8 text in the binary format of text-like types (text, varchar,
    /// bpchar, name, enums, citext).
    Str(Cow<'a, str>),
    Bytes(&'a [u8]),
    /// JSON for a `json` or `jsonb` parameter.
    Json(&'a serde_json::Value),
    /// Microseconds since 2000-01-01 (timestamp and timestamptz).
    Micros(i64),
    /// Days since 2000-01-01.
    Days(i32),
    Uuid([u8; 16]),
    /// An encoded binary NUMERIC.
    Numeric(Vec<u8>),
    /// Text the server parses with the type's input function (dates,
    /// intervals, JSON text, arrays, enums...): as if written as a literal.
    TextFormat(Cow<'a, str>),
}

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Param::Null => return Ok(IsNull::Yes),
            Param::Bool(b) => wire::bool_to_sql(*b, out),
            Param::I16(v) => wire::int2_to_sql(*v, out),
            Param::I32(v) => wire::int4_to_sql(*v, out),
            Param::I64(v) => wire::int8_to_sql(*v, out),
            Param::Oid(v) => wire::oid_to_sql(*v, out),
            Param::F32(v) => wire::float4_to_sql(*v, out),
            Param::F64(v) => wire::float8_to_sql(*v, out),
            Param::Str(s) => wire::text_to_sql(s, out),
            Param::Bytes(b) => wire::bytea_to_sql(b, out),
            Param::Json(j) => {
                if base_type(ty) == &Type::JSONB {
                    out.put_u8(1);
                }
                serde_json::to_writer(out.writer(), j)?;
            }
            Param::Micros(v) => wire::timestamp_to_sql(*v, out),
            Param::Days(v) => wire::date_to_sql(*v, out),
            Param::Uuid(u) => wire::uuid_to_sql(*u, out),
            Param::Numeric(n) => out.put_slice(n),
            Param::TextFormat(s) => out.put_slice(s.as_bytes()),
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        // Every value was checked against the statement's type by `coerce`.
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        match self {
            Param::TextFormat(_) => Format::Text,
            _ => Format::Binary,
        }
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A domain's base type; any other type itself.
pub(crate) fn base_type(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Domain(base) => base_type(base),
        _ => ty,
    }
}

pub(crate) fn is_text_like(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    ) || ty.name() == "citext"
        || matches!(ty.kind(), Kind::Enum(_))
}

pub(crate) fn mismatch(pos: usize, v: &Value, ty: &Type) -> Error {
    Error::invalid_input(format!(
        "parameter ${pos} is {} ({}) but the statement expects {}",
        v.type_name(),
        describe(v),
        ty.name()
    ))
}

/// A short rendering of a value for error messages.
pub(crate) fn describe(v: &Value) -> String {
    let s = format!("{v:?}");
    match s.char_indices().nth(48) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

pub(crate) fn out_of_range(pos: usize, what: &str, ty: &Type) -> Error {
    Error::new(
        ErrorKind::OutOfRange,
        format!("parameter ${pos}: {what} does not fit in {}", ty.name()),
    )
}

pub(crate) fn no_nul(pos: usize, s: &str) -> Result<(), Error> {
    if s.contains('\0') {
        Err(Error::invalid_input(format!(
            "parameter ${pos} contains a NUL character, which PostgreSQL text cannot hold \
             (store such data as bytes)"
        )))
    } else {
        Ok(())
    }
}

pub(crate) fn timestamp_micros(t: &DateTime<Utc>) -> Option<i64> {
    t.timestamp_micros().checked_sub(PG_EPOCH_MICROS)
}

/// Parse a decimal's text as an integer; `None` if it has a nonzero fraction.
pub(crate) fn decimal_integer(s: &str) -> Option<Result<i64, ()>> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !frac.bytes().all(|b| b == b'0') {
        return None;
    }
    let int = if int.is_empty() || int == "-" || int == "+" {
        "0"
    } else {
        int
    };
    Some(int.parse::<i64>().map_err(|_| ()))
}

/// Convert parameter number `pos` (1-based) for a statement parameter of
/// type `ty`: range-checked, with an `InvalidInput` error naming both types
/// when they do not go together.
pub(crate) fn coerce<'a>(pos: usize, v: &'a Value, ty: &Type) -> Result<Param<'a>, Error> {
    let t = base_type(ty);
    let text_target = is_text_like(t);
    Ok(match v {
        Value::Null => Param::Null,
        Value::Bool(b) => match *t {
            Type::BOOL => Param::Bool(*b),
            _ => return Err(mismatch(pos, v, ty)),
        },
        Value::Int(i) => match *t {
            Type::INT8 => Param::I64(*i),
            Type::INT4 => {
                Param::I32(i32::try_from(*i).map_err(|_| out_of_range(pos, &i.to_string(), ty))?)
            }
            Type::INT2 => {
                Param::I16(i16::try_from(*i).map_err(|_| out_of_range(pos, &i.to_string(), ty))?)
            }
            Type::OID => {
                Param::Oid(u32::try_from(*i).map_err(|_| out_of_range(pos, &i.to_string(), ty))?)
            }
            Type::FLOAT8 => Param::F64(*i as f64),
            Type::FLOAT4 => Param::F32(*i as f32),
            Type::NUMERIC => Param::Numeric(numeric_param(pos, &i.to_string())?),
            _ => return Err(mismatch(pos, v, ty)),
        },
        Value::Float(f) => match *t {
            Type::FLOAT8 => Param::F64(*f),
            Type::FLOAT4 => {
                if f.is_finite() && f.abs() > f64::from(f32::MAX) {
                    return Err(out_of_range(pos, &f.to_string(), ty));
                }
                Param::F32(*f as f32)
            }
            Type::NUMERIC => Param::Numeric(numeric_param(pos, &float_text(*f))?),
            _ => return Err(mismatch(pos, v, ty)),
        },
        Value::Text(s) => {
            no_nul(pos, s)?;
            match *t {
                _ if text_target => Param::Str(Cow::Borrowed(s)),
                Type::UUID => Param::Uuid(
                    s.parse::<dbx_core::uuid::Uuid>()
                        .map_err(|_| {
                            Error::invalid_input(format!(
                                "parameter ${pos}: {} is not a UUID",
                                describe(v)
                            ))
                        })?
                        .into_bytes(),
                ),
                Type::NUMERIC => Param::Numeric(numeric_param(pos, s)?),
                Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::OID
                | Type::FLOAT4
                | Type::FLOAT8
                | Type::BOOL
                | Type::BYTEA => return Err(mismatch(pos, v, ty)),
                // Anything else (json, dates, intervals, network types,
                // arrays, ranges, user types) reads the text like a literal.
                _ => Param::TextFormat(Cow::Borrowed(s)),
            }
        }
        Value::Bytes(b) => match *t {
            Type::BYTEA => Param::Bytes(b),
            _ => return Err(mismatch(pos, v, ty)),
        },
        Value::Json(j) => match *t {
            Type::JSON | Type::JSONB => Param::Json(j),
            _ if text_target => Param::Str(Cow::Owned(j.to_string())),
            _ if matches!(t.kind(), Kind::Array(_)) => {
                Param::TextFormat(Cow::Owned(array_literal(pos, j)?))
            }
            _ => return Err(mismatch(pos, v, ty)),
        },
        Value::Timestamp(ts) => match *t {
            Type::TIMESTAMPTZ | Type::TIMESTAMP => Param::Micros(
                timestamp_micros(ts).ok_or_else(|| out_of_range(pos, "the timestamp", ty))?,
            ),
            Type::DATE => {
                if ts.time() != NaiveTime::MIN {
                    return Err(Error::invalid_input(format!(
                        "parameter ${pos}: timestamp {} is not at midnight, so it is not a date",
                        Value::timestamp_text(ts)
                    )));
                }
                Param::Days(ts.date_naive().num_days_from_ce() - PG_EPOCH_DAYS_CE)
            }
            _ if text_target => Param::Str(Cow::Owned(Value::timestamp_text(ts))),
            _ => return Err(mismatch(pos, v, ty)),
        },
        Value::Uuid(u) => match *t {
            Type::UUID => Param::Uuid(u.into_bytes()),
            _ if text_target => Param::Str(Cow::Owned(u.to_string())),
            _ => return Err(mismatch(pos, v, ty)),
        },
        Value::Decimal(s) => match *t {
            Type::NUMERIC => Param::Numeric(numeric_param(pos, s)?),
            Type::FLOAT8 | Type::FLOAT4 => {
                let f: f64 = s.parse().map_err(|_| mismatch(pos, v, ty))?;
                if *t == Type::FLOAT4 {
                    if f.abs() > f64::from(f32::MAX) {
                        return Err(out_of_range(pos, s, ty));
                    }
                    Param::F32(f as f32)
                } else {
                    Param::F64(f)
                }
            }
            Type::INT2 | Type::INT4 | Type::INT8 => {
                let n = match decimal_integer(s) {
                    None => {
                        return Err(Error::invalid_input(format!(
                            "parameter ${pos}: decimal {s} is not a whole number, but the statement expects {}",
                            ty.name()
                        )));
                    }
                    Some(r) => r.map_err(|_| out_of_range(pos, s, ty))?,
                };
                match *t {
                    Type::INT8 => Param::I64(n),
                    Type::INT4 => {
                        Param::I32(i32::try_from(n).map_err(|_| out_of_range(pos, s, ty))?)
                    }
                    _ => Param::I16(i16::try_from(n).map_err(|_| out_of_range(pos, s, ty))?),
                }
            }
            _ if text_target => Param::Str(Cow::Borrowed(s)),
            _ => return Err(mismatch(pos, v, ty)),
        },
        #[allow(unreachable_patterns)]
        other => return Err(mismatch(pos, other, ty)),
    })
}

/// A parameter when the statement's types are unknown (`statement_cache=false`,
/// unnamed statements): the type to declare, and the value. Text-like values
/// go in text format with an unspecified type, so the server infers it
/// from the context exactly as for a literal.
pub(crate) fn untyped(pos: usize, v: &Value) -> Result<(Param<'_>, Type), Error> {
    let unspecified = || Type::new("unspecified".into(), 0, Kind::Simple, "pg_catalog".into());
    Ok(match v {
        Value::Null => (Param::Null, unspecified()),
        Value::Bool(b) => (
            Param::TextFormat(Cow::Borrowed(if *b { "t" } else { "f" })),
            unspecified(),
        ),
        Value::Int(i) => (Param::TextFormat(Cow::Owned(i.to_string())), unspecified()),
        Value::Float(f) => (Param::TextFormat(Cow::Owned(float_text(*f))), unspecified()),
        Value::Text(s) => {
            no_nul(pos, s)?;
            (Param::TextFormat(Cow::Borrowed(s)), unspecified())
        }
        Value::Decimal(s) => (Param::TextFormat(Cow::Borrowed(s)), unspecified()),
        Value::Bytes(b) => (Param::Bytes(b), Type::BYTEA),
        Value::Json(j) => (Param::TextFormat(Cow::Owned(j.to_string())), unspecified()),
        Value::Timestamp(ts) => (
            Param::TextFormat(Cow::Owned(Value::timestamp_text(ts))),
            unspecified(),
        ),
        Value::Uuid(u) => (Param::TextFormat(Cow::Owned(u.to_string())), unspecified()),
        #[allow(unreachable_patterns)]
        other => {
            return Err(Error::invalid_input(format!(
                "parameter ${pos}: unsupported value {}",
                describe(other)
            )));
        }
    })
}

/// A float as text PostgreSQL reads back exactly (shortest round-trip form).
pub(crate) fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        f.to_string()
    }
}

/// A JSON array as a PostgreSQL array literal (`{1,"a b",NULL,{2,3}}`).
pub(crate) fn array_literal(pos: usize, j: &serde_json::Value) -> Result<String, Error> {
    fn elem(out: &mut String, v: &serde_json::Value) -> Result<(), ()> {
        use serde_json::Value as J;
        match v {
            J::Null => out.push_str("NULL"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Number(n) => {
                let _ = write!(out, "{n}");
            }
            J::String(s) => quote(out, s)?,
            J::Array(items) => {
                out.push('{');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    elem(out, item)?;
                }
                out.push('}');
            }
            J::Object(_) => quote(out, &v.to_string())?,
        }
        Ok(())
    }
    fn quote(out: &mut String, s: &str) -> Result<(), ()> {
        if s.contains('\0') {
            return Err(());
        }
        out.push('"');
        for c in s.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        Ok(())
    }
    if !j.is_array() {
        return Err(Error::invalid_input(format!(
            "parameter ${pos}: only a JSON array can be bound to an array parameter"
        )));
    }
    let mut out = String::new();
    elem(&mut out, j).map_err(|()| {
        Error::invalid_input(format!(
            "parameter ${pos} contains a NUL character, which PostgreSQL text cannot hold"
        ))
    })?;
    Ok(out)
}
