//! Everything the CLI prints: colour, aligned tables, JSON, CSV, and how a
//! [`dbx::Value`] reads in each.
//!
//! Output goes through [`Output`], which writes whole strings to locked
//! stdout or stderr (`std::io::Write`; the workspace forbids `println!`).

use crate::cli::ColorChoice;
use crate::error::{CliError, redact};
use dbx::Value;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;
use unicode_width::UnicodeWidthStr;

/// Where output goes and how it looks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// `--json`: machine output.
    pub(crate) json: bool,
    /// Colour on stdout.
    color_out: bool,
    /// Colour on stderr.
    color_err: bool,
    /// Whether stderr is a terminal (for progress bars).
    pub(crate) stderr_tty: bool,
}

/// A colour or weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// No styling.
    Plain,
    /// Bold (headers).
    Bold,
    /// Dimmed (NULL, empty figures).
    Dim,
    /// Green (healthy).
    Green,
    /// Yellow (degraded).
    Yellow,
    /// Bold red (failures).
    Red,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Bold => "\x1b[1m",
            Style::Dim => "\x1b[2m",
            Style::Green => "\x1b[32m",
            Style::Yellow => "\x1b[33m",
            Style::Red => "\x1b[1;31m",
        }
    }
}

fn paint(on: bool, style: Style, text: &str) -> String {
    if on && style != Style::Plain && !text.is_empty() {
        format!("{}{text}\x1b[0m", style.code())
    } else {
        text.to_owned()
    }
}

impl Output {
    /// Decide colours: `auto` colours a stream that is a terminal, unless
    /// `NO_COLOR` is set to anything non-empty; `always` and `never` are
    /// what they say (`always` wins over NO_COLOR, as an explicit request).
    pub(crate) fn new(json: bool, color: ColorChoice) -> Output {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let stdout_tty = std::io::stdout().is_terminal();
        let stderr_tty = std::io::stderr().is_terminal();
        let decide = |tty: bool| match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        Output {
            json,
            color_out: decide(stdout_tty) && !json,
            color_err: decide(stderr_tty),
            stderr_tty,
        }
    }

    /// `text` styled for stdout.
    pub(crate) fn paint(&self, style: Style, text: &str) -> String {
        paint(self.color_out, style, text)
    }

    /// Write `text` to stdout as is.
    pub(crate) fn write(&self, text: &str) -> std::io::Result<()> {
        self.write_bytes(text.as_bytes())
    }

    /// Write bytes to stdout as is.
    pub(crate) fn write_bytes(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()
    }

    /// Write one line to stdout.
    pub(crate) fn line(&self, text: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// Write a JSON value to stdout: pretty-printed, one line per element
    /// for arrays of objects (easy to read and to `grep`), then a newline.
    pub(crate) fn json_value(&self, value: &serde_json::Value) -> std::io::Result<()> {
        let text = match value {
            serde_json::Value::Array(items) => json_array(items.iter().map(|v| v.to_string())),
            v => serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()),
        };
        self.line(&text)
    }

    /// A note on stderr (`note: ...`), for humans; redacted.
    pub(crate) fn note(&self, text: &str) {
        let label = paint(self.color_err, Style::Yellow, "note:");
        let _ = writeln!(std::io::stderr().lock(), "{label} {}", redact(text));
    }

    /// An error on stderr (`error: ...`), redacted; with `verbose`, the
    /// kind, the database's code and the causes too.
    pub(crate) fn error(&self, err: &CliError, verbose: bool) {
        let mut text = match err {
            CliError::Usage(m) | CliError::Failed(m) => m.clone(),
            CliError::Db(e) | CliError::DbHint(e, _) => e.to_string(),
            CliError::Reported | CliError::BrokenPipe => return,
        };
        if verbose && let CliError::Db(e) | CliError::DbHint(e, _) = err {
            let _ = write!(text, "\n  kind: {}", e.kind());
            if let Some(code) = e.code() {
                let _ = write!(text, "\n  code: {code}");
            }
            let _ = write!(text, "\n  transient: {}", e.is_transient());
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                let _ = write!(text, "\n  caused by: {s}");
                source = s.source();
            }
        }
        self.error_text(&text);
        if let CliError::DbHint(_, hint) = err {
            let label = paint(self.color_err, Style::Yellow, "hint:");
            let _ = writeln!(std::io::stderr().lock(), "{label} {hint}");
        }
    }

    /// `error: <text>` on stderr, redacted.
    pub(crate) fn error_text(&self, text: &str) {
        let label = paint(self.color_err, Style::Red, "error:");
        let _ = writeln!(std::io::stderr().lock(), "{label} {}", redact(text));
    }
}

/// A JSON array with one element per line.
pub(crate) fn json_array(items: impl Iterator<Item = String>) -> String {
    let mut out = String::from("[");
    let mut first = true;
    for item in items {
        out.push_str(if first { "\n  " } else { ",\n  " });
        out.push_str(&item);
        first = false;
    }
    out.push_str(if first { "]" } else { "\n]" });
    out
}

/// One cell of a [`Table`].
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    text: String,
    /// Right-aligned (`Some(true)`), left (`Some(false)`), or as the rest
    /// of its column (`None`: NULL).
    right: Option<bool>,
    style: Style,
}

impl Cell {
    /// Left-aligned text.
    pub(crate) fn text(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            right: Some(false),
            style: Style::Plain,
        }
    }

    /// Right-aligned text (numbers).
    pub(crate) fn number(text: impl Into<String>) -> Cell {
        Cell {
            right: Some(true),
            ..Cell::text(text)
        }
    }

    /// Text aligned as the other cells of its column (NULL).
    pub(crate) fn neutral(text: impl Into<String>) -> Cell {
        Cell {
            right: None,
            ..Cell::text(text)
        }
    }

    /// The same cell, styled.
    pub(crate) fn style(mut self, style: Style) -> Cell {
        self.style = style;
        self
    }
}

/// Aligned columns with a header line.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with these column names.
    pub(crate) fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Add a row.
    pub(crate) fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    /// Rows added.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// The table as text: a header, a rule of `-`, the rows; two spaces
    /// between columns, no trailing spaces. Widths count terminal columns.
    pub(crate) fn render(&self, out: &Output) -> String {
        self.render_with(out, true)
    }

    /// The rows alone, aligned, without the header and its rule (for
    /// `name  value` lists).
    pub(crate) fn render_rows(&self, out: &Output) -> String {
        self.render_with(out, false)
    }

    fn render_with(&self, out: &Output, with_header: bool) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; columns];
        if with_header {
            for (i, h) in self.headers.iter().enumerate() {
                widths[i] = widths[i].max(h.width());
            }
        }
        for row in &self.rows {
            for (i, c) in row.iter().enumerate() {
                widths[i] = widths[i].max(c.text.width());
            }
        }
        let mut s = String::new();
        // A column is right-aligned when its cells are numbers (NULLs
        // aside); its header and NULLs follow.
        let right: Vec<bool> = (0..columns)
            .map(|i| {
                let aligns: Vec<bool> = self.rows.iter().filter_map(|r| r.get(i)?.right).collect();
                !aligns.is_empty() && aligns.iter().all(|r| *r)
            })
            .collect();
        let header: Vec<Cell> = self
            .headers
            .iter()
            .map(|h| Cell::neutral(h.clone()).style(Style::Bold))
            .collect();
        if with_header {
            render_row(&mut s, &header, &widths, &right, out);
            let rule: Vec<Cell> = widths.iter().map(|w| Cell::text("-".repeat(*w))).collect();
            render_row(&mut s, &rule, &widths, &right, out);
        }
        for row in &self.rows {
            render_row(&mut s, row, &widths, &right, out);
        }
        s
    }
}

fn render_row(s: &mut String, row: &[Cell], widths: &[usize], right: &[bool], out: &Output) {
    let mut line = String::new();
    for (i, width) in widths.iter().enumerate() {
        let cell = row.get(i);
        let text = cell.map_or("", |c| c.text.as_str());
        let pad = width.saturating_sub(text.width());
        if i > 0 {
            line.push_str("  ");
        }
        let painted = out.paint(cell.map_or(Style::Plain, |c| c.style), text);
        if cell.and_then(|c| c.right).unwrap_or(right[i]) {
            line.push_str(&" ".repeat(pad));
            line.push_str(&painted);
        } else {
            line.push_str(&painted);
            line.push_str(&" ".repeat(pad));
        }
    }
    s.push_str(line.trim_end());
    s.push('\n');
}

/// A value in a table: NULL as `NULL`, bytes as `\x` hex, JSON compact,
/// control characters escaped so a cell stays on its line.
pub(crate) fn value_cell(v: &Value) -> Cell {
    match v {
        Value::Null => Cell::neutral("NULL").style(Style::Dim),
        Value::Int(_) | Value::Float(_) | Value::Decimal(_) => Cell::number(value_text(v)),
        Value::Text(s) => Cell::text(escape_control(s)),
        other => Cell::text(escape_control(&value_text(other))),
    }
}

/// A value as plain text (CSV fields, not escaped); empty for NULL.
pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_text(*f),
        Value::Text(s) => s.clone(),
        Value::Bytes(b) => format!("\\x{}", hex(b)),
        Value::Json(j) => j.to_string(),
        Value::Timestamp(ts) => Value::timestamp_text(ts),
        Value::Uuid(u) => u.to_string(),
        Value::Decimal(d) => d.clone(),
        other => format!("{other:?}"),
    }
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        f.to_string()
    }
}

/// A value in JSON output: numbers and booleans as such, bytes as a `\x`
/// hex string, decimals as strings (no precision lost), timestamps as
/// RFC 3339 strings, JSON columns embedded, non-finite floats as strings.
pub(crate) fn value_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .unwrap_or_else(|| J::String(float_text(*f))),
        Value::Json(j) => j.clone(),
        other => J::String(value_text(other)),
    }
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Control characters as escapes (`\n`, `\t`, `\r`, `\u{1b}`), so one
/// value never spans lines or moves the cursor.
pub(crate) fn escape_control(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// One CSV field by RFC 4180: quoted when it holds a comma, a quote, CR or
/// LF (or starts or ends with a space), quotes doubled.
pub(crate) fn csv_field(s: &str) -> String {
    let needs = s.contains([',', '"', '\r', '\n']) || s.starts_with(' ') || s.ends_with(' ');
    if needs {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// One CSV record, CRLF-terminated as RFC 4180 says.
pub(crate) fn csv_record<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut line = fields
        .into_iter()
        .map(csv_field)
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// A duration for humans: `420µs`, `1.25ms`, `12.3ms`, `1.50s`.
pub(crate) fn human_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 10_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else if us < 1_000_000.0 {
        format!("{:.1}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// A duration in milliseconds for JSON (three decimals: microseconds).
pub(crate) fn millis(d: Duration) -> serde_json::Value {
    let ms = (d.as_secs_f64() * 1e6).round() / 1000.0;
    serde_json::Number::from_f64(ms).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// `1 row` / `2 rows`.
pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Output {
        Output::new(false, ColorChoice::Never)
    }

    #[test]
    fn tables_align_and_trim() {
        let mut t = Table::new(["id", "name"]);
        t.push(vec![Cell::number("1"), Cell::text("Ada")]);
        t.push(vec![Cell::number("100"), value_cell(&Value::Null)]);
        t.push(vec![value_cell(&Value::Null), Cell::text("Bo")]);
        assert_eq!(
            t.render(&plain()),
            "  id  name\n----  ----\n   1  Ada\n 100  NULL\nNULL  Bo\n"
        );
    }

    #[test]
    fn wide_characters_count_as_two_columns() {
        let mut t = Table::new(["a", "b"]);
        t.push(vec![Cell::text("日本"), Cell::text("x")]);
        t.push(vec![Cell::text("abcd"), Cell::text("y")]);
        assert_eq!(t.render(&plain()), "a     b\n----  -\n日本  x\nabcd  y\n");
    }

    #[test]
    fn csv_quotes_by_rfc_4180() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_record(["a", "b,c"]), "a,\"b,c\"\r\n");
    }

    #[test]
    fn values_in_each_format() {
        assert_eq!(value_text(&Value::Bytes(vec![0xde, 0xad])), "\\xdead");
        assert_eq!(
            value_json(&Value::Float(f64::NAN)),
            serde_json::json!("NaN")
        );
        assert_eq!(value_json(&Value::Int(7)), serde_json::json!(7));
        assert_eq!(
            value_json(&Value::Decimal("1.50".into())),
            serde_json::json!("1.50")
        );
        assert_eq!(value_cell(&Value::Text("a\nb".into())).text, "a\\nb");
        assert_eq!(escape_control("\u{1b}[31m"), "\\u{1b}[31m");
    }

    #[test]
    fn base64_and_hex() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x01]), "//4AAQ==");
        assert_eq!(hex(&[0, 255]), "00ff");
    }

    #[test]
    fn json_arrays_put_one_element_per_line() {
        assert_eq!(json_array(std::iter::empty()), "[]");
        assert_eq!(
            json_array(["1".to_string(), "2".to_string()].into_iter()),
            "[\n  1,\n  2\n]"
        );
    }

    #[test]
    fn durations_for_humans() {
        assert_eq!(human_duration(Duration::from_micros(420)), "420µs");
        assert_eq!(human_duration(Duration::from_micros(1250)), "1.25ms");
        assert_eq!(human_duration(Duration::from_micros(12_340)), "12.3ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.50s");
    }
}
