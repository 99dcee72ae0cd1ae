//! A parsed filter bound to an input template: every term resolved to the
//! offset and type of its field, literals converted to the field's type,
//! lists sorted. Evaluating it reads the record's bytes in place and
//! allocates nothing.

use crate::ip::{cmp_prefix, IpSet};
use crate::lexer::{CmpOp, Tok};
use crate::parser::{Expr, Lit, Target, Term, Test};
use std::sync::Arc;
use unirec::{FieldType, RecordRef, Scalar, Template, UrIp, UrMac, UrTime};

/// Two floats within this distance are equal (C's tolerance).
const FLOAT_EPS: f64 = 1e-8;

/// Lists up to this long are scanned rather than searched.
const SHORT_LIST: usize = 16;

/// The smallest and largest value of an integer type.
fn int_bounds(ty: IntTy) -> (i128, i128) {
    match ty {
        IntTy::U8 => (0, u8::MAX.into()),
        IntTy::I8 => (i8::MIN.into(), i8::MAX.into()),
        IntTy::U16 => (0, u16::MAX.into()),
        IntTy::I16 => (i16::MIN.into(), i16::MAX.into()),
        IntTy::U32 => (0, u32::MAX.into()),
        IntTy::I32 => (i32::MIN.into(), i32::MAX.into()),
        IntTy::U64 => (0, u64::MAX.into()),
        IntTy::I64 => (i64::MIN.into(), i64::MAX.into()),
    }
}

/// A value of type `ty` (within its bounds) as an order key: unsigned
/// values as they are, signed ones with the sign bit flipped, so that keys
/// compare as the values do.
fn key_of(ty: IntTy, v: i128) -> u64 {
    match ty {
        IntTy::U8 | IntTy::U16 | IntTy::U32 | IntTy::U64 => v as u64,
        _ => (v as i64 as u64) ^ (1 << 63),
    }
}

/// The order key of the field at `at`.
#[inline(always)]
fn int_key(rec: &[u8], at: usize, ty: IntTy) -> Option<u64> {
    Some(match ty {
        IntTy::U8 => u64::from(fixed::<1>(rec, at)?[0]),
        IntTy::U16 => u64::from(u16::from_le_bytes(fixed(rec, at)?)),
        IntTy::U32 => u64::from(u32::from_le_bytes(fixed(rec, at)?)),
        IntTy::U64 => u64::from_le_bytes(fixed(rec, at)?),
        IntTy::I8 => (i64::from(fixed::<1>(rec, at)?[0] as i8) as u64) ^ (1 << 63),
        IntTy::I16 => (i64::from(i16::from_le_bytes(fixed(rec, at)?)) as u64) ^ (1 << 63),
        IntTy::I32 => (i64::from(i32::from_le_bytes(fixed(rec, at)?)) as u64) ^ (1 << 63),
        IntTy::I64 => (i64::from_le_bytes(fixed(rec, at)?) as u64) ^ (1 << 63),
    })
}

/// `FIELD op v` as a range of keys, clipped to the field type's values
/// (so that `PACKETS > -1` holds for every value and `SMALL > 200` for none).
fn int_range(ty: IntTy, op: CmpOp, v: i128) -> Kind {
    let (min, max) = int_bounds(ty);
    let (lo, hi, neg) = match op {
        CmpOp::Eq => (v, v, false),
        CmpOp::Ne => (v, v, true),
        CmpOp::Lt => (min, v - 1, false),
        CmpOp::Le => (min, v, false),
        CmpOp::Gt => (v + 1, max, false),
        CmpOp::Ge => (v, max, false),
    };
    let (lo, hi) = (lo.max(min), hi.min(max));
    if lo > hi {
        // No value of the type is in the range: every key is outside, i.e.
        // not in the full range.
        return Kind::Int {
            ty,
            lo: 0,
            span: u64::MAX,
            neg: !neg,
        };
    }
    let (lo, hi) = (key_of(ty, lo), key_of(ty, hi));
    let span = hi - lo;
    // Unsigned fields, the common case, with their width in the variant:
    // one dispatch per term instead of two.
    match ty {
        IntTy::U8 => Kind::U8(lo, span, neg),
        IntTy::U16 => Kind::U16(lo, span, neg),
        IntTy::U32 => Kind::U32(lo, span, neg),
        IntTy::U64 => Kind::U64(lo, span, neg),
        _ => Kind::Int { ty, lo, span, neg },
    }
}

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
        let bytes = rec.bytes();
        // The common shapes without the general evaluator's frame.
        match &self.root {
            // Two and three terms unrolled: the usual filters, without the
            // loop's bookkeeping per record.
            Node::AllCompiled(v) => match &v[..] {
                [a, b] => (a.0)(bytes) & (b.0)(bytes),
                [a, b, c] => (a.0)(bytes) & (b.0)(bytes) & (c.0)(bytes),
                v => v.iter().fold(true, |all, c| all & (c.0)(bytes)),
            },
            Node::AnyCompiled(v) => match &v[..] {
                [a, b] => (a.0)(bytes) | (b.0)(bytes),
                [a, b, c] => (a.0)(bytes) | (b.0)(bytes) | (c.0)(bytes),
                v => v.iter().fold(false, |any, c| any | (c.0)(bytes)),
            },
            Node::Compiled(c) => (c.0)(bytes),
            root => root.eval(bytes, self.fixed),
        }
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
    /// `&&` and `||` of cheap terms (fixed fields, short lists): every
    /// term is evaluated, which costs less than the mispredicted branches
    /// of stopping early on records that pass about half the time.
    AllEager(Box<[Node]>),
    AnyEager(Box<[Node]>),
    /// The same of terms only: evaluated in one loop without recursion.
    AllLeaves(Box<[Leaf]>),
    AnyLeaves(Box<[Leaf]>),
    /// Integer terms compiled to closures ([`Compiled`]): alone, and the
    /// eager `&&` / `||` of them.
    Compiled(Compiled),
    AllCompiled(Box<[Compiled]>),
    AnyCompiled(Box<[Compiled]>),
}

/// An integer term compiled to a closure over its field's offset, with the
/// field's width and the comparison fixed when the filter is bound: one
/// indirect call per record instead of the dispatch on the term's kind and
/// type.
#[derive(Clone)]
struct Compiled(Arc<RecordTest>);

/// A test of a record's bytes.
type RecordTest = dyn Fn(&[u8]) -> bool + Send + Sync;

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compiled")
    }
}

/// The `N`-byte little-endian unsigned field at `at`.
#[inline(always)]
fn le_uint<const N: usize>(rec: &[u8], at: usize) -> Option<u64> {
    let b: [u8; N] = rec.get(at..at + N)?.try_into().ok()?;
    let mut x = [0u8; 8];
    x[..N].copy_from_slice(&b);
    Some(u64::from_le_bytes(x))
}

/// `lo <= value <= lo + span` (or not, when `neg`) of an `N`-byte unsigned field.
fn range_test<const N: usize>(at: usize, lo: u64, span: u64, neg: bool) -> Compiled {
    Compiled(Arc::new(move |r: &[u8]| {
        le_uint::<N>(r, at).is_some_and(|v| (v.wrapping_sub(lo) <= span) != neg)
    }))
}

/// The `N`-byte unsigned field at `at` is one of the values of a short list.
fn list_test<const N: usize>(at: usize, set: &[u64]) -> Compiled {
    match set.len() {
        0..=4 => padded_list_test::<N, 4>(at, set),
        5..=8 => padded_list_test::<N, 8>(at, set),
        _ => padded_list_test::<N, SHORT_LIST>(at, set),
    }
}

/// [`list_test`] over an array of `L` values (the list padded with its
/// first value, which changes no answer): compared all at once, without a
/// loop or branches on the data.
fn padded_list_test<const N: usize, const L: usize>(at: usize, set: &[u64]) -> Compiled {
    let first = set.first().copied().unwrap_or(u64::MAX);
    let mut values = [first; L];
    for (v, s) in values.iter_mut().zip(set) {
        *v = *s;
    }
    // An empty list matches nothing: no N-byte value is u64::MAX unless N
    // is 8, so keep the answer explicit.
    let empty = set.is_empty();
    Compiled(Arc::new(move |r: &[u8]| {
        le_uint::<N>(r, at)
            .is_some_and(|x| !empty & values.iter().fold(false, |any, v| any | (*v == x)))
    }))
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
            Node::AllEager(v) => v.iter().fold(true, |all, n| all & n.eval(rec, fixed)),
            Node::AnyEager(v) => v.iter().fold(false, |any, n| any | n.eval(rec, fixed)),
            Node::AllLeaves(v) => v.iter().fold(true, |all, l| all & l.eval(rec, fixed)),
            Node::AnyLeaves(v) => v.iter().fold(false, |any, l| any | l.eval(rec, fixed)),
            Node::Compiled(c) => (c.0)(rec),
            Node::AllCompiled(v) => v.iter().fold(true, |all, c| all & (c.0)(rec)),
            Node::AnyCompiled(v) => v.iter().fold(false, |any, c| any | (c.0)(rec)),
        }
    }

    /// Integer terms (alone, or all terms of an eager group) as closures.
    fn compile(self) -> Node {
        let all = |leaves: &[Leaf]| -> Option<Box<[Compiled]>> {
            leaves.iter().map(Leaf::compiled).collect()
        };
        match self {
            Node::Leaf(l) => match l.compiled() {
                Some(c) => Node::Compiled(c),
                None => Node::Leaf(l),
            },
            Node::AllLeaves(v) => match all(&v) {
                Some(c) => Node::AllCompiled(c),
                None => Node::AllLeaves(v),
            },
            Node::AnyLeaves(v) => match all(&v) {
                Some(c) => Node::AnyCompiled(c),
                None => Node::AnyLeaves(v),
            },
            Node::Not(n) => Node::Not(Box::new(n.compile())),
            Node::And(v) => Node::And(v.into_vec().into_iter().map(Node::compile).collect()),
            Node::Or(v) => Node::Or(v.into_vec().into_iter().map(Node::compile).collect()),
            Node::AllEager(v) => {
                Node::AllEager(v.into_vec().into_iter().map(Node::compile).collect())
            }
            Node::AnyEager(v) => {
                Node::AnyEager(v.into_vec().into_iter().map(Node::compile).collect())
            }
            other => other,
        }
    }

    /// Cheap to evaluate: no regular expression, no variable-length data,
    /// no long list.
    fn is_cheap(&self) -> bool {
        match self {
            Node::Const(_) => true,
            Node::Not(n) => n.is_cheap(),
            Node::And(v) | Node::Or(v) | Node::AllEager(v) | Node::AnyEager(v) => {
                v.len() <= 4 && v.iter().all(Node::is_cheap)
            }
            Node::Leaf(l) => l.is_cheap(),
            Node::Any(v) | Node::AllLeaves(v) | Node::AnyLeaves(v) => v.iter().all(Leaf::is_cheap),
            Node::Compiled(_) | Node::AllCompiled(_) | Node::AnyCompiled(_) => true,
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
    /// An integer comparison as a range of the field's order keys
    /// ([`int_key`]): the value's key minus `lo` is at most `span`, or
    /// more when `neg` (`!=`).
    Int {
        ty: IntTy,
        lo: u64,
        span: u64,
        neg: bool,
    },
    /// [`Kind::Int`] of `uint8`/`uint16`/`uint32`/`uint64` fields: (lo, span, neg).
    U8(u64, u64, bool),
    U16(u64, u64, bool),
    U32(u64, u64, bool),
    U64(u64, u64, bool),
    Float(Num, CmpOp, f64),
    Time(CmpOp, u64),
    Ip(CmpOp, [u8; 16]),
    Net(CmpOp, UrIp, u8),
    Mac(CmpOp, [u8; 6]),
    Text(Text, CmpOp, Box<[u8]>),
    Regex(Text, Box<regex::bytes::Regex>),
    /// Sorted order keys of the list's values that the type can hold.
    IntIn(IntTy, Box<[u64]>),
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
    /// This term as a closure, for the integer comparisons and short lists
    /// of unsigned fields.
    fn compiled(&self) -> Option<Compiled> {
        let at = self.at;
        Some(match &self.kind {
            &Kind::U8(lo, span, neg) => range_test::<1>(at, lo, span, neg),
            &Kind::U16(lo, span, neg) => range_test::<2>(at, lo, span, neg),
            &Kind::U32(lo, span, neg) => range_test::<4>(at, lo, span, neg),
            &Kind::U64(lo, span, neg) => range_test::<8>(at, lo, span, neg),
            Kind::IntIn(ty, set) if set.len() <= SHORT_LIST => match ty {
                IntTy::U8 => list_test::<1>(at, set),
                IntTy::U16 => list_test::<2>(at, set),
                IntTy::U32 => list_test::<4>(at, set),
                IntTy::U64 => list_test::<8>(at, set),
                _ => return None,
            },
            _ => return None,
        })
    }

    fn is_cheap(&self) -> bool {
        match &self.kind {
            Kind::Int { .. }
            | Kind::U8(..)
            | Kind::U16(..)
            | Kind::U32(..)
            | Kind::U64(..)
            | Kind::Float(..)
            | Kind::Time(..)
            | Kind::Ip(..)
            | Kind::Net(..)
            | Kind::Mac(..) => true,
            Kind::IntIn(_, set) => set.len() <= SHORT_LIST,
            _ => false,
        }
    }

    #[inline(always)]
    fn eval(&self, rec: &[u8], fixed_size: usize) -> bool {
        let at = self.at;
        match &self.kind {
            &Kind::Int { ty, lo, span, neg } => {
                int_key(rec, at, ty).is_some_and(|k| (k.wrapping_sub(lo) <= span) != neg)
            }
            &Kind::U8(lo, span, neg) => fixed::<1>(rec, at)
                .is_some_and(|b| (u64::from(b[0]).wrapping_sub(lo) <= span) != neg),
            &Kind::U16(lo, span, neg) => fixed(rec, at).is_some_and(|b| {
                (u64::from(u16::from_le_bytes(b)).wrapping_sub(lo) <= span) != neg
            }),
            &Kind::U32(lo, span, neg) => fixed(rec, at).is_some_and(|b| {
                (u64::from(u32::from_le_bytes(b)).wrapping_sub(lo) <= span) != neg
            }),
            &Kind::U64(lo, span, neg) => fixed(rec, at)
                .is_some_and(|b| (u64::from_le_bytes(b).wrapping_sub(lo) <= span) != neg),
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
            Kind::IntIn(ty, set) => int_key(rec, at, *ty).is_some_and(|x| {
                if set.len() <= SHORT_LIST {
                    // Without branches on the data: no mispredictions.
                    set.iter().fold(false, |any, v| any | (*v == x))
                } else {
                    set.binary_search(&x).is_ok()
                }
            }),
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
            (Some(Num::Int(it)), Some(v)) => int_range(it, op, v),
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
                    (Num::Int(it), Some(v)) => {
                        let (min, max) = int_bounds(it);
                        let mut keys: Vec<u64> = v
                            .into_iter()
                            .filter(|x| (min..=max).contains(x))
                            .map(|x| key_of(it, x))
                            .collect();
                        keys.sort_unstable();
                        keys.dedup();
                        Kind::IntIn(it, keys.into())
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
        root: simplify(bind_expr(expr, tmpl, warnings)).compile(),
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

/// An eager `&&` (`all`) or `||` of cheap nodes; of terms only, a loop
/// over them.
fn eager(nodes: Vec<Node>, all: bool) -> Node {
    if nodes.iter().all(|n| matches!(n, Node::Leaf(_))) {
        let leaves: Box<[Leaf]> = nodes
            .into_iter()
            .filter_map(|n| if let Node::Leaf(l) = n { Some(l) } else { None })
            .collect();
        return if all {
            Node::AllLeaves(leaves)
        } else {
            Node::AnyLeaves(leaves)
        };
    }
    if all {
        Node::AllEager(nodes.into())
    } else {
        Node::AnyEager(nodes.into())
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
                _ if out.len() <= 4 && out.iter().all(Node::is_cheap) => eager(out, true),
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
                _ if out.len() <= 4 && out.iter().all(Node::is_cheap) => eager(out, false),
                _ => Node::Or(out.into()),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closures of integer terms answer as the general evaluator does:
    /// ranges (`==`, `!=`, `<`, `>` as ranges of every width) and lists of
    /// every length up to the short-list limit, on values around theirs.
    #[test]
    fn compiled_terms_agree_with_the_evaluator() {
        let widths = [
            (IntTy::U8, 1usize),
            (IntTy::U16, 2),
            (IntTy::U32, 4),
            (IntTy::U64, 8),
        ];
        let probe = |w: usize| -> Vec<u64> {
            let max = if w == 8 {
                u64::MAX
            } else {
                (1u64 << (8 * w)) - 1
            };
            let mut v: Vec<u64> = (0..40).chain([max - 1, max, max / 2]).collect();
            v.extend([80, 443, 8080, 65535, 65536]);
            v.into_iter().filter(|&x| x <= max).collect()
        };
        let mut checked = 0;
        for (ty, w) in widths {
            let mut kinds = Vec::new();
            for op in [
                CmpOp::Eq,
                CmpOp::Ne,
                CmpOp::Lt,
                CmpOp::Le,
                CmpOp::Gt,
                CmpOp::Ge,
            ] {
                for v in [0i128, 1, 7, 443, 70_000, -1] {
                    kinds.push(int_range(ty, op, v));
                }
            }
            for len in 0..=SHORT_LIST {
                let mut set: Vec<u64> = (0..len as u64).map(|i| i * 3 + 1).collect();
                set.sort_unstable();
                kinds.push(Kind::IntIn(ty, set.into()));
            }
            for kind in kinds {
                // The field at offset 2, as in a record with a field before it.
                let leaf = Leaf { at: 2, kind };
                let Some(c) = leaf.compiled() else {
                    continue;
                };
                for x in probe(w) {
                    let mut rec = vec![0xaa; 2 + 8];
                    rec[2..2 + w].copy_from_slice(&x.to_le_bytes()[..w]);
                    rec.truncate(2 + w);
                    assert_eq!(
                        (c.0)(&rec),
                        leaf.eval(&rec, rec.len()),
                        "{:?} on {x}",
                        leaf.kind
                    );
                    // A record too short for the field: false, both ways.
                    assert!(!(c.0)(&rec[..2 + w - 1]));
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }
}
