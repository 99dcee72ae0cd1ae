//! What the supervisor's listening sockets share: bounded, time-limited
//! reading of request lines and HTTP request heads, a cap on the clients
//! served at once, and the decision whose peer credentials may use the
//! control socket. The parsers here are pure (and fuzzed).

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest request line (or menu line) on the control socket.
pub const MAX_CONTROL_REQUEST: usize = 64 * 1024;
/// Longest HTTP request line plus headers on the metrics and status ports.
pub const MAX_HTTP_HEAD: usize = 8 * 1024;
/// Clients served at once, on each socket; more are answered and closed.
pub const MAX_CLIENTS: usize = 16;
/// Time a client has to send its whole request.
pub const REQUEST_TIME: Duration = Duration::from_secs(5);
/// Time a write to a client may block.
pub const WRITE_TIME: Duration = Duration::from_secs(10);

/// A stream whose reads can be given a timeout.
pub trait TimedRead: Read {
    fn set_timeout(&self, d: Option<Duration>) -> io::Result<()>;
}

impl TimedRead for &UnixStream {
    fn set_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(d)
    }
}

impl TimedRead for &std::net::TcpStream {
    fn set_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(d)
    }
}

/// Why no line came.
#[derive(Debug)]
pub enum LineError {
    /// More than the limit without a newline.
    TooLong,
    /// The deadline passed first.
    TimedOut,
    Io(io::Error),
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads lines of at most `limit` bytes, each before a deadline, however
/// slowly the bytes come. Bytes after a line stay buffered for the next.
pub struct LineReader<R> {
    inner: R,
    pending: Vec<u8>,
    eof: bool,
    limit: usize,
}

impl<R: TimedRead> LineReader<R> {
    pub fn new(inner: R, limit: usize) -> LineReader<R> {
        LineReader {
            inner,
            pending: Vec::new(),
            eof: false,
            limit,
        }
    }

    /// The next line without its `\n` (`\r\n`), or the rest before the end
    /// of the stream; `None` at the end.
    pub fn read_line(&mut self, deadline: Instant) -> Result<Option<String>, LineError> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.pending[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return Ok(Some(text_line(&line[..end])));
            }
            scanned = self.pending.len();
            if self.pending.len() > self.limit {
                return Err(LineError::TooLong);
            }
            if self.eof {
                if self.pending.is_empty() {
                    return Ok(None);
                }
                let line = std::mem::take(&mut self.pending);
                return Ok(Some(text_line(&line)));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LineError::TimedOut);
            }
            self.inner.set_timeout(Some(left)).map_err(LineError::Io)?;
            let mut buf = [0u8; 4096];
            let room = (self.limit + 1 - self.pending.len()).min(buf.len());
            match self.inner.read(&mut buf[..room]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) => return Err(LineError::TimedOut),
                Err(e) => return Err(LineError::Io(e)),
            }
        }
    }
}

fn text_line(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

/// Counts the clients being served; [`Gate::enter`] refuses beyond the cap.
#[derive(Clone, Debug)]
pub struct Gate {
    active: Arc<AtomicUsize>,
    max: usize,
}

/// A place taken in a [`Gate`], given back when dropped.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    pub fn new(max: usize) -> Gate {
        Gate {
            active: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    pub fn enter(&self) -> Option<Slot> {
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.active.clone()))
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

/// What the bytes read so far on the metrics port amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum HttpHead<'a> {
    /// No end of the head yet: read more.
    Incomplete,
    /// More than [`MAX_HTTP_HEAD`] bytes without the end of the head.
    TooLarge,
    /// Not an HTTP request line.
    Bad,
    /// A request line (the headers are not needed).
    Request { method: &'a str, target: &'a str },
}

/// Parses the start of an HTTP request. `eof`: the client sent everything
/// (a request line alone, ended by the end of the stream, is enough).
pub fn parse_http_head(buf: &[u8], eof: bool) -> HttpHead<'_> {
    let end = find(buf, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| find(buf, b"\n\n").map(|i| i + 2));
    let head = match end {
        Some(e) if e <= MAX_HTTP_HEAD => &buf[..e],
        Some(_) => return HttpHead::TooLarge,
        None if buf.len() > MAX_HTTP_HEAD => return HttpHead::TooLarge,
        None if eof && buf.contains(&b'\n') => buf,
        None if eof => return HttpHead::Bad,
        None => return HttpHead::Incomplete,
    };
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = head[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&head[..line_end]);
    let Ok(line) = std::str::from_utf8(line) else {
        return HttpHead::Bad;
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return HttpHead::Bad;
    };
    let version_ok = match parts.next() {
        None => true, // HTTP/0.9
        Some(v) => v.starts_with("HTTP/") && parts.next().is_none(),
    };
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !version_ok || !token(method) || !token(target) {
        return HttpHead::Bad;
    }
    HttpHead::Request { method, target }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status line and body of the answer to a head that is not a `GET`.
pub fn http_refusal(head: &HttpHead) -> Option<(&'static str, &'static str)> {
    http_refusal_for(head, &["GET"])
}

/// As [`http_refusal`], for a server that takes the methods in `allowed`.
pub fn http_refusal_for(head: &HttpHead, allowed: &[&str]) -> Option<(&'static str, &'static str)> {
    Some(match head {
        HttpHead::Incomplete => return None,
        HttpHead::Request { method, .. } if allowed.contains(method) => return None,
        HttpHead::Request { .. } if allowed.contains(&"POST") => {
            ("405 Method Not Allowed", "only GET and POST are served\n")
        }
        HttpHead::Request { .. } => ("405 Method Not Allowed", "only GET is served\n"),
        HttpHead::TooLarge => (
            "431 Request Header Fields Too Large",
            "request line and headers longer than 8 KiB\n",
        ),
        HttpHead::Bad => ("400 Bad Request", "not an HTTP request\n"),
    })
}

/// The value of header `name` (case-insensitive) in a complete request head
/// (as [`parse_http_head`] accepted it), trimmed; the first one if repeated.
/// `None` when absent or not UTF-8.
pub fn http_header<'a>(buf: &'a [u8], name: &str) -> Option<&'a str> {
    let end = find(buf, b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| find(buf, b"\n\n").map(|i| i + 1))
        .unwrap_or(buf.len())
        .min(MAX_HTTP_HEAD);
    buf[..end]
        .split(|&b| b == b'\n')
        .skip(1) // the request line
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find_map(|l| {
            let colon = l.iter().position(|&b| b == b':')?;
            let (key, value) = (&l[..colon], &l[colon + 1..]);
            if !key.eq_ignore_ascii_case(name.as_bytes()) {
                return None;
            }
            std::str::from_utf8(value).ok().map(str::trim)
        })
}

/// Who may use the control socket: root, the supervisor's own user, and
/// optionally the members of one group.
#[derive(Clone, Debug)]
pub struct Access {
    pub own_uid: u32,
    /// (gid, name) of the control group.
    pub group: Option<(u32, String)>,
}

/// The credentials of a connected peer (SO_PEERCRED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl Access {
    /// Whether `peer` may connect; `groups` gives the groups of a user id
    /// (asked only when a control group is set and the primary gid differs).
    pub fn allows(&self, peer: &Peer, groups: impl FnOnce(u32) -> Vec<u32>) -> bool {
        if peer.uid == 0 || peer.uid == self.own_uid {
            return true;
        }
        match &self.group {
            Some((gid, _)) => peer.gid == *gid || groups(peer.uid).contains(gid),
            None => false,
        }
    }

    /// Who may, for messages: `only root`, `root and uid 1000`, `root and
    /// group nemea`.
    pub fn who(&self) -> String {
        let mut who = vec!["root".to_string()];
        if self.own_uid != 0 {
            who.push(format!("uid {}", self.own_uid));
        }
        if let Some((_, name)) = &self.group {
            who.push(format!("group {name}"));
        }
        match who.len() {
            1 => "only root".into(),
            n => format!("{} and {}", who[..n - 1].join(", "), who[n - 1]),
        }
    }

    /// The one-line answer to a refused peer.
    pub fn refusal(&self, peer: &Peer) -> String {
        format!(
            "[ERROR] Permission denied: uid {} may not control this supervisor ({} may).\n",
            peer.uid,
            self.who()
        )
    }
}

/// Lets through at most `per_minute` messages a minute and counts the rest.
#[derive(Debug)]
pub struct RateLimit {
    per_minute: u32,
    window: Option<Instant>,
    passed: u32,
    suppressed: u64,
}

impl RateLimit {
    pub fn new(per_minute: u32) -> RateLimit {
        RateLimit {
            per_minute,
            window: None,
            passed: 0,
            suppressed: 0,
        }
    }

    /// `Some(n)`: say it, with `n` messages left out since the last one said.
    pub fn pass(&mut self, now: Instant) -> Option<u64> {
        let fresh = self
            .window
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(60));
        if fresh {
            self.window = Some(now);
            self.passed = 0;
        }
        if self.passed >= self.per_minute {
            self.suppressed += 1;
            return None;
        }
        self.passed += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pair() -> (UnixStream, UnixStream) {
        UnixStream::pair().expect("socket pair")
    }

    #[test]
    fn lines_are_bounded_and_keep_what_follows() {
        let (mut a, b) = pair();
        a.write_all(b"first\r\nsecond\nrest").expect("write");
        drop(a);
        let mut r = LineReader::new(&b, 16);
        let soon = || Instant::now() + Duration::from_secs(5);
        assert_eq!(r.read_line(soon()).ok().flatten().as_deref(), Some("first"));
        assert_eq!(
            r.read_line(soon()).ok().flatten().as_deref(),
            Some("second")
        );
        assert_eq!(r.read_line(soon()).ok().flatten().as_deref(), Some("rest"));
        assert!(matches!(r.read_line(soon()), Ok(None)));

        let (mut a, b) = pair();
        a.write_all(&[b'x'; 100]).expect("write");
        let mut r = LineReader::new(&b, 16);
        assert!(matches!(r.read_line(soon()), Err(LineError::TooLong)));
        // A line exactly at the limit passes.
        let (mut a, b) = pair();
        a.write_all(&[b'y'; 16]).expect("write");
        a.write_all(b"\n").expect("write");
        let mut r = LineReader::new(&b, 16);
        assert_eq!(
            r.read_line(soon()).ok().flatten().map(|l| l.len()),
            Some(16)
        );
    }

    #[test]
    fn a_slow_line_hits_the_deadline() {
        let (mut a, b) = pair();
        a.write_all(b"par").expect("write");
        let mut r = LineReader::new(&b, 16);
        let start = Instant::now();
        let got = r.read_line(Instant::now() + Duration::from_millis(200));
        assert!(matches!(got, Err(LineError::TimedOut)), "{got:?}");
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn the_gate_caps_and_releases() {
        let g = Gate::new(2);
        let a = g.enter().expect("first");
        let _b = g.enter().expect("second");
        assert!(g.enter().is_none());
        drop(a);
        assert!(g.enter().is_some());
    }

    #[test]
    fn http_heads() {
        use HttpHead::*;
        assert_eq!(
            parse_http_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", false),
            Request {
                method: "GET",
                target: "/metrics"
            }
        );
        assert_eq!(
            parse_http_head(b"GET /metrics HTTP/1.1\r\nHost:", false),
            Incomplete
        );
        assert_eq!(
            parse_http_head(b"GET / HTTP/1.0\n", true),
            Request {
                method: "GET",
                target: "/"
            }
        );
        assert_eq!(parse_http_head(b"GET / HTTP/1.0", true), Bad);
        assert_eq!(parse_http_head(b"\r\n\r\n", false), Bad);
        assert_eq!(parse_http_head(b"GET  / HTTP/1.0\r\n\r\n", false), Bad);
        assert_eq!(parse_http_head(b"GET / FTP\r\n\r\n", false), Bad);
        let mut big = b"GET / HTTP/1.0\r\n".to_vec();
        big.resize(MAX_HTTP_HEAD + 1, b'a');
        assert_eq!(parse_http_head(&big, false), TooLarge);
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_http_head(&big, false), TooLarge);
        let post = parse_http_head(b"POST / HTTP/1.0\r\n\r\n", false);
        assert_eq!(
            http_refusal(&post).map(|r| r.0),
            Some("405 Method Not Allowed")
        );
        assert_eq!(
            http_refusal(&TooLarge).map(|r| r.0),
            Some("431 Request Header Fields Too Large")
        );
    }

    #[test]
    fn http_headers_and_methods() {
        let req = b"POST /api/stop/x HTTP/1.1\r\nHost: 127.0.0.1:9\r\nx-nemea-control:  1 \r\n\r\nHost: body";
        assert_eq!(http_header(req, "host"), Some("127.0.0.1:9"));
        assert_eq!(http_header(req, "X-Nemea-Control"), Some("1"));
        assert_eq!(http_header(req, "Origin"), None);
        // Not a header: the request line, and what follows the head.
        assert_eq!(http_header(b"Host: x\r\n\r\n", "host"), None);
        assert_eq!(http_header(b"GET / HTTP/1.0\n\nHost: y", "host"), None);
        assert_eq!(http_header(b"GET / HTTP/1.0\nHost: \xff\n\n", "host"), None);
        let head = parse_http_head(req, false);
        assert_eq!(http_refusal_for(&head, &["GET", "POST"]), None);
        assert_eq!(
            http_refusal(&head),
            Some(("405 Method Not Allowed", "only GET is served\n"))
        );
        let put = parse_http_head(b"PUT / HTTP/1.0\r\n\r\n", false);
        assert_eq!(
            http_refusal_for(&put, &["GET", "POST"]).map(|r| r.1),
            Some("only GET and POST are served\n")
        );
    }

    #[test]
    fn access_by_uid_and_group() {
        let peer = |uid, gid| Peer { pid: 1, uid, gid };
        let root_only = Access {
            own_uid: 0,
            group: None,
        };
        assert!(root_only.allows(&peer(0, 5), |_| vec![]));
        assert!(!root_only.allows(&peer(65534, 65534), |_| vec![]));
        assert_eq!(root_only.who(), "only root");
        let user = Access {
            own_uid: 1000,
            group: Some((50, "nemea".into())),
        };
        assert!(user.allows(&peer(1000, 1000), |_| vec![]));
        assert!(user.allows(&peer(0, 0), |_| vec![]));
        assert!(user.allows(&peer(7, 50), |_| vec![]));
        assert!(user.allows(&peer(7, 7), |_| vec![7, 50]));
        assert!(!user.allows(&peer(7, 7), |_| vec![7]));
        assert_eq!(user.who(), "root, uid 1000 and group nemea");
        assert_eq!(
            root_only.refusal(&peer(65534, 65534)),
            "[ERROR] Permission denied: uid 65534 may not control this supervisor (only root may).\n"
        );
    }

    #[test]
    fn rate_limit_counts_what_it_drops() {
        let mut r = RateLimit::new(2);
        let t = Instant::now();
        assert_eq!(r.pass(t), Some(0));
        assert_eq!(r.pass(t), Some(0));
        assert_eq!(r.pass(t), None);
        assert_eq!(r.pass(t), None);
        assert_eq!(r.pass(t + Duration::from_secs(61)), Some(2));
    }
}
