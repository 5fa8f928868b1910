//! `dbx query TARGET SQL [PARAM]...`: one statement, parameters bound as
//! `$1..$N`, rows printed as a table, JSON or CSV.

use super::{App, close};
use crate::cli::{Format, QueryArgs};
use crate::error::{CliError, CliResult};
use crate::output::{Table, csv_record, plural, value_cell, value_json, value_text};
use crate::parse;
use dbx::Row;
use futures_util::StreamExt;

/// Advice when a parameter's type does not fit (PostgreSQL checks them).
const TYPE_HINT: &str = "parameters are typed from their text (42 is an integer, true a boolean): \
write \"42\" (with the quotes) to pass text, --raw-params to pass every parameter as text, \
or cast the placeholder in the SQL ($1::int)";

/// Run the statement: as a query when it returns rows (by
/// [`returns_rows`], or `--rows`/`--execute`), else as `execute`. Tables
/// are printed once all rows are in; JSON and CSV as rows arrive.
pub(crate) async fn run(app: &App, args: QueryArgs) -> CliResult {
    let params = args
        .params
        .iter()
        .map(|p| parse::sql_param(p, args.raw_params))
        .collect::<Result<Vec<_>, String>>()
        .map_err(CliError::Usage)?;
    let format = args.format.unwrap_or(if app.out.json {
        Format::Json
    } else {
        Format::Table
    });
    let rows = if args.rows {
        true
    } else if args.execute {
        false
    } else {
        returns_rows(&args.sql)
    };

    let (_, db) = app.connect(&args.target).await?;
    let result = match db.sql() {
        Ok(sql) if rows && format == Format::Table => match sql.query(&args.sql, &params).await {
            Ok(rows) => print_table(app, &rows),
            Err(e) => Err(hinted(e)),
        },
        Ok(sql) if rows => stream_rows(app, sql, &args.sql, &params, format).await,
        Ok(sql) => match sql.execute(&args.sql, &params).await {
            Ok(n) => print_affected(app, n, format),
            Err(e) => Err(hinted(e)),
        },
        Err(e) => Err(e.into()),
    };
    close(&db).await;
    result
}

/// A dbx error, with advice when a parameter's type did not fit.
fn hinted(e: dbx::Error) -> CliError {
    if e.kind() == dbx::ErrorKind::InvalidInput && e.message().contains("but the statement expects")
    {
        CliError::DbHint(e, TYPE_HINT)
    } else {
        CliError::Db(e)
    }
}

fn print_affected(app: &App, n: u64, format: Format) -> CliResult {
    let text = match format {
        Format::Json => format!("{}\n", serde_json::json!({ "rows_affected": n })),
        _ => format!("{} affected\n", plural(n, "row", "rows")),
    };
    app.out.write(&text)?;
    Ok(())
}

/// The rows as an aligned table (which needs them all, for the widths).
fn print_table(app: &App, rows: &[Row]) -> CliResult {
    let mut text = String::new();
    if let Some(first) = rows.first() {
        let mut table = Table::new(first.columns().to_vec());
        for row in rows {
            table.push(row.values().iter().map(value_cell).collect());
        }
        text = table.render(&app.out);
    }
    text.push_str(&format!("({})\n", plural(rows.len() as u64, "row", "rows")));
    app.out.write(&text)?;
    Ok(())
}

/// Output buffered before it is written, for streamed rows.
const FLUSH_AT: usize = 64 * 1024;

/// JSON or CSV, written as the rows arrive (`query_stream`), so a large
/// result never sits in memory whole.
async fn stream_rows(
    app: &App,
    sql: &dbx::Sql,
    statement: &str,
    params: &[dbx::Value],
    format: Format,
) -> CliResult {
    let json = format == Format::Json;
    let mut stream = sql.query_stream(statement, params);
    let mut buf = String::new();
    let mut n = 0u64;
    while let Some(row) = stream.next().await {
        let row = row.map_err(hinted)?;
        if json {
            buf.push_str(if n == 0 { "[\n  " } else { ",\n  " });
            buf.push_str(&row_json(&row));
        } else {
            if n == 0 {
                buf.push_str(&csv_record(row.columns().iter().map(String::as_str)));
            }
            let fields: Vec<String> = row.values().iter().map(value_text).collect();
            buf.push_str(&csv_record(fields.iter().map(String::as_str)));
        }
        n += 1;
        if buf.len() >= FLUSH_AT {
            app.out.write(&buf)?;
            buf.clear();
        }
    }
    if json {
        buf.push_str(if n == 0 { "[]\n" } else { "\n]\n" });
    }
    app.out.write(&buf)?;
    Ok(())
}

/// A row as a JSON object, its keys in column order (written by hand:
/// serde_json's map sorts keys unless its `preserve_order` feature is on).
fn row_json(row: &Row) -> String {
    let fields: Vec<String> = row
        .columns()
        .iter()
        .zip(row.values())
        .map(|(c, v)| format!("{}:{}", serde_json::Value::from(c.as_str()), value_json(v)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// Whether a statement returns rows: its first word is `SELECT`, `VALUES`,
/// `SHOW`, `EXPLAIN`, `WITH`, `TABLE`, `PRAGMA` or `DESCRIBE`, or it has a
/// `RETURNING` clause. Words inside string literals, quoted names,
/// dollar-quoted bodies and comments do not count.
pub(crate) fn returns_rows(sql: &str) -> bool {
    const FIRST: &[&str] = &[
        "select", "values", "show", "explain", "with", "table", "pragma", "describe",
    ];
    let words = words(sql);
    words
        .first()
        .is_some_and(|w| FIRST.iter().any(|k| w.eq_ignore_ascii_case(k)))
        || words.iter().any(|w| w.eq_ignore_ascii_case("returning"))
}

/// The bare words of a statement, outside literals and comments.
fn words(sql: &str) -> Vec<&str> {
    let b = sql.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = find(b, i + 2, b"\n").map_or(b.len(), |j| j + 1);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // PostgreSQL nests block comments.
                let mut depth = 1;
                i += 2;
                while i < b.len() && depth > 0 {
                    if b[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
            }
            b'\'' => {
                // E'...' strings take backslash escapes.
                let escapes =
                    i > 0 && matches!(b[i - 1], b'e' | b'E') && (i < 2 || !ident(b[i - 2]));
                i = quoted_end(b, i + 1, b'\'', escapes);
            }
            b'"' | b'`' => i = quoted_end(b, i + 1, c, false),
            b'[' => i = find(b, i + 1, b"]").map_or(b.len(), |j| j + 1),
            b'$' => match dollar_tag(b, i) {
                Some(tag) => {
                    let body = i + tag.len();
                    i = find(b, body, tag).map_or(b.len(), |j| j + tag.len());
                }
                None => i += 1,
            },
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (ident(b[i]) || b[i] == b'$') {
                    i += 1;
                }
                words.push(&sql[start..i]);
            }
            c if c.is_ascii_digit() => {
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    words
}

/// Where a quoted run that started before `from` ends (after its closing
/// quote; a doubled quote is an escaped one).
fn quoted_end(b: &[u8], mut i: usize, quote: u8, backslash: bool) -> usize {
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// A dollar-quote opening at `i` (`$$` or `$tag$`), not a `$1` placeholder.
fn dollar_tag(b: &[u8], i: usize) -> Option<&[u8]> {
    let mut j = i + 1;
    if b.get(j).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
        j += 1;
    }
    (b.get(j) == Some(&b'$')).then(|| &b[i..=j])
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_that_return_rows() {
        for sql in [
            "SELECT 1",
            "  select * from t",
            "(SELECT 1) UNION (SELECT 2)",
            "-- comment\nSELECT 1",
            "/* a /* nested */ comment */ VALUES (1)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "EXPLAIN SELECT 1",
            "SHOW server_version",
            "PRAGMA table_info(t)",
            "INSERT INTO t (a) VALUES ($1) RETURNING id",
            "DELETE FROM t WHERE a = 1 returning *",
            "TABLE users",
        ] {
            assert!(returns_rows(sql), "{sql}");
        }
    }

    #[test]
    fn statements_that_do_not() {
        for sql in [
            "INSERT INTO t (a) VALUES ($1)",
            "UPDATE t SET a = 'returning'",
            "UPDATE t SET a = E'it\\'s returning'",
            "DELETE FROM t -- returning\n",
            "CREATE TABLE returning_things (a int)",
            "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 RETURNING $$ LANGUAGE sql",
            "CREATE FUNCTION f() RETURNS int AS $body$ returning $body$ LANGUAGE sql",
            "INSERT INTO \"returning\" VALUES (1)",
            "DROP TABLE x",
            "",
            "   ",
            "'; DROP TABLE x; --",
        ] {
            assert!(!returns_rows(sql), "{sql}");
        }
    }

    #[test]
    fn placeholders_are_not_dollar_quotes() {
        assert!(returns_rows("UPDATE t SET a = $1 WHERE b = $2 RETURNING a"));
    }
}
