//! biflow_aggregator (NEMEA module name "aggregator"): records with the same
//! key become one record, each configured field combined by its function.
//!
//! Behaviour of Nemea-Modules' `biflow_aggregator` kept here:
//!
//! - The output template is `TIME_FIRST`, `TIME_LAST`, `COUNT` (uint32: the
//!   records aggregated, each weighted by its own `COUNT` when the input has
//!   one) and every configured field with its input type
//!   (`NAME_UNIQUE_COUNT` uint32 for UNIQUE_COUNT). No key at all means one
//!   flow for everything.
//! - Biflow mode (SRC_IP, DST_IP, SRC_PORT, DST_PORT, PROTOCOL all keys): a
//!   record whose SRC_IP is larger than its DST_IP — compared as C compares
//!   them, the 16 bytes as a little-endian 128-bit integer — is read through
//!   the reverse names, so both directions share a key; fields with a
//!   reverse name (PACKETS / PACKETS_REV) are added up per direction. The
//!   exported orientation is that of the record with the oldest TIME_FIRST.
//! - Timeouts are on record time, in whole seconds. A flow's passive
//!   deadline is its TIME_LAST + passive, capped at its active deadline
//!   (TIME_FIRST + active). Flows wait in a list ordered by passive deadline
//!   (ties in arrival order); before each record the front of the list is
//!   exported while the largest TIME_LAST seen has reached the deadline, and
//!   once the record's times are known, while its TIME_FIRST has reached the
//!   passive deadline or the largest TIME_LAST the active one. The scan stops
//!   at the first flow that stays, as C's does.
//! - A global timeout (`-g`) replaces the per-flow ones: every flow is
//!   exported whenever the largest TIME_LAST moved `interval` seconds past the
//!   last flush (relative), or past the last multiple of `interval`
//!   (absolute).
//! - A format change exports every flow and starts over with the new template.
//! - Sums and averages are computed in the field's own type (integer sums
//!   wrap); AVG divides by the number of records (not their COUNT).
//!
//! Where we differ (on purpose):
//!
//! - A full cache exports the flow at the front of the timeout list (C lets
//!   its hash table pick a victim), so which flow goes is deterministic.
//! - MIN and MAX start from the first value; C starts MAX at 0, so the MAX of
//!   negative numbers was 0.
//! - UNIQUE_COUNT counts exactly (C uses a Bloom filter of `size` entries
//!   with 1 % false positives, so it could undercount), and writes the whole
//!   uint32.
//! - String keys are compared by their bytes (C compares 64-bit hashes).
//! - AVG of a signed integer divides as a signed number.
//! - APPEND without `<delimiter>` uses `;` (C's README; its code used NUL).

pub mod config;
pub mod ops;
pub mod run;

pub use config::{
    parse_global, parse_time_window, parse_xml, prepare, ConfigError, FieldConfig, Fields, Func,
    Global, Order, Timeouts,
};

use detector_common::{FastMap, FastSet};
use std::cmp::Ordering;
use unirec::record::{RecordError, RecordRef, MAX_RECORD_SIZE};
use unirec::template::{Template, TemplateError};
use unirec::types::{FieldType, Scalar};

/// Why records cannot be aggregated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggError {
    #[error("the input has no field `{0}` (the config names it, and the aggregator needs TIME_FIRST and TIME_LAST)")]
    Missing(String),
    #[error("field `{field}` is `{ty}`: {func} takes {takes}")]
    BadType {
        field: String,
        ty: FieldType,
        func: Func,
        takes: &'static str,
    },
    #[error(
        "fields `{0}` and `{1}` have different types: a reverse name must have its field's type"
    )]
    ReverseType(String, String),
    #[error("the passive timeout ({passive} s) is longer than the active one ({active} s)")]
    Timeouts { passive: u64, active: u64 },
    #[error("output template: {0}")]
    Template(#[from] TemplateError),
    #[error("bad record: {0}")]
    Record(#[from] RecordError),
}

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub records: u64,
    pub exported: u64,
    /// Flows exported early because the cache was full.
    pub evicted: u64,
    /// Aggregated records larger than UniRec's 65535 bytes, dropped.
    pub too_large: u64,
}

const NIL: u32 = u32::MAX;

struct KeyPart {
    idx: usize,
    ridx: usize,
    ty: FieldType,
    out: Option<usize>,
    rout: Option<usize>,
}

struct AggPart {
    func: Func,
    ty: FieldType,
    idx: usize,
    ridx: usize,
    /// SORTED_MERGE(_DIR): the sort key's field and its element type.
    sort: Option<(usize, Scalar)>,
    out: Option<usize>,
    rout: Option<usize>,
    limit: usize,
    delimiter: u8,
    order: Order,
}

/// Field indices resolved for one input template.
struct Layout {
    input: Template,
    output: Template,
    tf: usize,
    tl: usize,
    count: Option<usize>,
    /// SRC_IP and DST_IP, in biflow mode.
    ips: Option<(usize, usize)>,
    keys: Vec<KeyPart>,
    aggs: Vec<AggPart>,
    out_tf: usize,
    out_tl: usize,
    out_count: usize,
}

#[derive(Debug)]
enum Acc {
    Fixed {
        v: [u8; 16],
        set: bool,
        n: u32,
    },
    Var {
        v: Vec<u8>,
        set: bool,
    },
    Sorted {
        vals: Vec<u8>,
        keys: Vec<u8>,
    },
    Unique {
        fixed: FastSet<u128>,
        var: FastSet<Box<[u8]>>,
    },
}

impl Acc {
    fn for_part(p: &AggPart) -> Acc {
        match (p.func, p.ty) {
            (Func::UniqueCount, _) => Acc::Unique {
                fixed: FastSet::default(),
                var: FastSet::default(),
            },
            (Func::SortedMerge | Func::SortedMergeDir, _) => Acc::Sorted {
                vals: Vec::new(),
                keys: Vec::new(),
            },
            (_, FieldType::Scalar(_)) => Acc::Fixed {
                v: [0; 16],
                set: false,
                n: 0,
            },
            _ => Acc::Var {
                v: Vec::new(),
                set: false,
            },
        }
    }

    fn reset(&mut self) {
        match self {
            Acc::Fixed { v, set, n } => {
                *v = [0; 16];
                *set = false;
                *n = 0;
            }
            Acc::Var { v, set } => {
                v.clear();
                *set = false;
            }
            Acc::Sorted { vals, keys } => {
                vals.clear();
                keys.clear();
            }
            Acc::Unique { fixed, var } => {
                fixed.clear();
                var.clear();
            }
        }
    }
}

struct Flow {
    key: Box<[u8]>,
    tf: u64,
    tl: u64,
    count: u32,
    reverse: bool,
    passive: i64,
    active: i64,
    prev: u32,
    next: u32,
    accs: Vec<Acc>,
}

/// A record of the output template being written: the fixed part and the
/// data of each variable field (reused from flow to flow).
struct OutRec {
    fixed: Vec<u8>,
    vars: Vec<Vec<u8>>,
    first_var: usize,
    buf: Vec<u8>,
}

impl OutRec {
    fn new(t: &Template) -> OutRec {
        OutRec {
            fixed: vec![0; t.fixed_size()],
            vars: vec![Vec::new(); t.variable_count()],
            first_var: t.first_variable(),
            buf: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.fixed.fill(0);
        self.vars.iter_mut().for_each(Vec::clear);
    }

    fn put(&mut self, t: &Template, idx: usize, bytes: &[u8]) {
        let Some(f) = t.field(idx) else { return };
        if f.ty().is_variable() {
            if let Some(v) = self.vars.get_mut(idx - self.first_var) {
                v.clear();
                v.extend_from_slice(bytes);
            }
        } else if let Some(dst) = self.fixed.get_mut(f.offset()..f.offset() + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }

    fn var(&mut self, idx: usize) -> Option<&mut Vec<u8>> {
        let v = self.vars.get_mut(idx.checked_sub(self.first_var)?)?;
        v.clear();
        Some(v)
    }

    /// The record, or `None` when it would exceed UniRec's size limit.
    fn finish(&mut self, t: &Template) -> Option<&[u8]> {
        let size = self.fixed.len() + self.vars.iter().map(Vec::len).sum::<usize>();
        if size > MAX_RECORD_SIZE {
            return None;
        }
        let mut offset = 0usize;
        for (f, data) in t.fields()[self.first_var..].iter().zip(&self.vars) {
            let at = f.offset();
            if let Some(e) = self.fixed.get_mut(at..at + 4) {
                e[..2].copy_from_slice(&(offset as u16).to_le_bytes());
                e[2..].copy_from_slice(&(data.len() as u16).to_le_bytes());
            }
            offset += data.len();
        }
        self.buf.clear();
        self.buf.extend_from_slice(&self.fixed);
        for d in &self.vars {
            self.buf.extend_from_slice(d);
        }
        Some(&self.buf)
    }
}

/// Where aggregated records go.
pub type Emit<'a> = dyn FnMut(&[u8]) + 'a;

/// The flow cache and its timeouts (everything but the layout).
struct Cache {
    map: FastMap<Box<[u8]>, u32>,
    flows: Vec<Flow>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    live: usize,
    capacity: usize,
    max_tl: i64,
    last_flush: i64,
    key: Vec<u8>,
    out: Option<OutRec>,
    order: Vec<u32>,
    sorted: Vec<u8>,
    stats: Stats,
}

/// The aggregator: feed it records, it calls `emit` with aggregated ones.
pub struct Aggregator {
    fields: Fields,
    timeouts: Timeouts,
    layout: Option<Layout>,
    cache: Cache,
}

fn secs(t: u64) -> i64 {
    (t >> 32) as i64
}

fn takes(func: Func) -> &'static str {
    match func {
        Func::Key => "numbers, addresses, times and strings",
        Func::Sum | Func::Avg => "numbers (char, int, uint, float, double)",
        Func::Min | Func::Max => "numbers, addresses and times",
        Func::BitAnd | Func::BitOr => "integers",
        Func::First | Func::FirstNonEmpty | Func::Last | Func::LastNonEmpty => {
            "single values and strings"
        }
        Func::Append => "arrays and strings",
        Func::UniqueCount => "single values and strings",
        Func::SortedMerge => "arrays or strings, sorted by an array of numbers, addresses or times",
        Func::SortedMergeDir => "arrays of signed numbers, sorted by an array of numbers or times",
    }
}

fn allowed(func: Func, ty: FieldType) -> bool {
    use FieldType as T;
    match (func, ty) {
        (Func::Key, T::Scalar(_) | T::String | T::Bytes) => true,
        (Func::Sum | Func::Avg, T::Scalar(s)) => ops::is_number(s),
        (Func::Min | Func::Max, T::Scalar(_)) => true,
        (Func::BitAnd | Func::BitOr, T::Scalar(s)) => ops::is_integer(s),
        (
            Func::First | Func::FirstNonEmpty | Func::Last | Func::LastNonEmpty,
            T::Scalar(_) | T::String | T::Bytes,
        ) => true,
        (Func::Append, T::Array(_) | T::String | T::Bytes) => true,
        (Func::UniqueCount, T::Scalar(_) | T::String | T::Bytes) => true,
        (Func::SortedMerge, T::Array(_) | T::String | T::Bytes) => true,
        (Func::SortedMergeDir, T::Array(s)) => ops::is_signed(s),
        _ => false,
    }
}

impl Aggregator {
    /// `capacity`: the most flows kept at once (C: 2^`-s`).
    pub fn new(
        fields: Fields,
        timeouts: Timeouts,
        capacity: usize,
    ) -> Result<Aggregator, AggError> {
        if timeouts.global.is_none() && timeouts.passive > timeouts.active {
            return Err(AggError::Timeouts {
                passive: timeouts.passive,
                active: timeouts.active,
            });
        }
        Ok(Aggregator {
            fields,
            timeouts,
            layout: None,
            cache: Cache {
                map: FastMap::default(),
                flows: Vec::new(),
                free: Vec::new(),
                head: NIL,
                tail: NIL,
                live: 0,
                capacity: capacity.max(1),
                max_tl: 0,
                last_flush: 0,
                key: Vec::new(),
                out: None,
                order: Vec::new(),
                sorted: Vec::new(),
                stats: Stats::default(),
            },
        })
    }

    /// The output template (after the first [`set_template`](Self::set_template)).
    pub fn output(&self) -> Option<&Template> {
        self.layout.as_ref().map(|l| &l.output)
    }

    pub fn stats(&self) -> Stats {
        self.cache.stats
    }

    /// Flows in the cache.
    pub fn flows(&self) -> usize {
        self.cache.live
    }

    /// A new input template: exports every flow (of the old one), then
    /// resolves the configured fields in `spec`. Returns the output template.
    pub fn set_template(&mut self, spec: &str, emit: &mut Emit<'_>) -> Result<&Template, AggError> {
        self.flush(emit);
        self.layout = None;
        let layout = self.build_layout(spec)?;
        self.cache.out = Some(OutRec::new(&layout.output));
        self.cache.flows.clear();
        self.cache.free.clear();
        self.cache.map.clear();
        Ok(&self.layout.insert(layout).output)
    }

    fn build_layout(&self, spec: &str) -> Result<Layout, AggError> {
        let input = Template::parse(spec)?;
        let find = |name: &str| {
            input
                .find(name)
                .ok_or_else(|| AggError::Missing(name.to_string()))
        };
        let time = |name: &str| {
            input
                .find_typed(name, FieldType::Scalar(Scalar::Time))
                .ok_or_else(|| AggError::Missing(format!("{name}` of type `time")))
        };
        let tf = time("TIME_FIRST")?;
        let tl = time("TIME_LAST")?;
        let count = input.find_typed("COUNT", FieldType::Scalar(Scalar::U32));
        let mut out_fields: Vec<(String, FieldType)> = vec![
            ("TIME_FIRST".into(), FieldType::Scalar(Scalar::Time)),
            ("TIME_LAST".into(), FieldType::Scalar(Scalar::Time)),
            ("COUNT".into(), FieldType::Scalar(Scalar::U32)),
        ];
        struct Resolved<'c> {
            cfg: &'c FieldConfig,
            idx: usize,
            ridx: usize,
            ty: FieldType,
            sort: Option<(usize, Scalar)>,
        }
        let mut resolved = Vec::new();
        for cfg in &self.fields.fields {
            let idx = find(&cfg.name)?;
            let ty = input.fields()[idx].ty();
            let ridx = match &cfg.reverse_name {
                Some(r) => {
                    let ri = find(r)?;
                    if input.fields()[ri].ty() != ty {
                        return Err(AggError::ReverseType(cfg.name.clone(), r.clone()));
                    }
                    ri
                }
                None => idx,
            };
            if !allowed(cfg.func, ty) {
                return Err(AggError::BadType {
                    field: cfg.name.clone(),
                    ty,
                    func: cfg.func,
                    takes: takes(cfg.func),
                });
            }
            let sort = match (&cfg.sort_key, cfg.func) {
                (Some(k), Func::SortedMerge | Func::SortedMergeDir) => {
                    let ki = find(k)?;
                    let kty = input.fields()[ki].ty();
                    let elem = match kty {
                        FieldType::Array(s) | FieldType::Scalar(s) if s != Scalar::MacAddr => s,
                        _ => {
                            return Err(AggError::BadType {
                                field: k.clone(),
                                ty: kty,
                                func: cfg.func,
                                takes: "a sort key of numbers, addresses or times",
                            })
                        }
                    };
                    Some((ki, elem))
                }
                _ => None,
            };
            if cfg.func == Func::UniqueCount {
                out_fields.push((
                    format!("{}_UNIQUE_COUNT", cfg.name),
                    FieldType::Scalar(Scalar::U32),
                ));
                if let Some(r) = &cfg.reverse_name {
                    out_fields.push((format!("{r}_UNIQUE_COUNT"), FieldType::Scalar(Scalar::U32)));
                }
            } else if cfg.output {
                out_fields.push((cfg.name.clone(), ty));
            }
            resolved.push(Resolved {
                cfg,
                idx,
                ridx,
                ty,
                sort,
            });
        }
        let output = Template::from_fields(out_fields.iter().map(|(n, t)| (n.as_str(), *t)))?;
        let out_of = |name: &str| output.find(name);
        let mut keys = Vec::new();
        let mut aggs = Vec::new();
        for r in resolved {
            let (oname, rname) = match r.cfg.func {
                Func::UniqueCount => (
                    format!("{}_UNIQUE_COUNT", r.cfg.name),
                    r.cfg
                        .reverse_name
                        .as_ref()
                        .map(|n| format!("{n}_UNIQUE_COUNT")),
                ),
                _ => (r.cfg.name.clone(), r.cfg.reverse_name.clone()),
            };
            let out = out_of(&oname);
            let rout = match &rname {
                Some(n) => out_of(n),
                None => out,
            };
            if r.cfg.func == Func::Key {
                keys.push(KeyPart {
                    idx: r.idx,
                    ridx: r.ridx,
                    ty: r.ty,
                    out,
                    rout,
                });
            } else {
                aggs.push(AggPart {
                    func: r.cfg.func,
                    ty: r.ty,
                    idx: r.idx,
                    ridx: r.ridx,
                    sort: r.sort,
                    out,
                    rout,
                    limit: r.cfg.limit.unwrap_or(usize::MAX),
                    delimiter: r.cfg.delimiter,
                    order: r.cfg.order,
                });
            }
        }
        let ips = if self.fields.biflow {
            let ip = FieldType::Scalar(Scalar::IpAddr);
            Some((
                input
                    .find_typed("SRC_IP", ip)
                    .ok_or_else(|| AggError::Missing("SRC_IP` of type `ipaddr".into()))?,
                input
                    .find_typed("DST_IP", ip)
                    .ok_or_else(|| AggError::Missing("DST_IP` of type `ipaddr".into()))?,
            ))
        } else {
            None
        };
        let (out_tf, out_tl, out_count) = (
            out_of("TIME_FIRST").unwrap_or(0),
            out_of("TIME_LAST").unwrap_or(0),
            out_of("COUNT").unwrap_or(0),
        );
        Ok(Layout {
            input,
            output,
            tf,
            tl,
            count,
            ips,
            keys,
            aggs,
            out_tf,
            out_tl,
            out_count,
        })
    }

    /// Aggregates one record (not an end of stream).
    pub fn process(&mut self, data: &[u8], emit: &mut Emit<'_>) -> Result<(), AggError> {
        let Some(lay) = &self.layout else {
            return Ok(());
        };
        let c = &mut self.cache;
        let rec = RecordRef::new_checked(&lay.input, data)?;
        let raw_time = |i: usize| rec.get_time(i).map_or(0, |t| t.0);
        let (rec_tf, rec_tl) = (raw_time(lay.tf), raw_time(lay.tl));
        let (tf, tl) = (secs(rec_tf), secs(rec_tl));
        c.stats.records += 1;
        c.max_tl = c.max_tl.max(tl);
        match self.timeouts.global {
            None => {
                let max_tl = c.max_tl;
                c.expire(lay, emit, |f| tf >= f.passive || max_tl >= f.active);
            }
            Some(g) => {
                let interval = g.interval as i64;
                if c.max_tl - c.last_flush >= interval {
                    c.last_flush = if g.absolute {
                        c.max_tl / interval * interval
                    } else {
                        c.max_tl
                    };
                    c.flush_all(lay, emit);
                }
            }
        }
        let reversed = match lay.ips {
            Some((s, d)) => {
                let ip = |i| {
                    rec.raw(i)
                        .and_then(|b| <[u8; 16]>::try_from(b).ok())
                        .map_or(0, u128::from_le_bytes)
                };
                ip(s) > ip(d)
            }
            None => false,
        };
        c.key.clear();
        for k in &lay.keys {
            let i = if reversed { k.ridx } else { k.idx };
            let v = rec.raw(i).unwrap_or(&[]);
            if k.ty.is_variable() {
                c.key.extend_from_slice(&(v.len() as u16).to_le_bytes());
            }
            c.key.extend_from_slice(v);
        }
        let weight = lay.count.and_then(|i| rec.get_u32(i)).unwrap_or(1);
        let (a, p) = (self.timeouts.active as i64, self.timeouts.passive as i64);
        let slot = match c.map.get(c.key.as_slice()) {
            Some(&slot) => {
                let f = &mut c.flows[slot as usize];
                f.count = f.count.wrapping_add(weight);
                if rec_tf < f.tf {
                    f.tf = rec_tf;
                    f.reverse = reversed;
                }
                f.tl = f.tl.max(rec_tl);
                let old = f.passive;
                let (first, last) = (secs(f.tf), secs(f.tl));
                if first + a < f.active {
                    f.active = first + a;
                }
                f.passive = if last + p < f.active {
                    last + p
                } else {
                    f.active
                };
                if old != f.passive {
                    c.unlink(slot);
                    c.link(slot);
                }
                slot
            }
            None => {
                if c.live >= c.capacity && c.head != NIL {
                    let victim = c.head;
                    c.export(lay, victim, emit);
                    c.remove(victim);
                    c.stats.evicted += 1;
                }
                let flow = Flow {
                    key: c.key.as_slice().into(),
                    tf: rec_tf,
                    tl: rec_tl,
                    count: weight,
                    reverse: reversed,
                    passive: tl + p,
                    active: tf + a,
                    prev: NIL,
                    next: NIL,
                    accs: Vec::new(),
                };
                let slot = match c.free.pop() {
                    Some(s) => {
                        let old = std::mem::replace(&mut c.flows[s as usize], flow);
                        let mut accs = old.accs;
                        accs.iter_mut().for_each(Acc::reset);
                        c.flows[s as usize].accs = accs;
                        s
                    }
                    None => {
                        c.flows.push(flow);
                        (c.flows.len() - 1) as u32
                    }
                };
                let f = &mut c.flows[slot as usize];
                if f.accs.len() != lay.aggs.len() {
                    f.accs = lay.aggs.iter().map(Acc::for_part).collect();
                }
                c.map.insert(f.key.clone(), slot);
                c.live += 1;
                c.link(slot);
                slot
            }
        };
        let f = &mut c.flows[slot as usize];
        for (part, acc) in lay.aggs.iter().zip(f.accs.iter_mut()) {
            aggregate(part, acc, &rec, reversed);
        }
        if self.timeouts.global.is_none() {
            let max_tl = c.max_tl;
            c.expire(lay, emit, |f| max_tl >= f.passive);
        }
        Ok(())
    }

    /// Exports every flow (end of stream, a format change, a stop).
    pub fn flush(&mut self, emit: &mut Emit<'_>) {
        if let Some(lay) = &self.layout {
            self.cache.flush_all(lay, emit);
        }
    }
}

impl Cache {
    /// Inserts `slot` into the timeout list, after every flow with a
    /// passive deadline not later than its own (searching from the back).
    fn link(&mut self, slot: u32) {
        let deadline = self.flows[slot as usize].passive;
        let mut at = self.tail;
        while at != NIL && deadline < self.flows[at as usize].passive {
            at = self.flows[at as usize].prev;
        }
        let next = if at == NIL {
            self.head
        } else {
            self.flows[at as usize].next
        };
        {
            let f = &mut self.flows[slot as usize];
            f.prev = at;
            f.next = next;
        }
        if at == NIL {
            self.head = slot;
        } else {
            self.flows[at as usize].next = slot;
        }
        if next == NIL {
            self.tail = slot;
        } else {
            self.flows[next as usize].prev = slot;
        }
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next) = {
            let f = &self.flows[slot as usize];
            (f.prev, f.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.flows[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.flows[next as usize].prev = prev;
        }
        let f = &mut self.flows[slot as usize];
        f.prev = NIL;
        f.next = NIL;
    }

    fn remove(&mut self, slot: u32) {
        self.unlink(slot);
        let key = std::mem::take(&mut self.flows[slot as usize].key);
        self.map.remove(&key);
        self.free.push(slot);
        self.live -= 1;
    }

    fn expire(&mut self, lay: &Layout, emit: &mut Emit<'_>, due: impl Fn(&Flow) -> bool) {
        while self.head != NIL && due(&self.flows[self.head as usize]) {
            let slot = self.head;
            self.export(lay, slot, emit);
            self.remove(slot);
        }
    }

    fn flush_all(&mut self, lay: &Layout, emit: &mut Emit<'_>) {
        while self.head != NIL {
            let slot = self.head;
            self.export(lay, slot, emit);
            self.remove(slot);
        }
    }

    fn export(&mut self, lay: &Layout, slot: u32, emit: &mut Emit<'_>) {
        let Some(out) = self.out.as_mut() else { return };
        let t = &lay.output;
        let f = &self.flows[slot as usize];
        out.clear();
        out.put(t, lay.out_tf, &f.tf.to_le_bytes());
        out.put(t, lay.out_tl, &f.tl.to_le_bytes());
        out.put(t, lay.out_count, &f.count.to_le_bytes());
        let mut pos = 0usize;
        for k in &lay.keys {
            let target = if f.reverse { k.rout } else { k.out };
            let bytes = match k.ty {
                FieldType::Scalar(s) => {
                    let b = f.key.get(pos..pos + s.size()).unwrap_or(&[]);
                    pos += s.size();
                    b
                }
                _ => {
                    let len = f
                        .key
                        .get(pos..pos + 2)
                        .map_or(0, |l| usize::from(u16::from_le_bytes([l[0], l[1]])));
                    let b = f.key.get(pos + 2..pos + 2 + len).unwrap_or(&[]);
                    pos += 2 + len;
                    b
                }
            };
            if let Some(i) = target {
                out.put(t, i, bytes);
            }
        }
        for (part, acc) in lay.aggs.iter().zip(&f.accs) {
            let target = match part.ty {
                FieldType::Scalar(_) if f.reverse => part.rout,
                _ => part.out,
            };
            let Some(target) = target else { continue };
            match acc {
                Acc::Fixed { v, n, .. } => {
                    let FieldType::Scalar(s) = part.ty else {
                        continue;
                    };
                    let mut v = *v;
                    if part.func == Func::Avg {
                        ops::div(s, &mut v, *n);
                    }
                    out.put(t, target, &v[..s.size()]);
                }
                Acc::Var { v, .. } => out.put(t, target, v),
                Acc::Unique { fixed, var } => {
                    let n = u32::try_from(fixed.len() + var.len()).unwrap_or(u32::MAX);
                    out.put(t, target, &n.to_le_bytes());
                }
                Acc::Sorted { vals, keys } => {
                    let Some((_, kty)) = part.sort else { continue };
                    let esize = match part.ty {
                        FieldType::Array(s) => s.size(),
                        _ => 1,
                    };
                    let ksize = kty.size();
                    let n = (vals.len() / esize).min(keys.len() / ksize);
                    self.order.clear();
                    self.order.extend(0..n as u32);
                    let key_at = |i: u32| &keys[i as usize * ksize..(i as usize + 1) * ksize];
                    self.order.sort_by(|&a, &b| {
                        let o = ops::cmp(kty, key_at(a), key_at(b)).unwrap_or(Ordering::Equal);
                        match part.order {
                            Order::Ascending => o,
                            Order::Descending => o.reverse(),
                        }
                    });
                    self.sorted.clear();
                    for &i in self.order.iter().take(part.limit) {
                        let start = self.sorted.len();
                        self.sorted
                            .extend_from_slice(&vals[i as usize * esize..(i as usize + 1) * esize]);
                        if part.func == Func::SortedMergeDir && f.reverse {
                            if let FieldType::Array(s) = part.ty {
                                ops::negate(s, &mut self.sorted[start..]);
                            }
                        }
                    }
                    if let Some(v) = out.var(target) {
                        v.extend_from_slice(&self.sorted);
                    }
                }
            }
        }
        match out.finish(t) {
            Some(rec) => {
                self.stats.exported += 1;
                emit(rec)
            }
            None => self.stats.too_large += 1,
        }
    }
}

/// Adds one record's value to a field's accumulator.
fn aggregate(part: &AggPart, acc: &mut Acc, rec: &RecordRef<'_>, reversed: bool) {
    match (acc, part.ty) {
        (Acc::Fixed { v, set, n }, FieldType::Scalar(s)) => {
            let i = if reversed { part.ridx } else { part.idx };
            let Some(x) = rec.raw(i) else { return };
            let size = s.size();
            let cur = &mut v[..size];
            match part.func {
                Func::Sum => ops::add(s, cur, x),
                Func::Avg => {
                    ops::add(s, cur, x);
                    *n += 1;
                }
                Func::Min | Func::Max => {
                    let want = if part.func == Func::Min {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    };
                    if !*set || ops::cmp(s, x, cur) == Some(want) {
                        cur.copy_from_slice(x);
                        *set = true;
                    }
                }
                Func::BitAnd => {
                    if *set {
                        cur.iter_mut().zip(x).for_each(|(c, b)| *c &= b);
                    } else {
                        cur.copy_from_slice(x);
                        *set = true;
                    }
                }
                Func::BitOr => cur.iter_mut().zip(x).for_each(|(c, b)| *c |= b),
                Func::First if !*set => {
                    cur.copy_from_slice(x);
                    *set = true;
                }
                Func::FirstNonEmpty if !*set && !ops::is_empty(s, x) => {
                    cur.copy_from_slice(x);
                    *set = true;
                }
                Func::Last => cur.copy_from_slice(x),
                Func::LastNonEmpty if !ops::is_empty(s, x) => cur.copy_from_slice(x),
                _ => {}
            }
        }
        (Acc::Unique { fixed, var }, ty) => {
            let i = if reversed && !ty.is_variable() {
                part.ridx
            } else {
                part.idx
            };
            let Some(x) = rec.raw(i) else { return };
            if ty.is_variable() {
                if !x.is_empty() && !var.contains(x) {
                    var.insert(x.into());
                }
            } else {
                let mut b = [0u8; 16];
                b[..x.len()].copy_from_slice(x);
                fixed.insert(u128::from_le_bytes(b));
            }
        }
        (Acc::Var { v, set }, ty) => {
            let Some(x) = rec.raw(part.idx) else { return };
            match part.func {
                Func::First if !*set => {
                    v.extend_from_slice(x);
                    *set = true;
                }
                Func::FirstNonEmpty if !*set && !x.is_empty() => {
                    v.extend_from_slice(x);
                    *set = true;
                }
                Func::Last => {
                    v.clear();
                    v.extend_from_slice(x);
                }
                Func::LastNonEmpty if !x.is_empty() => {
                    v.clear();
                    v.extend_from_slice(x);
                }
                Func::Append => match ty {
                    FieldType::Array(s) => {
                        let have = v.len() / s.size();
                        let room = part.limit.saturating_sub(have);
                        let take = (x.len() / s.size()).min(room);
                        v.extend_from_slice(&x[..take * s.size()]);
                    }
                    _ => {
                        // A whole string and its delimiter, or nothing.
                        if v.len() + x.len() < part.limit {
                            v.extend_from_slice(x);
                            v.push(part.delimiter);
                        }
                    }
                },
                _ => {}
            }
        }
        (Acc::Sorted { vals, keys }, ty) => {
            let Some((ki, kty)) = part.sort else { return };
            let (Some(x), Some(k)) = (rec.raw(part.idx), rec.raw(ki)) else {
                return;
            };
            let (esize, elem) = match ty {
                FieldType::Array(s) => (s.size(), Some(s)),
                _ => (1, None),
            };
            let n = (x.len() / esize).min(k.len() / kty.size());
            let start = vals.len();
            vals.extend_from_slice(&x[..n * esize]);
            keys.extend_from_slice(&k[..n * kty.size()]);
            if part.func == Func::SortedMergeDir && reversed {
                if let Some(s) = elem {
                    for e in vals[start..].chunks_exact_mut(esize) {
                        ops::negate(s, e);
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
