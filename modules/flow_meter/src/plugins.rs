//! Process plugins: per-packet hooks and per-flow state, ipfixprobe's seam.
//!
//! A plugin sees every packet of every flow through the hooks the flow cache
//! calls (the same points as ipfixprobe's `ProcessPlugin`):
//!
//! * [`ProcessPlugin::post_create`] after a flow is created from its first
//!   packet;
//! * [`ProcessPlugin::pre_update`] before a packet is counted in its flow,
//!   [`ProcessPlugin::post_update`] after;
//! * [`ProcessPlugin::pre_export`] before a flow leaves on a timeout, an
//!   eviction or the end of input (not on a flush a plugin asked for, nor on
//!   a SYN after FIN/RST — as in ipfixprobe).
//!
//! Each hook returns a [`Verdict`]: go on, flush the flow now
//! ([`Verdict::FLUSH`], e.g. after every DNS message), or flush it and start
//! a new flow in its place without the current packet
//! ([`Verdict::FLUSH_WITH_REINSERT`], e.g. a second HTTP request on a
//! kept-alive connection). The verdicts of all plugins are OR'ed.
//!
//! A plugin's per-flow state is an [`Extension`] kept beside the flow in its
//! [`Extensions`] (not in the core [`Flow`]): a flow carries the extensions
//! of the plugins that found something in it, possibly several of one plugin
//! (passivedns: one per answer). Only flows carrying an extension of a plugin
//! go to an output whose template names that plugin (see `export`).
//!
//! A plugin's fields are declared once, in its [`FieldDef`] list (UniRec
//! name and type, and the IPFIX element): the UniRec export and the IPFIX
//! export both read the registry, and an extension writes its values through
//! a [`FieldSink`] by index into that list.
//!
//! Plugins are registered in one place, [`REGISTRY`].

use crate::cache::Flow;
use crate::parser::Packet;
use std::any::Any;
use unirec::{FieldType, Scalar, UrIp, UrMac, UrTime};

pub mod app;
pub mod basic_plugins;
pub mod basicplus;
pub mod bstats;
pub mod dns;
pub mod dns_wire;
pub mod dnssd;
pub mod http;
pub mod idpcontent;
pub mod mqtt;
pub mod netbios;
pub mod nettisa;
pub mod ntp;
pub mod ovpn;
pub mod passivedns;
pub mod phists;
pub mod pstats;
pub mod quic;
pub mod rtsp;
pub mod sip;
pub mod smtp;
pub mod ssadetector;
pub mod ssdp;
pub mod text_common;
pub mod tls;
pub mod tls_hello;
pub mod wg;

/// What a hook asks of the flow cache (ipfixprobe's return codes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdict(u8);

impl Verdict {
    /// Go on.
    pub const CONTINUE: Verdict = Verdict(0);
    /// Export the flow now (end reason "forced").
    pub const FLUSH: Verdict = Verdict(1);
    /// Export the flow without the current packet and start a new flow in
    /// its place (same orientation, counters reset, extensions dropped,
    /// `time_first` = the old flow's `time_last`), then count the packet.
    pub const FLUSH_WITH_REINSERT: Verdict = Verdict(3);

    pub fn flush(self) -> bool {
        self.0 & 1 != 0
    }

    pub fn reinsert(self) -> bool {
        self.0 == 3
    }
}

impl std::ops::BitOr for Verdict {
    type Output = Verdict;
    fn bitor(self, rhs: Verdict) -> Verdict {
        Verdict(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Verdict {
    fn bitor_assign(&mut self, rhs: Verdict) {
        self.0 |= rhs.0;
    }
}

/// An IPFIX information element: enterprise number (0 = IANA) and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ie {
    pub pen: u32,
    pub id: u16,
}

/// CESNET's private enterprise number.
pub const PEN_CESNET: u32 = 8057;
/// Flowmon's private enterprise number.
pub const PEN_FLOWMON: u32 = 39499;
/// The enterprise number of reverse elements (RFC 5103).
pub const PEN_REVERSE: u32 = 29305;

/// One field of a plugin: its UniRec name and type, and its IPFIX element
/// (None where ipfixprobe exports the field only in UniRec).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDef {
    pub name: &'static str,
    pub ty: FieldType,
    pub ipfix: Option<Ie>,
}

impl FieldDef {
    pub const fn new(name: &'static str, ty: FieldType, ipfix: Option<Ie>) -> FieldDef {
        FieldDef { name, ty, ipfix }
    }
}

/// Shorthands for field types in declarations.
pub mod ty {
    use unirec::{FieldType, Scalar};
    pub const U8: FieldType = FieldType::Scalar(Scalar::U8);
    pub const I8: FieldType = FieldType::Scalar(Scalar::I8);
    pub const U16: FieldType = FieldType::Scalar(Scalar::U16);
    pub const U32: FieldType = FieldType::Scalar(Scalar::U32);
    pub const U64: FieldType = FieldType::Scalar(Scalar::U64);
    pub const FLOAT: FieldType = FieldType::Scalar(Scalar::Float);
    pub const DOUBLE: FieldType = FieldType::Scalar(Scalar::Double);
    pub const IP: FieldType = FieldType::Scalar(Scalar::IpAddr);
    pub const MAC: FieldType = FieldType::Scalar(Scalar::MacAddr);
    pub const TIME: FieldType = FieldType::Scalar(Scalar::Time);
    pub const STRING: FieldType = FieldType::String;
    pub const BYTES: FieldType = FieldType::Bytes;
    pub const U8S: FieldType = FieldType::Array(Scalar::U8);
    pub const I8S: FieldType = FieldType::Array(Scalar::I8);
    pub const U16S: FieldType = FieldType::Array(Scalar::U16);
    pub const U32S: FieldType = FieldType::Array(Scalar::U32);
    pub const U64S: FieldType = FieldType::Array(Scalar::U64);
    pub const TIMES: FieldType = FieldType::Array(Scalar::Time);
}

/// A value an extension writes, independent of the output format.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValue<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    U32(u32),
    U64(u64),
    Float(f32),
    Double(f64),
    Ip(UrIp),
    Mac(UrMac),
    Time(UrTime),
    /// Text (UniRec `string`).
    Str(&'a [u8]),
    /// Raw bytes (UniRec `bytes`).
    Bytes(&'a [u8]),
    U8s(&'a [u8]),
    I8s(&'a [i8]),
    U16s(&'a [u16]),
    U32s(&'a [u32]),
    U64s(&'a [u64]),
    Times(&'a [UrTime]),
}

impl FieldValue<'_> {
    /// The UniRec type this value fits.
    pub fn field_type(&self) -> FieldType {
        match self {
            FieldValue::U8(_) => FieldType::Scalar(Scalar::U8),
            FieldValue::I8(_) => FieldType::Scalar(Scalar::I8),
            FieldValue::U16(_) => FieldType::Scalar(Scalar::U16),
            FieldValue::U32(_) => FieldType::Scalar(Scalar::U32),
            FieldValue::U64(_) => FieldType::Scalar(Scalar::U64),
            FieldValue::Float(_) => FieldType::Scalar(Scalar::Float),
            FieldValue::Double(_) => FieldType::Scalar(Scalar::Double),
            FieldValue::Ip(_) => FieldType::Scalar(Scalar::IpAddr),
            FieldValue::Mac(_) => FieldType::Scalar(Scalar::MacAddr),
            FieldValue::Time(_) => FieldType::Scalar(Scalar::Time),
            FieldValue::Str(_) => FieldType::String,
            FieldValue::Bytes(_) => FieldType::Bytes,
            FieldValue::U8s(_) => FieldType::Array(Scalar::U8),
            FieldValue::I8s(_) => FieldType::Array(Scalar::I8),
            FieldValue::U16s(_) => FieldType::Array(Scalar::U16),
            FieldValue::U32s(_) => FieldType::Array(Scalar::U32),
            FieldValue::U64s(_) => FieldType::Array(Scalar::U64),
            FieldValue::Times(_) => FieldType::Array(Scalar::Time),
        }
    }
}

/// Where an extension writes its fields: `field` indexes the plugin's
/// [`ProcessPlugin::fields`]. Fields left unwritten are zero / empty.
pub trait FieldSink {
    fn put(&mut self, field: usize, value: FieldValue<'_>);
}

/// A plugin's state for one flow, and the values it exports.
pub trait Extension: Any + Send {
    /// Writes the fields (indices into the plugin's field list).
    fn fill(&self, out: &mut dyn FieldSink);
}

/// One extension, tagged with the index of the plugin that made it.
pub struct Ext {
    pub plugin: u16,
    pub data: Box<dyn Extension>,
}

/// The extensions of one flow, kept beside it in the cache. Empty (no
/// allocation) for flows no plugin found anything in.
#[derive(Default)]
pub struct Extensions {
    list: smallvec::SmallVec<[Ext; 1]>,
    /// The plugin whose hook runs now: [`Extensions::add`] tags with it.
    current: u16,
}

impl Extensions {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn clear(&mut self) {
        self.list.clear();
    }

    /// Reads the list's memory (for the cache's batch prefetch).
    pub(crate) fn touch(&self) -> u64 {
        self.list.iter().fold(0, |a, e| a ^ u64::from(e.plugin))
    }

    pub(crate) fn set_current(&mut self, plugin: u16) {
        self.current = plugin;
    }

    /// Adds an extension of the plugin whose hook is running.
    pub fn add<T: Extension>(&mut self, ext: T) {
        self.list.push(Ext {
            plugin: self.current,
            data: Box::new(ext),
        });
    }

    /// The first extension of type `T` of the running plugin.
    pub fn get<T: Extension>(&self) -> Option<&T> {
        let cur = self.current;
        self.list
            .iter()
            .filter(|e| e.plugin == cur)
            .find_map(|e| (e.data.as_ref() as &dyn Any).downcast_ref::<T>())
    }

    /// The first extension of type `T` of the running plugin, mutably.
    pub fn get_mut<T: Extension>(&mut self) -> Option<&mut T> {
        let cur = self.current;
        self.list
            .iter_mut()
            .filter(|e| e.plugin == cur)
            .find_map(|e| (e.data.as_mut() as &mut dyn Any).downcast_mut::<T>())
    }

    /// The last extension of type `T` of the running plugin, mutably.
    pub fn last_mut<T: Extension>(&mut self) -> Option<&mut T> {
        let cur = self.current;
        self.list
            .iter_mut()
            .rev()
            .filter(|e| e.plugin == cur)
            .find_map(|e| (e.data.as_mut() as &mut dyn Any).downcast_mut::<T>())
    }

    /// Removes every extension of type `T` of the running plugin.
    pub fn remove<T: Extension>(&mut self) {
        let cur = self.current;
        self.list
            .retain(|e| !(e.plugin == cur && (e.data.as_ref() as &dyn Any).is::<T>()));
    }

    /// Every extension, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Ext> {
        self.list.iter()
    }
}

/// What a hook sees of its flow: the core record (read only) and the
/// flow's extensions.
pub struct FlowCtx<'a> {
    pub flow: &'a Flow,
    pub exts: &'a mut Extensions,
}

/// A process plugin. One instance serves every flow; per-flow state lives in
/// the flow's [`Extensions`].
pub trait ProcessPlugin: Send {
    /// The name `-p` takes.
    fn name(&self) -> &'static str;
    /// The plugin's fields, in the order its extension writes them.
    fn fields(&self) -> &'static [FieldDef];
    /// The hooks the plugin implements: the cache calls only those (a call
    /// per packet and plugin is measurable). The default, every hook, is
    /// always correct; a plugin that names fewer must name each one it
    /// overrides.
    fn hooks(&self) -> Hooks {
        Hooks::ALL
    }
    /// Before the flow of a packet is looked up (may amend the packet).
    fn pre_create(&mut self, _pkt: &mut Packet) {}
    /// After a flow was created from `pkt`.
    fn post_create(&mut self, _f: FlowCtx<'_>, _pkt: &Packet) -> Verdict {
        Verdict::CONTINUE
    }
    /// Before `pkt` is counted in its flow.
    fn pre_update(&mut self, _f: FlowCtx<'_>, _pkt: &mut Packet) -> Verdict {
        Verdict::CONTINUE
    }
    /// After `pkt` was counted in its flow.
    fn post_update(&mut self, _f: FlowCtx<'_>, _pkt: &Packet) -> Verdict {
        Verdict::CONTINUE
    }
    /// Before the flow is exported (timeouts, eviction, end of input).
    fn pre_export(&mut self, _f: FlowCtx<'_>) {}
    /// Whether the plugin reads packet payloads (the input then keeps a copy
    /// of each payload for the hooks).
    fn needs_payload(&self) -> bool {
        true
    }
    /// Whether the plugin reads whole IP packets ([`Packet::l3_head`] and the
    /// payload; the input then keeps a copy of the headers too).
    fn needs_l3(&self) -> bool {
        false
    }
    /// The plugin itself, for the binary to reach a plugin's own API
    /// (`app`'s flows named so far, for `--l7`); `None` by default.
    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        None
    }
}

/// Which hooks of [`ProcessPlugin`] a plugin implements (a bit set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hooks(u8);

impl Hooks {
    pub const PRE_CREATE: Hooks = Hooks(1);
    pub const POST_CREATE: Hooks = Hooks(2);
    pub const PRE_UPDATE: Hooks = Hooks(4);
    pub const POST_UPDATE: Hooks = Hooks(8);
    pub const PRE_EXPORT: Hooks = Hooks(16);
    pub const ALL: Hooks = Hooks(31);

    pub const fn with(self, other: Hooks) -> Hooks {
        Hooks(self.0 | other.0)
    }

    pub const fn has(self, other: Hooks) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Hooks {
    type Output = Hooks;
    fn bitor(self, rhs: Hooks) -> Hooks {
        self.with(rhs)
    }
}

/// The plugins of a run, in `-p` order, as the flow cache calls them.
#[derive(Default)]
pub struct Plugins {
    list: Vec<Box<dyn ProcessPlugin>>,
    /// Per hook, the indices (in `-p` order) of the plugins that have it.
    pre_create: Vec<u16>,
    post_create: Vec<u16>,
    pre_update: Vec<u16>,
    post_update: Vec<u16>,
    pre_export: Vec<u16>,
}

impl Plugins {
    pub fn new(list: Vec<Box<dyn ProcessPlugin>>) -> Plugins {
        let having = |h: Hooks| -> Vec<u16> {
            (0..list.len())
                .filter(|&i| list[i].hooks().has(h))
                .map(|i| i as u16)
                .collect()
        };
        Plugins {
            pre_create: having(Hooks::PRE_CREATE),
            post_create: having(Hooks::POST_CREATE),
            pre_update: having(Hooks::PRE_UPDATE),
            post_update: having(Hooks::POST_UPDATE),
            pre_export: having(Hooks::PRE_EXPORT),
            list,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.list.iter().map(|p| p.name()).collect()
    }

    /// The fields of plugin `i`.
    pub fn fields(&self, i: usize) -> &'static [FieldDef] {
        self.list.get(i).map_or(&[], |p| p.fields())
    }

    /// Index of the plugin named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.list.iter().position(|p| p.name() == name)
    }

    pub fn needs_payload(&self) -> bool {
        self.list.iter().any(|p| p.needs_payload())
    }

    pub fn needs_l3(&self) -> bool {
        self.list.iter().any(|p| p.needs_l3())
    }

    /// The first plugin of type `T` (one that offers itself by
    /// [`ProcessPlugin::as_any_mut`]).
    pub fn find_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.list
            .iter_mut()
            .find_map(|p| p.as_any_mut().and_then(|a| a.downcast_mut::<T>()))
    }

    pub(crate) fn pre_create(&mut self, pkt: &mut Packet) {
        for &i in &self.pre_create {
            self.list[usize::from(i)].pre_create(pkt);
        }
    }

    pub(crate) fn post_create(
        &mut self,
        flow: &Flow,
        exts: &mut Extensions,
        pkt: &Packet,
    ) -> Verdict {
        let mut v = Verdict::CONTINUE;
        for &i in &self.post_create {
            exts.set_current(i);
            v |= self.list[usize::from(i)].post_create(FlowCtx { flow, exts }, pkt);
        }
        v
    }

    pub(crate) fn pre_update(
        &mut self,
        flow: &Flow,
        exts: &mut Extensions,
        pkt: &mut Packet,
    ) -> Verdict {
        let mut v = Verdict::CONTINUE;
        for &i in &self.pre_update {
            exts.set_current(i);
            v |= self.list[usize::from(i)].pre_update(FlowCtx { flow, exts }, pkt);
        }
        v
    }

    pub(crate) fn post_update(
        &mut self,
        flow: &Flow,
        exts: &mut Extensions,
        pkt: &Packet,
    ) -> Verdict {
        let mut v = Verdict::CONTINUE;
        for &i in &self.post_update {
            exts.set_current(i);
            v |= self.list[usize::from(i)].post_update(FlowCtx { flow, exts }, pkt);
        }
        v
    }

    pub(crate) fn pre_export(&mut self, flow: &Flow, exts: &mut Extensions) {
        for &i in &self.pre_export {
            exts.set_current(i);
            self.list[usize::from(i)].pre_export(FlowCtx { flow, exts });
        }
    }
}

/// A plugin's constructor: takes the option text after `;` (empty when
/// none) and says what is wrong with it.
pub type Constructor = fn(&str) -> Result<Box<dyn ProcessPlugin>, String>;

/// A registered plugin: its `-p` name, its constructor, and its fields, the
/// same whatever the options, so that they can be listed (`-p list`,
/// ipfixcol's element table) without constructing the plugin, which for
/// `app` means setting up nDPI.
pub struct Registered {
    pub name: &'static str,
    pub create: Constructor,
    pub fields: &'static [FieldDef],
}

const fn reg(name: &'static str, create: Constructor, fields: &'static [FieldDef]) -> Registered {
    Registered {
        name,
        create,
        fields,
    }
}

/// Every plugin `-p` knows, by name: the one place plugins are registered.
pub const REGISTRY: &[Registered] = &[
    reg(
        "vlan",
        basic_plugins::Vlan::create,
        basic_plugins::VLAN_FIELDS,
    ),
    reg(
        "icmp",
        basic_plugins::Icmp::create,
        basic_plugins::ICMP_FIELDS,
    ),
    reg(
        "flowhash",
        basic_plugins::FlowHash::create,
        basic_plugins::FLOWHASH_FIELDS,
    ),
    reg("tls", tls::Tls::create, tls::FIELDS),
    reg("quic", quic::Quic::create, quic::FIELDS),
    reg("http", http::Http::create, http::FIELDS),
    reg("basicplus", basicplus::BasicPlus::create, basicplus::FIELDS),
    reg("smtp", smtp::Smtp::create, smtp::FIELDS),
    reg("ssdp", ssdp::Ssdp::create, ssdp::FIELDS),
    reg("dns", dns::Dns::create, dns::FIELDS),
    reg(
        "passivedns",
        passivedns::PassiveDns::create,
        passivedns::FIELDS,
    ),
    reg("dnssd", dnssd::Dnssd::create, dnssd::FIELDS),
    reg("netbios", netbios::Netbios::create, netbios::FIELDS),
    reg("mqtt", mqtt::Mqtt::create, mqtt::FIELDS),
    reg("ntp", ntp::Ntp::create, ntp::FIELDS),
    reg("pstats", pstats::Pstats::create, pstats::FIELDS),
    reg("phists", phists::Phists::create, phists::FIELDS),
    reg("bstats", bstats::Bstats::create, bstats::FIELDS),
    reg(
        "idpcontent",
        idpcontent::IdpContent::create,
        idpcontent::FIELDS,
    ),
    reg("wg", wg::Wg::create, wg::FIELDS),
    reg("ovpn", ovpn::Ovpn::create, ovpn::FIELDS),
    reg(
        "ssadetector",
        ssadetector::SsaDetector::create,
        ssadetector::FIELDS,
    ),
    reg("nettisa", nettisa::Nettisa::create, nettisa::FIELDS),
    reg("rtsp", rtsp::Rtsp::create, rtsp::FIELDS),
    reg("sip", sip::Sip::create, sip::FIELDS),
    reg("app", app::App::create, app::FIELDS),
];

/// Every plugin with its UniRec fields (`-p list`).
pub fn describe() -> Vec<(&'static str, String)> {
    let basic: Vec<&str> = crate::export::BASIC_FIELDS
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let mut out = vec![("basic", basic.join(","))];
    for r in REGISTRY {
        let fields: Vec<String> = r
            .fields
            .iter()
            .map(|f| format!("{} {}", f.ty, f.name))
            .collect();
        out.push((r.name, fields.join(",")));
    }
    out
}

/// The names `-p` accepts (`basic` plus the registry).
pub fn available() -> Vec<&'static str> {
    std::iter::once("basic")
        .chain(REGISTRY.iter().map(|r| r.name))
        .collect()
}

/// Splits `-p` values into output groups of plugin specs (ipfixprobe's and
/// the legacy flow_meter's forms):
///
/// * each `-p` value is a comma list of items (`http,dns`), or one plugin
///   with options (`"pstats;includezeros"`): at the top level, options run
///   to the end of the value, so a comma inside them belongs to them
///   (`"dnssd;txt=a,b"`);
/// * an item in parentheses is a group of plugins sharing one output
///   interface (`"http,(pstats,phists),basic"`); inside, options end at
///   the next `,` or `)`;
/// * every other item is a group of its own.
pub fn spec_groups<S: AsRef<str>>(values: &[S]) -> Result<Vec<Vec<String>>, String> {
    let mut groups = Vec::new();
    for v in values {
        let v = v.as_ref();
        let mut rest = v.trim();
        while !rest.is_empty() {
            if let Some(inner) = rest.strip_prefix('(') {
                let end = inner
                    .find(')')
                    .ok_or_else(|| format!("-p `{v}`: `(` without `)`"))?;
                let members: Vec<String> = inner[..end]
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(String::from)
                    .collect();
                if members.is_empty() {
                    return Err(format!("-p `{v}`: an empty group"));
                }
                groups.push(members);
                let tail = inner[end + 1..].trim_start();
                rest = match tail.strip_prefix(',') {
                    Some(t) => t.trim_start(),
                    None if tail.is_empty() => tail,
                    None => return Err(format!("-p `{v}`: expected `,` after `)`")),
                };
                continue;
            }
            let cut = rest.find([',', ';']).unwrap_or(rest.len());
            if rest[cut..].starts_with(';') {
                // Options run to the end of the value.
                groups.push(vec![rest.trim().to_string()]);
                break;
            }
            let name = rest[..cut].trim();
            if !name.is_empty() {
                groups.push(vec![name.to_string()]);
            }
            rest = rest[cut..].strip_prefix(',').unwrap_or("").trim_start();
        }
    }
    Ok(groups)
}

/// The plugin specs of `-p` values, in order, groups flattened.
pub fn split_specs<S: AsRef<str>>(values: &[S]) -> Vec<String> {
    spec_groups(values)
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// The name of a plugin spec (`pstats;includezeros` → `pstats`).
pub fn spec_name(spec: &str) -> &str {
    spec.split_once(';').map_or(spec, |(n, _)| n).trim()
}

/// Builds the plugins of the `-p` values (`basic` is implied and ignored).
pub fn from_specs<S: AsRef<str>>(values: &[S]) -> Result<Plugins, String> {
    let mut list: Vec<Box<dyn ProcessPlugin>> = Vec::new();
    for spec in spec_groups(values)?.into_iter().flatten() {
        let name = spec_name(&spec);
        let opts = spec.split_once(';').map_or("", |(_, o)| o);
        if name == "basic" {
            continue;
        }
        if list.iter().any(|p| p.name() == name) {
            return Err(format!("plugin `{name}` is listed twice"));
        }
        let Some(Registered { create: make, .. }) = REGISTRY.iter().find(|r| r.name == name) else {
            return Err(format!(
                "unknown plugin `{name}` (available: {})",
                available().join(", ")
            ));
        };
        list.push(make(opts).map_err(|e| format!("plugin `{name}`: {e}"))?);
    }
    if list.len() > usize::from(u16::MAX) {
        return Err("too many plugins".into());
    }
    Ok(Plugins::new(list))
}

/// Builds the plugins of one comma list (`-p http,dns`).
pub fn from_list(list: &str) -> Result<Plugins, String> {
    from_specs(&[list])
}

/// Parses plugin options `key=value;flag;…` against the names a plugin
/// knows (each given as its short and long name), for plugins' constructors:
/// the options in order, as (long name, value).
pub fn parse_options<'a>(
    opts: &'a str,
    known: &[(&'static str, &'static str)],
) -> Result<Vec<(&'static str, &'a str)>, String> {
    let mut out = Vec::new();
    for item in opts.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        let key = key.trim();
        let Some(&(_, long)) = known.iter().find(|(s, l)| *s == key || *l == key) else {
            let names: Vec<&str> = known.iter().map(|(_, l)| *l).collect();
            return Err(if names.is_empty() {
                format!("takes no options (got `{key}`)")
            } else {
                format!("unknown option `{key}` (known: {})", names.join(", "))
            });
        };
        out.push((long, value.trim()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_takes_lists_repeats_and_options() {
        assert_eq!(split_specs(&["http,dns"]), ["http", "dns"]);
        assert_eq!(split_specs(&["http", "dns"]), ["http", "dns"]);
        assert_eq!(
            split_specs(&["pstats;includezeros", "tls"]),
            ["pstats;includezeros", "tls"]
        );
        assert_eq!(
            split_specs(&["http,pstats;includezeros;skipdup"]),
            ["http", "pstats;includezeros;skipdup"]
        );
        assert_eq!(split_specs(&["dnssd;txt=a,b.csv"]), ["dnssd;txt=a,b.csv"]);
        assert_eq!(
            spec_groups(&["http,(pstats;includezeroes,phists),basic"]),
            Ok(vec![
                vec!["http".to_string()],
                vec!["pstats;includezeroes".to_string(), "phists".to_string()],
                vec!["basic".to_string()],
            ])
        );
        assert!(spec_groups(&["(http"]).is_err());
        assert!(spec_groups(&["()"]).is_err());
        assert!(spec_groups(&["(http)dns"]).is_err());
    }

    #[test]
    fn unknown_and_duplicate_plugins_are_errors() {
        let e = from_list("vlan,nonsense").err().unwrap_or_default();
        assert!(e.contains("unknown plugin `nonsense`"), "{e}");
        assert!(e.contains("vlan"), "{e}");
        let e = from_specs(&["vlan", "vlan"]).err().unwrap_or_default();
        assert!(e.contains("twice"), "{e}");
        let e = from_specs(&["vlan;bogus"]).err().unwrap_or_default();
        assert!(e.contains("takes no options"), "{e}");
        assert!(from_list("basic").is_ok_and(|p| p.is_empty()));
    }

    #[test]
    fn options_by_short_or_long_name() {
        let known = [("i", "includezeroes"), ("s", "skipdup")];
        assert_eq!(
            parse_options("i;skipdup", &known),
            Ok(vec![("includezeroes", ""), ("skipdup", "")])
        );
        assert!(parse_options("x=1", &known).is_err());
    }

    #[test]
    fn verdicts_combine() {
        assert!(!Verdict::CONTINUE.flush());
        assert!(Verdict::FLUSH.flush() && !Verdict::FLUSH.reinsert());
        assert!((Verdict::FLUSH | Verdict::FLUSH_WITH_REINSERT).reinsert());
        assert!((Verdict::CONTINUE | Verdict::FLUSH).flush());
    }

    struct A(u32);
    impl Extension for A {
        fn fill(&self, out: &mut dyn FieldSink) {
            out.put(0, FieldValue::U32(self.0));
        }
    }
    struct B;
    impl Extension for B {
        fn fill(&self, _: &mut dyn FieldSink) {}
    }

    #[test]
    fn extensions_belong_to_their_plugin() {
        let mut e = Extensions::default();
        e.set_current(0);
        e.add(A(1));
        e.add(A(2));
        e.set_current(1);
        assert!(e.get::<A>().is_none());
        e.add(B);
        e.set_current(0);
        assert_eq!(e.get::<A>().map(|a| a.0), Some(1));
        assert_eq!(e.last_mut::<A>().map(|a| a.0), Some(2));
        e.remove::<A>();
        assert_eq!(e.len(), 1);
        assert_eq!(e.iter().next().map(|x| x.plugin), Some(1));
    }

    /// The registry lists the fields a plugin declares, under its name, for
    /// every option set the plugin takes.
    #[test]
    fn the_registry_lists_each_plugins_own_fields() {
        for r in REGISTRY {
            for opts in ["", "includezeroes", "txt", "tc=5", "packets=3"] {
                let Ok(p) = (r.create)(opts) else { continue };
                assert_eq!(p.name(), r.name);
                assert_eq!(p.fields(), r.fields, "{} with `{opts}`", r.name);
            }
        }
    }

    /// The hooks a plugin names in `hooks()` must be exactly the ones its
    /// impl overrides: one left out would silently never run. Checked on
    /// the sources, since Rust cannot tell which provided methods an impl
    /// overrides.
    #[test]
    fn every_plugin_names_the_hooks_it_implements() {
        const HOOKS: [&str; 5] = [
            "pre_create",
            "post_create",
            "pre_update",
            "post_update",
            "pre_export",
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/plugins");
        let mut impls = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let src = std::fs::read_to_string(&path).unwrap();
            for (start, _) in src.match_indices("impl ProcessPlugin for ") {
                // The impl block ends at the first line that is exactly `}`.
                let body = &src[start..];
                let body = &body[..body.find("\n}\n").unwrap_or(body.len())];
                let hooks_fn = body
                    .split("fn hooks(&self) -> Hooks {")
                    .nth(1)
                    .and_then(|rest| rest.split('}').next())
                    .unwrap_or_else(|| panic!("{}: an impl without hooks()", path.display()));
                for h in HOOKS {
                    let overrides = body.contains(&format!("\n    fn {h}("));
                    let named = hooks_fn.contains(&format!("Hooks::{}", h.to_uppercase()));
                    assert_eq!(overrides, named, "{}: hook {h}", path.display());
                }
                impls += 1;
            }
        }
        assert_eq!(impls, REGISTRY.len());
    }
}
