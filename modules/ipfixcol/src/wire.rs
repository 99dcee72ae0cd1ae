//! Bounds-checked views of IPFIX (RFC 7011), NetFlow v9 (RFC 3954) and
//! NetFlow v5 messages: `new_checked` once, then accessors that cannot
//! panic. Nothing here allocates except template parsing.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error("message too short ({0} bytes)")]
    Short(usize),
    #[error("unknown version {0} (expected IPFIX 10, NetFlow 9 or 5)")]
    Version(u16),
    #[error("message length {claimed} does not match {got} bytes")]
    Length { claimed: usize, got: usize },
    #[error("set {id} of length {len} runs past the message")]
    SetLength { id: u16, len: usize },
    #[error("template {id}: {why}")]
    Template { id: u16, why: &'static str },
}

fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]),
        None => 0,
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// Which protocol a message speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Ipfix,
    V9,
    V5,
}

/// A message's header fields, common to the three versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: Version,
    /// Export time, seconds since 1970.
    pub export_time: u32,
    pub sequence: u32,
    /// IPFIX observation domain, v9 source id, v5 engine type/id.
    pub domain: u32,
    /// v9/v5: milliseconds since the exporter booted at export time.
    pub uptime_ms: u32,
    /// v5: number of records.
    pub count: u16,
    /// v5: the nanoseconds of the export time.
    pub export_nanos: u32,
}

/// A checked message: the header and its sets.
pub struct Message<'a> {
    pub header: Header,
    body: &'a [u8],
}

/// Length of an IPFIX message from its first 4 bytes (for TCP framing).
pub fn ipfix_length(head: &[u8]) -> Option<usize> {
    (head.len() >= 4 && be16(head, 0) == 10).then(|| usize::from(be16(head, 2)))
}

impl<'a> Message<'a> {
    pub fn new_checked(b: &'a [u8]) -> Result<Message<'a>, WireError> {
        if b.len() < 4 {
            return Err(WireError::Short(b.len()));
        }
        match be16(b, 0) {
            10 => {
                if b.len() < 16 {
                    return Err(WireError::Short(b.len()));
                }
                let len = usize::from(be16(b, 2));
                if len < 16 || len > b.len() {
                    return Err(WireError::Length {
                        claimed: len,
                        got: b.len(),
                    });
                }
                Ok(Message {
                    header: Header {
                        version: Version::Ipfix,
                        export_time: be32(b, 4),
                        sequence: be32(b, 8),
                        domain: be32(b, 12),
                        uptime_ms: 0,
                        count: 0,
                        export_nanos: 0,
                    },
                    body: &b[16..len],
                })
            }
            9 => {
                if b.len() < 20 {
                    return Err(WireError::Short(b.len()));
                }
                Ok(Message {
                    header: Header {
                        version: Version::V9,
                        count: be16(b, 2),
                        uptime_ms: be32(b, 4),
                        export_time: be32(b, 8),
                        sequence: be32(b, 12),
                        domain: be32(b, 16),
                        export_nanos: 0,
                    },
                    body: &b[20..],
                })
            }
            5 => {
                if b.len() < 24 {
                    return Err(WireError::Short(b.len()));
                }
                let count = be16(b, 2);
                let need = 24 + usize::from(count) * V5_RECORD;
                if need > b.len() {
                    return Err(WireError::Length {
                        claimed: need,
                        got: b.len(),
                    });
                }
                Ok(Message {
                    header: Header {
                        version: Version::V5,
                        count,
                        uptime_ms: be32(b, 4),
                        export_time: be32(b, 8),
                        sequence: be32(b, 16),
                        domain: u32::from(be16(b, 20)),
                        export_nanos: be32(b, 12),
                    },
                    body: &b[24..need],
                })
            }
            v => Err(WireError::Version(v)),
        }
    }

    /// The sets (v9: flowsets), each checked against the message; a bad
    /// set length ends the walk with an error item.
    pub fn sets(&self) -> Sets<'a> {
        Sets {
            rest: if self.header.version == Version::V5 {
                &[]
            } else {
                self.body
            },
        }
    }

    /// v5: the records, 48 bytes each.
    pub fn v5_records(&self) -> impl Iterator<Item = &'a [u8]> {
        let body = if self.header.version == Version::V5 {
            self.body
        } else {
            &[]
        };
        body.chunks_exact(V5_RECORD)
    }
}

pub const V5_RECORD: usize = 48;

/// One set: its id and body (after the 4-byte set header).
#[derive(Clone, Copy, Debug)]
pub struct Set<'a> {
    pub id: u16,
    pub body: &'a [u8],
}

pub struct Sets<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Sets<'a> {
    type Item = Result<Set<'a>, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        // Fewer than 4 bytes left: padding.
        if self.rest.len() < 4 {
            return None;
        }
        let id = be16(self.rest, 0);
        let len = usize::from(be16(self.rest, 2));
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(WireError::SetLength { id, len }));
        }
        let body = &self.rest[4..len];
        self.rest = &self.rest[len..];
        Some(Ok(Set { id, body }))
    }
}

/// A field specifier: element (enterprise number, id) and length
/// (`VARIABLE` = variable length).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    pub pen: u32,
    pub id: u16,
    pub len: u16,
}

pub const VARIABLE: u16 = u16::MAX;

/// A (options) template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub id: u16,
    pub fields: Vec<FieldSpec>,
    /// Scope fields of an options template (0 for a plain template).
    pub scope: u16,
    /// Record length when no field is variable.
    pub fixed_len: Option<usize>,
    /// Smallest record length.
    pub min_len: usize,
}

/// What a template set holds: definitions and withdrawals (ids with no
/// fields; 2 or 3 = withdraw all).
#[derive(Debug, PartialEq, Eq)]
pub enum TemplateItem {
    Define(Template),
    Withdraw(u16),
}

/// Limits that keep a hostile template from costing much.
pub const MAX_FIELDS: usize = 512;

/// Parses an IPFIX template set (set id 2) or options template set (3),
/// or a v9 template flowset (0) or options flowset (1).
pub fn parse_templates(
    version: Version,
    set: &Set<'_>,
    out: &mut Vec<Result<TemplateItem, WireError>>,
) {
    let b = set.body;
    let options = matches!((version, set.id), (Version::Ipfix, 3) | (Version::V9, 1));
    let mut at = 0;
    // A template record needs at least its 4-byte header.
    while at + 4 <= b.len() {
        let id = be16(b, at);
        let count = usize::from(be16(b, at + 2));
        at += 4;
        let mut scope = 0u16;
        let mut n_fields = count;
        if options {
            match version {
                Version::Ipfix => {
                    if count == 0 {
                        out.push(Ok(TemplateItem::Withdraw(id)));
                        continue;
                    }
                    scope = be16(b, at);
                    at += 2;
                    if scope == 0 || usize::from(scope) > count {
                        out.push(Err(WireError::Template {
                            id,
                            why: "bad scope field count",
                        }));
                        return;
                    }
                }
                _ => {
                    // v9: scope length and option length in bytes.
                    let scope_len = count;
                    let opt_len = usize::from(be16(b, at));
                    at += 2;
                    scope = (scope_len / 4) as u16;
                    n_fields = (scope_len + opt_len) / 4;
                }
            }
        }
        if !options && count == 0 {
            out.push(Ok(TemplateItem::Withdraw(id)));
            continue;
        }
        if id < 256 {
            out.push(Err(WireError::Template {
                id,
                why: "template id below 256",
            }));
            return;
        }
        if n_fields > MAX_FIELDS {
            out.push(Err(WireError::Template {
                id,
                why: "too many fields",
            }));
            return;
        }
        let mut fields = Vec::with_capacity(n_fields);
        let mut fixed = Some(0usize);
        let mut min_len = 0usize;
        for _ in 0..n_fields {
            if at + 4 > b.len() {
                out.push(Err(WireError::Template {
                    id,
                    why: "field specifiers run past the set",
                }));
                return;
            }
            let raw = be16(b, at);
            let len = be16(b, at + 2);
            at += 4;
            let (pen, eid) = if version == Version::Ipfix && raw & 0x8000 != 0 {
                if at + 4 > b.len() {
                    out.push(Err(WireError::Template {
                        id,
                        why: "enterprise number runs past the set",
                    }));
                    return;
                }
                let pen = be32(b, at);
                at += 4;
                (pen, raw & 0x7fff)
            } else {
                (0, raw)
            };
            if len == 0 {
                out.push(Err(WireError::Template {
                    id,
                    why: "zero-length field",
                }));
                return;
            }
            if len == VARIABLE && version == Version::Ipfix {
                fixed = None;
                min_len += 1;
            } else {
                let len = if len == VARIABLE { 0 } else { usize::from(len) };
                fixed = fixed.map(|f| f + len);
                min_len += len;
            }
            fields.push(FieldSpec { pen, id: eid, len });
        }
        if min_len == 0 {
            out.push(Err(WireError::Template {
                id,
                why: "records of zero length",
            }));
            return;
        }
        out.push(Ok(TemplateItem::Define(Template {
            id,
            fields,
            scope,
            fixed_len: fixed,
            min_len,
        })));
        // v9 options template flowsets may carry padding after a record.
        if version == Version::V9 && options {
            break;
        }
    }
}

/// Splits one data record off `b` by template `t`: the fields' values in
/// template order, into `out`; returns the bytes consumed, or None when
/// the record does not fit (padding at the end of a set, or corruption).
pub fn split_record<'a>(t: &Template, b: &'a [u8], out: &mut Vec<&'a [u8]>) -> Option<usize> {
    out.clear();
    if b.len() < t.min_len {
        return None;
    }
    let mut at = 0usize;
    for f in &t.fields {
        let len = if f.len == VARIABLE {
            let first = *b.get(at)?;
            at += 1;
            if first == 255 {
                let l = usize::from(be16(b, at));
                if at + 2 > b.len() {
                    return None;
                }
                at += 2;
                l
            } else {
                usize::from(first)
            }
        } else {
            usize::from(f.len)
        };
        let v = b.get(at..at.checked_add(len)?)?;
        out.push(v);
        at += len;
    }
    Some(at)
}

/// An RFC 6313 basicList: the element inside and the values.
pub struct BasicList<'a> {
    pub pen: u32,
    pub id: u16,
    pub elem_len: u16,
    pub data: &'a [u8],
}

impl<'a> BasicList<'a> {
    pub fn new_checked(b: &'a [u8]) -> Option<BasicList<'a>> {
        let raw = be16(b, 1);
        let elem_len = be16(b, 3);
        if b.len() < 5 || elem_len == 0 || elem_len == VARIABLE {
            return None;
        }
        let (pen, head) = if raw & 0x8000 != 0 {
            (be32(b, 5), 9)
        } else {
            (0, 5)
        };
        let data = b.get(head..)?;
        if data.len() % usize::from(elem_len) != 0 {
            return None;
        }
        Some(BasicList {
            pen,
            id: raw & 0x7fff,
            elem_len,
            data,
        })
    }

    pub fn values(&self) -> impl Iterator<Item = &'a [u8]> {
        self.data.chunks_exact(usize::from(self.elem_len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipfix(body: &[u8]) -> Vec<u8> {
        let mut m = vec![0, 10, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 7];
        m.extend_from_slice(body);
        let l = m.len() as u16;
        m[2..4].copy_from_slice(&l.to_be_bytes());
        m
    }

    #[test]
    fn templates_and_records() {
        // Template 256: sourceIPv4Address(4), a CESNET string (variable).
        let set = [
            0, 2, 0, 20, 1, 0, 0, 2, 0, 8, 0, 4, 0x80, 2, 0xff, 0xff, 0, 0, 0x1f, 0x79,
        ];
        let m = ipfix(&set);
        let msg = Message::new_checked(&m).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(msg.header.sequence, 5);
        assert_eq!(msg.header.domain, 7);
        let sets: Vec<_> = msg.sets().collect();
        assert_eq!(sets.len(), 1);
        let s = sets[0].clone().unwrap_or_else(|e| panic!("{e}"));
        let mut items = Vec::new();
        parse_templates(Version::Ipfix, &s, &mut items);
        let Some(Ok(TemplateItem::Define(t))) = items.pop() else {
            panic!("no template")
        };
        assert_eq!(
            t.fields[1],
            FieldSpec {
                pen: 8057,
                id: 2,
                len: VARIABLE
            }
        );
        assert_eq!(t.fixed_len, None);
        let rec = [198, 51, 100, 1, 3, b'a', b'b', b'c', 0];
        let mut vals = Vec::new();
        assert_eq!(split_record(&t, &rec, &mut vals), Some(8));
        assert_eq!(vals, vec![&rec[..4], &rec[5..8]]);
        // The trailing byte is padding: too short for a record.
        assert_eq!(split_record(&t, &rec[8..], &mut vals), None);
        // A long variable field claiming more than there is.
        assert_eq!(
            split_record(&t, &[1, 2, 3, 4, 255, 1, 0, 7], &mut vals),
            None
        );
    }

    #[test]
    fn bad_messages_are_errors() {
        assert!(Message::new_checked(&[0, 10, 0]).is_err());
        assert!(Message::new_checked(&[0, 11, 0, 16]).is_err());
        let mut m = ipfix(&[]);
        m[3] = 200;
        assert!(Message::new_checked(&m).is_err());
        let m = ipfix(&[1, 0, 0, 40, 1, 2]);
        let msg = Message::new_checked(&m).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            msg.sets().next(),
            Some(Err(WireError::SetLength { .. }))
        ));
        // Zero-length field and ids below 256.
        for body in [
            [0u8, 2, 0, 12, 1, 0, 0, 1, 0, 8, 0, 0],
            [0, 2, 0, 12, 0, 9, 0, 1, 0, 8, 0, 4],
        ] {
            let m = ipfix(&body);
            let msg = Message::new_checked(&m).unwrap_or_else(|e| panic!("{e}"));
            let s = msg.sets().next().and_then(Result::ok);
            let mut items = Vec::new();
            if let Some(s) = s {
                parse_templates(Version::Ipfix, &s, &mut items);
            }
            assert!(matches!(items.last(), Some(Err(_))), "{items:?}");
        }
    }

    #[test]
    fn lists() {
        let l = [3, 0x83, 0xf5, 0, 2, 0, 0, 0x1f, 0x79, 0, 1, 0, 2];
        let bl = BasicList::new_checked(&l).unwrap_or_else(|| panic!("list"));
        assert_eq!((bl.pen, bl.id, bl.elem_len), (8057, 1013, 2));
        assert_eq!(bl.values().count(), 2);
        assert!(BasicList::new_checked(&[3, 0, 1, 0, 2, 9]).is_none());
    }
}
