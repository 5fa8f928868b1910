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
    pub(crate) exact: bool,
    pub(crate) hnsw_ef: Option<usize>,
}

/// The largest [`Search::hnsw_ef`] accepted (the same bound as dbx-sqlite's
/// `hnsw_ef_search`).
pub const MAX_HNSW_EF: usize = 10_000;

impl Search {
    /// The `limit` points nearest to `vector`, with payloads, without vectors.
    pub fn new(vector: Vec<f32>, limit: usize) -> Search {
        Search {
            vector,
            limit,
            filter: None,
            score_threshold: None,
            include: Include::new(true, false),
            exact: false,
            hnsw_ef: None,
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

    /// Compare the query with every point, bypassing an approximate index
    /// (off by default): the true nearest points, at the cost of a full scan.
    /// Qdrant: the search's `exact` parameter; SQLite with
    /// `vector_index=hnsw`: the exact mirror scan. Backends that always
    /// search exactly ignore it.
    pub fn exact(mut self, on: bool) -> Search {
        self.exact = on;
        self
    }

    /// The candidate list of an HNSW index for this search only (1 to
    /// [`MAX_HNSW_EF`]): larger finds the true neighbours more often and
    /// takes longer. Qdrant: the search's `hnsw_ef`; SQLite with
    /// `vector_index=hnsw`: replaces `hnsw_ef_search` (the URL's default).
    /// Exact searches ignore it.
    ///
    /// ```
    /// use dbx_core::vector::Search;
    /// let q = Search::new(vec![0.1, 0.2, 0.3], 10).hnsw_ef(512);
    /// assert_eq!(q.ef(), Some(512));
    /// assert!(!q.is_exact());
    /// ```
    pub fn hnsw_ef(mut self, ef: usize) -> Search {
        self.hnsw_ef = Some(ef);
        self
    }

    /// Whether the search bypasses approximate indexes: [`Search::exact`].
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// The per-search HNSW candidate list, if set: [`Search::hnsw_ef`].
    pub fn ef(&self) -> Option<usize> {
        self.hnsw_ef
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
        if let Some(ef) = self.hnsw_ef
            && !(1..=MAX_HNSW_EF).contains(&ef)
        {
            return Err(invalid(format!(
                "hnsw_ef must be between 1 and {MAX_HNSW_EF}, not {ef}"
            )));
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
