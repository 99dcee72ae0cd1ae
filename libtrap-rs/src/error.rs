//! Errors of the TRAP interfaces.
//!
//! Each message says its cause once: an error either includes what caused it
//! in its text or returns it from `source()`, never both (anyhow's `{:#}`
//! prints the text and then every source, so both would repeat the cause).
//! `TrapError` includes everything in its text and has no source, so `{}`
//! and `{:#}` print the same one line.

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
    /// An operating-system error on the interface: `IFC: what failed: why`.
    /// The `io::Error` is in the text, so it is not a `source()`; it is
    /// available from [`TrapError::io_error`].
    #[error("{ifc}: {what}: {}", os_reason(.error))]
    Io {
        ifc: String,
        what: String,
        error: io::Error,
    },
    /// `send` before the output's data format was set.
    #[error("{0}: data format of the output is not set")]
    NotInitialized(String),
    /// A valid specifier this build cannot serve (e.g. TLS).
    #[error("{0}")]
    Unsupported(String),
    /// A unix socket this module will not use: a socket of another user
    /// (squatted in a shared directory?) or a path that is not a socket.
    #[error("{ifc}: {detail}")]
    Refused { ifc: String, detail: String },
    /// A TLS peer whose certificate failed verification, or that refused
    /// ours (libtrap's TRAP_E_BAD_CERT): retrying would not help.
    #[error("{ifc}: TLS certificate verification failed: {detail}")]
    BadCert { ifc: String, detail: String },
    /// A unix socket output whose socket another live process serves.
    #[error("{ifc}: {} is served by another process (a second instance? stop it or pick another name)", .path.display())]
    SocketInUse {
        ifc: String,
        path: std::path::PathBuf,
    },
}

/// The text of an OS error without Rust's ` (os error N)` suffix:
/// `No such file or directory`.
pub fn os_reason(e: &io::Error) -> String {
    let s = e.to_string();
    match e.raw_os_error() {
        Some(code) => match s.strip_suffix(&format!(" (os error {code})")) {
            Some(plain) => plain.to_string(),
            None => s,
        },
        None => s,
    }
}

impl TrapError {
    /// `ifc: what: reason` (`what` says what failed: "cannot open x.trapcap").
    pub(crate) fn io(ifc: &str, what: impl Into<String>, error: io::Error) -> TrapError {
        TrapError::Io {
            ifc: ifc.to_string(),
            what: what.into(),
            error,
        }
    }
    pub(crate) fn corrupt(ifc: &str, detail: impl Into<String>) -> TrapError {
        TrapError::Corrupt {
            ifc: ifc.to_string(),
            detail: detail.into(),
        }
    }

    /// The operating-system error behind an [`Io`](TrapError::Io) error.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            TrapError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

pub type Result<T, E = TrapError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn io_errors_say_their_cause_once() {
        let e = TrapError::io(
            "f:nosuch.trapcap",
            "cannot open nosuch.trapcap",
            io::Error::from_raw_os_error(2),
        );
        assert_eq!(
            e.to_string(),
            "f:nosuch.trapcap: cannot open nosuch.trapcap: No such file or directory"
        );
        // Nothing more for `{:#}` printers to append.
        assert!(e.source().is_none());
        assert_eq!(
            e.io_error().map(io::Error::kind),
            Some(io::ErrorKind::NotFound)
        );
        let custom = io::Error::other("boom");
        assert_eq!(os_reason(&custom), "boom");
    }
}
