//! Any text as a firewall batch: the parser refuses or accepts without a
//! panic; an accepted batch applies (or is refused) on a small chain, and
//! renders as nft JSON and back through the state file unchanged.
#![no_main]
use fw_actuator::batch::{parse_batch, Prefix};
use fw_actuator::nft::{transaction, Target};
use fw_actuator::ruleset::Ruleset;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(ops) = parse_batch(text) else { return };
    let mut start = Ruleset::default();
    if let Some(p) = Prefix::parse("198.51.100.7") {
        start.block(p, "fuzz".into(), 10, &[]);
    }
    if let Ok((next, _log)) = start.apply(&ops) {
        let t = Target { table: "t".into(), iface: "eth0".into() };
        let _ = transaction(&t, &next, &[]).to_string();
        let back = Ruleset::from_state(&next.to_state().to_string());
        assert_eq!(back.as_ref().ok(), Some(&next));
    }
});
