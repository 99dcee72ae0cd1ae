//! packet_dedup — drops packet records whose frame was seen within a window.

use anyhow::{anyhow, bail, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Required, Trap, TrapError};
use packet_capture::{PacketFields, PACKET_SPEC};
use packet_dedup::{Config, Dedup, HashKind};
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;
use unirec::Template;

/// Reads packet records (packet_capture's template, or any template with its
/// fields) and passes on those whose frame was not seen within the last
/// --window seconds of packet time; duplicates are dropped and counted.
/// Counters `passed`, `duplicates` and `evicted` are on the service
/// interface. The records passed on are unchanged, in the input's template.
#[derive(Parser, Debug)]
#[command(
    name = "packet_dedup",
    version,
    after_help = "Interfaces: 1 input, 1 output. Run `packet_dedup -h trap` for the -i syntax.\n\
Example: packet_dedup --window 0.5 --normalize -i u:raw_packets,u:raw_packets_dedup"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Seconds (of packet time) a copy of a packet counts as a duplicate
    /// after its first copy.
    #[arg(
        short = 'w',
        long = "window",
        value_name = "SEC",
        default_value_t = 1.0
    )]
    window: f64,
    /// At most this many hashes are kept (the oldest is forgotten first).
    #[arg(
        short = 'm',
        long = "max-entries",
        value_name = "N",
        default_value_t = 1_000_000
    )]
    max_entries: usize,
    /// Hash function.
    #[arg(long = "hash", value_enum, default_value_t = HashKind::Xxh64)]
    hash: HashKind,
    /// Hash from layer 3 on with TTL/hop limit and IPv4 checksum masked, so
    /// copies that differ only in MAC header, VLAN tags, TTL or checksum
    /// count as one.
    #[arg(long = "normalize", alias = "normalise")]
    normalize: bool,
    /// Do not forward end of stream.
    #[arg(short = 'n', long = "no-eos", aliases = ["no-eof", "no_eof"])]
    no_eos: bool,
}

fn run(args: Args) -> Result<()> {
    if !(args.window.is_finite() && args.window >= 0.0) {
        bail!("--window {}: give a number of seconds >= 0", args.window);
    }
    let start = Instant::now();
    let mut dedup = Dedup::new(Config {
        window: Config::window_secs(args.window),
        max_entries: args.max_entries,
        hash: args.hash,
        normalise: args.normalize,
    });
    let mut trap = Trap::init(&args.trap.ifc, Some(1), Some(1))?;
    let c_passed = trap.counter("passed");
    let c_dup = trap.counter("duplicates");
    let c_evicted = trap.counter("evicted");
    let (inputs, outputs) = trap.split_mut();
    let (input, output) = (&mut inputs[0], &mut outputs[0]);
    input.set_required(Required::UniRec(PACKET_SPEC.to_string()));
    // Until the sender says otherwise (and so for an end of stream first).
    output.set_format(DataFormat::UniRec(PACKET_SPEC.to_string()))?;
    let mut current: Option<(Template, PacketFields)> = None;
    let result: Result<()> = loop {
        let msg = match input.recv() {
            Ok(m) => m,
            Err(TrapError::Terminated) => break Ok(()),
            Err(TrapError::Timeout) => continue,
            Err(e) => break Err(e.into()),
        };
        if msg.format_changed || (current.is_none() && !msg.is_eos()) {
            let Some(DataFormat::UniRec(spec)) = msg.format else {
                break Err(anyhow!("{}: the input is not UniRec", input.name()));
            };
            let tmpl =
                Template::parse(spec).map_err(|e| anyhow!("bad template from the sender: {e}"))?;
            let fields = PacketFields::resolve(&tmpl)?;
            output.set_format(DataFormat::UniRec(spec.clone()))?;
            current = Some((tmpl, fields));
        }
        if msg.is_eos() {
            break Ok(());
        }
        let Some((tmpl, fields)) = &current else {
            break Err(anyhow!(
                "{}: a record came before its template",
                input.name()
            ));
        };
        let p = match fields.read(tmpl, msg.data) {
            Ok(p) => p,
            Err(e) => break Err(anyhow!("{}: {e}", input.name())),
        };
        if dedup.pass(p.time, p.data) {
            match output.send(msg.data) {
                Ok(()) | Err(TrapError::Timeout) => {}
                Err(TrapError::Terminated) => break Ok(()),
                Err(e) => break Err(e.into()),
            }
        }
        let c = dedup.counts;
        c_passed.store(c.passed, Relaxed);
        c_dup.store(c.duplicates, Relaxed);
        c_evicted.store(c.evicted, Relaxed);
    };
    let ended = trap.end(!args.no_eos);
    result?;
    ended?;
    let c = dedup.counts;
    let t = start.elapsed();
    eprintln!("Info: Packets passed:     {:>16}", c.passed);
    eprintln!("Info: Duplicates dropped: {:>16}", c.duplicates);
    eprintln!("Info: Hashes evicted:     {:>16}", c.evicted);
    eprintln!(
        "Info: Time elapsed:       {}.{:03}s",
        t.as_secs(),
        t.subsec_millis()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("packet_dedup");
    module::start("packet_dedup", &args.trap);
    module::exit_status(run(args).map_err(|e| format!("{e:#}")))
}
