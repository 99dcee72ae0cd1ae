//! Records/s of the amplification state machine on 1M synthetic flows (DNS
//! queries and answers of many clients, web traffic). Prints, asserts nothing.

use detector_common::{Flow, FlowDetector};
use dns_amplification::{Config, Detector};
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
            let client = UrIp::from_v4([10, (rng >> 8) as u8, (rng >> 16) as u8 & 15, 1].into());
            let server = UrIp::from_v4([192, 0, 2, (rng >> 24) as u8 & 7].into());
            let t = UrTime::from_secs_millis(1_700_000_000 + i / 500, 0);
            let (src_ip, dst_ip, src_port, dst_port, bytes) = match rng % 3 {
                0 => (client, server, 40000, 53, 70),
                1 => (server, client, 53, 40000, 300),
                _ => (client, server, 40000, 443, 1500),
            };
            Flow {
                src_ip,
                dst_ip,
                src_port,
                dst_port,
                protocol: 17,
                packets: 1,
                bytes,
                time_first: t,
                time_last: t,
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
    let s = start.elapsed().as_secs_f64();
    println!(
        "dns_amplification: {n} flows in {s:.3} s = {:.2} M records/s ({} alerts)",
        f64::from(n) / s / 1e6,
        out.len()
    );
}
