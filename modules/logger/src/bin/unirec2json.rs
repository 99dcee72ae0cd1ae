//! unirec2json — UniRec records in, one JSON document per record out (a
//! TRAP interface of the JSON format), as NEMEA's unirec2json.

use anyhow::{anyhow, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{log, DataFormat, Trap, TrapError};
use logger::columns::{Columns, Selection};
use std::process::ExitCode;
use unirec::{RecordRef, Template};

/// Turns every UniRec record of the input into a JSON object sent on the
/// output (TRAP JSON format): field names as keys, numbers as numbers,
/// addresses and ISO 8601 UTC times as strings, bytes as hex, arrays as
/// arrays. At the input's end of stream it sends end of stream and stops.
#[derive(Parser, Debug)]
#[command(
    name = "unirec2json",
    version,
    after_help = "Interfaces: 1 input (UniRec), 1 output (JSON). Run `unirec2json -h trap` for the -i syntax.\nExample: unirec2json -i u:flows,u:flows_json; `logger --json` prints the same objects to stdout."
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Format identifier of the JSON output (what the receiver requires).
    #[arg(
        short = 'f',
        long = "format",
        value_name = "FMT_ID",
        default_value = ""
    )]
    format: String,
    /// Only these fields, in this order: `NAME,...` or a UniRec spec.
    #[arg(
        short = 'o',
        long = "output-fields",
        alias = "output_fields",
        value_name = "FIELDS"
    )]
    output_fields: Option<String>,
    /// Do not send end of stream at the end.
    #[arg(short = 'n', long = "no-eos", aliases = ["no-eof", "no_eof"])]
    no_eos: bool,
}

fn run(args: Args) -> Result<()> {
    let select = args
        .output_fields
        .as_deref()
        .map(Selection::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let mut trap = Trap::init(&args.trap.ifc, Some(1), Some(1))?;
    let (inputs, outputs) = trap.split_mut();
    let (input, output) = (&mut inputs[0], &mut outputs[0]);
    let in_name = input.name().to_string();
    output.set_format(DataFormat::Json(args.format.clone()))?;
    let mut current: Option<(Template, Columns)> = None;
    let mut doc = Vec::with_capacity(4096);
    let mut too_large = 0u64;
    let result: Result<()> = loop {
        let msg = match input.recv() {
            Ok(m) => m,
            Err(TrapError::Terminated) => break Ok(()),
            Err(TrapError::Timeout) => continue,
            Err(e) => break Err(e.into()),
        };
        if msg.format_changed {
            let Some(DataFormat::UniRec(spec)) = msg.format else {
                break Err(anyhow!("{in_name}: the input is not UniRec"));
            };
            let t = match Template::parse(spec) {
                Ok(t) => t,
                Err(e) => break Err(anyhow!("{in_name}: bad template from the sender: {e}")),
            };
            let mut warnings = Vec::new();
            let cols = match &select {
                Some(sel) => Columns::select(&t, sel, &mut warnings),
                None => Columns::all(&t),
            };
            warnings.iter().for_each(|w| log::warn(w));
            current = Some((t, cols));
        }
        if msg.is_eos() {
            break Ok(());
        }
        let Some((t, cols)) = &current else {
            break Err(anyhow!(
                "{in_name}: a record arrived before its data format"
            ));
        };
        let rec = match RecordRef::new_checked(t, msg.data) {
            Ok(r) => r,
            Err(e) => break Err(anyhow!("{in_name}: {e}")),
        };
        doc.clear();
        logger::json::write_record(&rec, cols, &mut doc);
        if doc.len() > usize::from(u16::MAX) {
            // A TRAP message holds at most 65535 bytes.
            if too_large == 0 {
                log::warn(&format!(
                    "a record's JSON is {} bytes, more than a TRAP message holds (65535): such records are skipped and counted",
                    doc.len()
                ));
            }
            too_large += 1;
            continue;
        }
        match output.send(&doc) {
            Ok(()) | Err(TrapError::Timeout) => {}
            Err(TrapError::Terminated) => break Ok(()),
            Err(e) => break Err(e.into()),
        }
    };
    if too_large > 0 {
        log::warn(&format!(
            "{too_large} record(s) skipped: JSON larger than 65535 bytes"
        ));
    }
    let ended = trap.end(!args.no_eos);
    result?;
    Ok(ended?)
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("unirec2json");
    module::start("unirec2json", &args.trap);
    module::exit_status(run(args).map_err(|e| format!("{e:#}")))
}
