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
fn json_str(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.write_str(&s[start..i])?;
        if esc.is_empty() {
            write!(out, "\\u{:04x}", b)?;
        } else {
            out.write_str(esc)?;
        }
        start = i + 1;
    }
    out.write_str(&s[start..])?;
    out.write_char('"')
}

/// One value, as JSON.
enum Val {
    Owned(String),
    Raw(String),
}

impl Val {
    fn write(&self, out: &mut impl fmt::Write) -> fmt::Result {
        match self {
            Val::Owned(s) => json_str(out, s),
            Val::Raw(s) => out.write_str(s),
        }
    }
}

fn number<T: serde::Serialize>(v: T) -> Val {
    Val::Raw(serde_json::to_string(&v).unwrap_or_else(|_| "null".to_owned()))
}

/// Collects fields as `(name, value)` in visit order.
#[derive(Default)]
struct Collect {
    fields: Vec<(&'static str, Val)>,
    /// Span fields: `r#` prefixes dropped from debug fields' names, as the
    /// original span formatter does (event fields keep them).
    span: bool,
}

impl Collect {
    fn push(&mut self, field: &Field, v: Val) {
        self.fields.push((field.name(), v));
    }
}

impl Visit for Collect {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, number(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Val::Raw(value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Val::Raw(value.to_string()));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        // Both originals take these through `record_debug`: a string.
        self.record_debug(field, &value);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.record_debug(field, &value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Val::Raw(value.to_string()));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Val::Owned(value.to_owned()));
    }
    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        if self.span {
            // A span's original keeps bytes as an array of numbers...
            self.push(field, number(value));
        } else {
            // ...an event's as lowercase hex, through `record_debug`.
            let mut hex = String::with_capacity(value.len() * 2);
            for b in value {
                let _ = write!(hex, "{b:02x}");
            }
            self.push(field, Val::Owned(hex));
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
        self.fields.push((name, Val::Owned(format!("{value:?}"))));
    }
}

/// Writes `"k":v` members, comma-separated.
fn members(out: &mut impl fmt::Write, fields: &[(&str, Val)], mut first: bool) -> fmt::Result {
    for (k, v) in fields {
        if !first {
            out.write_char(',')?;
        }
        first = false;
        json_str(out, k)?;
        out.write_char(':')?;
        v.write(out)?;
    }
    Ok(())
}

/// Span fields: kept as JSON object members, sorted by name (a later
/// field of the same name wins, as in a map).
fn sorted(mut fields: Vec<(&'static str, Val)>) -> Vec<(&'static str, Val)> {
    // Stable: of equal names the last recorded stays last, then wins below.
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: Vec<(&'static str, Val)> = Vec::with_capacity(fields.len());
    for f in fields {
        match out.last_mut() {
            Some(last) if last.0 == f.0 => *last = f,
            _ => out.push(f),
        }
    }
    out
}

/// A span's fields, as JSON object members (see the module docs), one per
/// line: a raw newline cannot occur inside JSON text (strings escape it),
/// so members can be told apart, replaced and sorted without parsing, and
/// become commas when written into a line.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SpanFields;

/// Writes `"k":v` members, one per line.
fn member_lines(out: &mut String, fields: &[(&str, Val)]) -> fmt::Result {
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        json_str(out, k)?;
        out.push(':');
        v.write(out)?;
    }
    Ok(())
}

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
        let mut c = Collect {
            span: true,
            ..Collect::default()
        };
        fields.record(&mut c);
        let mut out = String::new();
        member_lines(&mut out, &sorted(c.fields))?;
        writer.write_str(&out)
    }

    /// Recording fields on a span: members of the same name are replaced,
    /// and all are sorted by name again, as the original's map does.
    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut c = Collect {
            span: true,
            ..Collect::default()
        };
        fields.record(&mut c);
        let mut fresh = String::new();
        member_lines(&mut fresh, &sorted(c.fields))?;
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

fn span_object<S>(out: &mut Writer<'_>, span: &SpanRef<'_, S>) -> fmt::Result
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
        let mut timestamp = String::with_capacity(32);
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        writer.write_str("{\"timestamp\":")?;
        json_str(&mut writer, &timestamp)?;
        writer.write_str(",\"level\":")?;
        json_str(&mut writer, meta.level().as_str())?;
        writer.write_str(",\"fields\":{")?;
        let mut c = Collect::default();
        event.record(&mut c);
        members(&mut writer, &c.fields, true)?;
        writer.write_str("},\"target\":")?;
        json_str(&mut writer, meta.target())?;
        let current = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = &current {
            writer.write_str(",\"span\":")?;
            span_object(&mut writer, span)?;
            writer.write_str(",\"spans\":[")?;
            if let Some(leaf) = ctx.lookup_current() {
                for (i, s) in leaf.scope().from_root().enumerate() {
                    if i > 0 {
                        writer.write_char(',')?;
                    }
                    span_object(&mut writer, &s)?;
                }
            }
            writer.write_char(']')?;
        }
        writer.write_str("}\n")
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
    fn keys_of_members() {
        assert_eq!(key_of(r#""a":1"#), r#""a""#);
        assert_eq!(key_of(r#""a\"b":"x""#), r#""a\"b""#);
    }
}
