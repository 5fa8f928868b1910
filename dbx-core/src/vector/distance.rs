//! Distances and scores: how near two vectors are, and which way is better.

use super::*;

mod kernel;

/// How a collection compares vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Distance {
    /// Cosine similarity (vectors normalised on write); higher is closer.
    Cosine,
    /// Dot product; higher is closer.
    Dot,
    /// Euclidean distance; smaller is closer.
    Euclid,
    /// Manhattan (L1) distance; smaller is closer.
    Manhattan,
}

impl Distance {
    /// The lower-case name: `cosine`, `dot`, `euclid`, `manhattan`.
    pub fn as_str(self) -> &'static str {
        match self {
            Distance::Cosine => "cosine",
            Distance::Dot => "dot",
            Distance::Euclid => "euclid",
            Distance::Manhattan => "manhattan",
        }
    }

    /// Whether a higher score means closer (cosine, dot).
    pub fn higher_is_better(self) -> bool {
        matches!(self, Distance::Cosine | Distance::Dot)
    }

    /// The score of `stored` against `query`, as a search reports it. For
    /// cosine both must already be [`prepare`](Distance::prepare)d.
    /// Both slices must have the same length.
    pub fn score(self, query: &[f32], stored: &[f32]) -> f32 {
        debug_assert_eq!(query.len(), stored.len());
        match self {
            Distance::Cosine | Distance::Dot => dot(query, stored),
            Distance::Euclid => kernel::squared_euclid(query, stored).sqrt(),
            Distance::Manhattan => kernel::manhattan(query, stored),
        }
    }

    /// Whether score `a` ranks before score `b`.
    pub fn better(self, a: f32, b: f32) -> bool {
        if self.higher_is_better() {
            a > b
        } else {
            a < b
        }
    }

    /// Whether `score` passes a search's score threshold.
    pub fn within(self, score: f32, threshold: f32) -> bool {
        if self.higher_is_better() {
            score >= threshold
        } else {
            score <= threshold
        }
    }

    /// The vector as the collection stores it: normalised to unit length for
    /// cosine (unless of zero or unit length, as Qdrant does), unchanged
    /// otherwise.
    pub fn prepare(self, vector: &[f32]) -> Vec<f32> {
        let mut v = vector.to_vec();
        if self == Distance::Cosine {
            let length: f32 = dot(&v, &v);
            if !(length < f32::EPSILON || (length - 1.0).abs() <= 1.0e-6) {
                let length = length.sqrt();
                v.iter_mut().for_each(|x| *x /= length);
            }
        }
        v
    }
}

/// Dot product (see [`kernel`]).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    kernel::dot(a, b)
}

impl fmt::Display for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Distance {
    type Err = Error;

    /// `cosine`, `dot`, `euclid` (or `euclidean`), `manhattan`, in any case.
    fn from_str(s: &str) -> Result<Distance> {
        match s.to_ascii_lowercase().as_str() {
            "cosine" => Ok(Distance::Cosine),
            "dot" => Ok(Distance::Dot),
            "euclid" | "euclidean" => Ok(Distance::Euclid),
            "manhattan" => Ok(Distance::Manhattan),
            _ => Err(invalid(format!(
                "unknown distance `{}`: expected cosine, dot, euclid or manhattan",
                short(s)
            ))),
        }
    }
}
