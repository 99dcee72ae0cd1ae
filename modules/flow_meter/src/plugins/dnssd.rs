//! `dnssd` (`-p "dnssd[;txt[=FILE]]"`): DNS service discovery (mDNS) names
//! and service instances of a flow.
//!
//! Exports `DNSSD_QUERIES` (each distinct question name followed by `;`) and
//! `DNSSD_RESPONSES` (per service instance
//! `name;port;target;hinfo;txt;`, port -1 when no SRV was seen, hinfo as
//! `cpu:os` or empty, txt as `string:` pieces).
//!
//! ipfixprobe's rules, kept here:
//! * packets with either port 5353 are parsed; the flow is never flushed; a
//!   flow gets its extension from the first message that parses, later
//!   messages add to it;
//! * names containing `arpa` are ignored; questions are recorded once each;
//! * SRV, HINFO and TXT records update the instance of their owner name
//!   (one per name): from the answers and the additional records of
//!   responses, and from the authority records of any message;
//! * a record running past the message ends the parse successfully; a bad
//!   name fails the message (its partial additions stay only on a flow that
//!   already had an extension);
//! * TXT records are kept only with the `txt` option. ipfixprobe's option
//!   takes an optional whitelist file (`service.domain,key1,key2,…` lines)
//!   but turns on all TXT records whenever the option is given, so the
//!   whitelist is loaded (a missing file is an error) yet has no effect —
//!   kept as is;
//! * an OPT record in the additional section is skipped by its RDLENGTH
//!   only (not its 10-byte header), so what follows it is misread — kept;
//! * a second TXT for an instance is appended (when new) with an extra `:`;
//! * the exported strings end at a zero byte, as C strings do.

use super::dns::dns_message;
use super::dns_wire::{push_num, Bad, Msg};
use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie};
use super::{ProcessPlugin, Verdict, PEN_CESNET};
use crate::parser::Packet;

/// One service instance.
#[derive(Clone, Debug, Default, PartialEq)]
struct Instance {
    name: Vec<u8>,
    port: i32,
    target: Vec<u8>,
    hinfo: [Vec<u8>; 2],
    txt: Vec<u8>,
}

/// The queries and instances of a flow.
#[derive(Default)]
pub struct DnssdExt {
    queries: Vec<Vec<u8>>,
    responses: Vec<Instance>,
}

fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |z| &s[..z])
}

impl DnssdExt {
    pub fn queries_text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for q in &self.queries {
            out.extend_from_slice(q);
            out.push(b';');
        }
        out
    }

    pub fn responses_text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for r in &self.responses {
            out.extend_from_slice(&r.name);
            out.push(b';');
            if r.port < 0 {
                out.push(b'-');
            }
            push_num(&mut out, u64::from(r.port.unsigned_abs()));
            out.push(b';');
            out.extend_from_slice(&r.target);
            out.push(b';');
            if !(r.hinfo[0].is_empty() && r.hinfo[1].is_empty()) {
                out.extend_from_slice(&r.hinfo[0]);
                out.push(b':');
                out.extend_from_slice(&r.hinfo[1]);
            }
            out.push(b';');
            out.extend_from_slice(&r.txt);
            out.push(b';');
        }
        out
    }

    fn add_query(&mut self, name: &[u8]) {
        if !contains(name, b"arpa") && !self.queries.iter().any(|q| q == name) {
            self.queries.push(name.to_vec());
        }
    }

    fn add_record(&mut self, rtype: u16, rr: Instance) {
        if !matches!(rtype, 33 | 13 | 16) || contains(&rr.name, b"arpa") {
            return;
        }
        if let Some(it) = self.responses.iter_mut().find(|i| i.name == rr.name) {
            match rtype {
                33 => {
                    it.port = rr.port;
                    it.target = rr.target;
                }
                13 => it.hinfo = rr.hinfo,
                _ => {
                    if !rr.txt.is_empty() && !contains(&it.txt, &rr.txt) {
                        it.txt.extend_from_slice(&rr.txt);
                        it.txt.push(b':');
                    }
                }
            }
            return;
        }
        self.responses.push(rr);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

impl Extension for DnssdExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::Str(c_str(&self.queries_text())));
        out.put(1, FieldValue::Str(c_str(&self.responses_text())));
    }
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new(
        "DNSSD_QUERIES",
        ty::STRING,
        Some(Ie {
            pen: PEN_CESNET,
            id: 826,
        }),
    ),
    FieldDef::new(
        "DNSSD_RESPONSES",
        ty::STRING,
        Some(Ie {
            pen: PEN_CESNET,
            id: 827,
        }),
    ),
];

/// The `dnssd` plugin.
#[derive(Default)]
pub struct Dnssd {
    /// TXT records are kept.
    txt: bool,
    /// The whitelist file's lines (service, keys); see the module doc.
    #[allow(dead_code)]
    whitelist: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
}

impl Dnssd {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        let mut p = Dnssd::default();
        for (k, v) in parse_options(opts, &[("t", "txt")])? {
            if k == "txt" {
                p.txt = true;
                if !v.is_empty() {
                    let text = std::fs::read(v).map_err(|e| format!("{e} '{v}'"))?;
                    p.whitelist = text
                        .split(|&b| b == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(|l| {
                            let mut parts = l.split(|&b| b == b',').map(<[u8]>::to_vec);
                            let service = parts.next().unwrap_or_default();
                            (service, parts.collect())
                        })
                        .collect();
                }
            }
        }
        Ok(Box::new(p))
    }

    /// Parses one message into `rec`; true when it counts as parsed.
    pub fn parse(&self, payload: &[u8], tcp: bool, rec: &mut DnssdExt) -> bool {
        let Some(msg) = dns_message(payload, tcp) else {
            return false;
        };
        self.parse_msg(Msg::new(msg), rec).is_ok()
    }

    fn parse_msg(&self, m: Msg<'_>, rec: &mut DnssdExt) -> Result<(), Bad> {
        let len = m.len();
        let response = m.u16(2) & 0x8000 != 0;
        let qdcount = m.u16(4);
        let counts = [
            (m.u16(6), response),
            (m.u16(8), true),
            (m.u16(10), response),
        ];
        let mut p = 12usize;
        let mut name = Vec::new();
        for _ in 0..qdcount {
            name.clear();
            m.name(p, &mut name)?;
            p += m.name_len(p)?;
            if p + 4 > len {
                return Ok(());
            }
            rec.add_query(&name);
            p += 4;
        }
        for (section, (count, keep)) in counts.into_iter().enumerate() {
            for _ in 0..count {
                let mut rr = Instance {
                    port: -1,
                    ..Instance::default()
                };
                m.name(p, &mut rr.name)?;
                p += m.name_len(p)?;
                let rdlen = usize::from(m.u16(p + 8));
                if p + 10 > len || p + 10 + rdlen > len {
                    return Ok(());
                }
                let rtype = m.u16(p);
                if section == 2 && rtype == 41 {
                    // ipfixprobe's quirk: an OPT record is skipped by its
                    // RDLENGTH only, not its 10-byte header.
                    p += rdlen;
                    continue;
                }
                p += 10;
                self.rdata(m, p, rtype, rdlen, &mut rr)?;
                if keep {
                    rec.add_record(rtype, rr);
                }
                p += rdlen;
            }
        }
        Ok(())
    }

    fn rdata(
        &self,
        m: Msg<'_>,
        mut d: usize,
        rtype: u16,
        rdlen: usize,
        rr: &mut Instance,
    ) -> Result<(), Bad> {
        match rtype {
            33 => {
                m.name(d + 6, &mut rr.target)?;
                rr.port = i32::from(m.u16(d + 4));
            }
            13 => {
                for h in &mut rr.hinfo {
                    let l = usize::from(m.u8(d));
                    h.extend_from_slice(m.slice(d + 1, l));
                    d += l + 1;
                }
            }
            16 if self.txt => {
                let mut l = usize::from(m.u8(d));
                d += 1;
                let mut total = l + 1;
                while rdlen != 0 && total <= rdlen {
                    rr.txt.extend_from_slice(m.slice(d, l));
                    rr.txt.push(b':');
                    d += l;
                    l = usize::from(m.u8(d));
                    d += 1;
                    total += l + 1;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn packet(&mut self, f: FlowCtx<'_>, pkt: &Packet) {
        if pkt.src_port != 5353 && pkt.dst_port != 5353 {
            return;
        }
        let tcp = pkt.protocol == 6;
        if let Some(ext) = f.exts.get_mut::<DnssdExt>() {
            self.parse(pkt.payload(), tcp, ext);
            return;
        }
        let mut ext = DnssdExt::default();
        if self.parse(pkt.payload(), tcp, &mut ext) {
            f.exts.add(ext);
        }
    }
}

impl ProcessPlugin for Dnssd {
    fn name(&self) -> &'static str {
        "dnssd"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::POST_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        self.packet(f, pkt);
        Verdict::CONTINUE
    }
    fn post_update(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        self.packet(f, pkt);
        Verdict::CONTINUE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response() -> Vec<u8> {
        let mut m = vec![0, 0, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 2];
        m.extend_from_slice(b"\x05_http\x04_tcp\x05local\x00\x00\x0c\x00\x01");
        // PTR answer: not an instance record.
        m.extend_from_slice(b"\xc0\x0c\x00\x0c\x00\x01\x00\x00\x00\x0a\x00\x05\x02me\xc0\x0c");
        // SRV me._http._tcp.local -> host.local:8080
        m.extend_from_slice(b"\xc0\x2e\x00\x21\x80\x01\x00\x00\x00\x0a\x00\x0d");
        m.extend_from_slice(b"\x00\x00\x00\x00\x1f\x90\x04host\xc0\x17");
        // TXT for the same instance
        m.extend_from_slice(b"\xc0\x2e\x00\x10\x80\x01\x00\x00\x00\x0a\x00\x08\x03a=1\x03b=2");
        m
    }

    fn run(p: &Dnssd, m: &[u8]) -> Option<DnssdExt> {
        let mut e = DnssdExt::default();
        p.parse(m, false, &mut e).then_some(e)
    }

    #[test]
    fn instances_and_txt_option() {
        let m = response();
        let e = run(&Dnssd::default(), &m).expect("parses");
        assert_eq!(e.queries_text(), b"_http._tcp.local;");
        assert_eq!(
            e.responses_text(),
            b"me._http._tcp.local;8080;host.local;;;"
        );
        let t = Dnssd {
            txt: true,
            ..Dnssd::default()
        };
        let e = run(&t, &m).expect("parses");
        // TXT added to a known instance: ipfixprobe's extra `:`.
        assert_eq!(
            e.responses_text(),
            b"me._http._tcp.local;8080;host.local;;a=1:b=2::;"
        );
        for n in 0..m.len() {
            let _ = run(&t, &m[..n]);
        }
    }

    #[test]
    fn options() {
        assert!(Dnssd::create("txt").is_ok());
        assert!(Dnssd::create("t").is_ok());
        assert!(Dnssd::create("txt=/nonexistent/whitelist").is_err());
        assert!(Dnssd::create("bogus").is_err());
    }
}
