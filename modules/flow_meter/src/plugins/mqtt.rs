//! `mqtt` (`-p "mqtt[;tc=N]"`): MQTT control packets of a flow.
//!
//! Exports `MQTT_TYPE_CUMULATIVE` (OR of `1 << type` of every control
//! packet, bit 0 = CONNACK session present), `MQTT_VERSION`,
//! `MQTT_CONNECTION_FLAGS`, `MQTT_KEEP_ALIVE` (last CONNECT),
//! `MQTT_CONNECTION_RETURN_CODE` (last CONNACK), `MQTT_PUBLISH_FLAGS` (OR of
//! PUBLISH flags) and `MQTT_TOPICS` (the first `tc` PUBLISH topics, each
//! followed by `#`; option `tc`/`topiccount`, default 0).
//!
//! ipfixprobe's rules, kept here (quirks included, they decide the output):
//! * only a flow whose **first** packet looks like a CONNECT (after the
//!   fixed header, a length-prefixed `MQTT`) is followed; later packets of
//!   either direction are parsed into it before they are counted, several
//!   control packets per payload;
//! * the remaining length is read as ipfixprobe does: bytes shifted by 8
//!   with the continuation bit kept and each byte sign-extended, so any
//!   multi-byte length is huge and ends the payload's parse;
//! * CONNECT checks for `MQTT` at the start of the *payload*, then takes the
//!   version (only 4 and 5 pass), flags and keep-alive; a topic string must
//!   end before the payload does and must not contain `#`;
//! * a failed parse keeps what it changed: on the flow's extension, and, for
//!   a flow's first packet, in a spare record the plugin reuses for the next
//!   new flow (ipfixprobe's preallocated record);
//! * a DISCONNECT raises a flag of the plugin (not of the flow) that flushes
//!   whichever flow is updated next;
//! * bytes read past the payload are zero. Where ipfixprobe's position can
//!   wrap around and go backwards (it would loop), the parse fails here.

use super::passivedns::c_uint;
use super::{parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie};
use super::{ProcessPlugin, Verdict, PEN_CESNET};
use crate::parser::Packet;

/// The MQTT state of a flow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MqttExt {
    type_cumulative: u16,
    version: u8,
    connection_flags: u8,
    keep_alive: u16,
    session_present: bool,
    return_code: u8,
    publish_flags: u8,
    topics: Vec<u8>,
    topic_count: u32,
}

impl Extension for MqttExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        let t = &self.topics[..];
        let t = t.iter().position(|&b| b == 0).map_or(t, |z| &t[..z]);
        out.put(
            0,
            FieldValue::U16(self.type_cumulative | u16::from(self.session_present)),
        );
        out.put(1, FieldValue::U8(self.version));
        out.put(2, FieldValue::U8(self.connection_flags));
        out.put(3, FieldValue::U16(self.keep_alive));
        out.put(4, FieldValue::U8(self.return_code));
        out.put(5, FieldValue::U8(self.publish_flags));
        out.put(6, FieldValue::Str(t));
    }
}

const fn ie(id: u16) -> Option<Ie> {
    Some(Ie {
        pen: PEN_CESNET,
        id,
    })
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new("MQTT_TYPE_CUMULATIVE", ty::U16, ie(1033)),
    FieldDef::new("MQTT_VERSION", ty::U8, ie(1034)),
    FieldDef::new("MQTT_CONNECTION_FLAGS", ty::U8, ie(1035)),
    FieldDef::new("MQTT_KEEP_ALIVE", ty::U16, ie(1036)),
    FieldDef::new("MQTT_CONNECTION_RETURN_CODE", ty::U8, ie(1037)),
    FieldDef::new("MQTT_PUBLISH_FLAGS", ty::U8, ie(1038)),
    FieldDef::new("MQTT_TOPICS", ty::STRING, ie(1039)),
];

/// The `mqtt` plugin.
#[derive(Default)]
pub struct Mqtt {
    max_topics: u32,
    /// A DISCONNECT was seen: flush the next updated flow.
    flush_pending: bool,
    /// The spare record for the next new flow (see the module doc).
    spare: Option<MqttExt>,
}

/// Payload reader: zero past the end.
fn at(d: &[u8], i: u32) -> u8 {
    d.get(i as usize).copied().unwrap_or(0)
}

/// ipfixprobe's remaining-length read at `*pos`; None when it runs out
/// with the continuation bit still set.
fn read_var(d: &[u8], pos: &mut u32) -> Option<u32> {
    let len = d.len() as u32;
    let mut res: u32 = 0;
    let mut next = true;
    while next && *pos < len {
        let b = at(d, *pos);
        res = (res << 8) | (b as i8 as i32 as u32);
        next = b & 0x80 != 0;
        *pos += 1;
    }
    if *pos == len && next {
        None
    } else {
        Some(res)
    }
}

/// A 2-byte-length string at `*pos` that must end before the payload.
fn read_str<'a>(d: &'a [u8], pos: &mut u32) -> Option<&'a [u8]> {
    let len = d.len() as u64;
    if u64::from(*pos) + 2 >= len {
        return None;
    }
    let n = u16::from_be_bytes([at(d, *pos), at(d, *pos + 1)]);
    *pos += 2;
    if u64::from(*pos) + u64::from(n) >= len {
        return None;
    }
    d.get(*pos as usize..(*pos as usize + usize::from(n)))
}

/// The payload starts like a CONNECT: fixed header, then `MQTT`.
pub fn has_protocol_name(d: &[u8]) -> bool {
    if d.len() <= 1 {
        return false;
    }
    let mut pos = 1;
    read_var(d, &mut pos).is_some() && read_str(d, &mut pos) == Some(b"MQTT")
}

impl Mqtt {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        let mut p = Mqtt::default();
        for (k, v) in parse_options(opts, &[("tc", "topiccount")])? {
            if k == "topiccount" {
                p.max_topics = c_uint(v.as_bytes(), 0)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("invalid value `{v}` of option topiccount"))?;
            }
        }
        Ok(Box::new(p))
    }

    /// Parses every control packet of a payload into `rec`.
    pub fn parse(&mut self, d: &[u8], rec: &mut MqttExt) -> bool {
        if d.is_empty() || d.len() > u32::MAX as usize / 2 {
            return false;
        }
        let len = d.len() as u32;
        let mut pos: u32 = 0;
        while pos < len {
            let b = at(d, pos);
            pos += 1;
            let (kind, flags) = (b >> 4, b & 0x0f);
            rec.type_cumulative |= 1 << kind;
            let Some(remaining) = read_var(d, &mut pos) else {
                return false;
            };
            let after = pos.wrapping_add(remaining);
            if after > len {
                return false;
            }
            if after < pos {
                // ipfixprobe would go back and possibly loop forever.
                return false;
            }
            match kind {
                1 => {
                    if !has_protocol_name(d) {
                        return false;
                    }
                    pos += 6;
                    rec.version = at(d, pos);
                    pos += 1;
                    if rec.version != 4 && rec.version != 5 {
                        return false;
                    }
                    rec.connection_flags = at(d, pos);
                    pos += 1;
                    rec.keep_alive = u16::from_be_bytes([at(d, pos), at(d, pos + 1)]);
                }
                2 => {
                    rec.session_present = at(d, pos) & 1 != 0;
                    rec.return_code = at(d, pos + 1);
                }
                3 => {
                    rec.publish_flags |= flags;
                    let Some(topic) = read_str(d, &mut pos) else {
                        return false;
                    };
                    if topic.contains(&b'#') {
                        return false;
                    }
                    let n = rec.topic_count;
                    rec.topic_count = n.wrapping_add(1);
                    if n < self.max_topics {
                        rec.topics.extend_from_slice(topic);
                        rec.topics.push(b'#');
                    }
                }
                14 => self.flush_pending = true,
                _ => {}
            }
            pos = after;
        }
        true
    }
}

impl ProcessPlugin for Mqtt {
    fn name(&self) -> &'static str {
        "mqtt"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::PRE_UPDATE | Hooks::POST_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        let d = pkt.payload();
        if has_protocol_name(d) {
            let mut rec = self.spare.take().unwrap_or_default();
            if self.parse(d, &mut rec) {
                f.exts.add(rec);
            } else {
                self.spare = Some(rec);
            }
        }
        Verdict::CONTINUE
    }
    fn pre_update(&mut self, f: FlowCtx<'_>, pkt: &mut Packet) -> Verdict {
        if let Some(rec) = f.exts.get_mut::<MqttExt>() {
            self.parse(pkt.payload(), rec);
        }
        Verdict::CONTINUE
    }
    fn post_update(&mut self, _f: FlowCtx<'_>, _pkt: &Packet) -> Verdict {
        if std::mem::take(&mut self.flush_pending) {
            Verdict::FLUSH
        } else {
            Verdict::CONTINUE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONNECT: &[u8] = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04abcd";

    #[test]
    fn connect_publish_disconnect() {
        let mut p = Mqtt {
            max_topics: 1,
            ..Mqtt::default()
        };
        assert!(has_protocol_name(CONNECT));
        let mut r = MqttExt::default();
        assert!(p.parse(CONNECT, &mut r));
        assert_eq!((r.version, r.connection_flags, r.keep_alive), (4, 2, 60));
        assert!(p.parse(b"\x20\x02\x01\x00", &mut r));
        assert!(r.session_present);
        // Two PUBLISH in one payload (only one topic kept), then DISCONNECT.
        assert!(p.parse(b"\x31\x04\x00\x01ax\x30\x04\x00\x01bx\xe0\x00", &mut r));
        assert_eq!(r.topics, b"a#");
        assert_eq!(r.publish_flags, 1);
        assert_eq!(r.type_cumulative, 0x4000 | 0x8 | 0x4 | 0x2);
        assert!(p.flush_pending);
    }

    #[test]
    fn bad_input() {
        let mut p = Mqtt::default();
        let mut r = MqttExt::default();
        assert!(!p.parse(b"", &mut r));
        // A topic with a wildcard, a topic reaching the end, a long length.
        assert!(!p.parse(b"\x30\x05\x00\x01#x", &mut r));
        assert!(!p.parse(b"\x30\x03\x00\x01a", &mut r));
        assert!(!p.parse(b"\x30\x81\x01\x00", &mut r));
        for n in 0..CONNECT.len() {
            let _ = p.parse(&CONNECT[..n], &mut r);
            let _ = has_protocol_name(&CONNECT[..n]);
        }
        assert!(Mqtt::create("tc=5").is_ok());
        assert!(Mqtt::create("topiccount=x").is_err());
    }
}
