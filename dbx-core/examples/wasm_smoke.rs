//! The parts of dbx-core that run on `wasm32-unknown-unknown`, exercised:
//! URL and option parsing, policy validation, values, rows, the `params!`
//! macro, vector filters and errors. `scripts/wasm.sh` builds this for
//! wasm32 and runs it under Node (the wasm's exported `main` must return 0);
//! natively it is an ordinary example (`cargo run -p dbx-core --example wasm_smoke`).

use std::sync::Arc;
use std::time::Duration;

use dbx_core::serde_json::json;
use dbx_core::{Condition, ConnectOptions, ErrorKind, Filter, PointId, Range, Row, Value, params};

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("wasm smoke: {what}"))
    }
}

fn main() -> Result<(), String> {
    // Options and policy, parsed from a URL; secrets redacted in Display.
    let o = ConnectOptions::from_url(
        "postgres://app:s3cret@db.example:5433/shop?timeout=2s&connect_timeout=250ms&breaker=on",
    )
    .map_err(|e| e.to_string())?;
    check(o.scheme() == "postgres", "scheme")?;
    check(o.host() == "db.example", "host")?;
    check(o.timeout() == Duration::from_secs(2), "timeout")?;
    check(
        o.connect_timeout() == Duration::from_millis(250),
        "connect_timeout",
    )?;
    check(o.policy().validate().is_ok(), "policy validates")?;
    check(!o.to_string().contains("s3cret"), "password redacted")?;
    let bad = ConnectOptions::from_url("sqlite::memory:?timeout=0s");
    check(
        bad.is_err_and(|e| e.kind() == ErrorKind::InvalidConfig),
        "a zero timeout is invalid_config",
    )?;

    // Values, rows and decoding.
    let p = params![1, "two", 3.5, None::<i64>];
    check(p.len() == 4 && p[3].is_null(), "params!")?;
    let row = Row::new(
        Arc::from(vec!["id".to_owned(), "name".to_owned()]),
        vec![Value::Int(7), Value::Text("Ada".into())],
    );
    check(row.get::<i64>("id").ok() == Some(7), "row.get by name")?;
    check(
        row.get::<String>(1).ok().as_deref() == Some("Ada"),
        "row.get by index",
    )?;
    check(
        row.get::<i64>("name")
            .is_err_and(|e| e.kind() == ErrorKind::Decode),
        "decode error",
    )?;
    check(Value::decimal("-12.30").is_ok(), "decimal")?;
    check(Value::decimal("1e5").is_err(), "bad decimal")?;

    // Vector filters evaluate in process.
    let filter = Filter::new()
        .must(Condition::eq("color", "red"))
        .must(Condition::range("price", Range::new().lt(10.0)));
    let payload = json!({"color": "red", "price": 4.5});
    let payload = payload.as_object().ok_or("payload is an object")?;
    check(filter.matches(PointId::Num(1), payload), "filter matches")?;
    let round = Filter::from_json(&filter.to_json()).map_err(|e| e.to_string())?;
    check(round == filter, "filter JSON round trip")?;
    Ok(())
}
