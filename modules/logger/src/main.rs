//! logger — print UniRec records from a TRAP input as CSV.

use anyhow::{bail, Context, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Trap, TrapError};
use logger::columns::Selection;
use logger::{parse_delimiter, Options, Printer, Step};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// Prints every UniRec record received on the input interface as one CSV
/// line (fields in UniRec order, as NEMEA's logger), or as one JSON object
/// per line with --json. Stops at end of stream.
#[derive(Parser, Debug)]
#[command(
    name = "logger",
    version,
    after_help = "Interfaces: 1 input. Run `logger -h trap` for the -i syntax."
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Write to FILE (truncated) instead of stdout.
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        conflicts_with = "append"
    )]
    write: Option<String>,
    /// Append to FILE instead of writing to stdout.
    #[arg(short = 'a', long = "append", value_name = "FILE")]
    append: Option<String>,
    /// Print a header line (`type NAME` of every field) first.
    #[arg(short = 't', long = "title", conflicts_with = "json")]
    title: bool,
    /// Start each line with the time the record was received (UTC).
    #[arg(short = 'T', long = "time", conflicts_with = "json")]
    time: bool,
    /// Stop after N records.
    #[arg(short = 'c', long = "cut", value_name = "N")]
    cut: Option<u64>,
    /// Field delimiter: one character or \t \n \r \f \v.
    #[arg(short = 'd', long = "delimiter", value_name = "X", default_value = ",")]
    delimiter: String,
    /// Print only these fields, in this order: `NAME,...` or a UniRec spec
    /// (`uint32 FOO,time BAR`). A field the input lacks prints empty (null
    /// in JSON).
    #[arg(
        short = 'o',
        long = "output-fields",
        alias = "output_fields",
        value_name = "FIELDS"
    )]
    output_fields: Option<String>,
    /// One JSON object per line instead of CSV: field names as keys,
    /// addresses and ISO 8601 UTC times as strings, bytes as hex, arrays as
    /// arrays (as unirec2json).
    #[arg(long = "json")]
    json: bool,
}

fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

fn run(args: Args) -> Result<()> {
    let delimiter = parse_delimiter(&args.delimiter).map_err(anyhow::Error::msg)?;
    let select = args
        .output_fields
        .as_deref()
        .map(Selection::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let mut sink: Box<dyn Write> = match (&args.write, &args.append) {
        (Some(f), _) => Box::new(File::create(f).with_context(|| format!("cannot open {f}"))?),
        (_, Some(f)) => Box::new(
            OpenOptions::new()
                .append(true)
                .create(true)
                .open(f)
                .with_context(|| format!("cannot open {f}"))?,
        ),
        _ => Box::new(io::stdout().lock()),
    };
    let mut trap = Trap::init(&args.trap.ifc, Some(1), Some(0))?;
    let input = &mut trap.inputs()[0];
    let mut printer = Printer::new(Options {
        delimiter,
        title: args.title,
        timestamps: args.time,
        select,
        json: args.json,
    });
    let mut out = Vec::with_capacity(1 << 17);
    let mut printed = 0u64;
    let result = loop {
        let msg = match input.recv() {
            Ok(m) => m,
            Err(TrapError::Terminated) => break Ok(()),
            Err(TrapError::Timeout) => continue,
            Err(e) => break Err(anyhow::Error::from(e)),
        };
        if msg.format_changed {
            let Some(DataFormat::UniRec(spec)) = msg.format else {
                bail!("{}: the input is not UniRec", input.name());
            };
            let warnings = printer
                .set_template(spec, &mut out)
                .context("bad template from the sender")?;
            warnings.iter().for_each(|w| libtrap::log::warn(w));
            if args.cut == Some(0) {
                break Ok(());
            }
        }
        let now = if args.time { now_secs() } else { 0 };
        match printer.record(msg.data, now, &mut out) {
            Ok(Step::EndOfStream) => break Ok(()),
            Ok(Step::Printed) => printed += 1,
            Err(e) => break Err(anyhow::anyhow!("{}: {e}", input.name())),
        }
        if args.cut.is_some_and(|c| printed >= c) {
            break Ok(());
        }
        // Flush when no more input is at hand, so lines appear promptly.
        if !input.has_buffered() || out.len() > (1 << 16) {
            sink.write_all(&out)?;
            sink.flush()?;
            out.clear();
        }
    };
    sink.write_all(&out)?;
    sink.flush()?;
    result
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("logger");
    module::start("logger", &args.trap);
    match run(args) {
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        r => module::exit_status(r.map_err(|e| format!("{e:#}"))),
    }
}
