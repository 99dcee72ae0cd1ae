//! `bstats`: bursts of packets per direction.
//!
//! Exports, per direction (`SBI_` source, `DBI_` reverse): `uint32*
//! *_BRST_PACKETS, *_BRST_BYTES`, `time* *_BRST_TIME_START,
//! *_BRST_TIME_STOP`, one element per burst.
//!
//! ipfixprobe's rules: only packets with payload count (bytes = payload
//! length by the headers); a packet joins the current burst of its
//! direction when it comes less than 1 s after the burst's last packet
//! (earlier packets too), else a new burst starts and the previous one is
//! kept only if it had at least 3 packets; at most 15 bursts per
//! direction. The packets are seen before they are counted in the flow (the
//! `pre_update` hook). At export, flows of at most 3 packets lose the
//! extension; otherwise the last burst of each direction is kept if it has
//! at least 3 packets.

use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie};
use super::{ProcessPlugin, Verdict, PEN_CESNET};
use crate::export::us_time;
use crate::parser::Packet;
use unirec::UrTime;

/// Bursts kept per direction.
const MAX_BURSTS: usize = 15;
/// Packets a burst needs to be kept.
const MIN_PACKETS: u32 = 3;
/// The largest gap inside a burst (exclusive), µs.
const MAX_GAP_US: i64 = 1_000_000;

/// The plugin (no options).
pub struct Bstats;

#[derive(Clone, Copy, Default)]
struct Dir {
    /// Bursts kept (the one at `count` is the one being built).
    count: usize,
    started: bool,
    packets: [u32; MAX_BURSTS],
    bytes: [u32; MAX_BURSTS],
    start_us: [u64; MAX_BURSTS],
    end_us: [u64; MAX_BURSTS],
}

impl Dir {
    fn begin(&mut self, pkt: &Packet) {
        let i = self.count;
        if let (Some(p), Some(b), Some(s), Some(e)) = (
            self.packets.get_mut(i),
            self.bytes.get_mut(i),
            self.start_us.get_mut(i),
            self.end_us.get_mut(i),
        ) {
            *p = 1;
            *b = u32::from(pkt.payload_len_wire);
            *s = pkt.ts_us;
            *e = pkt.ts_us;
        }
    }

    /// The burst being built has enough packets to be kept.
    fn current_is_burst(&self) -> bool {
        self.packets
            .get(self.count)
            .is_some_and(|&p| p >= MIN_PACKETS)
    }

    fn update(&mut self, pkt: &Packet) {
        if pkt.payload_len_wire == 0 || self.count >= MAX_BURSTS {
            return;
        }
        if !self.started {
            self.started = true;
            self.begin(pkt);
            return;
        }
        let i = self.count;
        let last = self.end_us.get(i).copied().unwrap_or(0);
        let gap = (pkt.ts_us as i64).wrapping_sub(last as i64);
        if gap < MAX_GAP_US {
            if let (Some(p), Some(b), Some(e)) = (
                self.packets.get_mut(i),
                self.bytes.get_mut(i),
                self.end_us.get_mut(i),
            ) {
                *p = p.wrapping_add(1);
                *b = b.wrapping_add(u32::from(pkt.payload_len_wire));
                *e = pkt.ts_us;
            }
            return;
        }
        if self.current_is_burst() {
            self.count += 1;
        }
        if self.count < MAX_BURSTS {
            self.begin(pkt);
        }
    }
}

#[derive(Default)]
struct BstatsExt {
    dirs: [Dir; 2],
    /// Buffers for the times written at export.
    times: [[[UrTime; MAX_BURSTS]; 2]; 2],
}

impl Extension for BstatsExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        for (d, base) in [(0usize, 0usize), (1, 4)] {
            let dir = &self.dirs[d];
            let n = dir.count.min(MAX_BURSTS);
            out.put(base, FieldValue::U32s(&dir.packets[..n]));
            out.put(base + 1, FieldValue::U32s(&dir.bytes[..n]));
            out.put(base + 2, FieldValue::Times(&self.times[d][0][..n]));
            out.put(base + 3, FieldValue::Times(&self.times[d][1][..n]));
        }
    }
}

impl Bstats {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(Bstats))
    }
}

const fn ie(id: u16) -> Option<Ie> {
    Some(Ie {
        pen: PEN_CESNET,
        id,
    })
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new("SBI_BRST_PACKETS", ty::U32S, ie(1050)),
    FieldDef::new("SBI_BRST_BYTES", ty::U32S, ie(1051)),
    FieldDef::new("SBI_BRST_TIME_START", ty::TIMES, ie(1052)),
    FieldDef::new("SBI_BRST_TIME_STOP", ty::TIMES, ie(1053)),
    FieldDef::new("DBI_BRST_PACKETS", ty::U32S, ie(1054)),
    FieldDef::new("DBI_BRST_BYTES", ty::U32S, ie(1055)),
    FieldDef::new("DBI_BRST_TIME_START", ty::TIMES, ie(1056)),
    FieldDef::new("DBI_BRST_TIME_STOP", ty::TIMES, ie(1057)),
];

impl BstatsExt {
    fn update(&mut self, pkt: &Packet) {
        self.dirs[usize::from(!pkt.source_pkt)].update(pkt);
    }

    /// Keeps the last bursts and converts the times for export.
    fn finish(&mut self) {
        for (d, dir) in self.dirs.iter_mut().enumerate() {
            if dir.count < MAX_BURSTS && dir.current_is_burst() {
                dir.count += 1;
            }
            for i in 0..dir.count.min(MAX_BURSTS) {
                self.times[d][0][i] = us_time(dir.start_us[i]);
                self.times[d][1][i] = us_time(dir.end_us[i]);
            }
        }
    }
}

impl ProcessPlugin for Bstats {
    fn name(&self) -> &'static str {
        "bstats"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::PRE_UPDATE | Hooks::PRE_EXPORT
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        let mut e = BstatsExt::default();
        e.update(pkt);
        f.exts.add(e);
        Verdict::CONTINUE
    }
    fn pre_update(&mut self, f: FlowCtx<'_>, pkt: &mut Packet) -> Verdict {
        if let Some(e) = f.exts.get_mut::<BstatsExt>() {
            e.update(pkt);
        }
        Verdict::CONTINUE
    }
    fn pre_export(&mut self, f: FlowCtx<'_>) {
        let packets = u64::from(f.flow.packets) + u64::from(f.flow.packets_rev);
        if packets <= u64::from(MIN_PACKETS) {
            f.exts.remove::<BstatsExt>();
        } else if let Some(e) = f.exts.get_mut::<BstatsExt>() {
            e.finish();
        }
    }
    fn needs_payload(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(ms: u64, src: bool, len: u16) -> Packet {
        Packet {
            ts_us: 1_600_000_000_000_000 + ms * 1000,
            source_pkt: src,
            payload_len_wire: len,
            ..Packet::default()
        }
    }

    #[test]
    fn bursts_need_three_packets_and_short_gaps() {
        let mut e = BstatsExt::default();
        // burst 1: 3 packets within 1 s gaps
        for ms in [0, 500, 1400] {
            e.update(&pkt(ms, true, 10));
        }
        // a lone packet (dropped), then a zero-payload packet (ignored)
        e.update(&pkt(5000, true, 7));
        e.update(&pkt(5100, true, 0));
        // burst 2: 4 packets
        for ms in [9000, 9100, 9999, 10998] {
            e.update(&pkt(ms, true, 5));
        }
        // reverse: 2 packets only
        e.update(&pkt(1, false, 3));
        e.update(&pkt(2, false, 3));
        e.finish();
        let s = &e.dirs[0];
        assert_eq!(s.count, 2);
        assert_eq!(&s.packets[..2], &[3, 4]);
        assert_eq!(&s.bytes[..2], &[30, 20]);
        assert_eq!(e.times[0][0][1], us_time(pkt(9000, true, 0).ts_us));
        assert_eq!(e.times[0][1][1], us_time(pkt(10998, true, 0).ts_us));
        assert_eq!(e.dirs[1].count, 0);
    }

    #[test]
    fn at_most_fifteen() {
        let mut e = BstatsExt::default();
        for b in 0..20u64 {
            for k in 0..3 {
                e.update(&pkt(b * 10_000 + k, true, 1));
            }
        }
        e.finish();
        assert_eq!(e.dirs[0].count, MAX_BURSTS);
    }
}
