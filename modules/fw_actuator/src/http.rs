//! The batch endpoint's requests (the seed's REST batch call), without
//! I/O: the request head, parsed once it is complete, and the answer's
//! bytes. Bounded: the head is at most [`MAX_HEAD`] bytes and a body at most
//! [`MAX_BODY`]; anything else is refused with the status to send.
//!
//! * `POST /batch` — a batch in the TrafficAnalyzer's format, applied as
//!   `--batch` applies one;
//! * `POST /idea` — IDEA alerts, one JSON message a line, blocked as the
//!   alerts of `-i` are (auto-rules with the TTL);
//! * `GET /rules` — the rules, as `--list` prints them, in one JSON object.

/// The longest request head taken.
pub const MAX_HEAD: usize = 8192;
/// The longest request body taken.
pub const MAX_BODY: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Batch,
    Idea,
    Rules,
}

/// What the bytes read so far of a request are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Head {
    /// More bytes are needed.
    Incomplete,
    /// A request to answer with this status and message.
    Refused(&'static str, String),
    /// A request for `route` whose body is `body_len` bytes after `head_len`.
    Request {
        route: Route,
        head_len: usize,
        body_len: usize,
    },
}

/// Parses the head at the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Head {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Head::Refused(
                "431 Request Header Fields Too Large",
                format!("the request head is over {MAX_HEAD} bytes"),
            );
        }
        return Head::Incomplete;
    };
    if end + 4 > MAX_HEAD {
        return Head::Refused(
            "431 Request Header Fields Too Large",
            format!("the request head is over {MAX_HEAD} bytes"),
        );
    }
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Head::Refused("400 Bad Request", "the request head is not text".into());
    };
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Head::Refused("400 Bad Request", format!("bad request line `{first}`"));
    };
    if !version.starts_with("HTTP/1.") {
        return Head::Refused(
            "505 HTTP Version Not Supported",
            format!("{version}: use HTTP/1.1"),
        );
    }
    let mut body_len = 0usize;
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            return Head::Refused("400 Bad Request", format!("bad header line `{l}`"));
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.trim().parse::<usize>() {
                Ok(n) if n <= MAX_BODY => body_len = n,
                Ok(_) => {
                    return Head::Refused(
                        "413 Content Too Large",
                        format!("the body is over {MAX_BODY} bytes"),
                    )
                }
                Err(_) => {
                    return Head::Refused("400 Bad Request", "bad Content-Length".into());
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Head::Refused(
                "411 Length Required",
                "send the body with a Content-Length".into(),
            );
        }
    }
    let path = target.split('?').next().unwrap_or("");
    let route = match path {
        "/batch" => Route::Batch,
        "/idea" => Route::Idea,
        "/rules" => Route::Rules,
        _ => {
            return Head::Refused(
                "404 Not Found",
                format!("{path}: POST /batch, POST /idea or GET /rules"),
            )
        }
    };
    let want = if route == Route::Rules { "GET" } else { "POST" };
    if method != want {
        return Head::Refused(
            "405 Method Not Allowed",
            format!("{method} {path}: use {want}"),
        );
    }
    Head::Request {
        route,
        head_len: end + 4,
        body_len,
    }
}

/// The bytes of an answer with a JSON body.
pub fn answer(status: &str, body: &serde_json::Value) -> Vec<u8> {
    let body = format!("{body}\n");
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(h: Head) -> &'static str {
        match h {
            Head::Refused(s, _) => s,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn requests_are_routed() {
        let r = b"POST /batch HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"rules\":[]}";
        assert_eq!(
            parse_head(r),
            Head::Request {
                route: Route::Batch,
                head_len: r.len() - 12,
                body_len: 12
            }
        );
        assert!(matches!(
            parse_head(b"GET /rules?x=1 HTTP/1.0\r\n\r\n"),
            Head::Request {
                route: Route::Rules,
                body_len: 0,
                ..
            }
        ));
        assert_eq!(
            parse_head(b"POST /batch HTTP/1.1\r\nHost"),
            Head::Incomplete
        );
    }

    #[test]
    fn bad_requests_get_their_status() {
        assert_eq!(
            status(parse_head(b"GET /batch HTTP/1.1\r\n\r\n")),
            "405 Method Not Allowed"
        );
        assert_eq!(
            status(parse_head(b"POST /x HTTP/1.1\r\n\r\n")),
            "404 Not Found"
        );
        assert_eq!(
            status(parse_head(b"POST /batch\r\n\r\n")),
            "400 Bad Request"
        );
        assert_eq!(
            status(parse_head(b"POST /batch HTTP/2\r\n\r\n")),
            "505 HTTP Version Not Supported"
        );
        assert_eq!(
            status(parse_head(
                b"POST /batch HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"
            )),
            "413 Content Too Large"
        );
        assert_eq!(
            status(parse_head(
                b"POST /batch HTTP/1.1\r\nContent-Length: -1\r\n\r\n"
            )),
            "400 Bad Request"
        );
        assert_eq!(
            status(parse_head(
                b"POST /batch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            )),
            "411 Length Required"
        );
        assert_eq!(
            status(parse_head(&[b'a'; MAX_HEAD + 1])),
            "431 Request Header Fields Too Large"
        );
        assert_eq!(status(parse_head(b"\xff\xfe x\r\n\r\n")), "400 Bad Request");
    }

    /// Whatever the bytes, an answer and no panic.
    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for n in 0..2000usize {
            let mut v = Vec::new();
            for _ in 0..(n % 300) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.push(
                    b"POST /batchGET HTTP/1.1\r\n:Content-Length 0123456789\xff"[(x % 45) as usize],
                );
            }
            let _ = parse_head(&v);
        }
    }
}
