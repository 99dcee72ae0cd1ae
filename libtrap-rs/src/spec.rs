//! The `-i IFC_SPEC` grammar: interfaces separated by `,`, parameters by `:`.
//!
//! `u:name,f:out.trapcap:a:size=100`: the first letter of each segment is the
//! interface type; the common setters `timeout=`, `buffer=` and `autoflush=`
//! may stand among the parameters of any interface and are taken out before
//! the type-specific parameters are read. Inputs come first, then outputs.
//!
//! Differences from libtrap, all on input libtrap mishandles: a bare letter
//! (`b,u:x`) is one interface here (libtrap reads it as `bb`); `buffer=` or
//! `autoflush=` on an input is an error instead of a mangled socket name.

use crate::error::{Result, TrapError};
use std::fmt;
use std::time::Duration;

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

fn parse_one(seg: &str) -> Result<IfcSpec, String> {
    let mut chars = seg.chars();
    let letter = chars
        .next()
        .ok_or("empty interface (two commas in a row?)")?;
    let kind = IfcKind::from_letter(letter)
        .ok_or_else(|| format!("unknown interface type `{letter}` (use t, T, u, f, b or g)"))?;
    let rest = chars.as_str();
    let rest = match rest.strip_prefix(':') {
        Some(r) => r,
        None if rest.is_empty() => "",
        None => return Err(format!("expected `:` after the type letter `{letter}`")),
    };
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
    for tok in rest.split(':') {
        if let Some(v) = tok.strip_prefix("timeout=") {
            out.timeout = Some(match v {
                "WAIT" => Timeout::Wait,
                "NO_WAIT" => Timeout::NoWait,
                "HALF_WAIT" => Timeout::HalfWait,
                _ => Timeout::Micros(parse_c_uint(v).ok_or_else(|| {
                    format!("bad timeout `{v}` (WAIT, NO_WAIT, HALF_WAIT or microseconds)")
                })?),
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
                _ => Some(
                    parse_c_uint(v)
                        .ok_or_else(|| format!("bad autoflush `{v}` (off or microseconds)"))?,
                ),
            });
        } else {
            out.params.push(tok.to_string());
        }
    }
    Ok(out)
}

/// Splits a parsed spec into inputs and outputs for a module with `n_in`
/// inputs and `n_out` outputs (`None` = as many as remain, for one side only),
/// and checks what each side accepts.
pub fn split(
    specs: Vec<IfcSpec>,
    n_in: Option<usize>,
    n_out: Option<usize>,
) -> Result<(Vec<IfcSpec>, Vec<IfcSpec>)> {
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
    for s in &specs {
        check(s, true)?;
    }
    for s in &outputs {
        check(s, false)?;
    }
    Ok((specs, outputs))
}

fn check(s: &IfcSpec, input: bool) -> Result<()> {
    let side = if input { "input" } else { "output" };
    let fail = |m: &str| Err(bad(format!("{side} interface `{s}`: {m}")));
    if input && (s.buffer.is_some() || s.autoflush.is_some()) {
        return fail("buffer= and autoflush= apply to outputs only");
    }
    if input && s.timeout == Some(Timeout::HalfWait) {
        return fail("HALF_WAIT applies to outputs only");
    }
    let first = s.params.first().map(String::as_str).unwrap_or("");
    match s.kind {
        IfcKind::Unix if first.is_empty() => fail("missing socket name (u:NAME)"),
        IfcKind::File if first.is_empty() => fail("missing file name (f:PATH)"),
        IfcKind::Tcp if first.is_empty() => fail(if input {
            "missing port (t:HOST:PORT or t:PORT)"
        } else {
            "missing port (t:PORT)"
        }),
        IfcKind::Blackhole if input => fail("a blackhole (b:) can only be an output"),
        IfcKind::Generator if !input => fail("a generator (g:) can only be an input"),
        IfcKind::Service => fail("`s` is not an interface type a module can use"),
        _ => Ok(()),
    }
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
        assert!(e("x:foo").contains("unknown interface type `x`"));
        assert!(e("u:a,,u:b").contains("empty interface"));
        assert!(e("ux").contains("expected `:`"));
        assert!(e("u:a:timeout=SOMETIMES").contains("bad timeout"));
        assert!(e("").contains("empty"));
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
    }
}
