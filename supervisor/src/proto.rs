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
                let mut s = format!("{EXT_PREFIX}\t{verb}");
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
    let mut conn = UnixStream::connect(socket).map_err(|cause| ClientError::Connect {
        path: socket.to_path_buf(),
        cause,
    })?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    conn.write_all(req.line().as_bytes())?;
    if *req == Request::Reload {
        return Ok(String::new());
    }
    let mut out = Vec::new();
    conn.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Splits an extension answer into exit status and text.
pub fn split_answer(answer: &str) -> (i32, &str) {
    match answer.split_once('\n') {
        Some((code, rest)) => (code.trim().parse().unwrap_or(1), rest),
        None => (answer.trim().parse().unwrap_or(1), ""),
    }
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
        assert_eq!(split_answer("1\nno such module\n"), (1, "no such module\n"));
    }
}
