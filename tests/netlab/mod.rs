//! Shared by tests/sflow.rs and tests/trigger.rs: two network namespaces
//! joined by a veth pair, background processes killed on drop, pcap files
//! read back, service counters asked for.
#![allow(dead_code)]

use nemea_rs::{bin, Sandbox};
pub use nemea_rs::{ci, is_root, sh};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Whether `tool` is on PATH (required under CI=true).
pub fn have(tool: &str) -> bool {
    let ok = sh(&["sh", "-c", &format!("command -v {tool}")]);
    if !ok {
        assert!(
            !ci(),
            "{tool} is required under CI=true (scripts/setup.sh installs it)"
        );
        eprintln!("skipped: {tool} is missing");
    }
    ok
}

/// The local side's address and interface, and the peer's.
pub const LOCAL_IP: &str = "198.51.100.1";
pub const LOCAL_IF: &str = "tgl0";
pub const PEER_IP: &str = "198.51.100.2";
pub const PEER_IF: &str = "tgr0";

/// Namespaces `tg-<what>-<pid>-<n>-l` (the local host, LOCAL_IP on
/// LOCAL_IF) and `…-r` (the peer, PEER_IP and any `extra` /32 addresses,
/// routed from the local side through PEER_IP), IPv6 off so that the link
/// carries only what a test sends. Deleted on drop.
pub struct Lab {
    pub local: String,
    pub peer: String,
}

impl Lab {
    /// `None` (one printed line) where namespaces cannot be made; under
    /// CI=true that fails.
    pub fn create(what: &str, extra: &[&str]) -> Option<Lab> {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "tg-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Lab {
            local: format!("{tag}-l"),
            peer: format!("{tag}-r"),
        };
        match lab.set_up(extra) {
            Ok(()) => Some(lab),
            Err(why) => {
                drop(lab);
                assert!(
                    !ci(),
                    "network namespaces are required under CI=true: {why}"
                );
                eprintln!("skipped: cannot create network namespaces here ({why})");
                None
            }
        }
    }

    fn set_up(&self, extra: &[&str]) -> Result<(), String> {
        let (l, r) = (self.local.as_str(), self.peer.as_str());
        let local_addr = format!("{LOCAL_IP}/24");
        let peer_addr = format!("{PEER_IP}/24");
        let mut steps: Vec<Vec<String>> = Vec::new();
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        steps.push(v(&["ip", "netns", "add", l]));
        steps.push(v(&["ip", "netns", "add", r]));
        for ns in [l, r] {
            steps.push(v(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]));
            steps.push(v(&["ip", "-n", ns, "link", "set", "lo", "up"]));
        }
        steps.push(v(&[
            "ip", "-n", l, "link", "add", LOCAL_IF, "type", "veth", "peer", "name", PEER_IF,
            "netns", r,
        ]));
        steps.push(v(&[
            "ip",
            "-n",
            l,
            "addr",
            "add",
            &local_addr,
            "dev",
            LOCAL_IF,
        ]));
        steps.push(v(&[
            "ip", "-n", r, "addr", "add", &peer_addr, "dev", PEER_IF,
        ]));
        for a in extra {
            steps.push(v(&[
                "ip",
                "-n",
                r,
                "addr",
                "add",
                &format!("{a}/32"),
                "dev",
                PEER_IF,
            ]));
        }
        steps.push(v(&["ip", "-n", l, "link", "set", LOCAL_IF, "up"]));
        steps.push(v(&["ip", "-n", r, "link", "set", PEER_IF, "up"]));
        if !extra.is_empty() {
            steps.push(v(&[
                "ip",
                "-n",
                l,
                "route",
                "add",
                "203.0.113.0/24",
                "via",
                PEER_IP,
            ]));
        }
        for s in &steps {
            let a: Vec<&str> = s.iter().map(String::as_str).collect();
            if !sh(&a) {
                return Err(format!("`{}` failed", a.join(" ")));
            }
        }
        Ok(())
    }

    /// A command run in namespace `ns`, in the sandbox (its
    /// TRAP_SOCKET_DIR). `ip netns exec` execs the program: the child's id
    /// is the program's.
    pub fn cmd(&self, ns: &str, sb: &Sandbox, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .current_dir(sb.dir.path())
            .env("TRAP_SOCKET_DIR", sb.dir.path())
            .env("TZ", "UTC")
            .stdin(Stdio::null());
        c
    }

    /// Runs `program` in `ns` to its end; panics when it fails.
    pub fn run(&self, ns: &str, sb: &Sandbox, program: &str, args: &[&str]) {
        let out = self
            .cmd(ns, sb, program, args)
            .output()
            .expect("run in namespace");
        assert!(
            out.status.success(),
            "`{program} {}` in {ns} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `count` pings from the local side to `to`, `gap` seconds apart.
    pub fn ping(&self, sb: &Sandbox, to: &str, count: u32, gap: &str) {
        let n = count.to_string();
        self.run(
            &self.local,
            sb,
            "ping",
            &["-q", "-c", &n, "-i", gap, "-W", "2", to],
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        sh(&["ip", "netns", "del", &self.local]);
        sh(&["ip", "netns", "del", &self.peer]);
    }
}

/// A program in the background, its stderr (and stdout) in a file of the
/// sandbox; killed by its id if still running when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
    done: Option<ExitStatus>,
}

impl Proc {
    pub fn start(mut c: Command, sb: &Sandbox, name: &str) -> Proc {
        let log = sb.path(&format!("{name}.log"));
        let f = std::fs::File::create(&log).expect("log file");
        c.stdout(f.try_clone().expect("log file")).stderr(f);
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.into(),
            child,
            log,
            done: None,
        }
    }

    /// A module of this repository, in the sandbox (root namespace).
    pub fn module(sb: &Sandbox, name: &str, args: &[&str]) -> Proc {
        let mut c = sb.cmd(name);
        c.args(args).stdin(Stdio::null());
        Proc::start(c, sb, name)
    }

    /// A module of this repository in namespace `ns`.
    pub fn module_in(lab: &Lab, ns: &str, sb: &Sandbox, name: &str, args: &[&str]) -> Proc {
        let c = lab.cmd(ns, sb, &bin(name).display().to_string(), args);
        Proc::start(c, sb, name)
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `what`.
    pub fn wait_log(&mut self, what: &str, limit: Duration) {
        let start = Instant::now();
        while !self.text().contains(what) {
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!(
                    "{} ended ({s}) before saying {what:?}:\n{}",
                    self.name,
                    self.text()
                );
            }
            assert!(
                start.elapsed() < limit,
                "{} did not say {what:?} within {limit:?}:\n{}",
                self.name,
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` and waits (at most `limit`) for the end.
    pub fn stop_with(&mut self, signal: &str, limit: Duration) -> ExitStatus {
        if let Some(s) = self.done {
            return s;
        }
        sh(&["kill", &format!("-{signal}"), &self.id().to_string()]);
        let start = Instant::now();
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.done = Some(s);
                return s;
            }
            assert!(
                start.elapsed() < limit,
                "{} did not stop within {limit:?} of SIG{signal}:\n{}",
                self.name,
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with("INT", Duration::from_secs(5))
    }

    /// The module's service-interface counters (`"counters"` object).
    pub fn counters(&self, sb: &Sandbox) -> serde_json::Value {
        let path = sb.path(&format!("trap-service_{}.sock", self.id()));
        let start = Instant::now();
        loop {
            if let Ok(text) = libtrap::service::query(&path) {
                let v: serde_json::Value = serde_json::from_str(&text).expect("service JSON");
                return v["counters"].clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "no service interface at {}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `counter` reaches at least `n`.
    pub fn wait_counter(&self, sb: &Sandbox, counter: &str, n: u64, limit: Duration) {
        let start = Instant::now();
        loop {
            let c = self.counters(sb);
            if c[counter].as_u64().unwrap_or(0) >= n {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "{}: {counter} did not reach {n} within {limit:?} ({c}):\n{}",
                self.name,
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.done.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The frames of a classic pcap file (little-endian, as libpcap writes
/// here): (seconds, microseconds, bytes).
pub fn pcap_frames(path: &Path) -> Vec<(u32, u32, Vec<u8>)> {
    let d = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(d.len() >= 24, "{}: no pcap header", path.display());
    assert_eq!(
        &d[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "{}: not a pcap",
        path.display()
    );
    let u = |at: usize| u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= d.len() {
        let caplen = u(at + 8) as usize;
        assert!(
            at + 16 + caplen <= d.len(),
            "{}: a truncated record",
            path.display()
        );
        out.push((u(at), u(at + 4), d[at + 16..at + 16 + caplen].to_vec()));
        at += 16 + caplen;
    }
    assert_eq!(
        at,
        d.len(),
        "{}: bytes after the last record",
        path.display()
    );
    out
}

/// Waits until `cond` holds (checked every 50 ms).
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
