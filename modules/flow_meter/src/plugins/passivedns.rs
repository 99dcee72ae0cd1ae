//! `passivedns`: one record per A, AAAA or PTR answer of DNS responses.
//!
//! Exports `DNS_ID`, `DNS_ATYPE`, `DNS_NAME`, `DNS_RR_TTL` and `DNS_IP`, one
//! extension (so one output record) per matching answer.
//!
//! ipfixprobe's rules, kept here:
//! * only packets from port 53 (UDP, or TCP with a whole message after the
//!   2-byte length); each such packet **flushes** the flow, parsed or not;
//! * questions are skipped (one running past the message drops the whole
//!   message); answers are read until one runs past the message or a name
//!   is bad — the answers found until then are kept;
//! * A/AAAA: `DNS_NAME` = the owner name, `DNS_IP` = the address (read even
//!   when RDLENGTH is shorter);
//! * PTR: `DNS_NAME` = the target name, `DNS_IP` = the address spelt by the
//!   owner name under `in-addr.arpa` / `ip6.arpa` (case-insensitive, one
//!   trailing dot allowed); a PTR whose owner is not such a name is skipped.
//!   ipfixprobe's quirk, kept: an IPv6 address byte is made of one nibble
//!   twice (`(n << 4) | n` of the first 16 nibbles, most significant first);
//! * names are cut to 254 bytes and end at a zero byte.

use super::dns::dns_message;
use super::dns_wire::{Bad, Msg};
use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie};
use super::{ProcessPlugin, Verdict, PEN_CESNET};
use crate::parser::Packet;
use unirec::UrIp;

const NAME_MAX: usize = 254;

/// One A/AAAA/PTR answer.
pub struct PassiveDnsExt {
    id: u16,
    atype: u16,
    name: Vec<u8>,
    rr_ttl: u32,
    ip: UrIp,
}

impl PassiveDnsExt {
    fn set_name(&mut self, n: &[u8]) {
        let n = &n[..n.len().min(NAME_MAX)];
        let n = n.iter().position(|&b| b == 0).map_or(n, |z| &n[..z]);
        self.name.clear();
        self.name.extend_from_slice(n);
    }
}

impl Extension for PassiveDnsExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::U16(self.id));
        out.put(1, FieldValue::U16(self.atype));
        out.put(2, FieldValue::Str(&self.name));
        out.put(3, FieldValue::U32(self.rr_ttl));
        out.put(4, FieldValue::Ip(self.ip));
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
    FieldDef::new("DNS_ATYPE", ty::U16, ie(11)),
    FieldDef::new("DNS_NAME", ty::STRING, ie(2)),
    FieldDef::new("DNS_RR_TTL", ty::U32, ie(5)),
    FieldDef::new("DNS_IP", ty::IP, ie(7)),
];

/// The `passivedns` plugin.
#[derive(Default)]
pub struct PassiveDns {
    owner: Vec<u8>,
    target: Vec<u8>,
}

impl PassiveDns {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::<PassiveDns>::default())
    }

    /// The answers of one message, each handed to `add`.
    pub fn parse(&mut self, payload: &[u8], tcp: bool, add: &mut dyn FnMut(PassiveDnsExt)) {
        if let Some(msg) = dns_message(payload, tcp) {
            // An error ends the message; what was added stays.
            let _ = self.parse_msg(Msg::new(msg), add);
        }
    }

    fn parse_msg(&mut self, m: Msg<'_>, add: &mut dyn FnMut(PassiveDnsExt)) -> Result<(), Bad> {
        let len = m.len();
        let id = m.u16(0);
        let qdcount = m.u16(4);
        let ancount = m.u16(6);
        let mut p = 12usize;
        let mut found: Vec<PassiveDnsExt> = Vec::new();
        for _ in 0..qdcount {
            p += m.name_len(p)?;
            if p + 4 > len {
                return Ok(());
            }
            p += 4;
        }
        let mut result = Ok(());
        for _ in 0..ancount {
            self.owner.clear();
            if let Err(e) = m.name(p, &mut self.owner) {
                result = Err(e);
                break;
            }
            match m.name_len(p) {
                Ok(n) => p += n,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            let rdlen = usize::from(m.u16(p + 8));
            if p + 10 > len || p + 10 + rdlen > len {
                break;
            }
            let atype = m.u16(p);
            let rr_ttl = m.u32(p + 4);
            p += 10;
            let mut ext = PassiveDnsExt {
                id,
                atype,
                name: Vec::new(),
                rr_ttl,
                ip: UrIp::default(),
            };
            match atype {
                1 => {
                    let mut a = [0u8; 4];
                    m.copy_to(p, &mut a);
                    ext.set_name(&self.owner);
                    ext.ip = UrIp::from_v4(a.into());
                    found.push(ext);
                }
                28 => {
                    let mut a = [0u8; 16];
                    m.copy_to(p, &mut a);
                    ext.set_name(&self.owner);
                    ext.ip = UrIp(a);
                    found.push(ext);
                }
                12 => {
                    self.target.clear();
                    if let Err(e) = m.name(p, &mut self.target) {
                        result = Err(e);
                        break;
                    }
                    ext.set_name(&self.target);
                    if let Some(ip) = ptr_address(&self.owner) {
                        ext.ip = ip;
                        found.push(ext);
                    }
                }
                _ => {}
            }
            p += rdlen;
        }
        for e in found {
            add(e);
        }
        result
    }
}

/// The address a reverse name spells (ipfixprobe's rules and quirk).
pub fn ptr_address(name: &[u8]) -> Option<UrIp> {
    let name = name.strip_suffix(b".").unwrap_or(name);
    let lower: Vec<u8> = name.iter().map(|b| b.to_ascii_lowercase()).collect();
    if let Some(body) = lower.strip_suffix(b".in-addr.arpa") {
        let mut ip = [0u8; 4];
        let mut cnt = 0usize;
        for part in body.split(|&b| b == b'.') {
            let v = c_uint(part, 0)?;
            if v > 255 || cnt > 3 {
                return None;
            }
            ip[3 - cnt] = v as u8;
            cnt += 1;
        }
        return (cnt == 4).then(|| UrIp::from_v4(ip.into()));
    }
    if let Some(body) = lower.strip_suffix(b".ip6.arpa") {
        let mut nums = [0u8; 32];
        let mut cnt = 0usize;
        for part in body.split(|&b| b == b'.') {
            if cnt > 31 {
                return None;
            }
            let v = c_uint(part, 16)?;
            if v > 15 || part.trim_ascii().first() == Some(&b'-') {
                return None;
            }
            nums[31 - cnt] = v as u8;
            cnt += 1;
        }
        if cnt != 32 {
            return None;
        }
        let mut ip = [0u8; 16];
        for (b, n) in ip.iter_mut().zip(nums) {
            *b = (n << 4) | n;
        }
        return Some(UrIp(ip));
    }
    None
}

/// `strtoull` on a whole (trimmed) text: optional sign, base 0 (prefix
/// decides) or 16 (optional `0x`); the text must be all digits. A minus
/// negates (wrapping), as C does.
pub(crate) fn c_uint(s: &[u8], base: u32) -> Option<u64> {
    let s = s.trim_ascii();
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let has_hex_prefix = s.len() > 2 && (s.starts_with(b"0x") || s.starts_with(b"0X"));
    let (radix, digits) = match base {
        16 if has_hex_prefix => (16, &s[2..]),
        16 => (16, s),
        _ if has_hex_prefix => (16, &s[2..]),
        _ if s.len() > 1 && s[0] == b'0' => (8, &s[1..]),
        _ => (10, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        let d = char::from(c).to_digit(radix)?;
        v = v.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

impl ProcessPlugin for PassiveDns {
    fn name(&self) -> &'static str {
        "passivedns"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::POST_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        self.packet(f, pkt)
    }
    fn post_update(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        self.packet(f, pkt)
    }
}

impl PassiveDns {
    fn packet(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if pkt.src_port != 53 {
            return Verdict::CONTINUE;
        }
        self.parse(pkt.payload(), pkt.protocol == 6, &mut |e| f.exts.add(e));
        Verdict::FLUSH
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(m: &[u8]) -> Vec<(u16, Vec<u8>, u32, UrIp)> {
        let mut out = Vec::new();
        PassiveDns::default().parse(m, false, &mut |e| {
            out.push((e.atype, e.name.clone(), e.rr_ttl, e.ip))
        });
        out
    }

    #[test]
    fn a_and_ptr_answers() {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 3, 0, 0, 0, 0];
        m.extend_from_slice(b"\x06kernel\x03org\x00\x00\x01\x00\x01");
        m.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x68\x00\x04\xc6\x91\x14\x8c");
        m.extend_from_slice(b"\xc0\x0c\x00\x10\x00\x01\x00\x00\x01\x68\x00\x01\x00");
        m.extend_from_slice(b"\x014\x013\x012\x011\x07IN-ADDR\x04arpa\x00");
        m.extend_from_slice(b"\x00\x0c\x00\x01\x00\x00\x00\x05\x00\x02\xc0\x0c");
        let a = answers(&m);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].0, 1);
        assert_eq!(a[0].1, b"kernel.org");
        assert_eq!(a[0].2, 360);
        assert_eq!(a[0].3, UrIp::parse("198.145.20.140").unwrap_or_default());
        assert_eq!(a[1].0, 12);
        assert_eq!(a[1].1, b"kernel.org");
        assert_eq!(a[1].3, UrIp::parse("1.2.3.4").unwrap_or_default());
        for n in 0..m.len() {
            let _ = answers(&m[..n]);
        }
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            ptr_address(b"230.144.113.195.in-addr.arpa."),
            UrIp::parse("195.113.144.230")
        );
        assert_eq!(ptr_address(b"1.2.3.in-addr.arpa"), None);
        assert_eq!(ptr_address(b"1.2.3.4.5.in-addr.arpa"), None);
        assert_eq!(ptr_address(b"x.2.3.4.in-addr.arpa"), None);
        let v6 = b"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
        // The nibble quirk: 2001:db8:: becomes 22:00:00:11:dd:bb:88:00...
        let ip = ptr_address(v6).unwrap_or_default();
        assert_eq!(
            &ip.0[..8],
            &[0x22, 0x00, 0x00, 0x11, 0x00, 0xdd, 0xbb, 0x88]
        );
        assert_eq!(ptr_address(b"1.ip6.arpa"), None);
        assert_eq!(ptr_address(b"example.com"), None);
    }
}
