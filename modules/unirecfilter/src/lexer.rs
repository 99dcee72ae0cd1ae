//! Tokens of the filter language, each with the column it starts at.
//!
//! The lexemes are liburfilter's (its flex scanner): the operator spellings
//! `== = != <> < <= =< > >= => =~ ~= in IN`, the logical words `&& AND and
//! || OR or ! NOT not`, `true`/`false` in three capitalisations, numbers,
//! floats, dates, IPv4/IPv6 addresses and prefixes, quoted strings and
//! `[a, b]` lists. Where flex would match part of a word and leave the rest
//! to the next rule, a value here is one whole word (`10.0.0.0/33` is an
//! error naming the prefix length, not `10.0.0.0/3` followed by `3`).

use unirec::{UrIp, UrMac, UrTime};

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether `ord` (the field's value compared with the literal) satisfies the operator.
    #[inline]
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
        }
    }
}

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A field name or a word such as `port`, `host`, `TCP`.
    Ident(String),
    Int(i128),
    Float(f64),
    Time(UrTime),
    Ip(UrIp),
    /// An IP prefix: the address as written and the prefix length.
    Net(UrIp, u8),
    Mac(UrMac),
    /// A quoted string: `raw` as written between the quotes (what a regular
    /// expression is compiled from), `bytes` with the escapes resolved.
    Str {
        raw: String,
        bytes: Vec<u8>,
    },
    Cmp(CmpOp),
    Regex,
    In,
    And,
    Or,
    Not,
    Bool(bool),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Int(v) => format!("`{v}`"),
            Tok::Float(v) => format!("`{v}`"),
            Tok::Time(t) => format!("`{t}`"),
            Tok::Ip(ip) => format!("`{ip}`"),
            Tok::Net(ip, len) => format!("`{ip}/{len}`"),
            Tok::Mac(m) => format!("`{m}`"),
            Tok::Str { raw, .. } => format!("\"{raw}\""),
            Tok::Cmp(op) => format!("`{}`", op.symbol()),
            Tok::Regex => "`=~`".into(),
            Tok::In => "`in`".into(),
            Tok::And => "`&&`".into(),
            Tok::Or => "`||`".into(),
            Tok::Not => "`!`".into(),
            Tok::Bool(b) => format!("`{b}`"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Comma => "`,`".into(),
        }
    }
}

/// A token and the 1-based column (in characters) where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub col: usize,
}

/// A filter that is not well-formed: where and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {col}: {msg}")]
pub struct SyntaxError {
    /// 1-based column in characters.
    pub col: usize,
    pub msg: String,
}

pub(crate) fn err<T>(col: usize, msg: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        col,
        msg: msg.into(),
    })
}

/// Splits a filter into tokens.
pub fn tokenize(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        let next = chars.get(i + 1).copied();
        let mut push = |tok, len: usize| {
            out.push(Token { tok, col });
            len
        };
        i += match c {
            ' ' | '\t' | '\n' | '\r' => 1,
            '(' => push(Tok::LParen, 1),
            ')' => push(Tok::RParen, 1),
            '[' => push(Tok::LBracket, 1),
            ']' => push(Tok::RBracket, 1),
            ',' => push(Tok::Comma, 1),
            '=' => match next {
                Some('=') => push(Tok::Cmp(CmpOp::Eq), 2),
                Some('~') => push(Tok::Regex, 2),
                Some('<') => push(Tok::Cmp(CmpOp::Le), 2),
                Some('>') => push(Tok::Cmp(CmpOp::Ge), 2),
                _ => push(Tok::Cmp(CmpOp::Eq), 1),
            },
            '!' => match next {
                Some('=') => push(Tok::Cmp(CmpOp::Ne), 2),
                _ => push(Tok::Not, 1),
            },
            '<' => match next {
                Some('=') => push(Tok::Cmp(CmpOp::Le), 2),
                Some('>') => push(Tok::Cmp(CmpOp::Ne), 2),
                _ => push(Tok::Cmp(CmpOp::Lt), 1),
            },
            '>' => match next {
                Some('=') => push(Tok::Cmp(CmpOp::Ge), 2),
                _ => push(Tok::Cmp(CmpOp::Gt), 1),
            },
            '~' if next == Some('=') => push(Tok::Regex, 2),
            '&' if next == Some('&') => push(Tok::And, 2),
            '|' if next == Some('|') => push(Tok::Or, 2),
            '&' => return err(col, "a single `&`: write `&&` (or `and`)"),
            '|' => return err(col, "a single `|`: write `||` (or `or`)"),
            '"' | '\'' => {
                let (tok, len) = string(&chars[i..], col)?;
                push(tok, len)
            }
            c if c.is_ascii_digit() || c == ':' => {
                let len = word_len(&chars[i..]);
                push(value(&chars[i..i + len], col)?, len)
            }
            '-' if next.is_some_and(|n| n.is_ascii_digit()) => {
                let len = word_len(&chars[i..]);
                push(value(&chars[i..i + len], col)?, len)
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let len = chars[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .count();
                // `fe80::1`, `aa:bb:cc:dd:ee:ff`: a word of hex digits
                // followed by `:` starts an address, never a field name.
                let hex = len <= 4 && chars[i..i + len].iter().all(char::is_ascii_hexdigit);
                if hex && chars.get(i + len) == Some(&':') {
                    let len = word_len(&chars[i..]);
                    push(value(&chars[i..i + len], col)?, len)
                } else {
                    let word: String = chars[i..i + len].iter().collect();
                    push(keyword(word), len)
                }
            }
            c => return err(col, format!("unexpected character `{}`", c.escape_debug())),
        };
    }
    Ok(out)
}

fn keyword(word: String) -> Tok {
    match word.as_str() {
        "in" | "IN" => Tok::In,
        "and" | "AND" => Tok::And,
        "or" | "OR" => Tok::Or,
        "not" | "NOT" => Tok::Not,
        "true" | "True" | "TRUE" => Tok::Bool(true),
        "false" | "False" | "FALSE" => Tok::Bool(false),
        _ => Tok::Ident(word),
    }
}

/// Length of a value word: digits, letters, `.`, `:`, `/`, `-`.
fn word_len(chars: &[char]) -> usize {
    chars
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '/' | '_' | '-'))
        .count()
}

/// Classifies a value word: date and time, IP address or prefix, MAC
/// address, float, integer.
fn value(word: &[char], col: usize) -> Result<Tok, SyntaxError> {
    let w: String = word.iter().collect();
    let b = w.as_bytes();
    let looks_like_date =
        b.len() > 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && w.contains('T');
    if looks_like_date {
        return match UrTime::parse(&w) {
            Some(t) => Ok(Tok::Time(t)),
            None => err(
                col,
                format!("`{w}` is not a date and time (YYYY-mm-ddTHH:MM:SS[.sss], UTC)"),
            ),
        };
    }
    let dots = w.matches('.').count();
    if w.contains(':') || w.contains('/') || dots >= 2 {
        return address(&w, col);
    }
    let digits = w.strip_prefix('-').unwrap_or(&w);
    if dots == 1 {
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let all = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        if all(int) && all(frac) {
            if let Ok(v) = w.parse::<f64>() {
                return Ok(Tok::Float(v));
            }
        }
        return err(col, format!("`{w}` is not a number"));
    }
    if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
        // Decimal even with leading zeros (C read them with `%i`, so `010`
        // was 8 and `09` was 0).
        return match w.parse::<i128>() {
            Ok(v) if v >= i128::from(i64::MIN) && v <= i128::from(u64::MAX) => Ok(Tok::Int(v)),
            _ => err(col, format!("`{w}` does not fit in 64 bits")),
        };
    }
    err(col, format!("`{w}` is not a number"))
}

pub(crate) fn address(w: &str, col: usize) -> Result<Tok, SyntaxError> {
    if let Some((addr, len)) = w.split_once('/') {
        let Some(ip) = UrIp::parse(addr) else {
            return err(col, format!("`{addr}` is not an IP address"));
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        return match len.parse::<u8>() {
            Ok(l) if l <= max && len.bytes().all(|c| c.is_ascii_digit()) => Ok(Tok::Net(ip, l)),
            _ => err(
                col,
                format!(
                    "`/{len}` is not a prefix length of an IPv{} address (0-{max})",
                    if max == 32 { 4 } else { 6 }
                ),
            ),
        };
    }
    if let Some(ip) = UrIp::parse(w) {
        return Ok(Tok::Ip(ip));
    }
    if w.matches(':').count() == 5 {
        if let Some(m) = UrMac::parse(w) {
            return Ok(Tok::Mac(m));
        }
    }
    err(col, format!("`{w}` is not an IP address"))
}

/// A quoted string starting at `chars[0]` (`"` or `'`): the token and its length.
fn string(chars: &[char], col: usize) -> Result<(Tok, usize), SyntaxError> {
    let quote = chars[0];
    let mut raw = String::new();
    let mut bytes = Vec::new();
    let mut i = 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Ok((Tok::Str { raw, bytes }, i + 1));
        }
        if c == '\\' {
            let Some(&e) = chars.get(i + 1) else { break };
            raw.push('\\');
            raw.push(e);
            i += 2;
            match e {
                '\\' | '"' | '\'' => bytes.push(e as u8),
                'n' => bytes.push(b'\n'),
                't' => bytes.push(b'\t'),
                'r' => bytes.push(b'\r'),
                '0' => bytes.push(0),
                'x' => {
                    let hex: String = chars[i..].iter().take(2).collect();
                    match u8::from_str_radix(&hex, 16) {
                        Ok(v) if hex.len() == 2 => {
                            raw.push_str(&hex);
                            bytes.push(v);
                            i += 2;
                        }
                        _ => return err(col + i - 2, "`\\x` needs two hex digits (`\\x0a`)"),
                    }
                }
                // Unknown escapes stay as written, as C kept every one.
                other => {
                    bytes.push(b'\\');
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
            }
            continue;
        }
        raw.push(c);
        let mut buf = [0; 4];
        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        i += 1;
    }
    err(col, format!("string without its closing {quote}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn operators_in_every_spelling() {
        use CmpOp::*;
        assert_eq!(
            toks("== = != <> < <= =< > >= => =~ ~= in IN"),
            [
                Tok::Cmp(Eq),
                Tok::Cmp(Eq),
                Tok::Cmp(Ne),
                Tok::Cmp(Ne),
                Tok::Cmp(Lt),
                Tok::Cmp(Le),
                Tok::Cmp(Le),
                Tok::Cmp(Gt),
                Tok::Cmp(Ge),
                Tok::Cmp(Ge),
                Tok::Regex,
                Tok::Regex,
                Tok::In,
                Tok::In
            ]
        );
        assert_eq!(
            toks("&& AND and || OR or ! NOT not"),
            [
                Tok::And,
                Tok::And,
                Tok::And,
                Tok::Or,
                Tok::Or,
                Tok::Or,
                Tok::Not,
                Tok::Not,
                Tok::Not
            ]
        );
        assert_eq!(
            toks("true True TRUE false False FALSE tRUE"),
            [
                Tok::Bool(true),
                Tok::Bool(true),
                Tok::Bool(true),
                Tok::Bool(false),
                Tok::Bool(false),
                Tok::Bool(false),
                Tok::Ident("tRUE".into())
            ]
        );
    }

    #[test]
    fn values() {
        let ip = |s| UrIp::parse(s).unwrap();
        assert_eq!(
            toks("SRC_PORT==-5 7 010 1.5 -0.25"),
            [
                Tok::Ident("SRC_PORT".into()),
                Tok::Cmp(CmpOp::Eq),
                Tok::Int(-5),
                Tok::Int(7),
                Tok::Int(10),
                Tok::Float(1.5),
                Tok::Float(-0.25)
            ]
        );
        assert_eq!(
            toks("10.0.0.1 10.1.0.0/16 fe80::1 ::/0 ::ffff:1.2.3.4 dead:beef::/32"),
            [
                Tok::Ip(ip("10.0.0.1")),
                Tok::Net(ip("10.1.0.0"), 16),
                Tok::Ip(ip("fe80::1")),
                Tok::Net(ip("::"), 0),
                Tok::Ip(ip("::ffff:1.2.3.4")),
                Tok::Net(ip("dead:beef::"), 32)
            ]
        );
        assert_eq!(
            toks("2018-01-10T21:17:00 2018-1-2T03:04:05.123"),
            [
                Tok::Time(UrTime::parse("2018-01-10T21:17:00").unwrap()),
                Tok::Time(UrTime::parse("2018-01-02T03:04:05.123").unwrap())
            ]
        );
        assert_eq!(
            toks("aa:bb:cc:00:11:22"),
            [Tok::Mac(UrMac::parse("aa:bb:cc:00:11:22").unwrap())]
        );
        assert_eq!(
            toks("X in [80,443, 8080]"),
            [
                Tok::Ident("X".into()),
                Tok::In,
                Tok::LBracket,
                Tok::Int(80),
                Tok::Comma,
                Tok::Int(443),
                Tok::Comma,
                Tok::Int(8080),
                Tok::RBracket
            ]
        );
        assert_eq!(toks("TLS_JA3"), [Tok::Ident("TLS_JA3".into())]);
        assert_eq!(toks("face"), [Tok::Ident("face".into())]);
    }

    #[test]
    fn strings_and_escapes() {
        let s = |raw: &str, bytes: &[u8]| Tok::Str {
            raw: raw.into(),
            bytes: bytes.into(),
        };
        assert_eq!(toks(r#""a b""#), [s("a b", b"a b")]);
        assert_eq!(toks("'it\"s'"), [s("it\"s", b"it\"s")]);
        assert_eq!(toks(r#""a\"b""#), [s(r#"a\"b"#, b"a\"b")]);
        assert_eq!(toks(r#""\.com$""#), [s(r"\.com$", b"\\.com$")]);
        assert_eq!(
            toks(r#""\n\t\\\x00\xff""#),
            [s(r"\n\t\\\x00\xff", b"\n\t\\\x00\xff")]
        );
        assert_eq!(toks("\"é\""), [s("é", "é".as_bytes())]);
    }

    #[test]
    fn errors_name_the_column() {
        let e = |s: &str| tokenize(s).unwrap_err();
        assert_eq!(e("A == \"abc").col, 6);
        assert_eq!(e("A == 1 & B").col, 8);
        assert_eq!(e("A == 10.0.0.0/33").col, 6);
        assert_eq!(e("A == 1.2.3").col, 6);
        assert_eq!(e("A == 256.0.0.1").col, 6);
        assert_eq!(e("A == 2018-13-01T00:00:00").col, 6);
        assert_eq!(e("A == 5abc").col, 6);
        assert_eq!(e("A == 99999999999999999999").col, 6);
        assert_eq!(e("A # B").col, 3);
        assert_eq!(e("A == \"\\x4\"").col, 7);
        assert!(
            e("A == 10.0.0.0/33").msg.contains("0-32"),
            "{}",
            e("A == 10.0.0.0/33").msg
        );
    }
}
