//! biflow_aggregator — records with the same key into one, by an XML config.

use anyhow::{Context, Result};
use biflow_aggregator::{parse_global, parse_xml, Aggregator, Timeouts};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use std::process::ExitCode;

/// Aggregates UniRec records by key (NEMEA's biflow_aggregator, module name
/// "aggregator"). The key fields and the function of every other field
/// (SUM, AVG, MIN, MAX, BITAND, BITOR, FIRST, FIRST_NON_EMPTY, LAST,
/// LAST_NON_EMPTY, APPEND, UNIQUE_COUNT, SORTED_MERGE, SORTED_MERGE_DIR)
/// come from section -n of the XML file -c. The output has TIME_FIRST,
/// TIME_LAST, COUNT and the configured fields. When SRC_IP, DST_IP,
/// SRC_PORT, DST_PORT and PROTOCOL are all keys, both directions of a
/// connection aggregate together (biflow). Timeouts are on record time.
#[derive(Parser, Debug)]
#[command(
    name = "biflow_aggregator",
    version,
    after_help = "Interfaces: 1 input (TIME_FIRST, TIME_LAST and every configured field), 1 output.\n\
Config: <aggregator><id name=\"NAME\"><field><name>SRC_IP</name><type>KEY</type></field>\n\
        <field><name>BYTES</name><type>SUM</type></field></id></aggregator>\n\
Example: biflow_aggregator -c config.xml -n by_src -a 300 -p 30 -i u:flows,u:aggregated"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// XML config file.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: String,
    /// Section of the config to use (`<id name="NAME">`).
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    name: String,
    /// Active timeout: a flow is exported this many seconds after its first record.
    #[arg(
        short = 'a',
        long = "active-timeout",
        value_name = "SEC",
        default_value_t = 40
    )]
    active: u64,
    /// Passive timeout: a flow is exported when it had no record for this long (<= active).
    #[arg(
        short = 'p',
        long = "passive-timeout",
        value_name = "SEC",
        default_value_t = 20
    )]
    passive: u64,
    /// Flow cache of 2^EXP flows (at least 4); when full, the flow nearest its timeout goes.
    #[arg(short = 's', long = "size", value_name = "EXP", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(0..=30))]
    size: u32,
    /// Stop at the input's end of stream (otherwise it is skipped and the module waits for more).
    #[arg(short = 'e', long = "eof", alias = "eos")]
    eof: bool,
    /// Global timeout N[a|absolute|r|relative]: export every flow every N seconds
    /// of record time, aligned to multiples of N (a) or after the last flush (r);
    /// replaces the active and passive timeouts. 0: off.
    #[arg(short = 'g', long = "global-timeout", value_name = "N[a|r]")]
    global: Option<String>,
}

fn run(args: &Args) -> Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read the config {}", args.config))?;
    let fields = parse_xml(&text, &args.name).with_context(|| format!("config {}", args.config))?;
    let global = match &args.global {
        Some(g) => parse_global(g)?,
        None => None,
    };
    let timeouts = Timeouts {
        active: args.active,
        passive: args.passive,
        global,
    };
    let mut agg = Aggregator::new(fields, timeouts, (1usize << args.size).max(4))?;
    let (stats, dropped) = biflow_aggregator::run::run(&args.trap.ifc, &mut agg, args.eof)?;
    libtrap::log::info(
        0,
        &format!(
            "{} records in, {} aggregated records out ({} exported early: cache full; {} dropped: over 65535 bytes; {} dropped: output timeout)",
            stats.records, stats.exported, stats.evicted, stats.too_large, dropped
        ),
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("biflow_aggregator");
    module::start("biflow_aggregator", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
