//! Payload filters: conditions on fields and ids, and Qdrant's matching rules.

use super::*;

/// A value a payload field is compared with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MatchValue {
    /// A string, compared exactly.
    Keyword(String),
    /// An integer.
    Integer(i64),
    /// A boolean.
    Bool(bool),
}

impl MatchValue {
    pub(crate) fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (MatchValue::Keyword(k), Value::String(s)) => k == s,
            (MatchValue::Integer(i), Value::Number(n)) => n.as_i64() == Some(*i),
            (MatchValue::Bool(b), Value::Bool(x)) => b == x,
            _ => false,
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            MatchValue::Keyword(_) => "keyword",
            MatchValue::Integer(_) => "integer",
            MatchValue::Bool(_) => "boolean",
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        match self {
            MatchValue::Keyword(s) => Value::String(s.clone()),
            MatchValue::Integer(i) => Value::from(*i),
            MatchValue::Bool(b) => Value::Bool(*b),
        }
    }
}

impl From<&str> for MatchValue {
    fn from(s: &str) -> Self {
        MatchValue::Keyword(s.to_owned())
    }
}
impl From<String> for MatchValue {
    fn from(s: String) -> Self {
        MatchValue::Keyword(s)
    }
}
impl From<i64> for MatchValue {
    fn from(i: i64) -> Self {
        MatchValue::Integer(i)
    }
}
impl From<i32> for MatchValue {
    fn from(i: i32) -> Self {
        MatchValue::Integer(i.into())
    }
}
impl From<bool> for MatchValue {
    fn from(b: bool) -> Self {
        MatchValue::Bool(b)
    }
}

/// Bounds on a numeric payload field; unset bounds are open.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Range {
    /// Greater than.
    pub gt: Option<f64>,
    /// Greater than or equal.
    pub gte: Option<f64>,
    /// Less than.
    pub lt: Option<f64>,
    /// Less than or equal.
    pub lte: Option<f64>,
}

impl Range {
    /// No bounds yet.
    pub fn new() -> Range {
        Range::default()
    }
    /// Values greater than `v`.
    pub fn gt(mut self, v: f64) -> Range {
        self.gt = Some(v);
        self
    }
    /// Values greater than or equal to `v`.
    pub fn gte(mut self, v: f64) -> Range {
        self.gte = Some(v);
        self
    }
    /// Values less than `v`.
    pub fn lt(mut self, v: f64) -> Range {
        self.lt = Some(v);
        self
    }
    /// Values less than or equal to `v`.
    pub fn lte(mut self, v: f64) -> Range {
        self.lte = Some(v);
        self
    }

    pub(crate) fn contains(&self, x: f64) -> bool {
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }
}

/// One condition of a [`Filter`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Condition {
    /// The field equals the value (for an array field: any element does).
    Match {
        /// Dotted path of the payload field.
        key: String,
        /// The value.
        value: MatchValue,
    },
    /// The field equals one of the values (all of one kind).
    MatchAny {
        /// Dotted path of the payload field.
        key: String,
        /// The values.
        values: Vec<MatchValue>,
    },
    /// The field is a number within the range.
    Range {
        /// Dotted path of the payload field.
        key: String,
        /// The bounds.
        range: Range,
    },
    /// The point's id is one of these.
    HasId(Vec<PointId>),
    /// A nested filter.
    Filter(Filter),
}

impl Condition {
    /// `key` equals `value`.
    pub fn eq(key: impl Into<String>, value: impl Into<MatchValue>) -> Condition {
        Condition::Match {
            key: key.into(),
            value: value.into(),
        }
    }

    /// `key` equals any of `values`.
    pub fn any<V: Into<MatchValue>>(
        key: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Condition {
        Condition::MatchAny {
            key: key.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// `key` is a number within `range`.
    pub fn range(key: impl Into<String>, range: Range) -> Condition {
        Condition::Range {
            key: key.into(),
            range,
        }
    }

    /// The point id is one of `ids`.
    pub fn has_id<I: Into<PointId>>(ids: impl IntoIterator<Item = I>) -> Condition {
        Condition::HasId(ids.into_iter().map(Into::into).collect())
    }

    /// A nested filter.
    pub fn filter(filter: Filter) -> Condition {
        Condition::Filter(filter)
    }

    pub(crate) fn matches(&self, id: PointId, payload: &Map<String, Value>) -> bool {
        match self {
            Condition::Match { key, value } => field_values(payload, key).any(|v| value.matches(v)),
            Condition::MatchAny { key, values } => {
                field_values(payload, key).any(|v| values.iter().any(|m| m.matches(v)))
            }
            Condition::Range { key, range } => field_values(payload, key).any(|v| {
                v.as_f64()
                    .is_some_and(|x| v.is_number() && range.contains(x))
            }),
            Condition::HasId(ids) => ids.contains(&id),
            Condition::Filter(f) => f.matches(id, payload),
        }
    }

    pub(crate) fn check(&self, depth: usize) -> Result<()> {
        match self {
            Condition::Match { key, .. } => check_key(key),
            Condition::MatchAny { key, values } => {
                check_key(key)?;
                let Some(first) = values.first() else {
                    return Err(invalid(format!(
                        "filter: match-any on `{}` has no values",
                        short(key)
                    )));
                };
                if matches!(first, MatchValue::Bool(_)) {
                    return Err(invalid(format!(
                        "filter: match-any on `{}` takes keywords or integers, not booleans",
                        short(key)
                    )));
                }
                if let Some(other) = values.iter().find(|v| v.kind() != first.kind()) {
                    return Err(invalid(format!(
                        "filter: match-any on `{}` mixes {} and {} values",
                        short(key),
                        first.kind(),
                        other.kind()
                    )));
                }
                Ok(())
            }
            Condition::Range { key, range } => {
                check_key(key)?;
                let bounds = [range.gt, range.gte, range.lt, range.lte];
                if bounds.iter().all(Option::is_none) {
                    return Err(invalid(format!(
                        "filter: range on `{}` has no bounds",
                        short(key)
                    )));
                }
                if bounds.iter().flatten().any(|b| !b.is_finite()) {
                    return Err(invalid(format!(
                        "filter: range on `{}` has a bound that is not a finite number",
                        short(key)
                    )));
                }
                Ok(())
            }
            Condition::HasId(_) => Ok(()),
            Condition::Filter(f) => f.check_at(depth + 1),
        }
    }
}

/// The values a dotted path reaches in a payload: the field itself, or each
/// element when the field is an array.
pub(crate) fn field_values<'a>(
    payload: &'a Map<String, Value>,
    key: &str,
) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
    let mut parts = key.split('.');
    let first = parts.next().unwrap_or_default();
    let mut cur = payload.get(first);
    for p in parts {
        cur = cur.and_then(|v| v.as_object()).and_then(|o| o.get(p));
    }
    match cur {
        None => Box::new(std::iter::empty()),
        Some(Value::Array(items)) => Box::new(items.iter()),
        Some(v) => Box::new(std::iter::once(v)),
    }
}

pub(crate) fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 255
        && key.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "filter: `{}` is not a payload key: expected dot-separated names of ASCII letters, digits, `_` and `-`",
            short(key)
        )))
    }
}

/// A payload filter, as in Qdrant: all of `must`, at least one of `should`
/// (when not empty) and none of `must_not`.
///
/// ```
/// use dbx_core::vector::{Condition, Filter, Range};
/// let f = Filter::new()
///     .must(Condition::eq("lang", "en"))
///     .must(Condition::range("year", Range::new().gte(2020.0)))
///     .must_not(Condition::any("tag", ["draft", "spam"]));
/// // the same filter in Qdrant's JSON form
/// let g = Filter::from_json(&dbx_core::serde_json::json!({
///     "must": [
///         {"key": "lang", "match": {"value": "en"}},
///         {"key": "year", "range": {"gte": 2020}}
///     ],
///     "must_not": [{"key": "tag", "match": {"any": ["draft", "spam"]}}]
/// })).unwrap();
/// assert_eq!(f, g);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Filter {
    /// Conditions that must all hold.
    pub must: Vec<Condition>,
    /// Conditions of which at least one must hold (when not empty).
    pub should: Vec<Condition>,
    /// Conditions of which none may hold.
    pub must_not: Vec<Condition>,
}

impl Filter {
    /// An empty filter, which matches every point.
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Add a condition that must hold.
    pub fn must(mut self, c: Condition) -> Filter {
        self.must.push(c);
        self
    }

    /// Add a condition of which at least one must hold.
    pub fn should(mut self, c: Condition) -> Filter {
        self.should.push(c);
        self
    }

    /// Add a condition that must not hold.
    pub fn must_not(mut self, c: Condition) -> Filter {
        self.must_not.push(c);
        self
    }

    /// Whether the filter has no conditions (matches everything).
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.should.is_empty() && self.must_not.is_empty()
    }

    /// Whether a point with this id and payload passes: the reference
    /// semantics every backend follows.
    pub fn matches(&self, id: PointId, payload: &Map<String, Value>) -> bool {
        self.must.iter().all(|c| c.matches(id, payload))
            && (self.should.is_empty() || self.should.iter().any(|c| c.matches(id, payload)))
            && !self.must_not.iter().any(|c| c.matches(id, payload))
    }

    /// Check keys, ranges and value lists: a malformed filter is
    /// [`InvalidInput`](ErrorKind::InvalidInput).
    pub fn check(&self) -> Result<()> {
        self.check_at(1)
    }

    pub(crate) fn check_at(&self, depth: usize) -> Result<()> {
        if depth > MAX_FILTER_DEPTH {
            return Err(invalid(format!(
                "filter: nested deeper than {MAX_FILTER_DEPTH} levels"
            )));
        }
        for c in self.must.iter().chain(&self.should).chain(&self.must_not) {
            c.check(depth)?;
        }
        Ok(())
    }

    /// Parse a filter in Qdrant's JSON form:
    /// `{"must": [...], "should": [...], "must_not": [...]}` with conditions
    /// `{"key": k, "match": {"value": v}}`, `{"key": k, "match": {"any":
    /// [..]}}`, `{"key": k, "range": {"gt"|"gte"|"lt"|"lte": n}}`,
    /// `{"has_id": [..]}` or a nested filter. Anything else is
    /// [`InvalidInput`](ErrorKind::InvalidInput) naming the problem.
    pub fn from_json(v: &Value) -> Result<Filter> {
        let f = parse_filter(v, "filter", 1)?;
        f.check()?;
        Ok(f)
    }

    /// The filter in Qdrant's JSON form (what [`from_json`](Filter::from_json)
    /// reads).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (name, list) in [
            ("must", &self.must),
            ("should", &self.should),
            ("must_not", &self.must_not),
        ] {
            if !list.is_empty() {
                m.insert(
                    name.into(),
                    Value::Array(list.iter().map(condition_json).collect()),
                );
            }
        }
        Value::Object(m)
    }
}
