//! The client protocol on the supervisor's unix socket.
//!
//! NEMEA's: the client sends a decimal mode code and `\n` (`456987` stats,
//! `113366` info, `115599` reload, `789123` configuration mode); the daemon
//! writes its answer and closes. Our extension for `supcli` subcommands is a
//! line `CMD\t<verb>\t<arg>…\n`; the answer is the exit status on the first
//! line, then the text to print.

use crate::error::ClientError;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

pub const CODE_CONFIG_MODE: &str = "789123";
pub const CODE_STATS: &str = "456987";
pub const CODE_INFO: &str = "113366";
pub const CODE_RELOAD: &str = "115599";
pub const EXT_PREFIX: &str = "CMD";

/// `shutdown` argument: stop the supervisor only (NEMEA's `Dstop`).
pub const KEEP_MODULES: &str = "--keep-modules";
/// Leading argument of `start`/`stop`/`restart`/`enable`/`disable`: answer
/// only once the change is done, waiting at most this many milliseconds.
/// Without it the daemon answers at once (NEMEA's menu, older clients).
pub const WAIT_PREFIX: &str = "--wait-ms=";

/// The argument asking the daemon to wait up to `limit`.
pub fn wait_arg(limit: Duration) -> String {
    format!("{WAIT_PREFIX}{}", limit.as_millis())
}

/// Splits the wait argument off the names.
pub fn split_wait(args: &[String]) -> (Option<Duration>, Vec<String>) {
    let mut wait = None;
    let mut names = Vec::new();
    for a in args {
        match a.strip_prefix(WAIT_PREFIX).and_then(|ms| ms.parse().ok()) {
            Some(ms) => wait = Some(Duration::from_millis(ms)),
            None => names.push(a.clone()),
        }
    }
    (wait, names)
}

/// Longest answer a client reads (a status of thousands of modules fits).
pub const MAX_ANSWER: usize = 64 << 20;

/// NEMEA's default client socket.
pub const DEFAULT_SOCKET: &str = "/var/run/nemea-supervisor/nemea-supervisor.sock";

/// A parsed request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Stats,
    Info,
    /// `-r`: reload, no answer.
    Reload,
    ConfigMode,
    /// Our extension: a verb and its arguments.
    Cmd(String, Vec<String>),
}

impl Request {
    pub fn parse(line: &str) -> Option<Request> {
        let line = line.trim_end_matches(['\n', '\r']);
        Some(match line.trim() {
            CODE_STATS => Request::Stats,
            CODE_INFO => Request::Info,
            CODE_RELOAD => Request::Reload,
            CODE_CONFIG_MODE => Request::ConfigMode,
            _ => {
                let mut parts = line.split('\t');
                if parts.next()? != EXT_PREFIX {
                    return None;
                }
                let verb = parts.next()?.to_string();
                Request::Cmd(verb, parts.map(str::to_string).collect())
            }
        })
    }

    pub fn line(&self) -> String {
        match self {
            Request::Stats => format!("{CODE_STATS}\n"),
            Request::Info => format!("{CODE_INFO}\n"),
            Request::Reload => format!("{CODE_RELOAD}\n"),
            Request::ConfigMode => format!("{CODE_CONFIG_MODE}\n"),
            Request::Cmd(verb, args) => {
                // One line whatever the words hold (the daemon reads one).
                let mut s = format!("{EXT_PREFIX}\t{}", verb.replace(['\t', '\n'], " "));
                for a in args {
                    s.push('\t');
                    s.push_str(&a.replace(['\t', '\n'], " "));
                }
                s.push('\n');
                s
            }
        }
    }
}

/// Sends a request and reads the whole answer (the daemon closes after it).
pub fn send(socket: &Path, req: &Request) -> Result<String, ClientError> {
    send_within(socket, req, Duration::from_secs(30))
}

/// [`send`], waiting at most `limit` for the end of the answer.
pub fn send_within(socket: &Path, req: &Request, limit: Duration) -> Result<String, ClientError> {
    let mut conn = UnixStream::connect(socket).map_err(|cause| ClientError::Connect {
        path: socket.to_path_buf(),
        cause,
    })?;
    if let Err(e) = conn.write_all(req.line().as_bytes()) {
        // A daemon that turns us away (busy, not allowed) may close before
        // reading the request: its answer is still there to read.
        if !matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ) {
            return Err(e.into());
        }
    } else if *req == Request::Reload {
        return Ok(String::new());
    }
    let deadline = std::time::Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(ClientError::TimedOut(
                String::from_utf8_lossy(&out).into_owned(),
            ));
        }
        conn.set_read_timeout(Some(left))?;
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if out.len() + n > MAX_ANSWER => return Err(ClientError::TooLong(MAX_ANSWER)),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Closed with our request unread, after its answer.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !out.is_empty() => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ClientError::TimedOut(
                    String::from_utf8_lossy(&out).into_owned(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Splits an extension answer into exit status and text. An answer without
/// the status line (`[ERROR] …` of a daemon that turned the client away) is
/// a failure with that text.
pub fn split_answer(answer: &str) -> (i32, &str) {
    let (first, rest) = answer.split_once('\n').unwrap_or((answer, ""));
    match first.trim().parse() {
        Ok(code) => (code, rest),
        Err(_) => (1, refusal(answer).unwrap_or(answer)),
    }
}

/// The text of a one-line `[ERROR] …` answer (too long, too slow, busy,
/// permission denied, unknown request), with its newline.
pub fn refusal(answer: &str) -> Option<&str> {
    let text = answer.strip_prefix("[ERROR] ")?;
    (text.find('\n').is_none_or(|i| i + 1 == text.len())).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Stats,
            Request::Info,
            Request::Reload,
            Request::Cmd("enable".into(), vec!["Data sources".into(), "x".into()]),
            Request::Cmd("status".into(), vec![]),
        ] {
            assert_eq!(Request::parse(&r.line()), Some(r));
        }
        assert_eq!(Request::parse("hello\n"), None);
        // Found by fuzzing: a newline in the verb made two lines.
        let r = Request::Cmd("st\natus".into(), vec!["a\nb".into()]);
        assert_eq!(r.line(), "CMD\tst atus\ta b\n");
        assert_eq!(split_answer("1\nno such module\n"), (1, "no such module\n"));
        assert_eq!(split_answer("0\n"), (0, ""));
        assert_eq!(split_answer("0"), (0, ""));
        assert_eq!(
            split_answer("[ERROR] The supervisor is busy.\n"),
            (1, "The supervisor is busy.\n")
        );
        assert_eq!(split_answer("garbage\nmore"), (1, "garbage\nmore"));
        assert_eq!(split_answer(""), (1, ""));
        assert_eq!(refusal("[ERROR] x\ny\n"), None);
        assert_eq!(refusal("{\"x\": 1}"), None);
    }

    #[test]
    fn wait_argument_round_trips() {
        let args = vec![wait_arg(Duration::from_millis(2500)), "Loggers".into()];
        assert_eq!(args[0], "--wait-ms=2500");
        assert_eq!(
            split_wait(&args),
            (
                Some(Duration::from_millis(2500)),
                vec!["Loggers".to_string()]
            )
        );
        // No wait asked (NEMEA's menu, older clients): names only.
        let names = vec!["zlog".to_string(), "--wait-ms=x".to_string()];
        assert_eq!(split_wait(&names), (None, names.clone()));
    }
}
