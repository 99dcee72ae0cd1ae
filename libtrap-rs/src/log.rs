//! Diagnostics on stderr, prefixed with the program name, filtered by `-v`.

use std::sync::atomic::{AtomicI8, Ordering::Relaxed};
use std::sync::OnceLock;

static VERBOSITY: AtomicI8 = AtomicI8::new(-1);
static PROGRAM: OnceLock<String> = OnceLock::new();

/// Sets the verbosity: -1 = warnings only (default), 0 = `-v`, 1 = `-vv`, 2 = `-vvv`.
pub fn set_verbosity(level: i8) {
    VERBOSITY.store(level, Relaxed);
}

pub fn verbosity() -> i8 {
    VERBOSITY.load(Relaxed)
}

/// Sets the name that prefixes every diagnostic (defaults to argv[0]'s file name).
pub fn set_program_name(name: &str) {
    let _ = PROGRAM.set(name.to_string());
}

pub fn program_name() -> &'static str {
    PROGRAM.get_or_init(|| {
        std::env::args()
            .next()
            .and_then(|a| {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "nemea".into())
    })
}

/// A warning: always printed.
pub fn warn(msg: &str) {
    eprintln!("{}: warning: {msg}", program_name());
}

/// A notice: always printed, without the `warning:` prefix.
pub fn note(msg: &str) {
    eprintln!("{}: {msg}", program_name());
}

/// Printed at verbosity `level` or above (0 = `-v`).
pub fn info(level: i8, msg: &str) {
    if verbosity() >= level {
        eprintln!("{}: {msg}", program_name());
    }
}
