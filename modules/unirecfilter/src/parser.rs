//! The filter grammar: terms `FIELD OP VALUE`, `FIELD in [..]`,
//! `FIELD =~ "regex"`, `true`/`false`, joined by `!`, `&&`, `||` and
//! parentheses.
//!
//! Precedence is the usual one: `!` binds tightest, then `&&`, then `||`,
//! so `a || b && c` is `a || (b && c)`. liburfilter's grammar gives `&&`
//! and `||` the same precedence, left to right, and reads it as
//! `(a || b) && c`; [`Precedence::C`] parses that way, and in the standard
//! mode such an expression gets a warning naming the column.

use crate::lexer::{err, tokenize, CmpOp, SyntaxError, Tok, Token};
use unirec::{UrIp, UrMac, UrTime};

/// How `&&` and `||` group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precedence {
    /// `&&` before `||`.
    #[default]
    Standard,
    /// C unirecfilter's: `&&` and `||` alike, left to right.
    C,
}

/// A parsed filter, not yet tied to a template.
#[derive(Clone, Debug)]
pub enum Expr {
    Const(bool),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Term(Term),
}

/// One comparison.
#[derive(Clone, Debug)]
pub struct Term {
    pub target: Target,
    pub test: Test,
    /// Column of the field name (for warnings when binding).
    pub col: usize,
}

/// What a term looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Field(String),
    /// `host`: SRC_IP or DST_IP.
    Host,
    /// `port`: SRC_PORT or DST_PORT.
    Port,
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Target::Field(f) => f,
            Target::Host => "host",
            Target::Port => "port",
        }
    }
}

/// What a term checks.
#[derive(Clone, Debug)]
pub enum Test {
    Cmp(CmpOp, Lit),
    In(Vec<Lit>),
    Regex(Box<regex::bytes::Regex>),
}

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Int(i128),
    Float(f64),
    Time(UrTime),
    Ip(UrIp),
    /// A prefix, its address already masked to the prefix length.
    Net(UrIp, u8),
    Mac(UrMac),
    Str(Vec<u8>),
}

impl Lit {
    pub fn kind(&self) -> &'static str {
        match self {
            Lit::Int(_) => "an integer",
            Lit::Float(_) => "a float",
            Lit::Time(_) => "a date and time",
            Lit::Ip(_) => "an IP address",
            Lit::Net(..) => "an IP prefix",
            Lit::Mac(_) => "a MAC address",
            Lit::Str(_) => "a string",
        }
    }
}

/// A parsed filter and what the parser noticed.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub expr: Expr,
    pub warnings: Vec<String>,
}

/// Parses a whole filter. An empty (or all-blank) filter matches every record.
pub fn parse(src: &str, prec: Precedence) -> Result<Parsed, SyntaxError> {
    let tokens = tokenize(src)?;
    let end_col = src.chars().count() + 1;
    if tokens.is_empty() {
        return Ok(Parsed {
            expr: Expr::Const(true),
            warnings: Vec::new(),
        });
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        end_col,
        prec,
        warnings: Vec::new(),
    };
    let expr = p.expr()?;
    if let Some(t) = p.peek() {
        let msg = match t.tok {
            Tok::RParen => "`)` without its `(`".to_string(),
            _ => format!("expected `&&` or `||` before {}", t.tok.describe()),
        };
        return err(t.col, msg);
    }
    Ok(Parsed {
        expr,
        warnings: p.warnings,
    })
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    end_col: usize,
    prec: Precedence,
    warnings: Vec<String>,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    /// The next token, or an error at the end of the filter.
    fn expect(&mut self, what: &str) -> Result<Token, SyntaxError> {
        match self.next() {
            Some(t) => Ok(t),
            None => err(
                self.end_col,
                format!("the filter ends where {what} should follow"),
            ),
        }
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        match self.prec {
            Precedence::Standard => self.or(),
            Precedence::C => self.left_to_right(),
        }
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut items = vec![self.and()?.0];
        while matches!(self.peek().map(|t| &t.tok), Some(Tok::Or)) {
            self.pos += 1;
            let (e, and_col) = self.and()?;
            if let Some(col) = and_col {
                self.warnings.push(format!(
                    "column {col}: `a || b && c` is read as `a || (b && c)`; C unirecfilter read it as `(a || b) && c` (add parentheses, or --c-precedence for C's reading)"
                ));
            }
            items.push(e);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Expr::Const(false))
        } else {
            Expr::Or(items)
        })
    }

    /// A chain of `&&`, and the column of its first `&&` if it has one.
    fn and(&mut self) -> Result<(Expr, Option<usize>), SyntaxError> {
        let mut items = vec![self.unary()?];
        let mut first = None;
        while let Some(t) = self.peek().filter(|t| t.tok == Tok::And) {
            first = first.or(Some(t.col));
            self.pos += 1;
            items.push(self.unary()?);
        }
        let e = if items.len() == 1 {
            items.pop().unwrap_or(Expr::Const(false))
        } else {
            Expr::And(items)
        };
        Ok((e, first))
    }

    /// C's grouping: `a op b op c` is `((a op b) op c)` whatever the ops.
    fn left_to_right(&mut self) -> Result<Expr, SyntaxError> {
        let mut acc = self.unary()?;
        loop {
            let and = match self.peek().map(|t| &t.tok) {
                Some(Tok::And) => true,
                Some(Tok::Or) => false,
                _ => return Ok(acc),
            };
            self.pos += 1;
            let rhs = self.unary()?;
            acc = match (and, acc) {
                (true, Expr::And(mut v)) => {
                    v.push(rhs);
                    Expr::And(v)
                }
                (false, Expr::Or(mut v)) => {
                    v.push(rhs);
                    Expr::Or(v)
                }
                (true, a) => Expr::And(vec![a, rhs]),
                (false, a) => Expr::Or(vec![a, rhs]),
            };
        }
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        let t = self.expect("a term")?;
        match t.tok {
            Tok::Not => Ok(Expr::Not(Box::new(self.unary()?))),
            Tok::LParen => {
                let e = self.expr()?;
                match self.next() {
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => Ok(e),
                    Some(other) => err(
                        other.col,
                        format!(
                            "expected `)` (for the `(` at column {}), found {}",
                            t.col,
                            other.tok.describe()
                        ),
                    ),
                    None => err(
                        self.end_col,
                        format!("the `(` at column {} is not closed", t.col),
                    ),
                }
            }
            Tok::Bool(b) => Ok(Expr::Const(b)),
            Tok::Ident(name) => self.term(name, t.col),
            other => err(
                t.col,
                format!(
                    "expected a field name, `!` or `(`, found {}",
                    other.describe()
                ),
            ),
        }
    }

    fn term(&mut self, name: String, col: usize) -> Result<Expr, SyntaxError> {
        let target = match name.as_str() {
            "host" => Target::Host,
            "port" => Target::Port,
            _ => Target::Field(name),
        };
        let protocol = target == Target::Field("PROTOCOL".into());
        let op = self.expect(&format!("an operator after `{}`", target.name()))?;
        let test = match op.tok {
            Tok::Cmp(cmp) => {
                let v = self.expect(&format!("a value after `{}`", cmp.symbol()))?;
                if v.tok == Tok::LBracket {
                    return err(
                        v.col,
                        format!("a list is compared with `in`, not `{}`", cmp.symbol()),
                    );
                }
                Test::Cmp(cmp, self.literal(v, protocol, cmp.symbol())?)
            }
            Tok::In => {
                let open = self.expect("a list `[...]` after `in`")?;
                if open.tok != Tok::LBracket {
                    return err(
                        open.col,
                        format!(
                            "expected a list `[...]` after `in`, found {}",
                            open.tok.describe()
                        ),
                    );
                }
                Test::In(self.list(open.col, protocol)?)
            }
            Tok::Regex => {
                let v = self.expect("a regular expression after `=~`")?;
                let Tok::Str { raw, .. } = v.tok else {
                    return err(
                        v.col,
                        format!(
                            "expected a quoted regular expression after `=~`, found {}",
                            v.tok.describe()
                        ),
                    );
                };
                Test::Regex(Box::new(compile_regex(&raw, v.col)?))
            }
            other => {
                return err(
                    op.col,
                    format!(
                        "expected an operator (==, !=, <, <=, >, >=, =~, in) after `{}`, found {}",
                        target.name(),
                        other.describe()
                    ),
                )
            }
        };
        match (&target, &test) {
            (Target::Host, Test::Regex(_)) | (Target::Port, Test::Regex(_)) => {
                return err(
                    col,
                    format!(
                        "`{}` cannot be matched with a regular expression",
                        target.name()
                    ),
                )
            }
            (Target::Host, Test::Cmp(_, l))
                if !matches!(l, Lit::Ip(_) | Lit::Net(..) | Lit::Str(_)) =>
            {
                return err(
                    col,
                    format!(
                        "`host` is compared with IP addresses and prefixes, not {}",
                        l.kind()
                    ),
                )
            }
            (Target::Port, Test::Cmp(_, l)) if !matches!(l, Lit::Int(_)) => {
                return err(
                    col,
                    format!("`port` is compared with numbers, not {}", l.kind()),
                )
            }
            _ => {}
        }
        Ok(Expr::Term(Term { target, test, col }))
    }

    fn list(&mut self, open_col: usize, protocol: bool) -> Result<Vec<Lit>, SyntaxError> {
        let mut items = Vec::new();
        loop {
            let t = self.expect("a value or `]`")?;
            match t.tok {
                Tok::RBracket if items.is_empty() => {
                    return err(
                        t.col,
                        "an empty list matches nothing: give at least one value",
                    )
                }
                Tok::RBracket => return Ok(items),
                _ => items.push(self.literal(t, protocol, "[")?),
            }
            let sep = match self.next() {
                Some(s) => s,
                None => {
                    return err(
                        self.end_col,
                        format!("the list at column {open_col} is not closed with `]`"),
                    )
                }
            };
            match sep.tok {
                Tok::Comma => {}
                Tok::RBracket => return Ok(items),
                other => {
                    return err(
                        sep.col,
                        format!(
                            "expected `,` or `]` in the list, found {}",
                            other.describe()
                        ),
                    )
                }
            }
        }
    }

    fn literal(&mut self, t: Token, protocol: bool, after: &str) -> Result<Lit, SyntaxError> {
        Ok(match t.tok {
            Tok::Int(v) => Lit::Int(v),
            Tok::Float(v) => Lit::Float(v),
            Tok::Time(v) => Lit::Time(v),
            Tok::Ip(v) => Lit::Ip(v),
            Tok::Net(ip, len) => Lit::Net(crate::ip::mask(ip, len), len),
            Tok::Mac(v) => Lit::Mac(v),
            Tok::Str { bytes, .. } if protocol => match std::str::from_utf8(&bytes).ok().and_then(protocol_number) {
                Some(n) => Lit::Int(n.into()),
                None => return err(t.col, format!("unknown protocol `{}` (a name from /etc/protocols, or a number)", String::from_utf8_lossy(&bytes))),
            },
            Tok::Str { bytes, .. } => Lit::Str(bytes),
            Tok::Ident(name) if protocol => match protocol_number(&name) {
                Some(n) => Lit::Int(n.into()),
                None => return err(t.col, format!("unknown protocol `{name}` (a name from /etc/protocols, or a number)")),
            },
            Tok::Ident(name) => {
                return err(
                    t.col,
                    format!("expected a value after `{after}`, found the name `{name}` (fields are compared with values, strings need quotes)"),
                )
            }
            other => return err(t.col, format!("expected a value after `{after}`, found {}", other.describe())),
        })
    }
}

/// `=~` patterns: matched anywhere in the field's bytes, `.` matching any
/// byte including a newline, as POSIX `regexec` in the C locale.
fn compile_regex(raw: &str, col: usize) -> Result<regex::bytes::Regex, SyntaxError> {
    regex::bytes::RegexBuilder::new(raw)
        .unicode(false)
        .dot_matches_new_line(true)
        .build()
        .or_else(|e| {
            let text = e.to_string();
            let why = text
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .unwrap_or(text.lines().next().unwrap_or("invalid"))
                .to_string();
            err(col, format!("invalid regular expression \"{raw}\": {why}"))
        })
}

/// IANA protocol numbers by the names and aliases Debian's /etc/protocols
/// gives them (what C's `getprotobyname` looked up), case-insensitive.
pub fn protocol_number(name: &str) -> Option<u8> {
    const TABLE: &[(&str, u8)] = &[
        ("ip", 0),
        ("hopopt", 0),
        ("icmp", 1),
        ("igmp", 2),
        ("ggp", 3),
        ("ipencap", 4),
        ("ip-encap", 4),
        ("st", 5),
        ("tcp", 6),
        ("egp", 8),
        ("igp", 9),
        ("pup", 12),
        ("udp", 17),
        ("hmp", 20),
        ("xns-idp", 22),
        ("rdp", 27),
        ("iso-tp4", 29),
        ("dccp", 33),
        ("xtp", 36),
        ("ddp", 37),
        ("idpr-cmtp", 38),
        ("ipv6", 41),
        ("ipv6-route", 43),
        ("ipv6-frag", 44),
        ("idrp", 45),
        ("rsvp", 46),
        ("gre", 47),
        ("esp", 50),
        ("ipsec-esp", 50),
        ("ah", 51),
        ("ipsec-ah", 51),
        ("skip", 57),
        ("ipv6-icmp", 58),
        ("icmpv6", 58),
        ("ipv6-nonxt", 59),
        ("ipv6-opts", 60),
        ("rspf", 73),
        ("vmtp", 81),
        ("eigrp", 88),
        ("ospf", 89),
        ("ospfigp", 89),
        ("ax.25", 93),
        ("ipip", 94),
        ("etherip", 97),
        ("encap", 98),
        ("pim", 103),
        ("ipcomp", 108),
        ("vrrp", 112),
        ("l2tp", 115),
        ("isis", 124),
        ("sctp", 132),
        ("fc", 133),
        ("mobility-header", 135),
        ("udplite", 136),
        ("mpls-in-ip", 137),
        ("manet", 138),
        ("hip", 139),
        ("shim6", 140),
        ("wesp", 141),
        ("rohc", 142),
        ("ethernet", 143),
    ];
    TABLE
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compact rendering of the tree, for checking the grouping.
    fn show(e: &Expr) -> String {
        match e {
            Expr::Const(b) => b.to_string(),
            Expr::Not(e) => format!("!{}", show(e)),
            Expr::And(v) => format!("({})", v.iter().map(show).collect::<Vec<_>>().join(" & ")),
            Expr::Or(v) => format!("({})", v.iter().map(show).collect::<Vec<_>>().join(" | ")),
            Expr::Term(t) => t.target.name().to_string(),
        }
    }

    fn tree(s: &str, prec: Precedence) -> String {
        show(&parse(s, prec).unwrap().expr)
    }

    #[test]
    fn precedence_standard_and_c() {
        let s = "A == 1 || B == 1 && C == 1";
        assert_eq!(tree(s, Precedence::Standard), "(A | (B & C))");
        assert_eq!(tree(s, Precedence::C), "((A | B) & C)");
        let p = parse(s, Precedence::Standard).unwrap();
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].starts_with("column 18:"), "{}", p.warnings[0]);
        // Where both readings agree there is no warning.
        let s = "A == 1 && B == 1 || C == 1";
        assert_eq!(tree(s, Precedence::Standard), "((A & B) | C)");
        assert_eq!(tree(s, Precedence::C), "((A & B) | C)");
        assert!(parse(s, Precedence::Standard).unwrap().warnings.is_empty());
        assert_eq!(tree("!A == 1 && B == 1", Precedence::Standard), "(!A & B)");
        assert_eq!(tree("!A == 1 && B == 1", Precedence::C), "(!A & B)");
        assert_eq!(tree("!(A == 1 || B == 1)", Precedence::C), "!(A | B)");
        assert_eq!(tree("not not true", Precedence::C), "!!true");
        assert_eq!(tree("   ", Precedence::Standard), "true");
    }

    #[test]
    fn protocol_names_become_numbers() {
        for (f, n) in [
            ("PROTOCOL == TCP", 6),
            ("PROTOCOL == \"udp\"", 17),
            ("PROTOCOL != ICMP", 1),
            ("PROTOCOL == \"ipv6-icmp\"", 58),
        ] {
            let Expr::Term(t) = parse(f, Precedence::Standard).unwrap().expr else {
                panic!()
            };
            let Test::Cmp(_, Lit::Int(v)) = t.test else {
                panic!("{f}")
            };
            assert_eq!(v, n, "{f}");
        }
        assert!(parse("PROTOCOL == XYZ", Precedence::Standard).is_err());
    }

    #[test]
    fn syntax_errors_name_the_column() {
        let col = |s: &str| parse(s, Precedence::Standard).unwrap_err().col;
        assert_eq!(col("SRC_PORT =="), 12);
        assert_eq!(col("SRC_PORT 80"), 10);
        assert_eq!(col("(SRC_PORT == 80"), 16);
        assert_eq!(col("SRC_PORT == 80)"), 15);
        assert_eq!(col("SRC_PORT == 80 DST_PORT == 1"), 16);
        assert_eq!(col("SRC_PORT == [80]"), 13);
        assert_eq!(col("SRC_PORT in 80"), 13);
        assert_eq!(col("SRC_PORT in []"), 14);
        assert_eq!(col("SRC_PORT in [80 443]"), 17);
        assert_eq!(col("URL =~ abc"), 8);
        assert_eq!(col("URL =~ \"(\""), 8);
        assert_eq!(col("A == B"), 6);
        assert_eq!(col("80 == A"), 1);
        assert_eq!(col("host == 5"), 1);
        assert_eq!(col("port == 1.5"), 1);
        assert_eq!(col("A == 1 &&"), 10);
    }
}
