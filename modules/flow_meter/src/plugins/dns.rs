//! `dns`: one record per DNS message over UDP or TCP port 53.
//!
//! Exports `DNS_ID`, `DNS_ANSWERS` (ANCOUNT), `DNS_RCODE`, the first
//! question's `DNS_NAME`/`DNS_QTYPE`/`DNS_CLASS`, the first answer's
//! `DNS_RR_TTL` and a text rendering of its RDATA in `DNS_RDATA` (a `bytes`
//! field) with its length in `DNS_RLENGTH`, and `DNS_PSIZE`/`DNS_DO` from an
//! EDNS0 OPT record of the additional section.
//!
//! ipfixprobe's rules, kept here:
//! * a packet is looked at when either port is 53; over TCP the message
//!   must fit the segment exactly (2-byte length = payload − 2);
//! * a message that parses adds the extension and flushes the flow, so each
//!   query and each response is a record of its own; a message that fails
//!   adds nothing and does not flush (except on a flow that already has an
//!   extension, where the failed parse may have updated some fields);
//! * a record running past the message ends the parse *successfully* with
//!   what was read so far; a bad name (or a bad name inside the first
//!   answer's RDATA) fails the whole message;
//! * RDATA text per type: A, AAAA (`inet_ntop`), NS/CNAME/PTR/DNAME the name,
//!   SOA `mname rname serial refresh retry expire minimum`, SRV
//!   `service proto name target priority weight port` (the first two `_`
//!   of the owner name dropped, its first two `.` made spaces), MX
//!   `preference name`, TXT the strings joined by spaces, MINFO the two
//!   names run together, HINFO/ISDN the raw bytes, DS
//!   `keytag keytag-in-host-order digest-type <key>` (ipfixprobe's quirk),
//!   RRSIG `type alg labels ttl expiration inception keytag <key>` (the
//!   signer's name must parse), DNSKEY `flags protocol alg <key>`, else
//!   `(not_impl)`; cut to 159 bytes. The name is cut to 127 bytes and, being
//!   a string, ends at a zero byte.

use super::dns_wire::{push_num, write_ipv4, write_ipv6, Bad, Msg};
use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Ie};
use super::{Hooks, ProcessPlugin, Verdict, PEN_CESNET};
use crate::parser::Packet;

const NAME_MAX: usize = 127;
const RDATA_MAX: usize = 159;

/// The parsed message of a flow.
pub struct DnsExt {
    id: u16,
    answers: u16,
    rcode: u8,
    qname: [u8; NAME_MAX],
    qname_len: u8,
    qtype: u16,
    qclass: u16,
    rr_ttl: u32,
    rdata: [u8; RDATA_MAX],
    rlength: u16,
    psize: u16,
    dns_do: u8,
}

impl Default for DnsExt {
    fn default() -> Self {
        DnsExt {
            id: 0,
            answers: 0,
            rcode: 0,
            qname: [0; NAME_MAX],
            qname_len: 0,
            qtype: 0,
            qclass: 0,
            rr_ttl: 0,
            rdata: [0; RDATA_MAX],
            rlength: 0,
            psize: 0,
            dns_do: 0,
        }
    }
}

impl DnsExt {
    pub fn name(&self) -> &[u8] {
        let n = self.qname.get(..usize::from(self.qname_len)).unwrap_or(&[]);
        // A string field ends at the first zero byte.
        n.iter().position(|&b| b == 0).map_or(n, |z| &n[..z])
    }

    pub fn rdata(&self) -> &[u8] {
        self.rdata.get(..usize::from(self.rlength)).unwrap_or(&[])
    }
}

impl Extension for DnsExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::U16(self.id));
        out.put(1, FieldValue::U16(self.answers));
        out.put(2, FieldValue::U8(self.rcode));
        out.put(3, FieldValue::Str(self.name()));
        out.put(4, FieldValue::U16(self.qtype));
        out.put(5, FieldValue::U16(self.qclass));
        out.put(6, FieldValue::U32(self.rr_ttl));
        out.put(7, FieldValue::U16(self.rlength));
        out.put(8, FieldValue::Bytes(self.rdata()));
        out.put(9, FieldValue::U16(self.psize));
        out.put(10, FieldValue::U8(self.dns_do));
    }
}

const fn ie(id: u16) -> Option<Ie> {
    Some(Ie {
        pen: PEN_CESNET,
        id,
    })
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new("DNS_ID", ty::U16, ie(10)),
    FieldDef::new("DNS_ANSWERS", ty::U16, ie(14)),
    FieldDef::new("DNS_RCODE", ty::U8, ie(1)),
    FieldDef::new("DNS_NAME", ty::STRING, ie(2)),
    FieldDef::new("DNS_QTYPE", ty::U16, ie(3)),
    FieldDef::new("DNS_CLASS", ty::U16, ie(4)),
    FieldDef::new("DNS_RR_TTL", ty::U32, ie(5)),
    FieldDef::new("DNS_RLENGTH", ty::U16, ie(6)),
    FieldDef::new("DNS_RDATA", ty::BYTES, ie(7)),
    FieldDef::new("DNS_PSIZE", ty::U16, ie(8)),
    FieldDef::new("DNS_DO", ty::U8, ie(9)),
];

/// The `dns` plugin (scratch buffers reused from message to message).
#[derive(Default)]
pub struct Dns {
    name: Vec<u8>,
    text: Vec<u8>,
    tmp: Vec<u8>,
}

impl Dns {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::<Dns>::default())
    }

    fn new_ext(&mut self, pkt: &Packet) -> Option<DnsExt> {
        let mut ext = DnsExt::default();
        self.parse(pkt.payload(), pkt.protocol == 6, &mut ext)
            .then_some(ext)
    }

    /// Parses one message into `rec`; true when it counts as parsed.
    pub fn parse(&mut self, payload: &[u8], tcp: bool, rec: &mut DnsExt) -> bool {
        let Some(msg) = dns_message(payload, tcp) else {
            return false;
        };
        self.parse_msg(Msg::new(msg), rec).is_ok()
    }

    fn parse_msg(&mut self, m: Msg<'_>, rec: &mut DnsExt) -> Result<(), Bad> {
        let len = m.len();
        let flags = m.u16(2);
        let qdcount = m.u16(4);
        let ancount = m.u16(6);
        let nscount = m.u16(8);
        let arcount = m.u16(10);
        rec.answers = ancount;
        rec.id = m.u16(0);
        rec.rcode = (flags & 0xf) as u8;

        let mut p = 12usize;
        for i in 0..qdcount {
            self.name.clear();
            m.name(p, &mut self.name)?;
            p += m.name_len(p)?;
            if p + 4 > len {
                return Ok(());
            }
            if i == 0 {
                rec.qtype = m.u16(p);
                rec.qclass = m.u16(p + 2);
                let n = self.name.len().min(NAME_MAX);
                rec.qname[..n].copy_from_slice(&self.name[..n]);
                rec.qname_len = n as u8;
            }
            p += 4;
        }

        for i in 0..ancount {
            let owner = p;
            p += m.name_len(p)?;
            let rdlen = usize::from(m.u16(p + 8));
            if p + 10 > len || p + 10 + rdlen > len {
                return Ok(());
            }
            let rtype = m.u16(p);
            let ttl = m.u32(p + 4);
            p += 10;
            if i == 0 {
                self.text.clear();
                self.rdata_text(m, owner, p, rtype, rdlen)?;
                rec.rr_ttl = ttl;
                let n = self.text.len().min(RDATA_MAX);
                rec.rdata[..n].copy_from_slice(&self.text[..n]);
                rec.rlength = n as u16;
            }
            p += rdlen;
        }

        for _ in 0..nscount {
            p += m.name_len(p)?;
            let rdlen = usize::from(m.u16(p + 8));
            if p + 10 > len || p + 10 + rdlen > len {
                return Ok(());
            }
            p += 10 + rdlen;
        }

        for _ in 0..arcount {
            p += m.name_len(p)?;
            let rdlen = usize::from(m.u16(p + 8));
            if p + 10 > len || p + 10 + rdlen > len {
                return Ok(());
            }
            if m.u16(p) == 41 {
                rec.psize = m.u16(p + 2);
                rec.dns_do = ((m.u32(p + 4) & 0x8000) >> 15) as u8;
            }
            p += 10 + rdlen;
        }
        Ok(())
    }

    /// Renders the RDATA at `d` (owner name at `owner`) into `self.text`.
    fn rdata_text(
        &mut self,
        m: Msg<'_>,
        owner: usize,
        mut d: usize,
        rtype: u16,
        rdlen: usize,
    ) -> Result<(), Bad> {
        let out = &mut self.text;
        let sp = |o: &mut Vec<u8>, v: u64| {
            o.push(b' ');
            push_num(o, v);
        };
        match rtype {
            1 => {
                let mut a = [0u8; 4];
                m.copy_to(d, &mut a);
                write_ipv4(&a, out);
            }
            28 => {
                let mut a = [0u8; 16];
                m.copy_to(d, &mut a);
                write_ipv6(&a, out);
            }
            2 | 5 | 12 | 39 => m.name(d, out)?,
            6 => {
                m.name(d, out)?;
                d += m.name_len(d)?;
                self.tmp.clear();
                m.name(d, &mut self.tmp)?;
                d += m.name_len(d)?;
                out.push(b' ');
                out.extend_from_slice(&self.tmp);
                for k in 0..5 {
                    sp(out, u64::from(m.u32(d + 4 * k)));
                }
            }
            33 => {
                self.tmp.clear();
                m.name(owner, &mut self.tmp)?;
                srv_owner(&mut self.tmp);
                out.extend_from_slice(&self.tmp);
                out.push(b' ');
                m.name(d + 6, out)?;
                for k in 0..3 {
                    sp(out, u64::from(m.u16(d + 2 * k)));
                }
            }
            15 => {
                push_num(out, u64::from(m.u16(d)));
                out.push(b' ');
                m.name(d + 2, out)?;
            }
            16 => {
                let mut l = usize::from(m.u8(d));
                d += 1;
                let mut total = l + 1;
                while rdlen != 0 && total <= rdlen {
                    out.extend_from_slice(m.slice(d, l));
                    d += l;
                    l = usize::from(m.u8(d));
                    d += 1;
                    total += l + 1;
                    if total <= rdlen {
                        out.push(b' ');
                    }
                    if out.len() > RDATA_MAX {
                        // Only the first 159 bytes are kept.
                        break;
                    }
                }
            }
            14 => {
                m.name(d, out)?;
                d += m.name_len(d)?;
                m.name(d, out)?;
            }
            13 | 20 => out.extend_from_slice(m.slice(d, rdlen)),
            43 => {
                push_num(out, u64::from(m.u16(d)));
                sp(out, u64::from(u16::from_le_bytes([m.u8(d), m.u8(d + 1)])));
                sp(out, u64::from(m.u8(d + 3)));
                out.extend_from_slice(b" <key>");
            }
            46 => {
                push_num(out, u64::from(m.u16(d)));
                sp(out, u64::from(m.u8(d + 2)));
                sp(out, u64::from(m.u8(d + 3)));
                sp(out, u64::from(m.u32(d + 4)));
                sp(out, u64::from(m.u32(d + 8)));
                sp(out, u64::from(m.u32(d + 12)));
                sp(out, u64::from(m.u16(d + 16)));
                out.extend_from_slice(b" <key>");
                // The signer's name is parsed (and must be valid) but not shown.
                self.tmp.clear();
                m.name(d + 18, &mut self.tmp)?;
            }
            48 => {
                push_num(out, u64::from(m.u16(d)));
                sp(out, u64::from(m.u8(d + 2)));
                sp(out, u64::from(m.u8(d + 3)));
                out.extend_from_slice(b" <key>");
            }
            _ => out.extend_from_slice(b"(not_impl)"),
        }
        Ok(())
    }
}

/// The DNS message in a payload: UDP as is, TCP after a 2-byte length that
/// must equal the rest of the segment; at least a 12-byte header.
pub fn dns_message(payload: &[u8], tcp: bool) -> Option<&[u8]> {
    let msg = if tcp {
        let (len, rest) = payload.split_at_checked(2)?;
        if usize::from(u16::from_be_bytes([len[0], len[1]])) != rest.len() {
            return None;
        }
        rest
    } else {
        payload
    };
    (msg.len() >= 12).then_some(msg)
}

/// An SRV owner name as ipfixprobe shows it: the first two `_` removed
/// (looking no further than a zero byte), then the first two `.` made
/// spaces (`_sip._tcp.example.com` → `sip tcp example.com`).
fn srv_owner(s: &mut Vec<u8>) {
    let mut i = 0;
    let mut seen = false;
    while let Some(&c) = s.get(i) {
        if c == 0 {
            break;
        }
        if c == b'_' {
            s.remove(i);
            if seen {
                break;
            }
            seen = true;
            continue;
        }
        i += 1;
    }
    let mut dots = 0;
    for c in s.iter_mut() {
        if *c == b'.' {
            *c = b' ';
            dots += 1;
            if dots == 2 {
                break;
            }
        }
    }
}

impl ProcessPlugin for Dns {
    fn name(&self) -> &'static str {
        "dns"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::POST_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if pkt.src_port != 53 && pkt.dst_port != 53 {
            return Verdict::CONTINUE;
        }
        match self.new_ext(pkt) {
            Some(ext) => {
                f.exts.add(ext);
                Verdict::FLUSH
            }
            None => Verdict::CONTINUE,
        }
    }
    fn post_update(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if pkt.src_port != 53 && pkt.dst_port != 53 {
            return Verdict::CONTINUE;
        }
        if let Some(ext) = f.exts.get_mut::<DnsExt>() {
            // ipfixprobe parses into the existing extension and flushes,
            // whether the parse succeeds or not.
            self.parse(pkt.payload(), pkt.protocol == 6, ext);
            return Verdict::FLUSH;
        }
        match self.new_ext(pkt) {
            Some(ext) => {
                f.exts.add(ext);
                Verdict::FLUSH
            }
            None => Verdict::CONTINUE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response() -> Vec<u8> {
        let mut m = vec![
            0x14, 0x85, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 1, // header
        ];
        m.extend_from_slice(b"\x03230\x03144\x03113\x03195\x07in-addr\x04arpa\x00\x00\x0c\x00\x01");
        m.extend_from_slice(b"\xc0\x0c\x00\x0c\x00\x01\x00\x00\x54\x5f\x00\x0f");
        m.extend_from_slice(b"\x03www\x06cesnet\x02cz\x00");
        m.extend_from_slice(b"\x00\x00\x29\x02\x00\x00\x00\x80\x00\x00\x00");
        m
    }

    fn parse(p: &[u8], tcp: bool) -> Option<DnsExt> {
        let mut d = Dns::default();
        let mut e = DnsExt::default();
        d.parse(p, tcp, &mut e).then_some(e)
    }

    #[test]
    fn ptr_response() {
        let e = parse(&response(), false).expect("parses");
        assert_eq!(e.id, 0x1485);
        assert_eq!(e.answers, 1);
        assert_eq!(e.rcode, 0);
        assert_eq!(e.name(), b"230.144.113.195.in-addr.arpa");
        assert_eq!((e.qtype, e.qclass, e.rr_ttl), (12, 1, 21599));
        assert_eq!(e.rdata(), b"www.cesnet.cz");
        assert_eq!(e.rlength, 13);
        assert_eq!((e.psize, e.dns_do), (512, 1));
    }

    #[test]
    fn tcp_needs_the_whole_message() {
        let m = response();
        let mut t = (m.len() as u16).to_be_bytes().to_vec();
        t.extend_from_slice(&m);
        assert!(parse(&t, true).is_some());
        assert!(parse(&t[..t.len() - 1], true).is_none());
        assert!(parse(&t[..1], true).is_none());
    }

    #[test]
    fn truncation_keeps_what_was_read() {
        let m = response();
        // Cut inside the OPT record: the parse still succeeds, without PSIZE.
        let e = parse(&m[..m.len() - 3], false).expect("parses");
        assert_eq!(e.rdata(), b"www.cesnet.cz");
        assert_eq!(e.psize, 0);
        // Cut inside the question name: a failure.
        assert!(parse(&m[..20], false).is_none());
        for n in 0..m.len() {
            let _ = parse(&m[..n], false);
            let _ = parse(&m[..n], true);
        }
    }

    #[test]
    fn rdata_renderings() {
        let mk = |rtype: u16, rdata: &[u8]| {
            let mut m = vec![0, 1, 0x81, 0x83, 0, 0, 0, 1, 0, 0, 0, 0];
            m.extend_from_slice(b"\x04_sip\x04_tcp\x01x\x00");
            m.extend_from_slice(&rtype.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 5]);
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(rdata);
            parse(&m, false).map(|e| (e.rcode, e.rdata().to_vec()))
        };
        assert_eq!(mk(1, &[1, 2, 3, 4]), Some((3, b"1.2.3.4".to_vec())));
        assert_eq!(
            mk(33, b"\x00\x01\x00\x02\x13\xc4\x01t\x00"),
            Some((3, b"sip tcp x t 1 2 5060".to_vec()))
        );
        assert_eq!(
            mk(15, b"\x00\x0a\x01m\x00").map(|x| x.1),
            Some(b"10 m".to_vec())
        );
        assert_eq!(mk(16, b"\x02ab\x01c").map(|x| x.1), Some(b"ab c".to_vec()));
        assert_eq!(
            mk(43, b"\x01\x02\x08\x02").map(|x| x.1),
            Some(b"258 513 2 <key>".to_vec())
        );
        assert_eq!(mk(99, b"").map(|x| x.1), Some(b"(not_impl)".to_vec()));
        // A bad name inside the first answer's RDATA fails the message.
        assert_eq!(mk(5, b"\x50"), None);
    }
}
