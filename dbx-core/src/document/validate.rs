//! The document contract's checks: documents, filters, updates, sorts,
//! indexes and collection names are checked here before anything is sent.

use super::*;

/// Extended JSON v2 type wrappers: an object whose first key is one of these
/// is a value, not a sub-document.
pub(crate) const EXT_JSON_KEYS: &[&str] = &[
    "$oid",
    "$date",
    "$numberInt",
    "$numberLong",
    "$numberDouble",
    "$numberDecimal",
    "$binary",
    "$uuid",
    "$regularExpression",
    "$timestamp",
    "$symbol",
    "$code",
    "$scope",
    "$minKey",
    "$maxKey",
    "$undefined",
    "$dbPointer",
];

pub(crate) const TOP_LEVEL_OPERATORS: &[&str] = &[
    "$and",
    "$or",
    "$nor",
    "$expr",
    "$text",
    "$where",
    "$comment",
    "$jsonSchema",
    "$alwaysTrue",
    "$alwaysFalse",
    "$sampleRate",
];

pub(crate) const FIELD_OPERATORS: &[&str] = &[
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$not",
    "$exists",
    "$type",
    "$mod",
    "$regex",
    "$options",
    "$all",
    "$elemMatch",
    "$size",
    "$bitsAllSet",
    "$bitsAnySet",
    "$bitsAllClear",
    "$bitsAnyClear",
    "$geoWithin",
    "$geoIntersects",
    "$near",
    "$nearSphere",
    "$maxDistance",
    "$minDistance",
    "$geometry",
    "$box",
    "$center",
    "$centerSphere",
    "$polygon",
];

pub(crate) const UPDATE_OPERATORS: &[&str] = &[
    "$set",
    "$unset",
    "$inc",
    "$mul",
    "$min",
    "$max",
    "$rename",
    "$currentDate",
    "$setOnInsert",
    "$push",
    "$pull",
    "$pullAll",
    "$addToSet",
    "$pop",
    "$bit",
];

/// Update operators that give the same result when applied twice.
pub(crate) const IDEMPOTENT_UPDATE_OPERATORS: &[&str] =
    &["$set", "$unset", "$min", "$max", "$setOnInsert"];

pub(crate) const PIPELINE_STAGES: &[&str] = &[
    "$addFields",
    "$set",
    "$project",
    "$unset",
    "$replaceRoot",
    "$replaceWith",
];

pub(crate) fn invalid(message: String) -> Error {
    Error::invalid_input(message)
}

/// Whether `obj` is an Extended JSON type wrapper (`{"$oid": ...}`...).
pub fn is_ext_json(obj: &Map<String, Value>) -> bool {
    obj.keys()
        .next()
        .is_some_and(|k| EXT_JSON_KEYS.contains(&k.as_str()))
}

/// Check a collection name against the contract.
pub fn check_collection(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid("collection name is empty".into()));
    }
    if name.len() > MAX_COLLECTION_LEN {
        return Err(invalid(format!(
            "collection name is {} bytes long; the limit is {MAX_COLLECTION_LEN}",
            name.len()
        )));
    }
    if name.contains('\0') {
        return Err(invalid(format!(
            "collection name {:?} contains a NUL character",
            short(name)
        )));
    }
    if name.contains('$') {
        return Err(invalid(format!(
            "collection name {:?} contains `$`",
            short(name)
        )));
    }
    if name.starts_with("system.") {
        return Err(invalid(format!(
            "collection name {:?} starts with `system.`, which is reserved",
            short(name)
        )));
    }
    Ok(())
}

/// Check a document to store (insert or replacement) against the contract.
pub fn check_document(doc: &Value) -> Result<()> {
    let Value::Object(obj) = doc else {
        return Err(invalid(format!(
            "a document must be a JSON object, not {}",
            json_type(doc)
        )));
    };
    if let Some(id) = obj.get("_id")
        && id.is_array()
    {
        return Err(invalid("document `_id` must not be an array".into()));
    }
    check_fields(obj, "", 1)
}

pub(crate) fn check_fields(obj: &Map<String, Value>, path: &str, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "document nests deeper than {MAX_DEPTH} levels"
        )));
    }
    for (k, v) in obj {
        let here = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        if k.is_empty() {
            return Err(invalid(format!(
                "document has an empty field name{}",
                if path.is_empty() {
                    String::new()
                } else {
                    format!(" under {:?}", short(path))
                }
            )));
        }
        if k.contains('\0') {
            return Err(invalid(format!(
                "field name {:?} contains a NUL character",
                short(&here)
            )));
        }
        if k.starts_with('$') {
            return Err(invalid(format!(
                "field name {:?} starts with `$`; stored field names must not (write Extended JSON such as {{\"$date\": ...}} only as a value)",
                short(&here)
            )));
        }
        if k.contains('.') {
            return Err(invalid(format!(
                "field name {:?} contains `.`; stored field names must not (nest a document instead)",
                short(k)
            )));
        }
        check_value(v, &here, depth)?;
    }
    Ok(())
}

pub(crate) fn check_value(v: &Value, path: &str, depth: usize) -> Result<()> {
    match v {
        Value::Object(o) if is_ext_json(o) => Ok(()),
        Value::Object(o) => check_fields(o, path, depth + 1),
        Value::Array(items) => {
            if depth + 1 > MAX_DEPTH {
                return Err(invalid(format!(
                    "document nests deeper than {MAX_DEPTH} levels"
                )));
            }
            items
                .iter()
                .try_for_each(|i| check_value(i, path, depth + 1))
        }
        _ => Ok(()),
    }
}

/// Check a query filter against the contract.
pub fn check_filter(filter: &Value) -> Result<()> {
    check_filter_at(filter, 1)
}

pub(crate) fn check_filter_at(filter: &Value, depth: usize) -> Result<()> {
    let Value::Object(obj) = filter else {
        return Err(invalid(format!(
            "a filter must be a JSON object, not {}",
            json_type(filter)
        )));
    };
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "filter nests deeper than {MAX_DEPTH} levels"
        )));
    }
    for (k, v) in obj {
        if let Some(op) = k.strip_prefix('$') {
            if !TOP_LEVEL_OPERATORS.contains(&k.as_str()) {
                return Err(invalid(format!(
                    "unknown top-level filter operator `${}`",
                    short(op)
                )));
            }
            if matches!(k.as_str(), "$and" | "$or" | "$nor") {
                let Value::Array(items) = v else {
                    return Err(invalid(format!("filter `{k}` needs an array of filters")));
                };
                if items.is_empty() {
                    return Err(invalid(format!("filter `{k}` needs a non-empty array")));
                }
                for item in items {
                    check_filter_at(item, depth + 1)
                        .map_err(|e| invalid(format!("in `{k}`: {}", e.message())))?;
                }
            }
            continue;
        }
        if k.is_empty() {
            return Err(invalid("filter has an empty field name".into()));
        }
        check_condition(k, v, depth)?;
    }
    Ok(())
}

pub(crate) fn check_condition(field: &str, v: &Value, depth: usize) -> Result<()> {
    let Value::Object(cond) = v else {
        return Ok(());
    };
    if is_ext_json(cond) {
        return Ok(());
    }
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "filter nests deeper than {MAX_DEPTH} levels"
        )));
    }
    let ops = cond.keys().filter(|k| k.starts_with('$')).count();
    if ops == 0 {
        return Ok(());
    }
    if ops != cond.len() {
        return Err(invalid(format!(
            "the condition on {:?} mixes `$` operators with field names",
            short(field)
        )));
    }
    for (op, arg) in cond {
        if !FIELD_OPERATORS.contains(&op.as_str()) {
            return Err(invalid(format!(
                "unknown filter operator `{}` on {:?}",
                short(op),
                short(field)
            )));
        }
        match op.as_str() {
            "$in" | "$nin" | "$all" if !arg.is_array() => {
                return Err(invalid(format!(
                    "`{op}` on {:?} needs an array",
                    short(field)
                )));
            }
            "$elemMatch" if !arg.is_object() => {
                return Err(invalid(format!(
                    "`$elemMatch` on {:?} needs a document",
                    short(field)
                )));
            }
            "$exists" if !(arg.is_boolean() || arg.is_number()) => {
                return Err(invalid(format!(
                    "`$exists` on {:?} needs true or false",
                    short(field)
                )));
            }
            "$size" if !arg.is_u64() => {
                return Err(invalid(format!(
                    "`$size` on {:?} needs a non-negative whole number",
                    short(field)
                )));
            }
            "$not" => check_condition(field, arg, depth + 1)?,
            _ => {}
        }
    }
    Ok(())
}

/// Check an update (operators or a pipeline) against the contract.
pub fn check_update(update: &Value) -> Result<()> {
    match update {
        Value::Object(obj) => {
            if obj.is_empty() {
                return Err(invalid(
                    "an update needs at least one operator such as `$set`".into(),
                ));
            }
            for (op, fields) in obj {
                if !op.starts_with('$') {
                    return Err(invalid(format!(
                        "update key {:?} is not an operator; use `$set` to set fields, or replace_one to replace the document",
                        short(op)
                    )));
                }
                if !UPDATE_OPERATORS.contains(&op.as_str()) {
                    return Err(invalid(format!("unknown update operator `{}`", short(op))));
                }
                let Value::Object(fields) = fields else {
                    return Err(invalid(format!(
                        "update operator `{op}` needs a document of fields, not {}",
                        json_type(fields)
                    )));
                };
                for (path, value) in fields {
                    if path.is_empty() || path.starts_with('$') || path.contains('\0') {
                        return Err(invalid(format!(
                            "`{op}` names an invalid field path {:?}",
                            short(path)
                        )));
                    }
                    if op == "$set" || op == "$setOnInsert" {
                        check_value(value, path, 1).map_err(|e| {
                            invalid(format!("in `{op}` of {:?}: {}", short(path), e.message()))
                        })?;
                    }
                }
            }
            Ok(())
        }
        Value::Array(stages) => {
            if stages.is_empty() {
                return Err(invalid(
                    "an update pipeline needs at least one stage".into(),
                ));
            }
            for stage in stages {
                let ok = stage.as_object().is_some_and(|s| {
                    s.len() == 1 && s.keys().all(|k| PIPELINE_STAGES.contains(&k.as_str()))
                });
                if !ok {
                    return Err(invalid(format!(
                        "an update pipeline stage must be one of {} with its argument",
                        PIPELINE_STAGES.join(", ")
                    )));
                }
            }
            Ok(())
        }
        other => Err(invalid(format!(
            "an update must be a JSON object of operators or an array of pipeline stages, not {}",
            json_type(other)
        ))),
    }
}

/// Whether applying `update` twice gives the same result as once.
pub(crate) fn update_is_idempotent(update: &Value) -> bool {
    update.as_object().is_some_and(|o| {
        o.keys()
            .all(|k| IDEMPOTENT_UPDATE_OPERATORS.contains(&k.as_str()))
    })
}

pub(crate) fn check_sort(sort: &Value) -> Result<()> {
    let Value::Object(obj) = sort else {
        return Err(invalid(format!(
            "a sort must be a JSON object such as {{\"field\": 1}}, not {}",
            json_type(sort)
        )));
    };
    for (k, v) in obj {
        let ok = match v {
            Value::Number(n) => n.as_i64().is_some_and(|d| d == 1 || d == -1),
            Value::Object(m) => m.contains_key("$meta"),
            _ => false,
        };
        if !ok || k.is_empty() {
            return Err(invalid(format!(
                "sort direction of {:?} must be 1 or -1",
                short(k)
            )));
        }
    }
    Ok(())
}

pub(crate) fn check_find_options(options: &FindOptions) -> Result<()> {
    if let Some(p) = &options.projection
        && !p.is_object()
    {
        return Err(invalid(format!(
            "a projection must be a JSON object, not {}",
            json_type(p)
        )));
    }
    if let Some(s) = &options.sort {
        check_sort(s)?;
    }
    for (name, n) in [("limit", options.limit), ("skip", options.skip)] {
        if n.is_some_and(|n| n > i64::MAX as u64) {
            return Err(invalid(format!("{name} is above {}", i64::MAX)));
        }
    }
    Ok(())
}

pub(crate) fn check_index(index: &IndexSpec) -> Result<()> {
    let Value::Object(keys) = &index.keys else {
        return Err(invalid("index keys must be a JSON object".into()));
    };
    if keys.is_empty() {
        return Err(invalid("an index needs at least one key".into()));
    }
    for (k, v) in keys {
        let ok = match v {
            Value::Number(n) => n.as_i64().is_some_and(|d| d == 1 || d == -1),
            Value::String(s) => !s.is_empty(),
            _ => false,
        };
        if k.is_empty() || k.starts_with('$') || !ok {
            return Err(invalid(format!(
                "index key {:?} must be a field with 1, -1 or an index kind such as \"text\"",
                short(k)
            )));
        }
    }
    if let Some(name) = &index.name
        && (name.is_empty() || name.contains('\0'))
    {
        return Err(invalid("index name is empty or contains NUL".into()));
    }
    if index.expire_after.is_some() && keys.len() != 1 {
        return Err(invalid(
            "a TTL index (expire_after) must have exactly one key".into(),
        ));
    }
    Ok(())
}

pub(crate) fn to_document<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    let v = serde_json::to_value(value).map_err(|e| {
        Error::invalid_input(format!("document cannot be serialized: {e}")).with_source(e)
    })?;
    if !v.is_object() {
        return Err(invalid(format!(
            "a document must serialize to a JSON object, not {}",
            json_type(&v)
        )));
    }
    Ok(v)
}

pub(crate) fn from_document<T: DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| {
        Error::decode(format!(
            "document does not decode into the requested type: {e}"
        ))
        .with_source(e)
    })
}
