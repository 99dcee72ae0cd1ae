//! The collector's state and conversion, without sockets: messages in,
//! UniRec records out.
//!
//! * Templates live per transport session and observation domain (IPFIX
//!   ODID, v9 source id), as RFC 7011 §8 and ipfixcol2 keep them: a
//!   redefinition replaces, a withdrawal (id, or 2/3 = all) removes, a TCP
//!   session's templates go with it. Over UDP a template not refreshed for
//!   `template_lifetime` seconds of export time (options templates:
//!   `options_lifetime`) expires, as ipfixcol2's UDP input does (1800 s).
//! * Sequence numbers: IPFIX and v5 count data records, v9 export packets;
//!   a jump forward is counted as lost (records, or v9 packets), a jump back
//!   (reordering, an exporter restart) is not.
//! * Outputs: each output interface has a fixed field list (`-F`,
//!   ipfixcol2's `uniRecFormat`: names, `?` = optional; a record missing a
//!   required field is dropped and counted) or, by default, a dynamic
//!   template: the union of the fields every IPFIX template seen so far
//!   maps to. The union only grows, so the output format changes only
//!   when an exporter starts sending a field never seen before; a record
//!   lacking some field of the union has it zero or empty.
//! * Conversion follows ipfixcol2's UniRec plugin: unsigned values saturate
//!   to the field's width (flags are cut), times from any flowStart*/End*
//!   element, v9/v5 uptime-relative times against the message's export
//!   time and the exporter's uptime, DIR_BIT_FIELD = ingressInterface & 1,
//!   LINK_BIT_FIELD = 1 << (ODID & 63), ODID and EXPORTER_IP internal.
//! * Options data records (exporter statistics) are not flows: skipped.
//! * Memory is bounded: at most [`MAX_DOMAINS`] session/domain pairs and
//!   [`MAX_TEMPLATES_PER_DOMAIN`] templates each; what does not fit is
//!   refused and counted.

use crate::mapping::{Conv, Mapping, DIR_BIT_FIELD, EXPORTER_IP_FIELD, LINK_BIT_FIELD, ODID_FIELD};
use crate::wire::{
    parse_templates, split_record, BasicList, FieldSpec, Message, Template, TemplateItem, Version,
    WireError,
};
use flow_meter::plugins::PEN_REVERSE;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use thiserror::Error;
use unirec::{FieldType, RecordBuffers, RecordBuilder, Scalar, UrIp, UrMac, UrTime};

pub const MAX_DOMAINS: usize = 4096;
pub const MAX_TEMPLATES_PER_DOMAIN: usize = 1024;
/// ipfixcol2's UDP input defaults (seconds).
pub const DEFAULT_TEMPLATE_LIFETIME: u64 = 1800;
pub const DEFAULT_OPTIONS_LIFETIME: u64 = 1800;

/// RFC 6313's basicList element.
const BASIC_LIST: u16 = 291;

/// Seconds between 1900 (NTP) and 1970.
const NTP_EPOCH: u64 = 2_208_988_800;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown UniRec field {0:?} (not in the element table: `ipfixcol --list-fields` lists them)")]
    UnknownField(String),
    #[error("empty field list")]
    Empty,
    #[error("field list: {0}")]
    Template(String),
}

/// What a message came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    File,
}

/// A transport session: a UDP exporter address, a TCP connection, a file
/// (the caller numbers them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionId(pub u64);

/// Where a message came from.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    pub session: SessionId,
    pub transport: Transport,
    pub exporter: Option<IpAddr>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub template_lifetime: u64,
    pub options_lifetime: u64,
    /// ipfixcol2's `splitBiflow`: a biflow record becomes two uniflow
    /// records (the second from the reverse elements, addresses and ports
    /// swapped).
    pub split_biflow: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            template_lifetime: DEFAULT_TEMPLATE_LIFETIME,
            options_lifetime: DEFAULT_OPTIONS_LIFETIME,
            split_biflow: false,
        }
    }
}

/// Counters of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub messages: u64,
    pub records: u64,
    /// Records sent, summed over outputs.
    pub sent: u64,
    /// Messages, sets or templates that did not parse (each skipped).
    pub malformed: u64,
    /// Data records of a template not (or no longer) known.
    pub no_template: u64,
    /// Records lacking a required field of an output (per output).
    pub dropped: u64,
    /// Records the sequence numbers say never arrived (IPFIX, v5).
    pub lost_records: u64,
    /// NetFlow v9 export packets the sequence numbers say never arrived.
    pub lost_packets: u64,
    pub templates: u64,
    pub expired: u64,
    pub withdrawn: u64,
    /// Templates or domains refused by the memory limits.
    pub refused: u64,
    pub options_records: u64,
}

/// One output interface's field list.
#[derive(Clone, Debug)]
pub enum OutputFields {
    /// The union of what the templates map to.
    Dynamic,
    /// Fixed names, `true` = required.
    Fixed(Vec<(String, bool)>),
}

impl OutputFields {
    /// Parses ipfixcol2's `uniRecFormat` (`SRC_IP,DST_IP,?SRC_PORT`); a
    /// type before a name (`uint16 SRC_PORT`, as UniRec specs write it) is
    /// accepted and must agree with the table.
    pub fn parse(spec: &str, mapping: &Mapping) -> Result<OutputFields, ConfigError> {
        let mut out: Vec<(String, bool)> = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (optional, item) = match item.strip_prefix('?') {
                Some(rest) => (true, rest.trim()),
                None => (false, item),
            };
            let words: Vec<&str> = item.split_whitespace().collect();
            let (ty_word, name) = match words.as_slice() {
                [name] => (None, *name),
                [ty, name] => (Some(*ty), *name),
                _ => return Err(ConfigError::Template(format!("bad field {item:?}"))),
            };
            let Some(ty) = mapping.type_of(name) else {
                return Err(ConfigError::UnknownField(name.to_string()));
            };
            if let Some(t) = ty_word {
                if FieldType::from_name(t) != Some(ty) {
                    return Err(ConfigError::Template(format!(
                        "{name} is {ty} in the element table, not {t}"
                    )));
                }
            }
            if !out.iter().any(|(n, _)| n == name) {
                out.push((name.to_string(), !optional));
            }
        }
        if out.is_empty() {
            return Err(ConfigError::Empty);
        }
        Ok(OutputFields::Fixed(out))
    }
}

/// How one IPFIX field fills one UniRec field.
#[derive(Clone, Copy, Debug)]
struct Step {
    src: u16,
    dst: u16,
    conv: Conv,
    ty: FieldType,
    /// The conversion resolved for the destination field, when it is one of
    /// the common fixed-size ones (else `put` decides per value).
    fast: Option<Fast>,
}

/// A conversion into a fixed field at byte offset `at` of the record,
/// resolved once per plan: what `put` would do for this (conversion, field
/// type) pair, without looking the field up again for every value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fast {
    /// A big-endian unsigned value, `& mask` then saturated at `max`, as
    /// `size` little-endian bytes (Uint saturates, Flags truncate, DirBit
    /// keeps the lowest bit).
    Uint {
        at: usize,
        size: usize,
        mask: u64,
        max: u64,
    },
    Ip {
        at: usize,
    },
    Mac {
        at: usize,
    },
    /// A time conversion into a `time` field.
    Time {
        at: usize,
        conv: Conv,
    },
}

impl Fast {
    fn resolve(conv: Conv, ty: FieldType, at: usize) -> Option<Fast> {
        let FieldType::Scalar(s) = ty else {
            return None;
        };
        let size = s.size();
        let width_max = match s {
            Scalar::U8 | Scalar::Char => u64::from(u8::MAX),
            Scalar::U16 => u64::from(u16::MAX),
            Scalar::U32 => u64::from(u32::MAX),
            Scalar::U64 => u64::MAX,
            _ => 0,
        };
        match (conv, s) {
            (Conv::Uint, Scalar::U8 | Scalar::Char | Scalar::U16 | Scalar::U32 | Scalar::U64) => {
                Some(Fast::Uint {
                    at,
                    size,
                    mask: u64::MAX,
                    max: width_max,
                })
            }
            (Conv::Flags, Scalar::U8 | Scalar::Char | Scalar::U16 | Scalar::U32 | Scalar::U64) => {
                Some(Fast::Uint {
                    at,
                    size,
                    mask: width_max,
                    max: u64::MAX,
                })
            }
            (Conv::DirBit, Scalar::U8 | Scalar::Char | Scalar::U16 | Scalar::U32 | Scalar::U64) => {
                Some(Fast::Uint {
                    at,
                    size,
                    mask: 1,
                    max: u64::MAX,
                })
            }
            (Conv::Ip, Scalar::IpAddr) => Some(Fast::Ip { at }),
            (Conv::Mac, Scalar::MacAddr) => Some(Fast::Mac { at }),
            (Conv::TimeSec | Conv::TimeMs | Conv::TimeNtp | Conv::TimeUptime, Scalar::Time) => {
                Some(Fast::Time { at, conv })
            }
            _ => None,
        }
    }

    /// Writes `v` into `fixed`; a value of the wrong length leaves the field
    /// as it is, as `put` does.
    #[inline]
    fn write(self, fixed: &mut [u8], v: &[u8], t: MsgTime) {
        match self {
            Fast::Uint {
                at,
                size,
                mask,
                max,
            } => {
                let x = (be_uint(v) & mask).min(max);
                // Constant-size copies (a variable one is a memcpy call).
                match size {
                    1 => put_at(fixed, at, [x as u8]),
                    2 => put_at(fixed, at, (x as u16).to_le_bytes()),
                    4 => put_at(fixed, at, (x as u32).to_le_bytes()),
                    _ => put_at(fixed, at, x.to_le_bytes()),
                }
            }
            Fast::Ip { at } => {
                if let Some(ip) = ip_of(v) {
                    put_at(fixed, at, ip.0);
                }
            }
            Fast::Mac { at } => {
                if let Ok(mac) = <[u8; 6]>::try_from(v) {
                    put_at(fixed, at, mac);
                }
            }
            Fast::Time { at, conv } => {
                if let Some(time) = time_value(conv, v, t) {
                    put_at(fixed, at, time.0.to_le_bytes());
                }
            }
        }
    }
}

#[inline]
fn put_at<const N: usize>(fixed: &mut [u8], at: usize, bytes: [u8; N]) {
    if let Some(dst) = fixed.get_mut(at..at + N) {
        dst.copy_from_slice(&bytes);
    }
}

/// Where a data record comes from: what its conversion needs besides its
/// values.
#[derive(Clone, Copy)]
struct RecordSource {
    origin: Origin,
    key: (SessionId, u32),
    odid: u32,
    t: MsgTime,
    v9: bool,
    /// The template id (0: NetFlow v5's fixed record).
    id: u16,
    /// The record is a biflow to split into two UniRec records.
    split: bool,
}

/// A template compiled for one output (at one generation of its UniRec
/// template).
#[derive(Debug)]
struct Plan {
    generation: u32,
    /// False: a required field is missing, every record is dropped.
    usable: bool,
    steps: Vec<Step>,
    link: Option<u16>,
    odid: Option<u16>,
    exporter: Option<u16>,
}

/// One direction of a template's records: forward, or (split biflow) the
/// reverse one.
#[derive(Debug, Default)]
struct Compiled {
    fwd: Vec<Option<Arc<Plan>>>,
    rev: Vec<Option<Arc<Plan>>>,
}

#[derive(Debug)]
struct TemplateState {
    tmpl: Arc<Template>,
    options: bool,
    refreshed: u64,
    biflow: bool,
    compiled: Compiled,
}

#[derive(Debug, Default)]
struct Domain {
    templates: HashMap<u16, TemplateState>,
    next_seq: Option<u32>,
}

struct Output {
    fields: OutputFields,
    /// Current UniRec template (None: dynamic and nothing seen yet).
    template: Option<Arc<unirec::Template>>,
    /// A builder's buffers, reused from record to record (and across
    /// template changes) so a record costs no allocation.
    buffers: RecordBuffers,
    generation: u32,
    /// Dynamic: the union, in first-seen order.
    union: Vec<(String, FieldType)>,
}

/// Receives what the collector produces.
pub trait Sink {
    /// Output `out` now sends records of `template` (before its first
    /// record, and when a dynamic template grows).
    fn format(&mut self, out: usize, template: &unirec::Template);
    /// One UniRec record for output `out`.
    fn record(&mut self, out: usize, record: &[u8]);
}

pub struct Collector {
    cfg: Config,
    mapping: Arc<Mapping>,
    domains: HashMap<(SessionId, u32), Domain>,
    outputs: Vec<Output>,
    v5: TemplateState,
    pub stats: Stats,
    /// The last parse error, for the caller's rate-limited log line.
    pub last_error: Option<WireError>,
    // Scratch, reused from record to record.
    values: Vec<&'static [u8]>,
    buf: Vec<u8>,
    items: Vec<Result<TemplateItem, WireError>>,
    /// The plans of the set at hand, per output and direction: looked up
    /// once per set, not per record.
    set_plans: Vec<[Option<Arc<Plan>>; 2]>,
}

/// NetFlow v5's fixed record as a template (v9 element numbers).
fn v5_template() -> Template {
    let f = |id: u16, len: u16| FieldSpec { pen: 0, id, len };
    let fields = vec![
        f(8, 4),
        f(12, 4),
        f(15, 4),
        f(10, 2),
        f(14, 2),
        f(2, 4),
        f(1, 4),
        f(22, 4),
        f(21, 4),
        f(7, 2),
        f(11, 2),
        f(210, 1), // pad
        f(6, 1),
        f(4, 1),
        f(5, 1),
        f(16, 2),
        f(17, 2),
        f(9, 1),
        f(13, 1),
        f(210, 2), // pad
    ];
    Template {
        id: 0,
        fields,
        scope: 0,
        fixed_len: Some(48),
        min_len: 48,
    }
}

/// A big-endian unsigned integer of up to 8 bytes (of a longer value, its
/// first 8).
#[inline]
fn be_uint(b: &[u8]) -> u64 {
    match *b {
        [x] => u64::from(x),
        [a, b] => u64::from(u16::from_be_bytes([a, b])),
        [a, b, c, d] => u64::from(u32::from_be_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
        _ => b.iter().take(8).fold(0u64, |a, &x| (a << 8) | u64::from(x)),
    }
}

/// What a message's header says about time, for the time conversions.
#[derive(Clone, Copy)]
struct MsgTime {
    export_ms: u64,
    uptime_ms: u64,
}

impl Collector {
    pub fn new(cfg: Config, mapping: Arc<Mapping>, outputs: Vec<OutputFields>) -> Collector {
        let outputs = outputs
            .into_iter()
            .map(|fields| Output {
                fields,
                template: None,
                buffers: RecordBuffers::default(),
                generation: 0,
                union: Vec::new(),
            })
            .collect();
        let tmpl = Arc::new(v5_template());
        Collector {
            cfg,
            mapping,
            domains: HashMap::new(),
            outputs,
            v5: TemplateState {
                tmpl,
                options: false,
                refreshed: 0,
                biflow: false,
                compiled: Compiled::default(),
            },
            stats: Stats::default(),
            last_error: None,
            values: Vec::new(),
            buf: Vec::new(),
            items: Vec::new(),
            set_plans: Vec::new(),
        }
    }

    /// Announces the fixed outputs' templates (call once before the first
    /// message).
    pub fn start(&mut self, sink: &mut dyn Sink) -> Result<(), ConfigError> {
        for (i, o) in self.outputs.iter_mut().enumerate() {
            if let OutputFields::Fixed(list) = &o.fields {
                let t = unirec::Template::from_fields(list.iter().map(|(n, _)| {
                    (
                        n.as_str(),
                        self.mapping.type_of(n).unwrap_or(FieldType::Bytes),
                    )
                }))
                .map_err(|e| ConfigError::Template(e.to_string()))?;
                sink.format(i, &t);
                o.template = Some(Arc::new(t));
                o.generation = 1;
            }
        }
        Ok(())
    }

    /// Templates held now (all sessions and domains).
    pub fn template_count(&self) -> usize {
        self.domains.values().map(|d| d.templates.len()).sum()
    }

    /// A TCP connection (or a file) ended: its templates go.
    pub fn close_session(&mut self, s: SessionId) {
        self.domains.retain(|(sid, _), _| *sid != s);
    }

    fn malformed(&mut self, e: WireError) {
        self.stats.malformed += 1;
        self.last_error = Some(e);
    }

    /// Decodes one message and hands its records to `sink`.
    pub fn process(&mut self, origin: Origin, msg: &[u8], sink: &mut dyn Sink) {
        self.stats.messages += 1;
        let m = match Message::new_checked(msg) {
            Ok(m) => m,
            Err(e) => return self.malformed(e),
        };
        let h = m.header;
        let export_ms = u64::from(h.export_time) * 1000 + u64::from(h.export_nanos / 1_000_000);
        let t = MsgTime {
            export_ms,
            uptime_ms: u64::from(h.uptime_ms),
        };
        if h.version == Version::V5 {
            return self.process_v5(origin, &m, t, sink);
        }
        let key = (origin.session, h.domain);
        if !self.domains.contains_key(&key) {
            if self.domains.len() >= MAX_DOMAINS {
                self.stats.refused += 1;
                return;
            }
            self.domains.insert(key, Domain::default());
        }
        let now = u64::from(h.export_time);
        let udp = origin.transport == Transport::Udp;
        let mut data_records = 0u64;
        for set in m.sets() {
            let set = match set {
                Ok(s) => s,
                Err(e) => {
                    self.malformed(e);
                    break;
                }
            };
            let template_set = match h.version {
                Version::Ipfix => matches!(set.id, 2 | 3),
                _ => matches!(set.id, 0 | 1),
            };
            if template_set {
                self.templates(key, h.version, &set, now);
                continue;
            }
            if set.id < 256 {
                continue; // reserved set ids: ignored, as RFC 7011 says
            }
            data_records += self.data_set(origin, key, h, t, udp, now, set.id, set.body, sink);
        }
        // Sequence numbers.
        let Some(d) = self.domains.get_mut(&key) else {
            return;
        };
        let (seq, next) = match h.version {
            Version::V9 => (h.sequence, h.sequence.wrapping_add(1)),
            _ => (h.sequence, h.sequence.wrapping_add(data_records as u32)),
        };
        if let Some(expected) = d.next_seq {
            let gap = seq.wrapping_sub(expected);
            if gap != 0 && gap < 1 << 31 {
                if h.version == Version::V9 {
                    self.stats.lost_packets += u64::from(gap);
                } else {
                    self.stats.lost_records += u64::from(gap);
                }
            }
        }
        d.next_seq = Some(next);
    }

    fn templates(
        &mut self,
        key: (SessionId, u32),
        version: Version,
        set: &crate::wire::Set<'_>,
        now: u64,
    ) {
        let mut items = std::mem::take(&mut self.items);
        items.clear();
        parse_templates(version, set, &mut items);
        let options_set = matches!((version, set.id), (Version::Ipfix, 3) | (Version::V9, 1));
        for item in items.drain(..) {
            let Some(d) = self.domains.get_mut(&key) else {
                break;
            };
            match item {
                Err(e) => {
                    self.stats.malformed += 1;
                    self.last_error = Some(e);
                }
                Ok(TemplateItem::Withdraw(id)) => {
                    let before = d.templates.len();
                    if id == 2 || id == 3 {
                        let opts = id == 3;
                        d.templates.retain(|_, t| t.options != opts);
                    } else {
                        d.templates.remove(&id);
                    }
                    self.stats.withdrawn += (before - d.templates.len()) as u64;
                }
                Ok(TemplateItem::Define(t)) => {
                    if !d.templates.contains_key(&t.id)
                        && d.templates.len() >= MAX_TEMPLATES_PER_DOMAIN
                    {
                        self.stats.refused += 1;
                        continue;
                    }
                    // An unchanged template over UDP is only a refresh.
                    if let Some(old) = d.templates.get_mut(&t.id) {
                        if *old.tmpl == t {
                            old.refreshed = now;
                            continue;
                        }
                    }
                    let biflow = t.fields.iter().any(|f| f.pen == PEN_REVERSE);
                    self.stats.templates += 1;
                    d.templates.insert(
                        t.id,
                        TemplateState {
                            tmpl: Arc::new(t),
                            options: options_set,
                            refreshed: now,
                            biflow,
                            compiled: Compiled::default(),
                        },
                    );
                }
            }
        }
        self.items = items;
    }

    #[allow(clippy::too_many_arguments)]
    fn data_set(
        &mut self,
        origin: Origin,
        key: (SessionId, u32),
        h: crate::wire::Header,
        t: MsgTime,
        udp: bool,
        now: u64,
        id: u16,
        body: &[u8],
        sink: &mut dyn Sink,
    ) -> u64 {
        let v9 = h.version == Version::V9;
        let (lifetime, opts_lifetime) = (self.cfg.template_lifetime, self.cfg.options_lifetime);
        let Some(d) = self.domains.get_mut(&key) else {
            return 0;
        };
        // UDP template expiry, on export time.
        if udp {
            if let Some(st) = d.templates.get(&id) {
                let life = if st.options { opts_lifetime } else { lifetime };
                if life > 0 && now.saturating_sub(st.refreshed) > life {
                    d.templates.remove(&id);
                    self.stats.expired += 1;
                }
            }
        }
        let Some(st) = d.templates.get_mut(&id) else {
            // Count the records we cannot read: at least one per set.
            self.stats.no_template += 1;
            return 0;
        };
        let tmpl = st.tmpl.clone();
        let options = st.options;
        let split = self.cfg.split_biflow && st.biflow;
        let mut plans = self.fresh_plans();
        let mut rest = body;
        let mut n = 0u64;
        let mut values: Vec<&[u8]> = std::mem::take(&mut self.values)
            .into_iter()
            .map(|_| &[][..])
            .collect();
        while !rest.is_empty() {
            let Some(used) = split_record(&tmpl, rest, &mut values) else {
                break; // padding, or a truncated last record
            };
            if used == 0 {
                break;
            }
            rest = &rest[used..];
            n += 1;
            if options {
                self.stats.options_records += 1;
                continue;
            }
            self.stats.records += 1;
            let rec = RecordSource {
                origin,
                key,
                odid: h.domain,
                t,
                v9,
                id,
                split,
            };
            self.convert(&rec, &values, &mut plans, sink);
        }
        self.set_plans = plans;
        values.clear();
        // Keep the allocation (the borrow of `body` ends here).
        self.values = values.into_iter().map(|_| &[][..]).collect();
        n
    }

    fn process_v5(&mut self, origin: Origin, m: &Message<'_>, t: MsgTime, sink: &mut dyn Sink) {
        let key = (origin.session, m.header.domain);
        let tmpl = self.v5.tmpl.clone();
        let mut values: Vec<&[u8]> = Vec::with_capacity(tmpl.fields.len());
        let mut n = 0u32;
        let mut plans = self.fresh_plans();
        let source = RecordSource {
            origin,
            key,
            odid: m.header.domain,
            t,
            v9: true,
            id: 0,
            split: false,
        };
        for rec in m.v5_records() {
            if split_record(&tmpl, rec, &mut values).is_none() {
                continue;
            }
            n += 1;
            self.stats.records += 1;
            self.convert(&source, &values, &mut plans, sink);
        }
        self.set_plans = plans;
        if !self.domains.contains_key(&key) {
            if self.domains.len() >= MAX_DOMAINS {
                self.stats.refused += 1;
                return;
            }
            self.domains.insert(key, Domain::default());
        }
        if let Some(d) = self.domains.get_mut(&key) {
            let seq = m.header.sequence;
            if let Some(expected) = d.next_seq {
                let gap = seq.wrapping_sub(expected);
                if gap != 0 && gap < 1 << 31 {
                    self.stats.lost_records += u64::from(gap);
                }
            }
            d.next_seq = Some(seq.wrapping_add(n));
        }
    }

    /// The plan of template `id` (0 = v5) in `key` for output `out` and
    /// direction, compiling (and growing a dynamic template) when needed.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &mut self,
        key: (SessionId, u32),
        id: u16,
        v9: bool,
        out: usize,
        reverse: bool,
        values: &[&[u8]],
        sink: &mut dyn Sink,
    ) -> Option<Arc<Plan>> {
        let st = if id == 0 {
            &mut self.v5
        } else {
            self.domains.get_mut(&key)?.templates.get_mut(&id)?
        };
        let gen = self.outputs.get(out)?.generation;
        let list = if reverse {
            &mut st.compiled.rev
        } else {
            &mut st.compiled.fwd
        };
        if let Some(Some(p)) = list.get(out) {
            if p.generation == gen && gen != 0 {
                return Some(p.clone());
            }
        }
        let tmpl = st.tmpl.clone();
        let split = self.cfg.split_biflow && st.biflow;
        // Which UniRec field each template field fills (first one wins).
        let mut wanted: Vec<(usize, String, FieldType, Conv)> = Vec::new();
        let has_dport = tmpl.fields.iter().any(|f| f.pen == 0 && f.id == 11);
        for (i, f) in tmpl.fields.iter().enumerate() {
            let (pen, fid) = if split {
                match (reverse, f.pen == PEN_REVERSE) {
                    (false, true) => continue,
                    (true, true) => (0, f.id),
                    (true, false) if is_reversible(f) => continue,
                    _ => (f.pen, f.id),
                }
            } else {
                (f.pen, f.id)
            };
            if pen == 0 && fid == 32 && has_dport {
                continue;
            }
            // A basicList names its element inside each record: take it
            // from the record the plan is compiled for (exporters keep it
            // the same for every record of a template).
            let inner = if pen == 0 && fid == BASIC_LIST {
                values
                    .get(i)
                    .and_then(|v| BasicList::new_checked(v))
                    .map(|l| (l.pen, l.id))
            } else {
                None
            };
            let (pen, fid) = inner.unwrap_or((pen, fid));
            let Some(target) = self.mapping.target(pen, fid, v9) else {
                continue;
            };
            if inner.is_some() && !matches!(target.conv, Conv::List(_)) {
                continue;
            }
            let mut name = target.name.clone();
            if split && reverse && f.pen != PEN_REVERSE {
                name = swap_direction(&name).unwrap_or(name);
            }
            if wanted.iter().any(|(_, n, _, _)| *n == name) {
                continue;
            }
            wanted.push((i, name, target.ty, target.conv));
        }
        let o = self.outputs.get_mut(out)?;
        if let OutputFields::Dynamic = o.fields {
            let mut grew = o.template.is_none();
            let mut add = |n: &str, ty: FieldType, union: &mut Vec<(String, FieldType)>| {
                if !union.iter().any(|(u, _)| u == n) {
                    union.push((n.to_string(), ty));
                    grew = true;
                }
            };
            for (_, n, ty, _) in &wanted {
                add(n, *ty, &mut o.union);
            }
            add(LINK_BIT_FIELD, FieldType::Scalar(Scalar::U64), &mut o.union);
            add(DIR_BIT_FIELD, FieldType::Scalar(Scalar::U8), &mut o.union);
            if grew {
                let t =
                    unirec::Template::from_fields(o.union.iter().map(|(n, t)| (n.as_str(), *t)))
                        .ok()?;
                sink.format(out, &t);
                o.template = Some(Arc::new(t));
                o.generation += 1;
            }
        }
        let ur = o.template.clone()?;
        let gen = o.generation;
        let required: Vec<&str> = match &o.fields {
            OutputFields::Fixed(l) => l
                .iter()
                .filter(|(_, r)| *r)
                .map(|(n, _)| n.as_str())
                .collect(),
            OutputFields::Dynamic => Vec::new(),
        };
        let mut steps = Vec::new();
        for (i, name, ty, conv) in &wanted {
            if let Some(dst) = ur.find_typed(name, *ty) {
                let fast = ur
                    .field(dst)
                    .and_then(|f| Fast::resolve(*conv, *ty, f.offset()));
                steps.push(Step {
                    src: *i as u16,
                    dst: dst as u16,
                    conv: *conv,
                    ty: *ty,
                    fast,
                });
            }
        }
        let internal = |n: &str| ur.find(n).map(|i| i as u16);
        let link = internal(LINK_BIT_FIELD);
        let odid = internal(ODID_FIELD);
        let exporter = internal(EXPORTER_IP_FIELD);
        let usable = required.iter().all(|r| {
            wanted.iter().any(|(_, n, _, _)| n == r)
                || [LINK_BIT_FIELD, DIR_BIT_FIELD, ODID_FIELD, EXPORTER_IP_FIELD].contains(r)
        });
        let plan = Arc::new(Plan {
            generation: gen,
            usable,
            steps,
            link,
            odid,
            exporter,
        });
        let st = if id == 0 {
            &mut self.v5
        } else {
            self.domains.get_mut(&key)?.templates.get_mut(&id)?
        };
        let list = if reverse {
            &mut st.compiled.rev
        } else {
            &mut st.compiled.fwd
        };
        if list.len() <= out {
            list.resize(out + 1, None);
        }
        list[out] = Some(plan.clone());
        Some(plan)
    }

    /// The plan cache for a new set: emptied, its allocation kept.
    fn fresh_plans(&mut self) -> Vec<[Option<Arc<Plan>>; 2]> {
        let mut plans = std::mem::take(&mut self.set_plans);
        plans.clear();
        plans.resize_with(self.outputs.len(), Default::default);
        plans
    }

    /// Converts one data record into a UniRec record per output (two for a
    /// split biflow). `plans` holds the set's plans; one is compiled again
    /// only when its output's template has changed since.
    fn convert(
        &mut self,
        src: &RecordSource,
        values: &[&[u8]],
        plans: &mut [[Option<Arc<Plan>>; 2]],
        sink: &mut dyn Sink,
    ) {
        let RecordSource {
            origin,
            key,
            odid,
            t,
            v9,
            id,
            split,
        } = *src;
        for (out, cached) in plans.iter_mut().enumerate() {
            for (dir, reverse) in [false, true].into_iter().enumerate() {
                if reverse && !split {
                    break;
                }
                let generation = self.outputs[out].generation;
                if !cached[dir]
                    .as_ref()
                    .is_some_and(|p| p.generation == generation && generation != 0)
                {
                    cached[dir] = self.plan(key, id, v9, out, reverse, values, sink);
                }
                let Some(plan) = cached[dir].as_deref() else {
                    continue;
                };
                if !plan.usable {
                    self.stats.dropped += 1;
                    continue;
                }
                let o = &mut self.outputs[out];
                let Some(tmpl) = o.template.as_deref() else {
                    continue;
                };
                let mut b = RecordBuilder::with_buffers(tmpl, std::mem::take(&mut o.buffers));
                for s in &plan.steps {
                    let Some(v) = values.get(usize::from(s.src)) else {
                        continue;
                    };
                    match s.fast {
                        Some(f) => f.write(b.fixed_mut(), v, t),
                        None => put(&mut b, usize::from(s.dst), s.ty, s.conv, v, t),
                    }
                }
                if let Some(i) = plan.link {
                    let _ = b.set_u64(usize::from(i), 1u64 << (odid & 63));
                }
                if let Some(i) = plan.odid {
                    let _ = b.set_u32(usize::from(i), odid);
                }
                if let (Some(i), Some(ip)) = (plan.exporter, origin.exporter) {
                    let _ = b.set_ip(usize::from(i), ip_to_ur(ip));
                }
                self.buf.clear();
                let built = b.finish(&mut self.buf).is_ok();
                o.buffers = b.into_buffers();
                if built {
                    sink.record(out, &self.buf);
                    self.stats.sent += 1;
                }
            }
        }
    }
}

/// Elements that have a reverse twin in a biflow template (counters, flags
/// and the like): in the reverse half of a split they come from PEN 29305.
fn is_reversible(f: &FieldSpec) -> bool {
    f.pen == 0
        && matches!(
            f.id,
            1 | 2 | 6 | 5 | 192 | 152 | 153 | 150 | 151 | 154 | 155 | 156 | 157
        )
}

/// SRC_x ↔ DST_x, for the reverse half of a split biflow.
fn swap_direction(name: &str) -> Option<String> {
    if let Some(r) = name.strip_prefix("SRC_") {
        Some(format!("DST_{r}"))
    } else {
        name.strip_prefix("DST_").map(|r| format!("SRC_{r}"))
    }
}

fn ip_to_ur(ip: IpAddr) -> UrIp {
    match ip {
        IpAddr::V4(a) => UrIp::from_v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => UrIp::from_v4(v4),
            None => UrIp(a.octets()),
        },
    }
}

fn ip_of(v: &[u8]) -> Option<UrIp> {
    match v.len() {
        4 => Some(UrIp::from_v4(std::net::Ipv4Addr::new(
            v[0], v[1], v[2], v[3],
        ))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(v);
            Some(ip_to_ur(IpAddr::V6(a.into())))
        }
        _ => None,
    }
}

/// NTP timestamp → UniRec time; `micros`: the element has microsecond
/// precision (RFC 7011 flowStart/EndMicroseconds).
fn ntp_time(v: u64, micros: bool) -> UrTime {
    let secs = (v >> 32).saturating_sub(NTP_EPOCH) as u32;
    let frac = v & 0xffff_ffff;
    if micros {
        let us = ((frac * 1_000_000 + (1 << 31)) >> 32).min(999_999) as u32;
        UrTime::from_secs_micros(secs, us)
    } else {
        let ns = ((frac * 1_000_000_000 + (1 << 31)) >> 32).min(999_999_999) as u32;
        UrTime::from_secs_nanos(secs, ns)
    }
}

fn time_ms(ms: u64) -> UrTime {
    UrTime::from_secs_millis((ms / 1000) as u32, (ms % 1000) as u32)
}

fn saturate(v: u64, s: Scalar) -> u64 {
    let max = match s {
        Scalar::U8 | Scalar::Char => u64::from(u8::MAX),
        Scalar::U16 => u64::from(u16::MAX),
        Scalar::U32 => u64::from(u32::MAX),
        _ => u64::MAX,
    };
    v.min(max)
}

fn sign_extend(v: &[u8]) -> i64 {
    let u = be_uint(v);
    let bits = (v.len().min(8) * 8) as u32;
    if bits == 0 || bits == 64 {
        return u as i64;
    }
    let shift = 64 - bits;
    ((u << shift) as i64) >> shift
}

/// The time a time element's value `v` stands for (None: a value of the
/// wrong length).
#[inline]
fn time_value(conv: Conv, v: &[u8], t: MsgTime) -> Option<UrTime> {
    Some(match conv {
        Conv::TimeSec => UrTime::from_secs_micros(be_uint(v) as u32, 0),
        Conv::TimeMs => time_ms(be_uint(v)),
        Conv::TimeNtp if v.len() == 8 => ntp_time(be_uint(v), true),
        // Milliseconds since the exporter booted: against the export
        // time, which is `uptime_ms` after boot.
        Conv::TimeUptime => time_ms(
            t.export_ms
                .saturating_sub(t.uptime_ms)
                .saturating_add(be_uint(v)),
        ),
        _ => return None,
    })
}

/// Writes one element's value `v` into field `idx` of type `ty`.
fn put(b: &mut RecordBuilder<'_>, idx: usize, ty: FieldType, conv: Conv, v: &[u8], t: MsgTime) {
    let r = match (conv, ty) {
        (Conv::Uint | Conv::Flags | Conv::DirBit, FieldType::Scalar(s)) => {
            let raw = be_uint(v);
            let x = match conv {
                Conv::Flags => raw,
                Conv::DirBit => raw & 1,
                _ => saturate(raw, s),
            };
            put_int(b, idx, s, x as i64, x)
        }
        (Conv::Int, FieldType::Scalar(s)) => {
            let x = sign_extend(v);
            put_int(b, idx, s, x, x as u64)
        }
        (Conv::Float, FieldType::Scalar(s)) => {
            let x = match v.len() {
                4 => f64::from(f32::from_be_bytes([v[0], v[1], v[2], v[3]])),
                8 => f64::from_bits(be_uint(v)),
                _ => return,
            };
            match s {
                Scalar::Float => b.set_f32(idx, x as f32),
                _ => b.set_f64(idx, x),
            }
        }
        (Conv::Ip, _) => match ip_of(v) {
            Some(ip) => b.set_ip(idx, ip),
            None => return,
        },
        (Conv::Mac, _) => match <[u8; 6]>::try_from(v) {
            Ok(m) => b.set_mac(idx, UrMac(m)),
            Err(_) => return,
        },
        (Conv::TimeSec | Conv::TimeMs | Conv::TimeNtp | Conv::TimeUptime, _) => {
            match time_value(conv, v, t) {
                Some(time) => b.set_time(idx, time),
                None => return,
            }
        }
        (Conv::Var, _) => b.set_var(idx, v),
        (Conv::List(s), _) => {
            let Some(list) = BasicList::new_checked(v) else {
                return;
            };
            let Ok(dst) = b.var_mut(idx) else { return };
            dst.clear();
            for x in list.values() {
                match s {
                    Scalar::Time => {
                        let ms = be_uint(x);
                        dst.extend_from_slice(&time_ms(ms).0.to_le_bytes());
                    }
                    Scalar::Float if x.len() == 4 => {
                        dst.extend_from_slice(&[x[3], x[2], x[1], x[0]]);
                    }
                    Scalar::Double if x.len() == 8 => {
                        let mut le = [0u8; 8];
                        le.copy_from_slice(x);
                        le.reverse();
                        dst.extend_from_slice(&le);
                    }
                    Scalar::IpAddr => {
                        if let Some(ip) = ip_of(x) {
                            dst.extend_from_slice(&ip.0);
                        }
                    }
                    Scalar::MacAddr if x.len() == 6 => dst.extend_from_slice(x),
                    _ => {
                        let raw = be_uint(x);
                        let n = s.size().min(8);
                        dst.extend_from_slice(&raw.to_le_bytes()[..n]);
                    }
                }
            }
            Ok(())
        }
        _ => return,
    };
    let _ = r;
}

fn put_int(
    b: &mut RecordBuilder<'_>,
    idx: usize,
    s: Scalar,
    signed: i64,
    unsigned: u64,
) -> Result<(), unirec::RecordError> {
    match s {
        Scalar::U8 => b.set_u8(idx, unsigned as u8),
        Scalar::Char => b.set_char(idx, unsigned as u8),
        Scalar::U16 => b.set_u16(idx, unsigned as u16),
        Scalar::U32 => b.set_u32(idx, unsigned as u32),
        Scalar::U64 => b.set_u64(idx, unsigned),
        Scalar::I8 => b.set_i8(idx, signed as i8),
        Scalar::I16 => b.set_i16(idx, signed as i16),
        Scalar::I32 => b.set_i32(idx, signed as i32),
        Scalar::I64 => b.set_i64(idx, signed),
        Scalar::Float => b.set_f32(idx, signed as f32),
        Scalar::Double => b.set_f64(idx, signed as f64),
        Scalar::Time => b.set_time(idx, UrTime(unsigned)),
        Scalar::IpAddr | Scalar::MacAddr => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The conversions resolved once per plan write what `put` writes, for
    /// every conversion, field type and value length.
    #[test]
    fn fast_conversions_write_what_put_writes() {
        use Scalar::*;
        let scalars = [
            Char, U8, I8, U16, I16, U32, I32, U64, I64, Float, Double, IpAddr, MacAddr, Time,
        ];
        let convs = [
            Conv::Uint,
            Conv::Int,
            Conv::Float,
            Conv::Ip,
            Conv::Mac,
            Conv::TimeSec,
            Conv::TimeMs,
            Conv::TimeNtp,
            Conv::TimeUptime,
            Conv::DirBit,
            Conv::Flags,
        ];
        let t = MsgTime {
            export_ms: 1_700_000_000_123,
            uptime_ms: 3_600_000,
        };
        let mut resolved = 0;
        for s in scalars {
            let tmpl = unirec::Template::from_fields([("A", FieldType::Scalar(s))]).unwrap();
            let at = tmpl.field(0).unwrap().offset();
            for conv in convs {
                let Some(fast) = Fast::resolve(conv, FieldType::Scalar(s), at) else {
                    continue;
                };
                resolved += 1;
                for len in [0usize, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16] {
                    for seed in [0u8, 0x01, 0x7f, 0x80, 0xff] {
                        let v: Vec<u8> = (0..len as u8)
                            .map(|i| seed.wrapping_mul(i + 1) ^ i)
                            .collect();
                        let v = if len == 16 && seed == 0x80 {
                            // An IPv4-mapped IPv6 address.
                            [[0u8; 10].as_slice(), &[0xff, 0xff, 192, 0, 2, 1]].concat()
                        } else {
                            v
                        };
                        let (mut slow, mut quick) = (Vec::new(), Vec::new());
                        let mut b = RecordBuilder::new(&tmpl);
                        put(&mut b, 0, FieldType::Scalar(s), conv, &v, t);
                        b.finish(&mut slow).unwrap();
                        let mut b = RecordBuilder::new(&tmpl);
                        fast.write(b.fixed_mut(), &v, t);
                        b.finish(&mut quick).unwrap();
                        assert_eq!(slow, quick, "{conv:?} into {s:?}, value {v:02x?}");
                    }
                }
            }
        }
        assert_eq!(resolved, 5 * 3 + 1 + 1 + 4);
    }

    #[derive(Default)]
    struct Got {
        formats: Vec<(usize, String)>,
        records: Vec<(usize, Vec<u8>)>,
    }

    impl Sink for Got {
        fn format(&mut self, out: usize, t: &unirec::Template) {
            self.formats.push((out, t.spec().to_string()));
        }
        fn record(&mut self, out: usize, r: &[u8]) {
            self.records.push((out, r.to_vec()));
        }
    }

    fn ipfix(export: u32, seq: u32, domain: u32, sets: &[Vec<u8>]) -> Vec<u8> {
        let mut m = vec![0, 10, 0, 0];
        m.extend_from_slice(&export.to_be_bytes());
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(&domain.to_be_bytes());
        for s in sets {
            m.extend_from_slice(s);
        }
        let l = m.len() as u16;
        m[2..4].copy_from_slice(&l.to_be_bytes());
        m
    }

    fn set(id: u16, body: &[u8]) -> Vec<u8> {
        let mut s = id.to_be_bytes().to_vec();
        s.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        s.extend_from_slice(body);
        s
    }

    /// Template 256: sourceIPv4Address, destinationIPv4Address, packetDeltaCount (4).
    fn template() -> Vec<u8> {
        set(2, &[1, 0, 0, 3, 0, 8, 0, 4, 0, 12, 0, 4, 0, 2, 0, 4])
    }

    fn record(last: u8, packets: u32) -> Vec<u8> {
        let mut r = vec![198, 51, 100, 1, 198, 51, 100, last];
        r.extend_from_slice(&packets.to_be_bytes());
        r
    }

    fn udp() -> Origin {
        Origin {
            session: SessionId(1),
            transport: Transport::Udp,
            exporter: Some("198.51.100.9".parse().unwrap()),
        }
    }

    fn collector(outputs: Vec<OutputFields>) -> Collector {
        Collector::new(Config::default(), Arc::new(Mapping::new()), outputs)
    }

    #[test]
    fn dynamic_template_and_values() {
        let mut c = collector(vec![OutputFields::Dynamic]);
        let mut got = Got::default();
        let data = set(256, &[record(2, 7), record(3, 8)].concat());
        c.process(udp(), &ipfix(100, 0, 3, &[template(), data]), &mut got);
        assert_eq!(got.formats.len(), 1);
        let spec = &got.formats[0].1;
        let t = unirec::Template::parse(spec).unwrap();
        for f in [
            "SRC_IP",
            "DST_IP",
            "PACKETS",
            "LINK_BIT_FIELD",
            "DIR_BIT_FIELD",
        ] {
            assert!(t.find(f).is_some(), "{f} in {spec}");
        }
        assert_eq!(got.records.len(), 2);
        let r = unirec::RecordRef::new_checked(&t, &got.records[1].1).unwrap();
        let mut line = Vec::new();
        unirec::text::write_record(&r, b',', &mut line);
        let text = String::from_utf8(line).unwrap();
        assert!(text.contains("198.51.100.3"), "{text}");
        assert!(text.contains(",8,"), "{text}");
        // LINK_BIT_FIELD = 1 << ODID.
        assert!(text.contains(",8,"), "{text}");
        assert_eq!(c.stats.records, 2);
    }

    #[test]
    fn required_fields_and_sequence_gaps() {
        let m = Mapping::new();
        let fixed = OutputFields::parse("SRC_IP,DST_IP,?SRC_PORT,PACKETS", &m).unwrap();
        let needs_bytes = OutputFields::parse("SRC_IP,BYTES", &m).unwrap();
        let mut c = collector(vec![fixed, needs_bytes]);
        let mut got = Got::default();
        c.start(&mut got).unwrap();
        assert_eq!(got.formats.len(), 2);
        let data = set(256, &record(2, 1));
        c.process(
            udp(),
            &ipfix(100, 0, 3, &[template(), data.clone()]),
            &mut got,
        );
        // Records 1..4 never arrived.
        c.process(udp(), &ipfix(101, 5, 3, &[data]), &mut got);
        assert_eq!(c.stats.lost_records, 4);
        // Only the first output gets them; the second lacks BYTES.
        assert!(got.records.iter().all(|(o, _)| *o == 0));
        assert_eq!(got.records.len(), 2);
        assert_eq!(c.stats.dropped, 2);
        assert!(OutputFields::parse("NO_SUCH_FIELD", &m).is_err());
        assert!(OutputFields::parse("uint8 SRC_IP", &m).is_err());
    }

    #[test]
    fn templates_expire_on_udp_and_are_withdrawn() {
        let mut c = collector(vec![OutputFields::Dynamic]);
        let mut got = Got::default();
        let data = set(256, &record(2, 1));
        c.process(udp(), &ipfix(100, 0, 3, &[template()]), &mut got);
        // Another domain does not see domain 3's template.
        c.process(
            udp(),
            &ipfix(100, 0, 4, std::slice::from_ref(&data)),
            &mut got,
        );
        assert_eq!(c.stats.no_template, 1);
        c.process(
            udp(),
            &ipfix(100 + 1800, 0, 3, std::slice::from_ref(&data)),
            &mut got,
        );
        assert_eq!(got.records.len(), 1);
        c.process(
            udp(),
            &ipfix(100 + 1801, 1, 3, std::slice::from_ref(&data)),
            &mut got,
        );
        assert_eq!(c.stats.expired, 1);
        assert_eq!(c.stats.no_template, 2);
        // Define again, then withdraw all.
        c.process(udp(), &ipfix(5000, 1, 3, &[template()]), &mut got);
        c.process(
            udp(),
            &ipfix(5000, 1, 3, &[set(2, &[0, 2, 0, 0])]),
            &mut got,
        );
        assert_eq!(c.stats.withdrawn, 1);
        assert_eq!(c.template_count(), 0);
    }

    #[test]
    fn netflow_v9_uptime_times() {
        let m = Mapping::new();
        let out = OutputFields::parse("SRC_IP,TIME_FIRST,TIME_LAST", &m).unwrap();
        let mut c = collector(vec![out]);
        let mut got = Got::default();
        c.start(&mut got).unwrap();
        // v9 header: count, uptime 10 000 ms, export 1 700 000 000 s, seq, source id.
        let mut msg = vec![0, 9, 0, 2];
        msg.extend_from_slice(&10_000u32.to_be_bytes());
        msg.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        msg.extend_from_slice(&0u32.to_be_bytes());
        msg.extend_from_slice(&1u32.to_be_bytes());
        // Template 300: IPV4_SRC_ADDR (8), FIRST_SWITCHED (22), LAST_SWITCHED (21).
        msg.extend_from_slice(&set(
            0,
            &[1, 44, 0, 3, 0, 8, 0, 4, 0, 22, 0, 4, 0, 21, 0, 4],
        ));
        let mut r = vec![198, 51, 100, 1];
        r.extend_from_slice(&4_000u32.to_be_bytes());
        r.extend_from_slice(&9_500u32.to_be_bytes());
        msg.extend_from_slice(&set(300, &r));
        c.process(udp(), &msg, &mut got);
        assert_eq!(got.records.len(), 1);
        let t = unirec::Template::parse(&got.formats[0].1).unwrap();
        let rec = unirec::RecordRef::new_checked(&t, &got.records[0].1).unwrap();
        let time = |n: &str| match rec.value(t.find(n).unwrap()) {
            Some(unirec::Value::Time(x)) => x,
            v => panic!("{n}: {v:?}"),
        };
        let (first, last) = (time("TIME_FIRST"), time("TIME_LAST"));
        // Booted at 1 699 999 990 s: first at +4 s, last at +9.5 s.
        assert_eq!((first.secs(), first.millis()), (1_699_999_994, 0));
        assert_eq!((last.secs(), last.millis()), (1_699_999_999, 500));
    }

    #[test]
    fn ntp_microseconds_round_trip_flow_meters_encoding() {
        for us in [0u32, 1, 499_999, 500_000, 999_999] {
            // flow_meter's encoding: fraction = us * 2^32 / 10^6.
            let frac = (u64::from(us) << 32) / 1_000_000;
            let v = ((1_700_000_000 + NTP_EPOCH) << 32) | frac;
            assert_eq!(
                ntp_time(v, true),
                UrTime::from_secs_micros(1_700_000_000, us),
                "{us}"
            );
        }
    }

    #[test]
    fn garbage_is_counted() {
        let mut c = collector(vec![OutputFields::Dynamic]);
        let mut got = Got::default();
        for m in [
            &[0u8, 10, 0][..],
            &[0, 10, 0, 99, 0, 0, 0, 0],
            &[1, 2, 3, 4, 5],
        ] {
            c.process(udp(), m, &mut got);
        }
        assert_eq!(c.stats.malformed, 3);
        // A template whose fields run past its set.
        c.process(
            udp(),
            &ipfix(1, 0, 1, &[set(2, &[1, 0, 0, 9, 0, 8])]),
            &mut got,
        );
        assert_eq!(c.stats.malformed, 4);
        assert!(got.records.is_empty());
    }
}
