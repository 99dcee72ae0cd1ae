//! haddrscan_aggregator — haddrscan_detector alerts merged per (scanner, port).
#![forbid(unsafe_code)]

use clap::Parser;
use detector_common::{run_windowed, window_minutes, DetectError};
use haddrscan_aggregator::Aggregator;
use libtrap::module::{self, TrapArgs};
use std::process::ExitCode;

/// Merges the alerts of haddrscan_detector per (SRC_IP, DST_PORT) for a
/// time window (wall clock) and sends one record with up to 16 targets
/// (DST_IP0..15) per key at the end of each window and of the input. The
/// end-of-stream message is forwarded.
#[derive(Parser, Debug)]
#[command(
    name = "haddrscan_aggregator",
    version,
    after_help = "Interfaces: 1 input (haddrscan_detector alerts), 1 output (SRC_IP, ADDR_CNT, ADDR_THRSD, \
TIME_FIRST, TIME_LAST, DST_PORT, EVENT_TYPE, PROTOCOL, DST_IP0..DST_IP15).\n\
Example: haddrscan_aggregator -t 10 -i u:haddrscan_out,u:haddrscan_aggr"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Aggregation window in minutes (wall clock).
    #[arg(
        short = 't',
        long = "time",
        value_name = "MINUTES",
        default_value_t = 5.0
    )]
    time: f64,
}

fn run(args: &Args) -> Result<(), DetectError> {
    let window = window_minutes(args.time)?;
    run_windowed(&args.trap.ifc, &mut Aggregator::default(), window)
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("haddrscan_aggregator");
    module::start("haddrscan_aggregator", &args.trap);
    module::exit_status(run(&args))
}
