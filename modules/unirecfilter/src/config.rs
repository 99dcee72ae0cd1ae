//! What each output gets: its template (with default values) and filter,
//! from `-O`/`-F` or from a filter file of `TEMPLATE:FILTER;` items.

use crate::{Filter, Precedence};
use unirec::{RecordBuilder, RecordRef, Template};

/// An output template given by the user, with the default value of each
/// field (zero or empty where none is given).
#[derive(Clone, Debug)]
pub struct OutTemplate {
    pub template: Template,
    /// A record of the template holding the defaults.
    defaults: Vec<u8>,
}

impl OutTemplate {
    /// Parses `type NAME[=VALUE],...`; a VALUE may be quoted ("a,b").
    pub fn parse(spec: &str) -> Result<OutTemplate, String> {
        let mut fields = Vec::new();
        let mut defaults = Vec::new();
        for item in split_unquoted(spec, ',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (decl, default) = match item.split_once('=') {
                Some((d, v)) => (d.trim(), Some(unquote(v.trim()))),
                None => (item, None),
            };
            let t = Template::parse(decl).map_err(|e| e.to_string())?;
            let Some(f) = t.field(0) else {
                return Err(format!("`{item}` is not `TYPE NAME[=VALUE]`"));
            };
            fields.push((f.name().to_string(), f.ty()));
            if let Some(v) = default {
                defaults.push((f.name().to_string(), v));
            }
        }
        if fields.is_empty() {
            return Err("the output template has no fields".into());
        }
        let template = Template::from_fields(fields).map_err(|e| e.to_string())?;
        let mut b = RecordBuilder::new(&template);
        for (name, text) in &defaults {
            let idx = template
                .find(name)
                .ok_or_else(|| format!("no field {name}"))?;
            b.set_from_text(idx, text)
                .map_err(|e| format!("default of {name}: {e}"))?;
        }
        let mut rec = Vec::new();
        b.finish(&mut rec).map_err(|e| e.to_string())?;
        Ok(OutTemplate {
            template,
            defaults: rec,
        })
    }
}

/// Splits at `sep` outside `"…"`/`'…'`; a backslash keeps the next
/// character from ending anything (C's `skip_str_chr`, with single quotes too).
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            }
        } else if c == '"' || c == '\'' {
            quote = Some(c);
        } else if c == sep {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

/// A default value without its quotes (`\"` and `\\` inside them resolved).
fn unquote(v: &str) -> String {
    let inner = v
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')));
    match inner {
        None => v.to_string(),
        Some(s) => {
            let mut out = String::new();
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some(e @ ('"' | '\'' | '\\')) => out.push(e),
                        Some(e) => {
                            out.push('\\');
                            out.push(e);
                        }
                        None => out.push('\\'),
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}

/// How records of one input template become records of an output.
#[derive(Clone, Debug)]
pub enum Projection {
    /// The output template is the input's: records go out as they came.
    Forward,
    Copy(Plan),
}

/// Field copies from an input template to an output template.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The fixed part of the output with its defaults.
    fixed: Vec<u8>,
    /// (input offset, output offset, length) of fixed fields the input has,
    /// adjacent ones merged.
    copies: Vec<(usize, usize, usize)>,
    /// Per variable output field, in record order: its entry offset in the
    /// output and where the data comes from.
    vars: Vec<(usize, VarSource)>,
}

#[derive(Clone, Debug)]
enum VarSource {
    /// The offset of the input field's entry.
    Input(usize),
    Default(Box<[u8]>),
}

/// A record too large for UniRec after adding defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge(pub usize);

impl Projection {
    /// How `out` is filled from records of `input`. A field both have must
    /// have the same type in both.
    pub fn new(input: &Template, out: &OutTemplate) -> Result<Projection, String> {
        if out.template.spec() == input.spec() {
            return Ok(Projection::Forward);
        }
        let t = &out.template;
        let defaults = RecordRef::new_checked(t, &out.defaults).map_err(|e| e.to_string())?;
        let mut fixed = out.defaults[..t.fixed_size()].to_vec();
        let mut copies: Vec<(usize, usize, usize)> = Vec::new();
        let mut vars = Vec::new();
        for (idx, f) in t.fields().iter().enumerate() {
            let source = input.find(f.name()).and_then(|i| input.field(i));
            if let Some(s) = source {
                if s.ty() != f.ty() {
                    return Err(format!(
                        "field {} is {} in the output template but {} in the input",
                        f.name(),
                        f.ty(),
                        s.ty()
                    ));
                }
            }
            if f.ty().is_variable() {
                let src = match source {
                    Some(s) => VarSource::Input(s.offset()),
                    None => VarSource::Default(defaults.raw(idx).unwrap_or_default().into()),
                };
                vars.push((f.offset(), src));
            } else if let Some(s) = source {
                let len = f.ty().fixed_size();
                match copies.last_mut() {
                    Some((i, o, l)) if *i + *l == s.offset() && *o + *l == f.offset() => *l += len,
                    _ => copies.push((s.offset(), f.offset(), len)),
                }
            }
        }
        // Entries are rewritten for every record.
        for (at, _) in &vars {
            if let Some(e) = fixed.get_mut(*at..*at + 4) {
                e.fill(0);
            }
        }
        Ok(Projection::Copy(Plan {
            fixed,
            copies,
            vars,
        }))
    }

    /// The output record of `rec` (`None`: send `rec` itself), built in `buf`.
    #[inline]
    pub fn apply<'b>(
        &self,
        rec: &RecordRef<'_>,
        buf: &'b mut Vec<u8>,
    ) -> Result<Option<&'b [u8]>, TooLarge> {
        let Projection::Copy(plan) = self else {
            return Ok(None);
        };
        let data = rec.bytes();
        let in_fixed = rec.template().fixed_size();
        buf.clear();
        buf.extend_from_slice(&plan.fixed);
        for &(i, o, l) in &plan.copies {
            if let (Some(dst), Some(src)) = (buf.get_mut(o..o + l), data.get(i..i + l)) {
                dst.copy_from_slice(src);
            }
        }
        let out_fixed = plan.fixed.len();
        for (at, src) in &plan.vars {
            let bytes: &[u8] = match src {
                VarSource::Default(d) => d,
                VarSource::Input(entry) => data
                    .get(*entry..*entry + 4)
                    .and_then(|e| {
                        let off = usize::from(u16::from_le_bytes([e[0], e[1]]));
                        let len = usize::from(u16::from_le_bytes([e[2], e[3]]));
                        data.get(in_fixed + off..in_fixed + off + len)
                    })
                    .unwrap_or_default(),
            };
            let off = buf.len() - out_fixed;
            if buf.len() + bytes.len() > unirec::MAX_RECORD_SIZE {
                return Err(TooLarge(buf.len() + bytes.len()));
            }
            if let Some(e) = buf.get_mut(*at..*at + 4) {
                e[..2].copy_from_slice(&(off as u16).to_le_bytes());
                e[2..].copy_from_slice(&(bytes.len() as u16).to_le_bytes());
            }
            buf.extend_from_slice(bytes);
        }
        Ok(Some(buf))
    }
}

/// One output's template (`None`: the input's) and filter.
#[derive(Clone, Debug)]
pub struct OutputConfig {
    pub template: Option<OutTemplate>,
    pub filter: Filter,
    /// Where the filter came from: `-F`, or a file with the line and column
    /// where the filter starts.
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Option,
    File {
        name: String,
        line: usize,
        col: usize,
    },
}

impl OutputConfig {
    /// A `column N: …` message about this output's filter, placed: `-F:
    /// column N: …` or `FILE:LINE:COL: …`.
    pub fn locate(&self, msg: &str) -> String {
        match &self.origin {
            Origin::Option => format!("-F: {msg}"),
            Origin::File { name, line, col } => {
                let src = self.filter.source();
                relocate(
                    msg,
                    |c| {
                        let (dl, dc) = line_col(src, c - 1);
                        if dl == 1 {
                            format!("{name}:{line}:{}", col + dc - 1)
                        } else {
                            format!("{name}:{}:{dc}", line + dl - 1)
                        }
                    },
                    name,
                )
            }
        }
    }
}

/// The single output of `-O` and `-F`.
pub fn from_options(
    out_spec: Option<&str>,
    filter: Option<&str>,
    prec: Precedence,
) -> Result<OutputConfig, String> {
    let template = match out_spec.map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(OutTemplate::parse(s).map_err(|e| format!("-O: {e}"))?),
    };
    let filter = Filter::parse(filter.unwrap_or(""), prec).map_err(|e| format!("-F: {e}"))?;
    Ok(OutputConfig {
        template,
        filter,
        origin: Origin::Option,
    })
}

/// One `TEMPLATE:FILTER;` item of a filter file, with where its filter starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub template: String,
    pub filter: String,
    /// Character offset of the filter in the file.
    pub filter_at: usize,
}

/// Line and column (1-based) of character offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for c in text.chars().take(at) {
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// Splits a filter file into its items. Between items, blanks and `;` are
/// skipped and `#` starts a comment to the end of the line. An item is an
/// optional template up to the first `:` outside quotes, then a filter up
/// to the next `;` outside quotes (which must be there).
pub fn split_items(text: &str) -> Result<Vec<Item>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut items = Vec::new();
    let mut i = 0;
    // Finds `delim` outside quotes from `from`.
    let find = |from: usize, delim: char| -> Option<usize> {
        let mut quote = None;
        let mut k = from;
        while k < chars.len() {
            let c = chars[k];
            if c == '\\' {
                k += 2;
                continue;
            }
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == delim => return Some(k),
                None if c == '"' || c == '\'' => quote = Some(c),
                None => {}
            }
            k += 1;
        }
        None
    };
    while i < chars.len() {
        match chars[i] {
            ' ' | '\t' | '\n' | '\r' | ';' => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            _ => {
                let Some(colon) = find(i, ':') else {
                    let (l, c) = line_col(text, i);
                    return Err(format!(
                        "{l}:{c}: item {} has no `:` between its template and its filter (TEMPLATE:FILTER;)",
                        items.len() + 1
                    ));
                };
                let Some(semi) = find(colon + 1, ';') else {
                    let (l, c) = line_col(text, colon);
                    return Err(format!(
                        "{l}:{c}: the filter of item {} does not end with `;`",
                        items.len() + 1
                    ));
                };
                items.push(Item {
                    template: chars[i..colon]
                        .iter()
                        .collect::<String>()
                        .trim()
                        .to_string(),
                    filter: chars[colon + 1..semi].iter().collect(),
                    filter_at: colon + 1,
                });
                i = semi + 1;
            }
        }
    }
    Ok(items)
}

/// The outputs of a filter file (`name` is used in messages). There must be
/// an item for each of the `n_outputs` outputs; more items are ignored with
/// a warning. Errors and warnings read `name:LINE:COLUMN: …`.
pub fn from_file(
    name: &str,
    text: &str,
    n_outputs: usize,
    prec: Precedence,
) -> Result<(Vec<OutputConfig>, Vec<String>), String> {
    let items = split_items(text).map_err(|e| format!("{name}:{e}"))?;
    if items.len() < n_outputs {
        return Err(format!(
            "{name}: {} item(s) (TEMPLATE:FILTER;) for {n_outputs} output interface(s): give one per output",
            items.len()
        ));
    }
    let mut warnings = Vec::new();
    if items.len() > n_outputs {
        warnings.push(format!(
            "{name}: {} items for {n_outputs} output interface(s): the last {} are not used",
            items.len(),
            items.len() - n_outputs
        ));
    }
    let at = |offset: usize| {
        let (l, c) = line_col(text, offset);
        format!("{name}:{l}:{c}")
    };
    let mut out = Vec::new();
    for item in items.into_iter().take(n_outputs) {
        let template =
            if item.template.is_empty() {
                None
            } else {
                Some(OutTemplate::parse(&item.template).map_err(|e| {
                    format!("{}: output {}: {e}", at(item.filter_at - 1), out.len())
                })?)
            };
        let filter = Filter::parse(&item.filter, prec)
            .map_err(|e| format!("{}: {}", at(item.filter_at + e.col - 1), e.msg))?;
        let (line, col) = line_col(text, item.filter_at);
        let o = OutputConfig {
            template,
            filter,
            origin: Origin::File {
                name: name.to_string(),
                line,
                col,
            },
        };
        warnings.extend(o.filter.warnings().iter().map(|w| o.locate(w)));
        out.push(o);
    }
    Ok((out, warnings))
}

/// Turns a `column N: …` message about a filter into `FILE:LINE:COL: …`.
fn relocate(msg: &str, at: impl Fn(usize) -> String, fallback: &str) -> String {
    msg.strip_prefix("column ")
        .and_then(|r| r.split_once(": "))
        .and_then(|(n, rest)| Some(format!("{}: {rest}", at(n.parse().ok()?))))
        .unwrap_or_else(|| format!("{fallback}: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_templates_with_defaults() {
        let o = OutTemplate::parse(
            "ipaddr SRC_IP, uint16 DST_PORT=443, string MSG=\"a,b \\\"c\\\"\", uint32 BAR",
        )
        .unwrap();
        assert_eq!(
            o.template.spec(),
            "ipaddr SRC_IP,uint32 BAR,uint16 DST_PORT,string MSG"
        );
        let r = RecordRef::new_checked(&o.template, &o.defaults).unwrap();
        assert_eq!(r.get_u16(2), Some(443));
        assert_eq!(r.get_bytes(3), Some(&b"a,b \"c\""[..]));
        assert!(OutTemplate::parse("uint16 X=abc")
            .unwrap_err()
            .contains("X"));
        assert!(OutTemplate::parse("uint99 X").is_err());
        assert!(OutTemplate::parse(" , ").is_err());
    }

    #[test]
    fn projection_copies_and_defaults() {
        let input = Template::parse(
            "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,string URL,bytes B",
        )
        .unwrap();
        let mut b = RecordBuilder::new(&input);
        b.set_ip(
            input.find("SRC_IP").unwrap(),
            unirec::UrIp::parse("10.0.0.1").unwrap(),
        )
        .unwrap();
        b.set_u16(input.find("DST_PORT").unwrap(), 80).unwrap();
        b.set_var(input.find("URL").unwrap(), b"/index").unwrap();
        b.set_var(input.find("B").unwrap(), b"\x01\x02").unwrap();
        let mut rec = Vec::new();
        b.finish(&mut rec).unwrap();
        let rec = RecordRef::new_checked(&input, &rec).unwrap();

        let out = OutTemplate::parse(
            "uint16 DST_PORT,ipaddr SRC_IP,string URL,string MISSING=\"x\",uint32 N=7",
        )
        .unwrap();
        let p = Projection::new(&input, &out).unwrap();
        let mut buf = Vec::new();
        let bytes = p.apply(&rec, &mut buf).unwrap().unwrap().to_vec();
        let t = &out.template;
        let r = RecordRef::new_checked(t, &bytes).unwrap();
        assert_eq!(
            r.get_ip(t.find("SRC_IP").unwrap()).unwrap().to_string(),
            "10.0.0.1"
        );
        assert_eq!(r.get_u16(t.find("DST_PORT").unwrap()), Some(80));
        assert_eq!(r.get_u32(t.find("N").unwrap()), Some(7));
        assert_eq!(r.get_bytes(t.find("URL").unwrap()), Some(&b"/index"[..]));
        assert_eq!(r.get_bytes(t.find("MISSING").unwrap()), Some(&b"x"[..]));

        // Same template: forwarded as is.
        let same = OutTemplate::parse(input.spec()).unwrap();
        assert!(matches!(
            Projection::new(&input, &same),
            Ok(Projection::Forward)
        ));
        // A field of another type is an error naming it.
        let bad = OutTemplate::parse("uint32 DST_PORT").unwrap();
        assert!(Projection::new(&input, &bad)
            .unwrap_err()
            .contains("DST_PORT"));
    }

    #[test]
    fn filter_file_items() {
        let text = "# web\nipaddr SRC_IP,uint16 DST_PORT: PROTOCOL == 6 && DST_PORT in [80, 443];\n\n  :SRC_PORT == 53 || URL == \"a;b:c\"; # dns\n:;\n";
        let items = split_items(text).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].template, "ipaddr SRC_IP,uint16 DST_PORT");
        assert_eq!(items[0].filter, " PROTOCOL == 6 && DST_PORT in [80, 443]");
        assert_eq!(items[1].template, "");
        assert_eq!(items[1].filter, "SRC_PORT == 53 || URL == \"a;b:c\"");
        assert_eq!(items[2].filter, "");
        // An IPv6 address in a filter needs no quotes: only the first `:` ends the template.
        let items = split_items("ipaddr SRC_IP:SRC_IP == fe80::1;").unwrap();
        assert_eq!(items[0].filter, "SRC_IP == fe80::1");
        assert!(split_items("uint16 X").unwrap_err().contains("`:`"));
        assert!(split_items("\n:X == 1").unwrap_err().starts_with("2:1:"));
    }

    #[test]
    fn file_errors_name_line_and_column() {
        let text = ":SRC_PORT == 1;\n:SRC_PORT ==\n  80 80;\n";
        let e = from_file("f.txt", text, 2, Precedence::Standard).unwrap_err();
        assert!(e.starts_with("f.txt:3:6: "), "{e}");
        let e = from_file("f.txt", ":;", 2, Precedence::Standard).unwrap_err();
        assert!(e.contains("1 item(s)") && e.contains("2 output"), "{e}");
        let (o, w) = from_file(
            "f.txt",
            ":;:;:A == 1 || B == 1 && C == 1;",
            2,
            Precedence::Standard,
        )
        .unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(w.len(), 1, "{w:?}");
        let (_, w) = from_file(
            "f.txt",
            "\n:A == 1 || B == 1 && C == 1;",
            1,
            Precedence::Standard,
        )
        .unwrap();
        assert!(w[0].starts_with("f.txt:2:19: "), "{w:?}");
    }
}
