//! `sip`: one flow record per SIP message.
//!
//! Exports (ipfixprobe 5.7's sip plugin): `SIP_MSG_TYPE` (1 INVITE, 2 ACK,
//! 3 CANCEL, 4 BYE, 5 REGISTER, 6 OPTIONS, 7 PUBLISH, 8 NOTIFY, 9 INFO,
//! 10 SUBSCRIBE, 99 a reply), `SIP_STATUS_CODE` (replies; 999 when the
//! status line has no second word), and ≤ 127 bytes each: `SIP_CSEQ`,
//! `SIP_CALLING_PARTY` (From URI), `SIP_CALLED_PARTY` (To URI),
//! `SIP_CALL_ID`, `SIP_USER_AGENT`, `SIP_REQUEST_URI` (requests) and
//! `SIP_VIA` (all Via values joined by `;`).
//!
//! ipfixprobe's rules, followed here:
//! * a payload of at least 64 bytes is SIP by its first four bytes (`INVI`,
//!   `REGI`, `NOTI` unless `NOTIFY * HTTP`, `OPTI` only as `OPTIONS sip:`,
//!   `CANC`, `INFO`, `ACK `, `BYE `, `PUBL`, `SUBS`, `SIP/`);
//! * every SIP packet after a flow's first flushes the flow and starts it
//!   over from the packet (flush with reinsert), so each message is a flow;
//! * lines split at LF; a header is recognised by its first 2–4 bytes with
//!   ASCII letters upper-cased and `:` seen as 0x1a (`FROM`, `F:`, `TO:`,
//!   `T:`, `VIA:`, `V:`, `CALL`, `I:`, `USER`, `CSEQ`) — so `Call-Info`
//!   counts as `Call-ID` and any `User…` header as the user agent; a value
//!   skips the name's length (5, 8, 11 …), then non-alphanumerics from both
//!   ends, and ends at the first `;`; a URI starts at `sip:`/`sips:` and
//!   ends at `>`, else at `;`, else after the last letter; line processing
//!   stops at a line of at most one byte;
//! * the tokenizer is ipfixprobe's word-at-a-time one, including how it
//!   behaves on an empty input, which depends on the payload's address
//!   modulo 8 (taken as the payload's offset in the frame, libpcap keeping
//!   each frame 8-aligned).
//!
//! Deliberate differences: reads past the payload, which ipfixprobe does in
//! a few corner cases, see the payload's end instead; a Via list that has
//! filled its buffer takes no more values (ipfixprobe writes past it).

use super::text_common::{atoi, CBuf};
use super::{
    parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie,
    ProcessPlugin, Verdict, PEN_CESNET,
};
use crate::parser::Packet;

pub struct Sip;

#[derive(Clone, Debug, Default)]
pub struct SipExt {
    msg_type: u16,
    status_code: u16,
    call_id: CBuf<128>,
    calling_party: CBuf<128>,
    called_party: CBuf<128>,
    via: CBuf<128>,
    user_agent: CBuf<128>,
    cseq: CBuf<128>,
    request_uri: CBuf<128>,
}

const fn ie(id: u16) -> Option<Ie> {
    Some(Ie {
        pen: PEN_CESNET,
        id,
    })
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new("SIP_MSG_TYPE", ty::U16, ie(100)),
    FieldDef::new("SIP_STATUS_CODE", ty::U16, ie(101)),
    FieldDef::new("SIP_CSEQ", ty::STRING, ie(108)),
    FieldDef::new("SIP_CALLING_PARTY", ty::STRING, ie(103)),
    FieldDef::new("SIP_CALLED_PARTY", ty::STRING, ie(104)),
    FieldDef::new("SIP_CALL_ID", ty::STRING, ie(102)),
    FieldDef::new("SIP_USER_AGENT", ty::STRING, ie(106)),
    FieldDef::new("SIP_REQUEST_URI", ty::STRING, ie(107)),
    FieldDef::new("SIP_VIA", ty::STRING, ie(105)),
];

impl Extension for SipExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::U16(self.msg_type));
        out.put(1, FieldValue::U16(self.status_code));
        out.put(2, FieldValue::Str(self.cseq.as_bytes()));
        out.put(3, FieldValue::Str(self.calling_party.as_bytes()));
        out.put(4, FieldValue::Str(self.called_party.as_bytes()));
        out.put(5, FieldValue::Str(self.call_id.as_bytes()));
        out.put(6, FieldValue::Str(self.user_agent.as_bytes()));
        out.put(7, FieldValue::Str(self.request_uri.as_bytes()));
        out.put(8, FieldValue::Str(self.via.as_bytes()));
    }
}

const MIN_MSG_LEN: usize = 64;
pub const MSG_STATUS: u16 = 99;

/// Four bytes at `i` as a little-endian word (bytes past the payload 0).
fn word(p: &[u8], i: usize) -> u32 {
    let b = |k: usize| p.get(i.wrapping_add(k)).copied().unwrap_or(0);
    u32::from_le_bytes([b(0), b(1), b(2), b(3)])
}

const fn le(b: [u8; 4]) -> u32 {
    u32::from_le_bytes(b)
}

/// The message type by the first bytes (0 = not SIP).
pub fn msg_type(p: &[u8]) -> u16 {
    if p.len() < MIN_MSG_LEN {
        return 0;
    }
    match p.get(..4) {
        Some(b"REGI") => 5,
        Some(b"INVI") => 1,
        Some(b"OPTI") if p.get(4..12) == Some(b"ONS sip:") => 6,
        Some(b"NOTI") if p.get(4..12) == Some(b"FY * HTT") => 0,
        Some(b"NOTI") => 8,
        Some(b"CANC") => 3,
        Some(b"INFO") => 9,
        Some(b"SIP/") => MSG_STATUS,
        Some(b"ACK ") => 2,
        Some(b"BYE ") => 4,
        Some(b"SUBS") => 10,
        Some(b"PUBL") => 7,
        _ => 0,
    }
}

/// ipfixprobe's SIP tokenizer state: where the next token starts, the
/// separator and the bytes left (a C `unsigned int`).
struct Tok<'a> {
    p: &'a [u8],
    /// The payload's address modulo 8.
    align: usize,
    save: Option<usize>,
    sep: u8,
    left: u32,
}

impl<'a> Tok<'a> {
    fn new(p: &'a [u8], align: usize) -> Tok<'a> {
        Tok {
            p,
            align,
            save: None,
            sep: 0,
            left: 0,
        }
    }

    /// A first token at `at` of at most `len` bytes: (start, length).
    fn first(&mut self, at: usize, len: u32, sep: u8) -> (usize, u32) {
        self.save = None;
        self.sep = sep;
        self.left = len;
        self.run(at)
    }

    /// The next token (the separator of the first call).
    fn next(&mut self) -> Option<(usize, u32)> {
        match self.save {
            Some(s) if self.left > 0 => Some(self.run(s)),
            _ => None,
        }
    }

    fn run(&mut self, start: usize) -> (usize, u32) {
        let mut i = start;
        let mut len: u32 = 0;
        // Byte by byte up to an 8-byte boundary.
        while !self.align.wrapping_add(i).is_multiple_of(8) {
            let Some(&c) = self.p.get(i) else {
                self.save = None;
                return (start, len);
            };
            if c == self.sep {
                self.save = Some(i + 1);
                self.left = self.left.saturating_sub(1);
                return (start, len);
            }
            len = len.wrapping_add(1);
            self.left = self.left.wrapping_sub(1);
            if self.left == 0 {
                self.save = None;
                return (start, len);
            }
            i += 1;
        }
        // Then eight bytes at a time.
        loop {
            if self.left < 8 {
                for k in 0..self.left {
                    let Some(&c) = self.p.get(i + k as usize) else {
                        self.save = None;
                        return (start, len.wrapping_add(k));
                    };
                    if c == self.sep {
                        if self.left == k + 1 {
                            self.save = None;
                        } else {
                            self.save = Some(i + k as usize + 1);
                            self.left -= k + 1;
                        }
                        return (start, len.wrapping_add(k));
                    }
                }
                self.save = None;
                return (start, len.wrapping_add(self.left));
            }
            for k in 0..8u32 {
                let Some(&c) = self.p.get(i + k as usize) else {
                    self.save = None;
                    return (start, len.wrapping_add(k));
                };
                if c == self.sep {
                    self.save = Some(i + k as usize + 1);
                    self.left -= k + 1;
                    return (start, len.wrapping_add(k));
                }
            }
            len = len.wrapping_add(8);
            self.left -= 8;
            i += 8;
        }
    }
}

fn alnum_at(p: &[u8], i: usize) -> bool {
    p.get(i).is_some_and(u8::is_ascii_alphanumeric)
}

/// Writes `src` cut to `room - 1` bytes and a NUL at `buf[at..]`.
fn put(buf: &mut [u8], at: usize, room: usize, src: &[u8]) {
    let n = src.len().min(room.saturating_sub(1));
    if let (Some(d), Some(s)) = (buf.get_mut(at..at + n), src.get(..n)) {
        d.copy_from_slice(s);
    }
    if let Some(c) = buf.get_mut(at + n) {
        *c = 0;
    }
}

/// The bytes `start..start+len` that exist.
fn span(p: &[u8], start: usize, len: u32) -> &[u8] {
    let end = start.saturating_add(len as usize).min(p.len());
    p.get(start..end).unwrap_or(&[])
}

/// ipfixprobe's field value (see the top): what to copy.
fn field_value(p: &[u8], align: usize, line: usize, linelen: i64, skip: usize) -> &[u8] {
    let mut line = line + skip;
    let mut linelen = linelen - skip as i64;
    while !alnum_at(p, line) && linelen > 0 {
        line += 1;
        linelen -= 1;
    }
    while linelen > 0 && !alnum_at(p, line + linelen as usize - 1) {
        linelen -= 1;
    }
    let (s, n) = Tok::new(p, align).first(line, linelen as u32, b';');
    span(p, s, n)
}

/// ipfixprobe's URI value (see the top): what to copy, None when no URI.
fn field_uri(p: &[u8], align: usize, line: usize, linelen: i64, skip: usize) -> Option<&[u8]> {
    let line = line + skip;
    let linelen = linelen - skip as i64;
    const URI: u32 = le([b'S', b'I', b'P', 0x1a]);
    const URIS: u32 = le([b'I', b'P', b'S', 0x1a]);
    let mut tok = Tok::new(p, align);
    let mut cur = Some(tok.first(line, linelen as u32, b':'));
    let mut found = None;
    while let Some((s, n)) = cur.filter(|&(_, n)| n > 0) {
        let colon = s + n as usize;
        let rest = (linelen as u32).wrapping_sub(n);
        if let Some(at) = colon.checked_sub(3) {
            let w = word(p, at) & 0xdfdf_dfdf;
            if w == URI {
                found = Some((at, rest.wrapping_add(3)));
                break;
            }
            if w == URIS {
                if let Some(at4) = colon.checked_sub(4) {
                    found = Some((at4, rest.wrapping_add(4)));
                    break;
                }
            }
        }
        cur = tok.next();
    }
    let (start, mut len) = found?;
    let (_, n) = tok.first(start, len, b'>');
    if n < len {
        len = n;
    } else {
        let (_, n) = tok.first(start, len, b';');
        if n < len {
            len = n;
        } else {
            while len > 0
                && !p
                    .get(start + len as usize - 1)
                    .is_some_and(u8::is_ascii_alphabetic)
            {
                len -= 1;
            }
        }
    }
    Some(span(p, start, len))
}

impl SipExt {
    fn parse(&mut self, p: &[u8], align: usize) {
        let mut lines = Tok::new(p, align);
        let (l0, l0len) = lines.first(0, p.len() as u32, b'\n');
        let mut first = Tok::new(p, align);
        first.first(l0, l0len, b' ');
        let second = first.next();
        if self.msg_type <= 10 {
            match second {
                Some((s, n)) => {
                    let v = field_value(p, align, s, i64::from(n), 0);
                    put(self.request_uri.raw_mut(), 0, 128, v);
                }
                None => self.request_uri.clear(),
            }
        } else if self.msg_type == MSG_STATUS {
            self.status_code = match second {
                Some((s, _)) => atoi(p.get(s..).unwrap_or(&[])) as u16,
                None => 999,
            };
        }
        const FROM4: u32 = le(*b"FROM");
        const FROM2: u32 = le([b'F', 0x1a, 0, 0]);
        const TO3: u32 = le([b'T', b'O', 0x1a, 0]);
        const TO2: u32 = le([b'T', 0x1a, 0, 0]);
        const VIA4: u32 = le([b'V', b'I', b'A', 0x1a]);
        const VIA2: u32 = le([b'V', 0x1a, 0, 0]);
        const CALLID4: u32 = le(*b"CALL");
        const CALLID2: u32 = le([b'I', 0x1a, 0, 0]);
        const CSEQ4: u32 = le(*b"CSEQ");
        const USERAGENT4: u32 = le(*b"USER");
        while let Some((s, n)) = lines.next().filter(|&(_, n)| n > 1) {
            let w = word(p, s);
            let (f4, f3, f2) = (w & 0xdfdf_dfdf, w & 0x00df_dfdf, w & 0x0000_dfdf);
            let len = i64::from(n as i32);
            let uri = |skip, dst: &mut CBuf<128>| {
                if let Some(v) = field_uri(p, align, s, len, skip) {
                    put(dst.raw_mut(), 0, 128, v);
                }
            };
            if f4 == FROM4 {
                uri(5, &mut self.calling_party);
            } else if f2 == FROM2 {
                uri(2, &mut self.calling_party);
            } else if f3 == TO3 {
                uri(3, &mut self.called_party);
            } else if f2 == TO2 {
                uri(2, &mut self.called_party);
            } else if f4 == VIA4 || f2 == VIA2 {
                let skip = if f4 == VIA4 { 4 } else { 2 };
                let v = field_value(p, align, s, len, skip);
                if self.via.is_empty() {
                    put(self.via.raw_mut(), 0, 128, v);
                } else {
                    let at = self.via.len();
                    if at + 1 < 128 {
                        let buf = self.via.raw_mut();
                        if let Some(c) = buf.get_mut(at) {
                            *c = b';';
                        }
                        put(buf, at + 1, 128 - (at + 1), v);
                    }
                }
            } else if f4 == CALLID4 {
                let v = field_value(p, align, s, len, 8);
                put(self.call_id.raw_mut(), 0, 128, v);
            } else if f2 == CALLID2 {
                let v = field_value(p, align, s, len, 2);
                put(self.call_id.raw_mut(), 0, 128, v);
            } else if f4 == USERAGENT4 {
                let v = field_value(p, align, s, len, 11);
                put(self.user_agent.raw_mut(), 0, 128, v);
            } else if f4 == CSEQ4 {
                let v = field_value(p, align, s, len, 5);
                put(self.cseq.raw_mut(), 0, 128, v);
            }
        }
    }
}

impl Sip {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(Sip))
    }
}

impl ProcessPlugin for Sip {
    fn name(&self) -> &'static str {
        "sip"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::PRE_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        let p = pkt.payload();
        let t = msg_type(p);
        if t != 0 {
            let mut e = SipExt {
                msg_type: t,
                ..SipExt::default()
            };
            e.parse(p, pkt.payload_off as usize % 8);
            f.exts.add(e);
        }
        Verdict::CONTINUE
    }
    fn pre_update(&mut self, _f: FlowCtx<'_>, pkt: &mut Packet) -> Verdict {
        if msg_type(pkt.payload()) != 0 {
            Verdict::FLUSH_WITH_REINSERT
        } else {
            Verdict::CONTINUE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:100@10.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-1\r\n\
Via: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bK-2\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=abc\r\n\
To: <sip:100@10.0.0.1>\r\n\
Call-ID: 12345@host\r\n\
CSeq: 1 INVITE\r\n\
User-Agent: softphone 1.0\r\n\
Content-Length: 0\r\n\r\n";

    fn parsed(p: &[u8], align: usize) -> SipExt {
        let mut e = SipExt {
            msg_type: msg_type(p),
            ..SipExt::default()
        };
        e.parse(p, align);
        e
    }

    #[test]
    fn invite_fields_at_any_alignment() {
        for align in 0..8 {
            let e = parsed(INVITE, align);
            assert_eq!(e.msg_type, 1);
            assert_eq!(e.request_uri.as_bytes(), b"sip:100@10.0.0.1");
            assert_eq!(
                e.via.as_bytes(),
                b"SIP/2.0/UDP 10.0.0.2:5060;SIP/2.0/UDP 10.0.0.3:5060"
            );
            assert_eq!(e.calling_party.as_bytes(), b"sip:alice@example.com");
            assert_eq!(e.called_party.as_bytes(), b"sip:100@10.0.0.1");
            assert_eq!(e.call_id.as_bytes(), b"12345@host");
            assert_eq!(e.cseq.as_bytes(), b"1 INVITE");
            assert_eq!(e.user_agent.as_bytes(), b"softphone 1.0");
        }
    }

    #[test]
    fn reply_and_detection() {
        let mut r = b"SIP/2.0 180 Ringing\r\nf: sips:bob@b;tag=1\r\ni: x\r\n".to_vec();
        r.resize(80, b' ');
        let e = parsed(&r, 2);
        assert_eq!((e.msg_type, e.status_code), (99, 180));
        assert_eq!(e.calling_party.as_bytes(), b"sips:bob@b");
        assert_eq!(e.call_id.as_bytes(), b"x");
        let mut n = b"NOTIFY * HTTP/1.1\r\n".to_vec();
        n.resize(80, b'x');
        assert_eq!(msg_type(&n), 0);
        let mut o = b"OPTIONS sip:a SIP/2.0\r\n".to_vec();
        o.resize(80, b'x');
        assert_eq!(msg_type(&o), 6);
        o[8] = b'x';
        assert_eq!(msg_type(&o), 0);
        assert_eq!(msg_type(b"INVITE short"), 0);
    }

    #[test]
    fn tokenizer_matches_the_word_loop() {
        let p = b"abc;defghijklmnop;q";
        for align in 0..8 {
            let mut t = Tok::new(p, align);
            assert_eq!(t.first(0, p.len() as u32, b';'), (0, 3));
            assert_eq!(t.next(), Some((4, 13)));
            assert_eq!(t.next(), Some((18, 1)));
            assert_eq!(t.next(), None);
        }
        // An empty input: aligned, an empty token; else the scan runs on.
        assert_eq!(Tok::new(p, 0).first(0, 0, b';'), (0, 0));
        assert_eq!(Tok::new(p, 1).first(0, 0, b';'), (0, 3));
    }

    #[test]
    fn truncated_and_odd_payloads() {
        for n in 0..INVITE.len() {
            for align in [0, 3] {
                let _ = parsed(&INVITE[..n], align);
            }
        }
        let mut odd =
            b"SIP/2.0\r\nFrom:\r\nTo: sip\r\nVia:\r\nCall-ID:\r\nUser\r\nf:sip:\r\n".to_vec();
        odd.resize(70, 0);
        for align in 0..8 {
            let e = parsed(&odd, align);
            assert_eq!(e.status_code, 999);
        }
    }
}
