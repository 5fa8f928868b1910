//! Unit tests of `row`.
use super::*;
use crate::ErrorKind;
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use uuid::Uuid;

fn row(cols: &[&str], values: Vec<Value>) -> Row {
    Row::new(cols.iter().map(|c| c.to_string()).collect(), values)
}

#[derive(Debug, Deserialize, PartialEq)]
struct User {
    id: i64,
    name: String,
    nick: Option<String>,
    active: bool,
    score: f64,
}

#[test]
fn decodes_struct_by_column_name() {
    let r = row(
        &["name", "id", "nick", "active", "score"],
        vec![
            Value::Text("ada".into()),
            Value::Int(1),
            Value::Null,
            Value::Int(1),
            Value::Int(3),
        ],
    );
    assert_eq!(
        r.decode::<User>().unwrap(),
        User {
            id: 1,
            name: "ada".into(),
            nick: None,
            active: true,
            score: 3.0
        }
    );
}

#[test]
fn decodes_tuples_and_scalars() {
    let r = row(&["a", "b"], vec![Value::Int(1), Value::Text("x".into())]);
    assert_eq!(r.decode::<(i64, String)>().unwrap(), (1, "x".to_string()));
    let one = row(&["count"], vec![Value::Int(42)]);
    assert_eq!(one.decode::<i64>().unwrap(), 42);
    assert_eq!(one.decode::<Option<i64>>().unwrap(), Some(42));
    let e = r.decode::<i64>().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
}

#[test]
fn get_by_name_and_index() {
    let r = row(&["a", "b"], vec![Value::Int(1), Value::Null]);
    assert_eq!(r.get::<i64>("a").unwrap(), 1);
    assert_eq!(r.get::<i32>(0).unwrap(), 1);
    assert_eq!(r.get::<Option<String>>("b").unwrap(), None);
    let e = r.get::<i64>("nope").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains("nope"), "{e}");
    assert_eq!(r.get::<i64>(5).unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[test]
fn wrong_type_is_a_decode_error_naming_the_column() {
    let r = row(&["age"], vec![Value::Text("old".into())]);
    let e = r.get::<i64>("age").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.message().contains("age"), "{e}");
    let big = row(&["n"], vec![Value::Int(i64::from(i32::MAX) + 1)]);
    assert_eq!(big.get::<i32>("n").unwrap_err().kind(), ErrorKind::Decode);
    let null = row(&["n"], vec![Value::Null]);
    assert_eq!(null.get::<i64>("n").unwrap_err().kind(), ErrorKind::Decode);
    assert_eq!(null.get::<bool>(0).unwrap_err().kind(), ErrorKind::Decode);
}

#[test]
fn decodes_rich_types() {
    let ts = Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap();
    let id = Uuid::from_u128(0x1234);
    let r = row(
        &[
            "ts", "ts_text", "id", "id_text", "blob", "doc", "doc_text", "dec",
        ],
        vec![
            Value::Timestamp(ts),
            Value::Text("2024-05-06T07:08:09Z".into()),
            Value::Uuid(id),
            Value::Text(id.to_string()),
            Value::Bytes(vec![1, 2, 3]),
            Value::Json(serde_json::json!({"a": [1, 2]})),
            Value::Text(r#"{"a":[3]}"#.into()),
            Value::Decimal("12.50".into()),
        ],
    );
    assert_eq!(r.get::<DateTime<Utc>>("ts").unwrap(), ts);
    assert_eq!(r.get::<DateTime<Utc>>("ts_text").unwrap(), ts);
    assert_eq!(r.get::<Uuid>("id").unwrap(), id);
    assert_eq!(r.get::<Uuid>("id_text").unwrap(), id);
    assert_eq!(r.get::<Vec<u8>>("blob").unwrap(), vec![1, 2, 3]);
    #[derive(Deserialize)]
    struct Doc {
        a: Vec<i32>,
    }
    assert_eq!(r.get::<Doc>("doc").unwrap().a, vec![1, 2]);
    assert_eq!(r.get::<Doc>("doc_text").unwrap().a, vec![3]);
    assert_eq!(r.get::<String>("dec").unwrap(), "12.50");
    assert_eq!(r.get::<f64>("dec").unwrap(), 12.5);
    assert_eq!(r.get::<i64>("dec").unwrap_err().kind(), ErrorKind::Decode);
}

#[test]
fn whole_decimals_decode_into_integers() {
    let r = row(
        &["sum", "big", "neg"],
        vec![
            Value::Decimal("42".into()),
            Value::Decimal("99999999999999999999".into()),
            Value::Decimal("-7.000".into()),
        ],
    );
    assert_eq!(r.get::<i64>("sum").unwrap(), 42);
    assert_eq!(r.get::<u8>("sum").unwrap(), 42);
    assert_eq!(r.get::<i32>("neg").unwrap(), -7);
    assert_eq!(r.get::<i64>("big").unwrap_err().kind(), ErrorKind::Decode);
    assert_eq!(r.get::<u32>("neg").unwrap_err().kind(), ErrorKind::Decode);
}

#[test]
fn one_column_rows_decode_into_sequences() {
    let bytes = row(&["b"], vec![Value::Bytes(vec![1, 2, 3])]);
    assert_eq!(bytes.decode::<Vec<u8>>().unwrap(), vec![1, 2, 3]);
    let arr = row(&["a"], vec![Value::Json(serde_json::json!([1, 2]))]);
    assert_eq!(arr.decode::<Vec<i64>>().unwrap(), vec![1, 2]);
    assert_eq!(
        arr.decode::<(serde_json::Value,)>().unwrap().0,
        serde_json::json!([1, 2])
    );
    let two = row(&["a", "b"], vec![Value::Int(1), Value::Int(2)]);
    assert_eq!(two.decode::<Vec<i64>>().unwrap(), vec![1, 2]);
}

#[test]
fn enums_decode_from_text() {
    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Role {
        Admin,
        User,
    }
    let r = row(&["r"], vec![Value::Text("admin".into())]);
    assert_eq!(r.get::<Role>("r").unwrap(), Role::Admin);
    let bad = row(&["r"], vec![Value::Text("root".into())]);
    assert_eq!(bad.get::<Role>("r").unwrap_err().kind(), ErrorKind::Decode);
    let _ = Role::User;
}
