//! Synthetic captures: a classic pcap writer and well-formed Ethernet/IPv4
//! frames (valid IP, TCP and UDP checksums), used by `pcap_generator` for the
//! benchmark capture and for the demo's small scenario ([`demo_scenario`]):
//! web and DNS traffic of one client, and a vertical SYN port scan.

use std::io::{self, Write};
use std::net::Ipv4Addr;

/// Writes a classic pcap: µs timestamps, Ethernet, snaplen 65535.
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W) -> io::Result<PcapWriter<W>> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&[0; 8])?; // thiszone, sigfigs
        out.write_all(&65535u32.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
        Ok(PcapWriter { out })
    }

    /// One whole frame at `ts_us` (µs since the epoch).
    pub fn packet(&mut self, ts_us: u64, frame: &[u8]) -> io::Result<()> {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.out
            .write_all(&((ts_us / 1_000_000) as u32).to_le_bytes())?;
        self.out
            .write_all(&((ts_us % 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(frame)
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// The transport part of a frame.
#[derive(Clone, Copy, Debug)]
pub enum L4<'a> {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &'a [u8],
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: &'a [u8],
    },
    /// An ICMP message of type `kind` (code 0, id 1, sequence 1).
    Icmp { kind: u8, payload: &'a [u8] },
}

fn checksum(sum: u32, data: &[u8]) -> u32 {
    let mut sum = sum;
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet + IPv4 frame carrying `l4`, appended to `frame` (cleared first).
pub fn ipv4_frame(frame: &mut Vec<u8>, src: Ipv4Addr, dst: Ipv4Addr, ip_id: u16, l4: L4<'_>) {
    frame.clear();
    // Locally administered MACs derived from the addresses' last octets.
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, dst.octets()[3]]);
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, src.octets()[3]]);
    frame.extend_from_slice(&[0x08, 0x00]);
    let (proto, header_len, payload) = match l4 {
        L4::Tcp { payload, .. } => (6u8, 20usize, payload),
        L4::Udp { payload, .. } => (17u8, 8usize, payload),
        L4::Icmp { payload, .. } => (1u8, 8usize, payload),
    };
    let l4_len = header_len + payload.len();
    let ip_start = frame.len();
    let total = (20 + l4_len) as u16;
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&total.to_be_bytes());
    frame.extend_from_slice(&ip_id.to_be_bytes());
    frame.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
    frame.extend_from_slice(&src.octets());
    frame.extend_from_slice(&dst.octets());
    let ip_sum = fold(checksum(0, &frame[ip_start..]));
    frame[ip_start + 10..ip_start + 12].copy_from_slice(&ip_sum.to_be_bytes());
    let l4_start = frame.len();
    match l4 {
        L4::Tcp {
            sport,
            dport,
            seq,
            ack,
            flags,
            payload,
        } => {
            frame.extend_from_slice(&sport.to_be_bytes());
            frame.extend_from_slice(&dport.to_be_bytes());
            frame.extend_from_slice(&seq.to_be_bytes());
            frame.extend_from_slice(&ack.to_be_bytes());
            frame.extend_from_slice(&[5 << 4, flags]);
            frame.extend_from_slice(&64240u16.to_be_bytes()); // window
            frame.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
            frame.extend_from_slice(payload);
        }
        L4::Udp {
            sport,
            dport,
            payload,
        } => {
            frame.extend_from_slice(&sport.to_be_bytes());
            frame.extend_from_slice(&dport.to_be_bytes());
            frame.extend_from_slice(&(l4_len as u16).to_be_bytes());
            frame.extend_from_slice(&[0, 0]);
            frame.extend_from_slice(payload);
        }
        L4::Icmp { kind, payload } => {
            frame.extend_from_slice(&[kind, 0, 0, 0, 0, 1, 0, 1]);
            frame.extend_from_slice(payload);
            let sum = fold(checksum(0, &frame[l4_start..]));
            frame[l4_start + 2..l4_start + 4].copy_from_slice(&sum.to_be_bytes());
            return;
        }
    }
    // Pseudo-header: addresses, protocol, transport length.
    let mut sum = checksum(0, &src.octets());
    sum = checksum(sum, &dst.octets());
    sum += u32::from(proto) + l4_len as u32;
    let l4_sum = match fold(checksum(sum, &frame[l4_start..])) {
        0 if proto == 17 => 0xffff,
        s => s,
    };
    let at = l4_start + if proto == 6 { 16 } else { 6 };
    frame[at..at + 2].copy_from_slice(&l4_sum.to_be_bytes());
}

/// A packet of a scenario: time (µs since the epoch) and the frame.
pub type TimedFrame = (u64, Vec<u8>);

/// Builds the frames of one scenario in time order.
struct Scenario {
    t_us: u64,
    ip_id: u16,
    packets: Vec<TimedFrame>,
}

impl Scenario {
    fn emit(&mut self, gap_us: u64, src: Ipv4Addr, dst: Ipv4Addr, l4: L4<'_>) {
        self.t_us += gap_us;
        self.ip_id = self.ip_id.wrapping_add(1);
        let mut frame = Vec::with_capacity(128);
        ipv4_frame(&mut frame, src, dst, self.ip_id, l4);
        self.packets.push((self.t_us, frame));
    }

    /// A whole TCP connection: handshake, one request and a response in
    /// `response_segments` segments, FIN from both sides.
    fn tcp_session(
        &mut self,
        client: (Ipv4Addr, u16),
        server: (Ipv4Addr, u16),
        request: &[u8],
        response: &[u8],
        response_segments: usize,
    ) {
        let ((c, cp), (s, sp)) = (client, server);
        let (mut cseq, mut sseq) = (1_000u32, 50_000u32);
        self.emit(0, c, s, tcp(cp, sp, cseq, 0, SYN, &[]));
        self.emit(900, s, c, tcp(sp, cp, sseq, cseq + 1, SYN | ACK, &[]));
        cseq += 1;
        sseq += 1;
        self.emit(900, c, s, tcp(cp, sp, cseq, sseq, ACK, &[]));
        self.emit(200, c, s, tcp(cp, sp, cseq, sseq, PSH | ACK, request));
        cseq += request.len() as u32;
        let chunk = response.len().div_ceil(response_segments.max(1)).max(1);
        for part in response.chunks(chunk) {
            self.emit(3_000, s, c, tcp(sp, cp, sseq, cseq, PSH | ACK, part));
            sseq += part.len() as u32;
            self.emit(300, c, s, tcp(cp, sp, cseq, sseq, ACK, &[]));
        }
        self.emit(20_000, c, s, tcp(cp, sp, cseq, sseq, FIN | ACK, &[]));
        self.emit(900, s, c, tcp(sp, cp, sseq, cseq + 1, FIN | ACK, &[]));
        self.emit(900, c, s, tcp(cp, sp, cseq + 1, sseq + 1, ACK, &[]));
    }
}

/// 2026-01-01T00:00:00Z, the scenario's start.
pub const DEMO_START_US: u64 = 1_767_225_600_000_000;
/// The client browsing the web.
pub const DEMO_CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// Its web server (port 80 open, every other port closed).
pub const DEMO_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 80);
/// Its DNS resolver.
pub const DEMO_RESOLVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);
/// The scanner (TEST-NET-3).
pub const DEMO_SCANNER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);
/// The ports the scanner probes, one SYN each.
pub const DEMO_SCANNED_PORTS: std::ops::RangeInclusive<u16> = 1..=100;

/// The demo's capture: the client resolves the server's name and loads three
/// pages over HTTP (one connection each), then the scanner probes ports
/// 1–100 of the server with one SYN each (closed ports answer RST, port 80
/// SYN-ACK and the scanner resets it) and finally loads a page itself.
/// About 20 s of traffic, deterministic.
pub fn demo_scenario() -> Vec<TimedFrame> {
    let mut s = Scenario {
        t_us: DEMO_START_US,
        ip_id: 0,
        packets: Vec::new(),
    };
    let query = dns_query(0x4e52, "www.example.test");
    let answer = dns_answer(&query, DEMO_SERVER);
    s.emit(0, DEMO_CLIENT, DEMO_RESOLVER, udp(40_001, 53, &query));
    s.emit(4_000, DEMO_RESOLVER, DEMO_CLIENT, udp(53, 40_001, &answer));
    let page = demo_page();
    for (i, path) in ["/", "/news.html", "/about.html"].iter().enumerate() {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: nemea-rs-demo\r\n\r\n"
        );
        s.t_us += 1_500_000;
        s.tcp_session(
            (DEMO_CLIENT, 50_100 + i as u16),
            (DEMO_SERVER, 80),
            request.as_bytes(),
            &page,
            3,
        );
    }
    s.t_us += 2_000_000;
    for (n, port) in DEMO_SCANNED_PORTS.enumerate() {
        let sport = 61_000 + n as u16;
        let seq = 7_000 + u32::from(port);
        s.emit(
            20_000,
            DEMO_SCANNER,
            DEMO_SERVER,
            tcp(sport, port, seq, 0, SYN, &[]),
        );
        // Closed ports answer RST; the open one SYN-ACK, which the scanner resets.
        let open = port == 80;
        let (reply_seq, flags) = if open {
            (90_000, SYN | ACK)
        } else {
            (0, RST | ACK)
        };
        let reply = tcp(port, sport, reply_seq, seq + 1, flags, &[]);
        s.emit(300, DEMO_SERVER, DEMO_SCANNER, reply);
        if open {
            s.emit(
                200,
                DEMO_SCANNER,
                DEMO_SERVER,
                tcp(sport, port, seq + 1, 0, RST, &[]),
            );
        }
    }
    s.t_us += 3_000_000;
    s.tcp_session(
        (DEMO_SCANNER, 62_000),
        (DEMO_SERVER, 80),
        b"GET / HTTP/1.1\r\nHost: 198.51.100.80\r\n\r\n",
        &page,
        2,
    );
    s.packets
}

fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> L4<'_> {
    L4::Tcp {
        sport,
        dport,
        seq,
        ack,
        flags,
        payload,
    }
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> L4<'_> {
    L4::Udp {
        sport,
        dport,
        payload,
    }
}

/// A DNS query for the A record of `name`.
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// An HTTP response with a small HTML page (about 3 kB).
fn demo_page() -> Vec<u8> {
    let mut body = String::from("<!doctype html><html><head><title>demo</title></head><body>\n");
    for i in 0..60 {
        body.push_str(&format!("<p>line {i} of the nemea-rs demo page</p>\n"));
    }
    body.push_str("</body></html>\n");
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body.as_bytes());
    r
}

/// The answer to [`dns_query`]: one A record (TTL 3600) for `addr`.
pub fn dns_answer(query: &[u8], addr: Ipv4Addr) -> Vec<u8> {
    let mut answer = query.to_vec();
    if answer.len() >= 12 {
        answer[2] = 0x81; // response, recursion desired
        answer[3] = 0x80; // recursion available
        answer[7] = 1; // one answer
    }
    answer.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
    answer.extend_from_slice(&addr.octets());
    answer
}

/// An HTTP/1.1 GET request.
pub fn http_request(host: &str, path: &str, agent: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\nAccept: */*\r\n\r\n")
        .into_bytes()
}

/// The head of an HTTP/1.1 200 response announcing `body_len` bytes.
pub fn http_response_head(body_len: usize) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nServer: nemea-rs-synth\r\nContent-Type: text/html\r\n\
         Set-Cookie: session=1; Path=/\r\nContent-Length: {body_len}\r\n\r\n"
    )
    .into_bytes()
}

fn put_u16(v: &mut Vec<u8>, x: usize) {
    v.extend_from_slice(&(x as u16).to_be_bytes());
}

/// Wraps a handshake message body in a handshake header and a TLS record.
fn tls_handshake_record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![0x16, 0x03, 0x01];
    put_u16(&mut r, body.len() + 4);
    r.push(kind);
    r.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    r.extend_from_slice(body);
    r
}

/// A TLS ClientHello as a browser sends it: TLS 1.2 and 1.3, SNI `sni`,
/// ALPN h2 and http/1.1, the usual groups, signature algorithms and an
/// X25519 key share. `seed` varies the random and the session id.
pub fn tls_client_hello(sni: &str, seed: u64) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    for i in 0..32u64 {
        b.push((seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (i % 8 * 8)) as u8 ^ i as u8);
    }
    b.push(32);
    b.extend((0..32u8).map(|i| i.wrapping_mul(7) ^ seed as u8));
    let suites: [u16; 15] = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
        0x009c, 0x009d, 0x002f, 0x0035,
    ];
    put_u16(&mut b, suites.len() * 2);
    for s in suites {
        b.extend_from_slice(&s.to_be_bytes());
    }
    b.extend_from_slice(&[1, 0]); // null compression
    let mut ext = Vec::new();
    let mut add = |kind: u16, data: &[u8]| {
        ext.extend_from_slice(&kind.to_be_bytes());
        put_u16(&mut ext, data.len());
        ext.extend_from_slice(data);
    };
    let mut sn = Vec::new();
    put_u16(&mut sn, sni.len() + 3);
    sn.push(0);
    put_u16(&mut sn, sni.len());
    sn.extend_from_slice(sni.as_bytes());
    add(0x0000, &sn);
    add(0x0017, &[]); // extended master secret
    add(0xff01, &[0]); // renegotiation info
    add(
        0x000a,
        &[0, 8, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18, 0x00, 0x19],
    ); // groups
    add(0x000b, &[1, 0]); // point formats
    add(0x0023, &[]); // session ticket
    add(
        0x0010,
        &[
            0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
        ],
    );
    add(0x0005, &[1, 0, 0, 0, 0]); // status request
    add(0x000d, &[0, 14, 4, 3, 5, 3, 6, 3, 8, 4, 8, 5, 8, 6, 4, 1]); // signature algorithms
    let mut ks = vec![0, 36, 0x00, 0x1d, 0, 32];
    ks.extend((0..32u8).map(|i| i ^ (seed >> 8) as u8));
    add(0x0033, &ks); // key share
    add(0x002d, &[1, 1]); // psk modes
    add(0x002b, &[4, 0x03, 0x04, 0x03, 0x03]); // supported versions
    put_u16(&mut b, ext.len());
    b.extend_from_slice(&ext);
    tls_handshake_record(1, &b)
}

/// A TLS 1.3 ServerHello answering [`tls_client_hello`] (X25519, TLS_AES_128_GCM_SHA256).
pub fn tls_server_hello(seed: u64) -> Vec<u8> {
    let mut b = vec![0x03, 0x03];
    b.extend((0..32u8).map(|i| i.wrapping_mul(13) ^ seed as u8));
    b.push(32);
    b.extend((0..32u8).map(|i| i.wrapping_mul(7) ^ seed as u8));
    b.extend_from_slice(&[0x13, 0x01, 0]);
    let mut ext = vec![
        0x00, 0x2b, 0, 2, 0x03, 0x04, 0x00, 0x33, 0, 36, 0x00, 0x1d, 0, 32,
    ];
    ext.extend((0..32u8).map(|i| i ^ 0x5a ^ seed as u8));
    put_u16(&mut b, ext.len());
    b.extend_from_slice(&ext);
    tls_handshake_record(2, &b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{self, LinkType, Packet};

    #[test]
    fn tls_hellos_have_consistent_lengths() {
        for hello in [tls_client_hello("www.example.test", 3), tls_server_hello(3)] {
            let rec_len = usize::from(u16::from_be_bytes([hello[3], hello[4]]));
            assert_eq!(rec_len + 5, hello.len());
            let hs_len = u32::from_be_bytes([0, hello[6], hello[7], hello[8]]) as usize;
            assert_eq!(hs_len + 4, rec_len);
        }
    }

    #[test]
    fn frames_have_valid_checksums() {
        for (_, f) in demo_scenario() {
            let ip = &f[14..34];
            assert_eq!(fold(checksum(0, ip)), 0, "IP header checksum");
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let l4 = &f[34..14 + total];
            let mut sum = checksum(0, &ip[12..20]);
            sum += u32::from(ip[9]) + l4.len() as u32;
            assert_eq!(fold(checksum(sum, l4)), 0, "transport checksum");
        }
    }

    #[test]
    fn demo_scenario_parses_and_is_in_time_order() {
        let packets = demo_scenario();
        // DNS 2 + three sessions of 13 + the scan (100 SYNs, 100 replies, 1 reset) + 11.
        assert_eq!(packets.len(), 2 + 3 * 13 + 201 + 11);
        let mut last = 0;
        for (ts, frame) in &packets {
            assert!(*ts >= last);
            last = *ts;
            let mut p = Packet::default();
            parser::parse(LinkType::Ethernet, frame, &mut p).expect("parses");
        }
    }

    #[test]
    fn pcap_writer_layout() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.packet(1_500_000, &[0xaa; 3]).unwrap();
        let b = w.into_inner();
        assert_eq!(b.len(), 24 + 16 + 3);
        assert_eq!(&b[..4], &0xa1b2_c3d4u32.to_le_bytes());
        assert_eq!(&b[24..28], &1u32.to_le_bytes());
        assert_eq!(&b[28..32], &500_000u32.to_le_bytes());
        assert_eq!(&b[32..40], &[3, 0, 0, 0, 3, 0, 0, 0]);
    }
}
