//! miner_detector — hosts talking to mining pools, flows in, alerts out.
#![forbid(unsafe_code)]

mod probe;

use anyhow::{Context, Result};
use clap::Parser;
use detector_common::files::read_text;
use detector_common::nemea_xml_value;
use libtrap::module::{self, TrapArgs};
use miner_detector::{Config, Detector, PoolList};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Reports hosts that exchange TCP traffic with cryptocurrency mining pools:
/// listed ones (IP[:port] lines; a line without a port matches every
/// port) and, with --stratum-check, pools it learns. Each flow is oriented
/// first: SYN towards the server; else destination port < 1024; else
/// source port < 1024; else the lower port is the server's. The alert
/// (TIME_FIRST, TIME_LAST, SRC_IP = miner, DST_IP/DST_PORT = pool,
/// EVENT_SCALE = packets, SERVER_RULE = 1-4 for the rule used) is sent when
/// the pair is idle for -I seconds, every -A seconds while it lasts, and at
/// the end of the input.
///
/// Learning (--stratum-check, as C's stratum_check): client -> server flows
/// with exactly ACK or ACK|PSH towards unlisted servers are scored at every
/// check (the C module's score and decision tree); a server whose suspect
/// scores at least --score-threshold and passes the tree is probed in the
/// background with the Bitcoin, Monero, Ethereum and ZCash Stratum
/// requests. A pool joins the blacklist (its miners are then reported), any
/// other answer or a failure joins the whitelist; learned entries expire
/// after 24 h of flow time.
///
/// Differs from the C module: port-less list entries match every port (C:
/// only port 0), answers from the pool count too, time is the flows' own
/// (checks included), and probes do not hold up the flows.
#[derive(Parser, Debug)]
#[command(
    name = "miner_detector",
    version,
    after_help = "Interfaces: 1 input (flows: SRC_IP, DST_IP, SRC_PORT, DST_PORT, TCP_FLAGS, PROTOCOL, \
PACKETS, BYTES, TIME_FIRST, TIME_LAST), 1 output (alerts: TIME_FIRST, TIME_LAST, SRC_IP, DST_IP, \
DST_PORT, EVENT_SCALE, SERVER_RULE).\n\
Example: miner_detector -b /etc/nemea/miner_detector/pools.txt -i u:flow_data_source,u:miner_detector_data_out"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// NEMEA XML config (blacklist_file, whitelist_file, store_blacklist_file,
    /// store_whitelist_file, timeout_active, timeout_inactive, check_period,
    /// stratum_check, score_treshold, conn_timeout, read_timeout,
    /// suspect_db_size); options given here win.
    #[arg(short = 'u', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Pool blacklist (IP[:port] lines).
    #[arg(short = 'b', long = "blacklist", value_name = "FILE")]
    blacklist: Option<PathBuf>,
    /// Pool whitelist (IP[:port] lines).
    #[arg(short = 'w', long = "whitelist", value_name = "FILE")]
    whitelist: Option<PathBuf>,
    /// Re-report period of a lasting suspect, seconds.
    #[arg(short = 'A', long = "timeout-active")]
    timeout_active: Option<u32>,
    /// A suspect idle this long is reported and dropped, seconds.
    #[arg(short = 'I', long = "timeout-inactive")]
    timeout_inactive: Option<u32>,
    /// Learn pools by probing suspected servers for Stratum.
    #[arg(long = "stratum-check")]
    stratum_check: bool,
    /// The least suspect score that gets a server probed [default: 7].
    #[arg(long = "score-threshold", value_name = "N")]
    score_threshold: Option<u32>,
    /// Probe connect timeout, seconds [default: 10].
    #[arg(long = "conn-timeout", value_name = "SECS")]
    conn_timeout: Option<u32>,
    /// Probe read timeout, seconds [default: 10].
    #[arg(long = "read-timeout", value_name = "SECS")]
    read_timeout: Option<u32>,
    /// At exit, write the blacklist (file and learned entries) here.
    #[arg(long = "store-blacklist", value_name = "FILE")]
    store_blacklist: Option<PathBuf>,
    /// At exit, write the whitelist (file and learned entries) here.
    #[arg(long = "store-whitelist", value_name = "FILE")]
    store_whitelist: Option<PathBuf>,
    /// Do not forward the end-of-stream message.
    #[arg(long = "no-eos")]
    no_eos: bool,
}

fn list(path: Option<&Path>) -> Result<PoolList> {
    match path {
        Some(p) => {
            let text = read_text(p)?;
            Ok(PoolList::parse(&text, &p.display().to_string())?)
        }
        None => Ok(PoolList::default()),
    }
}

/// Writes `lines` to `path`, one a line.
fn store(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn run(args: &Args) -> Result<()> {
    let mut cfg = Config::default();
    let (mut bl, mut wl) = (args.blacklist.clone(), args.whitelist.clone());
    let (mut store_bl, mut store_wl) = (args.store_blacklist.clone(), args.store_whitelist.clone());
    let (mut conn_timeout, mut read_timeout) = (10u32, 10u32);
    if let Some(c) = &args.config {
        let xml = read_text(c)?;
        let num = |k: &str| -> Result<Option<u32>> {
            nemea_xml_value(&xml, k)
                .map(|v| {
                    v.parse::<u32>()
                        .with_context(|| format!("{}: {k}: `{v}` is not a number", c.display()))
                })
                .transpose()
        };
        if let Some(v) = num("timeout_active")? {
            cfg.timeout_active = v;
        }
        if let Some(v) = num("timeout_inactive")? {
            cfg.timeout_inactive = v;
        }
        if let Some(v) = num("check_period")? {
            cfg.check_period = v.max(1);
        }
        // (sic): C's spelling of the key.
        if let Some(v) = num("score_treshold")? {
            cfg.score_threshold = v;
        }
        if let Some(v) = num("conn_timeout")? {
            conn_timeout = v;
        }
        if let Some(v) = num("read_timeout")? {
            read_timeout = v;
        }
        if let Some(v) = num("suspect_db_size")? {
            cfg.max_suspects = (v as usize).max(1);
        }
        // As in C, only the exact word `true` turns probing on.
        cfg.stratum_check = nemea_xml_value(&xml, "stratum_check").is_some_and(|v| v == "true");
        let file = |k: &str| {
            nemea_xml_value(&xml, k)
                .filter(|v| v != "-" && !v.is_empty())
                .map(PathBuf::from)
        };
        bl = bl.or_else(|| file("blacklist_file"));
        wl = wl.or_else(|| file("whitelist_file"));
        store_bl = store_bl.or_else(|| file("store_blacklist_file"));
        store_wl = store_wl.or_else(|| file("store_whitelist_file"));
    }
    if let Some(v) = args.timeout_active {
        cfg.timeout_active = v;
    }
    if let Some(v) = args.timeout_inactive {
        cfg.timeout_inactive = v;
    }
    if let Some(v) = args.score_threshold {
        cfg.score_threshold = v;
    }
    cfg.stratum_check |= args.stratum_check;
    let conn_timeout = args.conn_timeout.unwrap_or(conn_timeout);
    let read_timeout = args.read_timeout.unwrap_or(read_timeout);
    let blacklist = list(bl.as_deref())?;
    if blacklist.is_empty() && !cfg.stratum_check {
        libtrap::log::warn(
            "the pool blacklist is empty and --stratum-check is off: nothing can be reported",
        );
    }
    let mut det = Detector::new(cfg, blacklist, list(wl.as_deref())?);
    if cfg.stratum_check {
        let t = probe::Timeouts::from_secs(conn_timeout, read_timeout);
        let p = probe::StratumProber::start(t).context("cannot start the stratum probe threads")?;
        det.set_prober(Box::new(p));
    }
    let s = detector_common::run(&args.trap.ifc, &mut det, !args.no_eos)?;
    libtrap::log::info(0, &format!("{} flows, {} alerts", s.flows, s.alerts));
    if let Some(p) = &store_bl {
        store(p, &det.blacklist_lines())?;
    }
    if let Some(p) = &store_wl {
        store(p, &det.whitelist_lines())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("miner_detector");
    module::start("miner_detector", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
