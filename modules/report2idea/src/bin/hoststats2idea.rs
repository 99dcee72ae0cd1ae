//! hoststats2idea — hoststats events to IDEA.
#![forbid(unsafe_code)]

use clap::Parser;
use report2idea::reporters::hoststats::HoststatsReporter;
use report2idea::CommonArgs;
use std::process::ExitCode;

/// Reads hoststats events (UniRec: EVENT_TYPE, TIME_FIRST, TIME_LAST,
/// SRC_IP, DST_IP, PROTOCOL, EVENT_SCALE, NOTE) and writes one IDEA message
/// per event of type 2 (scan), 10 (DoS), 15 (DNS amplification) or 30 (SSH
/// brute force): to stdout as one JSON line by default, or as the rules of
/// -c say. DetectTime is the time of reporting, as in NEMEA.
#[derive(Parser, Debug)]
#[command(
    name = "hoststats2idea",
    version,
    after_help = "Interfaces: 1 input (UniRec alerts), plus 1 output (JSON \"IDEA\") with -T.\n\
Example: hoststats2idea -i t:12002"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = libtrap::module::parse_args("hoststats2idea");
    report2idea::main_with("hoststats2idea", &args.common, HoststatsReporter)
}
