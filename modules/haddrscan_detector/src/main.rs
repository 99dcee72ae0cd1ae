//! haddrscan_detector — horizontal TCP SYN scans, flows in, alerts out.
#![forbid(unsafe_code)]

use clap::Parser;
use haddrscan_detector::{Config, Detector};
use libtrap::module::{self, TrapArgs};
use std::process::ExitCode;

/// Detects horizontal scans: one source sending single-packet SYN-only TCP
/// flows to one port on many addresses. An alert (EVENT_TYPE 1, ADDR_CNT,
/// ADDR_THRSD, the first four targets in DST_IP0..3) is sent each time a
/// (source, port) collects -n distinct addresses; an entry idle for -d
/// seconds is dropped after a trailing alert of what it collected since.
///
/// Differs from the C module: idle entries are aged by the flows' own time
/// (C: wall clock), thresholds above 255 work (C's counter is 8-bit),
/// trailing alerts with no new address are not sent (--empty-trailing sends
/// them as C does), IPv6 is handled, and pending trailing alerts are sent at
/// the end of the input.
#[derive(Parser, Debug)]
#[command(
    name = "haddrscan_detector",
    version,
    after_help = "Interfaces: 1 input (flows: SRC_IP, DST_IP, DST_PORT, PACKETS, PROTOCOL, TCP_FLAGS, \
TIME_FIRST, TIME_LAST), 1 output (alerts: EVENT_TYPE, TIME_FIRST, TIME_LAST, SRC_IP, DST_PORT, \
PROTOCOL, ADDR_CNT, ADDR_THRSD, DST_IP0..DST_IP3).\n\
Example: haddrscan_detector -i u:flow_data_source,u:haddrscan_out"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Distinct addresses that make a scan.
    #[arg(short = 'n', long = "numaddrs-threshold", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(2..))]
    threshold: u32,
    /// Seconds after which an idle entry is dropped.
    #[arg(short = 'd', long = "idle-threshold", default_value_t = 300,
          value_parser = clap::value_parser!(u32).range(1..))]
    idle: u32,
    /// Seconds between prunings.
    #[arg(short = 'p', long = "pruning-interval", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..))]
    prune: u32,
    /// Send trailing alerts without new addresses (C behaviour).
    #[arg(long = "empty-trailing")]
    empty_trailing: bool,
    /// Do not forward the end-of-stream message (C behaviour).
    #[arg(long = "no-eos")]
    no_eos: bool,
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("haddrscan_detector");
    module::start("haddrscan_detector", &args.trap);
    let mut det = Detector::new(Config {
        threshold: args.threshold,
        idle: args.idle,
        prune_interval: args.prune,
        empty_trailing: args.empty_trailing,
    });
    let r = detector_common::run(&args.trap.ifc, &mut det, !args.no_eos).map(|s| {
        libtrap::log::info(0, &format!("{} flows, {} alerts", s.flows, s.alerts));
    });
    module::exit_status(r)
}
