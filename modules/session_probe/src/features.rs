//! The feature rules, shared by both data planes: the eBPF program
//! (`bpf/session_probe.bpf.c` applies them in the kernel, and
//! [`crate::ebpf`] reads its maps into a [`WindowContents`]) and the
//! user-space mode ([`DoubleBuffer`] fed from libpcap). Everything here is
//! pure: packets (with their own times) in, window contents out.
//!
//! Rules (after the eBPF TrafficAnalyzer):
//! - A session is the unordered pair of endpoints plus the protocol; its key
//!   puts the lower (address, port) first ([`SessionKey`]). TCP, UDP, ICMP
//!   and ICMPv6 are considered; ICMP has ports 0.
//! - At most `n_session` sessions per window. When the table is full a new
//!   session is refused until the next window: its packets are counted
//!   (`packets_untracked`) and the session once (`sessions_refused`, kept in
//!   a second set of [`Sizes::refused_capacity`]; past that only the
//!   packets count).
//! - DDoS features: of each session at most `n_packet_per_session` packets
//!   per window are captured into a queue of at most `n_packet_total`
//!   packets; the rest is counted (`packets_over_quota`, `packets_queue_full`).
//!   A packet refused by a full queue still used its session's quota, as in
//!   the kernel.
//! - Mining features: packets and bytes per direction, first and last time,
//!   and what [`identify_server`] needs (the first packet's direction and
//!   the direction of a SYN without ACK).
//! - Windows are double-buffered: packets go into the active buffer; at the
//!   end of a window the buffers swap and the idle one is drained, which
//!   erases it ("swap" + "erase on read").

use std::collections::{HashMap, HashSet};

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;

/// Is this protocol considered at all?
pub fn considered(proto: u8) -> bool {
    matches!(
        proto,
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMP | IPPROTO_ICMPV6
    )
}

/// Does the mining feature set cover this protocol (TCP and UDP)?
pub fn mining_protocol(proto: u8) -> bool {
    matches!(proto, IPPROTO_TCP | IPPROTO_UDP)
}

/// The table sizes (the seed's N_SESSION, N_PACKET_PER_SESSION, N_PACKET_TOTAL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub n_session: u32,
    pub n_packet_per_session: u32,
    pub n_packet_total: u32,
}

impl Sizes {
    /// Capacity of the set of refused sessions (each counted once):
    /// four times the table, at least 1024.
    pub fn refused_capacity(&self) -> u32 {
        self.n_session.saturating_mul(4).max(1024)
    }
}

impl Default for Sizes {
    fn default() -> Sizes {
        Sizes {
            n_session: 4096,
            n_packet_per_session: 16,
            n_packet_total: 4096 * 16,
        }
    }
}

/// One packet as both data planes see it: addresses as 16 bytes (IPv4
/// mapped, `::ffff:a.b.c.d`), ports in host order (0 for ICMP and later
/// fragments), the frame length on the wire and the time in ns since the
/// epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketInfo {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub tcp_flags: u8,
    pub len: u32,
    pub ts_ns: u64,
}

/// A session: the endpoints in canonical order (`(addr_a, port_a) <=
/// (addr_b, port_b)`) and the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub addr_a: [u8; 16],
    pub addr_b: [u8; 16],
    pub port_a: u16,
    pub port_b: u16,
    pub proto: u8,
}

/// Direction of a packet within its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    AtoB = 0,
    BtoA = 1,
}

impl SessionKey {
    /// The session of a packet, the packet's direction in it, and whether
    /// it is a SYN without ACK (a connection opening).
    pub fn of(p: &PacketInfo) -> (SessionKey, Dir, bool) {
        let syn = p.proto == IPPROTO_TCP && p.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
        if (p.src, p.sport) <= (p.dst, p.dport) {
            let k = SessionKey {
                addr_a: p.src,
                addr_b: p.dst,
                port_a: p.sport,
                port_b: p.dport,
                proto: p.proto,
            };
            (k, Dir::AtoB, syn)
        } else {
            let k = SessionKey {
                addr_a: p.dst,
                addr_b: p.src,
                port_a: p.dport,
                port_b: p.sport,
                proto: p.proto,
            };
            (k, Dir::BtoA, syn)
        }
    }
}

/// The per-session counters of one window (the kernel's `struct sval`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounters {
    pub first_ns: u64,
    pub last_ns: u64,
    pub bytes_ab: u64,
    pub bytes_ba: u64,
    pub pkts_ab: u32,
    pub pkts_ba: u32,
    /// Packets of this session offered to the DDoS queue (quota use).
    pub captured: u32,
    /// 0: the first packet went a → b; 1: b → a.
    pub first_dir: u8,
    /// 0: no SYN seen; 1: SYN a → b; 2: SYN b → a.
    pub syn_dir: u8,
}

/// What a window refused, per reason (the kernel's counter map).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub sessions_refused: u64,
    pub packets_untracked: u64,
    pub packets_over_quota: u64,
    pub packets_queue_full: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.sessions_refused += o.sessions_refused;
        self.packets_untracked += o.packets_untracked;
        self.packets_over_quota += o.packets_over_quota;
        self.packets_queue_full += o.packets_queue_full;
    }
}

/// One drained window: its sessions, its captured packets (in queue
/// order) and its counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowContents {
    pub sessions: Vec<(SessionKey, SessionCounters)>,
    pub packets: Vec<PacketInfo>,
    pub counters: Counters,
}

impl WindowContents {
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.packets.is_empty() && self.counters == Counters::default()
    }
}

/// One buffer: the session table, the refused set, the packet queue and
/// the counters of a window.
#[derive(Debug)]
pub struct WindowTable {
    sizes: Sizes,
    sessions: HashMap<SessionKey, SessionCounters>,
    refused: HashSet<SessionKey>,
    queue: Vec<PacketInfo>,
    counters: Counters,
}

impl WindowTable {
    pub fn new(sizes: Sizes) -> WindowTable {
        WindowTable {
            sizes,
            sessions: HashMap::new(),
            refused: HashSet::new(),
            queue: Vec::new(),
            counters: Counters::default(),
        }
    }

    /// Accounts one packet (the kernel program's `track`). Packets of
    /// protocols not considered are ignored.
    pub fn packet(&mut self, p: &PacketInfo) {
        if !considered(p.proto) {
            return;
        }
        let (key, dir, syn) = SessionKey::of(p);
        let full = self.sessions.len() >= self.sizes.n_session as usize;
        let v = match self.sessions.get_mut(&key) {
            Some(v) => v,
            None if full => {
                if self.refused.len() < self.sizes.refused_capacity() as usize
                    && self.refused.insert(key)
                {
                    self.counters.sessions_refused += 1;
                }
                self.counters.packets_untracked += 1;
                return;
            }
            None => self.sessions.entry(key).or_insert(SessionCounters {
                first_ns: p.ts_ns,
                last_ns: p.ts_ns,
                first_dir: dir as u8,
                ..SessionCounters::default()
            }),
        };
        match dir {
            Dir::AtoB => {
                v.pkts_ab = v.pkts_ab.wrapping_add(1);
                v.bytes_ab += u64::from(p.len);
            }
            Dir::BtoA => {
                v.pkts_ba = v.pkts_ba.wrapping_add(1);
                v.bytes_ba += u64::from(p.len);
            }
        }
        v.last_ns = v.last_ns.max(p.ts_ns);
        if syn && v.syn_dir == 0 {
            v.syn_dir = dir as u8 + 1;
        }
        if v.captured >= self.sizes.n_packet_per_session {
            self.counters.packets_over_quota += 1;
            return;
        }
        v.captured += 1;
        if self.queue.len() >= self.sizes.n_packet_total as usize {
            self.counters.packets_queue_full += 1;
        } else {
            self.queue.push(*p);
        }
    }

    /// Reads the whole buffer and erases it (sessions sorted by key).
    pub fn drain(&mut self) -> WindowContents {
        let mut sessions: Vec<_> = self.sessions.drain().collect();
        sessions.sort_unstable_by_key(|(k, _)| *k);
        self.refused.clear();
        WindowContents {
            sessions,
            packets: std::mem::take(&mut self.queue),
            counters: std::mem::take(&mut self.counters),
        }
    }
}

/// Two buffers: the data plane writes into the active one while the
/// reader drains the other.
#[derive(Debug)]
pub struct DoubleBuffer {
    buffers: [WindowTable; 2],
    active: usize,
}

impl DoubleBuffer {
    pub fn new(sizes: Sizes) -> DoubleBuffer {
        DoubleBuffer {
            buffers: [WindowTable::new(sizes), WindowTable::new(sizes)],
            active: 0,
        }
    }

    pub fn active(&self) -> usize {
        self.active
    }

    pub fn packet(&mut self, p: &PacketInfo) {
        self.buffers[self.active].packet(p);
    }

    /// Makes the other buffer active and returns the index of the one the
    /// window was written into, to be drained.
    pub fn swap(&mut self) -> usize {
        let idle = self.active;
        self.active ^= 1;
        idle
    }

    /// Drains (erases) buffer `idx`.
    pub fn drain(&mut self, idx: usize) -> WindowContents {
        self.buffers[idx & 1].drain()
    }

    /// Swap, then drain the buffer the window was written into.
    pub fn end_window(&mut self) -> WindowContents {
        let idle = self.swap();
        self.drain(idle)
    }
}

/// How the server side of a session was chosen (miner_detector's
/// `SERVER_RULE` codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Method {
    /// A TCP SYN (without ACK) was seen: its destination is the server.
    Syn = 1,
    /// The destination port (of the session's first packet) is below 1024.
    DstPort = 2,
    /// The source port is below 1024.
    SrcPort = 3,
    /// Neither: the endpoint with the lower port (the destination on a tie).
    LowerPort = 4,
}

/// Which endpoint is the server: `true` for endpoint b.
pub fn identify_server(k: &SessionKey, v: &SessionCounters) -> (bool, Method) {
    match v.syn_dir {
        1 => return (true, Method::Syn),
        2 => return (false, Method::Syn),
        _ => {}
    }
    // The first packet's source and destination.
    let (src_port, dst_port, dst_is_b) = if v.first_dir == 0 {
        (k.port_a, k.port_b, true)
    } else {
        (k.port_b, k.port_a, false)
    };
    if dst_port < 1024 {
        (dst_is_b, Method::DstPort)
    } else if src_port < 1024 {
        (!dst_is_b, Method::SrcPort)
    } else if dst_port <= src_port {
        (dst_is_b, Method::LowerPort)
    } else {
        (!dst_is_b, Method::LowerPort)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(d: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[10] = 0xff;
        a[11] = 0xff;
        a[12..].copy_from_slice(&[198, 51, 100, d]);
        a
    }

    fn pkt(s: u8, sp: u16, d: u8, dp: u16, proto: u8, flags: u8, ts: u64) -> PacketInfo {
        PacketInfo {
            src: v4(s),
            dst: v4(d),
            sport: sp,
            dport: dp,
            proto,
            tcp_flags: flags,
            len: 100,
            ts_ns: ts,
        }
    }

    fn sizes(n: u32, per: u32, total: u32) -> Sizes {
        Sizes {
            n_session: n,
            n_packet_per_session: per,
            n_packet_total: total,
        }
    }

    #[test]
    fn both_directions_are_one_session_with_per_direction_counts() {
        let mut t = WindowTable::new(Sizes::default());
        t.packet(&pkt(2, 40000, 1, 80, IPPROTO_TCP, TCP_SYN, 10));
        t.packet(&pkt(1, 80, 2, 40000, IPPROTO_TCP, TCP_SYN | TCP_ACK, 20));
        t.packet(&pkt(2, 40000, 1, 80, IPPROTO_TCP, TCP_ACK, 30));
        let w = t.drain();
        assert_eq!(w.sessions.len(), 1);
        let (k, c) = w.sessions[0];
        // 198.51.100.1:80 sorts first.
        assert_eq!((k.addr_a, k.port_a, k.port_b), (v4(1), 80, 40000));
        assert_eq!((c.pkts_ab, c.pkts_ba), (1, 2));
        assert_eq!((c.bytes_ab, c.bytes_ba), (100, 200));
        assert_eq!((c.first_ns, c.last_ns), (10, 30));
        assert_eq!((c.first_dir, c.syn_dir), (1, 2));
        assert_eq!(identify_server(&k, &c), (false, Method::Syn));
        assert_eq!(w.packets.len(), 3);
        // Erased on read.
        assert!(t.drain().is_empty());
    }

    #[test]
    fn server_rules_in_order() {
        let k = |a: u16, b: u16| SessionKey {
            addr_a: v4(1),
            addr_b: v4(2),
            port_a: a,
            port_b: b,
            proto: IPPROTO_TCP,
        };
        let c = |first_dir: u8, syn_dir: u8| SessionCounters {
            first_dir,
            syn_dir,
            ..Default::default()
        };
        // SYN a→b: b is the server, whatever the ports say.
        assert_eq!(identify_server(&k(80, 5000), &c(1, 1)), (true, Method::Syn));
        // No SYN, first packet a→b to port 5000 from 80: source port < 1024.
        assert_eq!(
            identify_server(&k(80, 5000), &c(0, 0)),
            (false, Method::SrcPort)
        );
        // First packet b→a to port 80: destination port < 1024 (a).
        assert_eq!(
            identify_server(&k(80, 5000), &c(1, 0)),
            (false, Method::DstPort)
        );
        // Both below 1024: the destination wins.
        assert_eq!(
            identify_server(&k(22, 80), &c(1, 0)),
            (false, Method::DstPort)
        );
        // Both high: the lower port.
        assert_eq!(
            identify_server(&k(3333, 50000), &c(0, 0)),
            (false, Method::LowerPort)
        );
        assert_eq!(
            identify_server(&k(3333, 50000), &c(1, 0)),
            (false, Method::LowerPort)
        );
        // Equal ports: the destination of the first packet.
        assert_eq!(
            identify_server(&k(5000, 5000), &c(0, 0)),
            (true, Method::LowerPort)
        );
    }

    #[test]
    fn a_syn_ack_is_not_a_syn() {
        let (_, _, syn) = SessionKey::of(&pkt(1, 80, 2, 4000, IPPROTO_TCP, 0x12, 0));
        assert!(!syn);
        let (_, _, syn) = SessionKey::of(&pkt(2, 4000, 1, 80, IPPROTO_UDP, 0x02, 0));
        assert!(!syn, "only TCP has flags");
    }

    #[test]
    fn full_table_refuses_new_sessions_once_each_until_the_next_window() {
        let mut b = DoubleBuffer::new(sizes(2, 100, 1000));
        for port in [1000u16, 1001, 1002, 1003] {
            for _ in 0..3 {
                b.packet(&pkt(2, port, 1, 53, IPPROTO_UDP, 0, 1));
            }
        }
        let w = b.end_window();
        assert_eq!(w.sessions.len(), 2);
        assert_eq!(w.counters.sessions_refused, 2);
        assert_eq!(w.counters.packets_untracked, 6);
        let tracked: u32 = w.sessions.iter().map(|(_, c)| c.pkts_ab + c.pkts_ba).sum();
        assert_eq!(tracked, 6);
        // The next window starts empty: a refused session is tracked now.
        b.packet(&pkt(2, 1003, 1, 53, IPPROTO_UDP, 0, 2));
        let w = b.end_window();
        assert_eq!(w.sessions.len(), 1);
        assert_eq!(w.sessions[0].0.port_a, 53);
        assert_eq!(w.counters, Counters::default());
    }

    #[test]
    fn refused_set_is_bounded() {
        let mut t = WindowTable::new(sizes(1, 10, 10));
        for port in 0u16..1100 {
            t.packet(&pkt(2, port, 1, 53, IPPROTO_UDP, 0, 1));
        }
        let w = t.drain();
        assert_eq!(
            w.counters.sessions_refused, 1024,
            "the refused set holds 1024"
        );
        assert_eq!(w.counters.packets_untracked, 1099);
    }

    #[test]
    fn ddos_quota_per_session_and_in_total() {
        let mut t = WindowTable::new(sizes(10, 3, 5));
        for _ in 0..5 {
            t.packet(&pkt(2, 1000, 1, 80, IPPROTO_TCP, TCP_ACK, 1));
        }
        for _ in 0..5 {
            t.packet(&pkt(3, 1000, 1, 80, IPPROTO_TCP, TCP_ACK, 1));
        }
        let w = t.drain();
        // 3 + 3 offered, 5 fit, 2 + 2 over the quota.
        assert_eq!(w.packets.len(), 5);
        assert_eq!(w.counters.packets_over_quota, 4);
        assert_eq!(w.counters.packets_queue_full, 1);
        // The mining counters still see every packet.
        let all: u32 = w.sessions.iter().map(|(_, c)| c.pkts_ab + c.pkts_ba).sum();
        assert_eq!(all, 10);
    }

    #[test]
    fn icmp_counts_other_protocols_are_ignored() {
        let mut t = WindowTable::new(Sizes::default());
        t.packet(&pkt(2, 0, 1, 0, IPPROTO_ICMP, 0, 1));
        t.packet(&pkt(1, 0, 2, 0, IPPROTO_ICMP, 0, 2));
        t.packet(&pkt(1, 0, 2, 0, 47, 0, 2));
        let w = t.drain();
        assert_eq!(w.sessions.len(), 1);
        assert_eq!((w.sessions[0].1.pkts_ab, w.sessions[0].1.pkts_ba), (1, 1));
    }

    #[test]
    fn swap_alternates_and_loses_nothing() {
        let mut b = DoubleBuffer::new(Sizes::default());
        let mut total = 0;
        for win in 0..4u64 {
            assert_eq!(b.active(), (win % 2) as usize);
            for i in 0..=win {
                b.packet(&pkt(2, 1000 + i as u16, 1, 80, IPPROTO_TCP, 0, win));
            }
            let idle = b.swap();
            // A packet arriving while the idle buffer is read goes to the new one.
            b.packet(&pkt(9, 9, 1, 80, IPPROTO_TCP, 0, win));
            let w = b.drain(idle);
            total += w
                .sessions
                .iter()
                .map(|(_, c)| u64::from(c.pkts_ab + c.pkts_ba))
                .sum::<u64>();
        }
        total += b
            .end_window()
            .sessions
            .iter()
            .map(|(_, c)| u64::from(c.pkts_ab + c.pkts_ba))
            .sum::<u64>();
        assert_eq!(total, 1 + 2 + 3 + 4 + 4);
    }
}
