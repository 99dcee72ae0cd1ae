//! blacklist_aggregator — ipblacklistfilter flows to per-address JSON events.
#![forbid(unsafe_code)]

use blacklist_aggregator::Aggregator;
use clap::Parser;
use detector_common::{run_windowed, window_minutes, DetectError};
use libtrap::module::{self, TrapArgs};
use std::process::ExitCode;

/// Aggregates the flows marked by ipblacklistfilter per blacklisted address,
/// protocol and list for a time window and sends one JSON event (format
/// "aggregated_blacklist") per group at the end of each window and of the
/// input, for blacklist2idea. The input may also be pre-aggregated by
/// NEMEA's agg (its COUNT field is then the number of flows). The
/// end-of-stream message is forwarded.
///
/// Differs from NEMEA's blacklist_aggregator.py: one input (IP flows; NEMEA's
/// second, URL input is not there), and ports of a listed source address are
/// reported too when the input has SRC_PORT (agg drops that field, so NEMEA
/// never sees them).
#[derive(Parser, Debug)]
#[command(
    name = "blacklist_aggregator",
    version,
    after_help = "Interfaces: 1 input (ipblacklistfilter flows, UniRec), 1 output (JSON \
\"aggregated_blacklist\").\n\
Example: blacklist_aggregator -t 5 -i u:blacklisted,u:blacklist_events"
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
    run_windowed(&args.trap.ifc, &mut Aggregator::new(args.time), window)
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("blacklist_aggregator");
    module::start("blacklist_aggregator", &args.trap);
    module::exit_status(run(&args))
}
