//! session_probe in network namespaces the tests make: two namespaces
//! `eb-sp-<pid>-<n>-{a,b}` joined by a veth pair (IPv6 off, so the link is
//! quiet unless a test sends something), the probe on side a, tcpdump beside
//! it, and the features compared with tshark's view of the same capture.
//! Root, iperf3, tcpdump, tshark and python3 are needed (skipped with one
//! line outside CI, required under `CI=true`).

use nemea_rs::{bin, interrupt, ok_stdout, Sandbox};
use nemea_rs::{ci, prerequisites, sh};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const A_IP: &str = "198.51.100.1";
const B_IP: &str = "198.51.100.2";
const IF_A: &str = "ebspa0";
const IF_B: &str = "ebspb0";

/// Two namespaces joined by a veth pair; deleted on drop.
struct Lab {
    a: String,
    b: String,
}

impl Lab {
    fn create() -> Option<Lab> {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "eb-sp-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Lab {
            a: format!("{tag}-a"),
            b: format!("{tag}-b"),
        };
        let (a, b) = (lab.a.clone(), lab.b.clone());
        let (a, b) = (a.as_str(), b.as_str());
        let a_addr = format!("{A_IP}/24");
        let b_addr = format!("{B_IP}/24");
        let mut steps: Vec<Vec<&str>> =
            vec![vec!["ip", "netns", "add", a], vec!["ip", "netns", "add", b]];
        for ns in [a, b] {
            steps.push(vec![
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
        }
        steps.extend([
            vec![
                "ip", "-n", a, "link", "add", IF_A, "type", "veth", "peer", "name", IF_B, "netns",
                b,
            ],
            vec!["ip", "-n", a, "addr", "add", &a_addr, "dev", IF_A],
            vec!["ip", "-n", b, "addr", "add", &b_addr, "dev", IF_B],
            vec!["ip", "-n", a, "link", "set", IF_A, "up"],
            vec!["ip", "-n", b, "link", "set", IF_B, "up"],
            vec!["ip", "-n", a, "link", "set", "lo", "up"],
            vec!["ip", "-n", b, "link", "set", "lo", "up"],
        ]);
        for s in &steps {
            if !sh(s) {
                let what = s.join(" ");
                drop(lab);
                assert!(!ci(), "`{what}` failed (required under CI=true)");
                eprintln!("skipped: `{what}` failed");
                return None;
            }
        }
        Some(lab)
    }

    fn cmd(&self, ns: &str, prog: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, prog])
            .args(args)
            .env("TZ", "UTC");
        c
    }

    fn run(&self, ns: &str, prog: &str, args: &[&str]) {
        let out = self
            .cmd(ns, prog, args)
            .stdin(Stdio::null())
            .output()
            .expect("run in namespace");
        assert!(
            out.status.success(),
            "{prog} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// session_probe on side a, in the sandbox.
    fn probe(&self, sb: &Sandbox, args: &[&str]) -> Bg {
        let mut c = self.cmd(&self.a, bin("session_probe").to_str().unwrap(), args);
        c.current_dir(sb.dir.path())
            .env("TRAP_SOCKET_DIR", sb.dir.path());
        Bg::start(c, "session_probe")
    }

    /// tcpdump beside the probe, ready when it returns.
    fn tcpdump(&self, file: &std::path::Path) -> Bg {
        let c = self.cmd(
            &self.a,
            "tcpdump",
            &[
                "-i",
                IF_A,
                "-s",
                "128",
                "-B",
                "16384",
                "-U",
                "--immediate-mode",
                "-w",
                file.to_str().unwrap(),
            ],
        );
        let mut t = Bg::start(c, "tcpdump");
        t.wait_err("listening on", Duration::from_secs(10));
        t
    }

    /// A TCP session opened before the probe starts: a server on B:700
    /// echoes; the client connects and exchanges one message at once, then
    /// waits for `go`, exchanges 20 more, and keeps the connection idle
    /// until `end`.
    fn old_session(&self, sb: &Sandbox) -> (Bg, Bg) {
        let server = r#"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 700)); s.listen(1); print("ready", flush=True)
c, _ = s.accept()
while True:
    d = c.recv(4096)
    if not d: break
    c.sendall(d)
"#;
        let client = r#"
import socket, sys, os, time
go, end = sys.argv[1], sys.argv[2]
s = socket.create_connection((sys.argv[3], 700))
s.sendall(b"x" * 100); s.recv(4096)
print("connected", flush=True)
while not os.path.exists(go): time.sleep(0.01)
for _ in range(20):
    s.sendall(b"y" * 100); s.recv(4096); time.sleep(0.02)
print("done", flush=True)
while not os.path.exists(end): time.sleep(0.05)
"#;
        let mut srv = Bg::start(self.cmd(&self.b, "python3", &["-c", server]), "echo server");
        srv.wait_out("ready", Duration::from_secs(10));
        let go = sb.path("go");
        let end = sb.path("end");
        let mut cl = Bg::start(
            self.cmd(
                &self.a,
                "python3",
                &[
                    "-c",
                    client,
                    go.to_str().unwrap(),
                    end.to_str().unwrap(),
                    B_IP,
                ],
            ),
            "echo client",
        );
        cl.wait_out("connected", Duration::from_secs(10));
        (srv, cl)
    }

    /// iperf3 from a to b (`extra`: e.g. `-u -b 2M`), server started and
    /// stopped around it.
    fn iperf3(&self, extra: &[&str]) {
        let mut srv = Bg::start(
            self.cmd(
                &self.b,
                "iperf3",
                &["-s", "-1", "-p", "5201", "--forceflush"],
            ),
            "iperf3 -s",
        );
        srv.wait_out("Server listening", Duration::from_secs(10));
        let mut args = vec!["-c", B_IP, "-p", "5201"];
        args.extend_from_slice(extra);
        self.run(&self.a, "iperf3", &args);
        srv.wait(Duration::from_secs(10));
    }

    fn ping(&self, n: u32) {
        let n = n.to_string();
        self.run(&self.a, "ping", &["-c", &n, "-i", "0.2", "-W", "2", B_IP]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        sh(&["ip", "netns", "del", &self.a]);
        sh(&["ip", "netns", "del", &self.b]);
    }
}

/// A background process with its output lines collected; killed on drop.
struct Bg {
    name: String,
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    err_all: Arc<Mutex<Vec<String>>>,
}

impl Bg {
    fn start(mut c: Command, name: &str) -> Bg {
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let err_all = Arc::new(Mutex::new(Vec::new()));
        fn reader(
            r: impl std::io::Read + Send + 'static,
            keep: Option<Arc<Mutex<Vec<String>>>>,
        ) -> mpsc::Receiver<String> {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(line) = line else { break };
                    if let Some(k) = &keep {
                        k.lock().unwrap().push(line.clone());
                    }
                    let _ = tx.send(line);
                }
            });
            rx
        }
        let out = reader(child.stdout.take().unwrap(), None);
        let err = reader(child.stderr.take().unwrap(), Some(err_all.clone()));
        Bg {
            name: name.into(),
            child,
            out,
            err,
            err_all,
        }
    }

    fn stderr(&self) -> String {
        self.err_all.lock().unwrap().join("\n")
    }

    fn wait_line(&self, rx: &mpsc::Receiver<String>, want: &str, limit: Duration) -> String {
        let until = Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(want) => return l,
                Ok(_) => {}
                Err(_) => panic!(
                    "{}: no line with `{want}` within {limit:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                ),
            }
        }
    }

    fn wait_out(&mut self, want: &str, limit: Duration) -> String {
        self.wait_line(&self.out, want, limit)
    }

    fn wait_err(&mut self, want: &str, limit: Duration) -> String {
        self.wait_line(&self.err, want, limit)
    }

    /// Waits for the exit; kills after `limit`.
    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let until = Instant::now() + limit;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!(
                    "{} still running after {limit:?}: {}",
                    self.name,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGINT, then a successful exit; how long it took.
    fn stop(&mut self) -> Duration {
        let sent = Instant::now();
        interrupt(&self.child);
        let s = self.wait(Duration::from_secs(5));
        let took = sent.elapsed();
        // Let the reader threads take the last lines.
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            s.success(),
            "{} exited with {s}: {}",
            self.name,
            self.stderr()
        );
        took
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

type Rec = HashMap<String, String>;

/// The records of a trapcap file, through `logger -t`.
fn records(sb: &Sandbox, file: &str) -> Vec<Rec> {
    let text = ok_stdout(
        &sb.run("logger", &["-t", "-i", &format!("f:{file}")]),
        "logger",
    );
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let names: Vec<&str> = header
        .split(',')
        .map(|f| f.rsplit(' ').next().unwrap_or(f))
        .collect();
    lines
        .map(|l| {
            names
                .iter()
                .zip(l.split(','))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn num(r: &Rec, f: &str) -> u64 {
    r.get(f)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("field {f} missing or not a number in {r:?}"))
}

/// (ip, port) of one end.
type End = (String, u16);

/// Directional frame and byte counts, exact, from tshark's dissection of
/// the capture: (src end, dst end, proto) → (frames, bytes).
fn tshark_directions(pcap: &std::path::Path) -> BTreeMap<(End, End, u8), (u64, u64)> {
    let out = Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-T",
            "fields",
            "-E",
            "separator=,",
        ])
        .args(["-E", "occurrence=f"])
        .args(["-e", "ip.src", "-e", "ip.dst", "-e", "ip.proto"])
        .args(["-e", "tcp.srcport", "-e", "tcp.dstport"])
        .args(["-e", "udp.srcport", "-e", "udp.dstport", "-e", "frame.len"])
        .stderr(Stdio::null())
        .output()
        .expect("tshark");
    assert!(out.status.success(), "tshark failed");
    let mut m = BTreeMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() < 8 || f[0].is_empty() {
            continue;
        }
        let proto: u8 = f[2].parse().unwrap_or(0);
        let port = |s: &str| s.parse::<u16>().unwrap_or(0);
        let (sp, dp) = match proto {
            6 => (port(f[3]), port(f[4])),
            17 => (port(f[5]), port(f[6])),
            _ => (0, 0),
        };
        let len: u64 = f[7].parse().unwrap_or(0);
        let e = m
            .entry(((f[0].to_string(), sp), (f[1].to_string(), dp), proto))
            .or_insert((0, 0));
        e.0 += 1;
        e.1 += len;
    }
    m
}

/// tshark's conversation table (`-z conv,tcp|udp`): (end A, end B) →
/// (frames A→B, frames B→A, bytes text A→B, bytes text B→A).
fn tshark_conv(pcap: &std::path::Path, kind: &str) -> Vec<(End, End, u64, u64, String, String)> {
    let out = Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-q",
            "-z",
            &format!("conv,{kind}"),
        ])
        .stderr(Stdio::null())
        .output()
        .expect("tshark");
    assert!(out.status.success(), "tshark -z conv,{kind} failed");
    let end = |s: &str| -> End {
        let (ip, port) = s.rsplit_once(':').expect("ip:port");
        (ip.to_string(), port.parse().expect("port"))
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("<->"))
        .map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            // A <-> B | frames bytes unit (B→A) | frames bytes unit (A→B) | …
            (
                end(t[0]),
                end(t[2]),
                t[6].replace(',', "").parse().expect("frames"),
                t[3].replace(',', "").parse().expect("frames"),
                format!("{} {}", t[7], t[8]),
                format!("{} {}", t[4], t[5]),
            )
        })
        .collect()
}

/// Does an exact byte count print as tshark's `N unit`?
fn bytes_text_matches(exact: u64, text: &str) -> bool {
    let (n, unit) = text.split_once(' ').unwrap_or((text, ""));
    let n: f64 = n.replace(',', "").parse().unwrap_or(-1.0);
    let scale = match unit {
        "bytes" => return n == exact as f64,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => return false,
    };
    (exact as f64 / scale - n).abs() <= 1.0
}

/// Mining records summed over the windows per session:
/// (server, client, proto) → (pkts server, pkts client, bits server, bits client).
fn mining_sums(recs: &[Rec]) -> BTreeMap<(End, End, u8), [u64; 4]> {
    let mut m = BTreeMap::new();
    for r in recs {
        let k = (
            (r["SERVER_IP"].clone(), num(r, "SERVER_PORT") as u16),
            (r["CLIENT_IP"].clone(), num(r, "CLIENT_PORT") as u16),
            num(r, "PROTOCOL") as u8,
        );
        let e = m.entry(k).or_insert([0u64; 4]);
        e[0] += num(r, "N_PACKETS_SERVER");
        e[1] += num(r, "N_PACKETS_CLIENT");
        e[2] += num(r, "N_BITS_SERVER");
        e[3] += num(r, "N_BITS_CLIENT");
    }
    m
}

#[test]
fn ebpf_session_features_equal_tsharks_conversations_over_windows() {
    if !prerequisites(&["iperf3", "tcpdump", "tshark", "python3"]) {
        return;
    }
    let Some(lab) = Lab::create() else { return };
    let sb = Sandbox::new();
    let (mut srv, mut cl) = lab.old_session(&sb);
    let pcap = sb.path("cap.pcap");
    let mut dump = lab.tcpdump(&pcap);
    let mut probe = lab.probe(
        &sb,
        &[
            "-I",
            IF_A,
            "-w",
            "0.4",
            "-i",
            "f:ddos.trapcap,f:mining.trapcap",
        ],
    );
    probe.wait_err("probing", Duration::from_secs(10));
    std::fs::write(sb.path("go"), b"").unwrap();
    cl.wait_out("done", Duration::from_secs(20));
    lab.iperf3(&["-t", "1", "-b", "40M"]);
    lab.iperf3(&["-u", "-t", "1", "-b", "2M"]);
    lab.ping(3);
    std::thread::sleep(Duration::from_millis(300));
    // The last window is drained and sent at once (0.5 s, with a margin for load).
    let took = probe.stop();
    assert!(took < Duration::from_millis(1000), "stopped in {took:?}");
    dump.stop();
    std::fs::write(sb.path("end"), b"").unwrap();
    cl.wait(Duration::from_secs(5));
    drop(srv.child.kill());

    let mining = records(&sb, "mining.trapcap");
    let ddos = records(&sb, "ddos.trapcap");
    let sums = mining_sums(&mining);
    let dirs = tshark_directions(&pcap);
    let conv: Vec<_> = [("tcp", 6u8), ("udp", 17)]
        .into_iter()
        .flat_map(|(kind, proto)| {
            tshark_conv(&pcap, kind)
                .into_iter()
                .map(move |c| (proto, c))
        })
        .collect();
    // Sessions: old echo, iperf3 TCP control + data, UDP control + data.
    assert_eq!(conv.len(), 5, "tshark's conversations: {conv:?}");
    assert_eq!(sums.len(), 5, "sessions: {sums:?}");
    for (proto, (a, b, f_ab, f_ba, t_ab, t_ba)) in &conv {
        let proto = *proto;
        // The server is on side b (198.51.100.2) in every session here.
        let (server, client, s2c, c2s) = if a.0 == B_IP {
            (a, b, f_ab, f_ba)
        } else {
            (b, a, f_ba, f_ab)
        };
        let got = sums
            .get(&(server.clone(), client.clone(), proto))
            .unwrap_or_else(|| panic!("no session {server:?} ← {client:?}: {sums:?}"));
        assert_eq!(
            (got[0], got[1]),
            (*s2c, *c2s),
            "packets of {server:?} ↔ {client:?}"
        );
        let bytes_s = dirs[&(server.clone(), client.clone(), proto)];
        let bytes_c = dirs[&(client.clone(), server.clone(), proto)];
        assert_eq!((bytes_s.0, bytes_c.0), (*s2c, *c2s));
        assert_eq!(
            (got[2], got[3]),
            (bytes_s.1 * 8, bytes_c.1 * 8),
            "bits of {server:?} ↔ {client:?}"
        );
        let (t_s, t_c) = if a.0 == B_IP {
            (t_ab, t_ba)
        } else {
            (t_ba, t_ab)
        };
        assert!(
            bytes_text_matches(bytes_s.1, t_s),
            "{} vs tshark {t_s}",
            bytes_s.1
        );
        assert!(
            bytes_text_matches(bytes_c.1, t_c),
            "{} vs tshark {t_c}",
            bytes_c.1
        );
    }
    // Several windows, and the TCP data session spans more than one.
    let windows: BTreeSet<u64> = mining.iter().map(|r| num(r, "WINDOW_ID")).collect();
    assert!(windows.len() >= 3, "windows {windows:?}");
    let mut per_session: BTreeMap<(String, String), Vec<&Rec>> = BTreeMap::new();
    for r in &mining {
        per_session
            .entry((r["CLIENT_PORT"].clone(), r["PROTOCOL"].clone()))
            .or_default()
            .push(r);
    }
    assert!(
        per_session.values().any(|v| v.len() >= 2),
        "no session spans two windows"
    );
    for ((port, proto), recs) in &per_session {
        let first = recs.iter().min_by_key(|r| num(r, "WINDOW_ID")).unwrap();
        let method = num(first, "SERVER_ID_METHOD");
        let server_port = num(first, "SERVER_PORT");
        if server_port == 700 {
            // Opened before the probe: no SYN, the port rules (700 < 1024).
            for r in recs {
                assert!(
                    matches!(num(r, "SERVER_ID_METHOD"), 2 | 3),
                    "old session {r:?}"
                );
            }
        } else if proto == "6" {
            assert_eq!(
                method, 1,
                "TCP session from {port}: SYN seen in its first window"
            );
            assert_eq!(server_port, 5201);
        } else {
            // UDP to 5201 from an ephemeral port: the lower port.
            assert_eq!((method, server_port), (4, 5201), "UDP session {first:?}");
        }
        for r in recs {
            assert_eq!(r["SERVER_IP"], B_IP);
        }
    }
    // DDoS features: per direction and window, within the quota; ICMP too.
    for r in &ddos {
        assert!(num(r, "PACKETS") <= 16, "quota: {r:?}");
    }
    let icmp: Vec<&Rec> = ddos.iter().filter(|r| r["PROTOCOL"] == "1").collect();
    let icmp_pkts: u64 = icmp.iter().map(|r| num(r, "PACKETS")).sum();
    let tshark_icmp: u64 = dirs
        .iter()
        .filter(|((_, _, p), _)| *p == 1)
        .map(|(_, v)| v.0)
        .sum();
    assert_eq!((icmp_pkts, tshark_icmp), (6, 6), "{icmp:?}");
    assert!(probe.stderr().contains("refused: 0 sessions"));
}

/// The record fields that do not depend on when each data plane read the clock.
fn timeless(recs: &[Rec]) -> Vec<Vec<(String, String)>> {
    let mut v: Vec<Vec<(String, String)>> = recs
        .iter()
        .map(|r| {
            let mut f: Vec<(String, String)> = r
                .iter()
                .filter(|(k, _)| !k.starts_with("TIME_"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            f.sort();
            f
        })
        .collect();
    v.sort();
    v
}

#[test]
fn userspace_mode_gives_the_same_records_as_the_ebpf_path() {
    if !prerequisites(&["iperf3", "tcpdump", "python3"]) {
        return;
    }
    let Some(lab) = Lab::create() else { return };
    let sb = Sandbox::new();
    let pcap = sb.path("cap.pcap");
    let mut dump = lab.tcpdump(&pcap);
    let common = ["-w", "60", "--packets-per-session", "5"];
    let mut args = vec!["-I", IF_A, "-i", "f:ddos-k.trapcap,f:mining-k.trapcap"];
    args.extend(common);
    let mut kernel = lab.probe(&sb, &args);
    kernel.wait_err("probing", Duration::from_secs(10));
    let mut args = vec![
        "--userspace",
        "-I",
        IF_A,
        "-i",
        "f:ddos-u.trapcap,f:mining-u.trapcap",
    ];
    args.extend(common);
    let mut user = lab.probe(&sb, &args);
    user.wait_err("probing", Duration::from_secs(10));
    // libpcap's socket is live once the line is printed; give it a moment.
    std::thread::sleep(Duration::from_millis(200));
    lab.iperf3(&["-n", "2M", "-b", "20M"]);
    lab.iperf3(&["-u", "-n", "64K", "-b", "1M"]);
    lab.ping(2);
    std::thread::sleep(Duration::from_millis(300));
    let took = kernel.stop();
    assert!(
        took < Duration::from_millis(1000),
        "eBPF mode stopped in {took:?}"
    );
    let took = user.stop();
    assert!(
        took < Duration::from_millis(1000),
        "user space stopped in {took:?}"
    );
    dump.stop();
    let mut args = vec![
        "--userspace".to_string(),
        "-r".into(),
        pcap.to_str().unwrap().into(),
        "-i".into(),
        "f:ddos-r.trapcap,f:mining-r.trapcap".into(),
    ];
    args.extend(common.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok_stdout(&sb.run("session_probe", &args), "session_probe -r");
    for kind in ["ddos", "mining"] {
        let k = timeless(&records(&sb, &format!("{kind}-k.trapcap")));
        let u = timeless(&records(&sb, &format!("{kind}-u.trapcap")));
        let r = timeless(&records(&sb, &format!("{kind}-r.trapcap")));
        assert!(k.len() >= 4, "{kind}: {k:?}");
        assert_eq!(k, u, "{kind}: eBPF vs user space live");
        assert_eq!(k, r, "{kind}: eBPF vs user space from tcpdump's capture");
    }
    // The quota held: 5 packets per session, so at most 5 per direction.
    for r in records(&sb, "ddos-k.trapcap") {
        assert!(num(&r, "PACKETS") <= 5);
    }
}

#[test]
fn a_full_session_table_counts_the_surplus_until_the_next_window() {
    if !prerequisites(&["python3"]) {
        return;
    }
    let Some(lab) = Lab::create() else { return };
    let sb = Sandbox::new();
    // A UDP sink on 10 ports of b (so no ICMP errors come back).
    let sink = r#"
import socket, select
ss = []
for p in range(6000, 6010):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", p)); ss.append(s)
print("ready", flush=True)
while True:
    for s in select.select(ss, [], [])[0]: s.recv(2048)
"#;
    let mut srv = Bg::start(lab.cmd(&lab.b, "python3", &["-c", sink]), "udp sink");
    srv.wait_out("ready", Duration::from_secs(10));
    let send = |ports: &str| {
        let code = format!(
            "import socket\nfor p in [{ports}]:\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'z' * 10, ('{B_IP}', p)); s.sendto(b'z' * 10, ('{B_IP}', p))\n"
        );
        lab.run(&lab.a, "python3", &["-c", &code]);
    };
    let mut probe = lab.probe(
        &sb,
        &[
            "-I",
            IF_A,
            "-w",
            "1",
            "--sessions",
            "4",
            "-i",
            "f:d.trapcap,f:m.trapcap",
        ],
    );
    probe.wait_err("probing", Duration::from_secs(10));
    probe.wait_err("window 0:", Duration::from_secs(5));
    send("6000, 6001, 6002, 6003, 6004, 6005, 6006, 6007, 6008, 6009");
    let w1 = probe.wait_err("window 1:", Duration::from_secs(5));
    send("6009");
    let w2 = probe.wait_err("window 2:", Duration::from_secs(5));
    // The kernel's counters on the service interface.
    let svc = sb.path(&format!("trap-service_{}.sock", probe.child.id()));
    let stats = libtrap::service::query(&svc).expect("service interface");
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["counters"]["sessions_refused"], 6, "{stats}");
    assert_eq!(stats["counters"]["packets_untracked"], 12, "{stats}");
    assert!(
        stats["counters"]["windows"].as_u64().unwrap() >= 3,
        "{stats}"
    );
    probe.stop();
    drop(srv);
    assert!(
        w1.contains(": 4 sessions") && w1.contains("refused: 6 sessions (12 packets)"),
        "{w1}"
    );
    assert!(
        w2.contains(": 1 sessions") && w2.contains("refused: 0 sessions"),
        "{w2}"
    );
    let m = records(&sb, "m.trapcap");
    let ports = |w: u64| -> Vec<u64> {
        let mut v: Vec<u64> = m
            .iter()
            .filter(|r| num(r, "WINDOW_ID") == w)
            .map(|r| num(r, "SERVER_PORT"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(ports(1), vec![6000, 6001, 6002, 6003]);
    // Refused in window 1, tracked in window 2.
    assert_eq!(ports(2), vec![6009]);
    assert!(probe
        .stderr()
        .contains("refused in all: 6 sessions (12 packets)"));
}

#[test]
fn without_privilege_or_interface_the_error_says_what_to_do() {
    if !prerequisites(&["setpriv"]) {
        return;
    }
    let sb = Sandbox::new();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(bin("session_probe"))
        .args(["-I", "lo", "-i", "f:/dev/null,f:/dev/null"])
        .current_dir(sb.dir.path())
        .output()
        .expect("setpriv");
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.starts_with("session_probe: error: cannot load the eBPF program"),
        "{e}"
    );
    assert!(e.contains("--userspace") && e.contains("root"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    let Some(lab) = Lab::create() else { return };
    let out = lab
        .cmd(
            &lab.a,
            bin("session_probe").to_str().unwrap(),
            &["-I", "ebnosuch0", "-i", "f:/dev/null,f:/dev/null"],
        )
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("ebnosuch0") && e.contains("ip link"), "{e}");
    for (args, want) in [
        (vec!["-w", "0", "-I", "lo"], "-w 0"),
        (vec!["--sessions", "0", "-I", "lo"], "--sessions"),
        (vec![], "no input"),
    ] {
        let mut a = args.clone();
        a.extend(["-i", "f:/dev/null,f:/dev/null"]);
        let out = sb.run("session_probe", &a);
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

/// A synthesized capture (no root needed): exact records in user space,
/// windows on packet time, and the DDoS features read by ddos_detector and
/// miner_detector as their flows.
#[test]
fn userspace_records_of_a_synthesized_capture_and_the_detectors_read_them() {
    use flow_meter::synth::{ipv4_frame, PcapWriter, L4};
    use std::net::Ipv4Addr;
    let sb = Sandbox::new();
    let client = Ipv4Addr::new(203, 0, 113, 9);
    let server = Ipv4Addr::new(203, 0, 113, 1);
    let t0 = 1_700_000_000_000_000u64;
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    let mut f = Vec::new();
    let tcp = |flags: u8, payload: &'static [u8], to_server: bool| {
        let (sport, dport) = if to_server {
            (40000, 3333)
        } else {
            (3333, 40000)
        };
        L4::Tcp {
            sport,
            dport,
            seq: 1,
            ack: 1,
            flags,
            payload,
        }
    };
    // Window 0 (t0 .. t0+2 s): handshake and 3 requests; window 1: 3 answers
    // of 100 bytes; window 2: a UDP exchange without SYN to port 53 and
    // a ping (ICMP: DDoS features only).
    let mut at = |w: &mut PcapWriter<Vec<u8>>, us: u64, src, dst, l4| {
        ipv4_frame(&mut f, src, dst, 1, l4);
        w.packet(t0 + us, &f).unwrap();
    };
    at(&mut w, 0, client, server, tcp(0x02, b"", true));
    at(&mut w, 1000, server, client, tcp(0x12, b"", false));
    at(&mut w, 2000, client, server, tcp(0x10, b"", true));
    for i in 0..3 {
        at(
            &mut w,
            500_000 + i * 1000,
            client,
            server,
            tcp(0x18, b"req", true),
        );
    }
    for i in 0..3 {
        at(
            &mut w,
            2_500_000 + i * 1000,
            server,
            client,
            tcp(0x18, &[7u8; 100], false),
        );
    }
    at(
        &mut w,
        4_100_000,
        client,
        server,
        L4::Udp {
            sport: 5353,
            dport: 53,
            payload: b"q",
        },
    );
    at(
        &mut w,
        4_200_000,
        server,
        client,
        L4::Udp {
            sport: 53,
            dport: 5353,
            payload: b"answer",
        },
    );
    at(
        &mut w,
        4_300_000,
        client,
        server,
        L4::Icmp {
            kind: 8,
            payload: b"ping",
        },
    );
    std::fs::write(sb.path("s.pcap"), w.get_ref()).unwrap();
    let out = sb.run(
        "session_probe",
        &[
            "--userspace",
            "-r",
            "s.pcap",
            "-w",
            "2",
            "--packets-per-session",
            "4",
            "-i",
            "f:d.trapcap,f:m.trapcap",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("Info: window 0: 1 sessions, 4 packets captured"),
        "{err}"
    );
    assert!(err.contains("2 packets over the session quota"), "{err}");
    let m = records(&sb, "m.trapcap");
    let summary: Vec<String> = m
        .iter()
        .map(|r| {
            format!(
                "w{} {}:{}<-{}:{} p{} s{}/c{} b{}/{} m{}",
                r["WINDOW_ID"],
                r["SERVER_IP"],
                r["SERVER_PORT"],
                r["CLIENT_IP"],
                r["CLIENT_PORT"],
                r["PROTOCOL"],
                r["N_PACKETS_SERVER"],
                r["N_PACKETS_CLIENT"],
                r["N_BITS_SERVER"],
                r["N_BITS_CLIENT"],
                r["SERVER_ID_METHOD"]
            )
        })
        .collect();
    // Frames: 54 bytes of headers + payload (TCP), 42 + payload (UDP).
    assert_eq!(
        summary,
        [
            format!(
                "w0 {server}:3333<-{client}:40000 p6 s1/c5 b{}/{} m1",
                54 * 8,
                (54 * 5 + 9) * 8
            ),
            // No SYN in window 1: neither port < 1024, the lower one (3333).
            format!(
                "w1 {server}:3333<-{client}:40000 p6 s3/c0 b{}/0 m4",
                154 * 3 * 8
            ),
            format!(
                "w2 {server}:53<-{client}:5353 p17 s1/c1 b{}/{} m2",
                48 * 8,
                43 * 8
            ),
        ]
    );
    let d = records(&sb, "d.trapcap");
    let icmp: Vec<&Rec> = d.iter().filter(|r| r["PROTOCOL"] == "1").collect();
    assert_eq!(icmp.len(), 1);
    assert_eq!((num(icmp[0], "PACKETS"), num(icmp[0], "WINDOW_ID")), (1, 2));
    let c2s0 = d
        .iter()
        .find(|r| r["SRC_IP"] == client.to_string() && r["WINDOW_ID"] == "0")
        .unwrap();
    // 4 packets per session captured: SYN, SYN-ACK, ACK, the first request.
    assert_eq!((num(c2s0, "PACKETS"), num(c2s0, "TCP_FLAGS")), (3, 0x1a));
    // The DDoS features are flows for ddos_detector and miner_detector.
    for det in ["ddos_detector", "miner_detector"] {
        let out = sb.run(det, &["-i", "f:d.trapcap,f:alerts.trapcap"]);
        assert!(
            out.status.success(),
            "{det}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
