//! minerdetector2idea — miner_detector alerts to IDEA.
#![forbid(unsafe_code)]

use clap::Parser;
use report2idea::reporters::miner::MinerReporter;
use report2idea::CommonArgs;
use std::process::ExitCode;

/// Reads miner_detector alerts (UniRec: SRC_IP miner, DST_IP/DST_PORT pool,
/// TIME_FIRST, TIME_LAST, EVENT_SCALE; SERVER_RULE if present) and writes
/// one IDEA message (Suspicious.Miner) per alert: to stdout as one JSON
/// line by default, or as the rules of -c say.
#[derive(Parser, Debug)]
#[command(
    name = "minerdetector2idea",
    version,
    after_help = "Interfaces: 1 input (UniRec alerts), plus 1 output (JSON \"IDEA\") with -T.\n\
Example: minerdetector2idea -i u:miner_detector_data_out"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = libtrap::module::parse_args("minerdetector2idea");
    report2idea::main_with("minerdetector2idea", &args.common, MinerReporter)
}
