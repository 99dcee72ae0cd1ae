//! bl_downloader — keeps ipblacklistfilter's detector files up to date.
#![forbid(unsafe_code)]

use anyhow::{Context, Result};
use bl_downloader::{
    detector_files, parse_detector_file, parse_list, replace_file, repo_files, Config, Entity,
    Error, Fetcher,
};
use clap::Parser;
use detector_common::files::{read_text, ReadError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Downloads the IP blacklists of the configuration (HTTP(S) or files) every
/// `interval` seconds and writes the IPv4 and IPv6 detector files of
/// ipblacklistfilter, which re-reads them when they change. A list that
/// fails to download, or whose body is not a list (not JSON, an HTML page,
/// mostly lines that are not addresses, or no entries unless the list has
/// allow_empty), keeps its last good content, which at start-up is what the
/// existing detector files hold; files are replaced atomically and only when
/// their content changes.
#[derive(Parser, Debug)]
#[command(
    name = "bl_downloader",
    version,
    after_help = "Configuration: NEMEA's bl_downloader_config.xml (general, detector_files, the IP \
array of blacklist_array; URL/DNS lists are left out), or TOML with interval, timeout, ipv4_file, \
ipv6_file, ca_file and [[blacklist]] tables (id 1-64, name, category, source = https://, http://, file:// or a path, \
format = plaintext|csv|json, csv_col, interval, ip_version, json_address_key, json_port_key, \
json_prefix_key, filter_key, filter_value, allow_empty). https servers are verified against the Mozilla \
roots built in, or against the PEM certificates of ca_file; HTTP(S) proxies come from \
http_proxy/https_proxy/ALL_PROXY.\n\
Example: bl_downloader -c /etc/nemea/bl_downloader.toml"
)]
struct Args {
    /// Configuration file (NEMEA's XML or TOML).
    #[arg(
        short = 'c',
        long = "config",
        visible_alias = "config-file",
        value_name = "FILE"
    )]
    config: PathBuf,
    /// Also keep a copy of each list in DIR/ip4|ip6/<name>.blist
    /// (`entity:ports` lines), versioned with git when git is installed.
    #[arg(short = 'r', long = "repo-path", value_name = "DIR")]
    repo_path: Option<PathBuf>,
    /// NEMEA's logging level (10 debug, 20 info, 30 warnings); -v does the
    /// same.
    #[arg(short = 'l', long = "log-level", value_name = "N")]
    log_level: Option<u32>,
    /// Download every list once, write the files and exit (status 1 when a
    /// list failed).
    #[arg(long = "once")]
    once: bool,
    /// More messages on stderr.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
}

fn run(args: &Args) -> Result<()> {
    let cfg = Config::load(&args.config)?;
    let names: BTreeMap<u8, String> = cfg
        .blacklist
        .iter()
        .map(|l| (l.id, l.name.clone()))
        .collect();
    let fetcher = Fetcher::new(
        Duration::from_secs(cfg.timeout.max(1)),
        cfg.ca_file.as_deref(),
    )?;
    // The files are rewritten when a list changes, and at start when they
    // hold lists no longer configured.
    let (mut content, mut stale) = last_good(&cfg);
    let mut due: Vec<Instant> = vec![Instant::now(); cfg.blacklist.len()];
    loop {
        let mut changed = std::mem::take(&mut stale);
        let mut failed = 0;
        for (i, l) in cfg.blacklist.iter().enumerate() {
            if Instant::now() < due[i] {
                continue;
            }
            due[i] =
                Instant::now() + Duration::from_secs(l.interval.unwrap_or(cfg.interval).max(1));
            let list = fetcher.fetch(&l.source).and_then(|body| {
                parse_list(&body, l).map_err(|err| Error::List {
                    url: l.source.clone(),
                    err,
                })
            });
            match list {
                Ok(ents) => {
                    libtrap::log::info(0, &format!("{}: {} entities", l.name, ents.len()));
                    if content.get(&l.id) != Some(&ents) {
                        content.insert(l.id, ents);
                        changed = true;
                    }
                }
                Err(e) => {
                    failed += 1;
                    libtrap::log::warn(&format!(
                        "blacklist {}: {e}; keeping the last good list",
                        l.name
                    ))
                }
            }
        }
        if changed {
            if let Some(repo) = &args.repo_path {
                update_repo(repo, &content, &names);
            }
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

/// The lists of the existing detector files that are still configured (the
/// last good content until a download replaces it), and whether the files
/// hold others.
fn last_good(cfg: &Config) -> (BTreeMap<u8, Vec<Entity>>, bool) {
    let mut content: BTreeMap<u8, Vec<Entity>> = BTreeMap::new();
    let mut stale = false;
    let mut paths = vec![&cfg.ipv4_file];
    if cfg.ipv6_file != cfg.ipv4_file {
        paths.push(&cfg.ipv6_file);
    }
    for path in paths {
        match read_text(path) {
            Ok(text) => {
                for (id, ents) in parse_detector_file(&text) {
                    if cfg.blacklist.iter().any(|l| l.id == id) {
                        content.entry(id).or_default().extend(ents);
                    } else {
                        stale = true;
                    }
                }
            }
            Err(ReadError::Io { cause, .. }) if cause.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => libtrap::log::warn(&format!("{e}; its lists start empty")),
        }
    }
    for ents in content.values_mut() {
        ents.sort_unstable();
        ents.dedup();
    }
    (content, stale)
}

/// Writes the per-list copies into `repo` and commits them with git (a
/// failure is reported; the detector files are written anyway).
fn update_repo(repo: &Path, content: &BTreeMap<u8, Vec<Entity>>, names: &BTreeMap<u8, String>) {
    for (file, text) in repo_files(content, names) {
        if let Err(e) = replace_file(&repo.join(file), &text) {
            libtrap::log::warn(&format!("repository copy: {e}"));
            return;
        }
    }
    let git = |args: &[&str]| -> Result<()> {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .context("cannot run git")?;
        if !out.status.success() {
            anyhow::bail!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    let committed = (|| -> Result<()> {
        if !repo.join(".git").is_dir() {
            git(&["init", "-q"])?;
        }
        git(&["add", "-A"])?;
        git(&[
            "-c",
            "user.name=bl_downloader",
            "-c",
            "user.email=bl_downloader",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "Blacklists updated",
        ])
    })();
    if let Err(e) = committed {
        libtrap::log::warn(&format!("repository {}: {e:#}", repo.display()));
    }
}

fn main() -> ExitCode {
    let args: Args = libtrap::module::parse_cli("bl_downloader");
    libtrap::log::set_program_name("bl_downloader");
    let from_level = match args.log_level {
        Some(l) if l <= 10 => 2,
        Some(l) if l <= 20 => 1,
        _ => 0,
    };
    libtrap::log::set_verbosity(args.verbose.max(from_level) as i8 - 1);
    libtrap::module::install_signal_handlers();
    libtrap::module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
