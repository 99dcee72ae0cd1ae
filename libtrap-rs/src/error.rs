//! Errors of the TRAP interfaces.

use std::io;

/// What went wrong on an interface. Every variant names the interface, so a
/// module can print the error as its one-line diagnosis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrapError {
    /// The `-i` specifier is malformed or does not fit the module.
    #[error("{0}")]
    BadSpec(String),
    /// No message within the interface's timeout.
    #[error("timeout")]
    Timeout,
    /// SIGINT/SIGTERM (or [`crate::terminate`]) stopped the operation.
    #[error("terminated")]
    Terminated,
    /// The sender's data format is not the one this input requires.
    #[error("{ifc}: data format mismatch: {detail}")]
    FormatMismatch { ifc: String, detail: String },
    /// The hello at the start of a connection or file is missing or broken.
    #[error("{ifc}: format negotiation failed: {detail}")]
    Negotiation { ifc: String, detail: String },
    /// A file or stream that is not valid TRAP data (truncated or garbage).
    #[error("{ifc}: {detail}")]
    Corrupt { ifc: String, detail: String },
    /// An operating-system error on the interface.
    #[error("{ifc}: {source}")]
    Io {
        ifc: String,
        #[source]
        source: io::Error,
    },
    /// `send` before the output's data format was set.
    #[error("{0}: data format of the output is not set")]
    NotInitialized(String),
    /// A valid specifier this build cannot serve (e.g. TLS).
    #[error("{0}")]
    Unsupported(String),
}

impl TrapError {
    pub(crate) fn io(ifc: &str, source: io::Error) -> TrapError {
        TrapError::Io {
            ifc: ifc.to_string(),
            source,
        }
    }
    pub(crate) fn corrupt(ifc: &str, detail: impl Into<String>) -> TrapError {
        TrapError::Corrupt {
            ifc: ifc.to_string(),
            detail: detail.into(),
        }
    }
}

pub type Result<T, E = TrapError> = std::result::Result<T, E>;
