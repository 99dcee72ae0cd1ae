//! The batch format of the eBPF TrafficAnalyzer's firewall (Polycube's
//! `…/chain/NAME/batch`):
//!
//! `{"rules":[{"operation":"insert|append|update|delete","id":…,"l4proto":…,
//! "src":…,"dst":…,"sport":…,"dport":…,"tcpflags":…,"conntrack":…,
//! "action":"drop|forward","description":…}]}`
//!
//! Parsed strictly: unknown keys, wrong types, bad addresses, ports or
//! flags refuse the whole batch with a message naming the rule (by index)
//! and the field. `insert` and `update` need an id; `append` takes none (the
//! id is the position it gets); `delete` has either an id and nothing else,
//! or the fields of the rule to remove (exact match). Ports need TCP or UDP,
//! TCP flags need TCP. The action defaults to drop, as in the seed.

use serde_json::{Map, Value};
use std::fmt;
use std::net::IpAddr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct BatchError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, BatchError> {
    Err(BatchError(msg.into()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Insert,
    Append,
    Update,
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L4Proto {
    Tcp,
    Udp,
    Icmp,
}

impl L4Proto {
    pub fn name(self) -> &'static str {
        match self {
            L4Proto::Tcp => "TCP",
            L4Proto::Udp => "UDP",
            L4Proto::Icmp => "ICMP",
        }
    }
}

/// An address with a prefix length (a plain address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn parse(s: &str) -> Option<Prefix> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            None => max,
            Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) && l.len() <= 3 => {
                l.parse().ok().filter(|&n| n <= max)?
            }
            Some(_) => return None,
        };
        Some(Prefix {
            addr: mask(addr, len),
            len,
        })
    }

    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    pub fn host_len(&self) -> bool {
        self.len == if self.is_v4() { 32 } else { 128 }
    }

    /// Does this prefix contain `other` entirely?
    pub fn contains(&self, other: &Prefix) -> bool {
        self.is_v4() == other.is_v4()
            && other.len >= self.len
            && mask(other.addr, self.len) == self.addr
    }

    /// Do the two prefixes share any address?
    pub fn overlaps(&self, other: &Prefix) -> bool {
        self.contains(other) || other.contains(self)
    }
}

fn mask(a: IpAddr, len: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            IpAddr::V4((u32::from(v) & m).into())
        }
        IpAddr::V6(v) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            IpAddr::V6((u128::from(v) & m).into())
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A port or an inclusive range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ports {
    pub lo: u16,
    pub hi: u16,
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

pub const TCP_FLAG_NAMES: [(&str, u8); 8] = [
    ("FIN", 0x01),
    ("SYN", 0x02),
    ("RST", 0x04),
    ("PSH", 0x08),
    ("ACK", 0x10),
    ("URG", 0x20),
    ("ECE", 0x40),
    ("CWR", 0x80),
];

/// TCP flags to compare: `(flags & mask) == value`. Text: names separated
/// by commas or spaces, `!NAME` for a flag that must be 0 (`SYN,!ACK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpFlags {
    pub mask: u8,
    pub value: u8,
}

impl TcpFlags {
    pub fn parse(s: &str) -> Result<TcpFlags, String> {
        let mut f = TcpFlags { mask: 0, value: 0 };
        for tok in s.split([',', ' ', '|']).filter(|t| !t.is_empty()) {
            let (neg, name) = match tok.strip_prefix('!') {
                Some(n) => (true, n),
                None => (false, tok),
            };
            let Some(&(_, bit)) = TCP_FLAG_NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
            else {
                return Err(format!(
                    "unknown TCP flag `{name}` (SYN, FIN, ACK, RST, PSH, URG, CWR, ECE; !NAME for 0)"
                ));
            };
            if f.mask & bit != 0 {
                return Err(format!("TCP flag {name} given twice"));
            }
            f.mask |= bit;
            if !neg {
                f.value |= bit;
            }
        }
        if f.mask == 0 {
            return Err("no TCP flag given".into());
        }
        Ok(f)
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (n, bit) in TCP_FLAG_NAMES {
            if self.mask & bit != 0 {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                if self.value & bit == 0 {
                    f.write_str("!")?;
                }
                f.write_str(n)?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Conntrack {
    New,
    Established,
    Related,
    Invalid,
}

impl Conntrack {
    pub fn name(self) -> &'static str {
        match self {
            Conntrack::New => "NEW",
            Conntrack::Established => "ESTABLISHED",
            Conntrack::Related => "RELATED",
            Conntrack::Invalid => "INVALID",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Drop,
    Forward,
}

/// The match and action of a firewall rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    pub l4proto: Option<L4Proto>,
    pub src: Option<Prefix>,
    pub dst: Option<Prefix>,
    pub sport: Option<Ports>,
    pub dport: Option<Ports>,
    pub tcpflags: Option<TcpFlags>,
    pub conntrack: Option<Conntrack>,
    pub action: Action,
    pub description: Option<String>,
}

impl Rule {
    /// A rule dropping everything from `src`.
    pub fn drop_from(src: Prefix, description: String) -> Rule {
        Rule {
            l4proto: None,
            src: Some(src),
            dst: None,
            sport: None,
            dport: None,
            tcpflags: None,
            conntrack: None,
            action: Action::Drop,
            description: Some(description),
        }
    }

    /// The rule in the batch format (with its id).
    pub fn to_json(&self, id: usize) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), id.into());
        if let Some(p) = self.l4proto {
            m.insert("l4proto".into(), p.name().into());
        }
        if let Some(p) = self.src {
            m.insert("src".into(), p.to_string().into());
        }
        if let Some(p) = self.dst {
            m.insert("dst".into(), p.to_string().into());
        }
        if let Some(p) = self.sport {
            m.insert("sport".into(), port_json(p));
        }
        if let Some(p) = self.dport {
            m.insert("dport".into(), port_json(p));
        }
        if let Some(f) = self.tcpflags {
            m.insert("tcpflags".into(), f.to_string().into());
        }
        if let Some(c) = self.conntrack {
            m.insert("conntrack".into(), c.name().into());
        }
        m.insert(
            "action".into(),
            match self.action {
                Action::Drop => "drop",
                Action::Forward => "forward",
            }
            .into(),
        );
        if let Some(d) = &self.description {
            m.insert("description".into(), d.clone().into());
        }
        Value::Object(m)
    }
}

fn port_json(p: Ports) -> Value {
    if p.lo == p.hi {
        p.lo.into()
    } else {
        p.to_string().into()
    }
}

/// One operation of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Insert { id: usize, rule: Rule },
    Append { rule: Rule },
    Update { id: usize, rule: Rule },
    DeleteId { id: usize },
    DeleteMatch { rule: Rule },
}

const KEYS: [&str; 11] = [
    "operation",
    "id",
    "l4proto",
    "src",
    "dst",
    "sport",
    "dport",
    "tcpflags",
    "conntrack",
    "action",
    "description",
];

/// Parses a batch (JSON text).
pub fn parse_batch(text: &str) -> Result<Vec<Op>, BatchError> {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return err(format!("the batch is not JSON: {e}")),
    };
    let Some(obj) = v.as_object() else {
        return err("the batch must be an object {\"rules\": [...]}");
    };
    if let Some(k) = obj.keys().find(|k| *k != "rules") {
        return err(format!("unknown key `{k}` in the batch (only \"rules\")"));
    }
    let Some(rules) = obj.get("rules") else {
        return err("the batch has no \"rules\" list");
    };
    let Some(rules) = rules.as_array() else {
        return err("\"rules\" must be a list");
    };
    if rules.is_empty() {
        return err("\"rules\" is empty: nothing to do");
    }
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| parse_op(r).map_err(|e| BatchError(format!("rule {i}: {}", e.0))))
        .collect()
}

fn str_field<'a>(m: &'a Map<String, Value>, k: &str) -> Result<Option<&'a str>, BatchError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => err(format!("\"{k}\" must be a string")),
    }
}

fn parse_ports(m: &Map<String, Value>, k: &str) -> Result<Option<Ports>, BatchError> {
    let bad = || {
        BatchError(format!(
            "\"{k}\" must be a port 0-65535 or a range \"LO-HI\""
        ))
    };
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let p = n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(bad)?;
            Ok(Some(Ports { lo: p, hi: p }))
        }
        Some(Value::String(s)) => {
            let (lo, hi) = match s.split_once('-') {
                Some((a, b)) => (a, b),
                None => (s.as_str(), s.as_str()),
            };
            let p = |x: &str| {
                x.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|_| !x.trim().starts_with('+'))
            };
            match (p(lo), p(hi)) {
                (Some(lo), Some(hi)) if lo <= hi => Ok(Some(Ports { lo, hi })),
                _ => Err(bad()),
            }
        }
        Some(_) => Err(bad()),
    }
}

fn parse_op(v: &Value) -> Result<Op, BatchError> {
    let Some(m) = v.as_object() else {
        return err("must be an object");
    };
    if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return err(format!("unknown key `{k}` (keys: {})", KEYS.join(", ")));
    }
    let op = match str_field(m, "operation")? {
        None => return err("no \"operation\" (insert, append, update or delete)"),
        Some(s) => match s.to_ascii_lowercase().as_str() {
            "insert" => Operation::Insert,
            "append" => Operation::Append,
            "update" => Operation::Update,
            "delete" => Operation::Delete,
            _ => {
                return err(format!(
                    "unknown operation `{s}` (insert, append, update or delete)"
                ))
            }
        },
    };
    let id = match m.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n <= 1_000_000 => Some(n),
            _ => return err("\"id\" must be a whole number 0-1000000"),
        },
        Some(_) => return err("\"id\" must be a number"),
    };
    let has_fields = KEYS[2..]
        .iter()
        .any(|k| m.get(*k).is_some_and(|v| !v.is_null()));
    match (op, id) {
        (Operation::Insert, None) => return err("insert needs an \"id\" (the position)"),
        (Operation::Update, None) => return err("update needs the \"id\" of the rule"),
        (Operation::Append, Some(_)) => {
            return err("append takes no \"id\" (it gets the next one; insert places a rule)")
        }
        (Operation::Delete, Some(id)) => {
            if has_fields {
                return err("delete by \"id\" takes no other field (or give the fields and no id)");
            }
            return Ok(Op::DeleteId { id });
        }
        (Operation::Delete, None) if !has_fields => {
            return err("delete needs an \"id\" or the fields of the rule to remove")
        }
        _ => {}
    }
    let rule = parse_rule(m)?;
    Ok(match (op, id) {
        (Operation::Insert, Some(id)) => Op::Insert { id, rule },
        (Operation::Update, Some(id)) => Op::Update { id, rule },
        (Operation::Append, _) => Op::Append { rule },
        _ => Op::DeleteMatch { rule },
    })
}

fn parse_rule(m: &Map<String, Value>) -> Result<Rule, BatchError> {
    let l4proto = match str_field(m, "l4proto")? {
        None => None,
        Some(s) => Some(match s.to_ascii_uppercase().as_str() {
            "TCP" => L4Proto::Tcp,
            "UDP" => L4Proto::Udp,
            "ICMP" => L4Proto::Icmp,
            _ => return err(format!("unknown \"l4proto\" `{s}` (TCP, UDP or ICMP)")),
        }),
    };
    let prefix = |k: &str| -> Result<Option<Prefix>, BatchError> {
        match str_field(m, k)? {
            None => Ok(None),
            Some(s) => Prefix::parse(s).map(Some).ok_or_else(|| {
                BatchError(format!(
                    "\"{k}\" `{s}` is not an IP address or prefix (198.51.100.7, 203.0.113.0/24, 2001:db8::/32)"
                ))
            }),
        }
    };
    let src = prefix("src")?;
    let dst = prefix("dst")?;
    if let (Some(s), Some(d)) = (src, dst) {
        if s.is_v4() != d.is_v4() {
            return err("\"src\" and \"dst\" are of different IP versions");
        }
    }
    let sport = parse_ports(m, "sport")?;
    let dport = parse_ports(m, "dport")?;
    if (sport.is_some() || dport.is_some()) && !matches!(l4proto, Some(L4Proto::Tcp | L4Proto::Udp))
    {
        return err("ports need \"l4proto\" TCP or UDP");
    }
    let tcpflags = match str_field(m, "tcpflags")? {
        None => None,
        Some(s) => Some(TcpFlags::parse(s).map_err(|e| BatchError(format!("\"tcpflags\": {e}")))?),
    };
    if tcpflags.is_some() && l4proto != Some(L4Proto::Tcp) {
        return err("\"tcpflags\" needs \"l4proto\" TCP");
    }
    let conntrack = match str_field(m, "conntrack")? {
        None => None,
        Some(s) => Some(match s.to_ascii_uppercase().as_str() {
            "NEW" => Conntrack::New,
            "ESTABLISHED" => Conntrack::Established,
            "RELATED" => Conntrack::Related,
            "INVALID" => Conntrack::Invalid,
            _ => {
                return err(format!(
                    "unknown \"conntrack\" `{s}` (NEW, ESTABLISHED, RELATED or INVALID)"
                ))
            }
        }),
    };
    let action = match str_field(m, "action")? {
        None => Action::Drop,
        Some(s) => match s.to_ascii_lowercase().as_str() {
            "drop" => Action::Drop,
            "forward" => Action::Forward,
            _ => return err(format!("unknown \"action\" `{s}` (drop or forward)")),
        },
    };
    let description = match str_field(m, "description")? {
        Some(d) if d.len() > 100 => return err("\"description\" is longer than 100 bytes"),
        Some(d) if d.chars().any(|c| c.is_control()) => {
            return err("\"description\" holds control characters")
        }
        d => d.map(str::to_string),
    };
    Ok(Rule {
        l4proto,
        src,
        dst,
        sport,
        dport,
        tcpflags,
        conntrack,
        action,
        description,
    })
}

#[cfg(test)]
pub(crate) fn tests_seed() -> &'static str {
    tests::SEED
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's example batch.
    pub const SEED: &str = r#"{"rules": [
        {"operation": "insert", "id": 0, "l4proto":"TCP", "src":"10.0.0.100/32", "dst":"10.0.0.150/24", "action":"drop"},
        {"operation": "append", "l4proto": "ICMP", "src":"10.0.0.50/32", "dst":"10.0.0.75/24", "action":"drop"},
        {"operation": "append", "l4proto": "ICMP", "src":"10.0.0.11/32", "dst":"10.0.0.12/24", "action":"drop"},
        {"operation": "update", "id": 0, "l4proto":"TCP", "src":"10.0.0.100/32", "dst":"10.0.0.75/24", "action":"forward"},
        {"operation": "delete", "id": 0},
        {"operation": "delete", "l4proto":"ICMP", "src":"10.0.0.50/32", "dst":"10.0.0.75/24", "action":"drop"}
    ]}"#;

    #[test]
    fn the_seed_batch_parses() {
        let ops = parse_batch(SEED).unwrap();
        assert_eq!(ops.len(), 6);
        let Op::Insert { id: 0, rule } = &ops[0] else {
            panic!("{:?}", ops[0])
        };
        assert_eq!(rule.dst.unwrap().to_string(), "10.0.0.0/24");
        assert!(matches!(ops[4], Op::DeleteId { id: 0 }));
        assert!(matches!(ops[5], Op::DeleteMatch { .. }));
    }

    #[test]
    fn malformed_batches_name_the_problem() {
        let cases = [
            ("", "not JSON"),
            ("[]", "must be an object"),
            ("{}", "no \"rules\""),
            (r#"{"rules":[], "x":1}"#, "unknown key `x`"),
            (r#"{"rules":[]}"#, "empty"),
            (r#"{"rules":[{"id":1}]}"#, "rule 0: no \"operation\""),
            (
                r#"{"rules":[{"operation":"move"}]}"#,
                "unknown operation `move`",
            ),
            (
                r#"{"rules":[{"operation":"insert","src":"198.51.100.1"}]}"#,
                "insert needs an \"id\"",
            ),
            (
                r#"{"rules":[{"operation":"update","src":"198.51.100.1"}]}"#,
                "update needs",
            ),
            (
                r#"{"rules":[{"operation":"append","id":3}]}"#,
                "append takes no",
            ),
            (r#"{"rules":[{"operation":"delete"}]}"#, "delete needs"),
            (
                r#"{"rules":[{"operation":"delete","id":1,"src":"198.51.100.1"}]}"#,
                "takes no other field",
            ),
            (
                r#"{"rules":[{"operation":"append","src":"198.51.100.300"}]}"#,
                "\"src\" `198.51.100.300`",
            ),
            (
                r#"{"rules":[{"operation":"append","src":"198.51.100.0/33"}]}"#,
                "\"src\"",
            ),
            (
                r#"{"rules":[{"operation":"append","dport":80}]}"#,
                "ports need",
            ),
            (
                r#"{"rules":[{"operation":"append","l4proto":"TCP","dport":70000}]}"#,
                "\"dport\" must be",
            ),
            (
                r#"{"rules":[{"operation":"append","l4proto":"TCP","dport":"90-80"}]}"#,
                "\"dport\" must be",
            ),
            (
                r#"{"rules":[{"operation":"append","l4proto":"UDP","tcpflags":"SYN"}]}"#,
                "needs \"l4proto\" TCP",
            ),
            (
                r#"{"rules":[{"operation":"append","l4proto":"TCP","tcpflags":"SYN,XMAS"}]}"#,
                "unknown TCP flag `XMAS`",
            ),
            (
                r#"{"rules":[{"operation":"append","conntrack":"OLD"}]}"#,
                "unknown \"conntrack\"",
            ),
            (
                r#"{"rules":[{"operation":"append","action":"reject"}]}"#,
                "unknown \"action\"",
            ),
            (
                r#"{"rules":[{"operation":"append","l4proto":"SCTP"}]}"#,
                "unknown \"l4proto\"",
            ),
            (
                r#"{"rules":[{"operation":"append","src":"198.51.100.1","dst":"2001:db8::1"}]}"#,
                "different IP versions",
            ),
            (
                r#"{"rules":[{"operation":"append","src":"198.51.100.1"},{"operation":"append","sport":1}]}"#,
                "rule 1:",
            ),
            (
                r#"{"rules":[{"operation":"append","src":5}]}"#,
                "must be a string",
            ),
            (
                r#"{"rules":[{"operation":"append","prio":5}]}"#,
                "unknown key `prio`",
            ),
        ];
        for (text, want) in cases {
            let e = parse_batch(text).unwrap_err().0;
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn fields_round_trip_through_json() {
        let t = r#"{"rules":[{"operation":"append","l4proto":"tcp","src":"2001:db8::1/64","sport":"1000-2000","dport":443,"tcpflags":"SYN,!ACK","conntrack":"new","action":"forward","description":"web"}]}"#;
        let Op::Append { rule } = &parse_batch(t).unwrap()[0] else {
            panic!()
        };
        let j = rule.to_json(4);
        assert_eq!(
            j.to_string(),
            r#"{"action":"forward","conntrack":"NEW","description":"web","dport":443,"id":4,"l4proto":"TCP","sport":"1000-2000","src":"2001:db8::/64","tcpflags":"SYN,!ACK"}"#
        );
    }

    #[test]
    fn prefixes() {
        let p = Prefix::parse("203.0.113.0/24").unwrap();
        assert!(p.contains(&Prefix::parse("203.0.113.9").unwrap()));
        assert!(!p.contains(&Prefix::parse("203.0.112.0/23").unwrap()));
        assert!(p.overlaps(&Prefix::parse("203.0.112.0/23").unwrap()));
        assert!(!p.overlaps(&Prefix::parse("2001:db8::/32").unwrap()));
        assert_eq!(Prefix::parse("0.0.0.0/0").unwrap().len, 0);
        for bad in ["", "1.2.3.4/", "1.2.3.4/+1", "1.2.3.4/a", "::/129", "x"] {
            assert!(Prefix::parse(bad).is_none(), "{bad}");
        }
    }
}
