//! Process plugins: extra fields computed per flow (ipfixprobe's `-p`).
//!
//! The seam of ipfixprobe's design: a plugin names its UniRec fields and
//! fills them when the flow is exported. Plugins that need per-packet hooks
//! (HTTP, DNS, TLS…) extend this trait in a later issue.

use crate::cache::Flow;
use unirec::{FieldType, RecordBuilder, RecordError, Scalar, Template};

pub trait ProcessPlugin: Send {
    fn name(&self) -> &'static str;
    /// The plugin's UniRec fields.
    fn fields(&self) -> &'static [(&'static str, FieldType)];
    /// Fills the plugin's fields of `flow` into the record.
    fn fill(&self, flow: &Flow, t: &Template, b: &mut RecordBuilder<'_>)
        -> Result<(), RecordError>;
}

/// `vlan`: the outer VLAN id of the flow (`uint16 VLAN_ID`).
pub struct Vlan;

impl ProcessPlugin for Vlan {
    fn name(&self) -> &'static str {
        "vlan"
    }
    fn fields(&self) -> &'static [(&'static str, FieldType)] {
        &[("VLAN_ID", FieldType::Scalar(Scalar::U16))]
    }
    fn fill(
        &self,
        flow: &Flow,
        t: &Template,
        b: &mut RecordBuilder<'_>,
    ) -> Result<(), RecordError> {
        b.set_u16(
            t.find("VLAN_ID").ok_or(RecordError::NoField(usize::MAX))?,
            flow.vlan_id,
        )
    }
}

/// Names accepted by `-p`.
pub const AVAILABLE: &[&str] = &["basic", "vlan"];

/// Builds the plugins of a `-p` list (`basic` is implied and ignored).
pub fn from_list(list: &str) -> Result<Vec<Box<dyn ProcessPlugin>>, String> {
    let mut out: Vec<Box<dyn ProcessPlugin>> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if seen.contains(&name) {
            return Err(format!("plugin `{name}` is listed twice"));
        }
        seen.push(name);
        match name {
            "basic" => {}
            "vlan" => out.push(Box::new(Vlan)),
            _ => {
                return Err(format!(
                    "unknown plugin `{name}` (available: {})",
                    AVAILABLE.join(", ")
                ))
            }
        }
    }
    Ok(out)
}
