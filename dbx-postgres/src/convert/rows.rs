//! Result columns decoded by their type into dbx values and rows.

use super::*;

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

pub(crate) fn utf8(raw: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(raw).map_err(|e| format!("text is not valid UTF-8 ({e})"))
}

pub(crate) fn err(e: BoxError) -> String {
    e.to_string()
}

pub(crate) fn time_text(micros: i64) -> Result<String, String> {
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
pub(crate) fn interval_text(micros: i64, days: i32, months: i32) -> String {
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
pub(crate) fn decode_array(elem: &Type, raw: &[u8]) -> Result<serde_json::Value, String> {
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
pub(crate) fn to_json(v: Value) -> serde_json::Value {
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
pub(crate) struct Cell(Value);

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
