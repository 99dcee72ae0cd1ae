//! bl_downloader's configuration, as NEMEA's XML and as TOML: loading never
//! panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = bl_downloader::Config::parse_nemea_xml(text, "fuzz.xml");
    let _ = bl_downloader::Config::parse(text, "fuzz.toml");
});
