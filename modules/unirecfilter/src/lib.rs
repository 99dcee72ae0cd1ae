//! unirecfilter: selects UniRec records with a filter expression and
//! projects them onto output templates, as NEMEA's unirecfilter
//! (Nemea-Modules `unirecfilter/`, its language from liburfilter's flex
//! scanner and bison grammar).
//!
//! # The module (C's behaviour, kept)
//!
//! * 1 input, 1–32 outputs. `-F EXPR` and `-O TEMPLATE` give the one
//!   output's filter and template; with more outputs, `-f FILE` gives one
//!   `TEMPLATE:FILTER;` item per output ([`config::split_items`]: the
//!   template ends at the first `:` outside quotes, the filter at the next
//!   `;` outside quotes; `#` comments between items; an empty template is
//!   the input's, an empty filter passes everything). SIGUSR1 reads the file
//!   again.
//! * Output templates take defaults, `type NAME=VALUE` (VALUE in logger's
//!   text form, `"…"` allowed): a field the input lacks gets its default (or
//!   zero / empty); the others are copied from the input record.
//! * `-c N` stops after N input records, matched or not; at the input's end
//!   of stream, after `-c`, and on SIGINT/SIGTERM every output gets an end
//!   of stream unless `-n`.
//! * A term on a field the input template lacks, or whose type does not fit
//!   the value, is always false (a warning names it); `!` of it is true.
//!
//! # The language
//!
//! Terms `FIELD OP VALUE` with `OP` one of `==` `=` `!=` `<>` `<` `<=`
//! `=<` `>` `>=` `=>`; `FIELD in [V, …]`; `FIELD =~ "REGEX"` (also `~=`);
//! `host` (SRC_IP or DST_IP) and `port` (SRC_PORT or DST_PORT) in place of
//! a field; `PROTOCOL == TCP` with protocol names; `true`/`false`; `!`
//! (`not`, `NOT`), `&&` (`and`, `AND`), `||` (`or`, `OR`), parentheses.
//! Values: integers, floats (`1.5`), IPv4/IPv6 addresses and prefixes
//! (`10.0.0.0/8`, `fe80::/10`), dates (`2018-01-10T21:17:00.123`, UTC),
//! strings in `"…"` or `'…'`; a quoted address or date is read as one when
//! the field is an address or a time.
//!
//! # Where we differ from C (each a bug or a limit of C's, and tested in
//! `tests/data/filter_table.txt`, whose `# C:` notes say what C gives)
//!
//! * **Precedence**: `&&` binds tighter than `||`. C's grammar gives them
//!   the same precedence, left to right, so C reads `a || b && c` as
//!   `(a || b) && c`. Such an expression gets a warning naming the column;
//!   `--c-precedence` parses as C does, for filter files written against
//!   C's reading.
//! * **Numbers compare as numbers**: C compares `int8` fields and every
//!   unsigned field through unsigned 64-bit values, so `SMALL < 0` never
//!   holds on an int8 and `PACKETS > -1` never holds; C reads `in` list
//!   members of int8/16/32/64 fields as unsigned. C reads numbers beyond
//!   `INT64_MAX` as `INT64_MAX`. C reads every leading-zero number as octal
//!   (`010` is 8, `09` is 0); here numbers are decimal.
//! * **Floats**: C reads a `float` field as 8 bytes of `double` (garbage)
//!   and its `==` is `|a − b| < 1` (integer `abs()`). Here `float` and
//!   `double` fields are read as what they are, `==` is `|a − b| < 1e-8`
//!   (C's tolerance of its `in` lists), `<=`/`>=`/`!=` agree with it, and an
//!   integer literal compares with a float field (and a float literal with an
//!   integer field) by value, where C makes the term always false.
//! * `=<` and `=>`: C's scanner knows them but its operator table does not
//!   (always false); here they are `<=` and `>=`.
//! * **`port != N`** holds when neither port is N (C: when either port
//!   differs, so `port != 22` passes SSH flows). `host != A` holds when
//!   neither address is A (as in C). The other operators hold when either
//!   field does; C's `host < A` and the like combine the two results in an
//!   order of its own. `host`/`port` use whichever of the pair the template
//!   has (C: `port` needs both, `host` needs SRC_IP).
//! * **Prefixes of the other IP version**: an IPv6 address is not in an IPv4
//!   prefix: only `!=` holds (C: `!=`, `<` and `>` all hold).
//! * **`!` and protocol names**: C does not resolve `PROTOCOL == TCP` under
//!   `!`, so `!(PROTOCOL == TCP)` is always true there.
//! * **Strings**: escapes `\"` `\'` `\\` `\n` `\t` `\r` `\0` `\xHH` are
//!   resolved in `==`/`!=` strings (C compares with the backslashes as
//!   written); `=~` patterns get the text as written. `=~` on a `char` field
//!   matches it (C: inverted equality with the pattern's text).
//! * **Regular expressions** are the `regex` crate's (linear time, no
//!   backreferences), on bytes, `.` matching any byte and a newline as in
//!   POSIX. POSIX ERE (C's `regcomp`) patterns work alike except for
//!   POSIX-only corners (a `\` inside `[…]` is an escape here); `(?i)` and
//!   `\d` are extras. A pattern that does not compile is a syntax error
//!   here (C: a message, and the term is always false).
//! * **Extensions** (syntax errors or always false in C): field names with
//!   digits (`TLS_JA3`; C's scanner takes only letters and `_`), `macaddr`
//!   comparisons (`SRC_MAC == "00:11:22:33:44:55"`, `SRC_MAC in
//!   [aa:bb:cc:dd:ee:ff]`), strings in `in` lists, `PROTOCOL in [6, 17]`,
//!   ordering of strings (`<` on bytes), any protocol name of
//!   /etc/protocols (C's scanner: `TCP`, `UDP`, `ICMP` bare, others quoted),
//!   lists mixing addresses and prefixes, blanks anywhere in a list.
//! * **Errors** are one line naming the column (or `FILE:LINE:COL`), at
//!   start-up; C prints `Syntax error` when the first record arrives and
//!   sends end of stream. Characters C's scanner silently echoed and skipped
//!   (`#`, `;`, a single `&`) are errors. `X in 80` and `<`/`>`/`<=`/`>=`
//!   with a list are errors (C: always false, and "in").
//! * **Module**: a filter file that does not load on SIGUSR1 leaves the
//!   filters as they were (C stops); the reload takes effect within 0.25 s
//!   also when no records come (C: at the next record). Variable-length
//!   fields are copied whole (C cuts them to 1024 bytes). A default value
//!   may contain commas in quotes (C crashes on one). A field both in the
//!   input and in an output template with another type is an error. When
//!   the input template changes, every filter and projection is bound to
//!   the new one (outputs with the input's template follow it).
//! * Comparisons on array fields are always false (as in C, with a
//!   warning).
#![forbid(unsafe_code)]

pub mod compile;
pub mod config;
pub mod ip;
pub mod lexer;
pub mod parser;
#[cfg(test)]
mod table;

pub use compile::Bound;
pub use config::{OutTemplate, OutputConfig, Projection};
pub use lexer::{CmpOp, SyntaxError};
pub use parser::Precedence;

use unirec::{RecordError, RecordRef, Template};

/// A filter expression, parsed once and bound to each input template.
#[derive(Clone, Debug)]
pub struct Filter {
    source: String,
    parsed: parser::Parsed,
}

impl Filter {
    /// Parses `source`; an empty filter passes every record.
    pub fn parse(source: &str, prec: Precedence) -> Result<Filter, SyntaxError> {
        Ok(Filter {
            source: source.to_string(),
            parsed: parser::parse(source, prec)?,
        })
    }

    /// The expression as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// What the parser noticed (a precedence that differs from C's).
    pub fn warnings(&self) -> &[String] {
        &self.parsed.warnings
    }

    /// The filter for records of `tmpl`, and the terms that are always
    /// false on it (missing fields, types that do not fit).
    pub fn bind(&self, tmpl: &Template) -> (Bound, Vec<String>) {
        let mut warnings = Vec::new();
        let b = compile::bind(&self.parsed.expr, tmpl, &mut warnings);
        (b, warnings)
    }
}

/// Why a record could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError<E> {
    #[error("a record arrived before its data format")]
    NoFormat,
    #[error("bad record: {0}")]
    BadRecord(RecordError),
    #[error("output {output}: the record would be {size} bytes with the defaults, more than UniRec's 65535")]
    TooLarge { output: usize, size: usize },
    #[error(transparent)]
    Send(E),
}

struct BoundOutput {
    filter: Bound,
    projection: Projection,
}

/// The module's logic without interfaces: outputs with their filters and
/// templates, bound to the current input template.
pub struct Engine {
    outputs: Vec<OutputConfig>,
    input: Option<Template>,
    bound: Vec<BoundOutput>,
    buf: Vec<u8>,
}

impl Engine {
    pub fn new(outputs: Vec<OutputConfig>) -> Engine {
        Engine {
            outputs,
            input: None,
            bound: Vec::new(),
            buf: Vec::with_capacity(1 << 16),
        }
    }

    pub fn outputs(&self) -> &[OutputConfig] {
        &self.outputs
    }

    /// The input template, once known.
    pub fn input(&self) -> Option<&Template> {
        self.input.as_ref()
    }

    /// The template output `i` sends: its own, or the input's once known.
    pub fn output_spec(&self, i: usize) -> Option<&str> {
        match &self.outputs.get(i)?.template {
            Some(t) => Some(t.template.spec()),
            None => self.input.as_ref().map(Template::spec),
        }
    }

    fn bind_all(
        outputs: &[OutputConfig],
        input: &Template,
    ) -> Result<(Vec<BoundOutput>, Vec<String>), String> {
        let mut warnings = Vec::new();
        let mut bound = Vec::with_capacity(outputs.len());
        for (i, o) in outputs.iter().enumerate() {
            let (filter, w) = o.filter.bind(input);
            warnings.extend(w.iter().map(|w| o.locate(w)));
            let projection = match &o.template {
                None => Projection::Forward,
                Some(t) => Projection::new(input, t).map_err(|e| format!("output {i}: {e}"))?,
            };
            bound.push(BoundOutput { filter, projection });
        }
        Ok((bound, warnings))
    }

    /// Adopts a new input template (`spec` from the sender's hello) and
    /// binds every filter and projection to it. Returns the warnings.
    pub fn set_input(&mut self, spec: &str) -> Result<Vec<String>, String> {
        let t = Template::parse(spec).map_err(|e| format!("bad input template: {e}"))?;
        let (bound, warnings) = Engine::bind_all(&self.outputs, &t)?;
        self.input = Some(t);
        self.bound = bound;
        Ok(warnings)
    }

    /// Replaces the outputs (a reloaded filter file). On an error nothing
    /// changes.
    pub fn replace(&mut self, outputs: Vec<OutputConfig>) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        if let Some(t) = &self.input {
            let (bound, w) = Engine::bind_all(&outputs, t)?;
            self.bound = bound;
            warnings = w;
        }
        self.outputs = outputs;
        Ok(warnings)
    }

    /// Runs one record through every output's filter, handing the records
    /// that pass to `send(output, record)`.
    pub fn process<E>(
        &mut self,
        data: &[u8],
        mut send: impl FnMut(usize, &[u8]) -> Result<(), E>,
    ) -> Result<(), ProcessError<E>> {
        let t = self.input.as_ref().ok_or(ProcessError::NoFormat)?;
        let rec = RecordRef::new_checked(t, data).map_err(ProcessError::BadRecord)?;
        for (i, b) in self.bound.iter().enumerate() {
            if !b.filter.matches(&rec) {
                continue;
            }
            match b.projection.apply(&rec, &mut self.buf) {
                Ok(Some(out)) => send(i, out),
                Ok(None) => send(i, data),
                Err(config::TooLarge(size)) => {
                    return Err(ProcessError::TooLarge { output: i, size })
                }
            }
            .map_err(ProcessError::Send)?;
        }
        Ok(())
    }
}
