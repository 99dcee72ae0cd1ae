//! Records/s of the miner state machine on 1M synthetic flows against 10 000
//! listed pools (1 flow in 16 goes to a pool), then the same with learning
//! on (`stratum_check`: the other 15 in 16 open suspects of unlisted
//! servers that are scored at every check; no prober, so requests stay
//! queued). Prints, asserts nothing.

use detector_common::{bench, Flow};
use miner_detector::{Config, Detector, PoolList};
use std::fmt::Write;
use unirec::{UrIp, UrTime};

fn main() {
    let mut text = String::new();
    for i in 0..10_000u32 {
        let _ = writeln!(text, "{}:3333", std::net::Ipv4Addr::from(0xc000_0000 | i));
    }
    let pools = PoolList::parse(&text, "bench").unwrap_or_default();
    let n = 1_000_000u32;
    let flows = bench::flows(n, |i, rng| {
        let pool = rng & 15 == 0;
        let t = UrTime::from_secs_millis(1_700_000_000 + i / 1000, 0);
        Flow {
            src_ip: UrIp::from_v4([10, (rng >> 8) as u8, (rng >> 16) as u8 & 15, 1].into()),
            dst_ip: if pool {
                UrIp::from_v4(std::net::Ipv4Addr::from(
                    0xc000_0000 | ((rng >> 24) as u32 % 10_000),
                ))
            } else {
                UrIp::from_v4(std::net::Ipv4Addr::from((rng >> 32) as u32))
            },
            src_port: 40000,
            dst_port: if pool { 3333 } else { 443 },
            protocol: 6,
            tcp_flags: 0x18,
            packets: 10,
            bytes: 900,
            time_first: t,
            time_last: t,
            server_rule: 0,
        }
    });
    let mut d = Detector::new(Config::default(), pools.clone(), PoolList::default());
    bench::measure("miner_detector", &mut d, &flows);
    let learning = Config {
        stratum_check: true,
        ..Config::default()
    };
    let mut d = Detector::new(learning, pools, PoolList::default());
    bench::measure("miner_detector (learning)", &mut d, &flows);
}
