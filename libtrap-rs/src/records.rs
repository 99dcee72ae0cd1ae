//! An input read record by record, for modules that read a few fields of
//! whatever UniRec template their sender has: at each format change the
//! template is parsed and bound once (the module's `bind` turns it into the
//! field offsets it needs, or refuses it), and every record is checked
//! against the template before the module sees it.

use crate::{DataFormat, Input, TrapError};
use unirec::{RecordRef, Template};

/// What [`Records::next`] found.
pub enum Next<'a, L> {
    /// A record of the sender's template, checked, with the module's binding.
    Record {
        rec: RecordRef<'a>,
        layout: &'a L,
        /// The first record of a new sender template.
        new_template: bool,
    },
    /// Nothing within the input's timeout.
    Timeout,
    /// A record that did not fit its template, logged and skipped (only
    /// from [`Records::skipping_bad_records`]).
    Skipped,
    /// End of stream, or SIGINT/SIGTERM.
    End,
}

/// The sender's current template and the module's binding of it.
pub struct Records<L> {
    current: Option<(Template, L)>,
    skip_bad: bool,
    /// The input's name, for messages (taken at the first call).
    name: String,
}

impl<L> Default for Records<L> {
    fn default() -> Self {
        Records {
            current: None,
            skip_bad: false,
            name: String::new(),
        }
    }
}

impl<L> Records<L> {
    /// A bad record is an error (the stream is not what its sender says).
    pub fn new() -> Records<L> {
        Records::default()
    }

    /// A bad record is logged and skipped (a detector keeps detecting).
    pub fn skipping_bad_records() -> Records<L> {
        Records {
            skip_bad: true,
            ..Records::default()
        }
    }

    /// Receives the next message of `input`. A sender that is not UniRec, a
    /// template `bind` refuses (its message says which field is missing) and
    /// a record that does not fit its template are errors naming the input.
    pub fn next<'a, E: std::fmt::Display>(
        &'a mut self,
        input: &'a mut Input,
        bind: impl FnOnce(&Template) -> Result<L, E>,
    ) -> Result<Next<'a, L>, TrapError> {
        if self.name.is_empty() {
            self.name = input.name().to_string();
        }
        let name = &self.name;
        let msg = match input.recv() {
            Ok(m) => m,
            Err(TrapError::Timeout) => return Ok(Next::Timeout),
            Err(TrapError::Terminated) => return Ok(Next::End),
            Err(e) => return Err(e),
        };
        if msg.is_eos() {
            return Ok(Next::End);
        }
        let new_template = msg.format_changed || self.current.is_none();
        if new_template {
            let mismatch = |detail: String| TrapError::FormatMismatch {
                ifc: name.clone(),
                detail,
            };
            let Some(DataFormat::UniRec(spec)) = msg.format else {
                return Err(mismatch("the sender's data are not UniRec".into()));
            };
            let t = Template::parse(spec)
                .map_err(|e| mismatch(format!("bad template from the sender: {e}")))?;
            let layout = bind(&t).map_err(|e| mismatch(e.to_string()))?;
            self.current = Some((t, layout));
        }
        let Some((t, layout)) = &self.current else {
            return Ok(Next::Timeout);
        };
        match RecordRef::new_checked(t, msg.data) {
            Ok(rec) => Ok(Next::Record {
                rec,
                layout,
                new_template,
            }),
            Err(e) if self.skip_bad => {
                crate::log::warn(&format!("{name}: malformed record skipped: {e}"));
                Ok(Next::Skipped)
            }
            Err(e) => Err(TrapError::Corrupt {
                ifc: name.clone(),
                detail: format!("bad record: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unirec::RecordBuilder;

    /// The bytes of one `u:` connection: hello, the records and EOS in one
    /// container.
    fn stream(spec: &str, records: &[Vec<u8>]) -> Input {
        let mut bytes = DataFormat::UniRec(spec.to_string()).hello();
        let msgs: Vec<&[u8]> = records
            .iter()
            .map(Vec::as_slice)
            .chain([&[0u8][..]])
            .collect();
        let payload: usize = msgs.iter().map(|m| 2 + m.len()).sum();
        bytes.extend((payload as u32).to_be_bytes());
        bytes.extend(0u64.to_le_bytes());
        bytes.extend((msgs.len() as u16).to_le_bytes());
        for m in msgs {
            bytes.extend((m.len() as u16).to_be_bytes());
            bytes.extend_from_slice(m);
        }
        Input::from_stream_reader("u:test", Box::new(std::io::Cursor::new(bytes)))
    }

    fn packets_offset(t: &Template) -> Result<usize, String> {
        t.find("PACKETS")
            .and_then(|i| t.field(i))
            .map(|f| f.offset())
            .ok_or_else(|| "the input has no `uint32 PACKETS`".to_string())
    }

    #[test]
    fn binds_once_and_reads_each_record() {
        let t = Template::parse("uint64 BYTES,uint32 PACKETS").unwrap();
        let recs: Vec<Vec<u8>> = (1..=3u32)
            .map(|p| {
                let mut b = RecordBuilder::new(&t);
                b.set_u32(t.find("PACKETS").unwrap(), p).unwrap();
                let mut v = Vec::new();
                b.finish(&mut v).unwrap();
                v
            })
            .collect();
        let mut input = stream(t.spec(), &recs);
        let mut records = Records::new();
        let mut seen = Vec::new();
        let mut binds = 0;
        loop {
            let next = records.next(&mut input, |t| {
                binds += 1;
                packets_offset(t)
            });
            match next.unwrap() {
                Next::Record { rec, layout, .. } => {
                    seen.push(u32::from_le_bytes(rec.fixed(*layout)));
                }
                Next::Timeout | Next::Skipped => continue,
                Next::End => break,
            }
        }
        assert_eq!(seen, [1, 2, 3]);
        assert_eq!(binds, 1);
    }

    #[test]
    fn a_template_without_the_fields_is_an_error_naming_them() {
        let t = Template::parse("uint64 BYTES").unwrap();
        let mut b = RecordBuilder::new(&t);
        let mut v = Vec::new();
        b.finish(&mut v).unwrap();
        let mut input = stream(t.spec(), &[v]);
        let mut records = Records::new();
        let err = match records.next(&mut input, packets_offset) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("bound a template without PACKETS"),
        };
        assert!(
            err.contains("u:test") && err.contains("uint32 PACKETS"),
            "{err}"
        );
    }

    #[test]
    fn a_record_shorter_than_its_template_is_an_error() {
        let t = Template::parse("uint64 BYTES,uint32 PACKETS").unwrap();
        let mut input = stream(t.spec(), &[vec![1, 2, 3]]);
        let mut records = Records::new();
        let err = match records.next(&mut input, packets_offset) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted a 3-byte record"),
        };
        assert!(err.contains("bad record"), "{err}");
        let mut input = stream(t.spec(), &[vec![1, 2, 3]]);
        let mut records = Records::skipping_bad_records();
        assert!(matches!(
            records.next(&mut input, packets_offset),
            Ok(Next::Skipped)
        ));
        assert!(matches!(
            records.next(&mut input, packets_offset),
            Ok(Next::End)
        ));
    }
}
