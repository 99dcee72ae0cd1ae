//! hoststats — per-host traffic profiles evaluated by rules, after NEMEA's
//! hoststatsnemea (offline mode): horizontal SYN scans, DoS victims and
//! attackers, SSH brute force (victim and attacker) and DNS amplification.
//!
//! Every flow updates the `out_*` counters of its source and the `in_*`
//! counters of its destination: flows, packets, bytes and per-TCP-flag flow
//! counts, split into requests and responses by ports (the lower port below
//! 10000 is the service), plus peers and an SSH and a DNS subprofile. A
//! host's profile is evaluated and dropped `timeout-active` seconds after it
//! was created or `timeout-inactive` seconds after its last flow (checked
//! every `det-start-time` seconds of flow time), and at the end of input.
//!
//! Differences from C: peers are counted exactly (C: Bloom filters, so
//! "approx." in the notes is an upper bound there); time is always flow
//! time (C's online mode uses the wall clock); without a configuration file
//! all rule sets are enabled with the shipped thresholds (C disables rule
//! sets missing from its config); LINK_BIT_FIELD/DIR_BIT_FIELD are not
//! required (no rule uses them); no daily detection log; when `table-size`
//! hosts are profiled, flows of further hosts are not counted until
//! profiles time out (C evicts and evaluates a colliding host).
#![forbid(unsafe_code)]

use detector_common::{field, tcp, FastMap, FastSet, Flow, FlowDetector};
use std::net::Ipv4Addr;
use unirec::{RecordBuilder, RecordError, UrIp, UrTime};

/// The fields read from each flow.
pub const INPUT_SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,\
uint8 PROTOCOL,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST,uint8 TCP_FLAGS";

/// The alert template of the C module.
pub const ALERT_SPEC: &str = "uint8 EVENT_TYPE,time TIME_FIRST,time TIME_LAST,ipaddr SRC_IP,\
ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,uint32 EVENT_SCALE,string NOTE";

pub const EVENT_PORTSCAN_H: u8 = 2;
pub const EVENT_DOS: u8 = 10;
pub const EVENT_DNSAMP: u8 = 15;
pub const EVENT_BRUTEFORCE: u8 = 30;

/// Thresholds (the keys of hoststats.conf).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// detection-log: the directory of the daily event log.
    pub detection_log: Option<String>,
    pub rules_generic: bool,
    pub rules_ssh: bool,
    pub rules_dns: bool,
    pub timeout_active: u32,
    pub timeout_inactive: u32,
    pub det_start_time: u32,
    pub syn_scan_threshold: f64,
    pub syn_scan_syn_to_ack_ratio: f64,
    pub syn_scan_request_to_response_ratio: f64,
    pub syn_scan_ips: u64,
    pub dos_detection_type: u8,
    pub dos_victim_connections_synflood: f64,
    pub dos_victim_connections_others: f64,
    pub dos_victim_packet_ratio: f64,
    pub dos_victim_bytes_packets_ratio: f64,
    pub dos_victim_responsibility: f64,
    pub dos_attacker_connections_synflood: f64,
    pub dos_attacker_connections_others: f64,
    pub dos_attacker_packet_ratio: f64,
    pub dos_attacker_bytes_packets_ratio: f64,
    pub dos_req_rsp_est_ratio: f64,
    pub dos_rsp_req_est_ratio: f64,
    pub bruteforce_ips: u64,
    pub bruteforce_ips_ratio: u64,
    pub bruteforce_req_threshold: u64,
    pub bruteforce_req_min_packet_ratio: u64,
    pub bruteforce_req_max_packet_ratio: u64,
    pub bruteforce_data_threshold: u64,
    pub bruteforce_data_min_packet_ratio: u64,
    pub bruteforce_data_max_packet_ratio: u64,
    pub bruteforce_server_ratio: u64,
    pub dns_amplif_threshold: u64,
    /// Most hosts profiled at once; flows of further hosts are not counted
    /// until profiles time out (bounds memory).
    pub table_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            detection_log: None,
            rules_generic: true,
            rules_ssh: true,
            rules_dns: true,
            timeout_active: 300,
            timeout_inactive: 30,
            det_start_time: 10,
            syn_scan_threshold: 200.0,
            syn_scan_syn_to_ack_ratio: 20.0,
            syn_scan_request_to_response_ratio: 5.0,
            syn_scan_ips: 200,
            dos_detection_type: 0,
            dos_victim_connections_synflood: 270_000.0,
            dos_victim_connections_others: 1_000_000.0,
            dos_victim_packet_ratio: 2.0,
            dos_victim_bytes_packets_ratio: 100.0,
            dos_victim_responsibility: 0.8,
            dos_attacker_connections_synflood: 270_000.0,
            dos_attacker_connections_others: 1_000_000.0,
            dos_attacker_packet_ratio: 2.0,
            dos_attacker_bytes_packets_ratio: 100.0,
            dos_req_rsp_est_ratio: 0.8,
            dos_rsp_req_est_ratio: 0.2,
            bruteforce_ips: 5,
            bruteforce_ips_ratio: 20,
            bruteforce_req_threshold: 60,
            bruteforce_req_min_packet_ratio: 5,
            bruteforce_req_max_packet_ratio: 20,
            bruteforce_data_threshold: 30,
            bruteforce_data_min_packet_ratio: 10,
            bruteforce_data_max_packet_ratio: 25,
            bruteforce_server_ratio: 3,
            dns_amplif_threshold: 10_000,
            table_size: 1 << 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {detail}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub detail: String,
}

impl Config {
    /// `key = value` lines over the defaults; rule sets missing from the
    /// file are disabled, as in C. Keys C reads but no rule uses are
    /// accepted and ignored.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let mut c = Config {
            rules_generic: false,
            rules_ssh: false,
            rules_dns: false,
            ..Config::default()
        };
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |detail: String| ConfigError {
                file: file.to_string(),
                line: n + 1,
                detail,
            };
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| err(format!("`{line}` is not key = value")))?;
            let (k, v) = (k.trim(), v.trim().trim_matches('"'));
            let f = || -> Result<f64, ConfigError> {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| err(format!("{k}: `{v}` is not a number")))
            };
            let u = || -> Result<u64, ConfigError> {
                v.parse::<u64>()
                    .map_err(|_| err(format!("{k}: `{v}` is not a whole number")))
            };
            let b = || matches!(v, "1" | "true" | "enabled" | "yes");
            let u32v = || -> Result<u32, ConfigError> {
                u32::try_from(u()?).map_err(|_| err(format!("{k}: `{v}` is too large")))
            };
            match k {
                "rules-generic" => c.rules_generic = b(),
                "rules-ssh" => c.rules_ssh = b(),
                "rules-dns" => c.rules_dns = b(),
                "timeout-active" => c.timeout_active = u32v()?,
                "timeout-inactive" => c.timeout_inactive = u32v()?,
                "det-start-time" => c.det_start_time = u32v()?.max(1),
                "syn-scan-threshold" => c.syn_scan_threshold = f()?,
                "syn-scan-syn-to-ack-ratio" => c.syn_scan_syn_to_ack_ratio = f()?,
                "syn-scan-request-to-response-ratio" => c.syn_scan_request_to_response_ratio = f()?,
                "syn-scan-ips" => c.syn_scan_ips = u()?,
                "dos-detection-type" => c.dos_detection_type = u8::from(u()? != 0),
                "dos-victim-connections-synflood" => c.dos_victim_connections_synflood = f()?,
                "dos-victim-connections-others" => c.dos_victim_connections_others = f()?,
                "dos-victim-packet-ratio" => c.dos_victim_packet_ratio = f()?,
                "dos-victim-bytes-packets-ratio" => c.dos_victim_bytes_packets_ratio = f()?,
                "dos-victim-responsibility" => c.dos_victim_responsibility = f()?,
                "dos-attacker-connections-synflood" => c.dos_attacker_connections_synflood = f()?,
                "dos-attacker-connections-others" => c.dos_attacker_connections_others = f()?,
                "dos-attacker-packet-ratio" => c.dos_attacker_packet_ratio = f()?,
                "dos-attacker-bytes-packets-ratio" => c.dos_attacker_bytes_packets_ratio = f()?,
                "dos-req-rsp-est-ratio" => c.dos_req_rsp_est_ratio = f()?,
                "dos-rsp-req-est-ratio" => c.dos_rsp_req_est_ratio = f()?,
                "bruteforce-ips" => c.bruteforce_ips = u()?,
                "bruteforce-ips-ratio" => c.bruteforce_ips_ratio = u()?,
                "bruteforce-req-threshold" => c.bruteforce_req_threshold = u()?,
                "bruteforce-req-min-packet-ratio" => c.bruteforce_req_min_packet_ratio = u()?,
                "bruteforce-req-max-packet-ratio" => c.bruteforce_req_max_packet_ratio = u()?,
                "bruteforce-data-threshold" => c.bruteforce_data_threshold = u()?,
                "bruteforce-data-min-packet-ratio" => c.bruteforce_data_min_packet_ratio = u()?,
                "bruteforce-data-max-packet-ratio" => c.bruteforce_data_max_packet_ratio = u()?,
                "bruteforce-server-ratio" => c.bruteforce_server_ratio = u()?,
                "dns-amplif-threshold" => c.dns_amplif_threshold = u()?,
                "port-flowdir" if v != "1" => {
                    return Err(err("only port-flowdir = 1 is supported".into()))
                }
                "detection-log" => c.detection_log = Some(v.to_string()).filter(|d| !d.is_empty()),
                // As NEMEA: at least 65536, rounded up to a power of two.
                "table-size" => {
                    c.table_size = usize::try_from(u()?)
                        .unwrap_or(usize::MAX)
                        .max(65_536)
                        .checked_next_power_of_two()
                        .unwrap_or(usize::MAX)
                }
                // The input fields are fixed here (NEMEA reads <COLLECTOR_FLOW>).
                "input-template"
                | "port-flowdir"
                | "log-upto-level"
                | "dos-min-rsp-ratio"
                | "scan-threshold"
                | "scan-flag-ratio"
                | "scan-packet-ratio"
                | "scan-ip-ratio"
                | "bruteforce-out-threshold" => {}
                _ => return Err(err(format!("unknown key {k}"))),
            }
        }
        Ok(c)
    }
}

/// Flow counts per TCP flag.
#[derive(Clone, Copy, Debug, Default)]
struct Flags {
    syn: u64,
    ack: u64,
}

/// Counters of one direction (in or out) of a host.
#[derive(Clone, Copy, Debug, Default)]
struct Side {
    all_flows: u64,
    all_packets: u64,
    all_bytes: u64,
    req_flows: u64,
    req_packets: u64,
    req_bytes: u64,
    rsp_flows: u64,
    rsp_packets: u64,
    rsp_bytes: u64,
    all: Flags,
    req: Flags,
    rsp: Flags,
    all_syn_packets: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Ssh {
    req_packets: u64,
    req_syn: u64,
    rsp_packets: u64,
    rsp_syn: u64,
}

#[derive(Debug, Default)]
struct Host {
    first: u32,
    last: u32,
    t_first: UrTime,
    t_last: UrTime,
    out: Side,
    inn: Side,
    out_peers: PeerSet,
    out_req_peers: PeerSet,
    in_peers: PeerSet,
    ssh_out: Ssh,
    ssh_in: Ssh,
    ssh_out_peers: PeerSet,
    dns_out_overlimit: u64,
    dns_in_overlimit: u64,
}

/// Peers kept per set (memory bound; counts saturate there).
const MAX_PEERS: usize = 1 << 16;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Req,
    Rsp,
    Unknown,
}

fn direction(f: &Flow) -> Dir {
    let (s, d) = (f.src_port, f.dst_port);
    if !(s < 10_000 || d < 10_000) || s == d {
        Dir::Unknown
    } else if s < d {
        Dir::Rsp
    } else {
        Dir::Req
    }
}

fn add_side(side: &mut Side, f: &Flow, dir: Dir) {
    let (p, b) = (u64::from(f.packets), f.bytes);
    let syn = u64::from(f.tcp_flags & tcp::SYN != 0);
    let ack = u64::from(f.tcp_flags & tcp::ACK != 0);
    side.all_flows += 1;
    side.all_packets += p;
    side.all_bytes += b;
    side.all.syn += syn;
    side.all.ack += ack;
    if syn == 1 {
        side.all_syn_packets += p;
    }
    match dir {
        Dir::Req => {
            side.req_flows += 1;
            side.req_packets += p;
            side.req_bytes += b;
            side.req.syn += syn;
            side.req.ack += ack;
        }
        Dir::Rsp => {
            side.rsp_flows += 1;
            side.rsp_packets += p;
            side.rsp_bytes += b;
            side.rsp.syn += syn;
            side.rsp.ack += ack;
        }
        Dir::Unknown => {}
    }
}

/// The distinct peers of a host: the first two inline, a hash set beyond.
/// Most hosts of a busy link talk to one or two peers, and a set for each
/// would cost an allocation per host.
#[derive(Debug, Default)]
struct PeerSet {
    few: [UrIp; 2],
    n: u8,
    /// Empty (no allocation) until a third peer comes.
    many: FastSet<UrIp>,
}

impl PeerSet {
    #[inline]
    fn insert(&mut self, ip: UrIp) {
        if !self.many.is_empty() {
            if self.many.len() < MAX_PEERS {
                self.many.insert(ip);
            }
            return;
        }
        let n = usize::from(self.n);
        if self.few[..n].contains(&ip) {
            return;
        }
        if n < self.few.len() {
            self.few[n] = ip;
            self.n += 1;
        } else {
            self.many.extend(self.few);
            self.many.insert(ip);
        }
    }

    fn len(&self) -> usize {
        if self.many.is_empty() {
            usize::from(self.n)
        } else {
            self.many.len()
        }
    }
}

fn insert_peer(set: &mut PeerSet, ip: UrIp) {
    set.insert(ip);
}

/// One event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub event_type: u8,
    pub time_first: UrTime,
    pub time_last: UrTime,
    pub src_ip: UrIp,
    pub dst_ip: UrIp,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub event_scale: u32,
    pub note: String,
}

/// NEMEA's name of an event type in the daily log.
fn type_name(t: u8) -> String {
    match t {
        1 => "portscan".into(),
        2 => "portscan_h".into(),
        3 => "portscan_v".into(),
        10 => "dos".into(),
        11 => "synflood".into(),
        15 => "dnsamp".into(),
        30 => "bruteforce".into(),
        t => format!("type_{t}"),
    }
}

/// `YYYYmmddHHMM` (UTC) of a time.
fn minute_stamp(t: UrTime) -> String {
    let mut text = Vec::with_capacity(26);
    t.write_text(&mut text); // YYYY-MM-DDTHH:MM:SS...
    let digits: String = text[..16]
        .iter()
        .filter(|c| c.is_ascii_digit())
        .map(|&c| char::from(c))
        .collect();
    digits
}

impl Alert {
    /// The event as a line of NEMEA's daily detection log and the name of
    /// that log (`YYYYMMDD.log` of TIME_FIRST):
    /// `first;last;type;protocols;sources;destinations;src ports;dst ports;scale;note`,
    /// with unset addresses, ports and protocol left empty.
    pub fn log_line(&self) -> (String, String) {
        let first = minute_stamp(self.time_first);
        let ip = |a: UrIp| {
            if is_unset(a) {
                String::new()
            } else {
                a.to_string()
            }
        };
        let num = |n: u16| if n == 0 { String::new() } else { n.to_string() };
        let line = format!(
            "{first};{};{};{};{};{};{};{};{};{}\n",
            minute_stamp(self.time_last),
            type_name(self.event_type),
            num(u16::from(self.protocol)),
            ip(self.src_ip),
            ip(self.dst_ip),
            num(self.src_port),
            num(self.dst_port),
            self.event_scale,
            self.note
        );
        (format!("{}.log", &first[..8]), line)
    }
}

fn is_unset(a: UrIp) -> bool {
    a == unset() || a == UrIp::default()
}

fn unset() -> UrIp {
    UrIp::from_v4(Ipv4Addr::UNSPECIFIED)
}

fn sat32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// The detector state.
#[derive(Debug)]
pub struct Detector {
    cfg: Config,
    /// Boxed: a host record is large, and the table moves its entries.
    hosts: FastMap<UrIp, Box<Host>>,
    now: u32,
    next_check: u32,
    dropped: u64,
}

impl Detector {
    pub fn new(cfg: Config) -> Detector {
        Detector {
            cfg,
            hosts: FastMap::default(),
            now: 0,
            next_check: 0,
            dropped: 0,
        }
    }

    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    fn est(&self, all: u64, req: u64, rsp: u64, ratio: f64) -> f64 {
        req as f64 + all.saturating_sub(req).saturating_sub(rsp) as f64 * ratio
    }

    /// The rules on one host's profile.
    fn evaluate(&self, ip: UrIp, h: &Host, out: &mut Vec<Alert>) {
        let c = &self.cfg;
        let (o, i) = (&h.out, &h.inn);
        let qr = c.dos_req_rsp_est_ratio;
        let rq = c.dos_rsp_req_est_ratio;
        let base = |event_type, src_ip, dst_ip, protocol, scale: u64, note: String| Alert {
            event_type,
            time_first: h.t_first,
            time_last: h.t_last,
            src_ip,
            dst_ip,
            src_port: 0,
            dst_port: 0,
            protocol,
            event_scale: sat32(scale),
            note,
        };
        if c.rules_generic {
            // Horizontal SYN scan.
            let est_out_req_syn = self.est(o.all.syn, o.req.syn, o.rsp.syn, qr);
            let est_out_req_ack = self.est(o.all.ack, o.req.ack, o.rsp.ack, qr);
            let est_in_rsp_syn = self.est(i.all.syn, i.rsp.syn, i.req.syn, rq);
            if est_out_req_syn > c.syn_scan_threshold
                && est_out_req_syn > c.syn_scan_syn_to_ack_ratio * est_out_req_ack
                && est_out_req_syn > c.syn_scan_request_to_response_ratio * est_in_rsp_syn
                && h.out_req_peers.len() as u64 >= c.syn_scan_ips
                && o.req.syn > o.all_flows / 3
                && o.all.syn >= o.all.ack
            {
                out.push(base(
                    EVENT_PORTSCAN_H,
                    ip,
                    unset(),
                    6,
                    o.all.syn.saturating_sub(o.all.ack),
                    "horizontal SYN scan".into(),
                ));
            }
            // DoS victim.
            let est_in_req_flows = self.est(i.all_flows, i.req_flows, i.rsp_flows, qr);
            let est_in_req_packets = self.est(i.all_packets, i.req_packets, i.rsp_packets, qr);
            let est_in_req_bytes = self.est(i.all_bytes, i.req_bytes, i.rsp_bytes, qr);
            let est_out_rsp_flows = self.est(o.all_flows, o.rsp_flows, o.req_flows, rq);
            let syn_flood = if c.dos_detection_type == 0 {
                i.all.syn as f64 > c.dos_victim_connections_synflood
                    && (i.all_packets as f64) < c.dos_victim_packet_ratio * i.all_flows as f64
            } else {
                i.all_syn_packets as f64 > c.dos_victim_connections_synflood
            } && i.all.syn > 2 * i.all.ack;
            let others = if c.dos_detection_type == 0 {
                est_in_req_flows > c.dos_victim_connections_others
                    && est_in_req_packets < c.dos_victim_packet_ratio * est_in_req_flows
            } else {
                i.req_packets as f64 > c.dos_victim_connections_others
            };
            if (syn_flood || others)
                && est_out_rsp_flows < c.dos_victim_responsibility * est_in_req_flows
                && est_in_req_packets > 0.0
                && est_in_req_bytes / est_in_req_packets.max(1.0) < c.dos_victim_bytes_packets_ratio
            {
                let mut note = format!(
                    "in: {} flows, {} packets; out: {} flows, {} packets; approx. {} source addresses",
                    i.all_flows, i.all_packets, o.all_flows, o.all_packets, h.in_peers.len()
                );
                if syn_flood {
                    note.push_str("; SYN flood");
                }
                if i.all_flows < 2 * h.in_peers.len() as u64 {
                    note.push_str(" (probably spoofed)");
                }
                out.push(base(
                    EVENT_DOS,
                    unset(),
                    ip,
                    if syn_flood { 6 } else { 0 },
                    i.all_flows,
                    note,
                ));
            }
            // DoS attacker (normalised per destination).
            let n = (h.out_peers.len() as f64).max(1.0);
            let est_out_req_flows = self.est(o.all_flows, o.req_flows, o.rsp_flows, qr);
            let est_out_req_packets = self.est(o.all_packets, o.req_packets, o.rsp_packets, qr);
            let est_out_req_bytes = self.est(o.all_bytes, o.req_bytes, o.rsp_bytes, qr);
            let est_in_rsp_flows = self.est(i.all_flows, i.rsp_flows, i.req_flows, rq);
            let a_syn = o.all.syn as f64 / n > c.dos_attacker_connections_synflood
                && (o.all_packets as f64) < c.dos_attacker_packet_ratio * o.all_flows as f64
                && o.all.syn > 2 * o.all.ack;
            let a_other = est_out_req_flows / n > c.dos_attacker_connections_others
                && est_out_req_packets < c.dos_attacker_packet_ratio * est_out_req_flows;
            if (a_syn || a_other)
                && est_in_rsp_flows < c.dos_victim_responsibility * est_out_req_flows
                && est_out_req_packets > 0.0
                && est_out_req_bytes / est_out_req_packets.max(1.0)
                    < c.dos_attacker_bytes_packets_ratio
            {
                let mut note = format!(
                    "out: {} flows, {} packets; in: {} flows, {} packets; approx. {} destination addresses",
                    o.all_flows, o.all_packets, i.all_flows, i.all_packets, h.out_peers.len()
                );
                if a_syn {
                    note.push_str("; SYN flood");
                }
                out.push(base(
                    EVENT_DOS,
                    ip,
                    unset(),
                    if a_syn { 6 } else { 0 },
                    o.all_flows,
                    note,
                ));
            }
        }
        if c.rules_ssh {
            let (so, si) = (&h.ssh_out, &h.ssh_in);
            let uniq = h.ssh_out_peers.len() as u64;
            // Victim: answers many short login exchanges.
            if c.bruteforce_data_min_packet_ratio
                .saturating_mul(so.rsp_syn)
                <= so.rsp_packets
                && so.rsp_packets
                    <= c.bruteforce_data_max_packet_ratio
                        .saturating_mul(so.rsp_syn)
                && so.rsp_syn > c.bruteforce_data_threshold
                && c.bruteforce_req_min_packet_ratio.saturating_mul(si.req_syn) <= si.req_packets
                && si.req_packets <= c.bruteforce_req_max_packet_ratio.saturating_mul(si.req_syn)
                && si.req_syn > c.bruteforce_req_threshold
                && si.req_syn > c.bruteforce_server_ratio.saturating_mul(so.req_syn)
                && so.rsp_syn > c.bruteforce_ips_ratio.saturating_mul(uniq)
            {
                let mut a = base(
                    EVENT_BRUTEFORCE,
                    unset(),
                    ip,
                    6,
                    si.req_syn,
                    "victim".into(),
                );
                a.dst_port = 22;
                out.push(a);
            }
            // Attacker: opens many short login exchanges.
            if c.bruteforce_req_min_packet_ratio.saturating_mul(so.req_syn) < so.req_packets
                && so.req_packets < c.bruteforce_req_max_packet_ratio.saturating_mul(so.req_syn)
                && so.req_syn > c.bruteforce_req_threshold
                && c.bruteforce_data_min_packet_ratio
                    .saturating_mul(si.rsp_syn)
                    < si.rsp_packets
                && si.rsp_packets
                    < c.bruteforce_data_max_packet_ratio
                        .saturating_mul(si.rsp_syn)
                && si.rsp_syn > c.bruteforce_data_threshold
                && si.req_syn < c.bruteforce_server_ratio.saturating_mul(so.req_syn)
                && ((so.req_syn > c.bruteforce_ips_ratio.saturating_mul(uniq)
                    && uniq < c.bruteforce_ips)
                    || (so.req_syn > (c.bruteforce_ips_ratio / 2).saturating_mul(uniq)
                        && uniq >= c.bruteforce_ips))
            {
                let mut a = base(
                    EVENT_BRUTEFORCE,
                    ip,
                    unset(),
                    6,
                    so.req_syn,
                    "attacker".into(),
                );
                a.dst_port = 22;
                out.push(a);
            }
        }
        if c.rules_dns {
            if h.dns_out_overlimit > c.dns_amplif_threshold {
                let mut a = base(
                    EVENT_DNSAMP,
                    ip,
                    unset(),
                    17,
                    h.dns_out_overlimit,
                    "DNS amplification - misused server".into(),
                );
                a.src_port = 53;
                out.push(a);
            }
            if h.dns_in_overlimit > c.dns_amplif_threshold {
                let mut a = base(
                    EVENT_DNSAMP,
                    unset(),
                    ip,
                    17,
                    h.dns_in_overlimit,
                    "DNS amplification - victim".into(),
                );
                a.dst_port = 53;
                out.push(a);
            }
        }
    }

    fn check(&mut self, out: &mut Vec<Alert>) {
        let (now, c) = (self.now, &self.cfg);
        let mut done: Vec<UrIp> = self
            .hosts
            .iter()
            .filter(|(_, h)| {
                h.first.saturating_add(c.timeout_active) <= now
                    || h.last.saturating_add(c.timeout_inactive) <= now
            })
            .map(|(k, _)| *k)
            .collect();
        done.sort_unstable();
        for ip in done {
            if let Some(h) = self.hosts.remove(&ip) {
                self.evaluate(ip, &h, out);
            }
        }
    }

    /// Host updates dropped because the table was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn host(&mut self, ip: UrIp, f: &Flow) -> Option<&mut Host> {
        let t = self.now;
        if self.hosts.len() >= self.cfg.table_size && !self.hosts.contains_key(&ip) {
            self.dropped += 1;
            return None;
        }
        let h = self.hosts.entry(ip).or_insert_with(|| {
            Box::new(Host {
                first: t,
                t_first: f.time_first,
                ..Host::default()
            })
        });
        h.last = t;
        h.t_first = h.t_first.min(f.time_first);
        h.t_last = h.t_last.max(f.time_last);
        Some(h)
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
        if f.protocol == 17 && f.src_port == 0 && f.dst_port == 0 {
            return;
        }
        let t = f.time_last.secs();
        if t > self.now {
            self.now = t;
            if self.next_check == 0 {
                self.next_check = t + self.cfg.det_start_time;
            } else if t >= self.next_check {
                self.next_check = t + self.cfg.det_start_time;
                self.check(out);
            }
        }
        let dir = direction(f);
        let ssh = f.protocol == 6 && (f.src_port == 22 || f.dst_port == 22);
        let dns = (f.protocol == 6 || f.protocol == 17) && (f.src_port == 53 || f.dst_port == 53);
        let syn = u64::from(f.tcp_flags & tcp::SYN != 0);
        let p = u64::from(f.packets);
        let big_dns_rsp =
            dns && dir == Dir::Rsp && f.packets > 0 && f.bytes / u64::from(f.packets) >= 1000;
        {
            let (dst, src) = (f.dst_ip, f.src_ip);
            if let Some(h) = self.host(src, f) {
                add_side(&mut h.out, f, dir);
                insert_peer(&mut h.out_peers, dst);
                if dir == Dir::Req {
                    insert_peer(&mut h.out_req_peers, dst);
                }
                if ssh {
                    insert_peer(&mut h.ssh_out_peers, dst);
                    match dir {
                        Dir::Req => {
                            h.ssh_out.req_packets += p;
                            h.ssh_out.req_syn += syn;
                        }
                        Dir::Rsp => {
                            h.ssh_out.rsp_packets += p;
                            h.ssh_out.rsp_syn += syn;
                        }
                        Dir::Unknown => {}
                    }
                }
                if big_dns_rsp {
                    h.dns_out_overlimit += 1;
                }
            }
        }
        {
            let src = f.src_ip;
            if let Some(h) = self.host(f.dst_ip, f) {
                add_side(&mut h.inn, f, dir);
                insert_peer(&mut h.in_peers, src);
                if ssh {
                    match dir {
                        Dir::Req => {
                            h.ssh_in.req_packets += p;
                            h.ssh_in.req_syn += syn;
                        }
                        Dir::Rsp => {
                            h.ssh_in.rsp_packets += p;
                            h.ssh_in.rsp_syn += syn;
                        }
                        Dir::Unknown => {}
                    }
                }
                if big_dns_rsp {
                    h.dns_in_overlimit += 1;
                }
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<Alert>) {
        self.now = u32::MAX;
        self.check(out);
    }

    fn encode(&self, a: &Alert, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        let t = b.template();
        let i = |n: &str| field(t, n);
        b.set_u8(i("EVENT_TYPE"), a.event_type)?;
        b.set_time(i("TIME_FIRST"), a.time_first)?;
        b.set_time(i("TIME_LAST"), a.time_last)?;
        b.set_ip(i("SRC_IP"), a.src_ip)?;
        b.set_ip(i("DST_IP"), a.dst_ip)?;
        b.set_u16(i("SRC_PORT"), a.src_port)?;
        b.set_u16(i("DST_PORT"), a.dst_port)?;
        b.set_u8(i("PROTOCOL"), a.protocol)?;
        b.set_u32(i("EVENT_SCALE"), a.event_scale)?;
        let note = a.note.as_bytes();
        b.set_var(i("NOTE"), &note[..note.len().min(199)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn flow(
        src: String,
        sp: u16,
        dst: String,
        dp: u16,
        proto: u8,
        flags: u8,
        packets: u32,
        bytes: u64,
        t: u32,
    ) -> Flow {
        Flow {
            src_ip: UrIp::parse(&src).unwrap(),
            dst_ip: UrIp::parse(&dst).unwrap(),
            src_port: sp,
            dst_port: dp,
            protocol: proto,
            tcp_flags: flags,
            packets,
            bytes,
            time_first: UrTime::from_secs_millis(t, 0),
            time_last: UrTime::from_secs_millis(t, 0),
            server_rule: 0,
        }
    }

    fn run(flows: &[Flow]) -> Vec<Alert> {
        let mut d = Detector::new(Config::default());
        let mut out = Vec::new();
        for f in flows {
            d.flow(f, &mut out);
        }
        d.finish(&mut out);
        out
    }

    fn scan(n: u32) -> Vec<Flow> {
        (0..n)
            .map(|i| {
                flow(
                    "192.0.2.7".into(),
                    40000 + (i % 1000) as u16,
                    format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
                    445,
                    6,
                    tcp::SYN,
                    1,
                    44,
                    1000 + i / 100,
                )
            })
            .collect()
    }

    #[test]
    fn horizontal_scan() {
        assert!(run(&scan(150)).is_empty());
        let out = run(&scan(500));
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].event_type, EVENT_PORTSCAN_H);
        assert_eq!(out[0].src_ip.to_string(), "192.0.2.7");
        assert_eq!(out[0].event_scale, 500);
        assert_eq!(out[0].note, "horizontal SYN scan");
    }

    #[test]
    fn dns_amplification() {
        let mut flows = Vec::new();
        for i in 0..10_050u32 {
            flows.push(flow(
                "192.0.2.53".into(),
                53,
                "203.0.113.10".into(),
                10_000 + (i % 50_000) as u16,
                17,
                0,
                2,
                3000,
                1000 + i / 1000,
            ));
        }
        let out = run(&flows);
        let notes: Vec<&str> = out.iter().map(|a| a.note.as_str()).collect();
        assert_eq!(
            notes,
            [
                "DNS amplification - misused server",
                "DNS amplification - victim"
            ]
        );
        assert_eq!(out[0].src_ip.to_string(), "192.0.2.53");
        assert_eq!(out[0].src_port, 53);
        assert_eq!(out[1].dst_ip.to_string(), "203.0.113.10");
        assert_eq!(out[1].event_scale, 10_050);
        // below the threshold: silent
        assert!(run(&flows[..9_000]).is_empty());
    }

    #[test]
    fn ssh_brute_force_uniflows() {
        let mut flows = Vec::new();
        for i in 0..100u32 {
            let sp = 40000 + i as u16;
            // attacker → victim: 12 packets with SYN; victim → attacker: 15 packets with SYN+ACK
            flows.push(flow(
                "198.51.100.66".into(),
                sp,
                "10.0.0.22".into(),
                22,
                6,
                0x1b,
                12,
                1500,
                1000 + i,
            ));
            flows.push(flow(
                "10.0.0.22".into(),
                22,
                "198.51.100.66".into(),
                sp,
                6,
                0x1b,
                15,
                2500,
                1000 + i,
            ));
        }
        let out = run(&flows);
        let got: Vec<(&str, String, String)> = out
            .iter()
            .map(|a| (a.note.as_str(), a.src_ip.to_string(), a.dst_ip.to_string()))
            .collect();
        assert!(
            got.contains(&("victim", "0.0.0.0".into(), "10.0.0.22".into())),
            "{got:?}"
        );
        assert!(
            got.contains(&("attacker", "198.51.100.66".into(), "0.0.0.0".into())),
            "{got:?}"
        );
        assert!(run(&flows[..80]).is_empty());
    }

    #[test]
    fn syn_flood_victim() {
        let cfg = Config {
            dos_victim_connections_synflood: 1000.0,
            ..Config::default()
        };
        let mut d = Detector::new(cfg);
        let mut out = Vec::new();
        for i in 0..2000u32 {
            let src = format!("172.16.{}.{}", i / 256, i % 256);
            d.flow(
                &flow(
                    src,
                    1024 + i as u16,
                    "198.51.100.80".into(),
                    80,
                    6,
                    tcp::SYN,
                    1,
                    40,
                    1000 + i / 200,
                ),
                &mut out,
            );
        }
        d.finish(&mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].event_type, EVENT_DOS);
        assert_eq!(out[0].dst_ip.to_string(), "198.51.100.80");
        assert_eq!(out[0].protocol, 6);
        assert_eq!(
            out[0].note,
            "in: 2000 flows, 2000 packets; out: 0 flows, 0 packets; approx. 2000 source addresses; SYN flood (probably spoofed)"
        );
    }

    #[test]
    fn daily_log_lines() {
        let a = Alert {
            event_type: EVENT_BRUTEFORCE,
            time_first: UrTime::from_secs_millis(1_714_557_600, 0),
            time_last: UrTime::from_secs_millis(1_714_557_959, 999),
            src_ip: unset(),
            dst_ip: UrIp::parse("10.0.0.22").unwrap(),
            src_port: 0,
            dst_port: 22,
            protocol: 6,
            event_scale: 100,
            note: "victim".into(),
        };
        assert_eq!(
            a.log_line(),
            (
                "20240501.log".to_string(),
                "202405011000;202405011005;bruteforce;6;;10.0.0.22;;22;100;victim\n".to_string()
            )
        );
        let scan = Alert {
            event_type: 7,
            protocol: 0,
            src_ip: UrIp::parse("2001:db8::1").unwrap(),
            dst_port: 0,
            ..a
        };
        assert_eq!(
            scan.log_line().1,
            "202405011000;202405011005;type_7;;2001:db8::1;10.0.0.22;;;100;victim\n"
        );
    }

    #[test]
    fn config_file() {
        let c = Config::parse(
            "input-template = <COLLECTOR_FLOW>\nrules-generic = 1\n# x\nsyn-scan-ips = 7\n\
             detection-log = /tmp\ntable-size = 100000\nlog-upto-level    = LOG_INFO\n",
            "h",
        )
        .unwrap();
        assert!(c.rules_generic && !c.rules_ssh && !c.rules_dns);
        assert_eq!(c.detection_log.as_deref(), Some("/tmp"));
        assert_eq!(c.table_size, 131_072);
        assert_eq!(c.syn_scan_ips, 7);
        for (bad, want) in [
            ("nope = 1", "h:1: unknown key nope"),
            ("syn-scan-ips = x", "not a whole number"),
            ("port-flowdir = 0", "only port-flowdir = 1"),
        ] {
            let e = Config::parse(bad, "h").unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
