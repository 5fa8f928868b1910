//! Checks of names, vectors and points before anything is sent, and the
//! errors drivers share.

use super::*;

/// Check a collection name: 1 to [`MAX_COLLECTION_NAME_LEN`] ASCII letters,
/// digits, `_` and `-`, starting with a letter or `_`.
pub fn check_collection_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_COLLECTION_NAME_LEN
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{}` is not a collection name: expected 1 to {MAX_COLLECTION_NAME_LEN} ASCII letters, digits, `_` or `-`, starting with a letter or `_`",
            short(name)
        )))
    }
}

/// Check a vector: not empty, at most [`MAX_DIMENSION`] components, all
/// finite.
pub fn check_vector(v: &[f32], what: &str) -> Result<()> {
    if v.is_empty() {
        return Err(invalid(format!("{what} is empty")));
    }
    if v.len() > MAX_DIMENSION {
        return Err(invalid(format!(
            "{what} has {} components, more than the {MAX_DIMENSION} allowed",
            v.len()
        )));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(invalid(format!(
            "{what} has a component that is not a finite number ({} at index {i})",
            v[i]
        )));
    }
    Ok(())
}

/// The error for a vector of the wrong length, for drivers.
pub fn dimension_mismatch(collection: &str, expected: usize, got: usize) -> Error {
    invalid(format!(
        "vector dimension mismatch in collection `{}`: expected {expected}, got {got}",
        short(collection)
    ))
}

/// The error for a collection that does not exist, for drivers.
pub fn collection_not_found(collection: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("collection `{}` does not exist", short(collection)),
    )
}

pub(crate) fn check_points(points: &[Point]) -> Result<()> {
    let Some(first) = points.first() else {
        return Ok(());
    };
    for (i, p) in points.iter().enumerate() {
        check_vector(&p.vector, &format!("the vector of point {} (#{i})", p.id))?;
        if p.vector.len() != first.vector.len() {
            return Err(invalid(format!(
                "the vectors of one upsert differ in length: point {} has {}, point {} has {}",
                first.id,
                first.vector.len(),
                p.id,
                p.vector.len()
            )));
        }
    }
    Ok(())
}

pub(crate) fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::invalid_input(message)
}
