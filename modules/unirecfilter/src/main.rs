//! unirecfilter — pass the UniRec records that match a filter, projected
//! onto an output template, to one or more outputs.

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{log, DataFormat, Output, Timeout, Trap, TrapError};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use unirecfilter::config::{self, OutputConfig};
use unirecfilter::{Engine, Precedence, ProcessError};

const LANGUAGE: &str = "\
Interfaces: 1 input, 1-32 outputs (more than one needs -f).
Run `unirecfilter -h trap` for the -i syntax.

Filter language (liburfilter's):
  FIELD OP VALUE     OP: == (=)  != (<>)  <  <= (=<)  >  >= (=>)
                     VALUE: 42, -5, 1.5, 10.0.0.1, 10.0.0.0/8, fe80::/10,
                     2018-01-10T21:17:00[.123] (UTC), \"text\" or 'text'
                     (escapes \\\" \\\\ \\n \\t \\r \\0 \\xHH)
  FIELD in [V, ...]  any of the values (numbers, addresses, prefixes, times, strings)
  FIELD =~ \"REGEX\"   the string/bytes field contains a match (also ~=)
  host OP ADDR       SRC_IP or DST_IP (host != ADDR: neither); also host in [..]
  port OP N          SRC_PORT or DST_PORT (port != N: neither); also port in [..]
  PROTOCOL == TCP    protocol names (TCP, UDP, ICMP, \"gre\", ...) or numbers
  true, false, ( ), ! (not NOT), && (and AND), || (or OR)
  ! binds tightest, then &&, then ||: a || b && c is a || (b && c).
  A term on a field the input lacks, or of another type, is always false
  (with a warning).

Filter file (-f): one `TEMPLATE:FILTER;` item per output, in order.
  An empty TEMPLATE keeps the input's fields; an empty FILTER passes all;
  `#` starts a comment between items. SIGUSR1 reads the file again.
  # ifc0: web traffic, three fields
  ipaddr SRC_IP,ipaddr DST_IP,uint16 DST_PORT: PROTOCOL == 6 && DST_PORT in [80, 443];
  # ifc1: DNS, all fields
  :port == 53;

Examples:
  unirecfilter -i u:flows,u:ssh -F 'DST_PORT == 22 && PROTOCOL == TCP'
  unirecfilter -i f:in.trapcap,f:out.trapcap -O 'ipaddr SRC_IP,string NOTE=\"x\"' -F 'BYTES > 1000'";

/// Selects the UniRec records that match a filter and sends them, with the
/// fields of the output template (defaults where the input lacks a field),
/// to the output; with -f, each output has its own template and filter.
/// Ends at the input's end of stream (or after -c records) and sends end of
/// stream on every output.
#[derive(Parser, Debug)]
#[command(name = "unirecfilter", version, after_help = LANGUAGE)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Output template `type NAME[=DEFAULT],...` (default: the input's
    /// template). Ignored with -f.
    #[arg(
        short = 'O',
        long = "unirec-out",
        alias = "unirec_out",
        value_name = "TMPLT"
    )]
    out: Option<String>,
    /// The filter (default: pass every record).
    #[arg(
        short = 'F',
        long = "filter",
        value_name = "EXPR",
        conflicts_with = "file"
    )]
    filter: Option<String>,
    /// Read `TEMPLATE:FILTER;` items, one per output, from FILE.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Stop after N input records, matched or not.
    #[arg(short = 'c', long = "cut", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    cut: Option<u64>,
    /// Do not send end of stream at the end.
    #[arg(short = 'n', long = "no-eos", aliases = ["no-eof", "no_eof"])]
    no_eos: bool,
    /// Group && and || as C unirecfilter does: alike, left to right
    /// (a || b && c is (a || b) && c).
    #[arg(long = "c-precedence")]
    c_precedence: bool,
}

fn load_file(
    path: &PathBuf,
    n_outputs: usize,
    prec: Precedence,
) -> Result<(Vec<OutputConfig>, Vec<String>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the filter file {}", path.display()))?;
    config::from_file(&path.display().to_string(), &text, n_outputs, prec)
        .map_err(anyhow::Error::msg)
}

fn set_formats(engine: &Engine, outputs: &mut [Output]) -> Result<()> {
    for (i, o) in outputs.iter_mut().enumerate() {
        if let Some(spec) = engine.output_spec(i) {
            o.set_format(DataFormat::UniRec(spec.to_string()))?;
        }
    }
    Ok(())
}

fn run(args: Args) -> Result<()> {
    let prec = if args.c_precedence {
        Precedence::C
    } else {
        Precedence::Standard
    };
    let specs = libtrap::spec::parse(&args.trap.ifc)?;
    let n_ifc = specs.len();
    let n_outputs = n_ifc.saturating_sub(1);
    if n_outputs == 0 {
        bail!("-i needs an input and at least one output interface");
    }
    if n_outputs > 32 {
        bail!("{n_outputs} output interfaces: at most 32");
    }
    let (outputs, warnings) = match &args.file {
        Some(path) => {
            if args.out.is_some() {
                log::warn("-O is ignored: the templates come from the filter file");
            }
            load_file(path, n_outputs, prec)?
        }
        None => {
            if n_outputs > 1 {
                bail!(
                    "{n_outputs} output interfaces: give their templates and filters with -f FILE"
                );
            }
            let o = config::from_options(args.out.as_deref(), args.filter.as_deref(), prec)
                .map_err(anyhow::Error::msg)?;
            let w = o.filter.warnings().iter().map(|w| o.locate(w)).collect();
            (vec![o], w)
        }
    };
    warnings.iter().for_each(|w| log::warn(w));

    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, reload.clone())
        .context("cannot handle SIGUSR1")?;

    let mut trap = Trap::init(&args.trap.ifc, Some(1), Some(n_outputs))?;
    let mut engine = Engine::new(outputs);
    let (inputs, outs) = trap.split_mut();
    let input = &mut inputs[0];
    let in_name = input.name().to_string();
    // With a filter file and a waiting input, wake up now and then so that
    // a SIGUSR1 takes effect while no records come.
    if args.file.is_some() && specs.first().is_some_and(|s| s.timeout.is_none()) {
        input.set_timeout(Timeout::Micros(250_000));
    }
    set_formats(&engine, outs)?;
    let mut received = 0u64;
    let mut sent = vec![0u64; n_outputs];
    let mut dropped = vec![0u64; n_outputs];
    let result: Result<()> = loop {
        let msg = match input.recv() {
            Ok(m) => m,
            Err(TrapError::Terminated) => break Ok(()),
            Err(TrapError::Timeout) => {
                if reload.swap(false, Relaxed) {
                    if let Err(e) = reread(&args, n_outputs, prec, &mut engine, outs) {
                        break Err(e);
                    }
                }
                continue;
            }
            Err(e) => break Err(e.into()),
        };
        if msg.format_changed {
            let Some(DataFormat::UniRec(spec)) = msg.format else {
                break Err(anyhow!("{in_name}: the input is not UniRec"));
            };
            let spec = spec.clone();
            match engine.set_input(&spec) {
                Ok(warnings) => warnings.iter().for_each(|w| log::warn(w)),
                Err(e) => break Err(anyhow!("{in_name}: {e}")),
            }
            if let Err(e) = set_formats(&engine, outs) {
                break Err(e);
            }
        }
        if msg.is_eos() {
            break Ok(());
        }
        let r = engine.process(msg.data, |i, rec| match outs[i].send(rec) {
            Ok(()) => {
                sent[i] += 1;
                Ok(())
            }
            Err(TrapError::Timeout) => {
                dropped[i] += 1;
                Ok(())
            }
            Err(e) => Err(e),
        });
        match r {
            Ok(()) => {}
            Err(ProcessError::Send(TrapError::Terminated)) => break Ok(()),
            Err(e) => break Err(anyhow!("{in_name}: {e}")),
        }
        received += 1;
        if args.cut.is_some_and(|c| received >= c) {
            break Ok(());
        }
        if reload.swap(false, Relaxed) {
            if let Err(e) = reread(&args, n_outputs, prec, &mut engine, outs) {
                break Err(e);
            }
        }
    };
    log::info(
        0,
        &format!("records received: {received}, sent per output: {sent:?}, dropped (send timeout): {dropped:?}"),
    );
    let mut end = Ok(());
    if !args.no_eos {
        for o in outs.iter_mut().filter(|o| o.format().is_some()) {
            let r = libtrap::ok_if_terminated(o.send_eos());
            if end.is_ok() {
                end = r;
            }
        }
    }
    let closed = libtrap::ok_if_terminated(trap.finish());
    result?;
    end?;
    Ok(closed?)
}

/// SIGUSR1: reads the filter file again. A file that does not load leaves
/// the filters as they were (with the reason on stderr).
fn reread(
    args: &Args,
    n_outputs: usize,
    prec: Precedence,
    engine: &mut Engine,
    outs: &mut [Output],
) -> Result<()> {
    let Some(path) = &args.file else {
        log::warn("SIGUSR1: there is no filter file (-f) to read again");
        return Ok(());
    };
    let loaded = load_file(path, n_outputs, prec).and_then(|(outputs, mut warnings)| {
        warnings.extend(engine.replace(outputs).map_err(anyhow::Error::msg)?);
        Ok(warnings)
    });
    match loaded {
        Ok(warnings) => {
            warnings.iter().for_each(|w| log::warn(w));
            log::note(&format!(
                "SIGUSR1: filters read again from {}",
                path.display()
            ));
            set_formats(engine, outs)
        }
        Err(e) => {
            log::warn(&format!("SIGUSR1: {e:#}; the previous filters stay"));
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("unirecfilter");
    module::start("unirecfilter", &args.trap);
    module::exit_status(run(args).map_err(|e| format!("{e:#}")))
}
