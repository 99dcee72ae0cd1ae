//! ddos_detector2idea — ddos_detector alerts to IDEA.
#![forbid(unsafe_code)]

use clap::Parser;
use report2idea::reporters::ddos::DdosReporter;
use report2idea::CommonArgs;
use std::process::ExitCode;

/// Reads ddos_detector alerts (UniRec: DST_IP, BYTES, TIME_FIRST, TIME_LAST,
/// EVENT_ID) and writes one IDEA message (Availability.DoS, AltNames =
/// EVENT_ID) per alert: to stdout as one JSON line by default, or as the
/// rules of -c say.
#[derive(Parser, Debug)]
#[command(
    name = "ddos_detector2idea",
    version,
    after_help = "Interfaces: 1 input (UniRec alerts), plus 1 output (JSON \"IDEA\") with -T.\n\
Example: ddos_detector2idea -i u:ddos_out"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = libtrap::module::parse_args("ddos_detector2idea");
    report2idea::main_with("ddos_detector2idea", &args.common, DdosReporter)
}
