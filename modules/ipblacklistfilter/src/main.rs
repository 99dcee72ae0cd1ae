//! ipblacklistfilter — flows touching blacklisted prefixes, marked with the
//! lists' bitmaps.
#![forbid(unsafe_code)]

use anyhow::{bail, Result};
use clap::Parser;
use detector_common::files::read_text;
use detector_common::nemea_xml_value;
use detector_common::{Flow, FlowDetector};
use ipblacklistfilter::{Alert, Blacklist, Filter};
use libtrap::module::{self, TrapArgs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};
use unirec::{RecordBuilder, RecordError};

/// Forwards the flows whose source or destination is in a blacklisted IPv4
/// or IPv6 prefix (detector files of bl_downloader: `entity,bitmap[;id:ports]`),
/// adding SRC_BLACKLIST and DST_BLACKLIST (bit id-1 per list) and
/// ADAPTIVE_IDS. Flows with port 53 are ignored. The files are re-read when
/// they change (checked at most once a second, before a record); a file that
/// cannot be read keeps the previous lists. Malformed lines are reported
/// with their line number and skipped.
///
/// Differs from the C module: both directions are checked and reported (C
/// skips the destination when the source is listed, even if its port filter
/// clears it, and may leave a stale bitmap from an earlier flow), and nested
/// prefixes always match (C's binary search can miss them).
#[derive(Parser, Debug)]
#[command(
    name = "ipblacklistfilter",
    version,
    after_help = "Interfaces: 1 input (flows: SRC_IP, DST_IP, SRC_PORT, DST_PORT, PROTOCOL, PACKETS, BYTES, \
TIME_FIRST, TIME_LAST), 1 output (those fields + SRC_BLACKLIST, DST_BLACKLIST, ADAPTIVE_IDS).\n\
Example: ipblacklistfilter -4 /tmp/blacklistfilter/ip4.blist -i u:flow_data_source,u:blacklisted"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// NEMEA XML config (ipv4_blacklist_file, ipv6_blacklist_file, watch_blacklists).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// IPv4 detector file (default /tmp/blacklistfilter/ip4.blist).
    #[arg(short = '4', long = "ipv4", value_name = "FILE")]
    ipv4: Option<PathBuf>,
    /// IPv6 detector file (optional).
    #[arg(short = '6', long = "ipv6", value_name = "FILE")]
    ipv6: Option<PathBuf>,
    /// Do not re-read the files when they change.
    #[arg(long = "no-watch")]
    no_watch: bool,
    /// Do not forward the end-of-stream message.
    #[arg(short = 'n', long = "no-eos")]
    no_eos: bool,
}

struct Files {
    v4: PathBuf,
    v6: Option<PathBuf>,
    watch: bool,
}

fn files(args: &Args) -> Result<Files> {
    let mut f = Files {
        v4: PathBuf::from("/tmp/blacklistfilter/ip4.blist"),
        v6: None,
        watch: !args.no_watch,
    };
    if let Some(c) = &args.config {
        let xml = read_text(c)?;
        if let Some(v) = nemea_xml_value(&xml, "ipv4_blacklist_file") {
            f.v4 = v.into();
        }
        f.v6 = nemea_xml_value(&xml, "ipv6_blacklist_file").map(PathBuf::from);
        if nemea_xml_value(&xml, "watch_blacklists")
            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
        {
            f.watch = false;
        }
    }
    if let Some(p) = &args.ipv4 {
        f.v4 = p.clone();
    }
    if let Some(p) = &args.ipv6 {
        f.v6 = Some(p.clone());
    }
    Ok(f)
}

fn mtime(p: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Loads the lists; `Err` when the IPv4 file cannot be read.
fn load(f: &Files) -> Result<Blacklist> {
    let mut b = Blacklist::default();
    let text = read_text(&f.v4)?;
    for w in b.parse(&text, &f.v4.display().to_string()) {
        libtrap::log::warn(&w);
    }
    if let Some(v6) = &f.v6 {
        match read_text(v6) {
            Ok(text) => {
                for w in b.parse(&text, &v6.display().to_string()) {
                    libtrap::log::warn(&w);
                }
            }
            Err(e) => libtrap::log::warn(&e.to_string()),
        }
    }
    let (n4, n6) = b.len();
    libtrap::log::info(0, &format!("loaded {n4} IPv4 and {n6} IPv6 entries"));
    Ok(b)
}

/// The filter plus reloading on file changes (wall clock, at most once a second).
struct Watched {
    filter: Filter,
    files: Files,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    next_check: Instant,
}

impl Watched {
    fn check(&mut self) {
        if !self.files.watch || Instant::now() < self.next_check {
            return;
        }
        self.next_check = Instant::now() + Duration::from_secs(1);
        let stamps = (
            mtime(&self.files.v4),
            self.files.v6.as_ref().and_then(mtime),
        );
        if stamps == self.stamps {
            return;
        }
        self.stamps = stamps;
        match load(&self.files) {
            Ok(b) => self.filter.list = b,
            Err(e) => libtrap::log::warn(&format!("{e:#}; keeping the previous lists")),
        }
    }
}

impl FlowDetector for Watched {
    type Alert = Alert;
    fn input_spec(&self) -> &'static str {
        self.filter.input_spec()
    }
    fn output_spec(&self) -> &'static str {
        self.filter.output_spec()
    }
    fn flow(&mut self, f: &Flow, out: &mut Vec<Alert>) {
        self.check();
        self.filter.flow(f, out);
    }
    fn finish(&mut self, out: &mut Vec<Alert>) {
        self.filter.finish(out)
    }
    fn encode(&self, a: &Alert, b: &mut RecordBuilder<'_>) -> Result<(), RecordError> {
        self.filter.encode(a, b)
    }
}

fn run(args: &Args) -> Result<()> {
    let files = files(args)?;
    if !files.v4.exists() {
        bail!(
            "{}: no such file (give -4 FILE or a config)",
            files.v4.display()
        );
    }
    let list = load(&files)?;
    let mut w = Watched {
        filter: Filter::new(list),
        stamps: (mtime(&files.v4), files.v6.as_ref().and_then(mtime)),
        files,
        next_check: Instant::now() + Duration::from_secs(1),
    };
    let s = detector_common::run(&args.trap.ifc, &mut w, !args.no_eos)?;
    libtrap::log::info(0, &format!("{} flows, {} marked", s.flows, s.alerts));
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("ipblacklistfilter");
    module::start("ipblacklistfilter", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
