//! Test kit for the integration tests: finds the module binaries, gives each
//! test its own directory and `TRAP_SOCKET_DIR`, runs pipelines.
//!
//! The binaries must be built first (`cargo build --workspace --bins`, as the
//! README's test command does).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The directory holding the workspace's binaries of the current profile.
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("NEMEA_BIN_DIR") {
        return PathBuf::from(d);
    }
    // target/<profile>/deps/<test-binary> → target/<profile>
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Path of a module binary; fails with a hint when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        p.display()
    );
    p
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/data/REL` next to the repository. Outside CI a missing data set
/// skips the test with one printed line (`None`); under `CI=true` it is
/// required, so CI cannot pass by skipping.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let p = repo_root().join("../shared/data").join(rel);
    if p.exists() {
        return Some(p);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "../shared/data/{rel} is missing next to the repository (required under CI=true)"
    );
    eprintln!("skipped: ../shared/data/{rel} is missing next to the repository");
    None
}

/// A per-test directory, also used as `TRAP_SOCKET_DIR`.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("nemea-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A command for module `name`, running in the sandbox.
    pub fn cmd(&self, name: &str) -> Command {
        let mut c = Command::new(bin(name));
        c.current_dir(self.dir.path())
            .env("TRAP_SOCKET_DIR", self.dir.path())
            .env("TZ", "UTC");
        c
    }

    /// Runs a module to completion (at most `limit`), returning its output.
    pub fn run(&self, name: &str, args: &[&str]) -> Output {
        let child = self
            .cmd(name)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn module");
        wait_output(child, Duration::from_secs(60), name)
    }

    /// Starts a module in the background with piped stdout/stderr.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Child {
        self.cmd(name)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn module")
    }

    /// Waits until the unix socket of output `name` exists.
    pub fn wait_socket(&self, name: &str) {
        let p = self.path(&format!("trap-{name}.sock"));
        let start = Instant::now();
        while !p.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "socket {} never appeared",
                p.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Waits until something listens on TCP port `port` of 127.0.0.1 (a
/// connection is made and closed: the listener sees one empty session).
pub fn wait_tcp_listening(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing listens on TCP port {port}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until a socket is bound to UDP port `port` (IPv4 or IPv6), as
/// /proc/net/udp{,6} tell: datagrams sent before are lost.
pub fn wait_udp_bound(port: u16) {
    let needle = format!(":{port:04X} ");
    let start = Instant::now();
    loop {
        let bound = ["/proc/net/udp", "/proc/net/udp6"].iter().any(|f| {
            std::fs::read_to_string(f).is_ok_and(|t| {
                t.lines()
                    .filter_map(|l| l.split_whitespace().nth(1))
                    .any(|local| format!("{local} ").ends_with(&needle))
            })
        });
        if bound {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing bound to UDP port {port}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

/// Waits for a child with a time limit (killing it when exceeded), reading
/// its pipes meanwhile so that it never blocks on a full pipe.
pub fn wait_output(child: Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("collect output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let out = rx.recv().ok().and_then(Result::ok);
            panic!(
                "{what} did not finish within {limit:?}; stderr:\n{}",
                out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default()
            );
        }
    }
}

/// Asserts success and returns stdout as text.
pub fn ok_stdout(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends SIGINT to a child.
pub fn interrupt(child: &Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
}

/// Whether the tests run under CI (`CI=true`), where a missing tool or
/// privilege fails a test instead of skipping it.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Runs a command quietly: did it succeed?
pub fn sh(args: &[&str]) -> bool {
    let Some((prog, rest)) = args.split_first() else {
        return false;
    };
    Command::new(prog)
        .args(rest)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Root and `tools` on PATH; else a skip with one line (a failure under
/// CI=true, where scripts/setup.sh has installed them).
pub fn prerequisites(tools: &[&str]) -> bool {
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|t| !sh(&["sh", "-c", &format!("command -v {t}")]))
        .map(|t| t.to_string())
        .collect();
    if !is_root() {
        missing.push("root".into());
    }
    if missing.is_empty() {
        return true;
    }
    assert!(
        !ci(),
        "required under CI=true: {} (scripts/setup.sh installs the tools)",
        missing.join(", ")
    );
    eprintln!("skipped: needs {}", missing.join(", "));
    false
}
