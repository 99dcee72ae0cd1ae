//! bruteforce_detector's `KEY = VALUE` configuration and its whitelist:
//! parsing and matching never panic.
#![no_main]
use bruteforce_detector::{Config, Whitelist};
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Config::parse(text, "fuzz.conf");
    if let Ok(w) = Whitelist::parse(text, "fuzz.wl") {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let _ = w.matches((a, 22), (b, 50000));
        let _ = w.matches((b, 3389), (a, 0));
    }
});
