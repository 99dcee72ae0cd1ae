//! Flow records to UniRec: ipfixprobe's basic template plus the fields of
//! the process plugins, one template per output interface.
//!
//! How flows map to interfaces (ipfixprobe's UniRec output, `p=` option):
//!
//! * Each output interface carries either the basic template (`basic`) or
//!   a group of plugins (`http` or `(pstats,phists)`): basic fields + the
//!   fields of every plugin of the group.
//! * The basic interface gets every flow.
//! * A plugin interface gets a flow only when the flow carries an extension
//!   of a plugin of its group (a non-HTTP flow is not sent to the `http`
//!   interface). A flow with several extensions of one plugin (passivedns:
//!   one per answer) gives one record per extension; in a group, a plugin
//!   with fewer extensions than another repeats its last one (as the C
//!   record keeps its values).
//! * Without a mapping: no plugin → one basic interface; plugins → one
//!   interface carrying all of them as one group (ipfixprobe refuses
//!   several plugins without a mapping; one plugin is the same either way).

use crate::cache::{Flow, FlowRecord};
use crate::plugins::{FieldSink, FieldValue, Plugins};
use unirec::{
    FieldType, RecordBuilder, RecordError, Scalar, Template, TemplateError, UrIp, UrMac, UrTime,
};

/// The basic fields, with ipfixprobe's names and types.
pub const BASIC_FIELDS: &[(&str, FieldType)] = &[
    ("SRC_IP", FieldType::Scalar(Scalar::IpAddr)),
    ("DST_IP", FieldType::Scalar(Scalar::IpAddr)),
    ("SRC_PORT", FieldType::Scalar(Scalar::U16)),
    ("DST_PORT", FieldType::Scalar(Scalar::U16)),
    ("PROTOCOL", FieldType::Scalar(Scalar::U8)),
    ("PACKETS", FieldType::Scalar(Scalar::U32)),
    ("BYTES", FieldType::Scalar(Scalar::U64)),
    ("PACKETS_REV", FieldType::Scalar(Scalar::U32)),
    ("BYTES_REV", FieldType::Scalar(Scalar::U64)),
    ("TIME_FIRST", FieldType::Scalar(Scalar::Time)),
    ("TIME_LAST", FieldType::Scalar(Scalar::Time)),
    ("TCP_FLAGS", FieldType::Scalar(Scalar::U8)),
    ("TCP_FLAGS_REV", FieldType::Scalar(Scalar::U8)),
    ("DIR_BIT_FIELD", FieldType::Scalar(Scalar::U8)),
    ("SRC_MAC", FieldType::Scalar(Scalar::MacAddr)),
    ("DST_MAC", FieldType::Scalar(Scalar::MacAddr)),
    ("LINK_BIT_FIELD", FieldType::Scalar(Scalar::U64)),
];

/// Microseconds since the epoch as a UniRec time.
pub fn us_time(us: u64) -> UrTime {
    UrTime::from_secs_micros((us / 1_000_000) as u32, (us % 1_000_000) as u32)
}

/// What one output interface carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Group {
    /// The basic template, every flow.
    Basic,
    /// These plugins (indices into [`Plugins`]).
    Plugins(Vec<usize>),
}

/// Parses ipfixprobe's interface mapping (`http,(pstats,phists),basic`,
/// the grammar of `-p`): one group per output interface, in order.
pub fn parse_mapping(map: &str, plugins: &Plugins) -> Result<Vec<Group>, String> {
    groups_from(&crate::plugins::spec_groups(&[map])?, plugins, map)
}

fn groups_from(specs: &[Vec<String>], plugins: &Plugins, map: &str) -> Result<Vec<Group>, String> {
    let mut groups: Vec<Group> = Vec::new();
    for names in specs {
        let names: Vec<&str> = names.iter().map(|n| crate::plugins::spec_name(n)).collect();
        if names.contains(&"basic") {
            if names.len() > 1 {
                return Err(format!(
                    "mapping `{map}`: `basic` must be alone in its group"
                ));
            }
            groups.push(Group::Basic);
            continue;
        }
        let mut idx = Vec::new();
        for n in names {
            let i = plugins
                .index_of(n)
                .ok_or_else(|| format!("mapping `{map}`: plugin `{n}` is not enabled with -p"))?;
            let mapped = groups
                .iter()
                .any(|g| matches!(g, Group::Plugins(v) if v.contains(&i)));
            if mapped || idx.contains(&i) {
                return Err(format!("mapping `{map}`: plugin `{n}` is mapped twice"));
            }
            idx.push(i);
        }
        groups.push(Group::Plugins(idx));
    }
    Ok(groups)
}

/// The groups of `outputs` interfaces: the `map` given, else the `-p`
/// groups position by position (the legacy flow_meter's `-p http,basic,dns`
/// with three interfaces), else for one interface basic alone or all
/// plugins as one group.
pub fn mapping<S: AsRef<str>>(
    p_values: &[S],
    map: Option<&str>,
    plugins: &Plugins,
    outputs: usize,
) -> Result<Vec<Group>, String> {
    let groups = match map {
        Some(m) => parse_mapping(m, plugins)?,
        None => {
            let specs = crate::plugins::spec_groups(p_values)?;
            if outputs > 1 || specs.len() == outputs {
                let shown: Vec<&str> = p_values.iter().map(|v| v.as_ref()).collect();
                groups_from(&specs, plugins, &shown.join(" -p "))?
            } else {
                default_mapping(plugins)
            }
        }
    };
    if groups.len() != outputs {
        return Err(format!(
            "{outputs} output interface(s) but {} plugin group(s): give one group per interface, \
             e.g. -i u:a,u:b,u:c -p 'http,(pstats,phists),basic'",
            groups.len()
        ));
    }
    Ok(groups)
}

/// The groups when no mapping is given: basic alone, or all plugins as one.
pub fn default_mapping(plugins: &Plugins) -> Vec<Group> {
    if plugins.is_empty() {
        vec![Group::Basic]
    } else {
        vec![Group::Plugins((0..plugins.len()).collect())]
    }
}

/// Encodes the flows of one output interface.
pub struct Exporter {
    template: Template,
    /// Template indices of the basic fields.
    idx: [usize; 17],
    /// The group's plugins and, per plugin, its fields' template indices.
    plugins: Vec<(usize, Vec<usize>)>,
    link: u64,
    dir: u8,
}

impl Exporter {
    /// `link` goes to LINK_BIT_FIELD, `dir` to DIR_BIT_FIELD.
    pub fn new(
        plugins: &Plugins,
        group: &Group,
        link: u64,
        dir: u8,
    ) -> Result<Exporter, TemplateError> {
        let mut fields: Vec<(&str, FieldType)> = BASIC_FIELDS.to_vec();
        let members: &[usize] = match group {
            Group::Basic => &[],
            Group::Plugins(v) => v,
        };
        for &p in members {
            fields.extend(plugins.fields(p).iter().map(|f| (f.name, f.ty)));
        }
        let template = Template::from_fields(fields)?;
        let mut idx = [0; 17];
        for (slot, (name, _)) in idx.iter_mut().zip(BASIC_FIELDS) {
            *slot = template.find(name).unwrap_or(usize::MAX);
        }
        let plugins = members
            .iter()
            .map(|&p| {
                let map = plugins
                    .fields(p)
                    .iter()
                    .map(|f| template.find(f.name).unwrap_or(usize::MAX))
                    .collect();
                (p, map)
            })
            .collect();
        Ok(Exporter {
            template,
            idx,
            plugins,
            link,
            dir,
        })
    }

    pub fn template(&self) -> &Template {
        &self.template
    }

    /// Whether this interface carries the basic template (every flow).
    pub fn is_basic(&self) -> bool {
        self.plugins.is_empty()
    }

    fn basic(&self, b: &mut RecordBuilder<'_>, flow: &Flow) -> Result<(), RecordError> {
        let [src, dst, sp, dp, proto, pk, by, pkr, byr, tf, tl, fl, flr, dir, smac, dmac, link] =
            self.idx;
        b.clear();
        b.set_ip(src, UrIp(flow.src_ip))?;
        b.set_ip(dst, UrIp(flow.dst_ip))?;
        b.set_u16(sp, flow.src_port)?;
        b.set_u16(dp, flow.dst_port)?;
        b.set_u8(proto, flow.protocol)?;
        b.set_u32(pk, flow.packets)?;
        b.set_u64(by, flow.bytes)?;
        b.set_u32(pkr, flow.packets_rev)?;
        b.set_u64(byr, flow.bytes_rev)?;
        b.set_time(tf, us_time(flow.time_first))?;
        b.set_time(tl, us_time(flow.time_last))?;
        b.set_u8(fl, flow.tcp_flags)?;
        b.set_u8(flr, flow.tcp_flags_rev)?;
        b.set_u8(dir, self.dir)?;
        b.set_mac(smac, UrMac(flow.src_mac))?;
        b.set_mac(dmac, UrMac(flow.dst_mac))?;
        b.set_u64(link, self.link)
    }

    /// Appends this interface's records of `rec` to `out`, calling `sent`
    /// after each; returns how many. A basic interface gives one record per
    /// flow, a plugin interface one per extension of its plugins (none when
    /// the flow has none).
    pub fn encode(
        &self,
        b: &mut RecordBuilder<'_>,
        rec: &FlowRecord,
        out: &mut Vec<u8>,
        mut sent: impl FnMut(&[u8]) -> Result<(), RecordError>,
    ) -> Result<usize, RecordError> {
        if self.is_basic() {
            out.clear();
            self.basic(b, &rec.flow)?;
            b.finish(out)?;
            sent(out)?;
            return Ok(1);
        }
        let count = |p: usize| {
            rec.exts
                .iter()
                .filter(|e| usize::from(e.plugin) == p)
                .count()
        };
        let records = self
            .plugins
            .iter()
            .map(|(p, _)| count(*p))
            .max()
            .unwrap_or(0);
        for j in 0..records {
            self.basic(b, &rec.flow)?;
            for (p, map) in &self.plugins {
                let n = count(*p);
                if n == 0 {
                    continue;
                }
                let Some(ext) = rec
                    .exts
                    .iter()
                    .filter(|e| usize::from(e.plugin) == *p)
                    .nth(j.min(n - 1))
                else {
                    continue;
                };
                let mut sink = UnirecSink {
                    b: &mut *b,
                    map,
                    err: None,
                };
                ext.data.fill(&mut sink);
                if let Some(e) = sink.err {
                    return Err(e);
                }
            }
            out.clear();
            b.finish(out)?;
            sent(out)?;
        }
        Ok(records)
    }
}

/// Writes plugin values into a UniRec record, by the plugin's field map.
struct UnirecSink<'b, 't> {
    b: &'b mut RecordBuilder<'t>,
    map: &'b [usize],
    err: Option<RecordError>,
}

fn put_array<T: Copy>(
    b: &mut RecordBuilder<'_>,
    idx: usize,
    v: &[T],
    le: impl Fn(T, &mut Vec<u8>),
) -> Result<(), RecordError> {
    let buf = b.var_mut(idx)?;
    buf.clear();
    for &x in v {
        le(x, buf);
    }
    Ok(())
}

impl FieldSink for UnirecSink<'_, '_> {
    fn put(&mut self, field: usize, value: FieldValue<'_>) {
        let Some(&idx) = self.map.get(field) else {
            self.err.get_or_insert(RecordError::NoField(field));
            return;
        };
        let b = &mut *self.b;
        let r = match value {
            FieldValue::U8(v) => b.set_u8(idx, v),
            FieldValue::I8(v) => b.set_i8(idx, v),
            FieldValue::U16(v) => b.set_u16(idx, v),
            FieldValue::U32(v) => b.set_u32(idx, v),
            FieldValue::U64(v) => b.set_u64(idx, v),
            FieldValue::Float(v) => b.set_f32(idx, v),
            FieldValue::Double(v) => b.set_f64(idx, v),
            FieldValue::Ip(v) => b.set_ip(idx, v),
            FieldValue::Mac(v) => b.set_mac(idx, v),
            FieldValue::Time(v) => b.set_time(idx, v),
            FieldValue::Str(v) | FieldValue::Bytes(v) | FieldValue::U8s(v) => b.set_var(idx, v),
            FieldValue::I8s(v) => put_array(b, idx, v, |x, o| o.push(x as u8)),
            FieldValue::U16s(v) => {
                put_array(b, idx, v, |x, o| o.extend_from_slice(&x.to_le_bytes()))
            }
            FieldValue::U32s(v) => {
                put_array(b, idx, v, |x, o| o.extend_from_slice(&x.to_le_bytes()))
            }
            FieldValue::U64s(v) => {
                put_array(b, idx, v, |x, o| o.extend_from_slice(&x.to_le_bytes()))
            }
            FieldValue::Times(v) => {
                put_array(b, idx, v, |x, o| o.extend_from_slice(&x.0.to_le_bytes()))
            }
        };
        if let Err(e) = r {
            self.err.get_or_insert(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::from_list;

    #[test]
    fn mappings() {
        let p = from_list("vlan,icmp,flowhash").unwrap_or_default();
        assert_eq!(
            parse_mapping("vlan,(icmp,flowhash),basic", &p),
            Ok(vec![
                Group::Plugins(vec![0]),
                Group::Plugins(vec![1, 2]),
                Group::Basic
            ])
        );
        for bad in ["(vlan,basic)", "vlan,vlan", "http", "(vlan", "(vlan)x"] {
            let r = parse_mapping(bad, &p);
            assert!(r.is_err(), "{bad}: {r:?}");
        }
        // Legacy positional mapping and the one-interface default.
        assert_eq!(
            mapping(
                &["vlan,basic"],
                None,
                &from_list("vlan").unwrap_or_default(),
                2
            ),
            Ok(vec![Group::Plugins(vec![0]), Group::Basic])
        );
        assert_eq!(
            mapping(
                &["vlan", "icmp"],
                None,
                &from_list("vlan,icmp").unwrap_or_default(),
                1
            ),
            Ok(vec![Group::Plugins(vec![0, 1])])
        );
        assert_eq!(
            mapping(&["basic"], None, &Plugins::default(), 1),
            Ok(vec![Group::Basic])
        );
        let e = mapping(&["vlan,icmp,flowhash"], None, &p, 2)
            .err()
            .unwrap_or_default();
        assert!(e.contains("one group per interface"), "{e}");
        assert_eq!(default_mapping(&p), vec![Group::Plugins(vec![0, 1, 2])]);
        assert_eq!(default_mapping(&Plugins::default()), vec![Group::Basic]);
    }
}
