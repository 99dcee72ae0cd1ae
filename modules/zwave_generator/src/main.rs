//! zwave_generator — emit tutorial sensor readings on a TRAP output.

use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Trap, TrapError};
use std::process::ExitCode;
use std::time::Duration;
use unirec::Template;

/// Sends Z-Wave sensor readings (uint32 GW_ID, int32 SOAFCount, int32 TIME)
/// like the NEMEA tutorial's generator: reading i has SOAFCount i and TIME
/// 100·i, one every 2 seconds, until interrupted (or -n readings were sent).
/// Each reading is flushed at once so a reader sees it immediately.
#[derive(Parser, Debug)]
#[command(
    name = "zwave_generator",
    version,
    after_help = "Interfaces: 1 output. Example: zwave_generator -i u:mysocket"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Gateway id put in GW_ID.
    #[arg(short = 'g', long = "gateway", default_value_t = 101)]
    gateway: u32,
    /// Seconds between readings (fractions allowed).
    #[arg(short = 'p', long = "period", default_value_t = 2.0)]
    period: f64,
    /// Stop after N readings and send end-of-stream (0 = never stop).
    #[arg(short = 'n', long = "count", default_value_t = 0)]
    count: u32,
}

fn run(args: &Args) -> Result<(), TrapError> {
    if !(args.period.is_finite() && args.period >= 0.0) {
        return Err(TrapError::BadSpec(format!("bad period {}", args.period)));
    }
    let t =
        Template::parse(zwave_generator::SPEC).map_err(|e| TrapError::BadSpec(e.to_string()))?;
    let mut trap = Trap::init(&args.trap.ifc, Some(0), Some(1))?;
    let out = &mut trap.outputs()[0];
    out.set_format(DataFormat::UniRec(t.spec().to_string()))?;
    let mut rec = Vec::new();
    let mut i = 1u32;
    while !libtrap::is_terminated() && (args.count == 0 || i <= args.count) {
        rec.clear();
        zwave_generator::reading(&t, args.gateway, i, &mut rec)
            .map_err(|e| TrapError::BadSpec(e.to_string()))?;
        match out.send(&rec).and_then(|()| out.flush()) {
            Err(TrapError::Terminated) => break,
            r => r?,
        }
        i += 1;
        if args.count == 0 || i <= args.count {
            libtrap::sleep(Duration::from_secs_f64(args.period));
        }
    }
    trap.end(true)
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("zwave_generator");
    module::start("zwave_generator", &args.trap);
    module::exit_status(run(&args))
}
