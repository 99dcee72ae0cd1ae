//! Which IPFIX element becomes which UniRec field, and how.
//!
//! The basic fields follow ipfixcol2's `unirec-elements.txt` (names,
//! types, the elements each takes: SRC_IP from sourceIPv4Address or
//! sourceIPv6Address, TIME_FIRST from any flowStart* element, the biflow
//! reverse counters of PEN 29305 …, DIR_BIT_FIELD = ingressInterface & 1,
//! LINK_BIT_FIELD = 1 << (ODID & 63)). Every other element comes from
//! flow_meter's plugin field registry, so what flow_meter exports under
//! ipfixprobe's element numbers arrives under ipfixprobe's UniRec names.

use flow_meter::plugins::PEN_REVERSE;
use std::collections::HashMap;
use unirec::{FieldType, Scalar};

/// How an element's bytes become a UniRec value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conv {
    /// Unsigned integer of 1–8 bytes, saturated to the field's width.
    Uint,
    /// Two's complement integer.
    Int,
    /// IEEE float of 4 or 8 bytes.
    Float,
    /// 4-byte IPv4 or 16-byte IPv6 address (`::ffff:a.b.c.d` becomes IPv4).
    Ip,
    Mac,
    /// dateTimeSeconds / Milliseconds / NTP micro- and nanoseconds.
    TimeSec,
    TimeMs,
    TimeNtp,
    /// NetFlow v9 FIRST/LAST_SWITCHED: exporter uptime in milliseconds.
    TimeUptime,
    /// Strings and bytes, copied.
    Var,
    /// RFC 6313 basicList of this element type.
    List(Scalar),
    /// ingressInterface → DIR_BIT_FIELD (its lowest bit).
    DirBit,
    /// Flags (tcpControlBits): extra high bits are dropped, not saturated,
    /// as ipfixcol2 does for elements of the flags semantic.
    Flags,
}

/// A UniRec field an element fills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub ty: FieldType,
    pub conv: Conv,
}

pub const LINK_BIT_FIELD: &str = "LINK_BIT_FIELD";
pub const DIR_BIT_FIELD: &str = "DIR_BIT_FIELD";
/// ipfixcol2's internal fields: the message's observation domain and the
/// exporter's address.
pub const ODID_FIELD: &str = "ODID";
pub const EXPORTER_IP_FIELD: &str = "EXPORTER_IP";

const U8: FieldType = FieldType::Scalar(Scalar::U8);
const U16: FieldType = FieldType::Scalar(Scalar::U16);
const U32: FieldType = FieldType::Scalar(Scalar::U32);
const U64: FieldType = FieldType::Scalar(Scalar::U64);
const IP: FieldType = FieldType::Scalar(Scalar::IpAddr);
const MAC: FieldType = FieldType::Scalar(Scalar::MacAddr);
const TIME: FieldType = FieldType::Scalar(Scalar::Time);

/// ipfixcol2's basic fields: (PEN, element, name, type, conversion).
const BASIC: &[(u32, u16, &str, FieldType, Conv)] = &[
    (0, 8, "SRC_IP", IP, Conv::Ip),
    (0, 27, "SRC_IP", IP, Conv::Ip),
    (0, 12, "DST_IP", IP, Conv::Ip),
    (0, 28, "DST_IP", IP, Conv::Ip),
    (0, 7, "SRC_PORT", U16, Conv::Uint),
    (0, 11, "DST_PORT", U16, Conv::Uint),
    // icmpTypeCodeIPv4: ipfixcol2 puts it in DST_PORT (when the template
    // has no destinationTransportPort, see `Collector`).
    (0, 32, "DST_PORT", U16, Conv::Uint),
    (0, 4, "PROTOCOL", U8, Conv::Uint),
    (0, 6, "TCP_FLAGS", U8, Conv::Flags),
    (0, 1, "BYTES", U64, Conv::Uint),
    (0, 2, "PACKETS", U32, Conv::Uint),
    (0, 192, "TTL", U8, Conv::Uint),
    (PEN_REVERSE, 192, "TTL_REV", U8, Conv::Uint),
    (0, 136, "FLOW_END_REASON", U8, Conv::Uint),
    (0, 5, "TOS", U8, Conv::Uint),
    (0, 150, "TIME_FIRST", TIME, Conv::TimeSec),
    (0, 152, "TIME_FIRST", TIME, Conv::TimeMs),
    (0, 154, "TIME_FIRST", TIME, Conv::TimeNtp),
    (0, 156, "TIME_FIRST", TIME, Conv::TimeNtp),
    (0, 151, "TIME_LAST", TIME, Conv::TimeSec),
    (0, 153, "TIME_LAST", TIME, Conv::TimeMs),
    (0, 155, "TIME_LAST", TIME, Conv::TimeNtp),
    (0, 157, "TIME_LAST", TIME, Conv::TimeNtp),
    (0, 10, DIR_BIT_FIELD, U8, Conv::DirBit),
    (0, 56, "SRC_MAC", MAC, Conv::Mac),
    (0, 80, "DST_MAC", MAC, Conv::Mac),
    (PEN_REVERSE, 1, "BYTES_REV", U64, Conv::Uint),
    (PEN_REVERSE, 2, "PACKETS_REV", U32, Conv::Uint),
    (PEN_REVERSE, 6, "TCP_FLAGS_REV", U8, Conv::Flags),
];

/// The element → field table.
pub struct Mapping {
    by_element: HashMap<(u32, u16), Target>,
    /// NetFlow v9's uptime-relative times (elements 21, 22).
    v9: HashMap<u16, Target>,
    by_name: HashMap<String, FieldType>,
}

fn conv_of(ty: FieldType) -> Conv {
    match ty {
        FieldType::Scalar(Scalar::IpAddr) => Conv::Ip,
        FieldType::Scalar(Scalar::MacAddr) => Conv::Mac,
        FieldType::Scalar(Scalar::Time) => Conv::TimeNtp,
        FieldType::Scalar(Scalar::Float | Scalar::Double) => Conv::Float,
        FieldType::Scalar(Scalar::I8 | Scalar::I16 | Scalar::I32 | Scalar::I64) => Conv::Int,
        FieldType::Scalar(_) => Conv::Uint,
        FieldType::String | FieldType::Bytes | FieldType::Array(Scalar::U8) => Conv::Var,
        FieldType::Array(s) => Conv::List(s),
    }
}

impl Mapping {
    /// The basic table plus every field of every flow_meter plugin.
    pub fn new() -> Mapping {
        let mut by_element = HashMap::new();
        let mut by_name = HashMap::new();
        for &(pen, id, name, ty, conv) in BASIC {
            by_element.insert(
                (pen, id),
                Target {
                    name: name.to_string(),
                    ty,
                    conv,
                },
            );
            by_name.insert(name.to_string(), ty);
        }
        by_name.insert(LINK_BIT_FIELD.to_string(), U64);
        by_name.insert(ODID_FIELD.to_string(), U32);
        by_name.insert(EXPORTER_IP_FIELD.to_string(), IP);
        for r in flow_meter::plugins::REGISTRY {
            for d in r.fields {
                let Some(ie) = d.ipfix else { continue };
                by_name.entry(d.name.to_string()).or_insert(d.ty);
                by_element.entry((ie.pen, ie.id)).or_insert(Target {
                    name: d.name.to_string(),
                    ty: d.ty,
                    conv: conv_of(d.ty),
                });
            }
        }
        let v9 = [(22u16, "TIME_FIRST"), (21, "TIME_LAST")]
            .into_iter()
            .map(|(id, n)| {
                (
                    id,
                    Target {
                        name: n.to_string(),
                        ty: TIME,
                        conv: Conv::TimeUptime,
                    },
                )
            })
            .collect();
        Mapping {
            by_element,
            v9,
            by_name,
        }
    }

    /// The field element `(pen, id)` fills; `v9` for NetFlow v9 templates.
    pub fn target(&self, pen: u32, id: u16, v9: bool) -> Option<&Target> {
        if v9 && pen == 0 {
            if let Some(t) = self.v9.get(&id) {
                return Some(t);
            }
        }
        self.by_element.get(&(pen, id))
    }

    /// Every field name with its type, sorted by name.
    pub fn fields(&self) -> Vec<(&str, FieldType)> {
        let mut v: Vec<(&str, FieldType)> =
            self.by_name.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// The type of a UniRec field by name (for `-F`).
    pub fn type_of(&self, name: &str) -> Option<FieldType> {
        self.by_name.get(name).copied()
    }
}

impl Default for Mapping {
    fn default() -> Mapping {
        Mapping::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_plugin_fields() {
        let m = Mapping::new();
        assert_eq!(
            m.target(0, 27, false).map(|t| t.name.as_str()),
            Some("SRC_IP")
        );
        assert_eq!(
            m.target(PEN_REVERSE, 2, false).map(|t| t.name.as_str()),
            Some("PACKETS_REV")
        );
        assert_eq!(
            m.target(0, 58, false).map(|t| t.name.as_str()),
            Some("VLAN_ID")
        );
        assert_eq!(
            m.target(0, 22, true).map(|t| t.conv),
            Some(Conv::TimeUptime)
        );
        assert_eq!(m.type_of("LINK_BIT_FIELD"), Some(U64));
        assert!(m.target(0, 60, false).is_none(), "ipVersion has no field");
    }
}
