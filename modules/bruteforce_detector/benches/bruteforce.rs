//! Records/s of the brute-force state machine on 1M synthetic flows (web
//! traffic, SSH sessions and SSH login attempts). Prints, asserts nothing.

use bruteforce_detector::{Config, Detector, Whitelist};
use detector_common::{bench, Flow};
use unirec::{UrIp, UrTime};

fn main() {
    let n = 1_000_000u32;
    let flows = bench::flows(n, |i, rng| {
        let kind = rng % 4;
        Flow {
            src_ip: UrIp::from_v4([10, (rng >> 8) as u8, (rng >> 16) as u8 & 15, 1].into()),
            dst_ip: UrIp::from_v4([192, 168, (rng >> 24) as u8, (rng >> 32) as u8].into()),
            src_port: 1024 + (rng >> 40) as u16 % 60000,
            dst_port: if kind == 0 { 443 } else { 22 },
            protocol: 6,
            tcp_flags: 0x1b,
            packets: if kind == 3 { 400 } else { 15 },
            bytes: if kind == 3 { 90_000 } else { 2000 },
            time_first: UrTime::from_secs_millis(1_700_000_000 + i / 1000, 0),
            time_last: UrTime::from_secs_millis(1_700_000_000 + i / 1000, 900),
            server_rule: 0,
        }
    });
    let mut d = Detector::new(Config::default(), [true; 3], Whitelist::default());
    bench::measure("bruteforce_detector", &mut d, &flows);
}
