//! What each fuzz target does with its input, shared by the cargo-fuzz
//! targets (nightly) and the corpus replay test on stable
//! (`tests/tests/fuzz_corpus.rs`, which includes this file). Each body must
//! never panic on any input; where a property holds for every input, it is
//! asserted too.

use dbx::serde_json::{self, Value as Json};
use dbx::{ConnectOptions, Row, Value};
use std::sync::Arc;

/// URL parsing: any text is a URL or an `InvalidConfig` error; a parsed
/// URL never shows its password when printed.
pub fn url_options(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ConnectOptions::from_url(text) {
        Ok(o) => {
            // The password must not show, unless the same options with
            // another password show that text anyway (a field name, the
            // host...): compare with such a baseline.
            if let Some(p) = o.password().map(|p| p.expose().to_owned())
                && !p.is_empty()
            {
                let mut other = o.clone();
                other.set_password("\u{1}");
                for (shown, baseline) in [
                    (o.to_string(), other.to_string()),
                    (format!("{o:?}"), format!("{other:?}")),
                ] {
                    assert!(
                        baseline.contains(&p) || !shown.contains(&p),
                        "password shown in {shown:?}"
                    );
                }
            }
            let _ = o.policy().validate();
            let _ = o.check_params("fuzz", &["journal_mode", "kv_table"]);
        }
        Err(e) => assert_eq!(e.kind(), dbx::ErrorKind::InvalidConfig, "{e}"),
    }
}

/// `dbx.toml` parsing, with the environment overrides it reads.
pub fn dbx_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line, if it looks like one, is an environment variable.
    let (env, toml) = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("DBX_DATABASES__") => {
            let (k, v) = first.split_once('=').unwrap_or((first, ""));
            (vec![(k.to_owned(), v.to_owned())], rest)
        }
        _ => (Vec::new(), text),
    };
    if let Err(e) = dbx::config::parse(toml, "fuzz.toml", env) {
        assert_eq!(e.kind(), dbx::ErrorKind::InvalidConfig, "{e}");
    }
}

/// Qdrant-form JSON filters: parsed or refused; a parsed filter survives a
/// round trip through its JSON form and can be evaluated.
pub fn vector_filter_json(data: &[u8]) {
    let Ok(json) = serde_json::from_slice::<Json>(data) else {
        return;
    };
    match dbx::Filter::from_json(&json) {
        Ok(filter) => {
            let again = dbx::Filter::from_json(&filter.to_json())
                .unwrap_or_else(|e| panic!("the JSON form of a filter does not parse: {e}"));
            assert_eq!(again, filter);
            let payload = match &json {
                Json::Object(m) => m.clone(),
                _ => serde_json::Map::new(),
            };
            let _ = filter.matches(dbx::PointId::from(7u64), &payload);
        }
        Err(e) => assert_eq!(e.kind(), dbx::ErrorKind::InvalidInput, "{e}"),
    }
}

/// The document contract's checks on any JSON value.
pub fn document_checks(data: &[u8]) {
    let Ok(json) = serde_json::from_slice::<Json>(data) else {
        return;
    };
    for r in [
        dbx::document::check_filter(&json),
        dbx::document::check_update(&json),
        dbx::document::check_document(&json),
    ] {
        if let Err(e) = r {
            assert_eq!(e.kind(), dbx::ErrorKind::InvalidInput, "{e}");
        }
    }
}

/// Row decoding: a row of arbitrary values decoded into several shapes.
pub fn row_decode(data: &[u8]) {
    let mut values = Vec::new();
    let mut rest = data;
    while let Some((&tag, tail)) = rest.split_first() {
        let (take, tail) = tail.split_at(tail.len().min(usize::from(tag >> 4)));
        rest = tail;
        let num = take
            .iter()
            .fold(0i64, |n, b| n.wrapping_mul(256).wrapping_add(i64::from(*b)));
        values.push(match tag % 10 {
            0 => Value::Null,
            1 => Value::Bool(num & 1 == 1),
            2 => Value::Int(num),
            3 => Value::Float(f64::from_bits(num as u64)),
            4 => Value::Text(String::from_utf8_lossy(take).into_owned()),
            5 => Value::Bytes(take.to_vec()),
            6 => Value::Json(serde_json::from_slice(take).unwrap_or(Json::Null)),
            7 => Value::Decimal(String::from_utf8_lossy(take).into_owned()),
            8 => Value::Uuid(dbx::uuid::Uuid::from_u64_pair(num as u64, 0)),
            _ => dbx::chrono::DateTime::from_timestamp(num % 100_000_000_000, 0)
                .map_or(Value::Null, Value::Timestamp),
        });
        if values.len() >= 8 {
            break;
        }
    }
    let names: Vec<String> = (0..values.len()).map(|i| format!("c{i}")).collect();
    let row = Row::new(Arc::from(names), values);
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Shape {
        c0: Option<i64>,
        c1: Option<String>,
        c2: Option<f64>,
    }
    let _ = row.decode::<Shape>();
    let _ = row.decode::<(i64, String)>();
    let _ = row.decode::<Vec<Json>>();
    let _ = row.decode::<Json>();
    let _ = row.decode::<std::collections::HashMap<String, Json>>();
    for i in 0..row.len() {
        let _ = row.get::<i64>(i);
        let _ = row.get::<u8>(i);
        let _ = row.get::<f32>(i);
        let _ = row.get::<bool>(i);
        let _ = row.get::<String>(i);
        let _ = row.get::<Vec<u8>>(i);
        let _ = row.get::<dbx::chrono::DateTime<dbx::chrono::Utc>>(i);
        let _ = row.get::<dbx::uuid::Uuid>(i);
        let _ = row.get::<Option<Json>>(i);
    }
}

/// The SQL retry rule on any text: no panic, and the same answer twice.
pub fn sql_reads(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = dbx::sql::is_plain_read(text);
    assert_eq!(first, dbx::sql::is_plain_read(text));
}
