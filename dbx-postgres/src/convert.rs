//! Mapping between dbx values and PostgreSQL's binary formats: parameters
//! coerced to the types the server inferred for a statement, and result
//! columns decoded by their type.

use bytes::{BufMut, BytesMut};
use dbx_core::chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use dbx_core::{Error, ErrorKind, Row, Value};
use fallible_iterator::FallibleIterator;
use postgres_protocol::types as wire;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use tokio_postgres::types::{Format, FromSql, IsNull, Kind, ToSql, Type};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// Microseconds between the Unix epoch and PostgreSQL's, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days between 0001-01-01 (chrono's day 1 of CE) and 2000-01-01.
const PG_EPOCH_DAYS_CE: i32 = 730_120;

// ---------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------

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
fn base_type(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Domain(base) => base_type(base),
        _ => ty,
    }
}

fn is_text_like(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    ) || ty.name() == "citext"
        || matches!(ty.kind(), Kind::Enum(_))
}

fn mismatch(pos: usize, v: &Value, ty: &Type) -> Error {
    Error::invalid_input(format!(
        "parameter ${pos} is {} ({}) but the statement expects {}",
        v.type_name(),
        describe(v),
        ty.name()
    ))
}

/// A short rendering of a value for error messages.
fn describe(v: &Value) -> String {
    let s = format!("{v:?}");
    match s.char_indices().nth(48) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

fn out_of_range(pos: usize, what: &str, ty: &Type) -> Error {
    Error::new(
        ErrorKind::OutOfRange,
        format!("parameter ${pos}: {what} does not fit in {}", ty.name()),
    )
}

fn no_nul(pos: usize, s: &str) -> Result<(), Error> {
    if s.contains('\0') {
        Err(Error::invalid_input(format!(
            "parameter ${pos} contains a NUL character, which PostgreSQL text cannot hold \
             (store such data as bytes)"
        )))
    } else {
        Ok(())
    }
}

fn timestamp_micros(t: &DateTime<Utc>) -> Option<i64> {
    t.timestamp_micros().checked_sub(PG_EPOCH_MICROS)
}

/// Parse a decimal's text as an integer; `None` if it has a nonzero fraction.
fn decimal_integer(s: &str) -> Option<Result<i64, ()>> {
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
fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        f.to_string()
    }
}

/// A JSON array as a PostgreSQL array literal (`{1,"a b",NULL,{2,3}}`).
fn array_literal(pos: usize, j: &serde_json::Value) -> Result<String, Error> {
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

// ---------------------------------------------------------------------------
// NUMERIC
// ---------------------------------------------------------------------------

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

fn numeric_param(pos: usize, text: &str) -> Result<Vec<u8>, Error> {
    encode_numeric(text).ok_or_else(|| {
        let shown: String = text.chars().take(48).collect();
        Error::invalid_input(format!(
            "parameter ${pos}: {shown:?} is not a decimal number"
        ))
    })
}

/// Encode decimal text (`-12.340`, `7`, `.5`, `NaN`, `Infinity`) in
/// NUMERIC's binary format: base-10000 digits, weight, sign and display
/// scale, keeping every digit given (the scale is the number of fraction
/// digits written).
pub(crate) fn encode_numeric(text: &str) -> Option<Vec<u8>> {
    let header = |ndigits: i16, weight: i16, sign: u16, dscale: u16| {
        let mut out = Vec::with_capacity(8);
        out.extend_from_slice(&ndigits.to_be_bytes());
        out.extend_from_slice(&weight.to_be_bytes());
        out.extend_from_slice(&sign.to_be_bytes());
        out.extend_from_slice(&dscale.to_be_bytes());
        out
    };
    match text.to_ascii_lowercase().as_str() {
        "nan" => return Some(header(0, 0, NUMERIC_NAN, 0)),
        "infinity" | "+infinity" | "inf" => return Some(header(0, 0, NUMERIC_PINF, 0)),
        "-infinity" | "-inf" => return Some(header(0, 0, NUMERIC_NINF, 0)),
        _ => {}
    }
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let dscale = u16::try_from(frac.len()).ok().filter(|d| *d <= 0x3FFF)?;
    let int = int.trim_start_matches('0');
    let mut groups: Vec<i16> = Vec::with_capacity((int.len() + frac.len()) / 4 + 2);
    let group = |s: &[u8]| s.iter().fold(0i16, |acc, b| acc * 10 + i16::from(b - b'0'));
    let lead = (4 - int.len() % 4) % 4;
    let mut padded = vec![b'0'; lead];
    padded.extend_from_slice(int.as_bytes());
    groups.extend(padded.chunks(4).map(group));
    let int_groups = groups.len();
    let mut fpadded = frac.as_bytes().to_vec();
    fpadded.resize(frac.len().div_ceil(4) * 4, b'0');
    groups.extend(fpadded.chunks(4).map(group));
    let mut weight = int_groups as i64 - 1;
    let zeros = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..zeros);
    weight -= zeros as i64;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let (weight, sign) = if groups.is_empty() {
        (0, NUMERIC_POS)
    } else {
        (weight, if negative { NUMERIC_NEG } else { NUMERIC_POS })
    };
    let weight = i16::try_from(weight).ok()?;
    let ndigits = i16::try_from(groups.len()).ok()?;
    let mut out = header(ndigits, weight, sign, dscale);
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Some(out)
}

/// Decode a binary NUMERIC exactly: a `Value::Decimal` with the value's own
/// display scale, or a float for NaN and the infinities.
pub(crate) fn decode_numeric(raw: &[u8]) -> Result<Value, String> {
    let word = |i: usize| -> Result<u16, String> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".to_owned())
    };
    let ndigits = word(0)? as i16;
    let weight = word(1)? as i16;
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        NUMERIC_NAN => return Ok(Value::Float(f64::NAN)),
        NUMERIC_PINF => return Ok(Value::Float(f64::INFINITY)),
        NUMERIC_NINF => return Ok(Value::Float(f64::NEG_INFINITY)),
        NUMERIC_POS | NUMERIC_NEG => {}
        _ => return Err(format!("numeric has an unknown sign {sign:#x}")),
    }
    if ndigits < 0 {
        return Err("numeric has a negative digit count".to_owned());
    }
    let digits = (0..ndigits as usize)
        .map(|i| word(4 + i).map(|d| d as i16))
        .collect::<Result<Vec<i16>, String>>()?;
    if digits.iter().any(|d| !(0..10_000).contains(d)) {
        return Err("numeric has an invalid digit".to_owned());
    }
    let digit = |i: i64| -> i16 {
        if i >= 0 && (i as usize) < digits.len() {
            digits[i as usize]
        } else {
            0
        }
    };
    let mut out = String::with_capacity(digits.len() * 4 + dscale + 2);
    if sign == NUMERIC_NEG && !digits.is_empty() {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=i64::from(weight) {
            let d = digit(i);
            if i == 0 {
                let _ = write!(out, "{d}");
            } else {
                let _ = write!(out, "{d:04}");
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let start = out.len();
        let mut i = i64::from(weight) + 1;
        while out.len() - start < dscale {
            let _ = write!(out, "{:04}", digit(i));
            i += 1;
        }
        out.truncate(start + dscale);
    }
    Ok(Value::Decimal(out))
}

// ---------------------------------------------------------------------------
// Result columns
// ---------------------------------------------------------------------------

/// Whether `decode` maps this type (checked before running a prepared
/// statement, so a result that cannot be read fails before it has effects).
pub(crate) fn decodable(ty: &Type) -> bool {
    match ty.kind() {
        Kind::Domain(base) => decodable(base),
        Kind::Enum(_) => true,
        Kind::Array(elem) => decodable(elem),
        _ => {
            is_text_like(ty)
                || matches!(
                    *ty,
                    Type::BOOL
                        | Type::INT2
                        | Type::INT4
                        | Type::INT8
                        | Type::OID
                        | Type::FLOAT4
                        | Type::FLOAT8
                        | Type::CHAR
                        | Type::BYTEA
                        | Type::JSON
                        | Type::JSONB
                        | Type::TIMESTAMPTZ
                        | Type::TIMESTAMP
                        | Type::DATE
                        | Type::TIME
                        | Type::TIMETZ
                        | Type::INTERVAL
                        | Type::UUID
                        | Type::NUMERIC
                        | Type::INET
                        | Type::CIDR
                        | Type::MACADDR
                        | Type::XML
                        | Type::VOID
                )
        }
    }
}

pub(crate) fn undecodable(column: &str, ty: &Type) -> Error {
    Error::decode(format!(
        "column {column:?} has PostgreSQL type {} which dbx does not map; \
         cast it in SQL, e.g. {column}::text",
        ty.name()
    ))
}

fn utf8(raw: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(raw).map_err(|e| format!("text is not valid UTF-8 ({e})"))
}

fn err(e: BoxError) -> String {
    e.to_string()
}

fn time_text(micros: i64) -> Result<String, String> {
    let secs = u32::try_from(micros.div_euclid(1_000_000)).map_err(|_| "time out of range")?;
    let nanos = (micros.rem_euclid(1_000_000) * 1000) as u32;
    // 24:00:00 is a valid PostgreSQL time; chrono cannot hold it.
    if secs == 86_400 && nanos == 0 {
        return Ok("24:00:00".to_owned());
    }
    NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
        .map(|t| t.format("%H:%M:%S%.f").to_string())
        .ok_or_else(|| "time out of range".to_owned())
}

/// An interval as ISO 8601 (`P1Y2M3DT4H5M6.5S`; `PT0S` for zero).
fn interval_text(micros: i64, days: i32, months: i32) -> String {
    let mut out = String::from("P");
    let (years, months) = (months / 12, months % 12);
    if years != 0 {
        let _ = write!(out, "{years}Y");
    }
    if months != 0 {
        let _ = write!(out, "{months}M");
    }
    if days != 0 {
        let _ = write!(out, "{days}D");
    }
    if micros != 0 {
        out.push('T');
        let hours = micros / 3_600_000_000;
        let minutes = (micros % 3_600_000_000) / 60_000_000;
        let rest = micros % 60_000_000;
        if hours != 0 {
            let _ = write!(out, "{hours}H");
        }
        if minutes != 0 {
            let _ = write!(out, "{minutes}M");
        }
        if rest != 0 {
            let (s, us) = (rest / 1_000_000, (rest % 1_000_000).abs());
            if us == 0 {
                let _ = write!(out, "{s}S");
            } else {
                let sign = if rest < 0 && s == 0 { "-" } else { "" };
                let frac = format!("{us:06}");
                let _ = write!(out, "{sign}{s}.{}S", frac.trim_end_matches('0'));
            }
        }
    }
    if out == "P" {
        out.push_str("T0S");
    }
    out
}

/// Decode one non-NULL column value of type `ty`.
pub(crate) fn decode(ty: &Type, raw: &[u8]) -> Result<Value, String> {
    Ok(match *ty {
        Type::BOOL => Value::Bool(wire::bool_from_sql(raw).map_err(err)?),
        Type::INT2 => Value::Int(i64::from(wire::int2_from_sql(raw).map_err(err)?)),
        Type::INT4 => Value::Int(i64::from(wire::int4_from_sql(raw).map_err(err)?)),
        Type::INT8 => Value::Int(wire::int8_from_sql(raw).map_err(err)?),
        Type::OID => Value::Int(i64::from(wire::oid_from_sql(raw).map_err(err)?)),
        Type::FLOAT4 => Value::Float(f64::from(wire::float4_from_sql(raw).map_err(err)?)),
        Type::FLOAT8 => Value::Float(wire::float8_from_sql(raw).map_err(err)?),
        Type::CHAR => {
            let b = wire::char_from_sql(raw).map_err(err)? as u8;
            Value::Text(char::from(b).to_string())
        }
        Type::BYTEA => Value::Bytes(raw.to_vec()),
        Type::JSON => Value::Json(serde_json::from_slice(raw).map_err(|e| e.to_string())?),
        Type::JSONB => match raw.split_first() {
            Some((1, json)) => {
                Value::Json(serde_json::from_slice(json).map_err(|e| e.to_string())?)
            }
            _ => return Err("unsupported jsonb version".to_owned()),
        },
        Type::TIMESTAMPTZ | Type::TIMESTAMP => {
            let micros = wire::timestamp_from_sql(raw).map_err(err)?;
            match micros {
                i64::MAX => Value::Text("infinity".to_owned()),
                i64::MIN => Value::Text("-infinity".to_owned()),
                m => Value::Timestamp(
                    m.checked_add(PG_EPOCH_MICROS)
                        .and_then(DateTime::from_timestamp_micros)
                        .ok_or_else(|| "timestamp out of range".to_owned())?,
                ),
            }
        }
        Type::DATE => match wire::date_from_sql(raw).map_err(err)? {
            i32::MAX => Value::Text("infinity".to_owned()),
            i32::MIN => Value::Text("-infinity".to_owned()),
            d => Value::Text(
                d.checked_add(PG_EPOCH_DAYS_CE)
                    .and_then(NaiveDate::from_num_days_from_ce_opt)
                    .ok_or_else(|| "date out of range".to_owned())?
                    .format("%Y-%m-%d")
                    .to_string(),
            ),
        },
        Type::TIME => Value::Text(time_text(wire::time_from_sql(raw).map_err(err)?)?),
        Type::TIMETZ => {
            if raw.len() != 12 {
                return Err("invalid timetz".to_owned());
            }
            let micros = i64::from_be_bytes(raw[..8].try_into().map_err(|_| "invalid timetz")?);
            let west = i32::from_be_bytes(raw[8..].try_into().map_err(|_| "invalid timetz")?);
            let east = -west;
            let sign = if east < 0 { '-' } else { '+' };
            let (h, m) = (east.abs() / 3600, (east.abs() % 3600) / 60);
            Value::Text(format!("{}{sign}{h:02}:{m:02}", time_text(micros)?))
        }
        Type::INTERVAL => {
            if raw.len() != 16 {
                return Err("invalid interval".to_owned());
            }
            let micros = i64::from_be_bytes(raw[..8].try_into().map_err(|_| "invalid interval")?);
            let days = i32::from_be_bytes(raw[8..12].try_into().map_err(|_| "invalid interval")?);
            let months = i32::from_be_bytes(raw[12..].try_into().map_err(|_| "invalid interval")?);
            Value::Text(interval_text(micros, days, months))
        }
        Type::UUID => Value::Uuid(dbx_core::uuid::Uuid::from_bytes(
            wire::uuid_from_sql(raw).map_err(err)?,
        )),
        Type::NUMERIC => decode_numeric(raw)?,
        Type::INET | Type::CIDR => {
            let inet = wire::inet_from_sql(raw).map_err(err)?;
            let full = if inet.addr().is_ipv4() { 32 } else { 128 };
            if *ty == Type::CIDR || inet.netmask() != full {
                Value::Text(format!("{}/{}", inet.addr(), inet.netmask()))
            } else {
                Value::Text(inet.addr().to_string())
            }
        }
        Type::MACADDR => {
            let m = wire::macaddr_from_sql(raw).map_err(err)?;
            Value::Text(
                m.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            )
        }
        Type::VOID => Value::Null,
        _ if is_text_like(ty) || *ty == Type::XML => Value::Text(utf8(raw)?.to_owned()),
        _ => match ty.kind() {
            Kind::Domain(base) => decode(base, raw)?,
            Kind::Array(elem) => Value::Json(decode_array(elem, raw)?),
            _ => {
                return Err(format!(
                    "PostgreSQL type {} is not mapped by dbx",
                    ty.name()
                ));
            }
        },
    })
}

/// An array (of any dimension) as nested JSON arrays.
fn decode_array(elem: &Type, raw: &[u8]) -> Result<serde_json::Value, String> {
    let array = wire::array_from_sql(raw).map_err(err)?;
    let dims: Vec<usize> = array
        .dimensions()
        .map(|d| Ok(usize::try_from(d.len).unwrap_or(0)))
        .collect()
        .map_err(err)?;
    let values: Vec<serde_json::Value> = array
        .values()
        .map(|v| match v {
            None => Ok(serde_json::Value::Null),
            Some(bytes) => decode(elem, bytes).map(to_json).map_err(BoxError::from),
        })
        .collect()
        .map_err(err)?;
    if dims.is_empty() {
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    fn nest(
        dims: &[usize],
        values: &mut std::vec::IntoIter<serde_json::Value>,
    ) -> serde_json::Value {
        match dims {
            [] | [_] => {
                serde_json::Value::Array(values.take(dims.first().copied().unwrap_or(0)).collect())
            }
            [n, rest @ ..] => {
                serde_json::Value::Array((0..*n).map(|_| nest(rest, values)).collect())
            }
        }
    }
    Ok(nest(&dims, &mut values.into_iter()))
}

/// A decoded value inside a JSON array.
fn to_json(v: Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(b),
        Value::Int(i) => J::from(i),
        Value::Float(f) => {
            serde_json::Number::from_f64(f).map_or_else(|| J::String(float_text(f)), J::Number)
        }
        Value::Text(s) | Value::Decimal(s) => J::String(s),
        Value::Bytes(b) => {
            let mut s = String::with_capacity(2 + b.len() * 2);
            s.push_str("\\x");
            for byte in b {
                let _ = write!(s, "{byte:02x}");
            }
            J::String(s)
        }
        Value::Json(j) => j,
        Value::Timestamp(t) => J::String(Value::timestamp_text(&t)),
        Value::Uuid(u) => J::String(u.to_string()),
        #[allow(unreachable_patterns)]
        _ => J::Null,
    }
}

/// A column value as read by tokio-postgres: any type, NULL included.
struct Cell(Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        decode(ty, raw).map(Cell).map_err(BoxError::from)
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Column names shared by every row of one result.
pub(crate) fn column_names(columns: &[tokio_postgres::Column]) -> Arc<[String]> {
    columns.iter().map(|c| c.name().to_owned()).collect()
}

/// Convert one row.
pub(crate) fn row(names: &Arc<[String]>, r: &tokio_postgres::Row) -> Result<Row, Error> {
    let mut values = Vec::with_capacity(r.len());
    for i in 0..r.len() {
        match r.try_get::<_, Cell>(i) {
            Ok(Cell(v)) => values.push(v),
            Err(e) => {
                let why = std::error::Error::source(&e)
                    .map_or_else(|| e.to_string(), ToString::to_string);
                let name = names.get(i).map_or("?", String::as_str);
                return Err(Error::decode(format!("column {name:?}: {why}")));
            }
        }
    }
    Ok(Row::new(names.clone(), values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(s: &str) -> String {
        match decode_numeric(&encode_numeric(s).unwrap()).unwrap() {
            Value::Decimal(d) => d,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn numeric_roundtrips_exactly() {
        for (input, back) in [
            ("0", "0"),
            ("7", "7"),
            ("-12.340", "-12.340"),
            ("12345678901234567890.000123", "12345678901234567890.000123"),
            (".5", "0.5"),
            ("0.000123", "0.000123"),
            ("10000", "10000"),
            ("100000000.0001", "100000000.0001"),
            ("-0.00", "0.00"),
            ("+3", "3"),
            ("000123.4500", "123.4500"),
            ("99999999", "99999999"),
            ("0.00000001", "0.00000001"),
        ] {
            assert_eq!(roundtrip(input), back, "{input}");
        }
        for bad in ["", "-", "1e5", "1.2.3", "abc", "1,5", ".", " 1"] {
            assert!(encode_numeric(bad).is_none(), "{bad:?}");
        }
        assert!(matches!(
            decode_numeric(&encode_numeric("NaN").unwrap()).unwrap(),
            Value::Float(f) if f.is_nan()
        ));
    }

    #[test]
    fn numeric_layout_matches_postgres() {
        // 12345.678 = digits [1, 2345, 6780], weight 1, dscale 3.
        assert_eq!(
            encode_numeric("12345.678").unwrap(),
            vec![0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]
        );
    }

    #[test]
    fn int_coercion_checks_ranges() {
        let v = Value::Int(70_000);
        assert!(matches!(
            coerce(1, &v, &Type::INT4).unwrap(),
            Param::I32(70_000)
        ));
        let e = coerce(1, &v, &Type::INT2).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfRange);
        assert!(e.message().contains("$1"), "{e}");
        let e = coerce(2, &Value::Int(i64::MAX), &Type::INT4).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OutOfRange);
        let e = coerce(3, &Value::Text("x".into()), &Type::INT8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.message().contains("$3") && e.message().contains("int8"),
            "{e}"
        );
        let e = coerce(1, &Value::Text("a\0b".into()), &Type::TEXT).unwrap_err();
        assert!(e.message().contains("NUL"), "{e}");
        assert!(matches!(
            coerce(1, &Value::Decimal("42.000".into()), &Type::INT4).unwrap(),
            Param::I32(42)
        ));
        assert_eq!(
            coerce(1, &Value::Decimal("4.5".into()), &Type::INT4)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn array_literals_quote() {
        let j = serde_json::json!([1, "a \"b\"", null, ["x\\y"], {"k": 1}]);
        assert_eq!(
            array_literal(1, &j).unwrap(),
            r#"{1,"a \"b\"",NULL,{"x\\y"},"{\"k\":1}"}"#
        );
        assert!(array_literal(1, &serde_json::json!({"a": 1})).is_err());
    }

    #[test]
    fn intervals_read_as_iso8601() {
        assert_eq!(interval_text(0, 0, 0), "PT0S");
        assert_eq!(
            interval_text(4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000, 3, 14),
            "P1Y2M3DT4H5M6.5S"
        );
    }
}
