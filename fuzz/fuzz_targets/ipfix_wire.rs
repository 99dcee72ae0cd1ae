//! Arbitrary bytes as IPFIX, NetFlow v9 and v5 messages: headers, sets,
//! templates, records split by the templates the input itself defines, and
//! basicLists inside them — no panic, whatever the lengths claim.
#![no_main]
use ipfixcol::wire::{parse_templates, split_record, BasicList, Message, TemplateItem};
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
});
