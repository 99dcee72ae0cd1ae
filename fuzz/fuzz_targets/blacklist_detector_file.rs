//! A detector file (`entity,bitmap[;id:ports]`) as ipblacklistfilter and
//! bl_downloader read it: parsing, lookups and rewriting never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut b = ipblacklistfilter::Blacklist::default();
    let _ = b.parse(text, "fuzz.blist");
    for ip in [
        "192.0.2.1",
        "10.1.2.3",
        "0.0.0.0",
        "2001:db8::1",
        "::",
        "ffff::ffff",
    ] {
        let ip: IpAddr = ip.parse().unwrap();
        for port in [0, 80, 65535] {
            let _ = b.check(ip, port);
        }
    }
    let lists = bl_downloader::parse_detector_file(text);
    let _ = bl_downloader::detector_files(&lists);
});
