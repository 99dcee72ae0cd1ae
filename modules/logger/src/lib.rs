//! logger: prints UniRec records as CSV lines, exactly as NEMEA's logger;
//! `-o` chooses and orders the fields (NEMEA's logger accepts `-o` and
//! ignores it), `--json` prints JSON objects instead ([`json`], shared with
//! the `unirec2json` module).

pub mod columns;
pub mod json;

use columns::{Columns, Selection};
use unirec::text::write_value;
use unirec::{RecordRef, Template, UrTime};

/// Parses `-d`: one character, or `\t \n \r \f \v` spelled with a backslash.
pub fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s.as_bytes() {
        [c] => Ok(*c),
        [b'\\', c] => match c {
            b't' => Ok(b'\t'),
            b'n' => Ok(b'\n'),
            b'r' => Ok(b'\r'),
            b'f' => Ok(0x0c),
            b'v' => Ok(0x0b),
            _ => Err(format!("unknown escape `{s}` (\\t \\n \\r \\f \\v)")),
        },
        _ => Err(format!("delimiter `{s}` is not one character")),
    }
}

/// How lines are printed.
#[derive(Clone, Debug)]
pub struct Options {
    pub delimiter: u8,
    /// `-t`: a header line after the first negotiation.
    pub title: bool,
    /// `-T`: prefix lines with the receive time (UTC, whole seconds).
    pub timestamps: bool,
    /// `-o`: these fields in this order (default: all, in UniRec order).
    pub select: Option<Selection>,
    /// `--json`: one JSON object per line instead of CSV.
    pub json: bool,
}

/// What the printer made of a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Printed,
    EndOfStream,
}

/// Turns messages into text; holds the current template.
pub struct Printer {
    opts: Options,
    template: Option<Template>,
    columns: Option<Columns>,
    header_done: bool,
}

impl Printer {
    pub fn new(opts: Options) -> Printer {
        Printer {
            opts,
            template: None,
            columns: None,
            header_done: false,
        }
    }

    /// Adopts the sender's template (on a format change); prints the header
    /// the first time when asked to. Returns warnings about `-o` fields.
    pub fn set_template(
        &mut self,
        spec: &str,
        out: &mut Vec<u8>,
    ) -> Result<Vec<String>, unirec::TemplateError> {
        let t = Template::parse(spec)?;
        let mut warnings = Vec::new();
        let cols = match &self.opts.select {
            Some(sel) => Columns::select(&t, sel, &mut warnings),
            None => Columns::all(&t),
        };
        if self.opts.title && !self.opts.json && !self.header_done {
            if self.opts.timestamps {
                out.extend_from_slice(b"time,");
            }
            out.extend_from_slice(cols.header(self.opts.delimiter).as_bytes());
            out.push(b'\n');
            self.header_done = true;
        }
        self.template = Some(t);
        self.columns = Some(cols);
        Ok(warnings)
    }

    /// Prints one record (or recognises the end of stream). `now` is the
    /// receive time used by `-T`.
    pub fn record(&self, data: &[u8], now_secs: u32, out: &mut Vec<u8>) -> Result<Step, String> {
        if data.len() <= 1 {
            return Ok(Step::EndOfStream);
        }
        let (Some(t), Some(cols)) = (&self.template, &self.columns) else {
            return Err("a record arrived before its data format".into());
        };
        let rec = RecordRef::new_checked(t, data).map_err(|e| e.to_string())?;
        if self.opts.json {
            json::write_record(&rec, cols, out);
            out.push(b'\n');
            return Ok(Step::Printed);
        }
        if self.opts.timestamps {
            let mut ts = Vec::with_capacity(26);
            UrTime::from_secs_nanos(now_secs, 0).write_text(&mut ts);
            out.extend_from_slice(&ts[..19]);
            out.push(b',');
        }
        for (k, (_, idx)) in cols.iter().enumerate() {
            if k > 0 {
                out.push(self.opts.delimiter);
            }
            if let Some(v) = idx.and_then(|i| rec.value(i)) {
                write_value(&v, out);
            }
        }
        out.push(b'\n');
        Ok(Step::Printed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unirec::RecordBuilder;

    #[test]
    fn delimiters() {
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert_eq!(parse_delimiter("\\t"), Ok(b'\t'));
        assert!(parse_delimiter("ab").is_err());
        assert!(parse_delimiter("\\x").is_err());
    }

    #[test]
    fn header_once_and_time_prefix() {
        let mut p = Printer::new(Options {
            delimiter: b';',
            title: true,
            timestamps: true,
            select: None,
            json: false,
        });
        let mut out = Vec::new();
        p.set_template("uint16 B,uint32 A", &mut out).unwrap();
        p.set_template("uint16 B,uint32 A,uint8 C", &mut out)
            .unwrap();
        let t = Template::parse("uint16 B,uint32 A,uint8 C").unwrap();
        let mut b = RecordBuilder::new(&t);
        b.set_u32(0, 7).unwrap();
        b.set_u16(1, 8).unwrap();
        b.set_u8(2, 9).unwrap();
        let mut rec = Vec::new();
        b.finish(&mut rec).unwrap();
        assert_eq!(p.record(&rec, 1_577_836_801, &mut out), Ok(Step::Printed));
        assert_eq!(p.record(&[0], 0, &mut out), Ok(Step::EndOfStream));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "time,uint32 A;uint16 B\n2020-01-01T00:00:01,7;8;9\n"
        );
    }

    fn record(spec: &str, fill: impl FnOnce(&Template, &mut RecordBuilder)) -> Vec<u8> {
        let t = Template::parse(spec).unwrap();
        let mut b = RecordBuilder::new(&t);
        fill(&t, &mut b);
        let mut rec = Vec::new();
        b.finish(&mut rec).unwrap();
        rec
    }

    #[test]
    fn chosen_fields_in_the_given_order() {
        let spec = "uint16 B,uint32 A,string S";
        let rec = record(spec, |t, b| {
            b.set_u16(t.find("B").unwrap(), 8).unwrap();
            b.set_u32(t.find("A").unwrap(), 7).unwrap();
            b.set_var(t.find("S").unwrap(), b"x\"y").unwrap();
        });
        let mut p = Printer::new(Options {
            delimiter: b';',
            title: true,
            timestamps: false,
            select: Some(Selection::parse("S,B,NOPE").unwrap()),
            json: false,
        });
        let mut out = Vec::new();
        let w = p.set_template(spec, &mut out).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        p.record(&rec, 0, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "string S;uint16 B;NOPE\n\"x\"\"y\";8;\n"
        );
    }

    #[test]
    fn json_lines() {
        let spec = "uint16 B,uint32 A,string S";
        let rec = record(spec, |t, b| {
            b.set_u16(t.find("B").unwrap(), 8).unwrap();
            b.set_var(t.find("S").unwrap(), b"x\"y").unwrap();
        });
        for (select, want) in [
            (None, "{\"A\":0,\"B\":8,\"S\":\"x\\\"y\"}\n"),
            (
                Some("S, uint16 B,NOPE"),
                "{\"S\":\"x\\\"y\",\"B\":8,\"NOPE\":null}\n",
            ),
        ] {
            let mut p = Printer::new(Options {
                delimiter: b',',
                title: true,
                timestamps: false,
                select: select.map(|s| Selection::parse(s).unwrap()),
                json: true,
            });
            let mut out = Vec::new();
            p.set_template(spec, &mut out).unwrap();
            p.record(&rec, 0, &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn short_record_is_an_error() {
        let mut p = Printer::new(Options {
            delimiter: b',',
            title: false,
            timestamps: false,
            select: None,
            json: false,
        });
        p.set_template("uint32 A", &mut Vec::new()).unwrap();
        let e = p.record(&[1, 2, 3], 0, &mut Vec::new()).unwrap_err();
        assert!(e.contains("shorter"), "{e}");
    }
}
