//! `ssadetector`: TCP handshakes tunnelled inside a flow.
//!
//! Exports `uint8 SSA_CONF_LEVEL` (0 or 1).
//!
//! ipfixprobe's rules: from the 30th packet of a flow on (counted after the
//! packet), each packet whose captured payload length is 60–150 bytes is
//! matched against two tables indexed by length − 60 (91 entries, the last
//! time seen per direction). A packet is a "suspect" (the end of a
//! SYN, SYN-ACK, ACK-like triple) when the SYN table holds, for the other
//! direction, a time at most 3 s before it at one of the 12 lengths up to
//! its own: then both tables are cleared and its length is remembered (the
//! first 100). Otherwise it enters the SYN-ACK table when the SYN table
//! holds the other direction within 10 lengths below, and always enters the
//! SYN table. (The end-state check reads the SYN table, not the SYN-ACK
//! table, exactly as ipfixprobe does, so the SYN-ACK table never matters.)
//! At export flows of at most 30 packets lose the extension; the level is 1
//! when there are ≥ 3 suspects, packets / suspects ≤ 2500 and the share of
//! distinct suspect lengths is at most 0.6 (under 15 suspects), 0.4 (under
//! 40) or 0.2.

use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie};
use super::{ProcessPlugin, Verdict, PEN_CESNET};
use crate::parser::Packet;

/// The plugin (no options).
pub struct SsaDetector;

const MIN_LEN: u16 = 60;
const MAX_LEN: u16 = 150;
const TABLE: usize = (MAX_LEN - MIN_LEN + 1) as usize;
const KEPT: usize = 100;
const WINDOW_US: i64 = 3_000_000;
const SYN_WINDOW: usize = 10;
const SYN_ACK_WINDOW: usize = 12;
const MIN_PACKETS: u64 = 30;

/// Last times (µs; 0 = none) per length index and direction.
#[derive(Clone, Copy)]
struct Table([[i64; 2]; TABLE]);

impl Table {
    fn clear(&mut self) {
        self.0 = [[0; 2]; TABLE];
    }

    fn put(&mut self, idx: usize, dir: usize, ts: i64) {
        if let Some(t) = self.0.get_mut(idx).and_then(|e| e.get_mut(dir)) {
            *t = ts;
        }
    }

    /// A time of `dir` at most 3 s before `now` among the `down` indexes
    /// below `idx` and `idx` itself.
    fn recent(&self, idx: usize, down: usize, dir: usize, now: i64) -> bool {
        let lo = idx.saturating_sub(down);
        self.0
            .get(lo..=idx.min(TABLE - 1))
            .unwrap_or(&[])
            .iter()
            .any(|e| now.wrapping_sub(e[dir & 1]) <= WINDOW_US)
    }
}

struct SsaExt {
    level: u8,
    suspects: u64,
    kept: usize,
    lengths: [u8; KEPT],
    syn: Table,
    syn_ack: Table,
}

impl Extension for SsaExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::U8(self.level));
    }
}

impl Default for SsaExt {
    fn default() -> Self {
        SsaExt {
            level: 0,
            suspects: 0,
            kept: 0,
            lengths: [0; KEPT],
            syn: Table([[0; 2]; TABLE]),
            syn_ack: Table([[0; 2]; TABLE]),
        }
    }
}

/// Distinct values / count (NaN for none, as in C).
fn distinct_share(v: &[u8]) -> f64 {
    let mut seen = [false; 256];
    let mut distinct = 0u32;
    for &x in v {
        if !seen[usize::from(x)] {
            seen[usize::from(x)] = true;
            distinct += 1;
        }
    }
    f64::from(distinct) / v.len() as f64
}

impl SsaExt {
    fn update(&mut self, pkt: &Packet) {
        let len = pkt.payload_len;
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return;
        }
        let dir = usize::from(!pkt.source_pkt);
        let other = dir ^ 1;
        let idx = usize::from(len - MIN_LEN);
        let now = pkt.ts_us as i64;
        if self.syn.recent(idx, SYN_ACK_WINDOW, other, now) {
            self.syn.clear();
            self.syn_ack.clear();
            if let Some(slot) = self.lengths.get_mut(self.kept) {
                *slot = len as u8;
                self.kept += 1;
            }
            self.suspects = self.suspects.saturating_add(1);
            return;
        }
        if self.syn.recent(idx, SYN_WINDOW, other, now) {
            self.syn_ack.put(idx, dir, now);
        }
        self.syn.put(idx, dir, now);
    }

    fn finish(&mut self, packets: u64) {
        let s = self.suspects;
        if s < 3 || packets as f64 / s as f64 > 2500.0 {
            return;
        }
        let limit = if s < 15 {
            0.6
        } else if s < 40 {
            0.4
        } else {
            0.2
        };
        let share = distinct_share(self.lengths.get(..self.kept).unwrap_or(&[]));
        if share > limit {
            return;
        }
        self.level = 1;
    }
}

impl SsaDetector {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(SsaDetector))
    }
}

pub(crate) const FIELDS: &[FieldDef] = &[FieldDef::new(
    "SSA_CONF_LEVEL",
    ty::U8,
    Some(Ie {
        pen: PEN_CESNET,
        id: 903,
    }),
)];

impl ProcessPlugin for SsaDetector {
    fn name(&self) -> &'static str {
        "ssadetector"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_UPDATE | Hooks::PRE_EXPORT
    }
    fn post_update(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if u64::from(f.flow.packets) + u64::from(f.flow.packets_rev) < MIN_PACKETS {
            return Verdict::CONTINUE;
        }
        if f.exts.get_mut::<SsaExt>().is_none() {
            f.exts.add(SsaExt::default());
        }
        if let Some(e) = f.exts.get_mut::<SsaExt>() {
            e.update(pkt);
        }
        Verdict::CONTINUE
    }
    fn pre_export(&mut self, f: FlowCtx<'_>) {
        let packets = u64::from(f.flow.packets) + u64::from(f.flow.packets_rev);
        if packets <= MIN_PACKETS {
            f.exts.remove::<SsaExt>();
        } else if let Some(e) = f.exts.get_mut::<SsaExt>() {
            e.finish(packets);
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
            ts_us: 1_000_000_000_000 + ms * 1000,
            source_pkt: src,
            payload_len: len,
            ..Packet::default()
        }
    }

    #[test]
    fn triples_are_suspects() {
        let mut e = SsaExt::default();
        for k in 0..5u64 {
            let t = k * 10_000;
            e.update(&pkt(t, true, 80));
            e.update(&pkt(t + 10, false, 84));
            e.update(&pkt(t + 20, true, 76));
        }
        // 80 then 84 from the other side (within 12 lengths) is a suspect.
        assert_eq!(e.suspects, 5);
        assert_eq!(&e.lengths[..5], &[84; 5]);
        e.finish(100);
        assert_eq!(e.level, 1);
    }

    #[test]
    fn old_or_out_of_range_packets_do_not_match() {
        let mut e = SsaExt::default();
        e.update(&pkt(0, true, 80));
        e.update(&pkt(3_001, false, 84));
        e.update(&pkt(3_002, true, 200));
        e.update(&pkt(3_003, true, 59));
        assert_eq!(e.suspects, 0);
        e.update(&pkt(3_004, true, 150));
        e.update(&pkt(3_005, false, 150));
        assert_eq!(e.suspects, 1);
        e.finish(100);
        assert_eq!(e.level, 0);
    }

    #[test]
    fn diverse_lengths_are_not_tunnels() {
        let mut e = SsaExt {
            suspects: 4,
            kept: 4,
            ..SsaExt::default()
        };
        e.lengths[..4].copy_from_slice(&[60, 61, 62, 60]);
        e.finish(100);
        assert_eq!(e.level, 0);
    }
}
