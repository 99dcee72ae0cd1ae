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

    /// Every type, through JSON and back (serde_json reads it; the values
    /// rebuilt from it give the same record bytes).
    mod round_trip {
        use super::*;
        use serde_json::Value as J;
        use unirec::text::encode_scalar;
        use unirec::{FieldType, Scalar, UrMac};

        const SPEC: &str = "uint8 U8,int8 I8,uint16 U16,int16 I16,uint32 U32,int32 I32,uint64 U64,int64 I64,float F,double D,ipaddr IP,macaddr MAC,time T,char C,string S,bytes B,uint8* AU8,int8* AI8,uint16* AU16,int16* AI16,uint32* AU32,int32* AI32,uint64* AU64,int64* AI64,float* AF,double* AD,ipaddr* AIP,macaddr* AMAC,time* AT";

        fn scalar_from_json(s: Scalar, v: &J) -> unirec::Value<'static> {
            let int = || {
                v.as_i64()
                    .map(i128::from)
                    .or(v.as_u64().map(i128::from))
                    .expect("an integer")
            };
            let text = || v.as_str().expect("a string");
            match s {
                Scalar::U8 => Value::U8(int() as u8),
                Scalar::I8 => Value::I8(int() as i8),
                Scalar::U16 => Value::U16(int() as u16),
                Scalar::I16 => Value::I16(int() as i16),
                Scalar::U32 => Value::U32(int() as u32),
                Scalar::I32 => Value::I32(int() as i32),
                Scalar::U64 => Value::U64(int() as u64),
                Scalar::I64 => Value::I64(int() as i64),
                Scalar::Float => Value::Float(v.as_f64().expect("a number") as f32),
                Scalar::Double => Value::Double(v.as_f64().expect("a number")),
                Scalar::IpAddr => Value::Ip(UrIp::parse(text()).expect("an address")),
                Scalar::MacAddr => Value::Mac(UrMac::parse(text()).expect("a MAC")),
                Scalar::Time => Value::Time(UrTime::parse(text()).expect("a time")),
                Scalar::Char => Value::Char(text().chars().next().map_or(0, |c| c as u32 as u8)),
            }
        }

        fn rebuild(t: &Template, obj: &serde_json::Map<String, J>) -> Vec<u8> {
            let mut b = RecordBuilder::new(t);
            for (i, f) in t.fields().iter().enumerate() {
                let v = &obj[f.name()];
                match f.ty() {
                    FieldType::Scalar(s) => b.set(i, &scalar_from_json(s, v)).unwrap(),
                    FieldType::String => b.set_var(i, v.as_str().unwrap().as_bytes()).unwrap(),
                    FieldType::Bytes => {
                        let h = v.as_str().unwrap();
                        let bytes: Vec<u8> = (0..h.len())
                            .step_by(2)
                            .map(|k| u8::from_str_radix(&h[k..k + 2], 16).unwrap())
                            .collect();
                        b.set_var(i, &bytes).unwrap();
                    }
                    FieldType::Array(s) => {
                        let data = b.var_mut(i).unwrap();
                        for e in v.as_array().unwrap() {
                            encode_scalar(&scalar_from_json(s, e), data);
                        }
                    }
                }
            }
            let mut out = Vec::new();
            b.finish(&mut out).unwrap();
            out
        }

        fn record(t: &Template, k: u64) -> Vec<u8> {
            let mut b = RecordBuilder::new(t);
            let at = |n| t.find(n).unwrap();
            let ext = k % 2 == 1;
            b.set_u8(at("U8"), if ext { u8::MAX } else { 0 }).unwrap();
            b.set_i8(at("I8"), if ext { i8::MIN } else { i8::MAX })
                .unwrap();
            b.set_u16(at("U16"), if ext { u16::MAX } else { 1 })
                .unwrap();
            b.set_i16(at("I16"), if ext { i16::MIN } else { -1 })
                .unwrap();
            b.set_u32(at("U32"), if ext { u32::MAX } else { 7 })
                .unwrap();
            b.set_i32(at("I32"), if ext { i32::MIN } else { i32::MAX })
                .unwrap();
            b.set_u64(at("U64"), if ext { u64::MAX } else { (1 << 53) + 1 })
                .unwrap();
            b.set_i64(at("I64"), if ext { i64::MIN } else { i64::MAX })
                .unwrap();
            b.set_f32(at("F"), if ext { 0.1 } else { f32::MAX })
                .unwrap();
            b.set_f64(at("D"), if ext { -1e-300 } else { 1.0 / 3.0 })
                .unwrap();
            b.set_ip(
                at("IP"),
                UrIp::parse(if ext {
                    "::ffff:10.0.0.1"
                } else {
                    "198.51.100.7"
                })
                .unwrap(),
            )
            .unwrap();
            b.set_mac(at("MAC"), UrMac::parse("00:1b:21:aa:bb:cc").unwrap())
                .unwrap();
            b.set_time(
                at("T"),
                if ext {
                    UrTime::from_secs_nanos(u32::MAX, 999_999_999)
                } else {
                    UrTime::from_secs_micros(1_515_619_020, 123_456)
                },
            )
            .unwrap();
            b.set_char(at("C"), if ext { b'"' } else { 0xe9 }).unwrap();
            b.set_var(
                at("S"),
                if ext {
                    "quote \" backslash \\ newline \n tab \t nul \0 bell \u{7} é ☃ 𝄞".as_bytes()
                } else {
                    b""
                },
            )
            .unwrap();
            b.set_var(
                at("B"),
                if ext {
                    &[0, 1, 0x7f, 0x80, 0xff][..]
                } else {
                    &[]
                },
            )
            .unwrap();
            b.set_var(at("AU8"), &[0, 255]).unwrap();
            b.set_var(at("AI8"), &[0x80, 0x7f]).unwrap();
            let mut v = Vec::new();
            for x in [0u16, 65535] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            b.set_var(at("AU16"), &v).unwrap();
            v.clear();
            for x in [i16::MIN, -1] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            b.set_var(at("AI16"), &v).unwrap();
            v.clear();
            for x in [u32::MAX, 0] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            b.set_var(at("AU32"), &v).unwrap();
            v.clear();
            for x in [i32::MIN, 5] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            b.set_var(at("AI32"), &v).unwrap();
            v.clear();
            for x in [u64::MAX, 0] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            b.set_var(at("AU64"), &v).unwrap();
            v.clear();
            for x in [i64::MIN, i64::MAX] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            b.set_var(at("AI64"), &v).unwrap();
            v.clear();
            for x in [1.5f32, -0.0, 1e-45] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            b.set_var(at("AF"), &v).unwrap();
            v.clear();
            for x in [f64::MAX, f64::MIN_POSITIVE, 5e-324] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            b.set_var(at("AD"), &v).unwrap();
            v.clear();
            for x in ["2001:db8::1", "10.0.0.1", "::"] {
                v.extend_from_slice(&UrIp::parse(x).unwrap().0);
            }
            b.set_var(at("AIP"), &v).unwrap();
            b.set_var(
                at("AMAC"),
                &[1, 2, 3, 4, 5, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            )
            .unwrap();
            v.clear();
            for x in [
                UrTime::from_secs_millis(0, 1),
                UrTime::from_secs_nanos(1, 1),
            ] {
                v.extend_from_slice(&x.0.to_le_bytes());
            }
            b.set_var(at("AT"), if ext { &v[..] } else { &[] }).unwrap();
            let mut out = Vec::new();
            b.finish(&mut out).unwrap();
            out
        }

        #[test]
        fn every_type_round_trips() {
            let t = Template::parse(SPEC).unwrap();
            let all = Columns::all(&t);
            for k in 0..2 {
                let rec = record(&t, k);
                let r = RecordRef::new_checked(&t, &rec).unwrap();
                let mut text = Vec::new();
                write_record(&r, &all, &mut text);
                let parsed: J = serde_json::from_slice(&text)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&text)));
                let obj = parsed.as_object().unwrap();
                assert_eq!(obj.len(), t.len());
                assert_eq!(rebuild(&t, obj), rec, "{}", String::from_utf8_lossy(&text));
            }
        }
    }
}
