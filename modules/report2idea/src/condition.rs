//! A subset of the pynspect (Mentat) filter language used in reporter rules.
//!
//! Supported: `and`/`&&`, `or`/`||`, `not`/`!`, parentheses, `exists PATH`,
//! `true`/`false`, and comparisons `PATH OP VALUE` with `==`/`eq`,
//! `!=`/`ne`/`<>`, `>`/`gt`, `>=`/`ge`, `<`/`lt`, `<=`/`le`, `in`/`~~`.
//! Values: numbers, quoted strings, IP addresses and CIDR prefixes, lists
//! `[a, b]`, and address-group ids (replaced by the group's list).
//! Paths are dotted IDEA keys (`Source.IP4`, `Node.Name`); arrays on the way
//! are flattened and a comparison holds when any reached value satisfies it.
//! Not supported: `xor`, `like`/regex, arithmetic, functions, `[n]` indexes.
//!
//! Parentheses, `not`s and lists may nest at most [`MAX_DEPTH`] levels (a
//! deeper condition is refused with an error naming the limit), so parsing,
//! evaluating and dropping a condition cannot run off the stack; chains of
//! `and`/`or` are flat lists and may be of any length.

use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// An IP network (a plain address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Net {
    pub fn parse(text: &str) -> Option<Net> {
        let (a, p) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max)?,
            None => max,
        };
        Some(Net { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Num(f64),
    Str(String),
    Net(Net),
    List(Vec<Literal>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    In,
}

/// How deeply parentheses, `not`s and lists may nest in a condition. Real
/// rules nest a few levels; the bound keeps the recursive parser and
/// evaluator within a thread's stack (2 MiB is enough).
pub const MAX_DEPTH: usize = 256;

#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Const(bool),
    Not(Box<Cond>),
    /// All hold (`a and b and c` is one list, so a long chain is not deep).
    And(Vec<Cond>),
    /// One holds.
    Or(Vec<Cond>),
    Exists(Vec<String>),
    Cmp(Vec<String>, Op, Literal),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBrack,
    RBrack,
    Comma,
    Op(Op),
    And,
    Or,
    Not,
    Exists,
    Str(String),
    Word(String),
}

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let two = |i: usize| -> String { b[i..(i + 2).min(b.len())].iter().collect() };
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let t = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBrack,
            ']' => Tok::RBrack,
            ',' | ';' => Tok::Comma,
            '"' | '\'' => {
                let end = b[i + 1..]
                    .iter()
                    .position(|&x| x == c)
                    .ok_or_else(|| format!("unterminated string at column {}", i + 1))?;
                let s: String = b[i + 1..i + 1 + end].iter().collect();
                i += end + 2;
                out.push(Tok::Str(s));
                continue;
            }
            '=' | '!' | '<' | '>' | '&' | '|' | '~' => {
                let (tok, len) = match two(i).as_str() {
                    "==" => (Tok::Op(Op::Eq), 2),
                    "!=" => (Tok::Op(Op::Ne), 2),
                    "<>" => (Tok::Op(Op::Ne), 2),
                    ">=" => (Tok::Op(Op::Ge), 2),
                    "<=" => (Tok::Op(Op::Le), 2),
                    "&&" => (Tok::And, 2),
                    "||" => (Tok::Or, 2),
                    "~~" => (Tok::Op(Op::In), 2),
                    _ => match c {
                        '>' => (Tok::Op(Op::Gt), 1),
                        '<' => (Tok::Op(Op::Lt), 1),
                        '!' => (Tok::Not, 1),
                        _ => return Err(format!("unsupported operator at column {}", i + 1)),
                    },
                };
                i += len;
                out.push(tok);
                continue;
            }
            _ => {
                let start = i;
                while i < b.len() && !b[i].is_whitespace() && !"()[],;\"'=!<>&|~".contains(b[i]) {
                    i += 1;
                }
                let w: String = b[start..i].iter().collect();
                out.push(match w.as_str() {
                    "and" | "AND" => Tok::And,
                    "or" | "OR" => Tok::Or,
                    "not" | "NOT" => Tok::Not,
                    "exists" | "EXISTS" => Tok::Exists,
                    "eq" | "EQ" | "is" | "IS" => Tok::Op(Op::Eq),
                    "ne" | "NE" => Tok::Op(Op::Ne),
                    "gt" | "GT" => Tok::Op(Op::Gt),
                    "ge" | "GE" => Tok::Op(Op::Ge),
                    "lt" | "LT" => Tok::Op(Op::Lt),
                    "le" | "LE" => Tok::Op(Op::Le),
                    "in" | "IN" => Tok::Op(Op::In),
                    "xor" | "XOR" | "like" | "LIKE" => {
                        return Err(format!("`{w}` is not supported in conditions"))
                    }
                    _ => Tok::Word(w),
                });
                continue;
            }
        };
        out.push(t);
        i += 1;
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    groups: &'a HashMap<String, Vec<Net>>,
    /// Parentheses, `not`s and lists open at `pos`.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, t: Tok, what: &str) -> Result<(), String> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            other => Err(format!(
                "expected {what}, found {}",
                describe(other.as_ref())
            )),
        }
    }

    /// One more level of nesting, refused beyond [`MAX_DEPTH`].
    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "nested more than {MAX_DEPTH} levels deep (the limit for parentheses, \
                 `not`s and lists)"
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Cond, String> {
        let first = self.and()?;
        if self.peek() != Some(&Tok::Or) {
            return Ok(first);
        }
        let mut all = vec![first];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            all.push(self.and()?);
        }
        Ok(Cond::Or(all))
    }

    fn and(&mut self) -> Result<Cond, String> {
        let first = self.unary()?;
        if self.peek() != Some(&Tok::And) {
            return Ok(first);
        }
        let mut all = vec![first];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            all.push(self.unary()?);
        }
        Ok(Cond::And(all))
    }

    fn unary(&mut self) -> Result<Cond, String> {
        match self.next() {
            Some(Tok::Not) => {
                self.enter()?;
                let c = Cond::Not(Box::new(self.unary()?));
                self.depth -= 1;
                Ok(c)
            }
            Some(Tok::LParen) => {
                self.enter()?;
                let c = self.or()?;
                self.expect(Tok::RParen, "`)`")?;
                self.depth -= 1;
                Ok(c)
            }
            Some(Tok::Exists) => match self.next() {
                Some(Tok::Word(w)) => Ok(Cond::Exists(path(&w))),
                other => Err(format!(
                    "expected a path after exists, found {}",
                    describe(other.as_ref())
                )),
            },
            Some(Tok::Word(w)) if w == "true" || w == "True" => Ok(Cond::Const(true)),
            Some(Tok::Word(w)) if w == "false" || w == "False" => Ok(Cond::Const(false)),
            Some(Tok::Word(w)) => {
                let op = match self.next() {
                    Some(Tok::Op(op)) => op,
                    other => {
                        return Err(format!(
                            "expected an operator after `{w}`, found {}",
                            describe(other.as_ref())
                        ))
                    }
                };
                Ok(Cond::Cmp(path(&w), op, self.literal()?))
            }
            other => Err(format!("unexpected {}", describe(other.as_ref()))),
        }
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Literal::Str(s)),
            Some(Tok::LBrack) => {
                self.enter()?;
                let mut items = Vec::new();
                if self.peek() == Some(&Tok::RBrack) {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Literal::List(items));
                }
                loop {
                    items.push(self.literal()?);
                    match self.next() {
                        Some(Tok::Comma) => {}
                        Some(Tok::RBrack) => {
                            self.depth -= 1;
                            return Ok(Literal::List(items));
                        }
                        other => {
                            return Err(format!(
                                "expected `,` or `]`, found {}",
                                describe(other.as_ref())
                            ))
                        }
                    }
                }
            }
            Some(Tok::Word(w)) => {
                if let Some(g) = self.groups.get(&w) {
                    Ok(Literal::List(g.iter().map(|n| Literal::Net(*n)).collect()))
                } else if let Ok(n) = w.parse::<f64>() {
                    Ok(Literal::Num(n))
                } else if let Some(n) = Net::parse(&w) {
                    Ok(Literal::Net(n))
                } else {
                    Err(format!(
                        "`{w}` is not a number, address, string or address group"
                    ))
                }
            }
            other => Err(format!(
                "expected a value, found {}",
                describe(other.as_ref())
            )),
        }
    }
}

fn describe(t: Option<&Tok>) -> String {
    match t {
        None => "the end".into(),
        Some(Tok::Word(w)) => format!("`{w}`"),
        Some(Tok::Str(s)) => format!("\"{s}\""),
        Some(t) => format!("{t:?}"),
    }
}

fn path(w: &str) -> Vec<String> {
    w.split('.').map(str::to_string).collect()
}

impl Cond {
    /// Parses a condition; an empty text, `None` or `null` is always true.
    pub fn parse(text: &str, groups: &HashMap<String, Vec<Net>>) -> Result<Cond, String> {
        let t = text.trim();
        if t.is_empty() || t == "None" || t == "null" {
            return Ok(Cond::Const(true));
        }
        let mut p = Parser {
            toks: lex(t)?,
            pos: 0,
            groups,
            depth: 0,
        };
        let c = p.or()?;
        if p.pos < p.toks.len() {
            return Err(format!("unexpected {}", describe(p.peek())));
        }
        Ok(c)
    }

    pub fn eval(&self, msg: &Value) -> bool {
        match self {
            Cond::Const(b) => *b,
            Cond::Not(c) => !c.eval(msg),
            Cond::And(all) => all.iter().all(|c| c.eval(msg)),
            Cond::Or(any) => any.iter().any(|c| c.eval(msg)),
            Cond::Exists(p) => {
                let mut v = Vec::new();
                collect(msg, p, &mut v);
                !v.is_empty()
            }
            Cond::Cmp(p, op, lit) => {
                let mut v = Vec::new();
                collect(msg, p, &mut v);
                v.iter().any(|x| compare(x, *op, lit))
            }
        }
    }
}

/// The leaf values at `path` (arrays flattened).
fn collect<'a>(v: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| collect(x, path, out)),
        Value::Null => {}
        _ if path.is_empty() => out.push(v),
        Value::Object(o) => {
            if let Some(x) = o.get(&path[0]) {
                collect(x, &path[1..], out)
            }
        }
        _ => {}
    }
}

fn equal(v: &Value, lit: &Literal) -> bool {
    match (v, lit) {
        (Value::Number(n), Literal::Num(x)) => n.as_f64() == Some(*x),
        (Value::String(s), Literal::Str(x)) => s == x,
        (Value::Bool(b), Literal::Str(x)) => x.eq_ignore_ascii_case(&b.to_string()),
        (Value::String(s), Literal::Net(n)) => match Net::parse(s) {
            Some(a) if a.prefix == n.prefix => n.contains(a.addr),
            _ => false,
        },
        (Value::String(s), Literal::Num(x)) => s.parse::<f64>().ok() == Some(*x),
        _ => false,
    }
}

fn contained(v: &Value, lit: &Literal) -> bool {
    match lit {
        Literal::List(items) => items.iter().any(|i| contained(v, i)),
        Literal::Net(n) => match v {
            Value::String(s) => s.parse::<IpAddr>().is_ok_and(|a| n.contains(a)),
            _ => false,
        },
        Literal::Str(x) => match v {
            Value::String(s) => s == x,
            _ => false,
        },
        l => equal(v, l),
    }
}

fn compare(v: &Value, op: Op, lit: &Literal) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    // Numbers compare as numbers, strings (also IDEA times) as text.
    let ord = match (v, lit) {
        (Value::Number(n), Literal::Num(x)) => n.as_f64().and_then(|n| n.partial_cmp(x)),
        (Value::String(s), Literal::Str(x)) => Some(s.as_str().cmp(x.as_str())),
        _ => None,
    };
    match op {
        Op::Eq => equal(v, lit),
        Op::Ne => !equal(v, lit),
        Op::In => contained(v, lit),
        Op::Gt => ord == Some(Greater),
        Op::Ge => matches!(ord, Some(Greater | Equal)),
        Op::Lt => ord == Some(Less),
        Op::Le => matches!(ord, Some(Less | Equal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg() -> Value {
        json!({"Category": ["Recon.Scanning"], "FlowCount": 50,
               "Source": [{"IP4": ["10.1.2.3"], "Proto": ["tcp"]}],
               "Target": [{"IP4": ["192.0.2.1", "192.0.2.2"]}],
               "Node": [{"Name": "cz.x.vportscan"}]})
    }

    fn eval(c: &str) -> bool {
        let mut g = HashMap::new();
        g.insert(
            "privnets".to_string(),
            vec![Net::parse("10.0.0.0/8").unwrap()],
        );
        Cond::parse(c, &g).unwrap().eval(&msg())
    }

    #[test]
    fn conditions() {
        assert!(eval(""));
        assert!(eval("true"));
        assert!(!eval("false"));
        assert!(eval("Source.IP4 in privnets"));
        assert!(!eval("Target.IP4 in privnets"));
        assert!(eval("Target.IP4 == 192.0.2.2"));
        assert!(eval("Target.IP4 in [198.51.100.0/24, 192.0.2.0/24]"));
        assert!(eval("Category == \"Recon.Scanning\" and FlowCount >= 50"));
        assert!(!eval("FlowCount > 50 or not exists Source"));
        assert!(eval("exists Node.Name && !(FlowCount < 10)"));
        assert!(eval("Node.Name in ['a', 'cz.x.vportscan']"));
        assert!(!eval("exists Missing.Key"));
        assert!(eval("Node.Name > 'cz.a' and Node.Name <= 'cz.x.vportscan'"));
        assert!(!eval("FlowCount < 50"));
    }

    #[test]
    fn errors() {
        let g = HashMap::new();
        for bad in [
            "FlowCount >",
            "Source.IP4 in nosuchgroup",
            "(true",
            "a like 'x'",
            "\"open",
            "true true",
        ] {
            assert!(Cond::parse(bad, &g).is_err(), "{bad}");
        }
        assert!(Net::parse("10.0.0.0/33").is_none());
    }

    /// Issue 16, finding 1: 20 000 nested parentheses overflowed the stack.
    #[test]
    fn nesting_is_bounded() {
        let g = HashMap::new();
        let nest = |open: &str, inner: &str, close: &str, n: usize| {
            open.repeat(n) + inner + &close.repeat(n)
        };
        let limit = format!("nested more than {MAX_DEPTH} levels deep");
        for deep in [
            nest("(", "true", ")", 20_000),
            nest("(", "true", ")", MAX_DEPTH + 1),
            nest("not ", "true", "", 20_000),
            nest("!(", "true", ")", MAX_DEPTH / 2 + 1),
            format!("a in {}", nest("[", "1", "]", 20_000)),
            format!("a in {}", nest("[", "1", "]", MAX_DEPTH + 1)),
        ] {
            let e = Cond::parse(&deep, &g).unwrap_err();
            assert!(e.contains(&limit), "{e}");
            assert!(!e.contains('\n'));
        }
        // At the limit: parsed, evaluated, printed and dropped (on a test
        // thread's 2 MiB stack).
        let c = Cond::parse(&nest("(", "true", ")", MAX_DEPTH), &g).unwrap();
        assert!(c.eval(&msg()));
        let c = Cond::parse(&nest("not ", "true", "", MAX_DEPTH), &g).unwrap();
        assert!(c.eval(&msg()));
        assert!(!format!("{c:?}").is_empty());
        let c = Cond::parse(&format!("a in {}", nest("[", "1", "]", MAX_DEPTH)), &g);
        assert!(c.is_ok(), "{c:?}");
        // Long chains are flat, not deep.
        let chain = vec!["FlowCount == 50"; 200_000].join(" and ");
        let c = Cond::parse(&chain, &g).unwrap();
        assert!(c.eval(&msg()));
        let chain = vec!["false"; 200_000].join(" or ") + " or (true && true and true)";
        assert!(Cond::parse(&chain, &g).unwrap().eval(&msg()));
    }
}
