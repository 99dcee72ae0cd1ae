//! The supervisor daemon: starts modules in their own process groups,
//! watches and restarts them, stops them (SIGINT, then SIGKILL to the
//! group), reloads the configuration, polls service interfaces, and answers
//! clients on a unix socket.

use crate::config::{Config, Module};
use crate::error::ConfigError;
use crate::net::{self, Access, Gate, LineError, LineReader, Peer, RateLimit};
use crate::proto::{self, Request};
use crate::restart::{decide, Action, Restarts};
use crate::status::{self, IfcStats, ModuleView, ProfileView};
use crate::web;
use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
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
    /// As `Io`, with what the user can do about it.
    #[error("{what}: {cause}; {hint}")]
    Hint {
        what: String,
        cause: std::io::Error,
        hint: String,
    },
    #[error("another supervisor is already serving {}", .0.display())]
    SocketInUse(PathBuf),
    /// A setting or a file that cannot be used safely, with the fix.
    #[error("{0}")]
    Refused(String),
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
    /// Serve the status page (and its JSON) over HTTP here.
    pub http: Option<std::net::SocketAddr>,
    /// Let the status page start, stop and restart modules.
    pub http_control: bool,
    /// A group (name or number) whose members may use the control socket
    /// besides root and the supervisor's user.
    pub control_group: Option<String>,
}

/// Mode of the log directory and of `modules_logs/`.
pub const LOG_DIR_MODE: u32 = 0o750;
/// Mode of the log files.
pub const LOG_FILE_MODE: u32 = 0o640;
/// Mode of the backup file (who may write it decides what is re-attached).
const BACKUP_MODE: u32 = 0o600;

/// Creates a directory (and missing parents) with exactly `mode`; an
/// existing one is left as it is.
fn create_dir(dir: &Path, mode: u32) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(parent, mode)?;
    }
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        // The umask may have taken bits away; nobody else can be inside yet.
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens a file for appending; a new one is created with exactly `mode`
/// (whatever the umask), an existing one keeps its mode. A symbolic link is
/// not followed.
fn open_append(path: &Path, mode: u32) -> std::io::Result<File> {
    let nofollow = nix::fcntl::OFlag::O_NOFOLLOW.bits();
    match OpenOptions::new()
        .append(true)
        .custom_flags(nofollow)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    match OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(f) => {
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
            Ok(f)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => OpenOptions::new()
            .append(true)
            .custom_flags(nofollow)
            .open(path),
        Err(e) => Err(e),
    }
}

/// Writes a whole file anew (an old one, or a link in its place, is removed
/// first), created with exactly `mode`.
fn write_private(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(text.as_bytes())
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
        create_dir(&dir.join("modules_logs"), LOG_DIR_MODE).map_err(|cause| {
            let what = format!("cannot create {}", dir.join("modules_logs").display());
            if cause.kind() == std::io::ErrorKind::PermissionDenied {
                DaemonError::Hint {
                    what,
                    cause,
                    hint: "pass -L DIR in a directory you can write to".into(),
                }
            } else {
                DaemonError::Io { what, cause }
            }
        })?;
        let logs = Logs {
            dir: dir.to_path_buf(),
        };
        for d in [dir.to_path_buf(), dir.join("modules_logs")] {
            if let Ok(m) = std::fs::metadata(&d) {
                if m.mode() & 0o002 != 0 {
                    logs.log(&format!(
                        "[WARNING] {} is writable by every user (mode {:04o}); chmod {:04o} it.",
                        d.display(),
                        m.mode() & 0o7777,
                        LOG_DIR_MODE
                    ));
                }
            }
        }
        Ok(logs)
    }

    fn append(&self, file: &str, text: &str) {
        if let Ok(mut f) = open_append(&self.dir.join(file), LOG_FILE_MODE) {
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
            let mut f = open_append(
                &self
                    .dir
                    .join("modules_logs")
                    .join(format!("{name}_{suffix}")),
                LOG_FILE_MODE,
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
    /// Processes started so far (a waiting client compares it).
    spawns: u64,
    /// Failed attempts to start the program.
    spawn_failures: u64,
    /// Restarts after the module ended (the status page's count).
    restarted: u64,
    /// How the last run ended or the last start failed (`exit status 1`,
    /// `binary missing: …`); cleared by a successful start.
    last: Option<String>,
    /// `last` is a failed start, not the end of a run.
    start_failed: bool,
    /// Set when the supervisor disabled the module after too many restarts.
    gave_up: Option<String>,
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
            spawns: 0,
            spawn_failures: 0,
            restarted: 0,
            last: None,
            start_failed: false,
            gave_up: None,
        }
    }

    /// (Re-)enabled by a client or a reload: a fresh restart allowance.
    fn reenable(&mut self) {
        self.restarts.reset();
        self.gave_up = None;
    }

    /// Why a module does not run; `None` while it runs, and for a module
    /// simply disabled (the status's `enabled` column says so already).
    fn reason(&self, profile_enabled: bool) -> Option<String> {
        if self.pid > 0 {
            return None;
        }
        Some(if let Some(g) = &self.gave_up {
            g.clone()
        } else if !self.enabled {
            return None;
        } else if !profile_enabled {
            "profile disabled".into()
        } else if let Some(last) = &self.last {
            let run = if self.start_failed { "" } else { "last run: " };
            format!("{run}{last}; restarting")
        } else {
            "starting".into()
        })
    }
}

/// A start failure in a few words: what the user has to fix.
pub fn spawn_failure(path: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound if path.contains('/') => {
            format!("binary missing: {path} does not exist")
        }
        std::io::ErrorKind::NotFound => format!("binary missing: {path} is not on PATH"),
        std::io::ErrorKind::PermissionDenied => {
            format!("cannot run {path}: not executable (permission denied)")
        }
        _ => format!("cannot run {path}: {e}"),
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

/// What a `start`/`stop`/`restart` changed, for the client's answer.
#[derive(Debug, Default)]
struct Changes {
    module_lines: String,
    profile_lines: String,
    /// Said also when waiting (a module that will not run).
    notes: String,
    /// The modules a waiting client waits for.
    targets: Vec<Target>,
}

impl Changes {
    /// The answer of a client that does not wait (NEMEA's menu, old clients).
    fn text(&self) -> String {
        format!("{}{}{}", self.module_lines, self.profile_lines, self.notes)
    }
}

#[derive(Clone, Copy, Debug)]
enum Want {
    Stopped,
    /// A (new) process: `spawns`/`failures` are the module's counters when
    /// the command came.
    Started {
        spawns: u64,
        failures: u64,
        was_running: bool,
        restart: bool,
    },
}

#[derive(Clone, Debug)]
struct Target {
    name: String,
    want: Want,
}

impl Target {
    fn new(m: &Mod, start: bool, restart: bool) -> Target {
        Target {
            name: m.cfg.name.clone(),
            want: if start {
                Want::Started {
                    spawns: m.spawns,
                    failures: m.spawn_failures,
                    was_running: !restart && m.pid > 0 && m.stopping.is_none(),
                    restart,
                }
            } else {
                Want::Stopped
            },
        }
    }
}

enum Check {
    Done(String),
    Pending(String),
    Failed(String),
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
    /// Rates and records/s samples for the status page.
    history: web::History,
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
                restarts: m.restarted,
                stats: m.stats.clone(),
                reason: m.reason(self.profiles.get(m.profile).is_some_and(|p| p.enabled)),
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
            let (out, err) = logs
                .module_files(&name)
                .map_err(|e| format!("cannot open its log files: {e}"))?;
            Command::new(&m.cfg.path)
                .arg0(&name)
                .args(args)
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| spawn_failure(&m.cfg.path, &e))
        });
        match spawned {
            Ok(child) => {
                m.pid = child.id() as i32;
                m.child = true;
                m.killed = false;
                m.stopping = None;
                m.starttime = proc_starttime(m.pid);
                m.spawns += 1;
                m.restarted += u64::from(restart);
                m.last = None;
                m.start_failed = false;
                // The Child handle is dropped: we reap with waitpid ourselves.
            }
            Err(e) => {
                logs.event("ERROR", &format!("Cannot start module {name}: {e}"));
                m.spawn_failures += 1;
                m.last = Some(e);
                m.start_failed = true;
            }
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
                    let last = match (&m.last, m.start_failed) {
                        (Some(e), true) => e.clone(),
                        (Some(e), false) => format!("last run: {e}"),
                        (None, _) => "last run: exited".into(),
                    };
                    let n = m.restarts.count();
                    m.gave_up = Some(if limit == 0 {
                        format!("not restarted (module-restarts = 0); {last}")
                    } else {
                        format!(
                            "restart limit reached ({n} restart{} within a minute); {last}",
                            if n == 1 { "" } else { "s" }
                        )
                    });
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

    fn set_enabled(&mut self, names: &[String], on: bool) -> Result<Changes, String> {
        let (mods, profs) = self.resolve(names)?;
        let tag = if on { "ENABLED" } else { "DISABLED" };
        let mut ch = Changes::default();
        for i in mods {
            let m = &mut self.modules[i];
            if on && !m.enabled {
                m.reenable();
            }
            m.enabled = on;
            self.logs.event(
                tag,
                &format!("Module {} {}.", m.cfg.name, tag.to_lowercase()),
            );
            ch.module_lines += &format!("Module {} {}.\n", m.cfg.name, tag.to_lowercase());
            let profile = &self.profiles[m.profile];
            if on && !profile.enabled {
                ch.notes += &format!(
                    "Module {} enabled; its profile {} is disabled, so it does not run.\n",
                    m.cfg.name, profile.name
                );
            } else {
                ch.targets.push(Target::new(m, on, false));
            }
        }
        for p in profs {
            self.profiles[p].enabled = on;
            let name = &self.profiles[p].name;
            self.logs
                .event(tag, &format!("Profile {name} {}.", tag.to_lowercase()));
            ch.profile_lines += &format!("Profile {name} {}.\n", tag.to_lowercase());
            for m in self.modules.iter().filter(|m| m.profile == p) {
                if !on || m.enabled {
                    ch.targets.push(Target::new(m, on, false));
                }
            }
        }
        Ok(ch)
    }

    fn restart(&mut self, names: &[String], now: Instant) -> Result<Changes, String> {
        let (mut mods, profs) = self.resolve(names)?;
        for p in profs {
            mods.extend(
                (0..self.modules.len())
                    .filter(|&i| self.modules[i].profile == p && self.modules[i].pid > 0),
            );
        }
        let mut ch = Changes::default();
        for i in mods {
            let m = &mut self.modules[i];
            m.enabled = true;
            m.reenable();
            ch.targets.push(Target::new(m, true, true));
            if m.pid > 0 && m.stopping.is_none() {
                stop(m, &self.logs, now);
            }
            ch.module_lines += &format!("Module {} restarted.\n", m.cfg.name);
        }
        Ok(ch)
    }

    /// Where one module stands against what a waiting client asked for.
    fn check(&self, t: &Target) -> Check {
        let Some(m) = self.modules.iter().find(|m| m.cfg.name == t.name) else {
            return match t.want {
                Want::Stopped => Check::Done(format!("Module {} stopped.", t.name)),
                Want::Started { .. } => {
                    Check::Failed(format!("{} was removed by a reload", t.name))
                }
            };
        };
        match t.want {
            Want::Stopped if m.pid == 0 => Check::Done(format!("Module {} stopped.", t.name)),
            Want::Stopped => Check::Pending(format!("{} still running (PID {})", t.name, m.pid)),
            Want::Started {
                spawns,
                failures,
                was_running,
                restart,
            } => {
                let done = if restart { "restarted" } else { "started" };
                if m.spawns > spawns && m.pid > 0 {
                    Check::Done(format!("Module {} {done} (PID {}).", t.name, m.pid))
                } else if m.spawns > spawns {
                    Check::Done(format!(
                        "Module {} {done}; it has exited since ({}).",
                        t.name,
                        m.last.as_deref().unwrap_or("exited")
                    ))
                } else if was_running && m.pid > 0 {
                    Check::Done(format!("Module {} running (PID {}).", t.name, m.pid))
                } else if m.spawn_failures > failures {
                    Check::Failed(format!(
                        "{} did not start: {}",
                        t.name,
                        m.last.as_deref().unwrap_or("unknown error")
                    ))
                } else if let Some(why) = &m.gave_up {
                    Check::Failed(format!("{} did not start: {why}", t.name))
                } else if !m.enabled {
                    Check::Failed(format!("{} was disabled meanwhile", t.name))
                } else if m.pid > 0 {
                    Check::Pending(format!("{} still stopping (PID {})", t.name, m.pid))
                } else {
                    Check::Pending(format!("{} not started yet", t.name))
                }
            }
        }
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
                        m.reenable();
                    }
                    m.enabled = new.enabled;
                } else {
                    counts.modified += 1;
                    m.reenable();
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
        m.last = Some(how.clone().unwrap_or_else(|| "exited".into()));
        m.start_failed = false;
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
            if write_private(&path, &text, BACKUP_MODE).is_err() {
                self.logs.log("[ERROR] Cannot write the backup file.");
            }
        }
    }

    /// Re-attaches to the modules a previous supervisor left running.
    fn restore_backup(&mut self) {
        let path = self.opts.logs.join(BACKUP_FILE);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return;
        };
        // Whoever can write the backup chooses the processes we signal.
        let own = nix::unistd::geteuid().as_raw();
        if !meta.is_file() || meta.uid() != own || meta.mode() & 0o022 != 0 || meta.len() > 16 << 20
        {
            self.logs.log(&format!(
                "[WARNING] Ignoring the backup file {}: not a regular file of uid {own} writable only by it.",
                path.display()
            ));
            let _ = std::fs::remove_file(&path);
            return;
        }
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
    /// Set by `Dstop` in configuration mode (and `supcli shutdown
    /// --keep-modules`): stop, leave modules running.
    stop_keep: AtomicBool,
    /// Set by `supcli shutdown`: stop the modules and the supervisor.
    stop_all: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An error about the client socket, with the fix when it is a permission
/// problem (typically: not root, default socket under /var/run).
fn socket_err(path: &Path, what: String) -> impl FnOnce(std::io::Error) -> DaemonError {
    let default = path == Path::new(crate::proto::DEFAULT_SOCKET);
    move |cause| {
        if cause.kind() != std::io::ErrorKind::PermissionDenied {
            return DaemonError::Io { what, cause };
        }
        let hint = if default {
            "the default socket needs root: pass -s PATH (e.g. -s /tmp/nemea-supervisor.sock)"
        } else {
            "pass -s PATH in a directory you can write to"
        };
        DaemonError::Hint {
            what,
            cause,
            hint: hint.into(),
        }
    }
}

/// Mode of the control socket: 0600, or 0660 with a control group.
fn socket_mode(group: bool) -> u32 {
    if group {
        0o660
    } else {
        0o600
    }
}

/// Resolves `--control-group` (a name or a number).
fn control_group(spec: &str) -> Result<(u32, String), DaemonError> {
    let by_name = nix::unistd::Group::from_name(spec).ok().flatten();
    let group = by_name.or_else(|| {
        spec.parse::<u32>()
            .ok()
            .and_then(|g| nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(g)).ok())
            .flatten()
    });
    match group {
        Some(g) => Ok((g.gid.as_raw(), g.name)),
        None => Err(DaemonError::Refused(format!(
            "--control-group {spec}: no such group (see getent group)"
        ))),
    }
}

/// Binds the client socket, refusing when another daemon answers on it.
/// The socket is created 0600 (0660 and owned by the control group when one
/// is given) whatever the umask: its mode is set on the socket before bind,
/// so the name never exists with more rights.
fn bind_socket(path: &Path, group: Option<u32>) -> Result<UnixListener, DaemonError> {
    use nix::sys::socket::{
        bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
    };
    use nix::sys::stat::{fchmod, Mode};
    use std::os::fd::AsRawFd;
    let listen_err = || socket_err(path, format!("cannot listen on {}", path.display()));
    let errno = |e: Errno| std::io::Error::from_raw_os_error(e as i32);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            create_dir(dir, 0o755)
                .map_err(socket_err(path, format!("cannot create {}", dir.display())))?;
        }
        // Anyone who can rename entries there could replace the socket.
        if let Ok(m) = std::fs::metadata(dir) {
            if m.mode() & 0o002 != 0 && m.mode() & 0o1000 == 0 {
                return Err(DaemonError::Refused(format!(
                    "{} is writable by every user (mode {:04o}), so anyone could replace the socket; use a directory only root and the supervisor's user can write, or a sticky one such as /tmp",
                    dir.display(),
                    m.mode() & 0o7777
                )));
            }
        }
    }
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_socket() {
            return Err(DaemonError::Refused(format!(
                "{} exists and is not a socket; remove it or pass another -s PATH",
                path.display()
            )));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(DaemonError::SocketInUse(path.to_path_buf()));
        }
        let _ = std::fs::remove_file(path);
    }
    let mode = socket_mode(group.is_some());
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| listen_err()(errno(e)))?;
    // Linux creates the name with the socket's mode less the umask: 0600 at
    // most from the start. The group, then 0660, come once it is ours.
    fchmod(&fd, Mode::from_bits_truncate(0o600)).map_err(|e| listen_err()(errno(e)))?;
    let addr = UnixAddr::new(path).map_err(|e| listen_err()(errno(e)))?;
    bind(fd.as_raw_fd(), &addr).map_err(|e| listen_err()(errno(e)))?;
    let listener = UnixListener::from(fd);
    let cleanup = |e: DaemonError| {
        let _ = std::fs::remove_file(path);
        e
    };
    if let Some(gid) = group {
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            path,
            None,
            Some(nix::unistd::Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| {
            cleanup(DaemonError::Hint {
                what: format!("cannot give {} to group {gid}", path.display()),
                cause: errno(e),
                hint: "the supervisor's user must be root or a member of --control-group".into(),
            })
        })?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|cause| cleanup(listen_err()(cause)))?;
    let got = std::fs::symlink_metadata(path).map(|m| m.mode() & 0o7777);
    if got.as_ref().ok() != Some(&mode) {
        return Err(cleanup(DaemonError::Refused(format!(
            "cannot create {} with mode {mode:04o} (got {})",
            path.display(),
            got.map_or_else(|e| e.to_string(), |m| format!("{m:04o}"))
        ))));
    }
    listen(&listener, Backlog::new(128).unwrap_or(Backlog::MAXCONN))
        .map_err(|e| cleanup(listen_err()(errno(e))))?;
    Ok(listener)
}

/// Runs the supervisor until SIGTERM (modules stopped) or SIGINT/SIGQUIT
/// (modules left running, backup written). SIGHUP reloads.
pub fn run(opts: Options) -> Result<Shutdown, DaemonError> {
    let logs = Logs::new(&opts.logs)?;
    let (cfg, generated) = load_config(&opts)?;
    let access = Access {
        own_uid: nix::unistd::geteuid().as_raw(),
        group: opts
            .control_group
            .as_deref()
            .map(control_group)
            .transpose()?,
    };
    let listener = bind_socket(&opts.socket, access.group.as_ref().map(|g| g.0))?;
    let metrics = opts
        .metrics
        .map(|addr| {
            std::net::TcpListener::bind(addr).map_err(io_err(format!("cannot listen on {addr}")))
        })
        .transpose()?;
    let http = opts
        .http
        .map(|addr| {
            std::net::TcpListener::bind(addr)
                .map_err(io_err(format!("--http: cannot listen on {addr}")))
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
        history: web::History::default(),
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
        stop_all: AtomicBool::new(false),
    });
    let done = Arc::new(AtomicBool::new(false));
    {
        let shared = shared.clone();
        let done = done.clone();
        std::thread::Builder::new()
            .name("clients".into())
            .spawn(move || serve_clients(listener, shared, done, access))
            .map_err(io_err("thread"))?;
    }
    if let Some(metrics) = metrics {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || serve_http(metrics, shared, metrics_client))
            .map_err(io_err("thread"))?;
    }
    if let Some(http) = http {
        let shared = shared.clone();
        let control = opts.http_control;
        std::thread::Builder::new()
            .name("status-page".into())
            .spawn(move || {
                serve_http(http, shared, move |conn, shared| {
                    page_client(conn, shared, control)
                })
            })
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
        if term.load(Relaxed) || shared.stop_all.load(Relaxed) {
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

/// Answers a client we will not serve and closes, never blocking.
fn turn_away(conn: &mut impl Write, text: &str) {
    let _ = conn.write(text.as_bytes());
}

/// The credentials of a control client.
fn peer(conn: &UnixStream) -> Option<Peer> {
    let c = nix::sys::socket::getsockopt(conn, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    Some(Peer {
        pid: c.pid(),
        uid: c.uid(),
        gid: c.gid(),
    })
}

/// The groups of a user, from the group database.
fn user_groups(uid: u32) -> Vec<u32> {
    let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return Vec::new();
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return Vec::new();
    };
    nix::unistd::getgrouplist(&name, user.gid)
        .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_default()
}

/// Accepts control clients: checks each peer's credentials, serves at most
/// [`net::MAX_CLIENTS`] at once (one thread each), turns away the rest.
fn serve_clients(
    listener: UnixListener,
    shared: Arc<Shared>,
    done: Arc<AtomicBool>,
    access: Access,
) {
    let gate = Gate::new(net::MAX_CLIENTS);
    let mut refusals = RateLimit::new(20);
    let logs = shared.lock().logs.clone();
    for conn in listener.incoming() {
        if done.load(Relaxed) {
            return;
        }
        let Ok(mut conn) = conn else {
            // Out of descriptors, typically: let some clients finish.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if conn.set_nonblocking(true).is_err() {
            continue;
        }
        let who = peer(&conn);
        match who {
            Some(p) if access.allows(&p, user_groups) => {}
            _ => {
                let p = who.unwrap_or(Peer {
                    pid: 0,
                    uid: u32::MAX,
                    gid: u32::MAX,
                });
                if let Some(left_out) = refusals.pass(Instant::now()) {
                    let more = if left_out > 0 {
                        format!(" ({left_out} more refused before, not logged)")
                    } else {
                        String::new()
                    };
                    logs.event(
                        "REFUSED",
                        &format!(
                            "Client connection from uid {} gid {} (PID {}) refused: {} may control this supervisor.{more}",
                            p.uid,
                            p.gid,
                            p.pid,
                            access.who()
                        ),
                    );
                }
                turn_away(&mut conn, &access.refusal(&p));
                continue;
            }
        }
        let Some(slot) = gate.enter() else {
            turn_away(
                &mut conn,
                &format!(
                    "[ERROR] The supervisor is busy: {} clients connected; try again later.\n",
                    gate.max()
                ),
            );
            continue;
        };
        let shared = shared.clone();
        let _ = std::thread::Builder::new()
            .name("client".into())
            .spawn(move || {
                let _slot = slot;
                let _ = answer(conn, &shared);
            });
    }
}

/// The one-line answer to a request line that did not come.
fn line_error(e: LineError) -> std::io::Result<&'static str> {
    match e {
        LineError::TooLong => Ok("[ERROR] Request longer than 64 KiB.\n"),
        LineError::TimedOut => Ok("[ERROR] No complete request within 5 s.\n"),
        LineError::Io(e) => Err(e),
    }
}

fn answer(conn: UnixStream, shared: &Shared) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_write_timeout(Some(net::WRITE_TIME))?;
    let mut out = &conn;
    let mut reader = LineReader::new(&conn, net::MAX_CONTROL_REQUEST);
    let line = match reader.read_line(Instant::now() + net::REQUEST_TIME) {
        Ok(Some(line)) => line,
        Ok(None) => return Ok(()),
        Err(e) => return out.write_all(line_error(e)?.as_bytes()),
    };
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
        Request::Cmd(verb, args) if verb == "shutdown" => {
            let keep = args.iter().any(|a| a == proto::KEEP_MODULES);
            if keep {
                shared.stop_keep.store(true, Relaxed);
            } else {
                shared.stop_all.store(true, Relaxed);
            }
            out.write_all(b"0\n")?;
            // The client waits for the end of this connection: it comes when
            // the process exits, after the modules were stopped.
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Request::Cmd(verb, args) => {
            let (wait, names) = proto::split_wait(&args);
            let (code, text) = match wait {
                Some(limit)
                    if matches!(
                        verb.as_str(),
                        "enable" | "start" | "disable" | "stop" | "restart"
                    ) =>
                {
                    change_and_wait(shared, &verb, &names, limit)
                }
                _ => command(shared, &verb, &names),
            };
            format!("{code}\n{text}")
        }
    };
    out.write_all(reply.as_bytes())
}

/// Time the metrics port gives a refused client to read its answer.
const LINGER: Duration = Duration::from_secs(1);

/// Reads (and drops) what a client still sends after its answer, so that
/// closing does not reset the connection before the answer is read.
fn linger(conn: &std::net::TcpStream) {
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut buf = [0u8; 16 * 1024];
    let mut left = 1usize << 20;
    let mut c = conn;
    while left > 0 {
        let rest = deadline.saturating_duration_since(Instant::now());
        if rest.is_zero() || conn.set_read_timeout(Some(rest)).is_err() {
            return;
        }
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn http_answer(out: &std::net::TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    http_send(
        out,
        status,
        "text/plain; version=0.0.4; charset=utf-8",
        "",
        body.as_bytes(),
    )
}

/// One HTTP/1.0 answer; `extra` are more header lines, each ending in CRLF.
fn http_send(
    mut out: &std::net::TcpStream,
    status: &str,
    content_type: &str,
    extra: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    // One write when small: the client sees the whole answer at once.
    let mut all = Vec::with_capacity(head.len() + body.len());
    all.extend_from_slice(head.as_bytes());
    all.extend_from_slice(body);
    out.write_all(&all)
}

/// Reads one request head within 8 KiB and 5 s. A bad, too large or late
/// one, or a method not in `allowed`, is answered here (`None`); otherwise
/// the bytes read and whether the client closed its side.
fn read_http_request(
    conn: &std::net::TcpStream,
    allowed: &[&str],
) -> std::io::Result<Option<(Vec<u8>, bool)>> {
    conn.set_nonblocking(false)?;
    conn.set_write_timeout(Some(net::WRITE_TIME))?;
    let deadline = Instant::now() + net::REQUEST_TIME;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let mut eof = false;
    let mut c = conn;
    loop {
        let head = net::parse_http_head(&buf, eof);
        if let Some((status, body)) = net::http_refusal_for(&head, allowed) {
            http_answer(conn, status, body)?;
            linger(conn);
            return Ok(None);
        }
        if head != net::HttpHead::Incomplete {
            return Ok(Some((buf, eof)));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            http_answer(
                conn,
                "408 Request Timeout",
                "no complete request within 5 s\n",
            )?;
            linger(conn);
            return Ok(None);
        }
        conn.set_read_timeout(Some(left))?;
        let room = (net::MAX_HTTP_HEAD + 1 - buf.len().min(net::MAX_HTTP_HEAD)).min(chunk.len());
        match c.read(&mut chunk[..room]) {
            Ok(0) => eof = true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// One metrics request: its head within 8 KiB and 5 s, then the answer.
fn metrics_client(conn: &std::net::TcpStream, shared: &Shared) -> std::io::Result<()> {
    if read_http_request(conn, &["GET"])?.is_none() {
        return Ok(());
    }
    let body = {
        let st = shared.lock();
        status::prometheus(&st.profiles, &st.views())
    };
    http_answer(conn, "200 OK", &body)
}

/// How long a control request of the status page waits for its change.
const CONTROL_WAIT: Duration = Duration::from_secs(5);

/// Headers of every answer of the status page: nothing cached, nothing
/// sniffed, scripts and styles only from the page's own address.
const PAGE_HEADERS: &str = "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nContent-Security-Policy: default-src 'self'; img-src 'self' data:; frame-ancestors 'none'\r\n";

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One request of the status page (`--http`): the page and its files, the
/// JSON documents, the metrics text, and with `control` the start, stop
/// and restart requests (refused with 403 otherwise).
fn page_client(conn: &std::net::TcpStream, shared: &Shared, control: bool) -> std::io::Result<()> {
    let Some((head, eof)) = read_http_request(conn, &["GET", "POST"])? else {
        return Ok(());
    };
    let net::HttpHead::Request { method, target } = net::parse_http_head(&head, eof) else {
        return Ok(());
    };
    let json = "application/json";
    let text = "text/plain; charset=utf-8";
    let send = |status: &str, ctype: &str, extra: &str, body: &[u8]| {
        http_send(conn, status, ctype, &format!("{PAGE_HEADERS}{extra}"), body)
    };
    let answered = match web::route(method, target) {
        web::Route::Asset { content_type, body } => {
            send("200 OK", content_type, "", body.as_bytes())
        }
        web::Route::Status => {
            let body = {
                let st = shared.lock();
                let info = web::PageInfo {
                    version: env!("CARGO_PKG_VERSION"),
                    pid: std::process::id(),
                    started: &st.started,
                    control,
                    period_s: STATS_PERIOD.as_secs_f64(),
                };
                web::status_json(&info, &st.profiles, &st.views(), &st.history)
            };
            send("200 OK", json, "", body.as_bytes())
        }
        web::Route::History => {
            let body = {
                let st = shared.lock();
                web::history_json(
                    unix_ms(),
                    STATS_PERIOD.as_secs_f64(),
                    &st.views(),
                    &st.history,
                )
            };
            send("200 OK", json, "", body.as_bytes())
        }
        web::Route::Metrics => {
            let body = {
                let st = shared.lock();
                status::prometheus(&st.profiles, &st.views())
            };
            send(
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                "",
                body.as_bytes(),
            )
        }
        web::Route::Control { .. } if !control => send(
            "403 Forbidden",
            text,
            "",
            b"control is disabled: start the supervisor with --http-control\n",
        ),
        web::Route::Control { verb, name } => {
            let names = [name];
            // (The lock is taken and released here: change_and_wait takes it.)
            let known = shared.lock().resolve(&names).map(|_| ());
            if let Err(why) = web::control_allowed(&head) {
                send("403 Forbidden", text, "", why.as_bytes())
            } else if let Err(why) = known {
                let body = serde_json::json!({"ok": false, "message": why}).to_string();
                send("404 Not Found", json, "", body.as_bytes())
            } else {
                let (code, said) = change_and_wait(shared, verb, &names, CONTROL_WAIT);
                let body =
                    serde_json::json!({"ok": code == 0, "message": said.trim_end()}).to_string();
                let status = if code == 0 { "200 OK" } else { "409 Conflict" };
                send(status, json, "", body.as_bytes())
            }
        }
        web::Route::NotFound => send("404 Not Found", text, "", b"not found\n"),
        web::Route::WrongMethod { allow } => send(
            "405 Method Not Allowed",
            text,
            &format!("Allow: {allow}\r\n"),
            format!("only {allow} is served here\n").as_bytes(),
        ),
        web::Route::BadRequest(why) => send("400 Bad Request", text, "", why.as_bytes()),
    };
    answered?;
    if method != "GET" {
        // A body may follow: read it so that closing does not reset the
        // connection before the answer is read.
        linger(conn);
    }
    Ok(())
}

/// Serves HTTP clients with `client`, at most [`net::MAX_CLIENTS`] at once
/// (one thread each); more are answered 503 and closed.
fn serve_http<F>(listener: std::net::TcpListener, shared: Arc<Shared>, client: F)
where
    F: Fn(&std::net::TcpStream, &Shared) -> std::io::Result<()> + Clone + Send + 'static,
{
    let gate = Gate::new(net::MAX_CLIENTS);
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let Some(slot) = gate.enter() else {
            if conn.set_nonblocking(true).is_ok() {
                turn_away(
                    &mut conn,
                    "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 5\r\n\r\n",
                );
            }
            continue;
        };
        let shared = shared.clone();
        let client = client.clone();
        let _ = std::thread::Builder::new()
            .name("http-client".into())
            .spawn(move || {
                let _slot = slot;
                let _ = client(&conn, &shared);
            });
    }
}

/// How long the menu waits for the user's next line.
const MENU_IDLE: Duration = Duration::from_secs(30 * 60);

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
    mut lines: LineReader<&UnixStream>,
    conn: &UnixStream,
    shared: &Shared,
) -> std::io::Result<()> {
    let mut out = conn;
    let mut zeros = 0;
    // The next line of the user at the menu, who may think for a while.
    let mut next = |out: &mut &UnixStream| -> std::io::Result<Option<String>> {
        match lines.read_line(Instant::now() + MENU_IDLE) {
            Ok(line) => Ok(line),
            Err(LineError::TimedOut) => {
                out.write_all(b"\n[INFO] Idle for 30 minutes; closing.\n")?;
                Ok(None)
            }
            Err(e) => {
                out.write_all(line_error(e)?.as_bytes())?;
                Ok(None)
            }
        }
    };
    loop {
        out.write_all(MENU.as_bytes())?;
        let Some(line) = next(&mut out)? else {
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
                    let Some(sel) = next(&mut out)? else {
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
        "enable" | "start" | "disable" | "stop" | "restart" => {
            change(&mut st, verb, args).map(|c| c.text())
        }
        _ => Err(format!("unknown command {verb:?}")),
    };
    match result {
        Ok(text) => (0, text),
        Err(e) => (1, format!("{e}\n")),
    }
}

/// `start`/`stop`/`restart` (and their NEMEA names) on modules and profiles.
fn change(st: &mut State, verb: &str, names: &[String]) -> Result<Changes, String> {
    match verb {
        "enable" | "start" => st.set_enabled(names, true),
        "disable" | "stop" => st.set_enabled(names, false),
        _ => st.restart(names, Instant::now()),
    }
}

/// Seconds for messages: `5`, `0.5`.
fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}", ms / 1000)
    } else {
        format!("{:.1}", d.as_secs_f64())
    }
}

/// A `start`/`stop`/`restart` that answers once every module got there (its
/// process gone, or a new one started), one failed, or `limit` passed.
fn change_and_wait(
    shared: &Shared,
    verb: &str,
    names: &[String],
    limit: Duration,
) -> (i32, String) {
    let deadline = Instant::now() + limit;
    let ch = match change(&mut shared.lock(), verb, names) {
        Ok(ch) => ch,
        Err(e) => return (1, format!("{e}\n")),
    };
    let mut targets = ch.targets.clone();
    let mut seen = std::collections::HashSet::new();
    targets.retain(|t| seen.insert(t.name.clone()));
    let mut done = vec![None; targets.len()];
    loop {
        let mut pending = Vec::new();
        {
            let st = shared.lock();
            for (t, d) in targets.iter().zip(done.iter_mut()) {
                if d.is_some() {
                    continue;
                }
                match st.check(t) {
                    Check::Done(line) => *d = Some(line),
                    Check::Pending(why) => pending.push(why),
                    Check::Failed(why) => return (1, format!("{why}\n")),
                }
            }
        }
        if pending.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return (
                1,
                format!(
                    "timed out after {} s: {}\n",
                    secs(limit),
                    pending.join(", ")
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut text = ch.profile_lines.clone();
    for line in done.into_iter().flatten() {
        text += &line;
        text.push('\n');
    }
    text += &ch.notes;
    (0, text)
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
        let (now, now_ms) = (Instant::now(), unix_ms());
        {
            let mut st = shared.lock();
            let State {
                modules, history, ..
            } = &mut *st;
            for (name, pid, stats, cpu, mem) in results {
                if let Some(m) = modules
                    .iter_mut()
                    .find(|m| m.cfg.name == name && m.pid == pid)
                {
                    if dump {
                        text += &stats_lines(&name, stats.as_ref());
                    }
                    history.record(&name, pid, stats.as_ref(), now, now_ms);
                    m.stats = stats;
                    m.cpu = cpu;
                    m.mem = mem;
                }
            }
            for m in modules.iter().filter(|m| m.pid <= 0) {
                history.record(&m.cfg.name, 0, None, now, now_ms);
            }
            history.retain(|name| modules.iter().any(|m| m.cfg.name == name));
            let live: Vec<i32> = modules.iter().map(|m| m.pid).collect();
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
    fn start_failures_say_what_to_fix() {
        let e = |k| std::io::Error::from(k);
        use std::io::ErrorKind::*;
        assert_eq!(
            spawn_failure("/opt/x/logger", &e(NotFound)),
            "binary missing: /opt/x/logger does not exist"
        );
        assert_eq!(
            spawn_failure("logger", &e(NotFound)),
            "binary missing: logger is not on PATH"
        );
        assert_eq!(
            spawn_failure("/etc/passwd", &e(PermissionDenied)),
            "cannot run /etc/passwd: not executable (permission denied)"
        );
    }

    fn module(enabled: bool) -> Mod {
        let cfg = Module {
            name: "m".into(),
            enabled,
            path: "x".into(),
            params: None,
            module_restarts: None,
            interfaces: vec![],
        };
        Mod::new(cfg, 0, Instant::now())
    }

    #[test]
    fn reasons_for_not_running() {
        let mut m = module(true);
        assert_eq!(m.reason(true).as_deref(), Some("starting"));
        assert_eq!(m.reason(false).as_deref(), Some("profile disabled"));
        m.last = Some("exit status 1".into());
        assert_eq!(
            m.reason(true).as_deref(),
            Some("last run: exit status 1; restarting")
        );
        m.enabled = false;
        assert_eq!(m.reason(true), None);
        m.gave_up = Some("restart limit reached".into());
        assert_eq!(m.reason(true).as_deref(), Some("restart limit reached"));
        m.reenable();
        m.enabled = true;
        m.pid = 42;
        assert_eq!(m.reason(true), None);
        assert_eq!(module(false).reason(false), None);
    }

    #[test]
    fn socket_permission_errors_hint_at_s() {
        let denied = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let default = Path::new(crate::proto::DEFAULT_SOCKET);
        let e = socket_err(default, "cannot create /var/run/nemea-supervisor".into())(denied());
        assert_eq!(
            e.to_string(),
            format!("cannot create /var/run/nemea-supervisor: {}; the default socket needs root: pass -s PATH (e.g. -s /tmp/nemea-supervisor.sock)", denied())
        );
        let e = socket_err(
            Path::new("/root/s.sock"),
            "cannot listen on /root/s.sock".into(),
        )(denied());
        assert!(e
            .to_string()
            .ends_with("; pass -s PATH in a directory you can write to"));
        let other = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let e = socket_err(default, "cannot listen".into())(other);
        assert!(!e.to_string().contains("-s PATH"), "{e}");
    }

    #[test]
    fn log_files_get_their_modes_and_links_are_not_followed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mode = |p: &Path| {
            std::fs::symlink_metadata(p)
                .map(|m| m.permissions().mode() & 0o7777)
                .expect("stat")
        };
        let logs = dir.path().join("a/b");
        create_dir(&logs, LOG_DIR_MODE).expect("create");
        assert_eq!((mode(&dir.path().join("a")), mode(&logs)), (0o750, 0o750));
        let f = logs.join("events");
        drop(open_append(&f, LOG_FILE_MODE).expect("open"));
        assert_eq!(mode(&f), 0o640);
        // A link planted in place of a log file is neither followed for
        // appending nor for the backup.
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").expect("write");
        let link = logs.join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(open_append(&link, LOG_FILE_MODE).is_err());
        write_private(&link, "backup", BACKUP_MODE).expect("backup");
        assert_eq!(
            std::fs::read_to_string(&target).ok().as_deref(),
            Some("keep")
        );
        assert_eq!(mode(&link), 0o600);
        assert_eq!(
            std::fs::read_to_string(&link).ok().as_deref(),
            Some("backup")
        );
    }

    #[test]
    fn the_control_socket_is_private_and_replaces_only_sockets() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sock = dir.path().join("s.sock");
        let l = bind_socket(&sock, None).expect("bind");
        let m = std::fs::symlink_metadata(&sock).expect("stat");
        assert_eq!(m.permissions().mode() & 0o7777, 0o600);
        // Served: a second one refuses.
        let e = bind_socket(&sock, None).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("another supervisor is already serving {}", sock.display())
        );
        drop(l);
        // A stale socket is replaced; a file that is not one is kept.
        drop(bind_socket(&sock, None).expect("rebind"));
        let file = dir.path().join("notes");
        std::fs::write(&file, "keep").expect("write");
        let e = bind_socket(&file, None).unwrap_err().to_string();
        assert!(e.ends_with("exists and is not a socket; remove it or pass another -s PATH"));
        assert!(file.exists());
        // Where anyone could replace it: refused.
        let open = dir.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let e = bind_socket(&open.join("s.sock"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is writable by every user (mode 0777)"), "{e}");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        assert!(bind_socket(&open.join("s.sock"), None).is_ok());
    }

    /// A state with one module in a disabled profile: nothing runs, and
    /// control requests answer at once.
    fn quiet_shared(dir: &Path) -> Shared {
        let opts = Options {
            config: dir.join("none.toml"),
            logs: dir.to_path_buf(),
            socket: dir.join("s.sock"),
            configs_dir: None,
            metrics: None,
            http: None,
            http_control: false,
            control_group: None,
        };
        let mut m = module(true);
        m.cfg.name = "m".into();
        let state = State {
            logs: Logs::new(dir).expect("logs"),
            opts,
            global_restarts: 3,
            profiles: vec![ProfileView {
                name: "P".into(),
                enabled: false,
            }],
            modules: vec![m],
            dying: Vec::new(),
            started: ctime(),
            generated: None,
            history: web::History::default(),
        };
        Shared {
            state: Mutex::new(state),
            reload_requested: AtomicBool::new(false),
            stop_keep: AtomicBool::new(false),
            stop_all: AtomicBool::new(false),
        }
    }

    /// Sends `request` whole, then has the status page answer it on this
    /// thread (so a panic fails the test); returns the answer.
    fn page_answer(
        listener: &std::net::TcpListener,
        shared: &Shared,
        control: bool,
        request: &[u8],
    ) -> Vec<u8> {
        use std::net::{Shutdown, TcpStream};
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        client.write_all(request).expect("send");
        client.shutdown(Shutdown::Write).expect("shutdown");
        let (conn, _) = listener.accept().expect("accept");
        let _ = page_client(&conn, shared, control);
        drop(conn);
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut answer = Vec::new();
        let _ = client.read_to_end(&mut answer);
        answer
    }

    fn status_code(answer: &[u8]) -> u16 {
        let text = String::from_utf8_lossy(answer);
        text.strip_prefix("HTTP/1.0 ")
            .and_then(|t| t.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"))
    }

    #[test]
    fn the_status_page_answers_garbage_without_panicking() {
        let dir = tempfile::tempdir().expect("temp dir");
        let shared = quiet_shared(dir.path());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let ask = |control: bool, req: &str| {
            status_code(&page_answer(&listener, &shared, control, req.as_bytes()))
        };
        // What the page asks for.
        let answer = page_answer(
            &listener,
            &shared,
            false,
            b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        let text = String::from_utf8_lossy(&answer);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let doc: serde_json::Value = serde_json::from_str(body).expect("status JSON");
        assert_eq!(doc["profiles"][0]["modules"][0]["name"], "m");
        assert_eq!(doc["supervisor"]["control"], false);
        assert_eq!(ask(false, "GET / HTTP/1.0\r\n\r\n"), 200);
        assert_eq!(ask(false, "GET /status.js HTTP/1.0\r\n\r\n"), 200);
        assert_eq!(ask(false, "GET /api/history HTTP/1.0\r\n\r\n"), 200);
        assert_eq!(ask(false, "GET /metrics HTTP/1.0\r\n\r\n"), 200);
        assert_eq!(ask(false, "GET /nope HTTP/1.0\r\n\r\n"), 404);
        assert_eq!(ask(false, "PUT / HTTP/1.0\r\n\r\n"), 405);
        assert_eq!(ask(false, "GET /api/stop/m HTTP/1.0\r\n\r\n"), 405);
        // Control: refused unless enabled, and then only from the page.
        let stop = "POST /api/stop/m HTTP/1.1\r\nHost: 127.0.0.1:1\r\nX-Nemea-Control: 1\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(ask(false, stop), 403);
        assert_eq!(ask(true, stop), 200);
        assert!(!shared.lock().modules[0].enabled, "stop was not applied");
        assert_eq!(
            ask(
                true,
                "POST /api/stop/m HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n"
            ),
            403
        );
        assert_eq!(ask(true, &stop.replace("/m ", "/nosuch ")), 404);
        assert_eq!(ask(true, &stop.replace("/m ", "/%zz ")), 400);
        // A start in a disabled profile is said, not waited for.
        let start = page_answer(
            &listener,
            &shared,
            true,
            stop.replace("stop", "start").as_bytes(),
        );
        assert_eq!(status_code(&start), 200);
        assert!(String::from_utf8_lossy(&start).contains("its profile P is disabled"));
        // Oversized and malformed heads.
        let mut big = b"GET / HTTP/1.0\r\n".to_vec();
        big.resize(net::MAX_HTTP_HEAD + 100, b'a');
        assert_eq!(
            status_code(&page_answer(&listener, &shared, true, &big)),
            431
        );
        for bad in [
            "",
            "\r\n\r\n",
            "GET\r\n\r\n",
            "GET / HTTP/1.0",
            "\u{0}\u{1}\n\n",
            "GET /\u{7f} HTTP/1.0\r\n\r\n",
        ] {
            assert_eq!(ask(true, bad), 400, "{bad:?}");
        }
        // Random requests built from the pieces of real ones.
        let pieces: [&[u8]; 16] = [
            b"GET ",
            b"POST ",
            b"/api/",
            b"stop/",
            b"restart/",
            b"%",
            b"%c3%a9",
            b"m",
            b"\r\n",
            b"\n",
            b" HTTP/1.1",
            b"Host: 127.0.0.1",
            b"X-Nemea-Control: 1",
            b"Origin: http://",
            b"\xff\x00",
            b"?x#y",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1500 {
            let mut req = Vec::new();
            for _ in 0..next() % 24 {
                req.extend_from_slice(pieces[(next() % 16) as usize]);
            }
            if next() % 2 == 0 {
                req.extend_from_slice(b"\r\n\r\n");
            }
            let code = status_code(&page_answer(&listener, &shared, next() % 2 == 0, &req));
            assert!(
                [200, 400, 403, 404, 405, 409].contains(&code),
                "{code} for {:?}",
                String::from_utf8_lossy(&req)
            );
            seen.insert(code);
        }
        // The pieces reach past the head parser into the routing.
        assert!(seen.len() >= 3, "only {seen:?}");
        eprintln!("answers to random requests: {seen:?}");
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
