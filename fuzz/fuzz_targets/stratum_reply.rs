//! A server's reply to each Stratum probe: matching never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use miner_detector::stratum::{Matchers, PROBES};
use std::sync::OnceLock;

static MATCHERS: OnceLock<Matchers> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let m = MATCHERS.get_or_init(Matchers::new);
    for i in 0..=PROBES.len() {
        let _ = m.matches(i, data);
    }
});
