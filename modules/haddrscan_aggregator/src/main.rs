//! haddrscan_aggregator — haddrscan_detector alerts merged per (scanner, port).
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::Parser;
use haddrscan_aggregator::{output_template, Aggregator, Scan, INPUT_SPEC};
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Required, Timeout, Trap, TrapError};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use unirec::{RecordBuilder, RecordRef, Template};

/// Merges the alerts of haddrscan_detector per (SRC_IP, DST_PORT) for a
/// time window (wall clock) and sends one record with up to 16 targets
/// (DST_IP0..15) per key at the end of each window and of the input. The
/// end-of-stream message is forwarded.
#[derive(Parser, Debug)]
#[command(
    name = "haddrscan_aggregator",
    version,
    after_help = "Interfaces: 1 input (haddrscan_detector alerts), 1 output (SRC_IP, ADDR_CNT, ADDR_THRSD, \
TIME_FIRST, TIME_LAST, DST_PORT, EVENT_TYPE, PROTOCOL, DST_IP0..DST_IP15).\n\
Example: haddrscan_aggregator -t 10 -i u:haddrscan_out,u:haddrscan_aggr"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Aggregation window in minutes (wall clock).
    #[arg(
        short = 't',
        long = "time",
        value_name = "MINUTES",
        default_value_t = 5.0
    )]
    time: f64,
}

fn run(args: &Args) -> Result<()> {
    if !(args.time.is_finite() && args.time > 0.0) {
        bail!("-t must be a positive number of minutes");
    }
    let window = Duration::from_secs_f64(args.time * 60.0);
    let out_tmpl = output_template()?;
    let mut trap = Trap::init(&args.trap.ifc, Some(1), Some(1))?;
    let (inputs, outputs) = trap.split_mut();
    let input = &mut inputs[0];
    let output = &mut outputs[0];
    input.set_required(Required::UniRec(INPUT_SPEC.to_string()));
    input.set_timeout(Timeout::Micros(500_000));
    output.set_format(DataFormat::UniRec(out_tmpl.spec().to_string()))?;
    let mut agg = Aggregator::default();
    let mut builder = RecordBuilder::new(&out_tmpl);
    let mut buf = Vec::new();
    let mut send = |agg: &mut Aggregator, output: &mut libtrap::Output| -> Result<()> {
        for s in agg.flush() {
            builder.clear();
            s.encode(&mut builder)?;
            buf.clear();
            builder.finish(&mut buf)?;
            libtrap::ok_if_terminated(output.send(&buf))?;
        }
        Ok(())
    };
    let mut tmpl: Option<Template> = None;
    let mut deadline = Instant::now() + window;
    let result = loop {
        if Instant::now() >= deadline {
            send(&mut agg, output)?;
            deadline = Instant::now() + window;
        }
        let msg = match input.recv() {
            Ok(m) => m,
            Err(TrapError::Terminated) => break Ok(()),
            Err(TrapError::Timeout) => continue,
            Err(e) => break Err(anyhow::Error::from(e)),
        };
        if msg.is_eos() {
            break Ok(());
        }
        if msg.format_changed || tmpl.is_none() {
            let Some(DataFormat::UniRec(spec)) = msg.format else {
                bail!("{}: the input is not UniRec", input.name());
            };
            tmpl = Some(Template::parse(spec).context("bad template from the sender")?);
        }
        let Some(t) = &tmpl else { continue };
        match RecordRef::new_checked(t, msg.data) {
            Ok(rec) => agg.add(Scan::from_record(&rec)),
            Err(e) => libtrap::log::warn(&format!("malformed record skipped: {e}")),
        }
    };
    let sent = send(&mut agg, output);
    let ended = trap.end(true);
    result?;
    sent?;
    ended?;
    Ok(())
}

fn main() -> ExitCode {
    module::handle_trap_help();
    let args = Args::parse();
    module::start("haddrscan_aggregator", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
