//! Input interfaces: the receiving side of files and sockets.
//!
//! An [`Input`] turns the buffers of its source (file blocks or socket
//! containers) into messages, negotiates the data format on each hello and
//! keeps the statistics. End of stream is a message of at most one byte; a file
//! input returns an empty message after its last file.

use crate::error::{Result, TrapError};
use crate::format::{negotiate, DataFormat, Negotiated, Required};
use crate::spec::Timeout;
use crate::stats::{IfcInfo, InputStats};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

/// What a source produced.
pub(crate) enum Fetch {
    /// `buf` holds a new buffer of messages; `seq` is the container's first
    /// message index and message count (socket transports only).
    Buffer { seq: Option<(u64, u16)> },
    /// A new connection or file began with this hello.
    Hello(DataFormat),
    /// No more data will ever come (after the last file).
    End,
}

/// A transport that yields buffers of length-prefixed messages.
pub(crate) trait Source: Send {
    /// Fetches the next buffer into `buf` (replacing its contents), waiting
    /// until `deadline` at most (`None` = as long as it takes).
    fn fetch(&mut self, buf: &mut Vec<u8>, deadline: Option<Instant>) -> Result<Fetch>;
    /// A message of at most one byte (end of stream) starts at byte `at`
    /// of the buffer last fetched; `last`: nothing follows it there.
    /// `Ok(true)`: it is the end of stream; `Ok(false)`: skip it; `Err`:
    /// it cannot be there (a corrupt file).
    fn end_of_stream(&mut self, _at: usize, _last: bool) -> Result<bool> {
        Ok(true)
    }
    /// The module stops (a signal) having taken every message of the buffer
    /// last fetched: a source that acknowledges what was handed on does so.
    fn handed_all(&mut self) {}
    /// The interface id for statistics (socket name, current file...).
    fn id(&self) -> String;
    /// True while connected / a file is open.
    fn connected(&self) -> bool;
}

/// A received message. `format_changed` is set on the first message after the
/// sender's format changed (or was first learnt): rebuild the template from
/// [`Input::format`] before reading it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub data: &'a [u8],
    pub format_changed: bool,
    /// The sender's current format.
    pub format: Option<&'a DataFormat>,
}

impl Message<'_> {
    /// The NEMEA end-of-stream convention: a message of at most one byte.
    pub fn is_eos(&self) -> bool {
        self.data.len() <= 1
    }
}

/// One input interface.
pub struct Input {
    name: String,
    source: Box<dyn Source>,
    required: Required,
    timeout: Timeout,
    format: Option<DataFormat>,
    changed: bool,
    buf: Vec<u8>,
    pos: usize,
    ended: bool,
    next_seq: Option<u64>,
    messages: u64,
    published: u64,
    last_fetch: Option<Instant>,
    info: Arc<IfcInfo>,
    stats: Arc<InputStats>,
}

impl Input {
    pub(crate) fn new(
        name: String,
        source: Box<dyn Source>,
        timeout: Timeout,
        letter: char,
    ) -> Input {
        let info = Arc::new(IfcInfo::new(letter, source.id()));
        Input {
            name,
            source,
            required: Required::AnyUniRec,
            timeout,
            format: None,
            changed: false,
            buf: Vec::new(),
            pos: 0,
            ended: false,
            next_seq: None,
            messages: 0,
            published: 0,
            last_fetch: None,
            info,
            stats: Arc::new(InputStats::default()),
        }
    }

    /// An input reading `.trapcap` data from readers instead of files (one
    /// per file, with a name for messages), exactly as an `f:` input reads
    /// files: for tests and fuzzing.
    pub fn from_trapcap_readers(
        name: &str,
        files: Vec<(String, Box<dyn std::io::Read + Send>)>,
    ) -> Input {
        let source = crate::file::FileSource::from_readers(name.to_string(), files);
        Input::new(name.to_string(), Box::new(source), Timeout::Wait, 'f')
    }

    /// An input decoding the bytes one connection of a `u:`/`t:` output
    /// sends (hello, then containers), exactly as a socket input does; after
    /// them the stream ends: for tests and fuzzing.
    pub fn from_stream_reader(name: &str, bytes: Box<dyn std::io::Read + Send>) -> Input {
        let source = crate::stream::StreamSource::new(
            name.to_string(),
            crate::stream::Target::Memory(Some(bytes)),
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
        );
        Input::new(name.to_string(), Box::new(source), Timeout::Wait, 'u')
    }

    /// An input decoding JetStream batches (format header, spec header,
    /// payload) held in memory, exactly as a `j:` input decodes what the
    /// server delivers; after them the stream ends: for tests and fuzzing.
    pub fn from_jetstream_batches(name: &str, batches: Vec<crate::jetstream::RawBatch>) -> Input {
        let source = crate::jetstream::MemorySource::new(name.to_string(), batches);
        Input::new(name.to_string(), Box::new(source), Timeout::Wait, 'j')
    }

    /// The interface as written in `-i` (for messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets what this input accepts (default: any UniRec template).
    pub fn set_required(&mut self, required: Required) {
        self.required = required;
    }

    /// The sender's current format (after the first message).
    pub fn format(&self) -> Option<&DataFormat> {
        self.format.as_ref()
    }

    /// Sets the receive timeout, overriding the one from `-i`.
    pub fn set_timeout(&mut self, timeout: Timeout) {
        self.timeout = timeout;
    }

    /// True when the next [`recv`](Self::recv) returns without I/O: a good moment
    /// for a consumer to flush its own output buffers is when this is false.
    pub fn has_buffered(&self) -> bool {
        self.pos < self.buf.len()
    }

    pub(crate) fn stats(&self) -> (Arc<IfcInfo>, Arc<InputStats>) {
        (self.info.clone(), self.stats.clone())
    }

    /// True once a file input is past its last file: every further
    /// [`recv`](Self::recv) returns end of stream at once. Socket inputs never
    /// end; after a sender's end of stream they wait for the next sender.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Messages returned so far.
    pub fn received(&self) -> u64 {
        self.messages
    }

    /// Messages the sender produced that never arrived (gaps in container
    /// sequence numbers, e.g. under a `NO_WAIT` sender).
    pub fn missed(&self) -> u64 {
        self.stats.missed.load(Relaxed)
    }

    /// Receives the next message. After SIGINT/SIGTERM ([`crate::terminate`])
    /// the messages of the buffer at hand are still returned, then
    /// [`TrapError::Terminated`], whatever the source (files too).
    #[inline]
    pub fn recv(&mut self) -> Result<Message<'_>> {
        let (start, end, format_changed) = match self.next_in_buffer() {
            Some(span) => span,
            None => self.next_span()?,
        };
        Ok(Message {
            data: &self.buf[start..end],
            format_changed,
            format: self.format.as_ref(),
        })
    }

    fn publish(&mut self) {
        self.stats
            .messages
            .fetch_add(self.messages - self.published, Relaxed);
        self.published = self.messages;
        self.stats.connected.store(self.source.connected(), Relaxed);
    }

    /// The common case, kept small enough to inline into the module's
    /// record loop: the next message lies whole in the buffer at hand and
    /// is not an end of stream; anything else goes to [`Self::next_span`].
    #[inline(always)]
    fn next_in_buffer(&mut self) -> Option<(usize, usize, bool)> {
        let head = self.buf.get(self.pos..self.pos + 2)?;
        let len = usize::from(u16::from_be_bytes([head[0], head[1]]));
        let start = self.pos + 2;
        if len <= 1 || start + len > self.buf.len() {
            return None;
        }
        self.pos = start + len;
        self.messages += 1;
        Some((start, start + len, std::mem::take(&mut self.changed)))
    }

    #[inline(never)]
    fn next_span(&mut self) -> Result<(usize, usize, bool)> {
        let mut overrun = false;
        loop {
            if self.pos + 2 <= self.buf.len() {
                let len = usize::from(u16::from_be_bytes([
                    self.buf[self.pos],
                    self.buf[self.pos + 1],
                ]));
                let start = self.pos + 2;
                if start + len <= self.buf.len() {
                    if len <= 1 && !self.end_of_stream_here(start + len)? {
                        self.pos = start + len;
                        continue;
                    }
                    self.pos = start + len;
                    self.messages += 1;
                    return Ok((start, start + len, std::mem::take(&mut self.changed)));
                }
            }
            if self.pos < self.buf.len() {
                // A message runs past the end of its buffer: either the source
                // was cut short (it reports that next) or the buffer is garbage.
                overrun = true;
                self.pos = self.buf.len();
            }
            if self.ended {
                self.buf.clear();
                self.pos = 0;
                return Ok((0, 0, std::mem::take(&mut self.changed)));
            }
            // Once per buffer (a file block holds ~1400 flows): a signal
            // stops a module reading a long file as promptly as a socket.
            if crate::is_terminated() {
                if !overrun {
                    self.source.handed_all();
                }
                self.buf.clear();
                self.pos = 0;
                self.publish();
                return Err(TrapError::Terminated);
            }
            self.publish();
            let deadline = self
                .timeout
                .as_duration()
                .and_then(|d| Instant::now().checked_add(d));
            let now = Instant::now();
            if let Some(last) = self.last_fetch {
                let us = now.duration_since(last).as_micros() as u64;
                self.stats.delay_last.store(us, Relaxed);
                self.stats.delay_total.fetch_add(us, Relaxed);
            }
            let fetched = self.source.fetch(&mut self.buf, deadline);
            self.last_fetch = Some(Instant::now());
            self.pos = 0;
            match fetched {
                Err(e) => {
                    self.buf.clear();
                    self.publish();
                    return Err(e);
                }
                Ok(_) if overrun => {
                    self.buf.clear();
                    return Err(TrapError::corrupt(
                        &self.name,
                        "a message is longer than the rest of its buffer (corrupt data)",
                    ));
                }
                Ok(Fetch::Buffer { seq }) => {
                    self.stats.buffers.fetch_add(1, Relaxed);
                    self.stats
                        .received_bytes
                        .fetch_add(self.buf.len() as u64, Relaxed);
                    if let Some((first, count)) = seq {
                        if let Some(expected) = self.next_seq {
                            if first > expected {
                                self.stats.missed.fetch_add(first - expected, Relaxed);
                            }
                        }
                        // A sender's counter wraps, as libtrap's uint64 does.
                        self.next_seq = Some(first.wrapping_add(u64::from(count)));
                    }
                }
                Ok(Fetch::Hello(fmt)) => {
                    self.buf.clear();
                    self.next_seq = None;
                    self.info.set_id(self.source.id());
                    self.accept_format(fmt)?;
                }
                Ok(Fetch::End) => {
                    self.buf.clear();
                    self.ended = true;
                    self.publish();
                }
            }
        }
    }

    /// A message of at most one byte at `self.pos`, ending at `end`: is it
    /// the end of stream (`true`), one to skip (`false`), or corruption?
    #[cold]
    #[inline(never)]
    fn end_of_stream_here(&mut self, end: usize) -> Result<bool> {
        let last = end == self.buf.len();
        self.source.end_of_stream(self.pos, last).inspect_err(|_| {
            self.buf.clear();
            self.pos = 0;
            self.publish();
        })
    }

    fn accept_format(&mut self, fmt: DataFormat) -> Result<()> {
        match negotiate(&self.required, &fmt) {
            Negotiated::Mismatch(detail) => {
                return Err(TrapError::FormatMismatch {
                    ifc: self.name.clone(),
                    detail,
                })
            }
            Negotiated::Subset => self.changed = true,
            Negotiated::Same => {
                if self.format.as_ref().is_some_and(|old| *old != fmt) {
                    self.changed = true;
                }
            }
        }
        self.format = Some(fmt);
        Ok(())
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        self.publish();
    }
}
