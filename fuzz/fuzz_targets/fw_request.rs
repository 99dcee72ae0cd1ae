//! Any bytes as a request to fw_actuator's endpoint, and as an IDEA alert:
//! a route or a refusal, never a panic; a parsed request's body lies inside
//! the limits, and the alert's prefixes are real prefixes.
#![no_main]
use fw_actuator::http::{parse_head, Head, MAX_BODY, MAX_HEAD};
use fw_actuator::idea;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Head::Request { head_len, body_len, .. } = parse_head(data) {
        assert!(head_len <= MAX_HEAD && head_len <= data.len());
        assert!(body_len <= MAX_BODY);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = idea::parse(text) {
            for p in r.sources.iter().chain(&r.targets) {
                assert!(p.len <= if p.is_v4() { 32 } else { 128 });
            }
        }
    }
});
