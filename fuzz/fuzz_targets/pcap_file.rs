//! Any bytes as a classic pcap file (flow_meter -r's mapped reader): every
//! record within the bytes, its packet parsed into the cache, never a panic.
#![no_main]
use flow_meter::cache::{CacheConfig, FlowCache};
use flow_meter::parser::{parse, LinkType, Packet};
use flow_meter::pcapfile::PcapReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(mut reader) = PcapReader::new(data) else {
        return;
    };
    let link = reader
        .dlt()
        .and_then(LinkType::from_dlt)
        .unwrap_or(LinkType::Ethernet);
    let mut cache = FlowCache::new(CacheConfig {
        size_exp: 6,
        ..CacheConfig::default()
    });
    let mut out = Vec::new();
    while let Some(Ok(rec)) = reader.next(data) {
        assert!(rec.data.len() == rec.caplen as usize);
        let mut p = Packet::default();
        if parse(link, rec.data, &mut p).is_ok() {
            cache.put(&mut p, &mut out);
        }
    }
    cache.flush_all(&mut out);
});
