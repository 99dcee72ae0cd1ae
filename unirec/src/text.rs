//! Text forms of UniRec values: what C NEMEA's `logger` prints
//! (`urcsv_record`) and what `logreplay` parses (`ur_set_from_string`).
//!
//! Parsing follows the C rules for valid input (signed integers accept `0x`
//! hex and `0` octal like `%i`; fields of `time` may have short components) but
//! is stricter where C silently stores garbage: out-of-range numbers, trailing
//! junk and unparsable times are errors here, so a bad CSV line is reported
//! instead of replayed as zeros.

use crate::addr::{UrIp, UrMac};
use crate::record::{RecordBuilder, RecordError, RecordRef, Value};
use crate::time::UrTime;
use crate::types::{FieldType, Scalar};
use std::io::Write as _;

/// Appends one value as logger prints it.
pub fn write_value(v: &Value<'_>, out: &mut Vec<u8>) {
    let mut num = itoa::Buffer::new();
    match *v {
        Value::Char(c) => out.push(c),
        Value::U8(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::I8(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::U16(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::I16(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::U32(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::I32(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::U64(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::I64(x) => out.extend_from_slice(num.format(x).as_bytes()),
        Value::Float(x) => write_c_float(f64::from(x), out),
        Value::Double(x) => write_c_float(x, out),
        Value::Ip(ip) => ip.write_text(out),
        Value::Mac(mac) => mac.write_text(out),
        Value::Time(t) => t.write_text(out),
        Value::String(s) => write_c_string(s, out),
        Value::Bytes(b) => write_hex(b, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b'|');
                }
                write_value(&e, out);
            }
            out.push(b']');
        }
    }
}

/// C `printf("%f")`: six decimals, no exponent, `inf`/`nan` spelled like glibc.
pub fn write_c_float(x: f64, out: &mut Vec<u8>) {
    if x.is_nan() {
        out.extend_from_slice(if x.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
    } else if x.is_infinite() {
        out.extend_from_slice(if x < 0.0 { b"-inf" } else { b"inf" });
    } else {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{x:.6}");
    }
}

/// logger's string form: quoted, `"` doubled, newline → space, every byte that
/// is not printable ASCII dropped.
pub fn write_c_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\"\""),
            b'\n' => out.push(b' '),
            0x20..=0x7e => out.push(c),
            _ => {}
        }
    }
    out.push(b'"');
}

/// Lower-case hex, two digits per byte.
pub fn write_hex(b: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(b.len() * 2);
    for &x in b {
        out.push(HEX[usize::from(x >> 4)]);
        out.push(HEX[usize::from(x & 15)]);
    }
}

/// Appends one record as a logger line (fields in record order joined by
/// `delimiter`, then `\n`).
pub fn write_record(rec: &RecordRef<'_>, delimiter: u8, out: &mut Vec<u8>) {
    for i in 0..rec.template().len() {
        if i > 0 {
            out.push(delimiter);
        }
        if let Some(v) = rec.value(i) {
            write_value(&v, out);
        }
    }
    out.push(b'\n');
}

/// A text that is not a valid value of its field's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a valid {ty}")]
pub struct ParseError {
    pub text: String,
    pub ty: FieldType,
}

/// Skips leading whitespace and an optional sign, like `strtol`.
fn sign_and_digits(text: &str) -> (bool, &str) {
    let t = text.trim();
    match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    }
}

fn parse_unsigned(text: &str, max: u64) -> Option<u64> {
    let (neg, digits) = sign_and_digits(text);
    if neg || digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok().filter(|&v| v <= max)
}

/// `%i`: decimal, `0x` hexadecimal or `0` octal, with an optional sign.
fn parse_signed(text: &str, min: i64, max: i64) -> Option<i64> {
    let (neg, body) = sign_and_digits(text);
    let (radix, digits) = if let Some(h) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, h)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from(u64::from_str_radix(digits, radix).ok()?);
    let v = if neg { -magnitude } else { magnitude };
    i64::try_from(v).ok().filter(|v| (min..=max).contains(v))
}

fn parse_float(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok()
}

/// Parses one scalar from its text form.
pub fn parse_scalar(s: Scalar, text: &str) -> Option<Value<'static>> {
    Some(match s {
        Scalar::Char => Value::Char(*text.as_bytes().first()?),
        Scalar::U8 => Value::U8(parse_unsigned(text, u8::MAX.into())? as u8),
        Scalar::U16 => Value::U16(parse_unsigned(text, u16::MAX.into())? as u16),
        Scalar::U32 => Value::U32(parse_unsigned(text, u32::MAX.into())? as u32),
        Scalar::U64 => Value::U64(parse_unsigned(text, u64::MAX)?),
        Scalar::I8 => Value::I8(parse_signed(text, i8::MIN.into(), i8::MAX.into())? as i8),
        Scalar::I16 => Value::I16(parse_signed(text, i16::MIN.into(), i16::MAX.into())? as i16),
        Scalar::I32 => Value::I32(parse_signed(text, i32::MIN.into(), i32::MAX.into())? as i32),
        Scalar::I64 => Value::I64(parse_signed(text, i64::MIN, i64::MAX)?),
        Scalar::Float => Value::Float(parse_float(text)? as f32),
        Scalar::Double => Value::Double(parse_float(text)?),
        Scalar::IpAddr => Value::Ip(UrIp::parse(text.trim())?),
        Scalar::MacAddr => Value::Mac(UrMac::parse(text)?),
        Scalar::Time => Value::Time(UrTime::parse(text.trim())?),
    })
}

/// Appends the little-endian encoding of a scalar value.
pub fn encode_scalar(v: &Value<'_>, out: &mut Vec<u8>) {
    match *v {
        Value::Char(x) | Value::U8(x) => out.push(x),
        Value::I8(x) => out.push(x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Float(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Double(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Ip(x) => out.extend_from_slice(&x.0),
        Value::Mac(x) => out.extend_from_slice(&x.0),
        Value::Time(x) => out.extend_from_slice(&x.0.to_le_bytes()),
        Value::String(b) | Value::Bytes(b) => out.extend_from_slice(b),
        Value::Array(a) => out.extend_from_slice(a.raw()),
    }
}

fn parse_scalar_into(s: Scalar, text: &str, out: &mut Vec<u8>) -> Option<()> {
    encode_scalar(&parse_scalar(s, text)?, out);
    Some(())
}

/// Parses `text` as a value of `ty` and appends its encoding to `out`: the
/// fixed bytes of a scalar, or the data of a variable field (string bytes as
/// given, `bytes` from hex pairs, arrays from space-separated elements).
pub fn parse_into(ty: FieldType, text: &str, out: &mut Vec<u8>) -> Result<(), ParseError> {
    let err = || ParseError {
        text: text.to_string(),
        ty,
    };
    let start = out.len();
    let ok = match ty {
        FieldType::Scalar(s) => parse_scalar_into(s, text, out),
        FieldType::String => {
            out.extend_from_slice(text.as_bytes());
            Some(())
        }
        FieldType::Bytes => parse_hex_into(text.trim(), out),
        FieldType::Array(s) => text
            .split_ascii_whitespace()
            .try_for_each(|e| parse_scalar_into(s, e, out)),
    };
    ok.ok_or_else(|| {
        out.truncate(start);
        err()
    })
}

fn parse_hex_into(text: &str, out: &mut Vec<u8>) -> Option<()> {
    let b = text.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    for pair in b.chunks_exact(2) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out.push((hi * 16 + lo) as u8);
    }
    Some(())
}

/// Why a text could not be stored in a builder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetTextError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Record(#[from] RecordError),
}

impl RecordBuilder<'_> {
    /// Sets field `idx` from its text form (`ur_set_from_string`).
    pub fn set_from_text(&mut self, idx: usize, text: &str) -> Result<(), SetTextError> {
        let ty = self
            .template()
            .field(idx)
            .ok_or(RecordError::NoField(idx))?
            .ty();
        match ty {
            FieldType::Scalar(s) => {
                let v = parse_scalar(s, text).ok_or_else(|| ParseError {
                    text: text.to_string(),
                    ty,
                })?;
                self.set(idx, &v)?;
            }
            _ => {
                let data = self.var_mut(idx)?;
                data.clear();
                parse_into(ty, text, data)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Template;

    fn line(spec: &str, values: &[(&str, &str)]) -> String {
        let t = Template::parse(spec).unwrap();
        let mut b = RecordBuilder::new(&t);
        for (name, text) in values {
            b.set_from_text(t.find(name).unwrap(), text).unwrap();
        }
        let mut rec = Vec::new();
        b.finish(&mut rec).unwrap();
        let mut out = Vec::new();
        write_record(&RecordRef::new_checked(&t, &rec).unwrap(), b',', &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn logger_line_of_the_reference_probe() {
        let got = line(
            "ipaddr DST_IP,ipaddr SRC_IP,double D,time TIME_FIRST,macaddr MAC,float F,uint16 DST_PORT,uint16 SRC_PORT,char C,int8 I8,uint8 PROTOCOL,bytes PAY,string URL,uint16* ARR16,int32* ARR32,ipaddr* IPS",
            &[
                ("DST_IP", "2001:db8::1"),
                ("SRC_IP", "192.168.1.10"),
                ("D", "3.25"),
                ("TIME_FIRST", "2017-10-26T23:36:01.123456"),
                ("MAC", "01:23:45:67:89:AB"),
                ("F", "-1.5"),
                ("DST_PORT", "51000"),
                ("SRC_PORT", "443"),
                ("C", "x"),
                ("I8", "-5"),
                ("PROTOCOL", "6"),
                ("PAY", "deadbeef"),
                ("URL", "a\"b,c\nd"),
                ("ARR16", "1 2  65535"),
                ("ARR32", "-1 7"),
                ("IPS", "10.0.0.1 ::1"),
            ],
        );
        assert_eq!(
            got,
            "2001:db8::1,192.168.1.10,3.250000,2017-10-26T23:36:01.123456,01:23:45:67:89:ab,-1.500000,51000,443,x,-5,6,deadbeef,\"a\"\"b,c d\",[1|2|65535],[-1|7],[10.0.0.1|::1]\n"
        );
    }

    #[test]
    fn test_ur2csv_expectation() {
        let got = line(
            "ipaddr DST_IP,ipaddr SRC_IP,uint64 BYTES,uint32 PACKETS,uint8 PROTOCOL,bytes MESSAGE,string URL",
            &[
                ("DST_IP", "10.0.0.2"),
                ("SRC_IP", "10.0.0.1"),
                ("BYTES", "6"),
                ("PACKETS", "6"),
                ("PROTOCOL", "6"),
                ("MESSAGE", "3000010209a100"),
                ("URL", "www.example.com"),
            ],
        );
        assert_eq!(
            got,
            "10.0.0.2,10.0.0.1,6,6,6,3000010209a100,\"www.example.com\"\n"
        );
    }

    #[test]
    fn strings_drop_unprintable_bytes() {
        let mut out = Vec::new();
        write_c_string("tab\there é\r\"".as_bytes(), &mut out);
        assert_eq!(out, b"\"tabhere \"\"\"");
    }

    #[test]
    fn floats_print_like_printf() {
        let f = |x: f64| {
            let mut o = Vec::new();
            write_c_float(x, &mut o);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(f(0.5), "0.500000");
        assert_eq!(f(-0.0), "-0.000000");
        assert_eq!(f(1e20), "100000000000000000000.000000");
        assert_eq!(f(f64::from(1e20f32)), "100000002004087734272.000000");
        assert_eq!(f(f64::INFINITY), "inf");
        assert_eq!(f(f64::NEG_INFINITY), "-inf");
        assert_eq!(f(f64::NAN), "nan");
        assert_eq!(f(0.0000005), "0.000000");
        assert_eq!(f(2.5e-6), "0.000003");
        assert_eq!(f(1.0000005), "1.000001");
    }

    #[test]
    fn empty_variable_fields() {
        assert_eq!(
            line(
                "bytes B,string S,uint32* A",
                &[("B", ""), ("S", ""), ("A", "")]
            ),
            ",\"\",[]\n"
        );
    }

    #[test]
    fn integer_rules() {
        let p = |ty: &str, s: &str| {
            let mut out = Vec::new();
            parse_into(FieldType::from_name(ty).unwrap(), s, &mut out).map(|_| out)
        };
        assert_eq!(p("int32", "010").unwrap(), 8i32.to_le_bytes());
        assert_eq!(p("int32", "0x10").unwrap(), 16i32.to_le_bytes());
        assert_eq!(p("int32", "-0x10").unwrap(), (-16i32).to_le_bytes());
        assert_eq!(p("int8", "-128").unwrap(), [0x80]);
        assert_eq!(p("uint16", " 0042 ").unwrap(), 42u16.to_le_bytes());
        assert_eq!(p("uint64", "18446744073709551615").unwrap(), [0xff; 8]);
        assert!(p("int8", "128").is_err());
        assert!(p("uint8", "256").is_err());
        assert!(p("uint8", "-1").is_err());
        assert!(p("uint32", "12abc").is_err());
        assert!(p("uint32", "").is_err());
        assert!(p("int32", "09").is_err());
        assert!(p("bytes", "abc").is_err());
        assert!(p("bytes", "zz").is_err());
        assert!(p("ipaddr", "1.2.3").is_err());
        assert!(p("time", "yesterday").is_err());
        let e = p("uint16", "x").unwrap_err().to_string();
        assert_eq!(e, "`x` is not a valid uint16");
    }
}
