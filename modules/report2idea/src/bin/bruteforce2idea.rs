//! bruteforce2idea — brute_force_detector alerts to IDEA.
#![forbid(unsafe_code)]

use clap::Parser;
use report2idea::reporters::bruteforce::BruteforceReporter;
use report2idea::CommonArgs;
use std::process::ExitCode;

/// Reads brute_force_detector alerts (UniRec: SRC_IP, DETECTION_TIME,
/// EVENT_SCALE, DST_PORT, PROTOCOL, WARDEN_TYPE; NOTE if present) and writes
/// one IDEA message (Attempt.Login) per alert with WARDEN_TYPE 2: to stdout
/// as one JSON line by default, or as the rules of -c say. Unlike NEMEA's
/// reporter, the victims listed in NOTE are put into Target.
#[derive(Parser, Debug)]
#[command(
    name = "bruteforce2idea",
    version,
    after_help = "Interfaces: 1 input (UniRec alerts), plus 1 output (JSON \"IDEA\") with -T.\n\
Example: bruteforce2idea -i u:bfd_data_out"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = libtrap::module::parse_args("bruteforce2idea");
    report2idea::main_with("bruteforce2idea", &args.common, BruteforceReporter)
}
