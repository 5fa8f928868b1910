//! Search requests, their checks, and the order of equal scores.

use super::*;

/// A nearest-neighbour query: [`VectorCollection::search`].
///
/// ```
/// use dbx_core::vector::{Condition, Filter, Search};
/// let q = Search::new(vec![0.1, 0.2, 0.3], 5)
///     .filter(Filter::new().must(Condition::eq("lang", "en")))
///     .score_threshold(0.5)
///     .with_vectors(true);
/// assert_eq!(q.limit(), 5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub(crate) vector: Vec<f32>,
    pub(crate) limit: usize,
    pub(crate) filter: Option<Filter>,
    pub(crate) score_threshold: Option<f32>,
    pub(crate) include: Include,
}

impl Search {
    /// The `limit` points nearest to `vector`, with payloads, without vectors.
    pub fn new(vector: Vec<f32>, limit: usize) -> Search {
        Search {
            vector,
            limit,
            filter: None,
            score_threshold: None,
            include: Include::new(true, false),
        }
    }

    /// Only points passing `filter`.
    pub fn filter(mut self, filter: Filter) -> Search {
        self.filter = Some(filter).filter(|f| !f.is_empty());
        self
    }

    /// Only scores at least this similar: `>=` for cosine and dot, `<=` for
    /// the euclid and manhattan distances.
    pub fn score_threshold(mut self, threshold: f32) -> Search {
        self.score_threshold = Some(threshold);
        self
    }

    /// Return payloads (on by default).
    pub fn with_payload(mut self, on: bool) -> Search {
        self.include.payload = on;
        self
    }

    /// Return vectors (off by default).
    pub fn with_vectors(mut self, on: bool) -> Search {
        self.include.vectors = on;
        self
    }

    /// The query vector.
    pub fn vector(&self) -> &[f32] {
        &self.vector
    }

    /// The number of results asked for.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The filter, if any.
    pub fn filter_ref(&self) -> Option<&Filter> {
        self.filter.as_ref()
    }

    /// The score threshold, if any.
    pub fn threshold(&self) -> Option<f32> {
        self.score_threshold
    }

    /// What to return beside ids and scores.
    pub fn include(&self) -> Include {
        self.include
    }

    pub(crate) fn check(&self) -> Result<()> {
        check_vector(&self.vector, "the query vector")?;
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(invalid(format!(
                "search limit must be between 1 and {MAX_LIMIT}, not {}",
                self.limit
            )));
        }
        if let Some(t) = self.score_threshold
            && !t.is_finite()
        {
            return Err(invalid("the score threshold must be a finite number"));
        }
        if let Some(f) = &self.filter {
            f.check()?;
        }
        Ok(())
    }
}

/// Sort results best first with ties by ascending id: the contract's order,
/// given results already ordered by score (as every backend returns them).
pub(crate) fn order_ties(hits: &mut [ScoredPoint]) {
    let mut start = 0;
    while start < hits.len() {
        let mut end = start + 1;
        while end < hits.len() && hits[end].score == hits[start].score {
            end += 1;
        }
        if end - start > 1 {
            hits[start..end].sort_by_key(|h| h.id);
        }
        start = end;
    }
}
