//! Error types of the supervisor library (one line each).

use std::path::PathBuf;
use thiserror::Error;

/// A configuration that cannot be used; names the file/line or element.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A syntax or schema error at `file:line[:column]`.
    #[error("{at}: {why}")]
    Syntax { at: String, why: String },
    /// A rule broken by otherwise well-formed content (`profile X, module Y`).
    #[error("{at}: {why}")]
    Invalid { at: String, why: String },
}

/// Talking to the daemon failed.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("Could not connect to supervisor at {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("connection to supervisor: {0}")]
    Io(#[from] std::io::Error),
}
