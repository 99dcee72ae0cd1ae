//! `http`: the first HTTP request and the first response of a flow.
//!
//! Exports (ipfixprobe 5.7's http plugin): `HTTP_REQUEST_METHOD` (≤ 15
//! bytes), `_HOST` (≤ 63), `_URL` (≤ 127), `_AGENT` (≤ 127), `_REFERER`
//! (≤ 127), `HTTP_RESPONSE_STATUS_CODE`, `_CONTENT_TYPE` (≤ 31), `_SERVER`
//! (≤ 127) and `_SET_COOKIE_NAMES` (the cookie names of the `Set-Cookie`
//! headers joined by `;`, ≤ 511).
//!
//! ipfixprobe's rules, followed here:
//! * a payload is a request when it starts with one of the nine known
//!   method prefixes (`GET `, `POST`, `PUT `, `HEAD`, `DELE`, `TRAC`,
//!   `OPTI`, `CONN`, `PATC`) or has the shape `TOKEN URI HTTP…` with a
//!   space in its first 32 bytes; a response starts with `HTTP`;
//! * header names are matched case-sensitively; a value starts two bytes
//!   after the `:` and loses its trailing CR; the header section ends at an
//!   empty line; a header line without a CRLF or a `:` ends parsing with a
//!   failure (what was already stored stays);
//! * a second request (or response) in a flow that already has one flushes
//!   the flow and starts it over from the packet (flush with reinsert);
//! * a payload that fails to parse as the flow's first message leaves its
//!   partial fields in a spare record that the next parse (of any flow)
//!   starts from — ipfixprobe reuses its preallocated extension this way,
//!   and the outputs show it;
//! * values are C strings: a NUL byte ends them; a CRLF search ends at a NUL.
//!
//! Deliberate differences: ipfixprobe may read a few bytes past the payload
//! in its `HTTP` checks and crashes on a `:` placed after the value's end;
//! here reads stay inside the payload (such bytes count as a mismatch) and a
//! negative-length value is empty.

use super::text_common::{atoi, find_byte, strnstr, CBuf};
use super::{
    parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie,
    ProcessPlugin, Verdict, PEN_CESNET, PEN_FLOWMON,
};
use crate::parser::Packet;

/// The plugin; one spare record is kept between flows (see the top).
pub struct Http {
    spare: Option<Box<HttpExt>>,
}

/// One flow's HTTP fields (the C arrays' sizes).
#[derive(Clone, Debug, Default)]
pub struct HttpExt {
    req: bool,
    resp: bool,
    method: CBuf<16>,
    host: CBuf<64>,
    uri: CBuf<128>,
    user_agent: CBuf<128>,
    referer: CBuf<128>,
    code: u16,
    content_type: CBuf<32>,
    server: CBuf<128>,
    set_cookie: CBuf<512>,
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new(
        "HTTP_REQUEST_METHOD",
        ty::STRING,
        Some(Ie {
            pen: PEN_CESNET,
            id: 200,
        }),
    ),
    FieldDef::new(
        "HTTP_REQUEST_HOST",
        ty::STRING,
        Some(Ie {
            pen: PEN_FLOWMON,
            id: 1,
        }),
    ),
    FieldDef::new(
        "HTTP_REQUEST_URL",
        ty::STRING,
        Some(Ie {
            pen: PEN_FLOWMON,
            id: 2,
        }),
    ),
    FieldDef::new(
        "HTTP_REQUEST_AGENT",
        ty::STRING,
        Some(Ie {
            pen: PEN_FLOWMON,
            id: 20,
        }),
    ),
    FieldDef::new(
        "HTTP_REQUEST_REFERER",
        ty::STRING,
        Some(Ie {
            pen: PEN_FLOWMON,
            id: 3,
        }),
    ),
    FieldDef::new(
        "HTTP_RESPONSE_STATUS_CODE",
        ty::U16,
        Some(Ie {
            pen: PEN_FLOWMON,
            id: 12,
        }),
    ),
    FieldDef::new(
        "HTTP_RESPONSE_CONTENT_TYPE",
        ty::STRING,
        Some(Ie {
            pen: PEN_FLOWMON,
            id: 10,
        }),
    ),
    FieldDef::new(
        "HTTP_RESPONSE_SERVER",
        ty::STRING,
        Some(Ie {
            pen: PEN_CESNET,
            id: 201,
        }),
    ),
    FieldDef::new(
        "HTTP_RESPONSE_SET_COOKIE_NAMES",
        ty::STRING,
        Some(Ie {
            pen: PEN_CESNET,
            id: 202,
        }),
    ),
];

impl Extension for HttpExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::Str(self.method.as_bytes()));
        out.put(1, FieldValue::Str(self.host.as_bytes()));
        out.put(2, FieldValue::Str(self.uri.as_bytes()));
        out.put(3, FieldValue::Str(self.user_agent.as_bytes()));
        out.put(4, FieldValue::Str(self.referer.as_bytes()));
        out.put(5, FieldValue::U16(self.code));
        out.put(6, FieldValue::Str(self.content_type.as_bytes()));
        out.put(7, FieldValue::Str(self.server.as_bytes()));
        out.put(8, FieldValue::Str(self.set_cookie.as_bytes()));
    }
}

/// What parsing one message into a record came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parse {
    Done,
    Failed,
    /// The record already holds a message of this kind: flush the flow.
    Again,
}

/// The four bytes at `at`, if inside `p`, equal `HTTP`.
fn http_at(p: &[u8], at: usize) -> bool {
    p.get(at..at.saturating_add(4)) == Some(b"HTTP")
}

/// A request by its method prefix, or by the `TOKEN URI HTTP` shape.
pub fn is_request(p: &[u8]) -> bool {
    let Some(head) = p.get(..4) else {
        return false;
    };
    if matches!(
        head,
        b"GET " | b"POST" | b"PUT " | b"HEAD" | b"DELE" | b"TRAC" | b"OPTI" | b"CONN" | b"PATC"
    ) {
        return true;
    }
    let Some(m) = find_byte(p.get(..p.len().min(32)).unwrap_or(p), b' ') else {
        return false;
    };
    let after = p.get(m + 1..).unwrap_or(&[]);
    let Some(u) = find_byte(after, b' ').map(|u| u + m + 1) else {
        return false;
    };
    // ipfixprobe wants more than four bytes counted from the second space.
    if p.len() - u < 4 {
        return false;
    }
    http_at(p, u + 1)
}

pub fn is_response(p: &[u8]) -> bool {
    p.get(..4) == Some(b"HTTP")
}

/// One header line of the section starting at `begin`: (name end = the
/// `:` anywhere after `begin`, line end = index of the LF of its CRLF).
/// `Err(())` when the line has no CRLF, or no `:` follows.
enum Line {
    Header { colon: usize, lf: usize },
    Blank,
}

fn next_line(p: &[u8], begin: usize) -> Result<Line, ()> {
    let rest = p.get(begin..).ok_or(())?;
    let lf = strnstr(rest, b"\r\n").ok_or(())? + 1;
    if lf == 1 {
        return Ok(Line::Blank);
    }
    let colon = find_byte(rest, b':').ok_or(())?;
    Ok(Line::Header {
        colon: begin + colon,
        lf: begin + lf,
    })
}

/// The value of a header: two bytes after the `:` up to the LF (empty when
/// that range is empty or reversed).
fn value(p: &[u8], colon: usize, lf: usize) -> &[u8] {
    p.get(colon.saturating_add(2)..lf).unwrap_or(&[])
}

/// The header name `begin..colon` as ipfixprobe compares it (copied into a
/// 64-byte buffer: truncated, trailing CR/LF dropped).
fn name_is(p: &[u8], begin: usize, colon: usize, want: &[u8]) -> bool {
    let mut b = CBuf::<64>::default();
    b.copy_str(p.get(begin..colon).unwrap_or(&[]));
    b.as_bytes() == want
}

impl HttpExt {
    fn parse_request(&mut self, p: &[u8]) -> Parse {
        if p.is_empty() {
            return Parse::Failed;
        }
        let Some(sp1) = find_byte(p, b' ') else {
            return Parse::Failed;
        };
        let Some(sp2) = p
            .get(sp1 + 1..)
            .and_then(|r| find_byte(r, b' '))
            .map(|i| i + sp1 + 1)
        else {
            return Parse::Failed;
        };
        if !http_at(p, sp2 + 1) {
            return Parse::Failed;
        }
        if self.req {
            return Parse::Again;
        }
        let mut m = CBuf::<64>::default();
        m.copy_str(p.get(..sp1).unwrap_or(&[]));
        self.method.set(m.as_bytes());
        self.uri.copy_str(p.get(sp1 + 1..sp2).unwrap_or(&[]));
        let Some(crlf) = p.get(sp2..).and_then(|r| strnstr(r, b"\r\n")) else {
            return Parse::Failed;
        };
        let mut begin = sp2 + crlf + 2;
        self.host.clear();
        self.user_agent.clear();
        self.referer.clear();
        while begin < p.len() {
            match next_line(p, begin) {
                Err(()) => return Parse::Failed,
                Ok(Line::Blank) => break,
                Ok(Line::Header { colon, lf }) => {
                    let v = value(p, colon, lf);
                    if name_is(p, begin, colon, b"Host") {
                        self.host.copy_str(v);
                    } else if name_is(p, begin, colon, b"User-Agent") {
                        self.user_agent.copy_str(v);
                    } else if name_is(p, begin, colon, b"Referer") {
                        self.referer.copy_str(v);
                    }
                    begin = lf + 1;
                }
            }
        }
        self.req = true;
        Parse::Done
    }

    fn parse_response(&mut self, p: &[u8]) -> Parse {
        if !is_response(p) {
            return Parse::Failed;
        }
        let Some(sp1) = find_byte(p, b' ') else {
            return Parse::Failed;
        };
        let Some(sp2) = p
            .get(sp1 + 1..)
            .and_then(|r| find_byte(r, b' '))
            .map(|i| i + sp1 + 1)
        else {
            return Parse::Failed;
        };
        let mut c = CBuf::<64>::default();
        c.copy_str(p.get(sp1 + 1..sp2).unwrap_or(&[]));
        let code = atoi(c.as_bytes());
        if code <= 0 {
            return Parse::Failed;
        }
        if self.resp {
            return Parse::Again;
        }
        self.code = code as u16;
        let Some(crlf) = p.get(sp2..).and_then(|r| strnstr(r, b"\r\n")) else {
            return Parse::Failed;
        };
        let mut begin = sp2 + crlf + 2;
        self.content_type.clear();
        self.server.clear();
        self.set_cookie.clear();
        while begin < p.len() {
            match next_line(p, begin) {
                Err(()) => return Parse::Failed,
                Ok(Line::Blank) => break,
                Ok(Line::Header { colon, lf }) => {
                    if name_is(p, begin, colon, b"Content-Type") {
                        self.content_type.copy_str(value(p, colon, lf));
                    } else if name_is(p, begin, colon, b"Server") {
                        self.server.copy_str(value(p, colon, lf));
                    } else if name_is(p, begin, colon, b"Set-Cookie") {
                        let line = p.get(begin..lf).unwrap_or(&[]);
                        let Some(eq) = strnstr(line, b"=") else {
                            break;
                        };
                        let name = p.get(colon.saturating_add(2)..begin + eq).unwrap_or(&[]);
                        add_str(&mut self.set_cookie, name, b";");
                    }
                    begin = lf + 1;
                }
            }
        }
        self.resp = true;
        Parse::Done
    }
}

/// ipfixprobe's `add_str`: appends `delim` and `src` to the string in
/// `dst`, truncated to fit, then trims a trailing LF/CR — checking the bytes
/// at the length of `src` counted from the buffer's start (its quirk).
pub fn add_str<const N: usize>(dst: &mut CBuf<N>, src: &[u8], delim: &[u8]) {
    let ld = dst.len();
    let dl = delim.len();
    let mut len = src.len();
    let buf = dst.raw_mut();
    if ld > 0 {
        if ld + dl + 1 >= N {
            return;
        }
        if len + ld + dl >= N {
            len = N - ld - dl - 1;
        }
        if let Some(d) = buf.get_mut(ld..ld + dl) {
            d.copy_from_slice(delim);
        }
        if let Some(c) = buf.get_mut(ld + dl) {
            *c = 0;
        }
    } else if len >= N {
        len = N.saturating_sub(1);
    }
    let start = if ld > 0 { ld + dl } else { 0 };
    let s = super::text_common::cstr(src.get(..len).unwrap_or(&[]));
    if let Some(d) = buf.get_mut(start..start + s.len()) {
        d.copy_from_slice(s);
    }
    if let Some(c) = buf.get_mut(start + s.len()) {
        *c = 0;
    }
    if len >= 1 && buf.get(len - 1) == Some(&b'\n') {
        len -= 1;
    }
    if len >= 1 && buf.get(len - 1) == Some(&b'\r') {
        len -= 1;
    }
    if let Some(c) = buf.get_mut(start + len) {
        *c = 0;
    }
}

impl Http {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(Http { spare: None }))
    }

    /// Parses the flow's first message into the spare record; adds it to
    /// the flow when it parsed.
    fn add_new(&mut self, f: FlowCtx<'_>, p: &[u8], request: bool) {
        let mut rec = self.spare.take().unwrap_or_default();
        let r = if request {
            rec.parse_request(p)
        } else {
            rec.parse_response(p)
        };
        if r == Parse::Done {
            f.exts.add(*rec);
        } else {
            self.spare = Some(rec);
        }
    }
}

impl ProcessPlugin for Http {
    fn name(&self) -> &'static str {
        "http"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::PRE_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        let p = pkt.payload();
        if is_request(p) {
            self.add_new(f, p, true);
        } else if is_response(p) {
            self.add_new(f, p, false);
        }
        Verdict::CONTINUE
    }
    fn pre_update(&mut self, f: FlowCtx<'_>, pkt: &mut Packet) -> Verdict {
        let p = pkt.payload();
        let request = if is_request(p) {
            true
        } else if is_response(p) {
            false
        } else {
            return Verdict::CONTINUE;
        };
        let Some(ext) = f.exts.get_mut::<HttpExt>() else {
            self.add_new(f, p, request);
            return Verdict::CONTINUE;
        };
        let r = if request {
            ext.parse_request(p)
        } else {
            ext.parse_response(p)
        };
        if r == Parse::Again {
            Verdict::FLUSH_WITH_REINSERT
        } else {
            Verdict::CONTINUE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\n\
Referer: http://a/\r\nAccept: */*\r\n\r\n";
    const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\n\
Set-Cookie: a=1; path=/\r\nSet-Cookie: sess=2\r\n\r\nbody";

    #[test]
    fn request_and_response_fields() {
        let mut e = HttpExt::default();
        assert_eq!(e.parse_request(REQ), Parse::Done);
        assert_eq!(e.method.as_bytes(), b"GET");
        assert_eq!(e.uri.as_bytes(), b"/index.html");
        assert_eq!(e.host.as_bytes(), b"example.com");
        assert_eq!(e.user_agent.as_bytes(), b"curl/8.0");
        assert_eq!(e.referer.as_bytes(), b"http://a/");
        assert_eq!(e.parse_response(RESP), Parse::Done);
        assert_eq!(e.code, 200);
        assert_eq!(e.server.as_bytes(), b"nginx");
        assert_eq!(e.content_type.as_bytes(), b"text/html");
        assert_eq!(e.set_cookie.as_bytes(), b"a;sess");
        assert_eq!(e.parse_request(REQ), Parse::Again);
        assert_eq!(e.parse_response(RESP), Parse::Again);
    }

    #[test]
    fn detection() {
        assert!(is_request(b"GET / HTTP/1.0"));
        assert!(is_request(b"FOO /x HTTP/1.1\r\n"));
        assert!(!is_request(b"FOO /x HTTX/1.1\r\n"));
        assert!(!is_request(b"GE"));
        assert!(is_response(b"HTTP/1.1 404 Not Found"));
        assert!(!is_response(b"HTT"));
    }

    #[test]
    fn truncation_to_c_sizes() {
        let long = vec![b'a'; 300];
        let mut req = b"VERYLONGMETHODNAME123 /".to_vec();
        req.extend_from_slice(&long);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        req.extend_from_slice(&long);
        req.extend_from_slice(b"\r\n\r\n");
        let mut e = HttpExt::default();
        assert_eq!(e.parse_request(&req), Parse::Done);
        assert_eq!(e.method.as_bytes(), b"VERYLONGMETHODN");
        assert_eq!(e.uri.len(), 127);
        assert_eq!(e.host.len(), 63);
    }

    #[test]
    fn truncated_payloads_fail_without_panic() {
        for n in 0..REQ.len() {
            let mut e = HttpExt::default();
            let _ = e.parse_request(&REQ[..n]);
            let _ = is_request(&REQ[..n]);
        }
        for n in 0..RESP.len() {
            let mut e = HttpExt::default();
            let _ = e.parse_response(&RESP[..n]);
        }
        let mut e = HttpExt::default();
        assert_eq!(e.parse_request(b"GET / HTTP/1.1\r\nHost: x"), Parse::Failed);
        assert_eq!(e.method.as_bytes(), b"GET");
        assert_eq!(e.parse_response(b"HTTP/1.1 abc x\r\n"), Parse::Failed);
        let mut e = HttpExt::default();
        assert_eq!(
            e.parse_request(b"GET / HTTP/1.1\r\nHost\r\n: x\r\n\r\n"),
            Parse::Done
        );
        assert_eq!(e.host.as_bytes(), b"");
    }

    #[test]
    fn set_cookie_names_fill_up() {
        let mut b = CBuf::<8>::default();
        add_str(&mut b, b"abc", b";");
        add_str(&mut b, b"defgh", b";");
        assert_eq!(b.as_bytes(), b"abc;def");
        add_str(&mut b, b"x", b";");
        assert_eq!(b.as_bytes(), b"abc;def");
    }
}
