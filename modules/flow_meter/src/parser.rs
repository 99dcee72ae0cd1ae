//! Packet parser: link layer to L4 ports, with ipfixprobe's semantics.
//!
//! Every read is bounds-checked; a packet whose headers are cut short or
//! inconsistent is [`ParseError::Malformed`] (counted and skipped by the
//! caller), one that is not IP is [`ParseError::NotIp`]. Nothing here panics on
//! any input (see the fuzz target and the `no_panic_on_garbage` test).
//!
//! What counts like ipfixprobe: `ip_len` is the length from the IP header
//! (IPv4 total length, IPv6 payload + 40), not the captured length; ports are
//! those of TCP and UDP only (0 for ICMP, SCTP and the rest); the VLAN id is
//! the outermost tag's; GRE inside IPv4 is decapsulated (the inner packet is
//! the flow), other GRE payloads are not flows; non-first fragments carry no
//! ports (the fragment cache fills them in).

/// Link-layer types (DLT values as libpcap reports them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    LinuxSll,
    LinuxSll2,
    Raw,
    /// BSD loopback: 4-byte address family in host byte order.
    Null,
    /// OpenBSD loopback: 4-byte address family in network byte order.
    Loop,
    Ipv4,
    Ipv6,
}

impl LinkType {
    /// Maps a libpcap DLT number.
    pub fn from_dlt(dlt: i32) -> Option<LinkType> {
        Some(match dlt {
            1 => LinkType::Ethernet,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            12 | 14 | 101 => LinkType::Raw,
            0 => LinkType::Null,
            108 => LinkType::Loop,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            _ => return None,
        })
    }
}

/// Why a packet yields no flow data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not IPv4/IPv6 (ARP, LLDP, GRE with a non-IP payload...).
    NotIp,
    /// Headers truncated or inconsistent.
    Malformed,
}

/// What the flow cache needs from one packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packet {
    /// Capture time in microseconds since the epoch.
    pub ts_us: u64,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub vlan_id: u16,
    /// 4 or 6.
    pub ip_version: u8,
    /// Addresses in UniRec layout (IPv4 mapped as `0*8 a.b.c.d ff*4`).
    pub src_ip: [u8; 16],
    pub dst_ip: [u8; 16],
    pub protocol: u8,
    /// Length from the IP header (what BYTES counts).
    pub ip_len: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    pub ttl: u8,
    /// Fragment id, offset (in 8-byte units) and more-fragments flag.
    pub frag_id: u32,
    pub frag_off: u16,
    pub more_fragments: bool,
    /// The L4 header was parsed (false for non-first fragments).
    pub l4_parsed: bool,
    /// IPv4 TOS / IPv6 traffic class.
    pub ip_tos: u8,
    /// IPv4 flags (DF = 2, MF = 1); 0 for IPv6.
    pub ip_flags: u8,
    /// IP payload length from the header (IPv6: after extension headers).
    pub ip_payload_len: u16,
    pub tcp_window: u16,
    /// Option kinds seen, as IPFIX tcpOptions bits (kind k sets bit
    /// `(k & 0xf8) + 7 - (k & 7)`).
    pub tcp_options: u64,
    /// ipfixprobe's quirk: 32 bits read at the MSS option's value, so the
    /// two bytes after the MSS are included.
    pub tcp_mss: u32,
    pub tcp_seq: u32,
    pub tcp_ack: u32,
    /// Frame length on the wire and as captured (set by the caller).
    pub packet_len_wire: u16,
    pub packet_len: u16,
    /// Offset of the L4 payload in the frame (after the TCP/UDP header; the
    /// IP payload for other protocols and non-first fragments).
    pub payload_off: u32,
    /// Payload bytes captured (trailing Ethernet padding excluded).
    pub payload_len: u16,
    /// Payload length by the IP header (not cut by the snap length).
    pub payload_len_wire: u16,
    /// Set by the flow cache before the plugin hooks: the packet goes in the
    /// flow's source → destination direction.
    pub source_pkt: bool,
    /// A copy of the payload, made by [`Packet::keep_payload`] when process
    /// plugins need it (its buffer is reused from packet to packet).
    pub payload: Vec<u8>,
    /// Offsets of the last IP header and of the L4 header in the frame.
    pub l3_off: u32,
    pub l4_off: u32,
    /// A copy of the headers from the last IP header up to the payload, made
    /// by [`Packet::keep_l3`] for plugins that hand whole IP packets to a
    /// classifier (`app`: these bytes, then [`Packet::payload`]); empty
    /// otherwise.
    pub l3_head: Vec<u8>,
}

impl Packet {
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.frag_off != 0
    }

    /// The payload kept by [`Packet::keep_payload`].
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Copies the payload out of `frame` (the frame given to [`parse`]), for
    /// plugins that run after the frame's buffer is gone.
    pub fn keep_payload(&mut self, frame: &[u8]) {
        self.payload.clear();
        let start = self.payload_off as usize;
        let end = start + usize::from(self.payload_len);
        if let Some(b) = frame.get(start..end) {
            self.payload.extend_from_slice(b);
        }
    }

    /// The IP and L4 headers kept by [`Packet::keep_l3`]: with the payload
    /// after them, the IP packet as captured (Ethernet padding excluded).
    pub fn l3_head(&self) -> &[u8] {
        &self.l3_head
    }

    /// Copies the headers from the last IP header up to the payload out of
    /// `frame` (the frame given to [`parse`]); the payload itself is
    /// [`Packet::keep_payload`]'s, so it is copied once.
    pub fn keep_l3(&mut self, frame: &[u8]) {
        self.l3_head.clear();
        let start = self.l3_off as usize;
        let end = self.payload_off as usize;
        if let Some(b) = frame.get(start..end) {
            self.l3_head.extend_from_slice(b);
        }
    }

    /// Computes the payload bounds as ipfixprobe does, once the headers are
    /// parsed (`caplen`: bytes captured of the frame).
    fn set_payload_bounds(&mut self, caplen: usize) {
        let data_off = self.payload_off as usize;
        let mut pkt_len = caplen;
        let wire = if self.l4_off != self.l3_off {
            let l4 = self.l4_off as usize;
            let ip_payload = usize::from(self.ip_payload_len);
            if l4 + ip_payload < 64 {
                // Ethernet padding is not payload.
                pkt_len = l4 + ip_payload;
            }
            ip_payload.saturating_sub(data_off - l4)
        } else {
            caplen.saturating_sub(data_off)
        };
        self.payload_len_wire = wire.min(usize::from(u16::MAX)) as u16;
        let captured = pkt_len.saturating_sub(data_off);
        self.payload_len = wire.min(captured).min(usize::from(u16::MAX)) as u16;
    }
}

type R<T> = Result<T, ParseError>;

fn get(b: &[u8], at: usize, len: usize) -> R<&[u8]> {
    b.get(at..at.checked_add(len).ok_or(ParseError::Malformed)?)
        .ok_or(ParseError::Malformed)
}

fn u16_at(b: &[u8], at: usize) -> R<u16> {
    let s = get(b, at, 2)?;
    Ok(u16::from_be_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> R<u32> {
    let s = get(b, at, 4)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_PPPOE: u16 = 0x8864;
const ETH_TRILL: u16 = 0x22f3;

/// Parses one captured frame into `p` (which is reset first, keeping `ts_us`).
pub fn parse(link: LinkType, frame: &[u8], p: &mut Packet) -> R<()> {
    let ts = p.ts_us;
    let payload = std::mem::take(&mut p.payload);
    let l3_head = std::mem::take(&mut p.l3_head);
    *p = Packet {
        ts_us: ts,
        payload,
        l3_head,
        ..Packet::default()
    };
    p.payload.clear();
    p.l3_head.clear();
    p.packet_len = frame.len().min(usize::from(u16::MAX)) as u16;
    p.packet_len_wire = p.packet_len;
    let r = parse_link(link, frame, p);
    if r.is_ok() {
        p.set_payload_bounds(frame.len());
    }
    r
}

fn parse_link(link: LinkType, frame: &[u8], p: &mut Packet) -> R<()> {
    match link {
        LinkType::Ethernet => ethernet(frame, 0, p, true),
        LinkType::LinuxSll => {
            // packet type, ARPHRD type, address length, 8 address bytes, protocol.
            let hatype = u16_at(frame, 2)?;
            let alen = usize::from(u16_at(frame, 4)?);
            if hatype == 1 && alen == 6 {
                p.src_mac.copy_from_slice(get(frame, 6, 6)?);
            }
            let proto = u16_at(frame, 14)?;
            ethertype(frame, 16, proto, p)
        }
        LinkType::LinuxSll2 => {
            // protocol, reserved, ifindex, ARPHRD type, packet type, address length, 8 address bytes.
            let proto = u16_at(frame, 0)?;
            let hatype = u16_at(frame, 8)?;
            let alen = *get(frame, 11, 1)?.first().ok_or(ParseError::Malformed)?;
            if hatype == 1 && alen == 6 {
                p.src_mac.copy_from_slice(get(frame, 12, 6)?);
            }
            ethertype(frame, 20, proto, p)
        }
        LinkType::Raw => match get(frame, 0, 1)?[0] >> 4 {
            4 => ipv4(frame, 0, p),
            6 => ipv6(frame, 0, p),
            _ => Err(ParseError::NotIp),
        },
        LinkType::Ipv4 => ipv4(frame, 0, p),
        LinkType::Ipv6 => ipv6(frame, 0, p),
        LinkType::Null | LinkType::Loop => {
            let raw = get(frame, 0, 4)?;
            let fam = if link == LinkType::Loop {
                u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]])
            } else {
                // Host order of the capturing machine: accept either.
                let le = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
                if le < 256 {
                    le
                } else {
                    u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]])
                }
            };
            match fam {
                2 => ipv4(frame, 4, p),
                10 | 24 | 28 | 30 => ipv6(frame, 4, p),
                _ => Err(ParseError::NotIp),
            }
        }
    }
}

fn ethernet(b: &[u8], at: usize, p: &mut Packet, outer: bool) -> R<()> {
    let hdr = get(b, at, 14)?;
    if outer {
        p.dst_mac.copy_from_slice(&hdr[0..6]);
        p.src_mac.copy_from_slice(&hdr[6..12]);
    }
    let et = u16::from_be_bytes([hdr[12], hdr[13]]);
    ethertype(b, at + 14, et, p)
}

/// Follows tags and encapsulations from an ethertype at offset `at`.
fn ethertype(b: &[u8], mut at: usize, mut et: u16, p: &mut Packet) -> R<()> {
    let mut tagged = false;
    loop {
        match et {
            ETH_VLAN | ETH_QINQ => {
                let tci = u16_at(b, at)?;
                if !tagged {
                    p.vlan_id = tci & 0x0fff;
                    tagged = true;
                }
                et = u16_at(b, at + 2)?;
                at += 4;
            }
            ETH_TRILL => {
                // 6-byte header with an options length in 4-byte words, then
                // an inner Ethernet header.
                let opt_words = usize::from((get(b, at, 1)?[0] & 0x3e) >> 1);
                at += 6 + opt_words * 4;
                let inner = get(b, at, 14)?;
                et = u16::from_be_bytes([inner[12], inner[13]]);
                at += 14;
            }
            ETH_MPLS | ETH_MPLS_MC => return mpls(b, at, p),
            ETH_PPPOE => return pppoe(b, at, p),
            ETH_IPV4 => return ipv4(b, at, p),
            ETH_IPV6 => return ipv6(b, at, p),
            _ => return Err(ParseError::NotIp),
        }
    }
}

fn mpls(b: &[u8], mut at: usize, p: &mut Packet) -> R<()> {
    // Up to the bottom of the label stack.
    loop {
        let entry = u32_at(b, at)?;
        at += 4;
        if entry & 0x100 != 0 {
            break;
        }
    }
    match get(b, at, 1)?[0] >> 4 {
        4 => ipv4(b, at, p),
        6 => ipv6(b, at, p),
        // Ethernet over MPLS: a 4-byte control word, then a frame.
        0 => ethernet(b, at + 4, p, false),
        _ => Err(ParseError::NotIp),
    }
}

fn pppoe(b: &[u8], at: usize, p: &mut Packet) -> R<()> {
    let hdr = get(b, at, 8)?;
    if hdr[1] != 0 {
        // Discovery stage packets carry no IP.
        return Err(ParseError::NotIp);
    }
    match u16::from_be_bytes([hdr[6], hdr[7]]) {
        0x0021 => ipv4(b, at + 8, p),
        0x0057 => ipv6(b, at + 8, p),
        _ => Err(ParseError::NotIp),
    }
}

fn set_v4(dst: &mut [u8; 16], a: &[u8]) {
    *dst = [
        0, 0, 0, 0, 0, 0, 0, 0, a[0], a[1], a[2], a[3], 0xff, 0xff, 0xff, 0xff,
    ];
}

fn ipv4(b: &[u8], at: usize, p: &mut Packet) -> R<()> {
    let h = get(b, at, 20)?;
    if h[0] >> 4 != 4 {
        return Err(ParseError::Malformed);
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(ParseError::Malformed);
    }
    get(b, at, ihl)?;
    p.ip_version = 4;
    p.ip_len = u32::from(u16::from_be_bytes([h[2], h[3]]));
    p.ip_tos = h[1];
    p.ip_payload_len = (p.ip_len as u16).wrapping_sub(ihl as u16);
    p.ip_flags = h[6] >> 5;
    p.frag_id = u32::from(u16::from_be_bytes([h[4], h[5]]));
    let frag = u16::from_be_bytes([h[6], h[7]]);
    p.more_fragments = frag & 0x2000 != 0;
    p.frag_off = frag & 0x1fff;
    p.ttl = h[8];
    p.protocol = h[9];
    set_v4(&mut p.src_ip, &h[12..16]);
    set_v4(&mut p.dst_ip, &h[16..20]);
    let l4 = at + ihl;
    p.l3_off = at as u32;
    p.l4_off = l4 as u32;
    p.payload_off = l4 as u32;
    if p.frag_off != 0 {
        return Ok(());
    }
    if p.protocol == 47 {
        return gre(b, l4, p);
    }
    transport(b, l4, p)
}

fn ipv6(b: &[u8], at: usize, p: &mut Packet) -> R<()> {
    let h = get(b, at, 40)?;
    if h[0] >> 4 != 6 {
        return Err(ParseError::Malformed);
    }
    p.ip_version = 6;
    p.ip_len = u32::from(u16::from_be_bytes([h[4], h[5]])) + 40;
    p.ip_payload_len = u16::from_be_bytes([h[4], h[5]]);
    p.ip_tos = ((u32::from_be_bytes([h[0], h[1], h[2], h[3]]) >> 20) & 0xff) as u8;
    p.ttl = h[7];
    p.src_ip.copy_from_slice(&h[8..24]);
    p.dst_ip.copy_from_slice(&h[24..40]);
    let mut next = h[6];
    let mut off = at + 40;
    // Extension headers: hop-by-hop, routing, fragment, destination options,
    // authentication, mobility.
    let mut guard = 0;
    loop {
        guard += 1;
        if guard > 32 {
            return Err(ParseError::Malformed);
        }
        match next {
            0 | 43 | 60 | 135 => {
                let e = get(b, off, 2)?;
                next = e[0];
                off += (usize::from(e[1]) + 1) * 8;
            }
            51 => {
                let e = get(b, off, 2)?;
                next = e[0];
                off += (usize::from(e[1]) + 2) * 4;
            }
            44 => {
                let e = get(b, off, 8)?;
                next = e[0];
                let fo = u16::from_be_bytes([e[2], e[3]]);
                p.frag_off = fo >> 3;
                p.more_fragments = fo & 1 != 0;
                p.frag_id = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
                off += 8;
            }
            _ => break,
        }
    }
    p.protocol = next;
    p.ip_payload_len = p
        .ip_payload_len
        .wrapping_sub((off - (at + 40)).min(usize::from(u16::MAX)) as u16);
    p.l3_off = at as u32;
    p.l4_off = off as u32;
    p.payload_off = off as u32;
    if p.frag_off != 0 {
        return Ok(());
    }
    transport(b, off, p)
}

fn gre(b: &[u8], at: usize, p: &mut Packet) -> R<()> {
    let flags = u16_at(b, at)?;
    let proto = u16_at(b, at + 2)?;
    let mut off = at + 4;
    for bit in [0x8000u16, 0x2000, 0x1000] {
        // checksum (+reserved), key, sequence number
        if flags & bit != 0 {
            off += 4;
        }
    }
    // The inner packet becomes the flow; other payloads make no flow.
    match proto {
        ETH_IPV4 => ipv4(b, off, p),
        ETH_IPV6 => ipv6(b, off, p),
        ETH_MPLS | ETH_MPLS_MC => mpls(b, off, p),
        ETH_PPPOE => pppoe(b, off, p),
        _ => Err(ParseError::NotIp),
    }
}

fn transport(b: &[u8], at: usize, p: &mut Packet) -> R<()> {
    match p.protocol {
        6 => {
            let h = get(b, at, 20)?;
            let data_off = usize::from(h[12] >> 4) * 4;
            if data_off < 20 {
                return Err(ParseError::Malformed);
            }
            p.src_port = u16::from_be_bytes([h[0], h[1]]);
            p.dst_port = u16::from_be_bytes([h[2], h[3]]);
            p.tcp_seq = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
            p.tcp_ack = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
            p.tcp_flags = h[13];
            p.tcp_window = u16::from_be_bytes([h[14], h[15]]);
            let opts = get(b, at + 20, data_off - 20)?;
            tcp_options(opts, b.get(at + 20..).unwrap_or_default(), p)?;
            p.payload_off = (at + data_off) as u32;
            p.l4_parsed = true;
        }
        17 => {
            let h = get(b, at, 8)?;
            p.src_port = u16::from_be_bytes([h[0], h[1]]);
            p.dst_port = u16::from_be_bytes([h[2], h[3]]);
            p.payload_off = (at + 8) as u32;
            p.l4_parsed = true;
        }
        _ => p.l4_parsed = true,
    }
    Ok(())
}

/// The TCP options as ipfixprobe reads them: a kind-bit mask and the MSS;
/// an option of length 0, or one cut by the header's end, is malformed.
/// `rest` is everything from the options on (the MSS read may look past the
/// header, as ipfixprobe's 32-bit read does).
fn tcp_options(opts: &[u8], rest: &[u8], p: &mut Packet) -> R<()> {
    let mut i = 0;
    while i < opts.len() {
        let kind = opts[i];
        if i + 1 >= opts.len() {
            if kind <= 1 {
                return Ok(());
            }
            return Err(ParseError::Malformed);
        }
        let len = if kind <= 1 {
            1
        } else {
            usize::from(opts[i + 1])
        };
        // Kinds over 63 wrap around, as the shift does in ipfixprobe on x86.
        p.tcp_options |= 1u64.wrapping_shl(u32::from((kind & 0xf8) + (7 - (kind & 7))));
        if kind == 0 {
            break;
        }
        if kind == 2 {
            let mut v = [0u8; 4];
            for (k, byte) in v.iter_mut().enumerate() {
                *byte = rest.get(i + 2 + k).copied().unwrap_or(0);
            }
            p.tcp_mss = u32::from_be_bytes(v);
        }
        if len == 0 {
            return Err(ParseError::Malformed);
        }
        i += len;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Ethernet + IPv4 + TCP/UDP frame for tests.
    pub(crate) fn frame_v4(
        proto: u8,
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        flags: u8,
        vlan: Option<u16>,
    ) -> Vec<u8> {
        let mut f = vec![0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 1, 2, 3, 4, 5, 6];
        if let Some(v) = vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&v.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let l4: Vec<u8> = match proto {
            6 => {
                let mut t = vec![0; 20];
                t[0..2].copy_from_slice(&sport.to_be_bytes());
                t[2..4].copy_from_slice(&dport.to_be_bytes());
                t[12] = 5 << 4;
                t[13] = flags;
                t
            }
            17 => {
                let mut u = vec![0; 8];
                u[0..2].copy_from_slice(&sport.to_be_bytes());
                u[2..4].copy_from_slice(&dport.to_be_bytes());
                u
            }
            _ => vec![8, 0, 0, 0, 0, 0, 0, 0],
        };
        let total = (20 + l4.len() + 10) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 1, 0, 0, 64, proto, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&l4);
        f.extend_from_slice(&[0; 10]);
        f
    }

    #[test]
    fn ethernet_vlan_tcp() {
        let f = frame_v4(6, [10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, 0x02, Some(42));
        let mut p = Packet::default();
        parse(LinkType::Ethernet, &f, &mut p).unwrap();
        assert_eq!(
            (
                p.ip_version,
                p.protocol,
                p.src_port,
                p.dst_port,
                p.tcp_flags,
                p.vlan_id
            ),
            (4, 6, 1234, 80, 2, 42)
        );
        assert_eq!(p.ip_len, 50);
        assert_eq!(p.src_mac, [1, 2, 3, 4, 5, 6]);
        assert_eq!(&p.src_ip[8..12], &[10, 0, 0, 1]);
        // The IP packet, without the Ethernet and VLAN headers.
        p.keep_l3(&f);
        p.keep_payload(&f);
        assert_eq!(p.l3_head(), &f[18..18 + 40]);
        assert_eq!([p.l3_head(), p.payload()].concat(), &f[18..18 + 50]);
    }

    #[test]
    fn the_kept_ip_packet_leaves_out_ethernet_padding() {
        let mut f = frame_v4(17, [10, 0, 0, 1], [10, 0, 0, 2], 53, 53, 0, None);
        // 14 + 38 bytes: padded to 60 on the wire.
        let ip_len = f.len() - 14;
        f.extend_from_slice(&[0xee; 8]);
        let mut p = Packet::default();
        parse(LinkType::Ethernet, &f, &mut p).unwrap();
        p.keep_l3(&f);
        p.keep_payload(&f);
        let ip = [p.l3_head(), p.payload()].concat();
        assert_eq!(ip.len(), ip_len);
        assert!(!ip.contains(&0xee));
    }

    #[test]
    fn icmp_has_no_ports_and_truncation_is_malformed() {
        let f = frame_v4(1, [1, 1, 1, 1], [2, 2, 2, 2], 0, 0, 0, None);
        let mut p = Packet::default();
        parse(LinkType::Ethernet, &f, &mut p).unwrap();
        assert_eq!((p.src_port, p.dst_port, p.protocol), (0, 0, 1));
        let f = frame_v4(6, [1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 0, None);
        assert_eq!(
            parse(LinkType::Ethernet, &f[..40], &mut p),
            Err(ParseError::Malformed)
        );
        assert_eq!(
            parse(LinkType::Ethernet, &[0; 13], &mut p),
            Err(ParseError::Malformed)
        );
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(
            parse(LinkType::Ethernet, &arp, &mut p),
            Err(ParseError::NotIp)
        );
    }

    #[test]
    fn no_panic_on_garbage() {
        let mut p = Packet::default();
        let mut seed = 0x1234_5678_9abc_def0u64;
        let base = frame_v4(6, [1, 2, 3, 4], [5, 6, 7, 8], 1, 2, 0, Some(1));
        for i in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut f = base.clone();
            let n = (seed % f.len() as u64) as usize;
            f[n] = (seed >> 8) as u8;
            f.truncate((seed >> 16) as usize % (f.len() + 1));
            for link in [
                LinkType::Ethernet,
                LinkType::LinuxSll,
                LinkType::LinuxSll2,
                LinkType::Raw,
                LinkType::Null,
            ] {
                if parse(link, &f, &mut p).is_ok() {
                    p.keep_l3(&f);
                    p.keep_payload(&f);
                }
            }
            if i % 1000 == 0 {
                let junk: Vec<u8> = (0..(seed % 200))
                    .map(|k| (seed >> (k % 56)) as u8)
                    .collect();
                let _ = parse(LinkType::Ethernet, &junk, &mut p);
            }
        }
    }
}
