//! A compact binary encoding of cached results, for the keys of cached
//! reads and the values of the shared tier.
//!
//! Lengths and integers are LEB128 varints; each [`Value`] is a tag byte and
//! its payload. Decoding checks every length against the bytes left and
//! returns `None` on anything malformed: a shared tier's bytes come from
//! outside the process, so a bad entry is a miss, never a panic.

use super::Payload;
use crate::row::Row;
use crate::value::Value;
use crate::vector::{PointId, ScoredPoint};
use std::sync::Arc;

/// Appends encoded items to a byte buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    pub(crate) fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }

    pub(crate) fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.buf.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.buf.push(n as u8);
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn json(&mut self, v: &serde_json::Value) {
        // Serialising a `serde_json::Value` cannot fail (string keys only).
        let text = serde_json::to_vec(v).unwrap_or_default();
        self.bytes(&text);
    }

    pub(crate) fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.byte(0),
            Value::Bool(false) => self.byte(1),
            Value::Bool(true) => self.byte(2),
            Value::Int(i) => {
                self.byte(3);
                self.varint(((*i << 1) ^ (*i >> 63)) as u64);
            }
            Value::Float(f) => {
                self.byte(4);
                self.buf.extend_from_slice(&f.to_le_bytes());
            }
            Value::Text(s) => {
                self.byte(5);
                self.str(s);
            }
            Value::Bytes(b) => {
                self.byte(6);
                self.bytes(b);
            }
            Value::Json(j) => {
                self.byte(7);
                self.json(j);
            }
            Value::Timestamp(t) => {
                self.byte(8);
                let s = t.timestamp();
                self.varint(((s << 1) ^ (s >> 63)) as u64);
                self.varint(u64::from(t.timestamp_subsec_nanos()));
            }
            Value::Uuid(u) => {
                self.byte(9);
                self.buf.extend_from_slice(u.as_bytes());
            }
            Value::Decimal(d) => {
                self.byte(10);
                self.str(d);
            }
        }
    }

    pub(crate) fn f32s(&mut self, v: &[f32]) {
        self.varint(v.len() as u64);
        for f in v {
            self.buf.extend_from_slice(&f.to_le_bytes());
        }
    }

    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.byte(0),
            Some(b) => {
                self.byte(1);
                self.bytes(b);
            }
        }
    }

    pub(crate) fn payload(&mut self, p: &Payload) {
        match p {
            Payload::Rows(rows) => {
                self.byte(1);
                let columns = rows.first().map(Row::columns).unwrap_or_default();
                self.varint(columns.len() as u64);
                for c in columns {
                    self.str(c);
                }
                self.varint(rows.len() as u64);
                for row in rows.iter() {
                    for v in row.values() {
                        self.value(v);
                    }
                }
            }
            Payload::Bytes(b) => {
                self.byte(2);
                self.opt_bytes(b.as_deref());
            }
            Payload::Many(values) => {
                self.byte(3);
                self.varint(values.len() as u64);
                for b in values.iter() {
                    self.opt_bytes(b.as_deref());
                }
            }
            Payload::Docs(docs) => {
                self.byte(4);
                self.varint(docs.len() as u64);
                for d in docs.iter() {
                    self.json(d);
                }
            }
            Payload::Points(points) => {
                self.byte(5);
                self.varint(points.len() as u64);
                for p in points.iter() {
                    match &p.id {
                        PointId::Num(n) => {
                            self.byte(0);
                            self.varint(*n);
                        }
                        PointId::Uuid(u) => {
                            self.byte(1);
                            self.buf.extend_from_slice(u.as_bytes());
                        }
                    }
                    self.buf.extend_from_slice(&p.score.to_le_bytes());
                    match &p.payload {
                        None => self.byte(0),
                        Some(map) => {
                            self.byte(1);
                            let text = serde_json::to_vec(map).unwrap_or_default();
                            self.bytes(&text);
                        }
                    }
                    match &p.vector {
                        None => self.byte(0),
                        Some(v) => {
                            self.byte(1);
                            self.f32s(v);
                        }
                    }
                }
            }
            Payload::Count(n) => {
                self.byte(6);
                self.varint(*n);
            }
        }
    }
}

/// Reads what a [`Writer`] wrote; every method returns `None` on
/// malformed or truncated input.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    pub(crate) fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    /// A count of items each at least `min_size` bytes long: checked
    /// against the bytes left, so a corrupt count cannot make a huge
    /// allocation.
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n.saturating_mul(min_size.max(1)) <= self.buf.len()).then_some(n)
    }

    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        self.take(n)
    }

    pub(crate) fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    fn json(&mut self) -> Option<serde_json::Value> {
        serde_json::from_slice(self.bytes()?).ok()
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn zigzag(&mut self) -> Option<i64> {
        let n = self.varint()?;
        Some(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    pub(crate) fn value(&mut self) -> Option<Value> {
        Some(match self.byte()? {
            0 => Value::Null,
            1 => Value::Bool(false),
            2 => Value::Bool(true),
            3 => Value::Int(self.zigzag()?),
            4 => Value::Float(f64::from_le_bytes(self.array()?)),
            5 => Value::Text(self.str()?.to_owned()),
            6 => Value::Bytes(self.bytes()?.to_vec()),
            7 => Value::Json(self.json()?),
            8 => {
                let secs = self.zigzag()?;
                let nanos = u32::try_from(self.varint()?).ok()?;
                Value::Timestamp(chrono::DateTime::from_timestamp(secs, nanos)?)
            }
            9 => Value::Uuid(uuid::Uuid::from_bytes(self.array()?)),
            10 => Value::Decimal(self.str()?.to_owned()),
            _ => return None,
        })
    }

    fn f32s(&mut self) -> Option<Vec<f32>> {
        let n = self.count(4)?;
        (0..n)
            .map(|_| Some(f32::from_le_bytes(self.array()?)))
            .collect()
    }

    fn opt_bytes(&mut self) -> Option<Option<Vec<u8>>> {
        Some(match self.byte()? {
            0 => None,
            1 => Some(self.bytes()?.to_vec()),
            _ => return None,
        })
    }

    pub(crate) fn payload(&mut self) -> Option<Payload> {
        Some(match self.byte()? {
            1 => {
                let ncols = self.count(1)?;
                let columns: Arc<[String]> = (0..ncols)
                    .map(|_| self.str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()?
                    .into();
                let nrows = self.count(ncols)?;
                let mut rows = Vec::with_capacity(nrows);
                for _ in 0..nrows {
                    let values = (0..ncols)
                        .map(|_| self.value())
                        .collect::<Option<Vec<_>>>()?;
                    rows.push(Row::new(columns.clone(), values));
                }
                Payload::Rows(rows.into())
            }
            2 => Payload::Bytes(self.opt_bytes()?.map(Into::into)),
            3 => {
                let n = self.count(1)?;
                let values = (0..n)
                    .map(|_| self.opt_bytes())
                    .collect::<Option<Vec<_>>>()?;
                Payload::Many(values.into())
            }
            4 => {
                let n = self.count(1)?;
                let docs = (0..n).map(|_| self.json()).collect::<Option<Vec<_>>>()?;
                Payload::Docs(docs.into())
            }
            5 => {
                let n = self.count(7)?;
                let mut points = Vec::with_capacity(n);
                for _ in 0..n {
                    let id = match self.byte()? {
                        0 => PointId::Num(self.varint()?),
                        1 => PointId::Uuid(uuid::Uuid::from_bytes(self.array()?)),
                        _ => return None,
                    };
                    let score = f32::from_le_bytes(self.array()?);
                    let payload = match self.byte()? {
                        0 => None,
                        1 => match serde_json::from_slice(self.bytes()?).ok()? {
                            serde_json::Value::Object(map) => Some(map),
                            _ => return None,
                        },
                        _ => return None,
                    };
                    let vector = match self.byte()? {
                        0 => None,
                        1 => Some(self.f32s()?),
                        _ => return None,
                    };
                    points.push(ScoredPoint::new(id, score, payload, vector));
                }
                Payload::Points(points.into())
            }
            6 => Payload::Count(self.varint()?),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(p: &Payload) -> Payload {
        let mut w = Writer::default();
        w.payload(p);
        let mut r = Reader::new(&w.buf);
        let back = r.payload().expect("decodes");
        assert!(r.is_empty());
        back
    }

    #[test]
    fn payloads_round_trip() {
        let columns: Arc<[String]> = vec!["a".to_owned(), "b".to_owned()].into();
        let rows = vec![
            Row::new(
                columns.clone(),
                vec![Value::Int(-5), Value::Text("x'; DROP TABLE t; --".into())],
            ),
            Row::new(
                columns,
                vec![
                    Value::Timestamp(chrono::DateTime::from_timestamp(-1, 5).unwrap()),
                    Value::Json(serde_json::json!({"k": [1, 2.5, null]})),
                ],
            ),
        ];
        let p = round_trip(&Payload::Rows(rows.clone().into()));
        let Payload::Rows(back) = p else { panic!() };
        assert_eq!(&back[..], &rows[..]);
        for v in [
            Value::Null,
            Value::Bool(true),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Float(-0.5),
            Value::Bytes(vec![0, 255]),
            Value::Uuid(uuid::Uuid::from_u128(7)),
            Value::Decimal("-1.50".into()),
        ] {
            let mut w = Writer::default();
            w.value(&v);
            assert_eq!(Reader::new(&w.buf).value(), Some(v));
        }
        let points = vec![ScoredPoint::new(
            PointId::Num(3),
            0.25,
            Some(serde_json::Map::from_iter([("k".to_owned(), 1.into())])),
            Some(vec![1.0, -2.0]),
        )];
        let Payload::Points(back) = round_trip(&Payload::Points(points.clone().into())) else {
            panic!()
        };
        assert_eq!(&back[..], &points[..]);
    }

    #[test]
    fn malformed_input_is_none_never_a_panic() {
        let mut w = Writer::default();
        w.payload(&Payload::Many(
            vec![Some(b"abc".to_vec()), None, Some(Vec::new())].into(),
        ));
        let full = w.buf;
        for cut in 0..full.len() {
            assert!(Reader::new(&full[..cut]).payload().is_none(), "cut {cut}");
        }
        // A huge count does not allocate.
        let mut w = Writer::default();
        w.byte(3);
        w.varint(u64::MAX);
        assert!(Reader::new(&w.buf).payload().is_none());
        for garbage in [&[9u8][..], &[1, 0xff, 0xff], &[5, 1, 7]] {
            assert!(Reader::new(garbage).payload().is_none());
        }
    }
}
