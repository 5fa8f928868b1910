#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod convert;
mod error;
mod kv;
mod pool;
mod sql;
mod stmt;
mod vector;

use crate::kv::SqliteKv;
use crate::pool::{OpenConfig, Pool};
use crate::sql::SqliteSql;
use crate::vector::SqliteVectors;
use dbx_core::driver::{Backend, Driver, KvStore, SqlStore, VectorStore};
use dbx_core::{ConnectOptions, Error, PoolStatus, Result};
use error::{BACKEND, map_err};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Default `pool_max_size`.
pub const DEFAULT_POOL_SIZE: usize = 8;
/// Default `busy_timeout` (never above the operation timeout).
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest `mmap_size` accepted (1 TiB; SQLite caps it further at its
/// compile-time limit, 2 GiB in the bundled build).
pub const MAX_MMAP_SIZE: u64 = 1 << 40;
/// Default `vector_mirror_max_bytes`: what the in-memory copies of vector
/// collections searched through this database may hold together (256 MiB;
/// a 100k-point collection of 384 dimensions takes about 157 MB).
pub const DEFAULT_VECTOR_MIRROR_MAX_BYTES: u64 = 256 << 20;
/// Default key-value table name.
pub const DEFAULT_KV_TABLE: &str = "dbx_kv";

const PARAMS: &[&str] = &[
    "busy_timeout",
    "journal_mode",
    "synchronous",
    "foreign_keys",
    "kv_table",
    "statement_cache_capacity",
    "mmap_size",
    "vector_mirror_max_bytes",
    "vector_index",
    "hnsw_m",
    "hnsw_ef_construction",
    "hnsw_ef_search",
    "vector_index_min_points",
];

/// Default `hnsw_m`: links per point and layer (twice that on the bottom layer).
pub const DEFAULT_HNSW_M: usize = 16;
/// Default `hnsw_ef_construction`: the candidate list while inserting.
pub const DEFAULT_HNSW_EF_CONSTRUCTION: usize = 200;
/// Default `hnsw_ef_search`: the candidate list while searching (at least
/// four times the search's limit is used).
pub const DEFAULT_HNSW_EF_SEARCH: usize = 128;
/// Default `vector_index_min_points`: collections with fewer points are
/// searched exactly even with `vector_index=hnsw`.
pub const DEFAULT_VECTOR_INDEX_MIN_POINTS: usize = 10_000;

/// The SQLite driver: serves the `sqlite` scheme.
#[derive(Debug, Default, Clone, Copy)]
pub struct SqliteDriver;

#[async_trait::async_trait]
impl Driver for SqliteDriver {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["sqlite"]
    }

    fn params(&self) -> &'static [&'static str] {
        PARAMS
    }

    async fn connect(&self, options: &ConnectOptions) -> Result<Arc<dyn Backend>> {
        Ok(Arc::new(SqliteBackend::open(options).await?))
    }
}

/// A connected SQLite database.
#[derive(Debug)]
pub struct SqliteBackend {
    pool: Arc<Pool>,
    sql: Arc<SqliteSql>,
    kv: Arc<SqliteKv>,
    vectors: Arc<SqliteVectors>,
}

static MEMORY_DBS: AtomicU64 = AtomicU64::new(0);

fn one_of(name: &str, value: Option<&str>, allowed: &[&str]) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) => {
            let lower = v.to_ascii_lowercase();
            if allowed.contains(&lower.as_str()) {
                Ok(Some(lower))
            } else {
                Err(Error::invalid_config(format!(
                    "parameter `{name}` must be one of {}, got {v:?}",
                    allowed.join(", ")
                )))
            }
        }
    }
}

/// Whether `name` is a plain SQL identifier: letters, digits and `_`, not
/// starting with a digit, at most 63 characters.
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl SqliteBackend {
    /// Open the database the options name. See the crate docs for the URL forms.
    pub async fn open(options: &ConnectOptions) -> Result<Self> {
        let config = open_config(options)?;
        let kv_table = options.param("kv_table").unwrap_or(DEFAULT_KV_TABLE);
        if !is_identifier(kv_table) {
            return Err(Error::invalid_config(format!(
                "parameter `kv_table` must be a plain identifier (letters, digits, _), got {kv_table:?}"
            )));
        }
        let mirror_max_bytes = options
            .param_bytes("vector_mirror_max_bytes")?
            .unwrap_or(DEFAULT_VECTOR_MIRROR_MAX_BYTES);
        let index = index_config(options, mirror_max_bytes)?;
        let max_size = options.pool_max_size().unwrap_or(DEFAULT_POOL_SIZE);
        let pool = Arc::new(Pool::new(
            config,
            max_size,
            options.acquire_timeout(),
            options.timeout(),
        ));
        // Open one connection now: a bad path or a file that is not a
        // database fails here, and an in-memory database lives as long as
        // the pool keeps this connection.
        pool.run(|c| {
            c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
                .map_err(map_err)
        })
        .await?;
        Ok(SqliteBackend {
            sql: Arc::new(SqliteSql { pool: pool.clone() }),
            kv: Arc::new(SqliteKv::new(pool.clone(), kv_table)),
            vectors: Arc::new(SqliteVectors::new(pool.clone(), mirror_max_bytes, index)),
            pool,
        })
    }
}

/// The approximate index the URL asks for (`vector_index=hnsw` and its
/// settings), checked whether or not the `hnsw` feature is compiled in.
fn index_config(
    options: &ConnectOptions,
    mirror_max_bytes: u64,
) -> Result<Option<vector::IndexConfig>> {
    let whole = |name: &str, default: usize, min: usize, max: usize| -> Result<usize> {
        match options.param(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    Error::invalid_config(format!(
                        "parameter `{name}` must be a whole number from {min} to {max}, got {v:?}"
                    ))
                }),
        }
    };
    let enabled = one_of(
        "vector_index",
        options.param("vector_index"),
        &["hnsw", "none"],
    )?;
    let m = whole("hnsw_m", DEFAULT_HNSW_M, 2, 128)?;
    let ef_construction = whole(
        "hnsw_ef_construction",
        DEFAULT_HNSW_EF_CONSTRUCTION,
        1,
        10_000,
    )?;
    let ef_search = whole("hnsw_ef_search", DEFAULT_HNSW_EF_SEARCH, 1, 10_000)?;
    let min_points = whole(
        "vector_index_min_points",
        DEFAULT_VECTOR_INDEX_MIN_POINTS,
        0,
        usize::MAX,
    )?;
    if enabled.as_deref() != Some("hnsw") {
        for p in [
            "hnsw_m",
            "hnsw_ef_construction",
            "hnsw_ef_search",
            "vector_index_min_points",
        ] {
            if options.param(p).is_some() {
                return Err(Error::invalid_config(format!(
                    "parameter `{p}` applies only with vector_index=hnsw"
                )));
            }
        }
        return Ok(None);
    }
    if !cfg!(feature = "hnsw") {
        return Err(Error::invalid_config(
            "parameter `vector_index=hnsw` needs dbx-sqlite's cargo feature `hnsw` \
             (`sqlite-hnsw` on the dbx crate), which this build does not have",
        ));
    }
    if mirror_max_bytes == 0 {
        return Err(Error::invalid_config(
            "parameter `vector_index=hnsw` needs the in-memory mirrors it is built from: \
             `vector_mirror_max_bytes` cannot be 0 with it",
        ));
    }
    Ok(Some(vector::IndexConfig {
        m,
        ef_construction,
        ef_search,
        min_points,
    }))
}

/// What the approximate vector index of one database has done (feature
/// `hnsw`; see the crate README).
#[cfg(feature = "hnsw")]
#[cfg_attr(docsrs, doc(cfg(feature = "hnsw")))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VectorIndexStats {
    /// Searches answered through an HNSW graph (the others scanned exactly).
    pub searches_answered: u64,
    /// Graphs built from scratch (first builds and rebuilds).
    pub graphs_built: u64,
    /// Points in the graphs held now, tombstones included.
    pub graph_points: u64,
    /// Of those, the points still in their collections.
    pub live_points: u64,
}

#[cfg(feature = "hnsw")]
#[cfg_attr(docsrs, doc(cfg(feature = "hnsw")))]
impl SqliteBackend {
    /// The approximate index's counters, or `None` without
    /// `vector_index=hnsw` in the URL.
    pub fn vector_index_stats(&self) -> Option<VectorIndexStats> {
        self.vectors.indexes().map(|ix| {
            let (graph_points, live_points) = ix.points();
            VectorIndexStats {
                searches_answered: ix.answered(),
                graphs_built: ix.built(),
                graph_points,
                live_points,
            }
        })
    }
}

fn open_config(options: &ConnectOptions) -> Result<OpenConfig> {
    if options.username().is_some() || options.password().is_some() || options.port().is_some() {
        return Err(Error::invalid_config(
            "sqlite URLs take no user, password or port: write sqlite::memory:, sqlite:relative.db, \
             sqlite://relative/path.db or sqlite:///absolute/path.db",
        ));
    }
    let path = if options.has_authority() {
        format!("{}{}", options.host(), options.path())
    } else {
        options.path().to_owned()
    };
    if path.is_empty() || path == "/" {
        return Err(Error::invalid_config(
            "sqlite URL names no database: write sqlite::memory: or sqlite:path/to/file.db",
        ));
    }
    let memory = path == ":memory:";
    let target = if memory {
        // memdb VFS: one in-memory database shared by every connection of
        // this pool (the name must start with `/`), with ordinary locking.
        let n = MEMORY_DBS.fetch_add(1, Ordering::Relaxed);
        format!("file:/dbx-memory-{}-{n}?vfs=memdb", std::process::id())
    } else if path.starts_with("file:") {
        // Opened with SQLITE_OPEN_URI: keep a file name from being read as a URI.
        format!("./{path}")
    } else {
        path
    };
    let journal_mode = one_of(
        "journal_mode",
        options.param("journal_mode"),
        &["wal", "delete", "truncate", "persist", "memory", "off"],
    )?;
    if memory && journal_mode.as_deref() == Some("wal") {
        return Err(Error::invalid_config(
            "parameter `journal_mode` cannot be wal for an in-memory database",
        ));
    }
    let synchronous = one_of(
        "synchronous",
        options.param("synchronous"),
        &["off", "normal", "full", "extra"],
    )?;
    let busy_timeout = options
        .param_duration("busy_timeout")?
        .unwrap_or(DEFAULT_BUSY_TIMEOUT)
        .min(options.timeout());
    let cache_capacity = match options.param("statement_cache_capacity") {
        None => 128,
        Some(v) => v.parse::<usize>().ok().filter(|n| *n <= 100_000).ok_or_else(|| {
            Error::invalid_config(format!(
                "parameter `statement_cache_capacity` must be a whole number up to 100000, got {v:?}"
            ))
        })?,
    };
    let mmap_size = match options.param("mmap_size") {
        None => None,
        Some(v) => Some(v.parse::<u64>().ok().filter(|n| *n <= MAX_MMAP_SIZE).ok_or_else(|| {
            Error::invalid_config(format!(
                "parameter `mmap_size` must be a whole number of bytes up to {MAX_MMAP_SIZE}, got {v:?}"
            ))
        })?),
    };
    if memory && mmap_size.is_some_and(|n| n > 0) {
        return Err(Error::invalid_config(
            "parameter `mmap_size` applies to database files, not to an in-memory database",
        ));
    }
    Ok(OpenConfig {
        target,
        mmap_size,
        memory,
        busy_timeout,
        journal_mode: journal_mode.or_else(|| (!memory).then(|| "wal".to_owned())),
        synchronous: synchronous.or_else(|| (!memory).then(|| "normal".to_owned())),
        foreign_keys: options.param_bool("foreign_keys")?.unwrap_or(true),
        cache_capacity,
    })
}

#[async_trait::async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn sql(&self) -> Option<Arc<dyn SqlStore>> {
        Some(self.sql.clone())
    }

    fn kv(&self) -> Option<Arc<dyn KvStore>> {
        Some(self.kv.clone())
    }

    fn vectors(&self) -> Option<Arc<dyn VectorStore>> {
        Some(self.vectors.clone())
    }

    async fn ping(&self) -> Result<()> {
        self.pool
            .run(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(map_err))
            .await
    }

    async fn close(&self) {
        self.pool.close();
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        Some(self.pool.status())
    }

    fn enforces_timeouts(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("dbx_kv"));
        assert!(is_identifier("_t1"));
        for bad in [
            "",
            "1t",
            "a-b",
            "a b",
            "t\"; DROP TABLE x; --",
            &"x".repeat(64),
        ] {
            assert!(!is_identifier(bad), "{bad:?}");
        }
    }

    #[test]
    fn index_parameters() {
        let cfg = |u: &str| index_config(&ConnectOptions::from_url(u).unwrap(), 1 << 20);
        assert!(cfg("sqlite::memory:").unwrap().is_none());
        assert!(cfg("sqlite::memory:?vector_index=none").unwrap().is_none());
        let on = cfg("sqlite::memory:?vector_index=hnsw");
        if cfg!(feature = "hnsw") {
            let c = on.unwrap().unwrap();
            assert_eq!(c.m, DEFAULT_HNSW_M);
            assert_eq!(c.ef_search, DEFAULT_HNSW_EF_SEARCH);
            assert_eq!(c.min_points, DEFAULT_VECTOR_INDEX_MIN_POINTS);
            let c = cfg("sqlite::memory:?vector_index=HNSW&hnsw_m=8&hnsw_ef_construction=50&hnsw_ef_search=20&vector_index_min_points=0")
                .unwrap()
                .unwrap();
            assert_eq!(
                (c.m, c.ef_construction, c.ef_search, c.min_points),
                (8, 50, 20, 0)
            );
        } else {
            let e = on.unwrap_err();
            assert_eq!(e.kind(), dbx_core::ErrorKind::InvalidConfig);
            assert!(e.message().contains("feature `hnsw`"), "{e}");
        }
        for (bad, names) in [
            ("vector_index=annoy", "vector_index"),
            ("vector_index=hnsw&hnsw_m=1", "hnsw_m"),
            ("vector_index=hnsw&hnsw_m=1000", "hnsw_m"),
            (
                "vector_index=hnsw&hnsw_ef_construction=0",
                "hnsw_ef_construction",
            ),
            ("vector_index=hnsw&hnsw_ef_search=many", "hnsw_ef_search"),
            (
                "vector_index=hnsw&vector_index_min_points=-5",
                "vector_index_min_points",
            ),
            ("hnsw_m=8", "hnsw_m"),
        ] {
            let e = cfg(&format!("sqlite::memory:?{bad}")).unwrap_err();
            assert_eq!(e.kind(), dbx_core::ErrorKind::InvalidConfig, "{bad}");
            assert!(e.message().contains(&format!("`{names}`")), "{bad}: {e}");
        }
        if cfg!(feature = "hnsw") {
            let e = index_config(
                &ConnectOptions::from_url("sqlite::memory:?vector_index=hnsw").unwrap(),
                0,
            )
            .unwrap_err();
            assert!(e.message().contains("vector_mirror_max_bytes"), "{e}");
        }
    }

    #[test]
    fn url_forms() {
        let cfg = |u: &str| open_config(&ConnectOptions::from_url(u).unwrap());
        assert!(cfg("sqlite::memory:").unwrap().memory);
        assert_eq!(cfg("sqlite:data.db").unwrap().target, "data.db");
        assert_eq!(cfg("sqlite://data/app.db").unwrap().target, "data/app.db");
        assert_eq!(cfg("sqlite:///tmp/app.db").unwrap().target, "/tmp/app.db");
        assert_eq!(cfg("sqlite:file:x.db").unwrap().target, "./file:x.db");
        assert_eq!(
            cfg("sqlite:x.db?mmap_size=268435456").unwrap().mmap_size,
            Some(268_435_456)
        );
        for bad in [
            "sqlite:",
            "sqlite://",
            "sqlite://u:p@host/x.db",
            "sqlite::memory:?journal_mode=wal",
            "sqlite:x.db?journal_mode=fast",
            "sqlite:x.db?synchronous=sometimes",
            "sqlite:x.db?busy_timeout=soon",
            "sqlite:x.db?foreign_keys=perhaps",
            "sqlite:x.db?statement_cache_capacity=-1",
            "sqlite:x.db?mmap_size=big",
            "sqlite::memory:?mmap_size=1000000",
        ] {
            let e = cfg(bad).unwrap_err();
            assert_eq!(e.kind(), dbx_core::ErrorKind::InvalidConfig, "{bad}");
        }
    }
}
