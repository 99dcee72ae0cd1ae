//! Records/s of the ddos state machine on 1M synthetic flows (many
//! destinations, a few flooded). Prints, asserts nothing.

use ddos_detector::{Config, Detector};
use detector_common::{Flow, FlowDetector};
use std::time::Instant;
use unirec::{UrIp, UrTime};

fn main() {
    let n = 1_000_000u32;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let flows: Vec<Flow> = (0..n)
        .map(|i| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let t = 1_700_000_000 + i / 1000;
            let flood = (rng & 7) == 0 && (t / 60) % 10 > 5;
            Flow {
                src_ip: UrIp::from_v4([10, (rng >> 8) as u8, (rng >> 16) as u8, 1].into()),
                dst_ip: if flood {
                    UrIp::from_v4([198, 51, 100, (rng >> 24) as u8 & 3].into())
                } else {
                    UrIp::from_v4([192, 168, (rng >> 24) as u8, (rng >> 32) as u8 & 31].into())
                },
                bytes: if flood { 150_000 } else { 1500 },
                time_first: UrTime::from_secs_millis(t - (rng >> 40) as u32 % 30, 0),
                time_last: UrTime::from_secs_millis(t, 900),
                ..Flow::default()
            }
        })
        .collect();
    let mut d = Detector::new(Config::default());
    let mut out = Vec::new();
    let start = Instant::now();
    for f in &flows {
        d.flow(f, &mut out);
    }
    d.finish(&mut out);
    let s = start.elapsed().as_secs_f64();
    println!(
        "ddos_detector: {n} flows in {s:.3} s = {:.2} M records/s ({} alerts)",
        f64::from(n) / s / 1e6,
        out.len()
    );
}
