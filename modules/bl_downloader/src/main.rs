//! bl_downloader — keeps ipblacklistfilter's detector files up to date.
#![forbid(unsafe_code)]

use anyhow::{Context, Result};
use bl_downloader::{detector_files, extract, replace_file, Config, Entity, Fetcher};
use clap::Parser;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Downloads the IP blacklists of the configuration (HTTP(S) or files) every
/// `interval` seconds and writes the IPv4 and IPv6 detector files of
/// ipblacklistfilter, which re-reads them when they change. A list that
/// fails keeps its last good content; files are replaced atomically and only
/// when their content changes.
#[derive(Parser, Debug)]
#[command(
    name = "bl_downloader",
    version,
    after_help = "Configuration: TOML with interval, timeout, ipv4_file, ipv6_file, ca_file and \
[[blacklist]] tables (id 1-64, name, category, source = https://, http://, file:// or a path, \
format = plaintext|csv, csv_col, interval). https servers are verified against the Mozilla \
roots built in, or against the PEM certificates of ca_file; HTTP(S) proxies come from \
http_proxy/https_proxy/ALL_PROXY.\n\
Example: bl_downloader -c /etc/nemea/bl_downloader.toml"
)]
struct Args {
    /// Configuration file.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: PathBuf,
    /// Download every list once, write the files and exit (status 1 when a
    /// list failed).
    #[arg(long = "once")]
    once: bool,
    /// More messages on stderr.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
}

fn run(args: &Args) -> Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read {}", args.config.display()))?;
    let cfg = Config::parse(&text, &args.config.display().to_string())?;
    let fetcher = Fetcher::new(
        Duration::from_secs(cfg.timeout.max(1)),
        cfg.ca_file.as_deref(),
    )?;
    let mut content: BTreeMap<u8, Vec<Entity>> = BTreeMap::new();
    let mut due: Vec<Instant> = vec![Instant::now(); cfg.blacklist.len()];
    loop {
        let mut changed = false;
        let mut failed = 0;
        for (i, l) in cfg.blacklist.iter().enumerate() {
            if Instant::now() < due[i] {
                continue;
            }
            due[i] =
                Instant::now() + Duration::from_secs(l.interval.unwrap_or(cfg.interval).max(1));
            match fetcher.fetch(&l.source) {
                Ok(body) => {
                    let ents = extract(&body, l);
                    libtrap::log::info(0, &format!("{}: {} entities", l.name, ents.len()));
                    if content.get(&l.id) != Some(&ents) {
                        content.insert(l.id, ents);
                        changed = true;
                    }
                }
                Err(e) => {
                    failed += 1;
                    libtrap::log::warn(&format!(
                        "blacklist {}: {e}; keeping the last good content",
                        l.name
                    ))
                }
            }
        }
        if changed {
            let (v4, v6) = detector_files(&content);
            for (path, text) in [(&cfg.ipv4_file, v4), (&cfg.ipv6_file, v6)] {
                if replace_file(path, &text)? {
                    libtrap::log::info(0, &format!("wrote {}", path.display()));
                }
            }
        }
        if args.once {
            if failed > 0 {
                anyhow::bail!("{failed} of {} blacklists failed", cfg.blacklist.len());
            }
            return Ok(());
        }
        if libtrap::is_terminated() {
            return Ok(());
        }
        let next = due.iter().min().copied().unwrap_or_else(Instant::now);
        libtrap::sleep(
            next.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100)),
        );
        if libtrap::is_terminated() {
            return Ok(());
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    libtrap::log::set_program_name("bl_downloader");
    libtrap::log::set_verbosity(args.verbose as i8 - 1);
    libtrap::module::install_signal_handlers();
    libtrap::module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
