//! bruteforce_detector — SSH/RDP/TELNET brute-force logins, flows in, alerts out.
#![forbid(unsafe_code)]

use anyhow::{bail, Result};
use bruteforce_detector::{Alert, Config, Detector, Whitelist};
use clap::Parser;
use detector_common::files::read_text;
use detector_common::{Flow, FlowDetector};
use libtrap::module::{self, TrapArgs};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use unirec::{RecordBuilder, RecordError};

/// Detects dictionary / brute-force login attacks on SSH (-S), RDP (-R) and
/// TELNET (-T) from flow records: a host whose recent connections to (or
/// answers from) a service mostly look like failed logins is reported with
/// WARDEN_TYPE 2, its address, the service port, EVENT_SCALE (matched flows)
/// and NOTE (`I:` attacked victims `O:` victims seen in answers).
///
/// SIGUSR1 re-reads the configuration file, SIGUSR2 the whitelist (before
/// the next record; a file that fails to parse keeps the old settings).
///
/// Differs from the C module: the first report's EVENT_SCALE is the real
/// number of matched flows (C sends the configured threshold; use
/// --c-event-scale for that), and at the end of the input pending attacks
/// get their final report.
#[derive(Parser, Debug)]
#[command(
    name = "bruteforce_detector",
    version,
    after_help = "Interfaces: 1 input (flows: SRC_IP, DST_IP, SRC_PORT, DST_PORT, PROTOCOL, PACKETS, \
BYTES, TIME_FIRST, TIME_LAST, TCP_FLAGS), 1 output (alerts: DETECTION_TIME, WARDEN_TYPE, SRC_IP, \
PROTOCOL, DST_PORT, EVENT_SCALE, NOTE).\n\
Config keys (KEY = VALUE): GENERAL_CHECK_FOR_REPORT_TIMEOUT, GENERAL_CHECK_FOR_DELETE_TIMEOUT, \
GENERAL_ATTACK_MIN_EVENTS_TO_REPORT, GENERAL_ATTACK_MIN_RATIO_TO_KEEP_TRACKING_HOST, \
GENERAL_IGNORE_FIRST_SEND, {SSH,RDP,TELNET}_{LIST_SIZE,LIST_THRESHOLD,RECORD_TIMEOUT,HOST_TIMEOUT,\
REPORT_TIMEOUT,ATTACK_TIMEOUT}, {SSH,RDP,TELNET}_BRUTEFORCE_{INC,OUT}_{MIN,MAX}_{PACKETS,BYTES} \
(no OUT keys for TELNET).\n\
Whitelist lines: [src|dst] IP[/prefix][/ports], ports = comma list of ports and a-b ranges.\n\
Example: bruteforce_detector -S -R -T -i u:flow_data_source,u:bfd_data_out"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Watch SSH (port 22).
    #[arg(short = 'S', long = "ssh", alias = "SSH")]
    ssh: bool,
    /// Watch RDP (port 3389).
    #[arg(short = 'R', long = "rdp", alias = "RDP")]
    rdp: bool,
    /// Watch TELNET (port 23).
    #[arg(short = 'T', long = "telnet", alias = "TELNET")]
    telnet: bool,
    /// Configuration file (KEY = VALUE lines).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<String>,
    /// Whitelist file.
    #[arg(short = 'w', long = "whitelist", value_name = "FILE")]
    whitelist: Option<String>,
    /// Print the parsed whitelist rules.
    #[arg(short = 'W', long = "verbose-whitelist")]
    verbose_whitelist: bool,
    /// First report's EVENT_SCALE = LIST_THRESHOLD, as the C module.
    #[arg(long = "c-event-scale")]
    c_event_scale: bool,
    /// Do not forward the end-of-stream message (C behaviour).
    #[arg(short = 'n', long = "no-eos")]
    no_eos: bool,
}

fn load_config(args: &Args) -> Result<Config> {
    let mut cfg = match &args.config {
        Some(f) => Config::parse(&read_text(Path::new(f))?, f)?,
        None => Config::default(),
    };
    cfg.first_scale_is_threshold = args.c_event_scale;
    Ok(cfg)
}

fn load_whitelist(args: &Args) -> Result<Whitelist> {
    Ok(match &args.whitelist {
        Some(f) => Whitelist::parse(&read_text(Path::new(f))?, f)?,
        None => Whitelist::default(),
    })
}

/// The detector plus reloads on SIGUSR1 (config) and SIGUSR2 (whitelist).
struct Reloading<'a> {
    det: Detector,
    args: &'a Args,
    usr1: Arc<AtomicBool>,
    usr2: Arc<AtomicBool>,
}

impl FlowDetector for Reloading<'_> {
    type Alert = Alert;
    fn input_spec(&self) -> &'static str {
        self.det.input_spec()
    }
    fn output_spec(&self) -> &'static str {
        self.det.output_spec()
    }
    fn flow(&mut self, f: &Flow, out: &mut Vec<Alert>) {
        if self.usr1.swap(false, Relaxed) {
            match load_config(self.args) {
                Ok(c) => self.det.set_config(c),
                Err(e) => libtrap::log::warn(&format!("{e:#}; keeping the old configuration")),
            }
        }
        if self.usr2.swap(false, Relaxed) {
            match load_whitelist(self.args) {
                Ok(w) => self.det.set_whitelist(w),
                Err(e) => libtrap::log::warn(&format!("{e:#}; keeping the old whitelist")),
            }
        }
        self.det.flow(f, out)
    }
    fn finish(&mut self, out: &mut Vec<Alert>) {
        self.det.finish(out)
    }
    fn encode(&self, a: &Alert, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        self.det.encode(a, b)
    }
}

fn run(args: &Args) -> Result<()> {
    if !(args.ssh || args.rdp || args.telnet) {
        bail!("choose at least one service: -S (SSH), -R (RDP), -T (TELNET)");
    }
    let cfg = load_config(args)?;
    let wl = load_whitelist(args)?;
    if args.verbose_whitelist {
        for r in &wl.rules {
            eprintln!("whitelist: {r:?}");
        }
    }
    let usr1 = Arc::new(AtomicBool::new(false));
    let usr2 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, usr1.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGUSR2, usr2.clone())?;
    let mut det = Reloading {
        det: Detector::new(cfg, [args.ssh, args.rdp, args.telnet], wl),
        args,
        usr1,
        usr2,
    };
    let s = detector_common::run(&args.trap.ifc, &mut det, !args.no_eos)?;
    libtrap::log::info(0, &format!("{} flows, {} alerts", s.flows, s.alerts));
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("bruteforce_detector");
    module::start("bruteforce_detector", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
