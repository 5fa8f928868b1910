//! SQL endpoints on SQLite and PostgreSQL: bound parameters, injection
//! attempts stored as data, transactions, streaming, row limits, and
//! `SET LOCAL ROLE` for row-level security.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn sqlite(extra: &str) -> String {
    format!("{extra}\n[databases.main]\nurl = \"sqlite:notes.db\"\n")
}

#[tokio::test]
async fn sqlite_sql_round_trip_injection_stays_data() {
    let gw = Gateway::start(&sqlite("[limits]\nmax_rows = 10")).await;
    let admin = token("ada", &["admin"]);
    let v = gw
        .ok(
            "/v1/db/main/sql/execute",
            &admin,
            json!({"sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, data BLOB)"}),
        )
        .await;
    assert_eq!(v["rows_affected"], 0);

    // Injection attempts are bound parameters: stored verbatim, run never.
    let evil = [
        "x'); DROP TABLE notes; --",
        "' OR '1'='1",
        "Robert'); DELETE FROM notes WHERE ('1'='1",
    ];
    for (i, body) in evil.iter().enumerate() {
        let v = gw
            .ok(
                "/v1/db/main/sql/execute",
                &admin,
                json!({"sql": "INSERT INTO notes (id, body, data) VALUES ($1, $2, $3)",
                       "params": [i, body, {"$bytes": "AAEC/w=="}]}),
            )
            .await;
        assert_eq!(v["rows_affected"], 1);
    }
    let v = gw
        .ok(
            "/v1/db/main/sql/query",
            &admin,
            json!({"sql": "SELECT id, body, data FROM notes ORDER BY id"}),
        )
        .await;
    assert_eq!(v["columns"], json!(["id", "body", "data"]));
    let bodies: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_str().unwrap())
        .collect();
    assert_eq!(bodies, evil);
    assert_eq!(v["rows"][0][2], json!({"$bytes": "AAEC/w=="}));
    // A lookup by an injection string matches only that row.
    let v = gw
        .ok(
            "/v1/db/main/sql/query",
            &admin,
            json!({"sql": "SELECT count(*) AS n FROM notes WHERE body = $1", "params": ["' OR '1'='1"]}),
        )
        .await;
    assert_eq!(v["rows"][0][0], 1);

    // Transactions: all or nothing.
    let (s, v) = gw
        .post(
            "/v1/db/main/sql/transaction",
            &admin,
            json!({"statements": [
                {"sql": "INSERT INTO notes (id, body) VALUES ($1, $2)", "params": [100, "a"]},
                {"sql": "INSERT INTO notes (id, body) VALUES ($1, $2)", "params": [101, "b"]},
                {"sql": "INSERT INTO notes (id, body) VALUES ($1, $2)", "params": [100, "dup"]},
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"].as_str().unwrap().starts_with("statements[2]"),
        "{v}"
    );
    let count = |v: &Value| v["rows"][0][0].as_i64().unwrap();
    let v = gw
        .ok(
            "/v1/db/main/sql/query",
            &admin,
            json!({"sql": "SELECT count(*) FROM notes"}),
        )
        .await;
    assert_eq!(count(&v), 3, "the failed transaction left nothing");
    let v = gw
        .ok(
            "/v1/db/main/sql/transaction",
            &admin,
            json!({"statements": [
                {"sql": "INSERT INTO notes (id, body) VALUES ($1, $2)", "params": [100, "a"]},
                {"sql": "UPDATE notes SET body = $1 WHERE id = $2", "params": ["a2", 100]},
                {"sql": "SELECT body FROM notes WHERE id = $1", "params": [100], "query": true},
            ]}),
        )
        .await;
    assert_eq!(v["results"][0]["rows_affected"], 1);
    assert_eq!(v["results"][1]["rows_affected"], 1);
    assert_eq!(v["results"][2]["rows"][0][0], "a2");

    // 25 more rows: the JSON answer stops at max_rows (10) and says so;
    // NDJSON streams them all.
    for i in 0..25 {
        gw.ok(
            "/v1/db/main/sql/execute",
            &admin,
            json!({"sql": "INSERT INTO notes (id, body) VALUES ($1, $2)", "params": [1000 + i, format!("n{i}")]}),
        )
        .await;
    }
    let v = gw
        .ok(
            "/v1/db/main/sql/query",
            &admin,
            json!({"sql": "SELECT id FROM notes ORDER BY id"}),
        )
        .await;
    assert_eq!(v["row_count"], 10);
    assert_eq!(v["truncated"], true);
    let resp = gw
        .http
        .post(gw.url("/v1/db/main/sql/query"))
        .bearer_auth(&admin)
        .header("accept", "application/x-ndjson")
        .json(&json!({"sql": "SELECT id, body FROM notes WHERE id >= $1 ORDER BY id", "params": [1000]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0], json!({"columns": ["id", "body"]}));
    assert_eq!(lines.len(), 1 + 25 + 1);
    assert_eq!(lines[1], json!([1000, "n0"]));
    assert_eq!(
        lines[26],
        json!({"done": true, "row_count": 25, "truncated": false})
    );

    // A query that may write needs write access, even through /query.
    let reader = token("rita", &["reader"]);
    let (s, v) = gw
        .post(
            "/v1/db/main/sql/query",
            &reader,
            json!({"sql": "DELETE FROM notes RETURNING id"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = gw
        .post(
            "/v1/db/main/sql/query",
            &reader,
            json!({"sql": "SELECT count(*) FROM notes"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // A SQL error is a problem carrying dbx's kind.
    let (s, v) = gw
        .post(
            "/v1/db/main/sql/query",
            &admin,
            json!({"sql": "SELEC nonsense"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["kind"], "query");
}

#[tokio::test]
async fn postgres_sql_typed_values_and_row_level_security() {
    let table = unique("gw_rls");
    let role = "dbx_gw_test_rls_reader";
    let extra = format!(
        r#"
[roles.tenant]
grants = [{{ databases = ["pg"], capabilities = ["sql"], access = "read" }}]
postgres_role = "{role}"
[databases.pg]
url = "{}"
"#,
        postgres_url()
    );
    let gw = Gateway::start(&extra).await;
    let admin = token("ada", &["admin"]);
    // The role may exist from an earlier run; creating it is idempotent here.
    gw.ok(
        "/v1/db/pg/sql/execute",
        &admin,
        json!({"sql": format!("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} NOLOGIN; END IF; END $$")}),
    )
    .await;
    gw.ok(
        "/v1/db/pg/sql/transaction",
        &admin,
        json!({"statements": [
            {"sql": format!("CREATE TABLE {table} (id uuid PRIMARY KEY, owner text NOT NULL, at timestamptz, amount numeric, doc jsonb)")},
            {"sql": format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")},
            {"sql": format!("CREATE POLICY own ON {table} USING (owner = current_user)")},
            {"sql": format!("GRANT SELECT ON {table} TO {role}")},
        ]}),
    )
    .await;
    let id = "6c4a3f4e-8a43-4a53-9d3e-0a1b2c3d4e5f";
    gw.ok(
        "/v1/db/pg/sql/execute",
        &admin,
        json!({"sql": format!("INSERT INTO {table} (id, owner, at, amount, doc) VALUES ($1, $2, $3, $4, $5)"),
               "params": [{"$uuid": id}, role, {"$timestamp": "2026-01-02T03:04:05Z"}, {"$decimal": "12.50"}, {"k": [1, 2]}]}),
    )
    .await;
    gw.ok(
        "/v1/db/pg/sql/execute",
        &admin,
        json!({"sql": format!("INSERT INTO {table} (id, owner) VALUES (gen_random_uuid(), $1)"), "params": ["someone_else"]}),
    )
    .await;
    // The admin (no postgres_role) sees both rows.
    let v = gw
        .ok(
            "/v1/db/pg/sql/query",
            &admin,
            json!({"sql": format!("SELECT count(*) FROM {table}")}),
        )
        .await;
    assert_eq!(v["rows"][0][0], 2);
    // The tenant role runs under SET LOCAL ROLE: row-level security applies.
    let tenant = token("tom", &["tenant"]);
    let v = gw
        .ok(
            "/v1/db/pg/sql/query",
            &tenant,
            json!({"sql": format!("SELECT id, owner, at, amount, doc, current_user FROM {table}")}),
        )
        .await;
    assert_eq!(v["row_count"], 1, "{v}");
    let row = &v["rows"][0];
    assert_eq!(row[0], id);
    assert_eq!(row[1], role);
    assert!(
        row[2].as_str().unwrap().starts_with("2026-01-02T03:04:05"),
        "{row}"
    );
    assert_eq!(row[3], "12.50");
    assert_eq!(row[4], json!({"k": [1, 2]}));
    assert_eq!(row[5], role);
    // And only reads: a write is refused by the gateway before PostgreSQL.
    let (s, _) = gw
        .post(
            "/v1/db/pg/sql/execute",
            &tenant,
            json!({"sql": format!("DELETE FROM {table}")}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    gw.ok(
        "/v1/db/pg/sql/execute",
        &admin,
        json!({"sql": format!("DROP TABLE {table}")}),
    )
    .await;
    // The JSON answer holds at most max_rows (10,000 by default) and says
    // it was cut; the same shared connection answers the next read right.
    let v = gw
        .ok(
            "/v1/db/pg/sql/query",
            &admin,
            json!({"sql": "SELECT n FROM generate_series(1, $1::int) AS n ORDER BY n", "params": [25000]}),
        )
        .await;
    assert_eq!(v["row_count"], 10_000);
    assert_eq!(v["truncated"], true);
    assert_eq!(v["rows"][9_999][0], 10_000);
    let v = gw
        .ok(
            "/v1/db/pg/sql/query",
            &admin,
            json!({"sql": "SELECT $1::int + 1 AS n", "params": [41]}),
        )
        .await;
    assert_eq!(
        (v["rows"][0][0].as_i64(), v["truncated"].as_bool()),
        (Some(42), Some(false))
    );
}
