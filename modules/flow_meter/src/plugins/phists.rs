//! `phists`: histograms of payload sizes and inter-packet times per
//! direction.
//!
//! Exports `uint32* S_PHISTS_SIZES, S_PHISTS_IPT, D_PHISTS_SIZES,
//! D_PHISTS_IPT`, always 8 bins: `[0–15] [16–31] [32–63] [64–127] [128–255]
//! [256–511] [512–1023] [≥1024]` of the L4 payload length by the headers
//! (bytes) and of the time since the previous packet of the same direction
//! (milliseconds). Counters saturate.
//!
//! ipfixprobe's rules: packets with no payload are ignored unless
//! `includezeroes` (`i`); the first packet of a direction has no
//! inter-packet time; the extension is removed at export from flows of at
//! most one packet with SYN seen. Quirk kept for byte-exactness: the last
//! time of a direction is kept as the low 32 bits of its millisecond
//! timestamp (0 = none yet), and the difference is taken as a 32-bit signed
//! number, so a difference of exactly −1 ms counts as "first packet" and
//! other negative ones land in the last bin.

use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie};
use super::{ProcessPlugin, Verdict, PEN_CESNET};
use crate::parser::Packet;

const BINS: usize = 8;

/// The plugin, with its option.
pub struct Phists {
    include_zeroes: bool,
}

/// Per-flow state (index 0 = source direction, 1 = reverse).
#[derive(Default)]
struct PhistsExt {
    sizes: [[u32; BINS]; 2],
    ipt: [[u32; BINS]; 2],
    /// Low 32 bits of the last packet's time in ms.
    last_ms: [u32; 2],
}

impl Extension for PhistsExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::U32s(&self.sizes[0]));
        out.put(1, FieldValue::U32s(&self.ipt[0]));
        out.put(2, FieldValue::U32s(&self.sizes[1]));
        out.put(3, FieldValue::U32s(&self.ipt[1]));
    }
}

/// The bin of `v`: 0 below 16, then one per power of two, 7 from 1024.
fn bin(v: u32) -> usize {
    if v < 16 {
        0
    } else if v > 1023 {
        BINS - 1
    } else {
        // floor(log2 v) is 4..=9 here.
        (31 - v.leading_zeros()) as usize - 3
    }
}

fn count(hist: &mut [u32; BINS], v: u32) {
    if let Some(c) = hist.get_mut(bin(v)) {
        *c = c.saturating_add(1);
    }
}

impl PhistsExt {
    fn update(&mut self, pkt: &Packet, include_zeroes: bool) {
        if pkt.payload_len_wire == 0 && !include_zeroes {
            return;
        }
        let d = usize::from(!pkt.source_pkt);
        count(&mut self.sizes[d], u32::from(pkt.payload_len_wire));
        let ms = (pkt.ts_us / 1_000_000)
            .wrapping_mul(1000)
            .wrapping_add(pkt.ts_us % 1_000_000 / 1000) as i64;
        let ipt = if self.last_ms[d] == 0 {
            -1
        } else {
            let diff = ms.wrapping_sub(i64::from(self.last_ms[d]));
            // (a negative 64-bit difference would be 0, but with the 32-bit
            // last time it is positive in practice)
            diff.max(0) as i32
        };
        self.last_ms[d] = ms as u32;
        if ipt != -1 {
            count(&mut self.ipt[d], ipt as u32);
        }
    }
}

impl Phists {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        let mut p = Phists {
            include_zeroes: false,
        };
        for (k, v) in parse_options(opts, &[("i", "includezeroes")])? {
            if !v.is_empty() {
                return Err(format!("option `{k}` takes no value"));
            }
            p.include_zeroes = true;
        }
        Ok(Box::new(p))
    }
}

const fn ie(id: u16) -> Option<Ie> {
    Some(Ie {
        pen: PEN_CESNET,
        id,
    })
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new("S_PHISTS_SIZES", ty::U32S, ie(1060)),
    FieldDef::new("S_PHISTS_IPT", ty::U32S, ie(1061)),
    FieldDef::new("D_PHISTS_SIZES", ty::U32S, ie(1062)),
    FieldDef::new("D_PHISTS_IPT", ty::U32S, ie(1063)),
];

impl ProcessPlugin for Phists {
    fn name(&self) -> &'static str {
        "phists"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::POST_UPDATE | Hooks::PRE_EXPORT
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        let mut e = PhistsExt::default();
        e.update(pkt, self.include_zeroes);
        f.exts.add(e);
        Verdict::CONTINUE
    }
    fn post_update(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if let Some(e) = f.exts.get_mut::<PhistsExt>() {
            e.update(pkt, self.include_zeroes);
        }
        Verdict::CONTINUE
    }
    fn pre_export(&mut self, f: FlowCtx<'_>) {
        let packets = u64::from(f.flow.packets) + u64::from(f.flow.packets_rev);
        if packets <= 1 && (f.flow.tcp_flags | f.flow.tcp_flags_rev) & 0x02 != 0 {
            f.exts.remove::<PhistsExt>();
        }
    }
    fn needs_payload(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(ts_ms: u64, src: bool, len: u16) -> Packet {
        Packet {
            ts_us: 1_477_674_000_000_000 + ts_ms * 1000,
            source_pkt: src,
            payload_len_wire: len,
            ..Packet::default()
        }
    }

    #[test]
    fn bins() {
        let want = [
            (0, 0),
            (15, 0),
            (16, 1),
            (31, 1),
            (32, 2),
            (64, 3),
            (128, 4),
            (256, 5),
            (511, 5),
            (512, 6),
            (1023, 6),
            (1024, 7),
            (u32::MAX, 7),
        ];
        for (v, b) in want {
            assert_eq!(bin(v), b, "{v}");
        }
    }

    #[test]
    fn histograms_per_direction() {
        let mut e = PhistsExt::default();
        e.update(&pkt(0, true, 100), false);
        e.update(&pkt(5, false, 0), false);
        e.update(&pkt(20, true, 2000), false);
        e.update(&pkt(120, true, 10), false);
        e.update(&pkt(130, false, 300), false);
        assert_eq!(e.sizes[0], [1, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(e.ipt[0], [0, 1, 0, 1, 0, 0, 0, 0]);
        assert_eq!(e.sizes[1], [0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(e.ipt[1], [0; 8]);
        e.update(&pkt(140, false, 0), true);
        assert_eq!(e.sizes[1], [1, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(e.ipt[1], [1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn options() {
        assert!(Phists::create("includezeroes").is_ok());
        assert!(Phists::create("s").is_err());
    }
}
