//! `dbx query` on SQLite and PostgreSQL: parameters, formats, errors.

use crate::common::*;
use std::path::Path;

const INJECTION: &str = "'; DROP TABLE x; --";

/// The same checks on any SQL database; `table` is a fresh table name.
fn query_roundtrip(dir: &Path, target: &str, table: &str) {
    let q = |args: &[&str]| {
        let mut all = vec!["query", target];
        all.extend_from_slice(args);
        run_in(dir, &all)
    };
    q(&[&format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT, score DOUBLE PRECISION, note TEXT)"
    )])
    .ok();
    let insert = format!("INSERT INTO {table} (id, name, score, note) VALUES ($1, $2, $3, $4)");
    let r = q(&[&insert, "1", "Ada", "9.5", INJECTION]);
    assert_eq!(r.ok(), "1 row affected\n");
    q(&[&insert, "2", "say \"hi\", then\nleave", "null", "null"]).ok();
    q(&[&insert, "3", "\"42\"", "-2e3", "@@handle"]).ok();

    // The injection string is data: the table is still there, the text verbatim.
    let r = q(&[&format!("SELECT note FROM {table} WHERE id = $1"), "1"]);
    assert!(r.ok().contains(INJECTION), "{r:?}");
    let r = q(&[
        "--json",
        &format!("SELECT count(*) AS n FROM {table} WHERE note = $1"),
        INJECTION,
    ]);
    assert_eq!(r.json(), serde_json::json!([{"n": 1}]));

    // Table: aligned, NULL shown, control characters escaped, a row count.
    let r = q(&[&format!(
        "SELECT id, name, score, note FROM {table} ORDER BY id"
    )]);
    let out = r.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(
        lines[0].starts_with("id") || lines[0].starts_with(" id"),
        "{out}"
    );
    assert!(lines[1].chars().all(|c| c == '-' || c == ' '), "{out}");
    assert!(
        lines[2].contains("Ada") && lines[2].contains("9.5"),
        "{out}"
    );
    assert!(
        lines[3].contains("say \"hi\", then\\nleave") && lines[3].contains("NULL"),
        "{out}"
    );
    assert!(
        lines[4].contains(" 42 ") && lines[4].contains("-2000") && lines[4].contains("@handle"),
        "{out}"
    );
    assert_eq!(lines[5], "(3 rows)");
    // Columns line up: each column starts at the same offset on every line.
    let name_at = lines[0].find("name").unwrap();
    assert_eq!(lines[2].find("Ada"), Some(name_at), "{out}");

    // JSON: an array of objects with typed values, keys in column order.
    let r = q(&[
        "--format",
        "json",
        &format!("SELECT id, name, score, note FROM {table} ORDER BY id"),
    ]);
    let v = r.json();
    assert_eq!(v[0]["id"], 1);
    assert_eq!(v[0]["name"], "Ada");
    assert_eq!(v[0]["score"], 9.5);
    assert_eq!(v[0]["note"], INJECTION);
    assert_eq!(v[1]["score"], serde_json::Value::Null);
    assert_eq!(v[1]["name"], "say \"hi\", then\nleave");
    assert_eq!(v[2]["name"], "42");
    assert!(r.stdout.find("\"id\"").unwrap() < r.stdout.find("\"name\"").unwrap());
    // --json means the same.
    let r2 = run_in(
        dir,
        &[
            "--json",
            "query",
            target,
            &format!("SELECT id, name, score, note FROM {table} ORDER BY id"),
        ],
    );
    assert_eq!(r2.json(), v);

    // CSV by RFC 4180.
    let r = q(&[
        "-f",
        "csv",
        &format!("SELECT id, name, score, note FROM {table} ORDER BY id"),
    ]);
    assert_eq!(
        r.ok(),
        format!(
            "id,name,score,note\r\n1,Ada,9.5,{INJECTION}\r\n2,\"say \"\"hi\"\", then\nleave\",,\r\n3,42,-2000,@handle\r\n"
        )
    );

    // Writes report what they changed, in each format.
    let update = format!("UPDATE {table} SET score = $1 WHERE id >= $2");
    assert_eq!(q(&[&update, "1.25", "2"]).ok(), "2 rows affected\n");
    assert_eq!(
        q(&["--format", "json", &update, "1.5", "2"]).json()["rows_affected"],
        2
    );
    // RETURNING makes it a query.
    let r = q(&[
        "--json",
        &format!("UPDATE {table} SET score = $1 WHERE id = $2 RETURNING id, score"),
        "3.5",
        "3",
    ]);
    assert_eq!(r.json(), serde_json::json!([{"id": 3, "score": 3.5}]));
    // No rows: no header, a count; [] in JSON; nothing in CSV.
    let empty = format!("SELECT id FROM {table} WHERE id > $1");
    assert_eq!(q(&[&empty, "100"]).ok(), "(0 rows)\n");
    assert_eq!(q(&["--json", &empty, "100"]).json(), serde_json::json!([]));
    assert_eq!(q(&["-f", "csv", &empty, "100"]).ok(), "");

    // --raw-params binds text; --execute runs a SELECT as a statement.
    let r = q(&[
        "--raw-params",
        "--json",
        &format!("SELECT name FROM {table} WHERE note = $1"),
        "@@handle",
    ]);
    assert_eq!(r.json(), serde_json::json!([{"name": "42"}]));
    let r = q(&[
        "--execute",
        &format!("DELETE FROM {table} WHERE id = $1"),
        "3",
    ]);
    assert_eq!(r.ok(), "1 row affected\n");

    // A parameter file.
    let file = dir.join("note.txt");
    std::fs::write(&file, "from a file, with 'quotes'").unwrap();
    q(&[&insert, "4", "File", "0.5", &format!("@{}", file.display())]).ok();
    let r = q(&["--json", &format!("SELECT note FROM {table} WHERE id = 4")]);
    assert_eq!(r.json()[0]["note"], "from a file, with 'quotes'");

    // Errors: the database's message for bad SQL; dbx's for parameter counts.
    let r = q(&[&format!("SELEC id FROM {table}")]);
    r.code(1).stderr_has("error:").stderr_has("syntax error");
    let r = q(&[
        &format!("SELECT id FROM {table} WHERE id = $1 AND name = $2"),
        "1",
    ]);
    r.code(1).stderr_has("invalid_input").stderr_has("$2");
    let r = q(&[&format!("SELECT id FROM {table} WHERE id = $1"), "1", "2"]);
    r.code(1).stderr_has("invalid_input").stderr_has("given");
    let r = q(&[&format!("SELECT id FROM no_such_table_{table}")]);
    r.code(1).stderr_has(&format!("no_such_table_{table}"));
}

#[test]
fn sqlite_query_with_params_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite:{}", dir.path().join("q.db").display());
    query_roundtrip(dir.path(), &target, "people");
    // Bytes print as hex.
    let r = run_in(
        dir.path(),
        &["query", &target, "SELECT X'DEADBEEF' AS b, NULL AS n"],
    );
    assert!(r.ok().contains("\\xdeadbeef"), "{r:?}");
    let v = run_in(
        dir.path(),
        &["--json", "query", &target, "SELECT X'00FF' AS b"],
    )
    .json();
    assert_eq!(v[0]["b"], "\\x00ff");
}

#[test]
fn postgres_query_with_params_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let pg = postgres_url();
    let table = unique("people");
    let _cleanup = Cleanup(vec![vec![
        "query".into(),
        pg.clone(),
        format!("DROP TABLE IF EXISTS {table}"),
    ]]);
    query_roundtrip(dir.path(), &pg, &table);

    // PostgreSQL types: bytea as hex, numeric as text, json embedded.
    let r = run_in(
        dir.path(),
        &[
            "--json",
            "query",
            &pg,
            "SELECT '\\xdead'::bytea AS b, 1.50::numeric AS n, '{\"k\": [1]}'::jsonb AS j, $1::int AS i",
            "7",
        ],
    );
    assert_eq!(
        r.json(),
        serde_json::json!([{"b": "\\xdead", "n": "1.50", "j": {"k": [1]}, "i": 7}])
    );
    // A parameter typed as an integer where the server wants text: a hint.
    run_in(dir.path(), &["query", &pg, "SELECT $1::text AS t", "42"])
        .code(1)
        .stderr_has("but the statement expects text")
        .stderr_has("hint:");
    let r = run_in(
        dir.path(),
        &["query", &pg, "SELECT $1::text AS t", "\"42\""],
    );
    assert!(r.ok().contains("42"), "{r:?}");
}
