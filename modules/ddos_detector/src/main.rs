//! ddos_detector — volumetric floods per destination, flows in, alerts out.
#![forbid(unsafe_code)]

use clap::Parser;
use ddos_detector::{Config, Detector};
use libtrap::module::{self, TrapArgs};
use std::process::ExitCode;

/// Detects (D)DoS floods: per destination (IPv4, prefix -d) traffic and the
/// number of distinct source prefixes (-s) are kept for 7 windows of 60 s;
/// a flood starts when two consecutive windows exceed -t times the average
/// traffic, -m kb/s, and -c times the average number of sources. Reports
/// (DST_IP, BYTES above the baseline, EVENT_ID, EVENT_SEQ, averages) are
/// sent every 5 windows (5 minutes) while the flood lasts and when it ends. Time is the
/// flows' own TIME_LAST.
///
/// Differs from the C module: bytes of flows spanning three or more windows
/// are spread over all of them (C drops the older part), a flow's source is
/// counted in the window of its TIME_LAST (C: the current window), floods
/// open at the end of the input are reported with all their windows, and
/// EVENT_ID's high word is a per-run counter instead of rand().
#[derive(Parser, Debug)]
#[command(
    name = "ddos_detector",
    version,
    after_help = "Interfaces: 1 input (flows: DST_IP, SRC_IP, BYTES, TIME_FIRST, TIME_LAST), 1 output \
(alerts: DST_IP, BYTES, TIME_FIRST, TIME_LAST, EVENT_ID, EVENT_SEQ, AVG_BYTES_CURRENT, \
AVG_BYTES_ORIGINAL, AVG_IP_CNT_CURRENT, AVG_IP_CNT_ORIGINAL).\n\
Example: ddos_detector -i u:flow_data_source,u:ddos_out"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Minimal attack size in kb/s.
    #[arg(
        short = 'm',
        long = "minimal-attack-size",
        alias = "minimal_attack_size",
        default_value_t = 1000
    )]
    minimal_attack_size: u64,
    /// Minimal traffic before the attack in kb/s (smaller baselines are not reported).
    #[arg(
        short = 'b',
        long = "min-traffic-before-attack",
        alias = "min_traffic_before_attack",
        default_value_t = 1
    )]
    min_traffic_before_attack: u64,
    /// Traffic must exceed this multiple of the average.
    #[arg(
        short = 't',
        long = "threshold-flow-rate",
        alias = "threshold_flow_rate",
        default_value_t = 4
    )]
    threshold_flow_rate: u16,
    /// The number of sources must exceed this multiple of the average.
    #[arg(
        short = 'c',
        long = "threshold-ip-count-rate",
        alias = "threshold_ip_count_rate",
        default_value_t = 4
    )]
    threshold_ip_count_rate: u16,
    /// Prefix length of source addresses.
    #[arg(short = 's', long = "mask-source-addresses", alias = "mask_source_addresses", default_value_t = 24,
          value_parser = clap::value_parser!(u8).range(0..=32))]
    mask_src: u8,
    /// Prefix length of destination addresses.
    #[arg(short = 'd', long = "mask-destination-addresses", alias = "mask_destination_addresses", default_value_t = 32,
          value_parser = clap::value_parser!(u8).range(0..=32))]
    mask_dst: u8,
    /// Destinations with less traffic (kb/s averaged over the windows) are dropped.
    #[arg(
        short = 'p',
        long = "min-threshold-before-pruning",
        alias = "min_threshold_before_pruning",
        default_value_t = 10
    )]
    min_threshold_before_pruning: u64,
    /// Do not forward the end-of-stream message (C behaviour).
    #[arg(short = 'n', long = "no-eos")]
    no_eos: bool,
    /// Window length in seconds (C's is fixed at 60; a shorter one shows a
    /// lab's flood within seconds; the rates stay per second).
    #[arg(long = "window", value_name = "SECONDS", default_value_t = ddos_detector::INTERVAL,
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    window: u32,
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("ddos_detector");
    module::start("ddos_detector", &args.trap);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
        ^ std::process::id().rotate_left(16);
    let mut det = Detector::new(Config {
        minimal_attack_size: args.minimal_attack_size,
        min_traffic_before_attack: args.min_traffic_before_attack,
        threshold_flow_rate: u64::from(args.threshold_flow_rate),
        threshold_ip_count_rate: u64::from(args.threshold_ip_count_rate),
        mask_src: args.mask_src,
        mask_dst: args.mask_dst,
        min_threshold_before_pruning: args.min_threshold_before_pruning,
        event_id_seed: seed,
        interval: args.window,
    });
    let r = detector_common::run(&args.trap.ifc, &mut det, !args.no_eos).map(|s| {
        libtrap::log::info(0, &format!("{} flows, {} alerts", s.flows, s.alerts));
    });
    module::exit_status(r)
}
