//! miner_detector — hosts talking to cryptocurrency mining pools.
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
//! With `stratum_check` the detector also learns pools, as C does: a
//! client → server flow whose TCP flags are exactly ACK or ACK|PSH towards
//! an unlisted server opens a suspect too, whose client → server flows feed
//! the counters of [`score::Counters`]. At every check the suspects of
//! unlisted servers are scored ([`score::score`]) and put to the decision
//! tree ([`score::tree`]); a suspect with score ≥ `score_threshold` that
//! the tree accepts makes its server a probe request. The detector does no
//! networking: a [`Prober`] (the binary's Stratum prober) or the caller
//! ([`Detector::take_probe_requests`] / [`Detector::probe_result`])
//! answers. A pool goes to the learned blacklist and its suspects are then
//! reported like those of listed pools; anything else goes to the learned
//! whitelist and its suspects are dropped. Learned entries expire 24 h of
//! flow time after they were added (swept hourly); file entries never do.
//!
//! The detector also reads session_probe's mining features (one record per
//! session and window: server and client, both sides' packets and bits,
//! SERVER_ID_METHOD): each is a flow from the client to the server, and the
//! eBPF program's server identification (the same four rules, applied to
//! every packet) becomes the alert's SERVER_RULE. Such records carry no TCP
//! flags, so they match listed pools only (no Stratum learning).
//!
//! Differences from C: list entries without a port match every port (C
//! stores them with port 0, matching only port 0); flows are oriented by
//! the rules above, so answers from the pool count for the miner too (but
//! only client → server flows feed the score and the tree, as C keyed
//! suspects by the flow's own destination); time is the flows' own; the
//! probes run in the background, so a suspect of a server being probed is
//! kept until the answer comes; suspects of unlisted servers are not
//! tracked at all without `stratum_check` (C tracks and scores them but
//! never acts on the score).
#![forbid(unsafe_code)]

pub mod score;
pub mod stratum;

use detector_common::{field, tcp, FastMap, FastSet, Flow, FlowDetector};
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
    /// The rule of a code (session_probe's SERVER_ID_METHOD uses the same).
    pub fn from_code(code: u8) -> Option<ServerRule> {
        Some(match code {
            1 => ServerRule::Syn,
            2 => ServerRule::DstPort,
            3 => ServerRule::SrcPort,
            4 => ServerRule::LowerPort,
            _ => return None,
        })
    }

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

/// (server is the destination, rule). A record of session_probe's session
/// features says itself: its server is the destination (see
/// [`detector_common::FlowReader`]), chosen by the rule it names, which
/// the eBPF program applied to every packet (it saw the SYN, or not).
pub fn orient(f: &Flow) -> (bool, ServerRule) {
    if let Some(rule) = ServerRule::from_code(f.server_rule) {
        return (true, rule);
    }
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
    exact: FastSet<(IpAddr, u16)>,
    any_port: FastSet<IpAddr>,
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

    /// Every entry: (address, port), port `None` = every port.
    pub fn entries(&self) -> impl Iterator<Item = (IpAddr, Option<u16>)> + '_ {
        self.any_port
            .iter()
            .map(|ip| (*ip, None))
            .chain(self.exact.iter().map(|(ip, p)| (*ip, Some(*p))))
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
    /// Learn pools: score unlisted servers and ask for Stratum probes.
    pub stratum_check: bool,
    /// The least score that makes a probe request.
    pub score_threshold: u32,
    /// At most this many suspects are kept; when full, the eighth that was
    /// seen longest ago is dropped (listed ones among them are reported).
    pub max_suspects: usize,
    /// At most this many learned entries per list (the oldest eighth goes).
    pub max_learned: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            timeout_active: 300,
            timeout_inactive: 60,
            check_period: 60,
            stratum_check: false,
            score_threshold: 7,
            max_suspects: 1 << 20,
            max_learned: 1 << 20,
        }
    }
}

/// Learned list entries live this long (s of flow time), as in C.
pub const LEARNED_TTL: u32 = 24 * 3600;
/// Learned lists are swept for expired entries this often (s of flow time).
pub const SWEEP_PERIOD: u32 = 3600;
/// At most this many servers wait for a probe answer at once.
pub const MAX_PENDING_PROBES: usize = 4096;

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

/// A server the detector wants probed for Stratum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProbeRequest {
    pub ip: IpAddr,
    pub port: u16,
}

/// The answer to a [`ProbeRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    pub ip: IpAddr,
    pub port: u16,
    /// The server speaks Stratum (is a mining pool).
    pub is_pool: bool,
}

/// Answers probe requests in the background (the binary's Stratum prober;
/// the detector itself never touches the network).
pub trait Prober {
    /// Queues `req`; false when it cannot be taken now (the request is then
    /// made again at a later check).
    fn submit(&mut self, req: ProbeRequest) -> bool;
    /// The answers ready now, without waiting.
    fn ready(&mut self) -> Vec<ProbeResult>;
    /// End of input: waits (within the prober's own time bound) for the
    /// answers still outstanding.
    fn wait_all(&mut self) -> Vec<ProbeResult>;
}

#[derive(Debug)]
struct Suspect {
    first: UrTime,
    last: UrTime,
    /// Packets of both directions, for the alert.
    packets: u32,
    last_exported: u32,
    rule: ServerRule,
    /// Client → server flows only: what the score and the tree read (kept
    /// only when learning, boxed so that listed-pool suspects stay small).
    counts: Option<Box<score::Counters>>,
}

/// Learned (server, port) entries with the flow time they were added.
#[derive(Debug, Default)]
struct Learned {
    added: FastMap<(IpAddr, u16), u32>,
}

impl Learned {
    fn contains(&self, ip: IpAddr, port: u16) -> bool {
        !self.added.is_empty() && self.added.contains_key(&(ip, port))
    }

    fn insert(&mut self, key: (IpAddr, u16), now: u32, cap: usize) {
        if !self.added.contains_key(&key) && self.added.len() >= cap.max(1) {
            let mut by_age: Vec<(u32, (IpAddr, u16))> =
                self.added.iter().map(|(k, t)| (*t, *k)).collect();
            let n = (by_age.len() / 8).max(1);
            by_age.select_nth_unstable(n - 1);
            for (_, k) in &by_age[..n] {
                self.added.remove(k);
            }
        }
        self.added.insert(key, now);
    }

    fn remove(&mut self, key: &(IpAddr, u16)) {
        self.added.remove(key);
    }

    fn sweep(&mut self, now: u32) {
        self.added
            .retain(|_, t| now.saturating_sub(*t) < LEARNED_TTL);
    }
}

type Key = (UrIp, UrIp, u16);

/// The detector state.
pub struct Detector {
    cfg: Config,
    blacklist: PoolList,
    whitelist: PoolList,
    learned_black: Learned,
    learned_white: Learned,
    suspects: FastMap<Key, Suspect>,
    /// Servers asked about and not answered yet.
    pending: FastSet<ProbeRequest>,
    /// Requests nobody has taken yet (without a prober).
    requests: Vec<ProbeRequest>,
    prober: Option<Box<dyn Prober>>,
    now: u32,
    next_check: u32,
    next_sweep: u32,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("cfg", &self.cfg)
            .field("suspects", &self.suspects.len())
            .field("learned_black", &self.learned_black.added.len())
            .field("learned_white", &self.learned_white.added.len())
            .field("pending", &self.pending.len())
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Detector {
    pub fn new(cfg: Config, blacklist: PoolList, whitelist: PoolList) -> Detector {
        Detector {
            cfg,
            blacklist,
            whitelist,
            learned_black: Learned::default(),
            learned_white: Learned::default(),
            suspects: FastMap::default(),
            pending: FastSet::default(),
            requests: Vec::new(),
            prober: None,
            now: 0,
            next_check: 0,
            next_sweep: 0,
        }
    }

    /// Hands probe requests to `p` from now on (instead of keeping them for
    /// [`take_probe_requests`](Detector::take_probe_requests)); its answers
    /// are applied before each flow and at the end of input.
    pub fn set_prober(&mut self, p: Box<dyn Prober>) {
        self.prober = Some(p);
    }

    pub fn suspects(&self) -> usize {
        self.suspects.len()
    }

    /// Servers the detector wants probed, in (address, port) order; each is
    /// asked for once until its [`probe_result`](Detector::probe_result).
    pub fn take_probe_requests(&mut self) -> Vec<ProbeRequest> {
        std::mem::take(&mut self.requests)
    }

    /// Is (ip, port) a pool: on the file blacklist or learned (and not
    /// whitelisted)?
    pub fn is_pool(&self, ip: IpAddr, port: u16) -> bool {
        !self.is_whitelisted(ip, port) && self.is_black(ip, port)
    }

    fn is_black(&self, ip: IpAddr, port: u16) -> bool {
        self.blacklist.contains(ip, port) || self.learned_black.contains(ip, port)
    }

    /// Is (ip, port) known not to be a pool (file or learned whitelist)?
    pub fn is_whitelisted(&self, ip: IpAddr, port: u16) -> bool {
        self.whitelist.contains(ip, port) || self.learned_white.contains(ip, port)
    }

    /// The answer to a probe of (ip, port), at flow time `now` (learned
    /// entries expire [`LEARNED_TTL`] after it). A pool's suspects are
    /// reported from now on like those of listed pools; a non-pool's are
    /// silent from now on and dropped at the next check (not here: that
    /// would be a walk over every suspect per answer).
    pub fn probe_result(&mut self, ip: IpAddr, port: u16, is_pool: bool, now: u32) {
        self.pending.remove(&ProbeRequest { ip, port });
        let key = (ip, port);
        if is_pool {
            self.learned_white.remove(&key);
            self.learned_black.insert(key, now, self.cfg.max_learned);
        } else {
            self.learned_black.remove(&key);
            self.learned_white.insert(key, now, self.cfg.max_learned);
        }
    }

    /// The blacklist as `ip:port` lines (file entries without a port as a
    /// bare address), file entries then learned ones, sorted.
    pub fn blacklist_lines(&self) -> Vec<String> {
        list_lines(&self.blacklist, &self.learned_black)
    }

    /// The whitelist, as [`blacklist_lines`](Detector::blacklist_lines).
    pub fn whitelist_lines(&self) -> Vec<String> {
        list_lines(&self.whitelist, &self.learned_white)
    }

    fn alert(k: &Key, s: &Suspect) -> Alert {
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

    fn apply_results(&mut self, results: Vec<ProbeResult>) {
        for r in results {
            self.probe_result(r.ip, r.port, r.is_pool, self.now);
        }
    }

    /// Should this unlisted server be probed, judging by suspect `s`?
    fn wants_probe(&self, s: &Suspect) -> bool {
        let Some(c) = s.counts.as_deref() else {
            return false;
        };
        if c.flows() == 0 || self.pending.len() >= MAX_PENDING_PROBES {
            return false;
        }
        let active = s.last.secs().saturating_sub(s.last_exported);
        score::score(c, active) >= self.cfg.score_threshold
            && score::tree(&score::features(c, active))
    }

    fn check(&mut self, out: &mut Vec<Alert>) {
        enum Act {
            Drop,
            Report,
            ReportAndDrop,
            Probe(ProbeRequest),
        }
        let (now, c) = (self.now, self.cfg);
        // Decide first (one pass, nothing changes), then act in key order.
        let mut acts: Vec<(Key, Act)> = Vec::new();
        for (k, s) in &self.suspects {
            let (ip, port) = (k.1.to_std(), k.2);
            let white = self.is_whitelisted(ip, port);
            let listed = !white && self.is_black(ip, port);
            if !listed {
                if white {
                    acts.push((*k, Act::Drop));
                    continue;
                }
                let req = ProbeRequest { ip, port };
                if !self.pending.is_empty() && self.pending.contains(&req) {
                    continue; // kept until the answer
                }
                if c.stratum_check && self.wants_probe(s) {
                    acts.push((*k, Act::Probe(req)));
                    continue;
                }
            }
            if now.saturating_sub(s.last.secs()) >= c.timeout_inactive {
                acts.push((
                    *k,
                    if listed {
                        Act::ReportAndDrop
                    } else {
                        Act::Drop
                    },
                ));
            } else if now.saturating_sub(s.last_exported) >= c.timeout_active {
                acts.push((*k, if listed { Act::Report } else { Act::Drop }));
            }
        }
        acts.sort_unstable_by_key(|a| a.0);
        for (k, act) in acts {
            match act {
                Act::Drop => {
                    self.suspects.remove(&k);
                }
                Act::ReportAndDrop => {
                    if let Some(s) = self.suspects.remove(&k) {
                        out.push(Self::alert(&k, &s));
                    }
                }
                Act::Report => {
                    if let Some(s) = self.suspects.get_mut(&k) {
                        s.last_exported = now;
                        out.push(Self::alert(&k, s));
                    }
                }
                Act::Probe(req) => {
                    // Several miners of one server: one request.
                    if self.pending.len() < MAX_PENDING_PROBES && self.pending.insert(req) {
                        self.requests.push(req);
                    }
                }
            }
        }
        if let Some(p) = &mut self.prober {
            for req in std::mem::take(&mut self.requests) {
                if !p.submit(req) {
                    self.pending.remove(&req);
                }
            }
        }
    }

    /// Makes room for one more suspect: drops the eighth seen longest ago,
    /// reporting those of pools.
    fn evict(&mut self, out: &mut Vec<Alert>) {
        let mut by_age: Vec<(UrTime, Key)> =
            self.suspects.iter().map(|(k, s)| (s.last, *k)).collect();
        let n = (by_age.len() / 8).max(1);
        by_age.select_nth_unstable(n - 1);
        by_age[..n].sort_unstable();
        for (_, k) in &by_age[..n] {
            if let Some(s) = self.suspects.remove(k) {
                if self.is_pool(k.1.to_std(), k.2) {
                    out.push(Self::alert(k, &s));
                }
            }
        }
    }
}

fn list_lines(file: &PoolList, learned: &Learned) -> Vec<String> {
    let entry = |ip: &IpAddr, port: Option<u16>| match (ip, port) {
        (_, None) => ip.to_string(),
        (IpAddr::V4(a), Some(p)) => format!("{a}:{p}"),
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
    };
    let mut f: Vec<(IpAddr, Option<u16>)> = file.entries().collect();
    f.sort_unstable();
    let mut l: Vec<(IpAddr, u16)> = learned.added.keys().copied().collect();
    l.sort_unstable();
    f.iter()
        .map(|(ip, p)| entry(ip, *p))
        .chain(l.iter().map(|(ip, p)| entry(ip, Some(*p))))
        .collect()
}

impl FlowDetector for Detector {
    type Alert = Alert;

    fn input_spec(&self) -> &'static str {
        INPUT_SPEC
    }

    fn alternative_spec(&self) -> Option<&'static str> {
        Some(detector_common::SESSION_SPEC)
    }

    fn output_spec(&self) -> &'static str {
        ALERT_SPEC
    }

    fn flow(&mut self, f: &Flow, out: &mut Vec<Alert>) {
        if !self.pending.is_empty() {
            if let Some(p) = &mut self.prober {
                let r = p.ready();
                self.apply_results(r);
            }
        }
        let t = f.time_last.secs();
        if t > self.now {
            self.now = t;
            if self.next_check == 0 {
                self.next_check = t + self.cfg.check_period;
                self.next_sweep = t + SWEEP_PERIOD;
            } else {
                if t >= self.next_sweep {
                    self.next_sweep = t + SWEEP_PERIOD;
                    self.learned_black.sweep(t);
                    self.learned_white.sweep(t);
                }
                if t >= self.next_check {
                    self.next_check = t + self.cfg.check_period;
                    self.check(out);
                }
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
        if self.is_whitelisted(pool_ip, port) {
            return;
        }
        let key = (miner, pool, port);
        let flags = f.tcp_flags;
        let ack_only = flags == tcp::ACK;
        let ack_push = flags == tcp::ACK | tcp::PSH;
        if !self.is_black(pool_ip, port) {
            // Unlisted servers matter only when learning: an exact ACK or
            // ACK|PSH flow to the server opens a suspect, any flow adds to
            // one already open.
            if !self.cfg.stratum_check {
                return;
            }
            let learnable = to_server && (ack_only || ack_push);
            if !learnable && !self.suspects.contains_key(&key) {
                return;
            }
        }
        if self.suspects.len() >= self.cfg.max_suspects.max(1) && !self.suspects.contains_key(&key)
        {
            self.evict(out);
        }
        let (now, learning) = (self.now, self.cfg.stratum_check);
        let s = self.suspects.entry(key).or_insert_with(|| Suspect {
            first: f.time_first,
            last: f.time_last,
            packets: 0,
            last_exported: now,
            rule,
            counts: learning.then(Box::default),
        });
        s.first = s.first.min(f.time_first);
        s.last = s.last.max(f.time_last);
        s.packets = s.packets.saturating_add(f.packets);
        if let (true, Some(c)) = (to_server, s.counts.as_deref_mut()) {
            c.ack_flows += u64::from(ack_only);
            c.ackpush_flows += u64::from(ack_push);
            c.other_flows += u64::from(!ack_only && !ack_push);
            c.syn_flows += u64::from(flags & tcp::SYN != 0);
            c.rst_flows += u64::from(flags & tcp::RST != 0);
            c.fin_flows += u64::from(flags & tcp::FIN != 0);
            c.req_flows += u64::from(f.src_port > f.dst_port);
            c.packets += u64::from(f.packets);
            c.bytes += f.bytes;
        }
    }

    fn finish(&mut self, out: &mut Vec<Alert>) {
        if !self.pending.is_empty() {
            if let Some(p) = &mut self.prober {
                let r = p.wait_all();
                self.apply_results(r);
            }
        }
        let mut keys: Vec<_> = self.suspects.keys().copied().collect();
        keys.sort_unstable();
        for k in keys {
            if let Some(s) = self.suspects.get(&k) {
                if self.is_pool(k.1.to_std(), k.2) {
                    out.push(Self::alert(&k, s));
                }
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
            server_rule: 0,
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

    const POOL: &str = "198.51.100.9";

    fn pool_ip() -> IpAddr {
        POOL.parse().unwrap()
    }

    /// One Stratum-like flow a second from 10.0.0.7:50000 to POOL:3333:
    /// ACK|PSH, 5 packets of 106 bytes (score 8, the tree's ppm > 135 branch).
    fn stratum(t: u32) -> Flow {
        Flow {
            src_ip: UrIp::parse("10.0.0.7").unwrap(),
            dst_ip: UrIp::parse(POOL).unwrap(),
            src_port: 50000,
            dst_port: 3333,
            protocol: 6,
            tcp_flags: ACKPSH,
            packets: 5,
            bytes: 530,
            time_first: UrTime::from_secs_millis(t, 0),
            time_last: UrTime::from_secs_millis(t, 0),
            server_rule: 0,
        }
    }

    /// A UDP flow elsewhere: moves time, opens nothing.
    fn tick(t: u32) -> Flow {
        let mut f = flow("10.9.9.9", 1, "10.9.9.8", 2, 0, t);
        f.protocol = 17;
        f
    }

    fn learning() -> Detector {
        let cfg = Config {
            stratum_check: true,
            ..Config::default()
        };
        Detector::new(
            cfg,
            PoolList::parse("192.0.2.10:3333\n", "b").unwrap(),
            PoolList::default(),
        )
    }

    /// Feeds stratum flows for [from, to) and returns the alerts.
    fn run(d: &mut Detector, from: u32, to: u32) -> Vec<Alert> {
        d.feed((from..to).map(stratum))
    }

    #[test]
    fn probe_request_then_pool_then_alert() {
        let mut d = learning();
        // The first check (60 s after the first flow) scores the suspect.
        assert!(run(&mut d, 1000, 1060).is_empty());
        assert!(d.take_probe_requests().is_empty());
        assert!(run(&mut d, 1060, 1061).is_empty());
        let req = ProbeRequest {
            ip: pool_ip(),
            port: 3333,
        };
        assert_eq!(d.take_probe_requests(), vec![req]);
        // Asked once until the answer, however long it takes.
        assert!(run(&mut d, 1061, 1130).is_empty());
        assert!(d.take_probe_requests().is_empty());
        assert!(!d.is_pool(pool_ip(), 3333));
        d.probe_result(pool_ip(), 3333, true, 1130);
        assert!(d.is_pool(pool_ip(), 3333));
        assert!(run(&mut d, 1130, 1201).is_empty());
        // Silence, then another host's flow moves time past the idle timeout.
        let out = d.feed([tick(1300)]);
        assert_eq!(
            out,
            vec![Alert {
                time_first: UrTime::from_secs_millis(1000, 0),
                time_last: UrTime::from_secs_millis(1200, 0),
                miner: UrIp::parse("10.0.0.7").unwrap(),
                pool: UrIp::parse(POOL).unwrap(),
                port: 3333,
                packets: 201 * 5,
                rule: ServerRule::LowerPort,
            }]
        );
        assert_eq!(d.suspects(), 0);
        assert!(d.take_probe_requests().is_empty());
        assert_eq!(
            d.blacklist_lines(),
            ["192.0.2.10:3333", "198.51.100.9:3333"]
        );
        assert!(d.whitelist_lines().is_empty());
    }

    #[test]
    fn nothing_is_learned_without_stratum_check() {
        let mut d = det();
        assert!(run(&mut d, 1000, 1400).is_empty());
        assert!(d.take_probe_requests().is_empty());
        assert_eq!(d.suspects(), 0, "unlisted servers are not tracked");
        let mut out = Vec::new();
        d.finish(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn low_score_is_not_probed() {
        let mut d = learning();
        // Full-size packets: 1500 B each is outside every byte-rate rule
        // and the tree says no.
        let mut big = |t| {
            let mut f = stratum(t);
            f.bytes = 7500;
            f
        };
        d.feed((1000..1400).map(&mut big));
        assert!(d.take_probe_requests().is_empty());
        // A threshold above the score stops even a tree-approved suspect.
        let mut d = learning();
        d.cfg.score_threshold = 9;
        run(&mut d, 1000, 1100);
        assert!(d.take_probe_requests().is_empty());
    }

    #[test]
    fn not_a_pool_is_whitelisted_and_silent() {
        let mut d = learning();
        run(&mut d, 1000, 1061);
        assert_eq!(d.take_probe_requests().len(), 1);
        d.probe_result(pool_ip(), 3333, false, 1061);
        assert!(d.is_whitelisted(pool_ip(), 3333));
        assert!(!d.is_pool(pool_ip(), 3333));
        // Dropped at the next check; new flows open nothing.
        assert!(run(&mut d, 1061, 1200).is_empty());
        assert_eq!(d.suspects(), 0);
        assert!(d.take_probe_requests().is_empty());
        let mut out = Vec::new();
        d.finish(&mut out);
        assert!(out.is_empty());
        assert_eq!(d.whitelist_lines(), ["198.51.100.9:3333"]);
    }

    #[test]
    fn learned_entries_expire_after_a_day_of_flow_time() {
        let mut d = learning();
        run(&mut d, 1000, 1061);
        d.probe_result(pool_ip(), 3333, true, 1130);
        let other = tick;
        // A second short of 24 h at a sweep: kept.
        d.feed([other(1130 + LEARNED_TTL - 6)]);
        assert!(d.is_pool(pool_ip(), 3333));
        // Past 24 h but before the next hourly sweep: still kept.
        d.feed([other(1130 + LEARNED_TTL + 60)]);
        assert!(d.is_pool(pool_ip(), 3333));
        d.feed([other(1130 + LEARNED_TTL - 6 + SWEEP_PERIOD)]);
        assert!(!d.is_pool(pool_ip(), 3333));
        // File entries stay.
        assert!(d.is_pool("192.0.2.10".parse().unwrap(), 3333));
        assert_eq!(d.blacklist_lines(), ["192.0.2.10:3333"]);
    }

    /// A prober that answers "pool" to everything, either at once or only
    /// when waited for at the end of input.
    struct Fake {
        asked: Vec<ProbeRequest>,
        at_once: bool,
    }

    impl Prober for Fake {
        fn submit(&mut self, req: ProbeRequest) -> bool {
            self.asked.push(req);
            true
        }
        fn ready(&mut self) -> Vec<ProbeResult> {
            if !self.at_once {
                return Vec::new();
            }
            self.wait_all()
        }
        fn wait_all(&mut self) -> Vec<ProbeResult> {
            self.asked
                .drain(..)
                .map(|r| ProbeResult {
                    ip: r.ip,
                    port: r.port,
                    is_pool: true,
                })
                .collect()
        }
    }

    #[test]
    fn a_prober_answers_before_the_next_flow() {
        for at_once in [true, false] {
            let mut d = learning();
            d.set_prober(Box::new(Fake {
                asked: Vec::new(),
                at_once,
            }));
            run(&mut d, 1000, 1062);
            assert!(d.take_probe_requests().is_empty(), "handed to the prober");
            assert_eq!(d.is_pool(pool_ip(), 3333), at_once);
            let mut out = Vec::new();
            d.finish(&mut out);
            assert_eq!(out.len(), 1, "{out:?}");
            assert_eq!(out[0].pool.to_string(), POOL);
            assert_eq!(out[0].packets, 62 * 5);
        }
    }

    #[test]
    fn full_table_drops_the_oldest_and_reports_pools() {
        let mut d = det();
        d.cfg.max_suspects = 8;
        let mut out = Vec::new();
        for i in 0..9u32 {
            let m = format!("10.0.1.{i}");
            d.flow(
                &flow(&m, 40000, "192.0.2.10", 3333, ACKPSH, 1000 + i),
                &mut out,
            );
        }
        assert_eq!(d.suspects(), 8);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].miner.to_string(), "10.0.1.0");
    }

    #[test]
    fn list_lines_formats() {
        let d = Detector::new(
            Config::default(),
            PoolList::parse("[2001:db8::1]:4444\n198.51.100.5\n", "b").unwrap(),
            PoolList::default(),
        );
        assert_eq!(d.blacklist_lines(), ["198.51.100.5", "[2001:db8::1]:4444"]);
    }
}
