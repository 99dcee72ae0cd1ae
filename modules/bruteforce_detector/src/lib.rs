//! bruteforce_detector — dictionary / brute-force login attacks on SSH (22),
//! TELNET (23) and RDP (3389), after NEMEA's brute_force_detector.
//!
//! Each TCP flow to (incoming) or from (outgoing) a service port is judged
//! against the service's signature of a failed login (TCP flags, packet and
//! byte ranges). Per attacker and service the detector keeps the last
//! LIST_SIZE flows of each direction; a host is reported when at least
//! LIST_THRESHOLD of them match (while a list holds at most 50 flows) or 90 %
//! of the larger list matches. A reported host is reported again every
//! REPORT_TIMEOUT while it keeps attacking, and a final time when the attack
//! stops. Scan-like flows (single SYNs, RSTs) are ignored.
//!
//! Time is the flows' own TIME_LAST, as in C. Difference from C: the first
//! report carries the real number of matched flows as EVENT_SCALE (C sends
//! the configured threshold); [`Config::first_scale_is_threshold`] restores
//! the C value.
#![forbid(unsafe_code)]

pub mod config;

pub use config::{Config, ConfigError, Range, ServiceConfig, Whitelist};

use detector_common::{field, tcp, FastMap, Flow, FlowDetector};
use std::collections::VecDeque;
use unirec::{RecordBuilder, RecordError, UrIp, UrTime};

/// The fields read from each flow.
pub const INPUT_SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,\
uint8 PROTOCOL,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST,uint8 TCP_FLAGS";

/// The alert template of the C detector.
pub const ALERT_SPEC: &str = "time DETECTION_TIME,uint8 WARDEN_TYPE,ipaddr SRC_IP,uint8 PROTOCOL,\
uint16 DST_PORT,uint32 EVENT_SCALE,string NOTE";

/// Lists up to this size use LIST_THRESHOLD, larger ones the 90 % rule.
const BOTTOM_SIZE: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Ssh = 0,
    Rdp = 1,
    Telnet = 2,
}

impl Service {
    pub fn port(self) -> u16 {
        match self {
            Service::Ssh => 22,
            Service::Rdp => 3389,
            Service::Telnet => 23,
        }
    }
    fn from_port(p: u16) -> Option<Service> {
        match p {
            22 => Some(Service::Ssh),
            3389 => Some(Service::Rdp),
            23 => Some(Service::Telnet),
            _ => None,
        }
    }
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub detection_time: UrTime,
    pub src_ip: UrIp,
    pub dst_port: u16,
    pub event_scale: u32,
    /// `I:` victims of matched incoming flows, each followed by `,`, then
    /// `O:` and the same for outgoing flows.
    pub note: String,
}

#[derive(Debug, Clone, Copy)]
struct Rec {
    victim: UrIp,
    time: u32,
    matched: bool,
}

#[derive(Debug, Default)]
struct List {
    recs: VecDeque<Rec>,
    matched: u32,
    matched_since: u32,
    total_since: u32,
}

impl List {
    fn add(&mut self, r: Rec, cap: usize) {
        if self.recs.len() >= cap {
            if let Some(old) = self.recs.pop_front() {
                self.matched -= u32::from(old.matched);
            }
        }
        self.matched += u32::from(r.matched);
        self.matched_since += u32::from(r.matched);
        self.total_since += 1;
        self.recs.push_back(r);
    }
    fn expire(&mut self, before: u32) {
        while let Some(r) = self.recs.front() {
            if r.time >= before {
                break;
            }
            self.matched -= u32::from(r.matched);
            self.recs.pop_front();
        }
    }
    fn clear(&mut self) {
        *self = List::default();
    }
    fn reset_since(&mut self) {
        self.matched_since = 0;
        self.total_since = 0;
    }
    fn victims(&self, out: &mut String) {
        let mut v: Vec<UrIp> = self
            .recs
            .iter()
            .filter(|r| r.matched)
            .map(|r| r.victim)
            .collect();
        v.sort_unstable();
        v.dedup();
        for ip in v {
            out.push_str(&ip.to_string());
            out.push(',');
        }
    }
}

#[derive(Debug, Default)]
struct Host {
    inc: List,
    out: List,
    reported: bool,
    last_report: u32,
    last_record: u32,
}

impl Host {
    fn note(&self) -> String {
        let mut s = String::from("I:");
        self.inc.victims(&mut s);
        s.push_str("O:");
        self.out.victims(&mut s);
        s
    }
    fn reset(&mut self) {
        self.inc.clear();
        self.out.clear();
        self.reported = false;
    }
}

/// Per-server profile of TELNET login flows (outgoing direction).
#[derive(Debug, Default)]
struct TelnetProfile {
    samples: VecDeque<(u32, u64)>,
    since_profile: u32,
    max: Option<(u32, u64)>,
}

impl TelnetProfile {
    fn add(&mut self, packets: u32, bytes: u64) {
        self.samples.push_back((packets, bytes));
        if self.samples.len() > 15 {
            self.samples.pop_front();
        }
        self.since_profile += 1;
        if self.samples.len() == 15 && (self.max.is_none() || self.since_profile >= 10) {
            let mut p: Vec<u32> = self.samples.iter().map(|s| s.0).collect();
            let mut b: Vec<u64> = self.samples.iter().map(|s| s.1).collect();
            p.sort_unstable();
            b.sort_unstable();
            self.max = Some((p[7] + 5, b[7] + 500));
            self.since_profile = 0;
        }
    }
}

/// The detector state.
#[derive(Debug)]
pub struct Detector {
    cfg: Config,
    enabled: [bool; 3],
    whitelist: Whitelist,
    hosts: FastMap<(Service, UrIp), Host>,
    telnet: FastMap<UrIp, TelnetProfile>,
    now: u32,
    next_report_check: u32,
    next_delete_check: u32,
}

const SAP: u8 = tcp::SYN | tcp::ACK | tcp::PSH;

fn has(flags: u8, want: u8) -> bool {
    flags & want == want
}

/// Flows that look like scanning rather than a login attempt.
fn scan_like(s: Service, packets: u32, flags: u8) -> bool {
    use tcp::*;
    matches!(
        (packets, flags),
        (1, SYN) | (2, SYN) | (3, SYN) | (1, 0x12) | (1, 0x14)
    ) || (packets == 2 && flags == SYN | RST)
        || (s == Service::Ssh && ((packets == 1 && flags == ACK) || (packets == 4 && flags == SYN)))
}

impl Detector {
    /// `services`: which of SSH, RDP, TELNET to watch (at least one).
    pub fn new(cfg: Config, services: [bool; 3], whitelist: Whitelist) -> Detector {
        Detector {
            cfg,
            enabled: services,
            whitelist,
            hosts: FastMap::default(),
            telnet: FastMap::default(),
            now: 0,
            next_report_check: 0,
            next_delete_check: 0,
        }
    }

    /// Replaces the whitelist (reload).
    pub fn set_whitelist(&mut self, w: Whitelist) {
        self.whitelist = w;
    }

    /// Replaces the configuration (reload); tracked hosts are kept.
    pub fn set_config(&mut self, cfg: Config) {
        self.cfg = cfg;
    }

    /// Hosts currently tracked.
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    fn signature(&mut self, s: Service, incoming: bool, f: &Flow) -> bool {
        let (p, b, fl) = (f.packets, f.bytes, f.tcp_flags);
        let sc = self.cfg.service(s);
        match (s, incoming) {
            (Service::Ssh, true) | (Service::Telnet, true) => {
                has(fl, SAP) && sc.incoming.contains(p, b)
            }
            (Service::Ssh, false) => has(fl, SAP) && sc.outgoing.is_some_and(|r| r.contains(p, b)),
            (Service::Rdp, true) => {
                (has(fl, SAP | tcp::RST) && (7..=11).contains(&p) && (1500..=2000).contains(&b))
                    || (has(fl, SAP) && p == 3 && (100..=200).contains(&b))
                    || (has(fl, SAP) && sc.incoming.contains(p, b))
            }
            (Service::Rdp, false) => {
                has(fl, SAP)
                    && ((p == 7 && (1700..=2200).contains(&b))
                        || (p == 2 && (81..=119).contains(&b))
                        || sc.outgoing.is_some_and(|r| r.contains(p, b)))
            }
            (Service::Telnet, false) => {
                if !has(fl, SAP | tcp::FIN) || p < 6 {
                    return false;
                }
                let prof = self.telnet.entry(f.src_ip).or_default();
                let ok = prof.max.is_some_and(|(mp, mb)| p <= mp && b <= mb);
                prof.add(p, b);
                ok
            }
        }
    }

    fn report(&self, key: &(Service, UrIp), host: &Host, scale: u32, t: UrTime) -> Alert {
        Alert {
            detection_time: t,
            src_ip: key.1,
            dst_port: key.0.port(),
            event_scale: scale,
            note: host.note(),
        }
    }

    fn sweeps(&mut self, out: &mut Vec<Alert>) {
        let now = self.now;
        let t = UrTime::from_secs_millis(now, 0);
        if now >= self.next_report_check {
            self.next_report_check = now + self.cfg.check_for_report_timeout;
            let min_ev = self.cfg.attack_min_events_to_report;
            let mut reports = Vec::new();
            for (k, h) in self.hosts.iter_mut() {
                let sc = self.cfg.services[k.0 as usize];
                if h.reported && h.last_report + sc.attack_timeout <= now {
                    let scale = h.inc.matched_since.max(h.out.matched_since);
                    if scale >= min_ev {
                        reports.push((*k, scale));
                    }
                    if scale < min_ev {
                        h.reset();
                    }
                }
            }
            for (k, scale) in reports {
                if let Some(h) = self.hosts.get(&k) {
                    out.push(self.report(&k, h, scale, t));
                }
                if let Some(h) = self.hosts.get_mut(&k) {
                    h.reset();
                }
            }
        }
        if now >= self.next_delete_check {
            self.next_delete_check = now + self.cfg.check_for_delete_timeout;
            let cfg = &self.cfg;
            self.hosts.retain(|k, h| {
                let sc = cfg.services[k.0 as usize];
                let before = now.saturating_sub(sc.record_timeout);
                h.inc.expire(before);
                h.out.expire(before);
                h.reported || h.last_record + sc.host_timeout > now
            });
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
        // Every flow moves the clock, so sweeps run on quiet services too.
        let t = f.time_last.secs();
        if t > self.now {
            self.now = t;
            if self.next_report_check == 0 {
                self.next_report_check = t + self.cfg.check_for_report_timeout;
                self.next_delete_check = t + self.cfg.check_for_delete_timeout;
            }
            self.sweeps(out);
        }
        if f.protocol != 6 {
            return;
        }
        let (svc, incoming) = match (
            Service::from_port(f.dst_port),
            Service::from_port(f.src_port),
        ) {
            (Some(s), _) if self.enabled[s as usize] => (s, true),
            (_, Some(s)) if self.enabled[s as usize] => (s, false),
            _ => return,
        };
        let (attacker, a_port, victim, v_port) = if incoming {
            (f.src_ip, f.src_port, f.dst_ip, f.dst_port)
        } else {
            (f.dst_ip, f.dst_port, f.src_ip, f.src_port)
        };
        let mut matched = self.signature(svc, incoming, f);
        // TELNET answers are judged by the server profile, without whitelist.
        let whitelisted_kind = incoming || svc != Service::Telnet;
        if matched && whitelisted_kind && !self.whitelist.rules.is_empty() {
            matched = !self
                .whitelist
                .matches((attacker.to_std(), a_port), (victim.to_std(), v_port));
        }
        if scan_like(svc, f.packets, f.tcp_flags) {
            return;
        }
        let sc = *self.cfg.service(svc);
        let key = (svc, attacker);
        let h = self.hosts.entry(key).or_default();
        h.last_record = t;
        let rec = Rec {
            victim,
            time: t,
            matched,
        };
        if incoming {
            h.inc.add(rec, sc.list_size);
        } else {
            h.out.add(rec, sc.list_size);
        }
        // checkForAttack
        let min_ev = self.cfg.attack_min_events_to_report;
        if !h.reported {
            let (ni, no) = (h.inc.recs.len(), h.out.recs.len());
            let new_attack = if ni <= BOTTOM_SIZE || no <= BOTTOM_SIZE {
                h.inc.matched.max(h.out.matched) >= sc.list_threshold
            } else {
                let size = ni.max(no);
                let thr = if size < 100 {
                    (size % 100) as f64 * 0.9
                } else {
                    ((size / 100) * 90) as f64
                };
                f64::from(h.inc.matched.max(h.out.matched)) >= thr
            };
            if new_attack {
                let scale = if self.cfg.first_scale_is_threshold {
                    sc.list_threshold
                } else {
                    h.inc.matched.max(h.out.matched)
                };
                h.reported = true;
                h.last_report = t;
                let send = !self.cfg.ignore_first_send;
                h.inc.reset_since();
                h.out.reset_since();
                if send {
                    let h = &self.hosts[&key];
                    out.push(self.report(&key, h, scale, f.time_last));
                }
            }
            return;
        }
        if t < h.last_report + sc.report_timeout {
            return;
        }
        let (mi, mo) = (h.inc.matched_since, h.out.matched_since);
        if h.inc.matched == 0 && h.out.matched == 0 && mi == 0 && mo == 0 {
            h.reset();
            return;
        }
        let ratio = |m: u32, total: u32| {
            if total == 0 {
                0.0
            } else {
                100.0 * f64::from(m) / f64::from(total)
            }
        };
        let top = ratio(mi, h.inc.total_since).max(ratio(mo, h.out.total_since));
        let scale = mi.max(mo);
        if top < self.cfg.attack_min_ratio_to_keep_tracking_host {
            if scale >= min_ev {
                let h = &self.hosts[&key];
                out.push(self.report(&key, h, scale, f.time_last));
            }
            if let Some(h) = self.hosts.get_mut(&key) {
                h.reset();
            }
        } else if scale >= min_ev {
            h.last_report = t;
            h.inc.reset_since();
            h.out.reset_since();
            let h = &self.hosts[&key];
            out.push(self.report(&key, h, scale, f.time_last));
        }
    }

    /// At the end of input every attack still reported gets a final report
    /// when it has enough new matched flows.
    fn finish(&mut self, out: &mut Vec<Alert>) {
        let t = UrTime::from_secs_millis(self.now, 0);
        let min_ev = self.cfg.attack_min_events_to_report;
        let mut keys: Vec<_> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.reported && h.inc.matched_since.max(h.out.matched_since) >= min_ev)
            .map(|(k, _)| *k)
            .collect();
        keys.sort_unstable();
        for k in keys {
            let h = &self.hosts[&k];
            let scale = h.inc.matched_since.max(h.out.matched_since);
            out.push(self.report(&k, h, scale, t));
        }
        self.hosts.clear();
    }

    fn encode(&self, a: &Alert, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        let t = b.template();
        let i = |n: &str| field(t, n);
        b.set_time(i("DETECTION_TIME"), a.detection_time)?;
        b.set_u8(i("WARDEN_TYPE"), 2)?;
        b.set_ip(i("SRC_IP"), a.src_ip)?;
        b.set_u8(i("PROTOCOL"), 6)?;
        b.set_u16(i("DST_PORT"), a.dst_port)?;
        b.set_u32(i("EVENT_SCALE"), a.event_scale)?;
        b.set_var(i("NOTE"), a.note.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh_login(attacker: &str, victim: &str, t: u32) -> Flow {
        Flow {
            src_ip: UrIp::parse(attacker).unwrap(),
            dst_ip: UrIp::parse(victim).unwrap(),
            src_port: 50000,
            dst_port: 22,
            protocol: 6,
            tcp_flags: tcp::FIN | SAP,
            packets: 15,
            bytes: 2000,
            time_first: UrTime::from_secs_millis(t, 0),
            time_last: UrTime::from_secs_millis(t + 2, 0),
            server_rule: 0,
        }
    }

    fn det() -> Detector {
        Detector::new(Config::default(), [true; 3], Whitelist::default())
    }

    #[test]
    fn below_threshold_is_silent() {
        let mut d = det();
        let out = d.feed((0..29).map(|i| ssh_login("192.0.2.66", "10.0.0.1", 1000 + i)));
        assert!(out.is_empty());
        let mut d = det();
        d.finish(&mut Vec::new());
        // Non-matching (long, successful) sessions never alert.
        let out = d.feed((0..200).map(|i| {
            let mut f = ssh_login("192.0.2.66", "10.0.0.1", 1000 + i);
            f.packets = 400;
            f.bytes = 90_000;
            f
        }));
        assert!(out.is_empty());
    }

    #[test]
    fn thirty_failed_logins_alert_with_the_expected_fields() {
        let mut d = det();
        let out = d.feed((0..30).map(|i| {
            ssh_login(
                "192.0.2.66",
                if i % 2 == 0 { "10.0.0.2" } else { "10.0.0.1" },
                1000 + i,
            )
        }));
        assert_eq!(
            out,
            vec![Alert {
                detection_time: UrTime::from_secs_millis(1031, 0),
                src_ip: UrIp::parse("192.0.2.66").unwrap(),
                dst_port: 22,
                event_scale: 30,
                note: "I:10.0.0.1,10.0.0.2,O:".into(),
            }]
        );
    }

    #[test]
    fn c_scale_option_and_ignore_first_send() {
        let mut cfg = Config::default();
        cfg.services[0].list_threshold = 5;
        cfg.first_scale_is_threshold = true;
        let mut d = Detector::new(cfg.clone(), [true; 3], Whitelist::default());
        let mut flows: Vec<Flow> = (0..3)
            .map(|i| {
                let mut f = ssh_login("192.0.2.66", "10.0.0.1", 1000 + i);
                f.packets = 400; // unmatched but stored
                f
            })
            .collect();
        flows.extend((0..5).map(|i| ssh_login("192.0.2.66", "10.0.0.1", 1010 + i)));
        let out = d.feed(flows.clone());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].event_scale, 5);
        cfg.ignore_first_send = true;
        let mut d = Detector::new(cfg, [true; 3], Whitelist::default());
        assert!(d.feed(flows).is_empty());
    }

    #[test]
    fn continuing_and_final_reports() {
        let mut d = det();
        // 30 attempts → first report; then 1 attempt / 10 s for 450 s.
        let mut flows: Vec<Flow> = (0..30)
            .map(|i| ssh_login("192.0.2.66", "10.0.0.1", 1000 + i))
            .collect();
        flows.extend((0..45).map(|i| ssh_login("192.0.2.66", "10.0.0.1", 1040 + i * 10)));
        let out = d.feed(flows);
        // First at 1031; a continuing report once REPORT_TIMEOUT (300 s) has
        // passed, with the 30 matched flows since the first.
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].event_scale, 30);
        assert_eq!(out[1].detection_time.secs(), 1332);
        assert_eq!(out[1].event_scale, 30);
        // The input ends: a final report of the 15 flows since.
        let mut out = Vec::new();
        d.finish(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].event_scale, 15);
        assert_eq!(out[0].src_ip.to_string(), "192.0.2.66");
        // A stopped attack is closed by the attack-timeout sweep.
        let mut d = det();
        let mut flows: Vec<Flow> = (0..40)
            .map(|i| ssh_login("192.0.2.66", "10.0.0.1", 1000 + i))
            .collect();
        flows.push(ssh_login("198.51.100.9", "10.0.0.1", 1700));
        let out = d.feed(flows);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[1].event_scale, 10);
        let mut out = Vec::new();
        d.finish(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn scans_whitelist_and_disabled_services() {
        let mut d = Detector::new(
            Config::default(),
            [true, false, false],
            Whitelist::parse("src 192.0.2.0/24", "w").unwrap(),
        );
        let mut flows: Vec<Flow> = (0..40)
            .map(|i| ssh_login("192.0.2.66", "10.0.0.1", 1000 + i))
            .collect();
        flows.extend((0..40).map(|i| {
            let mut f = ssh_login("198.51.100.1", "10.0.0.1", 1000 + i);
            f.packets = 1;
            f.tcp_flags = tcp::SYN;
            f
        }));
        flows.extend((0..40).map(|i| {
            let mut f = ssh_login("198.51.100.2", "10.0.0.1", 1000 + i);
            f.dst_port = 23;
            f
        }));
        assert!(d.feed(flows).is_empty());
        // Scans are not even stored; the telnet flows were not for us.
        assert_eq!(d.hosts(), 1);
    }

    #[test]
    fn outgoing_direction_and_rdp() {
        let mut d = det();
        // Server answers (victim → attacker) within the outgoing SSH range.
        let out = d.feed((0..30).map(|i| {
            let mut f = ssh_login("10.0.0.1", "192.0.2.66", 1000 + i);
            f.src_port = 22;
            f.dst_port = 50000;
            f
        }));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].src_ip.to_string(), "192.0.2.66");
        assert_eq!(out[0].note, "I:O:10.0.0.1,");
        let out = d.feed((0..30).map(|i| {
            let mut f = ssh_login("192.0.2.70", "10.0.0.5", 1000 + i);
            f.dst_port = 3389;
            f.packets = 3;
            f.bytes = 150;
            f
        }));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].dst_port, 3389);
    }

    #[test]
    fn telnet_outgoing_profile() {
        let mut d = det();
        let server_flow = |i: u32, p: u32, b: u64| {
            let mut f = ssh_login("10.0.0.9", "192.0.2.80", 1000 + i);
            f.src_port = 23;
            f.dst_port = 40000;
            f.packets = p;
            f.bytes = b;
            f
        };
        // 15 profile flows, then 30 short ones that fit the profile maxima.
        let mut flows: Vec<Flow> = (0..15).map(|i| server_flow(i, 10, 800)).collect();
        flows.extend((0..30).map(|i| server_flow(20 + i, 8, 700)));
        let out = d.feed(flows);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].dst_port, 23);
        assert_eq!(out[0].src_ip.to_string(), "192.0.2.80");
    }

    #[test]
    fn encodes_the_c_template() {
        let t = unirec::Template::parse(ALERT_SPEC).unwrap();
        let d = det();
        let mut b = RecordBuilder::new(&t);
        let a = Alert {
            detection_time: UrTime::from_secs_millis(5, 0),
            src_ip: UrIp::parse("192.0.2.66").unwrap(),
            dst_port: 22,
            event_scale: 30,
            note: "I:10.0.0.1,O:".into(),
        };
        d.encode(&a, &mut b).unwrap();
        let mut buf = Vec::new();
        b.finish(&mut buf).unwrap();
        let r = unirec::RecordRef::new_checked(&t, &buf).unwrap();
        assert_eq!(
            r.get_bytes(t.find("NOTE").unwrap()),
            Some(&b"I:10.0.0.1,O:"[..])
        );
        assert_eq!(r.get_u8(t.find("WARDEN_TYPE").unwrap()), Some(2));
    }
}
