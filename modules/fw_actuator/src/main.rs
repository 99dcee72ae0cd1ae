//! fw_actuator — firewall rules from batches and detector alerts, kept in
//! an nftables table of its own.

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use fw_actuator::batch::{parse_batch, Prefix};
use fw_actuator::nft::{self, Target};
use fw_actuator::ruleset::Ruleset;
use fw_actuator::{http, idea, xdp_map};

mod xdp;
use libtrap::log;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Required, Timeout, Trap, TrapError};
use serde_json::Value;
use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
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
/// With -i it runs as a module reading UniRec alerts (or, with --idea, IDEA
/// alerts; with --http, batches and alerts posted to its endpoint): an alert with SRC_IP
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
Examples:\n  fw_actuator --interface eth0 --batch rules.json\n  fw_actuator --interface eth0 --list\n  fw_actuator --interface eth0 --whitelist 203.0.113.0/24 --ttl 600 -i u:ddos_alerts\n  ddos_detector2idea -i u:ddos_alerts | fw_actuator --interface eth0 --idea -\n  fw_actuator --interface eth0 --http 127.0.0.1:8750   (curl -d @rules.json 127.0.0.1:8750/batch)"
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
    /// Read IDEA alerts (the *2idea reporters' output, one JSON message a
    /// line) from FILE or - (stdin), blocking as for -i.
    #[arg(long, value_name = "FILE")]
    idea: Option<String>,
    /// Serve the batch endpoint on ADDR (e.g. 127.0.0.1:8750): POST /batch
    /// (a batch), POST /idea (IDEA alerts), GET /rules. Anyone who can
    /// reach it changes the firewall: keep it on loopback.
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// Where the rules go: nft (a table of nftables) or xdp (an XDP program
    /// dropping by source or destination prefix at the driver, line rate;
    /// rules that match ports, flags or conntrack are refused).
    #[arg(long, value_name = "nft|xdp", default_value = "nft", value_parser = ["nft", "xdp"])]
    backend: String,
    /// bpffs, where the xdp backend pins its program and rules (so that
    /// they stay after --batch exits).
    #[arg(long, value_name = "DIR", default_value = "/sys/fs/bpf")]
    bpffs: PathBuf,
    /// Entries the xdp backend's rule trie holds at most (rules plus
    /// whitelisted prefixes).
    #[arg(long, value_name = "N", default_value_t = 65536)]
    xdp_entries: u32,
}

/// Where the rules go.
enum Backend {
    Nft,
    /// The XDP program's pin directory, trie size, and the trie once open.
    Xdp {
        dir: PathBuf,
        max_entries: u32,
        table: Option<xdp::XdpTable>,
    },
}

struct Ctx {
    target: Target,
    state: PathBuf,
    whitelist: Vec<Prefix>,
    nft: String,
    log: Option<std::fs::File>,
    dry_run: bool,
    backend: Backend,
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

    /// The xdp backend's trie, opened (and the program attached) on first use.
    fn xdp_table(&mut self) -> Result<Option<&mut xdp::XdpTable>> {
        let iface = self.target.iface.clone();
        match &mut self.backend {
            Backend::Nft => Ok(None),
            Backend::Xdp {
                dir,
                max_entries,
                table,
            } => {
                if table.is_none() {
                    *table = Some(xdp::XdpTable::open(&iface, dir, *max_entries)?);
                }
                Ok(table.as_mut())
            }
        }
    }

    /// Installs `next` (one nft transaction, or the XDP trie's entries),
    /// then records it.
    fn commit(&mut self, next: &Ruleset, log: &[String]) -> Result<()> {
        if matches!(self.backend, Backend::Nft) {
            let tx = nft::transaction(&self.target, next, &self.whitelist);
            if self.dry_run {
                println!("{tx}");
            } else {
                self.run_nft(Some(&tx), &["-f", "-"])?;
            }
        } else {
            let wanted = xdp_map::entries(next, &self.whitelist).map_err(|e| anyhow!("{e}"))?;
            if self.dry_run {
                for w in &wanted {
                    println!(
                        "{}",
                        serde_json::json!({"prefix_len": w.key.prefix_len, "key": w.key.data.to_vec(), "action": w.action, "rule": w.rule})
                    );
                }
            } else if let Some(t) = self.xdp_table()? {
                t.sync(&wanted)?;
            }
        }
        if self.dry_run {
            for l in log {
                self.log(&format!("dry run: {l}"));
            }
            return Ok(());
        }
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
    PathBuf::from(format!(
        "/run/fw_actuator/{}-{table}-{iface}.json",
        netns_id()
    ))
}

/// The network namespace's inode number (names state and pins per namespace).
fn netns_id() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .ok()
        .and_then(|p| {
            let s = p.to_string_lossy().into_owned();
            s.strip_prefix("net:[")
                .and_then(|s| s.strip_suffix(']'))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "0".into())
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
        backend: if args.backend == "xdp" {
            Backend::Xdp {
                dir: args.bpffs.join("fw_actuator").join(format!(
                    "{}-{}-{}",
                    netns_id(),
                    args.table,
                    args.interface
                )),
                max_entries: args.xdp_entries.max(1),
                table: None,
            }
        } else {
            Backend::Nft
        },
    };
    let serving = args.ifc.is_some() || args.idea.is_some() || args.http.is_some();
    let modes = [args.batch.is_some(), args.list, args.flush, serving];
    match modes.iter().filter(|m| **m).count() {
        1 => {}
        0 => bail!(
            "nothing to do: give --batch FILE, --list, --flush, or -i / --idea / --http (alerts)"
        ),
        _ => bail!("give one of --batch, --list, --flush and -i / --idea / --http"),
    }
    if args.list {
        return list(&mut ctx);
    }
    if args.flush {
        let r = ctx.load()?;
        if let (Backend::Xdp { dir, .. }, false) = (&ctx.backend, ctx.dry_run) {
            xdp::remove(dir)?;
            ctx.save(&Ruleset::default())?;
            ctx.log(&format!(
                "flush ({} rules), XDP program detached",
                r.entries.len()
            ));
            return Ok(());
        }
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
    serve(args, &mut ctx)
}

fn list(ctx: &mut Ctx) -> Result<()> {
    let r = ctx.load()?;
    for j in listing(ctx, &r)? {
        println!("{j}");
    }
    Ok(())
}

/// The rules in the batch format, with their expiry and the backend's
/// counters (nft's, or what the XDP program dropped).
fn listing(ctx: &mut Ctx, r: &Ruleset) -> Result<Vec<Value>> {
    if !matches!(ctx.backend, Backend::Nft) {
        let counters = match ctx.xdp_table()? {
            Some(t) => t.counters()?,
            None => Default::default(),
        };
        return Ok(with_counters(r, |i| counters.get(&i).copied()));
    }
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
    Ok(with_counters(r, |i| counters.get(i).copied()))
}

fn with_counters(r: &Ruleset, counters: impl Fn(usize) -> Option<(u64, u64)>) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, e) in r.entries.iter().enumerate() {
        let mut j = e.rule.to_json(i);
        if let Some(m) = j.as_object_mut() {
            if let Some(t) = e.expires {
                m.insert("expires".into(), t.into());
            }
            if let Some((p, b)) = counters(i) {
                m.insert("packets".into(), p.into());
                m.insert("bytes".into(), b.into());
            }
        }
        out.push(j);
    }
    out
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

/// What the reader threads hand the main loop.
enum Event {
    /// A line of --idea input (its number, its text).
    Idea(u64, String),
    /// The --idea input ended (with the error that ended it).
    IdeaEnd(Option<String>),
    /// A request to the endpoint; the answer goes back on the channel.
    Http(http::Route, Vec<u8>, mpsc::Sender<(&'static str, Value)>),
}

/// The rules and what changes them while serving.
struct Serving<'a> {
    ctx: &'a mut Ctx,
    rules: Ruleset,
    ttl: u64,
}

impl Serving<'_> {
    /// Adds the auto-rule an alert asks for; its log lines.
    fn alert(&mut self, is_src: bool, p: Prefix, why: &str) -> Vec<String> {
        let expires = now() + self.ttl;
        if is_src {
            if self.ctx.whitelist.iter().any(|w| w.overlaps(&p)) {
                self.ctx
                    .log(&format!("alert for whitelisted {p}: not blocked"));
                return Vec::new();
            }
            self.rules
                .block(
                    p,
                    format!("{why}: source {}", p.addr),
                    expires,
                    &self.ctx.whitelist,
                )
                .into_iter()
                .collect()
        } else {
            self.rules
                .block_to(p, format!("{why}: flood to {}", p.addr), expires)
                .into_iter()
                .collect()
        }
    }

    /// Installs the rules after a change, and expiry.
    fn commit(&mut self, mut log: Vec<String>) -> Result<()> {
        let mut expired = self.rules.expire(now());
        expired.append(&mut log);
        if expired.is_empty() {
            return Ok(());
        }
        self.ctx.commit(&self.rules, &expired)
    }

    /// The blocks an IDEA message asks for.
    fn idea(&mut self, text: &str) -> Result<Vec<String>, String> {
        let req = idea::parse(text)?;
        let mut log = Vec::new();
        for p in &req.sources {
            log.extend(self.alert(true, *p, &req.label));
        }
        for p in &req.targets {
            log.extend(self.alert(false, *p, &req.label));
        }
        Ok(log)
    }

    /// A request to the endpoint: its status and JSON answer.
    fn request(&mut self, route: http::Route, body: &[u8]) -> (&'static str, Value) {
        let err = |status, m: String| (status, serde_json::json!({ "error": m }));
        let Ok(text) = std::str::from_utf8(body) else {
            return err("400 Bad Request", "the body is not UTF-8".into());
        };
        match route {
            http::Route::Rules => (
                "200 OK",
                serde_json::json!({ "rules": listing(self.ctx, &self.rules).unwrap_or_default() }),
            ),
            http::Route::Batch => {
                let ops = match parse_batch(text) {
                    Ok(ops) => ops,
                    Err(e) => return err("400 Bad Request", e.to_string()),
                };
                let mut cur = self.rules.clone();
                let mut log = cur.expire(now());
                let next = match cur.apply(&ops) {
                    Ok((next, mut l)) => {
                        log.append(&mut l);
                        next
                    }
                    Err(e) => return err("400 Bad Request", e.to_string()),
                };
                if let Err(e) = self.ctx.commit(&next, &log) {
                    self.ctx.log(&format!("posted batch not applied: {e}"));
                    return err("500 Internal Server Error", e.to_string());
                }
                self.rules = next;
                (
                    "200 OK",
                    serde_json::json!({ "applied": ops.len(), "log": log }),
                )
            }
            http::Route::Idea => {
                // Every message first, so that a bad one changes nothing.
                for (n, line) in text.lines().enumerate() {
                    if !line.trim().is_empty() {
                        if let Err(e) = idea::parse(line) {
                            return err("400 Bad Request", format!("line {}: {e}", n + 1));
                        }
                    }
                }
                let before = self.rules.clone();
                let mut log = Vec::new();
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    log.extend(self.idea(line).unwrap_or_default());
                }
                if let Err(e) = self.commit(log.clone()) {
                    self.rules = before;
                    self.ctx.log(&format!("posted alerts not applied: {e}"));
                    return err("500 Internal Server Error", e.to_string());
                }
                ("200 OK", serde_json::json!({ "log": log }))
            }
        }
    }
}

/// Reads --idea's lines into the main loop.
fn read_idea(source: String, tx: mpsc::Sender<Event>) {
    let reader: Box<dyn BufRead> = if source == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        match std::fs::File::open(&source) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => {
                let _ = tx.send(Event::IdeaEnd(Some(format!(
                    "cannot read --idea {source}: {e}"
                ))));
                return;
            }
        }
    };
    for (n, line) in reader.lines().enumerate() {
        match line {
            Ok(l) => {
                if tx.send(Event::Idea(n as u64 + 1, l)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Event::IdeaEnd(Some(format!("--idea {source}: {e}"))));
                return;
            }
        }
    }
    let _ = tx.send(Event::IdeaEnd(None));
}

/// How long a client has to send its request.
const REQUEST_TIME: Duration = Duration::from_secs(5);

/// Serves the endpoint, one client at a time, until the module stops.
fn serve_http(listener: TcpListener, tx: mpsc::Sender<Event>) {
    while !libtrap::is_terminated() {
        match listener.accept() {
            Ok((conn, _)) => {
                if let Err(e) = client(conn, &tx) {
                    log::info(0, &format!("endpoint client: {e}"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                libtrap::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                log::warn(&format!("endpoint: {e}"));
                libtrap::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn client(mut conn: TcpStream, tx: &mpsc::Sender<Event>) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_write_timeout(Some(REQUEST_TIME))?;
    let deadline = Instant::now() + REQUEST_TIME;
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 8192];
    let answer = loop {
        let head = http::parse_head(&buf);
        match head {
            http::Head::Refused(status, m) => break (status, serde_json::json!({ "error": m })),
            http::Head::Request {
                route,
                head_len,
                body_len,
            } if buf.len() >= head_len + body_len => {
                let body = buf[head_len..head_len + body_len].to_vec();
                let (rtx, rrx) = mpsc::channel();
                if tx.send(Event::Http(route, body, rtx)).is_err() {
                    return Ok(());
                }
                match rrx.recv_timeout(Duration::from_secs(30)) {
                    Ok(a) => break a,
                    Err(_) => return Ok(()),
                }
            }
            _ => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break (
                "408 Request Timeout",
                serde_json::json!({ "error": "no complete request within 5 s" }),
            );
        }
        conn.set_read_timeout(Some(left))?;
        match conn.read(&mut chunk) {
            Ok(0) => {
                break (
                    "400 Bad Request",
                    serde_json::json!({ "error": "the request ended early" }),
                )
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    };
    conn.write_all(&http::answer(answer.0, &answer.1))?;
    let _ = conn.shutdown(std::net::Shutdown::Write);
    Ok(())
}

/// The long-running modes: UniRec alerts (-i), IDEA alerts (--idea) and
/// the endpoint (--http), any together.
fn serve(args: &Args, ctx: &mut Ctx) -> Result<()> {
    let (tx, rx) = mpsc::channel::<Event>();
    let mut idea_open = false;
    if let Some(source) = &args.idea {
        let (source, tx) = (source.clone(), tx.clone());
        std::thread::Builder::new()
            .name("idea".into())
            .spawn(move || read_idea(source, tx))
            .context("cannot start the IDEA reader")?;
        idea_open = true;
    }
    if let Some(addr) = args.http {
        let listener = TcpListener::bind(addr).map_err(|e| {
            anyhow!("--http {addr}: cannot listen: {e} (another program has the port, or give another address)")
        })?;
        listener.set_nonblocking(true)?;
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("http".into())
            .spawn(move || serve_http(listener, tx))
            .context("cannot start the endpoint")?;
    }
    drop(tx);
    let mut trap = match &args.ifc {
        Some(ifc) => Some(Trap::init(ifc, Some(1), Some(0))?),
        None => None,
    };
    if let Some(t) = &mut trap {
        let input = &mut t.inputs()[0];
        input.set_required(Required::AnyUniRec);
        input.set_timeout(Timeout::Micros(100_000));
    }
    let rules = ctx.load()?;
    let mut s = Serving {
        ctx,
        rules,
        ttl: args.ttl,
    };
    s.commit(Vec::new())?;
    let mut sources = Vec::new();
    if let Some(i) = &args.ifc {
        sources.push(format!("alerts on {i}"));
    }
    if let Some(i) = &args.idea {
        sources.push(format!("IDEA alerts from {i}"));
    }
    if let Some(a) = args.http {
        sources.push(format!("the endpoint http://{a}/"));
    }
    s.ctx.log(&format!(
        "waiting for {} (auto-rules for {} s, {} whitelisted prefixes)",
        sources.join(", "),
        args.ttl,
        s.ctx.whitelist.len()
    ));
    let mut tmpl: Option<Template> = None;
    let mut alerts = 0u64;
    let mut trap_open = trap.is_some();
    while !libtrap::is_terminated() && (trap_open || idea_open || args.http.is_some()) {
        let mut log = Vec::new();
        if let (true, Some(t)) = (trap_open, &mut trap) {
            let input = &mut t.inputs()[0];
            match input.recv() {
                Ok(msg) if msg.is_eos() => trap_open = false,
                Ok(msg) => {
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
                    if let Some(t) = &tmpl {
                        match RecordRef::new_checked(t, msg.data) {
                            Ok(rec) => {
                                alerts += 1;
                                if let Some((is_src, p)) = alert_target(t, &rec) {
                                    log.extend(s.alert(is_src, p, "alert"));
                                }
                            }
                            Err(e) => s.ctx.log(&format!("skipped a malformed alert: {e}")),
                        }
                    }
                }
                Err(TrapError::Terminated) => break,
                Err(TrapError::Timeout) => {}
                Err(e) => return Err(e.into()),
            }
        } else if let Ok(ev) = rx.recv_timeout(Duration::from_millis(100)) {
            log.extend(handle(&mut s, ev, &mut idea_open, &mut alerts)?);
        }
        while let Ok(ev) = rx.try_recv() {
            log.extend(handle(&mut s, ev, &mut idea_open, &mut alerts)?);
        }
        s.commit(log)?;
    }
    s.ctx.log(&format!(
        "{alerts} alerts read; the rules stay until they expire or are deleted"
    ));
    // The inputs ended: expiry needs a running actuator, so keep going
    // until the last auto-rule is gone or a signal comes.
    while !libtrap::is_terminated() && s.rules.entries.iter().any(|e| e.expires.is_some()) {
        libtrap::sleep(Duration::from_millis(250));
        s.commit(Vec::new())?;
    }
    if let Some(t) = trap {
        libtrap::ok_if_terminated(t.finish())?;
    }
    Ok(())
}

/// One event of a reader thread; the log lines of what it changed.
fn handle(
    s: &mut Serving<'_>,
    ev: Event,
    idea_open: &mut bool,
    alerts: &mut u64,
) -> Result<Vec<String>> {
    match ev {
        Event::Idea(n, line) => {
            if line.trim().is_empty() {
                return Ok(Vec::new());
            }
            *alerts += 1;
            match s.idea(&line) {
                Ok(log) => Ok(log),
                Err(e) => {
                    s.ctx.log(&format!("--idea line {n} skipped: {e}"));
                    Ok(Vec::new())
                }
            }
        }
        Event::IdeaEnd(None) => {
            *idea_open = false;
            Ok(Vec::new())
        }
        Event::IdeaEnd(Some(e)) => bail!("{e}"),
        Event::Http(route, body, reply) => {
            // Changes are committed by the request itself.
            let expired = s.rules.expire(now());
            if !expired.is_empty() {
                s.ctx.commit(&s.rules, &expired)?;
            }
            let _ = reply.send(s.request(route, &body));
            Ok(Vec::new())
        }
    }
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
