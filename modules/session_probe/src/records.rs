//! A drained window → UniRec records: DDoS packet features (the captured
//! packets summed per direction of each session) and mining session
//! features (each TCP/UDP session oriented by [`identify_server`]).

use crate::features::{identify_server, mining_protocol, Method, WindowContents};
use std::collections::BTreeMap;
use unirec::{RecordBuilder, RecordError, Template, UrIp, UrTime};

/// DDoS packet features, one record per direction of a session per window
/// (from the packets captured within the per-session quota). The fields
/// ddos_detector reads (SRC_IP, DST_IP, BYTES, TIME_FIRST, TIME_LAST) and
/// those miner_detector reads (plus ports, PROTOCOL, TCP_FLAGS, PACKETS).
pub const DDOS_SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,\
uint8 PROTOCOL,uint8 TCP_FLAGS,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST,\
uint32 WINDOW_ID";

/// Mining session features, one record per TCP/UDP session per window.
/// N_PACKETS_SERVER counts the packets the server sent; N_BITS_* are 8 ×
/// the frame bytes; the duration is TIME_LAST − TIME_FIRST.
pub const MINING_SPEC: &str = "ipaddr SERVER_IP,ipaddr CLIENT_IP,uint16 SERVER_PORT,\
uint16 CLIENT_PORT,uint8 PROTOCOL,uint32 N_PACKETS_SERVER,uint32 N_PACKETS_CLIENT,\
uint64 N_BITS_SERVER,uint64 N_BITS_CLIENT,time TIME_FIRST,time TIME_LAST,uint8 SERVER_ID_METHOD,\
uint32 WINDOW_ID";

/// A 16-byte address as the data planes keep it (IPv4 mapped) → UniRec.
pub fn ur_ip(a: &[u8; 16]) -> UrIp {
    if a[..10] == [0; 10] && a[10..12] == [0xff, 0xff] {
        UrIp::from_v4(std::net::Ipv4Addr::new(a[12], a[13], a[14], a[15]))
    } else {
        UrIp(*a)
    }
}

pub fn ur_time(ns: u64) -> UrTime {
    let secs = u32::try_from(ns / 1_000_000_000).unwrap_or(u32::MAX);
    UrTime::from_secs_nanos(secs, (ns % 1_000_000_000) as u32)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DdosRecord {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub tcp_flags: u8,
    pub packets: u32,
    pub bytes: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub window: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MiningRecord {
    pub server: [u8; 16],
    pub client: [u8; 16],
    pub server_port: u16,
    pub client_port: u16,
    pub proto: u8,
    pub packets_server: u32,
    pub packets_client: u32,
    pub bits_server: u64,
    pub bits_client: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub method: Method,
    pub window: u32,
}

/// The DDoS records of a window, sorted by their 5-tuple.
pub fn ddos_records(w: &WindowContents, window: u32) -> Vec<DdosRecord> {
    type K = ([u8; 16], [u8; 16], u16, u16, u8);
    let mut m: BTreeMap<K, DdosRecord> = BTreeMap::new();
    for p in &w.packets {
        let r = m
            .entry((p.src, p.dst, p.sport, p.dport, p.proto))
            .or_insert(DdosRecord {
                src: p.src,
                dst: p.dst,
                sport: p.sport,
                dport: p.dport,
                proto: p.proto,
                tcp_flags: 0,
                packets: 0,
                bytes: 0,
                first_ns: p.ts_ns,
                last_ns: p.ts_ns,
                window,
            });
        r.tcp_flags |= p.tcp_flags;
        r.packets = r.packets.saturating_add(1);
        r.bytes += u64::from(p.len);
        r.first_ns = r.first_ns.min(p.ts_ns);
        r.last_ns = r.last_ns.max(p.ts_ns);
    }
    m.into_values().collect()
}

/// The mining records of a window (TCP and UDP sessions), in key order.
pub fn mining_records(w: &WindowContents, window: u32) -> Vec<MiningRecord> {
    w.sessions
        .iter()
        .filter(|(k, _)| mining_protocol(k.proto))
        .map(|(k, c)| {
            let (server_is_b, method) = identify_server(k, c);
            let (a, b) = ((k.addr_a, k.port_a), (k.addr_b, k.port_b));
            let ((server, sp), (client, cp)) = if server_is_b { (b, a) } else { (a, b) };
            // Packets sent by b are the b → a direction.
            let (ps, pc, bs, bc) = if server_is_b {
                (c.pkts_ba, c.pkts_ab, c.bytes_ba, c.bytes_ab)
            } else {
                (c.pkts_ab, c.pkts_ba, c.bytes_ab, c.bytes_ba)
            };
            MiningRecord {
                server,
                client,
                server_port: sp,
                client_port: cp,
                proto: k.proto,
                packets_server: ps,
                packets_client: pc,
                bits_server: bs.saturating_mul(8),
                bits_client: bc.saturating_mul(8),
                first_ns: c.first_ns,
                last_ns: c.last_ns,
                method,
                window,
            }
        })
        .collect()
}

/// Field indices of [`DDOS_SPEC`] in a template, resolved once.
pub struct DdosEncoder {
    idx: [usize; 11],
}

/// An output template without a field the encoder writes.
#[derive(Debug, thiserror::Error)]
#[error("the output template lacks the field {0}")]
pub struct MissingField(pub String);

fn find(t: &Template, names: &[&str]) -> Result<Vec<usize>, MissingField> {
    names
        .iter()
        .map(|n| t.find(n).ok_or_else(|| MissingField(n.to_string())))
        .collect()
}

impl DdosEncoder {
    pub fn new(t: &Template) -> Result<DdosEncoder, MissingField> {
        let v = find(
            t,
            &[
                "SRC_IP",
                "DST_IP",
                "SRC_PORT",
                "DST_PORT",
                "PROTOCOL",
                "TCP_FLAGS",
                "PACKETS",
                "BYTES",
                "TIME_FIRST",
                "TIME_LAST",
                "WINDOW_ID",
            ],
        )?;
        let mut idx = [0; 11];
        idx.copy_from_slice(&v);
        Ok(DdosEncoder { idx })
    }

    pub fn encode(&self, r: &DdosRecord, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        let i = &self.idx;
        b.set_ip(i[0], ur_ip(&r.src))?;
        b.set_ip(i[1], ur_ip(&r.dst))?;
        b.set_u16(i[2], r.sport)?;
        b.set_u16(i[3], r.dport)?;
        b.set_u8(i[4], r.proto)?;
        b.set_u8(i[5], r.tcp_flags)?;
        b.set_u32(i[6], r.packets)?;
        b.set_u64(i[7], r.bytes)?;
        b.set_time(i[8], ur_time(r.first_ns))?;
        b.set_time(i[9], ur_time(r.last_ns))?;
        b.set_u32(i[10], r.window)
    }
}

/// Field indices of [`MINING_SPEC`] in a template, resolved once.
pub struct MiningEncoder {
    idx: [usize; 13],
}

impl MiningEncoder {
    pub fn new(t: &Template) -> Result<MiningEncoder, MissingField> {
        let v = find(
            t,
            &[
                "SERVER_IP",
                "CLIENT_IP",
                "SERVER_PORT",
                "CLIENT_PORT",
                "PROTOCOL",
                "N_PACKETS_SERVER",
                "N_PACKETS_CLIENT",
                "N_BITS_SERVER",
                "N_BITS_CLIENT",
                "TIME_FIRST",
                "TIME_LAST",
                "SERVER_ID_METHOD",
                "WINDOW_ID",
            ],
        )?;
        let mut idx = [0; 13];
        idx.copy_from_slice(&v);
        Ok(MiningEncoder { idx })
    }

    pub fn encode(&self, r: &MiningRecord, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        let i = &self.idx;
        b.set_ip(i[0], ur_ip(&r.server))?;
        b.set_ip(i[1], ur_ip(&r.client))?;
        b.set_u16(i[2], r.server_port)?;
        b.set_u16(i[3], r.client_port)?;
        b.set_u8(i[4], r.proto)?;
        b.set_u32(i[5], r.packets_server)?;
        b.set_u32(i[6], r.packets_client)?;
        b.set_u64(i[7], r.bits_server)?;
        b.set_u64(i[8], r.bits_client)?;
        b.set_time(i[9], ur_time(r.first_ns))?;
        b.set_time(i[10], ur_time(r.last_ns))?;
        b.set_u8(i[11], r.method as u8)?;
        b.set_u32(i[12], r.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{PacketInfo, Sizes, WindowTable, IPPROTO_TCP};
    use unirec::RecordRef;

    fn v4(d: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[10] = 0xff;
        a[11] = 0xff;
        a[12..].copy_from_slice(&[203, 0, 113, d]);
        a
    }

    fn window() -> WindowContents {
        let mut t = WindowTable::new(Sizes::default());
        let p = |s: u8, sp: u16, d: u8, dp: u16, flags: u8, len: u32, ts: u64| PacketInfo {
            src: v4(s),
            dst: v4(d),
            sport: sp,
            dport: dp,
            proto: IPPROTO_TCP,
            tcp_flags: flags,
            len,
            ts_ns: ts,
        };
        t.packet(&p(9, 50000, 1, 3333, 0x02, 74, 1_000_000_000));
        t.packet(&p(1, 3333, 9, 50000, 0x12, 74, 1_500_000_000));
        t.packet(&p(9, 50000, 1, 3333, 0x18, 200, 2_000_000_000));
        t.drain()
    }

    #[test]
    fn mining_record_is_oriented_client_to_server() {
        let r = mining_records(&window(), 7);
        assert_eq!(r.len(), 1);
        let r = r[0];
        assert_eq!((r.server, r.server_port), (v4(1), 3333));
        assert_eq!((r.client, r.client_port), (v4(9), 50000));
        assert_eq!((r.packets_server, r.packets_client), (1, 2));
        assert_eq!((r.bits_server, r.bits_client), (74 * 8, 274 * 8));
        assert_eq!(r.method, Method::Syn);
        assert_eq!(
            (r.first_ns, r.last_ns, r.window),
            (1e9 as u64, 2e9 as u64, 7)
        );
    }

    #[test]
    fn ddos_records_per_direction() {
        let r = ddos_records(&window(), 3);
        assert_eq!(r.len(), 2);
        let c2s = r.iter().find(|r| r.src == v4(9)).unwrap();
        assert_eq!((c2s.packets, c2s.bytes, c2s.tcp_flags), (2, 274, 0x1a));
    }

    #[test]
    fn records_encode_into_their_templates() {
        let t = Template::parse(MINING_SPEC).unwrap();
        let enc = MiningEncoder::new(&t).unwrap();
        let mut b = RecordBuilder::new(&t);
        let rec = mining_records(&window(), 7)[0];
        enc.encode(&rec, &mut b).unwrap();
        let mut out = Vec::new();
        b.finish(&mut out).unwrap();
        let v = RecordRef::new_checked(&t, &out).unwrap();
        let i = t.find("SERVER_IP").unwrap();
        assert_eq!(v.get_ip(i).unwrap().to_string(), "203.0.113.1");
        assert_eq!(v.get_u8(t.find("SERVER_ID_METHOD").unwrap()), Some(1));
        let t = Template::parse(DDOS_SPEC).unwrap();
        let enc = DdosEncoder::new(&t).unwrap();
        let mut b = RecordBuilder::new(&t);
        enc.encode(&ddos_records(&window(), 3)[0], &mut b).unwrap();
        out.clear();
        b.finish(&mut out).unwrap();
        let v = RecordRef::new_checked(&t, &out).unwrap();
        assert_eq!(v.get_u32(t.find("WINDOW_ID").unwrap()), Some(3));
    }
}
