//! A small SQL scanner: finds the highest `$N` placeholder of a statement,
//! skipping string literals, quoted identifiers, dollar-quoted bodies and
//! comments. Used where the server cannot tell us (unnamed statements).

/// What the scanner found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The highest `$N` placeholder, 0 if none.
    pub(crate) max_param: usize,
}

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn ident_char(c: u8) -> bool {
    ident_start(c) || c.is_ascii_digit() || c == b'$'
}

pub(crate) fn scan(sql: &str) -> Scan {
    let b = sql.as_bytes();
    let mut out = Scan::default();
    let mut i = 0;
    let mut prev_ident = false;
    while i < b.len() {
        let c = b[i];
        // Comments.
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            prev_ident = false;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut nest = 1;
            i += 2;
            while i < b.len() && nest > 0 {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    nest += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    nest -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            prev_ident = false;
            continue;
        }
        match c {
            b'\'' => {
                // E'...' strings take backslash escapes.
                let escapes =
                    i > 0 && matches!(b[i - 1], b'e' | b'E') && (i < 2 || !ident_char(b[i - 2]));
                i += 1;
                while i < b.len() {
                    if escapes && b[i] == b'\\' {
                        i += 2;
                    } else if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                        } else {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                i += 1;
                prev_ident = false;
            }
            b'"' => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'"' {
                        if b.get(i + 1) == Some(&b'"') {
                            i += 2;
                        } else {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                i += 1;
                prev_ident = true;
            }
            b'$' if !prev_ident => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                if j > start {
                    let n = sql[start..j].parse::<usize>().unwrap_or(usize::MAX);
                    out.max_param = out.max_param.max(n);
                    i = j;
                    prev_ident = false;
                    continue;
                }
                // A dollar quote: $tag$ ... $tag$ or $$ ... $$.
                let mut j = start;
                while j < b.len() && (ident_char(b[j]) && b[j] != b'$') {
                    j += 1;
                }
                if j < b.len() && b[j] == b'$' && (j == start || ident_start(b[start])) {
                    let tag = &sql[i..=j];
                    match sql[j + 1..].find(tag) {
                        Some(end) => i = j + 1 + end + tag.len(),
                        None => i = b.len(),
                    }
                } else {
                    i += 1;
                }
                prev_ident = false;
            }
            _ if ident_start(c) => {
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
                prev_ident = true;
            }
            _ => {
                i += 1;
                prev_ident = c.is_ascii_digit() && prev_ident;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_outside_literals() {
        assert_eq!(scan("SELECT $1, $2").max_param, 2);
        assert_eq!(scan("SELECT $2, $1").max_param, 2);
        assert_eq!(scan("SELECT '$3', \"$4\", $1").max_param, 1);
        assert_eq!(scan("SELECT $$ $9 $$, $tag$ $8 $tag$, $1").max_param, 1);
        assert_eq!(scan("SELECT 1 -- $5\n, $2 /* $7 /* $8 */ */").max_param, 2);
        assert_eq!(scan("SELECT E'\\' $6', $1::int").max_param, 1);
        assert_eq!(scan("SELECT 'it''s $4', a$1 FROM t").max_param, 0);
        assert_eq!(scan("SELECT 1").max_param, 0);
    }
}
