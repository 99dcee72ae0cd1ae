//! aggregator — NEMEA's older aggregator command line (`-k KEY -s FIELD ...`)
//! on the biflow_aggregator engine.

use anyhow::Result;
use biflow_aggregator::{parse_time_window, prepare, Aggregator, FieldConfig, Func};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use std::process::ExitCode;

/// Aggregates UniRec records by the key fields given with -k (none: all
/// records share one key), combining each field given with a function
/// option. The output has the key and function fields plus TIME_FIRST,
/// TIME_LAST and COUNT. Every option may be repeated; one function per
/// field. Timeouts are on record time (NEMEA's aggregator used the wall
/// clock for passive and global ones). Stops at end of stream, exporting
/// every flow, and sends end of stream.
#[derive(Parser, Debug)]
#[command(
    name = "aggregator",
    version,
    after_help = "Interfaces: 1 input (TIME_FIRST, TIME_LAST and the named fields), 1 output.\n\
Example: aggregator -k SRC_IP -k DST_IP -s BYTES -s PACKETS -f SRC_PORT -t M:300,30 -i u:flows,u:aggregated"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Key field (repeatable).
    #[arg(short = 'k', long = "key", value_name = "FIELD")]
    key: Vec<String>,
    /// Timeout: A:SEC (active), P:SEC (passive), G:SEC (global), M:ACTIVE,PASSIVE.
    #[arg(
        short = 't',
        long = "time-window",
        alias = "time_window",
        value_name = "T:SEC",
        default_value = "A:10"
    )]
    time_window: String,
    /// Sum of FIELD.
    #[arg(short = 's', long = "sum", value_name = "FIELD")]
    sum: Vec<String>,
    /// Average of FIELD.
    #[arg(short = 'a', long = "avg", value_name = "FIELD")]
    avg: Vec<String>,
    /// Minimum of FIELD.
    #[arg(short = 'm', long = "min", value_name = "FIELD")]
    min: Vec<String>,
    /// Maximum of FIELD.
    #[arg(short = 'M', long = "max", value_name = "FIELD")]
    max: Vec<String>,
    /// First value of FIELD.
    #[arg(short = 'f', long = "first", value_name = "FIELD")]
    first: Vec<String>,
    /// First non-empty (non-zero) value of FIELD.
    #[arg(short = 'F', long = "firstne", value_name = "FIELD")]
    firstne: Vec<String>,
    /// Last value of FIELD.
    #[arg(short = 'l', long = "last", value_name = "FIELD")]
    last: Vec<String>,
    /// Bitwise OR of FIELD.
    #[arg(short = 'o', long = "or", value_name = "FIELD")]
    or: Vec<String>,
    /// Bitwise AND of FIELD.
    #[arg(short = 'n', long = "and", value_name = "FIELD")]
    and: Vec<String>,
}

fn run(args: &Args) -> Result<()> {
    let timeouts = parse_time_window(&args.time_window)?;
    let groups = [
        (Func::Key, &args.key),
        (Func::Sum, &args.sum),
        (Func::Avg, &args.avg),
        (Func::Min, &args.min),
        (Func::Max, &args.max),
        (Func::First, &args.first),
        (Func::FirstNonEmpty, &args.firstne),
        (Func::Last, &args.last),
        (Func::BitOr, &args.or),
        (Func::BitAnd, &args.and),
    ];
    let mut fields = Vec::new();
    for (func, names) in groups {
        for n in names {
            if n == "TIME_FIRST" || n == "TIME_LAST" {
                anyhow::bail!(
                    "{n} is always in the output (its minimum / maximum); it takes no function"
                );
            }
            fields.push(FieldConfig::new(n, func));
        }
    }
    let mut agg = Aggregator::new(prepare(fields)?, timeouts, 1 << 20)?;
    let (stats, dropped) = biflow_aggregator::run::run(&args.trap.ifc, &mut agg, true)?;
    libtrap::log::info(
        0,
        &format!(
            "{} records in, {} aggregated records out ({dropped} dropped: output timeout)",
            stats.records, stats.exported
        ),
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("aggregator");
    module::start("aggregator", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
