//! SQLite: the conformance suite in memory and on a file, and what only SQLite has.

use dbx::{Dbx, ErrorKind, params};
use dbx_tests::expect_kind;
use std::time::Duration;

async fn memory() -> Dbx {
    Dbx::connect("sqlite::memory:").await.unwrap()
}

/// A fresh database file in a temporary directory kept for the whole test run.
async fn file() -> Dbx {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let path = dir.path().join(format!("{}.db", dbx_tests::table("file")));
    Dbx::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[cfg(feature = "cache")]
async fn memory_cached() -> Dbx {
    Dbx::connect("sqlite::memory:?cache=true").await.unwrap()
}

#[cfg(feature = "cache")]
mod memory_cache_sql {
    dbx_tests::cache_sql_conformance!(crate::sqlite::memory_cached);
}
#[cfg(feature = "cache")]
mod memory_cache_kv {
    dbx_tests::cache_kv_conformance!(crate::sqlite::memory_cached);
}
#[cfg(feature = "cache")]
mod memory_cache_vector {
    dbx_tests::cache_vector_conformance!(crate::sqlite::memory_cached);
}

mod memory_kv {
    dbx_tests::kv_conformance!(crate::sqlite::memory);
}
mod memory_sql {
    dbx_tests::sql_conformance!(crate::sqlite::memory);
}
mod file_kv {
    dbx_tests::kv_conformance!(crate::sqlite::file);
}
mod file_sql {
    dbx_tests::sql_conformance!(crate::sqlite::file);
}
mod memory_vector {
    dbx_tests::vector_conformance!(crate::sqlite::memory);
}
mod file_vector {
    dbx_tests::vector_conformance!(crate::sqlite::file);
}

/// The approximate index on for every collection, however small.
#[cfg(feature = "sqlite-hnsw")]
const HNSW: &str = "vector_index=hnsw&vector_index_min_points=0";

#[cfg(feature = "sqlite-hnsw")]
async fn memory_hnsw() -> Dbx {
    Dbx::connect(&format!("sqlite::memory:?{HNSW}"))
        .await
        .unwrap()
}

#[cfg(feature = "sqlite-hnsw")]
async fn file_hnsw() -> Dbx {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let path = dir.path().join(format!("{}.db", dbx_tests::table("hnsw")));
    Dbx::connect(&format!("sqlite://{}?{HNSW}", path.display()))
        .await
        .unwrap()
}

#[cfg(feature = "sqlite-hnsw")]
mod memory_hnsw_vector {
    dbx_tests::vector_conformance!(crate::sqlite::memory_hnsw);
}
#[cfg(feature = "sqlite-hnsw")]
mod file_hnsw_vector {
    dbx_tests::vector_conformance!(crate::sqlite::file_hnsw);
}

/// The conformance runs above really search through the index: the same
/// connection answers a conformance-sized search through it.
#[cfg(feature = "sqlite-hnsw")]
#[tokio::test]
async fn hnsw_urls_answer_searches_through_the_index() {
    use dbx::vector::{Distance, Point, Search};
    for db in [memory_hnsw().await, file_hnsw().await] {
        let c = db.vectors().unwrap().collection("hnsw_used");
        c.create(8, Distance::Cosine).await.unwrap();
        let points: Vec<Point> = (0..40u64)
            .map(|i| Point::new(i, dbx_tests::vector::pseudo(i, 8)))
            .collect();
        c.upsert(&points).await.unwrap();
        let stats = || {
            db.database()
                .backend_as::<dbx::sqlite::SqliteBackend>()
                .unwrap()
                .vector_index_stats()
                .unwrap()
        };
        assert_eq!(stats().searches_answered, 0);
        let hits = c
            .search(&Search::new(dbx_tests::vector::pseudo(7, 8), 3))
            .await
            .unwrap();
        assert_eq!(hits[0].id, dbx::vector::PointId::Num(7));
        assert_eq!(stats().searches_answered, 1);
        assert_eq!(stats().graphs_built, 1);
        assert_eq!(stats().live_points, 40);
    }
    // Without the parameter there is no index.
    let plain = memory().await;
    let backend = plain.database().backend_as::<dbx::sqlite::SqliteBackend>();
    assert!(backend.unwrap().vector_index_stats().is_none());
}

#[cfg(feature = "sqlite-hnsw")]
#[tokio::test]
async fn bad_hnsw_parameters_are_invalid_config() {
    for url in [
        "sqlite::memory:?vector_index=faiss",
        "sqlite::memory:?vector_index=hnsw&hnsw_m=0",
        "sqlite::memory:?vector_index=hnsw&hnsw_ef_search=",
        "sqlite::memory:?vector_index=hnsw&hnsw_ef_construction=lots",
        "sqlite::memory:?vector_index=hnsw&vector_index_min_points=1.5",
        "sqlite::memory:?hnsw_ef_search=10",
        "sqlite::memory:?vector_index=hnsw&vector_mirror_max_bytes=0",
    ] {
        expect_kind(Dbx::connect(url).await, ErrorKind::InvalidConfig);
    }
}

#[tokio::test]
async fn memory_database_is_shared_by_all_connections_and_private_to_its_handle() {
    use futures_util::StreamExt;
    let db = Dbx::builder("sqlite::memory:")
        .pool_max_size(4)
        .connect()
        .await
        .unwrap();
    let sql = db.sql().unwrap();
    sql.execute("CREATE TABLE shared (n INTEGER)", params![])
        .await
        .unwrap();
    sql.execute(
        "INSERT INTO shared WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT x FROM c",
        params![],
    )
    .await
    .unwrap();
    // Two open streams (more rows than they buffer) hold two connections;
    // a third statement needs a third.
    let mut s1 = sql.query_stream("SELECT n FROM shared ORDER BY n", params![]);
    let mut s2 = sql.query_stream("SELECT n FROM shared ORDER BY n DESC", params![]);
    assert_eq!(s1.next().await.unwrap().unwrap().get::<i64>(0).unwrap(), 1);
    assert_eq!(
        s2.next().await.unwrap().unwrap().get::<i64>(0).unwrap(),
        1000
    );
    let n: i64 = sql
        .query_one_as("SELECT COUNT(*) FROM shared", params![])
        .await
        .unwrap();
    assert_eq!(n, 1000);
    assert!(
        db.pool_status().unwrap().size >= 3,
        "{:?}",
        db.pool_status()
    );
    drop((s1, s2));
    // Another handle has a database of its own.
    let other = Dbx::connect("sqlite::memory:").await.unwrap();
    expect_kind(
        other
            .sql()
            .unwrap()
            .query("SELECT * FROM shared", params![])
            .await,
        ErrorKind::Query,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_query_is_interrupted_at_the_timeout() {
    let db = Dbx::builder("sqlite::memory:")
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let sql = db.sql().unwrap();
    let endless =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c";
    let e = expect_kind(sql.query(endless, params![]).await, ErrorKind::Timeout);
    assert!(e.is_transient());
    assert!(e.to_string().contains("deadline"), "{e}");
    // The connection is fine afterwards.
    assert_eq!(
        sql.query_one_as::<i64>("SELECT 41 + 1", params![])
            .await
            .unwrap(),
        42
    );
}

#[tokio::test(flavor = "current_thread")]
async fn long_query_is_interrupted_on_current_thread_runtime_too() {
    let db = Dbx::builder("sqlite::memory:")
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let endless =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c";
    expect_kind(
        db.sql().unwrap().query(endless, params![]).await,
        ErrorKind::Timeout,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_wait_is_bounded_by_acquire_timeout() {
    let db = Dbx::builder("sqlite::memory:")
        .pool_max_size(1)
        .acquire_timeout(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let sql = db.sql().unwrap();
    let tx = sql.begin().await.unwrap();
    let e = expect_kind(
        sql.query("SELECT 1", params![]).await,
        ErrorKind::PoolTimeout,
    );
    assert!(e.is_transient());
    let status = db.pool_status().unwrap();
    assert_eq!((status.max_size, status.in_use), (1, 1));
    drop(tx);
    sql.query("SELECT 1", params![]).await.unwrap();
}

#[tokio::test]
async fn sqlite_placeholders_other_than_dollar_numbers_are_rejected() {
    let db = memory().await;
    let sql = db.sql().unwrap();
    for q in [
        "SELECT ?",
        "SELECT ?1",
        "SELECT :name",
        "SELECT @name",
        "SELECT $name",
        "SELECT $0",
    ] {
        // Twice, and through query_one: the statement text stays rejected.
        for _ in 0..2 {
            let e = expect_kind(sql.query(q, params![1]).await, ErrorKind::InvalidInput);
            assert!(e.to_string().contains("$1..$N"), "{q}: {e}");
        }
        let e = expect_kind(sql.query_one(q, params![1]).await, ErrorKind::InvalidInput);
        assert!(e.to_string().contains("$1..$N"), "{q}: {e}");
    }
    expect_kind(
        sql.execute("SELECT 1; SELECT 2", params![]).await,
        ErrorKind::InvalidInput,
    );
}

#[tokio::test]
async fn invalid_utf8_text_is_a_decode_error() {
    let db = memory().await;
    let e = expect_kind(
        db.sql()
            .unwrap()
            .query("SELECT CAST(X'FF00' AS TEXT) AS t", params![])
            .await,
        ErrorKind::Decode,
    );
    assert!(e.to_string().contains("UTF-8"), "{e}");
}

#[tokio::test]
async fn bad_urls_and_parameters_are_invalid_config() {
    for url in [
        "sqlite:",
        "sqlite://user:pw@host/x.db",
        "sqlite::memory:?kv_table=bad-name",
        "sqlite::memory:?kv_table=x%22%3B%20DROP%20TABLE%20y",
        "sqlite::memory:?bogus=1",
        "sqlite::memory:?timeout=never",
        "sqlite::memory:?pool_max_size=0",
        "sqlite::memory:?vector_mirror_max_bytes=lots",
        "sqlite::memory:?vector_mirror_max_bytes=-1",
        "sqlite::memory:?vector_mirror_max_bytes=1.5GiB",
        "mysql://localhost/db",
        "not a url",
    ] {
        let e = expect_kind(Dbx::connect(url).await, ErrorKind::InvalidConfig);
        assert!(!e.to_string().contains("pw"), "{e}");
    }
    let e = expect_kind(
        Dbx::connect("mysql://u:hunter2@h/db").await,
        ErrorKind::InvalidConfig,
    );
    assert!(
        e.to_string().contains("available schemes: ") && e.to_string().contains("sqlite"),
        "{e}"
    );
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[tokio::test]
async fn unopenable_or_foreign_files_fail_to_connect() {
    let e = expect_kind(
        Dbx::connect("sqlite:///nonexistent-dir/sub/x.db").await,
        ErrorKind::Connect,
    );
    assert_eq!(e.operation(), Some("connect"));
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    expect_kind(
        Dbx::connect(&format!("sqlite://{}", junk.display())).await,
        ErrorKind::Connect,
    );
}

#[tokio::test]
async fn data_survives_reopening_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keep.db").display());
    let db = Dbx::connect(&url).await.unwrap();
    db.kv().unwrap().set("k", b"v", None).await.unwrap();
    db.sql()
        .unwrap()
        .execute("CREATE TABLE t (x TEXT)", params![])
        .await
        .unwrap();
    db.sql()
        .unwrap()
        .execute("INSERT INTO t VALUES ($1)", params!["kept"])
        .await
        .unwrap();
    db.close().await;
    let again = Dbx::connect(&url).await.unwrap();
    assert_eq!(
        again.kv().unwrap().get("k").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
    let x: String = again
        .sql()
        .unwrap()
        .query_one_as("SELECT x FROM t", params![])
        .await
        .unwrap();
    assert_eq!(x, "kept");
}

#[tokio::test]
async fn custom_kv_table_is_used() {
    let db = Dbx::connect("sqlite::memory:?kv_table=my_cache")
        .await
        .unwrap();
    db.kv().unwrap().set("k", b"v", None).await.unwrap();
    let n: i64 = db
        .sql()
        .unwrap()
        .query_one_as("SELECT COUNT(*) FROM my_cache", params![])
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn expired_keys_are_swept_from_the_table() {
    let db = memory().await;
    let kv = db.kv().unwrap();
    for i in 0..20 {
        kv.set(&format!("old{i}"), b"v", Some(Duration::from_millis(10)))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A write after the sweep interval sweeps the expired rows.
    kv.set("trigger", b"v", None).await.unwrap();
    let n: i64 = db
        .sql()
        .unwrap()
        .query_one_as("SELECT COUNT(*) FROM dbx_kv", params![])
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn health_reports_latency_and_pool() {
    let db = memory().await;
    let h = db.health().await.unwrap();
    assert_eq!(h.backend, "sqlite");
    let pool = h.pool.unwrap();
    assert!(pool.size >= 1 && pool.max_size == dbx::sqlite::DEFAULT_POOL_SIZE);
    let shown = format!("{db:?}");
    assert!(shown.contains("sqlite::memory:"), "{shown}");
}

#[tokio::test]
async fn works_outside_and_across_runtimes() {
    // A Dbx created on one runtime keeps working on another.
    let db = std::thread::spawn(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(memory())
    })
    .join()
    .unwrap();
    db.kv().unwrap().set("k", b"v", None).await.unwrap();
    assert!(db.kv().unwrap().exists("k").await.unwrap());
}

/// A query that keeps SQLite busy for a while (well under the default timeout).
const BUSY_QUERY: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT COUNT(*) FROM c";

#[tokio::test(flavor = "current_thread")]
async fn close_lets_operations_in_flight_finish() {
    let db = memory().await;
    let sql = db.sql().unwrap().clone();
    let op = tokio::spawn(async move { sql.query_one_as::<i64>(BUSY_QUERY, params![]).await });
    // Let the query start on its blocking thread.
    while db.database().in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    assert!(db.close().await, "close waited for the query");
    assert_eq!(op.await.unwrap().unwrap(), 3_000_000);
    expect_kind(
        db.sql().unwrap().query("SELECT 1", params![]).await,
        ErrorKind::Closed,
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_dropped_query_returns_its_connection() {
    let db = Dbx::builder("sqlite::memory:")
        .pool_max_size(1)
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let sql = db.sql().unwrap();
    let endless =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c";
    // The caller gives up long before the statement's deadline.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(20), sql.query(endless, params![])).await;
    assert!(gave_up.is_err());
    assert_eq!(db.database().in_flight(), 0);
    // The statement is interrupted at its deadline on the blocking thread and
    // its connection goes back to the pool: the only connection is usable again.
    assert_eq!(
        sql.query_one_as::<i64>("SELECT 7", params![])
            .await
            .unwrap(),
        7
    );
    assert_eq!(db.pool_status().unwrap().in_use, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transaction_future_rolls_back() {
    let db = Dbx::builder("sqlite::memory:")
        .pool_max_size(1)
        .connect()
        .await
        .unwrap();
    let sql = db.sql().unwrap();
    sql.execute("CREATE TABLE t (x INTEGER)", params![])
        .await
        .unwrap();
    let work = sql.transaction(async |tx| {
        tx.execute("INSERT INTO t VALUES (1)", params![]).await?;
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(50), work)
            .await
            .is_err()
    );
    let n: i64 = sql
        .query_one_as("SELECT COUNT(*) FROM t", params![])
        .await
        .unwrap();
    assert_eq!(n, 0, "the abandoned transaction was rolled back");
}

#[tokio::test]
async fn transaction_closure_commits_or_rolls_back() {
    let db = memory().await;
    let sql = db.sql().unwrap();
    sql.execute(
        "CREATE TABLE acct (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))",
        params![],
    )
    .await
    .unwrap();
    sql.execute("INSERT INTO acct VALUES (1, 100), (2, 0)", params![])
        .await
        .unwrap();
    let transfer = |amount: i64| {
        let sql = sql.clone();
        async move {
            sql.transaction(async |tx| {
                tx.execute(
                    "UPDATE acct SET balance = balance + $1 WHERE id = 2",
                    params![amount],
                )
                .await?;
                tx.execute(
                    "UPDATE acct SET balance = balance - $1 WHERE id = 1",
                    params![amount],
                )
                .await
            })
            .await
        }
    };
    transfer(30).await.unwrap();
    expect_kind(transfer(500).await, ErrorKind::Conflict);
    let balances: Vec<i64> = sql
        .query_as("SELECT balance FROM acct ORDER BY id", params![])
        .await
        .unwrap();
    assert_eq!(balances, vec![70, 30], "the failed transfer left no trace");
}

#[tokio::test]
async fn health_reports_the_breaker() {
    let db = memory().await;
    assert_eq!(
        db.health().await.unwrap().breaker,
        dbx::BreakerState::Closed
    );
    expect_kind(
        Dbx::connect("sqlite::memory:?breaker_failure_rate=2").await,
        ErrorKind::InvalidConfig,
    );
    expect_kind(
        Dbx::connect("sqlite::memory:?retry_min_backoff=1s&retry_max_backoff=10ms").await,
        ErrorKind::InvalidConfig,
    );
}

/// A database of one pooled connection with `t (a INTEGER, b TEXT)` holding `(1, 'x')`.
async fn one_connection_with_table_t(url: &str) -> Dbx {
    let db = Dbx::builder(url).pool_max_size(1).connect().await.unwrap();
    let sql = db.sql().unwrap();
    sql.execute("CREATE TABLE t (a INTEGER, b TEXT)", params![])
        .await
        .unwrap();
    sql.execute("INSERT INTO t VALUES (1, 'x')", params![])
        .await
        .unwrap();
    db
}

/// The column names of the first row of `q`.
async fn columns_of(sql: &dbx::Sql, q: &str) -> Vec<String> {
    sql.query_one(q, params![])
        .await
        .unwrap()
        .columns()
        .to_vec()
}

#[tokio::test]
async fn result_columns_follow_schema_changes() {
    let db = one_connection_with_table_t("sqlite::memory:").await;
    let sql = db.sql().unwrap();
    let q = "SELECT * FROM t";
    assert_eq!(columns_of(sql, q).await, ["a", "b"]);
    sql.execute("ALTER TABLE t ADD COLUMN c BOOLEAN", params![])
        .await
        .unwrap();
    sql.execute("UPDATE t SET c = 1", params![]).await.unwrap();
    let row = sql.query_one(q, params![]).await.unwrap();
    assert_eq!(row.columns(), ["a", "b", "c"]);
    assert_eq!(row.value("c").unwrap(), &dbx::Value::Bool(true));
    sql.execute("ALTER TABLE t RENAME COLUMN b TO renamed", params![])
        .await
        .unwrap();
    assert_eq!(columns_of(sql, q).await, ["a", "renamed", "c"]);
}

/// The cached description of a statement's columns is trusted only for the
/// same prepared statement, not re-prepared: a statement evicted from
/// dbx's statement cache and prepared afresh after a schema change (here run by
/// `execute`, then by `query`, so its run count alone would look like the
/// old statement's next run) shows its new columns.
#[tokio::test]
async fn result_columns_follow_schema_changes_across_statement_cache_evictions() {
    let db = one_connection_with_table_t("sqlite::memory:?statement_cache_capacity=1").await;
    let sql = db.sql().unwrap();
    let q = "SELECT * FROM t";
    assert_eq!(columns_of(sql, q).await, ["a", "b"]);
    // Evicts `q` from a cache of one, changes the table's shape.
    sql.execute("ALTER TABLE t RENAME COLUMN b TO renamed", params![])
        .await
        .unwrap();
    assert_eq!(sql.execute(q, params![]).await.unwrap(), 1);
    assert_eq!(columns_of(sql, q).await, ["a", "renamed"]);
    // And again with no run in between.
    sql.execute("ALTER TABLE t RENAME COLUMN a TO first", params![])
        .await
        .unwrap();
    assert_eq!(columns_of(sql, q).await, ["first", "renamed"]);
    // Streams and empty results take part too.
    sql.execute("DELETE FROM t", params![]).await.unwrap();
    assert!(sql.query(q, params![]).await.unwrap().is_empty());
    sql.execute("INSERT INTO t VALUES (2, 'y')", params![])
        .await
        .unwrap();
    sql.execute("ALTER TABLE t RENAME COLUMN renamed TO second", params![])
        .await
        .unwrap();
    let streamed: Vec<dbx::Row> =
        futures_util::TryStreamExt::try_collect(sql.query_stream(q, params![]))
            .await
            .unwrap();
    assert_eq!(streamed[0].columns(), ["first", "second"]);
    assert_eq!(columns_of(sql, q).await, ["first", "second"]);
}

/// Statements run right whatever the statement cache holds: with no cache
/// (each prepared afresh), and with a cache smaller than the statements in
/// use (the least recently used is finalized and prepared again), each one's
/// parameters, results and errors stay its own.
#[tokio::test]
async fn statements_run_right_with_no_cache_and_past_its_capacity() {
    for capacity in [0, 2] {
        let url = format!("sqlite::memory:?statement_cache_capacity={capacity}");
        let db = one_connection_with_table_t(&url).await;
        let sql = db.sql().unwrap();
        let texts = [
            "SELECT a + $1 FROM t",
            "SELECT b || $1 FROM t",
            "SELECT $2 || b || $1 FROM t",
        ];
        for round in 0..3i64 {
            let n: i64 = sql.query_one_as(texts[0], params![round]).await.unwrap();
            assert_eq!(n, 1 + round, "capacity {capacity}");
            let s: String = sql.query_one_as(texts[1], params![round]).await.unwrap();
            assert_eq!(s, format!("x{round}"), "capacity {capacity}");
            let s: String = sql
                .query_one_as(texts[2], params!["'; DROP TABLE t; --", round])
                .await
                .unwrap();
            assert_eq!(
                s,
                format!("{round}x'; DROP TABLE t; --"),
                "capacity {capacity}"
            );
            // A run with a parameter missing is an error, never a run with
            // the value of the run before.
            let e = sql.query_one(texts[1], params![]).await.unwrap_err();
            assert_eq!(
                e.kind(),
                dbx::ErrorKind::InvalidInput,
                "capacity {capacity}: {e}"
            );
        }
        let n: i64 = sql
            .query_one_as("SELECT count(*) FROM t", params![])
            .await
            .unwrap();
        assert_eq!(n, 1, "capacity {capacity}");
    }
}

/// A table changed by another connection (another handle on the same file):
/// SQLite re-prepares the cached statement, and its new columns show.
#[tokio::test]
async fn result_columns_follow_schema_changes_made_elsewhere() {
    let url = file_url("reshaped-elsewhere.db");
    let a = Dbx::connect(&url).await.unwrap();
    let b = Dbx::connect(&url).await.unwrap();
    let (sa, sb) = (a.sql().unwrap(), b.sql().unwrap());
    sa.execute("CREATE TABLE t (a INTEGER, b TEXT)", params![])
        .await
        .unwrap();
    sa.execute("INSERT INTO t VALUES (1, 'x')", params![])
        .await
        .unwrap();
    let q = "SELECT * FROM t";
    for _ in 0..3 {
        assert_eq!(columns_of(sa, q).await, ["a", "b"]);
    }
    sb.execute("ALTER TABLE t RENAME COLUMN b TO renamed", params![])
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(columns_of(sa, q).await, ["a", "renamed"]);
    }
}

// --- vectors ---------------------------------------------------------------------

fn file_url(name: &str) -> String {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    format!("sqlite://{}", dir.path().join(name).display())
}

#[tokio::test]
async fn vectors_are_stored_in_four_bytes_per_component() {
    use dbx::{Distance, Point};
    let db = memory().await;
    let docs = db.vectors().unwrap().collection("Blobs");
    docs.create(5, Distance::Cosine).await.unwrap();
    docs.upsert(&[
        Point::new(7u64, vec![3.0, 4.0, 0.0, 0.0, 0.0])
            .with_payload(dbx::serde_json::json!({"k": "v"}))
            .unwrap(),
        Point::new(dbx::uuid::Uuid::from_u128(9), vec![1.0; 5]),
    ])
    .await
    .unwrap();
    // Upper-case letters are escaped: SQLite table names ignore case.
    let rows: Vec<(i64, String, i64, String, String)> = db
        .sql()
        .unwrap()
        .query_as(
            r#"SELECT length(vector), typeof(vector), length(id), typeof(payload), payload
               FROM "dbx_vec_^blobs" ORDER BY id"#,
            params![],
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (20, "blob".into(), 9, "text".into(), r#"{"k":"v"}"#.into()),
            (20, "blob".into(), 17, "text".into(), "{}".into()),
        ]
    );
    // Stored normalised (cosine), and read back exactly as stored.
    let p = docs.get_one(7u64).await.unwrap().unwrap();
    assert_eq!(p.vector.unwrap(), vec![0.6, 0.8, 0.0, 0.0, 0.0]);
    // A collection whose name differs only in case is another collection.
    let lower = db.vectors().unwrap().collection("blobs");
    lower.create(2, Distance::Dot).await.unwrap();
    assert_eq!(lower.count().await.unwrap(), 0);
    assert_eq!(docs.count().await.unwrap(), 2);
    assert_eq!(
        db.vectors().unwrap().list().await.unwrap(),
        vec!["Blobs".to_owned(), "blobs".to_owned()]
    );
}

#[tokio::test]
async fn vector_collections_survive_reopening_a_file() {
    use dbx::{Condition, Distance, Filter, Point, Search};
    let url = file_url("vectors-reopen.db");
    {
        let db = Dbx::connect(&url).await.unwrap();
        let c = db.vectors().unwrap().collection("docs");
        c.create(8, Distance::Euclid).await.unwrap();
        let points: Vec<Point> = (0..50u64)
            .map(|i| {
                Point::new(i, dbx_tests::vector::pseudo(i, 8))
                    .with_payload(dbx::serde_json::json!({"even": i % 2 == 0}))
                    .unwrap()
            })
            .collect();
        c.upsert(&points).await.unwrap();
        db.close().await;
    }
    let db = Dbx::connect(&url).await.unwrap();
    let c = db.vectors().unwrap().collection("docs");
    let info = c.info().await.unwrap().unwrap();
    assert_eq!(
        (info.dimension, info.distance, info.points),
        (8, Distance::Euclid, 50)
    );
    let even = Filter::new().must(Condition::eq("even", true));
    assert_eq!(c.count_where(&even).await.unwrap(), 25);
    let hits = c
        .search(&Search::new(dbx_tests::vector::pseudo(10, 8), 3).filter(even))
        .await
        .unwrap();
    assert_eq!(hits[0].id, dbx::PointId::Num(10));
    assert_eq!(hits[0].score, 0.0);
    assert!(
        hits.iter()
            .all(|h| h.payload.as_ref().unwrap()["even"] == true)
    );
    assert_eq!(
        c.get_one(49u64).await.unwrap().unwrap().vector.unwrap(),
        dbx_tests::vector::pseudo(49, 8)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_vector_search_is_interrupted_at_the_timeout() {
    use dbx::{Distance, Point, Search};
    let url = file_url("vectors-timeout.db");
    let dim = 256;
    let query = Search::new(dbx_tests::vector::pseudo(u64::MAX, dim), 10).with_payload(false);
    let elapsed = {
        let db = Dbx::connect(&url).await.unwrap();
        let c = db.vectors().unwrap().collection("slow");
        c.create(dim, Distance::Dot).await.unwrap();
        let points: Vec<Point> = (0..8_000u64)
            .map(|i| Point::new(i, dbx_tests::vector::pseudo(i, dim)))
            .collect();
        c.upsert(&points).await.unwrap();
        let start = std::time::Instant::now();
        assert_eq!(c.search(&query).await.unwrap().len(), 10);
        let elapsed = start.elapsed();
        db.close().await;
        elapsed
    };
    if elapsed < Duration::from_millis(8) {
        // Too fast here (an optimised build) to interrupt reliably; the
        // debug build of the test suite takes ~60 ms.
        return;
    }
    let db = Dbx::builder(&url)
        .timeout(elapsed / 8)
        .connect()
        .await
        .unwrap();
    let c = db.vectors().unwrap().collection("slow");
    let e = expect_kind(c.search(&query).await, ErrorKind::Timeout);
    assert!(e.to_string().contains("deadline"), "{e}");
    // The connection is fine afterwards.
    assert_eq!(c.info().await.unwrap().unwrap().dimension, dim);
}

/// The ids of a search's hits.
fn hit_ids(hits: &[dbx::ScoredPoint]) -> Vec<dbx::PointId> {
    hits.iter().map(|h| h.id).collect()
}

/// The `k` ids nearest to `query` by dot product among `points`, best
/// first (ties by id): the reference a search must match.
fn nearest_by_dot(points: &[(u64, Vec<f32>)], query: &[f32], k: usize) -> Vec<dbx::PointId> {
    let mut scored: Vec<(f32, u64)> = points
        .iter()
        .map(|(id, v)| (v.iter().zip(query).map(|(a, b)| a * b).sum::<f32>(), *id))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(k)
        .map(|(_, id)| dbx::PointId::Num(id))
        .collect()
}

/// Search results of one handle follow every write made through another
/// handle on the same file (another pool, as another process would be):
/// upserts, overwrites, deletes by id and by filter, a drop and a re-create
/// with another dimension, and one with the same dimension and as many
/// writes (so the same number of generation bumps), for every mirror bound:
/// the default, one too small for the collection (row scans) and mirrors off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vector_searches_see_writes_made_through_another_handle() {
    use dbx::{Condition, Distance, Filter, Point, PointId, Search};
    for (i, params) in [
        "",
        "?vector_mirror_max_bytes=2000",
        "?vector_mirror_max_bytes=0",
    ]
    .into_iter()
    .enumerate()
    {
        let url = file_url(&format!("vectors-two-handles-{i}.db"));
        let reader = Dbx::connect(&format!("{url}{params}")).await.unwrap();
        let writer = Dbx::connect(&url).await.unwrap();
        let r = reader.vectors().unwrap().collection("docs");
        let w = writer.vectors().unwrap().collection("docs");
        w.create(8, Distance::Dot).await.unwrap();
        let mut points: Vec<(u64, Vec<f32>)> = (0..200u64)
            .map(|i| (i, dbx_tests::vector::pseudo(i + 1, 8)))
            .collect();
        let upsert = |points: &[(u64, Vec<f32>)]| -> Vec<Point> {
            points
                .iter()
                .map(|(id, v)| {
                    Point::new(*id, v.clone())
                        .with_payload(dbx::serde_json::json!({"odd": id % 2 == 1}))
                        .unwrap()
                })
                .collect()
        };
        w.upsert(&upsert(&points)).await.unwrap();
        let query = dbx_tests::vector::pseudo(9999, 8);
        let search = Search::new(query.clone(), 5).with_payload(false);
        // Twice: the second search is served by the mirror the first loaded.
        for _ in 0..2 {
            let hits = r.search(&search).await.unwrap();
            assert_eq!(
                hit_ids(&hits),
                nearest_by_dot(&points, &query, 5),
                "{params}"
            );
        }
        // A new point that beats all others.
        let best: Vec<f32> = query.iter().map(|x| x * 10.0).collect();
        w.upsert(&[Point::new(1000u64, best.clone())])
            .await
            .unwrap();
        points.push((1000, best));
        let hits = r.search(&search).await.unwrap();
        assert_eq!(hits[0].id, PointId::Num(1000), "{params}");
        assert_eq!(
            hit_ids(&hits),
            nearest_by_dot(&points, &query, 5),
            "{params}"
        );
        // Overwrite the runner-up so it becomes the worst of all.
        let second = hits[1].id;
        let PointId::Num(second_n) = second else {
            unreachable!()
        };
        let worst: Vec<f32> = query.iter().map(|x| x * -10.0).collect();
        w.upsert(&[Point::new(second_n, worst.clone())])
            .await
            .unwrap();
        points.iter_mut().find(|(id, _)| *id == second_n).unwrap().1 = worst;
        let hits = r.search(&search).await.unwrap();
        assert!(!hit_ids(&hits).contains(&second), "{params}");
        assert_eq!(
            hit_ids(&hits),
            nearest_by_dot(&points, &query, 5),
            "{params}"
        );
        // Delete by id.
        w.delete(&[PointId::Num(1000)]).await.unwrap();
        points.retain(|(id, _)| *id != 1000);
        let hits = r.search(&search).await.unwrap();
        assert_eq!(
            hit_ids(&hits),
            nearest_by_dot(&points, &query, 5),
            "{params}"
        );
        // Delete by filter: only even ids are left.
        w.delete_where(&Filter::new().must(Condition::eq("odd", true)))
            .await
            .unwrap();
        points.retain(|(id, _)| id % 2 == 0);
        let all = r
            .search(&Search::new(query.clone(), 500).with_payload(false))
            .await
            .unwrap();
        assert_eq!(all.len(), points.len(), "{params}");
        assert_eq!(
            hit_ids(&all),
            nearest_by_dot(&points, &query, points.len()),
            "{params}"
        );
        // A filtered search reads the payloads as they are now.
        let even = Filter::new().must(Condition::eq("odd", false));
        let hits = r.search(&search.clone().filter(even)).await.unwrap();
        assert_eq!(
            hit_ids(&hits),
            nearest_by_dot(&points, &query, 5),
            "{params}"
        );
        // Dropped and created again with another dimension: the reader's
        // old queries are refused, new ones answered from the new points.
        w.drop().await.unwrap();
        w.create(3, Distance::Dot).await.unwrap();
        expect_kind(r.search(&search).await, ErrorKind::InvalidInput);
        w.upsert(&[Point::new(1u64, vec![1.0, 0.0, 0.0])])
            .await
            .unwrap();
        let hits = r
            .search(&Search::new(vec![1.0, 0.0, 0.0], 5))
            .await
            .unwrap();
        assert_eq!(hit_ids(&hits), [PointId::Num(1)], "{params}");
        // Dropped and created again with the same dimension, written the
        // same number of times: other points, found.
        w.drop().await.unwrap();
        expect_kind(
            r.search(&Search::new(vec![1.0, 0.0, 0.0], 5)).await,
            ErrorKind::NotFound,
        );
        w.create(3, Distance::Dot).await.unwrap();
        w.upsert(&[Point::new(2u64, vec![0.5, 0.0, 0.0])])
            .await
            .unwrap();
        let hits = r
            .search(&Search::new(vec![1.0, 0.0, 0.0], 5))
            .await
            .unwrap();
        assert_eq!(hit_ids(&hits), [PointId::Num(2)], "{params}");
        assert_eq!(hits[0].score, 0.5);
        // Writes through the reader itself are seen too.
        r.upsert(&[Point::new(3u64, vec![2.0, 0.0, 0.0])])
            .await
            .unwrap();
        let hits = r
            .search(&Search::new(vec![1.0, 0.0, 0.0], 5))
            .await
            .unwrap();
        assert_eq!(
            hit_ids(&hits),
            [PointId::Num(3), PointId::Num(2)],
            "{params}"
        );
        reader.close().await;
        writer.close().await;
    }
}

/// A catalog written before the generation column existed gets the column
/// (0 for every collection) and its collections are searched and followed
/// as any other.
#[tokio::test]
async fn vector_catalogs_without_a_generation_are_upgraded() {
    use dbx::{Point, PointId, Search};
    let url = file_url("vectors-old-catalog.db");
    {
        let db = Dbx::connect(&url).await.unwrap();
        let sql = db.sql().unwrap();
        sql.execute(
            "CREATE TABLE dbx_vector_collections (name TEXT PRIMARY KEY NOT NULL, \
             dimension INTEGER NOT NULL, distance TEXT NOT NULL)",
            params![],
        )
        .await
        .unwrap();
        sql.execute(
            "INSERT INTO dbx_vector_collections VALUES ('old', 2, 'dot')",
            params![],
        )
        .await
        .unwrap();
        sql.execute(
            r#"CREATE TABLE "dbx_vec_old" (id BLOB PRIMARY KEY NOT NULL, vector BLOB NOT NULL, payload TEXT NOT NULL)"#,
            params![],
        )
        .await
        .unwrap();
        db.close().await;
    }
    let db = Dbx::connect(&url).await.unwrap();
    let c = db.vectors().unwrap().collection("old");
    assert_eq!(c.count().await.unwrap(), 0);
    c.upsert(&[Point::new(1u64, vec![1.0, 0.0])]).await.unwrap();
    let hits = c.search(&Search::new(vec![1.0, 0.0], 3)).await.unwrap();
    assert_eq!(hit_ids(&hits), [PointId::Num(1)]);
    c.upsert(&[Point::new(2u64, vec![2.0, 0.0])]).await.unwrap();
    let hits = c.search(&Search::new(vec![1.0, 0.0], 3)).await.unwrap();
    assert_eq!(hit_ids(&hits), [PointId::Num(2), PointId::Num(1)]);
    let g: i64 = db
        .sql()
        .unwrap()
        .query_one_as(
            "SELECT generation FROM dbx_vector_collections WHERE name = 'old'",
            params![],
        )
        .await
        .unwrap();
    assert_eq!(g, 2);
}

#[tokio::test]
async fn mmap_size_applies_to_every_connection() {
    let url = format!("{}?mmap_size=1048576", file_url("mmap.db"));
    let db = Dbx::builder(&url).pool_max_size(2).connect().await.unwrap();
    let sql = db.sql().unwrap();
    // Hold one connection in a transaction so the query opens the second.
    let mut tx = sql.begin().await.unwrap();
    let in_tx: i64 = tx
        .query_one_as("PRAGMA mmap_size", params![])
        .await
        .unwrap();
    let other: i64 = sql
        .query_one_as("PRAGMA mmap_size", params![])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!((in_tx, other), (1_048_576, 1_048_576));
    expect_kind(
        Dbx::connect("sqlite::memory:?mmap_size=1048576").await,
        ErrorKind::InvalidConfig,
    );
}

/// On a current-thread runtime a statement runs inline for up to 2 ms, then
/// is interrupted, rolled back and run again on a blocking thread: a long
/// read gives the right answer and a long write is applied exactly once.
#[tokio::test(flavor = "current_thread")]
async fn long_statements_on_current_thread_move_off_the_runtime_once() {
    let db = memory().await;
    let sql = db.sql().unwrap();
    sql.execute("CREATE TABLE once (n INTEGER)", params![])
        .await
        .unwrap();
    // Well over the inline budget on any machine.
    let n: i64 = sql.query_one_as(BUSY_QUERY, params![]).await.unwrap();
    assert_eq!(n, 3_000_000);
    sql.execute(
        "INSERT INTO once WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) SELECT x FROM c",
        params![],
    )
    .await
    .unwrap();
    let (count, sum): (i64, i64) = sql
        .query_one_as("SELECT COUNT(*), SUM(n) FROM once", params![])
        .await
        .unwrap();
    assert_eq!((count, sum), (300_000, 300_000 * 300_001 / 2));
    // Meanwhile other tasks on the runtime's only thread keep running.
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    tokio::task::yield_now().await;
    let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
    let n: i64 = sql.query_one_as(BUSY_QUERY, params![]).await.unwrap();
    let during = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
    ticker.abort();
    assert_eq!(n, 3_000_000);
    assert!(during >= 3, "the runtime thread was held: {during} ticks");
}

/// A job that writes inside a transaction (a vector upsert: one INSERT per
/// point, one commit) and runs past the inline budget is rolled back whole
/// at the budget and run again on a blocking thread, not failed: its
/// completed INSERTs were never committed. Counting changed rows instead of
/// commits failed it with `Timeout` after three attempts.
#[tokio::test(flavor = "current_thread")]
async fn transactions_past_the_inline_budget_run_again_off_the_runtime() {
    use dbx::vector::{Distance, Point};
    let db = memory().await;
    let c = db.vectors().unwrap().collection("past_budget");
    c.create(4096, Distance::Cosine).await.unwrap();
    // 256 points of 16 KB each: well over 2 ms on any machine.
    let points: Vec<Point> = (0..dbx::vector::UPSERT_BATCH as u64)
        .map(|i| Point::new(i, dbx_tests::vector::pseudo(i + 1, 4096)))
        .collect();
    c.upsert(&points).await.unwrap();
    assert_eq!(c.count().await.unwrap(), points.len() as u64);
    let last = c.get_one(255u64).await.unwrap().unwrap();
    assert_eq!(last.id, dbx::vector::PointId::Num(255));
    let stats = db.stats();
    assert_eq!(stats.retries, 0, "{stats:?}");
}

/// On a current-thread runtime an inline statement that meets a locked
/// database does not sleep in SQLite's busy handler on the runtime's only
/// thread (the lock holder may be a task on that same thread): it waits on a
/// blocking thread, and goes through once the lock is released.
#[tokio::test(flavor = "current_thread")]
async fn a_locked_database_does_not_hold_the_current_thread_runtime() {
    let db = file().await;
    let sql = db.sql().unwrap();
    sql.execute("CREATE TABLE locked (n INTEGER)", params![])
        .await
        .unwrap();
    // Two open pooled connections, so the writer below runs inline.
    let hold = sql.begin().await.unwrap();
    sql.query("SELECT 1", params![]).await.unwrap();
    drop(hold);
    assert!(db.pool_status().unwrap().size >= 2);
    let mut tx = sql.begin().await.unwrap();
    tx.execute("INSERT INTO locked VALUES (1)", params![])
        .await
        .unwrap();
    let other = sql.clone();
    let writer = tokio::spawn(async move {
        other
            .execute("INSERT INTO locked VALUES (2)", params![])
            .await
    });
    // The writer is now waiting for the lock, off the runtime's thread:
    // this task gets the thread back long before SQLite's busy timeout (5 s).
    let slept = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        slept.elapsed() < Duration::from_secs(2),
        "the runtime thread was held for {:?}",
        slept.elapsed()
    );
    assert!(!writer.is_finished());
    tx.commit().await.unwrap();
    writer.await.unwrap().unwrap();
    let n: i64 = sql
        .query_one_as("SELECT COUNT(*) FROM locked", params![])
        .await
        .unwrap();
    assert_eq!(n, 2);
}

/// Random operation sequences agree with the key-value reference model.
#[test]
fn kv_agrees_with_the_reference_model() {
    dbx_tests::kv_model::check("sqlite", memory(), 64);
}
