//! Filters to and from Qdrant's JSON form.

use super::*;

pub(crate) fn condition_json(c: &Condition) -> Value {
    match c {
        Condition::Match { key, value } => {
            serde_json::json!({"key": key, "match": {"value": value.to_json()}})
        }
        Condition::MatchAny { key, values } => serde_json::json!({
            "key": key,
            "match": {"any": values.iter().map(MatchValue::to_json).collect::<Vec<_>>()}
        }),
        Condition::Range { key, range } => {
            let mut r = Map::new();
            for (n, b) in [
                ("gt", range.gt),
                ("gte", range.gte),
                ("lt", range.lt),
                ("lte", range.lte),
            ] {
                if let Some(b) = b {
                    r.insert(n.into(), Value::from(b));
                }
            }
            serde_json::json!({"key": key, "range": r})
        }
        Condition::HasId(ids) => serde_json::json!({ "has_id": ids }),
        Condition::Filter(f) => f.to_json(),
    }
}

pub(crate) fn parse_filter(v: &Value, at: &str, depth: usize) -> Result<Filter> {
    if depth > MAX_FILTER_DEPTH {
        return Err(invalid(format!(
            "filter: nested deeper than {MAX_FILTER_DEPTH} levels"
        )));
    }
    let Value::Object(m) = v else {
        return Err(invalid(format!(
            "{at}: expected an object, not {}",
            json_type(v)
        )));
    };
    let mut f = Filter::new();
    for (k, list) in m {
        let slot = match k.as_str() {
            "must" => &mut f.must,
            "should" => &mut f.should,
            "must_not" => &mut f.must_not,
            other => {
                return Err(invalid(format!(
                    "{at}: unknown clause `{}` (expected must, should or must_not)",
                    short(other)
                )));
            }
        };
        let items = match list {
            Value::Array(items) => items.as_slice(),
            // Qdrant accepts a single condition in place of a list.
            Value::Object(_) => std::slice::from_ref(list),
            other => {
                return Err(invalid(format!(
                    "{at}.{k}: expected a list of conditions, not {}",
                    json_type(other)
                )));
            }
        };
        for (i, c) in items.iter().enumerate() {
            slot.push(parse_condition(c, &format!("{at}.{k}[{i}]"), depth)?);
        }
    }
    Ok(f)
}

pub(crate) fn parse_condition(v: &Value, at: &str, depth: usize) -> Result<Condition> {
    let Value::Object(m) = v else {
        return Err(invalid(format!(
            "{at}: expected a condition object, not {}",
            json_type(v)
        )));
    };
    if let Some(ids) = m.get("has_id") {
        let Value::Array(ids) = ids else {
            return Err(invalid(format!("{at}.has_id: expected a list of ids")));
        };
        let ids = ids
            .iter()
            .map(|id| match id {
                Value::Number(n) => n.as_u64().map(PointId::Num).ok_or(()),
                Value::String(s) => s.parse().map_err(|_| ()),
                _ => Err(()),
            })
            .collect::<std::result::Result<Vec<_>, ()>>()
            .map_err(|()| {
                invalid(format!(
                    "{at}.has_id: ids are unsigned integers or UUID strings"
                ))
            })?;
        return Ok(Condition::HasId(ids));
    }
    if m.contains_key("must") || m.contains_key("should") || m.contains_key("must_not") {
        return parse_filter(v, at, depth + 1).map(Condition::Filter);
    }
    let Some(key) = m.get("key") else {
        return Err(invalid(format!(
            "{at}: expected `key` with `match` or `range`, `has_id`, or a nested filter"
        )));
    };
    let Value::String(key) = key else {
        return Err(invalid(format!("{at}.key: expected a string")));
    };
    let key = key.clone();
    match (m.get("match"), m.get("range")) {
        (Some(Value::Object(mm)), None) => {
            if let Some(value) = mm.get("value") {
                let value = parse_match_value(value, &format!("{at}.match.value"))?;
                Ok(Condition::Match { key, value })
            } else if let Some(Value::Array(any)) = mm.get("any") {
                let values = any
                    .iter()
                    .enumerate()
                    .map(|(i, v)| parse_match_value(v, &format!("{at}.match.any[{i}]")))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Condition::MatchAny { key, values })
            } else {
                Err(invalid(format!(
                    "{at}.match: expected `value` or an `any` list"
                )))
            }
        }
        (None, Some(Value::Object(r))) => {
            let mut range = Range::new();
            for (n, b) in r {
                let b = b.as_f64().ok_or_else(|| {
                    invalid(format!("{at}.range.{}: expected a number", short(n)))
                })?;
                match n.as_str() {
                    "gt" => range.gt = Some(b),
                    "gte" => range.gte = Some(b),
                    "lt" => range.lt = Some(b),
                    "lte" => range.lte = Some(b),
                    other => {
                        return Err(invalid(format!(
                            "{at}.range: unknown bound `{}` (expected gt, gte, lt or lte)",
                            short(other)
                        )));
                    }
                }
            }
            Ok(Condition::Range { key, range })
        }
        (Some(_), Some(_)) => Err(invalid(format!(
            "{at}: a condition has `match` or `range`, not both"
        ))),
        _ => Err(invalid(format!(
            "{at}: expected a `match` object or a `range` object"
        ))),
    }
}

pub(crate) fn parse_match_value(v: &Value, at: &str) -> Result<MatchValue> {
    match v {
        Value::String(s) => Ok(MatchValue::Keyword(s.clone())),
        Value::Bool(b) => Ok(MatchValue::Bool(*b)),
        Value::Number(n) => n.as_i64().map(MatchValue::Integer).ok_or_else(|| {
            invalid(format!(
                "{at}: match takes a string, an integer or a boolean, not {n} (use a range for fractions)"
            ))
        }),
        other => Err(invalid(format!(
            "{at}: match takes a string, an integer or a boolean, not {}",
            json_type(other)
        ))),
    }
}
