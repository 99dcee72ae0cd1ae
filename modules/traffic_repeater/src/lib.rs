//! traffic_repeater: copies every message of one input to one output,
//! passing the sender's data format on.

use libtrap::{Input, Output, TrapError};

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub received: u64,
    pub sent: u64,
    pub timeouts: u64,
}

/// Repeats until end of stream (forwarded when `forward_eos`) or until the
/// module is terminated (then an end of stream is sent when `forward_eos`,
/// so that readers stop cleanly too). Without `forward_eos` an end of stream
/// on a socket input is dropped and the repeater waits for the sender's next
/// run (the input reconnects), so it and the modules after it keep running;
/// a file input still ends the run after its last file.
pub fn repeat(
    input: &mut Input,
    output: &mut Output,
    forward_eos: bool,
) -> Result<Counts, TrapError> {
    let mut c = Counts::default();
    loop {
        let msg = match input.recv() {
            Ok(m) => m,
            Err(TrapError::Timeout) => {
                c.timeouts += 1;
                continue;
            }
            Err(TrapError::Terminated) => {
                if forward_eos && output.format().is_some() {
                    libtrap::ok_if_terminated(output.send_eos())?;
                }
                return Ok(c);
            }
            Err(e) => return Err(e),
        };
        if msg.format_changed {
            if let Some(f) = msg.format {
                output.set_format(f.clone())?;
            }
        }
        let eos = msg.is_eos();
        if eos && !forward_eos {
            if input.ended() {
                return Ok(c);
            }
            continue;
        }
        c.received += u64::from(!eos);
        match output.send(msg.data) {
            Ok(()) => c.sent += u64::from(!eos),
            Err(TrapError::Timeout) => c.timeouts += 1,
            Err(TrapError::Terminated) => return Ok(c),
            Err(e) => return Err(e),
        }
        if eos {
            return Ok(c);
        }
    }
}
