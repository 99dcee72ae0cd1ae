//! The `-i IFC_SPEC` grammar: interfaces separated by `,`, parameters by `:`.
//!
//! `u:name,f:out.trapcap:a:size=100`: the first letter of each segment is the
//! interface type; the common setters `timeout=`, `buffer=` and `autoflush=`
//! may stand among the parameters of any interface and are taken out before
//! the type-specific parameters are read. Inputs come first, then outputs.
//!
//! TCP hosts may be IPv6 addresses in brackets (`t:[::1]:7600`); inside the
//! brackets `:` does not separate parameters.
//!
//! TLS (`T:`) takes the TCP address followed by three PEM files, as libtrap:
//! `T:PORT:KEYFILE:CERTFILE:CAFILE[:max_clients=N]...` on an output (here
//! also `T:HOST:PORT:...` as for `t:`), `T:[HOST:]PORT:KEYFILE:CERTFILE:CAFILE`
//! on an input. The files are read when the interface is opened.
//!
//! Differences from libtrap, all on input libtrap mishandles: a bare letter
//! (`b,u:x`) is one interface here (libtrap reads it as `bb`); `buffer=` or
//! `autoflush=` on an input is an error instead of a mangled socket name;
//! extra parameters of a TCP input (`t:HOST:PORT:x`) are an error (libtrap
//! ignores them), which catches an IPv6 address written without brackets.
//!
//! [`check`] is the one place where every parameter of every interface kind
//! is validated, for inputs as for outputs, numbers with their ranges
//! (libtrap ignores unknown parameters and wraps large numbers).

use crate::error::{Result, TrapError};
use crate::file::FileOptions;
use crate::stream::StreamOptions;
use crate::tls::TlsFiles;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The longest `timeout=` / `autoflush=` in microseconds: a day.
pub const MAX_MICROS: u64 = 86_400_000_000;

/// The longest unix socket path (`sun_path` holds 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Mode of the unix sockets a module creates unless `perm=` or
/// `TRAP_SOCKET_MODE` says otherwise: owner and group (libtrap: 0666).
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// The environment variable that sets the mode of every unix socket.
pub const SOCKET_MODE_ENV: &str = "TRAP_SOCKET_MODE";

/// Interface types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IfcKind {
    Tcp,
    Tls,
    Unix,
    File,
    Blackhole,
    Generator,
    Service,
    /// `j:` NATS JetStream (not in libtrap).
    JetStream,
}

impl IfcKind {
    fn from_letter(c: char) -> Option<IfcKind> {
        Some(match c {
            't' => IfcKind::Tcp,
            'T' => IfcKind::Tls,
            'u' => IfcKind::Unix,
            'f' => IfcKind::File,
            'b' => IfcKind::Blackhole,
            'g' => IfcKind::Generator,
            's' => IfcKind::Service,
            'j' => IfcKind::JetStream,
            _ => return None,
        })
    }

    /// The letter in IFC_SPEC (also the `ifc_type` code in service statistics).
    pub fn letter(self) -> char {
        match self {
            IfcKind::Tcp => 't',
            IfcKind::Tls => 'T',
            IfcKind::Unix => 'u',
            IfcKind::File => 'f',
            IfcKind::Blackhole => 'b',
            IfcKind::Generator => 'g',
            IfcKind::Service => 's',
            IfcKind::JetStream => 'j',
        }
    }
}

/// Output blocking mode / input timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Timeout {
    /// Block until data can be passed on (the default).
    #[default]
    Wait,
    /// Never block: an input returns a timeout at once, an output drops.
    NoWait,
    /// Output only: block while a client is connected, drop while none is.
    HalfWait,
    /// Wait at most this long (input); an output treats it as `NoWait`.
    Micros(u64),
}

impl Timeout {
    /// The input read deadline this timeout allows (`None` = forever).
    pub fn as_duration(self) -> Option<Duration> {
        match self {
            Timeout::Wait | Timeout::HalfWait => None,
            Timeout::NoWait => Some(Duration::ZERO),
            Timeout::Micros(us) => Some(Duration::from_micros(us)),
        }
    }
}

/// C `%i`: decimal, `0x` hex or leading-zero octal.
pub(crate) fn parse_c_uint(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// A number of microseconds (C `%i`) up to [`MAX_MICROS`].
fn parse_micros(what: &str, v: &str) -> Result<u64, String> {
    match parse_c_uint(v) {
        Some(n) if n <= MAX_MICROS => Ok(n),
        Some(_) => Err(format!(
            "{what} `{v}` is too long (at most {MAX_MICROS} microseconds, a day)"
        )),
        None => Err(format!(
            "bad {what} `{v}` ({})",
            if what == "timeout" {
                "WAIT, NO_WAIT, HALF_WAIT or microseconds"
            } else {
                "off or microseconds"
            }
        )),
    }
}

/// An octal permission mode `0` to `0777` (`0660`, `660`).
pub fn parse_mode(v: &str) -> Option<u32> {
    let digits = v.strip_prefix("0o").unwrap_or(v);
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|&m| m <= 0o777)
}

/// The mode of a unix socket and whether it was chosen knowingly (by
/// `perm=` or `TRAP_SOCKET_MODE`) rather than left at the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketMode {
    pub mode: u32,
    /// Chosen knowingly: sockets are meant to be shared between users, so
    /// an input accepts a sender of another user and an output replaces
    /// another user's stale socket.
    pub shared: bool,
}

impl SocketMode {
    /// `perm=` of an interface if given, else `TRAP_SOCKET_MODE`, else 0660.
    pub fn resolve(perm: Option<u32>) -> Result<SocketMode, String> {
        if let Some(mode) = perm {
            return Ok(SocketMode { mode, shared: true });
        }
        match std::env::var(SOCKET_MODE_ENV) {
            Ok(v) if !v.is_empty() => match parse_mode(&v) {
                Some(mode) => Ok(SocketMode { mode, shared: true }),
                None => Err(format!(
                    "{SOCKET_MODE_ENV}=`{v}` is not an octal mode 0 to 0777 (e.g. 0660)"
                )),
            },
            _ => Ok(SocketMode {
                mode: DEFAULT_SOCKET_MODE,
                shared: false,
            }),
        }
    }
}

/// One interface of an IFC_SPEC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfcSpec {
    pub kind: IfcKind,
    /// Type-specific parameters, with the common setters removed.
    pub params: Vec<String>,
    pub timeout: Option<Timeout>,
    /// `buffer=on|off` (outputs).
    pub buffer: Option<bool>,
    /// `autoflush=off|µs` (outputs): `Some(None)` is `off`.
    pub autoflush: Option<Option<u64>>,
}

impl IfcSpec {
    /// The parameters joined back with `:` (a file input's pattern may contain colons).
    pub fn joined_params(&self) -> String {
        self.params.join(":")
    }
}

impl fmt::Display for IfcSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.letter(), self.joined_params())
    }
}

fn bad(msg: String) -> TrapError {
    TrapError::BadSpec(msg)
}

/// Parses a whole IFC_SPEC.
pub fn parse(spec: &str) -> Result<Vec<IfcSpec>> {
    let trimmed = spec.strip_suffix(',').unwrap_or(spec);
    if trimmed.is_empty() {
        return Err(bad("empty interface specifier (-i)".into()));
    }
    trimmed
        .split(',')
        .enumerate()
        .map(|(i, seg)| {
            parse_one(seg).map_err(|e| bad(format!("interface {} `{seg}`: {e}", i + 1)))
        })
        .collect()
}

/// The interface types a module can use, for hints.
const TYPES_HINT: &str = "u: unix socket, t: TCP, T: TLS, f: file, b: blackhole, j: NATS JetStream";

/// The likely meaning of a segment written without a type letter.
fn untyped_hint(seg: &str) -> String {
    let guess = if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
        format!("`t:{seg}` (TCP port)")
    } else if seg.contains('/') || seg.ends_with(".trapcap") {
        format!("`f:{seg}` (file)")
    } else {
        format!("`u:{seg}` (unix socket)")
    };
    format!("no interface type: did you mean {guess}? (types: {TYPES_HINT})")
}

/// Splits parameters on `:`, keeping `[...]` (an IPv6 address) whole.
fn split_bracketed(rest: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut depth) = (0, 0usize);
    for (i, c) in rest.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => {
                out.push(&rest[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&rest[start..]);
    out
}

fn parse_one(seg: &str) -> Result<IfcSpec, String> {
    let mut chars = seg.chars();
    let letter = chars
        .next()
        .ok_or("empty interface (two commas in a row?)")?;
    let rest = chars.as_str();
    let rest = match rest.strip_prefix(':') {
        Some(r) => r,
        None if rest.is_empty() => "",
        None => return Err(untyped_hint(seg)),
    };
    let kind = IfcKind::from_letter(letter)
        .ok_or_else(|| format!("unknown interface type `{letter}` ({TYPES_HINT})"))?;
    let mut out = IfcSpec {
        kind,
        params: Vec::new(),
        timeout: None,
        buffer: None,
        autoflush: None,
    };
    if rest.is_empty() {
        return Ok(out);
    }
    let tokens = match kind {
        IfcKind::Tcp | IfcKind::Tls => split_bracketed(rest),
        _ => rest.split(':').collect(),
    };
    for tok in tokens {
        if let Some(v) = tok.strip_prefix("timeout=") {
            out.timeout = Some(match v {
                "WAIT" => Timeout::Wait,
                "NO_WAIT" => Timeout::NoWait,
                "HALF_WAIT" => Timeout::HalfWait,
                _ => Timeout::Micros(parse_micros("timeout", v)?),
            });
        } else if let Some(v) = tok.strip_prefix("buffer=") {
            out.buffer = Some(match v {
                "on" => true,
                "off" => false,
                _ => return Err(format!("bad buffer `{v}` (on or off)")),
            });
        } else if let Some(v) = tok.strip_prefix("autoflush=") {
            out.autoflush = Some(match v {
                "off" => None,
                _ => Some(parse_micros("autoflush", v)?),
            });
        } else {
            out.params.push(tok.to_string());
        }
    }
    Ok(out)
}

/// A TCP port: a number 1 to 65535.
fn tcp_port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("`{s}` is not a TCP port (1 to 65535)")),
    }
}

/// A host name, IPv4 address or bracketed IPv6 address, without the brackets.
fn tcp_host(s: &str) -> Result<String, String> {
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(inner.to_string()),
            Err(_) => Err(format!("`{s}` is not an IPv6 address in brackets")),
        };
    }
    if s.is_empty() {
        return Err(
            "empty host (t:HOST:PORT; an IPv6 address goes in brackets: t:[::1]:PORT)".into(),
        );
    }
    if s.contains(['[', ']']) {
        return Err(format!(
            "bad host `{s}` (an IPv6 address goes in brackets: t:[::1]:PORT)"
        ));
    }
    Ok(s.to_string())
}

/// Where a TCP input connects: `t:PORT` (to localhost) or `t:HOST:PORT`.
pub fn tcp_input_addr(params: &[String]) -> Result<(String, u16), String> {
    match params {
        [port] => Ok(("localhost".to_string(), tcp_port(port)?)),
        [host, port] => Ok((tcp_host(host)?, tcp_port(port)?)),
        [] => Err("missing port (t:HOST:PORT or t:PORT)".into()),
        _ => Err(format!(
            "too many parameters in `{}` (t:HOST:PORT; an IPv6 address goes in brackets: t:[::1]:PORT)",
            params.join(":")
        )),
    }
}

/// Where a TCP output listens: `t:PORT` (every IPv4 address, as libtrap) or
/// `t:HOST:PORT` (the addresses of HOST, IPv6 in brackets); then the rest of
/// the parameters (`max_clients=`...).
pub fn tcp_output_addr(params: &[String]) -> Result<(Option<String>, u16, &[String]), String> {
    let is_port = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match params {
        [] => Err("missing port (t:PORT or t:HOST:PORT)".into()),
        [port, rest @ ..] if is_port(port) => Ok((None, tcp_port(port)?, rest)),
        [host, port, rest @ ..] if !host.contains('=') && !port.contains('=') => {
            Ok((Some(tcp_host(host)?), tcp_port(port)?, rest))
        }
        [first, ..] => Err(format!(
            "`{first}` is not a TCP port (t:PORT or t:HOST:PORT)"
        )),
    }
}

/// The three files after the address of a `T:` interface.
fn tls_files(params: &[String]) -> Result<(TlsFiles, &[String]), String> {
    const FORM: &str = "KEYFILE:CERTFILE:CAFILE after the port";
    match params {
        [key, cert, ca, rest @ ..] => {
            for (what, f) in [("KEYFILE", key), ("CERTFILE", cert), ("CAFILE", ca)] {
                if f.is_empty() {
                    return Err(format!("empty {what} ({FORM})"));
                }
                if f.contains('=') {
                    return Err(format!("`{f}` is not a {what} ({FORM})"));
                }
            }
            let files = TlsFiles {
                key: key.into(),
                cert: cert.into(),
                ca: ca.into(),
            };
            Ok((files, rest))
        }
        _ => Err(format!("missing {FORM}")),
    }
}

/// Where a TLS input connects and with which files:
/// `T:PORT:KEY:CERT:CA` (to localhost) or `T:HOST:PORT:KEY:CERT:CA`.
pub fn tls_input(params: &[String]) -> Result<(String, u16, TlsFiles), String> {
    const FORM: &str = "T:HOST:PORT:KEYFILE:CERTFILE:CAFILE or T:PORT:KEYFILE:CERTFILE:CAFILE";
    let (addr, files) = match params.len() {
        4 => params.split_at(1),
        5 => params.split_at(2),
        n if n < 4 => return Err(format!("missing parameters ({FORM})")),
        _ => {
            return Err(format!(
                "too many parameters in `{}` ({FORM}; an IPv6 address goes in brackets)",
                params.join(":")
            ))
        }
    };
    let (host, port) = tcp_input_addr(addr)?;
    let (files, _) = tls_files(files)?;
    Ok((host, port, files))
}

/// An interface with every parameter checked: what [`crate::Trap::init`] opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ifc {
    /// `u:NAME` input: connects to `path`; `shared`: accepts a sender of
    /// another user (`perm=` or `TRAP_SOCKET_MODE` given).
    UnixIn { path: PathBuf, shared: bool },
    /// `u:NAME` output: listens on `path` with `mode`.
    UnixOut {
        name: String,
        path: PathBuf,
        mode: SocketMode,
        opts: StreamOptions,
    },
    /// `t:[HOST:]PORT` input.
    TcpIn { host: String, port: u16 },
    /// `t:[HOST:]PORT` output (`None`: every IPv4 address).
    TcpOut {
        host: Option<String>,
        port: u16,
        opts: StreamOptions,
    },
    /// `T:[HOST:]PORT:KEYFILE:CERTFILE:CAFILE` input.
    TlsIn {
        host: String,
        port: u16,
        files: TlsFiles,
    },
    /// `T:[HOST:]PORT:KEYFILE:CERTFILE:CAFILE` output.
    TlsOut {
        host: Option<String>,
        port: u16,
        files: TlsFiles,
        opts: StreamOptions,
    },
    /// `f:PATTERN` input.
    FileIn { pattern: String },
    /// `f:PATH[:w|:a][:size=MB][:time=MIN]` output.
    FileOut(FileOptions),
    /// `b:` output.
    Blackhole,
    /// `j:SUBJECT...` input (a durable consumer).
    JetStreamIn(crate::jetstream::JsOptions),
    /// `j:SUBJECT...` output (publishes to a stream).
    JetStreamOut(crate::jetstream::JsOptions),
}

/// One interface as written in `-i` and as checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configured {
    pub spec: IfcSpec,
    pub ifc: Ifc,
}

/// Splits a parsed spec into inputs and outputs for a module with `n_in`
/// inputs and `n_out` outputs (`None` = as many as remain, for one side only),
/// and checks every parameter of every interface ([`check`]).
pub fn split(
    specs: Vec<IfcSpec>,
    n_in: Option<usize>,
    n_out: Option<usize>,
) -> Result<(Vec<Configured>, Vec<Configured>)> {
    let total = specs.len();
    let (n_in, n_out) = match (n_in, n_out) {
        (Some(i), Some(o)) => (i, o),
        (Some(i), None) if total >= i => (i, total - i),
        (None, Some(o)) if total >= o => (total - o, o),
        _ => (usize::MAX, 0),
    };
    if n_in.checked_add(n_out) != Some(total) {
        let want = |n: usize, what: &str| match n {
            usize::MAX => format!("at least some {what}s"),
            1 => format!("1 {what}"),
            n => format!("{n} {what}s"),
        };
        return Err(bad(format!(
            "this module needs {} and {} (inputs first), but -i names {total} interface(s)",
            want(n_in, "input"),
            want(n_out, "output")
        )));
    }
    let mut specs = specs;
    let outputs = specs.split_off(n_in);
    let configure =
        |input: bool| move |spec: IfcSpec| check(&spec, input).map(|ifc| Configured { spec, ifc });
    let ins = specs
        .into_iter()
        .map(configure(true))
        .collect::<Result<Vec<_>>>()?;
    let outs = outputs
        .into_iter()
        .map(configure(false))
        .collect::<Result<Vec<_>>>()?;
    Ok((ins, outs))
}

/// The path of unix socket `name`, which must fit a socket address.
pub fn unix_socket_path(name: &str) -> Result<PathBuf, String> {
    if name.is_empty() {
        return Err("missing socket name (u:NAME)".into());
    }
    let path = crate::stream::socket_path(name);
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(format!(
            "socket path {} is {len} bytes, longer than a unix socket address allows \
             ({MAX_SOCKET_PATH}): use a shorter name or a shorter TRAP_SOCKET_DIR",
            path.display()
        ));
    }
    Ok(path)
}

fn parse_perm(v: &str) -> Result<u32, String> {
    parse_mode(v).ok_or_else(|| format!("bad perm `{v}` (an octal mode 0 to 0777, e.g. perm=0660)"))
}

/// Options of socket outputs, refused on inputs by name.
const OUTPUT_ONLY: [&str; 3] = ["max_clients", "buffer_count", "buffer_size"];

/// `u:NAME[:perm=MODE]` on an input; libtrap's `u:HOST:NAME` form (the
/// second name counts) is accepted.
fn unix_input(params: &[String]) -> Result<Ifc, String> {
    let (first, rest) = params.split_first().ok_or("missing socket name (u:NAME)")?;
    let (mut name, mut second, mut perm) = (first.as_str(), false, None);
    for p in rest {
        match p.split_once('=') {
            Some(("perm", v)) => perm = Some(parse_perm(v)?),
            Some((k, _)) if OUTPUT_ONLY.contains(&k) => {
                return Err(format!("{k}= applies to outputs only"))
            }
            Some(_) => {
                return Err(format!(
                    "unknown parameter `{p}` (an input takes u:NAME[:perm=MODE])"
                ))
            }
            None if !second => {
                name = p;
                second = true;
            }
            None => {
                return Err(format!(
                    "too many parameters in `{}` (an input takes u:NAME[:perm=MODE])",
                    params.join(":")
                ))
            }
        }
    }
    let path = unix_socket_path(name)?;
    let mode = SocketMode::resolve(perm)?;
    Ok(Ifc::UnixIn {
        path,
        shared: mode.shared,
    })
}

/// Checks every parameter of one interface (ranges included) and returns
/// what to open. `input`: the interface is an input.
pub fn check(s: &IfcSpec, input: bool) -> Result<Ifc> {
    let side = if input { "input" } else { "output" };
    let fail = |m: &str| bad(format!("{side} interface `{s}`: {m}"));
    if input && (s.buffer.is_some() || s.autoflush.is_some()) {
        return Err(fail("buffer= and autoflush= apply to outputs only"));
    }
    if input && s.timeout == Some(Timeout::HalfWait) {
        return Err(fail("HALF_WAIT applies to outputs only"));
    }
    let stream_opts = |extra: &[String]| {
        StreamOptions::parse(
            extra,
            s.timeout.unwrap_or_default(),
            s.buffer.unwrap_or(true),
            s.autoflush,
        )
    };
    let first = s.params.first().map(String::as_str).unwrap_or("");
    let ifc = match s.kind {
        IfcKind::Unix if input => unix_input(&s.params),
        IfcKind::Unix => (|| {
            let mut perm = None;
            let mut extra = Vec::new();
            for p in s.params.iter().skip(1) {
                match p.strip_prefix("perm=") {
                    Some(v) => perm = Some(parse_perm(v)?),
                    None => extra.push(p.clone()),
                }
            }
            Ok(Ifc::UnixOut {
                name: first.to_string(),
                path: unix_socket_path(first)?,
                mode: SocketMode::resolve(perm)?,
                opts: stream_opts(&extra)?,
            })
        })(),
        IfcKind::File if first.is_empty() => Err("missing file name (f:PATH)".into()),
        IfcKind::File if input => {
            match s.params.iter().skip(1).find(|p| {
                matches!(p.as_str(), "w" | "a") || p.starts_with("size=") || p.starts_with("time=")
            }) {
                Some(p) => Err(format!(
                    "`{p}`: w, a, size= and time= apply to file outputs only"
                )),
                None => Ok(Ifc::FileIn {
                    pattern: s.joined_params(),
                }),
            }
        }
        IfcKind::File => FileOptions::parse(&s.params, s.buffer.unwrap_or(true)).map(Ifc::FileOut),
        IfcKind::Tcp if input => {
            tcp_input_addr(&s.params).map(|(host, port)| Ifc::TcpIn { host, port })
        }
        IfcKind::Tcp => tcp_output_addr(&s.params).and_then(|(host, port, extra)| {
            Ok(Ifc::TcpOut {
                host,
                port,
                opts: stream_opts(extra)?,
            })
        }),
        IfcKind::Blackhole if input => Err("a blackhole (b:) can only be an output".into()),
        IfcKind::Blackhole => Ok(Ifc::Blackhole),
        IfcKind::Generator => Err(format!(
            "libtrap's test generator (g:) is not supported ({TYPES_HINT})"
        )),
        IfcKind::Service => Err("`s` is not an interface type a module can use".into()),
        IfcKind::Tls if input => {
            tls_input(&s.params).map(|(host, port, files)| Ifc::TlsIn { host, port, files })
        }
        IfcKind::JetStream => {
            crate::jetstream::JsOptions::parse(&s.params, input, s.timeout, s.buffer, s.autoflush)
                .map(|o| {
                    if input {
                        Ifc::JetStreamIn(o)
                    } else {
                        Ifc::JetStreamOut(o)
                    }
                })
        }
        IfcKind::Tls if s.params.is_empty() => {
            Err("missing port (T:PORT:KEYFILE:CERTFILE:CAFILE)".into())
        }
        IfcKind::Tls => tcp_output_addr(&s.params).and_then(|(host, port, rest)| {
            let (files, extra) = tls_files(rest)?;
            Ok(Ifc::TlsOut {
                host,
                port,
                files,
                opts: stream_opts(extra)?,
            })
        }),
    };
    ifc.map_err(|m: String| fail(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<char> {
        parse(s).unwrap().iter().map(|i| i.kind.letter()).collect()
    }

    #[test]
    fn basic_grammar() {
        let v = parse("u:in:timeout=NO_WAIT,f:~/x.trapcap:a:size=10:time=5,b:").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].params, ["in"]);
        assert_eq!(v[0].timeout, Some(Timeout::NoWait));
        assert_eq!(v[1].params, ["~/x.trapcap", "a", "size=10", "time=5"]);
        assert_eq!(kinds("b,u:x"), ['b', 'u']);
        assert_eq!(kinds("u:x,"), ['u']);
    }

    #[test]
    fn setters_anywhere() {
        let v = parse("u:out:timeout=500000:buffer=off:autoflush=off:max_clients=2").unwrap();
        assert_eq!(v[0].params, ["out", "max_clients=2"]);
        assert_eq!(v[0].timeout, Some(Timeout::Micros(500_000)));
        assert_eq!(v[0].buffer, Some(false));
        assert_eq!(v[0].autoflush, Some(None));
        let v = parse("t:7600:timeout=0x10:autoflush=010").unwrap();
        assert_eq!(v[0].timeout, Some(Timeout::Micros(16)));
        assert_eq!(v[0].autoflush, Some(Some(8)));
    }

    #[test]
    fn errors_are_clear() {
        let e = |s| parse(s).unwrap_err().to_string();
        assert_eq!(
            e("x:foo"),
            "interface 1 `x:foo`: unknown interface type `x` \
             (u: unix socket, t: TCP, T: TLS, f: file, b: blackhole, j: NATS JetStream)"
        );
        assert!(e("u:a,,u:b").contains("empty interface"));
        assert_eq!(
            e("mysocket"),
            "interface 1 `mysocket`: no interface type: did you mean `u:mysocket` \
             (unix socket)? (types: u: unix socket, t: TCP, T: TLS, f: file, b: blackhole, j: NATS JetStream)"
        );
        assert!(e("u:a,flows.trapcap").contains("did you mean `f:flows.trapcap` (file)?"));
        assert!(e("7600").contains("did you mean `t:7600` (TCP port)?"));
        assert!(e("u:a:timeout=SOMETIMES").contains("bad timeout"));
        assert!(e("").contains("empty"));
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tcp_hosts_may_be_bracketed_ipv6() {
        let v = parse("t:[::1]:12346:timeout=NO_WAIT,t:[fe80::1%lo]:1,t:h:2").unwrap();
        assert_eq!(v[0].params, ["[::1]", "12346"]);
        assert_eq!(v[0].timeout, Some(Timeout::NoWait));
        assert_eq!(v[0].to_string(), "t:[::1]:12346");
        assert_eq!(tcp_input_addr(&v[0].params), Ok(("::1".to_string(), 12346)));
        assert!(
            tcp_input_addr(&v[1].params).is_err(),
            "zone ids are not Ipv6Addr"
        );
        assert_eq!(tcp_input_addr(&v[2].params), Ok(("h".to_string(), 2)));
        assert_eq!(
            tcp_input_addr(&strings(&["7600"])),
            Ok(("localhost".to_string(), 7600))
        );
        // Other interfaces keep `[` as text (globs in file names).
        assert_eq!(parse("f:a[:]b").unwrap()[0].params, ["a[", "]b"]);
    }

    #[test]
    fn tcp_address_errors_say_what_to_write() {
        let e = |p: &[&str]| tcp_input_addr(&strings(p)).unwrap_err();
        assert_eq!(
            e(&["", "", "1", "12346"]),
            "too many parameters in `::1:12346` \
            (t:HOST:PORT; an IPv6 address goes in brackets: t:[::1]:PORT)"
        );
        assert_eq!(e(&["h", "x"]), "`x` is not a TCP port (1 to 65535)");
        assert_eq!(e(&["h", "0"]), "`0` is not a TCP port (1 to 65535)");
        assert_eq!(e(&["h", "70000"]), "`70000` is not a TCP port (1 to 65535)");
        assert_eq!(
            e(&["[::g]", "1"]),
            "`[::g]` is not an IPv6 address in brackets"
        );
        assert!(e(&["", "1"]).starts_with("empty host"));
        // Through the whole parser: `t:[::1]:P` is no longer cut at its colons.
        let v = parse("t:[::1]:12346").unwrap();
        assert!(tcp_input_addr(&v[0].params).is_ok());
    }

    #[test]
    fn tcp_outputs_take_port_or_host_and_port() {
        let o = |p: &[&str]| {
            tcp_output_addr(&strings(p)).map(|(h, port, rest)| (h, port, rest.to_vec()))
        };
        assert_eq!(o(&["7600"]), Ok((None, 7600, vec![])));
        assert_eq!(
            o(&["7600", "max_clients=2"]),
            Ok((None, 7600, strings(&["max_clients=2"])))
        );
        assert_eq!(
            o(&["127.0.0.1", "12347", "max_clients=2"]),
            Ok((Some("127.0.0.1".into()), 12347, strings(&["max_clients=2"])))
        );
        assert_eq!(o(&["[::1]", "9"]), Ok((Some("::1".into()), 9, vec![])));
        assert_eq!(
            o(&["host", "max_clients=2"]),
            Err("`host` is not a TCP port (t:PORT or t:HOST:PORT)".into())
        );
        assert_eq!(
            o(&["h", "99999"]),
            Err("`99999` is not a TCP port (1 to 65535)".into())
        );
        assert!(o(&[]).is_err());
    }

    #[test]
    fn split_counts_and_checks() {
        let v = parse("u:a,u:b").unwrap();
        let (i, o) = split(v, Some(1), Some(1)).unwrap();
        assert_eq!((i.len(), o.len()), (1, 1));
        let e = split(parse("u:a").unwrap(), Some(1), Some(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 input and 1 output"), "{e}");
        let e = split(parse("u:").unwrap(), Some(1), Some(0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing socket name"), "{e}");
        let e = split(parse("b:").unwrap(), Some(1), Some(0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("only be an output"), "{e}");
        let e = split(parse("u:a:buffer=off").unwrap(), Some(1), Some(0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("outputs only"), "{e}");
        let (i, o) = split(parse("u:a,u:b,u:c").unwrap(), None, Some(1)).unwrap();
        assert_eq!((i.len(), o.len()), (2, 1));
        assert!(split(parse("f:x").unwrap(), Some(0), Some(1)).is_ok());
        assert!(split(parse("s:x").unwrap(), Some(0), Some(1)).is_err());
        let e = split(parse("g:5:hello").unwrap(), Some(1), Some(0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("(g:) is not supported"), "{e}");
    }

    fn check_err(spec: &str, input: bool) -> String {
        let v = parse(spec).unwrap();
        check(&v[0], input).unwrap_err().to_string()
    }

    #[test]
    fn inputs_reject_what_outputs_reject() {
        for (spec, needle) in [
            ("u:a:bogus=1", "unknown parameter `bogus=1`"),
            ("u:a:max_clients=-1", "max_clients= applies to outputs only"),
            ("u:a:buffer_size=5", "buffer_size= applies to outputs only"),
            ("u:a:b:c", "too many parameters"),
            ("u:a:perm=0999", "bad perm `0999`"),
            (
                "f:x.trapcap:size=-1",
                "size= and time= apply to file outputs only",
            ),
            ("f:x.trapcap:a", "apply to file outputs only"),
            ("t:localhost:7600:max_clients=2", "too many parameters"),
        ] {
            let e = check_err(spec, true);
            assert!(e.contains(needle), "{spec}: {e}");
            assert!(e.starts_with(&format!("input interface `{spec}`")), "{e}");
        }
        for (spec, needle) in [
            ("u:a:bogus=1", "unknown parameter `bogus=1`"),
            ("u:a:max_clients=-1", "bad number in `max_clients=-1`"),
            ("u:a:max_clients=65", "max_clients must be 1 to 64"),
            ("u:a:buffer_count=0", "buffer_count must be at least 1"),
            (
                "u:a:buffer_size=99999999999",
                "bad number in `buffer_size=99999999999`",
            ),
            ("u:a:perm=1777", "bad perm `1777`"),
            ("t:7600:perm=0666", "unknown parameter `perm=0666`"),
            ("f:x:size=-1", "bad size `-1`"),
        ] {
            let e = check_err(spec, false);
            assert!(e.contains(needle), "{spec}: {e}");
        }
        // libtrap's u:HOST:NAME form on an input: the second name counts.
        let v = parse("u:localhost:sock:perm=0666").unwrap();
        match check(&v[0], true).unwrap() {
            Ifc::UnixIn { path, shared } => {
                assert!(path.ends_with("trap-sock.sock"), "{path:?}");
                assert!(shared);
            }
            other => panic!("{other:?}"),
        }
        let v = parse("u:out:perm=0640:max_clients=3").unwrap();
        match check(&v[0], false).unwrap() {
            Ifc::UnixOut { mode, opts, .. } => {
                assert_eq!(
                    mode,
                    SocketMode {
                        mode: 0o640,
                        shared: true
                    }
                );
                assert_eq!(opts.max_clients, 3);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn numbers_are_range_checked() {
        let e = |s: &str| parse(s).unwrap_err().to_string();
        assert!(e("u:a:timeout=86400000001").contains("at most 86400000000 microseconds"));
        assert!(e("u:a:timeout=99999999999999999999").contains("bad timeout"));
        assert!(e("u:a:autoflush=86400000001").contains("at most 86400000000"));
        assert_eq!(
            parse("u:a:timeout=86400000000").unwrap()[0].timeout,
            Some(Timeout::Micros(MAX_MICROS))
        );
        assert_eq!(parse_mode("0660"), Some(0o660));
        assert_eq!(parse_mode("666"), Some(0o666));
        assert_eq!(parse_mode("0"), Some(0));
        for bad in ["", "8", "01777", "0x1", "-1", "00000660", "rw"] {
            assert_eq!(parse_mode(bad), None, "{bad}");
        }
    }

    fn files(key: &str, cert: &str, ca: &str) -> TlsFiles {
        TlsFiles {
            key: key.into(),
            cert: cert.into(),
            ca: ca.into(),
        }
    }

    fn checked(spec: &str, input: bool) -> Ifc {
        check(&parse(spec).unwrap()[0], input).unwrap()
    }

    #[test]
    fn tls_inputs_take_libtraps_two_forms() {
        let want = |host: &str, port| Ifc::TlsIn {
            host: host.into(),
            port,
            files: files("k.pem", "c.pem", "ca.pem"),
        };
        assert_eq!(
            checked("T:7600:k.pem:c.pem:ca.pem", true),
            want("localhost", 7600)
        );
        assert_eq!(
            checked("T:collector:7600:k.pem:c.pem:ca.pem", true),
            want("collector", 7600)
        );
        assert_eq!(
            checked(
                "T:[2001:db8::1]:7600:k.pem:c.pem:ca.pem:timeout=NO_WAIT",
                true
            ),
            want("2001:db8::1", 7600)
        );
        let v = parse("T:h:1:/etc/k.pem:/etc/c.pem:/etc/ca.pem:timeout=500").unwrap();
        assert_eq!(v[0].timeout, Some(Timeout::Micros(500)));
        assert_eq!(v[0].kind, IfcKind::Tls);
    }

    #[test]
    fn tls_outputs_take_files_then_stream_options() {
        match checked("T:7600:k.pem:c.pem:ca.pem", false) {
            Ifc::TlsOut {
                host,
                port,
                files: f,
                opts,
            } => {
                assert_eq!((host, port), (None, 7600));
                assert_eq!(f, files("k.pem", "c.pem", "ca.pem"));
                assert_eq!(opts.max_clients, 64);
                assert_eq!(opts.mode, Timeout::Wait);
            }
            other => panic!("{other:?}"),
        }
        let spec = "T:7600:k:c:ca:max_clients=3:buffer_count=10:buffer_size=5000:timeout=NO_WAIT:autoflush=off";
        match checked(spec, false) {
            Ifc::TlsOut { opts, .. } => {
                assert_eq!(opts.max_clients, 3);
                assert_eq!(opts.payload, 5000 - 14);
                assert_eq!(opts.mode, Timeout::NoWait);
                assert_eq!(opts.autoflush, None);
            }
            other => panic!("{other:?}"),
        }
        match checked("T:127.0.0.1:7600:k:c:ca:buffer=off", false) {
            Ifc::TlsOut {
                host, port, opts, ..
            } => {
                assert_eq!((host.as_deref(), port), (Some("127.0.0.1"), 7600));
                assert!(!opts.buffered);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tls_errors_say_what_to_write() {
        for (spec, input, needle) in [
            ("T:", true, "missing parameters"),
            ("T:7600", true, "missing parameters"),
            ("T:7600:k:c", true, "missing parameters"),
            ("T:h:7600:k:c:ca:x", true, "too many parameters"),
            ("T:h:7600:k:c:ca:max_clients=2", true, "too many parameters"),
            ("T:h:x:k:c:ca", true, "`x` is not a TCP port"),
            ("T:0:k:c:ca", true, "`0` is not a TCP port"),
            ("T:70000:k:c:ca", true, "`70000` is not a TCP port"),
            ("T:h:1:k:c:max_clients=2", true, "is not a CAFILE"),
            ("T:h:1::c:ca", true, "empty KEYFILE"),
            ("T:1:k:c:ca:buffer=off", true, "outputs only"),
            ("T:", false, "missing port (T:PORT:KEYFILE:CERTFILE:CAFILE)"),
            ("T:7600", false, "missing KEYFILE:CERTFILE:CAFILE"),
            ("T:7600:k:c", false, "missing KEYFILE:CERTFILE:CAFILE"),
            ("T:7600:k:c:max_clients=2", false, "is not a CAFILE"),
            ("T:7600:k:c:ca:extra", false, "unknown parameter `extra`"),
            (
                "T:7600:k:c:ca:max_clients=65",
                false,
                "max_clients must be 1 to 64",
            ),
            ("T:7600:k:c:ca:buffer_size=3", false, "too small"),
            ("T:99999:k:c:ca", false, "`99999` is not a TCP port"),
        ] {
            let e = check_err(spec, input);
            assert!(e.contains(needle), "{spec}: {e}");
            let side = if input { "input" } else { "output" };
            assert!(e.starts_with(&format!("{side} interface `T:")), "{e}");
        }
    }

    #[test]
    fn socket_paths_must_fit_a_socket_address() {
        let long = "a".repeat(200);
        for input in [true, false] {
            let e = check_err(&format!("u:{long}"), input);
            assert!(
                e.contains("longer than a unix socket address allows (107)"),
                "{e}"
            );
        }
        let e = unix_socket_path("").unwrap_err();
        assert!(e.contains("missing socket name"), "{e}");
    }
}
