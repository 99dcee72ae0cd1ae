//! UniRec records as JSON objects, one per record, for `jq` and log
//! shippers (`logger --json`, `unirec2json`).
//!
//! Keys are the UniRec field names, as in NEMEA's unirec2json. Values:
//!
//! | UniRec | JSON |
//! |---|---|
//! | integers | numbers (exact, also beyond 2^53) |
//! | `float`, `double` | numbers in their shortest exact form; NaN and ±infinity: `null` |
//! | `ipaddr` | string, as logger prints it (`10.0.0.1`, `2001:db8::1`) |
//! | `macaddr` | string `aa:bb:cc:dd:ee:ff` |
//! | `time` | string, ISO 8601 UTC: `2018-01-10T21:17:00.123456Z` (microseconds; nine digits when the value has a finer part) |
//! | `char` | string of one character (a byte above 127 as that code point) |
//! | `string` | string; bytes that are not UTF-8 become U+FFFD |
//! | `bytes` | string of lower-case hex, two digits per byte (as logger prints it) |
//! | arrays | arrays of the element values |
//!
//! NEMEA's unirec2json (pytrap) writes times as float seconds and `bytes`
//! as Python's `repr`; ISO strings and hex are what `jq` and log shippers
//! read without help.

use crate::columns::Columns;
use unirec::{RecordRef, UrTime, Value};

/// Appends `s` as a JSON string (with its quotes).
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends bytes as a JSON string, invalid UTF-8 replaced by U+FFFD.
fn write_lossy(b: &[u8], out: &mut Vec<u8>) {
    match std::str::from_utf8(b) {
        Ok(s) => write_str(s, out),
        Err(_) => write_str(&String::from_utf8_lossy(b), out),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff[fff]Z`.
pub fn write_time(t: UrTime, out: &mut Vec<u8>) {
    out.push(b'"');
    t.write_text(out);
    let ns = t.nanos() % 1000;
    if ns != 0 {
        let mut num = itoa::Buffer::new();
        let s = num.format(ns);
        out.extend(std::iter::repeat_n(b'0', 3 - s.len()));
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(b"Z\"");
}

fn write_float<T: std::fmt::Debug>(x: T, finite: bool, out: &mut Vec<u8>) {
    use std::io::Write as _;
    if finite {
        // Debug is the shortest form that reads back exactly (`0.1`,
        // `1e-7`, `1.5e300`): all valid JSON numbers.
        let _ = write!(out, "{x:?}");
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends one value as JSON.
pub fn write_value(v: &Value<'_>, out: &mut Vec<u8>) {
    let mut num = itoa::Buffer::new();
    match *v {
        Value::Char(c) => {
            let mut buf = [0; 4];
            write_str(char::from(c).encode_utf8(&mut buf), out);
        }
        Value::U8(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::I8(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::U16(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::I16(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::U32(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::I32(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::U64(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::I64(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::Float(x) => write_float(x, x.is_finite(), out),
        Value::Double(x) => write_float(x, x.is_finite(), out),
        Value::Ip(ip) => {
            out.push(b'"');
            ip.write_text(out);
            out.push(b'"');
        }
        Value::Mac(mac) => {
            out.push(b'"');
            mac.write_text(out);
            out.push(b'"');
        }
        Value::Time(t) => write_time(t, out),
        Value::String(s) => write_lossy(s, out),
        Value::Bytes(b) => {
            out.push(b'"');
            unirec::text::write_hex(b, out);
            out.push(b'"');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(&e, out);
            }
            out.push(b']');
        }
    }
}

/// Appends one record as a JSON object (no newline): the chosen columns in
/// their order, a chosen field the record lacks as `null`.
pub fn write_record(rec: &RecordRef<'_>, cols: &Columns, out: &mut Vec<u8>) {
    out.push(b'{');
    for (k, (name, idx)) in cols.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        write_str(name, out);
        out.push(b':');
        match idx.and_then(|i| rec.value(i)) {
            Some(v) => write_value(&v, out),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use unirec::{RecordBuilder, Template, UrIp};

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(
            s(|o| write_str("a\"b\\c\nd\te\u{1}\u{7f}é", o)),
            r#""a\"b\\c\nd\te\u0001\u007fé""#
        );
        assert_eq!(s(|o| write_lossy(b"x\xffy", o)), "\"x\u{fffd}y\"");
    }

    #[test]
    fn times_keep_their_precision() {
        assert_eq!(
            s(|o| write_time(UrTime::from_secs_micros(1_515_619_020, 123_456), o)),
            "\"2018-01-10T21:17:00.123456Z\""
        );
        assert_eq!(
            s(|o| write_time(UrTime::from_secs_nanos(0, 1), o)),
            "\"1970-01-01T00:00:00.000000001Z\""
        );
        assert_eq!(
            s(|o| write_time(UrTime::from_secs_millis(0, 5), o)),
            "\"1970-01-01T00:00:00.005000Z\""
        );
    }

    #[test]
    fn floats_and_specials() {
        assert_eq!(s(|o| write_value(&Value::Float(0.1), o)), "0.1");
        assert_eq!(s(|o| write_value(&Value::Double(1e300), o)), "1e300");
        assert_eq!(s(|o| write_value(&Value::Double(3.0), o)), "3.0");
        assert_eq!(s(|o| write_value(&Value::Double(f64::NAN), o)), "null");
        assert_eq!(
            s(|o| write_value(&Value::Float(f32::NEG_INFINITY), o)),
            "null"
        );
        assert_eq!(s(|o| write_value(&Value::Char(b'x'), o)), "\"x\"");
        assert_eq!(s(|o| write_value(&Value::Char(b'"'), o)), r#""\"""#);
    }

    #[test]
    fn a_record() {
        let t = Template::parse("ipaddr SRC_IP,uint64 BYTES,bytes B,uint16* P,string U").unwrap();
        let mut b = RecordBuilder::new(&t);
        let at = |n| t.find(n).unwrap();
        b.set_ip(at("SRC_IP"), UrIp::parse("2001:db8::1").unwrap())
            .unwrap();
        b.set_u64(at("BYTES"), u64::MAX).unwrap();
        b.set_var(at("B"), &[0xde, 0xad]).unwrap();
        b.set_var(at("P"), &[1, 0, 2, 0]).unwrap();
        b.set_var(at("U"), b"/a b").unwrap();
        let mut rec = Vec::new();
        b.finish(&mut rec).unwrap();
        let r = RecordRef::new_checked(&t, &rec).unwrap();
        let all = Columns::all(&t);
        assert_eq!(
            s(|o| write_record(&r, &all, o)),
            r#"{"SRC_IP":"2001:db8::1","BYTES":18446744073709551615,"B":"dead","U":"/a b","P":[1,2]}"#
        );
    }
}
