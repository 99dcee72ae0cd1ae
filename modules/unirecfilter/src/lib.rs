//! unirecfilter: selects UniRec records with a filter expression and
//! projects them onto output templates, as NEMEA's unirecfilter.
#![forbid(unsafe_code)]

pub mod compile;
pub mod ip;
pub mod lexer;
pub mod parser;

pub use compile::Bound;
pub use lexer::{CmpOp, SyntaxError};
pub use parser::Precedence;

use unirec::Template;

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
