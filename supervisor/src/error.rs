//! Error types of the supervisor library (one line each).

use std::path::PathBuf;
use thiserror::Error;

// The io::Error fields are not `source`s: their text is already part of the
// one-line message, and `{:#}` would repeat it.

/// A configuration that cannot be used; names the file/line or element.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
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
    #[error("Could not connect to supervisor at {}: {cause}", path.display())]
    Connect {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("connection to supervisor: {0}")]
    Io(std::io::Error),
    /// No (complete) answer within the time limit; holds what came.
    #[error("the supervisor did not answer in time")]
    TimedOut(String),
    #[error("the supervisor's answer is longer than {} MiB", .0 >> 20)]
    TooLong(usize),
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> ClientError {
        ClientError::Io(e)
    }
}
