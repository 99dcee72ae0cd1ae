//! Flow records to IPFIX (RFC 7011) messages, as ipfixprobe's `ipfix`
//! output writes them; the transport is in [`net`].
//!
//! * Templates: one per IP version and set of plugins present in a flow
//!   (ids from 258 up, created on first use): ipfixprobe's basic template
//!   (end reason, bytes and packets in both directions as 8-byte counters,
//!   start/end as NTP microsecond timestamps, IP version, protocol, TCP flags
//!   both ways, ports, ingress interface = `-D` value, IPv4 or IPv6
//!   addresses, MACs), then each present plugin's fields that have an IPFIX
//!   element, in `-p` order. Reverse direction elements use PEN 29305.
//! * Field encodings: scalars big-endian at their UniRec width (IP
//!   addresses 16 bytes, IPv4 as `::ffff:a.b.c.d`; times NTP), strings and
//!   bytes variable-length (RFC 7011 §7), arrays as RFC 6313 basicList
//!   (element 291, semantic "ordered", the field's element inside, times in
//!   milliseconds) as ipfixprobe does.
//! * Records wait in one data set per template; a message is at most `mtu`
//!   bytes and takes every set that fits. A record that cannot fit in one
//!   message is dropped and counted (ipfixprobe does the same).
//! * Templates go out in a template message before the first data that
//!   uses them; over UDP they are sent again every `template_refresh`
//!   seconds. The sequence number counts data records, per RFC 7011.
//! * Where ipfixprobe exports one extension per plugin, flows with several
//!   (passivedns: one per answer) give one record per extension, as the
//!   UniRec export does, so both outputs carry the same records.

pub mod net;

use crate::cache::{Flow, FlowRecord};
use crate::plugins::{FieldDef, FieldSink, FieldValue, Ie, Plugins, PEN_REVERSE};
use std::collections::HashMap;
use unirec::{FieldType, Scalar, UrTime};

/// ipfixprobe's defaults.
pub const DEFAULT_MTU: usize = 1458;
pub const DEFAULT_TEMPLATE_REFRESH: u64 = 600;
pub const DEFAULT_ODID: u32 = 1;
const FIRST_TEMPLATE_ID: u16 = 258;
const HEADER_LEN: usize = 16;
const SET_HEADER_LEN: usize = 4;
/// basicList (RFC 6313).
const BASIC_LIST: u16 = 291;
/// Seconds between 1900 (NTP) and 1970.
const NTP_EPOCH: u64 = 2_208_988_800;

/// How messages are built.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest message, in bytes.
    pub mtu: usize,
    /// Observation domain id.
    pub odid: u32,
    /// ingressInterface of every record (ipfixprobe's `dir`).
    pub dir: u32,
    /// Seconds after which templates are sent again (UDP); 0 = never.
    pub template_refresh: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            mtu: DEFAULT_MTU,
            odid: DEFAULT_ODID,
            dir: 0,
            template_refresh: 0,
        }
    }
}

/// One IPFIX message ready to send, and the data records it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub bytes: Vec<u8>,
    pub records: u32,
}

/// The basic template's elements: (PEN, id, length), ipfixprobe's order;
/// `None` marks the address pair, whose elements depend on the IP version.
const BASIC: &[Option<(u32, u16, u16)>] = &[
    Some((0, 136, 1)),         // flowEndReason
    Some((0, 1, 8)),           // octetDeltaCount
    Some((PEN_REVERSE, 1, 8)), // reverse octetDeltaCount
    Some((0, 2, 8)),           // packetDeltaCount
    Some((PEN_REVERSE, 2, 8)), // reverse packetDeltaCount
    Some((0, 154, 8)),         // flowStartMicroseconds
    Some((0, 155, 8)),         // flowEndMicroseconds
    Some((0, 60, 1)),          // ipVersion
    Some((0, 4, 1)),           // protocolIdentifier
    Some((0, 6, 1)),           // tcpControlBits
    Some((PEN_REVERSE, 6, 1)), // reverse tcpControlBits
    Some((0, 7, 2)),           // sourceTransportPort
    Some((0, 11, 2)),          // destinationTransportPort
    Some((0, 10, 4)),          // ingressInterface
    None,                      // source and destination addresses
    Some((0, 56, 6)),          // sourceMacAddress
    Some((0, 80, 6)),          // destinationMacAddress
];

/// One template and the data set filling for it.
struct Template {
    id: u16,
    /// The template record (id, count, field specifiers).
    record: Vec<u8>,
    exported: bool,
    /// When the template was last sent (seconds).
    sent_at: u64,
    /// The data set being filled, set header included.
    set: Vec<u8>,
    records: u32,
    /// Plugins whose fields follow the basic ones.
    plugins: Vec<usize>,
}

/// Builds IPFIX messages from flow records. Pure: the caller passes the
/// export time and sends the messages.
pub struct Encoder {
    cfg: Config,
    fields: Vec<&'static [FieldDef]>,
    templates: Vec<Template>,
    by_key: HashMap<(bool, u64), usize>,
    /// Data records in messages built so far (the next sequence number).
    seq: u32,
    ready: Vec<Message>,
    record: Vec<u8>,
    values: Vec<Vec<u8>>,
    written: Vec<bool>,
    /// Records too large for one message.
    pub oversized: u64,
}

impl Encoder {
    pub fn new(plugins: &Plugins, cfg: Config) -> Encoder {
        let fields = (0..plugins.len()).map(|i| plugins.fields(i)).collect();
        Encoder {
            cfg,
            fields,
            templates: Vec::new(),
            by_key: HashMap::new(),
            seq: 0,
            ready: Vec::new(),
            record: Vec::with_capacity(256),
            values: Vec::new(),
            written: Vec::new(),
            oversized: 0,
        }
    }

    /// Adds the records of one flow (one per extension index, as the UniRec
    /// export); full data sets become messages, taken by [`Encoder::take`].
    pub fn add(&mut self, rec: &FlowRecord, now: u64) {
        let mut mask = 0u64;
        for e in rec.exts.iter() {
            if let Some(bit) = 1u64.checked_shl(u32::from(e.plugin)) {
                if usize::from(e.plugin) < self.fields.len() {
                    mask |= bit;
                }
            }
        }
        let plugins: Vec<usize> = (0..self.fields.len())
            .filter(|&p| mask & (1 << p) != 0)
            .collect();
        let count = |p: usize| {
            rec.exts
                .iter()
                .filter(|e| usize::from(e.plugin) == p)
                .count()
        };
        let records = plugins.iter().map(|&p| count(p)).max().unwrap_or(0).max(1);
        let ipv6 = rec.flow.ip_version == 6;
        let t = self.template_for(ipv6, mask, &plugins);
        for j in 0..records {
            self.record.clear();
            encode_basic(&mut self.record, &rec.flow, self.cfg.dir);
            for &p in &plugins {
                let n = count(p);
                let ext = rec
                    .exts
                    .iter()
                    .filter(|e| usize::from(e.plugin) == p)
                    .nth(j.min(n.saturating_sub(1)));
                let defs = self.fields[p];
                self.values.resize_with(defs.len(), Vec::new);
                self.written.clear();
                self.written.resize(defs.len(), false);
                if let Some(ext) = ext {
                    let mut sink = Sink {
                        defs,
                        values: &mut self.values,
                        written: &mut self.written,
                    };
                    ext.data.fill(&mut sink);
                }
                for (i, def) in defs.iter().enumerate() {
                    if def.ipfix.is_none() {
                        continue;
                    }
                    if self.written[i] {
                        self.record.extend_from_slice(&self.values[i]);
                    } else {
                        encode_default(&mut self.record, def);
                    }
                }
            }
            self.push_record(t, now);
        }
    }

    /// Appends the built record to template `t`'s set, making messages
    /// when the set would outgrow a message.
    fn push_record(&mut self, t: usize, now: u64) {
        let room = self.cfg.mtu.saturating_sub(HEADER_LEN);
        if self.record.len() + SET_HEADER_LEN > room {
            self.oversized += 1;
            return;
        }
        if self.templates[t].set.len() + self.record.len() > room {
            self.flush(now);
        }
        let tm = &mut self.templates[t];
        tm.set.extend_from_slice(&self.record);
        tm.records += 1;
    }

    /// The template of a flow of this IP version and plugin set.
    fn template_for(&mut self, ipv6: bool, mask: u64, plugins: &[usize]) -> usize {
        if let Some(&t) = self.by_key.get(&(ipv6, mask)) {
            return t;
        }
        let id = FIRST_TEMPLATE_ID.saturating_add(self.templates.len() as u16);
        let mut fields: Vec<(u32, u16, u16)> = Vec::new();
        for b in BASIC {
            match b {
                Some(f) => fields.push(*f),
                None if ipv6 => fields.extend([(0, 27, 16), (0, 28, 16)]),
                None => fields.extend([(0, 8, 4), (0, 12, 4)]),
            }
        }
        for &p in plugins {
            for def in self.fields[p] {
                if let Some(ie) = def.ipfix {
                    fields.push(field_spec(def.ty, ie));
                }
            }
        }
        let mut record = Vec::with_capacity(4 + fields.len() * 8);
        record.extend_from_slice(&id.to_be_bytes());
        record.extend_from_slice(&(fields.len() as u16).to_be_bytes());
        for (pen, eid, len) in fields {
            let e = if pen != 0 { eid | 0x8000 } else { eid };
            record.extend_from_slice(&e.to_be_bytes());
            record.extend_from_slice(&len.to_be_bytes());
            if pen != 0 {
                record.extend_from_slice(&pen.to_be_bytes());
            }
        }
        let mut set = Vec::with_capacity(self.cfg.mtu);
        set.extend_from_slice(&id.to_be_bytes());
        set.extend_from_slice(&[0, 0]);
        self.templates.push(Template {
            id,
            record,
            exported: false,
            sent_at: 0,
            set,
            records: 0,
            plugins: plugins.to_vec(),
        });
        let t = self.templates.len() - 1;
        self.by_key.insert((ipv6, mask), t);
        t
    }

    /// Turns everything waiting into messages: templates not yet sent (or
    /// due for a refresh), then data messages of at most `mtu` bytes.
    pub fn flush(&mut self, now: u64) {
        let refresh = self.cfg.template_refresh;
        for t in &mut self.templates {
            if refresh != 0 && t.exported && t.sent_at.saturating_add(refresh) <= now {
                t.exported = false;
            }
        }
        if let Some(m) = self.templates_message(false, now) {
            self.ready.push(m);
        }
        loop {
            let mut body = Vec::with_capacity(self.cfg.mtu);
            let mut records = 0u32;
            for t in &mut self.templates {
                if t.records == 0 || HEADER_LEN + body.len() + t.set.len() > self.cfg.mtu {
                    continue;
                }
                let len = t.set.len() as u16;
                t.set[2..4].copy_from_slice(&len.to_be_bytes());
                body.extend_from_slice(&t.set);
                t.set.truncate(SET_HEADER_LEN);
                records += t.records;
                t.records = 0;
            }
            if records == 0 {
                break;
            }
            let m = self.message(&body, records, now);
            self.ready.push(m);
        }
    }

    /// A message with every template (`all`) or those not yet sent; marks
    /// them sent.
    pub fn templates_message(&mut self, all: bool, now: u64) -> Option<Message> {
        let mut body = Vec::new();
        for t in &mut self.templates {
            if all || !t.exported {
                if body.is_empty() {
                    body.extend_from_slice(&2u16.to_be_bytes());
                    body.extend_from_slice(&[0, 0]);
                }
                body.extend_from_slice(&t.record);
                t.exported = true;
                t.sent_at = now;
            }
        }
        if body.is_empty() {
            return None;
        }
        let len = (body.len().min(usize::from(u16::MAX))) as u16;
        body[2..4].copy_from_slice(&len.to_be_bytes());
        Some(self.message(&body, 0, now))
    }

    fn message(&mut self, body: &[u8], records: u32, now: u64) -> Message {
        let mut bytes = Vec::with_capacity(HEADER_LEN + body.len());
        let len = (HEADER_LEN + body.len()).min(usize::from(u16::MAX)) as u16;
        bytes.extend_from_slice(&10u16.to_be_bytes());
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&(now as u32).to_be_bytes());
        bytes.extend_from_slice(&self.seq.to_be_bytes());
        bytes.extend_from_slice(&self.cfg.odid.to_be_bytes());
        bytes.extend_from_slice(body);
        self.seq = self.seq.wrapping_add(records);
        Message { bytes, records }
    }

    /// The messages built so far, in sending order.
    pub fn take(&mut self) -> std::vec::Drain<'_, Message> {
        self.ready.drain(..)
    }

    /// Every template is to be sent again (a new TCP connection).
    pub fn resend_templates(&mut self) {
        for t in &mut self.templates {
            t.exported = false;
        }
    }

    /// The plugins of each template so far, by template id (for tests and
    /// `-v`).
    pub fn templates(&self) -> impl Iterator<Item = (u16, &[usize])> {
        self.templates.iter().map(|t| (t.id, t.plugins.as_slice()))
    }
}

/// The field specifier of a plugin field: basicList for arrays, else the
/// element at the UniRec width (variable for strings and bytes).
fn field_spec(ty: FieldType, ie: Ie) -> (u32, u16, u16) {
    match ty {
        FieldType::Scalar(s) => (ie.pen, ie.id, s.size() as u16),
        FieldType::String | FieldType::Bytes | FieldType::Array(Scalar::U8) => {
            (ie.pen, ie.id, u16::MAX)
        }
        FieldType::Array(_) => (0, BASIC_LIST, u16::MAX),
    }
}

/// RFC 7011 §7 variable-length encoding.
fn put_var(out: &mut Vec<u8>, v: &[u8]) {
    let v = &v[..v.len().min(usize::from(u16::MAX))];
    if v.len() < 255 {
        out.push(v.len() as u8);
    } else {
        out.push(255);
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(v);
}

/// NTP timestamp of microseconds since 1970 (ipfixprobe's conversion).
fn ntp_us(us: u64) -> u64 {
    let secs = us / 1_000_000 + NTP_EPOCH;
    let frac = ((us % 1_000_000) << 32) / 1_000_000;
    (secs << 32) | frac
}

fn ntp_time(t: UrTime) -> u64 {
    ntp_us(u64::from(t.secs()) * 1_000_000 + u64::from(t.micros()))
}

/// A UniRec address as 16 IPFIX bytes (IPv4 as `::ffff:a.b.c.d`).
fn ip16(ip: &[u8; 16]) -> [u8; 16] {
    if unirec::UrIp(*ip).is_ipv4() {
        let mut v = [0u8; 16];
        v[10] = 0xff;
        v[11] = 0xff;
        v[12..].copy_from_slice(&ip[8..12]);
        v
    } else {
        *ip
    }
}

fn encode_basic(out: &mut Vec<u8>, f: &Flow, dir: u32) {
    out.push(f.end_reason as u8);
    out.extend_from_slice(&f.bytes.to_be_bytes());
    out.extend_from_slice(&f.bytes_rev.to_be_bytes());
    out.extend_from_slice(&u64::from(f.packets).to_be_bytes());
    out.extend_from_slice(&u64::from(f.packets_rev).to_be_bytes());
    out.extend_from_slice(&ntp_us(f.time_first).to_be_bytes());
    out.extend_from_slice(&ntp_us(f.time_last).to_be_bytes());
    out.push(f.ip_version);
    out.push(f.protocol);
    out.push(f.tcp_flags);
    out.push(f.tcp_flags_rev);
    out.extend_from_slice(&f.src_port.to_be_bytes());
    out.extend_from_slice(&f.dst_port.to_be_bytes());
    out.extend_from_slice(&dir.to_be_bytes());
    if f.ip_version == 6 {
        out.extend_from_slice(&f.src_ip);
        out.extend_from_slice(&f.dst_ip);
    } else {
        out.extend_from_slice(&f.src_ip[8..12]);
        out.extend_from_slice(&f.dst_ip[8..12]);
    }
    out.extend_from_slice(&f.src_mac);
    out.extend_from_slice(&f.dst_mac);
}

/// The value of a field its extension did not write: zeros, or empty.
fn encode_default(out: &mut Vec<u8>, def: &FieldDef) {
    match def.ty {
        FieldType::Scalar(s) => out.resize(out.len() + s.size(), 0),
        FieldType::String | FieldType::Bytes | FieldType::Array(Scalar::U8) => out.push(0),
        FieldType::Array(s) => {
            if let Some(ie) = def.ipfix {
                basic_list(out, ie, element_len(s), 0, |_| {});
            }
        }
    }
}

fn element_len(s: Scalar) -> u16 {
    match s {
        Scalar::Time => 8,
        s => s.size() as u16,
    }
}

/// An RFC 6313 basicList of `n` elements of `elen` bytes, written by
/// `values`, in the 3-byte variable-length form ipfixprobe uses.
fn basic_list(out: &mut Vec<u8>, ie: Ie, elen: u16, n: usize, values: impl FnOnce(&mut Vec<u8>)) {
    let head = if ie.pen != 0 { 9 } else { 5 };
    let len = (head + n * usize::from(elen)).min(usize::from(u16::MAX)) as u16;
    out.push(255);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(3); // ordered
    if ie.pen != 0 {
        out.extend_from_slice(&(ie.id | 0x8000).to_be_bytes());
        out.extend_from_slice(&elen.to_be_bytes());
        out.extend_from_slice(&ie.pen.to_be_bytes());
    } else {
        out.extend_from_slice(&ie.id.to_be_bytes());
        out.extend_from_slice(&elen.to_be_bytes());
    }
    values(out);
}

/// Encodes an extension's values, each into its own buffer (the record
/// puts them in template order afterwards).
struct Sink<'a> {
    defs: &'static [FieldDef],
    values: &'a mut [Vec<u8>],
    written: &'a mut [bool],
}

impl FieldSink for Sink<'_> {
    fn put(&mut self, field: usize, value: FieldValue<'_>) {
        let (Some(def), Some(out), Some(w)) = (
            self.defs.get(field),
            self.values.get_mut(field),
            self.written.get_mut(field),
        ) else {
            return;
        };
        let Some(ie) = def.ipfix else { return };
        out.clear();
        *w = true;
        // Arrays go in lists of at most what fits a message.
        const MAX: usize = 4096;
        match value {
            FieldValue::U8(v) => out.push(v),
            FieldValue::I8(v) => out.push(v as u8),
            FieldValue::U16(v) => out.extend_from_slice(&v.to_be_bytes()),
            FieldValue::U32(v) => out.extend_from_slice(&v.to_be_bytes()),
            FieldValue::U64(v) => out.extend_from_slice(&v.to_be_bytes()),
            FieldValue::Float(v) => out.extend_from_slice(&v.to_be_bytes()),
            FieldValue::Double(v) => out.extend_from_slice(&v.to_be_bytes()),
            FieldValue::Ip(v) => out.extend_from_slice(&ip16(&v.0)),
            FieldValue::Mac(v) => out.extend_from_slice(&v.0),
            FieldValue::Time(v) => out.extend_from_slice(&ntp_time(v).to_be_bytes()),
            FieldValue::Str(v) | FieldValue::Bytes(v) | FieldValue::U8s(v) => put_var(out, v),
            FieldValue::I8s(v) => {
                let v = &v[..v.len().min(MAX)];
                basic_list(out, ie, 1, v.len(), |o| {
                    o.extend(v.iter().map(|&x| x as u8))
                })
            }
            FieldValue::U16s(v) => {
                let v = &v[..v.len().min(MAX)];
                basic_list(out, ie, 2, v.len(), |o| {
                    v.iter().for_each(|x| o.extend_from_slice(&x.to_be_bytes()))
                })
            }
            FieldValue::U32s(v) => {
                let v = &v[..v.len().min(MAX)];
                basic_list(out, ie, 4, v.len(), |o| {
                    v.iter().for_each(|x| o.extend_from_slice(&x.to_be_bytes()))
                })
            }
            FieldValue::U64s(v) => {
                let v = &v[..v.len().min(MAX)];
                basic_list(out, ie, 8, v.len(), |o| {
                    v.iter().for_each(|x| o.extend_from_slice(&x.to_be_bytes()))
                })
            }
            FieldValue::Times(v) => {
                let v = &v[..v.len().min(MAX)];
                basic_list(out, ie, 8, v.len(), |o| {
                    v.iter()
                        .for_each(|x| o.extend_from_slice(&x.as_millis().to_be_bytes()))
                })
            }
        }
        // A value of another type than declared would break the record's
        // layout: write the declared type's default instead.
        if !fits(def.ty, value.field_type()) {
            out.clear();
            encode_default(out, def);
        }
    }
}

/// Whether a value of type `got` encodes as a field declared `want`.
fn fits(want: FieldType, got: FieldType) -> bool {
    match (want, got) {
        (
            FieldType::String | FieldType::Bytes | FieldType::Array(Scalar::U8),
            FieldType::String | FieldType::Bytes | FieldType::Array(Scalar::U8),
        ) => true,
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::EndReason;
    use crate::plugins::{from_list, Extensions};

    fn flow(v6: bool) -> Flow {
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        if v6 {
            src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            dst[15] = 2;
            dst[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        } else {
            src[8..12].copy_from_slice(&[198, 51, 100, 1]);
            src[12..].fill(0xff);
            dst[8..12].copy_from_slice(&[198, 51, 100, 2]);
            dst[12..].fill(0xff);
        }
        Flow {
            ip_version: if v6 { 6 } else { 4 },
            src_ip: src,
            dst_ip: dst,
            src_port: 1234,
            dst_port: 80,
            protocol: 6,
            vlan_id: 0,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            time_first: 1_700_000_000_250_000,
            time_last: 1_700_000_001_500_000,
            packets: 3,
            packets_rev: 2,
            bytes: 300,
            bytes_rev: 200,
            tcp_flags: 0x1b,
            tcp_flags_rev: 0x12,
            end_reason: EndReason::EndOfFlow,
            flow_hash: 7,
        }
    }

    fn rec(v6: bool) -> FlowRecord {
        FlowRecord {
            flow: flow(v6),
            exts: Extensions::default(),
        }
    }

    /// Walks a message: (set id, set body) pairs; checks the lengths add up.
    fn sets(m: &[u8]) -> Vec<(u16, Vec<u8>)> {
        assert_eq!(u16::from_be_bytes([m[0], m[1]]), 10);
        assert_eq!(usize::from(u16::from_be_bytes([m[2], m[3]])), m.len());
        let mut out = Vec::new();
        let mut at = 16;
        while at < m.len() {
            let id = u16::from_be_bytes([m[at], m[at + 1]]);
            let len = usize::from(u16::from_be_bytes([m[at + 2], m[at + 3]]));
            assert!(len >= 4 && at + len <= m.len(), "set length {len} at {at}");
            out.push((id, m[at + 4..at + len].to_vec()));
            at += len;
        }
        out
    }

    #[test]
    fn basic_record_layout_and_templates() {
        let mut e = Encoder::new(&Plugins::default(), Config::default());
        e.add(&rec(false), 1000);
        e.add(&rec(true), 1000);
        e.flush(1000);
        let msgs: Vec<Message> = e.take().collect();
        assert_eq!(msgs.len(), 2, "a template message, then one data message");
        let t = sets(&msgs[0].bytes);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].0, 2);
        // Two templates: 258 (IPv4), 259 (IPv6), 18 fields each.
        let body = &t[0].1;
        assert_eq!(&body[..4], &[1, 2, 0, 18]);
        let d = sets(&msgs[1].bytes);
        assert_eq!(d.iter().map(|s| s.0).collect::<Vec<_>>(), vec![258, 259]);
        // IPv4 record: 1+8*6+1*4+2*2+4+4*2+6*2 = 81 bytes.
        assert_eq!(d[0].1.len(), 81);
        assert_eq!(d[1].1.len(), 81 + 24);
        let r = &d[0].1;
        assert_eq!(r[0], 3);
        assert_eq!(
            u64::from_be_bytes(r[1..9].try_into().unwrap_or_default()),
            300
        );
        assert_eq!(
            u64::from_be_bytes(r[25..33].try_into().unwrap_or_default()),
            2
        );
        let start = u64::from_be_bytes(r[33..41].try_into().unwrap_or_default());
        assert_eq!(start >> 32, 1_700_000_000 + NTP_EPOCH);
        assert_eq!(start & 0xffff_ffff, 1 << 30, "0.25 s");
        assert_eq!(&r[61..65], &[198, 51, 100, 1]);
        assert_eq!(msgs[0].records, 0);
        assert_eq!(msgs[1].records, 2);
        // Sequence numbers count data records.
        assert_eq!(&msgs[1].bytes[8..12], &[0, 0, 0, 0]);
        e.add(&rec(false), 1001);
        e.flush(1001);
        let m: Vec<Message> = e.take().collect();
        assert_eq!(m.len(), 1, "templates are not sent twice over TCP");
        assert_eq!(&m[0].bytes[8..12], &[0, 0, 0, 2]);
        assert_eq!(&m[0].bytes[12..16], &[0, 0, 0, 1], "observation domain");
    }

    #[test]
    fn messages_stay_within_the_mtu_and_templates_refresh() {
        let cfg = Config {
            mtu: 400,
            template_refresh: 600,
            ..Config::default()
        };
        let mut e = Encoder::new(&Plugins::default(), cfg);
        for _ in 0..100 {
            e.add(&rec(false), 1000);
        }
        e.flush(1000);
        let msgs: Vec<Message> = e.take().collect();
        let total: u32 = msgs.iter().map(|m| m.records).sum();
        assert_eq!(total, 100);
        assert!(msgs.iter().all(|m| m.bytes.len() <= 400));
        assert_eq!(msgs.iter().filter(|m| m.records == 0).count(), 1);
        e.add(&rec(false), 1599);
        e.flush(1599);
        assert_eq!(e.take().count(), 1);
        e.add(&rec(false), 1600);
        e.flush(1600);
        assert_eq!(e.take().count(), 2, "templates again after 600 s");
        e.resend_templates();
        e.flush(1601);
        assert_eq!(e.take().count(), 1);
    }

    #[test]
    fn plugin_fields_follow_the_basic_ones() {
        let mut p = from_list("icmp").unwrap_or_default();
        let mut e = Encoder::new(&p, Config::default());
        let mut r = rec(false);
        let mut pk = crate::parser::Packet {
            protocol: 1,
            ..Default::default()
        };
        pk.payload = vec![8, 0];
        p.post_create(&r.flow, &mut r.exts, &pk);
        assert_eq!(r.exts.len(), 1);
        e.add(&r, 1);
        // A flow icmp found nothing in goes with the basic template.
        e.add(&rec(false), 1);
        e.flush(1);
        let msgs: Vec<Message> = e.take().collect();
        let t = sets(&msgs[0].bytes);
        assert_eq!(&t[0].1[..4], &[1, 2, 0, 19]);
        let d = sets(&msgs[1].bytes);
        assert_eq!(d.iter().map(|s| s.0).collect::<Vec<_>>(), vec![258, 259]);
        assert_eq!(d[0].1.len(), 83);
        assert_eq!(&d[0].1[81..], &[8, 0]);
        assert_eq!(d[1].1.len(), 81);
    }

    #[test]
    fn variable_length_and_lists() {
        let mut v = Vec::new();
        put_var(&mut v, b"abc");
        assert_eq!(v, [3, b'a', b'b', b'c']);
        v.clear();
        put_var(&mut v, &[7; 300]);
        assert_eq!(&v[..3], &[255, 1, 44]);
        assert_eq!(v.len(), 303);
        v.clear();
        basic_list(
            &mut v,
            Ie {
                pen: 8057,
                id: 1013,
            },
            2,
            2,
            |o| o.extend_from_slice(&[0, 1, 0, 2]),
        );
        assert_eq!(
            v,
            [255, 0, 13, 3, 0x83, 0xf5, 0, 2, 0, 0, 0x1f, 0x79, 0, 1, 0, 2]
        );
    }
}
