//! vportscan_aggregator — groups the alerts of `vportscan_detector` per
//! scanner over a time window and emits one JSON event per scanner (format
//! `aggregated_portscan`), which `vportscan2idea` turns into IDEA.
//!
//! Event: `{"src_ip": "...", "dst_ips": {"<ip>": <sum of PORT_CNT>, ...},
//! "ts_first": <float epoch>, "ts_last": <float epoch>, "protocol": 6}`.
//! Key: (SRC_IP, PROTOCOL), or (SRC_IP, DST_IP, PROTOCOL) with
//! `--no-block-scans`. Events with more than 1000 destinations are split
//! (destinations sorted) so that one message stays below TRAP's 64 KiB.
#![forbid(unsafe_code)]

use detector_common::{DetectError, WindowAggregator};
use libtrap::DataFormat;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use unirec::{RecordRef, UrIp, UrTime};

/// The detector's alert fields this module reads.
pub const INPUT_SPEC: &str = "ipaddr DST_IP,ipaddr SRC_IP,uint32 PORT_CNT,time TIME_FIRST,\
time TIME_LAST,uint16 DST_PORT,uint16 SRC_PORT,uint8 EVENT_TYPE,uint8 PROTOCOL";

/// The JSON format label of the output.
pub const OUTPUT_FORMAT: &str = "aggregated_portscan";

/// Most destinations in one message.
pub const MAX_TARGETS: usize = 1000;

/// One detector alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanAlert {
    pub src_ip: UrIp,
    pub dst_ip: UrIp,
    pub port_cnt: u32,
    pub time_first: UrTime,
    pub time_last: UrTime,
    pub protocol: u8,
}

impl ScanAlert {
    /// The alert in a record of the detector (missing fields read as 0).
    pub fn from_record(rec: &RecordRef<'_>) -> ScanAlert {
        let t = rec.template();
        let i = |name| t.find(name).unwrap_or(usize::MAX);
        ScanAlert {
            src_ip: rec.get_ip(i("SRC_IP")).unwrap_or_default(),
            dst_ip: rec.get_ip(i("DST_IP")).unwrap_or_default(),
            port_cnt: rec.get_u32(i("PORT_CNT")).unwrap_or(0),
            time_first: rec.get_time(i("TIME_FIRST")).unwrap_or_default(),
            time_last: rec.get_time(i("TIME_LAST")).unwrap_or_default(),
            protocol: rec.get_u8(i("PROTOCOL")).unwrap_or(0),
        }
    }
}

#[derive(Debug)]
struct Event {
    src: UrIp,
    protocol: u8,
    dst: BTreeMap<UrIp, u64>,
    first: UrTime,
    last: UrTime,
}

/// The aggregation table of one window.
#[derive(Debug, Default)]
pub struct Aggregator {
    block_scans: bool,
    events: HashMap<(UrIp, Option<UrIp>, u8), Event>,
    order: Vec<(UrIp, Option<UrIp>, u8)>,
}

impl Aggregator {
    /// `block_scans`: one event per scanner over all its targets (default);
    /// false = one event per (scanner, target) (`--no-block-scans`).
    pub fn new(block_scans: bool) -> Aggregator {
        Aggregator {
            block_scans,
            ..Aggregator::default()
        }
    }

    pub fn add(&mut self, a: &ScanAlert) {
        let key = (
            a.src_ip,
            (!self.block_scans).then_some(a.dst_ip),
            a.protocol,
        );
        let e = self.events.entry(key).or_insert_with(|| {
            self.order.push(key);
            Event {
                src: a.src_ip,
                protocol: a.protocol,
                dst: BTreeMap::new(),
                first: a.time_first,
                last: a.time_last,
            }
        });
        *e.dst.entry(a.dst_ip).or_default() += u64::from(a.port_cnt);
        e.first = e.first.min(a.time_first);
        e.last = e.last.max(a.time_last);
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// All events of the window as JSON messages (in order of first alert),
    /// and an empty table.
    pub fn flush(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        for key in self.order.drain(..) {
            let Some(e) = self.events.remove(&key) else {
                continue;
            };
            let dst: Vec<(UrIp, u64)> = e.dst.into_iter().collect();
            for chunk in dst.chunks(MAX_TARGETS) {
                let dst_ips: Map<String, Value> = chunk
                    .iter()
                    .map(|(ip, n)| (ip.to_string(), json!(n)))
                    .collect();
                out.push(json!({
                    "src_ip": e.src.to_string(),
                    "dst_ips": dst_ips,
                    "ts_first": e.first.as_secs_f64(),
                    "ts_last": e.last.as_secs_f64(),
                    "protocol": e.protocol,
                }));
            }
        }
        out
    }
}

impl WindowAggregator for Aggregator {
    fn input_spec(&self) -> &'static str {
        INPUT_SPEC
    }
    fn output_format(&self) -> Result<DataFormat, DetectError> {
        Ok(DataFormat::Json(OUTPUT_FORMAT.to_string()))
    }
    fn add_record(&mut self, rec: &RecordRef<'_>) {
        self.add(&ScanAlert::from_record(rec));
    }
    fn end_window(&mut self, out: &mut Vec<Vec<u8>>) -> Result<(), DetectError> {
        out.extend(self.flush().iter().map(|ev| ev.to_string().into_bytes()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(src: &str, dst: String, t: u32) -> ScanAlert {
        ScanAlert {
            src_ip: UrIp::parse(src).unwrap(),
            dst_ip: UrIp::parse(&dst).unwrap(),
            port_cnt: 50,
            time_first: UrTime::from_secs_millis(t, 0),
            time_last: UrTime::from_secs_millis(t + 10, 500),
            protocol: 6,
        }
    }

    #[test]
    fn block_scan_events() {
        let mut a = Aggregator::new(true);
        a.add(&alert("192.0.2.7", "198.51.100.20".into(), 100));
        a.add(&alert("192.0.2.7", "198.51.100.20".into(), 50));
        a.add(&alert("192.0.2.7", "198.51.100.21".into(), 200));
        a.add(&alert("192.0.2.8", "198.51.100.20".into(), 300));
        let ev = a.flush();
        assert!(a.is_empty());
        assert_eq!(ev.len(), 2);
        assert_eq!(
            ev[0],
            json!({"src_ip": "192.0.2.7",
                   "dst_ips": {"198.51.100.20": 100, "198.51.100.21": 50},
                   "ts_first": 50.0, "ts_last": 210.5, "protocol": 6})
        );
        assert_eq!(ev[1]["src_ip"], "192.0.2.8");
    }

    #[test]
    fn no_block_scans_and_splitting() {
        let mut a = Aggregator::new(false);
        a.add(&alert("192.0.2.7", "198.51.100.20".into(), 100));
        a.add(&alert("192.0.2.7", "198.51.100.21".into(), 100));
        assert_eq!(a.flush().len(), 2);
        let mut a = Aggregator::new(true);
        for i in 0..2500u32 {
            a.add(&alert(
                "192.0.2.7",
                format!("10.0.{}.{}", i / 256, i % 256),
                100,
            ));
        }
        let ev = a.flush();
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0]["dst_ips"].as_object().unwrap().len(), 1000);
        assert_eq!(ev[2]["dst_ips"].as_object().unwrap().len(), 500);
    }
}
