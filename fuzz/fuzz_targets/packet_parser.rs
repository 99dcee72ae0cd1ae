//! Any bytes, under every link type: the parser and the cache never panic.
#![no_main]
use flow_meter::cache::{CacheConfig, FlowCache};
use flow_meter::parser::{parse, LinkType, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut cache = FlowCache::new(CacheConfig { size_exp: 6, ..CacheConfig::default() });
    let mut out = Vec::new();
    for link in [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Raw,
        LinkType::Null,
        LinkType::Loop,
    ] {
        let mut p = Packet::default();
        if parse(link, data, &mut p).is_ok() {
            cache.put(&mut p, &mut out);
        }
    }
    cache.flush_all(&mut out);
});
