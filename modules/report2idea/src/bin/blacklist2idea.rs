//! blacklist2idea — blacklist_aggregator's events to IDEA.
#![forbid(unsafe_code)]

use clap::Parser;
use report2idea::reporters::blacklist::BlacklistReporter;
use report2idea::CommonArgs;
use std::path::PathBuf;
use std::process::ExitCode;

/// Reads the events of blacklist_aggregator (JSON "aggregated_blacklist",
/// also from NEMEA's blacklist_aggregator.py) and writes one IDEA message per
/// event (category, name and source URL of the list from the bl_downloader
/// configuration): to stdout as one JSON line by default, or as the rules of
/// -c say. The listed address is Source[0]; its peers are Source[1] when
/// they sent data to it, else Target[0] ("tried to communicate ... with no
/// response"). URL/DNS events are skipped with a warning.
#[derive(Parser, Debug)]
#[command(
    name = "blacklist2idea",
    version,
    after_help = "Interfaces: 1 input (JSON \"aggregated_blacklist\"), plus 1 output (JSON \"IDEA\") \
with -T.\n\
Example: blacklist2idea --blacklist-config /etc/nemea/bl_downloader.toml -i u:blacklist_events"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// The bl_downloader configuration naming the blacklists: NEMEA's
    /// bl_downloader_config.xml or our TOML.
    #[arg(long = "blacklist-config", value_name = "FILE")]
    blacklist_config: PathBuf,
}

fn main() -> ExitCode {
    let args: Args = libtrap::module::parse_args("blacklist2idea");
    let lists = bl_downloader::Config::load(&args.blacklist_config);
    match lists {
        Ok(cfg) => report2idea::main_with(
            "blacklist2idea",
            &args.common,
            BlacklistReporter {
                lists: cfg.blacklist.into_iter().map(|l| (l.id, l)).collect(),
            },
        ),
        Err(e) => {
            libtrap::log::set_program_name("blacklist2idea");
            libtrap::module::exit_status(Err(format!("{e:#}")))
        }
    }
}
