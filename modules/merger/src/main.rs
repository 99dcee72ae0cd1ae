//! merger — several UniRec inputs into one output stream.

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Input, Output, Trap, TrapError};
use merger::{union, Projection};
use std::process::ExitCode;
use std::sync::Mutex;
use unirec::template::Template;

/// Merges the records of every input interface into one output stream.
///
/// Without -u the output template is the union of the inputs' templates
/// (the merger first waits for one message from every input, in order); a
/// field an input lacks is zero or empty in its records. With -u the output
/// template is the one given and only its fields are copied. The module ends
/// once every input has sent end of stream, then sends one (unless -n).
#[derive(Parser, Debug)]
#[command(
    name = "merger",
    version,
    after_help = "Interfaces: N inputs (at most 32), 1 output. Run `merger -h trap` for the -i syntax.\n\
Example: merger -i u:flows_a,u:flows_b,u:merged"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// Output template `type NAME,...` (static mode): inputs may send any
    /// template; only these fields are copied.
    #[arg(short = 'u', long = "unirec", value_name = "SPEC")]
    unirec: Option<String>,
    /// Do not send end of stream at the end.
    #[arg(short = 'n', long = "no-eos", aliases = ["noeof", "no-eof"])]
    no_eos: bool,
    /// Keep an input open after its end of stream: wait for its next sender.
    #[arg(short = 'I', long = "ignore-in-eos", alias = "ignore-in-eof")]
    ignore_in_eos: bool,
}

/// What the input threads share: the output and its template.
struct Shared<'a> {
    out: &'a mut Output,
    tmpl: Option<Template>,
    /// Bumped whenever `tmpl` changes, so threads rebuild their projection.
    generation: u64,
    /// A fixed template (-u): the union never grows.
    fixed: bool,
    buf: Vec<u8>,
    dropped: u64,
}

impl Shared<'_> {
    /// Makes room in the output template for `input`'s fields (dynamic mode).
    fn grow(&mut self, input: &Template, ifc: &str) -> Result<()> {
        if self.fixed {
            return Ok(());
        }
        if let Some(t) = union(self.tmpl.as_ref(), input).with_context(|| format!("input {ifc}"))? {
            self.out
                .set_format(DataFormat::UniRec(t.spec().to_string()))?;
            self.tmpl = Some(t);
            self.generation += 1;
        }
        Ok(())
    }

    fn send(
        &mut self,
        input: &Template,
        proj: &mut Option<(u64, Projection)>,
        data: &[u8],
        ifc: &str,
    ) -> Result<bool> {
        let Some(out_t) = &self.tmpl else {
            return Ok(true);
        };
        let p = match proj {
            Some((g, p)) if *g == self.generation => p,
            _ => {
                &mut proj
                    .insert((self.generation, Projection::new(input, out_t)))
                    .1
            }
        };
        p.project(input, data, &mut self.buf)
            .map_err(|e| anyhow!("input {ifc}: bad record: {e}"))?;
        match self.out.send(&self.buf) {
            Ok(()) => Ok(true),
            Err(TrapError::Timeout) => {
                self.dropped += 1;
                Ok(true)
            }
            Err(TrapError::Terminated) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

fn template_of(format: Option<&DataFormat>, ifc: &str) -> Result<Template> {
    match format {
        Some(DataFormat::UniRec(spec)) => Template::parse(spec)
            .with_context(|| format!("input {ifc}: bad template from the sender")),
        _ => Err(anyhow!("input {ifc}: the sender's data are not UniRec")),
    }
}

/// One input's loop: records to the shared output until its end of stream.
fn pump(
    input: &mut Input,
    mut tmpl: Option<Template>,
    shared: &Mutex<Shared<'_>>,
    ignore_eos: bool,
) -> Result<u64> {
    let mut proj: Option<(u64, Projection)> = None;
    let mut count = 0u64;
    let name = input.name().to_string();
    loop {
        let msg = match input.recv() {
            Ok(m) => m,
            Err(TrapError::Timeout) => continue,
            Err(TrapError::Terminated) => return Ok(count),
            Err(e) => return Err(e.into()),
        };
        if msg.is_eos() {
            if ignore_eos && !input.ended() {
                continue;
            }
            libtrap::log::info(0, &format!("input {name} ended"));
            return Ok(count);
        }
        if msg.format_changed || tmpl.is_none() {
            let t = template_of(msg.format, &name)?;
            proj = None;
            lock(shared).grow(&t, &name)?;
            tmpl = Some(t);
        }
        let Some(t) = &tmpl else { continue };
        if !lock(shared).send(t, &mut proj, msg.data, &name)? {
            return Ok(count);
        }
        count += 1;
    }
}

fn lock<'m, 'a>(m: &'m Mutex<Shared<'a>>) -> std::sync::MutexGuard<'m, Shared<'a>> {
    // A thread that panicked holding the lock cannot leave the output in a
    // state worse than a half-sent record; carry on with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn run(args: &Args) -> Result<()> {
    let fixed = match &args.unirec {
        Some(spec) => Some(
            Template::parse(spec)
                .context("-u: bad template (expected `type NAME,type NAME,...`)")?,
        ),
        None => None,
    };
    let mut trap = Trap::init(&args.trap.ifc, None, Some(1))?;
    let (inputs, outputs) = trap.split_mut();
    if inputs.is_empty() {
        return Err(anyhow!(
            "no input interface: give at least one input before the output in -i"
        ));
    }
    if inputs.len() > 32 {
        return Err(anyhow!(
            "{} inputs: at most 32 are allowed (as libtrap)",
            inputs.len()
        ));
    }
    let out = &mut outputs[0];
    let mut shared = Shared {
        out,
        tmpl: None,
        generation: 0,
        fixed: fixed.is_some(),
        buf: Vec::with_capacity(1 << 12),
        dropped: 0,
    };
    let mut first: Vec<(Option<Template>, Option<Vec<u8>>)> = Vec::new();
    let mut done = vec![false; inputs.len()];
    if let Some(t) = fixed {
        shared
            .out
            .set_format(DataFormat::UniRec(t.spec().to_string()))?;
        shared.tmpl = Some(t);
        first.resize(inputs.len(), (None, None));
    } else {
        // Dynamic mode: one message from every input first, so the union is
        // known before the first record goes out.
        for (i, input) in inputs.iter_mut().enumerate() {
            let name = input.name().to_string();
            let msg = loop {
                match input.recv() {
                    Ok(m) => break m,
                    Err(TrapError::Timeout) => continue,
                    Err(TrapError::Terminated) => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            };
            if msg.is_eos() {
                done[i] = !args.ignore_in_eos || input.ended();
                first.push((None, None));
                continue;
            }
            let data = msg.data.to_vec();
            let t = template_of(msg.format, &name)?;
            shared.grow(&t, &name)?;
            first.push((Some(t), Some(data)));
        }
        for (i, (t, data)) in first.iter_mut().enumerate() {
            if let (Some(t), Some(d)) = (t.as_ref(), data.take()) {
                let mut proj = None;
                shared.send(t, &mut proj, &d, inputs[i].name())?;
            }
        }
    }
    let dropped;
    let counts: Vec<(String, Result<u64>)> = {
        let shared_m = Mutex::new(shared);
        let ignore = args.ignore_in_eos;
        let results = std::thread::scope(|s| {
            let handles: Vec<_> = inputs
                .iter_mut()
                .zip(first)
                .zip(&done)
                .map(|((input, (t, _)), &done)| {
                    let shared_m = &shared_m;
                    s.spawn(move || {
                        let name = input.name().to_string();
                        let had_first = u64::from(t.is_some());
                        let r = if done {
                            Ok(0)
                        } else {
                            pump(input, t, shared_m, ignore).inspect_err(|_| libtrap::terminate())
                        };
                        (name, r.map(|n| n + had_first))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        (String::new(), Err(anyhow!("an input thread panicked")))
                    })
                })
                .collect::<Vec<_>>()
        });
        let shared = shared_m.into_inner().unwrap_or_else(|p| p.into_inner());
        dropped = shared.dropped;
        if results.iter().all(|(_, r)| r.is_ok()) && !args.no_eos && shared.out.format().is_some() {
            libtrap::ok_if_terminated(shared.out.send_eos())?;
        }
        results
    };
    let mut total = 0;
    let mut error = None;
    for (i, (name, r)) in counts.into_iter().enumerate() {
        match r {
            Ok(n) => {
                total += n;
                libtrap::log::info(0, &format!("input {i} ({name}): {n} records"));
            }
            Err(e) => error = error.or(Some(e)),
        }
    }
    libtrap::log::info(
        0,
        &format!("sent {total} records, {dropped} dropped (output timeout)"),
    );
    let closed = libtrap::ok_if_terminated(trap.finish());
    match error {
        Some(e) => Err(e),
        None => closed.map_err(Into::into),
    }
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("merger");
    module::start("merger", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
