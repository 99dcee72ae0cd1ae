//! Records/s of the amplification state machine on 1M synthetic flows (DNS
//! queries and answers of many clients, web traffic). Prints, asserts nothing.

use detector_common::{bench, Flow};
use dns_amplification::{Config, Detector};
use unirec::{UrIp, UrTime};

fn main() {
    let n = 1_000_000u32;
    let flows = bench::flows(n, |i, rng| {
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
    });
    let mut d = Detector::new(Config::default());
    bench::measure("dns_amplification", &mut d, &flows);
}
