//! What a SQL statement means for the cache: the tables a read depends
//! on, whether it is volatile, and the tables a write changes.
//!
//! # The rule
//!
//! A **read** is cached only when it is a plain read (the rule of
//! [`is_plain_read`](crate::sql::is_plain_read)) that names no clock or
//! session value (`now()`, `CURRENT_TIMESTAMP`, SQLite's `date()`/
//! `datetime()`/`strftime()`..., `current_user`). It depends on every name
//! that stands after `FROM` or `JOIN` up to the next clause (`WHERE`,
//! `GROUP`, `ORDER`, `LIMIT`, `ON`, ...), in subqueries too: the tables, and
//! harmlessly their aliases and schemas.
//!
//! A **write** changes the table it names after `INSERT INTO`, `REPLACE
//! INTO`, `UPDATE`, `DELETE FROM`, `MERGE INTO`, `TRUNCATE`, `ALTER TABLE`
//! or `DROP TABLE` (the last part of a qualified name). `CREATE TABLE`,
//! `CREATE INDEX` and transaction control change no cached result. Any other
//! statement (a `WITH` that may write, `CALL`, `DO`, `COPY`, a `SELECT` that
//! calls a function that may write, `CASCADE`, a script) may change anything:
//! every cached SQL result of the database is dropped.
//!
//! Names compare case-insensitively (quoted or not), which may drop more
//! than needed, never less. What no statement text shows is not seen:
//! triggers, `ON DELETE CASCADE` foreign keys, views over the written
//! table, and writes by other programs. Tag such reads and invalidate the
//! tag, or rely on the TTL.

use crate::sql::reads::{Token, Words};

/// What the cache needs to know about a statement it is asked to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadInfo {
    /// Whether its result may be cached.
    pub(crate) cacheable: bool,
    /// The names it depends on, lowercase.
    pub(crate) tables: Vec<String>,
}

/// What a statement may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Writes {
    /// Nothing a cached read can see.
    Nothing,
    /// These tables (lowercase).
    Tables(Vec<String>),
    /// Anything.
    Unknown,
}

/// Words that end a `FROM` list.
const CLAUSES: &[&str] = &[
    "where",
    "group",
    "order",
    "limit",
    "having",
    "window",
    "union",
    "intersect",
    "except",
    "on",
    "using",
    "returning",
    "set",
    "values",
    "offset",
    "fetch",
    "for",
    "select",
];

/// Words inside a `FROM` list that are never names.
const FROM_WORDS: &[&str] = &[
    "as", "lateral", "only", "join", "inner", "left", "right", "full", "outer", "cross", "natural",
];

/// Words that stand for the clock or the session.
const VOLATILE_WORDS: &[&str] = &[
    "current_timestamp",
    "current_date",
    "current_time",
    "localtime",
    "localtimestamp",
    "current_user",
    "session_user",
    "current_role",
];

/// Functions whose result depends on the clock, the session or chance.
const VOLATILE_CALLS: &[&str] = &[
    "now",
    "age",
    "date",
    "time",
    "datetime",
    "julianday",
    "strftime",
    "unixepoch",
    "timeofday",
    "statement_timestamp",
    "transaction_timestamp",
    "clock_timestamp",
    "random",
    "changes",
    "last_insert_rowid",
    "total_changes",
];

fn name(t: Token<'_>) -> Option<&str> {
    match t {
        Token::Word(w) | Token::Quoted(w) => Some(w),
        _ => None,
    }
}

fn is(w: &str, list: &[&str]) -> bool {
    list.iter().any(|k| w.eq_ignore_ascii_case(k))
}

/// The tables a statement reads and whether its result may be cached.
pub(crate) fn read_info(sql: &str) -> ReadInfo {
    let plain = crate::sql::is_plain_read(sql);
    let mut tables: Vec<String> = Vec::new();
    let mut volatile = false;
    // Whether the words now stand in a FROM list, per parenthesis level.
    let mut in_from = vec![false];
    let mut prev: Option<&str> = None;
    for t in Words::new(sql) {
        let level = in_from.len() - 1;
        let word = match t {
            Token::Word(w) => Some(w),
            _ => None,
        };
        match t {
            Token::Open => {
                if prev.is_some_and(|w| is(w, VOLATILE_CALLS)) {
                    volatile = true;
                }
                in_from.push(false);
            }
            Token::Close => {
                if in_from.len() > 1 {
                    in_from.pop();
                }
            }
            Token::Word(w) => {
                if is(w, VOLATILE_WORDS) {
                    volatile = true;
                }
                if w.eq_ignore_ascii_case("from") || w.eq_ignore_ascii_case("join") {
                    in_from[level] = true;
                } else if is(w, CLAUSES) {
                    in_from[level] = false;
                } else if in_from[level] && !is(w, FROM_WORDS) {
                    push(&mut tables, w);
                }
            }
            Token::Quoted(w) => {
                if in_from[level] {
                    push(&mut tables, w);
                }
            }
            Token::End => in_from = vec![false],
            Token::Comma | Token::Dot | Token::Other => {}
        }
        prev = word;
    }
    ReadInfo {
        cacheable: plain && !volatile,
        tables,
    }
}

fn push(tables: &mut Vec<String>, name: &str) {
    let name = name.to_lowercase();
    if !tables.contains(&name) {
        tables.push(name);
    }
}

/// The tables a statement may change, by the rule in the module docs.
pub(crate) fn writes(sql: &str) -> Writes {
    if crate::sql::is_plain_read(sql) {
        return Writes::Nothing;
    }
    let mut words = Words::new(sql).peekable();
    let Some(first) = words.next().and_then(name) else {
        return Writes::Unknown;
    };
    let first = first.to_ascii_lowercase();
    let rest: Vec<Token<'_>> = words.collect();
    // A second statement, or CASCADE, may change anything.
    let ends = rest.iter().position(|t| *t == Token::End);
    if let Some(i) = ends
        && rest[i..].iter().any(|t| *t != Token::End)
    {
        return Writes::Unknown;
    }
    let rest = &rest[..ends.unwrap_or(rest.len())];
    if rest
        .iter()
        .any(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("cascade")))
    {
        return Writes::Unknown;
    }
    let word_at = |i: usize| rest.get(i).copied().and_then(name);
    let eq = |i: usize, k: &str| word_at(i).is_some_and(|w| w.eq_ignore_ascii_case(k));
    // The table named at `i` (a qualified name gives its last part), and
    // the index after it.
    let table_at = |mut i: usize| -> Option<(String, usize)> {
        let mut last = word_at(i)?;
        i += 1;
        while rest.get(i) == Some(&Token::Dot) {
            last = word_at(i + 1)?;
            i += 2;
        }
        Some((last.to_lowercase(), i))
    };
    let skip = |mut i: usize, words: &[&str]| {
        while word_at(i).is_some_and(|w| is(w, words))
            && rest.get(i).is_some_and(|t| matches!(t, Token::Word(_)))
        {
            i += 1;
        }
        i
    };
    let one = |i: usize| match table_at(i) {
        Some((t, _)) => Writes::Tables(vec![t]),
        None => Writes::Unknown,
    };
    let list = |mut i: usize| {
        let mut tables = Vec::new();
        while let Some((t, next)) = table_at(i) {
            tables.push(t);
            if rest.get(next) != Some(&Token::Comma) {
                break;
            }
            i = skip(next + 1, &["only"]);
        }
        if tables.is_empty() {
            Writes::Unknown
        } else {
            Writes::Tables(tables)
        }
    };
    match first.as_str() {
        "insert" | "replace" => match rest
            .iter()
            .position(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("into")))
        {
            Some(i) => one(i + 1),
            None => Writes::Unknown,
        },
        "update" => {
            // UPDATE [ONLY] t / SQLite's UPDATE OR REPLACE t
            let i = if eq(0, "or") { 2 } else { skip(0, &["only"]) };
            one(i)
        }
        "delete" if eq(0, "from") => one(skip(1, &["only"])),
        "merge" if eq(0, "into") => one(1),
        "truncate" => list(skip(0, &["table", "only"])),
        "alter" if eq(0, "table") => one(skip(1, &["if", "exists", "only"])),
        "drop" if eq(0, "table") => list(skip(1, &["if", "exists"])),
        "create" => {
            let i = skip(0, &["temp", "temporary", "unique", "unlogged", "virtual"]);
            if eq(i, "table") || eq(i, "index") || eq(i, "sequence") || eq(i, "schema") {
                Writes::Nothing
            } else {
                Writes::Unknown
            }
        }
        "begin" | "start" | "commit" | "end" | "rollback" | "savepoint" | "release" | "analyze"
        | "vacuum" | "checkpoint" | "listen" | "unlisten" | "notify" => Writes::Nothing,
        _ => Writes::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(sql: &str) -> Vec<String> {
        let info = read_info(sql);
        assert!(info.cacheable, "{sql}");
        info.tables
    }

    #[test]
    fn reads_depend_on_the_names_in_their_from_lists() {
        assert_eq!(tables("SELECT name FROM users WHERE id = $1"), ["users"]);
        assert_eq!(
            tables(
                "SELECT * FROM a x, b AS y JOIN \"C\" ON x.id = y.id LEFT OUTER JOIN public.d USING (id)"
            ),
            ["a", "x", "b", "y", "c", "public", "d"]
        );
        assert_eq!(
            tables("SELECT * FROM (SELECT id FROM inner_t WHERE v > 1) s, outer_t ORDER BY id"),
            ["inner_t", "s", "outer_t"]
        );
        assert_eq!(
            tables("SELECT (SELECT count(*) FROM b) FROM a WHERE x IN (SELECT y FROM c)"),
            ["b", "a", "c"]
        );
        assert_eq!(tables("SELECT 'FROM users' AS t"), Vec::<String>::new());
        // Columns named like clock functions are not calls.
        assert_eq!(tables("SELECT name, age, date FROM people"), ["people"]);
    }

    #[test]
    fn volatile_and_writing_reads_are_not_cached() {
        for sql in [
            "SELECT now()",
            "SELECT id FROM t WHERE created < CURRENT_TIMESTAMP",
            "SELECT datetime('now')",
            "SELECT random() AS r FROM t",
            "SELECT nextval('s')",
            "SELECT * FROM t FOR UPDATE",
            "INSERT INTO t VALUES (1) RETURNING id",
            "SELECT 1; DELETE FROM t",
        ] {
            assert!(!read_info(sql).cacheable, "{sql}");
        }
    }

    #[test]
    fn writes_name_their_tables() {
        let t = |v: &[&str]| Writes::Tables(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(writes("INSERT INTO Users (id) VALUES ($1)"), t(&["users"]));
        assert_eq!(
            writes("insert or replace into kv values ($1, $2)"),
            t(&["kv"])
        );
        assert_eq!(
            writes("INSERT INTO a SELECT * FROM b ON CONFLICT DO NOTHING"),
            t(&["a"])
        );
        assert_eq!(
            writes("UPDATE ONLY public.\"Users\" SET n = $1"),
            t(&["users"])
        );
        assert_eq!(writes("UPDATE OR IGNORE t SET n = 1"), t(&["t"]));
        assert_eq!(
            writes("DELETE FROM t WHERE id IN (SELECT id FROM u)"),
            t(&["t"])
        );
        assert_eq!(writes("TRUNCATE TABLE a, ONLY b"), t(&["a", "b"]));
        assert_eq!(writes("DROP TABLE IF EXISTS a, b"), t(&["a", "b"]));
        assert_eq!(writes("ALTER TABLE a ADD COLUMN c int"), t(&["a"]));
        assert_eq!(
            writes("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE"),
            t(&["t"])
        );
        assert_eq!(writes("CREATE TABLE x (id int)"), Writes::Nothing);
        assert_eq!(writes("create unique index i on t (c)"), Writes::Nothing);
        assert_eq!(writes("BEGIN"), Writes::Nothing);
        assert_eq!(writes("SELECT * FROM t"), Writes::Nothing);
        for unknown in [
            "WITH d AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM d",
            "CALL refresh()",
            "SELECT pg_advisory_lock(1)",
            "TRUNCATE a CASCADE",
            "DELETE FROM a; DELETE FROM b",
            "CREATE OR REPLACE VIEW v AS SELECT 1",
            "COPY t FROM STDIN",
            "",
        ] {
            assert_eq!(writes(unknown), Writes::Unknown, "{unknown}");
        }
    }
}
