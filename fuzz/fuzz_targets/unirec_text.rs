//! Any text through the text parser of every UniRec type (logreplay's
//! `ur_set_from_string`): scalars, strings, bytes, arrays; addresses and
//! times that parse print and parse back to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use unirec::text::{parse_into, parse_scalar};
use unirec::{FieldType, Scalar, UrIp, UrMac, UrTime};

const SCALARS: [Scalar; 14] = [
    Scalar::Char,
    Scalar::U8,
    Scalar::I8,
    Scalar::U16,
    Scalar::I16,
    Scalar::U32,
    Scalar::I32,
    Scalar::U64,
    Scalar::I64,
    Scalar::Float,
    Scalar::Double,
    Scalar::IpAddr,
    Scalar::MacAddr,
    Scalar::Time,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut out = Vec::new();
    for s in SCALARS {
        let _ = parse_scalar(s, text);
        for ty in [FieldType::Scalar(s), FieldType::Array(s)] {
            out.clear();
            if parse_into(ty, text, &mut out).is_err() {
                assert!(out.is_empty(), "{ty}: a failed parse left bytes");
            }
        }
    }
    for ty in [FieldType::String, FieldType::Bytes] {
        out.clear();
        let _ = parse_into(ty, text, &mut out);
    }
    if let Some(ip) = UrIp::parse(text) {
        assert_eq!(UrIp::parse(&ip.to_string()), Some(ip), "{text}");
    }
    if let Some(mac) = UrMac::parse(text) {
        assert_eq!(UrMac::parse(&mac.to_string()), Some(mac), "{text}");
    }
    if let Some(t) = UrTime::parse(text) {
        let _ = UrTime::parse(&t.to_string());
    }
});
