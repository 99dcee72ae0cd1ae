use super::*;
use std::net::Ipv4Addr;
use unirec::record::RecordBuilder;
use unirec::text::write_record;

/// The key of the sample program in the original Crypto-PAn distribution.
const SAMPLE_KEY: [u8; 32] = [
    21, 34, 23, 141, 51, 164, 207, 128, 19, 10, 91, 22, 73, 144, 125, 16, 216, 152, 143, 131, 121,
    121, 101, 39, 98, 87, 76, 45, 42, 132, 34, 2,
];

/// Address pairs of the distribution's `sample_trace_raw.dat` and
/// `sample_trace_sanitized.dat` (as collected in the test suite of
/// github.com/Yawning/cryptopan, an independent implementation).
const SAMPLE_V4: [(&str, &str); 20] = [
    ("128.11.68.132", "135.242.180.132"),
    ("129.118.74.4", "134.136.186.123"),
    ("130.132.252.244", "133.68.164.234"),
    ("141.223.7.43", "141.167.8.160"),
    ("141.233.145.108", "141.129.237.235"),
    ("152.163.225.39", "151.140.114.167"),
    ("156.29.3.236", "147.225.12.42"),
    ("192.102.249.13", "252.138.62.131"),
    ("192.215.32.125", "252.43.47.189"),
    ("198.51.77.238", "249.18.186.254"),
    ("202.49.198.20", "245.206.7.234"),
    ("207.25.71.27", "241.33.119.156"),
    ("208.147.89.59", "227.237.98.191"),
    ("209.85.249.6", "226.170.70.6"),
    ("212.206.130.201", "228.69.242.193"),
    ("216.32.132.250", "235.192.139.38"),
    ("24.0.250.221", "100.15.198.226"),
    ("4.3.88.225", "124.60.155.63"),
    ("63.97.7.140", "95.97.9.123"),
    ("64.39.15.238", "0.219.7.41"),
];

/// IPv6 results of the same key from that Go implementation (which, like
/// NEMEA's C, runs Crypto-PAn over the 128 bits in network order).
const SAMPLE_V6: [(&str, &str); 3] = [
    ("::1", "78ff:f001:9fc0:20df:8380:b1f1:704:ed"),
    ("::ffff", "78ff:f001:9fc0:20df:8380:b1f1:704:f838"),
    ("2001:db8::1", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1e"),
];

fn v4(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().unwrap())
}

fn v6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

#[test]
fn matches_the_crypto_pan_sample_trace_and_reverses_it() {
    let pan = CryptoPan::new(&SAMPLE_KEY, Prf::Aes);
    for (raw, sanitized) in SAMPLE_V4 {
        assert_eq!(
            Ipv4Addr::from(pan.anonymize_v4(v4(raw))).to_string(),
            sanitized,
            "{raw}"
        );
        assert_eq!(
            Ipv4Addr::from(pan.deanonymize_v4(v4(sanitized))).to_string(),
            raw,
            "{sanitized}"
        );
    }
    for (raw, anon) in SAMPLE_V6 {
        assert_eq!(
            Ipv6Addr::from(pan.anonymize_v6(v6(raw))).to_string(),
            anon,
            "{raw}"
        );
        assert_eq!(
            Ipv6Addr::from(pan.deanonymize_v6(v6(anon))).to_string(),
            raw,
            "{anon}"
        );
    }
}

/// A small deterministic generator for the property tests.
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed
}

#[test]
fn both_functions_round_trip_and_preserve_prefixes() {
    let mut seed = 7;
    for prf in [Prf::Aes, Prf::Murmur] {
        let pan = CryptoPan::new(&parse_key(DEFAULT_KEY).unwrap(), prf);
        for _ in 0..200 {
            let a = lcg(&mut seed) as u32;
            let b = lcg(&mut seed) as u32;
            let (aa, ab) = (pan.anonymize_v4(a), pan.anonymize_v4(b));
            assert_eq!(pan.deanonymize_v4(aa), a);
            // The common prefix is kept exactly (not longer, not shorter).
            assert_eq!(
                (a ^ b).leading_zeros(),
                (aa ^ ab).leading_zeros(),
                "{prf:?} {a:x} {b:x}"
            );
            let x = (u128::from(lcg(&mut seed)) << 64 | u128::from(lcg(&mut seed))).to_be_bytes();
            let y = {
                let mut y = x;
                y[15] ^= 1 << (lcg(&mut seed) % 8);
                y
            };
            let (ax, ay) = (pan.anonymize_v6(x), pan.anonymize_v6(y));
            assert_eq!(pan.deanonymize_v6(ax), x);
            assert_eq!(
                (u128::from_be_bytes(x) ^ u128::from_be_bytes(y)).leading_zeros(),
                (u128::from_be_bytes(ax) ^ u128::from_be_bytes(ay)).leading_zeros()
            );
        }
    }
}

#[test]
fn murmur_differs_from_aes() {
    let key = parse_key(DEFAULT_KEY).unwrap();
    let (a, m) = (
        CryptoPan::new(&key, Prf::Aes),
        CryptoPan::new(&key, Prf::Murmur),
    );
    let diff = (0..64u32)
        .filter(|i| a.anonymize_v4(i << 24) != m.anonymize_v4(i << 24))
        .count();
    assert!(diff > 50, "{diff}");
}

#[test]
fn keys_as_c_parses_them() {
    assert_eq!(&parse_key(DEFAULT_KEY).unwrap()[..3], b"012");
    let hex = format!(
        "0x{}",
        SAMPLE_KEY
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert_eq!(parse_key(&hex).unwrap(), SAMPLE_KEY);
    assert_eq!(parse_key(&hex.to_uppercase()).unwrap(), SAMPLE_KEY);
    assert_eq!(parse_key("short"), Err(KeyError::Length(5)));
    assert_eq!(
        parse_key(&format!("{DEFAULT_KEY}x")),
        Err(KeyError::Length(33))
    );
    assert_eq!(
        parse_key(&format!("0x{}", "g".repeat(64))),
        Err(KeyError::NotHex)
    );
    assert_eq!(
        key_from_file_text(&format!("{hex}  \t\nignored\n")).unwrap(),
        SAMPLE_KEY
    );
    assert!(parse_key(&"é".repeat(33)).is_err());
}

#[test]
fn finds_the_first_address_in_text() {
    assert_eq!(find_ipv4(b"sip:alice@192.0.2.10:5060"), Some((10, 20)));
    // The last octet takes at most three digits; a short first run is skipped.
    assert_eq!(find_ipv4(b"1234.5.6.7"), Some((1, 10)));
    assert_eq!(find_ipv4(b"x 1.2.3.4567"), Some((2, 11)));
    assert_eq!(find_ipv4(b"1.2.3"), None);
    assert_eq!(find_ipv6(b"sip:[2001:db8::5]:5060"), Some((5, 16)));
    assert_eq!(find_ipv6(b"no address here"), None);
    let pan = CryptoPan::new(&SAMPLE_KEY, Prf::Aes);
    let mut out = Vec::new();
    assert!(transform_text(
        &pan,
        b"SIP/2.0/UDP 128.11.68.132:5060;branch=1",
        false,
        &mut out
    ));
    assert_eq!(out, b"SIP/2.0/UDP 135.242.180.132:5060;branch=1");
    let mut back = Vec::new();
    assert!(transform_text(&pan, &out, true, &mut back));
    assert_eq!(back, b"SIP/2.0/UDP 128.11.68.132:5060;branch=1");
    // Out-of-range octets: left alone, as C's inet_pton refuses them.
    assert!(!transform_text(&pan, b"at 999.1.1.1", false, &mut out));
    assert!(transform_text(
        &pan,
        b"<sip:[2001:db8::1]>",
        false,
        &mut out
    ));
    assert_eq!(out, b"<sip:[4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1e]>");
}

#[test]
fn transforms_records_both_ways() {
    let t =
        Template::parse("ipaddr SRC_IP,ipaddr DST_IP,uint16 DST_PORT,string SIP_VIA,string OTHER")
            .unwrap();
    let mut b = RecordBuilder::new(&t);
    for (name, v) in [
        ("SRC_IP", "128.11.68.132"),
        ("DST_IP", "2001:db8::1"),
        ("DST_PORT", "5060"),
        ("SIP_VIA", "SIP/2.0/UDP 4.3.88.225"),
        ("OTHER", "4.3.88.225"),
    ] {
        b.set_from_text(t.find(name).unwrap(), v).unwrap();
    }
    let mut rec = Vec::new();
    b.finish(&mut rec).unwrap();
    let pan = CryptoPan::new(&SAMPLE_KEY, Prf::Aes);
    let text = |r: &[u8]| {
        let mut o = Vec::new();
        write_record(&RecordRef::new_checked(&t, r).unwrap(), b',', &mut o);
        String::from_utf8(o).unwrap().trim_end().to_string()
    };
    let mut s = Scratch::default();
    let mut anon = Vec::new();
    let plan = Plan::new(&t, false, false);
    transform_record(&pan, &t, &plan, &rec, false, &mut s, &mut anon).unwrap();
    assert_eq!(
        text(&anon),
        "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1e,135.242.180.132,5060,\"4.3.88.225\",\"SIP/2.0/UDP 124.60.155.63\""
    );
    let mut back = Vec::new();
    transform_record(&pan, &t, &plan, &anon, true, &mut s, &mut back).unwrap();
    assert_eq!(back, rec);
    // -S: SRC_IP stays.
    transform_record(
        &pan,
        &t,
        &Plan::new(&t, true, false),
        &rec,
        false,
        &mut s,
        &mut anon,
    )
    .unwrap();
    assert!(text(&anon).starts_with("4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1e,128.11.68.132,"));
    assert!(Plan::new(&Template::parse("uint32 X").unwrap(), false, false).is_empty());
    // A record that does not fit its template is refused.
    assert!(transform_record(&pan, &t, &plan, &rec[..10], false, &mut s, &mut anon).is_err());
}
