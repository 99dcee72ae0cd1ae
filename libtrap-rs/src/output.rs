//! Output interfaces: where a module sends its records.

use crate::error::{Result, TrapError};
use crate::file::FileWriter;
use crate::format::DataFormat;
use crate::stats::{IfcInfo, OutputStats};
use crate::stream::StreamWriter;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub(crate) enum Sink {
    File(FileWriter),
    Stream(StreamWriter),
    Blackhole(Arc<OutputStats>),
    /// Boxed: the writer (runtime, client, context) is large.
    JetStream(Box<crate::jetstream::JsWriter>),
}

/// One output interface.
pub struct Output {
    name: String,
    sink: Sink,
    format: Option<DataFormat>,
    info: Arc<IfcInfo>,
    stats: Arc<OutputStats>,
}

impl Output {
    pub(crate) fn new(name: String, sink: Sink) -> Output {
        let (info, stats) = match &sink {
            Sink::File(w) => w.stats(),
            Sink::Stream(w) => w.stats(),
            Sink::Blackhole(s) => (Arc::new(IfcInfo::new('b', "none")), s.clone()),
            Sink::JetStream(w) => w.stats(),
        };
        Output {
            name,
            sink,
            format: None,
            info,
            stats,
        }
    }

    /// The interface as written in `-i` (for messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn stats(&self) -> (Arc<IfcInfo>, Arc<OutputStats>) {
        (self.info.clone(), self.stats.clone())
    }

    /// Messages accepted so far.
    pub fn sent(&self) -> u64 {
        self.stats.sent_messages.load(Relaxed)
    }

    pub fn format(&self) -> Option<&DataFormat> {
        self.format.as_ref()
    }

    /// Declares (or changes) what this output sends. A change makes socket
    /// clients negotiate again and file outputs start a new file.
    pub fn set_format(&mut self, format: DataFormat) -> Result<()> {
        if self.format.as_ref() == Some(&format) {
            return Ok(());
        }
        match &mut self.sink {
            Sink::File(w) => w.set_format(format.clone())?,
            Sink::Stream(w) => w.set_format(&format)?,
            Sink::JetStream(w) => w.set_format(&format)?,
            Sink::Blackhole(_) => {}
        }
        self.format = Some(format);
        Ok(())
    }

    /// Sends one message (a UniRec record, at most 65535 bytes).
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        if self.format.is_none() {
            self.stats.dropped_messages.fetch_add(1, Relaxed);
            return Err(TrapError::NotInitialized(self.name.clone()));
        }
        match &mut self.sink {
            Sink::File(w) => w.send(msg),
            Sink::Stream(w) => w.send(msg),
            Sink::JetStream(w) => w.send(msg),
            Sink::Blackhole(s) => {
                s.sent_messages.fetch_add(1, Relaxed);
                Ok(())
            }
        }
    }

    /// Sends the NEMEA end-of-stream message (one zero byte).
    pub fn send_eos(&mut self) -> Result<()> {
        self.send(&[0])
    }

    /// Passes on whatever is buffered.
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.sink {
            Sink::File(w) => w.flush(),
            Sink::Stream(w) => w.flush(),
            Sink::JetStream(w) => w.flush(),
            Sink::Blackhole(_) => Ok(()),
        }
    }

    /// Flushes and closes the interface (sockets are removed).
    pub fn close(&mut self) -> Result<()> {
        match &mut self.sink {
            Sink::File(w) => w.flush(),
            Sink::Stream(w) => w.close(),
            Sink::JetStream(w) => w.close(),
            Sink::Blackhole(_) => Ok(()),
        }
    }
}
