//! miner_detector — hosts talking to listed mining pools, flows in, alerts out.
#![forbid(unsafe_code)]

use anyhow::{Context, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use miner_detector::{Config, Detector, PoolList};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Reports hosts that exchange TCP traffic with listed cryptocurrency mining
/// pools (IP[:port] lines; a line without a port matches every port). Each
/// flow is oriented first: SYN towards the server; else destination port
/// < 1024; else source port < 1024; else the lower port is the server's.
/// The alert (TIME_FIRST, TIME_LAST, SRC_IP = miner, DST_IP/DST_PORT = pool,
/// EVENT_SCALE = packets, SERVER_RULE = 1-4 for the rule used) is sent when
/// the pair is idle for -I seconds, every -A seconds while it lasts, and at
/// the end of the input.
///
/// Differs from the C module: port-less list entries match every port (C:
/// only port 0), answers from the pool count too, time is the flows' own,
/// and there is no active Stratum probing (pools are never learned).
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
    /// NEMEA XML config (blacklist_file, whitelist_file, timeout_active,
    /// timeout_inactive, check_period).
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
    /// Do not forward the end-of-stream message.
    #[arg(long = "no-eos")]
    no_eos: bool,
}

fn xml_value(xml: &str, key: &str) -> Option<String> {
    let start = xml
        .find(&format!("name=\"{key}\""))
        .or_else(|| xml.find(&format!("<{key}>")))?;
    let rest = &xml[start..];
    let open = rest.find('>')? + 1;
    let close = rest[open..].find("</")?;
    Some(rest[open..open + close].trim().to_string())
}

fn list(path: Option<&Path>) -> Result<PoolList> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            Ok(PoolList::parse(&text, &p.display().to_string())?)
        }
        None => Ok(PoolList::default()),
    }
}

fn run(args: &Args) -> Result<()> {
    let mut cfg = Config::default();
    let (mut bl, mut wl) = (args.blacklist.clone(), args.whitelist.clone());
    if let Some(c) = &args.config {
        let xml =
            std::fs::read_to_string(c).with_context(|| format!("cannot read {}", c.display()))?;
        let num = |k: &str| -> Result<Option<u32>> {
            xml_value(&xml, k)
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
        let file = |k: &str| {
            xml_value(&xml, k)
                .filter(|v| v != "-" && !v.is_empty())
                .map(PathBuf::from)
        };
        bl = bl.or_else(|| file("blacklist_file"));
        wl = wl.or_else(|| file("whitelist_file"));
    }
    if let Some(v) = args.timeout_active {
        cfg.timeout_active = v;
    }
    if let Some(v) = args.timeout_inactive {
        cfg.timeout_inactive = v;
    }
    let blacklist = list(bl.as_deref())?;
    if blacklist.is_empty() {
        libtrap::log::warn("the pool blacklist is empty: nothing can be reported");
    }
    let mut det = Detector::new(cfg, blacklist, list(wl.as_deref())?);
    let s = detector_common::run(&args.trap.ifc, &mut det, !args.no_eos)?;
    libtrap::log::info(0, &format!("{} flows, {} alerts", s.flows, s.alerts));
    Ok(())
}

fn main() -> ExitCode {
    module::handle_trap_help();
    let args = Args::parse();
    module::start("miner_detector", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
