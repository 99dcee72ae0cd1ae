//! haddrscan_detector — horizontal TCP SYN scans: one source probing one
//! port on many addresses.
//!
//! A flow counts when it is a single TCP packet with TCP_FLAGS exactly SYN.
//! Per (source, destination port) the detector collects distinct destination
//! addresses; when they reach the threshold (50) an alert names the count,
//! the threshold and the first four targets, and the collection starts
//! afresh. Entries idle for 300 s are dropped (checked every 60 s); an entry
//! that alerted before sends a trailing alert with what it collected since.
//!
//! Differences from C: time is the flows' own TIME_LAST (C: wall clock);
//! the address counter is not 8-bit, so thresholds above 255 work; trailing
//! alerts with no new addresses are not sent ([`Config::empty_trailing`]
//! restores them); IPv6 is handled.
#![forbid(unsafe_code)]

use detector_common::{field, tcp, FastMap, FastSet, Flow, FlowClock, FlowDetector};
use unirec::{RecordBuilder, RecordError, UrIp, UrTime};

/// The fields read from each flow.
pub const INPUT_SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 DST_PORT,uint32 PACKETS,\
uint8 PROTOCOL,uint8 TCP_FLAGS,time TIME_FIRST,time TIME_LAST";

/// The alert template of the C detector.
pub const ALERT_SPEC: &str = "uint8 EVENT_TYPE,time TIME_FIRST,time TIME_LAST,ipaddr SRC_IP,\
uint16 DST_PORT,uint8 PROTOCOL,uint32 ADDR_CNT,uint32 ADDR_THRSD,ipaddr DST_IP0,ipaddr DST_IP1,\
ipaddr DST_IP2,ipaddr DST_IP3";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// -n: distinct addresses that make a scan.
    pub threshold: u32,
    /// -d: seconds after which an idle entry is dropped.
    pub idle: u32,
    /// -p: seconds between prunings.
    pub prune_interval: u32,
    /// Send trailing alerts even when nothing new was collected (C).
    pub empty_trailing: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threshold: 50,
            idle: 300,
            prune_interval: 60,
            empty_trailing: false,
        }
    }
}

/// One alert (EVENT_TYPE 1, PROTOCOL 6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub time_first: UrTime,
    pub time_last: UrTime,
    pub src_ip: UrIp,
    pub dst_port: u16,
    pub addr_cnt: u32,
    pub addr_thrsd: u32,
    /// Up to four targets.
    pub dst_ips: Vec<UrIp>,
}

#[derive(Debug, Default)]
struct Entry {
    seen: FastSet<UrIp>,
    first4: Vec<UrIp>,
    first: UrTime,
    last: UrTime,
    modified: u32,
    alerted: bool,
}

impl Entry {
    fn alert(&mut self, key: (UrIp, u16), threshold: u32) -> Alert {
        let a = Alert {
            time_first: self.first,
            time_last: self.last,
            src_ip: key.0,
            dst_port: key.1,
            addr_cnt: self.seen.len() as u32,
            addr_thrsd: threshold,
            dst_ips: self.first4.clone(),
        };
        self.seen.clear();
        self.first4.clear();
        self.alerted = true;
        a
    }
}

/// The detector state.
#[derive(Debug)]
pub struct Detector {
    cfg: Config,
    table: FastMap<(UrIp, u16), Entry>,
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

    pub fn tracked(&self) -> usize {
        self.table.len()
    }

    fn prune(&mut self, out: &mut Vec<Alert>) {
        let (now, cfg) = (self.clock.now(), self.cfg);
        let mut keys: Vec<(UrIp, u16)> = self
            .table
            .iter()
            .filter(|(_, e)| now.saturating_sub(e.modified) > cfg.idle)
            .map(|(k, _)| *k)
            .collect();
        keys.sort_unstable();
        for k in keys {
            if let Some(mut e) = self.table.remove(&k) {
                if e.alerted && (cfg.empty_trailing || !e.seen.is_empty()) {
                    out.push(e.alert(k, cfg.threshold));
                }
            }
        }
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
            self.prune(out);
        }
        if f.packets != 1 || f.protocol != 6 || f.tcp_flags != tcp::SYN {
            return;
        }
        let key = (f.src_ip, f.dst_port);
        let now = self.clock.now();
        let e = self.table.entry(key).or_default();
        e.modified = now;
        if e.seen.is_empty() {
            e.first = f.time_first;
            e.last = f.time_last;
        }
        e.first = e.first.min(f.time_first);
        e.last = e.last.max(f.time_last);
        if !e.seen.insert(f.dst_ip) {
            return;
        }
        if e.first4.len() < 4 {
            e.first4.push(f.dst_ip);
        }
        if e.seen.len() as u32 >= self.cfg.threshold {
            out.push(e.alert(key, self.cfg.threshold));
        }
    }

    /// End of input: trailing alerts of the entries that alerted.
    fn finish(&mut self, out: &mut Vec<Alert>) {
        self.clock.end();
        self.cfg.idle = 0;
        self.prune(out);
    }

    fn encode(&self, a: &Alert, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        let t = b.template();
        let i = |n: &str| field(t, n);
        b.set_u8(i("EVENT_TYPE"), 1)?;
        b.set_time(i("TIME_FIRST"), a.time_first)?;
        b.set_time(i("TIME_LAST"), a.time_last)?;
        b.set_ip(i("SRC_IP"), a.src_ip)?;
        b.set_u16(i("DST_PORT"), a.dst_port)?;
        b.set_u8(i("PROTOCOL"), 6)?;
        b.set_u32(i("ADDR_CNT"), a.addr_cnt)?;
        b.set_u32(i("ADDR_THRSD"), a.addr_thrsd)?;
        let zero = UrIp::from_v4(std::net::Ipv4Addr::UNSPECIFIED);
        for n in 0..4 {
            let ip = a.dst_ips.get(n).copied().unwrap_or(zero);
            b.set_ip(i(&format!("DST_IP{n}")), ip)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn(src: &str, dst: String, port: u16, t: u32) -> Flow {
        Flow {
            src_ip: UrIp::parse(src).unwrap(),
            dst_ip: UrIp::parse(&dst).unwrap(),
            src_port: 40000,
            dst_port: port,
            protocol: 6,
            tcp_flags: tcp::SYN,
            packets: 1,
            bytes: 44,
            time_first: UrTime::from_secs_millis(t, 0),
            time_last: UrTime::from_secs_millis(t, 0),
            server_rule: 0,
        }
    }

    #[test]
    fn below_threshold_is_silent() {
        let mut d = Detector::new(Config::default());
        let mut flows: Vec<Flow> = (0..49)
            .map(|i| syn("192.0.2.7", format!("10.0.0.{i}"), 445, 1000))
            .collect();
        // repeats, other ports and non-SYN flows do not count
        flows.extend((0..49).map(|i| syn("192.0.2.7", format!("10.0.0.{i}"), 445, 1001)));
        flows.extend((50..60).map(|i| {
            let mut f = syn("192.0.2.7", format!("10.0.0.{i}"), 445, 1002);
            f.packets = 2;
            f
        }));
        assert!(d.feed(flows).is_empty());
        let mut out = Vec::new();
        d.finish(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn fifty_addresses_alert_with_the_expected_fields() {
        let mut d = Detector::new(Config::default());
        let out = d.feed((0..60).map(|i| syn("192.0.2.7", format!("10.0.0.{i}"), 445, 1000 + i)));
        assert_eq!(out.len(), 1);
        let ip = |s: &str| UrIp::parse(s).unwrap();
        assert_eq!(
            out[0],
            Alert {
                time_first: UrTime::from_secs_millis(1000, 0),
                time_last: UrTime::from_secs_millis(1049, 0),
                src_ip: ip("192.0.2.7"),
                dst_port: 445,
                addr_cnt: 50,
                addr_thrsd: 50,
                dst_ips: vec![
                    ip("10.0.0.0"),
                    ip("10.0.0.1"),
                    ip("10.0.0.2"),
                    ip("10.0.0.3")
                ],
            }
        );
        // The 10 addresses after the alert come in a trailing alert.
        let mut out = Vec::new();
        d.finish(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].addr_cnt, 10);
        assert_eq!(out[0].dst_ips[0], ip("10.0.0.50"));
    }

    #[test]
    fn large_thresholds_and_idle_pruning() {
        let cfg = Config {
            threshold: 300,
            ..Config::default()
        };
        let mut d = Detector::new(cfg);
        let out = d.feed((0..300u32).map(|i| {
            syn(
                "192.0.2.7",
                format!("10.0.{}.{}", i / 256, i % 256),
                22,
                1000,
            )
        }));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].addr_cnt, 300);
        // Idle for > 300 s: dropped; no empty trailing alert by default.
        let out = d.feed([syn("192.0.2.8", "10.9.9.9".into(), 1, 1400)]);
        assert!(out.is_empty());
        assert_eq!(d.tracked(), 1);
    }
}
