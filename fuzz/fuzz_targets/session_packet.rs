//! Any bytes as Ethernet frames: session_probe's parser, its window table
//! (small, so the full-table and quota paths run) and the records never
//! panic, and every packet is accounted once.
#![no_main]
use libfuzzer_sys::fuzz_target;
use session_probe::features::{Sizes, WindowTable};
use session_probe::packet::parse_ethernet;
use session_probe::records::{ddos_records, mining_records};

fuzz_target!(|data: &[u8]| {
    let sizes = Sizes { n_session: 2, n_packet_per_session: 2, n_packet_total: 3 };
    let mut t = WindowTable::new(sizes);
    let mut seen = 0u64;
    // The input split into frames at every 0xfe byte.
    for (i, frame) in data.split(|&b| b == 0xfe).enumerate() {
        if let Some(p) = parse_ethernet(frame, frame.len() as u32, i as u64) {
            t.packet(&p);
            seen += 1;
        }
    }
    let w = t.drain();
    let tracked: u64 = w.sessions.iter().map(|(_, c)| u64::from(c.pkts_ab) + u64::from(c.pkts_ba)).sum();
    assert_eq!(tracked + w.counters.packets_untracked, seen);
    let _ = ddos_records(&w, 0);
    let _ = mining_records(&w, 0);
});
