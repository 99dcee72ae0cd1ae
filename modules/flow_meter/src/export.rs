//! Flow records to UniRec: the basic template of ipfixprobe plus the fields
//! of the process plugins.

use crate::cache::Flow;
use crate::plugins::ProcessPlugin;
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

fn us_time(us: u64) -> UrTime {
    UrTime::from_secs_micros((us / 1_000_000) as u32, (us % 1_000_000) as u32)
}

/// Encodes flows of one output interface.
pub struct Exporter {
    template: Template,
    plugins: Vec<Box<dyn ProcessPlugin>>,
    idx: [usize; 17],
    link: u64,
    dir: u8,
}

impl Exporter {
    /// `link` goes to LINK_BIT_FIELD, `dir` to DIR_BIT_FIELD.
    pub fn new(
        plugins: Vec<Box<dyn ProcessPlugin>>,
        link: u64,
        dir: u8,
    ) -> Result<Exporter, TemplateError> {
        let mut fields: Vec<(&str, FieldType)> = BASIC_FIELDS.to_vec();
        for p in &plugins {
            fields.extend_from_slice(p.fields());
        }
        let template = Template::from_fields(fields)?;
        let mut idx = [0; 17];
        for (slot, (name, _)) in idx.iter_mut().zip(BASIC_FIELDS) {
            *slot = template.find(name).unwrap_or(usize::MAX);
        }
        Ok(Exporter {
            template,
            plugins,
            idx,
            link,
            dir,
        })
    }

    pub fn template(&self) -> &Template {
        &self.template
    }

    /// Appends the record of `flow` to `out`.
    pub fn encode(
        &self,
        b: &mut RecordBuilder<'_>,
        flow: &Flow,
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
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
        b.set_u64(link, self.link)?;
        for p in &self.plugins {
            p.fill(flow, &self.template, b)?;
        }
        b.finish(out)
    }
}
