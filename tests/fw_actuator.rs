//! fw_actuator in network namespaces the tests make (`eb-fw-<pid>-<n>-*`),
//! nft always run inside them (`ip netns exec`), so the host's firewall is
//! never touched. Root and nft are needed (skipped with one line outside
//! CI, required under `CI=true`).

use nemea_rs::{bin, ok_stdout, Sandbox};
use nemea_rs::{ci, prerequisites, sh};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const VICTIM: &str = "198.51.100.10";
const ATTACKER: &str = "198.51.100.1";
const FRIEND: &str = "198.51.100.2";

/// A victim namespace with a bridge `ebbr0` (198.51.100.10) and, behind it,
/// an attacker (198.51.100.1) and a friend (198.51.100.2) namespace.
struct Net {
    v: String,
    a: String,
    w: String,
}

impl Net {
    fn create() -> Option<Net> {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "eb-fw-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let net = Net {
            v: format!("{tag}-v"),
            a: format!("{tag}-a"),
            w: format!("{tag}-w"),
        };
        let (v, a, w) = (net.v.clone(), net.a.clone(), net.w.clone());
        let mut steps: Vec<Vec<String>> = Vec::new();
        let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for ns in [&v, &a, &w] {
            steps.push(s(&["ip", "netns", "add", ns]));
            steps.push(s(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
            ]));
            steps.push(s(&["ip", "-n", ns, "link", "set", "lo", "up"]));
        }
        steps.push(s(&[
            "ip", "-n", &v, "link", "add", "ebbr0", "type", "bridge",
        ]));
        for (ns, port, end, ip) in [
            (&a, "ebva0", "ebaa0", ATTACKER),
            (&w, "ebvw0", "ebww0", FRIEND),
        ] {
            steps.push(s(&[
                "ip", "-n", &v, "link", "add", port, "type", "veth", "peer", "name", end, "netns",
                ns,
            ]));
            steps.push(s(&[
                "ip", "-n", &v, "link", "set", port, "master", "ebbr0", "up",
            ]));
            steps.push(s(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                end,
            ]));
            steps.push(s(&["ip", "-n", ns, "link", "set", end, "up"]));
        }
        steps.push(s(&[
            "ip",
            "-n",
            &v,
            "addr",
            "add",
            &format!("{VICTIM}/24"),
            "dev",
            "ebbr0",
        ]));
        steps.push(s(&["ip", "-n", &v, "link", "set", "ebbr0", "up"]));
        for st in &steps {
            let st: Vec<&str> = st.iter().map(String::as_str).collect();
            if !sh(&st) {
                let what = st.join(" ");
                drop(net);
                assert!(!ci(), "`{what}` failed (required under CI=true)");
                eprintln!("skipped: `{what}` failed");
                return None;
            }
        }
        Some(net)
    }

    /// One ping from `ns` to the victim: did it get an answer?
    fn ping_ok(&self, ns: &str) -> bool {
        sh(&[
            "ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", VICTIM,
        ])
    }

    /// Pings until one is answered (the bridge may still be learning).
    fn wait_reachable(&self, ns: &str) {
        let start = Instant::now();
        while !self.ping_ok(ns) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{ns} never reached the victim"
            );
        }
    }

    fn actuator(&self, sb: &Sandbox, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.v])
            .arg(bin("fw_actuator"))
            .args(["--interface", "ebbr0", "--state"])
            .arg(sb.path("fw-state.json"))
            .args(args)
            .current_dir(sb.dir.path())
            .env("TRAP_SOCKET_DIR", sb.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("fw_actuator")
    }

    fn nft_text(&self) -> String {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.v, "nft", "list", "ruleset"])
            .output()
            .expect("nft");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.v, &self.a, &self.w] {
            sh(&["ip", "netns", "del", ns]);
        }
    }
}

fn list(net: &Net, sb: &Sandbox) -> Vec<serde_json::Value> {
    let out = net.actuator(sb, &["--list"]);
    ok_stdout(&out, "fw_actuator --list")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON rule per line"))
        .collect()
}

fn batch(net: &Net, sb: &Sandbox, text: &str, extra: &[&str]) -> Output {
    std::fs::write(sb.path("batch.json"), text).unwrap();
    let p = sb.path("batch.json");
    let mut args = vec!["--batch", p.to_str().unwrap()];
    args.extend_from_slice(extra);
    net.actuator(sb, &args)
}

#[test]
fn batch_api_insert_append_update_delete_and_malformed() {
    if !prerequisites(&["nft", "ping"]) {
        return;
    }
    let Some(net) = Net::create() else { return };
    let sb = Sandbox::new();
    net.wait_reachable(&net.a);
    // The seed's batch, on documentation addresses.
    let seed = r#"{"rules": [
        {"operation": "insert", "id": 0, "l4proto":"TCP", "src":"198.51.100.100/32", "dst":"198.51.100.150/24", "action":"drop"},
        {"operation": "append", "l4proto": "ICMP", "src":"198.51.100.50/32", "dst":"198.51.100.75/24", "action":"drop"},
        {"operation": "append", "l4proto": "ICMP", "src":"198.51.100.1/32", "dst":"198.51.100.0/24", "action":"drop", "description": "no pings from .1"},
        {"operation": "update", "id": 0, "l4proto":"TCP", "src":"198.51.100.100/32", "dst":"198.51.100.75/24", "action":"forward"},
        {"operation": "delete", "id": 0},
        {"operation": "delete", "l4proto":"ICMP", "src":"198.51.100.50/32", "dst":"198.51.100.75/24", "action":"drop"}
    ]}"#;
    // A dry run prints the transaction and changes nothing.
    let out = batch(&net, &sb, seed, &["--dry-run"]);
    let tx: serde_json::Value = serde_json::from_str(ok_stdout(&out, "dry run").trim()).unwrap();
    assert_eq!(tx["nftables"][2]["flush"]["chain"]["name"], "in_ebbr0");
    assert!(
        !net.nft_text().contains("fw_actuator"),
        "dry run changed nft"
    );
    let out = batch(&net, &sb, seed, &[]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    assert_eq!(
        log.lines()
            .filter(|l| l.starts_with("fw_actuator: ebbr0: "))
            .count(),
        6,
        "{log}"
    );
    let rules = list(&net, &sb);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0]["src"], "198.51.100.1/32");
    assert_eq!(rules[0]["id"], 0);
    // The rule acts: the attacker's pings are dropped and counted, the friend's pass.
    assert!(!net.ping_ok(&net.a), "{}", net.nft_text());
    assert!(net.ping_ok(&net.w));
    let rules = list(&net, &sb);
    assert!(rules[0]["packets"].as_u64().unwrap() >= 1, "{rules:?}");
    // Insert before it a forward rule for the same pings: they pass again.
    let out = batch(
        &net,
        &sb,
        r#"{"rules":[{"operation":"insert","id":0,"l4proto":"ICMP","src":"198.51.100.1","action":"forward","description":"allowed again"}]}"#,
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(net.ping_ok(&net.a));
    // Malformed batches and failing operations: refused, nothing changes.
    let before = net.nft_text();
    for (text, want) in [
        ("{\"rules\": [", "not JSON"),
        (
            r#"{"rules":[{"operation":"insert","src":"198.51.100.9"}]}"#,
            "rule 0: insert needs an \"id\"",
        ),
        (
            r#"{"rules":[{"operation":"append","src":"198.51.100.9"},{"operation":"delete","id":9}]}"#,
            "rule 1: delete of id 9: the ids are 0-2",
        ),
        (
            r#"{"rules":[{"operation":"delete","src":"198.51.100.99"}]}"#,
            "no rule matches",
        ),
        (
            r#"{"rules":[{"operation":"append","l4proto":"UDP","tcpflags":"SYN"}]}"#,
            "needs \"l4proto\" TCP",
        ),
    ] {
        let out = batch(&net, &sb, text, &[]);
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {e}");
        assert!(
            e.starts_with("fw_actuator: error: batch ") && e.contains(want),
            "{text}: {e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    assert_eq!(net.nft_text(), before, "a refused batch changed nft");
    // Update then delete by id; list is empty, nft has no rule left.
    let out = batch(
        &net,
        &sb,
        r#"{"rules":[{"operation":"update","id":1,"l4proto":"TCP","dport":"80-90","tcpflags":"SYN,!ACK","conntrack":"NEW","action":"drop"},{"operation":"delete","id":0},{"operation":"delete","id":0}]}"#,
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rules = list(&net, &sb);
    assert!(rules.is_empty(), "{rules:?}");
    assert!(!net.nft_text().contains("drop"), "{}", net.nft_text());
}

fn csv_time(secs: u64) -> String {
    // 2026-01-01T00:00:00 + secs.
    format!("2026-01-01T00:{:02}:{:02}.000", secs / 60, secs % 60)
}

#[test]
fn flood_alert_to_firewall_drops_the_attacker_spares_the_whitelist_then_expires() {
    if !prerequisites(&["nft", "ping", "hping3"]) {
        return;
    }
    let Some(net) = Net::create() else { return };
    let sb = Sandbox::new();
    net.wait_reachable(&net.a);
    net.wait_reachable(&net.w);
    // The detection input: 6 minutes of flows to the victim, a flood from
    // 40 sources in minutes 3-5 (ddos_detector needs windows of 60 s of
    // flow time, more than a test can wait for live).
    let mut csv =
        String::from("ipaddr SRC_IP,ipaddr DST_IP,uint64 BYTES,time TIME_FIRST,time TIME_LAST\n");
    for m in 0..6u64 {
        for s in 1..=5 {
            let t = csv_time(m * 60 + s);
            csv.push_str(&format!("203.0.113.{s},{VICTIM},460,{t},{t}\n"));
        }
        if (3..6).contains(&m) {
            for s in 0..40u64 {
                for k in 0..50u64 {
                    let t = csv_time(m * 60 + 2 + k);
                    csv.push_str(&format!("192.0.2.{},{VICTIM},40,{t},{t}\n", 10 + s));
                }
            }
        }
    }
    std::fs::write(sb.path("flows.csv"), csv).unwrap();
    ok_stdout(
        &sb.run("logreplay", &["-f", "flows.csv", "-i", "f:flows.trapcap"]),
        "logreplay",
    );
    ok_stdout(
        &sb.run(
            "ddos_detector",
            &[
                "-m",
                "1",
                "-b",
                "0",
                "-p",
                "0",
                "-s",
                "32",
                "-i",
                "f:flows.trapcap,f:alerts.trapcap",
            ],
        ),
        "ddos_detector",
    );
    // The actuator reads the alerts, blocks the flood to the victim for 4 s.
    let act = Command::new("ip")
        .args(["netns", "exec", &net.v])
        .arg(bin("fw_actuator"))
        .args([
            "--interface",
            "ebbr0",
            "--ttl",
            "4",
            "--whitelist",
            &format!("{FRIEND}/32"),
        ])
        .arg("--state")
        .arg(sb.path("fw-state.json"))
        .arg("--log")
        .arg(sb.path("changes.log"))
        .args(["-i", "f:alerts.trapcap"])
        .current_dir(sb.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fw_actuator");
    let start = Instant::now();
    while !net.nft_text().contains("drop") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no rule: {}",
            net.nft_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The attacker's SYN flood and its pings are dropped; the friend passes.
    sh(&[
        "ip", "netns", "exec", &net.a, "hping3", "-q", "-S", "-p", "80", "-c", "2000", "-i",
        "u200", VICTIM,
    ]);
    assert!(
        !net.ping_ok(&net.a),
        "the attacker still reaches the victim"
    );
    assert!(net.ping_ok(&net.w), "the whitelisted friend was blocked");
    let rules = list(&net, &sb);
    let auto = rules
        .iter()
        .find(|r| r["dst"] == format!("{VICTIM}/32"))
        .unwrap_or_else(|| panic!("no auto-rule: {rules:?}"));
    assert!(auto["packets"].as_u64().unwrap() >= 2000, "{auto}");
    assert!(auto["expires"].as_u64().is_some());
    // After the TTL the rule is gone, the actuator ends, the attacker passes.
    let out = nemea_rs::wait_output(act, Duration::from_secs(15), "fw_actuator");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{e}");
    // Expiry counts whole seconds: 3 to 4 s after the rule came.
    assert!(start.elapsed() >= Duration::from_secs(3));
    assert!(e.contains("auto ") && e.contains("expire "), "{e}");
    assert!(!net.nft_text().contains("drop"), "{}", net.nft_text());
    assert!(net.ping_ok(&net.a));
    let log = std::fs::read_to_string(sb.path("changes.log")).unwrap();
    assert_eq!(
        log.lines().count(),
        e.lines().filter(|l| l.contains(": ebbr0: ")).count()
    );
}

#[test]
fn source_alerts_block_the_source_and_bad_options_are_refused() {
    if !prerequisites(&["nft", "ping"]) {
        return;
    }
    let Some(net) = Net::create() else { return };
    let sb = Sandbox::new();
    net.wait_reachable(&net.a);
    let csv = format!(
        "ipaddr SRC_IP,ipaddr DST_IP,uint16 DST_PORT\n{ATTACKER},{VICTIM},22\n{FRIEND},{VICTIM},22\n"
    );
    std::fs::write(sb.path("a.csv"), csv).unwrap();
    ok_stdout(
        &sb.run("logreplay", &["-f", "a.csv", "-i", "f:a.trapcap"]),
        "logreplay",
    );
    let act = Command::new("ip")
        .args(["netns", "exec", &net.v])
        .arg(bin("fw_actuator"))
        .args([
            "--interface",
            "ebbr0",
            "--ttl",
            "2",
            "--whitelist",
            &format!("{FRIEND}/32"),
        ])
        .arg("--state")
        .arg(sb.path("s.json"))
        .args(["-i", "f:a.trapcap"])
        .current_dir(sb.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !net.nft_text().contains(&format!("ip saddr {ATTACKER}")) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{}",
            net.nft_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!net.ping_ok(&net.a));
    assert!(net.ping_ok(&net.w));
    let out = nemea_rs::wait_output(act, Duration::from_secs(10), "fw_actuator");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains(&format!("alert for whitelisted {FRIEND}/32: not blocked")),
        "{e}"
    );
    assert!(net.ping_ok(&net.a));
    for (args, want) in [
        (vec!["--interface", "ebbr0"], "nothing to do"),
        (
            vec!["--interface", "ebbr0", "--list", "--flush"],
            "give one of",
        ),
        (
            vec!["--interface", "ebbr0", "--whitelist", "300.1.1.1", "--list"],
            "--whitelist `300.1.1.1`",
        ),
        (
            vec!["--interface", "bad name!", "--list"],
            "not an interface name",
        ),
        (
            vec!["--interface", "ebbr0", "--batch", "/nonexistent.json"],
            "cannot read the batch",
        ),
    ] {
        let out = sb.run("fw_actuator", &args);
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

/// The chain on live traffic: a friend pings the victim, then the attacker
/// floods it with SYNs from random sources (hping3); tcpdump captures on
/// the victim's bridge, the capture's clock is stretched 100× (ddos_detector
/// compares windows of 60 s of flow time, more than a test can wait for)
/// and read by `session_probe -r`, whose DDoS features go to ddos_detector,
/// whose alert goes to fw_actuator: the attacker is cut off, the friend is
/// not, and the rule expires.
#[test]
fn live_syn_flood_through_session_probe_and_ddos_detector_to_the_firewall() {
    if !prerequisites(&["nft", "ping", "hping3", "tcpdump", "python3"]) {
        return;
    }
    let Some(net) = Net::create() else { return };
    let sb = Sandbox::new();
    net.wait_reachable(&net.a);
    net.wait_reachable(&net.w);
    let pcap = sb.path("live.pcap");
    let mut dump = Command::new("ip")
        .args([
            "netns", "exec", &net.v, "tcpdump", "-i", "ebbr0", "-s", "96",
        ])
        .args(["-U", "--immediate-mode", "-w"])
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    {
        use std::io::BufRead;
        let err = dump.stderr.take().unwrap();
        let mut lines = std::io::BufReader::new(err).lines();
        assert!(lines.any(|l| l.is_ok_and(|l| l.contains("listening on"))));
    }
    let mut pings = Command::new("ip")
        .args([
            "netns", "exec", &net.w, "ping", "-q", "-i", "0.1", "-c", "45", VICTIM,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ping");
    std::thread::sleep(Duration::from_millis(1500));
    sh(&[
        "ip",
        "netns",
        "exec",
        &net.a,
        "hping3",
        "-q",
        "-S",
        "-p",
        "80",
        "--rand-source",
        "-i",
        "u1000",
        "-c",
        "2500",
        VICTIM,
    ]);
    let _ = pings.wait();
    let _ = Command::new("kill")
        .args(["-INT", &dump.id().to_string()])
        .status();
    let _ = dump.wait();
    // Stretch the capture's clock 100× around its first packet.
    let stretch = r#"
import struct, sys
d = open(sys.argv[1], "rb").read()
out = bytearray(d[:24]); i = 24; t0 = None
while i + 16 <= len(d):
    s, us, incl, orig = struct.unpack("<IIII", d[i:i+16])
    t = s * 1000000 + us
    t0 = t if t0 is None else t0
    t = t0 + (t - t0) * 100
    out += struct.pack("<IIII", t // 1000000, t % 1000000, incl, orig) + d[i+16:i+16+incl]
    i += 16 + incl
open(sys.argv[2], "wb").write(out)
"#;
    assert!(sh(&[
        "python3",
        "-c",
        stretch,
        pcap.to_str().unwrap(),
        sb.path("stretched.pcap").to_str().unwrap()
    ]));
    let out = sb.run(
        "session_probe",
        &[
            "-r",
            "stretched.pcap",
            "-w",
            "60",
            "--sessions",
            "65536",
            "-i",
            "f:ddos.trapcap,b:",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sb.run(
        "ddos_detector",
        &[
            "-m",
            "1",
            "-b",
            "0",
            "-p",
            "0",
            "-s",
            "32",
            "-i",
            "f:ddos.trapcap,f:alerts.trapcap",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts = ok_stdout(
        &sb.run("logger", &["-t", "-i", "f:alerts.trapcap"]),
        "logger",
    );
    assert!(
        alerts
            .lines()
            .skip(1)
            .any(|l| l.starts_with(&format!("{VICTIM},"))),
        "{alerts}"
    );
    let act = Command::new("ip")
        .args(["netns", "exec", &net.v])
        .arg(bin("fw_actuator"))
        .args(["--interface", "ebbr0", "--ttl", "3", "--whitelist", FRIEND])
        .arg("--state")
        .arg(sb.path("fw-state.json"))
        .args(["-i", "f:alerts.trapcap"])
        .current_dir(sb.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fw_actuator");
    let start = Instant::now();
    while !net.nft_text().contains(&format!("ip daddr {VICTIM}")) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no rule: {}",
            net.nft_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !net.ping_ok(&net.a),
        "the attacker still reaches the victim"
    );
    assert!(net.ping_ok(&net.w), "the whitelisted friend was blocked");
    let out = nemea_rs::wait_output(act, Duration::from_secs(15), "fw_actuator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!net.nft_text().contains("drop"), "{}", net.nft_text());
    assert!(net.ping_ok(&net.a), "the rule did not expire");
}

/// A request to the endpoint inside the victim namespace (Python's urllib,
/// there): its status and JSON answer.
fn http(net: &Net, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let script = r#"
import sys, json, urllib.request, urllib.error
m, url, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, data=body.encode() if m == "POST" else None, method=m)
try:
    r = urllib.request.urlopen(req, timeout=10)
    print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
"#;
    let out = Command::new("ip")
        .args(["netns", "exec", &net.v, "python3", "-c", script, method])
        .arg(format!("http://127.0.0.1:8750{path}"))
        .arg(body)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, json) = text.split_once('\n').unwrap_or((&text, ""));
    let status = status.trim().parse().unwrap_or_else(|_| {
        panic!(
            "{method} {path}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        status,
        serde_json::from_str(json.trim()).unwrap_or(serde_json::Value::Null),
    )
}

/// The seed's REST batch call: batches and IDEA alerts posted to the
/// endpoint change the firewall, bad requests are refused with a message
/// and change nothing, and the module stops at once on SIGTERM. Then IDEA
/// alerts read from a file (as a reporter writes them) block their sources
/// until the TTL, the whitelist still passing.
#[test]
fn http_endpoint_and_idea_alerts_change_the_firewall() {
    if !prerequisites(&["nft", "ping", "python3"]) {
        return;
    }
    let Some(net) = Net::create() else { return };
    let sb = Sandbox::new();
    net.wait_reachable(&net.a);
    let act = Command::new("ip")
        .args(["netns", "exec", &net.v])
        .arg(bin("fw_actuator"))
        .args(["--interface", "ebbr0", "--http", "127.0.0.1:8750"])
        .args(["--whitelist", &format!("{FRIEND}/32"), "--state"])
        .arg(sb.path("h.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let (status, _) = loop {
        let r = http(&net, "GET", "/rules", "");
        if r.0 == 200 || start.elapsed() > Duration::from_secs(10) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 200);
    let drop_attacker = format!(
        r#"{{"rules":[{{"operation":"append","src":"{ATTACKER}","action":"drop","description":"posted"}}]}}"#
    );
    let (status, j) = http(&net, "POST", "/batch", &drop_attacker);
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["applied"], 1, "{j}");
    assert!(!net.ping_ok(&net.a));
    assert!(net.ping_ok(&net.w));
    let (status, j) = http(&net, "GET", "/rules", "");
    assert_eq!(status, 200);
    let rules = j["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 1, "{j}");
    assert_eq!(rules[0]["src"], format!("{ATTACKER}/32"), "{j}");
    assert!(rules[0]["packets"].as_u64().is_some_and(|p| p >= 1), "{j}");
    // Refused, with a reason, changing nothing.
    for (method, path, body, want) in [
        (
            "POST",
            "/batch",
            r#"{"rules":[{"operation":"insert","action":"drop"}]}"#,
            400,
        ),
        ("POST", "/batch", "{not json", 400),
        ("POST", "/idea", "{\"Source\":[]}\nnot json\n", 400),
        ("GET", "/batch", "", 405),
        ("GET", "/nothing", "", 404),
    ] {
        let (status, j) = http(&net, method, path, body);
        assert_eq!(status, want, "{method} {path}: {j}");
        assert!(j["error"].as_str().is_some_and(|e| !e.is_empty()), "{j}");
    }
    assert_eq!(
        http(&net, "GET", "/rules", "").1["rules"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // Delete by id, then an IDEA alert for the attacker and the friend.
    let (status, j) = http(
        &net,
        "POST",
        "/batch",
        r#"{"rules":[{"operation":"delete","id":0}]}"#,
    );
    assert_eq!(status, 200, "{j}");
    assert!(net.ping_ok(&net.a));
    let idea = format!(
        "{{\"Category\":[\"Recon.Scanning\"],\"Source\":[{{\"IP4\":[\"{ATTACKER}\",\"{FRIEND}\"]}}]}}\n"
    );
    let (status, j) = http(&net, "POST", "/idea", &idea);
    assert_eq!(status, 200, "{j}");
    assert!(!net.ping_ok(&net.a));
    assert!(net.ping_ok(&net.w));
    let t = Instant::now();
    signal(&act, "TERM");
    let out = nemea_rs::wait_output(act, Duration::from_secs(5), "fw_actuator");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{e}");
    assert!(e.contains("alert for whitelisted"), "{e}");

    // IDEA alerts from a file: the attacker blocked for 2 s, a bad line
    // skipped with its number, the whitelisted friend never blocked.
    sh(&[
        "ip",
        "netns",
        "exec",
        &net.v,
        "nft",
        "delete",
        "table",
        "inet",
        "fw_actuator",
    ]);
    let file = sb.path("alerts.idea");
    std::fs::write(
        &file,
        format!(
            "{{\"Category\":[\"Attempt.Login\"],\"Source\":[{{\"IP4\":[\"{ATTACKER}\"]}}]}}\n[1]\n{{\"Source\":[{{\"IP4\":[\"{FRIEND}\"]}}]}}\n"
        ),
    )
    .unwrap();
    let act = Command::new("ip")
        .args(["netns", "exec", &net.v])
        .arg(bin("fw_actuator"))
        .args(["--interface", "ebbr0", "--ttl", "2", "--idea"])
        .arg(&file)
        .args(["--whitelist", &format!("{FRIEND}/32"), "--state"])
        .arg(sb.path("i.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !net.nft_text().contains(&format!("ip saddr {ATTACKER}")) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{}",
            net.nft_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!net.ping_ok(&net.a));
    assert!(net.ping_ok(&net.w));
    let out = nemea_rs::wait_output(act, Duration::from_secs(10), "fw_actuator");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{e}");
    assert!(e.contains("--idea line 2 skipped"), "{e}");
    assert!(
        e.contains(&format!("alert for whitelisted {FRIEND}/32")),
        "{e}"
    );
    assert!(e.contains("expire"), "{e}");
    assert!(net.ping_ok(&net.a));
}

/// Sends a signal to a child by its pid (`kill -SIG PID`).
fn signal(child: &std::process::Child, sig: &str) {
    sh(&["kill", &format!("-{sig}"), &child.id().to_string()]);
}

/// A bpffs of the test's own (`ip netns exec` hides the host's
/// /sys/fs/bpf), unmounted on drop.
struct Bpffs(std::path::PathBuf);

impl Bpffs {
    fn mount(sb: &Sandbox) -> Option<Bpffs> {
        let dir = sb.path("bpffs");
        std::fs::create_dir_all(&dir).unwrap();
        if !sh(&["mount", "-t", "bpf", "bpf", dir.to_str().unwrap()]) {
            assert!(!ci(), "cannot mount bpffs (required under CI=true)");
            eprintln!("skipped: cannot mount bpffs");
            return None;
        }
        Some(Bpffs(dir))
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        sh(&["umount", "-l", self.0.to_str().unwrap()]);
    }
}

/// The XDP backend: a batch's source rule drops the attacker at the driver
/// (the program stays attached after --batch exits, with its counters in
/// --list), a rule that needs more than an address is refused, an alert
/// for a flood to the victim drops everyone but the whitelisted friend
/// until its TTL, and --flush detaches the program.
#[test]
fn xdp_backend_drops_by_prefix_and_detaches_on_flush() {
    if !prerequisites(&["ping"]) {
        return;
    }
    let Some(net) = Net::create() else { return };
    let sb = Sandbox::new();
    let Some(fs) = Bpffs::mount(&sb) else { return };
    net.wait_reachable(&net.a);
    net.wait_reachable(&net.w);
    let bpffs = fs.0.to_str().unwrap().to_string();
    let xdp = ["--backend", "xdp", "--bpffs", &bpffs];
    let attached = || {
        let o = Command::new("ip")
            .args(["-n", &net.v, "link", "show", "ebbr0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).contains("prog/xdp")
    };
    let drop_attacker = format!(
        r#"{{"rules":[{{"operation":"append","src":"{ATTACKER}","action":"drop","description":"xdp"}}]}}"#
    );
    let out = batch(&net, &sb, &drop_attacker, &xdp);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(attached());
    assert!(!net.ping_ok(&net.a));
    assert!(net.ping_ok(&net.w));
    let mut args = vec!["--list"];
    args.extend_from_slice(&xdp);
    let rules: Vec<serde_json::Value> = ok_stdout(&net.actuator(&sb, &args), "--list")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert!(
        rules[0]["packets"].as_u64().is_some_and(|p| p >= 1),
        "{rules:?}"
    );
    let ports = format!(
        r#"{{"rules":[{{"operation":"append","l4proto":"TCP","dport":22,"src":"{FRIEND}","action":"drop"}}]}}"#
    );
    let out = batch(&net, &sb, &ports, &xdp);
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("the xdp backend matches one source or destination prefix only"),
        "{e}"
    );
    assert!(!net.ping_ok(&net.a));
    // Delete the rule; then a flood alert (DST_IP only) with the friend
    // whitelisted.
    let out = batch(
        &net,
        &sb,
        r#"{"rules":[{"operation":"delete","id":0}]}"#,
        &xdp,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(net.ping_ok(&net.a));
    std::fs::write(sb.path("flood.csv"), format!("ipaddr DST_IP\n{VICTIM}\n")).unwrap();
    ok_stdout(
        &sb.run("logreplay", &["-f", "flood.csv", "-i", "f:flood.trapcap"]),
        "logreplay",
    );
    let act = Command::new("ip")
        .args(["netns", "exec", &net.v])
        .arg(bin("fw_actuator"))
        .args([
            "--interface",
            "ebbr0",
            "--ttl",
            "2",
            "--whitelist",
            &format!("{FRIEND}/32"),
        ])
        .args(xdp)
        .arg("--state")
        .arg(sb.path("fw-state.json"))
        .args(["-i", "f:flood.trapcap"])
        .current_dir(sb.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while net.ping_ok(&net.a) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the flood rule never came"
        );
    }
    assert!(net.ping_ok(&net.w), "the whitelisted friend was cut off");
    let out = nemea_rs::wait_output(act, Duration::from_secs(10), "fw_actuator");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{e}");
    assert!(e.contains("expire"), "{e}");
    assert!(net.ping_ok(&net.a));
    let mut args = vec!["--flush"];
    args.extend_from_slice(&xdp);
    let out = net.actuator(&sb, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!attached());
}

/// Background processes of a test, stopped with SIGTERM (then SIGKILL) on
/// drop, whatever the test's outcome.
struct Procs(Vec<std::process::Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            signal(c, "TERM");
        }
        std::thread::sleep(Duration::from_millis(300));
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The mitigation chain live, nothing replayed: session_probe's eBPF
/// program on the victim's bridge → ddos_detector with windows of 1 s →
/// fw_actuator's XDP backend, all running while hping3 floods the victim
/// with SYNs from random sources and a whitelisted friend pings it. The
/// flood's alert cuts the attacker off at the driver, the friend still
/// passes, and once the flood is over the rule expires after its TTL.
#[test]
fn live_mitigation_chain_probe_detector_xdp_firewall() {
    if !prerequisites(&["ping", "hping3"]) {
        return;
    }
    let Some(net) = Net::create() else { return };
    let sb = Sandbox::new();
    let Some(fs) = Bpffs::mount(&sb) else { return };
    net.wait_reachable(&net.a);
    net.wait_reachable(&net.w);
    let in_victim = |prog: &str, args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &net.v])
            .arg(bin(prog))
            .args(args)
            .current_dir(sb.dir.path())
            .env("TRAP_SOCKET_DIR", sb.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{prog}: {e}"))
    };
    let mut procs = Procs(Vec::new());
    procs.0.push(in_victim(
        "session_probe",
        &[
            "-I",
            "ebbr0",
            "-w",
            "1",
            "--sessions",
            "65536",
            "-i",
            "u:feat,b:",
        ],
    ));
    sb.wait_socket("feat");
    procs.0.push(in_victim(
        "ddos_detector",
        &[
            "--window",
            "1",
            "-m",
            "1",
            "-b",
            "0",
            "-p",
            "0",
            "-s",
            "32",
            "-i",
            "u:feat,u:alerts",
        ],
    ));
    sb.wait_socket("alerts");
    let bpffs = fs.0.to_str().unwrap().to_string();
    let state = sb.path("fw-state.json");
    let act = in_victim(
        "fw_actuator",
        &[
            "--interface",
            "ebbr0",
            "--backend",
            "xdp",
            "--bpffs",
            &bpffs,
            "--ttl",
            "3",
            "--whitelist",
            FRIEND,
            "--state",
            state.to_str().unwrap(),
            "-i",
            "u:alerts",
        ],
    );
    // A baseline of the friend's pings, then the flood beside them.
    let mut pings = Command::new("ip")
        .args([
            "netns", "exec", &net.w, "ping", "-q", "-i", "0.1", "-c", "150", VICTIM,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ping");
    std::thread::sleep(Duration::from_secs(4));
    let flood = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.a,
            "hping3",
            "-q",
            "-S",
            "-p",
            "80",
            "--rand-source",
        ])
        .args(["-i", "u500", "-c", "60000", VICTIM])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hping3");
    procs.0.push(flood);
    let start = Instant::now();
    while net.ping_ok(&net.a) {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the flood was never blocked"
        );
    }
    let blocked_after = start.elapsed();
    assert!(net.ping_ok(&net.w), "the whitelisted friend was cut off");
    // The flood ends; the rule expires 3 s after the last alert.
    if let Some(mut flood) = procs.0.pop() {
        let _ = flood.kill();
        let _ = flood.wait();
    }
    let start = Instant::now();
    while !net.ping_ok(&net.a) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the rule never expired"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = pings.kill();
    let _ = pings.wait();
    // Stop the chain from its head: the end of stream reaches the actuator,
    // which then exits (its last rule is gone).
    for c in &procs.0 {
        signal(c, "TERM");
    }
    let out = nemea_rs::wait_output(act, Duration::from_secs(10), "fw_actuator");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{e}");
    assert!(e.contains(&format!("flood to {VICTIM}")), "{e}");
    assert!(e.contains("expire"), "{e}");
    eprintln!("blocked {blocked_after:?} after the flood began");
    let mut args = vec!["--flush", "--backend", "xdp", "--bpffs", &bpffs];
    args.extend(["--state", state.to_str().unwrap()]);
    let o = Command::new("ip")
        .args(["netns", "exec", &net.v])
        .arg(bin("fw_actuator"))
        .args(["--interface", "ebbr0"])
        .args(&args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
