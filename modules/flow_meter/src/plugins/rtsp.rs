//! `rtsp`: the first RTSP request and the first response of a flow.
//!
//! Exports (ipfixprobe 5.7's rtsp plugin): `RTSP_REQUEST_METHOD` (≤ 9
//! bytes), `RTSP_REQUEST_AGENT` (≤ 127), `RTSP_REQUEST_URI` (≤ 127),
//! `RTSP_RESPONSE_STATUS_CODE`, `RTSP_RESPONSE_CONTENT_TYPE` (≤ 31) and
//! `RTSP_RESPONSE_SERVER` (≤ 127).
//!
//! ipfixprobe's rules, followed here (like `http`, with these changes):
//! * a request starts with one of 16 method prefixes (HTTP's nine and
//!   `DESC`, `SETU`, `PLAY`, `PAUS`, `TEAR`, `RECO`, `ANNO`) and its request
//!   line's third word starts with `RTSP`; a response starts with `RTSP`;
//! * lines end at a LF (a value loses one trailing LF and CR); the header
//!   section ends at a line of at most one byte;
//! * a second request or response flushes the flow and starts it over from
//!   the packet (flush with reinsert); a failed first parse leaves its
//!   fields in the spare record the next one starts from;
//! * only the user agent (requests) and the content type (responses) are
//!   emptied before the headers are read; the server is not.
//!
//! Deliberate difference: ipfixprobe may compare bytes past the payload
//! (`RTSP` after the URI); here such bytes count as a mismatch.

use super::text_common::{atoi, find_byte, CBuf};
use super::{
    parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie,
    ProcessPlugin, Verdict, PEN_CESNET,
};
use crate::parser::Packet;

pub struct Rtsp {
    spare: Option<Box<RtspExt>>,
}

#[derive(Clone, Debug, Default)]
pub struct RtspExt {
    req: bool,
    resp: bool,
    method: CBuf<10>,
    user_agent: CBuf<128>,
    uri: CBuf<128>,
    code: u16,
    content_type: CBuf<32>,
    server: CBuf<128>,
}

const fn ie(id: u16) -> Option<Ie> {
    Some(Ie {
        pen: PEN_CESNET,
        id,
    })
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new("RTSP_REQUEST_METHOD", ty::STRING, ie(1040)),
    FieldDef::new("RTSP_REQUEST_AGENT", ty::STRING, ie(1041)),
    FieldDef::new("RTSP_REQUEST_URI", ty::STRING, ie(1042)),
    FieldDef::new("RTSP_RESPONSE_STATUS_CODE", ty::U16, ie(1043)),
    FieldDef::new("RTSP_RESPONSE_SERVER", ty::STRING, ie(1045)),
    FieldDef::new("RTSP_RESPONSE_CONTENT_TYPE", ty::STRING, ie(1044)),
];

impl Extension for RtspExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::Str(self.method.as_bytes()));
        out.put(1, FieldValue::Str(self.user_agent.as_bytes()));
        out.put(2, FieldValue::Str(self.uri.as_bytes()));
        out.put(3, FieldValue::U16(self.code));
        out.put(4, FieldValue::Str(self.server.as_bytes()));
        out.put(5, FieldValue::Str(self.content_type.as_bytes()));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parse {
    Done,
    Failed,
    Again,
}

pub fn is_request(p: &[u8]) -> bool {
    matches!(
        p.get(..4),
        Some(
            b"GET "
                | b"POST"
                | b"PUT "
                | b"HEAD"
                | b"DELE"
                | b"TRAC"
                | b"OPTI"
                | b"CONN"
                | b"PATC"
                | b"DESC"
                | b"SETU"
                | b"PLAY"
                | b"PAUS"
                | b"TEAR"
                | b"RECO"
                | b"ANNO"
        )
    )
}

pub fn is_response(p: &[u8]) -> bool {
    p.get(..4) == Some(b"RTSP")
}

/// The first two spaces of the payload (the second after the first).
fn two_spaces(p: &[u8]) -> Option<(usize, usize)> {
    let a = find_byte(p, b' ')?;
    let b = find_byte(p.get(a + 1..)?, b' ')? + a + 1;
    Some((a, b))
}

fn name_is(p: &[u8], begin: usize, colon: usize, want: &[u8]) -> bool {
    let mut b = CBuf::<64>::default();
    b.copy_str(p.get(begin..colon).unwrap_or(&[]));
    b.as_bytes() == want
}

/// Walks the header lines from `begin`, calling `f(name start, colon, lf)`;
/// false when a line has no LF or no `:` follows it.
fn headers(p: &[u8], mut begin: usize, mut f: impl FnMut(usize, usize, usize)) -> bool {
    while begin < p.len() {
        let rest = p.get(begin..).unwrap_or(&[]);
        let lf = find_byte(rest, b'\n');
        let colon = find_byte(rest, b':');
        let (Some(lf), Some(colon)) = (lf, colon) else {
            if lf.is_some_and(|l| l <= 1) {
                break;
            }
            return false;
        };
        if lf <= 1 {
            break;
        }
        f(begin, begin + colon, begin + lf);
        begin += lf + 1;
    }
    true
}

fn value(p: &[u8], colon: usize, lf: usize) -> &[u8] {
    p.get(colon.saturating_add(2)..lf).unwrap_or(&[])
}

impl RtspExt {
    fn parse_request(&mut self, p: &[u8]) -> Parse {
        let Some((sp1, sp2)) = two_spaces(p) else {
            return Parse::Failed;
        };
        if p.get(sp2 + 1..sp2 + 5) != Some(b"RTSP") {
            return Parse::Failed;
        }
        if self.req {
            return Parse::Again;
        }
        let mut m = CBuf::<64>::default();
        m.copy_str(p.get(..sp1).unwrap_or(&[]));
        self.method.set(m.as_bytes());
        self.uri.copy_str(p.get(sp1 + 1..sp2).unwrap_or(&[]));
        let Some(lf) = p.get(sp2..).and_then(|r| find_byte(r, b'\n')) else {
            return Parse::Failed;
        };
        self.user_agent.clear();
        let ua = &mut self.user_agent;
        if !headers(p, sp2 + lf + 1, |b, c, l| {
            if name_is(p, b, c, b"User-Agent") {
                ua.copy_str(value(p, c, l));
            }
        }) {
            return Parse::Failed;
        }
        self.req = true;
        Parse::Done
    }

    fn parse_response(&mut self, p: &[u8]) -> Parse {
        if !is_response(p) {
            return Parse::Failed;
        }
        let Some((sp1, sp2)) = two_spaces(p) else {
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
        let Some(lf) = p.get(sp2..).and_then(|r| find_byte(r, b'\n')) else {
            return Parse::Failed;
        };
        self.content_type.clear();
        let (ct, server) = (&mut self.content_type, &mut self.server);
        if !headers(p, sp2 + lf + 1, |b, c, l| {
            if name_is(p, b, c, b"Content-Type") {
                ct.copy_str(value(p, c, l));
            } else if name_is(p, b, c, b"Server") {
                server.copy_str(value(p, c, l));
            }
        }) {
            return Parse::Failed;
        }
        self.resp = true;
        Parse::Done
    }
}

impl Rtsp {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(Rtsp { spare: None }))
    }

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

impl ProcessPlugin for Rtsp {
    fn name(&self) -> &'static str {
        "rtsp"
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
        let Some(ext) = f.exts.get_mut::<RtspExt>() else {
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

    const REQ: &[u8] = b"DESCRIBE rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: vlc\r\n\r\n";
    const RESP: &[u8] =
        b"RTSP/1.0 200 OK\r\nServer: srv\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n";

    #[test]
    fn fields() {
        let mut e = RtspExt::default();
        assert!(is_request(REQ) && is_response(RESP));
        assert_eq!(e.parse_request(REQ), Parse::Done);
        assert_eq!(e.parse_response(RESP), Parse::Done);
        assert_eq!(e.method.as_bytes(), b"DESCRIBE");
        assert_eq!(e.uri.as_bytes(), b"rtsp://h/x");
        assert_eq!(e.user_agent.as_bytes(), b"vlc");
        assert_eq!(e.code, 200);
        assert_eq!(e.server.as_bytes(), b"srv");
        assert_eq!(e.content_type.as_bytes(), b"application/sdp");
        assert_eq!(e.parse_request(REQ), Parse::Again);
        assert_eq!(e.parse_response(RESP), Parse::Again);
    }

    #[test]
    fn method_is_cut_and_truncated_payloads_are_safe() {
        let mut e = RtspExt::default();
        assert_eq!(
            e.parse_request(b"ANNOUNCEMENTS x RTSP/1.0\n\n"),
            Parse::Done
        );
        assert_eq!(e.method.as_bytes(), b"ANNOUNCEM");
        for n in 0..REQ.len() {
            let _ = RtspExt::default().parse_request(&REQ[..n]);
        }
        for n in 0..RESP.len() {
            let _ = RtspExt::default().parse_response(&RESP[..n]);
        }
        assert_eq!(
            RtspExt::default().parse_request(b"PLAY x RTSP/1.0\r\nCSeq 2\r\n\r\n"),
            Parse::Failed
        );
        assert_eq!(
            RtspExt::default().parse_request(b"PLAY x RTSP/1.0\r\nCSeq: 2\r\nAccept: x"),
            Parse::Failed
        );
        // The payload may end right after a header line.
        assert_eq!(
            RtspExt::default().parse_request(b"PLAY x RTSP/1.0\r\nCSeq: 2\r\n"),
            Parse::Done
        );
    }
}
