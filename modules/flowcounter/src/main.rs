//! flowcounter — counts flows, packets and bytes.

use anyhow::{bail, Result};
use clap::Parser;
use flowcounter::{progress_due, Counters, OUTPUT_SPEC};
use libtrap::module::{self, TrapArgs};
use libtrap::records::{Next, Records};
use libtrap::{DataFormat, Timeout, Trap, TrapError};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use unirec::{FieldType, Scalar, Template};

/// Counts the records of its input and sums their PACKETS and BYTES;
/// prints the totals on stdout at the end (SIGUSR1: at the next record too).
/// With -o SEC it also sends a record of the counters every SEC seconds on
/// an output interface (give it in -i after the input).
#[derive(Parser, Debug)]
#[command(
    name = "flowcounter",
    version,
    after_help = "Interfaces: 1 input (PACKETS, BYTES); with -o also 1 output (uint64 FLOWS, uint32 PACKETS, uint64 BYTES).\n\
Example: flowcounter -p 100000 -i u:flow_data_source\n         flowcounter -o 10 -r -i u:flow_data_source,u:flow_rates"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Print a progress character every N records.
    #[arg(short = 'p', long = "print", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    print: Option<u64>,
    /// The progress character.
    #[arg(
        short = 'P',
        long = "print-char",
        alias = "print_c",
        value_name = "CHAR",
        default_value = "."
    )]
    print_char: char,
    /// Send the counters every SEC seconds (1-999) on the output interface.
    #[arg(short = 'o', long = "send-time", alias = "send_time", value_name = "SEC",
          value_parser = clap::value_parser!(u64).range(1..1000))]
    send_time: Option<u64>,
    /// With -o: send the counts since the previous record instead of the totals.
    #[arg(short = 'r', long = "relative")]
    relative: bool,
    /// With -o: do not send end of stream at the end.
    #[arg(short = 'n', long = "no-eos")]
    no_eos: bool,
}

/// The -i spec with the output made non-blocking (as C's), unless the user
/// chose a timeout for it.
fn spec_with_nonblocking_output(spec: &str) -> Result<String> {
    let parsed = libtrap::spec::parse(spec)?;
    match parsed.last() {
        Some(out) if parsed.len() == 2 && out.timeout.is_none() => {
            Ok(format!("{}:timeout=NO_WAIT", spec.trim_end_matches(',')))
        }
        _ => Ok(spec.to_string()),
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Offsets of PACKETS and BYTES in the sender's template.
fn packets_and_bytes(t: &Template) -> Result<(usize, usize), &'static str> {
    let off = |n: &str, s: Scalar| {
        t.find_typed(n, FieldType::Scalar(s))
            .and_then(|i| t.field(i))
            .map(|f| f.offset())
    };
    off("PACKETS", Scalar::U32)
        .zip(off("BYTES", Scalar::U64))
        .ok_or("the input has no `uint32 PACKETS` and `uint64 BYTES`")
}

fn run(args: &Args) -> Result<()> {
    let usr1 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, usr1.clone())?;
    let (spec, outputs) = match args.send_time {
        Some(_) => (spec_with_nonblocking_output(&args.trap.ifc)?, 1),
        None => (args.trap.ifc.clone(), 0),
    };
    let mut trap = Trap::init(&spec, Some(1), Some(outputs))?;
    let (inputs, outs) = trap.split_mut();
    let input = &mut inputs[0];
    let out_t = Template::parse(OUTPUT_SPEC)?;
    let interval = args.send_time.map(Duration::from_secs);
    if let Some(o) = outs.first_mut() {
        o.set_format(DataFormat::UniRec(out_t.spec().to_string()))?;
        // Wake up to send on time while no records come.
        input.set_timeout(Timeout::Micros(100_000));
    }
    let mut next_send = interval.map(|i| Instant::now() + i);
    let mut counts = Counters::default();
    let mut sent = Counters::default();
    let mut rec = Vec::new();
    let mut records = Records::new();
    let stdout = std::io::stdout();
    let result: Result<()> = loop {
        if let (Some(at), Some(i), Some(o)) = (next_send, interval, outs.first_mut()) {
            if Instant::now() >= at {
                let c = if args.relative {
                    counts.since(&sent)
                } else {
                    counts
                };
                c.record(&out_t, &mut rec);
                match o.send(&rec) {
                    Ok(()) | Err(TrapError::Timeout) => {}
                    Err(TrapError::Terminated) => break Ok(()),
                    Err(e) => break Err(e.into()),
                }
                let _ = o.flush();
                sent = counts;
                next_send = Some(at + i);
            }
        }
        let (flow, &(p, b)) = match records.next(input, packets_and_bytes) {
            Ok(Next::Record { rec, layout, .. }) => (rec, layout),
            Ok(Next::Timeout | Next::Skipped) => continue,
            Ok(Next::End) => break Ok(()),
            Err(e) => break Err(e.into()),
        };
        let packets = u32::from_le_bytes(flow.fixed(p));
        let bytes = u64::from_le_bytes(flow.fixed(b));
        counts.add(packets, bytes);
        if let Some(every) = args.print {
            if progress_due(counts.flows, every) {
                let mut o = stdout.lock();
                let _ = write!(o, "{}", args.print_char);
                let _ = o.flush();
            }
        }
        if usr1.swap(false, Relaxed) {
            let mut o = stdout.lock();
            let _ = write!(o, "Time: {}\n{}", now_secs(), counts.text());
            let _ = o.flush();
        }
    };
    let mut o = stdout.lock();
    if args.print.is_some() {
        let _ = writeln!(o);
    }
    let _ = write!(o, "{}", counts.text());
    let _ = o.flush();
    let eos = outputs == 1 && !args.no_eos;
    let ended = trap.end(eos);
    result?;
    if let Err(e) = ended {
        bail!(e);
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("flowcounter");
    module::start("flowcounter", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
