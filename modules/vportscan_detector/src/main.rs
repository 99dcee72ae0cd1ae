//! vportscan_detector — vertical TCP SYN port scans, flows in, alerts out.
#![forbid(unsafe_code)]

use clap::Parser;
use libtrap::module::{self, TrapArgs};
use std::process::ExitCode;
use vportscan_detector::{Config, Detector};

/// Detects vertical port scans: one source sending SYN-only TCP flows (at
/// most 4 packets) to many ports of one destination. An alert (EVENT_TYPE 1,
/// PORT_CNT = threshold) is sent when a (source, destination) pair reaches
/// the threshold of distinct ports; a port probed twice is taken back.
///
/// Unlike the C module, idle pairs are aged by the flows' own time (largest
/// TIME_LAST seen) rather than the wall clock, so replayed captures give the
/// same alerts as live traffic, and IPv6 pairs are tracked as well.
#[derive(Parser, Debug)]
#[command(
    name = "vportscan_detector",
    version,
    after_help = "Interfaces: 1 input (flows: SRC_IP, DST_IP, SRC_PORT, DST_PORT, PACKETS, PROTOCOL, \
TCP_FLAGS, TIME_FIRST, TIME_LAST), 1 output (alerts: EVENT_TYPE, TIME_FIRST, TIME_LAST, SRC_IP, \
DST_IP, SRC_PORT, DST_PORT, PROTOCOL, PORT_CNT).\n\
Example: vportscan_detector -i u:flow_data_source,u:vportscan_out"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Distinct destination ports that make a scan.
    #[arg(long = "threshold", default_value_t = 50, value_parser = clap::value_parser!(u32).range(2..))]
    threshold: u32,
    /// Seconds after which an idle (source, destination) pair is forgotten.
    #[arg(long = "idle", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..))]
    idle: u32,
    /// Do not forward the end-of-stream message (C behaviour).
    #[arg(short = 'n', long = "no-eos")]
    no_eos: bool,
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("vportscan_detector");
    module::start("vportscan_detector", &args.trap);
    let mut det = Detector::new(Config {
        threshold: args.threshold,
        idle: args.idle,
        ..Config::default()
    });
    let r = detector_common::run(&args.trap.ifc, &mut det, !args.no_eos).map(|s| {
        libtrap::log::info(0, &format!("{} flows, {} alerts", s.flows, s.alerts));
    });
    module::exit_status(r)
}
