//! sFlow version 5 datagrams (sflow.org, `sflow_version_5.txt`), as
//! bounds-checked views: [`Datagram::new_checked`] reads the header once,
//! then the samples and their records are iterated; every length the wire
//! claims is checked against the bytes there before it is used, so no input
//! can make a read panic or overflow.
//!
//! XDR layout: big-endian 32-bit words; opaque data padded to 4 bytes.
//!
//! ```text
//! datagram  = version(5) agent_address sub_agent_id sequence uptime_ms
//!             count sample*
//! address   = type(1: IPv4 4 bytes, 2: IPv6 16 bytes, 0: unknown) bytes
//! sample    = format(enterprise << 12 | number) length opaque[length]
//! ```
//!
//! Sample formats of enterprise 0: 1 flow sample, 2 counter sample, 3
//! expanded flow sample, 4 expanded counter sample. Flow records of
//! enterprise 0 read here: 1 raw packet header, 2 sampled Ethernet, 3
//! sampled IPv4, 4 sampled IPv6; others are skipped by their length.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why bytes are not an sFlow v5 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("version {0}, not sFlow 5")]
    Version(u32),
    #[error("agent address type {0} (1 IPv4, 2 IPv6)")]
    AddressType(u32),
    #[error("truncated {what}: {need} bytes needed at offset {at}, {have} there")]
    Truncated {
        what: &'static str,
        at: usize,
        need: usize,
        have: usize,
    },
    #[error("{count} samples announced, only {found} present")]
    MissingSamples { count: u32, found: u32 },
    #[error("{0} bytes after the last sample")]
    Trailing(usize),
    #[error("header length {header} exceeds its record ({record} bytes)")]
    HeaderLength { header: u32, record: usize },
}

/// A cursor over XDR words.
#[derive(Clone, Copy)]
struct Xdr<'a> {
    buf: &'a [u8],
    at: usize,
    /// Offset of `buf` in the datagram, for error messages.
    base: usize,
}

impl<'a> Xdr<'a> {
    fn new(buf: &'a [u8], base: usize) -> Xdr<'a> {
        Xdr { buf, at: 0, base }
    }

    fn left(&self) -> usize {
        self.buf.len() - self.at
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(WireError::Truncated {
                what,
                at: self.base + self.at,
                need: n,
                have: self.left(),
            });
        };
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let s = self.take(4, what)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// Opaque data of `n` bytes and its padding to 4.
    fn opaque(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let padded = n.checked_add(3).map(|p| p & !3).unwrap_or(usize::MAX);
        let s = self.take(padded, what)?;
        Ok(&s[..n])
    }

    fn address(&mut self) -> Result<Option<IpAddr>, WireError> {
        match self.u32("address type")? {
            0 => Ok(None),
            1 => {
                let s = self.take(4, "IPv4 address")?;
                Ok(Some(IpAddr::V4(Ipv4Addr::new(s[0], s[1], s[2], s[3]))))
            }
            2 => {
                let s = self.take(16, "IPv6 address")?;
                let mut o = [0u8; 16];
                o.copy_from_slice(s);
                Ok(Some(IpAddr::V6(Ipv6Addr::from(o))))
            }
            t => Err(WireError::AddressType(t)),
        }
    }
}

/// The datagram header; [`Datagram::samples`] iterates what follows.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// `None`: the agent said "unknown" (address type 0).
    pub agent: Option<IpAddr>,
    pub sub_agent: u32,
    pub sequence: u32,
    pub uptime_ms: u32,
    pub count: u32,
    body: &'a [u8],
    body_at: usize,
}

impl<'a> Datagram<'a> {
    /// Checks the header; the samples are checked as they are iterated.
    pub fn new_checked(buf: &'a [u8]) -> Result<Datagram<'a>, WireError> {
        let mut x = Xdr::new(buf, 0);
        let version = x.u32("datagram header")?;
        if version != 5 {
            return Err(WireError::Version(version));
        }
        let agent = x.address()?;
        let sub_agent = x.u32("datagram header")?;
        let sequence = x.u32("datagram header")?;
        let uptime_ms = x.u32("datagram header")?;
        let count = x.u32("datagram header")?;
        Ok(Datagram {
            agent,
            sub_agent,
            sequence,
            uptime_ms,
            count,
            body: &buf[x.at..],
            body_at: x.at,
        })
    }

    /// The samples in order; after `count` of them, bytes left over are an
    /// error, and so are fewer than `count`.
    pub fn samples(&self) -> Samples<'a> {
        Samples {
            x: Xdr::new(self.body, self.body_at),
            count: self.count,
            seen: 0,
            failed: false,
        }
    }
}

/// Iterator over a datagram's samples (stops after the first error).
pub struct Samples<'a> {
    x: Xdr<'a>,
    count: u32,
    seen: u32,
    failed: bool,
}

impl<'a> Iterator for Samples<'a> {
    type Item = Result<Sample<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.seen == self.count {
            if self.x.left() > 0 {
                self.failed = true;
                return Some(Err(WireError::Trailing(self.x.left())));
            }
            return None;
        }
        let r = self.read();
        if r.is_err() {
            self.failed = true;
        }
        self.seen += 1;
        Some(r)
    }
}

impl<'a> Samples<'a> {
    fn read(&mut self) -> Result<Sample<'a>, WireError> {
        if self.x.left() == 0 {
            return Err(WireError::MissingSamples {
                count: self.count,
                found: self.seen,
            });
        }
        let format = self.x.u32("sample header")?;
        let len = self.x.u32("sample header")? as usize;
        let at = self.x.base + self.x.at;
        let data = self.x.opaque(len, "sample")?;
        Sample::parse(format, data, at)
    }
}

/// Where a sample was taken: the source id's type (0 ifIndex, 1 VLAN,
/// 2 entity) and index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SourceId {
    pub kind: u32,
    pub index: u32,
}

/// One sample.
#[derive(Debug, Clone, Copy)]
pub enum Sample<'a> {
    Flow(FlowSample<'a>),
    Counter {
        sequence: u32,
        source: SourceId,
    },
    /// Another enterprise's or an unknown format; skipped.
    Other {
        format: u32,
    },
}

/// A flow sample (format 1) or an expanded one (format 3), normalised.
#[derive(Debug, Clone, Copy)]
pub struct FlowSample<'a> {
    pub expanded: bool,
    pub sequence: u32,
    pub source: SourceId,
    pub sampling_rate: u32,
    pub sample_pool: u32,
    pub drops: u32,
    /// Interface values: for the compact form the low 30 bits (the top two
    /// bits are the format: 0 ifIndex, 1 discarded, 2 multiple).
    pub input: u32,
    pub output: u32,
    /// The input / output format (0 an ifIndex, 1 a discard reason for the
    /// output, 2 multiple interfaces).
    pub input_format: u32,
    pub output_format: u32,
    pub record_count: u32,
    records: &'a [u8],
    records_at: usize,
}

impl<'a> Sample<'a> {
    fn parse(format: u32, data: &'a [u8], at: usize) -> Result<Sample<'a>, WireError> {
        let mut x = Xdr::new(data, at);
        let (enterprise, number) = (format >> 12, format & 0xfff);
        if enterprise != 0 {
            return Ok(Sample::Other { format });
        }
        match number {
            1 => {
                let sequence = x.u32("flow sample")?;
                let src = x.u32("flow sample")?;
                let sampling_rate = x.u32("flow sample")?;
                let sample_pool = x.u32("flow sample")?;
                let drops = x.u32("flow sample")?;
                let input = x.u32("flow sample")?;
                let output = x.u32("flow sample")?;
                let record_count = x.u32("flow sample")?;
                Ok(Sample::Flow(FlowSample {
                    expanded: false,
                    sequence,
                    source: SourceId {
                        kind: src >> 24,
                        index: src & 0x00ff_ffff,
                    },
                    sampling_rate,
                    sample_pool,
                    drops,
                    input: input & 0x3fff_ffff,
                    output: output & 0x3fff_ffff,
                    input_format: input >> 30,
                    output_format: output >> 30,
                    record_count,
                    records: &data[x.at..],
                    records_at: at + x.at,
                }))
            }
            3 => {
                let sequence = x.u32("expanded flow sample")?;
                let kind = x.u32("expanded flow sample")?;
                let index = x.u32("expanded flow sample")?;
                let sampling_rate = x.u32("expanded flow sample")?;
                let sample_pool = x.u32("expanded flow sample")?;
                let drops = x.u32("expanded flow sample")?;
                let input_format = x.u32("expanded flow sample")?;
                let input = x.u32("expanded flow sample")?;
                let output_format = x.u32("expanded flow sample")?;
                let output = x.u32("expanded flow sample")?;
                let record_count = x.u32("expanded flow sample")?;
                Ok(Sample::Flow(FlowSample {
                    expanded: true,
                    sequence,
                    source: SourceId { kind, index },
                    sampling_rate,
                    sample_pool,
                    drops,
                    input,
                    output,
                    input_format,
                    output_format,
                    record_count,
                    records: &data[x.at..],
                    records_at: at + x.at,
                }))
            }
            2 => {
                let sequence = x.u32("counter sample")?;
                let src = x.u32("counter sample")?;
                Ok(Sample::Counter {
                    sequence,
                    source: SourceId {
                        kind: src >> 24,
                        index: src & 0x00ff_ffff,
                    },
                })
            }
            4 => {
                let sequence = x.u32("expanded counter sample")?;
                let kind = x.u32("expanded counter sample")?;
                let index = x.u32("expanded counter sample")?;
                Ok(Sample::Counter {
                    sequence,
                    source: SourceId { kind, index },
                })
            }
            _ => Ok(Sample::Other { format }),
        }
    }
}

/// A flow record of a flow sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowRecord<'a> {
    /// Format 1: the first bytes of the sampled packet.
    Header(RawHeader<'a>),
    /// Format 2.
    Ethernet {
        length: u32,
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        ethertype: u32,
    },
    /// Formats 3 and 4.
    Ip(SampledIp),
    /// Skipped (another format or enterprise).
    Other { format: u32 },
}

/// Format 1: header_protocol (1 Ethernet, 11 IPv4, 12 IPv6, …), the
/// frame's original length, the bytes stripped from it (FCS, …), and the
/// header bytes themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHeader<'a> {
    pub protocol: u32,
    pub frame_length: u32,
    pub stripped: u32,
    pub header: &'a [u8],
}

/// Formats 3 (IPv4) and 4 (IPv6): a decoded IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampledIp {
    pub length: u32,
    pub protocol: u32,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u32,
    pub dst_port: u32,
    pub tcp_flags: u32,
    /// ToS (IPv4) or priority (IPv6).
    pub tos: u32,
}

impl<'a> FlowSample<'a> {
    /// The sample's flow records (stops after the first error; fewer
    /// records than announced, or bytes after them, are errors).
    pub fn records(&self) -> FlowRecords<'a> {
        FlowRecords {
            x: Xdr::new(self.records, self.records_at),
            count: self.record_count,
            seen: 0,
            failed: false,
        }
    }
}

/// Iterator over a flow sample's records.
pub struct FlowRecords<'a> {
    x: Xdr<'a>,
    count: u32,
    seen: u32,
    failed: bool,
}

impl<'a> Iterator for FlowRecords<'a> {
    type Item = Result<FlowRecord<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.seen == self.count {
            if self.x.left() > 0 {
                self.failed = true;
                return Some(Err(WireError::Trailing(self.x.left())));
            }
            return None;
        }
        self.seen += 1;
        let r = self.read();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

impl<'a> FlowRecords<'a> {
    fn read(&mut self) -> Result<FlowRecord<'a>, WireError> {
        if self.x.left() == 0 {
            return Err(WireError::MissingSamples {
                count: self.count,
                found: self.seen - 1,
            });
        }
        let format = self.x.u32("flow record header")?;
        let len = self.x.u32("flow record header")? as usize;
        let at = self.x.base + self.x.at;
        let data = self.x.opaque(len, "flow record")?;
        let mut x = Xdr::new(data, at);
        if format >> 12 != 0 {
            return Ok(FlowRecord::Other { format });
        }
        match format {
            1 => {
                let protocol = x.u32("raw packet header")?;
                let frame_length = x.u32("raw packet header")?;
                let stripped = x.u32("raw packet header")?;
                let header_len = x.u32("raw packet header")?;
                if header_len as usize > x.left() {
                    return Err(WireError::HeaderLength {
                        header: header_len,
                        record: len,
                    });
                }
                let header = x.opaque(header_len as usize, "raw packet header")?;
                Ok(FlowRecord::Header(RawHeader {
                    protocol,
                    frame_length,
                    stripped,
                    header,
                }))
            }
            2 => {
                let length = x.u32("sampled Ethernet")?;
                let src = x.opaque(6, "sampled Ethernet")?;
                let dst = x.opaque(6, "sampled Ethernet")?;
                let ethertype = x.u32("sampled Ethernet")?;
                let mut src_mac = [0u8; 6];
                let mut dst_mac = [0u8; 6];
                src_mac.copy_from_slice(src);
                dst_mac.copy_from_slice(dst);
                Ok(FlowRecord::Ethernet {
                    length,
                    src_mac,
                    dst_mac,
                    ethertype,
                })
            }
            3 | 4 => {
                let what = if format == 3 {
                    "sampled IPv4"
                } else {
                    "sampled IPv6"
                };
                let length = x.u32(what)?;
                let protocol = x.u32(what)?;
                let (src, dst) = if format == 3 {
                    let s = x.take(4, what)?;
                    let d = x.take(4, what)?;
                    (
                        IpAddr::V4(Ipv4Addr::new(s[0], s[1], s[2], s[3])),
                        IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3])),
                    )
                } else {
                    let mut s = [0u8; 16];
                    let mut d = [0u8; 16];
                    s.copy_from_slice(x.take(16, what)?);
                    d.copy_from_slice(x.take(16, what)?);
                    (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)))
                };
                Ok(FlowRecord::Ip(SampledIp {
                    length,
                    protocol,
                    src,
                    dst,
                    src_port: x.u32(what)?,
                    dst_port: x.u32(what)?,
                    tcp_flags: x.u32(what)?,
                    tos: x.u32(what)?,
                }))
            }
            _ => Ok(FlowRecord::Other { format }),
        }
    }
}
