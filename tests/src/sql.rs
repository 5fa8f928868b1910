//! SQL conformance: behaviour every SQL backend shares, written once.
//! Dialect differences (column types) come from [`crate::ty`].

use crate::{expect_kind, table, ty};
use dbx::chrono::{DateTime, TimeZone, Utc};
use dbx::uuid::Uuid;
use dbx::{Dbx, ErrorKind, Value, params};
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;

async fn people(db: &Dbx, name: &str) -> String {
    let t = table(name);
    let sql = db.sql().unwrap();
    sql.execute(
        &format!(
            "CREATE TABLE {t} (id {} PRIMARY KEY, name {} NOT NULL UNIQUE, age {}, score {})",
            ty(db, "int"),
            ty(db, "text"),
            ty(db, "int"),
            ty(db, "float")
        ),
        params![],
    )
    .await
    .unwrap();
    for (id, name, age, score) in [
        (1, "ada", Some(36), 9.5),
        (2, "bob", None, 7.0),
        (3, "cy", Some(20), 8.25),
    ] {
        sql.execute(
            &format!("INSERT INTO {t} (id, name, age, score) VALUES ($1, $2, $3, $4)"),
            params![id, name, age, score],
        )
        .await
        .unwrap();
    }
    t
}

pub async fn execute_reports_affected_rows(db: &Dbx) {
    let t = people(db, "affected").await;
    let sql = db.sql().unwrap();
    let n = sql
        .execute(
            &format!("UPDATE {t} SET score = score + 1 WHERE id >= $1"),
            params![2],
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        sql.execute(&format!("DELETE FROM {t} WHERE id = $1"), params![99])
            .await
            .unwrap(),
        0
    );
    // A statement that changes nothing reports the rows it returned, as
    // PostgreSQL's command tag does.
    assert_eq!(
        sql.execute(&format!("SELECT * FROM {t}"), params![])
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        sql.execute(&format!("DELETE FROM {t}"), params![])
            .await
            .unwrap(),
        3
    );
}

pub async fn query_decodes_structs_tuples_and_scalars(db: &Dbx) {
    #[derive(Deserialize, Debug, PartialEq)]
    struct Person {
        id: i64,
        name: String,
        age: Option<i32>,
        score: f64,
    }
    let t = people(db, "decode").await;
    let sql = db.sql().unwrap();
    let all: Vec<Person> = sql
        .query_as(
            &format!("SELECT id, name, age, score FROM {t} ORDER BY id"),
            params![],
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(
        all[1],
        Person {
            id: 2,
            name: "bob".into(),
            age: None,
            score: 7.0
        }
    );
    let pairs: Vec<(i64, String)> = sql
        .query_as(
            &format!("SELECT id, name FROM {t} WHERE age > $1 ORDER BY id"),
            params![25],
        )
        .await
        .unwrap();
    assert_eq!(pairs, vec![(1, "ada".to_string())]);
    let count: i64 = sql
        .query_one_as(&format!("SELECT COUNT(*) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(count, 3);
    // SUM of a BIGINT is NUMERIC on PostgreSQL: a whole decimal decodes into i64.
    let total: i64 = sql
        .query_one_as(&format!("SELECT SUM(id) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(total, 6);
    let rows = sql
        .query(&format!("SELECT id, name FROM {t} ORDER BY id"), params![])
        .await
        .unwrap();
    assert_eq!(rows[2].get::<String>("name").unwrap(), "cy");
    assert_eq!(rows[2].get::<i64>(0).unwrap(), 3);
    assert_eq!(rows[0].columns(), ["id", "name"]);
}

pub async fn placeholders_bind_by_number(db: &Dbx) {
    let sql = db.sql().unwrap();
    let (a, b): (String, String) = sql
        .query_one_as(
            &format!("SELECT CAST($2 AS {0}), CAST($1 AS {0})", ty(db, "text")),
            params!["first", "second"],
        )
        .await
        .unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("second", "first"));
    let t = people(db, "placeholders").await;
    // One parameter used twice, and out of order.
    let names: Vec<String> = sql
        .query_as(
            &format!("SELECT name FROM {t} WHERE id = $2 OR (id > $1 AND id < $2) OR name = $3 ORDER BY id"),
            params![1, 3, "ada"],
        )
        .await
        .unwrap();
    assert_eq!(names, vec!["ada", "bob", "cy"]);
}

pub async fn wrong_parameter_count_is_invalid_input(db: &Dbx) {
    let t = people(db, "param_count").await;
    let sql = db.sql().unwrap();
    let q = format!("SELECT name FROM {t} WHERE id = $1 AND age = $2");
    expect_kind(sql.query(&q, params![1]).await, ErrorKind::InvalidInput);
    expect_kind(
        sql.query(&q, params![1, 2, 3]).await,
        ErrorKind::InvalidInput,
    );
    expect_kind(
        sql.execute(&format!("DELETE FROM {t}"), params![1]).await,
        ErrorKind::InvalidInput,
    );
    let left: i64 = sql
        .query_one_as(&format!("SELECT COUNT(*) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(left, 3, "a rejected statement changed nothing");
}

pub async fn values_roundtrip(db: &Dbx) {
    let t = table("types");
    let sql = db.sql().unwrap();
    sql.execute(
        &format!(
            "CREATE TABLE {t} (id {}, b {}, i {}, f {}, s {}, by {}, j {}, ts {}, u {}, d {})",
            ty(db, "int"),
            ty(db, "bool"),
            ty(db, "int"),
            ty(db, "float"),
            ty(db, "text"),
            ty(db, "bytes"),
            ty(db, "json"),
            ty(db, "timestamp"),
            ty(db, "uuid"),
            ty(db, "decimal"),
        ),
        params![],
    )
    .await
    .unwrap();
    let ts: DateTime<Utc> = Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 58).unwrap()
        + dbx::chrono::Duration::microseconds(123_456);
    let u = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    let doc = serde_json::json!({"tags": ["a", "b"], "n": 1});
    sql.execute(
        &format!("INSERT INTO {t} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
        &[
            Value::Int(1),
            Value::Bool(true),
            Value::Int(i64::MIN),
            Value::Float(-0.125),
            Value::Text("héllo 'world'".into()),
            Value::Bytes(vec![0, 255, 1, 254]),
            Value::Json(doc.clone()),
            Value::Timestamp(ts),
            Value::Uuid(u),
            Value::decimal("12345678901234567890.000123").unwrap(),
        ],
    )
    .await
    .unwrap();
    sql.execute(
        &format!("INSERT INTO {t} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
        &[
            Value::Int(2),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ],
    )
    .await
    .unwrap();

    #[derive(Deserialize, Debug, PartialEq)]
    struct Row {
        id: i64,
        b: Option<bool>,
        i: Option<i64>,
        f: Option<f64>,
        s: Option<String>,
        by: Option<Vec<u8>>,
        j: Option<serde_json::Value>,
        ts: Option<DateTime<Utc>>,
        u: Option<Uuid>,
        d: Option<String>,
    }
    // A one-column bytes result decodes into Vec<u8>.
    let by: Vec<u8> = sql
        .query_one_as(&format!("SELECT by FROM {t} WHERE id = $1"), params![1])
        .await
        .unwrap();
    assert_eq!(by, vec![0, 255, 1, 254]);
    let rows: Vec<Row> = sql
        .query_as(&format!("SELECT * FROM {t} ORDER BY id"), params![])
        .await
        .unwrap();
    assert_eq!(
        rows[0],
        Row {
            id: 1,
            b: Some(true),
            i: Some(i64::MIN),
            f: Some(-0.125),
            s: Some("héllo 'world'".into()),
            by: Some(vec![0, 255, 1, 254]),
            j: Some(doc),
            ts: Some(ts),
            u: Some(u),
            d: Some("12345678901234567890.000123".into()),
        }
    );
    assert_eq!(
        rows[1],
        Row {
            id: 2,
            b: None,
            i: None,
            f: None,
            s: None,
            by: None,
            j: None,
            ts: None,
            u: None,
            d: None
        }
    );
}

pub async fn constraint_violations_are_conflicts(db: &Dbx) {
    let t = people(db, "conflict").await;
    let sql = db.sql().unwrap();
    let e = expect_kind(
        sql.execute(
            &format!("INSERT INTO {t} (id, name) VALUES ($1, $2)"),
            params![1, "dup-id"],
        )
        .await,
        ErrorKind::Conflict,
    );
    assert!(!e.is_transient());
    // The database's own code rides along: SQLSTATE or SQLite's extended
    // result code.
    let (unique, not_null) = match db.backend_name() {
        "postgresql" => ("23505", "23502"),
        "sqlite" => ("2067", "1299"),
        other => panic!("no expected codes for {other}"),
    };
    if db.backend_name() == "postgresql" {
        assert_eq!(e.code(), Some(unique), "{e:?}");
    } else {
        // A duplicate INTEGER PRIMARY KEY is SQLITE_CONSTRAINT_PRIMARYKEY.
        assert_eq!(e.code(), Some("1555"), "{e:?}");
    }
    let e = expect_kind(
        sql.execute(
            &format!("INSERT INTO {t} (id, name) VALUES ($1, $2)"),
            params![9, "ada"],
        )
        .await,
        ErrorKind::Conflict,
    );
    assert_eq!(e.code(), Some(unique), "{e:?}");
    let e = expect_kind(
        sql.execute(
            &format!("INSERT INTO {t} (id, name) VALUES ($1, $2)"),
            params![10, None::<String>],
        )
        .await,
        ErrorKind::Conflict,
    );
    assert_eq!(e.code(), Some(not_null), "{e:?}");
    let n: i64 = sql
        .query_one_as(&format!("SELECT COUNT(*) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(n, 3);
}

pub async fn bad_statements_are_query_errors(db: &Dbx) {
    let sql = db.sql().unwrap();
    let e = expect_kind(sql.query("SELEC 1", params![]).await, ErrorKind::Query);
    assert_eq!(e.backend(), Some(db.backend_name()));
    assert_eq!(e.operation(), Some("sql.query"));
    assert!(
        std::error::Error::source(&e).is_some(),
        "the driver's error is kept as source"
    );
    expect_kind(
        sql.query(&format!("SELECT * FROM {}", table("missing")), params![])
            .await,
        ErrorKind::Query,
    );
}

pub async fn decoding_into_wrong_type_is_decode_error(db: &Dbx) {
    let t = people(db, "wrong_type").await;
    let sql = db.sql().unwrap();
    expect_kind(
        sql.query_as::<(i64, i64)>(&format!("SELECT id, name FROM {t}"), params![])
            .await,
        ErrorKind::Decode,
    );
    // NULL into a non-optional field.
    expect_kind(
        sql.query_one_as::<i64>(&format!("SELECT age FROM {t} WHERE id = 2"), params![])
            .await,
        ErrorKind::Decode,
    );
    let row = sql
        .query_one(&format!("SELECT name FROM {t} WHERE id = 1"), params![])
        .await
        .unwrap();
    expect_kind(row.get::<i64>("name"), ErrorKind::Decode);
    expect_kind(row.get::<String>("nope"), ErrorKind::InvalidInput);
}

pub async fn query_one_and_optional(db: &Dbx) {
    let t = people(db, "one").await;
    let sql = db.sql().unwrap();
    let q = format!("SELECT name FROM {t} WHERE id = $1");
    assert_eq!(
        sql.query_one_as::<String>(&q, params![1]).await.unwrap(),
        "ada"
    );
    expect_kind(sql.query_one(&q, params![42]).await, ErrorKind::NotFound);
    assert!(sql.query_optional(&q, params![42]).await.unwrap().is_none());
    assert_eq!(
        sql.query_optional_as::<String>(&q, params![3])
            .await
            .unwrap()
            .as_deref(),
        Some("cy")
    );
}

/// `query_one` and `query_optional` give the first row of a multi-row
/// result; on a statement that changes data every change is still made,
/// inside a transaction too (a driver may only cut a read short).
pub async fn query_one_takes_the_first_row_and_finishes_writes(db: &Dbx) {
    let t = people(db, "first").await;
    let sql = db.sql().unwrap();
    let first: String = sql
        .query_one_as(&format!("SELECT name FROM {t} ORDER BY id"), params![])
        .await
        .unwrap();
    assert_eq!(first, "ada");
    let last = sql
        .query_optional(&format!("SELECT name FROM {t} ORDER BY id DESC"), params![])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.get::<String>("name").unwrap(), "cy");
    let returned: i64 = sql
        .query_one_as(
            &format!("UPDATE {t} SET name = name || '!' RETURNING id"),
            params![],
        )
        .await
        .unwrap();
    assert!((1..=3).contains(&returned), "returned id {returned}");
    let names: Vec<String> = sql
        .query_as(&format!("SELECT name FROM {t} ORDER BY id"), params![])
        .await
        .unwrap();
    assert_eq!(names, ["ada!", "bob!", "cy!"]);
    let mut tx = sql.begin().await.unwrap();
    let deleted = tx
        .query_optional(&format!("DELETE FROM {t} RETURNING id"), params![])
        .await
        .unwrap();
    assert!(deleted.is_some());
    let left: i64 = tx
        .query_one_as(&format!("SELECT COUNT(*) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(left, 0);
    tx.commit().await.unwrap();
    let left: i64 = sql
        .query_one_as(&format!("SELECT COUNT(*) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(left, 0);
}

pub async fn transactions_commit_and_roll_back(db: &Dbx) {
    let t = people(db, "tx").await;
    let sql = db.sql().unwrap();
    let count = format!("SELECT COUNT(*) FROM {t}");
    let insert = format!("INSERT INTO {t} (id, name) VALUES ($1, $2)");

    let mut tx = sql.begin().await.unwrap();
    tx.execute(&insert, params![10, "tx-commit"]).await.unwrap();
    assert_eq!(
        tx.query_one_as::<i64>(&count, params![]).await.unwrap(),
        4,
        "sees its own write"
    );
    tx.commit().await.unwrap();
    assert_eq!(sql.query_one_as::<i64>(&count, params![]).await.unwrap(), 4);

    let mut tx = sql.begin().await.unwrap();
    tx.execute(&insert, params![11, "tx-rollback"])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(sql.query_one_as::<i64>(&count, params![]).await.unwrap(), 4);

    // A failed statement inside leaves the transaction usable to roll back.
    let mut tx = sql.begin().await.unwrap();
    tx.execute(&insert, params![12, "tx-ok"]).await.unwrap();
    expect_kind(
        tx.execute(&insert, params![12, "tx-dup"]).await,
        ErrorKind::Conflict,
    );
    tx.rollback().await.unwrap();
    assert_eq!(sql.query_one_as::<i64>(&count, params![]).await.unwrap(), 4);
}

pub async fn dropped_transaction_rolls_back_and_frees_its_connection(db: &Dbx) {
    let t = people(db, "tx_drop").await;
    let sql = db.sql().unwrap();
    let insert = format!("INSERT INTO {t} (id, name) VALUES ($1, $2)");
    // More rounds than any pool has connections: a leaked one would starve the pool.
    for i in 0..40 {
        let mut tx = sql.begin().await.unwrap();
        tx.execute(&insert, params![100 + i, format!("dropped-{i}")])
            .await
            .unwrap();
        drop(tx);
    }
    let n: i64 = sql
        .query_one_as(&format!("SELECT COUNT(*) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(n, 3, "every dropped transaction was rolled back");
    sql.execute(&insert, params![200, "after"]).await.unwrap();
}

pub async fn stream_yields_every_row_in_order(db: &Dbx) {
    let t = table("stream");
    let sql = db.sql().unwrap();
    sql.execute(
        &format!("CREATE TABLE {t} (n {} PRIMARY KEY)", ty(db, "int")),
        params![],
    )
    .await
    .unwrap();
    let mut tx = sql.begin().await.unwrap();
    for n in 0..2000 {
        tx.execute(&format!("INSERT INTO {t} (n) VALUES ($1)"), params![n])
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let rows: Vec<i64> = sql
        .query_stream(
            &format!("SELECT n FROM {t} WHERE n >= $1 ORDER BY n"),
            params![0],
        )
        .map(|r| r.and_then(|row| row.get::<i64>(0)))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows, (0..2000).collect::<Vec<i64>>());
    // Dropping streams midway releases their connections.
    for _ in 0..40 {
        let mut s = sql.query_stream(&format!("SELECT n FROM {t} ORDER BY n"), params![]);
        assert_eq!(s.next().await.unwrap().unwrap().get::<i64>(0).unwrap(), 0);
        drop(s);
    }
    let n: i64 = sql
        .query_one_as(&format!("SELECT COUNT(*) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(n, 2000);
    // Errors arrive through the stream.
    let mut bad = sql.query_stream("SELEC nonsense", params![]);
    expect_kind(bad.next().await.unwrap(), ErrorKind::Query);
}

pub async fn injection_strings_are_stored_as_data(db: &Dbx) {
    let t = people(db, "injection").await;
    let sql = db.sql().unwrap();
    let evil = [
        "'); DROP TABLE users; --",
        "\" OR \"1\"=\"1",
        "$1",
        "?",
        "%_*",
        "\\x00\\'",
    ];
    for (i, s) in evil.iter().enumerate() {
        sql.execute(
            &format!("INSERT INTO {t} (id, name) VALUES ($1, $2)"),
            params![100 + i as i64, *s],
        )
        .await
        .unwrap();
        let back: String = sql
            .query_one_as(
                &format!("SELECT name FROM {t} WHERE id = $1"),
                params![100 + i as i64],
            )
            .await
            .unwrap();
        assert_eq!(back, *s);
    }
    let n: i64 = sql
        .query_one_as(&format!("SELECT COUNT(*) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(n, 3 + evil.len() as i64);
}

pub async fn nul_in_text_roundtrips_or_is_invalid_input(db: &Dbx) {
    // A documented dialect difference: SQLite text may hold NUL, PostgreSQL
    // text may not; there it is a typed error, never a silent truncation.
    let sql = db.sql().unwrap();
    let q = format!("SELECT CAST($1 AS {})", ty(db, "text"));
    let r = sql.query_one_as::<String>(&q, params!["a\0b"]).await;
    if crate::text_allows_nul(db) {
        assert_eq!(r.unwrap(), "a\0b");
    } else {
        expect_kind(r, ErrorKind::InvalidInput);
    }
}

pub async fn scripts_run_several_statements(db: &Dbx) {
    let t = crate::table("script");
    let sql = db.sql().unwrap();
    // Semicolons and comment markers inside strings and comments are not
    // statement ends; the server splits the script.
    sql.execute_script(&format!(
        "CREATE TABLE {t} (id BIGINT PRIMARY KEY, note TEXT);\n\
         -- a comment; with a semicolon\n\
         INSERT INTO {t} VALUES (1, 'a; b -- c');\n\
         /* block; comment */ INSERT INTO {t} VALUES (2, 'it''s');"
    ))
    .await
    .unwrap();
    let notes: Vec<(i64, String)> = sql
        .query_as(&format!("SELECT id, note FROM {t} ORDER BY id"), params![])
        .await
        .unwrap();
    assert_eq!(notes, [(1, "a; b -- c".to_owned()), (2, "it's".to_owned())]);
    // In a transaction: rolled back with it.
    let mut tx = sql.begin().await.unwrap();
    tx.execute_script(&format!(
        "INSERT INTO {t} VALUES (3, 'x'); INSERT INTO {t} VALUES (4, 'y');"
    ))
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let n: i64 = sql
        .query_one_as(&format!("SELECT COUNT(*) FROM {t}"), params![])
        .await
        .unwrap();
    assert_eq!(n, 2);
    // A failing statement: the server's error, typed.
    let e = sql
        .execute_script(&format!(
            "INSERT INTO {t} VALUES (5, 'z'); SELECT * FROM no_such_table_x"
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Query, "{e}");
    sql.execute(&format!("DROP TABLE {t}"), params![])
        .await
        .unwrap();
}

pub async fn query_bounded_keeps_at_most_max_rows(db: &Dbx) {
    let t = table("bounded");
    let sql = db.sql().unwrap();
    sql.execute(
        &format!(
            "CREATE TABLE {t} (n {} PRIMARY KEY, name {})",
            ty(db, "int"),
            ty(db, "text")
        ),
        params![],
    )
    .await
    .unwrap();
    let mut tx = sql.begin().await.unwrap();
    for n in 0..5 {
        tx.execute(
            &format!("INSERT INTO {t} (n, name) VALUES ($1, $2)"),
            params![n, format!("p{n}")],
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let q = format!("SELECT n, name FROM {t} WHERE n >= $1 ORDER BY n");
    assert!(dbx::sql::is_plain_read(&q));
    let ns = |b: &dbx::BoundedRows| -> Vec<i64> {
        b.rows.iter().map(|r| r.get::<i64>(0).unwrap()).collect()
    };
    // Fewer rows than the maximum, exactly the maximum, more.
    let b = sql.query_bounded(&q, params![0], 10).await.unwrap();
    assert_eq!((ns(&b), b.truncated), (vec![0, 1, 2, 3, 4], false));
    assert_eq!(b.rows[4].get::<String>("name").unwrap(), "p4");
    let b = sql.query_bounded(&q, params![0], 5).await.unwrap();
    assert_eq!((ns(&b), b.truncated), (vec![0, 1, 2, 3, 4], false));
    let b = sql.query_bounded(&q, params![0], 3).await.unwrap();
    assert_eq!((ns(&b), b.truncated), (vec![0, 1, 2], true));
    let b = sql.query_bounded(&q, params![3], 1).await.unwrap();
    assert_eq!((ns(&b), b.truncated), (vec![3], true));
    // Nothing kept: truncated only when there was a row.
    let b = sql.query_bounded(&q, params![0], 0).await.unwrap();
    assert_eq!((b.rows.len(), b.truncated), (0, true));
    let b = sql.query_bounded(&q, params![99], 0).await.unwrap();
    assert_eq!((b.rows.len(), b.truncated), (0, false));
    let b = sql.query_bounded(&q, params![99], 4).await.unwrap();
    assert_eq!((b.rows.len(), b.truncated), (0, false));
    // The handle works again after a truncated query (its connection was
    // not left mid-answer for the next statement).
    for _ in 0..20 {
        let b = sql.query_bounded(&q, params![0], 2).await.unwrap();
        assert_eq!((ns(&b), b.truncated), (vec![0, 1], true));
        let n: i64 = sql
            .query_one_as(&format!("SELECT COUNT(*) FROM {t}"), params![])
            .await
            .unwrap();
        assert_eq!(n, 5);
    }
    // Parameters are bound: an injection string stays data.
    let evil = "x' OR '1'='1";
    let b = sql
        .query_bounded(
            &format!("SELECT n FROM {t} WHERE name = $1 ORDER BY n"),
            params![evil],
            10,
        )
        .await
        .unwrap();
    assert_eq!((b.rows.len(), b.truncated), (0, false));
    // A statement that writes runs to completion even when its rows are cut.
    let b = sql
        .query_bounded(
            &format!("INSERT INTO {t} (n, name) VALUES ($1, $2), ($3, $4), ($5, $6) RETURNING n"),
            params![10, evil, 11, "q11", 12, "q12"],
            1,
        )
        .await
        .unwrap();
    assert_eq!((b.rows.len(), b.truncated), (1, true));
    let names: Vec<String> = sql
        .query_as(
            &format!("SELECT name FROM {t} WHERE n >= $1 ORDER BY n"),
            params![10],
        )
        .await
        .unwrap();
    assert_eq!(names, [evil, "q11", "q12"]);
    let b = sql
        .query_bounded(
            &format!("SELECT n FROM {t} WHERE name = $1"),
            params![evil],
            10,
        )
        .await
        .unwrap();
    assert_eq!((ns(&b), b.truncated), (vec![10], false));
    // Errors are typed: a bad statement, a wrong parameter count.
    expect_kind(
        sql.query_bounded("SELECT * FROM no_such_table_bounded", params![], 5)
            .await,
        ErrorKind::Query,
    );
    expect_kind(
        sql.query_bounded(&q, params![], 5).await,
        ErrorKind::InvalidInput,
    );
    // Inside a transaction too.
    let mut tx = sql.begin().await.unwrap();
    let b = tx.query_bounded(&q, params![0], 2).await.unwrap();
    assert_eq!((ns(&b), b.truncated), (vec![0, 1], true));
    let b = tx.query_bounded(&q, params![4], 2).await.unwrap();
    assert_eq!((ns(&b), b.truncated), (vec![4, 10], true));
    tx.execute(&format!("DELETE FROM {t} WHERE n >= $1"), params![10])
        .await
        .unwrap();
    let b = tx.query_bounded(&q, params![4], 2).await.unwrap();
    assert_eq!((ns(&b), b.truncated), (vec![4], false));
    tx.rollback().await.unwrap();
    let b = sql.query_bounded(&q, params![0], 100).await.unwrap();
    assert_eq!((b.rows.len(), b.truncated), (8, false));
    sql.execute(&format!("DROP TABLE {t}"), params![])
        .await
        .unwrap();
}

/// Every SQL conformance test, by name.
#[macro_export]
macro_rules! sql_conformance {
    ($connect:path) => {
        $crate::__suite!(
            $connect,
            sql,
            [
                execute_reports_affected_rows,
                query_decodes_structs_tuples_and_scalars,
                placeholders_bind_by_number,
                wrong_parameter_count_is_invalid_input,
                values_roundtrip,
                constraint_violations_are_conflicts,
                bad_statements_are_query_errors,
                decoding_into_wrong_type_is_decode_error,
                query_one_and_optional,
                query_one_takes_the_first_row_and_finishes_writes,
                transactions_commit_and_roll_back,
                dropped_transaction_rolls_back_and_frees_its_connection,
                stream_yields_every_row_in_order,
                injection_strings_are_stored_as_data,
                nul_in_text_roundtrips_or_is_invalid_input,
                scripts_run_several_statements,
                query_bounded_keeps_at_most_max_rows,
            ]
        );
    };
}
