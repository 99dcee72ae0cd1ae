//! The Traffic Snooper chain: packet_capture → packet_dedup → packet_store,
//! and `packet_store query` back to pcap.
//!
//! The live tests build three network namespaces: hosts A and B joined by a
//! veth pair, and B's interface mirrored (tc mirred, both directions) to a
//! veth whose peer, in the capture namespace, has no address, so nothing but
//! mirrored frames arrives there. tcpdump on the capture interface is the
//! reference. They need root, iproute2, tcpdump, tcpreplay and (for the
//! PostgreSQL one) Debian's postgresql; outside CI they skip with one line.

use nemea_rs::{bin, wait_output, Sandbox};
use nemea_rs::{ci, is_root, sh};
use packet_capture::pcap::PcapWriter;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// `tools` on PATH and root, or a skip (a failure under CI=true).
fn need(tools: &[&str]) -> bool {
    if !is_root() {
        assert!(!ci(), "this test needs root under CI=true");
        eprintln!("skipped: needs root");
        return false;
    }
    for t in tools {
        if !sh(&["sh", "-c", &format!("command -v {t}")]) {
            assert!(
                !ci(),
                "{t} is required under CI=true (scripts/setup.sh installs it)"
            );
            eprintln!("skipped: {t} is not installed");
            return false;
        }
    }
    true
}

/// One frame of a classic pcap file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Frame {
    secs: u32,
    micros: u32,
    wire_len: u32,
    data: Vec<u8>,
}

/// The frames of a classic (µs, host order) pcap file.
fn read_pcap(path: &Path) -> Vec<Frame> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(b.len() >= 24, "{}: no pcap header", path.display());
    let magic = u32::from_le_bytes(b[0..4].try_into().unwrap());
    assert_eq!(
        magic,
        0xA1B2_C3D4,
        "{}: not a little-endian µs pcap",
        path.display()
    );
    let u = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let mut at = 24;
    let mut out = Vec::new();
    while at + 16 <= b.len() {
        let caplen = u(at + 8) as usize;
        let data = b[at + 16..at + 16 + caplen].to_vec();
        out.push(Frame {
            secs: u(at),
            micros: u(at + 4),
            wire_len: u(at + 12),
            data,
        });
        at += 16 + caplen;
    }
    assert_eq!(at, b.len(), "{}: cut record", path.display());
    out
}

/// `frames` without later copies of the same bytes (what dedup keeps).
fn first_copies(frames: &[Frame]) -> Vec<Frame> {
    let mut seen = std::collections::HashSet::new();
    frames
        .iter()
        .filter(|f| seen.insert(f.data.clone()))
        .cloned()
        .collect()
}

/// Sorts by time, stable (the store's order: time, then arrival).
fn by_time(mut v: Vec<Frame>) -> Vec<Frame> {
    v.sort_by_key(|f| (f.secs, f.micros));
    v
}

/// A UDP frame between two documentation addresses, `len` bytes long.
fn udp_frame(src: u8, dst: u8, seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, dst, 0x02, 0, 0, 0, 0, src, 0x08, 0x00];
    let ip_len = (len - 14) as u16;
    f.extend([
        0x45,
        0,
        (ip_len >> 8) as u8,
        ip_len as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend([198, 51, 100, src, 198, 51, 100, dst]);
    let udp_len = ip_len - 20;
    f.extend([
        0x30,
        0x39,
        0x00,
        0x35,
        (udp_len >> 8) as u8,
        udp_len as u8,
        0,
        0,
    ]);
    f.extend(seq.to_be_bytes());
    f.resize(len, 0xA5);
    f
}

fn write_pcap(path: &Path, frames: &[Frame]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(file), 65535).unwrap();
    for f in frames {
        w.write(f.secs, f.micros, f.wire_len, &f.data).unwrap();
    }
    w.into_inner().unwrap();
}

/// A module in the background, killed if still running when dropped.
struct Bg {
    name: String,
    child: Option<Child>,
}

impl Bg {
    fn spawn(name: &str, mut cmd: Command) -> Bg {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Bg {
            name: name.into(),
            child: Some(child),
        }
    }

    fn interrupt(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
        }
    }

    /// Waits for the exit (at most 20 s); the output.
    fn wait(mut self) -> Output {
        let c = self.child.take().unwrap();
        wait_output(c, Duration::from_secs(20), &self.name)
    }

    fn ok(self) -> String {
        let name = self.name.clone();
        let out = self.wait();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "{name} failed ({}): {err}",
            out.status
        );
        err
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

const A_IP: &str = "198.51.100.1";
const B_IP: &str = "198.51.100.2";
/// The interface tcpdump and packet_capture read (in the capture namespace).
const CAP_IF: &str = "snm1";
/// Its peer in B's namespace, where the mirrored frames (and tcpreplay's) are sent.
const MIRROR_IF: &str = "snm0";

/// tcpdump running; `stop` gives its closing statistics.
struct Tcpdump {
    bg: Bg,
    stats: std::sync::mpsc::Receiver<String>,
}

/// Complete frames in a pcap file being written.
fn frames_written(path: &Path) -> usize {
    let b = std::fs::read(path).unwrap_or_default();
    let (mut at, mut n) = (24, 0);
    while at + 16 <= b.len() {
        let caplen = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        if at + 16 + caplen > b.len() {
            break;
        }
        at += 16 + caplen;
        n += 1;
    }
    n
}

impl Tcpdump {
    /// Stops once `file` holds `frames` frames (what packet_capture saw on
    /// the same interface) or 5 s have passed: tcpdump drops what it has not
    /// written when interrupted.
    fn stop_after(self, file: &Path, frames: u64) -> String {
        let t = Instant::now();
        while (frames_written(file) as u64) < frames && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop()
    }

    fn stop(self) -> String {
        self.bg.interrupt();
        self.bg.ok();
        let stats = self.stats.recv().unwrap_or_default();
        assert!(
            stats
                .lines()
                .any(|l| l.trim() == "0 packets dropped by kernel"),
            "tcpdump lost frames: {stats}"
        );
        stats
    }
}

/// Hosts A and B, and B's link mirrored to a capture namespace.
struct Mirror {
    a: String,
    b: String,
    c: String,
}

impl Mirror {
    fn create() -> Option<Mirror> {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "sn-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let m = Mirror {
            a: format!("{tag}-a"),
            b: format!("{tag}-b"),
            c: format!("{tag}-c"),
        };
        match m.set_up() {
            Ok(()) => Some(m),
            Err(why) => {
                drop(m);
                assert!(
                    !ci(),
                    "network namespaces are required under CI=true: {why}"
                );
                eprintln!("skipped: cannot build the namespaces ({why})");
                None
            }
        }
    }

    fn set_up(&self) -> Result<(), String> {
        let (a, b, c) = (self.a.as_str(), self.b.as_str(), self.c.as_str());
        let a_addr = format!("{A_IP}/24");
        let b_addr = format!("{B_IP}/24");
        let mut steps: Vec<Vec<&str>> = Vec::new();
        for ns in [a, b, c] {
            steps.push(vec!["ip", "netns", "add", ns]);
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
                "ip", "-n", a, "link", "add", "sna0", "type", "veth", "peer", "name", "snb0",
                "netns", b,
            ],
            vec![
                "ip", "-n", b, "link", "add", MIRROR_IF, "type", "veth", "peer", "name", CAP_IF,
                "netns", c,
            ],
            vec!["ip", "-n", a, "addr", "add", &a_addr, "dev", "sna0"],
            vec!["ip", "-n", b, "addr", "add", &b_addr, "dev", "snb0"],
            // Segmentation offload makes frames of up to 64 KiB; a smaller
            // bound keeps them under the snaplen, and the mirror link's MTU
            // lets tcpreplay send them again.
            vec![
                "ip",
                "-n",
                a,
                "link",
                "set",
                "sna0",
                "gso_max_size",
                "16384",
            ],
            vec![
                "ip",
                "-n",
                b,
                "link",
                "set",
                "snb0",
                "gso_max_size",
                "16384",
            ],
            vec!["ip", "-n", b, "link", "set", MIRROR_IF, "mtu", "65535"],
            vec!["ip", "-n", c, "link", "set", CAP_IF, "mtu", "65535"],
            vec!["ip", "-n", a, "link", "set", "sna0", "up"],
            vec!["ip", "-n", b, "link", "set", "snb0", "up"],
            vec!["ip", "-n", b, "link", "set", MIRROR_IF, "up"],
            vec!["ip", "-n", c, "link", "set", CAP_IF, "up"],
            vec![
                "ip", "netns", "exec", b, "tc", "qdisc", "add", "dev", "snb0", "clsact",
            ],
        ]);
        for dir in ["ingress", "egress"] {
            steps.push(vec![
                "ip", "netns", "exec", b, "tc", "filter", "add", "dev", "snb0", dir, "protocol",
                "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror",
                "dev", MIRROR_IF,
            ]);
        }
        for step in &steps {
            if !sh(step) {
                return Err(format!("`{}` failed", step.join(" ")));
            }
        }
        Ok(())
    }

    fn exec(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).args(args);
        c
    }

    /// tcpdump on the capture interface writing `file`, once it listens.
    fn tcpdump(&self, file: &Path) -> Tcpdump {
        let mut cmd = self.exec(
            &self.c,
            &[
                "tcpdump",
                "-n",
                "-U",
                "-s",
                "0",
                "-i",
                CAP_IF,
                "-w",
                file.to_str().unwrap(),
            ],
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tcpdump");
        let err = child.stderr.take().unwrap();
        let mut lines = BufReader::new(err).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("listening on") => break,
                Some(Ok(_)) => {}
                _ => panic!("tcpdump did not start"),
            }
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rest: Vec<String> = lines.map_while(Result::ok).collect();
            let _ = tx.send(rest.join("\n"));
        });
        Tcpdump {
            bg: Bg {
                name: "tcpdump".into(),
                child: Some(child),
            },
            stats: rx,
        }
    }

    /// Pings and a small TCP transfer from A to B.
    fn traffic(&self, pings: u32, tcp_bytes: usize) {
        let n = pings.to_string();
        let ping = self
            .exec(&self.a, &["ping", "-c", &n, "-i", "0.2", "-W", "2", B_IP])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ping.success(), "ping A → B failed");
        if tcp_bytes == 0 {
            return;
        }
        let server = format!(
            "import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('{B_IP}',5201));s.listen(1);print('up',flush=True)\n\
             c,_=s.accept();n=0\nwhile True:\n  d=c.recv(65536)\n  if not d: break\n  n+=len(d)\n\
             c.sendall(str(n).encode());c.close()"
        );
        let mut srv = self
            .exec(&self.b, &["python3", "-c", &server])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut up = String::new();
        BufReader::new(srv.stdout.take().unwrap())
            .read_line(&mut up)
            .unwrap();
        assert_eq!(up.trim(), "up");
        let client = format!(
            "import socket\nc=socket.create_connection(('{B_IP}',5201))\n\
             c.sendall(b'x'*{tcp_bytes});c.shutdown(socket.SHUT_WR)\nprint(c.recv(100).decode())"
        );
        let out = self
            .exec(&self.a, &["python3", "-c", &client])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            tcp_bytes.to_string(),
            "the TCP transfer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = srv.wait();
    }

    /// Replays `pcap` onto the mirror link (arriving on the capture interface).
    fn replay(&self, pcap: &Path) {
        let out = self
            .exec(
                &self.b,
                &[
                    "tcpreplay",
                    "-q",
                    "--topspeed",
                    "-i",
                    MIRROR_IF,
                    pcap.to_str().unwrap(),
                ],
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tcpreplay failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b, &self.c] {
            sh(&["ip", "netns", "del", ns]);
        }
    }
}

/// The chain running: packet_capture -I (in the capture namespace) →
/// [packet_dedup →] packet_store, started from the sink, each waiting for
/// the socket before it.
struct Chain {
    store: Bg,
    dedup: Option<Bg>,
    capture: Bg,
}

impl Chain {
    fn start(sb: &Sandbox, m: &Mirror, db: &str, dedup: bool, store_opts: &[&str]) -> Chain {
        let store_in = if dedup { "u:sn_dd" } else { "u:sn_raw" };
        let mut c = sb.cmd("packet_store");
        c.args(["--db", db, "-F", "0.2"])
            .args(store_opts)
            .args(["-i", store_in]);
        let store = Bg::spawn("packet_store", c);
        let dedup = dedup.then(|| {
            let mut c = sb.cmd("packet_dedup");
            c.args(["-i", "u:sn_raw,u:sn_dd"]);
            Bg::spawn("packet_dedup", c)
        });
        if dedup.is_some() {
            sb.wait_socket("sn_dd");
        }
        let mut c = m.exec(&m.c, &[]);
        c.arg(bin("packet_capture"))
            .args(["-I", CAP_IF, "-i", "u:sn_raw"])
            .current_dir(sb.dir.path())
            .env("TRAP_SOCKET_DIR", sb.dir.path());
        let capture = Bg::spawn("packet_capture", c);
        // The socket appears after the capture is open.
        sb.wait_socket("sn_raw");
        Chain {
            store,
            dedup,
            capture,
        }
    }

    /// SIGINT to the capture; each module then ends on end of stream.
    /// Returns the store's stderr and the capture's packet count.
    fn stop(self) -> (String, u64) {
        // Frames still in flight through the mirror and the kernel buffer.
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        self.capture.interrupt();
        let cap = self.capture.ok();
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "packet_capture took {:?} to stop",
            t.elapsed()
        );
        assert_eq!(info(&cap, "Kernel dropped"), 0, "{cap}");
        if let Some(d) = self.dedup {
            d.ok();
        }
        (self.store.ok(), info(&cap, "Packets sent"))
    }
}

/// The number on a module's `Info: KEY: N` line.
fn info(log: &str, key: &str) -> u64 {
    log.lines()
        .find_map(|l| {
            l.strip_prefix("Info: ")?
                .strip_prefix(key)?
                .strip_prefix(':')
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` line in: {log}"))
}

fn query(sb: &Sandbox, db: &str, out: &str, extra: &[&str]) -> Vec<Frame> {
    let o = sb.run(
        "packet_store",
        &[&["query", "--db", db, "-w", out][..], extra].concat(),
    );
    assert!(
        o.status.success(),
        "query failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    read_pcap(&sb.path(out))
}

/// tshark opens the export and counts the same frames.
fn tshark_count(path: &Path) -> usize {
    let o = Command::new("tshark")
        .args([
            "-n",
            "-r",
            path.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .expect("tshark");
    assert!(o.status.success(), "tshark cannot read {}", path.display());
    String::from_utf8_lossy(&o.stdout).lines().count()
}

/// Stored frames equal tcpdump's, each once, in time order, with tcpdump's
/// bytes and lengths, and timestamps within 10 ms of tcpdump's (each packet
/// socket stamps its own copy, microseconds apart; the file round trip test
/// checks that the stored timestamps are the capture's exactly).
fn assert_same_frames(stored: &[Frame], reference: &[Frame]) {
    let want = first_copies(reference);
    assert!(!want.is_empty(), "tcpdump saw nothing");
    let mut counts: HashMap<&[u8], usize> = HashMap::new();
    for f in stored {
        *counts.entry(&f.data).or_default() += 1;
    }
    assert!(counts.values().all(|&n| n == 1), "a frame is stored twice");
    assert_eq!(
        stored.len(),
        want.len(),
        "stored vs tcpdump's distinct frames"
    );
    let us = |f: &Frame| i64::from(f.secs) * 1_000_000 + i64::from(f.micros);
    for (i, (s, w)) in stored.iter().zip(&want).enumerate() {
        assert_eq!(
            (&s.data, s.wire_len),
            (&w.data, w.wire_len),
            "frame {i} differs"
        );
        assert!((us(s) - us(w)).abs() < 10_000, "frame {i}: {s:?} vs {w:?}");
    }
}

fn chain_stores_mirrored_packets_once(db_for: impl Fn(&Sandbox) -> String) {
    let Some(m) = Mirror::create() else { return };
    let sb = Sandbox::new();
    let db = db_for(&sb);
    let dump = sb.path("tcpdump.pcap");
    let tcpdump = m.tcpdump(&dump);
    let chain = Chain::start(&sb, &m, &db, true, &[]);
    m.traffic(4, 200_000);
    let (log, seen) = chain.stop();
    tcpdump.stop_after(&dump, seen);
    let reference = read_pcap(&dump);
    let stored = query(&sb, &db, "out.pcap", &[]);
    assert_same_frames(&stored, &reference);
    assert!(log.contains("Packets stored:"), "{log}");
    assert_eq!(tshark_count(&sb.path("out.pcap")), stored.len());

    // The same traffic replayed twice: nothing new is stored.
    let chain = Chain::start(&sb, &m, &db, true, &[]);
    m.replay(&dump);
    m.replay(&dump);
    let (log, _) = chain.stop();
    assert_eq!(info(&log, "Packets stored"), 0, "{log}");
    assert_eq!(query(&sb, &db, "again.pcap", &[]), stored);

    // The pair selection: only A ↔ B (all of it here) and nothing for another pair.
    let pair = query(&sb, &db, "pair.pcap", &["--host", A_IP, "--host", B_IP]);
    let ip_frames = stored
        .iter()
        .filter(|f| f.data.get(12..14) == Some(&[0x08, 0x00][..]))
        .count();
    assert_eq!(
        pair.len(),
        ip_frames,
        "A↔B are the IPv4 frames (the rest is ARP)"
    );
    assert!(query(
        &sb,
        &db,
        "none.pcap",
        &["--host", A_IP, "--host", "203.0.113.9"]
    )
    .is_empty());

    // Without dedup both replays are stored.
    let db2 = db_for(&sb).replace("snoop", "nodedup");
    let chain = Chain::start(&sb, &m, &db2, false, &["--no-dedup"]);
    m.replay(&dump);
    m.replay(&dump);
    chain.stop();
    let both = query(&sb, &db2, "both.pcap", &[]);
    assert_eq!(both.len(), 2 * reference.len());
    let mut data: Vec<&[u8]> = both.iter().map(|f| &f.data[..]).collect();
    let mut twice: Vec<&[u8]> = reference
        .iter()
        .chain(&reference)
        .map(|f| &f.data[..])
        .collect();
    data.sort();
    twice.sort();
    assert_eq!(data, twice, "every replayed frame, twice");
}

#[test]
fn sqlite_chain_stores_every_mirrored_packet_once() {
    if !need(&["ip", "tc", "tcpdump", "tcpreplay", "tshark", "python3"]) {
        return;
    }
    chain_stores_mirrored_packets_once(|sb| sb.path("snoop.sqlite").to_str().unwrap().to_string());
}

/// A PostgreSQL server of the test's own (Debian's binaries, a data
/// directory in the sandbox, a free port on 127.0.0.1), stopped on drop.
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
}

impl Postgres {
    fn bin_dir() -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("pg_ctl").exists())
            .collect();
        dirs.sort();
        dirs.pop()
    }

    fn start(root: &Path) -> Option<Postgres> {
        let Some(bin) = Self::bin_dir() else {
            assert!(
                !ci(),
                "postgresql is required under CI=true (scripts/setup.sh installs it)"
            );
            eprintln!("skipped: postgresql is not installed");
            return None;
        };
        let data = root.join("pgdata");
        std::fs::create_dir_all(&data).unwrap();
        // The server runs as the postgres user: it must reach its directory.
        sh(&["chmod", "755", root.to_str().unwrap()]);
        assert!(sh(&["chown", "postgres:postgres", data.to_str().unwrap()]));
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args([
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Postgres { bin, data, port };
        pg.ctl_start();
        Some(pg)
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", self.data.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    }

    fn ctl_start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data.display()
        );
        let log = self.data.join("log");
        let out = self.ctl(&["-o", &opts, "-l", log.to_str().unwrap(), "-w", "start"]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn stop(&self) {
        let out = self.ctl(&["-m", "fast", "-w", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn create_db(&self, name: &str) {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "createdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.ctl(&["-m", "immediate", "stop"]);
    }
}

#[test]
fn postgres_chain_stores_every_mirrored_packet_once() {
    if !need(&[
        "ip",
        "tc",
        "tcpdump",
        "tcpreplay",
        "tshark",
        "python3",
        "runuser",
    ]) {
        return;
    }
    let pgroot = tempfile::tempdir().unwrap();
    let Some(pg) = Postgres::start(pgroot.path()) else {
        return;
    };
    pg.create_db("snoop");
    pg.create_db("nodedup");
    let url = pg.url("snoop");
    chain_stores_mirrored_packets_once(|_| url.clone());
}

#[test]
fn postgres_going_away_and_back_loses_no_batch() {
    if !need(&["ip", "tc", "tcpdump", "python3", "runuser"]) {
        return;
    }
    let pgroot = tempfile::tempdir().unwrap();
    let Some(pg) = Postgres::start(pgroot.path()) else {
        return;
    };
    let Some(m) = Mirror::create() else { return };
    let sb = Sandbox::new();
    let db = pg.url("postgres");
    let dump = sb.path("tcpdump.pcap");
    let tcpdump = m.tcpdump(&dump);
    let chain = Chain::start(&sb, &m, &db, true, &["--batch", "5"]);
    m.traffic(5, 0);
    std::thread::sleep(Duration::from_millis(500));
    pg.stop();
    // Sent while the server is down: held by the store.
    m.traffic(5, 30_000);
    std::thread::sleep(Duration::from_millis(800));
    pg.ctl_start();
    m.traffic(3, 0);
    let (log, seen) = chain.stop();
    tcpdump.stop_after(&dump, seen);
    assert!(
        log.contains("Batch retries:"),
        "the outage was not seen: {log}"
    );
    assert!(log.contains("the database is back"), "{log}");
    let stored = query(&sb, &db, "out.pcap", &[]);
    assert_same_frames(&stored, &read_pcap(&dump));
}

/// Frames with copies, from a file: what dedup and the store keep, and
/// what `query` gives back, with the file's own timestamps.
fn synthetic(n: u32) -> Vec<Frame> {
    let mut v = Vec::new();
    for i in 0..n {
        let (src, dst) = if i % 3 == 0 { (1, 2) } else { (2, 3) };
        let f = Frame {
            secs: 1_764_770_400 + i / 10,
            micros: (i % 10) * 100_000 + i,
            wire_len: 200 + i % 7,
            data: udp_frame(src, dst, i, 60 + (i as usize % 100)),
        };
        // Every fifth frame comes twice (a mirror's copy), 10 µs later.
        if i % 5 == 0 {
            let mut copy = f.clone();
            copy.micros += 10;
            v.push(f);
            v.push(copy);
        } else {
            v.push(f);
        }
    }
    v
}

fn run_file_chain(sb: &Sandbox, pcap: &Path, db: &str, dedup_opts: &[&str]) -> (String, String) {
    let store = {
        let mut c = sb.cmd("packet_store");
        c.args(["--db", db, "-i", "u:sn_dd"]);
        Bg::spawn("packet_store", c)
    };
    let dedup = {
        let mut c = sb.cmd("packet_dedup");
        c.args(dedup_opts).args(["-i", "u:sn_raw,u:sn_dd"]);
        Bg::spawn("packet_dedup", c)
    };
    sb.wait_socket("sn_dd");
    let out = sb.run(
        "packet_capture",
        &["-r", pcap.to_str().unwrap(), "-i", "u:sn_raw"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dedup.ok(), store.ok())
}

#[test]
fn a_capture_file_round_trips_through_the_chain() {
    let sb = Sandbox::new();
    let frames = synthetic(500);
    let pcap = sb.path("in.pcap");
    write_pcap(&pcap, &frames);
    let db = sb.path("snoop.sqlite");
    let db = db.to_str().unwrap();
    let (dedup, store) = run_file_chain(&sb, &pcap, db, &["--window", "0.001"]);
    assert_eq!(info(&dedup, "Duplicates dropped"), 100, "{dedup}");
    assert_eq!(info(&store, "Packets stored"), 500, "{store}");
    let want = first_copies(&frames);
    assert_eq!(query(&sb, db, "all.pcap", &[]), want);
    // A time range and a host pair.
    let from = "2025-12-03T14:00:10";
    let to = "1764770419.999999";
    let range = query(&sb, db, "range.pcap", &["--from", from, "--to", to]);
    let in_range: Vec<Frame> = want
        .iter()
        .filter(|f| (1_764_770_410..=1_764_770_419).contains(&f.secs))
        .cloned()
        .collect();
    assert_eq!(range, in_range);
    let pair = query(
        &sb,
        db,
        "pair.pcap",
        &["--host", "198.51.100.2", "--host", "198.51.100.1"],
    );
    let pair_want: Vec<Frame> = want.iter().filter(|f| f.data[29] == 1).cloned().collect();
    assert_eq!(pair, pair_want);
    // A BPF selection, as tcpdump's.
    let bpf = query(
        &sb,
        db,
        "bpf.pcap",
        &["-f", "udp and dst host 198.51.100.3"],
    );
    let bpf_want: Vec<Frame> = want.iter().filter(|f| f.data[33] == 3).cloned().collect();
    assert!(!bpf_want.is_empty());
    assert_eq!(bpf, bpf_want);
    // The same file again: the window has long passed, the store's unique
    // hash keeps every packet out.
    let (_, store) = run_file_chain(&sb, &pcap, db, &[]);
    assert_eq!(info(&store, "Packets stored"), 0, "{store}");
    assert_eq!(info(&store, "Duplicates skipped"), 500, "{store}");
}

#[test]
fn hex_encoding_stores_text_and_exports_the_same() {
    let sb = Sandbox::new();
    let frames = synthetic(40);
    let pcap = sb.path("in.pcap");
    write_pcap(&pcap, &frames);
    let db = sb.path("hex.sqlite");
    let db = db.to_str().unwrap();
    let store = {
        let mut c = sb.cmd("packet_store");
        c.args([
            "--db",
            db,
            "--encoding",
            "hex",
            "--no-dedup",
            "-i",
            "u:sn_raw",
        ]);
        Bg::spawn("packet_store", c)
    };
    let out = sb.run(
        "packet_capture",
        &["-r", pcap.to_str().unwrap(), "-i", "u:sn_raw"],
    );
    assert!(out.status.success());
    store.ok();
    assert_eq!(query(&sb, db, "hex.pcap", &[]), by_time(frames.clone()));
    if sh(&["sh", "-c", "command -v sqlite3"]) {
        let o = Command::new("sqlite3")
            .args([
                db,
                "SELECT typeof(packet), packet FROM packets ORDER BY id LIMIT 1",
            ])
            .output()
            .unwrap();
        let first = String::from_utf8_lossy(&o.stdout);
        assert!(first.starts_with("text|020000000002"), "{first}");
    }
    // Storing into it as blob, or with dedup, is refused.
    let o = sb.run("packet_store", &["--db", db, "-i", "u:sn_never"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("encoding=hex") && err.contains("--encoding hex"),
        "{err}"
    );
}

fn one_error_line(o: &Output, module: &str, needle: &str) {
    assert!(!o.status.success(), "{module} succeeded");
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with(&format!("{module}: error:")))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(needle), "`{needle}` not in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_gives_one_clear_error() {
    let sb = Sandbox::new();
    // A cut capture file: the complete packets go out, then the error.
    let frames = synthetic(5);
    let pcap = sb.path("in.pcap");
    write_pcap(&pcap, &frames);
    let full = std::fs::read(&pcap).unwrap();
    let cut = sb.path("cut.pcap");
    std::fs::write(&cut, &full[..full.len() - 20]).unwrap();
    let o = sb.run("packet_capture", &["-r", cut.to_str().unwrap(), "-i", "b:"]);
    one_error_line(&o, "packet_capture", "cut or damaged");
    std::fs::write(&cut, &full[..10]).unwrap();
    let o = sb.run("packet_capture", &["-r", cut.to_str().unwrap(), "-i", "b:"]);
    one_error_line(&o, "packet_capture", "cannot read");
    let o = sb.run("packet_capture", &["-r", "/nonexistent.pcap", "-i", "b:"]);
    one_error_line(&o, "packet_capture", "/nonexistent.pcap");
    // Wrong options.
    let o = sb.run("packet_capture", &["-i", "b:"]);
    one_error_line(&o, "packet_capture", "-I IFACE");
    let o = sb.run("packet_capture", &["-I", "lo", "-r", "x", "-i", "b:"]);
    one_error_line(&o, "packet_capture", "not both");
    let o = sb.run("packet_capture", &["-I", "sn-no-such0", "-i", "b:"]);
    assert!(!o.status.success());
    let o = sb.run(
        "packet_capture",
        &["-r", pcap.to_str().unwrap(), "-f", "port (", "-i", "b:"],
    );
    one_error_line(&o, "packet_capture", "bad filter");
    let o = sb.run(
        "packet_capture",
        &["-r", pcap.to_str().unwrap(), "-s", "0", "-i", "b:"],
    );
    one_error_line(&o, "packet_capture", "--snaplen");
    let o = sb.run("packet_dedup", &["--window=-1", "-i", "u:a,u:b"]);
    one_error_line(&o, "packet_dedup", "--window");
    let o = sb.run("packet_dedup", &["--hash", "md5", "-i", "u:a,u:b"]);
    one_error_line(&o, "packet_dedup", "md5");
    let o = sb.run("packet_store", &["--batch", "0", "-i", "u:a"]);
    one_error_line(&o, "packet_store", "--batch");
    let o = sb.run("packet_store", &["--flush-interval", "0", "-i", "u:a"]);
    one_error_line(&o, "packet_store", "--flush-interval");
    let o = sb.run(
        "packet_store",
        &["query", "--db", "x.sqlite", "-w", "o.pcap", "-f", "port ("],
    );
    one_error_line(&o, "packet_store", "bad filter");
    let o = sb.run("packet_store", &["query", "--db", "x.sqlite"]);
    one_error_line(&o, "packet_store", "--write");
    let o = sb.run(
        "packet_store",
        &["query", "--db", "missing.sqlite", "-w", "o.pcap"],
    );
    one_error_line(&o, "packet_store", "no such database");
    let o = sb.run(
        "packet_store",
        &[
            "query", "--db", "x.sqlite", "-w", "o.pcap", "--from", "noon",
        ],
    );
    one_error_line(&o, "packet_store", "--from noon");
    let o = sb.run(
        "packet_store",
        &["--db", "/nonexistent-dir/s.sqlite", "-i", "u:a"],
    );
    one_error_line(&o, "packet_store", "/nonexistent-dir/s.sqlite");
    // An unreachable database: refused at once, not waited for.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let url = format!("postgres://snoop:secret@127.0.0.1:{port}/snoop");
    let o = sb.run("packet_store", &["--db", &url, "-i", "u:a"]);
    one_error_line(&o, "packet_store", "cannot connect");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("secret"));
    assert!(t.elapsed() < Duration::from_secs(10));
    let o = sb.run("packet_store", &["--db", "postgres://[bad", "-i", "u:a"]);
    one_error_line(&o, "packet_store", "URL");
}

#[test]
fn a_full_disk_is_an_error_and_the_database_stays_sound() {
    if !need(&["mount", "umount", "sqlite3"]) {
        return;
    }
    let sb = Sandbox::new();
    let small = sb.path("small");
    std::fs::create_dir(&small).unwrap();
    if !sh(&[
        "mount",
        "-t",
        "tmpfs",
        "-o",
        "size=1m",
        "tmpfs",
        small.to_str().unwrap(),
    ]) {
        assert!(!ci(), "mounting a tmpfs is required under CI=true");
        eprintln!("skipped: cannot mount a tmpfs");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            sh(&["umount", "-l", self.0.to_str().unwrap()]);
        }
    }
    let _guard = Unmount(small.clone());
    // ~3 MB of distinct frames for a 1 MiB file system.
    let frames: Vec<Frame> = (0..3000u32)
        .map(|i| Frame {
            secs: 1_764_770_400 + i / 1000,
            micros: i % 1000,
            wire_len: 1000,
            data: udp_frame(1, 2, i, 1000),
        })
        .collect();
    let pcap = sb.path("big.pcap");
    write_pcap(&pcap, &frames);
    let db = small.join("snoop.sqlite");
    let db = db.to_str().unwrap();
    let store = {
        let mut c = sb.cmd("packet_store");
        c.args(["--db", db, "--batch", "100", "-i", "u:sn_raw"]);
        Bg::spawn("packet_store", c)
    };
    // The capture blocks once the store is gone: it is killed at the end.
    let _capture = {
        let mut c = sb.cmd("packet_capture");
        c.args(["-r", pcap.to_str().unwrap(), "-i", "u:sn_raw"]);
        Bg::spawn("packet_capture", c)
    };
    let o = store.wait();
    one_error_line(&o, "packet_store", "full");
    let check = Command::new("sqlite3")
        .args([db, "PRAGMA integrity_check; SELECT count(*) FROM packets;"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ok"), "{text}");
    let rows: usize = lines.next().unwrap().parse().unwrap();
    assert!(
        rows > 0 && rows < 3000 && rows.is_multiple_of(100),
        "whole batches: {rows}"
    );
    // What was stored reads back (the export goes to the roomy disk).
    let back = query(&sb, db, "back.pcap", &[]);
    assert_eq!(back, frames[..rows].to_vec());
    // A query onto the full disk: an error, and no partial file left there.
    let out = small.join("out.pcap");
    let o = sb.run(
        "packet_store",
        &["query", "--db", db, "-w", out.to_str().unwrap()],
    );
    if !o.status.success() {
        one_error_line(&o, "packet_store", "cannot write");
        assert!(!out.exists());
        let leftovers: Vec<_> = std::fs::read_dir(&small)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".part"))
            .collect();
        assert!(leftovers.is_empty());
    }
}

/// SIGINT stops each module within 0.5 s (plus start-up), the store
/// flushing what it holds: records sent before the signal are stored.
#[test]
fn every_module_stops_on_sigint_at_once() {
    let sb = Sandbox::new();
    let frames = synthetic(20);
    let pcap = sb.path("in.pcap");
    write_pcap(&pcap, &frames);
    let db = sb.path("s.sqlite");
    let db = db.to_str().unwrap();
    // A long flush interval: only the stop writes the batch.
    let store = {
        let mut c = sb.cmd("packet_store");
        c.args(["--db", db, "-F", "3600", "-i", "u:sn_dd"]);
        Bg::spawn("packet_store", c)
    };
    let dedup = {
        let mut c = sb.cmd("packet_dedup");
        c.args(["-n", "-i", "u:sn_raw,u:sn_dd"]);
        Bg::spawn("packet_dedup", c)
    };
    sb.wait_socket("sn_dd");
    let o = sb.run(
        "packet_capture",
        &["-r", pcap.to_str().unwrap(), "-n", "-i", "u:sn_raw"],
    );
    assert!(o.status.success());
    std::thread::sleep(Duration::from_millis(500));
    for m in [dedup, store] {
        let t = Instant::now();
        m.interrupt();
        let name = m.name.clone();
        m.ok();
        assert!(
            t.elapsed() < Duration::from_millis(800),
            "{name} took {:?}",
            t.elapsed()
        );
    }
    assert_eq!(
        query(&sb, db, "o.pcap", &[]).len(),
        first_copies(&frames).len()
    );
}
