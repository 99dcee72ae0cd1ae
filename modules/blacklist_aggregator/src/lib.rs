//! blacklist_aggregator — groups the flows that `ipblacklistfilter` marked
//! per blacklisted address, protocol and list over a time window and emits
//! one JSON event per group (format `aggregated_blacklist`), which
//! `blacklist2idea` turns into IDEA (NEMEA's blacklist_aggregator.py).
//!
//! Event: `{"type": "ip", "source": "<blacklisted IP>", "targets": [...],
//! "protocol": 6, "source_ports": [...], "ts_first": <float>, "ts_last":
//! <float>, "src_sent_bytes|flows|packets": ..., "tgt_sent_bytes|flows|packets":
//! ..., "blacklist_id": <2^(id-1)>, "agg_win_minutes": <float>}`.
//! `src_sent_*` is what the blacklisted address sent (it was SRC_IP),
//! `tgt_sent_*` what its peers sent to it. A flow whose address is on
//! several lists counts in one event per list. Events with more than 1000
//! targets are split (targets sorted), so one message stays below TRAP's
//! 64 KiB.
//!
//! The input is ipblacklistfilter's output as it is, or pre-aggregated by
//! NEMEA's `agg` (then `COUNT` says how many flows a record stands for).
#![forbid(unsafe_code)]

use detector_common::{DetectError, WindowAggregator};
use libtrap::DataFormat;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use unirec::{RecordRef, UrIp, UrTime};

/// The fields read (NEMEA's template without agg's COUNT, which is optional).
pub const INPUT_SPEC: &str = "ipaddr DST_IP,ipaddr SRC_IP,uint64 BYTES,uint64 DST_BLACKLIST,\
uint64 SRC_BLACKLIST,time TIME_FIRST,time TIME_LAST,uint32 PACKETS,uint16 DST_PORT,uint8 PROTOCOL";

/// The JSON format label of the output.
pub const OUTPUT_FORMAT: &str = "aggregated_blacklist";

/// Most targets in one message.
pub const MAX_TARGETS: usize = 1000;

/// Ports above this are taken for ephemeral client ports and not reported.
pub const MAX_SERVICE_PORT: u16 = 49152;

/// One marked flow (or one pre-aggregated record of flows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marked {
    pub src_ip: UrIp,
    pub dst_ip: UrIp,
    /// Present when the input has SRC_PORT (ipblacklistfilter's output).
    pub src_port: Option<u16>,
    pub dst_port: u16,
    pub protocol: u8,
    pub src_blacklist: u64,
    pub dst_blacklist: u64,
    pub packets: u32,
    pub bytes: u64,
    /// Flows the record stands for (agg's COUNT; 1 without it).
    pub flows: u32,
    pub time_first: UrTime,
    pub time_last: UrTime,
}

impl Marked {
    /// The flow in a record of the filter or of agg (missing fields are 0).
    pub fn from_record(rec: &RecordRef<'_>) -> Marked {
        let t = rec.template();
        let i = |name| t.find(name).unwrap_or(usize::MAX);
        Marked {
            src_ip: rec.get_ip(i("SRC_IP")).unwrap_or_default(),
            dst_ip: rec.get_ip(i("DST_IP")).unwrap_or_default(),
            src_port: rec.get_u16(i("SRC_PORT")),
            dst_port: rec.get_u16(i("DST_PORT")).unwrap_or(0),
            protocol: rec.get_u8(i("PROTOCOL")).unwrap_or(0),
            src_blacklist: rec.get_u64(i("SRC_BLACKLIST")).unwrap_or(0),
            dst_blacklist: rec.get_u64(i("DST_BLACKLIST")).unwrap_or(0),
            packets: rec.get_u32(i("PACKETS")).unwrap_or(0),
            bytes: rec.get_u64(i("BYTES")).unwrap_or(0),
            flows: rec.get_u32(i("COUNT")).unwrap_or(1),
            time_first: rec.get_time(i("TIME_FIRST")).unwrap_or_default(),
            time_last: rec.get_time(i("TIME_LAST")).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    bytes: u64,
    flows: u64,
    packets: u64,
}

impl Sent {
    fn add(&mut self, m: &Marked) {
        self.bytes = self.bytes.saturating_add(m.bytes);
        self.flows = self.flows.saturating_add(u64::from(m.flows));
        self.packets = self.packets.saturating_add(u64::from(m.packets));
    }
}

#[derive(Debug)]
struct Event {
    source: UrIp,
    protocol: u8,
    bit: u64,
    targets: BTreeSet<UrIp>,
    ports: BTreeSet<u16>,
    first: UrTime,
    last: UrTime,
    src_sent: Sent,
    tgt_sent: Sent,
}

/// The aggregation table of one window.
#[derive(Debug)]
pub struct Aggregator {
    window_minutes: f64,
    events: HashMap<(UrIp, u8, u64), Event>,
    order: Vec<(UrIp, u8, u64)>,
}

impl Aggregator {
    /// `window_minutes` goes into the events (`agg_win_minutes`).
    pub fn new(window_minutes: f64) -> Aggregator {
        Aggregator {
            window_minutes,
            events: HashMap::new(),
            order: Vec::new(),
        }
    }

    pub fn add(&mut self, m: &Marked) {
        // The source side wins when both are listed, as in the filter.
        let (listed_src, bitmap) = if m.src_blacklist != 0 {
            (true, m.src_blacklist)
        } else {
            (false, m.dst_blacklist)
        };
        let (listed, peer, port) = if listed_src {
            (m.src_ip, m.dst_ip, m.src_port)
        } else {
            (m.dst_ip, m.src_ip, Some(m.dst_port))
        };
        let mut rest = bitmap;
        while rest != 0 {
            let bit = rest & rest.wrapping_neg();
            rest &= rest - 1;
            let key = (listed, m.protocol, bit);
            let e = self.events.entry(key).or_insert_with(|| {
                self.order.push(key);
                Event {
                    source: listed,
                    protocol: m.protocol,
                    bit,
                    targets: BTreeSet::new(),
                    ports: BTreeSet::new(),
                    first: m.time_first,
                    last: m.time_last,
                    src_sent: Sent::default(),
                    tgt_sent: Sent::default(),
                }
            });
            e.targets.insert(peer);
            if let Some(p) = port.filter(|&p| p <= MAX_SERVICE_PORT) {
                e.ports.insert(p);
            }
            if listed_src {
                e.src_sent.add(m);
            } else {
                e.tgt_sent.add(m);
            }
            e.first = e.first.min(m.time_first);
            e.last = e.last.max(m.time_last);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// All events of the window as JSON messages (in order of first flow),
    /// and an empty table.
    pub fn flush(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        for key in self.order.drain(..) {
            let Some(e) = self.events.remove(&key) else {
                continue;
            };
            let targets: Vec<String> = e.targets.iter().map(UrIp::to_string).collect();
            for chunk in targets.chunks(MAX_TARGETS) {
                out.push(json!({
                    "type": "ip",
                    "ts_first": e.first.as_secs_f64(),
                    "ts_last": e.last.as_secs_f64(),
                    "protocol": e.protocol,
                    "source_ports": e.ports.iter().collect::<Vec<_>>(),
                    "source": e.source.to_string(),
                    "targets": chunk,
                    "src_sent_bytes": e.src_sent.bytes,
                    "src_sent_flows": e.src_sent.flows,
                    "src_sent_packets": e.src_sent.packets,
                    "tgt_sent_bytes": e.tgt_sent.bytes,
                    "tgt_sent_flows": e.tgt_sent.flows,
                    "tgt_sent_packets": e.tgt_sent.packets,
                    "blacklist_id": e.bit,
                    "agg_win_minutes": self.window_minutes,
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
        self.add(&Marked::from_record(rec));
    }
    fn end_window(&mut self, out: &mut Vec<Vec<u8>>) -> Result<(), DetectError> {
        out.extend(self.flush().iter().map(|ev| ev.to_string().into_bytes()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(src: &str, dst: &str, sbl: u64, dbl: u64, t: u32) -> Marked {
        Marked {
            src_ip: UrIp::parse(src).unwrap(),
            dst_ip: UrIp::parse(dst).unwrap(),
            src_port: Some(50000),
            dst_port: 443,
            protocol: 6,
            src_blacklist: sbl,
            dst_blacklist: dbl,
            packets: 10,
            bytes: 1000,
            flows: 1,
            time_first: UrTime::from_secs_millis(t, 0),
            time_last: UrTime::from_secs_millis(t + 10, 500),
        }
    }

    #[test]
    fn clients_of_a_listed_server_in_one_event() {
        let mut a = Aggregator::new(5.0);
        a.add(&marked("10.0.0.1", "198.51.100.7", 0, 2, 100));
        a.add(&marked("10.0.0.2", "198.51.100.7", 0, 2, 50));
        a.add(&marked("10.0.0.1", "198.51.100.7", 0, 2, 200));
        // The server answering: the listed address is the source.
        let mut answer = marked("198.51.100.7", "10.0.0.1", 2, 0, 120);
        answer.src_port = Some(443);
        answer.packets = 7;
        answer.bytes = 7000;
        answer.flows = 3;
        a.add(&answer);
        let out = a.flush();
        assert!(a.is_empty());
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0],
            json!({"type": "ip", "ts_first": 50.0, "ts_last": 210.5, "protocol": 6,
                "source_ports": [443], "source": "198.51.100.7",
                "targets": ["10.0.0.1", "10.0.0.2"],
                "src_sent_bytes": 7000, "src_sent_flows": 3, "src_sent_packets": 7,
                "tgt_sent_bytes": 3000, "tgt_sent_flows": 3, "tgt_sent_packets": 30,
                "blacklist_id": 2, "agg_win_minutes": 5.0})
        );
    }

    #[test]
    fn one_event_per_list_protocol_and_address() {
        let mut a = Aggregator::new(10.0);
        // On lists 1 and 3 (bits 0 and 2); the destination's list is ignored
        // when the source is listed.
        let mut tcp = marked("192.0.2.9", "10.0.0.5", 0b101, 0b10, 0);
        tcp.src_port = Some(8080);
        a.add(&tcp);
        let mut udp = marked("192.0.2.9", "10.0.0.5", 0b1, 0, 0);
        udp.protocol = 17;
        udp.src_port = Some(60000); // ephemeral: not reported
        a.add(&udp);
        let out = a.flush();
        let keys: Vec<(u64, u64, &str)> = out
            .iter()
            .map(|e| {
                (
                    e["blacklist_id"].as_u64().unwrap(),
                    e["protocol"].as_u64().unwrap(),
                    e["source"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                (1, 6, "192.0.2.9"),
                (4, 6, "192.0.2.9"),
                (1, 17, "192.0.2.9")
            ]
        );
        assert_eq!(out[0]["source_ports"], json!([8080]));
        assert_eq!(out[2]["source_ports"], json!([]));
        assert_eq!(out[0]["src_sent_flows"], 1);
        assert_eq!(out[0]["tgt_sent_flows"], 0);
    }

    #[test]
    fn large_events_are_split() {
        let mut a = Aggregator::new(5.0);
        for i in 0..2500u32 {
            let client = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            a.add(&marked(&client, "198.51.100.7", 0, 1, 0));
        }
        let out = a.flush();
        let sizes: Vec<usize> = out
            .iter()
            .map(|e| e["targets"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [1000, 1000, 500]);
        assert_eq!(out[0]["targets"][0], "10.0.0.0");
        assert_eq!(out[2]["targets"][499], "10.0.9.195");
        assert!(out.iter().all(|e| e["tgt_sent_flows"] == 2500));
    }

    #[test]
    fn reads_nemea_agg_records() {
        use unirec::{RecordBuilder, Template};
        // NEMEA's agg output: COUNT flows, no SRC_PORT.
        let t = Template::parse(&format!("{INPUT_SPEC},uint32 COUNT")).unwrap();
        let f = |n| t.find(n).unwrap();
        let mut b = RecordBuilder::new(&t);
        b.set_ip(f("SRC_IP"), UrIp::parse("10.0.0.1").unwrap())
            .unwrap();
        b.set_ip(f("DST_IP"), UrIp::parse("198.51.100.7").unwrap())
            .unwrap();
        b.set_u64(f("DST_BLACKLIST"), 2).unwrap();
        b.set_u32(f("COUNT"), 12).unwrap();
        b.set_u32(f("PACKETS"), 40).unwrap();
        b.set_u16(f("DST_PORT"), 80).unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let m = Marked::from_record(&RecordRef::new_checked(&t, &buf).unwrap());
        assert_eq!((m.flows, m.packets, m.src_port), (12, 40, None));
        let mut a = Aggregator::new(5.0);
        a.add(&m);
        let out = a.flush();
        assert_eq!(out[0]["tgt_sent_flows"], 12);
        assert_eq!(out[0]["source_ports"], json!([80]));
    }
}
