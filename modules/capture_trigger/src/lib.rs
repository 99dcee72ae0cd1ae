//! capture_trigger — a full packet capture of exactly the host pair that
//! ipblacklistfilter flagged: a local host (in the `--local` prefixes) and
//! the blacklisted address it talks to, both directions.
//!
//! The session table ([`Sessions`]) decides, from the flagged flows and
//! their own times (never the wall clock), which pairs start a capture:
//!
//! - a flow yields a pair when one side is listed (its SRC_BLACKLIST /
//!   DST_BLACKLIST bitmap is not 0) and the other side is local; both
//!   sides listed and local give two pairs;
//! - a pair with a capture running is not started again;
//! - a pair started less than the suppression window ago (by the flows'
//!   times) is not started again (`suppressed`);
//! - with `max_sessions` captures running, a new pair is `refused` (not
//!   started, not remembered: a later flow may start it once a place is
//!   free).
//!
//! The captures themselves (a live interface, a BPF filter
//! `host LOCAL and host REMOTE`) run in the binary; [`PcapWriter`] writes
//! their files and [`capture_file_name`] names them.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use unirec::UrTime;

/// Why an option is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("--local {0:?}: not an address prefix (give e.g. 198.51.100.0/24,2001:db8::/32)")]
    Prefix(String),
    #[error("--local: no prefix given (the local hosts' networks, e.g. 198.51.100.0/24)")]
    NoPrefix,
}

/// The local networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalNets {
    nets: Vec<(IpAddr, u8)>,
}

fn bits(a: IpAddr) -> (u128, u32) {
    match a {
        IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    }
}

fn masked(a: u128, width: u32, len: u8) -> u128 {
    if len == 0 {
        return 0;
    }
    let shift = width - u32::from(len);
    (a >> shift) << shift
}

impl LocalNets {
    /// `198.51.100.0/24,2001:db8::/32,192.0.2.7` (a bare address is one host).
    pub fn parse(text: &str) -> Result<LocalNets, OptionError> {
        let mut nets = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = || OptionError::Prefix(item.to_string());
            let (addr, len) = match item.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (item, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let width = bits(addr).1 as u8;
            let len = match len {
                Some(l) => l
                    .parse::<u8>()
                    .ok()
                    .filter(|&l| l <= width)
                    .ok_or_else(bad)?,
                None => width,
            };
            nets.push((addr, len));
        }
        if nets.is_empty() {
            return Err(OptionError::NoPrefix);
        }
        Ok(LocalNets { nets })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (a, w) = bits(ip);
        self.nets.iter().any(|&(n, len)| {
            let (nb, nw) = bits(n);
            nw == w && masked(a, w, len) == masked(nb, w, len)
        })
    }
}

/// A local host and the listed address it talked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pair {
    pub local: IpAddr,
    pub remote: IpAddr,
}

impl Pair {
    /// The BPF filter of the pair's packets, both directions.
    pub fn filter(&self) -> String {
        format!("host {} and host {}", self.local, self.remote)
    }
}

/// A flagged flow, as far as the table needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flagged {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_blacklist: u64,
    pub dst_blacklist: u64,
    /// The flow's time (TIME_LAST).
    pub time: UrTime,
}

/// Options of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_sessions: usize,
    /// Milliseconds of flow time in which a pair is not started again.
    pub suppress_ms: u64,
}

/// What the table decided for one pair of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start a capture of this pair (the table counts it as active until
    /// [`Sessions::finish`]); `blacklist` is the listed side's bitmap.
    Start { pair: Pair, blacklist: u64 },
    /// A capture of the pair is running.
    Running(Pair),
    /// Started less than the window ago.
    Suppressed(Pair),
    /// All places taken.
    Refused(Pair),
}

/// The table's counters (the service interface shows them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub active: u64,
    pub started: u64,
    pub refused: u64,
    pub suppressed: u64,
    pub done: u64,
    /// Flagged flows without a local side (nothing to capture).
    pub not_local: u64,
}

/// The capture sessions and the pairs' last starts.
#[derive(Debug, Clone)]
pub struct Sessions {
    local: LocalNets,
    limits: Limits,
    active: HashMap<Pair, UrTime>,
    last_start: HashMap<Pair, UrTime>,
    /// The latest flow time seen (the table's clock).
    now: UrTime,
    pub counters: Counters,
}

/// Remembered starts above this many are pruned of the expired ones.
const PRUNE_AT: usize = 4096;

impl Sessions {
    pub fn new(local: LocalNets, limits: Limits) -> Sessions {
        Sessions {
            local,
            limits,
            active: HashMap::new(),
            last_start: HashMap::new(),
            now: UrTime::default(),
            counters: Counters::default(),
        }
    }

    /// The pairs being captured, with their start times.
    pub fn active(&self) -> impl Iterator<Item = (&Pair, &UrTime)> {
        self.active.iter()
    }

    /// The pairs of a flagged flow: (pair, bitmap of the listed side).
    pub fn pairs(&self, f: &Flagged) -> Vec<(Pair, u64)> {
        let mut out = Vec::with_capacity(1);
        if f.dst_blacklist != 0 && self.local.contains(f.src) && f.src != f.dst {
            out.push((
                Pair {
                    local: f.src,
                    remote: f.dst,
                },
                f.dst_blacklist,
            ));
        }
        if f.src_blacklist != 0 && self.local.contains(f.dst) && f.src != f.dst {
            out.push((
                Pair {
                    local: f.dst,
                    remote: f.src,
                },
                f.src_blacklist,
            ));
        }
        out
    }

    /// Decides for each pair of a flagged flow.
    pub fn flow(&mut self, f: &Flagged) -> Vec<Decision> {
        self.now = self.now.max(f.time);
        let pairs = self.pairs(f);
        if pairs.is_empty() {
            self.counters.not_local += 1;
        }
        pairs
            .into_iter()
            .map(|(pair, blacklist)| self.decide(pair, blacklist))
            .collect()
    }

    fn decide(&mut self, pair: Pair, blacklist: u64) -> Decision {
        if self.active.contains_key(&pair) {
            return Decision::Running(pair);
        }
        if let Some(&last) = self.last_start.get(&pair) {
            if self.now.as_millis().saturating_sub(last.as_millis()) < self.limits.suppress_ms {
                self.counters.suppressed += 1;
                return Decision::Suppressed(pair);
            }
        }
        if self.active.len() >= self.limits.max_sessions {
            self.counters.refused += 1;
            return Decision::Refused(pair);
        }
        if self.last_start.len() >= PRUNE_AT {
            let (now, window) = (self.now.as_millis(), self.limits.suppress_ms);
            self.last_start
                .retain(|_, t| now.saturating_sub(t.as_millis()) < window);
        }
        self.active.insert(pair, self.now);
        self.last_start.insert(pair, self.now);
        self.counters.started += 1;
        self.counters.active = self.active.len() as u64;
        Decision::Start { pair, blacklist }
    }

    /// A capture ended (done, failed or stopped): its place is free; the
    /// suppression window still runs from its start.
    pub fn finish(&mut self, pair: &Pair) {
        if self.active.remove(pair).is_some() {
            self.counters.done += 1;
            self.counters.active = self.active.len() as u64;
        }
    }
}

/// `DIR/<time>_<local>_<remote>.pcap`, the time in UTC
/// (`20261203T142300Z`); IPv6 colons become `-` (no shell quoting needed).
pub fn capture_file_name(dir: &Path, time: UrTime, pair: &Pair) -> PathBuf {
    let secs = i64::from(time.secs());
    let (y, mo, d) = unirec::time::civil_from_days(secs.div_euclid(86400));
    let s = secs.rem_euclid(86400);
    let host = |a: IpAddr| a.to_string().replace(':', "-");
    dir.join(format!(
        "{y:04}{mo:02}{d:02}T{:02}{:02}{:02}Z_{}_{}.pcap",
        s / 3600,
        s / 60 % 60,
        s % 60,
        host(pair.local),
        host(pair.remote)
    ))
}

/// A classic pcap file (microsecond stamps) whose write errors are
/// returned, unlike libpcap's dump functions, so a full disk is noticed.
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header for `linktype` (a DLT number).
    pub fn new(mut out: W, linktype: u32, snaplen: u32) -> io::Result<PcapWriter<W>> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&linktype.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, snaplen })
    }

    /// One packet: its stamp, its length on the wire and the bytes
    /// captured (cut to the snapshot length).
    pub fn packet(&mut self, sec: u32, usec: u32, wire_len: u32, data: &[u8]) -> io::Result<()> {
        let data = &data[..data.len().min(self.snaplen as usize)];
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&sec.to_le_bytes());
        h[4..8].copy_from_slice(&usec.to_le_bytes());
        h[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        h[12..].copy_from_slice(&wire_len.max(data.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The event record of a finished capture.
pub const EVENT_SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,time TIME_FIRST,time TIME_LAST,\
uint32 PACKETS,uint64 BYTES,uint64 DST_BLACKLIST,string FILENAME,string STATUS";

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn t(secs: u32) -> UrTime {
        UrTime::from_secs_millis(1_700_000_000 + secs, 0)
    }

    fn table(max: usize, suppress_s: u64) -> Sessions {
        Sessions::new(
            LocalNets::parse("198.51.100.0/24,2001:db8:1::/48").unwrap(),
            Limits {
                max_sessions: max,
                suppress_ms: suppress_s * 1000,
            },
        )
    }

    fn flow(src: &str, dst: &str, sbl: u64, dbl: u64, secs: u32) -> Flagged {
        Flagged {
            src: ip(src),
            dst: ip(dst),
            src_blacklist: sbl,
            dst_blacklist: dbl,
            time: t(secs),
        }
    }

    fn pair(l: &str, r: &str) -> Pair {
        Pair {
            local: ip(l),
            remote: ip(r),
        }
    }

    #[test]
    fn local_prefixes() {
        let n = LocalNets::parse("198.51.100.0/24, 2001:db8::/32,192.0.2.7").unwrap();
        assert!(n.contains(ip("198.51.100.200")));
        assert!(!n.contains(ip("198.51.101.1")));
        assert!(n.contains(ip("2001:db8:ffff::1")));
        assert!(!n.contains(ip("2001:db9::1")));
        assert!(n.contains(ip("192.0.2.7")));
        assert!(!n.contains(ip("192.0.2.8")));
        // An IPv4 prefix does not match IPv6 addresses and back.
        assert!(!LocalNets::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
        assert!(LocalNets::parse("::/0").unwrap().contains(ip("::1")));
        for bad in ["198.51.100.0/33", "x", "198.51.100.0/", "2001:db8::/129"] {
            assert_eq!(
                LocalNets::parse(bad),
                Err(OptionError::Prefix(bad.to_string()))
            );
        }
        assert_eq!(LocalNets::parse(" , "), Err(OptionError::NoPrefix));
    }

    #[test]
    fn the_local_side_and_the_listed_side_make_the_pair() {
        let mut s = table(8, 60);
        // Outgoing to a listed destination, incoming from a listed source.
        assert_eq!(
            s.flow(&flow("198.51.100.10", "203.0.113.5", 0, 4, 0)),
            [Decision::Start {
                pair: pair("198.51.100.10", "203.0.113.5"),
                blacklist: 4
            }]
        );
        assert_eq!(
            s.flow(&flow("203.0.113.9", "198.51.100.11", 1, 0, 0)),
            [Decision::Start {
                pair: pair("198.51.100.11", "203.0.113.9"),
                blacklist: 1
            }]
        );
        // The other direction of a running pair.
        assert_eq!(
            s.flow(&flow("203.0.113.5", "198.51.100.10", 4, 0, 1)),
            [Decision::Running(pair("198.51.100.10", "203.0.113.5"))]
        );
        // Listed but not local on the other side: nothing.
        assert!(s
            .flow(&flow("192.0.2.1", "203.0.113.5", 0, 4, 1))
            .is_empty());
        // A local host listed talking to a non-local one: nothing either.
        assert!(s
            .flow(&flow("198.51.100.10", "192.0.2.1", 2, 0, 1))
            .is_empty());
        assert_eq!(s.counters.not_local, 2);
        assert_eq!(s.counters.started, 2);
        assert_eq!(s.counters.active, 2);
        // IPv6.
        let d = s.flow(&flow("2001:db8:1::5", "2001:db8:9::1", 0, 8, 2));
        assert_eq!(d.len(), 1);
        assert!(matches!(d[0], Decision::Start { .. }));
    }

    #[test]
    fn suppression_runs_on_flow_time() {
        let mut s = table(8, 60);
        let p = pair("198.51.100.10", "203.0.113.5");
        assert!(matches!(
            s.flow(&flow("198.51.100.10", "203.0.113.5", 0, 1, 0))[0],
            Decision::Start { .. }
        ));
        s.finish(&p);
        assert_eq!(s.counters.done, 1);
        assert_eq!(s.counters.active, 0);
        // Within 60 s of the start: suppressed, whatever the wall clock.
        assert_eq!(
            s.flow(&flow("198.51.100.10", "203.0.113.5", 0, 1, 59)),
            [Decision::Suppressed(p)]
        );
        assert_eq!(s.counters.suppressed, 1);
        // A flow with an older time does not move the clock back.
        assert_eq!(
            s.flow(&flow("198.51.100.10", "203.0.113.5", 0, 1, 10)),
            [Decision::Suppressed(p)]
        );
        // 60 s after the start: a new session.
        assert!(matches!(
            s.flow(&flow("198.51.100.10", "203.0.113.5", 0, 1, 60))[0],
            Decision::Start { .. }
        ));
        assert_eq!(s.counters.started, 2);
        // Another pair is not suppressed by this one.
        assert!(matches!(
            s.flow(&flow("198.51.100.10", "203.0.113.6", 0, 1, 61))[0],
            Decision::Start { .. }
        ));
    }

    #[test]
    fn at_most_max_sessions_refused_ones_are_not_remembered() {
        let mut s = table(2, 300);
        for (i, r) in ["203.0.113.1", "203.0.113.2"].iter().enumerate() {
            assert!(matches!(
                s.flow(&flow("198.51.100.10", r, 0, 1, i as u32))[0],
                Decision::Start { .. }
            ));
        }
        let third = pair("198.51.100.10", "203.0.113.3");
        assert_eq!(
            s.flow(&flow("198.51.100.10", "203.0.113.3", 0, 1, 3)),
            [Decision::Refused(third)]
        );
        assert_eq!(
            s.flow(&flow("198.51.100.10", "203.0.113.3", 0, 1, 4)),
            [Decision::Refused(third)]
        );
        assert_eq!(s.counters.refused, 2);
        assert_eq!(s.counters.active, 2);
        // A place frees: the refused pair starts (it was not suppressed).
        s.finish(&pair("198.51.100.10", "203.0.113.1"));
        assert!(matches!(
            s.flow(&flow("198.51.100.10", "203.0.113.3", 0, 1, 5))[0],
            Decision::Start { .. }
        ));
        assert_eq!(s.active().count(), 2);
        // Finishing twice counts once.
        s.finish(&third);
        s.finish(&third);
        assert_eq!(s.counters.done, 2);
    }

    #[test]
    fn both_sides_local_and_listed_give_both_pairs() {
        let mut s = table(8, 60);
        let d = s.flow(&flow("198.51.100.1", "198.51.100.2", 1, 2, 0));
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn many_expired_starts_are_pruned() {
        let mut s = table(1, 1);
        for i in 0..(PRUNE_AT as u32 + 10) {
            let remote = IpAddr::V4(std::net::Ipv4Addr::from(0xcb00_7100u32 + i));
            let f = Flagged {
                src: ip("198.51.100.10"),
                dst: remote,
                src_blacklist: 0,
                dst_blacklist: 1,
                time: t(i * 2),
            };
            assert!(matches!(s.flow(&f)[0], Decision::Start { .. }));
            s.finish(&Pair {
                local: f.src,
                remote,
            });
        }
        assert!(s.last_start.len() < PRUNE_AT);
    }

    #[test]
    fn file_names() {
        let p = pair("198.51.100.10", "203.0.113.5");
        let t = UrTime::from_secs_millis(1_796_307_780, 999);
        assert_eq!(
            capture_file_name(Path::new("/cap"), t, &p),
            Path::new("/cap/20261203T142300Z_198.51.100.10_203.0.113.5.pcap")
        );
        let p6 = pair("2001:db8::1", "2001:db8:9::2");
        assert_eq!(
            capture_file_name(Path::new("d"), UrTime(0), &p6),
            Path::new("d/19700101T000000Z_2001-db8--1_2001-db8-9--2.pcap")
        );
        assert_eq!(p.filter(), "host 198.51.100.10 and host 203.0.113.5");
    }

    #[test]
    fn pcap_writer_output_reads_back_and_reports_errors() {
        let mut w = PcapWriter::new(Vec::new(), 1, 96).unwrap();
        w.packet(5, 6, 200, &[7u8; 150]).unwrap();
        w.packet(5, 7, 10, &[8u8; 10]).unwrap();
        let b = w.into_inner();
        assert_eq!(b.len(), 24 + 16 + 96 + 16 + 10);
        assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 96);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(b[32..36].try_into().unwrap()), 96);
        assert_eq!(u32::from_le_bytes(b[36..40].try_into().unwrap()), 200);
        // A writer that runs out of space says so.
        let mut small = [0u8; 30];
        let mut w = PcapWriter::new(&mut small[..], 1, 65535).unwrap();
        let e = w.packet(1, 0, 60, &[0u8; 60]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WriteZero);
    }
}
