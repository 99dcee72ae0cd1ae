//! amplification2idea — dns_amplification alerts to IDEA.
#![forbid(unsafe_code)]

use clap::Parser;
use report2idea::reporters::amplification::AmplificationReporter;
use report2idea::CommonArgs;
use std::process::ExitCode;

/// Reads dns_amplification alerts (UniRec) and writes one IDEA message
/// (Availability.DDoS; Source = the amplifier, Target = the victim) per
/// alert: to stdout as one JSON line by default, or as the rules of -c say.
#[derive(Parser, Debug)]
#[command(
    name = "amplification2idea",
    version,
    after_help = "Interfaces: 1 input (UniRec alerts), plus 1 output (JSON \"IDEA\") with -T.\n\
Example: amplification2idea -i t:12001"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args: Args = libtrap::module::parse_args("amplification2idea");
    report2idea::main_with("amplification2idea", &args.common, AmplificationReporter)
}
