//! `pstats`: per-packet information of the first packets of a flow.
//!
//! Exports `int8* PPI_PKT_DIRECTIONS`, `uint8* PPI_PKT_FLAGS`,
//! `uint16* PPI_PKT_LENGTHS` and `time* PPI_PKT_TIMES`: for each of the
//! first [`MAX_PACKETS`] recorded packets its L4 payload length by the
//! headers, TCP flags, capture time and direction (+1 source → destination,
//! −1 reverse).
//!
//! ipfixprobe's rules: packets with no payload are not recorded unless
//! `includezeroes` (`i`) is given; with `skipdup` (`s`) a TCP packet is
//! dropped as a likely retransmission when, compared with the previous TCP
//! packet of its direction, its seq and ack did not advance (allowing for
//! wrap-around) and its captured payload length and flags are the same (and
//! something was recorded already). The extension exists for every flow; it
//! is removed at export from flows of at most one packet with SYN seen (port
//! scans), so those flows are not sent.

use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie};
use super::{ProcessPlugin, Verdict, PEN_CESNET};
use crate::export::us_time;
use crate::parser::Packet;
use unirec::UrTime;

/// Packets recorded per flow.
pub const MAX_PACKETS: usize = 30;

/// The plugin, with its options.
pub struct Pstats {
    include_zeroes: bool,
    skip_dup: bool,
}

/// Per-flow state.
struct PstatsExt {
    count: usize,
    sizes: [u16; MAX_PACKETS],
    flags: [u8; MAX_PACKETS],
    times: [UrTime; MAX_PACKETS],
    dirs: [i8; MAX_PACKETS],
    // The previous TCP packet of each direction (0 = source, 1 = reverse),
    // for `skipdup`.
    seq: [u32; 2],
    ack: [u32; 2],
    len: [u16; 2],
    flg: [u8; 2],
}

impl Default for PstatsExt {
    fn default() -> Self {
        PstatsExt {
            count: 0,
            sizes: [0; MAX_PACKETS],
            flags: [0; MAX_PACKETS],
            times: [UrTime(0); MAX_PACKETS],
            dirs: [0; MAX_PACKETS],
            seq: [0; 2],
            ack: [0; 2],
            len: [0; 2],
            flg: [0; 2],
        }
    }
}

impl Extension for PstatsExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        let n = self.count.min(MAX_PACKETS);
        out.put(0, FieldValue::U16s(&self.sizes[..n]));
        out.put(1, FieldValue::Times(&self.times[..n]));
        out.put(2, FieldValue::U8s(&self.flags[..n]));
        out.put(3, FieldValue::I8s(&self.dirs[..n]));
    }
}

/// `cur` is far below `prev` only because the 32-bit counter wrapped.
fn wrapped(cur: u32, prev: u32) -> bool {
    i64::from(cur) - i64::from(prev) < -4_252_017_623
}

/// `cur` did not advance past `prev` (in sequence-number arithmetic).
fn not_advanced(cur: u32, prev: u32) -> bool {
    (cur <= prev && !wrapped(cur, prev)) || (cur > prev && wrapped(cur, prev))
}

impl Pstats {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        let mut p = Pstats {
            include_zeroes: false,
            skip_dup: false,
        };
        for (k, v) in parse_options(opts, &[("i", "includezeroes"), ("s", "skipdup")])? {
            if !v.is_empty() {
                return Err(format!("option `{k}` takes no value"));
            }
            match k {
                "includezeroes" => p.include_zeroes = true,
                _ => p.skip_dup = true,
            }
        }
        Ok(Box::new(p))
    }

    fn update(&self, e: &mut PstatsExt, pkt: &Packet) {
        let d = usize::from(!pkt.source_pkt);
        if self.skip_dup
            && pkt.protocol == 6
            && e.count != 0
            && not_advanced(pkt.tcp_seq, e.seq[d])
            && not_advanced(pkt.tcp_ack, e.ack[d])
            && pkt.payload_len == e.len[d]
            && pkt.tcp_flags == e.flg[d]
        {
            return;
        }
        e.seq[d] = pkt.tcp_seq;
        e.ack[d] = pkt.tcp_ack;
        e.len[d] = pkt.payload_len;
        e.flg[d] = pkt.tcp_flags;
        if pkt.payload_len_wire == 0 && !self.include_zeroes {
            return;
        }
        let i = e.count;
        if i < MAX_PACKETS {
            e.sizes[i] = pkt.payload_len_wire;
            e.flags[i] = pkt.tcp_flags;
            e.times[i] = us_time(pkt.ts_us);
            e.dirs[i] = if pkt.source_pkt { 1 } else { -1 };
            e.count += 1;
        }
    }
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new(
        "PPI_PKT_LENGTHS",
        ty::U16S,
        Some(Ie {
            pen: PEN_CESNET,
            id: 1013,
        }),
    ),
    FieldDef::new(
        "PPI_PKT_TIMES",
        ty::TIMES,
        Some(Ie {
            pen: PEN_CESNET,
            id: 1014,
        }),
    ),
    FieldDef::new(
        "PPI_PKT_FLAGS",
        ty::U8S,
        Some(Ie {
            pen: PEN_CESNET,
            id: 1015,
        }),
    ),
    FieldDef::new(
        "PPI_PKT_DIRECTIONS",
        ty::I8S,
        Some(Ie {
            pen: PEN_CESNET,
            id: 1016,
        }),
    ),
];

impl ProcessPlugin for Pstats {
    fn name(&self) -> &'static str {
        "pstats"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::POST_UPDATE | Hooks::PRE_EXPORT
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        let mut e = PstatsExt::default();
        self.update(&mut e, pkt);
        f.exts.add(e);
        Verdict::CONTINUE
    }
    fn post_update(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if let Some(e) = f.exts.get_mut::<PstatsExt>() {
            self.update(e, pkt);
        }
        Verdict::CONTINUE
    }
    fn pre_export(&mut self, f: FlowCtx<'_>) {
        let packets = u64::from(f.flow.packets) + u64::from(f.flow.packets_rev);
        if packets <= 1 && (f.flow.tcp_flags | f.flow.tcp_flags_rev) & 0x02 != 0 {
            f.exts.remove::<PstatsExt>();
        }
    }
    fn needs_payload(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(ts: u64, src: bool, len: u16, flags: u8, seq: u32) -> Packet {
        Packet {
            ts_us: ts,
            source_pkt: src,
            protocol: 6,
            payload_len: len,
            payload_len_wire: len,
            tcp_flags: flags,
            tcp_seq: seq,
            ..Packet::default()
        }
    }

    fn opts(o: &str) -> Pstats {
        let mut p = Pstats {
            include_zeroes: false,
            skip_dup: false,
        };
        for (k, _) in parse_options(o, &[("i", "includezeroes"), ("s", "skipdup")]).unwrap() {
            match k {
                "includezeroes" => p.include_zeroes = true,
                _ => p.skip_dup = true,
            }
        }
        p
    }

    #[test]
    fn zeroes_skipped_by_default() {
        let p = opts("");
        let mut e = PstatsExt::default();
        p.update(&mut e, &pkt(1, true, 0, 2, 0));
        p.update(&mut e, &pkt(2, false, 10, 0x18, 0));
        p.update(&mut e, &pkt(3, true, 20, 0x18, 0));
        assert_eq!(e.count, 2);
        assert_eq!(&e.sizes[..2], &[10, 20]);
        assert_eq!(&e.dirs[..2], &[-1, 1]);
        assert_eq!(&e.flags[..2], &[0x18, 0x18]);
        assert_eq!(e.times[0], us_time(2));
        let p = opts("i");
        let mut e = PstatsExt::default();
        p.update(&mut e, &pkt(1, true, 0, 2, 0));
        assert_eq!(e.count, 1);
    }

    #[test]
    fn skipdup_drops_retransmissions() {
        let p = opts("includezeroes;s");
        let mut e = PstatsExt::default();
        p.update(&mut e, &pkt(1, true, 10, 0x18, 100));
        p.update(&mut e, &pkt(2, true, 10, 0x18, 100));
        p.update(&mut e, &pkt(3, true, 10, 0x18, 110));
        assert_eq!(e.count, 2);
    }

    #[test]
    fn at_most_thirty() {
        let p = opts("");
        let mut e = PstatsExt::default();
        for i in 0..40 {
            p.update(&mut e, &pkt(i, true, 5, 0, 0));
        }
        assert_eq!(e.count, MAX_PACKETS);
    }

    #[test]
    fn options() {
        assert!(Pstats::create("i;skipdup").is_ok());
        assert!(Pstats::create("x").is_err());
        assert!(Pstats::create("i=3").is_err());
    }
}
