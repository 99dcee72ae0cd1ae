//! hoststats — per-host profiles and rules, flows in, events out.
#![forbid(unsafe_code)]

use anyhow::Result;
use clap::Parser;
use detector_common::files::read_text;
use detector_common::{append_log, Tap};
use hoststats::{Alert, Config, Detector};
use libtrap::module::{self, TrapArgs};
use std::path::PathBuf;
use std::process::ExitCode;

/// Builds a traffic profile of every host (flows, packets, bytes, TCP
/// flags, requests/responses by port, peers, SSH and DNS subprofiles) and
/// evaluates rules when the profile times out: horizontal SYN scans
/// (EVENT_TYPE 2), DoS victims and attackers (10), DNS amplification (15)
/// and SSH brute force (30). Input should be uniflows (flow_meter
/// --split-biflow), as the rules compare requests with responses.
///
/// Differs from the C module (hoststatsnemea): time is always the flows'
/// own (C's offline mode, -F, is the default and only mode), peers are
/// counted exactly (C: Bloom filters), without -c all rule sets are enabled
/// with the shipped thresholds, and LINK_BIT_FIELD/DIR_BIT_FIELD are not
/// required. With detection-log set, every event is also appended to
/// DIR/YYYYMMDD.log (the day of its TIME_FIRST) in NEMEA's line format; a
/// missing directory is created.
#[derive(Parser, Debug)]
#[command(
    name = "hoststats",
    version,
    after_help = "Interfaces: 1 input (flows: SRC_IP, DST_IP, SRC_PORT, DST_PORT, PROTOCOL, PACKETS, BYTES, \
TIME_FIRST, TIME_LAST, TCP_FLAGS), 1 output (events: EVENT_TYPE, TIME_FIRST, TIME_LAST, SRC_IP, DST_IP, \
SRC_PORT, DST_PORT, PROTOCOL, EVENT_SCALE, NOTE).\n\
Config keys: rules-generic, rules-ssh, rules-dns, timeout-active, timeout-inactive, det-start-time, \
syn-scan-*, dos-*, bruteforce-*, dns-amplif-threshold (hoststats.conf of NEMEA).\n\
Example: hoststats -c /etc/nemea/hoststats.conf -i u:flow_data_source,t:12002"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Configuration file (key = value).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Accepted for compatibility: offline mode (flow time) is the only mode.
    #[arg(short = 'F', long = "offline")]
    offline: bool,
    /// Do not forward the end-of-stream message.
    #[arg(short = 'n', long = "no-eos")]
    no_eos: bool,
}

fn run(args: &Args) -> Result<()> {
    let cfg = match &args.config {
        Some(p) => {
            let text = read_text(p)?;
            Config::parse(&text, &p.display().to_string())?
        }
        None => Config::default(),
    };
    let _ = args.offline;
    let log_dir = cfg.detection_log.clone().map(PathBuf::from);
    let eos = !args.no_eos;
    let mut det = Detector::new(cfg);
    let s = match log_dir {
        Some(dir) => {
            let mut tap = Tap {
                inner: det,
                tap: |a: &Alert| {
                    let (name, line) = a.log_line();
                    append_log(&dir.join(name), &line)
                },
            };
            let s = detector_common::run(&args.trap.ifc, &mut tap, eos)?;
            det = tap.inner;
            s
        }
        None => detector_common::run(&args.trap.ifc, &mut det, eos)?,
    };
    libtrap::log::info(0, &format!("{} flows, {} events", s.flows, s.alerts));
    if det.dropped() > 0 {
        libtrap::log::warn(&format!(
            "{} host updates dropped: the host table was full (raise table-size)",
            det.dropped()
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("hoststats");
    module::start("hoststats", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
