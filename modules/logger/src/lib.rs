//! logger: prints UniRec records as CSV lines, exactly as NEMEA's logger.

use unirec::text::write_record;
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
    header_done: bool,
}

impl Printer {
    pub fn new(opts: Options) -> Printer {
        Printer {
            opts,
            template: None,
            header_done: false,
        }
    }

    /// Adopts the sender's template (on a format change); prints the header
    /// the first time when asked to.
    pub fn set_template(
        &mut self,
        spec: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), unirec::TemplateError> {
        let t = Template::parse(spec)?;
        if self.opts.title && !self.header_done {
            if self.opts.timestamps {
                out.extend_from_slice(b"time,");
            }
            out.extend_from_slice(t.header(self.opts.delimiter).as_bytes());
            out.push(b'\n');
            self.header_done = true;
        }
        self.template = Some(t);
        Ok(())
    }

    /// Prints one record (or recognises the end of stream). `now` is the
    /// receive time used by `-T`.
    pub fn record(&self, data: &[u8], now_secs: u32, out: &mut Vec<u8>) -> Result<Step, String> {
        if data.len() <= 1 {
            return Ok(Step::EndOfStream);
        }
        let t = self
            .template
            .as_ref()
            .ok_or("a record arrived before its data format")?;
        let rec = RecordRef::new_checked(t, data).map_err(|e| e.to_string())?;
        if self.opts.timestamps {
            let mut ts = Vec::with_capacity(26);
            UrTime::from_secs_nanos(now_secs, 0).write_text(&mut ts);
            out.extend_from_slice(&ts[..19]);
            out.push(b',');
        }
        write_record(&rec, self.opts.delimiter, out);
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

    #[test]
    fn short_record_is_an_error() {
        let mut p = Printer::new(Options {
            delimiter: b',',
            title: false,
            timestamps: false,
        });
        p.set_template("uint32 A", &mut Vec::new()).unwrap();
        let e = p.record(&[1, 2, 3], 0, &mut Vec::new()).unwrap_err();
        assert!(e.contains("shorter"), "{e}");
    }
}
