//! Records/s of the blacklist filter on 1M synthetic flows against 100 000
//! listed prefixes. Prints, asserts nothing.

use detector_common::{bench, Flow};
use ipblacklistfilter::{Blacklist, Filter};
use std::fmt::Write;
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
    let flows = bench::flows(n, |_, rng| Flow {
        src_ip: UrIp::from_v4(std::net::Ipv4Addr::from((rng >> 8) as u32)),
        dst_ip: UrIp::from_v4(std::net::Ipv4Addr::from((rng >> 32) as u32)),
        src_port: 40000,
        dst_port: 443,
        protocol: 6,
        ..Flow::default()
    });
    let mut f = Filter::new(list);
    bench::measure("ipblacklistfilter", &mut f, &flows);
}
