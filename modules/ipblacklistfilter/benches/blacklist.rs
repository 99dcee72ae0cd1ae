//! Records/s of the blacklist filter on 1M synthetic flows against 100 000
//! listed prefixes. Prints, asserts nothing.

use detector_common::{Flow, FlowDetector};
use ipblacklistfilter::{Blacklist, Filter};
use std::fmt::Write;
use std::time::Instant;
use unirec::UrIp;

fn main() {
    let mut text = String::new();
    for i in 0..100_000u32 {
        let a = 0x0b00_0000u32.wrapping_add(i.wrapping_mul(2_654_435_761) >> 4);
        let len = [32, 24, 20, 28][(i % 4) as usize];
        let _ = writeln!(
            text,
            "{}/{len},{}",
            std::net::Ipv4Addr::from(a),
            1u64 << (i % 8)
        );
    }
    let mut list = Blacklist::default();
    list.parse(&text, "bench");
    let n = 1_000_000u32;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let flows: Vec<Flow> = (0..n)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            Flow {
                src_ip: UrIp::from_v4(std::net::Ipv4Addr::from((rng >> 8) as u32)),
                dst_ip: UrIp::from_v4(std::net::Ipv4Addr::from((rng >> 32) as u32)),
                src_port: 40000,
                dst_port: 443,
                protocol: 6,
                ..Flow::default()
            }
        })
        .collect();
    let mut f = Filter::new(list);
    let mut out = Vec::new();
    let start = Instant::now();
    for fl in &flows {
        f.flow(fl, &mut out);
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "ipblacklistfilter: {n} flows in {s:.3} s = {:.2} M records/s ({} marked)",
        f64::from(n) / s / 1e6,
        out.len()
    );
}
