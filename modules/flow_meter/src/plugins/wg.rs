//! `wg`: WireGuard detection.
//!
//! Exports `uint8 WG_CONF_LEVEL, uint32 WG_SRC_PEER, WG_DST_PEER`.
//!
//! ipfixprobe's rules: only UDP flows whose **first** packet is a WireGuard
//! message get the extension. A message is a type byte 1–4 followed by
//! three zero bytes, at least 32 bytes long, with the exact length of its
//! type (initiation 148, response 92, cookie reply 64, transport data ≥ 32).
//! The peers are the little-endian sender/receiver indexes, oriented to the
//! flow's source and destination. The confidence is 100, or 1 when bytes
//! 4–7 are `00 01 00 00` (it could be a DNS query). Later packets are
//! parsed until one is not WireGuard (the level then drops to 0 and parsing
//! stops); an initiation from a side whose index is known and differs
//! starts a new flow (flush with reinsert).

use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie};
use super::{ProcessPlugin, Verdict, PEN_CESNET};
use crate::parser::Packet;

/// The plugin (no options).
pub struct Wg;

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct WgExt {
    /// Confidence (0 = no longer WireGuard).
    level: u8,
    src_peer: u32,
    dst_peer: u32,
}

impl Extension for WgExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::U8(self.level));
        out.put(1, FieldValue::U32(self.src_peer));
        out.put(2, FieldValue::U32(self.dst_peer));
    }
}

/// What one packet is.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Wg,
    NotWg,
    /// An initiation with a new sender index: a new session, a new flow.
    NewSession,
}

fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

impl WgExt {
    fn parse(&mut self, data: &[u8], source: bool) -> Parsed {
        let len = data.len();
        let [t, 0, 0, 0, ..] = data else {
            return Parsed::NotWg;
        };
        if len < 32 {
            return Parsed::NotWg;
        }
        match t {
            1 => {
                if len != 148 {
                    return Parsed::NotWg;
                }
                let sender = le32(data, 4);
                let known = if source { self.src_peer } else { self.dst_peer };
                if known != 0 && known != sender {
                    return Parsed::NewSession;
                }
                if source {
                    self.src_peer = sender;
                } else {
                    self.dst_peer = sender;
                }
            }
            2 => {
                if len != 92 {
                    return Parsed::NotWg;
                }
                let (a, b) = (le32(data, 4), le32(data, 8));
                (self.src_peer, self.dst_peer) = if source { (a, b) } else { (b, a) };
            }
            3 | 4 => {
                if *t == 3 && len != 64 {
                    return Parsed::NotWg;
                }
                let receiver = le32(data, 4);
                if source {
                    self.dst_peer = receiver;
                } else {
                    self.src_peer = receiver;
                }
            }
            _ => return Parsed::NotWg,
        }
        self.level = if data.get(4..8) == Some(&[0, 1, 0, 0]) {
            1
        } else {
            100
        };
        Parsed::Wg
    }
}

impl Wg {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(Wg))
    }
}

const fn ie(id: u16) -> Option<Ie> {
    Some(Ie {
        pen: PEN_CESNET,
        id,
    })
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new("WG_CONF_LEVEL", ty::U8, ie(1100)),
    FieldDef::new("WG_SRC_PEER", ty::U32, ie(1101)),
    FieldDef::new("WG_DST_PEER", ty::U32, ie(1102)),
];

impl ProcessPlugin for Wg {
    fn name(&self) -> &'static str {
        "wg"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::PRE_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if pkt.protocol == 17 {
            let mut e = WgExt::default();
            if e.parse(pkt.payload(), pkt.source_pkt) == Parsed::Wg {
                f.exts.add(e);
            }
        }
        Verdict::CONTINUE
    }
    fn pre_update(&mut self, f: FlowCtx<'_>, pkt: &mut Packet) -> Verdict {
        if let Some(e) = f.exts.get_mut::<WgExt>() {
            if e.level != 0 {
                match e.parse(pkt.payload(), pkt.source_pkt) {
                    Parsed::Wg => {}
                    Parsed::NotWg => e.level = 0,
                    Parsed::NewSession => return Verdict::FLUSH_WITH_REINSERT,
                }
            }
        }
        Verdict::CONTINUE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(t: u8, len: usize, a: u32, b: u32) -> Vec<u8> {
        let mut v = vec![0u8; len];
        v[0] = t;
        v[4..8].copy_from_slice(&a.to_le_bytes());
        v[8..12].copy_from_slice(&b.to_le_bytes());
        v
    }

    #[test]
    fn handshake_and_data() {
        let mut e = WgExt::default();
        assert_eq!(e.parse(&msg(1, 148, 7, 0), true), Parsed::Wg);
        assert_eq!((e.level, e.src_peer, e.dst_peer), (100, 7, 0));
        assert_eq!(e.parse(&msg(2, 92, 9, 7), false), Parsed::Wg);
        assert_eq!((e.src_peer, e.dst_peer), (7, 9));
        assert_eq!(e.parse(&msg(4, 60, 9, 0), true), Parsed::Wg);
        assert_eq!(e.dst_peer, 9);
        assert_eq!(e.parse(&msg(1, 148, 8, 0), true), Parsed::NewSession);
        assert_eq!(e.parse(&msg(1, 147, 7, 0), true), Parsed::NotWg);
        assert_eq!(e.parse(&msg(3, 65, 7, 0), true), Parsed::NotWg);
        assert_eq!(e.parse(&msg(5, 148, 7, 0), true), Parsed::NotWg);
        assert_eq!(e.parse(&[4, 0, 0, 0, 1], true), Parsed::NotWg);
        assert_eq!(e.parse(&[], true), Parsed::NotWg);
    }

    #[test]
    fn dns_lookalike() {
        let mut e = WgExt::default();
        assert_eq!(e.parse(&msg(2, 92, 256, 0), true), Parsed::Wg);
        assert_eq!(e.level, 1);
    }
}
