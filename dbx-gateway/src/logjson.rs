//! The JSON log format, written straight into the line buffer.
//!
//! The same lines as tracing-subscriber's `fmt().json()
//! .with_current_span(true).with_span_list(true)` (same keys in the same
//! order, same values), without its per-line costs: that formatter stores a
//! span's fields as a JSON object text, and for every line parses that text
//! back into a `serde_json::Value` for the `span` key and again for each
//! entry of `spans`; recording a field on a span (the request's
//! `principal`, dbx's fields) parses and re-serializes the stored text; and
//! every piece goes through an `io::Write` adaptor that re-checks UTF-8.
//! Measured with callgrind on a KV GET run: about 45% of the gateway's
//! instructions were that. Here a span's fields are kept as the members of
//! a JSON object (`"k":v,...`, sorted by name as the original sorts them)
//! and copied into each line as they are.
//!
//! A line: `{"timestamp":..,"level":..,"fields":{..},"target":..,
//! "span":{..,"name":..},"spans":[{..,"name":..},..]}`. `fields` keeps the
//! event's field order; a span's fields are sorted by name, and a field
//! recorded later is added after them (or, when it replaces one, the
//! members are sorted again).

use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// Writes `s` as a JSON string, escaped as serde_json escapes.
fn json_str<W: fmt::Write + ?Sized>(out: &mut W, s: &str) -> fmt::Result {
    out.write_char('"')?;
    escape_into(out, s)?;
    out.write_char('"')
}

/// The inside of a JSON string: `"`, `\\` and control characters escaped
/// (`\n`, `\r`, `\t`, `\b`, `\f`, else `\u00XX`), as serde_json does.
fn escape_into<W: fmt::Write + ?Sized>(out: &mut W, s: &str) -> fmt::Result {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(off) = bytes[start..]
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
    {
        let i = start + off;
        out.write_str(&s[start..i])?;
        match bytes[i] {
            b'"' => out.write_str("\\\"")?,
            b'\\' => out.write_str("\\\\")?,
            b'\n' => out.write_str("\\n")?,
            b'\r' => out.write_str("\\r")?,
            b'\t' => out.write_str("\\t")?,
            0x08 => out.write_str("\\b")?,
            0x0c => out.write_str("\\f")?,
            b => write!(out, "\\u{b:04x}")?,
        }
        start = i + 1;
    }
    out.write_str(&s[start..])
}

/// Escapes what is written into it as the inside of a JSON string.
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s)
    }
}

/// Collects fields as JSON values in one buffer, with their names and
/// where each value lies in it, in visit order.
struct Collect {
    buf: String,
    items: Vec<(&'static str, std::ops::Range<usize>)>,
    /// Span fields: `r#` prefixes dropped from debug fields' names, as the
    /// original span formatter does (event fields keep them).
    span: bool,
}

impl Collect {
    fn new(span: bool) -> Collect {
        Collect {
            buf: String::with_capacity(128),
            items: Vec::with_capacity(8),
            span,
        }
    }

    fn for_span() -> Collect {
        Collect::new(true)
    }

    /// Record the field whose value `write` appends to the buffer.
    fn push(&mut self, name: &'static str, write: impl FnOnce(&mut String) -> fmt::Result) {
        let start = self.buf.len();
        if write(&mut self.buf).is_err() {
            self.buf.truncate(start);
            self.buf.push_str("null");
        }
        self.items.push((name, start..self.buf.len()));
    }

    fn raw(&mut self, field: &Field, v: impl fmt::Display) {
        self.push(field.name(), |b| write!(b, "{v}"));
    }

    fn serde<T: serde::Serialize>(&mut self, field: &Field, v: T) {
        let text = serde_json::to_string(&v).unwrap_or_else(|_| "null".to_owned());
        self.push(field.name(), |b| b.write_str(&text));
    }

    /// `"k":v` members in `order`, separated by `sep`.
    fn write_members<W: fmt::Write + ?Sized>(
        &self,
        out: &mut W,
        order: &[usize],
        sep: char,
    ) -> fmt::Result {
        for (n, &i) in order.iter().enumerate() {
            let (k, range) = &self.items[i];
            if n > 0 {
                out.write_char(sep)?;
            }
            json_str(out, k)?;
            out.write_char(':')?;
            out.write_str(&self.buf[range.clone()])?;
        }
        Ok(())
    }

    /// Every member in visit order, comma-separated (an event's fields).
    fn write_in_order<W: fmt::Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        let order: Vec<usize> = (0..self.items.len()).collect();
        self.write_members(out, &order, ',')
    }

    /// Sorted by name, a later field of the same name winning as in a map,
    /// one per line (a span's fields).
    fn write_sorted_lines(&self, out: &mut String) -> fmt::Result {
        let mut order: Vec<usize> = (0..self.items.len()).collect();
        // Stable: of equal names the last recorded stays last.
        order.sort_by(|&a, &b| self.items[a].0.cmp(self.items[b].0));
        let mut kept: Vec<usize> = Vec::with_capacity(order.len());
        for i in order {
            match kept.last_mut() {
                Some(last) if self.items[*last].0 == self.items[i].0 => *last = i,
                _ => kept.push(i),
            }
        }
        self.write_members(out, &kept, '\n')
    }
}

impl Visit for Collect {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.serde(field, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field, value);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        // Both originals take these through `record_debug`: a string.
        self.record_debug(field, &value);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.record_debug(field, &value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field, value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field.name(), |b| json_str(b, value));
    }
    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        if self.span {
            // A span's original keeps bytes as an array of numbers...
            self.serde(field, value);
        } else {
            // ...an event's as lowercase hex, through `record_debug`.
            self.push(field.name(), |b| {
                b.push('"');
                for x in value {
                    write!(b, "{x:02x}")?;
                }
                b.push('"');
                Ok(())
            });
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &tracing::field::display(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        let name = match name.strip_prefix("r#") {
            Some(rest) if self.span => rest,
            _ => name,
        };
        self.push(name, |b| {
            b.push('"');
            write!(Escaped(b), "{value:?}")?;
            b.push('"');
            Ok(())
        });
    }
}

/// A span's fields, as JSON object members (see the module docs), one per
/// line: a raw newline cannot occur inside JSON text (strings escape it),
/// so members can be told apart, replaced and sorted without parsing, and
/// become commas when written into a line.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SpanFields;

/// The key text (`"k"`) of a member `"k":v`.
fn key_of(member: &str) -> &str {
    let b = member.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return &member[..=i],
            _ => i += 1,
        }
    }
    member
}

impl<'w> FormatFields<'w> for SpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut c = Collect::for_span();
        fields.record(&mut c);
        // Built in one buffer of about the right size, then copied once:
        // the span's own string starts empty and would grow step by step.
        let mut out = String::with_capacity(c.buf.len() + c.items.len() * 24);
        c.write_sorted_lines(&mut out)?;
        writer.write_str(&out)
    }

    /// Recording fields on a span: members of the same name are replaced,
    /// and all are sorted by name again, as the original's map does.
    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut c = Collect::for_span();
        fields.record(&mut c);
        let mut fresh = String::new();
        c.write_sorted_lines(&mut fresh)?;
        if fresh.is_empty() {
            return Ok(());
        }
        let new_keys: Vec<&str> = fresh.split('\n').map(key_of).collect();
        let mut all: Vec<&str> = current
            .fields
            .split('\n')
            .filter(|m| !m.is_empty() && !new_keys.contains(&key_of(m)))
            .chain(fresh.split('\n'))
            .collect();
        all.sort_by(|a, b| key_of(a).cmp(key_of(b)));
        let joined = all.join("\n");
        current.fields = joined;
        Ok(())
    }
}

/// The JSON line format (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct JsonLines;

fn span_object<S>(out: &mut String, span: &SpanRef<'_, S>) -> fmt::Result
where
    S: for<'a> LookupSpan<'a>,
{
    out.write_char('{')?;
    let ext = span.extensions();
    let mut first = true;
    if let Some(f) = ext.get::<FormattedFields<SpanFields>>()
        && !f.fields.is_empty()
    {
        for (i, m) in f.fields.split('\n').enumerate() {
            if i > 0 {
                out.write_char(',')?;
            }
            out.write_str(m)?;
        }
        first = false;
    }
    if !first {
        out.write_char(',')?;
    }
    out.write_str("\"name\":")?;
    json_str(out, span.metadata().name())?;
    out.write_char('}')
}

impl<S> FormatEvent<S, SpanFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, SpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        // The line is built in a local buffer and handed over once: the
        // writer is behind two dynamic calls per piece.
        let mut line = String::with_capacity(768);
        let mut timestamp = String::with_capacity(32);
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.write_str("{\"timestamp\":")?;
        json_str(&mut line, &timestamp)?;
        line.write_str(",\"level\":")?;
        json_str(&mut line, meta.level().as_str())?;
        line.write_str(",\"fields\":{")?;
        let mut c = Collect::new(false);
        event.record(&mut c);
        c.write_in_order(&mut line)?;
        line.write_str("},\"target\":")?;
        json_str(&mut line, meta.target())?;
        let current = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = &current {
            line.write_str(",\"span\":")?;
            span_object(&mut line, span)?;
            line.write_str(",\"spans\":[")?;
            if let Some(leaf) = ctx.lookup_current() {
                for (i, s) in leaf.scope().from_root().enumerate() {
                    if i > 0 {
                        line.write_char(',')?;
                    }
                    span_object(&mut line, &s)?;
                }
            }
            line.write_char(']')?;
        }
        line.write_str("}\n")?;
        writer.write_str(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    impl Buf {
        fn lines(&self) -> Vec<String> {
            let b = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
            String::from_utf8(b)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    /// The same events through tracing-subscriber's JSON format and ours.
    fn both(f: impl Fn()) -> (Vec<String>, Vec<String>) {
        let theirs = Buf::default();
        let sub = tracing_subscriber::fmt()
            .with_writer(theirs.clone())
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .finish();
        tracing::subscriber::with_default(sub, &f);
        let ours = Buf::default();
        let sub = tracing_subscriber::fmt()
            .with_writer(ours.clone())
            .fmt_fields(SpanFields)
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(sub, &f);
        (theirs.lines(), ours.lines())
    }

    /// Everything but the timestamp, which differs between the two runs.
    fn without_time(line: &str) -> serde_json::Value {
        let mut v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if let Some(o) = v.as_object_mut() {
            o.remove("timestamp");
        }
        v
    }

    fn keys(v: &serde_json::Value) -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn lines_match_tracing_subscribers_json_format() {
        let (theirs, ours) = both(|| {
            tracing::info!("outside any span");
            let request = tracing::info_span!(
                "request",
                method = "GET",
                path = "/v1/db/red/kv/k\"ey\\\n\u{1}é",
                request_id = %"abc-123",
                principal = tracing::field::Empty,
            );
            let _r = request.enter();
            request.record("principal", "ada");
            tracing::warn!(status = 404u16, latency = ?std::time::Duration::from_micros(1500), ok = false, ratio = 0.5f64, n = -3i64, "finished");
            let op = tracing::info_span!(
                "db.operation",
                db.system.name = "redis",
                db.operation.name = "kv.get",
                attempts = tracing::field::Empty
            );
            let _o = op.enter();
            op.record("attempts", 2u64);
            // Recorded again: the later value replaces the first.
            request.record("principal", "grace");
            tracing::error!(error = %"it broke", r#type = "x", "inside");
            let explicit = tracing::info_span!(parent: None, "detached", k = 1);
            tracing::info!(parent: &explicit, "with an explicit parent");
        });
        assert_eq!(theirs.len(), 4, "{theirs:?}");
        assert_eq!(theirs.len(), ours.len(), "{ours:?}");
        for (t, o) in theirs.iter().zip(&ours) {
            let (tv, ov) = (without_time(t), without_time(o));
            assert_eq!(tv, ov, "\ntheirs: {t}\nours:   {o}");
            // Same keys in the same order, at the top and in each span.
            assert_eq!(keys(&tv), keys(&ov));
            assert_eq!(keys(&tv["span"]), keys(&ov["span"]), "\n{t}\n{o}");
            assert_eq!(keys(&tv["fields"]), keys(&ov["fields"]));
        }
        // The timestamp is there and has the same shape.
        let t: serde_json::Value = serde_json::from_str(&ours[0]).unwrap_or_default();
        assert!(
            t["timestamp"].as_str().is_some_and(|s| s.ends_with('Z')),
            "{}",
            ours[0]
        );
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é\u{2028}😀 end");
        let mut ours = String::new();
        json_str(&mut ours, &all).unwrap_or_default();
        assert_eq!(ours, serde_json::to_string(&all).unwrap_or_default());
    }

    #[test]
    fn keys_of_members() {
        assert_eq!(key_of(r#""a":1"#), r#""a""#);
        assert_eq!(key_of(r#""a\"b":"x""#), r#""a\"b""#);
    }
}
