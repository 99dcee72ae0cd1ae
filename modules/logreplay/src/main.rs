//! logreplay — send the rows of a CSV file as UniRec records.

use anyhow::{Context, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Trap, TrapError};
use logreplay::{Header, Pace, MAX_PAUSE_SECS};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::process::ExitCode;
use std::time::Duration;
use unirec::RecordBuilder;

/// Reads a CSV file whose first line is a UniRec header (`logger -t` output)
/// and sends each row as a record, then an end-of-stream message. A leading
/// `time` column (from `logger -T`) paces the replay. Malformed rows are
/// reported with their line number and skipped; the exit status is then 1.
#[derive(Parser, Debug)]
#[command(
    name = "logreplay",
    version,
    after_help = "Interfaces: 1 output. Run `logreplay -h trap` for the -i syntax."
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// The CSV file to replay.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: String,
    /// Stop after N data lines.
    #[arg(short = 'c', long = "cut", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    cut: Option<u64>,
    /// Do not send the end-of-stream message at the end.
    #[arg(short = 'n', long = "no-eos", aliases = ["no-eof", "no_eof"])]
    no_eof: bool,
    /// Ignore the time column: send as fast as possible.
    #[arg(short = 'd', long = "disable-timing", alias = "disable_timing")]
    disable_timing: bool,
}

fn run(args: Args) -> Result<u64> {
    let file = File::open(&args.file).with_context(|| format!("cannot open {}", args.file))?;
    let mut reader = BufReader::with_capacity(1 << 18, file);
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line)? == 0 {
        anyhow::bail!("{}: the file is empty (expected a header line)", args.file);
    }
    let header_text =
        std::str::from_utf8(&line).with_context(|| format!("{}:1: not UTF-8", args.file))?;
    let header = Header::parse(header_text).map_err(|e| anyhow::anyhow!("{}:1: {e}", args.file))?;
    let mut trap = Trap::init(&args.trap.ifc, Some(0), Some(1))?;
    let out = &mut trap.outputs()[0];
    out.set_format(DataFormat::UniRec(header.template().spec().to_string()))?;
    let mut builder = RecordBuilder::new(header.template());
    let mut record = Vec::with_capacity(1024);
    let (mut line_no, mut sent, mut skipped) = (1u64, 0u64, 0u64);
    let mut last_time: Option<u32> = None;
    let mut jumps = 0u64;
    let pace = header.has_time_column() && !args.disable_timing;
    loop {
        if libtrap::is_terminated() || args.cut.is_some_and(|c| sent >= c) {
            break;
        }
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        line_no += 1;
        let filled = std::str::from_utf8(&line)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(|text| {
                if text.trim().is_empty() {
                    return Ok(None);
                }
                header.fill(&mut builder, text).map(Some)
            });
        let time = match filled {
            Ok(None) => continue,
            Ok(Some(t)) => t,
            Err(e) => {
                libtrap::log::warn(&format!("{}:{line_no}: {e}; line skipped", args.file));
                skipped += 1;
                continue;
            }
        };
        if let (true, Some(now)) = (pace, time) {
            match logreplay::pace(last_time, now) {
                Pace::Now => {}
                Pace::Wait(secs) => {
                    out.flush()?;
                    libtrap::sleep(Duration::from_secs(u64::from(secs)));
                }
                Pace::Jump(secs) => {
                    if jumps == 0 {
                        libtrap::log::warn(&format!(
                            "{}:{line_no}: the time column jumps {secs} s ahead; replaying on \
                             without waiting (jumps over {MAX_PAUSE_SECS} s are not waited for)",
                            args.file
                        ));
                    }
                    jumps += 1;
                }
            }
            last_time = Some(now);
        }
        record.clear();
        if let Err(e) = builder.finish(&mut record) {
            libtrap::log::warn(&format!("{}:{line_no}: {e}; line skipped", args.file));
            skipped += 1;
            continue;
        }
        match out.send(&record) {
            Ok(()) => sent += 1,
            Err(TrapError::Terminated) => break,
            Err(e) => return Err(e.into()),
        }
    }
    // After SIGINT this is best effort: whatever can be written without
    // waiting still reaches the readers.
    trap.end(!args.no_eof)?;
    libtrap::log::info(
        0,
        &format!("{sent} records sent, {skipped} lines skipped, {jumps} time jumps not waited for"),
    );
    Ok(skipped)
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("logreplay");
    module::start("logreplay", &args.trap);
    let file = args.file.clone();
    match run(args) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(n) => module::exit_status(Err(format!("{file}: {n} malformed line(s) skipped"))),
        Err(e) => module::exit_status(Err(format!("{e:#}"))),
    }
}
