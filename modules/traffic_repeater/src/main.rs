//! traffic_repeater — pass records from one interface to another unchanged.

use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{Trap, TrapError};
use std::process::ExitCode;
use std::time::Instant;

/// Copies every UniRec message from the input to the output unchanged and
/// gives the output the input's data format (also when it changes). The
/// end-of-stream message is forwarded and ends the run, unless -n is given:
/// then a socket input's end of stream is dropped and the repeater waits for
/// the sender's next run (a file input still ends at its last file).
#[derive(Parser, Debug)]
#[command(
    name = "traffic_repeater",
    version,
    after_help = "Interfaces: 1 input, 1 output. Run `traffic_repeater -h trap` for the -i syntax.\nExample: traffic_repeater -i f:flows.trapcap,u:flows:buffer=off"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Do not forward the end-of-stream message.
    #[arg(short = 'n', long = "no-eos", aliases = ["no-eof", "no_eof"])]
    no_eof: bool,
}

fn run(args: &Args) -> Result<(), TrapError> {
    let start = Instant::now();
    let mut trap = Trap::init(&args.trap.ifc, Some(1), Some(1))?;
    let (inputs, outputs) = trap.split_mut();
    let result = traffic_repeater::repeat(&mut inputs[0], &mut outputs[0], !args.no_eof);
    let closed = match trap.finish() {
        Err(TrapError::Terminated) => Ok(()),
        r => r,
    };
    let c = result?;
    let t = start.elapsed();
    eprintln!("Info: Flows received: {:>16}", c.received);
    eprintln!("Info: Flows sent:     {:>16}", c.sent);
    eprintln!("Info: Timeouts:       {:>16}", c.timeouts);
    eprintln!(
        "Info: Time elapsed:   {}.{:03}s",
        t.as_secs(),
        t.subsec_millis()
    );
    closed
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("traffic_repeater");
    module::start("traffic_repeater", &args.trap);
    module::exit_status(run(&args))
}
