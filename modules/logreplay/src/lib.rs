//! logreplay: turns a CSV file written by `logger -t` (or by hand) back into
//! UniRec records.
//!
//! The first line is the header: `type NAME` columns, optionally preceded by
//! `time,` (a file from `logger -T -t`; the time column then paces the replay).
//! Columns follow the header's order, which need not be UniRec's. A column in
//! `"…"` may contain commas, and `""` inside it is one `"`. Arrays are written
//! `[a|b|c]`.

use std::borrow::Cow;
use unirec::{FieldType, RecordBuilder, Template, UrTime};

/// The CSV header: the template and which field each column fills.
#[derive(Debug, Clone)]
pub struct Header {
    template: Template,
    columns: Vec<usize>,
    time_column: bool,
}

/// Splits a line into columns with logreplay's quoting rules.
pub fn split_columns(line: &str) -> Vec<Cow<'_, str>> {
    let b = line.as_bytes();
    let mut cols = Vec::new();
    let mut pos = 0;
    loop {
        if b.get(pos) == Some(&b'"') {
            // Quoted: ends at a comma right after a quote, when the quotes
            // seen so far (the opening one included) are even.
            let mut quotes = 1;
            let mut i = pos + 1;
            while i < b.len() {
                match b[i] {
                    b'"' => quotes += 1,
                    b',' if b[i - 1] == b'"' && quotes % 2 == 0 => break,
                    _ => {}
                }
                i += 1;
            }
            let inner = &line[pos + 1..i];
            let inner = inner.strip_suffix('"').unwrap_or(inner);
            cols.push(if inner.contains("\"\"") {
                Cow::Owned(inner.replace("\"\"", "\""))
            } else {
                Cow::Borrowed(inner)
            });
            pos = i;
        } else {
            let end = line[pos..].find(',').map_or(b.len(), |k| pos + k);
            cols.push(Cow::Borrowed(&line[pos..end]));
            pos = end;
        }
        if pos >= b.len() {
            break;
        }
        pos += 1; // the comma
        if pos == b.len() {
            cols.push(Cow::Borrowed(""));
            break;
        }
    }
    cols
}

impl Header {
    /// Reads the header line (a UTF-8 byte order mark before it, as some
    /// editors and spreadsheets write, is skipped).
    pub fn parse(line: &str) -> Result<Header, String> {
        let line = line.strip_prefix('\u{feff}').unwrap_or(line);
        let line = line.trim_end_matches(['\r', '\n']);
        let (time_column, spec) = match line.strip_prefix("time,") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        if spec.trim().is_empty() {
            return Err("the header line is empty (expected `type NAME,type NAME,...`)".into());
        }
        let template = Template::parse(spec).map_err(|e| format!("bad header: {e}"))?;
        let columns = spec
            .split(',')
            .map(|item| {
                let name = item
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .trim_start_matches('*');
                template
                    .find(name)
                    .ok_or_else(|| format!("bad header column `{item}`"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Two columns for one field: the first would be overwritten silently.
        let first = usize::from(time_column);
        let mut seen = vec![None; template.len()];
        for (col, &idx) in columns.iter().enumerate() {
            if let Some(earlier) = seen.get_mut(idx) {
                if let Some(e) = *earlier {
                    return Err(format!(
                        "the header names field `{}` twice (columns {} and {})",
                        template.fields()[idx].name(),
                        e + 1 + first,
                        col + 1 + first
                    ));
                }
                *earlier = Some(col);
            }
        }
        Ok(Header {
            template,
            columns,
            time_column,
        })
    }

    pub fn template(&self) -> &Template {
        &self.template
    }

    /// True when the first column is `logger -T`'s receive time.
    pub fn has_time_column(&self) -> bool {
        self.time_column
    }

    /// Fills `builder` from one data line; returns the time column's value
    /// (Unix seconds) when there is one. The error names the column.
    pub fn fill(&self, builder: &mut RecordBuilder<'_>, line: &str) -> Result<Option<u32>, String> {
        let line = line.trim_end_matches(['\r', '\n']);
        let cols = split_columns(line);
        let expected = self.columns.len() + usize::from(self.time_column);
        if cols.len() != expected {
            return Err(format!("{} columns, the header has {expected}", cols.len()));
        }
        let mut cols = cols.into_iter();
        let time = if self.time_column {
            let t = cols.next().unwrap_or_default();
            Some(
                UrTime::parse(&t)
                    .ok_or_else(|| format!("column 1 (time): `{t}` is not a time"))?
                    .secs(),
            )
        } else {
            None
        };
        builder.clear();
        for (n, (col, &idx)) in cols.zip(&self.columns).enumerate() {
            let ty = self.template.fields()[idx].ty();
            let text: Cow<'_, str> = match ty {
                FieldType::Array(_) => {
                    let inner = col.trim();
                    let inner = inner.strip_prefix('[').unwrap_or(inner);
                    let inner = inner.strip_suffix(']').unwrap_or(inner);
                    Cow::Owned(inner.replace('|', " "))
                }
                _ => col,
            };
            builder.set_from_text(idx, &text).map_err(|e| {
                let f = &self.template.fields()[idx];
                format!(
                    "column {} ({} {}): {e}",
                    n + 1 + usize::from(self.time_column),
                    f.ty(),
                    f.name()
                )
            })?;
        }
        Ok(time)
    }
}

/// The longest pause the `time` column makes logreplay wait: a longer jump
/// (a quiet night, files joined, a bad clock) is replayed without waiting.
pub const MAX_PAUSE_SECS: u32 = 600;

/// What the `time` column asks for between two rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Send now (the first row, the same second, or time going back).
    Now,
    /// Wait this many seconds first.
    Wait(u32),
    /// A jump of this many seconds, over [`MAX_PAUSE_SECS`]: send now.
    Jump(u32),
}

/// The pause before a row of time `now` after one of time `prev`.
pub fn pace(prev: Option<u32>, now: u32) -> Pace {
    match prev {
        Some(p) if now > p && now - p > MAX_PAUSE_SECS => Pace::Jump(now - p),
        Some(p) if now > p => Pace::Wait(now - p),
        _ => Pace::Now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unirec::text::write_record;
    use unirec::RecordRef;

    #[test]
    fn splits_like_logreplay() {
        let c = |s| {
            split_columns(s)
                .into_iter()
                .map(|c| c.into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(c("a,b,c"), ["a", "b", "c"]);
        assert_eq!(c("\"a,b\",c"), ["a,b", "c"]);
        assert_eq!(c("\"a\"\"b,c d\",x"), ["a\"b,c d", "x"]);
        assert_eq!(c("\"\",x"), ["", "x"]);
        assert_eq!(c("a,"), ["a", ""]);
        assert_eq!(c(""), [""]);
        assert_eq!(c("\"x\""), ["x"]);
    }

    #[test]
    fn header_order_is_free_and_time_is_recognised() {
        let h = Header::parse("time,uint16 B,ipaddr A\r\n").unwrap();
        assert!(h.has_time_column());
        assert_eq!(h.template().spec(), "ipaddr A,uint16 B");
        let mut b = RecordBuilder::new(h.template());
        let t = h.fill(&mut b, "2020-01-01T00:00:01,80,10.0.0.1\n").unwrap();
        assert_eq!(t, Some(1_577_836_801));
        let mut rec = Vec::new();
        b.finish(&mut rec).unwrap();
        let mut out = Vec::new();
        write_record(
            &RecordRef::new_checked(h.template(), &rec).unwrap(),
            b',',
            &mut out,
        );
        assert_eq!(out, b"10.0.0.1,80\n");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let h = Header::parse("\u{feff}uint32 A,uint16 B\r\n").unwrap();
        assert_eq!(h.template().spec(), "uint32 A,uint16 B");
        let h = Header::parse("\u{feff}time,uint32 A\n").unwrap();
        assert!(h.has_time_column());
    }

    #[test]
    fn arrays_and_errors() {
        let h = Header::parse("uint16* P,string S").unwrap();
        let mut b = RecordBuilder::new(h.template());
        h.fill(&mut b, "[1|2|3],\"x\"").unwrap();
        let e = h.fill(&mut b, "[1|x],\"x\"").unwrap_err();
        assert!(e.contains("column 1 (uint16* P)"), "{e}");
        let e = h.fill(&mut b, "[1]").unwrap_err();
        assert!(e.contains("1 columns, the header has 2"), "{e}");
        assert!(Header::parse("").is_err());
        assert!(Header::parse("uint16 A,foo B").unwrap_err().contains("foo"));
    }

    #[test]
    fn a_field_named_twice_is_refused() {
        assert_eq!(
            Header::parse("uint32 A,uint16 B,uint32 A").unwrap_err(),
            "the header names field `A` twice (columns 1 and 3)"
        );
        assert_eq!(
            Header::parse("time,uint32 A, uint32  A").unwrap_err(),
            "the header names field `A` twice (columns 2 and 3)"
        );
        assert!(Header::parse("uint32 A,string A")
            .unwrap_err()
            .contains("bad header"));
    }

    #[test]
    fn long_time_jumps_are_not_waited_for() {
        assert_eq!(pace(None, 100), Pace::Now);
        assert_eq!(pace(Some(100), 100), Pace::Now);
        assert_eq!(pace(Some(100), 50), Pace::Now);
        assert_eq!(pace(Some(100), 103), Pace::Wait(3));
        assert_eq!(pace(Some(100), 700), Pace::Wait(600));
        assert_eq!(pace(Some(100), 701), Pace::Jump(601));
        assert_eq!(pace(Some(0), u32::MAX), Pace::Jump(u32::MAX));
    }
}
