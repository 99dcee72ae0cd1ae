//! `nettisa`: statistics of a flow's payload sizes and packet times.
//!
//! Exports `float NTS_MEAN, NTS_STDEV, NTS_KURTOSIS, NTS_ROOT_MEAN_SQUARE,
//! NTS_AVERAGE_DISPERSION, NTS_MEAN_SCALED_TIME, NTS_MEAN_DIFFTIMES,
//! NTS_MIN_DIFFTIMES, NTS_MAX_DIFFTIMES, NTS_TIME_DISTRIBUTION,
//! NTS_SWITCHING_RATIO` and `uint16 NTS_MIN, NTS_MAX`.
//!
//! ipfixprobe's rules: running statistics over the L4 payload length by the
//! headers of every packet (both directions), with times in µs: the gap to
//! the previous packet of the flow (0 for the first, so the minimum gap is
//! always 0) and the time since the flow's start. Single-packet flows lose
//! the extension at export, where the sums become the final values.
//!
//! For byte-exact output this follows ipfixprobe's arithmetic literally:
//! which steps are single precision (f32) and which double, including its
//! quirks: the standard deviation uses the integer mean of the payloads;
//! the time distribution divides by (largest gap − smallest payload); the
//! switching ratio counts changes of the frame length (not the payload);
//! unsigned time differences wrap before conversion.

use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie};
use super::{ProcessPlugin, Verdict, PEN_CESNET};
use crate::cache::Flow;
use crate::parser::Packet;

/// The plugin (no options).
pub struct Nettisa;

#[derive(Clone, Copy)]
struct NettisaExt {
    mean: f32,
    min: u16,
    max: u16,
    stdev: f32,
    kurtosis: f32,
    root_mean_square: f32,
    average_dispersion: f32,
    mean_scaled_time: f32,
    mean_difftimes: f32,
    min_difftimes: f32,
    max_difftimes: f32,
    time_distribution: f32,
    switching_ratio: f32,
    prev_frame_len: u16,
    prev_time: u64,
    sum_payload: u64,
}

impl NettisaExt {
    fn new(first_time: u64) -> NettisaExt {
        NettisaExt {
            mean: 0.0,
            min: u16::MAX,
            max: 0,
            stdev: 0.0,
            kurtosis: 0.0,
            root_mean_square: 0.0,
            average_dispersion: 0.0,
            mean_scaled_time: 0.0,
            mean_difftimes: 0.0,
            min_difftimes: f32::MAX,
            max_difftimes: 0.0,
            time_distribution: 0.0,
            switching_ratio: 0.0,
            prev_frame_len: 0,
            prev_time: first_time,
            sum_payload: 0,
        }
    }

    fn update(&mut self, pkt: &Packet, flow: &Flow) {
        let len = pkt.payload_len_wire;
        let lenf = f32::from(len);
        let dev = lenf - self.mean;
        let n = u64::from(flow.packets) + u64::from(flow.packets_rev);
        let n32 = (n as u32) as f32;
        let t = pkt.ts_us;
        // (an unsigned difference: a packet older than the previous one
        // gives a huge gap, as in C)
        let gap = (t.wrapping_sub(self.prev_time) as f64).max(0.0) as f32;
        self.sum_payload = self.sum_payload.wrapping_add(u64::from(len));
        self.prev_time = t;
        self.mean += dev / n32;
        self.min = self.min.min(len);
        self.max = self.max.max(len);
        self.root_mean_square = (f64::from(self.root_mean_square) + f64::from(len).powi(2)) as f32;
        self.average_dispersion += dev.abs();
        self.kurtosis = (f64::from(self.kurtosis) + f64::from(dev).powf(4.0)) as f32;
        let since_start = t.wrapping_sub(flow.time_first) as f32;
        self.mean_scaled_time += (since_start - self.mean_scaled_time) / n32;
        self.mean_difftimes += (gap - self.mean_difftimes) / n32;
        self.min_difftimes = self.min_difftimes.min(gap);
        self.max_difftimes = self.max_difftimes.max(gap);
        self.time_distribution += (self.mean_difftimes - gap).abs();
        if self.prev_frame_len != pkt.packet_len_wire {
            self.switching_ratio += 1.0;
            self.prev_frame_len = pkt.packet_len_wire;
        }
    }

    /// The final values (flows of at least 2 packets).
    fn finish(&mut self, n: u32) {
        let nf = n as f32;
        self.switching_ratio /= nf;
        let int_mean = self.sum_payload / u64::from(n.max(1));
        self.stdev =
            ((f64::from(self.root_mean_square / nf) - (int_mean as f64).powi(2)).powf(0.5)) as f32;
        self.kurtosis = if self.stdev == 0.0 {
            0.0
        } else {
            (f64::from(self.kurtosis) / (f64::from(n) * f64::from(self.stdev).powf(4.0))) as f32
        };
        self.time_distribution = (self.time_distribution / (n.wrapping_sub(1) as f32))
            / (self.max_difftimes - f32::from(self.min));
        self.root_mean_square = f64::from(self.root_mean_square / nf).powf(0.5) as f32;
        self.average_dispersion /= nf;
    }
}

impl Extension for NettisaExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        let f = [
            self.mean,
            self.stdev,
            self.kurtosis,
            self.root_mean_square,
            self.average_dispersion,
            self.mean_scaled_time,
            self.mean_difftimes,
            self.min_difftimes,
            self.max_difftimes,
            self.time_distribution,
            self.switching_ratio,
        ];
        for (i, v) in f.into_iter().enumerate() {
            out.put(i, FieldValue::Float(v));
        }
        out.put(11, FieldValue::U16(self.min));
        out.put(12, FieldValue::U16(self.max));
    }
}

impl Nettisa {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(Nettisa))
    }
}

const fn ie(id: u16) -> Option<Ie> {
    Some(Ie {
        pen: PEN_CESNET,
        id,
    })
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new("NTS_MEAN", ty::FLOAT, ie(1020)),
    FieldDef::new("NTS_STDEV", ty::FLOAT, ie(1023)),
    FieldDef::new("NTS_KURTOSIS", ty::FLOAT, ie(1024)),
    FieldDef::new("NTS_ROOT_MEAN_SQUARE", ty::FLOAT, ie(1025)),
    FieldDef::new("NTS_AVERAGE_DISPERSION", ty::FLOAT, ie(1026)),
    FieldDef::new("NTS_MEAN_SCALED_TIME", ty::FLOAT, ie(1027)),
    FieldDef::new("NTS_MEAN_DIFFTIMES", ty::FLOAT, ie(1028)),
    FieldDef::new("NTS_MIN_DIFFTIMES", ty::FLOAT, ie(1029)),
    FieldDef::new("NTS_MAX_DIFFTIMES", ty::FLOAT, ie(1030)),
    FieldDef::new("NTS_TIME_DISTRIBUTION", ty::FLOAT, ie(1031)),
    FieldDef::new("NTS_SWITCHING_RATIO", ty::FLOAT, ie(1032)),
    FieldDef::new("NTS_MIN", ty::U16, ie(1021)),
    FieldDef::new("NTS_MAX", ty::U16, ie(1022)),
];

impl ProcessPlugin for Nettisa {
    fn name(&self) -> &'static str {
        "nettisa"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::POST_UPDATE | Hooks::PRE_EXPORT
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        let mut e = NettisaExt::new(pkt.ts_us);
        e.update(pkt, f.flow);
        f.exts.add(e);
        Verdict::CONTINUE
    }
    fn post_update(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if let Some(e) = f.exts.get_mut::<NettisaExt>() {
            e.update(pkt, f.flow);
        }
        Verdict::CONTINUE
    }
    fn pre_export(&mut self, f: FlowCtx<'_>) {
        let n = f.flow.packets.wrapping_add(f.flow.packets_rev);
        if n == 1 {
            f.exts.remove::<NettisaExt>();
        } else if let Some(e) = f.exts.get_mut::<NettisaExt>() {
            e.finish(n);
        }
    }
    fn needs_payload(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first flow of ipfixprobe's nettisa functional output.
    #[test]
    fn matches_ipfixprobe_digits() {
        let t0 = 1_477_674_472_625_696u64;
        let pkts = [
            (t0, 68u16, 122u16),
            (t0 + 87, 68, 122),
            (t0 + 5_005_997, 76, 130),
        ];
        let mut flow: Option<Flow> = None;
        let mut e = NettisaExt::new(t0);
        for (i, &(ts, len, frame)) in pkts.iter().enumerate() {
            let p = Packet {
                ts_us: ts,
                payload_len_wire: len,
                packet_len_wire: frame,
                source_pkt: true,
                ..Packet::default()
            };
            let fl = flow.get_or_insert_with(|| Flow {
                time_first: t0,
                ..test_flow()
            });
            fl.packets = i as u32 + 1;
            e.update(&p, fl);
        }
        e.finish(3);
        let s = |v: f32| format!("{v:.6}");
        assert_eq!(s(e.mean), "70.666664");
        assert_eq!(s(e.average_dispersion), "25.333334");
        assert_eq!(s(e.kurtosis), "611.153259");
        assert_eq!(s(e.max_difftimes), "5005910.000000");
        assert_eq!(s(e.mean_difftimes), "1668665.625000");
        assert_eq!(s(e.mean_scaled_time), "1668694.625000");
        assert_eq!(s(e.min_difftimes), "0.000000");
        assert_eq!(s(e.root_mean_square), "70.767227");
        assert_eq!(s(e.stdev), "10.392304");
        assert_eq!(s(e.switching_ratio), "0.666667");
        assert_eq!(s(e.time_distribution), "0.333339");
        assert_eq!((e.min, e.max), (68, 76));
    }

    fn test_flow() -> Flow {
        Flow {
            ip_version: 4,
            src_ip: [0; 16],
            dst_ip: [0; 16],
            src_port: 0,
            dst_port: 0,
            protocol: 6,
            vlan_id: 0,
            src_mac: [0; 6],
            dst_mac: [0; 6],
            time_first: 0,
            time_last: 0,
            packets: 0,
            packets_rev: 0,
            bytes: 0,
            bytes_rev: 0,
            tcp_flags: 0,
            tcp_flags_rev: 0,
            end_reason: crate::cache::EndReason::Forced,
            flow_hash: 0,
        }
    }
}
