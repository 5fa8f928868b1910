//! Unit tests of the value mappings.
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
