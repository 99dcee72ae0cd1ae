//! From sFlow datagrams to sample records: the decoding logic of the
//! collector, without sockets or clocks (the receive time is a parameter).
//!
//! Each flow sample (compact or expanded) with an IP packet in it becomes
//! one [`SampleRecord`]: the agent, the sample's interfaces and sampling
//! figures, and the sampled packet's 5-tuple, TCP flags, MACs and header
//! bytes. The packet comes from the raw-header record (parsed as
//! flow_meter parses a frame); a sampled IPv4/IPv6 record fills in when no
//! header is there or it does not parse. Samples of non-IP packets are
//! counted and left out, as are counter samples and formats of other
//! enterprises.
//!
//! A datagram is taken whole or not at all: one that does not read to its
//! end is counted as malformed and none of its samples is sent, and it does
//! not move the sequence numbers. Sequence gaps are counted per agent
//! (address and sub-agent) for datagrams and per agent and source id for
//! flow samples and counter samples apart; a number lower than the last
//! (an agent restart) starts over without counting a loss.

use crate::wire::{Datagram, FlowRecord, FlowSample, Sample, SourceId, WireError};
use flow_meter::parser::{parse, LinkType, Packet};
use std::collections::HashMap;
use std::net::IpAddr;
use unirec::{RecordBuilder, RecordError, Template, UrIp, UrMac, UrTime};

/// The output template: the basic flow fields that a sample has (a sample
/// is a flow of one packet: PACKETS 1, BYTES its IP length, TIME_FIRST =
/// TIME_LAST) plus the sFlow fields.
pub const OUTPUT_SPEC: &str = "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,\
uint8 PROTOCOL,uint8 TCP_FLAGS,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST,\
macaddr SRC_MAC,macaddr DST_MAC,uint8 TOS,ipaddr AGENT_IP,uint32 SUB_AGENT_ID,uint32 SOURCE_ID,\
uint32 INPUT_IFINDEX,uint32 OUTPUT_IFINDEX,uint32 SAMPLING_RATE,uint32 SAMPLE_POOL,uint32 DROPS,\
uint32 FRAME_LEN,uint16 ETHERTYPE,bytes HEADER";

/// HEADER keeps at most this many bytes of a sampled header (agents send
/// 128 by default; a record must stay below UniRec's 64 KiB).
pub const MAX_HEADER: usize = 4096;

/// One flow sample's packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleRecord {
    pub time: UrTime,
    pub agent: Option<IpAddr>,
    pub sub_agent: u32,
    pub source: SourceId,
    pub input_if: u32,
    pub output_if: u32,
    pub sampling_rate: u32,
    pub sample_pool: u32,
    pub drops: u32,
    /// The frame's length on the wire (the raw-header record's, else the
    /// sampled Ethernet or IP record's).
    pub frame_len: u32,
    pub src_ip: UrIp,
    pub dst_ip: UrIp,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub tcp_flags: u8,
    pub tos: u8,
    /// The IP packet's length (IP header's total length).
    pub ip_len: u32,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub ethertype: u16,
    /// The sampled header bytes (empty without a raw-header record; at
    /// most [`MAX_HEADER`]).
    pub header: Vec<u8>,
}

/// Counters of a collector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub datagrams: u64,
    pub malformed: u64,
    pub flow_samples: u64,
    pub counter_samples: u64,
    /// Samples of other formats or enterprises (skipped).
    pub other_samples: u64,
    /// Flow samples whose packet is not IP (skipped).
    pub not_ip: u64,
    /// Records produced.
    pub records: u64,
    /// Datagrams missing by the agents' sequence numbers.
    pub lost_datagrams: u64,
    /// Flow samples missing by the sources' sequence numbers.
    pub lost_flow_samples: u64,
    /// Counter samples missing by the sources' sequence numbers.
    pub lost_counter_samples: u64,
    /// Sequence numbers that went back (agent or source restarts).
    pub restarts: u64,
    /// Datagrams seen twice (the same sequence number again).
    pub duplicates: u64,
}

/// Per-agent counters (for the summary).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStats {
    pub datagrams: u64,
    pub lost_datagrams: u64,
    pub lost_samples: u64,
    last: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgentKey {
    pub agent: Option<IpAddr>,
    pub sub_agent: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SourceKey {
    agent: AgentKey,
    source: SourceId,
    counter: bool,
}

/// How a new sequence number relates to the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    First,
    Next,
    /// This many numbers were skipped.
    Gap(u32),
    Duplicate,
    Restart,
}

/// Sequence numbers wrap at 2^32; a step forward of less than 2^31 is a
/// gap, a larger one a step back.
pub fn step(last: Option<u32>, seq: u32) -> Step {
    let Some(last) = last else {
        return Step::First;
    };
    match seq.wrapping_sub(last) {
        0 => Step::Duplicate,
        1 => Step::Next,
        d if d < 1 << 31 => Step::Gap(d - 1),
        _ => Step::Restart,
    }
}

/// Maps more agents or sources than this are forgotten at once (a flood of
/// forged agent addresses must not grow memory without bound).
const MAX_TRACKED: usize = 65536;

/// The decoder with its sequence state.
#[derive(Default)]
pub struct Collector {
    pub stats: Stats,
    /// The last error of a malformed datagram.
    pub last_error: Option<WireError>,
    agents: HashMap<AgentKey, AgentStats>,
    sources: HashMap<SourceKey, u32>,
    pending: Vec<SampleRecord>,
    used: usize,
    seq_buf: Vec<(SourceId, bool, u32)>,
    packet: Packet,
}

impl Collector {
    pub fn new() -> Collector {
        Collector::default()
    }

    /// Per-agent counters, by agent.
    pub fn agents(&self) -> impl Iterator<Item = (&AgentKey, &AgentStats)> {
        self.agents.iter()
    }

    /// Decodes one datagram received at `time` from `peer` (the agent when
    /// the datagram's address is "unknown") and hands each sample record to
    /// `out`; returns how many. A malformed datagram is counted, kept in
    /// `last_error`, and yields nothing.
    pub fn process(
        &mut self,
        peer: Option<IpAddr>,
        datagram: &[u8],
        time: UrTime,
        mut out: impl FnMut(&SampleRecord),
    ) -> Result<usize, WireError> {
        self.stats.datagrams += 1;
        let r = self.decode(peer, datagram, time);
        match r {
            Ok(key_seq) => {
                self.account(key_seq);
                for rec in &self.pending[..self.used] {
                    out(rec);
                }
                self.stats.records += self.used as u64;
                Ok(self.used)
            }
            Err(e) => {
                self.stats.malformed += 1;
                self.last_error = Some(e);
                Err(e)
            }
        }
    }

    /// Applies a good datagram's sequence numbers and sample counts.
    fn account(&mut self, d: Decoded) {
        if self.agents.len() >= MAX_TRACKED && !self.agents.contains_key(&d.agent) {
            self.agents.clear();
        }
        let a = self.agents.entry(d.agent).or_default();
        a.datagrams += 1;
        match step(a.last, d.sequence) {
            Step::Gap(n) => {
                a.lost_datagrams += u64::from(n);
                self.stats.lost_datagrams += u64::from(n);
            }
            Step::Duplicate => self.stats.duplicates += 1,
            Step::Restart => self.stats.restarts += 1,
            Step::First | Step::Next => {}
        }
        a.last = Some(d.sequence);
        self.stats.flow_samples += d.flow;
        self.stats.counter_samples += d.counter;
        self.stats.other_samples += d.other;
        self.stats.not_ip += d.not_ip;
        let seqs = std::mem::take(&mut self.seq_buf);
        for &(source, counter, seq) in &seqs {
            let key = SourceKey {
                agent: d.agent,
                source,
                counter,
            };
            if self.sources.len() >= MAX_TRACKED && !self.sources.contains_key(&key) {
                self.sources.clear();
            }
            let last = self.sources.insert(key, seq);
            match step(last, seq) {
                Step::Gap(n) => {
                    if counter {
                        self.stats.lost_counter_samples += u64::from(n);
                    } else {
                        self.stats.lost_flow_samples += u64::from(n);
                    }
                    if let Some(a) = self.agents.get_mut(&d.agent) {
                        a.lost_samples += u64::from(n);
                    }
                }
                Step::Restart => self.stats.restarts += 1,
                Step::First | Step::Next | Step::Duplicate => {}
            }
        }
        self.seq_buf = seqs;
    }

    fn decode(
        &mut self,
        peer: Option<IpAddr>,
        datagram: &[u8],
        time: UrTime,
    ) -> Result<Decoded, WireError> {
        let dg = Datagram::new_checked(datagram)?;
        let agent = AgentKey {
            agent: dg.agent.or(peer),
            sub_agent: dg.sub_agent,
        };
        let mut d = Decoded {
            agent,
            sequence: dg.sequence,
            flow: 0,
            counter: 0,
            other: 0,
            not_ip: 0,
        };
        self.used = 0;
        self.seq_buf.clear();
        for s in dg.samples() {
            match s? {
                Sample::Flow(f) => {
                    d.flow += 1;
                    self.seq_buf.push((f.source, false, f.sequence));
                    if !self.flow_sample(agent, &f, time)? {
                        d.not_ip += 1;
                    }
                }
                Sample::Counter { sequence, source } => {
                    d.counter += 1;
                    self.seq_buf.push((source, true, sequence));
                }
                Sample::Other { .. } => d.other += 1,
            }
        }
        Ok(d)
    }

    /// Fills the next pending record from a flow sample; false when its
    /// packet is not IP (the record is not kept).
    fn flow_sample(
        &mut self,
        agent: AgentKey,
        f: &FlowSample<'_>,
        time: UrTime,
    ) -> Result<bool, WireError> {
        if self.used == self.pending.len() {
            self.pending.push(SampleRecord::default());
        }
        let rec = &mut self.pending[self.used];
        let mut header = std::mem::take(&mut rec.header);
        header.clear();
        *rec = SampleRecord {
            time,
            agent: agent.agent,
            sub_agent: agent.sub_agent,
            source: f.source,
            input_if: f.input,
            output_if: f.output,
            sampling_rate: f.sampling_rate,
            sample_pool: f.sample_pool,
            drops: f.drops,
            header,
            ..SampleRecord::default()
        };
        let mut have_ip = false;
        let mut ip_record = None;
        for r in f.records() {
            match r? {
                FlowRecord::Header(h) => {
                    rec.frame_len = h.frame_length;
                    let keep = h.header.len().min(MAX_HEADER);
                    rec.header.extend_from_slice(&h.header[..keep]);
                    let link = match h.protocol {
                        1 => LinkType::Ethernet,
                        11 => LinkType::Ipv4,
                        12 => LinkType::Ipv6,
                        _ => continue,
                    };
                    let p = &mut self.packet;
                    if parse(link, h.header, p).is_ok() && p.ip_version != 0 {
                        have_ip = true;
                        rec.src_ip = UrIp(p.src_ip);
                        rec.dst_ip = UrIp(p.dst_ip);
                        rec.protocol = p.protocol;
                        rec.src_port = p.src_port;
                        rec.dst_port = p.dst_port;
                        rec.tcp_flags = p.tcp_flags;
                        rec.tos = p.ip_tos;
                        rec.ip_len = p.ip_len;
                        if link == LinkType::Ethernet {
                            rec.src_mac = p.src_mac;
                            rec.dst_mac = p.dst_mac;
                            rec.ethertype = if p.ip_version == 6 { 0x86dd } else { 0x0800 };
                        }
                    }
                }
                FlowRecord::Ethernet {
                    length,
                    src_mac,
                    dst_mac,
                    ethertype,
                } => {
                    if rec.frame_len == 0 {
                        rec.frame_len = length;
                    }
                    rec.src_mac = src_mac;
                    rec.dst_mac = dst_mac;
                    rec.ethertype = ethertype as u16;
                }
                FlowRecord::Ip(ip) => ip_record = Some(ip),
                FlowRecord::Other { .. } => {}
            }
        }
        if let (false, Some(ip)) = (have_ip, ip_record) {
            have_ip = true;
            rec.src_ip = ip.src.into();
            rec.dst_ip = ip.dst.into();
            rec.protocol = ip.protocol as u8;
            rec.src_port = ip.src_port as u16;
            rec.dst_port = ip.dst_port as u16;
            rec.tcp_flags = ip.tcp_flags as u8;
            rec.tos = ip.tos as u8;
            rec.ip_len = ip.length;
            if rec.frame_len == 0 {
                rec.frame_len = ip.length;
            }
        }
        if have_ip {
            self.used += 1;
        }
        Ok(have_ip)
    }
}

struct Decoded {
    agent: AgentKey,
    sequence: u32,
    flow: u64,
    counter: u64,
    other: u64,
    not_ip: u64,
}

/// Writes sample records in [`OUTPUT_SPEC`].
pub struct Encoder {
    pub template: Template,
    idx: [usize; 24],
    /// PACKETS = sampling rate, BYTES = IP length × sampling rate.
    pub scale: bool,
}

const NAMES: [&str; 24] = [
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
    "SRC_MAC",
    "DST_MAC",
    "TOS",
    "AGENT_IP",
    "SUB_AGENT_ID",
    "SOURCE_ID",
    "INPUT_IFINDEX",
    "OUTPUT_IFINDEX",
    "SAMPLING_RATE",
    "SAMPLE_POOL",
    "DROPS",
    "FRAME_LEN",
    "ETHERTYPE",
    "HEADER",
];

impl Encoder {
    pub fn new(scale: bool) -> Encoder {
        let template = Template::parse(OUTPUT_SPEC).expect("OUTPUT_SPEC is a valid template");
        let mut idx = [0usize; 24];
        for (i, n) in NAMES.iter().enumerate() {
            idx[i] = template.find(n).expect("every name is in OUTPUT_SPEC");
        }
        Encoder {
            template,
            idx,
            scale,
        }
    }

    pub fn encode(&self, r: &SampleRecord, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        let i = &self.idx;
        let (packets, bytes) = if self.scale {
            let rate = r.sampling_rate.max(1);
            (rate, u64::from(r.ip_len) * u64::from(rate))
        } else {
            (1, u64::from(r.ip_len))
        };
        b.set_ip(i[0], r.src_ip)?;
        b.set_ip(i[1], r.dst_ip)?;
        b.set_u16(i[2], r.src_port)?;
        b.set_u16(i[3], r.dst_port)?;
        b.set_u8(i[4], r.protocol)?;
        b.set_u8(i[5], r.tcp_flags)?;
        b.set_u32(i[6], packets)?;
        b.set_u64(i[7], bytes)?;
        b.set_time(i[8], r.time)?;
        b.set_time(i[9], r.time)?;
        b.set_mac(i[10], UrMac(r.src_mac))?;
        b.set_mac(i[11], UrMac(r.dst_mac))?;
        b.set_u8(i[12], r.tos)?;
        b.set_ip(i[13], r.agent.map(UrIp::from).unwrap_or_default())?;
        b.set_u32(i[14], r.sub_agent)?;
        b.set_u32(i[15], r.source.index)?;
        b.set_u32(i[16], r.input_if)?;
        b.set_u32(i[17], r.output_if)?;
        b.set_u32(i[18], r.sampling_rate)?;
        b.set_u32(i[19], r.sample_pool)?;
        b.set_u32(i[20], r.drops)?;
        b.set_u32(i[21], r.frame_len)?;
        b.set_u16(i[22], r.ethertype)?;
        b.set_var(i[23], &r.header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{sampled_ipv4, DatagramBuilder, FlowSampleSpec};
    use flow_meter::synth::{ipv4_frame, L4};
    use std::net::Ipv4Addr;
    use unirec::RecordRef;

    const AGENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const B: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

    fn udp_frame(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        ipv4_frame(
            &mut f,
            A,
            B,
            7,
            L4::Udp {
                sport,
                dport,
                payload,
            },
        );
        f
    }

    fn spec(seq: u32, expanded: bool) -> FlowSampleSpec {
        FlowSampleSpec {
            expanded,
            sequence: seq,
            source_index: 3,
            sampling_rate: 512,
            sample_pool: 512 * seq,
            drops: 2,
            input: 3,
            output: 7,
        }
    }

    fn run(c: &mut Collector, d: &[u8]) -> Result<Vec<SampleRecord>, WireError> {
        let mut got = Vec::new();
        c.process(None, d, UrTime::from_secs_millis(1_700_000_000, 250), |r| {
            got.push(r.clone())
        })?;
        Ok(got)
    }

    #[test]
    fn flow_samples_carry_the_packet_and_the_sample() {
        let frame = udp_frame(40000, 53535, &[0x55; 300]);
        let mut b = DatagramBuilder::new(Some(AGENT.into()), 9, 1, 1000);
        b.flow_sample(&spec(1, false), &frame, 128);
        b.counter_sample(1, 3);
        b.flow_sample(&spec(2, true), &frame, 64);
        let mut c = Collector::new();
        let got = run(&mut c, &b.finish()).unwrap();
        assert_eq!(got.len(), 2);
        for (r, snap) in got.iter().zip([128, 64]) {
            assert_eq!(r.src_ip, UrIp::from_v4(A));
            assert_eq!(r.dst_ip, UrIp::from_v4(B));
            assert_eq!((r.src_port, r.dst_port, r.protocol), (40000, 53535, 17));
            assert_eq!(r.frame_len, frame.len() as u32);
            assert_eq!(r.ip_len, frame.len() as u32 - 14);
            assert_eq!(r.header, frame[..snap]);
            assert_eq!(r.agent, Some(AGENT.into()));
            assert_eq!(r.sub_agent, 9);
            assert_eq!(
                (r.input_if, r.output_if, r.sampling_rate, r.drops),
                (3, 7, 512, 2)
            );
            assert_eq!(r.ethertype, 0x0800);
            assert_eq!(r.time, UrTime::from_secs_millis(1_700_000_000, 250));
        }
        assert_eq!(c.stats.flow_samples, 2);
        assert_eq!(c.stats.counter_samples, 1);
        assert_eq!(c.stats.records, 2);
        assert_eq!(c.stats.malformed, 0);
    }

    #[test]
    fn sampled_ipv4_record_stands_in_for_a_missing_header() {
        let mut b = DatagramBuilder::new(Some(AGENT.into()), 0, 1, 0);
        b.flow_sample_records(
            &spec(1, false),
            &[sampled_ipv4(60, 6, A, B, 1234, 443, 0x12, 0)],
        );
        let got = run(&mut Collector::new(), &b.finish()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].src_port, got[0].dst_port, got[0].protocol),
            (1234, 443, 6)
        );
        assert_eq!(got[0].tcp_flags, 0x12);
        assert_eq!(got[0].ip_len, 60);
        assert!(got[0].header.is_empty());
    }

    #[test]
    fn non_ip_samples_are_counted_not_sent() {
        let mut arp = vec![0xffu8; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        let mut b = DatagramBuilder::new(Some(AGENT.into()), 0, 1, 0);
        b.flow_sample(&spec(1, false), &arp, 128);
        let mut c = Collector::new();
        assert!(run(&mut c, &b.finish()).unwrap().is_empty());
        assert_eq!(c.stats.not_ip, 1);
    }

    #[test]
    fn sequence_gaps_per_agent_and_source() {
        let frame = udp_frame(1, 2, b"x");
        let mut c = Collector::new();
        let dg = |agent: Ipv4Addr, seq: u32, sample_seq: u32| {
            let mut b = DatagramBuilder::new(Some(agent.into()), 0, seq, 0);
            b.flow_sample(&spec(sample_seq, false), &frame, 128);
            b.finish()
        };
        let other = Ipv4Addr::new(198, 51, 100, 2);
        run(&mut c, &dg(AGENT, 10, 100)).unwrap();
        run(&mut c, &dg(other, 500, 7)).unwrap();
        run(&mut c, &dg(AGENT, 11, 101)).unwrap();
        // Three datagrams and four samples of AGENT missing.
        run(&mut c, &dg(AGENT, 15, 106)).unwrap();
        run(&mut c, &dg(other, 501, 8)).unwrap();
        assert_eq!(c.stats.lost_datagrams, 3);
        assert_eq!(c.stats.lost_flow_samples, 4);
        // A restart (numbers back to 1) is no loss.
        run(&mut c, &dg(AGENT, 1, 1)).unwrap();
        assert_eq!(c.stats.lost_datagrams, 3);
        assert_eq!(c.stats.restarts, 2);
        // Wrapping around 2^32 is the next number.
        run(&mut c, &dg(other, u32::MAX, 9)).unwrap();
        let before = c.stats.lost_datagrams;
        run(&mut c, &dg(other, 0, 10)).unwrap();
        assert_eq!(c.stats.lost_datagrams, before);
        let per: HashMap<_, _> = c.agents().map(|(k, v)| (k.agent, *v)).collect();
        assert_eq!(per[&Some(AGENT.into())].lost_datagrams, 3);
        assert_eq!(per[&Some(AGENT.into())].lost_samples, 4);
        // 501 → 2^32-1 is a step back (a restart), then the wrap is the next.
        assert_eq!(per[&Some(other.into())].lost_datagrams, 0);
    }

    #[test]
    fn sample_sequences_of_sub_agents_and_sources_are_apart() {
        let frame = udp_frame(1, 2, b"x");
        let mut c = Collector::new();
        for (sub, seq, src, sseq) in [(0, 1, 3, 1), (1, 1, 3, 50), (0, 2, 4, 9), (0, 3, 3, 2)] {
            let mut b = DatagramBuilder::new(Some(AGENT.into()), sub, seq, 0);
            let mut s = spec(sseq, false);
            s.source_index = src;
            b.flow_sample(&s, &frame, 128);
            run(&mut c, &b.finish()).unwrap();
        }
        assert_eq!(c.stats.lost_datagrams, 0);
        assert_eq!(c.stats.lost_flow_samples, 0);
    }

    #[test]
    fn malformed_datagrams_are_counted_whole() {
        let frame = udp_frame(1, 2, b"x");
        let mut b = DatagramBuilder::new(Some(AGENT.into()), 0, 1, 0);
        b.flow_sample(&spec(1, false), &frame, 128);
        b.flow_sample(&spec(2, false), &frame, 128);
        let good = b.finish();
        let mut c = Collector::new();
        // Cut anywhere: an error, no record (not even of the first sample).
        for cut in 0..good.len() {
            assert!(run(&mut c, &good[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(c.stats.malformed, good.len() as u64);
        assert_eq!(c.stats.records, 0);
        // Trailing bytes, a wrong version, a bad address type.
        let mut t = good.clone();
        t.extend_from_slice(&[0; 4]);
        assert_eq!(run(&mut c, &t), Err(WireError::Trailing(4)));
        let mut v = good.clone();
        v[3] = 4;
        assert_eq!(run(&mut c, &v), Err(WireError::Version(4)));
        let mut a = good.clone();
        a[7] = 9;
        assert_eq!(run(&mut c, &a), Err(WireError::AddressType(9)));
        // More samples announced than present.
        let mut m = good.clone();
        m[27] = 3;
        assert!(matches!(
            run(&mut c, &m),
            Err(WireError::MissingSamples { count: 3, found: 2 })
        ));
        // A header length beyond its record.
        let mut h = good.clone();
        let at = 28 + 8 + 32 + 8 + 12;
        h[at..at + 4].copy_from_slice(&4000u32.to_be_bytes());
        assert!(matches!(
            run(&mut c, &h),
            Err(WireError::HeaderLength { .. })
        ));
        // The sequence did not move: the good one is the first of its agent.
        assert_eq!(run(&mut c, &good).unwrap().len(), 2);
        assert_eq!(c.stats.lost_datagrams, 0);
    }

    #[test]
    fn unknown_formats_are_skipped() {
        let frame = udp_frame(1, 2, b"x");
        let mut b = DatagramBuilder::new(None, 0, 1, 0);
        b.flow_sample_records(&spec(1, true), &[((9 << 12) | 1, vec![1, 2, 3])]);
        b.flow_sample(&spec(2, false), &frame, 128);
        let peer: IpAddr = Ipv4Addr::new(198, 51, 100, 77).into();
        let mut c = Collector::new();
        let mut got = Vec::new();
        c.process(Some(peer), &b.finish(), UrTime(0), |r| got.push(r.clone()))
            .unwrap();
        assert_eq!(got.len(), 1);
        // Without an agent address the peer's is used.
        assert_eq!(got[0].agent, Some(peer));
        assert_eq!(c.stats.not_ip, 1);
    }

    #[test]
    fn encoded_record_reads_back() {
        let frame = udp_frame(40000, 53535, &[1; 20]);
        let mut b = DatagramBuilder::new(Some(AGENT.into()), 0, 1, 0);
        b.flow_sample(&spec(1, false), &frame, 128);
        let got = run(&mut Collector::new(), &b.finish()).unwrap();
        for scale in [false, true] {
            let enc = Encoder::new(scale);
            let mut rb = RecordBuilder::new(&enc.template);
            enc.encode(&got[0], &mut rb).unwrap();
            let mut out = Vec::new();
            rb.finish(&mut out).unwrap();
            let t = &enc.template;
            let r = RecordRef::new_checked(t, &out).unwrap();
            let f = |n: &str| t.find(n).unwrap();
            assert_eq!(r.get_ip(f("SRC_IP")), Some(UrIp::from_v4(A)));
            assert_eq!(r.get_u16(f("DST_PORT")), Some(53535));
            let want = if scale { (512, 48 * 512) } else { (1, 48) };
            assert_eq!(r.get_u32(f("PACKETS")), Some(want.0));
            assert_eq!(r.get_u64(f("BYTES")), Some(want.1));
            assert_eq!(r.get_bytes(f("HEADER")), Some(&frame[..]));
        }
        // ipblacklistfilter can read these records.
        for field in ipblacklistfilter_fields() {
            assert!(Template::parse(OUTPUT_SPEC).unwrap().find(field).is_some());
        }
    }

    fn ipblacklistfilter_fields() -> [&'static str; 9] {
        [
            "SRC_IP",
            "DST_IP",
            "SRC_PORT",
            "DST_PORT",
            "PROTOCOL",
            "PACKETS",
            "BYTES",
            "TIME_FIRST",
            "TIME_LAST",
        ]
    }

    #[test]
    fn ipv6_agent_header_and_sampled_ipv6_record() {
        use std::net::Ipv6Addr;
        let agent: IpAddr = "2001:db8::1".parse().unwrap();
        let (a6, b6): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8:1::10".parse().unwrap(),
            "2001:db8:2::5".parse().unwrap(),
        );
        // An IPv6/TCP frame as the raw header (header_protocol 1).
        let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x86, 0xdd];
        let mut ip = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
        ip.extend_from_slice(&a6.octets());
        ip.extend_from_slice(&b6.octets());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&[0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02]);
        frame.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        let mut b = DatagramBuilder::new(Some(agent), 2, 1, 0);
        b.flow_sample(&spec(1, true), &frame, 128);
        // A sampled IPv6 record alone (format 4).
        let mut rec6 = Vec::new();
        for w in [100u32, 17] {
            rec6.extend_from_slice(&w.to_be_bytes());
        }
        rec6.extend_from_slice(&b6.octets());
        rec6.extend_from_slice(&a6.octets());
        for w in [53u32, 33000, 0, 0] {
            rec6.extend_from_slice(&w.to_be_bytes());
        }
        b.flow_sample_records(&spec(2, false), &[(4, rec6)]);
        let got = run(&mut Collector::new(), &b.finish()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].agent, Some(agent));
        assert_eq!(got[0].src_ip, UrIp::from_v6(a6));
        assert_eq!(got[0].dst_ip, UrIp::from_v6(b6));
        assert_eq!(
            (got[0].src_port, got[0].dst_port, got[0].protocol),
            (40000, 443, 6)
        );
        assert_eq!(got[0].tcp_flags, 0x02);
        assert_eq!(got[0].ethertype, 0x86dd);
        assert_eq!(got[0].src_mac, [0x02, 0, 0, 0, 0, 2]);
        assert_eq!(got[1].src_ip, UrIp::from_v6(b6));
        assert_eq!(
            (got[1].src_port, got[1].dst_port, got[1].protocol),
            (53, 33000, 17)
        );
        assert_eq!(got[1].ip_len, 100);
    }

    #[test]
    fn steps() {
        assert_eq!(step(None, 5), Step::First);
        assert_eq!(step(Some(5), 6), Step::Next);
        assert_eq!(step(Some(5), 5), Step::Duplicate);
        assert_eq!(step(Some(5), 9), Step::Gap(3));
        assert_eq!(step(Some(5), 4), Step::Restart);
        assert_eq!(step(Some(u32::MAX), 0), Step::Next);
    }
}
