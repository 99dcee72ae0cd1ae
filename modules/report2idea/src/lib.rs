//! report2idea — the shared part of the NEMEA `*2idea` reporters: IDEA
//! messages, the rule engine and the runner every reporter binary calls.
//!
//! A reporter implements [`Reporter`] (its module name, required input and
//! the conversion of one alert to an [`Idea`]) and calls [`run`] with the
//! [`CommonArgs`] flattened into its clap arguments.
#![forbid(unsafe_code)]

pub mod condition;
pub mod idea;
pub mod reporters;
pub mod rules;

pub use idea::{aggr_win, is_unset, parse_aggr_win, proto_name, Endpoint, Idea, IdeaTime, Node};
pub use rules::{ActionError, ConfigError, RuleSet, Sinks};

use libtrap::module::TrapArgs;
use libtrap::{DataFormat, Output, Required, Trap, TrapError};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use unirec::{RecordRef, Template, UrIp, UrTime};

/// The options every reporter has.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Interfaces: the input, then with -T the output, separated by `,`
    /// (u:NAME, f:FILE, t:[HOST:]PORT, T:[HOST:]PORT:KEY:CERT:CA, b:). Run
    /// with `-h trap` for the full syntax. Not needed with -d.
    #[arg(short = 'i', value_name = "IFC_SPEC", required_unless_present = "dry")]
    pub ifc: Option<String>,
    /// More messages on stderr (-v, -vv, -vvv).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Open a TRAP output (JSON, format "IDEA") as the second interface of -i.
    /// Without -c every message is then sent there as well as to stdout.
    #[arg(short = 'T', long = "trap")]
    pub trap_output: bool,
    /// Rule configuration: NEMEA's reporter YAML (a name ending in .yaml or
    /// .yml) or the same in TOML. Without it every message is written to
    /// stdout as one JSON line. SIGUSR1 re-reads it (a broken file keeps the
    /// old rules).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Node.Name (default: <namespace of the config>.<module>, or
    /// com.example.<module>).
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: Option<String>,
    /// Do not drop messages whose times are older than one day or in the
    /// future (needed when replaying old captures).
    #[arg(short = 'D', long = "dontvalidate")]
    pub dont_validate: bool,
    /// Print the loaded rules and exit.
    #[arg(short = 'd', long = "dry")]
    pub dry: bool,
    /// Check the rules file every SECONDS and re-read it when it changed
    /// (0 = never; SIGUSR1 always works).
    #[arg(
        short = 'a',
        long = "autoreload",
        value_name = "SECONDS",
        default_value_t = 0
    )]
    pub autoreload: u64,
}

/// What a reporter's input interface requires.
#[derive(Clone, Copy, Debug)]
pub enum InputKind {
    /// UniRec with these fields (`type NAME,...`).
    UniRec(&'static str),
    /// JSON with this format label.
    Json(&'static str),
}

/// One alert received by a reporter.
pub enum Alert<'a> {
    UniRec(UniRecAlert<'a>),
    Json(&'a serde_json::Value),
}

/// A UniRec alert with getters by field name. The required template
/// guarantees the fields; a missing one reads as zero.
#[derive(Clone, Copy)]
pub struct UniRecAlert<'a> {
    pub rec: RecordRef<'a>,
}

impl<'a> UniRecAlert<'a> {
    fn idx(&self, name: &str) -> Option<usize> {
        self.rec.template().find(name)
    }
    pub fn ip(&self, name: &str) -> UrIp {
        self.idx(name)
            .and_then(|i| self.rec.get_ip(i))
            .unwrap_or_default()
    }
    pub fn time(&self, name: &str) -> UrTime {
        self.idx(name)
            .and_then(|i| self.rec.get_time(i))
            .unwrap_or_default()
    }
    pub fn u8(&self, name: &str) -> u8 {
        self.idx(name).and_then(|i| self.rec.get_u8(i)).unwrap_or(0)
    }
    pub fn u16(&self, name: &str) -> u16 {
        self.idx(name)
            .and_then(|i| self.rec.get_u16(i))
            .unwrap_or(0)
    }
    pub fn u32(&self, name: &str) -> u32 {
        self.idx(name)
            .and_then(|i| self.rec.get_u32(i))
            .unwrap_or(0)
    }
    pub fn u64(&self, name: &str) -> u64 {
        self.idx(name)
            .and_then(|i| self.rec.get_u64(i))
            .unwrap_or(0)
    }
    pub fn string(&self, name: &str) -> String {
        self.idx(name)
            .and_then(|i| self.rec.get_bytes(i))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }
}

/// A reporter: one kind of alert to IDEA.
pub trait Reporter {
    /// NEMEA's MODULE_NAME (the last part of Node.Name).
    const MODULE_NAME: &'static str;
    fn input(&self) -> InputKind;
    /// The IDEA message for one alert; `Ok(None)` skips it, `Err` skips it
    /// with a warning.
    fn convert(&mut self, alert: &Alert<'_>) -> Result<Option<Idea>, String>;
    /// All IDEA messages for one alert (reporters whose alerts stand for
    /// several events override this).
    fn convert_all(&mut self, alert: &Alert<'_>) -> Result<Vec<Idea>, String> {
        Ok(self.convert(alert)?.into_iter().collect())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Trap(#[from] TrapError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error("{0}")]
    Usage(String),
}

struct RunnerSinks<'a> {
    stdout: &'a mut dyn Write,
    trap: Option<&'a mut Output>,
    stdout_closed: bool,
}

impl Sinks for RunnerSinks<'_> {
    fn stdout(&mut self, line: &str) -> io::Result<()> {
        if self.stdout_closed {
            return Ok(());
        }
        let r = self
            .stdout
            .write_all(line.as_bytes())
            .and_then(|_| self.stdout.write_all(b"\n"));
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.stdout_closed = true;
                Ok(())
            }
            r => r,
        }
    }
    fn trap(&mut self, line: &str) -> Result<(), String> {
        match &mut self.trap {
            Some(o) => {
                libtrap::ok_if_terminated(o.send(line.as_bytes())).map_err(|e| e.to_string())
            }
            None => Err("no TRAP output (give -T)".into()),
        }
    }
}

/// Node.Name for a reporter.
pub fn node_name(args: &CommonArgs, rules: &RuleSet, module: &str) -> String {
    match (&args.name, &rules.namespace) {
        (Some(n), _) => n.clone(),
        (None, Some(ns)) => format!("{ns}.{module}"),
        (None, None) => format!("com.example.{module}"),
    }
}

/// Counters of one run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub received: u64,
    pub reported: u64,
    pub skipped: u64,
}

/// Runs a reporter until end of stream or a signal.
pub fn run<R: Reporter>(args: &CommonArgs, mut reporter: R) -> Result<Counts, RunError> {
    let mut rules = match &args.config {
        Some(p) => RuleSet::load(p)?,
        None => RuleSet::default_rules(args.trap_output),
    };
    if args.dry {
        print!("{}", rules.describe());
        return Ok(Counts::default());
    }
    if rules.uses_trap() && !args.trap_output {
        return Err(RunError::Usage(
            "the rules send to TRAP: give -T and an output interface in -i".into(),
        ));
    }
    let name = node_name(args, &rules, R::MODULE_NAME);
    let ifc = args
        .ifc
        .as_deref()
        .ok_or_else(|| RunError::Usage("-i is required".into()))?;
    let mut trap = Trap::init(ifc, Some(1), Some(usize::from(args.trap_output)))?;
    let (inputs, outputs) = trap.split_mut();
    let input = &mut inputs[0];
    input.set_required(match reporter.input() {
        InputKind::UniRec(spec) => Required::UniRec(spec.to_string()),
        InputKind::Json(label) => Required::Json(Some(label.to_string())),
    });
    let mut output = outputs.first_mut();
    if let Some(o) = &mut output {
        o.set_format(DataFormat::Json("IDEA".into()))?;
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut sinks = RunnerSinks {
        stdout: &mut out,
        trap: output,
        stdout_closed: false,
    };
    let mut template: Option<Template> = None;
    let mut counts = Counts::default();
    // SIGUSR1: re-read the rules before the next message (as NEMEA).
    let reload = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if args.config.is_some() {
        let _ = signal_hook::flag::register(signal_hook::consts::SIGUSR1, reload.clone());
    }
    // -a: the rules file, its modification time and when that was checked.
    let mtime = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut watched = args
        .config
        .as_deref()
        .filter(|_| args.autoreload > 0)
        .map(|p| (p, mtime(p), std::time::Instant::now()));
    let result = loop {
        let msg = match input.recv() {
            Ok(m) => m,
            Err(TrapError::Terminated) => break Ok(()),
            Err(TrapError::Timeout) => continue,
            Err(e) => break Err(RunError::from(e)),
        };
        if msg.is_eos() {
            break Ok(());
        }
        if let Some((p, seen, checked)) = &mut watched {
            if checked.elapsed().as_secs() >= args.autoreload {
                *checked = std::time::Instant::now();
                let now = mtime(p);
                if now != *seen {
                    *seen = now;
                    reload.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        if reload.swap(false, std::sync::atomic::Ordering::Relaxed) {
            if let Some(p) = &args.config {
                match RuleSet::load(p) {
                    Ok(r) if r.uses_trap() && !args.trap_output => libtrap::log::warn(
                        "reloaded rules send to TRAP but there is no -T output; keeping the old rules",
                    ),
                    Ok(r) => {
                        rules = r;
                        libtrap::log::info(0, "rules reloaded");
                    }
                    Err(e) => libtrap::log::warn(&format!("{e}; keeping the old rules")),
                }
            }
        }
        let unirec_input = matches!(reporter.input(), InputKind::UniRec(_));
        if msg.format_changed || (unirec_input && template.is_none()) {
            template = match msg.format {
                Some(DataFormat::UniRec(spec)) => match Template::parse(spec) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        break Err(RunError::Usage(format!(
                            "{}: bad template from the sender: {e}",
                            input.name()
                        )))
                    }
                },
                _ => None,
            };
        }
        counts.received += 1;
        let json;
        let alert = match (&template, reporter.input()) {
            (Some(t), InputKind::UniRec(_)) => match RecordRef::new_checked(t, msg.data) {
                Ok(rec) => Alert::UniRec(UniRecAlert { rec }),
                Err(e) => {
                    libtrap::log::warn(&format!("malformed record skipped: {e}"));
                    counts.skipped += 1;
                    continue;
                }
            },
            (None, InputKind::UniRec(_)) => {
                libtrap::log::warn("record without a known template skipped");
                counts.skipped += 1;
                continue;
            }
            (_, InputKind::Json(_)) => {
                match serde_json::from_slice::<serde_json::Value>(msg.data) {
                    Ok(v) => {
                        json = v;
                        Alert::Json(&json)
                    }
                    Err(e) => {
                        libtrap::log::warn(&format!("malformed JSON message skipped: {e}"));
                        counts.skipped += 1;
                        continue;
                    }
                }
            }
        };
        let ideas = match reporter.convert_all(&alert) {
            Ok(v) if v.is_empty() => {
                counts.skipped += 1;
                continue;
            }
            Ok(v) => v,
            Err(e) => {
                libtrap::log::warn(&format!("alert skipped: {e}"));
                counts.skipped += 1;
                continue;
            }
        };
        let mut failed = None;
        for mut idea in ideas {
            for n in &mut idea.node {
                n.name = name.clone();
            }
            if !args.dont_validate {
                if let Err(e) = idea.check_times(idea.create_time.unwrap_or_else(IdeaTime::now)) {
                    libtrap::log::warn(&format!(
                        "Invalid timestamps in skipped message ({e}); use -D for old data"
                    ));
                    counts.skipped += 1;
                    continue;
                }
            }
            if let Err(e) = rules.apply(&idea.to_json(), &mut sinks) {
                failed = Some(e);
                break;
            }
            counts.reported += 1;
        }
        if let Some(e) = failed {
            break Err(e.into());
        }
        if !input.has_buffered() {
            let _ = sinks.stdout.flush();
        }
        if sinks.stdout_closed && !args.trap_output {
            break Ok(());
        }
    };
    let _ = sinks.stdout.flush();
    let ended = trap.end(args.trap_output);
    result?;
    ended?;
    libtrap::log::info(
        0,
        &format!(
            "{} alerts received, {} reported, {} skipped",
            counts.received, counts.reported, counts.skipped
        ),
    );
    Ok(counts)
}

/// The usual `main` of a reporter: parse nothing itself, run, exit status.
pub fn main_with<R: Reporter>(
    program: &str,
    args: &CommonArgs,
    reporter: R,
) -> std::process::ExitCode {
    let trap_args = TrapArgs {
        ifc: args.ifc.clone().unwrap_or_default(),
        verbose: args.verbose,
    };
    libtrap::module::start(program, &trap_args);
    libtrap::module::exit_status(run(args, reporter).map(|_| ()))
}
