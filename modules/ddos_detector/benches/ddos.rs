//! Records/s of the ddos state machine on 1M synthetic flows (many
//! destinations, a few flooded). Prints, asserts nothing.

use ddos_detector::{Config, Detector};
use detector_common::{bench, Flow};
use unirec::{UrIp, UrTime};

fn main() {
    let n = 1_000_000u32;
    let flows = bench::flows(n, |i, rng| {
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
    });
    let mut d = Detector::new(Config::default());
    bench::measure("ddos_detector", &mut d, &flows);
}
