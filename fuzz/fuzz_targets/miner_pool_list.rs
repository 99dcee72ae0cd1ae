//! A miner_detector pool list (`IP[:port]` lines): parsing and lookups
//! never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use miner_detector::PoolList;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(list) = PoolList::parse(text, "fuzz.txt") else {
        return;
    };
    for ip in ["192.0.2.10", "2001:db8::1"] {
        let ip: IpAddr = ip.parse().unwrap();
        for port in [0, 3333, 65535] {
            let _ = list.contains(ip, port);
        }
    }
    let _ = list.entries().count();
});
