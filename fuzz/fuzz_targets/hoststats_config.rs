//! hoststats' `key = value` configuration: parsing never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = hoststats::Config::parse(text, "fuzz.conf");
});
