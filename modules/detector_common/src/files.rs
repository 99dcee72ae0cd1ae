//! Reading a list or configuration file into memory, with a size limit.
//!
//! Blacklists, pool lists, address groups, reporter rules and detector
//! configurations are read whole. Without a bound, a wrong path such as
//! `/dev/zero` (or a runaway file) is read until memory runs out; with it,
//! such a file is refused with one line naming the file and the limit.
//! Regular files, FIFOs (`<(…)`) and character devices (`/dev/null`,
//! `/dev/stdin`) are read up to the limit; directories, block devices and
//! sockets are refused before reading.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// The most a list or configuration file read into memory may hold:
/// 256 MiB, far above real lists (Emerging Threats or NEMEA's blacklists are
/// a few MiB).
pub const MAX_FILE_SIZE: u64 = 256 << 20;

/// Why a file could not be read. Each cause is in the text once (no
/// `source()`, which anyhow's `{:#}` would print again).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {cause}")]
    Io { path: String, cause: io::Error },
    #[error("cannot read {path}: larger than {} (the limit for a file read into memory)", size_text(*.limit))]
    TooLarge { path: String, limit: u64 },
    #[error("cannot read {path}: {kind}, not a file")]
    NotAFile { path: String, kind: &'static str },
    #[error("cannot read {path}: not UTF-8 text (at byte {at})")]
    NotText { path: String, at: usize },
}

/// `n` bytes in words: `256 MiB`, `1 KiB`, `100 bytes`.
fn size_text(n: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// The bytes of `path`, at most `limit` of them (a bigger file is an error,
/// never truncated).
pub fn read_bytes_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let name = || path.display().to_string();
    let io_err = |cause| ReadError::Io {
        path: name(),
        cause,
    };
    let file = File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        Some("a directory")
    } else if ft.is_block_device() {
        Some("a block device")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        None
    };
    if let Some(kind) = kind {
        return Err(ReadError::NotAFile { path: name(), kind });
    }
    let too_large = || ReadError::TooLarge {
        path: name(),
        limit,
    };
    if ft.is_file() && meta.len() > limit {
        return Err(too_large());
    }
    let hint = if ft.is_file() { meta.len() } else { 0 };
    let mut buf = Vec::with_capacity(usize::try_from(hint.min(limit)).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io_err)?;
    if buf.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(buf)
}

/// The UTF-8 text of `path`, at most `limit` bytes.
pub fn read_text_limited(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_bytes_limited(path, limit)?).map_err(|e| ReadError::NotText {
        path: path.display().to_string(),
        at: e.utf8_error().valid_up_to(),
    })
}

/// The UTF-8 text of `path`, at most [`MAX_FILE_SIZE`] bytes.
pub fn read_text(path: &Path) -> Result<String, ReadError> {
    read_text_limited(path, MAX_FILE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_kinds() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("list");
        std::fs::write(&p, "192.0.2.1\n").unwrap();
        assert_eq!(read_text(&p).unwrap(), "192.0.2.1\n");
        assert_eq!(read_text_limited(&p, 10).unwrap(), "192.0.2.1\n");
        let e = read_text_limited(&p, 9).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "cannot read {}: larger than 9 bytes (the limit for a file read into memory)",
                p.display()
            )
        );
        // Issue 16, finding 10: /dev/zero was read until memory ran out.
        let e = read_text_limited(Path::new("/dev/zero"), 1 << 20)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "cannot read /dev/zero: larger than 1 MiB (the limit for a file read into memory)"
        );
        assert_eq!(read_text(Path::new("/dev/null")).unwrap(), "");
        let e = read_text(d.path()).unwrap_err().to_string();
        assert!(e.ends_with(": a directory, not a file"), "{e}");
        let e = read_text(&d.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot read ") && e.contains("No such file"),
            "{e}"
        );
        std::fs::write(&p, b"ok\xff").unwrap();
        let e = read_text(&p).unwrap_err().to_string();
        assert!(e.ends_with(": not UTF-8 text (at byte 2)"), "{e}");
        assert_eq!(read_bytes_limited(&p, 3).unwrap(), b"ok\xff");
        assert_eq!(size_text(MAX_FILE_SIZE), "256 MiB");
        use std::error::Error;
        assert!(read_text(d.path()).unwrap_err().source().is_none());
    }
}
