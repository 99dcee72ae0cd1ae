//! Any bytes as a frame (the snooper's wire view, dedup's normalised hash)
//! and as a packet record: nothing panics, the views stay in bounds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet_capture::{wire, PacketFields, PACKET_SPEC};
use packet_dedup::{Config, Dedup, HashKind};
use unirec::{Template, UrTime};

fuzz_target!(|data: &[u8]| {
    let f = wire::parse(data);
    assert!(f.l3_at <= data.len());
    if let Some(ip) = f.ip {
        assert!(ip.ttl_at < data.len());
    }
    let mut buf = Vec::new();
    let n = wire::normalised(data, &mut buf);
    assert!(n.len() <= data.len());
    let mut d = Dedup::new(Config {
        window: Config::window_secs(1.0),
        max_entries: 4,
        hash: HashKind::Xxh64,
        normalise: true,
    });
    assert!(d.pass(UrTime(1), data));
    assert!(!d.pass(UrTime(2), data));
    let tmpl = Template::parse(PACKET_SPEC).unwrap();
    let fields = PacketFields::resolve(&tmpl).unwrap();
    if let Ok(p) = fields.read(&tmpl, data) {
        let _ = wire::parse(p.data);
    }
});
