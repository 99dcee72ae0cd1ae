//! The supervisor daemon: starts modules in their own process groups,
//! watches and restarts them, stops them (SIGINT, then SIGKILL to the
//! group), reloads the configuration, polls service interfaces, and answers
//! clients on a unix socket.

use crate::config::{Config, Module};
use crate::error::ConfigError;
use crate::proto::Request;
use crate::restart::{decide, Action, Restarts};
use crate::status::{self, IfcStats, ModuleView, ProfileView};
use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Time between SIGINT and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_millis(500);
/// Period of the run-time loop.
const TICK: Duration = Duration::from_millis(100);
/// Period of service-interface polling.
const STATS_PERIOD: Duration = Duration::from_secs(1);
/// Period of the `modules_statistics` dump.
const STATS_DUMP_PERIOD: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{what}: {cause}")]
    Io { what: String, cause: std::io::Error },
    #[error("another supervisor is already serving {}", .0.display())]
    SocketInUse(PathBuf),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |cause| DaemonError::Io { what, cause }
}

/// Command-line settings of the daemon.
#[derive(Clone, Debug)]
pub struct Options {
    pub config: PathBuf,
    pub logs: PathBuf,
    pub socket: PathBuf,
    /// Where to write the generated XML (`supervisor_config_gener.xml`).
    pub configs_dir: Option<PathBuf>,
    /// Serve the counters in Prometheus text format over HTTP here.
    pub metrics: Option<std::net::SocketAddr>,
}

/// ctime(3) without the newline: `Thu Nov 21 10:00:00 2024`.
pub fn ctime() -> String {
    chrono::Local::now()
        .format("%a %b %e %H:%M:%S %Y")
        .to_string()
}

/// The log directory (NEMEA's layout).
#[derive(Clone, Debug)]
pub struct Logs {
    dir: PathBuf,
}

impl Logs {
    pub fn new(dir: &Path) -> Result<Logs, DaemonError> {
        std::fs::create_dir_all(dir.join("modules_logs"))
            .map_err(io_err(format!("cannot create {}", dir.display())))?;
        Ok(Logs {
            dir: dir.to_path_buf(),
        })
    }

    fn append(&self, file: &str, text: &str) {
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(file))
        {
            let _ = f.write_all(text.as_bytes());
        }
    }

    /// A line in `modules_events`: `<ctime> [TAG] text`.
    pub fn event(&self, tag: &str, text: &str) {
        self.append("modules_events", &format!("{} [{tag}] {text}\n", ctime()));
    }

    /// A line in `supervisor_log`.
    pub fn log(&self, text: &str) {
        self.append("supervisor_log", &format!("{} {text}\n", ctime()));
    }

    /// stdout and stderr files of a module, each with a `---> <asctime>` line.
    fn module_files(&self, name: &str) -> std::io::Result<(File, File)> {
        let open = |suffix: &str| -> std::io::Result<File> {
            let mut f = OpenOptions::new().create(true).append(true).open(
                self.dir
                    .join("modules_logs")
                    .join(format!("{name}_{suffix}")),
            )?;
            writeln!(f, "---> {}", ctime())?;
            Ok(f)
        };
        Ok((open("stdout")?, open("stderr")?))
    }
}

/// Run-time state of one module.
#[derive(Debug)]
struct Mod {
    cfg: Module,
    profile: usize,
    enabled: bool,
    /// 0 when not running.
    pid: i32,
    /// Started by this process (reaped with waitpid), not re-attached.
    child: bool,
    starttime: u64,
    stopping: Option<Instant>,
    killed: bool,
    restarts: Restarts,
    stats: Option<IfcStats>,
    cpu: (u64, u64),
    mem: (u64, u64),
}

impl Mod {
    fn new(cfg: Module, profile: usize, now: Instant) -> Mod {
        Mod {
            enabled: cfg.enabled,
            cfg,
            profile,
            pid: 0,
            child: false,
            starttime: 0,
            stopping: None,
            killed: false,
            restarts: Restarts::new(now),
            stats: None,
            cpu: (0, 0),
            mem: (0, 0),
        }
    }
}

/// Outcome of a reload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReloadCounts {
    pub inserted: usize,
    pub removed: usize,
    pub modified: usize,
    pub unmodified: usize,
}

impl ReloadCounts {
    pub fn report(&self) -> String {
        format!(
            "[RELOAD] Result:\nInserted modules:\t{}\nRemoved modules:\t{}\nModified modules:\t{}\nUnmodified modules:\t{}\n[RELOAD] Processing of the new configuration successfully finished.\n",
            self.inserted, self.removed, self.modified, self.unmodified
        )
    }
}

struct State {
    opts: Options,
    logs: Logs,
    global_restarts: u32,
    profiles: Vec<ProfileView>,
    modules: Vec<Mod>,
    /// Removed by a reload and still being stopped.
    dying: Vec<Mod>,
    started: String,
    generated: Option<PathBuf>,
}

/// Is the process alive? Reaps it when it is our child.
fn alive(pid: i32, child: bool) -> (bool, Option<String>) {
    if pid <= 0 {
        return (false, None);
    }
    if child {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return (true, None),
            Ok(WaitStatus::Exited(_, code)) => return (false, Some(format!("exit status {code}"))),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                return (false, Some(format!("killed by {}", sig.as_str())))
            }
            Ok(_) => return (true, None),
            Err(_) => {} // not our child after all: ask kill(0)
        }
    }
    match kill(Pid::from_raw(pid), None) {
        Ok(()) => (proc_state(pid) != Some('Z'), None),
        Err(Errno::EPERM) => (true, None),
        Err(_) => (false, None),
    }
}

/// Fields of `/proc/PID/stat` after the command name.
fn proc_stat(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn proc_state(pid: i32) -> Option<char> {
    proc_stat(pid)?.first()?.chars().next()
}

/// Start time of a process in clock ticks since boot (field 22).
fn proc_starttime(pid: i32) -> u64 {
    proc_stat(pid)
        .and_then(|f| f.get(19).and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// (utime, stime, vsize, rss pages) of a process.
fn proc_usage(pid: i32) -> Option<(u64, u64, u64, u64)> {
    let f = proc_stat(pid)?;
    let n = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
    Some((n(11)?, n(12)?, n(20)?, n(21)?))
}

/// Total CPU ticks of the machine.
fn total_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| {
            t.lines().next().map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse::<u64>().ok())
                    .sum()
            })
        })
        .unwrap_or(0)
}

fn service_socket(pid: i32) -> PathBuf {
    libtrap::stream::socket_path(&format!("service_{pid}"))
}

impl State {
    fn limit(&self, m: &Mod) -> u32 {
        m.cfg.restart_limit(self.global_restarts)
    }

    fn views(&self) -> Vec<ModuleView> {
        self.modules
            .iter()
            .enumerate()
            .map(|(idx, m)| ModuleView {
                idx,
                profile: m.profile,
                module: m.cfg.clone(),
                enabled: m.enabled,
                running: m.pid > 0,
                pid: m.pid,
                cpu_user: m.cpu.0,
                cpu_system: m.cpu.1,
                mem_vms: m.mem.0,
                mem_rss: m.mem.1,
                stats: m.stats.clone(),
            })
            .collect()
    }

    fn start(&mut self, i: usize) {
        let logs = self.logs.clone();
        let m = &mut self.modules[i];
        let restart = m.restarts.on_start();
        let name = m.cfg.name.clone();
        if restart {
            logs.event("RESTART", &format!("Restarting module {name}"));
        } else {
            logs.event("START", &format!("Starting module {name}."));
        }
        let spawned = m.cfg.args().map_err(|e| e.to_string()).and_then(|args| {
            let (out, err) = logs.module_files(&name).map_err(|e| e.to_string())?;
            Command::new(&m.cfg.path)
                .arg0(&name)
                .args(args)
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("{}: {e}", m.cfg.path))
        });
        match spawned {
            Ok(child) => {
                m.pid = child.id() as i32;
                m.child = true;
                m.killed = false;
                m.stopping = None;
                m.starttime = proc_starttime(m.pid);
                // The Child handle is dropped: we reap with waitpid ourselves.
            }
            Err(e) => logs.event("ERROR", &format!("Cannot start module {name}: {e}")),
        }
    }

    fn tick(&mut self, now: Instant) {
        let logs = self.logs.clone();
        for m in self.modules.iter_mut().chain(self.dying.iter_mut()) {
            watch(m, &logs, now);
        }
        self.dying.retain(|m| m.pid > 0);
        for i in 0..self.modules.len() {
            let limit = self.limit(&self.modules[i]);
            let m = &mut self.modules[i];
            m.restarts.tick(now);
            let should_run = m.enabled && self.profiles[m.profile].enabled;
            match decide(
                should_run,
                m.pid > 0,
                m.stopping.is_some(),
                &m.restarts,
                limit,
            ) {
                Action::Nothing => {}
                Action::Start => self.start(i),
                Action::Stop => stop(m, &logs, now),
                Action::GiveUp => {
                    m.enabled = false;
                    logs.event(
                        "RESTART",
                        &format!(
                            "Module: {} was restarted {} times per minute and it is down again. I set it disabled.",
                            m.cfg.name,
                            m.restarts.count()
                        ),
                    );
                }
            }
        }
    }

    /// Resolves names (module, profile, or module index) to module and
    /// profile indices.
    fn resolve(&self, names: &[String]) -> Result<(Vec<usize>, Vec<usize>), String> {
        let (mut mods, mut profs, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
        for n in names {
            if let Some(i) = self.modules.iter().position(|m| &m.cfg.name == n) {
                mods.push(i);
            } else if let Some(p) = self.profiles.iter().position(|p| &p.name == n) {
                profs.push(p);
            } else if let Some(i) = n.parse::<usize>().ok().filter(|i| *i < self.modules.len()) {
                mods.push(i);
            } else {
                unknown.push(n.as_str());
            }
        }
        if names.is_empty() {
            return Err("no module or profile given".into());
        }
        if !unknown.is_empty() {
            return Err(format!("no such module or profile: {}", unknown.join(", ")));
        }
        Ok((mods, profs))
    }

    fn set_enabled(&mut self, names: &[String], on: bool) -> Result<String, String> {
        let (mods, profs) = self.resolve(names)?;
        let tag = if on { "ENABLED" } else { "DISABLED" };
        let mut out = String::new();
        for i in mods {
            let m = &mut self.modules[i];
            if on && !m.enabled {
                m.restarts.reset();
            }
            m.enabled = on;
            self.logs.event(
                tag,
                &format!("Module {} {}.", m.cfg.name, tag.to_lowercase()),
            );
            out += &format!("Module {} {}.\n", m.cfg.name, tag.to_lowercase());
        }
        for p in profs {
            self.profiles[p].enabled = on;
            let name = &self.profiles[p].name;
            self.logs
                .event(tag, &format!("Profile {name} {}.", tag.to_lowercase()));
            out += &format!("Profile {name} {}.\n", tag.to_lowercase());
        }
        Ok(out)
    }

    fn restart(&mut self, names: &[String], now: Instant) -> Result<String, String> {
        let (mut mods, profs) = self.resolve(names)?;
        for p in profs {
            mods.extend(
                (0..self.modules.len())
                    .filter(|&i| self.modules[i].profile == p && self.modules[i].pid > 0),
            );
        }
        let mut out = String::new();
        for i in mods {
            let m = &mut self.modules[i];
            m.enabled = true;
            m.restarts.reset();
            if m.pid > 0 && m.stopping.is_none() {
                stop(m, &self.logs, now);
            }
            out += &format!("Module {} restarted.\n", m.cfg.name);
        }
        Ok(out)
    }

    /// Applies a new configuration (inserted/removed/modified/unmodified).
    fn apply(&mut self, cfg: Config, now: Instant) -> ReloadCounts {
        let mut counts = ReloadCounts::default();
        let mut old: HashMap<String, Mod> = self
            .modules
            .drain(..)
            .map(|m| (m.cfg.name.clone(), m))
            .collect();
        let old_profiles: Vec<String> = self.profiles.iter().map(|p| p.name.clone()).collect();
        self.profiles = cfg
            .profiles
            .iter()
            .map(|p| ProfileView {
                name: p.name.clone(),
                enabled: p.enabled,
            })
            .collect();
        self.global_restarts = cfg.module_restarts;
        for (pi, p) in cfg.profiles.iter().enumerate() {
            for new in &p.modules {
                let Some(mut m) = old.remove(&new.name) else {
                    counts.inserted += 1;
                    self.modules.push(Mod::new(new.clone(), pi, now));
                    continue;
                };
                let old_profile = old_profiles.get(m.profile).cloned().unwrap_or_default();
                let mut same_but_enabled = m.cfg.clone();
                same_but_enabled.enabled = new.enabled;
                if m.cfg == *new && old_profile == p.name {
                    counts.unmodified += 1;
                } else if same_but_enabled == *new && old_profile == p.name {
                    counts.modified += 1;
                    if new.enabled && !m.enabled {
                        m.restarts.reset();
                    }
                    m.enabled = new.enabled;
                } else {
                    counts.modified += 1;
                    m.restarts.reset();
                    m.enabled = new.enabled;
                    if m.pid > 0 && m.stopping.is_none() {
                        stop(&mut m, &self.logs, now);
                    }
                }
                m.cfg = new.clone();
                m.profile = pi;
                self.modules.push(m);
            }
        }
        for (_, mut m) in old {
            counts.removed += 1;
            m.enabled = false;
            if m.pid > 0 {
                if m.stopping.is_none() {
                    stop(&mut m, &self.logs, now);
                }
                self.dying.push(m);
            }
        }
        counts
    }

    fn reload(&mut self) -> Result<ReloadCounts, String> {
        match load_config(&self.opts) {
            Ok((cfg, generated)) => {
                self.generated = generated;
                let counts = self.apply(cfg, Instant::now());
                self.logs.log(&counts.report().replace('\n', " "));
                Ok(counts)
            }
            Err(e) => {
                let msg = format!("[ERROR] Reload failed, keeping the running configuration: {e}");
                self.logs.log(&msg);
                Err(msg)
            }
        }
    }

    fn info(&self) -> String {
        let running = self.modules.iter().filter(|m| m.pid > 0).count();
        format!(
            "--------------- INFO ---------------\nSupervisor package version: {} (nemea-rs)\nSupervisor git version: none\nStarted: {}\nLogs directory path: {}\nStart-up configuration template: {}\nLoaded configuration file (generated): {}\nCommunication socket path: {}\nNumber of loaded modules: {}\nNumber of running modules: {running}\n",
            env!("CARGO_PKG_VERSION"),
            self.started,
            self.opts.logs.display(),
            self.opts.config.display(),
            self.generated
                .as_ref()
                .map_or_else(|| self.opts.config.display().to_string(), |p| p.display().to_string()),
            self.opts.socket.display(),
            self.modules.len(),
        )
    }
}

/// Notices a module's exit, escalates a pending stop to SIGKILL.
fn watch(m: &mut Mod, logs: &Logs, now: Instant) {
    if m.pid <= 0 {
        return;
    }
    let (up, how) = alive(m.pid, m.child);
    if !up {
        let how = how.map(|h| format!(" ({h})")).unwrap_or_default();
        logs.event(
            "STOP",
            &format!(
                "kill -0: module \"{}\" (PID: {}) is not running!{how}",
                m.cfg.name, m.pid
            ),
        );
        // The group may still have members (children of the module).
        let _ = killpg(Pid::from_raw(m.pid), Signal::SIGKILL);
        if m.killed {
            clean_sockets(m, logs);
        }
        m.pid = 0;
        m.stopping = None;
        m.stats = None;
        m.cpu = (0, 0);
        m.mem = (0, 0);
        return;
    }
    if let Some(t) = m.stopping {
        if !m.killed && now.duration_since(t) >= STOP_GRACE {
            let _ = killpg(Pid::from_raw(m.pid), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(m.pid), Signal::SIGKILL);
            m.killed = true;
        }
    }
}

fn stop(m: &mut Mod, logs: &Logs, now: Instant) {
    logs.event(
        "STOP",
        &format!("Stopping module {}... sending SIGINT", m.cfg.name),
    );
    if killpg(Pid::from_raw(m.pid), Signal::SIGINT).is_err() {
        let _ = kill(Pid::from_raw(m.pid), Signal::SIGINT);
    }
    m.stopping = Some(now);
}

/// Removes the unix sockets a killed module leaves behind.
fn clean_sockets(m: &Mod, logs: &Logs) {
    let mut paths = vec![service_socket(m.pid)];
    paths.extend(
        m.cfg
            .unix_outputs()
            .iter()
            .map(|n| libtrap::stream::socket_path(n)),
    );
    for p in paths {
        if p.exists() {
            logs.event("CLEAN", &format!("Deleting socket {}", p.display()));
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Loads the configuration; for XML also writes the generated file when a
/// configs directory was given.
fn load_config(opts: &Options) -> Result<(Config, Option<PathBuf>), ConfigError> {
    if opts.config.extension().is_some_and(|e| e == "toml") {
        return Ok((Config::load(&opts.config)?, None));
    }
    let (cfg, generated) = crate::xml::load(&opts.config)?;
    cfg.validate()?;
    let mut written = None;
    if let Some(dir) = &opts.configs_dir {
        let path = dir.join("supervisor_config_gener.xml");
        std::fs::write(&path, &generated.text).map_err(|cause| ConfigError::Io {
            path: path.clone(),
            cause,
        })?;
        written = Some(path);
    }
    Ok((cfg, written))
}

/// Module PIDs saved when the supervisor exits leaving its modules running.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Backup {
    template: PathBuf,
    profiles: Vec<(String, bool)>,
    modules: Vec<BackupModule>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BackupModule {
    name: String,
    enabled: bool,
    pid: i32,
    starttime: u64,
}

const BACKUP_FILE: &str = "supervisor_backup.json";

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

impl State {
    fn write_backup(&self) {
        let b = Backup {
            template: absolute(&self.opts.config),
            profiles: self
                .profiles
                .iter()
                .map(|p| (p.name.clone(), p.enabled))
                .collect(),
            modules: self
                .modules
                .iter()
                .map(|m| BackupModule {
                    name: m.cfg.name.clone(),
                    enabled: m.enabled,
                    pid: m.pid,
                    starttime: m.starttime,
                })
                .collect(),
        };
        if let Ok(text) = serde_json::to_string_pretty(&b) {
            let path = self.opts.logs.join(BACKUP_FILE);
            if std::fs::write(&path, text).is_err() {
                self.logs.log("[ERROR] Cannot write the backup file.");
            }
        }
    }

    /// Re-attaches to the modules a previous supervisor left running.
    fn restore_backup(&mut self) {
        let path = self.opts.logs.join(BACKUP_FILE);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        let _ = std::fs::remove_file(&path);
        let Ok(b) = serde_json::from_str::<Backup>(&text) else {
            self.logs
                .log("[WARNING] Ignoring an unreadable backup file.");
            return;
        };
        if b.template != absolute(&self.opts.config) {
            self.logs
                .log("[WARNING] The backup file belongs to another configuration; ignored.");
            return;
        }
        for (name, enabled) in b.profiles {
            if let Some(p) = self.profiles.iter_mut().find(|p| p.name == name) {
                p.enabled = enabled;
            }
        }
        for bm in b.modules {
            let Some(m) = self.modules.iter_mut().find(|m| m.cfg.name == bm.name) else {
                continue;
            };
            m.enabled = bm.enabled;
            if bm.pid > 0 && alive(bm.pid, false).0 && proc_starttime(bm.pid) == bm.starttime {
                m.pid = bm.pid;
                m.child = false;
                m.starttime = bm.starttime;
                m.restarts.on_start();
                self.logs.event(
                    "START",
                    &format!(
                        "Module {} (PID: {}) is still running; re-attached.",
                        m.cfg.name, m.pid
                    ),
                );
            }
        }
    }
}

/// How the daemon ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGTERM: stop every module.
    StopModules,
    /// SIGINT/SIGQUIT: leave modules running and write the backup.
    KeepModules,
}

struct Shared {
    state: Mutex<State>,
    reload_requested: AtomicBool,
    /// Set by `Dstop` in configuration mode: stop, leave modules running.
    stop_keep: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Binds the client socket, refusing when another daemon answers on it.
fn bind_socket(path: &Path) -> Result<UnixListener, DaemonError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(format!("cannot create {}", dir.display())))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(DaemonError::SocketInUse(path.to_path_buf()));
        }
        let _ = std::fs::remove_file(path);
    }
    UnixListener::bind(path).map_err(io_err(format!("cannot listen on {}", path.display())))
}

/// Runs the supervisor until SIGTERM (modules stopped) or SIGINT/SIGQUIT
/// (modules left running, backup written). SIGHUP reloads.
pub fn run(opts: Options) -> Result<Shutdown, DaemonError> {
    let logs = Logs::new(&opts.logs)?;
    let (cfg, generated) = load_config(&opts)?;
    let listener = bind_socket(&opts.socket)?;
    let metrics = opts
        .metrics
        .map(|addr| {
            std::net::TcpListener::bind(addr).map_err(io_err(format!("cannot listen on {addr}")))
        })
        .transpose()?;
    let term = Arc::new(AtomicBool::new(false));
    let int = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGTERM, &term),
        (signal_hook::consts::SIGINT, &int),
        (signal_hook::consts::SIGQUIT, &int),
        (signal_hook::consts::SIGHUP, &hup),
    ] {
        signal_hook::flag::register(sig, flag.clone()).map_err(io_err("signal handler"))?;
    }
    let now = Instant::now();
    let mut state = State {
        opts: opts.clone(),
        logs: logs.clone(),
        global_restarts: cfg.module_restarts,
        profiles: Vec::new(),
        modules: Vec::new(),
        dying: Vec::new(),
        started: ctime(),
        generated,
    };
    state.apply(cfg, now);
    state.restore_backup();
    logs.log(&format!(
        "[INFO] Supervisor started (PID {}), configuration {}, socket {}.",
        std::process::id(),
        opts.config.display(),
        opts.socket.display()
    ));
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        reload_requested: AtomicBool::new(false),
        stop_keep: AtomicBool::new(false),
    });
    let done = Arc::new(AtomicBool::new(false));
    {
        let shared = shared.clone();
        let done = done.clone();
        std::thread::Builder::new()
            .name("clients".into())
            .spawn(move || serve_clients(listener, shared, done))
            .map_err(io_err("thread"))?;
    }
    if let Some(metrics) = metrics {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || serve_metrics(metrics, shared))
            .map_err(io_err("thread"))?;
    }
    {
        let shared = shared.clone();
        let done = done.clone();
        std::thread::Builder::new()
            .name("stats".into())
            .spawn(move || poll_stats(shared, done))
            .map_err(io_err("thread"))?;
    }
    let how = loop {
        if term.load(Relaxed) {
            break Shutdown::StopModules;
        }
        if int.load(Relaxed) || shared.stop_keep.load(Relaxed) {
            break Shutdown::KeepModules;
        }
        if hup.swap(false, Relaxed) || shared.reload_requested.swap(false, Relaxed) {
            let _ = shared.lock().reload();
        }
        shared.lock().tick(Instant::now());
        std::thread::sleep(TICK);
    };
    done.store(true, Relaxed);
    let mut st = shared.lock();
    match how {
        Shutdown::StopModules => stop_all(&mut st),
        Shutdown::KeepModules => {
            // Modules being stopped are finished first; the rest keep running.
            while !st.dying.is_empty() || st.modules.iter().any(|m| m.stopping.is_some()) {
                let now = Instant::now();
                let logs = st.logs.clone();
                let State { modules, dying, .. } = &mut *st;
                for m in modules.iter_mut().chain(dying.iter_mut()) {
                    watch(m, &logs, now);
                }
                dying.retain(|m| m.pid > 0);
                std::thread::sleep(Duration::from_millis(20));
            }
            st.write_backup();
        }
    }
    let _ = std::fs::remove_file(&opts.socket);
    logs.log(&format!(
        "[INFO] Supervisor stopped ({}).",
        match how {
            Shutdown::StopModules => "modules stopped",
            Shutdown::KeepModules => "modules left running",
        }
    ));
    Ok(how)
}

/// SIGINT to every module's group, SIGKILL after the grace period, reap.
fn stop_all(st: &mut State) {
    let now = Instant::now();
    let logs = st.logs.clone();
    let State { modules, dying, .. } = st;
    for m in modules.iter_mut().chain(dying.iter_mut()) {
        m.enabled = false;
        if m.pid > 0 && m.stopping.is_none() {
            stop(m, &logs, now);
        }
    }
    let deadline = now + STOP_GRACE + Duration::from_secs(3);
    loop {
        let now = Instant::now();
        let mut left = 0;
        for m in modules.iter_mut().chain(dying.iter_mut()) {
            watch(m, &logs, now);
            left += usize::from(m.pid > 0);
        }
        if left == 0 || now >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn serve_clients(listener: UnixListener, shared: Arc<Shared>, done: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if done.load(Relaxed) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let shared = shared.clone();
        let _ = std::thread::Builder::new()
            .name("client".into())
            .spawn(move || {
                let _ = answer(conn, &shared);
            });
    }
}

fn answer(conn: UnixStream, shared: &Shared) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    let mut reader = BufReader::new(&conn);
    reader.read_line(&mut line)?;
    let mut out = &conn;
    let Some(req) = Request::parse(&line) else {
        return out.write_all(b"[ERROR] Unknown request.\n");
    };
    let reply = match req {
        Request::Stats => status::stats_json(&shared.lock().views()),
        Request::Info => status::info_json(&shared.lock().views()) + "\n",
        Request::Reload => {
            shared.reload_requested.store(true, Relaxed);
            String::new()
        }
        Request::ConfigMode => return config_mode(reader, &conn, shared),
        Request::Cmd(verb, args) => {
            let (code, text) = command(shared, &verb, &args);
            format!("{code}\n{text}")
        }
    };
    out.write_all(reply.as_bytes())
}

/// Answers every HTTP request with the Prometheus text of the counters.
fn serve_metrics(listener: std::net::TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let shared = shared.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-client".into())
            .spawn(move || -> std::io::Result<()> {
                conn.set_read_timeout(Some(Duration::from_secs(5)))?;
                let mut reader = BufReader::new(&conn);
                let mut request = String::new();
                reader.read_line(&mut request)?;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
                        break;
                    }
                }
                let (status, body) = if request.starts_with("GET ") {
                    let st = shared.lock();
                    ("200 OK", status::prometheus(&st.profiles, &st.views()))
                } else {
                    ("405 Method Not Allowed", String::new())
                };
                let mut out = &conn;
                write!(
                    out,
                    "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            });
    }
}

const MENU: &str = "\x1b[36m--------OPTIONS--------\n1. ENABLE MODULE OR PROFILE\n2. DISABLE MODULE OR PROFILE\n3. RESTART RUNNING MODULE\n4. PRINT BRIEF STATUS\n5. PRINT DETAILED STATUS\n6. PRINT LOADED CONFIGURATION\n7. RELOAD CONFIGURATION\n8. PRINT SUPERVISOR INFO\n9. BROWSE LOG FILES\n-- Type \"Cquit\" to exit client --\n-- Type \"Dstop\" to stop daemon --\n\x1b[0m\x1b[38;5;214;1m[INTERACTIVE] Your choice: \x1b[0m";

/// Parses a selection such as `2,4-6,13`.
pub fn parse_selection(text: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (
                    a.trim().parse::<usize>().ok()?,
                    b.trim().parse::<usize>().ok()?,
                );
                if a > b || b - a > 10_000 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// NEMEA's configuration mode: the numbered menu, one choice per line.
/// Three `0` lines in a row (what supcli sends for `Dstop`) stop the daemon
/// and leave the modules running.
fn config_mode(
    reader: BufReader<&UnixStream>,
    conn: &UnixStream,
    shared: &Shared,
) -> std::io::Result<()> {
    conn.set_read_timeout(None)?;
    let mut lines = reader.lines();
    let mut out = conn;
    let mut zeros = 0;
    loop {
        out.write_all(MENU.as_bytes())?;
        let Some(line) = lines.next().transpose()? else {
            return Ok(());
        };
        let choice = line.trim();
        zeros = if choice == "0" { zeros + 1 } else { 0 };
        if zeros == 3 {
            shared.stop_keep.store(true, Relaxed);
            return out.write_all(b"[INFO] Supervisor stops; modules keep running.\n");
        }
        let text = match choice {
            "0" => String::new(),
            "1" | "2" | "3" => {
                let (verb, candidates) = {
                    let st = shared.lock();
                    let mut c: Vec<(usize, String)> = Vec::new();
                    for (i, m) in st.modules.iter().enumerate() {
                        let show = match choice {
                            "1" => !m.enabled,
                            "2" => m.enabled,
                            _ => m.pid > 0,
                        };
                        if show {
                            c.push((i, m.cfg.name.clone()));
                        }
                    }
                    if choice != "3" {
                        for (i, p) in st.profiles.iter().enumerate() {
                            if p.enabled == (choice == "2") {
                                c.push((st.modules.len() + i, p.name.clone()));
                            }
                        }
                    }
                    (
                        ["enable", "disable", "restart"]
                            [choice.as_bytes()[0] as usize - b'1' as usize],
                        c,
                    )
                };
                if candidates.is_empty() {
                    "[WARNING] Nothing to choose from.\n".to_string()
                } else {
                    let mut list: String = candidates
                        .iter()
                        .map(|(i, n)| format!("   {i} | {n}\n"))
                        .collect();
                    list += "[INTERACTIVE] Type in number or interval separated by comma (e.g. \"2,4-6,13\"): ";
                    out.write_all(list.as_bytes())?;
                    let Some(sel) = lines.next().transpose()? else {
                        return Ok(());
                    };
                    match parse_selection(&sel) {
                        Some(nums) => {
                            let names: Option<Vec<String>> = nums
                                .iter()
                                .map(|n| {
                                    candidates
                                        .iter()
                                        .find(|(i, _)| i == n)
                                        .map(|(_, name)| name.clone())
                                })
                                .collect();
                            match names {
                                Some(names) => command(shared, verb, &names).1,
                                None => "[ERROR] Wrong input: not in the list.\n".into(),
                            }
                        }
                        None => "[ERROR] Wrong input.\n".into(),
                    }
                }
            }
            "4" => command(shared, "status", &["color".into()]).1,
            "5" => command(shared, "status", &["-v".into()]).1,
            "6" => command(shared, "config", &[]).1,
            "7" => command(shared, "reload", &[]).1,
            "8" => command(shared, "about", &[]).1,
            "9" => format!(
                "[WARNING] Log browsing is not available here; the logs are in {}\n",
                shared.lock().opts.logs.display()
            ),
            _ => "[ERROR] Wrong input.\n".into(),
        };
        out.write_all(text.as_bytes())?;
    }
}

/// Runs one supcli subcommand; returns (exit status, text).
fn command(shared: &Shared, verb: &str, args: &[String]) -> (i32, String) {
    let mut st = shared.lock();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let result = match verb {
        "status" if flag("-v") => Ok(status::detailed_status(&st.profiles, &st.views())),
        "status" => Ok(status::brief_status(
            &st.profiles,
            &st.views(),
            flag("color"),
        )),
        "config" => Ok(status::loaded_config(&st.profiles, &st.views())),
        "about" => Ok(st.info()),
        "stats" => Ok(status::stats_json(&st.views()) + "\n"),
        "info" => Ok(status::info_json(&st.views()) + "\n"),
        "reload" => st.reload().map(|c| c.report()),
        "enable" | "start" => st.set_enabled(args, true),
        "disable" | "stop" => st.set_enabled(args, false),
        "restart" => st.restart(args, Instant::now()),
        _ => Err(format!("unknown command {verb:?}")),
    };
    match result {
        Ok(text) => (0, text),
        Err(e) => (1, format!("{e}\n")),
    }
}

/// Reads every running module's counters from its service interface and
/// /proc, and appends `modules_statistics` once a minute.
fn poll_stats(shared: Arc<Shared>, done: Arc<AtomicBool>) {
    let mut prev: HashMap<i32, (u64, u64, u64)> = HashMap::new();
    let mut last_dump = Instant::now();
    let logs = shared.lock().logs.clone();
    logs.append(
        "modules_statistics",
        "Legend:\n<module>,in,<type>,<ifc id>,<received messages>,<received buffers>\n<module>,out,<type>,<ifc id>,<sent messages>,<dropped messages>,<sent buffers>,<autoflushes>\n",
    );
    while !done.load(Relaxed) {
        let targets: Vec<(String, i32)> = shared
            .lock()
            .modules
            .iter()
            .filter(|m| m.pid > 0)
            .map(|m| (m.cfg.name.clone(), m.pid))
            .collect();
        let total = total_ticks();
        let mut results = Vec::new();
        for (name, pid) in targets {
            let stats = libtrap::service::query(&service_socket(pid))
                .ok()
                .and_then(|j| IfcStats::parse(&j));
            let usage = proc_usage(pid);
            let (mut cpu, mut mem) = ((0, 0), (0, 0));
            if let Some((ut, stt, vms, rss)) = usage {
                if let Some((put, pst, ptotal)) = prev.get(&pid) {
                    let dt = total.saturating_sub(*ptotal).max(1);
                    cpu = (
                        100 * ut.saturating_sub(*put) / dt,
                        100 * stt.saturating_sub(*pst) / dt,
                    );
                }
                prev.insert(pid, (ut, stt, total));
                mem = (vms, rss * page_size());
            }
            results.push((name, pid, stats, cpu, mem));
        }
        let dump = last_dump.elapsed() >= STATS_DUMP_PERIOD;
        let mut text = String::new();
        {
            let mut st = shared.lock();
            for (name, pid, stats, cpu, mem) in results {
                if let Some(m) = st
                    .modules
                    .iter_mut()
                    .find(|m| m.cfg.name == name && m.pid == pid)
                {
                    if dump {
                        text += &stats_lines(&name, stats.as_ref());
                    }
                    m.stats = stats;
                    m.cpu = cpu;
                    m.mem = mem;
                }
            }
            let live: Vec<i32> = st.modules.iter().map(|m| m.pid).collect();
            prev.retain(|pid, _| live.contains(pid));
        }
        if dump {
            last_dump = Instant::now();
            if !text.is_empty() {
                logs.append(
                    "modules_statistics",
                    &format!("------> {}\n{text}", ctime()),
                );
            }
        }
        let until = Instant::now() + STATS_PERIOD;
        while !done.load(Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn stats_lines(name: &str, stats: Option<&IfcStats>) -> String {
    let Some(s) = stats else {
        return String::new();
    };
    let mut t = String::new();
    for i in &s.inputs {
        t += &format!(
            "{name},in,{},{},{},{}\n",
            i.kind, i.id, i.messages, i.buffers
        );
    }
    for o in &s.outputs {
        t += &format!(
            "{name},out,{},{},{},{},{},{}\n",
            o.kind, o.id, o.sent, o.dropped, o.buffers, o.autoflushes
        );
    }
    t
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_like_nemea() {
        assert_eq!(parse_selection("2,4-6,13"), Some(vec![2, 4, 5, 6, 13]));
        assert_eq!(parse_selection(" 3 "), Some(vec![3]));
        assert_eq!(parse_selection("6-4"), None);
        assert_eq!(parse_selection("x"), None);
        assert_eq!(parse_selection(""), None);
    }

    #[test]
    fn reload_report_layout() {
        let c = ReloadCounts {
            inserted: 1,
            removed: 2,
            modified: 3,
            unmodified: 4,
        };
        assert_eq!(c.report(), "[RELOAD] Result:\nInserted modules:\t1\nRemoved modules:\t2\nModified modules:\t3\nUnmodified modules:\t4\n[RELOAD] Processing of the new configuration successfully finished.\n");
    }
}
