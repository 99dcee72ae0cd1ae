//! The record loop of both binaries: one UniRec input, one output (the one
//! place of this crate that touches TRAP interfaces).

use crate::{AggError, Aggregator, Stats};
use libtrap::{DataFormat, Output, Timeout, Trap, TrapError};

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Trap(#[from] TrapError),
    #[error("{ifc}: {err}")]
    Agg { ifc: String, err: AggError },
    #[error("{0}: the sender's data are not UniRec")]
    NotUniRec(String),
}

struct Sender<'a> {
    out: &'a mut Output,
    error: Option<TrapError>,
    dropped: u64,
}

impl Sender<'_> {
    fn send(&mut self, rec: &[u8]) {
        match self.out.send(rec) {
            Ok(()) => {}
            Err(TrapError::Timeout) => self.dropped += 1,
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }
}

/// Aggregates until end of stream (when `stop_on_eos`, or always for a
/// file input past its last file) or SIGINT/SIGTERM, then exports every
/// flow and sends end of stream (always, as C does). Returns the counters
/// and the records dropped by a non-blocking output.
pub fn run(ifc: &str, agg: &mut Aggregator, stop_on_eos: bool) -> Result<(Stats, u64), RunError> {
    let mut trap = Trap::init(ifc, Some(1), Some(1))?;
    let (inputs, outputs) = trap.split_mut();
    let input = &mut inputs[0];
    // Wake up now and then to pass on what the output holds.
    input.set_timeout(Timeout::Micros(500_000));
    let name = input.name().to_string();
    let mut tx = Sender {
        out: &mut outputs[0],
        error: None,
        dropped: 0,
    };
    let result: Result<(), RunError> = loop {
        match input.recv() {
            Ok(msg) => {
                if msg.is_eos() {
                    if stop_on_eos || input.ended() {
                        break Ok(());
                    }
                    continue;
                }
                if msg.format_changed {
                    let Some(DataFormat::UniRec(spec)) = msg.format else {
                        break Err(RunError::NotUniRec(name));
                    };
                    let out_t = match agg.set_template(spec, &mut |r| tx.send(r)) {
                        Ok(t) => t.spec().to_string(),
                        Err(err) => break Err(RunError::Agg { ifc: name, err }),
                    };
                    if let Err(e) = tx.out.set_format(DataFormat::UniRec(out_t)) {
                        break Err(e.into());
                    }
                }
                if let Err(err) = agg.process(msg.data, &mut |r| tx.send(r)) {
                    break Err(RunError::Agg { ifc: name, err });
                }
                if !input.has_buffered() {
                    if let Err(e) = tx.out.flush() {
                        tx.error.get_or_insert(e);
                    }
                }
            }
            Err(TrapError::Timeout) => {
                if let Err(e) = tx.out.flush() {
                    tx.error.get_or_insert(e);
                }
            }
            Err(TrapError::Terminated) => break Ok(()),
            Err(e) => break Err(e.into()),
        }
        match tx.error.take() {
            None => {}
            Some(TrapError::Terminated) => break Ok(()),
            Some(e) => break Err(e.into()),
        }
    };
    agg.flush(&mut |r| tx.send(r));
    let dropped = tx.dropped;
    let sent = match tx.error.take() {
        None | Some(TrapError::Terminated) => Ok(()),
        Some(e) => Err(e),
    };
    let has_format = tx.out.format().is_some();
    let ended = if has_format {
        trap.end(true)
    } else {
        libtrap::ok_if_terminated(trap.finish())
    };
    result?;
    sent?;
    ended?;
    Ok((agg.stats(), dropped))
}
