//! dns_amplification — amplification attacks, flows in, alerts out.
#![forbid(unsafe_code)]

use clap::Parser;
use detector_common::append_log;
use dns_amplification::{Config, Detector, LogSink};
use libtrap::module::{self, TrapArgs};
use std::path::PathBuf;
use std::process::ExitCode;

/// Detects amplification attacks on a UDP service (DNS by default): a server
/// (SRC_IP of the alert) answering one client (DST_IP, the victim) with many
/// responses much larger than the queries. Traffic of a pair is evaluated
/// when it spans more than -w seconds; alerts carry the traffic not reported
/// before and a per-pair EVENT_ID. Time is the flows' own.
///
/// Differs from the C module (--c-compat restores it): histogram bins count
/// all flows in the bin (C counts only the largest value of each bin), pairs
/// with huge flows ("BIG") are alerted (C only logs them), pairs still held
/// at the end of the input are evaluated, the inactivity sweep runs on flow
/// time, and -I sets the minimal top-N share (C's -i collides with the
/// interface option). The per-pair logs of -d list every stored flow once,
/// merged by time (C's merge can repeat or skip some), and missing
/// directories are created.
#[derive(Parser, Debug)]
#[command(
    name = "dns_amplification",
    version,
    after_help = "Interfaces: 1 input (flows: SRC_IP, DST_IP, SRC_PORT, DST_PORT, PROTOCOL, PACKETS, \
BYTES, TIME_FIRST, TIME_LAST), 1 output (alerts: SRC_IP, DST_IP, SRC_PORT, REQ_FLOWS, REQ_PACKETS, \
REQ_BYTES, RSP_FLOWS, RSP_PACKETS, RSP_BYTES, TIME_FIRST, TIME_LAST, EVENT_ID).\n\
Example: dns_amplification -i u:flow_data_source,t:12001"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Directory for per-pair logs: every pair judged an attack appends its
    /// stored flows to DIR/<server>-<client>.log (DIR/BIG/… for the "BIG"
    /// rule). No logs without it.
    #[arg(short = 'd', long = "log-dir", alias = "log_dir", value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// Service port.
    #[arg(short = 'p', long = "port", default_value_t = 53)]
    port: u16,
    /// N of the top-N histogram bins.
    #[arg(short = 'n', long = "top", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    top: u32,
    /// Histogram bin width.
    #[arg(short = 'q', long = "step", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    step: u64,
    /// Minimal amplification factor.
    #[arg(
        short = 'a',
        long = "min-ampf",
        alias = "min_ampf",
        default_value_t = 10
    )]
    min_ampf: u64,
    /// Minimal number of response flows in the top-N bins.
    #[arg(
        short = 't',
        long = "min-flow",
        alias = "min_flow",
        default_value_t = 300
    )]
    min_flow: u64,
    /// Minimal share (0-1) of response flows in the top-N bins.
    #[arg(
        short = 'I',
        long = "min-count",
        alias = "min_count",
        default_value_t = 0.9
    )]
    min_count: f64,
    /// Minimal mean packets per response flow in the top-N bins.
    #[arg(
        short = 'y',
        long = "min-resp-pack",
        alias = "min_resp_pack",
        default_value_t = 2
    )]
    min_resp_pack: u64,
    /// Minimal mean bytes per response flow in the top-N bins.
    #[arg(
        short = 'l',
        long = "min-resp-byte",
        alias = "min_resp_byte",
        default_value_t = 2000
    )]
    min_resp_byte: u64,
    /// Maximal mean bytes per query flow in the top-N bins.
    #[arg(
        short = 'm',
        long = "max-query",
        alias = "max_query",
        default_value_t = 400
    )]
    max_query: u64,
    /// Detection window and inactivity timeout (s).
    #[arg(short = 'w', long = "timeout", default_value_t = 900, value_parser = clap::value_parser!(u32).range(1..))]
    timeout: u32,
    /// Deletion window and sweep period (s).
    #[arg(short = 's', long = "period", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..))]
    period: u32,
    /// Most flows kept per direction and pair (at least 10000).
    #[arg(short = 'S', long = "record-count", alias = "record_count", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(10_000..))]
    record_count: u64,
    /// Behave as the C module (see above).
    #[arg(long = "c-compat")]
    c_compat: bool,
    /// Do not forward the end-of-stream message.
    #[arg(long = "no-eos")]
    no_eos: bool,
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("dns_amplification");
    module::start("dns_amplification", &args.trap);
    if !(0.0..=1.0).contains(&args.min_count) {
        return module::exit_status(Err("-I must be between 0 and 1"));
    }
    let mut det = Detector::new(Config {
        port: args.port,
        top: args.top as usize,
        step: args.step,
        min_ampf: args.min_ampf,
        min_flows: args.min_flow,
        min_count: args.min_count,
        min_resp_packets: args.min_resp_pack,
        min_resp_bytes: args.min_resp_byte,
        max_query_bytes: args.max_query,
        timeout: args.timeout,
        period: args.period,
        record_count: usize::try_from(args.record_count).unwrap_or(usize::MAX),
        c_compat: args.c_compat,
        ..Config::default()
    });
    if let Some(dir) = args.log_dir.clone() {
        det.set_log_sink(LogSink(Box::new(move |log| {
            append_log(&dir.join(log.file_name()), &log.text())
        })));
    }
    let r = detector_common::run(&args.trap.ifc, &mut det, !args.no_eos).map(|s| {
        libtrap::log::info(0, &format!("{} flows, {} alerts", s.flows, s.alerts));
    });
    module::exit_status(r)
}
