//! Values between JavaScript and dbx (the type table in the README).
//!
//! Reading: every JavaScript value is read from its container (the
//! parameter array, an object, an array) through napi's typed getters, so
//! no raw handle is ever cast. Writing: dbx values become JavaScript values
//! on the JavaScript thread, in a promise's resolve callback.

use chrono::{DateTime, Utc};
use napi::JsDate;
use napi::bindgen_prelude::*;
use serde_json::{Map, Number, Value as Json};

use dbx::{ErrorKind, Value};

use crate::errors::{Failure, Res, invalid_input};

/// How deep JSON may nest (a cycle would otherwise recurse forever).
const MAX_DEPTH: usize = 128;

/// The largest integer a JavaScript number holds exactly (2^53 - 1).
const MAX_SAFE: i64 = 9_007_199_254_740_991;

/// Where a value sits: an array element or an object property.
#[derive(Clone, Copy)]
pub(crate) enum Slot<'a, 'env> {
    /// Element `i` of an array.
    Elem(&'a Array<'env>, u32),
    /// Property `key` of an object.
    Prop(&'a Object<'env>, &'a str),
}

impl Slot<'_, '_> {
    /// The value there as `T` (`None` when undefined).
    pub(crate) fn get<T: FromNapiValue>(&self) -> Res<Option<T>> {
        match self {
            Slot::Elem(a, i) => a.get::<T>(*i),
            Slot::Prop(o, k) => o.get::<T>(k),
        }
        .map_err(|e| invalid_input(format!("{}: {}", self.describe(), e.reason)))
    }

    fn must<T: FromNapiValue>(&self) -> Res<T> {
        self.get::<T>()?
            .ok_or_else(|| invalid_input(format!("{} is missing", self.describe())))
    }

    fn describe(&self) -> String {
        match self {
            Slot::Elem(_, i) => format!("element {i}"),
            Slot::Prop(_, k) => format!("property {k:?}"),
        }
    }
}

/// The JavaScript type of the value at a slot, as the table reads it.
enum Js {
    Undefined,
    Null,
    Bool,
    Number,
    BigInt,
    String,
    Bytes,
    Date,
    Array,
    Object,
    Other(&'static str),
}

fn js_type(slot: Slot<'_, '_>) -> Res<Js> {
    let Some(u) = slot.get::<Unknown>()? else {
        return Ok(Js::Undefined);
    };
    let napi = |e: Error| invalid_input(format!("{}: {}", slot.describe(), e.reason));
    Ok(match u.get_type().map_err(napi)? {
        ValueType::Undefined => Js::Undefined,
        ValueType::Null => Js::Null,
        ValueType::Boolean => Js::Bool,
        ValueType::Number => Js::Number,
        ValueType::BigInt => Js::BigInt,
        ValueType::String => Js::String,
        ValueType::Object => {
            if u.is_buffer().map_err(napi)? || u.is_typedarray().map_err(napi)? {
                Js::Bytes
            } else if u.is_date().map_err(napi)? {
                Js::Date
            } else if u.is_array().map_err(napi)? {
                Js::Array
            } else {
                Js::Object
            }
        }
        ValueType::Symbol => Js::Other("symbol"),
        ValueType::Function => Js::Other("function"),
        ValueType::External => Js::Other("external"),
        _ => Js::Other("unknown"),
    })
}

fn int_of_number(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && f.abs() <= MAX_SAFE as f64).then_some(f as i64)
}

/// A BigInt as an i128 (any BigInt of up to two 64-bit words).
fn bigint_wide(slot: Slot<'_, '_>) -> Res<i128> {
    let b: BigInt = slot.must()?;
    let (i, lossless) = b.get_i128();
    if lossless { Ok(i) } else { Err(too_big(slot)) }
}

fn too_big(slot: Slot<'_, '_>) -> Failure {
    Failure::new(
        ErrorKind::OutOfRange,
        format!(
            "{}: BigInt does not fit in 64 bits (pass a decimal string for larger numbers)",
            slot.describe()
        ),
    )
}

fn bigint(slot: Slot<'_, '_>) -> Res<i64> {
    i64::try_from(bigint_wide(slot)?).map_err(|_| too_big(slot))
}

fn bytes(slot: Slot<'_, '_>) -> Res<Vec<u8>> {
    let b: Uint8Array = slot.get()?.ok_or_else(|| {
        invalid_input(format!(
            "{}: typed array is not a Uint8Array",
            slot.describe()
        ))
    })?;
    Ok(b.to_vec())
}

fn date(slot: Slot<'_, '_>) -> Res<DateTime<Utc>> {
    let invalid = || invalid_input(format!("{}: invalid Date", slot.describe()));
    let d: JsDate = slot.must()?;
    let ms = d.value_of().map_err(|_| invalid())?;
    // An Invalid Date holds NaN; a valid one a whole number of milliseconds.
    if !ms.is_finite() {
        return Err(invalid());
    }
    DateTime::from_timestamp_millis(ms as i64).ok_or_else(invalid)
}

/// A timestamp as a JavaScript Date (millisecond precision).
fn date_js(env: &Env, t: DateTime<Utc>) -> Result<Unknown<'_>> {
    Ok(env.create_date(t.timestamp_millis() as f64)?.to_unknown())
}

/// A SQL parameter or other scalar from JavaScript.
pub(crate) fn value(slot: Slot<'_, '_>) -> Res<Value> {
    Ok(match js_type(slot)? {
        Js::Undefined | Js::Null => Value::Null,
        Js::Bool => Value::Bool(slot.must()?),
        Js::Number => {
            let f: f64 = slot.must()?;
            match int_of_number(f) {
                Some(i) => Value::Int(i),
                None => Value::Float(f),
            }
        }
        Js::BigInt => Value::Int(bigint(slot)?),
        Js::String => Value::Text(slot.must()?),
        Js::Bytes => Value::Bytes(bytes(slot)?),
        Js::Date => Value::Timestamp(date(slot)?),
        Js::Array | Js::Object => Value::Json(json(slot, 0)?),
        Js::Other(t) => {
            return Err(invalid_input(format!(
                "{}: cannot pass a {t} to dbx (use null, boolean, number, bigint, string, \
                 Buffer, Date, an array or a plain object)",
                slot.describe()
            )));
        }
    })
}

/// Parameters: an array of values (`null`/`undefined` for none).
pub(crate) fn params(params: Option<&Array<'_>>) -> Res<Vec<Value>> {
    let Some(arr) = params else {
        return Ok(Vec::new());
    };
    (0..arr.len())
        .map(|i| value(Slot::Elem(arr, i)))
        .collect::<Res<Vec<_>>>()
        .map_err(|e| e.prefixed("parameter"))
}

/// A JSON value from JavaScript (`undefined` properties are left out, as
/// `JSON.stringify` does; Dates become ISO text).
pub(crate) fn json(slot: Slot<'_, '_>, depth: usize) -> Res<Json> {
    if depth > MAX_DEPTH {
        return Err(invalid_input(format!(
            "JSON nests deeper than {MAX_DEPTH} levels (a cycle?)"
        )));
    }
    Ok(match js_type(slot)? {
        Js::Undefined | Js::Null => Json::Null,
        Js::Bool => Json::Bool(slot.must()?),
        Js::Number => {
            let f: f64 = slot.must()?;
            match int_of_number(f) {
                Some(i) => Json::Number(i.into()),
                None => Number::from_f64(f).map(Json::Number).ok_or_else(|| {
                    invalid_input(format!("{}: {f} cannot be stored in JSON", slot.describe()))
                })?,
            }
        }
        Js::BigInt => {
            let i = bigint_wide(slot)?;
            if let Ok(i) = i64::try_from(i) {
                Json::Number(i.into())
            } else if let Ok(u) = u64::try_from(i) {
                Json::Number(u.into())
            } else {
                return Err(too_big(slot));
            }
        }
        Js::String => Json::String(slot.must()?),
        Js::Date => Json::String(Value::timestamp_text(&date(slot)?)),
        Js::Array => {
            let arr: Array = slot.must()?;
            let mut items = Vec::with_capacity(arr.len() as usize);
            for i in 0..arr.len() {
                items.push(json(Slot::Elem(&arr, i), depth + 1)?);
            }
            Json::Array(items)
        }
        Js::Object => json_of_object(&slot.must::<Object>()?, depth)?,
        Js::Bytes => {
            return Err(invalid_input(format!(
                "{}: bytes cannot be stored in JSON (encode them first, e.g. as base64)",
                slot.describe()
            )));
        }
        Js::Other(t) => {
            return Err(invalid_input(format!(
                "{}: a {t} cannot be stored in JSON",
                slot.describe()
            )));
        }
    })
}

/// A JSON argument (a document, filter, update, payload) taken whole.
pub(crate) fn json_arg(what: &str, obj: &Object<'_>) -> Res<Json> {
    json_of_object(obj, 0).map_err(|e| e.prefixed(what))
}

fn json_of_object(obj: &Object<'_>, depth: usize) -> Res<Json> {
    let keys = Object::keys(obj).map_err(|e| invalid_input(e.reason))?;
    let mut map = Map::new();
    for k in &keys {
        let child = Slot::Prop(obj, k);
        if matches!(js_type(child)?, Js::Undefined) {
            continue;
        }
        map.insert(k.clone(), json(child, depth + 1)?);
    }
    Ok(Json::Object(map))
}

/// An integer for JavaScript: a number when exact, else a BigInt.
pub(crate) fn int_js(env: &Env, i: i64) -> Result<Unknown<'_>> {
    if (-MAX_SAFE..=MAX_SAFE).contains(&i) {
        (i as f64).into_unknown(env)
    } else {
        BigInt::from(i).into_unknown(env)
    }
}

/// A dbx value as a JavaScript value.
pub(crate) fn to_js(env: &Env, v: Value) -> Result<Unknown<'_>> {
    match v {
        Value::Null => Null.into_unknown(env),
        Value::Bool(b) => b.into_unknown(env),
        Value::Int(i) => int_js(env, i),
        Value::Float(f) => f.into_unknown(env),
        Value::Text(s) => s.into_unknown(env),
        Value::Bytes(b) => Buffer::from(b).into_unknown(env),
        Value::Json(j) => json_js(env, &j),
        Value::Timestamp(t) => date_js(env, t),
        Value::Uuid(u) => u.to_string().into_unknown(env),
        Value::Decimal(d) => d.into_unknown(env),
        other => format!("{other:?}").into_unknown(env),
    }
}

/// A JSON value as JavaScript: objects, arrays, strings, numbers (BigInt
/// for integers beyond 2^53), booleans and null.
pub(crate) fn json_js<'env>(env: &'env Env, j: &Json) -> Result<Unknown<'env>> {
    match j {
        Json::Null => Null.into_unknown(env),
        Json::Bool(b) => b.into_unknown(env),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                int_js(env, i)
            } else if let Some(u) = n.as_u64() {
                BigInt::from(u).into_unknown(env)
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_unknown(env)
            }
        }
        Json::String(s) => s.as_str().into_unknown(env),
        Json::Array(items) => {
            let mut arr = env.create_array(items.len() as u32)?;
            for (i, item) in items.iter().enumerate() {
                arr.set(i as u32, json_js(env, item)?)?;
            }
            arr.into_unknown(env)
        }
        Json::Object(map) => map_js(env, map)?.into_unknown(env),
    }
}

/// A JSON object as a JavaScript object.
pub(crate) fn map_js<'env>(env: &'env Env, map: &Map<String, Json>) -> Result<Object<'env>> {
    let mut obj = Object::new(env)?;
    for (k, v) in map {
        obj.set(k, json_js(env, v)?)?;
    }
    Ok(obj)
}

/// Rows as an array of plain objects, column name to value.
pub(crate) fn rows(env: &Env, rows: Vec<dbx::Row>) -> Result<Array<'_>> {
    let mut arr = env.create_array(rows.len() as u32)?;
    for (i, row) in rows.into_iter().enumerate() {
        let names: Vec<String> = row.columns().iter().map(|c| c.to_string()).collect();
        let mut obj = Object::new(env)?;
        for (name, value) in names.iter().zip(row.into_values()) {
            obj.set(name, to_js(env, value)?)?;
        }
        arr.set(i as u32, obj)?;
    }
    Ok(arr)
}
