//! `netbios`: the NetBIOS name of each NBNS packet (port 137).
//!
//! Exports `NB_NAME` (the first 15 decoded characters, space padding kept)
//! and `NB_SUFFIX` (the 16th, the service type).
//!
//! ipfixprobe's rules, kept here:
//! * every packet with either port 137 whose DNS-style header says at least
//!   one question, and whose first question name starts with a 32-byte
//!   label, adds **one extension** — so a flow gives one record per such
//!   packet; the flow is never flushed;
//! * each pair of bytes `xy` of the label decodes to `((x - 'A') << 4) |
//!   (y - 'A')` (wrapping, not validated); bytes past the payload read as
//!   zero;
//! * the name, being a C string, ends at a zero byte.

use super::dns_wire::Msg;
use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie};
use super::{ProcessPlugin, Verdict, PEN_CESNET};
use crate::parser::Packet;

/// One NBNS name.
pub struct NetbiosExt {
    name: [u8; 15],
    suffix: u8,
}

impl NetbiosExt {
    pub fn name(&self) -> &[u8] {
        let n = &self.name[..];
        n.iter().position(|&b| b == 0).map_or(n, |z| &n[..z])
    }
}

impl Extension for NetbiosExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::Str(self.name()));
        out.put(1, FieldValue::U8(self.suffix));
    }
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new(
        "NB_NAME",
        ty::STRING,
        Some(Ie {
            pen: PEN_CESNET,
            id: 831,
        }),
    ),
    FieldDef::new(
        "NB_SUFFIX",
        ty::U8,
        Some(Ie {
            pen: PEN_CESNET,
            id: 832,
        }),
    ),
];

/// The `netbios` plugin.
pub struct Netbios;

impl Netbios {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(Netbios))
    }

    /// The name of one NBNS payload.
    pub fn parse(payload: &[u8]) -> Option<NetbiosExt> {
        if payload.len() < 12 {
            return None;
        }
        let m = Msg::new(payload);
        if m.u16(4) == 0 || m.u8(12) != 32 {
            return None;
        }
        let decode = |i: usize| {
            let x = m.u8(13 + 2 * i).wrapping_sub(b'A');
            let y = m.u8(14 + 2 * i).wrapping_sub(b'A');
            (x << 4) | y
        };
        let mut ext = NetbiosExt {
            name: [0; 15],
            suffix: decode(15),
        };
        for (i, c) in ext.name.iter_mut().enumerate() {
            *c = decode(i);
        }
        Some(ext)
    }

    fn packet(f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if pkt.src_port == 137 || pkt.dst_port == 137 {
            if let Some(ext) = Netbios::parse(pkt.payload()) {
                f.exts.add(ext);
            }
        }
        Verdict::CONTINUE
    }
}

impl ProcessPlugin for Netbios {
    fn name(&self) -> &'static str {
        "netbios"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::POST_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        Netbios::packet(f, pkt)
    }
    fn post_update(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        Netbios::packet(f, pkt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_first_name() {
        let mut p = vec![0x80, 0x01, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0, 32];
        p.extend_from_slice(b"EEEIEDFAEFDBDIDJCACACACACACACAAA\x00\x00\x20\x00\x01");
        let e = Netbios::parse(&p).expect("a name");
        assert_eq!(e.name(), b"DHCPE189       ");
        assert_eq!(e.suffix, 0);
        // No question, a short label, a short payload: nothing.
        let mut q = p.clone();
        q[5] = 0;
        assert!(Netbios::parse(&q).is_none());
        q = p.clone();
        q[12] = 31;
        assert!(Netbios::parse(&q).is_none());
        for n in 0..p.len() {
            let _ = Netbios::parse(&p[..n]);
        }
        assert!(Netbios::parse(&p[..11]).is_none());
    }
}
