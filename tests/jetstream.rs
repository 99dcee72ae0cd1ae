//! The `j:` interface against a real `nats-server -js` (Debian's
//! nats-server), in two network namespaces the test makes (`js<pid><n>a`,
//! `js<pid><n>b`: two "hosts" on a veth pair, 198.51.100.1 and .2). The
//! server (file storage in the sandbox) and the producer run on host a, the
//! consumer on host b. Root and nats-server are needed (skipped with one
//! line outside CI, required under `CI=true`).

use nemea_rs::{bin, Sandbox};
use nemea_rs::{ci, sh};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const HOST_A: &str = "198.51.100.1";
const HOST_B: &str = "198.51.100.2";

fn prerequisites() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut missing = Vec::new();
    if !sh(&["sh", "-c", "command -v nats-server"]) {
        missing.push("nats-server");
    }
    if !root {
        missing.push("root");
    }
    if missing.is_empty() {
        return true;
    }
    assert!(!ci(), "required under CI=true: {}", missing.join(", "));
    eprintln!("skipped: needs {}", missing.join(", "));
    false
}

/// Two namespaces joined by a veth pair; removed on drop.
struct Net {
    a: String,
    b: String,
}

impl Net {
    fn create() -> Option<Net> {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "js{}{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::Relaxed)
        );
        let net = Net {
            a: format!("{tag}a"),
            b: format!("{tag}b"),
        };
        let (a, b) = (net.a.as_str(), net.b.as_str());
        let (va, vb) = (format!("{tag}va"), format!("{tag}vb"));
        let (va, vb) = (va.as_str(), vb.as_str());
        let steps: Vec<Vec<&str>> = vec![
            vec!["ip", "netns", "add", a],
            vec!["ip", "netns", "add", b],
            vec!["ip", "-n", a, "link", "set", "lo", "up"],
            vec!["ip", "-n", b, "link", "set", "lo", "up"],
            vec![
                "ip", "-n", a, "link", "add", va, "type", "veth", "peer", "name", vb, "netns", b,
            ],
            vec!["ip", "-n", a, "addr", "add", "198.51.100.1/24", "dev", va],
            vec!["ip", "-n", b, "addr", "add", "198.51.100.2/24", "dev", vb],
            vec!["ip", "-n", a, "link", "set", va, "up"],
            vec!["ip", "-n", b, "link", "set", vb, "up"],
        ];
        for st in &steps {
            if !sh(st) {
                let what = st.join(" ");
                drop(net);
                assert!(!ci(), "`{what}` failed (required under CI=true)");
                eprintln!("skipped: `{what}` failed");
                return None;
            }
        }
        Some(net)
    }

    /// A module (or any program) run inside namespace `ns`.
    fn cmd(&self, sb: &Sandbox, ns: &str, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .current_dir(sb.path("."))
            .env("TRAP_SOCKET_DIR", sb.path("."))
            .stdin(Stdio::null());
        c
    }

    fn module(&self, sb: &Sandbox, ns: &str, name: &str, args: &[&str], log: &str) -> Child {
        let err = std::fs::File::create(sb.path(log)).expect("log file");
        self.cmd(sb, ns, &bin(name), args)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn module")
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        sh(&["ip", "netns", "del", &self.a]);
        sh(&["ip", "netns", "del", &self.b]);
    }
}

/// `nats-server -js` on host a, storing in the sandbox; killed on drop.
struct Server {
    child: Option<Child>,
    store: PathBuf,
    log: PathBuf,
}

impl Server {
    fn start(net: &Net, sb: &Sandbox) -> Server {
        let mut s = Server {
            child: None,
            store: sb.path("js-store"),
            log: sb.path("nats-server.log"),
        };
        s.run(net, sb);
        s
    }

    fn run(&mut self, net: &Net, sb: &Sandbox) {
        let _ = std::fs::remove_file(&self.log);
        let store = self.store.to_string_lossy().into_owned();
        let log = self.log.to_string_lossy().into_owned();
        let child = net
            .cmd(
                sb,
                &net.a,
                Path::new("nats-server"),
                &["-js", "-a", HOST_A, "-p", "4222", "-sd", &store, "-l", &log],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let t = Instant::now();
        while !std::fs::read_to_string(&self.log).is_ok_and(|l| l.contains("Server is ready")) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "nats-server did not start: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A CSV for logreplay, fields in UniRec order (as logger prints them):
/// `ipaddr SRC_IP,uint32 SEQ,uint16 PORT` rows `from..=to`.
fn csv(sb: &Sandbox, name: &str, from: u32, to: u32) -> String {
    let mut s = String::from("ipaddr SRC_IP,uint32 SEQ,uint16 PORT\n");
    for i in from..=to {
        s.push_str(&format!("203.0.113.{},{i},{}\n", i % 256, i % 65536));
    }
    std::fs::write(sb.path(name), s).expect("write csv");
    name.to_string()
}

fn lines(sb: &Sandbox, name: &str) -> Vec<String> {
    std::fs::read_to_string(sb.path(name))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn seqs(sb: &Sandbox, name: &str) -> Vec<u32> {
    lines(sb, name)
        .iter()
        .map(|l| {
            l.split(',')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("bad line `{l}`"))
        })
        .collect()
}

/// Equal sequences, or the first difference (not megabytes of both).
fn same<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: first difference at {i}: {:?} instead of {:?}",
            got[i], want[i]
        );
    }
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
}

fn wait_exit(child: &mut Child, limit: Duration, what: &str, sb: &Sandbox, log: &str) {
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            assert!(
                st.success(),
                "{what} exited with {st}: {}",
                std::fs::read_to_string(sb.path(log)).unwrap_or_default()
            );
            return;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {limit:?}: {}",
                std::fs::read_to_string(sb.path(log)).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_lines(sb: &Sandbox, name: &str, n: usize, limit: Duration) {
    let t = Instant::now();
    while lines(sb, name).len() < n {
        assert!(
            t.elapsed() < limit,
            "{name} has {} lines, not {n}, after {limit:?}",
            lines(sb, name).len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn out_ifc(subject: &str, extra: &str) -> String {
    format!("j:{subject}:server=nats://{HOST_A}:4222{extra}")
}

#[test]
fn generator_to_logger_across_two_hosts_equals_the_input() {
    if !prerequisites() {
        return;
    }
    let Some(net) = Net::create() else { return };
    let sb = Sandbox::new();
    let _server = Server::start(&net, &sb);
    let input = csv(&sb, "in.csv", 1, 30_000);
    // The consumer starts first, on host b, and waits for the stream.
    let mut logger = net.module(
        &sb,
        &net.b,
        "logger",
        &["-i", &out_ifc("nemea.flows", ""), "-w", "out.csv"],
        "logger.log",
    );
    let mut replay = net.module(
        &sb,
        &net.a,
        "logreplay",
        &["-i", &out_ifc("nemea.flows", ":batch=20000"), "-f", &input],
        "replay.log",
    );
    wait_exit(
        &mut replay,
        Duration::from_secs(30),
        "logreplay",
        &sb,
        "replay.log",
    );
    wait_exit(
        &mut logger,
        Duration::from_secs(30),
        "logger",
        &sb,
        "logger.log",
    );
    let want: Vec<String> = lines(&sb, "in.csv").into_iter().skip(1).collect();
    same(&lines(&sb, "out.csv"), &want, "out.csv");
    // A second reader of its own (another durable) reads the same records
    // from the stream, also across the hosts; the first one has none left.
    let mut second = net.module(
        &sb,
        &net.b,
        "logger",
        &[
            "-i",
            &out_ifc("nemea.flows", ":durable=second"),
            "-w",
            "second.csv",
        ],
        "second.log",
    );
    wait_exit(
        &mut second,
        Duration::from_secs(30),
        "second logger",
        &sb,
        "second.log",
    );
    same(&lines(&sb, "second.csv"), &want, "second.csv");
}

#[test]
fn a_consumer_killed_mid_stream_resumes_where_it_stopped() {
    if !prerequisites() {
        return;
    }
    let Some(net) = Net::create() else { return };
    let sb = Sandbox::new();
    let _server = Server::start(&net, &sb);
    // Small batches (250 records): the logger writes each batch whole.
    let ifc_out = out_ifc("nemea.kill", ":batch=2000");
    let ifc_in = format!("{}:durable=killed:ack_wait=1", out_ifc("nemea.kill", ""));
    let consumer = |n: u32| {
        net.module(
            &sb,
            &net.b,
            "logger",
            &["-i", &ifc_in, "-a", "out.csv"],
            &format!("logger{n}.log"),
        )
    };
    let replay = |file: &str, eos: bool| {
        let mut args = vec!["-i", ifc_out.as_str(), "-f", file];
        if !eos {
            args.push("-n");
        }
        let mut c = net.module(&sb, &net.a, "logreplay", &args, "replay.log");
        wait_exit(
            &mut c,
            Duration::from_secs(30),
            "logreplay",
            &sb,
            "replay.log",
        );
    };
    let mut logger = consumer(1);
    // 1. Killed while idle, everything it was handed acknowledged.
    replay(&csv(&sb, "p1.csv", 1, 10_000), false);
    wait_lines(&sb, "out.csv", 10_000, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    kill9(&mut logger);
    // 2. Records arrive while no consumer runs; the next one is killed
    //    while busy with them.
    replay(&csv(&sb, "p2.csv", 10_001, 60_000), false);
    let mut logger = consumer(2);
    wait_lines(&sb, "out.csv", 20_000, Duration::from_secs(30));
    kill9(&mut logger);
    let at_kill = lines(&sb, "out.csv").len();
    // 3. The rest, with the end of stream; the third consumer ends there.
    replay(&csv(&sb, "p3.csv", 60_001, 70_000), true);
    let mut logger = consumer(3);
    wait_exit(
        &mut logger,
        Duration::from_secs(60),
        "logger",
        &sb,
        "logger3.log",
    );

    let mut got = seqs(&sb, "out.csv");
    let want: Vec<u32> = (1..=70_000).collect();
    // The idle kill and the restarts lost and repeated nothing. The busy
    // kill may repeat one batch (83 records): the one the logger had
    // written but not yet acknowledged when it died (it acknowledges a
    // batch when it asks for the next). Anything else fails.
    if let Some(i) = (1..got.len()).find(|&i| got[i] <= got[i - 1]) {
        let d = (got[i - 1] - got[i] + 1) as usize;
        assert_eq!(i, at_kill, "a repeat away from the busy kill");
        assert!(d <= 83, "{d} records repeated: more than the batch in hand");
        assert_eq!(
            got[i..i + d],
            got[i - d..i],
            "the repeat is not the last batch"
        );
        eprintln!("the busy kill repeated the batch in hand ({d} records)");
        got.drain(i..i + d);
    }
    same(&got, &want, "records out of order or missing");
}

#[test]
fn a_server_restart_mid_stream_loses_nothing() {
    if !prerequisites() {
        return;
    }
    let Some(net) = Net::create() else { return };
    let sb = Sandbox::new();
    let mut server = Server::start(&net, &sb);
    let ifc_out = out_ifc("nemea.restart", ":batch=4000:autoflush=10000");
    let ifc_in = out_ifc("nemea.restart", ":durable=survivor");
    let mut logger = net.module(
        &sb,
        &net.b,
        "logger",
        &["-i", &ifc_in, "-w", "out.csv"],
        "logger.log",
    );
    let p1 = csv(&sb, "p1.csv", 1, 40_000);
    let mut replay = net.module(
        &sb,
        &net.a,
        "logreplay",
        &["-i", &ifc_out, "-n", "-f", &p1],
        "r1.log",
    );
    wait_exit(
        &mut replay,
        Duration::from_secs(30),
        "logreplay",
        &sb,
        "r1.log",
    );
    // Everything of p1 is stored (logreplay waited for the acknowledgements);
    // the consumer is somewhere in it. The server dies (SIGKILL) ...
    server.kill();
    // ... and a producer starts while it is down: it retries.
    let p2 = csv(&sb, "p2.csv", 40_001, 60_000);
    let mut replay = net.module(
        &sb,
        &net.a,
        "logreplay",
        &["-i", &ifc_out, "-f", &p2],
        "r2.log",
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        replay.try_wait().expect("wait").is_none(),
        "logreplay finished without a server"
    );
    server.run(&net, &sb);
    wait_exit(
        &mut replay,
        Duration::from_secs(60),
        "logreplay",
        &sb,
        "r2.log",
    );
    wait_exit(
        &mut logger,
        Duration::from_secs(60),
        "logger",
        &sb,
        "logger.log",
    );
    let got = seqs(&sb, "out.csv");
    let want: Vec<u32> = (1..=60_000).collect();
    same(&got, &want, "after the server restart");
}

#[test]
fn an_unreachable_server_is_retried_and_a_signal_stops_at_once() {
    if !prerequisites() {
        return;
    }
    let Some(net) = Net::create() else { return };
    let sb = Sandbox::new();
    // No server: the consumer says so (at once with -v) and keeps trying.
    let mut logger = net.module(
        &sb,
        &net.b,
        "logger",
        &["-v", "-i", &out_ifc("nemea.none", ""), "-w", "out.csv"],
        "logger.log",
    );
    let t = Instant::now();
    loop {
        let log = std::fs::read_to_string(sb.path("logger.log")).unwrap_or_default();
        if log.contains("cannot reach the NATS server nats://198.51.100.1:4222") {
            assert!(log.contains("retrying"), "{log}");
            assert_eq!(log.lines().count(), 1, "one line, rate-limited: {log}");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no retry message: {log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = Instant::now();
    sh(&["kill", "-TERM", &logger.id().to_string()]);
    let st = logger.wait().expect("wait");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "took {:?}",
        t.elapsed()
    );
    assert!(st.success(), "{st}");
    // A producer too stops within 0.5 s while it cannot reach the server.
    let p = csv(&sb, "p.csv", 1, 1000);
    let mut replay = net.module(
        &sb,
        &net.a,
        "logreplay",
        &["-i", &out_ifc("nemea.none", ""), "-f", &p],
        "replay.log",
    );
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    sh(&["kill", "-INT", &replay.id().to_string()]);
    let _ = replay.wait();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "took {:?}",
        t.elapsed()
    );
    // A bad parameter is a one-line error before anything is opened.
    let out = Command::new(bin("logger"))
        .args(["-i", &format!("j:a:server=nats://{HOST_B}:4222:batch=5")])
        .output()
        .expect("logger");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("batch= applies to j: outputs only"), "{err}");
}

#[test]
fn a_template_change_mid_stream_is_negotiated_by_the_reader() {
    if !prerequisites() {
        return;
    }
    let Some(net) = Net::create() else { return };
    let sb = Sandbox::new();
    let _server = Server::start(&net, &sb);
    std::fs::write(sb.path("a.csv"), "uint32 A,uint16 B\n1,2\n3,4\n").expect("csv");
    std::fs::write(sb.path("b.csv"), "ipaddr X,uint32 A\n203.0.113.5,7\n").expect("csv");
    let ifc = out_ifc("nemea.change", "");
    for (file, eos) in [("a.csv", false), ("b.csv", true)] {
        let mut args = vec!["-i", ifc.as_str(), "-f", file];
        if !eos {
            args.push("-n");
        }
        let mut r = net.module(&sb, &net.a, "logreplay", &args, "replay.log");
        wait_exit(
            &mut r,
            Duration::from_secs(30),
            "logreplay",
            &sb,
            "replay.log",
        );
    }
    // The reader starts after both: each batch announces its own template.
    let mut logger = net.module(
        &sb,
        &net.b,
        "logger",
        &["--json", "-i", &ifc, "-w", "out.json"],
        "logger.log",
    );
    wait_exit(
        &mut logger,
        Duration::from_secs(30),
        "logger",
        &sb,
        "logger.log",
    );
    let got: Vec<serde_json::Value> = lines(&sb, "out.json")
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(
        got,
        vec![
            serde_json::json!({"A": 1, "B": 2}),
            serde_json::json!({"A": 3, "B": 4}),
            serde_json::json!({"X": "203.0.113.5", "A": 7}),
        ]
    );
}
