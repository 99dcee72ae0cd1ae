//! vportscan_detector — vertical TCP SYN scans: one source probing many
//! ports of one destination.
//!
//! A flow counts when it has at most 4 packets, is TCP and its TCP_FLAGS are
//! exactly SYN. Per (destination, source) the detector keeps the set of
//! destination ports; a port seen again is removed (a repeated connection
//! attempt is benign). When the set reaches the threshold (50) an alert is
//! emitted and the pair is forgotten. Pairs not touched for 300 s are
//! dropped, checked every 60 s.
//!
//! Differences from the C module: time is the flows' own time (the largest
//! TIME_LAST seen), not the wall clock, so replays of captures behave as live
//! traffic did; IPv6 pairs are tracked too (C packs IPv4 addresses into its
//! key and mixes IPv6 up).
#![forbid(unsafe_code)]

use detector_common::{field, tcp, FastMap, Flow, FlowClock, FlowDetector};
use unirec::{RecordBuilder, RecordError, UrIp, UrTime};

/// The fields read from each flow.
pub const INPUT_SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,\
uint32 PACKETS,uint8 PROTOCOL,uint8 TCP_FLAGS,time TIME_FIRST,time TIME_LAST";

/// The alert template of the C detector.
pub const ALERT_SPEC: &str = "uint8 EVENT_TYPE,time TIME_FIRST,time TIME_LAST,ipaddr SRC_IP,\
ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,uint32 PORT_CNT";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Distinct ports that make a scan (C: 50).
    pub threshold: u32,
    /// Flows with more packets are ignored (C: 4).
    pub max_packets: u32,
    /// A pair idle this long (s) is forgotten (C: 300).
    pub idle: u32,
    /// How often (s) idle pairs are looked for (C: 60).
    pub prune_interval: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threshold: 50,
            max_packets: 4,
            idle: 300,
            prune_interval: 60,
        }
    }
}

/// One alert (EVENT_TYPE is always 1, PROTOCOL 6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub time_first: UrTime,
    pub time_last: UrTime,
    pub src_ip: UrIp,
    pub dst_ip: UrIp,
    /// Ports of the flow that completed the scan.
    pub src_port: u16,
    pub dst_port: u16,
    pub port_cnt: u32,
}

#[derive(Debug)]
struct Entry {
    ports: Vec<u16>,
    first: UrTime,
    last: UrTime,
    modified: u32,
}

/// The detector state.
#[derive(Debug)]
pub struct Detector {
    cfg: Config,
    table: FastMap<(UrIp, UrIp), Entry>,
    clock: FlowClock,
}

impl Detector {
    pub fn new(cfg: Config) -> Detector {
        Detector {
            cfg,
            table: FastMap::default(),
            clock: FlowClock::new(cfg.prune_interval),
        }
    }

    /// Pairs currently tracked.
    pub fn tracked(&self) -> usize {
        self.table.len()
    }

    fn prune(&mut self) {
        let (now, idle) = (self.clock.now(), self.cfg.idle);
        self.table
            .retain(|_, e| now.saturating_sub(e.modified) <= idle);
    }
}

impl FlowDetector for Detector {
    type Alert = Alert;

    fn input_spec(&self) -> &'static str {
        INPUT_SPEC
    }

    fn output_spec(&self) -> &'static str {
        ALERT_SPEC
    }

    fn flow(&mut self, f: &Flow, out: &mut Vec<Alert>) {
        if self.clock.advance(f.time_last.secs()) {
            self.prune();
        }
        if f.packets > self.cfg.max_packets || f.protocol != 6 || f.tcp_flags != tcp::SYN {
            return;
        }
        let now = self.clock.now();
        let e = self
            .table
            .entry((f.dst_ip, f.src_ip))
            .or_insert_with(|| Entry {
                ports: Vec::new(),
                first: f.time_first,
                last: f.time_last,
                modified: now,
            });
        if e.ports.is_empty() {
            e.first = f.time_first;
            e.last = f.time_last;
        }
        e.first = e.first.min(f.time_first);
        e.last = e.last.max(f.time_last);
        e.modified = now;
        if let Some(i) = e.ports.iter().position(|&p| p == f.dst_port) {
            e.ports.swap_remove(i);
            return;
        }
        e.ports.push(f.dst_port);
        if e.ports.len() as u32 >= self.cfg.threshold {
            out.push(Alert {
                time_first: e.first,
                time_last: e.last,
                src_ip: f.src_ip,
                dst_ip: f.dst_ip,
                src_port: f.src_port,
                dst_port: f.dst_port,
                port_cnt: e.ports.len() as u32,
            });
            self.table.remove(&(f.dst_ip, f.src_ip));
        }
    }

    /// Incomplete scans are not reported (as in C).
    fn finish(&mut self, _out: &mut Vec<Alert>) {}

    fn encode(&self, a: &Alert, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        let t = b.template();
        let idx = |n: &str| field(t, n);
        b.set_u8(idx("EVENT_TYPE"), 1)?;
        b.set_time(idx("TIME_FIRST"), a.time_first)?;
        b.set_time(idx("TIME_LAST"), a.time_last)?;
        b.set_ip(idx("SRC_IP"), a.src_ip)?;
        b.set_ip(idx("DST_IP"), a.dst_ip)?;
        b.set_u16(idx("SRC_PORT"), a.src_port)?;
        b.set_u16(idx("DST_PORT"), a.dst_port)?;
        b.set_u8(idx("PROTOCOL"), 6)?;
        b.set_u32(idx("PORT_CNT"), a.port_cnt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn(src: &str, dst: &str, dport: u16, t: u32) -> Flow {
        Flow {
            src_ip: UrIp::parse(src).unwrap(),
            dst_ip: UrIp::parse(dst).unwrap(),
            src_port: 40000,
            dst_port: dport,
            protocol: 6,
            tcp_flags: tcp::SYN,
            packets: 1,
            bytes: 44,
            time_first: UrTime::from_secs_millis(t, 0),
            time_last: UrTime::from_secs_millis(t, 500),
            server_rule: 0,
        }
    }

    #[test]
    fn below_threshold_is_silent() {
        let mut d = Detector::new(Config::default());
        let out = d.feed((0..49).map(|p| syn("192.0.2.7", "198.51.100.20", 1000 + p, 1000)));
        assert!(out.is_empty());
        assert_eq!(d.tracked(), 1);
    }

    #[test]
    fn fifty_ports_alert_once_with_the_expected_fields() {
        let mut d = Detector::new(Config::default());
        let out = d.feed(
            (0..120).map(|p| syn("192.0.2.7", "198.51.100.20", 1000 + p, 1000 + u32::from(p))),
        );
        // 120 ports: alerts after the 50th and the 100th.
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0],
            Alert {
                time_first: UrTime::from_secs_millis(1000, 0),
                time_last: UrTime::from_secs_millis(1049, 500),
                src_ip: UrIp::parse("192.0.2.7").unwrap(),
                dst_ip: UrIp::parse("198.51.100.20").unwrap(),
                src_port: 40000,
                dst_port: 1049,
                port_cnt: 50,
            }
        );
        assert_eq!(out[1].time_first.secs(), 1050);
        assert_eq!(d.tracked(), 1);
    }

    #[test]
    fn repeated_ports_and_other_flows_do_not_count() {
        let mut d = Detector::new(Config::default());
        let mut flows = Vec::new();
        for p in 0..60 {
            // each port twice: toggled in and out
            flows.push(syn("192.0.2.7", "198.51.100.20", 1000 + p, 1000));
            flows.push(syn("192.0.2.7", "198.51.100.20", 1000 + p, 1000));
            let mut ack = syn("192.0.2.8", "198.51.100.20", 2000 + p, 1000);
            ack.tcp_flags = tcp::SYN | tcp::ACK;
            flows.push(ack);
            let mut big = syn("192.0.2.9", "198.51.100.20", 2000 + p, 1000);
            big.packets = 5;
            flows.push(big);
            let mut udp = syn("192.0.2.10", "198.51.100.20", 2000 + p, 1000);
            udp.protocol = 17;
            flows.push(udp);
        }
        assert!(d.feed(flows).is_empty());
    }

    #[test]
    fn idle_pairs_expire_on_flow_time() {
        let mut d = Detector::new(Config::default());
        d.feed((0..40).map(|p| syn("192.0.2.7", "198.51.100.20", 1000 + p, 1000)));
        // 400 s later (another pair's flows move the clock): the first pair is gone.
        d.feed([syn("192.0.2.1", "198.51.100.1", 1, 1400)]);
        assert_eq!(d.tracked(), 1);
        let out = d.feed((0..40).map(|p| syn("192.0.2.7", "198.51.100.20", 2000 + p, 1401)));
        assert!(out.is_empty());
    }

    #[test]
    fn ipv6_pairs() {
        let mut d = Detector::new(Config::default());
        let out = d.feed((0..50).map(|p| syn("2001:db8::7", "2001:db8::20", 1000 + p, 1000)));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].src_ip.to_string(), "2001:db8::7");
    }

    #[test]
    fn encodes_the_c_template() {
        let t = unirec::Template::parse(ALERT_SPEC).unwrap();
        let d = Detector::new(Config::default());
        let mut b = RecordBuilder::new(&t);
        let a = Alert {
            time_first: UrTime::from_secs_millis(1, 0),
            time_last: UrTime::from_secs_millis(2, 0),
            src_ip: UrIp::parse("192.0.2.7").unwrap(),
            dst_ip: UrIp::parse("198.51.100.20").unwrap(),
            src_port: 5,
            dst_port: 6,
            port_cnt: 50,
        };
        d.encode(&a, &mut b).unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let r = unirec::RecordRef::new_checked(&t, &buf).unwrap();
        assert_eq!(r.get_u32(t.find("PORT_CNT").unwrap()), Some(50));
        assert_eq!(r.get_u8(t.find("EVENT_TYPE").unwrap()), Some(1));
        assert_eq!(r.get_u8(t.find("PROTOCOL").unwrap()), Some(6));
    }
}
