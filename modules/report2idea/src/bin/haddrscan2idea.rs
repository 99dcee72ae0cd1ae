//! haddrscan2idea — horizontal scans to IDEA.
#![forbid(unsafe_code)]

use clap::Parser;
use report2idea::reporters::haddrscan::HaddrscanReporter;
use report2idea::{parse_aggr_win, CommonArgs};
use std::process::ExitCode;

/// Reads horizontal scan alerts (UniRec: haddrscan_aggregator output with up
/// to 16 targets, or haddrscan_detector alerts with 4) and writes one IDEA
/// message (Recon.Scanning) per alert: to stdout as one JSON line by
/// default, or as the rules of -c say.
#[derive(Parser, Debug)]
#[command(
    name = "haddrscan2idea",
    version,
    after_help = "Interfaces: 1 input (UniRec alerts), plus 1 output (JSON \"IDEA\") with -T.\n\
Example: haddrscan2idea -i u:haddrscan_aggr"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Aggregation window of the aggregator, for Node.AggrWin.
    #[arg(long = "aggrwin", value_name = "HH:MM:SS", default_value = "00:05:00",
          value_parser = |s: &str| parse_aggr_win(s).ok_or("expected HH:MM:SS"))]
    aggrwin: u64,
}

fn main() -> ExitCode {
    let args: Args = libtrap::module::parse_args("haddrscan2idea");
    report2idea::main_with(
        "haddrscan2idea",
        &args.common,
        HaddrscanReporter {
            aggr_win: args.aggrwin,
        },
    )
}
