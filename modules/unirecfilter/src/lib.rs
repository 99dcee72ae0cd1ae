//! unirecfilter: selects UniRec records with a filter expression and
//! projects them onto output templates, as NEMEA's unirecfilter.
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
