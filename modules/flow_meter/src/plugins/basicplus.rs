//! `basicplus`: IP TTL and flags, TCP window, options, MSS per direction and
//! the size of the SYN.
//!
//! Exports (ipfixprobe 5.7's basicplus plugin): `IP_TTL`/`_REV`,
//! `IP_FLG`/`_REV`, `TCP_WIN`/`_REV`, `TCP_OPT`/`_REV`, `TCP_MSS`/`_REV`,
//! `TCP_SYN_SIZE`. ipfixprobe's rules, followed here:
//! * the forward values come from the flow's first packet; `TCP_SYN_SIZE` is
//!   that packet's IP length when its TCP flags are exactly SYN;
//! * the reverse TTL, flags, MSS and window come from the first reverse
//!   packet; afterwards the TTL of each direction is the largest seen;
//! * the TCP options of each direction are OR'ed over all its packets after
//!   the first (the first forward packet sets them);
//! * the MSS is parser's 32-bit read at the option value (ipfixprobe's
//!   quirk, see `Packet::tcp_mss`).

use super::{
    parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie,
    ProcessPlugin, Verdict, PEN_CESNET, PEN_REVERSE,
};
use crate::parser::Packet;

pub struct BasicPlus;

/// One flow's values, index 0 = forward, 1 = reverse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BasicPlusExt {
    ttl: [u8; 2],
    flags: [u8; 2],
    win: [u16; 2],
    opt: [u64; 2],
    mss: [u32; 2],
    syn_size: u16,
    rev_seen: bool,
}

const fn ie(pen: u32, id: u16) -> Option<Ie> {
    Some(Ie { pen, id })
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new("IP_TTL", ty::U8, ie(0, 192)),
    FieldDef::new("IP_TTL_REV", ty::U8, ie(PEN_REVERSE, 192)),
    FieldDef::new("IP_FLG", ty::U8, ie(0, 197)),
    FieldDef::new("IP_FLG_REV", ty::U8, ie(PEN_REVERSE, 197)),
    FieldDef::new("TCP_WIN", ty::U16, ie(0, 186)),
    FieldDef::new("TCP_WIN_REV", ty::U16, ie(PEN_REVERSE, 186)),
    FieldDef::new("TCP_OPT", ty::U64, ie(0, 209)),
    FieldDef::new("TCP_OPT_REV", ty::U64, ie(PEN_REVERSE, 209)),
    FieldDef::new("TCP_MSS", ty::U32, ie(PEN_CESNET, 900)),
    FieldDef::new("TCP_MSS_REV", ty::U32, ie(PEN_CESNET, 901)),
    FieldDef::new("TCP_SYN_SIZE", ty::U16, ie(PEN_CESNET, 902)),
];

impl Extension for BasicPlusExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::U8(self.ttl[0]));
        out.put(1, FieldValue::U8(self.ttl[1]));
        out.put(2, FieldValue::U8(self.flags[0]));
        out.put(3, FieldValue::U8(self.flags[1]));
        out.put(4, FieldValue::U16(self.win[0]));
        out.put(5, FieldValue::U16(self.win[1]));
        out.put(6, FieldValue::U64(self.opt[0]));
        out.put(7, FieldValue::U64(self.opt[1]));
        out.put(8, FieldValue::U32(self.mss[0]));
        out.put(9, FieldValue::U32(self.mss[1]));
        out.put(10, FieldValue::U16(self.syn_size));
    }
}

impl BasicPlusExt {
    fn first(pkt: &Packet) -> BasicPlusExt {
        BasicPlusExt {
            ttl: [pkt.ttl, 0],
            flags: [pkt.ip_flags, 0],
            win: [pkt.tcp_window, 0],
            opt: [pkt.tcp_options, 0],
            mss: [pkt.tcp_mss, 0],
            // ipfixprobe stores the IP length in 16 bits.
            syn_size: if pkt.tcp_flags == 0x02 {
                pkt.ip_len as u16
            } else {
                0
            },
            rev_seen: false,
        }
    }

    fn update(&mut self, pkt: &Packet) {
        let d = usize::from(!pkt.source_pkt);
        if self.ttl[d] < pkt.ttl {
            self.ttl[d] = pkt.ttl;
        }
        if d == 1 && !self.rev_seen {
            self.ttl[1] = pkt.ttl;
            self.flags[1] = pkt.ip_flags;
            self.mss[1] = pkt.tcp_mss;
            self.win[1] = pkt.tcp_window;
            self.rev_seen = true;
        }
        self.opt[d] |= pkt.tcp_options;
    }
}

impl BasicPlus {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(BasicPlus))
    }
}

impl ProcessPlugin for BasicPlus {
    fn name(&self) -> &'static str {
        "basicplus"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::PRE_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        f.exts.add(BasicPlusExt::first(pkt));
        Verdict::CONTINUE
    }
    fn pre_update(&mut self, f: FlowCtx<'_>, pkt: &mut Packet) -> Verdict {
        if let Some(e) = f.exts.get_mut::<BasicPlusExt>() {
            e.update(pkt);
        }
        Verdict::CONTINUE
    }
    fn needs_payload(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(source: bool, ttl: u8, flags: u8, opts: u64) -> Packet {
        Packet {
            source_pkt: source,
            ttl,
            tcp_flags: flags,
            ip_flags: 2,
            tcp_window: u16::from(ttl) * 10,
            tcp_options: opts,
            tcp_mss: u32::from(ttl),
            ip_len: 60,
            ..Packet::default()
        }
    }

    #[test]
    fn directions() {
        let mut e = BasicPlusExt::first(&pkt(true, 64, 0x02, 1));
        assert_eq!(e.syn_size, 60);
        e.update(&pkt(false, 50, 0x12, 2));
        e.update(&pkt(false, 40, 0x10, 4));
        e.update(&pkt(true, 70, 0x10, 8));
        e.update(&pkt(false, 55, 0x10, 0));
        assert_eq!(e.ttl, [70, 55]);
        assert_eq!(e.win, [640, 500]);
        assert_eq!(e.mss, [64, 50]);
        assert_eq!(e.opt, [9, 6]);
        assert_eq!(e.flags, [2, 2]);
        let e = BasicPlusExt::first(&pkt(true, 64, 0x12, 1));
        assert_eq!(e.syn_size, 0);
    }
}
