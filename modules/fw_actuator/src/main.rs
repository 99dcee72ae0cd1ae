//! fw_actuator — firewall rules from batches and detector alerts, kept in
//! an nftables table of its own.

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use fw_actuator::batch::{parse_batch, Prefix};
use fw_actuator::nft::{self, Target};
use fw_actuator::ruleset::Ruleset;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Required, Timeout, Trap, TrapError};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};
use unirec::{RecordRef, Template};

/// Keeps firewall rules for one interface in the nftables table --table
/// (family inet, chain in_IFACE on prerouting after conntrack; every rule
/// matches the input interface). Batches use the eBPF TrafficAnalyzer's
/// format, {"rules":[{"operation":"insert|append|update|delete","id":N,
/// "l4proto":"TCP|UDP|ICMP","src":"IP[/LEN]","dst":…,"sport":P|"LO-HI",
/// "dport":…,"tcpflags":"SYN,!ACK","conntrack":"NEW|ESTABLISHED|RELATED|INVALID",
/// "action":"drop|forward","description":…}]}; ids are positions; insert
/// and update need an id, delete takes an id or the exact fields. A batch
/// is one nft transaction: all of it applies or none.
///
/// With -i it runs as a module reading UniRec alerts: an alert with SRC_IP
/// blocks that source; one with only DST_IP (ddos_detector's) drops the
/// traffic to that destination; either rule expires after --ttl. Sources
/// in --whitelist are accepted before any rule and never auto-blocked.
/// Auto-rules left when the module stops are removed when they are due at
/// its next start, or by the next --batch. Every change is logged (stderr
/// and --log).
#[derive(Parser, Debug)]
#[command(
    name = "fw_actuator",
    version,
    after_help = "Interfaces: 1 input with -i (UniRec alerts), none otherwise.\n\
Examples:\n  fw_actuator --interface eth0 --batch rules.json\n  fw_actuator --interface eth0 --list\n  fw_actuator --interface eth0 --whitelist 203.0.113.0/24 --ttl 600 -i u:ddos_alerts"
)]
struct Args {
    /// Run as a module: the UniRec alert input (u:NAME, f:FILE, t:PORT, T:…;
    /// `fw_actuator -h trap` for the syntax).
    #[arg(short = 'i', value_name = "IFC_SPEC")]
    ifc: Option<String>,
    /// More messages on stderr (-v, -vv, -vvv).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
    /// The interface whose incoming traffic the rules filter.
    #[arg(long, value_name = "IFACE")]
    interface: String,
    /// Apply this batch (a file, or - for stdin) and exit.
    #[arg(long, value_name = "FILE")]
    batch: Option<String>,
    /// Print the rules (batch format, with nft's packet and byte counters) and exit.
    #[arg(long)]
    list: bool,
    /// Remove every rule of the interface (the table's chain and the state) and exit.
    #[arg(long)]
    flush: bool,
    /// Print the nft JSON that would be applied (and the changes), change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Prefixes never blocked (repeat or separate with commas).
    #[arg(long, value_name = "PREFIX", value_delimiter = ',')]
    whitelist: Vec<String>,
    /// Seconds an auto-rule (from an alert) stays.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    ttl: u64,
    /// The nftables table (family inet).
    #[arg(long, value_name = "NAME", default_value = "fw_actuator")]
    table: String,
    /// Where the rules are kept between runs (default: under
    /// /run/fw_actuator/, one file per network namespace, table and interface).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Also append the change log to this file.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// The nft program.
    #[arg(long, value_name = "PATH", default_value = "nft")]
    nft: String,
}

struct Ctx {
    target: Target,
    state: PathBuf,
    whitelist: Vec<Prefix>,
    nft: String,
    log: Option<std::fs::File>,
    dry_run: bool,
}

impl Ctx {
    fn log(&mut self, line: &str) {
        let line = format!("fw_actuator: {}: {line}", self.target.iface);
        eprintln!("{line}");
        if let Some(f) = &mut self.log {
            let _ = writeln!(f, "{} {line}", now());
        }
    }

    /// The rules kept in the state file, and its whitelist when none was
    /// given (a batch applied later keeps the whitelist of the first run).
    fn load(&mut self) -> Result<Ruleset> {
        match std::fs::read_to_string(&self.state) {
            Ok(t) => {
                if self.whitelist.is_empty() {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    if let Some(w) = v.get("whitelist").and_then(Value::as_array) {
                        self.whitelist = w
                            .iter()
                            .filter_map(|p| p.as_str().and_then(Prefix::parse))
                            .collect();
                    }
                }
                Ruleset::from_state(&t).map_err(|e| {
                    anyhow!(
                        "{}: {e} (remove the file to start empty)",
                        self.state.display()
                    )
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ruleset::default()),
            Err(e) => Err(anyhow!("cannot read {}: {e}", self.state.display())),
        }
    }

    fn save(&self, r: &Ruleset) -> Result<()> {
        if let Some(d) = self.state.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        let tmp = self.state.with_extension("tmp");
        let mut state = r.to_state();
        if let Some(m) = state.as_object_mut() {
            let w: Vec<Value> = self
                .whitelist
                .iter()
                .map(|p| p.to_string().into())
                .collect();
            m.insert("whitelist".into(), w.into());
        }
        std::fs::write(&tmp, state.to_string())
            .and_then(|()| std::fs::rename(&tmp, &self.state))
            .with_context(|| format!("cannot write {}", self.state.display()))
    }

    fn run_nft(&self, input: Option<&Value>, args: &[&str]) -> Result<String> {
        let mut c = Command::new(&self.nft);
        c.arg("-j").args(args);
        c.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().map_err(|e| {
            anyhow!(
                "cannot run {}: {e} (install nftables, or give --nft PATH)",
                self.nft
            )
        })?;
        if let (Some(v), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(v.to_string().as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            let e = String::from_utf8_lossy(&out.stderr);
            let first = e
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            let hint = if e.contains("Operation not permitted") {
                " (run as root: nft needs CAP_NET_ADMIN)"
            } else {
                ""
            };
            bail!("nft refused the change: {first}{hint}");
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Installs `next` (one transaction), then records it.
    fn commit(&mut self, next: &Ruleset, log: &[String]) -> Result<()> {
        let tx = nft::transaction(&self.target, next, &self.whitelist);
        if self.dry_run {
            println!("{tx}");
            for l in log {
                self.log(&format!("dry run: {l}"));
            }
            return Ok(());
        }
        self.run_nft(Some(&tx), &["-f", "-"])?;
        self.save(next)?;
        for l in log {
            self.log(l);
        }
        Ok(())
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `/run/fw_actuator/<netns inode>-<table>-<iface>.json`.
fn default_state(table: &str, iface: &str) -> PathBuf {
    let ns = std::fs::read_link("/proc/self/ns/net")
        .ok()
        .and_then(|p| {
            let s = p.to_string_lossy().into_owned();
            s.strip_prefix("net:[")
                .and_then(|s| s.strip_suffix(']'))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "0".into());
    PathBuf::from(format!("/run/fw_actuator/{ns}-{table}-{iface}.json"))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

fn run(args: &Args) -> Result<()> {
    if !valid_name(&args.interface) {
        bail!(
            "--interface `{}`: not an interface name (at most 15 letters, digits, _ - .)",
            args.interface
        );
    }
    if !valid_name(&args.table) {
        bail!(
            "--table `{}`: letters, digits, _ - . (at most 15)",
            args.table
        );
    }
    let whitelist = args
        .whitelist
        .iter()
        .map(|w| {
            Prefix::parse(w.trim()).ok_or_else(|| {
                anyhow!("--whitelist `{w}`: not an IP address or prefix (203.0.113.0/24)")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if args.ttl == 0 {
        bail!("--ttl must be at least 1 second");
    }
    let log = match &args.log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open --log {}", p.display()))?,
        ),
        None => None,
    };
    let mut ctx = Ctx {
        target: Target {
            table: args.table.clone(),
            iface: args.interface.clone(),
        },
        state: args
            .state
            .clone()
            .unwrap_or_else(|| default_state(&args.table, &args.interface)),
        whitelist,
        nft: args.nft.clone(),
        log,
        dry_run: args.dry_run,
    };
    let module_mode = args.ifc.is_some();
    let modes = [args.batch.is_some(), args.list, args.flush, module_mode];
    match modes.iter().filter(|m| **m).count() {
        1 => {}
        0 => bail!("nothing to do: give --batch FILE, --list, --flush or -i (alerts)"),
        _ => bail!("give one of --batch, --list, --flush and -i"),
    }
    if args.list {
        return list(&mut ctx);
    }
    if args.flush {
        let r = ctx.load()?;
        if ctx.dry_run {
            println!(
                "{}",
                nft::transaction(&ctx.target, &Ruleset::default(), &[])
            );
            return Ok(());
        }
        ctx.commit(
            &Ruleset::default(),
            &[format!("flush ({} rules)", r.entries.len())],
        )?;
        return Ok(());
    }
    if let Some(b) = &args.batch {
        let text = if b == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the batch from stdin")?;
            s
        } else {
            std::fs::read_to_string(b).with_context(|| format!("cannot read the batch {b}"))?
        };
        let ops = parse_batch(&text).map_err(|e| anyhow!("batch {b}: {e}"))?;
        let mut cur = ctx.load()?;
        let expired = cur.expire(now());
        let (next, mut log) = cur.apply(&ops).map_err(|e| anyhow!("batch {b}: {e}"))?;
        log.splice(0..0, expired);
        return ctx.commit(&next, &log);
    }
    run_module(args, &mut ctx)
}

fn list(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.load()?;
    let listing = ctx
        .run_nft(
            None,
            &[
                "list",
                "chain",
                "inet",
                &ctx.target.table,
                &ctx.target.chain(),
            ],
        )
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let counters = listing.as_ref().map(nft::counters).unwrap_or_default();
    for (i, e) in r.entries.iter().enumerate() {
        let mut j = e.rule.to_json(i);
        if let Some(m) = j.as_object_mut() {
            if let Some(t) = e.expires {
                m.insert("expires".into(), t.into());
            }
            if let Some((p, b)) = counters.get(i) {
                m.insert("packets".into(), (*p).into());
                m.insert("bytes".into(), (*b).into());
            }
        }
        println!("{j}");
    }
    Ok(())
}

/// What an alert asks for: a source to block, or a destination to shield.
fn alert_target(t: &Template, rec: &RecordRef<'_>) -> Option<(bool, Prefix)> {
    let ip = |name: &str| {
        t.find(name)
            .and_then(|i| rec.get_ip(i))
            .map(|a| Prefix::parse(&a.to_std().to_string()))
    };
    match ip("SRC_IP") {
        Some(p) => p.map(|p| (true, p)),
        None => ip("DST_IP").flatten().map(|p| (false, p)),
    }
}

fn run_module(args: &Args, ctx: &mut Ctx) -> Result<()> {
    let mut trap = Trap::init(args.ifc.as_deref().unwrap_or_default(), Some(1), Some(0))?;
    let input = &mut trap.inputs()[0];
    input.set_required(Required::AnyUniRec);
    input.set_timeout(Timeout::Micros(250_000));
    let mut rules = ctx.load()?;
    let expired = rules.expire(now());
    ctx.commit(&rules, &expired)?;
    ctx.log(&format!(
        "waiting for alerts (auto-rules for {} s, {} whitelisted prefixes)",
        args.ttl,
        ctx.whitelist.len()
    ));
    let mut tmpl: Option<Template> = None;
    let mut alerts = 0u64;
    loop {
        let msg = match input.recv() {
            Ok(m) => m,
            Err(TrapError::Terminated) => break,
            Err(TrapError::Timeout) => {
                let log = rules.expire(now());
                if !log.is_empty() {
                    ctx.commit(&rules, &log)?;
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if msg.is_eos() {
            break;
        }
        if msg.format_changed || tmpl.is_none() {
            let Some(DataFormat::UniRec(spec)) = &msg.format else {
                bail!("the input is not UniRec");
            };
            let t = Template::parse(spec)?;
            if t.find("SRC_IP").is_none() && t.find("DST_IP").is_none() {
                bail!("the alerts have neither SRC_IP nor DST_IP: nothing to block");
            }
            tmpl = Some(t);
        }
        let Some(t) = &tmpl else { continue };
        let rec = match RecordRef::new_checked(t, msg.data) {
            Ok(r) => r,
            Err(e) => {
                ctx.log(&format!("skipped a malformed alert: {e}"));
                continue;
            }
        };
        alerts += 1;
        let Some((is_src, p)) = alert_target(t, &rec) else {
            continue;
        };
        let expires = now() + args.ttl;
        let line = if is_src {
            if ctx.whitelist.iter().any(|w| w.overlaps(&p)) {
                ctx.log(&format!("alert for whitelisted {p}: not blocked"));
                continue;
            }
            rules.block(
                p,
                format!("alert: source {}", p.addr),
                expires,
                &ctx.whitelist,
            )
        } else {
            rules.block_to(p, format!("alert: flood to {}", p.addr), expires)
        };
        let mut log = rules.expire(now());
        log.extend(line);
        if !log.is_empty() {
            ctx.commit(&rules, &log)?;
        }
    }
    ctx.log(&format!(
        "{alerts} alerts read; the rules stay until they expire or are deleted"
    ));
    // The input ended: expiry needs a running actuator, so keep going
    // until the last auto-rule is gone or a signal comes.
    while !libtrap::is_terminated() && rules.entries.iter().any(|e| e.expires.is_some()) {
        libtrap::sleep(std::time::Duration::from_millis(250));
        let log = rules.expire(now());
        if !log.is_empty() {
            ctx.commit(&rules, &log)?;
        }
    }
    libtrap::ok_if_terminated(trap.finish())?;
    Ok(())
}

fn main() -> ExitCode {
    module::handle_trap_help();
    let args: Args = module::parse_args("fw_actuator");
    let trap = TrapArgs {
        ifc: String::new(),
        verbose: args.verbose,
    };
    module::start("fw_actuator", &trap);
    module::exit_status(run(&args))
}
