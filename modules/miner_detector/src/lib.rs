//! miner_detector — hosts talking to known cryptocurrency mining pools.
//!
//! Each TCP flow is oriented first: which side is the server (the pool
//! candidate)? The rules, in order: a flow with SYN (and no ACK-only
//! answer) goes to the server, so its destination is the server; else a
//! destination port below 1024 marks the destination; else a source port
//! below 1024 marks the source; else the lower port is the server's (the
//! destination on a tie). The alert says which rule decided.
//!
//! A flow whose server (address, port) is on the pool blacklist and not on
//! the whitelist makes its client a suspect. Per (miner, pool, port) the
//! detector counts flows and packets; a suspect is reported when it has
//! been idle for `timeout_inactive` and every `timeout_active` while it
//! lasts (EVENT_SCALE = packets so far, as in C), and at the end of input.
//!
//! Differences from C: list entries without a port match every port (C
//! stores them with port 0, matching only port 0); flows are oriented by
//! the rules above, so answers from the pool count for the miner too; time
//! is the flows' own; there is no active Stratum probing and no learned
//! pools (C learns pools only with `stratum_check`), so only listed pools
//! are reported.
#![forbid(unsafe_code)]

use detector_common::{field, tcp, FastMap, Flow, FlowDetector};
use std::collections::HashSet;
use std::net::IpAddr;
use unirec::{RecordBuilder, RecordError, UrIp, UrTime};

/// The fields read from each flow.
pub const INPUT_SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,\
uint8 TCP_FLAGS,uint8 PROTOCOL,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST";

/// The C alert template plus SERVER_RULE (which orientation rule applied).
pub const ALERT_SPEC: &str = "time TIME_FIRST,time TIME_LAST,ipaddr SRC_IP,ipaddr DST_IP,\
uint16 DST_PORT,uint32 EVENT_SCALE,uint8 SERVER_RULE";

/// How the server side of a flow was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ServerRule {
    /// SYN seen: the destination is the server.
    Syn = 1,
    /// Destination port below 1024.
    DstPort = 2,
    /// Source port below 1024.
    SrcPort = 3,
    /// The lower port.
    LowerPort = 4,
}

impl ServerRule {
    pub fn describe(code: u8) -> Option<&'static str> {
        Some(match code {
            1 => "SYN towards the server",
            2 => "server port below 1024",
            3 => "server port below 1024 (answer direction)",
            4 => "lower port taken as the server's",
            _ => return None,
        })
    }
}

/// (server is the destination, rule).
pub fn orient(f: &Flow) -> (bool, ServerRule) {
    let syn = f.tcp_flags & tcp::SYN != 0;
    // A single SYN+ACK is the server's answer, not a connection attempt.
    let lone_syn_ack = f.tcp_flags & (tcp::SYN | tcp::ACK) == tcp::SYN | tcp::ACK && f.packets <= 1;
    if syn && !lone_syn_ack {
        return (true, ServerRule::Syn);
    }
    if f.dst_port < 1024 {
        return (true, ServerRule::DstPort);
    }
    if f.src_port < 1024 {
        return (false, ServerRule::SrcPort);
    }
    (f.dst_port <= f.src_port, ServerRule::LowerPort)
}

#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {detail}")]
pub struct ListError {
    pub file: String,
    pub line: usize,
    pub detail: String,
}

/// Pools as (address, port); port `None` = every port.
#[derive(Clone, Debug, Default)]
pub struct PoolList {
    exact: HashSet<(IpAddr, u16)>,
    any_port: HashSet<IpAddr>,
}

impl PoolList {
    /// Lines `IP[:port]` (IPv6 as `[addr]:port` or a bare address), `#` comments.
    pub fn parse(text: &str, file: &str) -> Result<PoolList, ListError> {
        let mut l = PoolList::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |detail: String| ListError {
                file: file.to_string(),
                line: n + 1,
                detail,
            };
            if let Ok(ip) = line.parse::<IpAddr>() {
                l.any_port.insert(ip);
                continue;
            }
            let (a, p) = line
                .rsplit_once(':')
                .ok_or_else(|| err(format!("`{line}` is not IP[:port]")))?;
            let a = a.trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = a
                .parse()
                .map_err(|_| err(format!("`{a}` is not an IP address")))?;
            let port: u16 = p.parse().map_err(|_| err(format!("`{p}` is not a port")))?;
            l.exact.insert((ip, port));
        }
        Ok(l)
    }

    pub fn contains(&self, ip: IpAddr, port: u16) -> bool {
        self.any_port.contains(&ip) || self.exact.contains(&(ip, port))
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.any_port.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Re-report period of a lasting suspect (s).
    pub timeout_active: u32,
    /// A suspect idle this long is reported and dropped (s).
    pub timeout_inactive: u32,
    /// Period of the checks (s of flow time).
    pub check_period: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeout_active: 300,
            timeout_inactive: 60,
            check_period: 60,
        }
    }
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub time_first: UrTime,
    pub time_last: UrTime,
    pub miner: UrIp,
    pub pool: UrIp,
    pub port: u16,
    /// Packets counted so far.
    pub packets: u32,
    pub rule: ServerRule,
}

#[derive(Debug)]
struct Suspect {
    first: UrTime,
    last: UrTime,
    packets: u32,
    last_exported: u32,
    rule: ServerRule,
}

/// The detector state.
#[derive(Debug)]
pub struct Detector {
    cfg: Config,
    blacklist: PoolList,
    whitelist: PoolList,
    suspects: FastMap<(UrIp, UrIp, u16), Suspect>,
    now: u32,
    next_check: u32,
}

impl Detector {
    pub fn new(cfg: Config, blacklist: PoolList, whitelist: PoolList) -> Detector {
        Detector {
            cfg,
            blacklist,
            whitelist,
            suspects: FastMap::default(),
            now: 0,
            next_check: 0,
        }
    }

    pub fn suspects(&self) -> usize {
        self.suspects.len()
    }

    fn alert(k: &(UrIp, UrIp, u16), s: &Suspect) -> Alert {
        Alert {
            time_first: s.first,
            time_last: s.last,
            miner: k.0,
            pool: k.1,
            port: k.2,
            packets: s.packets,
            rule: s.rule,
        }
    }

    fn check(&mut self, out: &mut Vec<Alert>) {
        let (now, c) = (self.now, self.cfg);
        let mut keys: Vec<_> = self.suspects.keys().copied().collect();
        keys.sort_unstable();
        for k in keys {
            let Some(s) = self.suspects.get_mut(&k) else {
                continue;
            };
            if now.saturating_sub(s.last.secs()) >= c.timeout_inactive {
                out.push(Self::alert(&k, s));
                self.suspects.remove(&k);
            } else if now.saturating_sub(s.last_exported) >= c.timeout_active {
                s.last_exported = now;
                out.push(Self::alert(&k, s));
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
        let t = f.time_last.secs();
        if t > self.now {
            self.now = t;
            if self.next_check == 0 {
                self.next_check = t + self.cfg.check_period;
            } else if t >= self.next_check {
                self.next_check = t + self.cfg.check_period;
                self.check(out);
            }
        }
        if f.protocol != 6 {
            return;
        }
        let (to_server, rule) = orient(f);
        let (miner, pool, port) = if to_server {
            (f.src_ip, f.dst_ip, f.dst_port)
        } else {
            (f.dst_ip, f.src_ip, f.src_port)
        };
        let pool_ip = pool.to_std();
        if self.whitelist.contains(pool_ip, port) || !self.blacklist.contains(pool_ip, port) {
            return;
        }
        let now = self.now;
        let s = self
            .suspects
            .entry((miner, pool, port))
            .or_insert_with(|| Suspect {
                first: f.time_first,
                last: f.time_last,
                packets: 0,
                last_exported: now,
                rule,
            });
        s.first = s.first.min(f.time_first);
        s.last = s.last.max(f.time_last);
        s.packets = s.packets.saturating_add(f.packets);
    }

    fn finish(&mut self, out: &mut Vec<Alert>) {
        let mut keys: Vec<_> = self.suspects.keys().copied().collect();
        keys.sort_unstable();
        for k in keys {
            if let Some(s) = self.suspects.get(&k) {
                out.push(Self::alert(&k, s));
            }
        }
        self.suspects.clear();
    }

    fn encode(&self, a: &Alert, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        let t = b.template();
        let i = |n: &str| field(t, n);
        b.set_time(i("TIME_FIRST"), a.time_first)?;
        b.set_time(i("TIME_LAST"), a.time_last)?;
        b.set_ip(i("SRC_IP"), a.miner)?;
        b.set_ip(i("DST_IP"), a.pool)?;
        b.set_u16(i("DST_PORT"), a.port)?;
        b.set_u32(i("EVENT_SCALE"), a.packets)?;
        b.set_u8(i("SERVER_RULE"), a.rule as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(src: &str, sp: u16, dst: &str, dp: u16, flags: u8, t: u32) -> Flow {
        Flow {
            src_ip: UrIp::parse(src).unwrap(),
            dst_ip: UrIp::parse(dst).unwrap(),
            src_port: sp,
            dst_port: dp,
            protocol: 6,
            tcp_flags: flags,
            packets: 10,
            bytes: 900,
            time_first: UrTime::from_secs_millis(t, 0),
            time_last: UrTime::from_secs_millis(t + 5, 0),
        }
    }

    const ACKPSH: u8 = tcp::ACK | tcp::PSH;

    #[test]
    fn orientation_rules() {
        let f = |sp, dp, fl| orient(&flow("10.0.0.1", sp, "10.0.0.2", dp, fl, 0));
        assert_eq!(f(40000, 3333, tcp::SYN | ACKPSH), (true, ServerRule::Syn));
        assert_eq!(f(40000, 443, ACKPSH), (true, ServerRule::DstPort));
        assert_eq!(f(443, 40000, ACKPSH), (false, ServerRule::SrcPort));
        assert_eq!(f(3333, 40000, ACKPSH), (false, ServerRule::LowerPort));
        assert_eq!(f(40000, 3333, ACKPSH), (true, ServerRule::LowerPort));
        // a lone SYN+ACK answer: its source is the server
        let mut a = flow("10.0.0.2", 3333, "10.0.0.1", 40000, tcp::SYN | tcp::ACK, 0);
        a.packets = 1;
        assert_eq!(orient(&a), (false, ServerRule::LowerPort));
    }

    #[test]
    fn lists() {
        let l = PoolList::parse(
            "# pools\n192.0.2.10:3333\n198.51.100.5\n[2001:db8::1]:4444\n",
            "b",
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(l.contains(ip("192.0.2.10"), 3333));
        assert!(!l.contains(ip("192.0.2.10"), 3334));
        assert!(l.contains(ip("198.51.100.5"), 1));
        assert!(l.contains(ip("2001:db8::1"), 4444));
        let e = PoolList::parse("\n1.2.3.4:x\n", "b")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "b:2: `x` is not a port");
    }

    fn det() -> Detector {
        Detector::new(
            Config::default(),
            PoolList::parse("192.0.2.10:3333\n192.0.2.11\n", "b").unwrap(),
            PoolList::parse("192.0.2.11:443\n", "w").unwrap(),
        )
    }

    #[test]
    fn unlisted_pools_are_silent() {
        let mut d = det();
        let mut out = Vec::new();
        for t in 0..100 {
            d.flow(
                &flow("10.0.0.1", 40000, "192.0.2.99", 3333, ACKPSH, 1000 + t * 10),
                &mut out,
            );
            // whitelisted port of a listed pool
            d.flow(
                &flow("10.0.0.1", 40001, "192.0.2.11", 443, ACKPSH, 1000 + t * 10),
                &mut out,
            );
        }
        d.finish(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn miner_reported_with_the_expected_fields() {
        let mut d = det();
        let mut out = Vec::new();
        // 10 minutes of stratum traffic both ways, then silence (another host's flow moves time).
        for t in 0..60 {
            d.flow(
                &flow("10.0.0.1", 40000, "192.0.2.10", 3333, ACKPSH, 1000 + t * 10),
                &mut out,
            );
            d.flow(
                &flow("192.0.2.10", 3333, "10.0.0.1", 40000, ACKPSH, 1000 + t * 10),
                &mut out,
            );
        }
        // A periodic report after timeout_active (300 s).
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].miner.to_string(), "10.0.0.1");
        assert_eq!(out[0].pool.to_string(), "192.0.2.10");
        assert_eq!(out[0].port, 3333);
        assert_eq!(out[0].rule, ServerRule::LowerPort);
        d.flow(&flow("10.9.9.9", 1, "10.9.9.8", 2, ACKPSH, 2000), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].packets, 1200);
        assert_eq!(out[1].time_first.secs(), 1000);
        assert_eq!(out[1].time_last.secs(), 1595);
        assert_eq!(d.suspects(), 0);
    }
}
