//! The file interface (`f:`): `.trapcap` files.
//!
//! A file is a hello followed by blocks (`u32` big-endian payload length, then
//! messages, each `u16` big-endian length + bytes). Every rotated file starts
//! with its own hello.
//!
//! Output parameters: `f:PATH[:w|:a][:size=MB][:time=MIN]`. Names follow
//! libtrap exactly: `time=` appends `.%Y%m%d%H%M` of the slot start (aligned
//! to multiples of MIN minutes since the epoch, local time), `size=` and
//! append mode append `.00000`, `.00001`... (append mode takes the first index
//! whose file does not exist), the path goes through strftime, and missing
//! directories are created.
//!
//! Input: `f:PATTERN` — whitespace-separated words, each with `~` and `$VAR`
//! expanded and then globbed (sorted); the files are read in order as one
//! stream. Unlike libtrap's `wordexp`, no command substitution is performed.

use crate::error::{Result, TrapError};
use crate::format::{DataFormat, HelloHeader, HELLO_SIZE};
use crate::input::{Fetch, Source};
use crate::stats::{IfcInfo, OutputStats};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Largest payload of a block the writer produces (libtrap's buffer size).
pub const BLOCK_PAYLOAD: usize = 100_000;
/// The file reader's own buffer: what one read takes beyond a block header.
const BLOCK_HEADER_READ: usize = 4096;

/// Largest block the reader accepts; anything larger is not TRAP data.
pub const MAX_READ_BLOCK: usize = 1 << 20;

/// Expands `~`, `~/...` and `$VAR` / `${VAR}` in one word.
pub fn expand_word(word: &str) -> String {
    let mut s = String::new();
    let rest = if word == "~" || word.starts_with("~/") {
        s.push_str(&std::env::var("HOME").unwrap_or_default());
        &word[1..]
    } else {
        word
    };
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            s.push(c);
            continue;
        }
        let braced = chars.peek() == Some(&'{');
        if braced {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphanumeric() || n == '_' {
                name.push(n);
                chars.next();
            } else {
                break;
            }
        }
        if braced && chars.peek() == Some(&'}') {
            chars.next();
        }
        if name.is_empty() {
            s.push('$');
        } else {
            s.push_str(&std::env::var(&name).unwrap_or_default());
        }
    }
    s
}

/// Splits on whitespace outside single or double quotes.
fn split_words(pattern: &str) -> Vec<(String, bool)> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let (mut quote, mut quoted, mut any) = (None, false, false);
    for c in pattern.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                quoted = true;
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push((std::mem::take(&mut cur), quoted));
                }
                quoted = false;
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        words.push((cur, quoted));
    }
    words
}

/// The files an input pattern names, in reading order.
pub fn expand_input_pattern(pattern: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (word, quoted) in split_words(pattern) {
        let word = if quoted { word } else { expand_word(&word) };
        let has_glob = !quoted && word.contains(['*', '?', '[']);
        let matches: Vec<PathBuf> = if has_glob {
            glob::glob(&word)
                .map(|paths| paths.filter_map(|p| p.ok()).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        if matches.is_empty() {
            files.push(PathBuf::from(word));
        } else {
            files.extend(matches);
        }
    }
    files
}

/// A file of an input: a path, or bytes already at hand (tests, fuzzing).
enum FileEntry {
    Path(PathBuf),
    Reader(PathBuf, Option<Box<dyn Read + Send>>),
}

impl FileEntry {
    fn path(&self) -> &Path {
        match self {
            FileEntry::Path(p) | FileEntry::Reader(p, _) => p,
        }
    }
}

/// The file being read.
struct Current {
    reader: BufReader<Box<dyn Read + Send>>,
    path: PathBuf,
    /// Bytes consumed so far.
    offset: u64,
    /// Where the block in the caller's buffer starts.
    block_at: u64,
}

/// Reads a sequence of `.trapcap` files as one stream.
///
/// End of stream (a message of at most one byte) belongs at the end of a
/// file: C libtrap writes the producer's end-of-stream message into the last
/// block of its last file. Such a message at the end of a file that more
/// files follow (several runs' files read together) is skipped, so that the
/// files read as one stream; anywhere else it is corruption.
pub(crate) struct FileSource {
    ifc: String,
    files: Vec<FileEntry>,
    next: usize,
    current: Option<Current>,
    pending_error: Option<TrapError>,
}

impl FileSource {
    pub(crate) fn new(ifc: String, pattern: &str) -> FileSource {
        FileSource {
            ifc,
            files: expand_input_pattern(pattern)
                .into_iter()
                .map(FileEntry::Path)
                .collect(),
            next: 0,
            current: None,
            pending_error: None,
        }
    }

    /// Reads `files` (a name for messages and the bytes) as one stream.
    pub(crate) fn from_readers(
        ifc: String,
        files: Vec<(String, Box<dyn Read + Send>)>,
    ) -> FileSource {
        FileSource {
            ifc,
            files: files
                .into_iter()
                .map(|(name, r)| FileEntry::Reader(PathBuf::from(name), Some(r)))
                .collect(),
            next: 0,
            current: None,
            pending_error: None,
        }
    }

    fn open(&mut self, index: usize) -> Result<(Box<dyn Read + Send>, PathBuf)> {
        let entry = self
            .files
            .get_mut(index)
            .ok_or_else(|| TrapError::corrupt("f:", "no such file"))?;
        match entry {
            FileEntry::Path(path) => match File::open(&*path) {
                Ok(f) => Ok((Box::new(f), path.clone())),
                Err(e) => Err(TrapError::io(
                    &self.ifc,
                    format!("cannot open {}", path.display()),
                    e,
                )),
            },
            FileEntry::Reader(path, r) => match r.take() {
                Some(r) => Ok((r, path.clone())),
                None => Err(TrapError::io(
                    &self.ifc,
                    format!("cannot open {}", path.display()),
                    io::Error::other("read already"),
                )),
            },
        }
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Source for FileSource {
    fn fetch(&mut self, buf: &mut Vec<u8>, _deadline: Option<Instant>) -> Result<Fetch> {
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        loop {
            let Some(cur) = self.current.as_mut() else {
                if self.next >= self.files.len() {
                    return Ok(Fetch::End);
                }
                let (file, path) = self.open(self.next)?;
                self.next += 1;
                // Much smaller than a block: reading a block's 4-byte header
                // fills this buffer, and what it holds of the block is copied
                // again, while the rest is read straight into the caller's
                // buffer. 64 KiB (most of a block) cost a second copy of
                // 2/3 of the data; 256 KiB also 3x the system time.
                let mut reader = BufReader::with_capacity(BLOCK_HEADER_READ, file);
                let fail = |d: String| TrapError::Negotiation {
                    ifc: self.ifc.clone(),
                    detail: format!("{}: {d}", path.display()),
                };
                let cannot_read =
                    |e| TrapError::io(&self.ifc, format!("cannot read {}", path.display()), e);
                let mut head = [0u8; HELLO_SIZE];
                let n = read_full(&mut reader, &mut head).map_err(cannot_read)?;
                if n == 0 {
                    return Err(fail("the file is empty (no TRAP hello)".into()));
                }
                if n < HELLO_SIZE {
                    return Err(fail("the file ends inside its hello (truncated)".into()));
                }
                let header = HelloHeader::parse(&head).map_err(fail)?;
                let mut spec = vec![0u8; header.spec_len];
                if read_full(&mut reader, &mut spec).map_err(cannot_read)? < spec.len() {
                    return Err(fail("the file ends inside its hello (truncated)".into()));
                }
                let format = match header.into_format(&spec).map_err(fail)? {
                    Some(f) => f,
                    None => return Err(fail("the hello announces no data format".into())),
                };
                let offset = (HELLO_SIZE + spec.len()) as u64;
                self.current = Some(Current {
                    reader,
                    path,
                    offset,
                    block_at: offset,
                });
                return Ok(Fetch::Hello(format));
            };
            let at = cur.offset;
            let path = &cur.path;
            let corrupt =
                |d: String| TrapError::corrupt(&self.ifc, format!("{}: {d}", path.display()));
            let cannot_read =
                |e| TrapError::io(&self.ifc, format!("cannot read {}", path.display()), e);
            let mut head = [0u8; 4];
            let n = read_full(&mut cur.reader, &mut head).map_err(cannot_read)?;
            if n == 0 {
                self.current = None;
                continue;
            }
            if n < 4 {
                return Err(corrupt(format!(
                    "the file ends inside a block header at byte {at} (truncated)"
                )));
            }
            let len = u32::from_be_bytes(head) as usize;
            if len > MAX_READ_BLOCK {
                return Err(corrupt(format!(
                    "block of {len} bytes at byte {at}: corrupt or not a .trapcap file"
                )));
            }
            buf.resize(len, 0);
            let got = read_full(&mut cur.reader, buf).map_err(cannot_read)?;
            cur.block_at = at;
            cur.offset += 4 + got as u64;
            if got < len {
                // Deliver the complete messages of the cut block first.
                buf.truncate(got);
                self.pending_error = Some(corrupt(format!(
                    "the file ends inside the block at byte {at} ({got} of {len} bytes; truncated)"
                )));
                self.current = None;
                self.next = self.files.len();
            }
            return Ok(Fetch::Buffer { seq: None });
        }
    }

    fn end_of_stream(&mut self, at: usize, last: bool) -> Result<bool> {
        // A cut file: its damage is the news, not the end of stream.
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        let Some(cur) = self.current.as_mut() else {
            return Ok(true);
        };
        let byte = cur.block_at + 4 + at as u64;
        let misplaced = |what: &str| {
            Err(TrapError::corrupt(
                &self.ifc,
                format!(
                    "{}: end-of-stream message at byte {byte}, but {what} (corrupt file)",
                    cur.path.display()
                ),
            ))
        };
        if !last {
            return misplaced("its block goes on");
        }
        match cur.reader.fill_buf() {
            Ok(rest) if !rest.is_empty() => return misplaced("the file goes on"),
            Ok(_) => {}
            Err(e) => {
                return Err(TrapError::io(
                    &self.ifc,
                    format!("cannot read {}", cur.path.display()),
                    e,
                ))
            }
        }
        // At the end of this file: the end of the stream only after the last one.
        Ok(self.next >= self.files.len())
    }

    fn id(&self) -> String {
        match &self.current {
            Some(cur) => cur.path.display().to_string(),
            None => self
                .files
                .get(self.next)
                .or(self.files.last())
                .map(|p| p.path().display().to_string())
                .unwrap_or_default(),
        }
    }

    fn connected(&self) -> bool {
        self.current.is_some()
    }
}

/// The largest `size=`: 16 TiB, in megabytes.
pub const MAX_SIZE_MB: u64 = 1 << 24;
/// The longest `time=`: a year, in minutes.
pub const MAX_TIME_MIN: u64 = 365 * 24 * 60;

/// File output options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileOptions {
    /// The path template (after `~`/`$VAR` expansion, before strftime).
    pub path: String,
    pub append: bool,
    /// Rotate after this many bytes (`size=` MB × 2^20); 0 = never.
    pub size_limit: u64,
    /// Rotate every this many minutes (`time=`); 0 = never.
    pub time_minutes: u64,
    /// `time=` was given (even `time=0` adds the timestamp to the name).
    pub timestamped: bool,
    /// `buffer=off`: every message is its own block.
    pub buffered: bool,
}

impl FileOptions {
    /// Parses `PATH[:w|:a][:size=MB][:time=MIN]`.
    pub fn parse(params: &[String], buffered: bool) -> Result<FileOptions, String> {
        let (path, rest) = params.split_first().ok_or("missing file name")?;
        let mut o = FileOptions {
            path: expand_word(path),
            append: false,
            size_limit: 0,
            time_minutes: 0,
            timestamped: false,
            buffered,
        };
        for p in rest {
            if p == "w" {
                o.append = false;
            } else if p == "a" {
                o.append = true;
            } else if let Some(v) = p.strip_prefix("size=") {
                let mb = v
                    .parse::<u64>()
                    .map_err(|_| format!("bad size `{v}` (megabytes, 0 to {MAX_SIZE_MB})"))?;
                if mb > MAX_SIZE_MB {
                    return Err(format!(
                        "size={v} is too large (at most {MAX_SIZE_MB} megabytes, 16 TiB)"
                    ));
                }
                o.size_limit = mb << 20;
            } else if let Some(v) = p.strip_prefix("time=") {
                let min = v
                    .parse::<u64>()
                    .map_err(|_| format!("bad time `{v}` (minutes, 0 to {MAX_TIME_MIN})"))?;
                if min > MAX_TIME_MIN {
                    return Err(format!(
                        "time={v} is too long (at most {MAX_TIME_MIN} minutes, a year)"
                    ));
                }
                o.time_minutes = min;
                o.timestamped = true;
            } else {
                return Err(format!(
                    "unknown file parameter `{p}` (w, a, size=MB, time=MIN)"
                ));
            }
        }
        if o.path == "/dev/stdout" {
            o.append = false;
            o.size_limit = 0;
            o.time_minutes = 0;
            o.timestamped = false;
        }
        Ok(o)
    }
}

/// Source of "now" for file naming (swappable in tests).
pub trait Clock: Send {
    fn now(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// strftime over the local time `t`; a template with an invalid `%` sequence
/// is used literally.
pub fn strftime_local(template: &str, t: i64) -> String {
    use chrono::format::{Item, StrftimeItems};
    use chrono::TimeZone;
    if StrftimeItems::new(template).any(|i| matches!(i, Item::Error)) {
        return template.to_string();
    }
    match chrono::Local.timestamp_opt(t, 0).single() {
        Some(dt) => {
            let mut s = String::new();
            use std::fmt::Write as _;
            if write!(s, "{}", dt.format(template)).is_err() {
                return template.to_string();
            }
            s
        }
        None => template.to_string(),
    }
}

/// Writes `.trapcap` files with libtrap's rotation and naming.
pub struct FileWriter {
    ifc: String,
    opts: FileOptions,
    clock: Box<dyn Clock>,
    format: Option<DataFormat>,
    file: Option<BufWriter<File>>,
    current_name: PathBuf,
    written: u64,
    slot_start: i64,
    index: u32,
    block: Vec<u8>,
    block_msgs: u64,
    info: Arc<IfcInfo>,
    stats: Arc<OutputStats>,
}

impl FileWriter {
    pub fn new(ifc: String, opts: FileOptions, clock: Box<dyn Clock>) -> FileWriter {
        let mut block = Vec::with_capacity(4 + BLOCK_PAYLOAD);
        block.extend_from_slice(&[0; 4]);
        let info = Arc::new(IfcInfo::new('f', opts.path.clone()));
        let stats = Arc::new(OutputStats::default());
        stats.num_clients.store(1, Relaxed);
        FileWriter {
            ifc,
            opts,
            clock,
            format: None,
            file: None,
            current_name: PathBuf::new(),
            written: 0,
            slot_start: 0,
            index: 0,
            block,
            block_msgs: 0,
            info,
            stats,
        }
    }

    pub(crate) fn stats(&self) -> (Arc<IfcInfo>, Arc<OutputStats>) {
        (self.info.clone(), self.stats.clone())
    }

    /// Name of the file being written (empty before the first block).
    pub fn current_file(&self) -> &Path {
        &self.current_name
    }

    /// `IFC: cannot VERB PATH: reason`.
    fn io(&self, e: io::Error, verb: &str, path: &Path) -> TrapError {
        TrapError::io(&self.ifc, format!("cannot {verb} {}", path.display()), e)
    }

    /// Sets the format; a change closes the current file and starts the next one.
    pub fn set_format(&mut self, format: DataFormat) -> Result<()> {
        if self.format.as_ref() == Some(&format) {
            return Ok(());
        }
        let had_format = self.format.is_some();
        self.flush()?;
        self.format = Some(format);
        if had_format && self.file.is_some() {
            self.close_file()?;
            if !self.opts.append && self.opts.size_limit == 0 {
                // libtrap would reopen (truncate) the same name and lose the
                // data written so far; continue in a suffixed file instead.
                crate::log::warn(&format!(
                    "{}: data format changed; continuing in a new suffixed file to keep {}",
                    self.ifc,
                    self.current_name.display()
                ));
                self.opts.append = true;
            }
        }
        Ok(())
    }

    fn next_name(&mut self) -> Result<PathBuf> {
        let mut template = self.opts.path.clone();
        if self.opts.timestamped {
            template.push_str(".%Y%m%d%H%M");
        }
        let mut t0 = self.clock.now();
        if self.opts.time_minutes > 0 {
            t0 -= t0.rem_euclid(self.opts.time_minutes as i64 * 60);
        }
        self.slot_start = t0;
        let base = strftime_local(&template, t0);
        if let Some(dir) = Path::new(&base)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            fs::create_dir_all(dir).map_err(|e| self.io(e, "create directory", dir))?;
        }
        let name = if self.opts.append {
            loop {
                let candidate = format!("{base}.{:05}", self.index);
                self.index = self.index.wrapping_add(1);
                if !Path::new(&candidate).exists() {
                    break candidate;
                }
            }
        } else if self.opts.size_limit > 0 {
            let candidate = format!("{base}.{:05}", self.index);
            self.index = self.index.wrapping_add(1);
            candidate
        } else {
            base
        };
        Ok(PathBuf::from(name))
    }

    fn open_next(&mut self) -> Result<()> {
        let name = self.next_name()?;
        let mut oo = OpenOptions::new();
        if self.opts.append {
            oo.append(true).create(true);
        } else {
            oo.write(true).create(true).truncate(true);
        }
        let file = oo.open(&name).map_err(|e| self.io(e, "create", &name))?;
        self.written = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.file = Some(BufWriter::with_capacity(1 << 16, file));
        self.info.set_id(name.display().to_string());
        self.current_name = name;
        let hello = match &self.format {
            Some(f) => f.hello(),
            None => return Err(TrapError::NotInitialized(self.ifc.clone())),
        };
        self.write_raw(&hello)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        if let Err(e) = f.write_all(bytes) {
            let name = self.current_name.clone();
            return Err(self.io(e, "write", &name));
        }
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn close_file(&mut self) -> Result<()> {
        if let Some(mut f) = self.file.take() {
            f.flush()
                .map_err(|e| self.io(e, "write", &self.current_name.clone()))?;
        }
        Ok(())
    }

    /// Writes the current block (if any) to the file, rotating first if due.
    fn write_block(&mut self) -> Result<()> {
        if self.block_msgs == 0 {
            return Ok(());
        }
        if self.format.is_none() {
            self.stats
                .dropped_messages
                .fetch_add(self.block_msgs, Relaxed);
            self.block.truncate(4);
            self.block_msgs = 0;
            return Err(TrapError::NotInitialized(self.ifc.clone()));
        }
        let open = self.file.is_some();
        let time_due = open
            && self.opts.time_minutes > 0
            && (self.clock.now() - self.slot_start) / 60 >= self.opts.time_minutes as i64;
        let size_due = open && self.opts.size_limit > 0 && self.written >= self.opts.size_limit;
        if !open || time_due || size_due {
            if time_due {
                self.index = 0;
            }
            self.close_file()?;
            self.open_next()?;
        }
        let payload = (self.block.len() - 4) as u32;
        self.block[..4].copy_from_slice(&payload.to_be_bytes());
        let block = std::mem::take(&mut self.block);
        let res = self.write_raw(&block);
        self.block = block;
        self.block.truncate(4);
        self.stats.sent_messages.fetch_add(self.block_msgs, Relaxed);
        self.stats.buffers.fetch_add(1, Relaxed);
        self.block_msgs = 0;
        res
    }

    /// Appends a message; writes the block when it is full (or at once with
    /// `buffer=off`).
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        if msg.len() > u16::MAX as usize {
            self.stats.dropped_messages.fetch_add(1, Relaxed);
            return Err(TrapError::corrupt(
                &self.ifc,
                format!("message of {} bytes exceeds 65535", msg.len()),
            ));
        }
        if self.block.len() + 2 + msg.len() > 4 + BLOCK_PAYLOAD {
            self.write_block()?;
        }
        self.block
            .extend_from_slice(&(msg.len() as u16).to_be_bytes());
        self.block.extend_from_slice(msg);
        self.block_msgs += 1;
        if !self.opts.buffered {
            self.write_block()?;
        }
        Ok(())
    }

    /// Writes the pending block and flushes the file.
    pub fn flush(&mut self) -> Result<()> {
        self.write_block()?;
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.flush() {
                let name = self.current_name.clone();
                return Err(self.io(e, "write", &name));
            }
        }
        Ok(())
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    struct FakeClock(Arc<AtomicI64>);
    impl Clock for FakeClock {
        fn now(&self) -> i64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    fn opts(params: &[&str]) -> FileOptions {
        let v: Vec<String> = params.iter().map(|s| s.to_string()).collect();
        FileOptions::parse(&v, true).unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn writer(params: &[&str], clock: &Arc<AtomicI64>) -> FileWriter {
        let mut w = FileWriter::new(
            "f:test".into(),
            opts(params),
            Box::new(FakeClock(clock.clone())),
        );
        w.set_format(DataFormat::UniRec("uint32 A".into())).unwrap();
        w
    }

    #[test]
    fn parses_options() {
        let o = opts(&["x", "a", "size=2", "time=5"]);
        assert!(o.append && o.timestamped);
        assert_eq!((o.size_limit, o.time_minutes), (2 << 20, 5));
        let o = opts(&["/dev/stdout", "a", "size=2"]);
        assert!(!o.append && o.size_limit == 0);
        assert!(FileOptions::parse(&["x".into(), "size=big".into()], true).is_err());
        assert!(FileOptions::parse(&["x".into(), "q".into()], true).is_err());
    }

    #[test]
    fn sizes_and_times_are_range_checked() {
        let e = |p: &str| FileOptions::parse(&["x".into(), p.into()], true).unwrap_err();
        // 2^44 + 1 MB wrapped to 1 MiB, 2^44 MB to 0 (never rotating).
        for big in [
            "size=17592186044417",
            "size=17592186044416",
            "size=16777217",
        ] {
            assert!(
                e(big).contains("at most 16777216 megabytes"),
                "{big}: {}",
                e(big)
            );
        }
        assert!(e("size=99999999999999999999").contains("bad size"));
        assert!(e("time=99999999999999999").contains("at most 525600 minutes"));
        assert!(e("time=-5").contains("bad time"));
        let o = opts(&["x", "size=16777216", "time=525600"]);
        assert_eq!((o.size_limit, o.time_minutes), (1 << 44, 525_600));
    }

    /// A `.trapcap` image: hello of `uint32 A`, then each block's messages.
    fn image(blocks: &[&[&[u8]]]) -> Vec<u8> {
        let mut out = DataFormat::UniRec("uint32 A".into()).hello();
        for block in blocks {
            let payload: usize = block.iter().map(|m| 2 + m.len()).sum();
            out.extend_from_slice(&(payload as u32).to_be_bytes());
            for m in *block {
                out.extend_from_slice(&(m.len() as u16).to_be_bytes());
                out.extend_from_slice(m);
            }
        }
        out
    }

    /// The messages an input returns up to end of stream, or its error.
    fn read_all(files: Vec<(&str, Vec<u8>)>) -> Result<Vec<Vec<u8>>, String> {
        let files = files
            .into_iter()
            .map(|(n, b)| {
                (
                    n.to_string(),
                    Box::new(io::Cursor::new(b)) as Box<dyn Read + Send>,
                )
            })
            .collect();
        let mut input = crate::Input::from_trapcap_readers("f:test", files);
        let mut got = Vec::new();
        loop {
            let m = input.recv().map_err(|e| e.to_string())?;
            if m.is_eos() {
                return Ok(got);
            }
            got.push(m.data.to_vec());
        }
    }

    const R1: &[u8] = &[1, 0, 0, 0];
    const R2: &[u8] = &[2, 0, 0, 0];

    #[test]
    fn an_end_of_stream_inside_a_file_is_corruption() {
        // Zero- and one-byte messages in the middle of a block.
        for eos in [&[][..], &[0][..]] {
            let e = read_all(vec![("a.trapcap", image(&[&[R1, eos, R2]]))]).unwrap_err();
            assert_eq!(
                e,
                "f:test: a.trapcap: end-of-stream message at byte 26, \
                 but its block goes on (corrupt file)"
            );
        }
        // At the end of a block that more blocks follow.
        let e = read_all(vec![("a.trapcap", image(&[&[R1, &[0]], &[R2]]))]).unwrap_err();
        assert!(
            e.contains("at byte 26, but the file goes on (corrupt file)"),
            "{e}"
        );
    }

    #[test]
    fn files_ending_in_end_of_stream_read_as_one_stream() {
        let a = image(&[&[R1], &[R2, &[0]]]);
        let b = image(&[&[R2, R1, &[0]]]);
        let got = read_all(vec![("a", a.clone()), ("b", b)]).unwrap();
        assert_eq!(got, [R1, R2, R2, R1]);
        // The last file's end of stream is the end; a file without one is fine.
        assert_eq!(read_all(vec![("a", a)]).unwrap(), [R1, R2]);
        let plain = image(&[&[R1]]);
        assert_eq!(
            read_all(vec![("a", plain.clone()), ("b", plain)]).unwrap(),
            [R1, R1]
        );
    }

    #[test]
    fn size_rotation_suffixes_from_the_first_file() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicI64::new(1_800_000_000));
        let path = dir.path().join("a.trapcap");
        let mut w = writer(&[path.to_str().unwrap(), "size=1"], &clock);
        let msg = [7u8; 1000];
        for _ in 0..2800 {
            w.send(&msg).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        assert_eq!(
            names(dir.path()),
            ["a.trapcap.00000", "a.trapcap.00001", "a.trapcap.00002"]
        );
    }

    #[test]
    fn time_rotation_names_carry_the_slot() {
        std::env::set_var("TZ", "UTC");
        let dir = tempfile::tempdir().unwrap();
        // 2026-11-22 20:39:10 UTC
        let clock = Arc::new(AtomicI64::new(1_795_379_950));
        let path = dir.path().join("c.trapcap");
        let mut w = writer(&[path.to_str().unwrap(), "time=5"], &clock);
        w.send(b"abcd").unwrap();
        w.flush().unwrap();
        clock.fetch_add(301, Ordering::Relaxed);
        w.send(b"abcd").unwrap();
        w.flush().unwrap();
        drop(w);
        assert_eq!(
            names(dir.path()),
            ["c.trapcap.202611222035", "c.trapcap.202611222040"]
        );
    }

    #[test]
    fn append_mode_takes_the_next_free_index() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicI64::new(1_800_000_000));
        let path = dir.path().join("b.trapcap");
        for _ in 0..2 {
            let mut w = writer(&[path.to_str().unwrap(), "a"], &clock);
            w.send(b"x").unwrap();
        }
        assert_eq!(names(dir.path()), ["b.trapcap.00000", "b.trapcap.00001"]);
    }

    #[test]
    fn strftime_and_directories() {
        std::env::set_var("TZ", "UTC");
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicI64::new(1_795_379_950));
        let path = dir.path().join("sub/dir/e_%Y.trapcap");
        let mut w = writer(&[path.to_str().unwrap()], &clock);
        w.send(b"x").unwrap();
        drop(w);
        assert!(dir.path().join("sub/dir/e_2026.trapcap").exists());
        assert_eq!(strftime_local("bad%Q", 0), "bad%Q");
    }

    #[test]
    fn file_bytes_match_libtrap() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicI64::new(0));
        let path = dir.path().join("x.trapcap");
        let mut w = writer(&[path.to_str().unwrap()], &clock);
        w.send(&[0x44, 0x33, 0x22, 0x11]).unwrap();
        drop(w);
        let bytes = fs::read(&path).unwrap();
        let mut want = vec![2, 0, 0, 0, 0, 0, 0, 8];
        want.extend_from_slice(b"uint32 A");
        want.extend_from_slice(&[0, 0, 0, 6, 0, 4, 0x44, 0x33, 0x22, 0x11]);
        assert_eq!(bytes, want);
    }

    #[test]
    fn pattern_expansion() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["r.trapcap.00001", "r.trapcap.00000", "other"] {
            fs::write(dir.path().join(n), b"").unwrap();
        }
        let d = dir.path().display();
        let got = expand_input_pattern(&format!("{d}/r.trapcap.* '{d}/no such'"));
        let want: Vec<PathBuf> = vec![
            dir.path().join("r.trapcap.00000"),
            dir.path().join("r.trapcap.00001"),
            dir.path().join("no such"),
        ];
        assert_eq!(got, want);
        std::env::set_var("NEMEA_TEST_DIR", dir.path());
        assert_eq!(expand_word("${NEMEA_TEST_DIR}/x"), format!("{d}/x"));
        assert_eq!(expand_word("$NEMEA_TEST_DIR/x"), format!("{d}/x"));
    }
}
