//! Conversions between dbx's vector types and Qdrant's gRPC messages:
//! point ids, payloads (JSON <-> `Value`) and filters.

use dbx_core::vector::{Condition, Filter, MatchValue, PointId};
use dbx_core::{Error, Result};
use qdrant_client::qdrant::{
    self as q, condition::ConditionOneOf, r#match::MatchValue as QMatch, point_id::PointIdOptions,
    value::Kind,
};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

// --- ids ----------------------------------------------------------------------

pub(crate) fn id_to_grpc(id: &PointId) -> q::PointId {
    let options = match id {
        PointId::Num(n) => PointIdOptions::Num(*n),
        PointId::Uuid(u) => PointIdOptions::Uuid(u.to_string()),
    };
    q::PointId {
        point_id_options: Some(options),
    }
}

pub(crate) fn id_from_grpc(id: Option<q::PointId>) -> Result<PointId> {
    match id.and_then(|i| i.point_id_options) {
        Some(PointIdOptions::Num(n)) => Ok(PointId::Num(n)),
        Some(PointIdOptions::Uuid(s)) => {
            uuid::Uuid::parse_str(&s).map(PointId::Uuid).map_err(|e| {
                Error::decode(format!(
                    "the server returned a point id that is not a UUID: {:?}",
                    s.chars().take(64).collect::<String>()
                ))
                .with_source(e)
            })
        }
        None => Err(Error::decode("the server returned a point without an id")),
    }
}

// --- payloads -------------------------------------------------------------------

/// A JSON payload as Qdrant's map of values. Integers stay integers and
/// fractions stay doubles; an integer beyond `i64` (which the gRPC `Value`
/// cannot carry) is [`InvalidInput`](dbx_core::ErrorKind::InvalidInput)
/// rather than silently rounded.
pub(crate) fn payload_to_grpc(payload: &Map<String, Value>) -> Result<HashMap<String, q::Value>> {
    payload
        .iter()
        .map(|(k, v)| Ok((k.clone(), json_to_grpc(v, k)?)))
        .collect()
}

fn json_to_grpc(v: &Value, at: &str) -> Result<q::Value> {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Kind::IntegerValue(i)
            } else if n.is_u64() {
                return Err(Error::invalid_input(format!(
                    "payload field `{}` holds the integer {n}, beyond the 64-bit signed range Qdrant's gRPC API carries",
                    short(at)
                )));
            } else {
                Kind::DoubleValue(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(q::ListValue {
            values: items
                .iter()
                .map(|item| json_to_grpc(item, at))
                .collect::<Result<_>>()?,
        }),
        Value::Object(m) => Kind::StructValue(q::Struct {
            fields: m
                .iter()
                .map(|(k, v)| Ok((k.clone(), json_to_grpc(v, at)?)))
                .collect::<Result<_>>()?,
        }),
    };
    Ok(q::Value { kind: Some(kind) })
}

/// Qdrant's payload as a JSON object (keys sorted, as serde_json's map).
pub(crate) fn payload_from_grpc(payload: HashMap<String, q::Value>) -> Map<String, Value> {
    payload
        .into_iter()
        .map(|(k, v)| (k, grpc_to_json(v)))
        .collect()
}

fn grpc_to_json(v: q::Value) -> Value {
    match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::IntegerValue(i)) => Value::Number(i.into()),
        // JSON has no NaN or infinity; Qdrant stores JSON, so none come back.
        Some(Kind::DoubleValue(d)) => Number::from_f64(d).map_or(Value::Null, Value::Number),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.into_iter().map(grpc_to_json).collect()),
        Some(Kind::StructValue(s)) => Value::Object(
            s.fields
                .into_iter()
                .map(|(k, v)| (k, grpc_to_json(v)))
                .collect(),
        ),
    }
}

fn short(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

// --- filters ----------------------------------------------------------------------

/// dbx's filter as Qdrant's: the same model, clause for clause.
pub(crate) fn filter_to_grpc(f: &Filter) -> q::Filter {
    let list = |cs: &[Condition]| cs.iter().map(condition_to_grpc).collect();
    q::Filter {
        must: list(&f.must),
        should: list(&f.should),
        must_not: list(&f.must_not),
        min_should: None,
    }
}

fn field(key: &str) -> q::FieldCondition {
    q::FieldCondition {
        key: key.to_owned(),
        ..Default::default()
    }
}

fn condition_to_grpc(c: &Condition) -> q::Condition {
    let one_of = match c {
        Condition::Match { key, value } => {
            let m = match value {
                MatchValue::Keyword(s) => QMatch::Keyword(s.clone()),
                MatchValue::Integer(i) => QMatch::Integer(*i),
                MatchValue::Bool(b) => QMatch::Boolean(*b),
                // MatchValue is non-exhaustive; a kind this driver does not
                // know matches nothing (an empty keyword list).
                _ => QMatch::Keywords(q::RepeatedStrings::default()),
            };
            ConditionOneOf::Field(q::FieldCondition {
                r#match: Some(q::Match {
                    match_value: Some(m),
                }),
                ..field(key)
            })
        }
        Condition::MatchAny { key, values } => {
            let integers: Option<Vec<i64>> = values
                .iter()
                .map(|v| match v {
                    MatchValue::Integer(i) => Some(*i),
                    _ => None,
                })
                .collect();
            let m = match integers {
                Some(integers) if !values.is_empty() => {
                    QMatch::Integers(q::RepeatedIntegers { integers })
                }
                // The handle checked that the values are all keywords or
                // all integers.
                _ => QMatch::Keywords(q::RepeatedStrings {
                    strings: values
                        .iter()
                        .filter_map(|v| match v {
                            MatchValue::Keyword(s) => Some(s.clone()),
                            _ => None,
                        })
                        .collect(),
                }),
            };
            ConditionOneOf::Field(q::FieldCondition {
                r#match: Some(q::Match {
                    match_value: Some(m),
                }),
                ..field(key)
            })
        }
        Condition::Range { key, range } => ConditionOneOf::Field(q::FieldCondition {
            range: Some(q::Range {
                lt: range.lt,
                gt: range.gt,
                gte: range.gte,
                lte: range.lte,
            }),
            ..field(key)
        }),
        Condition::HasId(ids) => ConditionOneOf::HasId(q::HasIdCondition {
            has_id: ids.iter().map(id_to_grpc).collect(),
        }),
        Condition::Filter(f) => ConditionOneOf::Filter(filter_to_grpc(f)),
        // Condition is non-exhaustive: a kind this driver does not know
        // matches nothing (an empty id list).
        _ => ConditionOneOf::HasId(q::HasIdCondition { has_id: Vec::new() }),
    };
    q::Condition {
        condition_one_of: Some(one_of),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use dbx_core::ErrorKind;
    use dbx_core::vector::Range;
    use serde_json::json;

    #[test]
    fn payloads_round_trip_losslessly() {
        let p = json!({
            "int": 42, "neg": -7, "big": i64::MAX, "small": i64::MIN,
            "float": 1.5, "whole_float": 2.0, "s": "x", "b": true, "n": null,
            "list": [1, "a", [2.5], {"k": false}], "obj": {"deep": {"deeper": [0]}}
        });
        let m = p.as_object().unwrap();
        let grpc = payload_to_grpc(m).unwrap();
        assert_eq!(grpc["int"].kind, Some(Kind::IntegerValue(42)));
        assert_eq!(grpc["whole_float"].kind, Some(Kind::DoubleValue(2.0)));
        let back = payload_from_grpc(grpc);
        assert_eq!(Value::Object(back), p);
        let e = payload_to_grpc(json!({"a": {"b": u64::MAX}}).as_object().unwrap()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("`a`"), "{e}");
    }

    #[test]
    fn ids_round_trip() {
        let u = uuid::Uuid::from_u128(0x1234);
        for id in [PointId::Num(0), PointId::Num(u64::MAX), PointId::Uuid(u)] {
            assert_eq!(id_from_grpc(Some(id_to_grpc(&id))).unwrap(), id);
        }
        assert!(id_from_grpc(None).is_err());
        let bad = q::PointId {
            point_id_options: Some(PointIdOptions::Uuid("nope".into())),
        };
        assert_eq!(
            id_from_grpc(Some(bad)).unwrap_err().kind(),
            ErrorKind::Decode
        );
    }

    #[test]
    fn filters_map_clause_for_clause() {
        let f = Filter::new()
            .must(Condition::eq("lang", "en"))
            .must(Condition::eq("year", 2021))
            .must(Condition::eq("draft", false))
            .should(Condition::any("tag", ["a", "b"]))
            .should(Condition::any("n", [1, 2]))
            .must_not(Condition::range("score", Range::new().gt(0.5).lte(2.0)))
            .must_not(Condition::has_id([7u64]))
            .must(Condition::filter(Filter::new().must(Condition::eq("x", 1))));
        let g = filter_to_grpc(&f);
        assert_eq!((g.must.len(), g.should.len(), g.must_not.len()), (4, 2, 2));
        let matched = |c: &q::Condition| match &c.condition_one_of {
            Some(ConditionOneOf::Field(fc)) => fc.r#match.clone().unwrap().match_value.unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(matched(&g.must[0]), QMatch::Keyword("en".into()));
        assert_eq!(matched(&g.must[1]), QMatch::Integer(2021));
        assert_eq!(matched(&g.must[2]), QMatch::Boolean(false));
        assert_eq!(
            matched(&g.should[0]),
            QMatch::Keywords(q::RepeatedStrings {
                strings: vec!["a".into(), "b".into()]
            })
        );
        assert_eq!(
            matched(&g.should[1]),
            QMatch::Integers(q::RepeatedIntegers {
                integers: vec![1, 2]
            })
        );
        match &g.must_not[0].condition_one_of {
            Some(ConditionOneOf::Field(fc)) => {
                assert_eq!(fc.key, "score");
                let r = fc.range.unwrap();
                assert_eq!(
                    (r.gt, r.gte, r.lt, r.lte),
                    (Some(0.5), None, None, Some(2.0))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            &g.must_not[1].condition_one_of,
            Some(ConditionOneOf::HasId(h)) if h.has_id.len() == 1
        ));
        assert!(matches!(
            &g.must[3].condition_one_of,
            Some(ConditionOneOf::Filter(inner)) if inner.must.len() == 1
        ));
    }
}
