//! Records/s of the vportscan state machine on 1M synthetic flows (a mix of
//! ordinary traffic and SYN probes from scanners). Prints, asserts nothing.

use detector_common::{bench, tcp, Flow};
use unirec::{UrIp, UrTime};
use vportscan_detector::{Config, Detector};

fn main() {
    let n = 1_000_000u32;
    let flows = bench::flows(n, |i, rng| {
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
            server_rule: 0,
        }
    });
    let mut d = Detector::new(Config::default());
    bench::measure("vportscan_detector", &mut d, &flows);
}
