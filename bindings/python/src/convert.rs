//! Values between Python and dbx (the type table in the README).

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
    PyType,
};
use serde_json::{Map, Number, Value as Json};

use dbx::Value;

use crate::errors::{invalid_input, new_err};

static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn is<'py>(
    cell: &PyOnceLock<Py<PyType>>,
    ob: &Bound<'py, PyAny>,
    module: &str,
    name: &str,
) -> PyResult<bool> {
    ob.is_instance(cell.import(ob.py(), module, name)?)
}

/// How deep JSON may nest (a cycle in a dict would otherwise recurse forever).
const MAX_DEPTH: usize = 128;

/// A query parameter from Python.
pub(crate) fn to_value(ob: &Bound<'_, PyAny>) -> PyResult<Value> {
    if ob.is_none() {
        return Ok(Value::Null);
    }
    if ob.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(ob.extract()?));
    }
    if ob.is_instance_of::<PyInt>() {
        return int(ob).map(Value::Int);
    }
    if ob.is_instance_of::<PyFloat>() {
        return Ok(Value::Float(ob.extract()?));
    }
    if let Ok(s) = ob.cast::<PyString>() {
        return Ok(Value::Text(s.extract::<String>()?));
    }
    if let Some(b) = bytes(ob)? {
        return Ok(Value::Bytes(b));
    }
    // datetime before date: a datetime is a date too.
    if is(&DATETIME, ob, "datetime", "datetime")? {
        return datetime(ob).map(Value::Timestamp);
    }
    if is(&DATE, ob, "datetime", "date")? {
        let d: NaiveDate = ob.extract()?;
        return Ok(Value::Timestamp(d.and_time(NaiveTime::MIN).and_utc()));
    }
    if is(&DECIMAL, ob, "decimal", "Decimal")? {
        let finite: bool = ob.call_method0("is_finite")?.extract()?;
        if !finite {
            return Err(invalid_input(format!(
                "Decimal {} is not finite: dbx decimals are numbers",
                ob.str()?
            )));
        }
        return Ok(Value::Decimal(ob.str()?.extract::<String>()?));
    }
    if is(&UUID, ob, "uuid", "UUID")? {
        return Ok(Value::Uuid(ob.extract()?));
    }
    if ob.is_instance_of::<PyDict>()
        || ob.is_instance_of::<PyList>()
        || ob.is_instance_of::<PyTuple>()
    {
        return to_json(ob, 0).map(Value::Json);
    }
    Err(invalid_input(format!(
        "cannot pass a value of type {} to dbx (use None, bool, int, float, str, bytes, \
         datetime, date, Decimal, UUID, dict or list)",
        ob.get_type().name()?
    )))
}

/// A list of parameters (any sequence; `None` is none).
pub(crate) fn to_params(params: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Value>> {
    let Some(params) = params else {
        return Ok(Vec::new());
    };
    if params.is_none() {
        return Ok(Vec::new());
    }
    if params.is_instance_of::<PyString>() || params.is_instance_of::<PyDict>() {
        return Err(invalid_input("params must be a list or tuple of values"));
    }
    let mut out = Vec::new();
    for item in params
        .try_iter()
        .map_err(|_| invalid_input("params must be a list or tuple of values"))?
    {
        out.push(to_value(&item?)?);
    }
    Ok(out)
}

fn int(ob: &Bound<'_, PyAny>) -> PyResult<i64> {
    ob.extract::<i64>().map_err(|_| {
        let shown = ob.str().map(|s| s.to_string()).unwrap_or_default();
        new_err(
            dbx::ErrorKind::OutOfRange,
            format!("integer {shown} does not fit in 64 bits (pass a Decimal for larger numbers)"),
        )
    })
}

fn bytes(ob: &Bound<'_, PyAny>) -> PyResult<Option<Vec<u8>>> {
    if let Ok(b) = ob.cast::<PyBytes>() {
        return Ok(Some(b.as_bytes().to_vec()));
    }
    if let Ok(b) = ob.cast::<PyByteArray>() {
        return Ok(Some(b.to_vec()));
    }
    if ob.is_instance_of::<PyMemoryView>() {
        let b = ob.call_method0("tobytes")?;
        return Ok(Some(b.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    Ok(None)
}

/// An aware datetime converted to UTC; a naive one is taken as UTC.
fn datetime(ob: &Bound<'_, PyAny>) -> PyResult<DateTime<Utc>> {
    if ob.getattr("tzinfo")?.is_none() {
        let naive: NaiveDateTime = ob.extract()?;
        return Ok(naive.and_utc());
    }
    let aware: DateTime<chrono::FixedOffset> = ob.extract()?;
    Ok(aware.with_timezone(&Utc))
}

/// A JSON value from Python (dict keys must be strings).
pub(crate) fn to_json(ob: &Bound<'_, PyAny>, depth: usize) -> PyResult<Json> {
    if depth > MAX_DEPTH {
        return Err(invalid_input(format!(
            "JSON nests deeper than {MAX_DEPTH} levels"
        )));
    }
    if ob.is_none() {
        return Ok(Json::Null);
    }
    if ob.is_instance_of::<PyBool>() {
        return Ok(Json::Bool(ob.extract()?));
    }
    if ob.is_instance_of::<PyInt>() {
        if let Ok(u) = ob.extract::<u64>() {
            return Ok(Json::Number(u.into()));
        }
        return int(ob).map(|i| Json::Number(i.into()));
    }
    if ob.is_instance_of::<PyFloat>() {
        let f: f64 = ob.extract()?;
        return Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| invalid_input(format!("{f} cannot be stored in JSON")));
    }
    if let Ok(s) = ob.cast::<PyString>() {
        return Ok(Json::String(s.extract::<String>()?));
    }
    if let Ok(d) = ob.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let key = k.cast::<PyString>().map_err(|_| {
                invalid_input(format!(
                    "JSON object keys must be str, not {}",
                    k.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            map.insert(key.extract::<String>()?, to_json(&v, depth + 1)?);
        }
        return Ok(Json::Object(map));
    }
    if ob.is_instance_of::<PyList>() || ob.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for item in ob.try_iter()? {
            items.push(to_json(&item?, depth + 1)?);
        }
        return Ok(Json::Array(items));
    }
    if is(&UUID, ob, "uuid", "UUID")? || is(&DECIMAL, ob, "decimal", "Decimal")? {
        return Ok(Json::String(ob.str()?.extract::<String>()?));
    }
    if is(&DATETIME, ob, "datetime", "datetime")? {
        return Ok(Json::String(dbx::Value::timestamp_text(&datetime(ob)?)));
    }
    Err(invalid_input(format!(
        "cannot store a value of type {} in JSON",
        ob.get_type().name()?
    )))
}

/// A dbx value as a Python object.
pub(crate) fn from_value<'py>(py: Python<'py>, v: Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => f.into_pyobject(py)?.into_any(),
        Value::Text(s) => PyString::new(py, &s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, &b).into_any(),
        Value::Json(j) => from_json(py, &j)?,
        Value::Timestamp(t) => t.into_pyobject(py)?.into_any(),
        Value::Uuid(u) => u.into_pyobject(py)?.into_any(),
        Value::Decimal(d) => DECIMAL.import(py, "decimal", "Decimal")?.call1((d,))?,
        other => PyString::new(py, &format!("{other:?}")).into_any(),
    })
}

/// A JSON value as Python: dict, list, str, int, float, bool or None.
pub(crate) fn from_json<'py>(py: Python<'py>, j: &Json) -> PyResult<Bound<'py, PyAny>> {
    Ok(match j {
        Json::Null => py.None().into_bound(py),
        Json::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Json::String(s) => PyString::new(py, s).into_any(),
        Json::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(from_json(py, item)?)?;
            }
            list.into_any()
        }
        Json::Object(map) => map_to_dict(py, map)?.into_any(),
    })
}

/// A JSON object as a dict.
pub(crate) fn map_to_dict<'py>(
    py: Python<'py>,
    map: &Map<String, Json>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in map {
        dict.set_item(k, from_json(py, v)?)?;
    }
    Ok(dict)
}

/// Rows as a list of dicts, column name to value.
pub(crate) fn rows<'py>(py: Python<'py>, rows: Vec<dbx::Row>) -> PyResult<Bound<'py, PyAny>> {
    let list = PyList::empty(py);
    for row in rows {
        let names: Vec<Bound<'py, PyString>> =
            row.columns().iter().map(|c| PyString::new(py, c)).collect();
        let dict = PyDict::new(py);
        for (name, value) in names.into_iter().zip(row.into_values()) {
            dict.set_item(name, from_value(py, value)?)?;
        }
        list.append(dict)?;
    }
    Ok(list.into_any())
}
