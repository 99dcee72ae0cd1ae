//! A parsed filter bound to an input template: every term resolved to the
//! offset and type of its field, literals converted to the field's type,
//! lists sorted. Evaluating it reads the record's bytes in place and
//! allocates nothing.

use crate::ip::{cmp_prefix, IpSet};
use crate::lexer::{CmpOp, Tok};
use crate::parser::{Expr, Lit, Target, Term, Test};
use unirec::{FieldType, RecordRef, Scalar, Template, UrIp, UrMac, UrTime};

/// Two floats within this distance are equal (C's tolerance).
const FLOAT_EPS: f64 = 1e-8;

/// A filter ready to run on records of one template.
#[derive(Clone, Debug)]
pub struct Bound {
    root: Node,
    fixed: usize,
}

impl Bound {
    /// Whether the record passes. `rec` must be of the template this was
    /// bound to.
    #[inline]
    pub fn matches(&self, rec: &RecordRef<'_>) -> bool {
        self.root.eval(rec.bytes(), self.fixed)
    }

    /// True when the filter passes every record (no filter, or `true`).
    pub fn is_always_true(&self) -> bool {
        matches!(self.root, Node::Const(true))
    }
}

#[derive(Clone, Debug)]
enum Node {
    Const(bool),
    Not(Box<Node>),
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Leaf(Leaf),
    /// `host`/`port`: any of the leaves holds.
    Any(Box<[Leaf]>),
}

impl Node {
    fn eval(&self, rec: &[u8], fixed: usize) -> bool {
        match self {
            Node::Const(b) => *b,
            Node::Not(n) => !n.eval(rec, fixed),
            Node::And(v) => v.iter().all(|n| n.eval(rec, fixed)),
            Node::Or(v) => v.iter().any(|n| n.eval(rec, fixed)),
            Node::Leaf(l) => l.eval(rec, fixed),
            Node::Any(v) => v.iter().any(|l| l.eval(rec, fixed)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IntTy {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
}

/// Where a value of a numeric field comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Num {
    Int(IntTy),
    F32,
    F64,
}

/// Where the bytes of a string-like field come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Text {
    /// A variable-length field (`string`, `bytes`): its offset/length entry.
    Var,
    /// A `char` field: one byte.
    Char,
}

#[derive(Clone, Debug)]
struct Leaf {
    at: usize,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Int(IntTy, CmpOp, i128),
    Float(Num, CmpOp, f64),
    Time(CmpOp, u64),
    Ip(CmpOp, [u8; 16]),
    Net(CmpOp, UrIp, u8),
    Mac(CmpOp, [u8; 6]),
    Text(Text, CmpOp, Box<[u8]>),
    Regex(Text, Box<regex::bytes::Regex>),
    IntIn(IntTy, Box<[i128]>),
    FloatIn(Num, Box<[f64]>),
    TimeIn(Box<[u64]>),
    IpIn(Box<IpSet>),
    MacIn(Box<[[u8; 6]]>),
    TextIn(Text, Box<[Box<[u8]>]>),
}

#[inline]
fn fixed<const N: usize>(rec: &[u8], at: usize) -> Option<[u8; N]> {
    rec.get(at..at + N)?.try_into().ok()
}

#[inline]
fn read_int(rec: &[u8], at: usize, ty: IntTy) -> Option<i128> {
    Some(match ty {
        IntTy::U8 => i128::from(fixed::<1>(rec, at)?[0]),
        IntTy::I8 => i128::from(fixed::<1>(rec, at)?[0] as i8),
        IntTy::U16 => i128::from(u16::from_le_bytes(fixed(rec, at)?)),
        IntTy::I16 => i128::from(i16::from_le_bytes(fixed(rec, at)?)),
        IntTy::U32 => i128::from(u32::from_le_bytes(fixed(rec, at)?)),
        IntTy::I32 => i128::from(i32::from_le_bytes(fixed(rec, at)?)),
        IntTy::U64 => i128::from(u64::from_le_bytes(fixed(rec, at)?)),
        IntTy::I64 => i128::from(i64::from_le_bytes(fixed(rec, at)?)),
    })
}

#[inline]
fn read_num(rec: &[u8], at: usize, num: Num) -> Option<f64> {
    match num {
        Num::Int(ty) => read_int(rec, at, ty).map(|v| v as f64),
        Num::F32 => Some(f64::from(f32::from_le_bytes(fixed(rec, at)?))),
        Num::F64 => Some(f64::from_le_bytes(fixed(rec, at)?)),
    }
}

#[inline]
fn read_text(rec: &[u8], at: usize, fixed_size: usize, t: Text) -> Option<&[u8]> {
    match t {
        Text::Char => rec.get(at..at + 1),
        Text::Var => {
            let e: [u8; 4] = fixed(rec, at)?;
            let off = usize::from(u16::from_le_bytes([e[0], e[1]]));
            let len = usize::from(u16::from_le_bytes([e[2], e[3]]));
            let start = fixed_size + off;
            rec.get(start..start + len)
        }
    }
}

/// Float comparison with C's tolerance for equality; the operators agree
/// with each other (`<=` is `<` or `==`, `!=` is not `==`). NaN equals
/// nothing and is ordered with nothing.
#[inline]
fn cmp_float(a: f64, op: CmpOp, b: f64) -> bool {
    let eq = (a - b).abs() < FLOAT_EPS;
    match op {
        CmpOp::Eq => eq,
        CmpOp::Ne => !eq,
        CmpOp::Lt => a < b && !eq,
        CmpOp::Le => a < b || eq,
        CmpOp::Gt => a > b && !eq,
        CmpOp::Ge => a > b || eq,
    }
}

impl Leaf {
    #[inline]
    fn eval(&self, rec: &[u8], fixed_size: usize) -> bool {
        let at = self.at;
        match &self.kind {
            Kind::Int(ty, op, v) => read_int(rec, at, *ty).is_some_and(|x| op.holds(x.cmp(v))),
            Kind::Float(num, op, v) => {
                read_num(rec, at, *num).is_some_and(|x| cmp_float(x, *op, *v))
            }
            Kind::Time(op, v) => {
                fixed(rec, at).is_some_and(|b| op.holds(u64::from_le_bytes(b).cmp(v)))
            }
            Kind::Ip(op, v) => fixed::<16>(rec, at).is_some_and(|b| op.holds(b.cmp(v))),
            Kind::Net(op, net, len) => {
                fixed::<16>(rec, at).is_some_and(|b| match cmp_prefix(&b, net, *len) {
                    Some(ord) => op.holds(ord),
                    None => *op == CmpOp::Ne,
                })
            }
            Kind::Mac(op, v) => fixed::<6>(rec, at).is_some_and(|b| op.holds(b.cmp(v))),
            Kind::Text(t, op, v) => {
                read_text(rec, at, fixed_size, *t).is_some_and(|s| op.holds(s.cmp(v)))
            }
            Kind::Regex(t, re) => {
                read_text(rec, at, fixed_size, *t).is_some_and(|s| re.is_match(s))
            }
            Kind::IntIn(ty, set) => {
                read_int(rec, at, *ty).is_some_and(|x| set.binary_search(&x).is_ok())
            }
            Kind::FloatIn(num, set) => read_num(rec, at, *num)
                .is_some_and(|x| set.iter().any(|v| (x - v).abs() < FLOAT_EPS)),
            Kind::TimeIn(set) => {
                fixed(rec, at).is_some_and(|b| set.binary_search(&u64::from_le_bytes(b)).is_ok())
            }
            Kind::IpIn(set) => fixed::<16>(rec, at).is_some_and(|b| set.contains(&b)),
            Kind::MacIn(set) => fixed::<6>(rec, at).is_some_and(|b| set.binary_search(&b).is_ok()),
            Kind::TextIn(t, set) => read_text(rec, at, fixed_size, *t)
                .is_some_and(|s| set.binary_search_by(|v| (**v).cmp(s)).is_ok()),
        }
    }
}

fn int_ty(s: Scalar) -> Option<IntTy> {
    Some(match s {
        Scalar::U8 => IntTy::U8,
        Scalar::I8 => IntTy::I8,
        Scalar::U16 => IntTy::U16,
        Scalar::I16 => IntTy::I16,
        Scalar::U32 => IntTy::U32,
        Scalar::I32 => IntTy::I32,
        Scalar::U64 => IntTy::U64,
        Scalar::I64 => IntTy::I64,
        _ => return None,
    })
}

fn num_of(ty: FieldType) -> Option<Num> {
    match ty {
        FieldType::Scalar(Scalar::Float) => Some(Num::F32),
        FieldType::Scalar(Scalar::Double) => Some(Num::F64),
        FieldType::Scalar(s) => int_ty(s).map(Num::Int),
        _ => None,
    }
}

fn text_of(ty: FieldType) -> Option<Text> {
    match ty {
        FieldType::String | FieldType::Bytes => Some(Text::Var),
        FieldType::Scalar(Scalar::Char) => Some(Text::Char),
        _ => None,
    }
}

fn str_text(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok().map(str::trim)
}

/// A literal as a value for a field of type `ty` (strings are read as the
/// field's type, as C's scanner read a quoted address or date).
enum Val {
    Num(f64, Option<i128>),
    Time(u64),
    Ip(UrIp),
    Net(UrIp, u8),
    Mac([u8; 6]),
    Text(Box<[u8]>),
}

fn convert(ty: FieldType, lit: &Lit) -> Result<Val, String> {
    let mismatch = || Err(format!("is {ty}, not comparable with {}", lit.kind()));
    match ty {
        FieldType::Scalar(Scalar::Time) => match lit {
            Lit::Time(t) => Ok(Val::Time(t.0)),
            Lit::Str(s) => match str_text(s).and_then(UrTime::parse) {
                Some(t) => Ok(Val::Time(t.0)),
                None => Err(format!(
                    "is time, and \"{}\" is not a date and time",
                    String::from_utf8_lossy(s)
                )),
            },
            Lit::Int(_) | Lit::Float(_) => Err(
                "is time: compare it with a date and time (YYYY-mm-ddTHH:MM:SS[.sss], UTC)".into(),
            ),
            _ => mismatch(),
        },
        FieldType::Scalar(Scalar::IpAddr) => match lit {
            Lit::Ip(ip) => Ok(Val::Ip(*ip)),
            Lit::Net(ip, len) => Ok(Val::Net(*ip, *len)),
            Lit::Str(s) => match str_text(s).and_then(|s| crate::lexer::address(s, 1).ok()) {
                Some(Tok::Ip(ip)) => Ok(Val::Ip(ip)),
                Some(Tok::Net(ip, len)) => Ok(Val::Net(crate::ip::mask(ip, len), len)),
                _ => Err(format!(
                    "is ipaddr, and \"{}\" is not an IP address or prefix",
                    String::from_utf8_lossy(s)
                )),
            },
            _ => mismatch(),
        },
        FieldType::Scalar(Scalar::MacAddr) => match lit {
            Lit::Mac(m) => Ok(Val::Mac(m.0)),
            Lit::Str(s) => match str_text(s).and_then(UrMac::parse) {
                Some(m) => Ok(Val::Mac(m.0)),
                None => Err(format!(
                    "is macaddr, and \"{}\" is not a MAC address",
                    String::from_utf8_lossy(s)
                )),
            },
            _ => mismatch(),
        },
        FieldType::Array(_) => Err(format!("is an array ({ty}): arrays cannot be compared")),
        _ if text_of(ty).is_some() => match lit {
            Lit::Str(s) => Ok(Val::Text(s.clone().into_boxed_slice())),
            _ => mismatch(),
        },
        _ if num_of(ty).is_some() => match lit {
            Lit::Int(v) => Ok(Val::Num(*v as f64, Some(*v))),
            Lit::Float(v) => Ok(Val::Num(*v, None)),
            _ => mismatch(),
        },
        _ => mismatch(),
    }
}

fn cmp_kind(ty: FieldType, op: CmpOp, lit: &Lit) -> Result<Kind, String> {
    Ok(match convert(ty, lit)? {
        Val::Num(f, exact) => match (num_of(ty), exact) {
            (Some(Num::Int(it)), Some(v)) => Kind::Int(it, op, v),
            (Some(num), _) => Kind::Float(num, op, f),
            (None, _) => return Err(format!("is {ty}, not a number")),
        },
        Val::Time(t) => Kind::Time(op, t),
        Val::Ip(ip) => Kind::Ip(op, ip.0),
        Val::Net(ip, len) => Kind::Net(op, ip, len),
        Val::Mac(m) => Kind::Mac(op, m),
        Val::Text(s) => match text_of(ty) {
            Some(t) => Kind::Text(t, op, s),
            None => return Err(format!("is {ty}, not text")),
        },
    })
}

fn in_kind(ty: FieldType, list: &[Lit]) -> Result<Kind, String> {
    let vals = list
        .iter()
        .map(|l| convert(ty, l))
        .collect::<Result<Vec<_>, _>>()?;
    let unexpected =
        || Err::<Kind, String>(format!("is {ty}: the list mixes values of other kinds"));
    Ok(match ty {
        FieldType::Scalar(Scalar::Time) => {
            let mut v: Vec<u64> = vals
                .iter()
                .filter_map(|x| if let Val::Time(t) = x { Some(*t) } else { None })
                .collect();
            v.sort_unstable();
            Kind::TimeIn(v.into())
        }
        FieldType::Scalar(Scalar::IpAddr) => {
            let mut set = IpSet::default();
            for x in &vals {
                match x {
                    Val::Ip(ip) => set.insert_addr(*ip),
                    Val::Net(ip, len) => set.insert_prefix(*ip, *len),
                    _ => return unexpected(),
                }
            }
            set.finish();
            Kind::IpIn(Box::new(set))
        }
        FieldType::Scalar(Scalar::MacAddr) => {
            let mut v: Vec<[u8; 6]> = vals
                .iter()
                .filter_map(|x| if let Val::Mac(m) = x { Some(*m) } else { None })
                .collect();
            v.sort_unstable();
            Kind::MacIn(v.into())
        }
        _ => {
            if let Some(t) = text_of(ty) {
                let mut v: Vec<Box<[u8]>> = vals
                    .into_iter()
                    .filter_map(|x| if let Val::Text(s) = x { Some(s) } else { None })
                    .collect();
                v.sort_unstable();
                Kind::TextIn(t, v.into())
            } else if let Some(num) = num_of(ty) {
                let exact: Option<Vec<i128>> = vals
                    .iter()
                    .map(|x| if let Val::Num(_, e) = x { *e } else { None })
                    .collect();
                match (num, exact) {
                    (Num::Int(it), Some(mut v)) => {
                        v.sort_unstable();
                        Kind::IntIn(it, v.into())
                    }
                    _ => Kind::FloatIn(
                        num,
                        vals.iter()
                            .filter_map(|x| {
                                if let Val::Num(f, _) = x {
                                    Some(*f)
                                } else {
                                    None
                                }
                            })
                            .collect(),
                    ),
                }
            } else {
                return unexpected();
            }
        }
    })
}

fn leaf(
    tmpl: &Template,
    idx: usize,
    test: &Test,
    op_override: Option<CmpOp>,
) -> Result<Leaf, String> {
    let Some(f) = tmpl.field(idx) else {
        return Err("is not in the template".into());
    };
    let ty = f.ty();
    let kind = match test {
        Test::Cmp(op, lit) => cmp_kind(ty, op_override.unwrap_or(*op), lit)?,
        Test::In(list) => in_kind(ty, list)?,
        Test::Regex(re) => match text_of(ty) {
            Some(t) => Kind::Regex(t, re.clone()),
            None => {
                return Err(format!(
                    "is {ty}: only string, bytes and char fields match a regular expression"
                ))
            }
        },
    };
    Ok(Leaf {
        at: f.offset(),
        kind,
    })
}

/// Binds `expr` to `tmpl`. Terms on fields the template lacks, or whose
/// type does not fit the literal, are always false and get a warning (as
/// in C).
pub fn bind(expr: &Expr, tmpl: &Template, warnings: &mut Vec<String>) -> Bound {
    Bound {
        root: simplify(bind_expr(expr, tmpl, warnings)),
        fixed: tmpl.fixed_size(),
    }
}

fn bind_expr(expr: &Expr, tmpl: &Template, w: &mut Vec<String>) -> Node {
    match expr {
        Expr::Const(b) => Node::Const(*b),
        Expr::Not(e) => Node::Not(Box::new(bind_expr(e, tmpl, w))),
        Expr::And(v) => Node::And(v.iter().map(|e| bind_expr(e, tmpl, w)).collect()),
        Expr::Or(v) => Node::Or(v.iter().map(|e| bind_expr(e, tmpl, w)).collect()),
        Expr::Term(t) => bind_term(t, tmpl, w),
    }
}

fn bind_term(t: &Term, tmpl: &Template, w: &mut Vec<String>) -> Node {
    let always_false = |w: &mut Vec<String>, name: &str, why: String| {
        w.push(format!(
            "column {}: `{name}` {why}; the term is always false",
            t.col
        ));
        Node::Const(false)
    };
    let pair = match &t.target {
        Target::Field(name) => {
            let Some(idx) = tmpl.find(name) else {
                return always_false(w, name, "is not in the input template".into());
            };
            return match leaf(tmpl, idx, &t.test, None) {
                Ok(l) => Node::Leaf(l),
                Err(why) => always_false(w, name, why),
            };
        }
        Target::Host => ["SRC_IP", "DST_IP"],
        Target::Port => ["SRC_PORT", "DST_PORT"],
    };
    // `host != X` holds when neither address is X; the other operators
    // when either field satisfies them.
    let negate = matches!(t.test, Test::Cmp(CmpOp::Ne, _));
    let op = negate.then_some(CmpOp::Eq);
    let mut leaves = Vec::new();
    for name in pair {
        let Some(idx) = tmpl.find(name) else { continue };
        match leaf(tmpl, idx, &t.test, op) {
            Ok(l) => leaves.push(l),
            Err(why) => w.push(format!(
                "column {}: `{name}` (of `{}`) {why}; it is left out",
                t.col,
                t.target.name()
            )),
        }
    }
    if leaves.is_empty() {
        return always_false(
            w,
            t.target.name(),
            format!("needs {} or {} in the input template", pair[0], pair[1]),
        );
    }
    let any = Node::Any(leaves.into());
    if negate {
        Node::Not(Box::new(any))
    } else {
        any
    }
}

/// Folds constants (terms on missing fields) and single-item groups.
fn simplify(n: Node) -> Node {
    match n {
        Node::Not(inner) => match simplify(*inner) {
            Node::Const(b) => Node::Const(!b),
            other => Node::Not(Box::new(other)),
        },
        Node::And(v) => {
            let mut out = Vec::with_capacity(v.len());
            for n in v.into_vec() {
                match simplify(n) {
                    Node::Const(true) => {}
                    Node::Const(false) => return Node::Const(false),
                    other => out.push(other),
                }
            }
            match out.len() {
                0 => Node::Const(true),
                1 => out.pop().unwrap_or(Node::Const(true)),
                _ => Node::And(out.into()),
            }
        }
        Node::Or(v) => {
            let mut out = Vec::with_capacity(v.len());
            for n in v.into_vec() {
                match simplify(n) {
                    Node::Const(false) => {}
                    Node::Const(true) => return Node::Const(true),
                    other => out.push(other),
                }
            }
            match out.len() {
                0 => Node::Const(false),
                1 => out.pop().unwrap_or(Node::Const(false)),
                _ => Node::Or(out.into()),
            }
        }
        other => other,
    }
}
