//! Arbitrary bytes as IPFIX, NetFlow v9 and v5 messages: headers, sets,
//! templates, records split by the templates the input itself defines, and
//! basicLists inside them — no panic, whatever the lengths claim.
#![no_main]
use ipfixcol::collector::{Collector, Config, Origin, OutputFields, SessionId, Sink, Transport};
use ipfixcol::mapping::Mapping;
use ipfixcol::wire::{parse_templates, split_record, BasicList, Message, TemplateItem};
use std::sync::{Arc, OnceLock};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::new_checked(data) else {
        return;
    };
    let version = msg.header.version;
    let mut templates = Vec::new();
    let mut items = Vec::new();
    let mut values = Vec::new();
    for set in msg.sets().flatten() {
        if set.id < 256 {
            items.clear();
            parse_templates(version, &set, &mut items);
            for t in items.drain(..).flatten() {
                if let TemplateItem::Define(t) = t {
                    templates.push(t);
                }
            }
            continue;
        }
        for t in templates.iter().filter(|t| t.id == set.id) {
            let mut rest = set.body;
            while let Some(n) = split_record(t, rest, &mut values) {
                for v in &values {
                    if let Some(l) = BasicList::new_checked(v) {
                        let _ = l.values().count();
                    }
                }
                if n == 0 || n > rest.len() {
                    break;
                }
                rest = &rest[n..];
            }
        }
    }
    let _ = msg.v5_records().count();
    collect(data);
});

struct Discard;

impl Sink for Discard {
    fn format(&mut self, _: usize, _: &unirec::Template) {}
    fn record(&mut self, _: usize, _: &[u8]) {}
}

/// The whole collector (templates, conversion into both a dynamic and a
/// fixed UniRec template, split biflows) on the input cut into messages:
/// the same bytes as one UDP exporter's datagrams.
fn collect(data: &[u8]) {
    static MAPPING: OnceLock<Arc<Mapping>> = OnceLock::new();
    let mapping = MAPPING.get_or_init(|| Arc::new(Mapping::new())).clone();
    let fixed = OutputFields::parse("SRC_IP,DST_IP,?SRC_PORT,?TLS_SNI,?TLS_EXT_TYPE", &mapping)
        .unwrap_or(OutputFields::Dynamic);
    let cfg = Config {
        split_biflow: data.first().is_some_and(|b| b & 1 == 1),
        ..Config::default()
    };
    let mut c = Collector::new(cfg, mapping, vec![OutputFields::Dynamic, fixed]);
    let _ = c.start(&mut Discard);
    let origin = Origin {
        session: SessionId(1),
        transport: Transport::Udp,
        exporter: None,
    };
    let mut rest = data;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]])).clamp(4, rest.len());
        c.process(origin, &rest[..len], &mut Discard);
        rest = &rest[len..];
    }
}
