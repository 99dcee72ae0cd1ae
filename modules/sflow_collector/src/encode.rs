//! Writing sFlow v5 datagrams: what the tests, the fuzz seeds and the
//! benchmark feed the collector (the collector itself only reads).

use std::net::IpAddr;

fn word(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn opaque(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b);
    out.resize(out.len() + (4 - b.len() % 4) % 4, 0);
}

fn address(out: &mut Vec<u8>, a: Option<IpAddr>) {
    match a {
        None => word(out, 0),
        Some(IpAddr::V4(v)) => {
            word(out, 1);
            out.extend_from_slice(&v.octets());
        }
        Some(IpAddr::V6(v)) => {
            word(out, 2);
            out.extend_from_slice(&v.octets());
        }
    }
}

/// A flow sample to write.
#[derive(Debug, Clone, Default)]
pub struct FlowSampleSpec {
    pub expanded: bool,
    pub sequence: u32,
    pub source_index: u32,
    pub sampling_rate: u32,
    pub sample_pool: u32,
    pub drops: u32,
    pub input: u32,
    pub output: u32,
}

/// A datagram under construction.
#[derive(Debug, Clone)]
pub struct DatagramBuilder {
    agent: Option<IpAddr>,
    sub_agent: u32,
    sequence: u32,
    uptime_ms: u32,
    count: u32,
    body: Vec<u8>,
}

impl DatagramBuilder {
    pub fn new(agent: Option<IpAddr>, sub_agent: u32, sequence: u32, uptime_ms: u32) -> Self {
        DatagramBuilder {
            agent,
            sub_agent,
            sequence,
            uptime_ms,
            count: 0,
            body: Vec::new(),
        }
    }

    fn sample(&mut self, format: u32, data: &[u8]) {
        self.count += 1;
        word(&mut self.body, format);
        word(&mut self.body, data.len() as u32);
        opaque(&mut self.body, data);
    }

    /// A flow sample with one raw-header record (Ethernet, header_protocol
    /// 1) holding `frame` cut to `snap` bytes.
    pub fn flow_sample(&mut self, s: &FlowSampleSpec, frame: &[u8], snap: usize) {
        let mut rec = Vec::new();
        let head = &frame[..frame.len().min(snap)];
        word(&mut rec, 1);
        word(&mut rec, frame.len() as u32);
        word(&mut rec, 0);
        word(&mut rec, head.len() as u32);
        opaque(&mut rec, head);
        self.flow_sample_records(s, &[(1, rec)]);
    }

    /// A flow sample with the given flow records (format, data).
    pub fn flow_sample_records(&mut self, s: &FlowSampleSpec, records: &[(u32, Vec<u8>)]) {
        let mut d = Vec::new();
        word(&mut d, s.sequence);
        if s.expanded {
            word(&mut d, 0);
            word(&mut d, s.source_index);
        } else {
            word(&mut d, s.source_index & 0x00ff_ffff);
        }
        word(&mut d, s.sampling_rate);
        word(&mut d, s.sample_pool);
        word(&mut d, s.drops);
        if s.expanded {
            word(&mut d, 0);
            word(&mut d, s.input);
            word(&mut d, 0);
            word(&mut d, s.output);
        } else {
            word(&mut d, s.input & 0x3fff_ffff);
            word(&mut d, s.output & 0x3fff_ffff);
        }
        word(&mut d, records.len() as u32);
        for (format, data) in records {
            word(&mut d, *format);
            word(&mut d, data.len() as u32);
            opaque(&mut d, data);
        }
        self.sample(if s.expanded { 3 } else { 1 }, &d);
    }

    /// A counter sample with one generic interface counters record
    /// (format 1, 88 bytes of zeros but the ifIndex).
    pub fn counter_sample(&mut self, sequence: u32, source_index: u32) {
        let mut d = Vec::new();
        word(&mut d, sequence);
        word(&mut d, source_index & 0x00ff_ffff);
        word(&mut d, 1);
        word(&mut d, 1);
        word(&mut d, 88);
        let mut counters = vec![0u8; 88];
        counters[..4].copy_from_slice(&source_index.to_be_bytes());
        d.extend_from_slice(&counters);
        self.sample(2, &d);
    }

    /// The datagram's bytes.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + self.body.len());
        word(&mut out, 5);
        address(&mut out, self.agent);
        word(&mut out, self.sub_agent);
        word(&mut out, self.sequence);
        word(&mut out, self.uptime_ms);
        word(&mut out, self.count);
        out.extend_from_slice(&self.body);
        out
    }
}

/// A sampled IPv4 record (format 3).
#[allow(clippy::too_many_arguments)]
pub fn sampled_ipv4(
    length: u32,
    protocol: u32,
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    src_port: u32,
    dst_port: u32,
    tcp_flags: u32,
    tos: u32,
) -> (u32, Vec<u8>) {
    let mut d = Vec::new();
    word(&mut d, length);
    word(&mut d, protocol);
    d.extend_from_slice(&src.octets());
    d.extend_from_slice(&dst.octets());
    for v in [src_port, dst_port, tcp_flags, tos] {
        word(&mut d, v);
    }
    (3, d)
}
