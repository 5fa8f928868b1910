//! Which SQL statements are plain reads, safe to run again after an
//! ambiguous failure (a connection lost after the statement was sent).
//!
//! The rule is conservative: a statement counts as a read only when every
//! part of it is known to change nothing. Anything else is treated like
//! [`Sql::execute`](crate::Sql::execute): retried only when the error proves
//! it never reached the server. Mark a handle
//! [`idempotent`](crate::Sql::idempotent) to retry more.
//!
//! A read:
//! - starts with `SELECT`, `VALUES`, `SHOW`, or `EXPLAIN` not followed by
//!   `ANALYZE` (which runs the statement), after any `(` and white space;
//! - has no `INTO` (`SELECT ... INTO new_table` creates a table) and no
//!   locking clause (`FOR UPDATE`, `FOR SHARE`...: it takes row locks);
//! - calls no function outside a list of built-ins without side effects
//!   (aggregates, string, number, date and JSON helpers). `SELECT
//!   nextval('s')`, `SELECT pg_advisory_lock(1)`, `SELECT set_config(...)` or
//!   a user function are not reads: a function may write.
//!
//! - is one statement (nothing but `;` after the first `;`).
//!
//! String literals, dollar-quoted strings and comments are skipped, so their
//! text never counts; a quoted name before `(` is a call.

/// Words that may stand before `(` without being a function call.
const KEYWORDS: &[&str] = &[
    "all",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "between",
    "by",
    "case",
    "desc",
    "distinct",
    "else",
    "end",
    "except",
    "exists",
    "filter",
    "from",
    "group",
    "having",
    "in",
    "intersect",
    "is",
    "join",
    "lateral",
    "like",
    "ilike",
    "limit",
    "not",
    "on",
    "or",
    "order",
    "over",
    "partition",
    "range",
    "row",
    "rows",
    "select",
    "some",
    "then",
    "union",
    "using",
    "values",
    "when",
    "where",
    "within",
    "offset",
    "fetch",
    "window",
    "with",
    "cross",
    "inner",
    "left",
    "right",
    "full",
    "outer",
    "natural",
    "nulls",
    "first",
    "last",
    "escape",
    "similar",
    "to",
];

/// Built-in functions without side effects: calling them again changes
/// nothing. Matched case-insensitively; a schema-qualified name
/// (`public.count`) is never on the list.
const PURE_FUNCTIONS: &[&str] = &[
    // aggregates and window functions
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
    "group_concat",
    "total",
    "bool_and",
    "bool_or",
    "every",
    "row_number",
    "rank",
    "dense_rank",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "percentile_cont",
    "percentile_disc",
    "stddev",
    "variance",
    // conditionals and conversions
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "cast",
    "ifnull",
    "iif",
    "typeof",
    // strings
    "lower",
    "upper",
    "length",
    "char_length",
    "octet_length",
    "substr",
    "substring",
    "trim",
    "ltrim",
    "rtrim",
    "btrim",
    "replace",
    "concat",
    "concat_ws",
    "left",
    "right",
    "position",
    "strpos",
    "instr",
    "split_part",
    "format",
    "lpad",
    "rpad",
    "reverse",
    "md5",
    "hex",
    "quote",
    "printf",
    "regexp_replace",
    "regexp_match",
    "starts_with",
    // numbers
    "abs",
    "round",
    "floor",
    "ceil",
    "ceiling",
    "trunc",
    "mod",
    "power",
    "pow",
    "sqrt",
    "sign",
    "ln",
    "log",
    "exp",
    // dates and times
    "now",
    "current_timestamp",
    "current_date",
    "date_trunc",
    "date_part",
    "extract",
    "to_char",
    "to_date",
    "to_timestamp",
    "age",
    "date",
    "time",
    "datetime",
    "julianday",
    "strftime",
    "unixepoch",
    "make_date",
    "make_interval",
    // JSON
    "json_extract",
    "json_array_length",
    "json_type",
    "json_valid",
    "json_object",
    "json_array",
    "json_build_object",
    "jsonb_build_object",
    "json_build_array",
    "jsonb_build_array",
    "to_json",
    "to_jsonb",
    "jsonb_array_length",
    "jsonb_typeof",
    "json_typeof",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
    "json_extract_path",
    "json_extract_path_text",
    "row_to_json",
    // arrays and sets
    "unnest",
    "array_length",
    "cardinality",
    "generate_series",
];

/// Whether `sql` is a plain read by the rule in the module docs.
///
/// This runs before every query, so the common statement (words, `$N`
/// placeholders, numbers and operators) is decided in one pass over its
/// bytes; anything with a parenthesis, literal, comment, dot, `INTO` or
/// `FOR` goes to the full scan. Both give the same answer (tested).
pub(crate) fn is_read(sql: &str) -> bool {
    if sql.len() > MEMO_MAX_LEN {
        return classify(sql);
    }
    MEMO.try_with(|memo| {
        let mut memo = memo.borrow_mut();
        let slot = &mut memo[memo_slot(sql.as_bytes())];
        match slot {
            Some((text, read)) if **text == *sql => *read,
            _ => {
                let read = classify(sql);
                *slot = Some((sql.into(), read));
                read
            }
        }
    })
    .unwrap_or_else(|_| classify(sql))
}

fn classify(sql: &str) -> bool {
    match quick(sql.as_bytes()) {
        Some(read) => read,
        None => is_read_full(sql),
    }
}

/// Statements up to this long are remembered.
const MEMO_MAX_LEN: usize = 1024;
const MEMO_SLOTS: usize = 32;

/// Remembered statements and whether each is a read.
type Memo = [Option<(Box<str>, bool)>; MEMO_SLOTS];

thread_local! {
    /// The last statements classified on this thread, by a hash of their
    /// length and ends; a hit compares the whole text, so a collision only
    /// costs a fresh classification. Applications repeat a few statement
    /// texts, so most queries cost a comparison instead of a scan.
    static MEMO: std::cell::RefCell<Memo> =
        const { std::cell::RefCell::new([const { None }; MEMO_SLOTS]) };
}

fn memo_slot(b: &[u8]) -> usize {
    let word = |bytes: &[u8]| {
        let mut w = [0u8; 8];
        w[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(w)
    };
    let n = b.len();
    let head = word(&b[..n.min(8)]);
    let tail = word(&b[n.saturating_sub(8)..]);
    let h = (head ^ tail.rotate_left(29) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 59) as usize % MEMO_SLOTS
}

/// The one-pass check: `Some` when the statement needs nothing more.
fn quick(b: &[u8]) -> Option<bool> {
    let word_byte = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    let mut i = b.iter().position(|c| !c.is_ascii_whitespace())?;
    if !(b[i].is_ascii_alphabetic() || b[i] == b'_') {
        return None;
    }
    let start = i;
    while i < b.len() && word_byte(b[i]) {
        i += 1;
    }
    let first = &b[start..i];
    let read = [&b"select"[..], b"values", b"show"]
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k));
    if !read {
        return if first.eq_ignore_ascii_case(b"explain") {
            None
        } else {
            Some(false)
        };
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && word_byte(b[i]) {
                i += 1;
            }
            let w = &b[start..i];
            if w.eq_ignore_ascii_case(b"into") || w.eq_ignore_ascii_case(b"for") {
                return None;
            }
            continue;
        }
        match c {
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => i += 1,
            b'$' | b'(' | b';' | b'\'' | b'"' | b'`' | b'[' | b'-' | b'/' | b'.' | b'#' => {
                return None;
            }
            _ => i += 1,
        }
    }
    Some(true)
}

/// The full scan, token by token.
fn is_read_full(sql: &str) -> bool {
    let words = Words::new(sql);
    // Leading parentheses: `((SELECT 1))`.
    // A quoted name is a name, never a keyword: `"nextval"(...)` is a call.
    let mut words = words
        .map(|t| match t {
            Token::Quoted(_) => Token::Word("\"quoted\""),
            t => t,
        })
        .peekable();
    let first = loop {
        match words.next() {
            Some(Token::Open) => continue,
            Some(Token::Word(w)) => break w,
            _ => return false,
        }
    };
    let first = first.to_ascii_lowercase();
    match first.as_str() {
        "select" | "values" | "show" => {}
        "explain" => {
            if let Some(Token::Word(w)) = words.peek()
                && w.eq_ignore_ascii_case("analyze")
            {
                return false;
            }
        }
        _ => return false,
    }
    let mut prev: Option<&str> = None;
    let mut after_for = false;
    while let Some(t) = words.next() {
        match t {
            Token::Word(w) => {
                if w.eq_ignore_ascii_case("into") {
                    return false;
                }
                // FOR UPDATE / FOR NO KEY UPDATE / FOR SHARE / FOR KEY SHARE
                if after_for
                    && ["update", "share", "no", "key"]
                        .iter()
                        .any(|k| w.eq_ignore_ascii_case(k))
                {
                    return false;
                }
                after_for = w.eq_ignore_ascii_case("for");
                prev = Some(w);
            }
            Token::Open => {
                if let Some(name) = prev.take()
                    && !KEYWORDS.iter().any(|k| name.eq_ignore_ascii_case(k))
                    && !PURE_FUNCTIONS.iter().any(|f| name.eq_ignore_ascii_case(f))
                {
                    return false;
                }
                after_for = false;
            }
            Token::Dot => {
                // `schema.function(...)`: the name after the dot is looked
                // up with its schema, which no list here can vouch for.
                if let Some(Token::Word(_)) = words.peek() {
                    let _ = words.next();
                    if let Some(Token::Open) = words.peek() {
                        return false;
                    }
                }
                prev = None;
                after_for = false;
            }
            Token::Other | Token::Close | Token::Comma | Token::Quoted(_) => {
                prev = None;
                after_for = false;
            }
            // Only one statement: anything after a `;` may write.
            Token::End => return words.all(|t| t == Token::End),
        }
    }
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    Word(&'a str),
    /// A quoted name (`"Users"`, `` `t` ``, `[t]`), without its quotes.
    Quoted(&'a str),
    Open,
    Close,
    Comma,
    Dot,
    /// `;`: the end of a statement.
    End,
    Other,
}

/// The words and punctuation of a statement, with literals and comments
/// skipped (a literal stands as one `Other`, a quoted name as a word).
pub(crate) struct Words<'a> {
    text: &'a str,
    pos: usize,
    peeked: Option<Option<Token<'a>>>,
}

impl<'a> Iterator for Words<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        match self.peeked.take() {
            Some(t) => t,
            None => self.scan(),
        }
    }
}

impl<'a> Words<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Words {
            text,
            pos: 0,
            peeked: None,
        }
    }

    /// Skip to just after `end`, or to the end of the text.
    fn skip_past(&mut self, end: &str) {
        self.pos = match self.text[self.pos..].find(end) {
            Some(i) => self.pos + i + end.len(),
            None => self.text.len(),
        };
    }

    fn scan(&mut self) -> Option<Token<'a>> {
        let bytes = self.text.as_bytes();
        loop {
            let b = *bytes.get(self.pos)?;
            let rest = &self.text[self.pos..];
            if b.is_ascii_whitespace() {
                self.pos += 1;
            } else if rest.starts_with("--") {
                self.skip_past("\n");
            } else if rest.starts_with("/*") {
                self.pos += 2;
                self.skip_past("*/");
            } else {
                break;
            }
        }
        let start = self.pos;
        let b = bytes[start];
        if b.is_ascii_alphabetic() || b == b'_' {
            let len = self.text[start..]
                .bytes()
                .position(|c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b'$'))
                .unwrap_or(self.text.len() - start);
            self.pos += len;
            return Some(Token::Word(&self.text[start..start + len]));
        }
        self.pos += 1;
        Some(match b {
            b'(' => Token::Open,
            b')' => Token::Close,
            b',' => Token::Comma,
            b'.' => Token::Dot,
            b'\'' => {
                // '' inside a literal ends and restarts it: same outcome.
                self.skip_past("'");
                Token::Other
            }
            b'"' | b'`' | b'[' => {
                let end = match b {
                    b'[' => "]",
                    b'`' => "`",
                    _ => "\"",
                };
                let start = self.pos;
                let stop = match self.text[start..].find(end) {
                    Some(i) => start + i,
                    None => self.text.len(),
                };
                self.skip_past(end);
                Token::Quoted(&self.text[start..stop])
            }
            b'$' => {
                let rest = &self.text[self.pos..];
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                let tag_len = rest
                    .bytes()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                    .count();
                if digits > 0 {
                    // A `$1` parameter.
                    self.pos += digits;
                } else if rest.as_bytes().get(tag_len) == Some(&b'$') {
                    // A `$tag$ ... $tag$` string (`$$ ... $$` too).
                    let tag = format!("${}$", &rest[..tag_len]);
                    self.pos += tag_len + 1;
                    self.skip_past(&tag);
                }
                Token::Other
            }
            b';' => Token::End,
            _ => {
                // Skip the rest of a multi-byte character.
                while !self.text.is_char_boundary(self.pos) {
                    self.pos += 1;
                }
                Token::Other
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{is_read, is_read_full, quick};

    /// The one-pass check never disagrees with the full scan: over every
    /// test statement, and over 200,000 statements built at random from
    /// SQL-ish pieces.
    #[test]
    fn quick_check_agrees_with_the_full_scan() {
        const PIECES: &[&str] = &[
            "SELECT", "select", "VALUES", "SHOW", "EXPLAIN", "ANALYZE", "INSERT", "WITH", " ",
            "\n", "(", ")", ",", ";", "*", "'", "''", "\"", "$1", "$22", "$", "$$", "$q$", "--",
            "/*", "*/", ".", "-", "into", "INTO", "for", "FOR", "update", "count", "nextval", "a",
            "t_1", "x$y", "1", "1.5", "=", "<>", "#", "`", "[", "]", "\u{e9}", "selected",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200_000 {
            let len = (next() % 12) as usize;
            let sql: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(if next() % 2 == 0 { " " } else { "" });
            if let Some(read) = quick(sql.as_bytes()) {
                assert_eq!(read, is_read_full(&sql), "{sql:?}");
            }
            // Remembered or not, the same answer.
            assert_eq!(is_read(&sql), is_read_full(&sql), "{sql:?}");
            assert_eq!(is_read(&sql), is_read_full(&sql), "{sql:?}");
        }
    }

    #[test]
    fn plain_reads() {
        for sql in [
            "SELECT 1",
            "select\n1",
            "  ((SELECT 1))",
            "\tValues (1)",
            "SHOW search_path",
            "explain SELECT 1",
            "SELECT",
            "SELECT count(*), max(id) FROM t WHERE id IN (1, 2) AND EXISTS (SELECT 1)",
            "SELECT id FROM t WHERE name = 'nextval(1)' -- nextval(x)\n",
            "SELECT /* pg_advisory_lock(1) */ coalesce(a, b) FROM t",
            "SELECT $1, $2::int, $$ nextval('s') $$, $q$ setval() $q$",
            "SELECT \"into\" FROM t",
            "SELECT a FROM t ORDER BY lower(name) LIMIT 10",
            "SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t",
            "SELECT j->>'k' FROM t WHERE j @> '{\"a\":1}'",
            "SELECT * FROM t FOR_x",
            "SELECT 'it''s'",
        ] {
            assert!(is_read(sql), "{sql:?} should be a read");
            assert!(is_read_full(sql), "{sql:?}");
        }
    }

    #[test]
    fn not_reads() {
        for sql in [
            "",
            "(",
            "INSERT INTO t VALUES (1)",
            "SELECTED",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "\u{a0}SELECT 1",
            "DELETE FROM t RETURNING *",
            "SELECT nextval('s')",
            "select NEXTVAL ('s')",
            "SELECT setval('s', 1)",
            "SELECT pg_advisory_lock(1)",
            "SELECT my_function($1)",
            "SELECT public.count(*) FROM t",
            "SELECT \"nextval\"('s')",
            "SELECT * INTO backup FROM t",
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t for no key update",
            "SELECT * FROM t FOR SHARE SKIP LOCKED",
            "EXPLAIN ANALYZE DELETE FROM t",
            "explain analyze SELECT 1",
            "SELECT 1; DELETE FROM t",
            "SELECT id FROM t WHERE f(id)",
        ] {
            assert!(!is_read(sql), "{sql:?} should not be a read");
            assert!(!is_read_full(sql), "{sql:?}");
        }
    }
}
