//! vportscan2idea — aggregated vertical port scans to IDEA.
#![forbid(unsafe_code)]

use clap::Parser;
use report2idea::reporters::vportscan::VportscanReporter;
use report2idea::{parse_aggr_win, CommonArgs};
use std::process::ExitCode;

/// Reads the JSON events of vportscan_aggregator ("aggregated_portscan") and
/// writes one IDEA message per event (Recon.Scanning): to stdout as one JSON
/// line by default, or as the rules of -c say.
#[derive(Parser, Debug)]
#[command(
    name = "vportscan2idea",
    version,
    after_help = "Interfaces: 1 input (JSON \"aggregated_portscan\"), plus 1 output (JSON \"IDEA\") with -T.\n\
Example: vportscan2idea -D -i f:portscans.trapcap > portscans.idea"
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
    let args: Args = libtrap::module::parse_args("vportscan2idea");
    report2idea::main_with(
        "vportscan2idea",
        &args.common,
        VportscanReporter {
            aggr_win: args.aggrwin,
        },
    )
}
