//! Reading migration text as SQL: the checksum that ignores comments and
//! whitespace, the `-- dbx:no-transaction` marker, and splitting a script
//! into statements (for scripts that cannot run as one).
//!
//! The lexer knows what can hide a `;`, a `--` or a run of spaces that
//! matters: `'strings'` (with `''`), `"identifiers"`, PostgreSQL
//! `E'...'` escapes and `$tag$ ... $tag$` bodies, `-- line` and
//! `/* block */` comments (nested, as PostgreSQL reads them).

/// The marker line of a migration that must not run in a transaction.
pub(crate) const NO_TRANSACTION: &str = "-- dbx:no-transaction";

/// Whether a line of `script` is the marker.
pub(crate) fn has_no_transaction_marker(script: &str) -> bool {
    script.lines().any(|l| l.trim() == NO_TRANSACTION)
}

#[derive(Debug, PartialEq)]
enum Piece<'a> {
    /// Text that is SQL as written (strings and bodies included verbatim).
    Code(&'a str),
    /// A run of whitespace.
    Space(&'a str),
    /// A comment.
    Comment(&'a str),
    /// A `;` outside quotes and comments.
    End,
}

/// Cut `s` into pieces.
fn lex(s: &str) -> Vec<Piece<'_>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let c = b[i];
        if c.is_ascii_whitespace() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push(Piece::Space(&s[start..i]));
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            out.push(Piece::Comment(&s[start..i]));
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0usize;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(Piece::Comment(&s[start..i.min(b.len())]));
        } else if c == b';' {
            i += 1;
            out.push(Piece::End);
        } else if c == b'\'' || c == b'"' {
            // `E'..'` strings take backslash escapes.
            let escapes = c == b'\'' && i > 0 && matches!(b[i - 1], b'E' | b'e');
            i += 1;
            while i < b.len() {
                if escapes && b[i] == b'\\' {
                    i += 2;
                } else if b[i] == c {
                    if b.get(i + 1) == Some(&c) {
                        i += 2;
                    } else {
                        i += 1;
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(Piece::Code(&s[start..i.min(b.len())]));
        } else if c == b'$' {
            // `$tag$ ... $tag$` (a `$1` parameter is code).
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j < b.len() && b[j] == b'$' && !b[i + 1..j].first().is_some_and(u8::is_ascii_digit) {
                let tag = &s[i..=j];
                let body = j + 1;
                let end = s[body..]
                    .find(tag)
                    .map_or(b.len(), |k| body + k + tag.len());
                i = end;
            } else {
                i = j.max(i + 1);
            }
            out.push(Piece::Code(&s[start..i]));
        } else {
            while i < b.len() {
                let c = b[i];
                if c.is_ascii_whitespace()
                    || c == b';'
                    || c == b'\''
                    || c == b'"'
                    || c == b'$'
                    || (c == b'-' && b.get(i + 1) == Some(&b'-'))
                    || (c == b'/' && b.get(i + 1) == Some(&b'*'))
                {
                    break;
                }
                i += 1;
            }
            // A lone `E` before a quote stays glued to its string.
            out.push(Piece::Code(&s[start..i]));
        }
    }
    out
}

/// The script with comments dropped and whitespace kept only where it
/// separates two words (`CREATE TABLE`): what the checksum covers, so that
/// reformatting (`(x int)` or `( x int )`, a statement over several lines)
/// leaves it as it was.
pub(crate) fn normalize(script: &str) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii();
    let mut out = String::with_capacity(script.len());
    let mut pending_space = false;
    for p in lex(script) {
        match p {
            Piece::Space(_) | Piece::Comment(_) => pending_space = true,
            Piece::End => {
                out.push(';');
                pending_space = false;
            }
            Piece::Code(c) => {
                if pending_space
                    && out.chars().next_back().is_some_and(word)
                    && c.chars().next().is_some_and(word)
                {
                    out.push(' ');
                }
                pending_space = false;
                out.push_str(c);
            }
        }
    }
    out
}

/// The checksum of an up script: 64-bit FNV-1a of its normalized text (and
/// whether it runs in a transaction), as 16 hex digits. It detects edits to
/// the SQL; edits to comments and whitespace leave it as it was. It is not
/// a cryptographic hash: it guards against accidents, not against forgery.
pub(crate) fn checksum(script: &str, transactional: bool) -> String {
    let mode: &[u8] = if transactional { b"tx:" } else { b"no-tx:" };
    format!("{:016x}", fnv64(&[mode, normalize(script).as_bytes()]))
}

/// 64-bit FNV-1a over the parts, in order.
pub(crate) fn fnv64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in parts.iter().flat_map(|p| p.iter()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The statements of `script`, each as written, without empty ones and
/// without pieces that are only comments.
pub(crate) fn split(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut has_code = false;
    for p in lex(script) {
        match p {
            Piece::End => {
                if has_code {
                    out.push(current.trim().to_owned());
                }
                current.clear();
                has_code = false;
            }
            Piece::Code(text) => {
                has_code = true;
                current.push_str(text);
            }
            Piece::Space(text) | Piece::Comment(text) => current.push_str(text),
        }
    }
    if has_code {
        out.push(current.trim().to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_ignore_comments_and_whitespace_but_not_edits() {
        let a = "CREATE TABLE users (\n  id int PRIMARY KEY,\n  name text\n);\n";
        let b = "-- the users\nCREATE TABLE users (id int PRIMARY KEY, /* display */ name text) ;";
        assert_eq!(checksum(a, true), checksum(b, true));
        assert_eq!(
            normalize(b),
            "CREATE TABLE users(id int PRIMARY KEY,name text);"
        );
        assert_eq!(checksum("SELECT ( 1 )", true), checksum("SELECT (1)", true));
        assert_ne!(checksum("SELECT a b", true), checksum("SELECT ab", true));
        // A real edit, an edit inside a string, and the transaction mode.
        assert_ne!(
            checksum(a, true),
            checksum(&a.replace("text", "varchar"), true)
        );
        let s1 = "INSERT INTO t VALUES ('a  b');";
        let s2 = "INSERT INTO t VALUES ('a b');";
        assert_ne!(checksum(s1, true), checksum(s2, true));
        assert_ne!(checksum(a, true), checksum(a, false));
        // `--` inside a string is not a comment.
        assert_ne!(
            checksum("SELECT '--x';", true),
            checksum("SELECT '';", true)
        );
        // Dollar-quoted bodies are kept verbatim.
        let f1 = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; -- one\n $$ LANGUAGE sql;";
        let f2 = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; -- two\n $$ LANGUAGE sql;";
        assert_ne!(checksum(f1, true), checksum(f2, true));
        assert_eq!(checksum(a, true).len(), 16);
    }

    #[test]
    fn scripts_split_into_statements() {
        let s = "-- dbx:no-transaction\nCREATE INDEX CONCURRENTLY a ON t (x);\n\n\
                 /* two; */ CREATE INDEX CONCURRENTLY b ON t ((x || ';'));\n\
                 CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n\
                 SELECT $1;\n-- trailing comment only;\n";
        let parts = split(s);
        assert_eq!(parts.len(), 4, "{parts:?}");
        assert!(
            parts[0].ends_with("CREATE INDEX CONCURRENTLY a ON t (x)"),
            "{parts:?}"
        );
        assert!(parts[1].contains("((x || ';'))"), "{parts:?}");
        assert!(parts[2].contains("$body$ SELECT 1; $body$"), "{parts:?}");
        assert_eq!(parts[3], "SELECT $1");
        assert!(has_no_transaction_marker(s));
        assert!(!has_no_transaction_marker(
            "SELECT 1; -- dbx:no-transaction please"
        ));
        assert_eq!(split("  ;; -- nothing\n"), Vec::<String>::new());
        assert_eq!(split("SELECT 'it''s; fine'"), ["SELECT 'it''s; fine'"]);
        assert_eq!(
            split(r"SELECT E'a\';b'; SELECT 2"),
            [r"SELECT E'a\';b'", "SELECT 2"]
        );
    }
}
