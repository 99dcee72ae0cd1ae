//! Records/s of the vportscan state machine on 1M synthetic flows (a mix of
//! ordinary traffic and SYN probes from scanners). Prints, asserts nothing.

use detector_common::{tcp, Flow, FlowDetector};
use std::time::Instant;
use unirec::{UrIp, UrTime};
use vportscan_detector::{Config, Detector};

fn main() {
    let n = 1_000_000u32;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let flows: Vec<Flow> = (0..n)
        .map(|i| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let scan = rng & 3 == 0;
            Flow {
                // Scans: 16 scanners x 16 targets; other traffic: many pairs.
                src_ip: if scan {
                    UrIp::from_v4([10, 0, 0, (rng >> 8) as u8 & 15].into())
                } else {
                    UrIp::from_v4([10, (rng >> 8) as u8, (rng >> 16) as u8 & 7, 1].into())
                },
                dst_ip: if scan {
                    UrIp::from_v4([192, 168, 0, (rng >> 12) as u8 & 15].into())
                } else {
                    UrIp::from_v4([192, 168, (rng >> 24) as u8, (rng >> 32) as u8].into())
                },
                src_port: 1024 + (rng >> 40) as u16 % 60000,
                dst_port: if scan { (rng >> 20) as u16 } else { 443 },
                protocol: 6,
                tcp_flags: if scan { tcp::SYN } else { 0x1b },
                packets: if scan { 1 } else { 12 },
                bytes: 1000,
                time_first: UrTime::from_secs_millis(1_700_000_000 + i / 10_000, 0),
                time_last: UrTime::from_secs_millis(1_700_000_000 + i / 10_000, 100),
            }
        })
        .collect();
    let mut d = Detector::new(Config::default());
    let mut out = Vec::new();
    let start = Instant::now();
    for f in &flows {
        d.flow(f, &mut out);
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "vportscan_detector: {n} flows in {s:.3} s = {:.2} M records/s ({} alerts)",
        f64::from(n) / s / 1e6,
        out.len()
    );
}
