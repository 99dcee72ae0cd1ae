//! vportscan_aggregator — vportscan_detector alerts to per-scanner JSON events.
#![forbid(unsafe_code)]

use clap::Parser;
use detector_common::{run_windowed, window_minutes, DetectError};
use libtrap::module::{self, TrapArgs};
use std::process::ExitCode;
use vportscan_aggregator::Aggregator;

/// Aggregates the alerts of vportscan_detector per scanner (SRC_IP,
/// PROTOCOL) for a time window and sends one JSON event (format
/// "aggregated_portscan") per scanner at the end of each window and at the
/// end of the input. The end-of-stream message is forwarded.
#[derive(Parser, Debug)]
#[command(
    name = "vportscan_aggregator",
    version,
    after_help = "Interfaces: 1 input (vportscan_detector alerts, UniRec), 1 output (JSON \
\"aggregated_portscan\").\nExample: vportscan_aggregator -t 10 -i u:vportscan_out,t:12005"
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
    /// One event per (scanner, target) instead of one per scanner.
    #[arg(long = "no-block-scans", alias = "noblockscans")]
    noblockscans: bool,
}

fn run(args: &Args) -> Result<(), DetectError> {
    let window = window_minutes(args.time)?;
    run_windowed(
        &args.trap.ifc,
        &mut Aggregator::new(!args.noblockscans),
        window,
    )
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("vportscan_aggregator");
    module::start("vportscan_aggregator", &args.trap);
    module::exit_status(run(&args))
}
