//! flow_generator — synthetic flow records for benchmarks and tests.

use clap::Parser;
use flow_generator::{FlowGen, SPEC, SPEC_TCP_FLAGS};
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Trap, TrapError};
use std::process::ExitCode;
use unirec::Template;

/// Sends N synthetic flow records (ipaddr SRC_IP, ipaddr DST_IP, uint16
/// SRC_PORT, uint16 DST_PORT, uint8 PROTOCOL, uint32 PACKETS, uint64 BYTES,
/// time TIME_FIRST, time TIME_LAST; with --tcp-flags also uint8 TCP_FLAGS)
/// as fast as the output takes them, then end-of-stream. The same seed gives
/// the same records.
#[derive(Parser, Debug)]
#[command(
    name = "flow_generator",
    version,
    after_help = "Interfaces: 1 output. Example: flow_generator -n 1000000 --tcp-flags -i f:flows.trapcap"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Number of records.
    #[arg(short = 'n', long = "count", default_value_t = 1_000_000)]
    count: u64,
    /// Seed of the pseudo-random values.
    #[arg(short = 's', long = "seed", default_value_t = 1)]
    seed: u64,
    /// Add uint8 TCP_FLAGS (the input of the TCP detectors); the other
    /// fields are the same as without it.
    #[arg(long = "tcp-flags")]
    tcp_flags: bool,
}

fn run(args: &Args) -> Result<(), TrapError> {
    let spec = if args.tcp_flags { SPEC_TCP_FLAGS } else { SPEC };
    let t = Template::parse(spec).map_err(|e| TrapError::BadSpec(e.to_string()))?;
    let mut gen = FlowGen::new(&t, args.seed).map_err(|e| TrapError::BadSpec(e.to_string()))?;
    let mut trap = Trap::init(&args.trap.ifc, Some(0), Some(1))?;
    let out = &mut trap.outputs()[0];
    out.set_format(DataFormat::UniRec(t.spec().to_string()))?;
    let mut rec = Vec::with_capacity(128);
    for _ in 0..args.count {
        if libtrap::is_terminated() {
            break;
        }
        rec.clear();
        gen.next_record(&mut rec)
            .map_err(|e| TrapError::BadSpec(e.to_string()))?;
        match out.send(&rec) {
            Err(TrapError::Terminated) => break,
            r => r?,
        }
    }
    trap.end(true)
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("flow_generator");
    module::start("flow_generator", &args.trap);
    module::exit_status(run(&args))
}
