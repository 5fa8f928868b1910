//! NUMERIC in its binary form, both ways.

use super::*;

pub(crate) const NUMERIC_POS: u16 = 0x0000;
pub(crate) const NUMERIC_NEG: u16 = 0x4000;
pub(crate) const NUMERIC_NAN: u16 = 0xC000;
pub(crate) const NUMERIC_PINF: u16 = 0xD000;
pub(crate) const NUMERIC_NINF: u16 = 0xF000;

pub(crate) fn numeric_param(pos: usize, text: &str) -> Result<Vec<u8>, Error> {
    encode_numeric(text).ok_or_else(|| {
        let shown: String = text.chars().take(48).collect();
        Error::invalid_input(format!(
            "parameter ${pos}: {shown:?} is not a decimal number"
        ))
    })
}

/// Encode decimal text (`-12.340`, `7`, `.5`, `NaN`, `Infinity`) in
/// NUMERIC's binary format: base-10000 digits, weight, sign and display
/// scale, keeping every digit given (the scale is the number of fraction
/// digits written).
pub(crate) fn encode_numeric(text: &str) -> Option<Vec<u8>> {
    let header = |ndigits: i16, weight: i16, sign: u16, dscale: u16| {
        let mut out = Vec::with_capacity(8);
        out.extend_from_slice(&ndigits.to_be_bytes());
        out.extend_from_slice(&weight.to_be_bytes());
        out.extend_from_slice(&sign.to_be_bytes());
        out.extend_from_slice(&dscale.to_be_bytes());
        out
    };
    match text.to_ascii_lowercase().as_str() {
        "nan" => return Some(header(0, 0, NUMERIC_NAN, 0)),
        "infinity" | "+infinity" | "inf" => return Some(header(0, 0, NUMERIC_PINF, 0)),
        "-infinity" | "-inf" => return Some(header(0, 0, NUMERIC_NINF, 0)),
        _ => {}
    }
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let dscale = u16::try_from(frac.len()).ok().filter(|d| *d <= 0x3FFF)?;
    let int = int.trim_start_matches('0');
    let mut groups: Vec<i16> = Vec::with_capacity((int.len() + frac.len()) / 4 + 2);
    let group = |s: &[u8]| s.iter().fold(0i16, |acc, b| acc * 10 + i16::from(b - b'0'));
    let lead = (4 - int.len() % 4) % 4;
    let mut padded = vec![b'0'; lead];
    padded.extend_from_slice(int.as_bytes());
    groups.extend(padded.chunks(4).map(group));
    let int_groups = groups.len();
    let mut fpadded = frac.as_bytes().to_vec();
    fpadded.resize(frac.len().div_ceil(4) * 4, b'0');
    groups.extend(fpadded.chunks(4).map(group));
    let mut weight = int_groups as i64 - 1;
    let zeros = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..zeros);
    weight -= zeros as i64;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let (weight, sign) = if groups.is_empty() {
        (0, NUMERIC_POS)
    } else {
        (weight, if negative { NUMERIC_NEG } else { NUMERIC_POS })
    };
    let weight = i16::try_from(weight).ok()?;
    let ndigits = i16::try_from(groups.len()).ok()?;
    let mut out = header(ndigits, weight, sign, dscale);
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Some(out)
}

/// Decode a binary NUMERIC exactly: a `Value::Decimal` with the value's own
/// display scale, or a float for NaN and the infinities.
pub(crate) fn decode_numeric(raw: &[u8]) -> Result<Value, String> {
    let word = |i: usize| -> Result<u16, String> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".to_owned())
    };
    let ndigits = word(0)? as i16;
    let weight = word(1)? as i16;
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        NUMERIC_NAN => return Ok(Value::Float(f64::NAN)),
        NUMERIC_PINF => return Ok(Value::Float(f64::INFINITY)),
        NUMERIC_NINF => return Ok(Value::Float(f64::NEG_INFINITY)),
        NUMERIC_POS | NUMERIC_NEG => {}
        _ => return Err(format!("numeric has an unknown sign {sign:#x}")),
    }
    if ndigits < 0 {
        return Err("numeric has a negative digit count".to_owned());
    }
    let digits = (0..ndigits as usize)
        .map(|i| word(4 + i).map(|d| d as i16))
        .collect::<Result<Vec<i16>, String>>()?;
    if digits.iter().any(|d| !(0..10_000).contains(d)) {
        return Err("numeric has an invalid digit".to_owned());
    }
    let digit = |i: i64| -> i16 {
        if i >= 0 && (i as usize) < digits.len() {
            digits[i as usize]
        } else {
            0
        }
    };
    let mut out = String::with_capacity(digits.len() * 4 + dscale + 2);
    if sign == NUMERIC_NEG && !digits.is_empty() {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=i64::from(weight) {
            let d = digit(i);
            if i == 0 {
                let _ = write!(out, "{d}");
            } else {
                let _ = write!(out, "{d:04}");
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let start = out.len();
        let mut i = i64::from(weight) + 1;
        while out.len() - start < dscale {
            let _ = write!(out, "{:04}", digit(i));
            i += 1;
        }
        out.truncate(start + dscale);
    }
    Ok(Value::Decimal(out))
}
