//! `ssdp`: SSDP NOTIFY and M-SEARCH messages sent to port 1900.
//!
//! Exports (ipfixprobe 5.7's ssdp plugin): `SSDP_LOCATION_PORT` (the port of
//! the last NOTIFY `Location` URL that had one), `SSDP_NT` and `SSDP_ST`
//! (the `urn:` values of NOTIFY `NT` and M-SEARCH `ST` headers, ≤ 510 bytes),
//! `SSDP_SERVER` (NOTIFY) and `SSDP_USER_AGENT` (M-SEARCH), ≤ 254 bytes;
//! each string field collects the distinct values of the flow, each
//! followed by `;`.
//!
//! ipfixprobe's rules, followed here:
//! * every flow whose first packet goes to port 1900 gets a record, even
//!   when nothing in it parses; later packets to port 1900 add to it;
//! * a payload starting with `N` is a NOTIFY, with `M` an M-SEARCH; header
//!   names are matched case-insensitively, directly followed by `:`, then
//!   white space (CR and LF included) is skipped; a value runs to the LF of
//!   the line's CRLF and keeps its CR (the logger does not print it);
//! * a value is skipped when it would not fit, or when it occurs anywhere in
//!   the collected text — ipfixprobe's substring test, which does not look
//!   at the last possible position;
//! * the location port: after the first `.` of the line (`]` for IPv6
//!   flows), the next `:` (searched as far as the line's length from the
//!   `.`, so possibly in a later line), then C's `strtol` with base 0 (so
//!   `0x…` is hex and a leading 0 octal), cut to 16 bits; 0 is ignored;
//! * parsing ends at a NUL byte.
//!
//! Deliberate differences: searches that would leave the payload in
//! ipfixprobe stop at its end; a packet to port 1900 in a flow without a
//! record (a reversed flow) is ignored where ipfixprobe would crash.

use super::text_common::{find_byte, CBuf};
use super::{
    parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie,
    ProcessPlugin, Verdict, PEN_CESNET,
};
use crate::parser::Packet;

pub struct Ssdp;

#[derive(Clone, Debug, Default)]
pub struct SsdpExt {
    port: u16,
    nt: CBuf<511>,
    st: CBuf<511>,
    server: CBuf<255>,
    user_agent: CBuf<255>,
}

const fn ie(id: u16) -> Option<Ie> {
    Some(Ie {
        pen: PEN_CESNET,
        id,
    })
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new("SSDP_LOCATION_PORT", ty::U16, ie(821)),
    FieldDef::new("SSDP_NT", ty::STRING, ie(824)),
    FieldDef::new("SSDP_SERVER", ty::STRING, ie(822)),
    FieldDef::new("SSDP_ST", ty::STRING, ie(825)),
    FieldDef::new("SSDP_USER_AGENT", ty::STRING, ie(823)),
];

impl Extension for SsdpExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::U16(self.port));
        out.put(1, FieldValue::Str(self.nt.as_bytes()));
        out.put(2, FieldValue::Str(self.server.as_bytes()));
        out.put(3, FieldValue::Str(self.st.as_bytes()));
        out.put(4, FieldValue::Str(self.user_agent.as_bytes()));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Header {
    Location,
    Nt,
    St,
    Server,
    UserAgent,
}

impl Header {
    fn name(self) -> &'static [u8] {
        match self {
            Header::Location => b"location",
            Header::Nt => b"nt",
            Header::St => b"st",
            Header::Server => b"server",
            Header::UserAgent => b"user-agent",
        }
    }
}

const NOTIFY: &[Header] = &[Header::Nt, Header::Location, Header::Server];
const SEARCH: &[Header] = &[Header::St, Header::UserAgent];

fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `name:` (any case) at `at`: the position after it and its white space.
fn header_val(p: &[u8], at: usize, name: &[u8]) -> Option<usize> {
    let n = p.get(at..at + name.len())?;
    if !n.eq_ignore_ascii_case(name) || p.get(at + name.len()) != Some(&b':') {
        return None;
    }
    let mut i = at + name.len() + 1;
    while p.get(i).is_some_and(|&c| is_c_space(c)) {
        i += 1;
    }
    Some(i)
}

/// ipfixprobe's `append_value` (see the top).
fn append_value<const N: usize>(dst: &mut CBuf<N>, value: &[u8]) {
    let cl = dst.len();
    let vl = value.len();
    if cl + vl + 1 >= N {
        return;
    }
    if cl >= vl {
        let cur = dst.as_bytes();
        for i in 0..cl - vl {
            if cur.get(i..i + vl) == Some(value) {
                return;
            }
        }
    }
    let buf = dst.raw_mut();
    let v = super::text_common::cstr(value);
    if let Some(d) = buf.get_mut(cl..cl + v.len()) {
        d.copy_from_slice(v);
    }
    let end = cl + v.len();
    if let Some(d) = buf.get_mut(end..end + 2) {
        d.copy_from_slice(b";\0");
    }
}

/// C's `strtol(s, &end, 0)`: the value, or None when nothing converts.
fn strtol0(s: &[u8]) -> Option<i64> {
    let mut i = 0;
    while s.get(i).is_some_and(|&c| is_c_space(c)) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let (base, start) = match (s.get(i), s.get(i + 1), s.get(i + 2)) {
        (Some(b'0'), Some(b'x' | b'X'), Some(c)) if c.is_ascii_hexdigit() => (16, i + 2),
        (Some(b'0'), _, _) => (8, i),
        _ => (10, i),
    };
    let mut v: i64 = 0;
    let mut any = false;
    let mut over = false;
    let mut j = start;
    while let Some(d) = s.get(j).and_then(|&c| char::from(c).to_digit(base)) {
        any = true;
        match v
            .checked_mul(i64::from(base))
            .and_then(|x| x.checked_add(i64::from(d)))
        {
            Some(x) => v = x,
            None => over = true,
        }
        j += 1;
    }
    if !any {
        return None;
    }
    Some(match (over, neg) {
        (true, false) => i64::MAX,
        (true, true) => i64::MIN,
        (false, true) => -v,
        (false, false) => v,
    })
}

/// The port of a `Location` value of `len` bytes at `at` (see the top).
fn location_port(p: &[u8], at: usize, len: usize, v6: bool) -> u16 {
    let mark = if v6 { b']' } else { b'.' };
    let line = p
        .get(at..at.saturating_add(len).min(p.len()))
        .unwrap_or(&[]);
    let Some(m) = find_byte(line, mark).map(|m| m + at) else {
        return 0;
    };
    let from = p.get(m..m.saturating_add(len).min(p.len())).unwrap_or(&[]);
    let Some(c) = find_byte(from, b':').map(|c| c + m) else {
        return 0;
    };
    strtol0(p.get(c + 1..).unwrap_or(&[])).map_or(0, |v| v as u16)
}

impl SsdpExt {
    fn parse(&mut self, p: &[u8], v6: bool) {
        let select = match p.first() {
            Some(b'N') => NOTIFY,
            Some(b'M') => SEARCH,
            _ => return,
        };
        let mut line = 0usize;
        for (i, &c) in p.iter().enumerate() {
            if c == 0 {
                break;
            }
            if c != b'\n' || i == 0 || p.get(i - 1) != Some(&b'\r') {
                continue;
            }
            for &h in select {
                let Some(v) = header_val(p, line, h.name()) else {
                    continue;
                };
                match h {
                    Header::St | Header::Nt => {
                        if let Some(v) = header_val(p, v, b"urn") {
                            if let Some(val) = p.get(v..i) {
                                if h == Header::St {
                                    append_value(&mut self.st, val);
                                } else {
                                    append_value(&mut self.nt, val);
                                }
                            }
                        }
                    }
                    Header::Location => {
                        // A value start past the LF: ipfixprobe's length
                        // wraps, so the search runs to the payload's end.
                        let len = i.checked_sub(v).unwrap_or(usize::MAX);
                        let port = location_port(p, v, len, v6);
                        if port > 0 {
                            self.port = port;
                        }
                    }
                    Header::UserAgent => {
                        if let Some(val) = p.get(v..i) {
                            append_value(&mut self.user_agent, val);
                        }
                    }
                    Header::Server => {
                        if let Some(val) = p.get(v..i) {
                            append_value(&mut self.server, val);
                        }
                    }
                }
                break;
            }
            line = i + 1;
        }
    }
}

impl Ssdp {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(Ssdp))
    }
}

impl ProcessPlugin for Ssdp {
    fn name(&self) -> &'static str {
        "ssdp"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::PRE_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if pkt.dst_port == 1900 {
            let mut e = SsdpExt::default();
            e.parse(pkt.payload(), f.flow.ip_version == 6);
            f.exts.add(e);
        }
        Verdict::CONTINUE
    }
    fn pre_update(&mut self, f: FlowCtx<'_>, pkt: &mut Packet) -> Verdict {
        if pkt.dst_port == 1900 {
            let v6 = f.flow.ip_version == 6;
            if let Some(e) = f.exts.get_mut::<SsdpExt>() {
                e.parse(pkt.payload(), v6);
            }
        }
        Verdict::CONTINUE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_and_search() {
        let mut e = SsdpExt::default();
        e.parse(
            b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\
LOCATION: http://192.168.1.1:49152/desc.xml\r\nNT: urn:schemas-upnp-org:device:X:1\r\n\
SERVER: Linux UPnP/1.0\r\n\r\n",
            false,
        );
        assert_eq!(e.port, 49152);
        assert_eq!(e.nt.as_bytes(), b"schemas-upnp-org:device:X:1\r;");
        assert_eq!(e.server.as_bytes(), b"Linux UPnP/1.0\r;");
        e.parse(
            b"M-SEARCH * HTTP/1.1\r\nST: urn:a:b\r\nUser-Agent: x\r\n\r\n",
            false,
        );
        e.parse(b"M-SEARCH * HTTP/1.1\r\nst: URN:a:b\r\n\r\n", false);
        assert_eq!(e.st.as_bytes(), b"a:b\r;");
        assert_eq!(e.user_agent.as_bytes(), b"x\r;");
    }

    #[test]
    fn ports_like_strtol() {
        assert_eq!(location_port(b"http://a.b:0x50/", 0, 16, false), 80);
        assert_eq!(location_port(b"http://a.b:010/", 0, 15, false), 8);
        assert_eq!(location_port(b"http://a.b/", 0, 11, false), 0);
        assert_eq!(location_port(b"http://[::1]:8080/", 0, 18, true), 8080);
        assert_eq!(location_port(b"http://a.b:-1", 0, 13, false), 65535);
    }

    #[test]
    fn append_skips_known_and_full() {
        let mut b = CBuf::<8>::default();
        append_value(&mut b, b"ab");
        append_value(&mut b, b"a");
        append_value(&mut b, b"cd");
        assert_eq!(b.as_bytes(), b"ab;cd;");
        append_value(&mut b, b"x");
        assert_eq!(b.as_bytes(), b"ab;cd;");
    }

    #[test]
    fn odd_payloads() {
        let msg = b"NOTIFY *\r\nNT:\r\nurn:x\r\nLOCATION:\r\n1.2:3\r\n\0SERVER: y\r\n";
        for n in 0..=msg.len() {
            let mut e = SsdpExt::default();
            e.parse(&msg[..n], false);
        }
        let mut e = SsdpExt::default();
        e.parse(msg, false);
        assert_eq!(e.nt.as_bytes(), b"");
        assert_eq!(e.port, 3);
        assert!(e.server.is_empty());
    }
}
