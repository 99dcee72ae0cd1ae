//! Bounds-checked views of the frames the snooper carries: Ethernet with
//! any number of 802.1Q / 802.1ad tags, then IPv4 or IPv6. Only what the
//! dedup normalisation and the store's host selection need is read; every
//! access goes through `get`, so no frame, however cut, can panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const ETH_HDR: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
/// 802.1Q, 802.1ad (QinQ) and the old pre-standard QinQ value.
const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88A8, 0x9100];
/// More tags than this is not a frame a switch sends.
const MAX_TAGS: usize = 8;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// An IP header found in a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Offset of the TTL (IPv4) or hop limit (IPv6) byte in the frame.
    pub ttl_at: usize,
    /// Offset of the IPv4 header checksum (two bytes); `None` for IPv6.
    pub checksum_at: Option<usize>,
}

/// What [`parse`] learnt about a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The EtherType after the VLAN tags (0 when the frame is shorter than
    /// an Ethernet header).
    pub ethertype: u16,
    /// VLAN tags skipped.
    pub vlan_tags: usize,
    /// Where the layer-3 header starts (the frame's length when it has none).
    pub l3_at: usize,
    pub ip: Option<IpHeader>,
}

/// Parses an Ethernet frame. Never fails: a frame too short for a header
/// just has none of it.
pub fn parse(frame: &[u8]) -> Frame {
    let mut out = Frame {
        ethertype: 0,
        vlan_tags: 0,
        l3_at: frame.len(),
        ip: None,
    };
    let Some(mut ethertype) = be16(frame, 12) else {
        return out;
    };
    let mut at = ETH_HDR;
    while VLAN_TPIDS.contains(&ethertype) && out.vlan_tags < MAX_TAGS {
        // The tag is TPID (already read) + TCI; the next EtherType follows.
        let Some(next) = be16(frame, at + 2) else {
            out.ethertype = ethertype;
            return out;
        };
        ethertype = next;
        at += 4;
        out.vlan_tags += 1;
    }
    out.ethertype = ethertype;
    out.l3_at = at.min(frame.len());
    out.ip = match ethertype {
        ETHERTYPE_IPV4 => ipv4(frame, at),
        ETHERTYPE_IPV6 => ipv6(frame, at),
        _ => None,
    };
    out
}

fn ipv4(frame: &[u8], at: usize) -> Option<IpHeader> {
    let h = frame.get(at..at.checked_add(20)?)?;
    if h[0] >> 4 != 4 || usize::from(h[0] & 0x0F) < 5 {
        return None;
    }
    Some(IpHeader {
        src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
        dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
        ttl_at: at + 8,
        checksum_at: Some(at + 10),
    })
}

fn ipv6(frame: &[u8], at: usize) -> Option<IpHeader> {
    let h = frame.get(at..at.checked_add(40)?)?;
    if h[0] >> 4 != 6 {
        return None;
    }
    let addr = |from: usize| -> Option<Ipv6Addr> {
        let b: [u8; 16] = h.get(from..from + 16)?.try_into().ok()?;
        Some(Ipv6Addr::from(b))
    };
    Some(IpHeader {
        src: IpAddr::V6(addr(8)?),
        dst: IpAddr::V6(addr(24)?),
        ttl_at: at + 7,
        checksum_at: None,
    })
}

/// The bytes a normalised hash covers: the frame from layer 3 on (so MAC
/// addresses and VLAN tags, which differ between the copies a mirror port
/// sends, are left out) with the TTL / hop limit and the IPv4 header
/// checksum set to zero (a routed copy differs in those). A frame without
/// IP is taken whole. `buf` is reused.
pub fn normalised<'a>(frame: &'a [u8], buf: &'a mut Vec<u8>) -> &'a [u8] {
    let f = parse(frame);
    let Some(ip) = f.ip else {
        return frame;
    };
    buf.clear();
    buf.extend_from_slice(frame.get(f.l3_at..).unwrap_or_default());
    let rel = |at: usize| at.checked_sub(f.l3_at);
    if let Some(b) = rel(ip.ttl_at).and_then(|i| buf.get_mut(i)) {
        *b = 0;
    }
    if let Some(i) = ip.checksum_at.and_then(rel) {
        if let Some(s) = buf.get_mut(i..i + 2) {
            s.fill(0);
        }
    }
    buf
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Ethernet frame with `tags` VLAN tags around an IPv4 UDP packet.
    pub fn v4_frame(tags: &[u16], ttl: u8, mac: u8) -> Vec<u8> {
        let mut f = vec![mac; 6];
        f.extend([2, 0, 0, 0, 0, 1]);
        for &vid in tags {
            f.extend(0x8100u16.to_be_bytes());
            f.extend(vid.to_be_bytes());
        }
        f.extend(0x0800u16.to_be_bytes());
        f.extend([0x45, 0, 0, 29, 0, 1, 0, 0, ttl, 17, 0xAB, 0xCD]);
        f.extend([198, 51, 100, 1, 203, 0, 113, 9]);
        f.extend([0x30, 0x39, 0, 53, 0, 9, 0, 0, b'x']);
        f
    }

    #[test]
    fn finds_ipv4_behind_tags() {
        let f = parse(&v4_frame(&[10, 20], 64, 1));
        assert_eq!(f.vlan_tags, 2);
        assert_eq!(f.ethertype, 0x0800);
        assert_eq!(f.l3_at, 22);
        let ip = f.ip.unwrap();
        assert_eq!(ip.src, "198.51.100.1".parse::<IpAddr>().unwrap());
        assert_eq!(ip.dst, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(ip.ttl_at, 30);
        assert_eq!(ip.checksum_at, Some(32));
    }

    #[test]
    fn finds_ipv6() {
        let mut f = vec![0u8; 12];
        f.extend(0x86DDu16.to_be_bytes());
        let mut h = vec![0x60, 0, 0, 0, 0, 0, 58, 64];
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
        h.extend(src.octets());
        h.extend(dst.octets());
        f.extend(h);
        let p = parse(&f);
        let ip = p.ip.unwrap();
        assert_eq!((ip.src, ip.dst), (IpAddr::V6(src), IpAddr::V6(dst)));
        assert_eq!(ip.ttl_at, 21);
        // One byte short of the header: no IP.
        assert_eq!(parse(&f[..f.len() - 1]).ip, None);
    }

    #[test]
    fn copies_differing_in_mac_vlan_ttl_checksum_normalise_alike() {
        let a = v4_frame(&[], 64, 1);
        let mut b = v4_frame(&[100], 63, 9);
        let (mut ba, mut bb) = (Vec::new(), Vec::new());
        let csum = 14 + 4 + 10;
        b[csum] = 0x12;
        assert_eq!(normalised(&a, &mut ba), normalised(&b, &mut bb));
        // A different payload does not.
        let mut c = v4_frame(&[], 64, 1);
        let last = c.len() - 1;
        c[last] = b'y';
        let mut bc = Vec::new();
        assert_ne!(normalised(&a, &mut ba), normalised(&c, &mut bc));
    }

    #[test]
    fn every_cut_of_a_frame_parses() {
        let f = v4_frame(&[1, 2], 64, 1);
        let mut buf = Vec::new();
        for n in 0..=f.len() {
            let p = parse(&f[..n]);
            assert!(p.l3_at <= n);
            let _ = normalised(&f[..n], &mut buf);
        }
        // A frame of nothing but tags.
        let tags: Vec<u8> = std::iter::repeat_n([0x81, 0x00], 40).flatten().collect();
        let p = parse(&tags);
        assert!(p.vlan_tags <= MAX_TAGS && p.ip.is_none());
    }
}
