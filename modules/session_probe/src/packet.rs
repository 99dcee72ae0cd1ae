//! Ethernet frames → [`PacketInfo`], exactly as the kernel program reads
//! them: one optional 802.1Q/802.1ad tag, IPv4 (ports of later fragments are
//! 0) or IPv6 (the first next-header only: extension headers are not
//! walked, so such packets carry that header's number as protocol and are
//! not considered), TCP/UDP ports and TCP flags when present. A bounds-checked
//! view: every read is `get`, a short frame gives `None` or zero ports, as
//! `bpf_skb_load_bytes` failing does in the kernel. Fuzzed (`session_packet`).

use crate::features::{considered, PacketInfo, IPPROTO_TCP, IPPROTO_UDP};

const ETH_HLEN: usize = 14;

fn be16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Parses an Ethernet frame of wire length `wire_len` seen at `ts_ns`.
/// `None`: not an IPv4/IPv6 packet of a considered protocol (the kernel
/// lets it pass untouched).
pub fn parse_ethernet(frame: &[u8], wire_len: u32, ts_ns: u64) -> Option<PacketInfo> {
    let mut ethertype = be16(frame, 12)?;
    let mut l3 = ETH_HLEN;
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        ethertype = be16(frame, 16)?;
        l3 += 4;
    }
    let mut p = PacketInfo {
        src: [0; 16],
        dst: [0; 16],
        sport: 0,
        dport: 0,
        proto: 0,
        tcp_flags: 0,
        len: wire_len,
        ts_ns,
    };
    let l4 = match ethertype {
        0x0800 => {
            let h = frame.get(l3..l3 + 20)?;
            if h[0] >> 4 != 4 {
                return None;
            }
            p.src[10] = 0xff;
            p.src[11] = 0xff;
            p.dst[10] = 0xff;
            p.dst[11] = 0xff;
            p.src[12..].copy_from_slice(&h[12..16]);
            p.dst[12..].copy_from_slice(&h[16..20]);
            p.proto = h[9];
            if (h[6] & 0x1f) | h[7] != 0 {
                None
            } else {
                Some(l3 + usize::from(h[0] & 0x0f) * 4)
            }
        }
        0x86dd => {
            let h = frame.get(l3..l3 + 40)?;
            if h[0] >> 4 != 6 {
                return None;
            }
            p.src.copy_from_slice(&h[8..24]);
            p.dst.copy_from_slice(&h[24..40]);
            p.proto = h[6];
            Some(l3 + 40)
        }
        _ => return None,
    };
    if !considered(p.proto) {
        return None;
    }
    if let Some(l4) = l4 {
        if p.proto == IPPROTO_TCP || p.proto == IPPROTO_UDP {
            if let (Some(s), Some(d)) = (be16(frame, l4), be16(frame, l4 + 2)) {
                p.sport = s;
                p.dport = d;
            }
            if p.proto == IPPROTO_TCP {
                if let Some(&f) = frame.get(l4 + 13) {
                    p.tcp_flags = f;
                }
            }
        }
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertype: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn ipv4_tcp(flags: u8, frag: [u8; 2]) -> Vec<u8> {
        let mut f = eth(0x0800);
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, frag[0], frag[1], 64, 6, 0, 0]);
        f.extend_from_slice(&[198, 51, 100, 2, 198, 51, 100, 1]);
        f.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, flags]);
        f.extend_from_slice(&[0; 6]);
        f
    }

    #[test]
    fn ipv4_tcp_syn() {
        let f = ipv4_tcp(0x02, [0x40, 0]);
        let p = parse_ethernet(&f, 60, 7).unwrap();
        assert_eq!(&p.src[10..], &[0xff, 0xff, 198, 51, 100, 2]);
        assert_eq!((p.sport, p.dport, p.proto, p.tcp_flags), (40000, 80, 6, 2));
        assert_eq!((p.len, p.ts_ns), (60, 7));
    }

    #[test]
    fn later_fragment_has_no_ports() {
        let f = ipv4_tcp(0x02, [0x00, 0x10]);
        let p = parse_ethernet(&f, 60, 0).unwrap();
        assert_eq!((p.sport, p.dport, p.tcp_flags), (0, 0, 0));
    }

    #[test]
    fn vlan_ipv6_udp() {
        let mut f = eth(0x8100);
        f.extend_from_slice(&[0, 5, 0x86, 0xdd]);
        let mut h = [0u8; 40];
        h[0] = 0x60;
        h[6] = 17;
        h[8] = 0x20;
        h[9] = 0x01;
        h[24] = 0x20;
        h[25] = 0x01;
        f.extend_from_slice(&h);
        f.extend_from_slice(&[0x13, 0x88, 0x00, 0x35, 0, 8, 0, 0]);
        let p = parse_ethernet(&f, 66, 0).unwrap();
        assert_eq!((p.sport, p.dport, p.proto), (5000, 53, 17));
        assert_eq!(p.src[0], 0x20);
    }

    #[test]
    fn short_and_foreign_frames() {
        assert!(parse_ethernet(&[], 0, 0).is_none());
        assert!(parse_ethernet(&eth(0x0806), 60, 0).is_none());
        let f = ipv4_tcp(0x02, [0, 0]);
        // Truncated inside the TCP header: ports read, flags not.
        let p = parse_ethernet(&f[..38], 60, 0).unwrap();
        assert_eq!((p.sport, p.dport, p.tcp_flags), (40000, 80, 0));
        // Truncated before the ports.
        let p = parse_ethernet(&f[..35], 60, 0).unwrap();
        assert_eq!((p.sport, p.dport), (0, 0));
        // Truncated IP header.
        assert!(parse_ethernet(&f[..30], 60, 0).is_none());
        // GRE is not considered.
        let mut g = f.clone();
        g[23] = 47;
        assert!(parse_ethernet(&g, 60, 0).is_none());
    }
}
