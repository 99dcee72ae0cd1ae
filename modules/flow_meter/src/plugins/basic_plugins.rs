//! The small plugins: `vlan`, `icmp` and `flowhash` (one field each, set
//! from the first packet of the flow).

use super::{parse_options, Extension, Hooks};
use super::{ty, FieldDef, FieldSink, FieldValue, FlowCtx, Ie, ProcessPlugin, Verdict};
use crate::parser::Packet;

/// `vlan`: `uint16 VLAN_ID`, the outer VLAN id of the flow's first packet.
pub(crate) const VLAN_FIELDS: &[FieldDef] = &[FieldDef::new(
    "VLAN_ID",
    ty::U16,
    Some(Ie { pen: 0, id: 58 }),
)];
pub(crate) const ICMP_FIELDS: &[FieldDef] = &[FieldDef::new(
    "L4_ICMP_TYPE_CODE",
    ty::U16,
    Some(Ie { pen: 0, id: 32 }),
)];
pub(crate) const FLOWHASH_FIELDS: &[FieldDef] = &[FieldDef::new(
    "FLOW_ID",
    ty::U64,
    Some(Ie { pen: 0, id: 148 }),
)];

pub struct Vlan;

struct VlanExt(u16);

impl Extension for VlanExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::U16(self.0));
    }
}

impl Vlan {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(Vlan))
    }
}

impl ProcessPlugin for Vlan {
    fn name(&self) -> &'static str {
        "vlan"
    }
    fn fields(&self) -> &'static [FieldDef] {
        VLAN_FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        f.exts.add(VlanExt(pkt.vlan_id));
        Verdict::CONTINUE
    }
    fn needs_payload(&self) -> bool {
        false
    }
}

/// `icmp`: `uint16 L4_ICMP_TYPE_CODE`, type << 8 | code of the first packet
/// of an ICMP or ICMPv6 flow.
pub struct Icmp;

struct IcmpExt(u16);

impl Extension for IcmpExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::U16(self.0));
    }
}

impl Icmp {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(Icmp))
    }
}

impl ProcessPlugin for Icmp {
    fn name(&self) -> &'static str {
        "icmp"
    }
    fn fields(&self) -> &'static [FieldDef] {
        ICMP_FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if matches!(pkt.protocol, 1 | 58) {
            if let [t, c, ..] = pkt.payload() {
                f.exts.add(IcmpExt(u16::from_be_bytes([*t, *c])));
            }
        }
        Verdict::CONTINUE
    }
}

/// `flowhash`: `uint64 FLOW_ID`, the flow cache's hash of the flow key.
pub struct FlowHash;

struct FlowHashExt(u64);

impl Extension for FlowHashExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        out.put(0, FieldValue::U64(self.0));
    }
}

impl FlowHash {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(FlowHash))
    }
}

impl ProcessPlugin for FlowHash {
    fn name(&self) -> &'static str {
        "flowhash"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FLOWHASH_FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, _pkt: &Packet) -> Verdict {
        f.exts.add(FlowHashExt(f.flow.flow_hash));
        Verdict::CONTINUE
    }
    fn needs_payload(&self) -> bool {
        false
    }
}
