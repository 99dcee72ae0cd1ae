//! vportscan_aggregator — vportscan_detector alerts to per-scanner JSON events.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Required, Timeout, Trap, TrapError};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use unirec::{RecordRef, Template};
use vportscan_aggregator::{Aggregator, ScanAlert, INPUT_SPEC, OUTPUT_FORMAT};

/// Aggregates the alerts of vportscan_detector per scanner (SRC_IP,
/// PROTOCOL) for a time window and sends one JSON event (format
/// "aggregated_portscan") per scanner at the end of each window and at the
/// end of the input. The end-of-stream message is forwarded.
#[derive(Parser, Debug)]
#[command(
    name = "vportscan_aggregator",
    version,
    after_help = "Interfaces: 1 input (vportscan_detector alerts, UniRec), 1 output (JSON \
\"aggregated_portscan\").\nExample: vportscan_aggregator -t 10 -i u:vportscan_out,t:12005"
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
    /// One event per (scanner, target) instead of one per scanner.
    #[arg(long = "noblockscans")]
    noblockscans: bool,
}

fn run(args: &Args) -> Result<()> {
    if !(args.time.is_finite() && args.time > 0.0) {
        bail!("-t must be a positive number of minutes");
    }
    let window = Duration::from_secs_f64(args.time * 60.0);
    let mut trap = Trap::init(&args.trap.ifc, Some(1), Some(1))?;
    let (inputs, outputs) = trap.split_mut();
    let input = &mut inputs[0];
    let output = &mut outputs[0];
    input.set_required(Required::UniRec(INPUT_SPEC.to_string()));
    input.set_timeout(Timeout::Micros(500_000));
    output.set_format(DataFormat::Json(OUTPUT_FORMAT.to_string()))?;
    let mut agg = Aggregator::new(!args.noblockscans);
    let mut tmpl: Option<(Template, [usize; 6])> = None;
    let mut deadline = Instant::now() + window;
    let send = |agg: &mut Aggregator, output: &mut libtrap::Output| -> Result<()> {
        for ev in agg.flush() {
            libtrap::ok_if_terminated(output.send(ev.to_string().as_bytes()))?;
        }
        Ok(())
    };
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
            let t = Template::parse(spec).context("bad template from the sender")?;
            let idx = [
                "SRC_IP",
                "DST_IP",
                "PORT_CNT",
                "TIME_FIRST",
                "TIME_LAST",
                "PROTOCOL",
            ]
            .map(|n| t.find(n).unwrap_or(usize::MAX));
            tmpl = Some((t, idx));
        }
        let Some((t, i)) = &tmpl else { continue };
        let rec = match RecordRef::new_checked(t, msg.data) {
            Ok(r) => r,
            Err(e) => {
                libtrap::log::warn(&format!("malformed record skipped: {e}"));
                continue;
            }
        };
        agg.add(&ScanAlert {
            src_ip: rec.get_ip(i[0]).unwrap_or_default(),
            dst_ip: rec.get_ip(i[1]).unwrap_or_default(),
            port_cnt: rec.get_u32(i[2]).unwrap_or(0),
            time_first: rec.get_time(i[3]).unwrap_or_default(),
            time_last: rec.get_time(i[4]).unwrap_or_default(),
            protocol: rec.get_u8(i[5]).unwrap_or(0),
        });
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
    module::start("vportscan_aggregator", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
