//! Records/s of the hoststats profiles on 1M synthetic flows (10 240 clients
//! talking to 65 536 servers). Prints, asserts nothing.

use detector_common::{bench, Flow};
use hoststats::{Config, Detector};
use unirec::{UrIp, UrTime};

fn main() {
    let n = 1_000_000u32;
    let flows = bench::flows(n, |i, rng| {
        let t = UrTime::from_secs_millis(1_700_000_000 + i / 2000, 0);
        Flow {
            src_ip: UrIp::from_v4([10, 0, (rng >> 8) as u8 & 39, (rng >> 16) as u8].into()),
            // 65 536 servers
            dst_ip: UrIp::from_v4([192, 168, (rng >> 32) as u8, (rng >> 40) as u8].into()),
            src_port: 40000,
            dst_port: [80, 443, 53, 22][(rng >> 24) as usize & 3],
            protocol: 6,
            tcp_flags: 0x1b,
            packets: 10,
            bytes: 5000,
            time_first: t,
            time_last: t,
            server_rule: 0,
        }
    });
    let mut d = Detector::new(Config::default());
    bench::measure("hoststats", &mut d, &flows);
}
