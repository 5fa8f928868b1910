//! PostgreSQL: the conformance suite against a real server, plus what only
//! PostgreSQL has (types, TLS, timeouts that cancel server-side, pooling)
//! and bad input. Every test works in a schema of its own test process, so
//! the shared database stays clean; leftover schemas of earlier runs older
//! than an hour are dropped at startup.

use dbx::{Dbx, ErrorKind, Ttl, Value, params};
use dbx_tests::{expect_kind, table};
use futures_util::{StreamExt, TryStreamExt};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;

fn base_url() -> String {
    std::env::var("DBX_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with extra query parameters.
fn with_params(url: &str, extra: &str) -> String {
    if extra.is_empty() {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&{extra}")
    } else {
        format!("{url}?{extra}")
    }
}

/// This test process's schema, created once; stale ones are dropped.
async fn schema() -> &'static str {
    static SCHEMA: OnceCell<String> = OnceCell::const_new();
    SCHEMA
        .get_or_init(|| async {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let name = format!("dbx_test_{now}_{}", std::process::id());
            let admin = Dbx::connect(&base_url()).await.unwrap();
            let sql = admin.sql().unwrap();
            let old: Vec<String> = sql
                .query_as(
                    "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'dbx\\_test\\_%'",
                    params![],
                )
                .await
                .unwrap();
            for s in old {
                let created = s
                    .split('_')
                    .nth(2)
                    .and_then(|t| t.parse::<u64>().ok())
                    .unwrap_or(u64::MAX);
                if now.saturating_sub(created) > 3600 && created != u64::MAX {
                    let _ = sql
                        .execute(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"), params![])
                        .await;
                }
            }
            sql.execute(
                &format!("CREATE SCHEMA IF NOT EXISTS \"{name}\""),
                params![],
            )
            .await
            .unwrap();
            admin.close().await;
            name
        })
        .await
}

/// A URL into this process's schema, with extra parameters.
pub(crate) async fn url(extra: &str) -> String {
    let s = schema().await;
    with_params(&base_url(), &format!("search_path={s}&{extra}"))
}

async fn connect() -> Dbx {
    Dbx::connect(&url("").await).await.unwrap()
}

/// Everything on exclusive pooled connections, nothing shared.
async fn connect_exclusive() -> Dbx {
    Dbx::connect(&url("shared_clients=0").await).await.unwrap()
}

/// Unnamed statements only, as behind PgBouncer in transaction mode.
async fn connect_unnamed() -> Dbx {
    Dbx::connect(&url("statement_cache=false").await)
        .await
        .unwrap()
}

mod kv {
    dbx_tests::kv_conformance!(crate::postgres::connect);
}

#[cfg(feature = "cache")]
pub(crate) async fn connect_cached() -> Dbx {
    Dbx::connect(&url("cache=true").await).await.unwrap()
}
#[cfg(feature = "cache")]
mod cache_sql {
    dbx_tests::cache_sql_conformance!(crate::postgres::connect_cached);
}
#[cfg(feature = "cache")]
mod cache_kv {
    dbx_tests::cache_kv_conformance!(crate::postgres::connect_cached);
}
mod sql {
    dbx_tests::sql_conformance!(crate::postgres::connect);
}
mod exclusive_kv {
    dbx_tests::kv_conformance!(crate::postgres::connect_exclusive);
}
mod exclusive_sql {
    dbx_tests::sql_conformance!(crate::postgres::connect_exclusive);
}
mod unnamed_kv {
    dbx_tests::kv_conformance!(crate::postgres::connect_unnamed);
}
mod unnamed_sql {
    dbx_tests::sql_conformance!(crate::postgres::connect_unnamed);
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Wait until no backend runs a statement containing `marker` (other than
/// the query asking), failing after a few seconds.
async fn wait_until_gone(marker: &str) {
    let watcher = connect().await;
    let sql = watcher.sql().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let running: i64 = sql
            .query_one_as(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
                 AND pid <> pg_backend_pid() AND query LIKE '%' || $1 || '%'",
                params![marker],
            )
            .await
            .unwrap();
        if running == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the statement marked {marker} still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn backend_pid(db: &Dbx) -> i64 {
    db.sql()
        .unwrap()
        .query_one_as("SELECT pg_backend_pid()::int8", params![])
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

#[tokio::test]
async fn typed_rows_cover_postgres_types() {
    let db = connect().await;
    let sql = db.sql().unwrap();
    let row = sql
        .query_one(
            "SELECT 1::int2 AS a, 2::int4 AS b, 1.5::float4 AS c, 'x'::varchar AS d, 'y'::char(3) AS e, \
             '2024-02-29'::date AS f, '12:34:56.5'::time AS g, interval '1 day 2 hours' AS h, \
             ARRAY[1, 2, NULL]::int8[] AS i, ARRAY[['a', 'b'], ['c', 'd']] AS j, \
             '2024-01-02 03:04:05.25'::timestamp AS k, '10.50'::numeric AS l, 'NaN'::numeric AS m, \
             '192.168.0.1/24'::inet AS n, '{\"a\": 1}'::json AS o, 'abc'::name AS p, 42::oid AS q, \
             '-0.000000000000000000001'::numeric AS r, 'infinity'::timestamptz AS s",
            params![],
        )
        .await
        .unwrap();
    let v = |c: &str| row.value(c).unwrap().clone();
    assert_eq!(v("a"), Value::Int(1));
    assert_eq!(v("b"), Value::Int(2));
    assert_eq!(v("c"), Value::Float(1.5));
    assert_eq!(v("d"), Value::Text("x".into()));
    assert_eq!(v("e"), Value::Text("y  ".into()));
    assert_eq!(v("f"), Value::Text("2024-02-29".into()));
    assert_eq!(
        row.get::<dbx::chrono::NaiveDate>("f").unwrap(),
        dbx::chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
    );
    assert_eq!(v("g"), Value::Text("12:34:56.500".into()));
    assert_eq!(v("h"), Value::Text("P1DT2H".into()));
    assert_eq!(v("i"), Value::Json(serde_json::json!([1, 2, null])));
    assert_eq!(
        row.get::<Vec<Option<i64>>>("i").unwrap(),
        vec![Some(1), Some(2), None]
    );
    assert_eq!(
        v("j"),
        Value::Json(serde_json::json!([["a", "b"], ["c", "d"]]))
    );
    assert_eq!(
        row.get::<dbx::chrono::DateTime<dbx::chrono::Utc>>("k")
            .unwrap()
            .to_rfc3339(),
        "2024-01-02T03:04:05.250+00:00"
    );
    assert_eq!(v("l"), Value::Decimal("10.50".into()));
    assert!(matches!(v("m"), Value::Float(f) if f.is_nan()));
    assert_eq!(v("n"), Value::Text("192.168.0.1/24".into()));
    assert_eq!(v("o"), Value::Json(serde_json::json!({"a": 1})));
    assert_eq!(v("p"), Value::Text("abc".into()));
    assert_eq!(v("q"), Value::Int(42));
    assert_eq!(v("r"), Value::Decimal("-0.000000000000000000001".into()));
    assert_eq!(v("s"), Value::Text("infinity".into()));
}

#[tokio::test]
async fn parameters_are_coerced_to_the_statement_types() {
    let db = connect().await;
    let sql = db.sql().unwrap();
    let t = table("coerce");
    sql.execute(
        &format!("CREATE TYPE {t}_mood AS ENUM ('sad', 'happy')"),
        params![],
    )
    .await
    .unwrap();
    sql.execute(
        &format!(
            "CREATE TABLE {t} (id int4 PRIMARY KEY, small int2, f4 real, n numeric, u uuid, \
             d date, ts timestamp, mood {t}_mood, j json, tags text[])"
        ),
        params![],
    )
    .await
    .unwrap();
    let u = dbx::uuid::Uuid::from_u128(42);
    let midnight = dbx::chrono::DateTime::parse_from_rfc3339("2024-05-06T00:00:00Z")
        .unwrap()
        .to_utc();
    sql.execute(
        &format!("INSERT INTO {t} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
        &[
            Value::Int(1),
            Value::Int(-7),
            Value::Int(3),
            Value::Float(0.1),
            Value::Text(u.to_string()),
            Value::Timestamp(midnight),
            Value::Timestamp(midnight),
            Value::Text("happy".into()),
            Value::Json(serde_json::json!({"k": [1, 2]})),
            Value::Json(serde_json::json!(["a", "b \"c\""])),
        ],
    )
    .await
    .unwrap();
    let row = sql
        .query_one(&format!("SELECT * FROM {t} WHERE id = $1"), params![1])
        .await
        .unwrap();
    assert_eq!(row.get::<i64>("small").unwrap(), -7);
    assert_eq!(row.get::<f64>("f4").unwrap(), 3.0);
    assert_eq!(row.value("n").unwrap(), &Value::Decimal("0.1".into()));
    assert_eq!(row.value("u").unwrap(), &Value::Uuid(u));
    assert_eq!(row.get::<String>("d").unwrap(), "2024-05-06");
    assert_eq!(row.value("ts").unwrap(), &Value::Timestamp(midnight));
    assert_eq!(row.get::<String>("mood").unwrap(), "happy");
    assert_eq!(
        row.get::<Vec<String>>("tags").unwrap(),
        vec!["a", "b \"c\""]
    );
    // JSON arrays bind to array parameters.
    let ids: Vec<i64> = sql
        .query_as(
            &format!("SELECT id::int8 FROM {t} WHERE id = ANY($1)"),
            params![serde_json::json!([1, 2, 3])],
        )
        .await
        .unwrap();
    assert_eq!(ids, vec![1]);
    // Exact decimals both ways, and an integer where a float is expected.
    let d: String = sql
        .query_one_as(
            "SELECT ($1::numeric * 2)::text",
            &[Value::decimal("12345678901234567890.123456789").unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(d, "24691357802469135780.246913578");
    let f: f64 = sql
        .query_one_as("SELECT $1::float8 / 2", params![3])
        .await
        .unwrap();
    assert_eq!(f, 1.5);
    // Mismatches name the parameter and both types, before anything is sent.
    let e = expect_kind(
        sql.execute(
            &format!("UPDATE {t} SET small = $2 WHERE id = $1"),
            params![1, "seven"],
        )
        .await,
        ErrorKind::InvalidInput,
    );
    assert!(
        e.to_string().contains("$2") && e.to_string().contains("int2"),
        "{e}"
    );
    let e = expect_kind(
        sql.execute(&format!("UPDATE {t} SET u = $1"), params!["not-a-uuid"])
            .await,
        ErrorKind::InvalidInput,
    );
    assert!(
        e.to_string().contains("$1") && e.to_string().contains("UUID"),
        "{e}"
    );
    let not_midnight = midnight + dbx::chrono::Duration::hours(1);
    expect_kind(
        sql.execute(&format!("UPDATE {t} SET d = $1"), params![not_midnight])
            .await,
        ErrorKind::InvalidInput,
    );
    expect_kind(
        sql.execute(&format!("UPDATE {t} SET mood = $1"), params!["angry"])
            .await,
        ErrorKind::InvalidInput,
    );
    let row = sql
        .query_one(
            &format!("SELECT mood::text, u FROM {t} WHERE id = 1"),
            params![],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<String>(0).unwrap(),
        "happy",
        "rejected updates changed nothing"
    );
}

#[tokio::test]
async fn unmapped_result_types_fail_before_running() {
    let db = connect().await;
    let sql = db.sql().unwrap();
    let t = table("unmapped");
    sql.execute(&format!("CREATE TABLE {t} (id int8)"), params![])
        .await
        .unwrap();
    let e = expect_kind(
        sql.query(
            &format!("INSERT INTO {t} VALUES (1) RETURNING point(1, 2) AS p"),
            params![],
        )
        .await,
        ErrorKind::Decode,
    );
    assert!(
        e.to_string().contains("point") && e.to_string().contains("::text"),
        "{e}"
    );
    let n: i64 = sql
        .query_one_as(&format!("SELECT count(*) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(n, 0, "the statement was not run");
    // Cast to text, it reads.
    let p: String = sql
        .query_one_as("SELECT point(1, 2)::text", params![])
        .await
        .unwrap();
    assert_eq!(p, "(1,2)");
}

/// A cached statement whose table changed shape is prepared again: outside
/// a transaction the statement is retried once and sees the new columns;
/// inside one the failure is returned (it aborted the transaction) and the
/// next statement after it prepares afresh.
#[tokio::test]
async fn cached_statements_follow_table_changes() {
    for db in [connect().await, connect_exclusive().await] {
        let sql = db.sql().unwrap();
        let t = table("reshaped");
        sql.execute(&format!("CREATE TABLE {t} (a int8)"), params![])
            .await
            .unwrap();
        sql.execute(&format!("INSERT INTO {t} VALUES (1)"), params![])
            .await
            .unwrap();
        let q = format!("SELECT * FROM {t}");
        // Several runs, so every shared client has it prepared.
        for _ in 0..4 {
            assert_eq!(sql.query_one(&q, params![]).await.unwrap().len(), 1);
        }
        sql.execute(
            &format!("ALTER TABLE {t} ADD COLUMN b text DEFAULT 'x'"),
            params![],
        )
        .await
        .unwrap();
        for _ in 0..4 {
            let row = sql.query_one(&q, params![]).await.unwrap();
            assert_eq!(row.columns(), ["a", "b"]);
            assert_eq!(row.get::<String>("b").unwrap(), "x");
        }
        sql.execute(&format!("ALTER TABLE {t} DROP COLUMN b"), params![])
            .await
            .unwrap();
        let mut tx = sql.begin().await.unwrap();
        let first = tx.query_one(&q, params![]).await;
        match first {
            // This connection had not prepared it yet.
            Ok(row) => assert_eq!(row.columns(), ["a"]),
            Err(e) => assert!(e.to_string().contains("cached plan"), "{e}"),
        }
        drop(tx);
        for _ in 0..4 {
            let row = sql.query_one(&q, params![]).await.unwrap();
            assert_eq!(row.columns(), ["a"]);
        }
        let mut tx = sql.begin().await.unwrap();
        assert_eq!(tx.query_one(&q, params![]).await.unwrap().columns(), ["a"]);
        tx.commit().await.unwrap();
        db.close().await;
    }
}

/// `query_one` and `query_optional` on PostgreSQL read the whole result: an
/// error the server raises at a later row fails the call, and a write is
/// never cut short (on every connection model, in and out of transactions).
#[tokio::test]
async fn first_row_queries_still_read_to_the_end() {
    for db in [
        connect().await,
        connect_exclusive().await,
        connect_unnamed().await,
    ] {
        let sql = db.sql().unwrap();
        // The last of 100k rows divides by zero (SQLSTATE 22012, a data
        // exception: InvalidInput); the first rows reach the client long
        // before it.
        let q = "SELECT x FROM generate_series(1, 100000) AS x WHERE 1 / (100000 - x) >= 0";
        let kind = ErrorKind::InvalidInput;
        for e in [
            expect_kind(sql.query_one(q, params![]).await, kind),
            expect_kind(sql.query_optional_as::<i32>(q, params![]).await, kind),
        ] {
            assert!(e.to_string().contains("division by zero"), "{e}");
        }
        let mut tx = sql.begin().await.unwrap();
        expect_kind(tx.query_one(q, params![]).await, kind);
        drop(tx);
        let first: i32 = sql
            .query_one_as("SELECT x FROM generate_series(7, 9) AS x", params![])
            .await
            .unwrap();
        assert_eq!(first, 7);
        db.close().await;
    }
}

#[tokio::test]
async fn integers_out_of_column_range_are_out_of_range() {
    for db in [connect().await, connect_unnamed().await] {
        let sql = db.sql().unwrap();
        let t = table("range");
        sql.execute(
            &format!("CREATE TABLE {t} (i int4, s int2, v varchar(5), n numeric(5, 2))"),
            params![],
        )
        .await
        .unwrap();
        let insert_i = format!("INSERT INTO {t} (i) VALUES ($1)");
        sql.execute(&insert_i, params![i64::from(i32::MAX)])
            .await
            .unwrap();
        let e = expect_kind(
            sql.execute(&insert_i, params![i64::from(i32::MAX) + 1])
                .await,
            ErrorKind::OutOfRange,
        );
        assert!(!e.is_transient());
        expect_kind(
            sql.execute(&format!("INSERT INTO {t} (s) VALUES ($1)"), params![40_000])
                .await,
            ErrorKind::OutOfRange,
        );
        expect_kind(
            sql.execute(
                &format!("INSERT INTO {t} (v) VALUES ($1)"),
                params!["too long"],
            )
            .await,
            ErrorKind::OutOfRange,
        );
        expect_kind(
            sql.execute(
                &format!("INSERT INTO {t} (n) VALUES ($1)"),
                &[Value::decimal("12345.6").unwrap()],
            )
            .await,
            ErrorKind::OutOfRange,
        );
        let n: i64 = sql
            .query_one_as(&format!("SELECT count(*) FROM {t}"), params![])
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
}

#[tokio::test]
async fn unnamed_statements_check_parameter_counts_and_types() {
    let db = connect_unnamed().await;
    let sql = db.sql().unwrap();
    expect_kind(
        sql.query("SELECT $1::int8 + $2::int8", params![1]).await,
        ErrorKind::InvalidInput,
    );
    expect_kind(
        sql.query("SELECT 1", params![1]).await,
        ErrorKind::InvalidInput,
    );
    // `$1` inside literals and comments is not a placeholder.
    let s: String = sql
        .query_one_as("SELECT '$2' || $1::text /* $3 */", params!["x"])
        .await
        .unwrap();
    assert_eq!(s, "$2x");
    let (a, b, c): (i64, String, bool) = sql
        .query_one_as(
            "SELECT $1::int4 + 1, $2::uuid::text, $3::bool",
            params![41, dbx::uuid::Uuid::nil(), true],
        )
        .await
        .unwrap();
    assert_eq!(
        (a, b.as_str(), c),
        (42, "00000000-0000-0000-0000-000000000000", true)
    );
    // The server never saw a named statement.
    let named: i64 = sql
        .query_one_as("SELECT count(*) FROM pg_prepared_statements", params![])
        .await
        .unwrap();
    assert_eq!(named, 0);
}

#[tokio::test]
async fn injection_strings_and_bad_identifiers_are_harmless() {
    let db = connect().await;
    let sql = db.sql().unwrap();
    for evil in [
        "'; SELECT pg_sleep(5); --",
        "$$; DROP TABLE x; $$",
        "E'\\\\x00'",
        "\\'; --",
        "); COMMIT; DROP SCHEMA public; --",
    ] {
        let back: String = sql
            .query_one_as("SELECT $1::text", params![evil])
            .await
            .unwrap();
        assert_eq!(back, evil);
        let kv = db.kv().unwrap();
        kv.set(&format!("{}{evil}", table("inj")), evil, None)
            .await
            .unwrap();
    }
    for bad in [
        "kv_table=x%22%3B%20DROP%20TABLE%20y",
        "kv_table=a.b",
        "search_path=",
        "sslmode=none",
        "shared_clients=many",
    ] {
        expect_kind(
            Dbx::connect(&url(bad).await).await,
            ErrorKind::InvalidConfig,
        );
    }
}

// ---------------------------------------------------------------------------
// Timeouts and cancellation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn statement_timeout_stops_the_statement_on_the_server() {
    // Shared clients: the server's statement_timeout (= timeout) stops it.
    let db = Dbx::connect(&url("timeout=300ms").await).await.unwrap();
    let marker = table("sleep_shared");
    let start = Instant::now();
    let e = expect_kind(
        db.sql()
            .unwrap()
            .query(&format!("SELECT pg_sleep(10) /* {marker} */"), params![])
            .await,
        ErrorKind::Timeout,
    );
    assert!(e.is_transient());
    assert!(start.elapsed() < Duration::from_secs(5));
    wait_until_gone(&marker).await;
    // The shared clients serve on.
    let one: i64 = db
        .sql()
        .unwrap()
        .query_one_as("SELECT 1::int8", params![])
        .await
        .unwrap();
    assert_eq!(one, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_statements_are_cancelled_with_a_cancel_request() {
    // No server-side timeout: only the cancel request can stop them.
    let db = Dbx::connect(&url("timeout=300ms&statement_timeout=off&shared_clients=0").await)
        .await
        .unwrap();
    let sql = db.sql().unwrap();
    let marker = table("sleep_exclusive");
    expect_kind(
        sql.execute(&format!("SELECT pg_sleep(10) /* {marker} */"), params![])
            .await,
        ErrorKind::Timeout,
    );
    wait_until_gone(&marker).await;
    assert_eq!(sql.execute("SELECT 1", params![]).await.unwrap(), 1);

    // Inside a transaction: the statement is cancelled, the transaction is
    // over, and saying so is a Closed error.
    let db = Dbx::connect(&url("timeout=300ms&statement_timeout=off").await)
        .await
        .unwrap();
    let sql = db.sql().unwrap();
    let marker = table("sleep_tx");
    let mut tx = sql.begin().await.unwrap();
    expect_kind(
        tx.query(&format!("SELECT pg_sleep(10) /* {marker} */"), params![])
            .await,
        ErrorKind::Timeout,
    );
    wait_until_gone(&marker).await;
    expect_kind(tx.execute("SELECT 1", params![]).await, ErrorKind::Closed);
    expect_kind(tx.commit().await, ErrorKind::Closed);

    // A stream step.
    let marker = table("sleep_stream");
    let mut s = sql.query_stream(&format!("SELECT pg_sleep(10) /* {marker} */"), params![]);
    expect_kind(s.next().await.unwrap(), ErrorKind::Timeout);
    drop(s);
    wait_until_gone(&marker).await;
    let status = db.pool_status().unwrap();
    assert_eq!(status.in_use, 0, "{status:?}");
}

// ---------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn isolation_level_and_read_only_options() {
    let db = Dbx::connect(&url("isolation_level=serializable").await)
        .await
        .unwrap();
    let mut tx = db.sql().unwrap().begin().await.unwrap();
    let level: String = tx
        .query_one_as("SHOW transaction_isolation", params![])
        .await
        .unwrap();
    assert_eq!(level, "serializable");
    tx.commit().await.unwrap();

    // Per transaction: SET TRANSACTION as the first statement.
    let db = connect().await;
    let sql = db.sql().unwrap();
    let mut tx = sql.begin().await.unwrap();
    tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", params![])
        .await
        .unwrap();
    let level: String = tx
        .query_one_as("SHOW transaction_isolation", params![])
        .await
        .unwrap();
    assert_eq!(level, "repeatable read");
    tx.rollback().await.unwrap();

    let t = table("ro");
    sql.execute(&format!("CREATE TABLE {t} (n int8)"), params![])
        .await
        .unwrap();
    let ro = Dbx::connect(&url("read_only=true").await).await.unwrap();
    let mut tx = ro.sql().unwrap().begin().await.unwrap();
    let e = expect_kind(
        tx.execute(&format!("INSERT INTO {t} VALUES (1)"), params![])
            .await,
        ErrorKind::Query,
    );
    assert!(e.to_string().contains("read-only"), "{e}");
    // Committing a failed transaction is an error, not a silent rollback.
    let e = expect_kind(tx.commit().await, ErrorKind::Query);
    assert!(e.to_string().contains("rolled back"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serializable_conflicts_are_transient_conflicts() {
    let db = Dbx::connect(&url("isolation_level=serializable").await)
        .await
        .unwrap();
    let sql = db.sql().unwrap();
    let t = table("ssi");
    sql.execute(
        &format!("CREATE TABLE {t} (class int8, value int8)"),
        params![],
    )
    .await
    .unwrap();
    sql.execute(
        &format!("INSERT INTO {t} VALUES (1, 10), (1, 20), (2, 100), (2, 200)"),
        params![],
    )
    .await
    .unwrap();
    let sum = |c: i64| format!("SELECT sum(value)::int8 FROM {t} WHERE class = {c}");
    let insert = format!("INSERT INTO {t} VALUES ($1, $2)");
    let mut t1 = sql.begin().await.unwrap();
    let mut t2 = sql.begin().await.unwrap();
    let s1: i64 = t1.query_one_as(&sum(1), params![]).await.unwrap();
    let s2: i64 = t2.query_one_as(&sum(2), params![]).await.unwrap();
    t1.execute(&insert, params![2, s1]).await.unwrap();
    let e = match t2.execute(&insert, params![1, s2]).await {
        Err(e) => e,
        Ok(_) => {
            t1.commit().await.unwrap();
            t2.commit().await.unwrap_err()
        }
    };
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.is_transient(), "{e}");
}

// ---------------------------------------------------------------------------
// Connections, pool, TLS
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_is_bounded_and_single_statements_do_not_need_it() {
    let db = Dbx::connect(&url("pool_max_size=1&acquire_timeout=200ms").await)
        .await
        .unwrap();
    let sql = db.sql().unwrap();
    let tx = sql.begin().await.unwrap();
    let e = expect_kind(sql.begin().await, ErrorKind::PoolTimeout);
    assert!(e.is_transient());
    let status = db.pool_status().unwrap();
    assert_eq!((status.max_size, status.in_use), (1, 1));
    // Single statements run on the shared clients meanwhile.
    assert_eq!(sql.execute("SELECT 1", params![]).await.unwrap(), 1);
    drop(tx);
    sql.begin().await.unwrap().commit().await.unwrap();
    let h = db.health().await.unwrap();
    assert_eq!(h.backend, "postgresql");
    assert_eq!(h.pool.unwrap().max_size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_old_connections_are_replaced() {
    let db = Dbx::connect(&url("idle_timeout=300ms").await)
        .await
        .unwrap();
    db.sql()
        .unwrap()
        .begin()
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    assert_eq!(db.pool_status().unwrap().size, 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while db.pool_status().unwrap().size > 0 {
        assert!(Instant::now() < deadline, "idle connection never closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Shared clients past max_lifetime are replaced too.
    let db = Dbx::connect(&url("max_lifetime=300ms&shared_clients=1").await)
        .await
        .unwrap();
    let first = backend_pid(&db).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while backend_pid(&db).await == first {
        assert!(
            Instant::now() < deadline,
            "old shared client never replaced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_shared_client_is_replaced() {
    let db = Dbx::connect(&url("shared_clients=1").await).await.unwrap();
    let pid = backend_pid(&db).await;
    let other = connect().await;
    let killed: bool = other
        .sql()
        .unwrap()
        .query_one_as("SELECT pg_terminate_backend($1)", params![pid])
        .await
        .unwrap();
    assert!(killed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = backend_pid(&db).await;
    assert_ne!(again, pid);
    db.kv()
        .unwrap()
        .set(&table("after_kill"), b"v", None)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// Head-of-line blocking on the shared clients
// ---------------------------------------------------------------------------

/// How many backends run a statement containing `marker` right now.
async fn running(watcher: &Dbx, marker: &str) -> i64 {
    watcher
        .sql()
        .unwrap()
        .query_one_as(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
             AND pid <> pg_backend_pid() AND query LIKE '%' || $1 || '%'",
            params![marker],
        )
        .await
        .unwrap()
}

/// Four slow statements started one after another (each once the server
/// runs the one before and a little more than the stall threshold later),
/// or all at once (`together`, on shared clients idle for longer than that
/// threshold), then fast statements: the fast ones must all return before
/// any slow one, and the slow ones must have run at the same time on the
/// server (their server-side intervals share an instant), whatever `extra`
/// configures. Orders and overlaps, no durations: the slow statements sleep
/// long enough that only queueing behind one another could break either
/// property.
async fn slow_statements_do_not_hold_up_others(extra: &str, together: bool) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const SLOW: usize = 4;
    const FAST: usize = 20;
    let db = Dbx::connect(&url(&format!("timeout=30s&{extra}")).await)
        .await
        .unwrap();
    let watcher = connect_exclusive().await;
    let marker = table("hol_slow");
    // Server-side start and end of each slow statement: `pg_sleep` in FROM
    // runs before the select list reads the clock.
    let slow_sql = Arc::new(format!(
        "SELECT extract(epoch FROM statement_timestamp())::float8, \
         extract(epoch FROM clock_timestamp())::float8 FROM pg_sleep(2) /* {marker} */"
    ));
    let done = Arc::new(AtomicUsize::new(0));
    let mut slow = Vec::new();
    // Past the stall threshold (10 ms) since the shared clients last answered.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 0..SLOW {
        let (sql, text, done) = (db.sql().unwrap().clone(), slow_sql.clone(), done.clone());
        slow.push(tokio::spawn(async move {
            let (start, end): (f64, f64) = sql.query_one_as(&text, params![]).await.unwrap();
            (start, end, done.fetch_add(1, Ordering::SeqCst))
        }));
        if together && i + 1 < SLOW {
            continue;
        }
        // Wait (a bounded while: the assertions below report a failure) for
        // the server to run it (them), then past the stall threshold.
        let want = if together { SLOW } else { i + 1 };
        let deadline = Instant::now() + Duration::from_secs(5);
        while running(&watcher, &marker).await < want as i64 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sql = db.sql().unwrap();
    let mut fast = Vec::new();
    for i in 0..FAST {
        let n: i64 = sql
            .query_one_as("SELECT $1::int8", params![i as i64])
            .await
            .unwrap();
        assert_eq!(n, i as i64);
        fast.push(done.fetch_add(1, Ordering::SeqCst));
    }
    let mut intervals = Vec::new();
    for h in slow {
        intervals.push(h.await.unwrap());
    }
    let first_slow = intervals.iter().map(|i| i.2).min().unwrap();
    assert!(
        fast.iter().all(|&f| f < first_slow),
        "{extra} (together: {together}): fast statements returned after a slow one \
         (completion order: fast {fast:?}, slow {:?})",
        intervals.iter().map(|i| i.2).collect::<Vec<_>>()
    );
    let last_start = intervals.iter().map(|i| i.0).fold(f64::MIN, f64::max);
    let first_end = intervals.iter().map(|i| i.1).fold(f64::MAX, f64::min);
    assert!(
        last_start < first_end,
        "{extra} (together: {together}): the slow statements did not all run at once on the server \
         (server-side start/end: {intervals:?})"
    );
    db.close().await;
    watcher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_statements_neither_block_fast_ones_nor_each_other() {
    tokio::join!(
        slow_statements_do_not_hold_up_others("", false),
        slow_statements_do_not_hold_up_others("shared_clients=1", false),
        slow_statements_do_not_hold_up_others("shared_clients=8", false),
        slow_statements_do_not_hold_up_others("shared_clients=0", false),
    );
    tokio::join!(
        slow_statements_do_not_hold_up_others("", true),
        slow_statements_do_not_hold_up_others("shared_clients=8", true),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_statement_does_not_hold_up_its_shared_client() {
    // No server-side timeout, one shared client: the abandoned statement
    // keeps that connection busy on the server for seconds.
    let db = Dbx::connect(&url("timeout=500ms&statement_timeout=off&shared_clients=1").await)
        .await
        .unwrap();
    let sql = db.sql().unwrap();
    let marker = table("hol_abandoned");
    expect_kind(
        sql.query(&format!("SELECT pg_sleep(3) /* {marker} */"), params![])
            .await,
        ErrorKind::Timeout,
    );
    // The statements after it do not queue behind it.
    for i in 0..10_i64 {
        let n: i64 = sql
            .query_one_as("SELECT $1::int8", params![i])
            .await
            .unwrap();
        assert_eq!(n, i);
    }
    let kv = db.kv().unwrap();
    let key = table("hol_key");
    kv.set(&key, b"v", None).await.unwrap();
    assert_eq!(kv.get(&key).await.unwrap().as_deref(), Some(&b"v"[..]));
    // With statement_timeout on (the default), the server stops it too.
    let db = Dbx::connect(&url("timeout=500ms&shared_clients=1").await)
        .await
        .unwrap();
    let sql = db.sql().unwrap();
    let marker = table("hol_abandoned_st");
    expect_kind(
        sql.query(&format!("SELECT pg_sleep(10) /* {marker} */"), params![])
            .await,
        ErrorKind::Timeout,
    );
    assert_eq!(sql.execute("SELECT 1", params![]).await.unwrap(), 1);
    wait_until_gone(&marker).await;
    assert_eq!(sql.execute("SELECT 1", params![]).await.unwrap(), 1);
}

#[tokio::test]
async fn unix_socket_hosts_connect() {
    if !std::path::Path::new("/var/run/postgresql/.s.PGSQL.5432").exists() {
        eprintln!("SKIPPED unix_socket_hosts_connect: no socket in /var/run/postgresql");
        return;
    }
    for url in [
        "postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres",
        "postgres://postgres@/postgres?host=/var/run/postgresql",
    ] {
        let db = Dbx::connect(url).await.unwrap();
        let local: bool = db
            .sql()
            .unwrap()
            .query_one_as("SELECT inet_server_addr() IS NULL", params![])
            .await
            .unwrap();
        assert!(local, "{url} did not use the Unix socket");
        db.kv().unwrap().exists("k").await.unwrap();
    }
}

#[tokio::test]
async fn application_name_defaults_to_dbx() {
    let db = connect().await;
    let name: String = db
        .sql()
        .unwrap()
        .query_one_as("SELECT current_setting('application_name')", params![])
        .await
        .unwrap();
    assert_eq!(name, "dbx");
}

async fn ssl_in_use(db: &Dbx) -> bool {
    db.sql()
        .unwrap()
        .query_one_as(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            params![],
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn tls_modes() {
    let db = connect().await;
    let ssl: String = db
        .sql()
        .unwrap()
        .query_one_as("SHOW ssl", params![])
        .await
        .unwrap();
    if ssl != "on" {
        eprintln!("SKIPPED tls_modes: the server has ssl off");
        return;
    }
    assert!(ssl_in_use(&Dbx::connect(&url("sslmode=require").await).await.unwrap()).await);
    assert!(
        ssl_in_use(&db).await,
        "sslmode=prefer (the default) uses TLS when offered"
    );
    assert!(!ssl_in_use(&Dbx::connect(&url("sslmode=disable").await).await.unwrap()).await);
    // The server's certificate is self-signed: full verification against
    // the public roots fails, with a typed error naming the problem.
    let e = expect_kind(
        Dbx::connect(&url("sslmode=verify-full&connect_timeout=5s").await).await,
        ErrorKind::Connect,
    );
    assert!(!e.is_transient(), "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");

    let snakeoil = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    if !std::path::Path::new(snakeoil).exists() || !base_url().contains("@127.0.0.1:") {
        eprintln!("SKIPPED tls_modes with sslrootcert: no snakeoil certificate or custom URL");
        return;
    }
    // Trusting it: the chain verifies; its name is `localhost`, not 127.0.0.1.
    let ca = format!("sslrootcert={snakeoil}");
    let ok = Dbx::connect(&url(&format!("sslmode=verify-ca&{ca}")).await)
        .await
        .unwrap();
    assert!(ssl_in_use(&ok).await);
    let e = expect_kind(
        Dbx::connect(&url(&format!("sslmode=verify-full&{ca}")).await).await,
        ErrorKind::Connect,
    );
    assert!(e.to_string().contains("certificate"), "{e}");
    let by_name = url(&format!("sslmode=verify-full&{ca}"))
        .await
        .replace("@127.0.0.1:", "@localhost:");
    let full = Dbx::connect(&by_name).await.unwrap();
    assert!(ssl_in_use(&full).await);
}

#[tokio::test]
async fn unreachable_port_fails_fast_with_connect() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = Instant::now();
    let e = expect_kind(
        Dbx::connect(&format!(
            "postgres://postgres:hunter2@127.0.0.1:{port}/postgres?connect_timeout=2s"
        ))
        .await,
        ErrorKind::Connect,
    );
    assert!(e.is_transient());
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(!format!("{e} {e:?}").contains("hunter2"));
}

#[tokio::test]
async fn a_server_speaking_another_protocol_fails_within_the_timeout() {
    if std::net::TcpStream::connect("127.0.0.1:6379").is_err() {
        eprintln!("SKIPPED: nothing listens on 127.0.0.1:6379");
        return;
    }
    for mode in ["prefer", "disable"] {
        let start = Instant::now();
        let e = Dbx::connect(&format!(
            "postgres://postgres@127.0.0.1:6379/postgres?connect_timeout=1s&sslmode={mode}"
        ))
        .await
        .unwrap_err();
        assert!(
            matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout),
            "{mode}: {e}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{mode}: {:?}",
            start.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_auth_and_a_server_restart() {
    let cluster = dbx_tests::fault::PostgresServer::start_with_passwords();
    let admin = Dbx::connect(&cluster.admin_url()).await.unwrap();
    admin
        .sql()
        .unwrap()
        .execute("CREATE ROLE app LOGIN PASSWORD 'app-secret-1'", params![])
        .await
        .unwrap();
    admin
        .sql()
        .unwrap()
        .execute("GRANT ALL ON SCHEMA public TO app", params![])
        .await
        .unwrap();
    let port = cluster.port();

    let e = expect_kind(
        Dbx::connect(&format!(
            "postgres://app:wrong-secret-2@127.0.0.1:{port}/postgres"
        ))
        .await,
        ErrorKind::Auth,
    );
    assert!(!e.is_transient());
    assert!(
        e.to_string().contains("password authentication failed"),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains("wrong-secret-2"), "{e:?}");
    expect_kind(
        Dbx::connect(&format!("postgres://app@127.0.0.1:{port}/postgres")).await,
        ErrorKind::Auth,
    );
    let good = format!("postgres://app:app-secret-1@127.0.0.1:{port}/postgres");
    if cluster.tls() {
        // SCRAM over TLS with channel binding (SCRAM-SHA-256-PLUS): the
        // server checks our hash of its certificate.
        let db = Dbx::connect(&format!("{good}?sslmode=require&channel_binding=require"))
            .await
            .unwrap();
        assert!(ssl_in_use(&db).await);
    } else {
        // No TLS on the server: prefer falls back, require fails for good.
        let e = expect_kind(
            Dbx::connect(&format!("{good}?sslmode=require")).await,
            ErrorKind::Connect,
        );
        assert!(!e.is_transient(), "{e}");
        eprintln!("NOTE: the throwaway cluster runs without TLS (no readable snakeoil key)");
    }
    let plain = Dbx::connect(&format!("{good}?sslmode=disable"))
        .await
        .unwrap();
    assert!(!ssl_in_use(&plain).await);
    plain.close().await;

    let db = Dbx::connect(&format!(
        "postgres://app:app-secret-1@127.0.0.1:{port}/postgres?pool_max_size=2&password=ignored-secret-3"
    ))
    .await
    .unwrap();
    let shown = format!("{db:?} {:?} {}", db.options(), db.options());
    assert!(
        !shown.contains("app-secret-1") && !shown.contains("ignored-secret-3"),
        "{shown}"
    );
    let sql = db.sql().unwrap();
    sql.execute("CREATE TABLE t (n int8)", params![])
        .await
        .unwrap();
    let mut tx = sql.begin().await.unwrap();
    tx.execute("INSERT INTO t VALUES (1)", params![])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Restart: pooled connections are verified before use, shared ones are
    // replaced; nothing dead is handed out for long.
    cluster.restart();
    let mut tx = sql.begin().await.unwrap();
    tx.execute("INSERT INTO t VALUES (2)", params![])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut n = None;
    for _ in 0..3 {
        match sql
            .query_one_as::<i64>("SELECT count(*) FROM t", params![])
            .await
        {
            Ok(v) => {
                n = Some(v);
                break;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
                assert!(e.is_transient(), "{e}");
            }
        }
    }
    assert_eq!(n, Some(2));
    db.close().await;
    admin.close().await;
}

// ---------------------------------------------------------------------------
// Sizes, streams, key-value specifics
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_and_large_results() {
    let db = connect().await;
    let kv = db.kv().unwrap();
    let key = table("big");
    let value: Vec<u8> = (0..dbx::core::kv::MAX_VALUE_LEN)
        .map(|i| (i % 251) as u8)
        .collect();
    kv.set(&key, &value, None).await.unwrap();
    assert!(kv.get(&key).await.unwrap() == Some(value));
    let sql = db.sql().unwrap();
    let blob = vec![7u8; 10 << 20];
    let back: Vec<u8> = sql
        .query_one("SELECT $1::bytea", params![blob.clone()])
        .await
        .unwrap()
        .get(0)
        .unwrap();
    assert!(back == blob);
    // A stream of many rows arrives in order, fetched page by page.
    let total = 100_000i64;
    let mut s = sql.query_stream(
        "SELECT n::int8 FROM generate_series(1, $1) AS n",
        params![total],
    );
    let mut expected = 1;
    while let Some(row) = s.try_next().await.unwrap() {
        assert_eq!(row.get::<i64>(0).unwrap(), expected);
        expected += 1;
    }
    assert_eq!(expected, total + 1);
}

#[tokio::test]
async fn kv_table_is_custom_and_swept() {
    let name = format!("kv_{}", table("custom").replace(['-', ':'], "_"));
    let name = &name[..name.len().min(40)];
    let db = Dbx::connect(&url(&format!("kv_table={name}")).await)
        .await
        .unwrap();
    let kv = db.kv().unwrap();
    for i in 0..20 {
        kv.set(&format!("old{i}"), b"v", Some(Duration::from_millis(10)))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    kv.set("trigger", b"v", None).await.unwrap();
    let sql = db.sql().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = sql
            .query_one_as(&format!("SELECT count(*) FROM \"{name}\""), params![])
            .await
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} rows left in {name}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(kv.ttl("trigger").await.unwrap(), Ttl::Persistent);
}

/// Random operation sequences agree with the key-value reference model.
#[test]
fn kv_agrees_with_the_reference_model() {
    dbx_tests::kv_model::check("postgres", connect(), 64);
}

// ---------------------------------------------------------------------------
// Bounded reads on a shared pipelined client
// ---------------------------------------------------------------------------

/// A bounded read that stops early leaves the rest of its answer for the
/// connection to discard; statements pipelined on the same client behind it
/// (one shared client, always pipelined) still get their own results, and
/// so do later ones. The remainder (about 1 MB) spans many reads.
async fn truncated_reads_leave_pipelined_statements_correct(params: &str) {
    let db = Dbx::connect(&url(params).await).await.unwrap();
    let sql = db.sql().unwrap();
    let big = "SELECT n, md5(n::text) AS pad FROM generate_series(1, $1::int) AS n ORDER BY n";
    assert!(dbx::sql::is_plain_read(big));
    for round in 0..3i64 {
        let mut work = Vec::new();
        for i in 0..60i64 {
            let sql = sql.clone();
            work.push(async move {
                match i % 6 {
                    // Truncated large results, several bounds.
                    0 => {
                        let max = (i / 6 + 1) as usize * 3;
                        let b = sql.query_bounded(big, params![20_000], max).await.unwrap();
                        assert!(b.truncated);
                        let got: Vec<i64> = b.rows.iter().map(|r| r.get(0).unwrap()).collect();
                        assert_eq!(got, (1..=max as i64).collect::<Vec<_>>());
                    }
                    // Bounded reads that fit.
                    1 => {
                        let b = sql
                            .query_bounded(big, params![i + round], 100)
                            .await
                            .unwrap();
                        assert!(!b.truncated);
                        assert_eq!(b.rows.len() as i64, i + round);
                    }
                    // Plain small queries.
                    _ => {
                        let v: i64 = sql
                            .query_one_as("SELECT $1::bigint * 2", params![i * 1000 + round])
                            .await
                            .unwrap();
                        assert_eq!(v, (i * 1000 + round) * 2);
                    }
                }
            });
        }
        futures_util::future::join_all(work).await;
        // One after the other, too.
        for i in 0..10i64 {
            let b = sql.query_bounded(big, params![20_000], 1).await.unwrap();
            assert_eq!((b.rows.len(), b.truncated), (1, true));
            let v: i64 = sql
                .query_one_as("SELECT $1::bigint + 1", params![i])
                .await
                .unwrap();
            assert_eq!(v, i + 1);
        }
    }
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_bounded_reads_keep_a_shared_client_correct() {
    truncated_reads_leave_pipelined_statements_correct("shared_clients=1&shared_stall=off").await;
}

#[tokio::test(flavor = "current_thread")]
async fn truncated_bounded_reads_keep_a_shared_client_correct_current_thread() {
    truncated_reads_leave_pipelined_statements_correct("shared_clients=1&shared_stall=off").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_bounded_reads_keep_pooled_connections_correct() {
    truncated_reads_leave_pipelined_statements_correct("shared_clients=0&pool_max_size=2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_bounded_reads_keep_unnamed_statements_correct() {
    truncated_reads_leave_pipelined_statements_correct(
        "shared_clients=1&shared_stall=off&statement_cache=false",
    )
    .await;
}
