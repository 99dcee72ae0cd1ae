//! merger: several UniRec inputs, one output.
//!
//! NEMEA's merger (Nemea-Modules `merger/`) has two ways to choose the output
//! template:
//!
//! - **static** (`-u SPEC`): the output template is the one given; every
//!   input may send any template, and only the fields the output has are
//!   copied (by name and type);
//! - **dynamic** (no `-u`): the output template is the union of the inputs'
//!   templates. The merger first takes one message from every input, in
//!   interface order, so that the union is known before anything is sent;
//!   a later format change on any input that brings new fields grows the
//!   union (downstream sees a format change).
//!
//! A record is copied field by field onto a zeroed record of the output
//! template: a field its input lacks stays zero (`::` for addresses, empty
//! for strings and arrays). Records of the inputs interleave in whatever
//! order they arrive. The module ends when every input has sent end of
//! stream (with `-I` an input keeps waiting for the next sender instead),
//! then sends one end of stream unless `-n`.
//!
//! This library holds the parts without I/O: the union of templates
//! ([`union`]) and the copy of a record onto another template
//! ([`Projection`]). Differences from C: a field that two inputs define with
//! different types is an error naming both (C's UniRec refuses the second
//! template and its input thread stops silently); with `-I`, an end of stream
//! is dropped rather than sent on as a one-byte record.

use unirec::record::{RecordError, RecordRef, MAX_RECORD_SIZE};
use unirec::template::{Template, TemplateError};
use unirec::types::FieldType;

/// Why two templates cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("field `{name}` is `{first}` in one input and `{second}` in another: the merged template cannot hold both (rename one, or give -u)")]
    Conflict {
        name: String,
        first: FieldType,
        second: FieldType,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// The union of `current` and `incoming`: `Ok(None)` when `incoming` brings
/// no field that `current` lacks (nothing changes), else the grown template.
pub fn union(
    current: Option<&Template>,
    incoming: &Template,
) -> Result<Option<Template>, MergeError> {
    let Some(cur) = current else {
        return Ok(Some(incoming.clone()));
    };
    let mut grows = false;
    for f in incoming.fields() {
        match cur.find(f.name()) {
            Some(i) => {
                let have = cur.fields()[i].ty();
                if have != f.ty() {
                    return Err(MergeError::Conflict {
                        name: f.name().to_string(),
                        first: have,
                        second: f.ty(),
                    });
                }
            }
            None => grows = true,
        }
    }
    if !grows {
        return Ok(None);
    }
    let all = cur
        .fields()
        .iter()
        .chain(incoming.fields())
        .map(|f| (f.name(), f.ty()));
    Ok(Some(Template::from_fields(all)?))
}

/// One run of fixed bytes copied from the input record to the output record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    from: usize,
    to: usize,
    len: usize,
}

/// Copies records of one template onto another, field by field by name and
/// type; fields of the output the input lacks are zero or empty. Built once
/// per (input template, output template) pair, it allocates nothing per
/// record.
#[derive(Debug, Clone)]
pub struct Projection {
    /// Same template on both sides: records pass unchanged (after the check).
    identity: bool,
    runs: Vec<Run>,
    /// Per variable field of the output, in record order: its entry's
    /// offset in the output and the input field it comes from.
    vars: Vec<(usize, Option<usize>)>,
    out_fixed: usize,
    in_has_vars: bool,
    in_fixed: usize,
}

impl Projection {
    pub fn new(input: &Template, output: &Template) -> Projection {
        let identity = input.spec() == output.spec();
        let mut runs: Vec<Run> = Vec::new();
        let mut vars = Vec::new();
        for of in output.fields() {
            let from = input.find_typed(of.name(), of.ty());
            match of.ty() {
                FieldType::Scalar(s) => {
                    let Some(i) = from else { continue };
                    let r = Run {
                        from: input.fields()[i].offset(),
                        to: of.offset(),
                        len: s.size(),
                    };
                    // Neighbours on both sides become one copy.
                    match runs.last_mut() {
                        Some(last)
                            if last.from + last.len == r.from && last.to + last.len == r.to =>
                        {
                            last.len += r.len
                        }
                        _ => runs.push(r),
                    }
                }
                _ => vars.push((of.offset(), from)),
            }
        }
        Projection {
            identity,
            runs,
            vars,
            out_fixed: output.fixed_size(),
            in_has_vars: input.variable_count() > 0,
            in_fixed: input.fixed_size(),
        }
    }

    /// True when records pass unchanged.
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// Writes the record `data` of `input` (the template this projection was
    /// built from) as a record of the output template into `out` (cleared
    /// first). A record that does not fit its template is an error.
    pub fn project(
        &self,
        input: &Template,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        out.clear();
        if self.in_has_vars {
            let rec = RecordRef::new_checked(input, data)?;
            if self.identity {
                out.extend_from_slice(data);
                return Ok(());
            }
            self.fixed_part(data, out);
            let mut offset = 0usize;
            for &(entry, from) in &self.vars {
                let bytes = from.and_then(|i| rec.raw(i)).unwrap_or(&[]);
                write_entry(out, entry, offset, bytes.len());
                offset += bytes.len();
                out.extend_from_slice(bytes);
            }
        } else {
            if data.len() < self.in_fixed {
                return Err(RecordError::TooShort {
                    len: data.len(),
                    fixed: self.in_fixed,
                });
            }
            if self.identity {
                out.extend_from_slice(data);
                return Ok(());
            }
            self.fixed_part(data, out);
            // Output variable fields exist but the input has none: all empty
            // (their entries are already zero: offset 0, length 0).
        }
        if out.len() > MAX_RECORD_SIZE {
            return Err(RecordError::TooLarge(out.len()));
        }
        Ok(())
    }

    fn fixed_part(&self, data: &[u8], out: &mut Vec<u8>) {
        out.resize(self.out_fixed, 0);
        for r in &self.runs {
            // In bounds: `data` holds at least the input's fixed part and
            // `out` exactly the output's, where these runs lie.
            if let (Some(src), Some(dst)) = (
                data.get(r.from..r.from + r.len),
                out.get_mut(r.to..r.to + r.len),
            ) {
                dst.copy_from_slice(src);
            }
        }
    }
}

/// Writes a variable field's (offset, length) entry. Both fit in u16 once
/// the record is within [`MAX_RECORD_SIZE`], checked by the caller at the end.
fn write_entry(out: &mut [u8], at: usize, offset: usize, len: usize) {
    if let Some(e) = out.get_mut(at..at + 4) {
        e[..2].copy_from_slice(&(offset as u16).to_le_bytes());
        e[2..].copy_from_slice(&(len as u16).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unirec::addr::UrIp;
    use unirec::record::RecordBuilder;
    use unirec::text::write_record;

    fn t(spec: &str) -> Template {
        Template::parse(spec).unwrap()
    }

    fn text(tmpl: &Template, rec: &[u8]) -> String {
        let mut out = Vec::new();
        write_record(&RecordRef::new_checked(tmpl, rec).unwrap(), b',', &mut out);
        String::from_utf8(out).unwrap().trim_end().to_string()
    }

    #[test]
    fn union_grows_only_with_new_fields() {
        let a = t("ipaddr SRC_IP,uint16 SRC_PORT");
        let b = t("uint16 SRC_PORT,uint64 BYTES,string URL");
        assert_eq!(union(None, &a).unwrap(), Some(a.clone()));
        let u = union(Some(&a), &b).unwrap().unwrap();
        assert_eq!(
            u.spec(),
            "ipaddr SRC_IP,uint64 BYTES,uint16 SRC_PORT,string URL"
        );
        assert_eq!(union(Some(&u), &a).unwrap(), None);
        assert_eq!(union(Some(&u), &b).unwrap(), None);
    }

    #[test]
    fn union_refuses_a_field_with_two_types() {
        let a = t("uint16 PORT");
        let b = t("uint32 PORT");
        let e = union(Some(&a), &b).unwrap_err();
        assert!(
            e.to_string()
                .contains("`PORT` is `uint16` in one input and `uint32`"),
            "{e}"
        );
    }

    fn sample(tmpl: &Template) -> Vec<u8> {
        let mut b = RecordBuilder::new(tmpl);
        for (i, f) in tmpl.fields().iter().enumerate() {
            let v = match f.name() {
                "SRC_IP" => "10.0.0.1",
                "DST_IP" => "2001:db8::1",
                "SRC_PORT" => "1234",
                "DST_PORT" => "80",
                "BYTES" => "1000",
                "URL" => "/index.html",
                "PORTS" => "1 2 3",
                _ => continue,
            };
            b.set_from_text(i, v).unwrap();
        }
        let mut out = Vec::new();
        b.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn projects_by_name_and_zeroes_the_rest() {
        let input = t("ipaddr SRC_IP,uint16 SRC_PORT,uint16 DST_PORT,string URL");
        let output = t("ipaddr SRC_IP,ipaddr DST_IP,uint64 BYTES,uint16 DST_PORT,uint16 SRC_PORT,string URL,uint16* PORTS");
        let p = Projection::new(&input, &output);
        assert!(!p.is_identity());
        let mut out = Vec::new();
        p.project(&input, &sample(&input), &mut out).unwrap();
        assert_eq!(
            text(&output, &out),
            "::,10.0.0.1,0,80,1234,\"/index.html\",[]"
        );
    }

    #[test]
    fn projects_onto_fewer_fields() {
        let input = t("ipaddr SRC_IP,ipaddr DST_IP,uint64 BYTES,string URL,uint16* PORTS");
        let output = t("uint64 BYTES,uint16* PORTS,string URL");
        let p = Projection::new(&input, &output);
        let mut out = Vec::new();
        p.project(&input, &sample(&input), &mut out).unwrap();
        assert_eq!(text(&output, &out), "1000,\"/index.html\",[1|2|3]");
    }

    #[test]
    fn a_field_of_another_type_is_not_copied() {
        let input = t("uint32 BYTES");
        let output = t("uint64 BYTES");
        let mut b = RecordBuilder::new(&input);
        b.set_u32(0, 7).unwrap();
        let mut rec = Vec::new();
        b.finish(&mut rec).unwrap();
        let mut out = Vec::new();
        Projection::new(&input, &output)
            .project(&input, &rec, &mut out)
            .unwrap();
        assert_eq!(text(&output, &out), "0");
    }

    #[test]
    fn identity_copies_and_still_checks() {
        let tm = t("ipaddr SRC_IP,string URL");
        let p = Projection::new(&tm, &tm);
        assert!(p.is_identity());
        let rec = sample(&tm);
        let mut out = Vec::new();
        p.project(&tm, &rec, &mut out).unwrap();
        assert_eq!(out, rec);
        // A variable entry pointing outside the record is refused.
        let mut bad = rec.clone();
        bad[18] = 0xff;
        assert!(p.project(&tm, &bad, &mut out).is_err());
        // Shorter than the fixed part.
        let fixed = t("ipaddr SRC_IP,uint16 SRC_PORT");
        let p = Projection::new(&fixed, &fixed);
        assert!(p.project(&fixed, &[0; 10], &mut out).is_err());
    }

    #[test]
    fn neighbouring_fields_copy_as_one_run() {
        let tm = t("ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT");
        let out = t("ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,string X");
        let p = Projection::new(&tm, &out);
        assert_eq!(p.runs.len(), 1);
        assert_eq!(p.runs[0].len, 36);
        let mut b = RecordBuilder::new(&tm);
        b.set_ip(0, UrIp::parse("10.0.0.1").unwrap()).unwrap();
        b.set_u16(3, 53).unwrap();
        let mut rec = Vec::new();
        b.finish(&mut rec).unwrap();
        let mut o = Vec::new();
        p.project(&tm, &rec, &mut o).unwrap();
        assert_eq!(text(&out, &o), "10.0.0.1,::,0,53,\"\"");
    }
}
