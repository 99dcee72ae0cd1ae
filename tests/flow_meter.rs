//! flow_meter end to end: ipfixprobe's functional tests, robustness on the
//! shared capture collection, live capture on a veth pair between two
//! network namespaces, and the argument and capture errors.

use nemea_rs::{bin, interrupt, ok_stdout, shared_data, wait_output, Sandbox};
use nemea_rs::{ci, is_root, sh};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// ipfixprobe's functional suite (skipped outside CI when absent).
fn functional() -> Option<PathBuf> {
    shared_data("ipfixprobe-functional")
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// ipfixprobe's run_test.sh: pcap → flow_meter → f: → logger -t → sort → diff.
fn functional_test(plugin: &str, pcap: &str, expected: &str) {
    let Some(dir) = functional() else { return };
    let sb = Sandbox::new();
    let pcap = dir.join("inputs").join(pcap);
    ok_stdout(
        &sb.run(
            "flow_meter",
            &[
                "-r",
                pcap.to_str().unwrap(),
                "-p",
                plugin,
                "-L",
                "0",
                "-i",
                "f:out.trapcap:buffer=off:timeout=WAIT",
            ],
        ),
        "flow_meter",
    );
    let got = ok_stdout(&sb.run("logger", &["-i", "f:out.trapcap", "-t"]), "logger");
    let want = std::fs::read_to_string(dir.join("outputs").join(expected)).unwrap();
    let (got, want) = (sorted_lines(&got), sorted_lines(&want));
    if got != want {
        let missing: Vec<_> = want.iter().filter(|l| !got.contains(l)).collect();
        let extra: Vec<_> = got.iter().filter(|l| !want.contains(l)).collect();
        panic!(
            "{plugin}: {} lines differ\nmissing: {missing:#?}\nextra: {extra:#?}",
            missing.len() + extra.len()
        );
    }
}

// ipfixprobe's 24 functional tests (tests/functional/CMakeLists.txt): one
// plugin, one capture, the expected sorted `logger -t` text.
#[test]
fn ipfixprobe_functional_basic() {
    functional_test("basic", "mixed.pcap", "basic");
}

#[test]
fn ipfixprobe_functional_basicplus() {
    functional_test("basicplus", "http.pcap", "basicplus");
}

#[test]
fn ipfixprobe_functional_bstats() {
    functional_test("bstats", "bstats.pcap", "bstats");
}

#[test]
fn ipfixprobe_functional_dns() {
    functional_test("dns", "dns.pcap", "dns");
}

#[test]
fn ipfixprobe_functional_dnssd() {
    functional_test("dnssd", "dnssd.pcap", "dnssd");
}

#[test]
fn ipfixprobe_functional_http() {
    functional_test("http", "http.pcap", "http");
}

#[test]
fn ipfixprobe_functional_idpcontent() {
    functional_test("idpcontent", "idpcontent.pcap", "idpcontent");
}

#[test]
fn ipfixprobe_functional_mqtt() {
    functional_test("mqtt", "mqtt.pcap", "mqtt");
}

#[test]
fn ipfixprobe_functional_netbios() {
    functional_test("netbios", "netbios.pcap", "netbios");
}

#[test]
fn ipfixprobe_functional_ovpn() {
    functional_test("ovpn", "ovpn.pcap", "ovpn");
}

#[test]
fn ipfixprobe_functional_passivedns() {
    functional_test("passivedns", "dns.pcap", "passivedns");
}

#[test]
fn ipfixprobe_functional_phists() {
    functional_test("phists", "mixed.pcap", "phists");
}

#[test]
fn ipfixprobe_functional_pstats() {
    functional_test("pstats", "mixed.pcap", "pstats");
}

#[test]
fn ipfixprobe_functional_quic() {
    functional_test("quic", "quic_initial-sample.pcap", "quic");
}

#[test]
fn ipfixprobe_functional_smtp() {
    functional_test("smtp", "smtp.pcap", "smtp");
}

#[test]
fn ipfixprobe_functional_ssadetector() {
    functional_test("ssadetector", "ovpn.pcap", "ssadetector");
}

#[test]
fn ipfixprobe_functional_ssdp() {
    functional_test("ssdp", "ssdp.pcap", "ssdp");
}

#[test]
fn ipfixprobe_functional_tls() {
    functional_test("tls", "tls.pcap", "tls");
}

#[test]
fn ipfixprobe_functional_vlan() {
    functional_test("vlan", "vlan.pcap", "vlan");
}

#[test]
fn ipfixprobe_functional_wg() {
    functional_test("wg", "wg.pcap", "wg");
}

#[test]
fn ipfixprobe_functional_sip() {
    functional_test("sip", "sip.pcap", "sip");
}

#[test]
fn ipfixprobe_functional_rtsp() {
    functional_test("rtsp", "rtsp.pcap", "rtsp");
}

#[test]
fn ipfixprobe_functional_ntp() {
    functional_test("ntp", "ntp.pcap", "ntp");
}

#[test]
fn ipfixprobe_functional_nettisa() {
    functional_test("nettisa", "mixed.pcap", "nettisa");
}

#[test]
fn every_shared_capture_runs_through_every_plugin_without_a_panic() {
    let Some(root) = shared_data("pcaps") else {
        return;
    };
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("md" | "tsv" | "txt") | None
            ) || p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("pcap"))
            {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() > 100, "only {} captures found", files.len());
    let sb = Sandbox::new();
    // Every plugin at once, each on its own interface, next to basic.
    let list = ok_stdout(&sb.run("flow_meter", &["-p", "list"]), "flow_meter -p list");
    let plugins: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(plugins.len() >= 4, "{list}");
    let p = plugins.join(",");
    let ifcs = vec!["b:"; plugins.len()].join(",");
    let (mut ok, mut refused) = (0, 0);
    for f in &files {
        let out = sb.run(
            "flow_meter",
            &["-r", f.to_str().unwrap(), "-p", &p, "-i", &ifcs],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{}: {err}", f.display());
        assert!(
            out.status.code().is_some(),
            "{}: killed by a signal",
            f.display()
        );
        if out.status.success() {
            ok += 1;
        } else {
            assert_eq!(
                err.lines().count(),
                1,
                "{}: one-line error expected: {err}",
                f.display()
            );
            assert!(
                err.starts_with("flow_meter: error: "),
                "{}: {err}",
                f.display()
            );
            refused += 1;
        }
    }
    eprintln!("{ok} captures processed, {refused} refused with an error");
    assert!(ok > files.len() / 2);
}

#[test]
fn bad_captures_and_arguments() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("junk.pcap"), b"definitely not a capture").unwrap();
    let o = sb.run("flow_meter", &["-r", "junk.pcap", "-i", "b:"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read junk.pcap"));
    let o = sb.run("flow_meter", &["-r", "x.pcap", "-p", "http2", "-i", "b:"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown plugin `http2`"));
    let o = sb.run("flow_meter", &["-i", "b:"]);
    assert!(!o.status.success());
    if let Some(dir) = functional() {
        // A capture cut in the middle of a packet: the flows before the cut
        // are exported, then a one-line error.
        let bytes = std::fs::read(dir.join("inputs/mixed.pcap")).unwrap();
        std::fs::write(sb.path("cut.pcap"), &bytes[..bytes.len() / 2 + 7]).unwrap();
        let o = sb.run("flow_meter", &["-r", "cut.pcap", "-i", "f:cut.trapcap"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && !err.contains("panicked"), "{err}");
        let text = ok_stdout(&sb.run("logger", &["-i", "f:cut.trapcap"]), "logger");
        assert!(text.lines().count() > 5, "flows before the cut: {text}");
        let o = sb.run(
            "flow_meter",
            &[
                "-r",
                dir.join("inputs/mixed.pcap").to_str().unwrap(),
                "-f",
                "udp and port 53 and (",
                "-i",
                "b:",
            ],
        );
        assert!(String::from_utf8_lossy(&o.stderr).contains("bad filter"));
    }
}

#[test]
fn filter_and_count_limit() {
    let Some(dir) = functional() else { return };
    let sb = Sandbox::new();
    let pcap = dir.join("inputs/mixed.pcap");
    ok_stdout(
        &sb.run(
            "flow_meter",
            &[
                "-r",
                pcap.to_str().unwrap(),
                "-f",
                "icmp",
                "-i",
                "f:icmp.trapcap",
            ],
        ),
        "flow_meter",
    );
    let text = ok_stdout(&sb.run("logger", &["-i", "f:icmp.trapcap"]), "logger");
    assert!(!text.is_empty());
    assert!(
        text.lines().all(|l| l.split(',').nth(14) == Some("1")),
        "{text}"
    );
    ok_stdout(
        &sb.run(
            "flow_meter",
            &[
                "-r",
                pcap.to_str().unwrap(),
                "-c",
                "1",
                "-i",
                "f:one.trapcap",
            ],
        ),
        "flow_meter",
    );
    let text = ok_stdout(&sb.run("logger", &["-i", "f:one.trapcap"]), "logger");
    assert_eq!(text.lines().count(), 1);
}

/// `-r` reads a classic pcap from its memory map and leaves pcapng (and any
/// `-f` filter) to libpcap: the same packets give the same flows either way,
/// with microsecond or nanosecond stamps.
#[test]
fn mapped_and_libpcap_reading_agree() {
    let Some(dir) = functional() else { return };
    if !sh(&["editcap", "-h"]) {
        assert!(!ci(), "editcap (wireshark-common, with tshark) is missing");
        eprintln!("skipped: no editcap");
        return;
    }
    let sb = Sandbox::new();
    let pcap = dir.join("inputs/mixed.pcap");
    let pcap = pcap.to_str().unwrap();
    let ng = sb.path("mixed.pcapng");
    let ns = sb.path("mixed-ns.pcap");
    assert!(sh(&["editcap", "-F", "pcapng", pcap, ng.to_str().unwrap()]));
    assert!(sh(&[
        "editcap",
        "-F",
        "nsecpcap",
        pcap,
        ns.to_str().unwrap()
    ]));
    let flows = |input: &str, extra: &[&str]| {
        let mut args = vec!["-r", input, "-p", "http,dns,tls", "-i", "f:out.trapcap"];
        args.extend_from_slice(extra);
        ok_stdout(&sb.run("flow_meter", &args), "flow_meter");
        ok_stdout(&sb.run("logger", &["-t", "-i", "f:out.trapcap"]), "logger")
    };
    let mapped = flows(pcap, &[]);
    assert!(mapped.lines().count() > 10, "{mapped}");
    assert_eq!(flows(ng.to_str().unwrap(), &[]), mapped, "pcapng (libpcap)");
    assert_eq!(flows(ns.to_str().unwrap(), &[]), mapped, "nanosecond pcap");
    // A filter that passes everything: libpcap reads the file.
    assert_eq!(flows(pcap, &["-f", "ip or ip6 or not ip"]), mapped, "-f");
}

/// The capture side of [`VethPair`] and its address (documentation range).
const CAP_IF: &str = "nrscap0";
const CAP_IP: &str = "198.51.100.1";
/// The side that sends the traffic.
const PEER_IF: &str = "nrspeer0";
const PEER_IP: &str = "198.51.100.2";

/// Two network namespaces `nrs-live-<pid>-<n>-{c,p}` joined by a veth pair
/// (`CAP_IF` in the first, `PEER_IF` in the second), IPv6 off so that the
/// link is quiet unless a test sends something. Nothing is added to the root
/// namespace; both namespaces (and so the pair) are deleted on drop.
struct VethPair {
    cap: String,
    peer: String,
}

impl VethPair {
    /// `None`, with one printed reason, where namespaces cannot be created;
    /// under `CI=true` that fails the test instead.
    fn create() -> Option<VethPair> {
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "nrs-live-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let pair = VethPair {
            cap: format!("{tag}-c"),
            peer: format!("{tag}-p"),
        };
        match pair.set_up() {
            Ok(()) => Some(pair),
            Err(why) => {
                drop(pair);
                assert!(
                    !ci(),
                    "network namespaces are required under CI=true: {why}"
                );
                eprintln!("skipped: cannot create network namespaces here ({why})");
                None
            }
        }
    }

    fn set_up(&self) -> Result<(), String> {
        let (c, p) = (self.cap.as_str(), self.peer.as_str());
        let cap_addr = format!("{CAP_IP}/24");
        let peer_addr = format!("{PEER_IP}/24");
        let no_v6 = [
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ];
        let mut steps: Vec<Vec<&str>> =
            vec![vec!["ip", "netns", "add", c], vec!["ip", "netns", "add", p]];
        for ns in [c, p] {
            let mut s = vec!["ip", "netns", "exec", ns];
            s.extend(no_v6);
            steps.push(s);
        }
        steps.extend([
            vec![
                "ip", "-n", c, "link", "add", CAP_IF, "type", "veth", "peer", "name", PEER_IF,
                "netns", p,
            ],
            vec!["ip", "-n", c, "addr", "add", &cap_addr, "dev", CAP_IF],
            vec!["ip", "-n", p, "addr", "add", &peer_addr, "dev", PEER_IF],
            vec!["ip", "-n", c, "link", "set", CAP_IF, "up"],
            vec!["ip", "-n", p, "link", "set", PEER_IF, "up"],
            vec!["ip", "-n", c, "link", "set", "lo", "up"],
            vec!["ip", "-n", p, "link", "set", "lo", "up"],
        ]);
        for step in &steps {
            if !sh(step) {
                return Err(format!("`{}` failed", step.join(" ")));
            }
        }
        Ok(())
    }

    /// Module `name` running in the capture namespace, in the sandbox.
    fn cmd_on_cap(&self, sb: &Sandbox, name: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.cap])
            .arg(bin(name))
            .args(args)
            .current_dir(sb.dir.path())
            .env("TRAP_SOCKET_DIR", sb.dir.path())
            .env("TZ", "UTC");
        c
    }

    /// `count` pings from the peer to the capture side, 0.2 s apart.
    fn ping(&self, count: u32) {
        let n = count.to_string();
        let args = [
            "ip", "netns", "exec", &self.peer, "ping", "-c", &n, "-i", "0.2", "-W", "2", CAP_IP,
        ];
        assert!(sh(&args), "`{}` failed", args.join(" "));
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        sh(&["ip", "netns", "del", &self.cap]);
        sh(&["ip", "netns", "del", &self.peer]);
    }
}

type Lines = mpsc::Receiver<(Instant, String)>;

/// A module running in the background whose output lines are timed as they
/// come; killed (by its PID) if still running when dropped.
struct Running {
    name: String,
    child: Child,
    out: Lines,
    err: Lines,
    /// stderr lines taken so far (for failure messages).
    err_seen: Vec<String>,
}

impl Running {
    fn start(mut cmd: Command, name: &str) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        fn reader(r: impl std::io::Read + Send + 'static) -> Lines {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((Instant::now(), line)).is_err() {
                        break;
                    }
                }
            });
            rx
        }
        let out = reader(child.stdout.take().expect("piped stdout"));
        let err = reader(child.stderr.take().expect("piped stderr"));
        Running {
            name: name.to_string(),
            child,
            out,
            err,
            err_seen: Vec::new(),
        }
    }

    /// The first stdout line matching `want` before `until`.
    fn out_line(&self, until: Instant, want: impl Fn(&str) -> bool) -> Option<(Instant, String)> {
        next_line(&self.out, until, want, &mut |_| {})
    }

    /// The first stderr line matching `want` before `until`.
    fn err_line(&mut self, until: Instant, want: impl Fn(&str) -> bool) -> Option<String> {
        let seen = &mut self.err_seen;
        next_line(&self.err, until, want, &mut |l| seen.push(l.to_string())).map(|(_, l)| l)
    }

    /// Everything on stderr so far.
    fn stderr(&mut self) -> String {
        while let Ok((_, l)) = self.err.try_recv() {
            self.err_seen.push(l);
        }
        self.err_seen.join("\n")
    }

    /// The exit status if the module ends within `limit`.
    fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGINT; the module must then exit successfully within `limit`.
    fn interrupt_and_wait(&mut self, limit: Duration) -> Duration {
        let sent = Instant::now();
        interrupt(&self.child);
        let status = self.wait(limit);
        let took = sent.elapsed();
        let name = self.name.clone();
        let err = self.stderr();
        let status = status.unwrap_or_else(|| {
            panic!("{name} still running {limit:?} after one SIGINT; stderr:\n{err}")
        });
        assert!(
            status.success(),
            "{name} exited with {status}; stderr:\n{err}"
        );
        took
    }
}

fn next_line(
    rx: &Lines,
    until: Instant,
    want: impl Fn(&str) -> bool,
    seen: &mut dyn FnMut(&str),
) -> Option<(Instant, String)> {
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        let (at, line) = rx.recv_timeout(left).ok()?;
        seen(&line);
        if want(&line) {
            return Some((at, line));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// flow_meter's `-S` line: `(bytes, packets, B/s, PPS)`.
fn stats_line(line: &str) -> Option<(f64, f64, f64, f64)> {
    let rest = line.strip_prefix("=== ")?.split_once(" === ")?.1;
    let mut v = rest.split(", ").map(|part| {
        let (num, _unit) = part.split_once(' ')?;
        num.parse::<f64>().ok()
    });
    let got = (v.next()??, v.next()??, v.next()??, v.next()??);
    rest.ends_with(" PPS").then_some(got)
}

/// The used-by line on a quiet link: `flow_meter -I IFACE -t 300:2 -S -i u:`
/// with a logger, three pings, then nothing.
#[test]
fn live_capture_on_a_quiet_link_exports_on_time_and_stops_at_once() {
    let Some(ns) = VethPair::create() else { return };
    let sb = Sandbox::new();
    let started = Instant::now();
    let mut meter = Running::start(
        ns.cmd_on_cap(
            &sb,
            "flow_meter",
            &["-I", CAP_IF, "-t", "300:2", "-S", "-v", "-i", "u:live"],
        ),
        "flow_meter",
    );
    sb.wait_socket("live");
    let mut logger = {
        let mut c = sb.cmd("logger");
        c.args(["-t", "-i", "u:live"]);
        Running::start(c, "logger")
    };
    let connected = meter.err_line(Instant::now() + Duration::from_secs(10), |l| {
        l.contains("u:live: client") && l.ends_with("connected")
    });
    assert!(
        connected.is_some(),
        "logger never connected: {}",
        meter.stderr()
    );
    ns.ping(3);
    // ping ends right after the last reply: the last packet of the flow.
    let last_packet = Instant::now();
    let icmp = |l: &str| {
        // DST_IP,SRC_IP,BYTES,BYTES_REV,LINK,TF,TL,DMAC,SMAC,PACKETS,PACKETS_REV,DPORT,SPORT,DIR,PROTO,...
        let f: Vec<&str> = l.split(',').collect();
        f.len() > 14
            && f[14] == "1"
            && [f[0], f[1]].contains(&CAP_IP)
            && [f[0], f[1]].contains(&PEER_IP)
    };
    let (at, flow) = logger
        .out_line(last_packet + Duration::from_secs(6), icmp)
        .unwrap_or_else(|| {
            panic!(
                "no ICMP flow reached the logger; flow_meter: {}",
                meter.stderr()
            )
        });
    let f: Vec<&str> = flow.split(',').collect();
    assert_eq!((f[9], f[10]), ("3", "3"), "{flow}");
    let delay = at.duration_since(last_packet);
    eprintln!("the flow reached the logger {delay:?} after its last packet");
    assert!(
        delay <= Duration::from_secs(3),
        "the flow reached the logger {delay:?} after its last packet (inactive timeout 2 s)"
    );
    // -S: a line every 2 s, idle ones included, in plain units.
    let mut stats = Vec::new();
    while stats.len() < 4 {
        let until = started + Duration::from_secs(12);
        let (at, line) = meter
            .out_line(until, |l| l.starts_with("=== "))
            .unwrap_or_else(|| panic!("only {} -S lines in 12 s: {stats:?}", stats.len()));
        let parsed = stats_line(&line).unwrap_or_else(|| panic!("not an L7Spy line: {line}"));
        stats.push((at, line, parsed));
    }
    for w in stats.windows(2) {
        let gap = w[1].0.duration_since(w[0].0);
        assert!(
            gap >= Duration::from_millis(1800) && gap <= Duration::from_millis(2400),
            "-S lines {gap:?} apart: {:?} / {:?}",
            w[0].1,
            w[1].1
        );
    }
    for (_, line, (bytes, packets, bps, pps)) in &stats {
        // Rates of a 2 s period in plain units: bytes/2 B/s, packets/2 PPS.
        assert!((bps - bytes / 2.0).abs() <= bytes * 0.05 + 0.001, "{line}");
        assert!(
            (pps - packets / 2.0).abs() <= packets * 0.05 + 0.001,
            "{line}"
        );
    }
    let traffic: f64 = stats.iter().map(|s| s.2 .1).sum();
    assert!(traffic >= 6.0, "the pings are counted: {stats:?}");
    let idle = stats
        .iter()
        .filter(|s| s.1.ends_with(" 0 Bytes, 0 packets, 0.000 B/s, 0.000 PPS"))
        .count();
    assert!(idle >= 2, "idle periods print too: {stats:?}");
    // SIGINT with no traffic: flow_meter stops at once and sends end of stream.
    let took = meter.interrupt_and_wait(Duration::from_secs(1));
    eprintln!("flow_meter stopped {took:?} after SIGINT");
    let status = logger.wait(Duration::from_secs(3));
    let err = logger.stderr();
    let status = status.unwrap_or_else(|| panic!("logger did not end on end of stream: {err}"));
    assert!(status.success(), "logger: {status}: {err}");
}

/// Live capture to a `f:` file: one SIGINT writes every cached flow, the end
/// of stream, and exits 0 (a second signal is not needed).
#[test]
fn live_capture_to_a_file_is_complete_after_one_sigint() {
    let Some(ns) = VethPair::create() else { return };
    let sb = Sandbox::new();
    let mut meter = Running::start(
        ns.cmd_on_cap(
            &sb,
            "flow_meter",
            &["-I", CAP_IF, "-i", "f:live.trapcap", "-t", "300:30"],
        ),
        "flow_meter",
    );
    // The service socket appears after the capture is open.
    sb.wait_socket(&format!("service_{}", meter.child.id()));
    // A TCP and a UDP server on the capture side (ports are free in a new namespace).
    let server = format!(
        "import socket\n\
         t=socket.socket();t.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);t.bind(('{CAP_IP}',40080));t.listen(1)\n\
         u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);u.bind(('{CAP_IP}',40053))\n\
         print('ready',flush=True)\n\
         c,_=t.accept();assert c.recv(5)==b'hello';c.sendall(b'world');c.close()\n\
         b,a=u.recvfrom(16);u.sendto(b,a)\n"
    );
    let mut srv = Running::start(
        {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &ns.cap, "python3", "-c", &server]);
            c
        },
        "python3 server",
    );
    assert!(
        srv.out_line(Instant::now() + Duration::from_secs(10), |l| l == "ready")
            .is_some(),
        "server: {}",
        srv.stderr()
    );
    ns.ping(3);
    let client = format!(
        "import socket\n\
         s=socket.create_connection(('{CAP_IP}',40080));s.sendall(b'hello');assert s.recv(5)==b'world';s.close()\n\
         u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);u.bind(('0.0.0.0',40123));u.sendto(b'ping',('{CAP_IP}',40053));u.settimeout(2);u.recv(16)\n"
    );
    assert!(
        sh(&["ip", "netns", "exec", &ns.peer, "python3", "-c", &client]),
        "TCP/UDP exchange failed"
    );
    assert!(
        srv.wait(Duration::from_secs(5))
            .is_some_and(|s| s.success()),
        "server: {}",
        srv.stderr()
    );
    std::thread::sleep(Duration::from_millis(300));
    let took = meter.interrupt_and_wait(Duration::from_secs(1));
    eprintln!("flow_meter stopped {took:?} after SIGINT");
    let text = ok_stdout(&sb.run("logger", &["-t", "-i", "f:live.trapcap"]), "logger");
    let flows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    // Columns: DST_IP,SRC_IP,BYTES,BYTES_REV,LINK,TF,TL,DMAC,SMAC,PACKETS,PACKETS_REV,DPORT,SPORT,DIR,PROTO,FLAGS,FLAGS_REV
    let find = |proto: &str, dport: &str| {
        flows
            .iter()
            .find(|f| {
                f[1] == PEER_IP
                    && f[0] == CAP_IP
                    && f[14] == proto
                    && (dport.is_empty() || f[11] == dport)
            })
            .cloned()
    };
    let icmp = find("1", "").unwrap_or_else(|| panic!("no ICMP flow in\n{text}"));
    assert_eq!((icmp[9], icmp[10]), ("3", "3"), "{text}");
    let tcp = find("6", "40080").unwrap_or_else(|| panic!("no TCP flow in\n{text}"));
    assert!(
        tcp[9].parse::<u32>().unwrap() >= 4 && tcp[10].parse::<u32>().unwrap() >= 3,
        "{text}"
    );
    assert_eq!(tcp[15].parse::<u8>().unwrap() & 0x02, 2, "SYN seen: {text}");
    let udp = find("17", "40053").unwrap_or_else(|| panic!("no UDP flow in\n{text}"));
    assert_eq!((udp[9], udp[10], udp[12]), ("1", "1", "40123"), "{text}");
    assert_eq!(udp[2], "32", "UDP BYTES is the IP length 20+8+4: {text}");
}

/// Asserts a one-line `flow_meter: error: …` and the exit status; returns the line.
fn one_line_error(out: &std::process::Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("flow_meter: error: "), "{err}");
    err
}

#[test]
fn input_choice_errors_say_what_to_give() {
    let sb = Sandbox::new();
    let e = one_line_error(&sb.run("flow_meter", &["-i", "u:x"]), 2);
    assert!(e.contains("give -I IFACE") && e.contains("-r FILE"), "{e}");
    let e = one_line_error(
        &sb.run("flow_meter", &["-I", "lo", "-r", "x.pcap", "-i", "b:"]),
        2,
    );
    assert!(e.contains("not both"), "{e}");
}

#[test]
fn capture_on_a_missing_interface_names_it_and_hints_ip_link() {
    if !is_root() {
        eprintln!(
            "skipped: not root, so libpcap refuses the capture before it looks for the interface"
        );
        return;
    }
    let sb = Sandbox::new();
    let e = one_line_error(&sb.run("flow_meter", &["-I", "nrs-nosuch0", "-i", "b:"]), 1);
    assert!(e.contains("cannot capture on nrs-nosuch0: "), "{e}");
    assert!(e.contains("`ip link` lists the interfaces"), "{e}");
}

#[test]
fn capture_without_privileges_hints_root_or_setcap() {
    let sb = Sandbox::new();
    let args = ["-I", "lo", "-i", "b:"];
    let out = if !is_root() {
        sb.run("flow_meter", &args)
    } else if sh(&["setpriv", "--version"]) {
        // As nobody, without capabilities.
        let child = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(bin("flow_meter"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn setpriv");
        let out = wait_output(child, Duration::from_secs(20), "setpriv flow_meter");
        if String::from_utf8_lossy(&out.stderr).starts_with("setpriv:") {
            eprintln!(
                "skipped: setpriv cannot run flow_meter as nobody: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        out
    } else {
        eprintln!("skipped: setpriv (util-linux) is missing, cannot run flow_meter unprivileged");
        return;
    };
    let e = one_line_error(&out, 1);
    assert!(e.contains("cannot capture on lo: "), "{e}");
    assert!(e.contains("run as root"), "{e}");
    assert!(e.contains("setcap cap_net_raw,cap_net_admin+eip "), "{e}");
}

#[test]
fn no_eos_with_the_old_no_eof_spelling_as_an_alias() {
    let sb = Sandbox::new();
    ok_stdout(
        &sb.run(
            "pcap_generator",
            &["-n", "2000", "-f", "200", "-w", "small.pcap"],
        ),
        "pcap_generator",
    );
    let size = |extra: &[&str], file: &str| {
        let spec = format!("f:{file}");
        let mut args = vec!["-r", "small.pcap", "-i", spec.as_str()];
        args.extend(extra);
        ok_stdout(&sb.run("flow_meter", &args), "flow_meter");
        std::fs::metadata(sb.path(file)).unwrap().len()
    };
    let with_eos = size(&[], "eos.trapcap");
    let no_eos = size(&["--no-eos"], "no-eos.trapcap");
    assert_eq!(size(&["--no-eof"], "no-eof.trapcap"), no_eos);
    assert_eq!(size(&["-n"], "n.trapcap"), no_eos);
    assert!(no_eos < with_eos, "{no_eos} < {with_eos}");
    let help = ok_stdout(&sb.run("flow_meter", &["--help"]), "flow_meter --help");
    assert!(
        help.contains("--no-eos") && !help.contains("--no-eof"),
        "{help}"
    );
}

/// The servers of [`real_http_dns_and_tls_traffic_gives_the_plugin_fields`]
/// (run in the capture namespace): HTTP/1.1 with keep-alive on 8080 and DNS
/// over TCP on 53, answering `www.example.test A 198.51.100.80`.
const REAL_SERVERS: &str = r#"
import socket, struct, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Web(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("page " + self.path + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Set-Cookie", "sid=1; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

def dns():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], 53))
    s.listen()
    while True:
        c, _ = s.accept()
        n = struct.unpack("!H", c.recv(2))[0]
        q = b""
        while len(q) < n:
            q += c.recv(n - len(q))
        a = bytearray(q)
        a[2:4] = b"\x81\x80"
        a[6:8] = b"\x00\x01"
        a += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04" + bytes([198, 51, 100, 80])
        c.sendall(struct.pack("!H", len(a)) + a)
        c.close()

threading.Thread(target=dns, daemon=True).start()
print("ready", flush=True)
ThreadingHTTPServer((sys.argv[1], 8080), Web).serve_forever()
"#;

/// The clients (run in the peer namespace): two requests on one HTTP/1.1
/// connection, then one DNS query over TCP.
const REAL_CLIENTS: &str = r#"
import http.client, socket, struct, sys
h = http.client.HTTPConnection(sys.argv[1], 8080)
for path in ("/first", "/second"):
    h.request("GET", path, headers={"Host": "www.example.test", "User-Agent": "nemea-rs-test", "Referer": "http://www.example.test/"})
    h.getresponse().read()
h.close()
q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
for label in b"www.example.test".split(b"."):
    q += bytes([len(label)]) + label
q += b"\x00\x00\x01\x00\x01"
s = socket.create_connection((sys.argv[1], 53))
s.sendall(struct.pack("!H", len(q)) + q)
s.recv(512)
s.close()
"#;

/// `logger -t` text as records of named fields.
fn named_records(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let names: Vec<String> = header
        .split(',')
        .map(|f| f.rsplit(' ').next().unwrap_or(f).to_string())
        .collect();
    lines
        .map(|l| {
            // Quoted strings may hold commas: split outside quotes only.
            let (mut cells, mut cur, mut quoted) = (Vec::new(), String::new(), false);
            for ch in l.chars() {
                match ch {
                    '"' => {
                        quoted = !quoted;
                        cur.push(ch)
                    }
                    ',' if !quoted => cells.push(std::mem::take(&mut cur)),
                    _ => cur.push(ch),
                }
            }
            cells.push(cur);
            names.iter().cloned().zip(cells).collect()
        })
        .collect()
}

/// Real traffic between two namespaces, captured by tcpdump: an HTTP/1.1
/// keep-alive connection with two requests (REINSERT: two records), a DNS
/// query over TCP (a record per message), and `openssl s_client` TLS 1.3 and
/// TLS 1.2 handshakes with SNI and ALPN; flow_meter's fields are checked, and
/// JA3 against tshark's.
#[test]
fn real_http_dns_and_tls_traffic_gives_the_plugin_fields() {
    if !is_root() {
        assert!(!ci(), "this test needs root under CI=true");
        eprintln!("skipped: needs root (network namespaces)");
        return;
    }
    for tool in ["tcpdump", "openssl", "tshark"] {
        if !sh(&["sh", "-c", &format!("command -v {tool}")]) {
            assert!(
                !ci(),
                "{tool} is required under CI=true (scripts/setup.sh installs it)"
            );
            eprintln!("skipped: {tool} is missing");
            return;
        }
    }
    let Some(pair) = VethPair::create() else {
        return;
    };
    let sb = Sandbox::new();
    std::fs::write(sb.path("servers.py"), REAL_SERVERS).unwrap();
    std::fs::write(sb.path("clients.py"), REAL_CLIENTS).unwrap();
    let in_ns = |ns: &str, args: &[&str]| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns])
            .args(args)
            .current_dir(sb.dir.path());
        c
    };
    assert!(sh(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=www.example.test",
        "-keyout",
        sb.path("key.pem").to_str().unwrap(),
        "-out",
        sb.path("cert.pem").to_str().unwrap(),
    ]));
    let pcap = sb.path("real.pcap");
    let mut tcpdump = in_ns(
        &pair.cap,
        &[
            "tcpdump",
            "-i",
            CAP_IF,
            "-U",
            "-s",
            "0",
            "-w",
            pcap.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // tcpdump says "listening on" once it captures.
    let mut err = BufReader::new(tcpdump.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("listening") {
        line.clear();
    }
    let mut servers = in_ns(&pair.cap, &["python3", "servers.py", CAP_IP])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(servers.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let mut tls_servers = Vec::new();
    for (port, version) in [("4433", "-tls1_3"), ("4434", "-tls1_2")] {
        tls_servers.push(
            in_ns(
                &pair.cap,
                &[
                    "openssl", "s_server", "-quiet", "-accept", port, version, "-alpn", "h2",
                    "-key", "key.pem", "-cert", "cert.pem",
                ],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        );
    }
    // Both TLS servers listen before a client starts (a fixed wait lost the
    // TLS 1.2 connection on a loaded machine).
    let start = Instant::now();
    loop {
        let ss = in_ns(&pair.cap, &["ss", "-ltnH"]).output().unwrap();
        let text = String::from_utf8_lossy(&ss.stdout);
        if text.contains(":4433 ") && text.contains(":4434 ") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "TLS servers: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = in_ns(&pair.peer, &["python3", "clients.py", CAP_IP])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (port, version) in [("4433", "-tls1_3"), ("4434", "-tls1_2")] {
        let target = format!("{CAP_IP}:{port}");
        let out = in_ns(
            &pair.peer,
            &[
                "openssl",
                "s_client",
                "-connect",
                &target,
                version,
                "-servername",
                "www.example.test",
                "-alpn",
                "h2",
                "-ign_eof",
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
        let mut c = out.unwrap();
        // s_client prints the session, "Verify return code" last, once the
        // handshake is done; then the connection may go.
        let stdout = c.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Verify return code") {
                    let _ = tx.send(());
                }
            }
        });
        let _ = rx.recv_timeout(Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(200));
        let _ = c.kill();
        let _ = c.wait();
    }
    std::thread::sleep(Duration::from_millis(300));
    for mut c in tls_servers {
        let _ = c.kill();
        let _ = c.wait();
    }
    let _ = servers.kill();
    let _ = servers.wait();
    interrupt(&tcpdump);
    let _ = tcpdump.wait();

    ok_stdout(
        &sb.run(
            "flow_meter",
            &[
                "-r",
                pcap.to_str().unwrap(),
                "-p",
                "http,dns,tls",
                "-i",
                "f:http.trapcap,f:dns.trapcap,f:tls.trapcap",
            ],
        ),
        "flow_meter",
    );
    let records =
        |f: &str| named_records(&ok_stdout(&sb.run("logger", &["-i", f, "-t"]), "logger"));
    let http = records("f:http.trapcap");
    let urls: Vec<&str> = http
        .iter()
        .map(|r| r["HTTP_REQUEST_URL"].as_str())
        .collect();
    assert_eq!(urls, ["\"/first\"", "\"/second\""], "{http:#?}");
    for r in &http {
        assert_eq!(r["HTTP_REQUEST_HOST"], "\"www.example.test\"");
        assert_eq!(r["HTTP_REQUEST_METHOD"], "\"GET\"");
        assert_eq!(r["HTTP_REQUEST_AGENT"], "\"nemea-rs-test\"");
        assert_eq!(r["HTTP_RESPONSE_STATUS_CODE"], "200");
        assert_eq!(r["HTTP_RESPONSE_CONTENT_TYPE"], "\"text/plain\"");
    }
    let dns = records("f:dns.trapcap");
    assert_eq!(dns.len(), 2, "query and answer: {dns:#?}");
    for r in &dns {
        assert_eq!(r["DNS_NAME"], "\"www.example.test\"");
        assert_eq!(r["DNS_ID"], "4660");
        assert_eq!(r["DNS_QTYPE"], "1");
    }
    let answer: Vec<_> = dns.iter().filter(|r| r["DNS_ANSWERS"] == "1").collect();
    assert_eq!(answer.len(), 1, "{dns:#?}");
    // DNS_RDATA is ipfixprobe's text rendering, in a bytes field.
    assert_eq!(answer[0]["DNS_RDATA"], hex(b"198.51.100.80"));
    assert_eq!(answer[0]["DNS_RR_TTL"], "3600");
    let tls = records("f:tls.trapcap");
    assert_eq!(tls.len(), 2, "{tls:#?}");
    let ja3 = ok_stdout(
        &Command::new("tshark")
            .args([
                "-r",
                pcap.to_str().unwrap(),
                "-Y",
                "tls.handshake.type == 1",
                "-T",
                "fields",
                "-e",
                "tls.handshake.ja3",
            ])
            .output()
            .unwrap(),
        "tshark",
    );
    let mut tshark_ja3: Vec<&str> = ja3.lines().collect();
    let mut ours: Vec<&str> = tls.iter().map(|r| r["TLS_JA3"].as_str()).collect();
    tshark_ja3.sort();
    ours.sort();
    assert_eq!(ours, tshark_ja3, "JA3 as tshark computes it");
    for r in &tls {
        assert_eq!(r["TLS_SNI"], "\"www.example.test\"");
        // TLS 1.3 encrypts the server's ALPN: ipfixprobe (and we) export
        // it only from a TLS 1.2 ServerHello.
        let alpn = if r["TLS_VERSION"] == "772" {
            "\"\""
        } else {
            "\"h2\""
        };
        assert_eq!(r["TLS_ALPN"], alpn, "{r:?}");
        assert!(r["TLS_JA4"].starts_with("\"t1"), "{r:?}");
    }
    let versions: Vec<&str> = tls.iter().map(|r| r["TLS_VERSION"].as_str()).collect();
    assert!(
        versions.contains(&"772") && versions.contains(&"771"),
        "TLS 1.3 and 1.2: {versions:?}"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------------------
// The app plugin and `--l7` (issue 15: SnabbWall L7Spy).

/// A tool the app tests need, or a skip (a failure under CI=true).
fn have_tool(tool: &str) -> bool {
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

type Endpoints = (std::net::SocketAddr, std::net::SocketAddr);

/// A flow's two endpoints in one order, whichever side spoke first.
fn endpoints(a: &str, b: &str) -> Option<Endpoints> {
    let (a, b): (std::net::SocketAddr, std::net::SocketAddr) = (a.parse().ok()?, b.parse().ok()?);
    Some(if a <= b { (a, b) } else { (b, a) })
}

/// `(master, application)` from nDPI's `MASTER.APP` or `APP`.
fn ndpi_pair(name: &str) -> (String, String) {
    match name.split_once('.') {
        Some((m, a)) => (m.to_string(), a.to_string()),
        None => (name.to_string(), name.to_string()),
    }
}

/// The flows `ndpiReader -v 2` identified by their payload (`Confidence:
/// DPI`): endpoints and (master, application).
fn ndpi_reader_dpi_flows(pcap: &std::path::Path) -> Vec<(Endpoints, (String, String))> {
    let out = Command::new("ndpiReader")
        .arg("-i")
        .arg(pcap)
        .args(["-v", "2"])
        .stdin(Stdio::null())
        .output()
        .expect("ndpiReader runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut flows = Vec::new();
    for line in text.lines() {
        // "\t1\tTCP 10.0.0.1:80 <-> 10.0.0.2:4000 [proto: 7/HTTP]...[Confidence: DPI]..."
        let mut cols = line.trim_start().splitn(2, '\t');
        let (Some(n), Some(rest)) = (cols.next(), cols.next()) else {
            continue;
        };
        if n.parse::<u32>().is_err() || !rest.contains("[Confidence: DPI]") {
            continue;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        let (Some(a), Some(b)) = (words.get(1), words.get(3)) else {
            continue;
        };
        let Some(proto) = rest
            .split_once("[proto: ")
            .and_then(|(_, r)| r.split_once(']'))
            .and_then(|(p, _)| p.split_once('/'))
            .map(|(_, name)| name)
        else {
            continue;
        };
        if let Some(e) = endpoints(a, b) {
            flows.push((e, ndpi_pair(proto)));
        }
    }
    flows
}

/// `flow_meter --l7 -r` lines: endpoints and (master, application).
fn l7_flows(text: &str) -> Vec<(Endpoints, (String, String))> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() != 6 || w[3] != "-" || !w[0].starts_with("0x") {
                return None;
            }
            let pair = match w[5].split_once(':') {
                Some((app, master)) => (master.to_string(), app.to_string()),
                None => (w[5].to_string(), w[5].to_string()),
            };
            Some((endpoints(w[2], w[4])?, pair))
        })
        .collect()
}

/// ndpiReader (nDPI 4.2, run here) and `flow_meter --l7` on every shared
/// capture: of the flows ndpiReader names by their payload, ours name the
/// same master and application protocol for at least 95 %.
#[test]
fn app_agrees_with_ndpireader_on_the_shared_captures() {
    let (Some(pcaps), Some(functional)) = (shared_data("pcaps"), functional()) else {
        return;
    };
    if !have_tool("ndpiReader") {
        return;
    }
    let mut files = Vec::new();
    let mut stack = vec![pcaps, functional.join("inputs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("pcap" | "pcapng" | "cap")
            ) {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() > 300, "only {} captures found", files.len());
    let sb = Sandbox::new();
    let next = std::sync::atomic::AtomicUsize::new(0);
    // (ndpiReader's flows, agreed, disagreements)
    let results = std::sync::Mutex::new((0usize, 0usize, Vec::new()));
    // ndpiReader takes ~0.1 s a capture, mostly setting up and waiting:
    // eight at a time.
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(f) = files.get(i) else { break };
                let theirs = ndpi_reader_dpi_flows(f);
                if theirs.is_empty() {
                    continue;
                }
                let out = sb.run("flow_meter", &["--l7", "-r", f.to_str().unwrap()]);
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(!err.contains("panicked"), "{}: {err}", f.display());
                let ours = l7_flows(&String::from_utf8_lossy(&out.stdout));
                let mut r = results.lock().unwrap();
                for (e, pair) in theirs {
                    r.0 += 1;
                    if ours.iter().any(|(oe, op)| *oe == e && *op == pair) {
                        r.1 += 1;
                    } else {
                        let got: Vec<_> = ours.iter().filter(|(oe, _)| *oe == e).collect();
                        r.2.push(format!("{}: {e:?} {pair:?}, ours {got:?}", f.display()));
                    }
                }
            });
        }
    });
    let (total, agreed, differ) = results.into_inner().unwrap();
    let share = agreed as f64 * 100.0 / total.max(1) as f64;
    eprintln!(
        "ndpiReader named {total} flows by their payload; flow_meter -p app agrees on {agreed} ({share:.1} %); the others:\n{}",
        differ.join("\n")
    );
    assert!(total >= 300, "only {total} flows named by ndpiReader");
    assert!(share >= 95.0, "{share:.1} % agreement: {differ:#?}");
}

/// The servers of [`app_names_real_traffic_by_payload_and_dns`] (capture
/// namespace): HTTP on 8080, DNS on UDP 53 answering every A query with this
/// host's address, and an SSH banner exchange on 2222.
const APP_SERVERS: &str = r#"
import socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
ip = sys.argv[1]

class Web(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 53))
    while True:
        q, peer = s.recvfrom(512)
        a = bytearray(q)
        a[2:4] = b"\x81\x80"
        a[6:8] = b"\x00\x01"
        a += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04" + socket.inet_aton(ip)
        s.sendto(bytes(a), peer)

def ssh():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, 2222))
    s.listen()
    while True:
        c, _ = s.accept()
        c.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
        c.settimeout(3)
        try:
            c.recv(4096)
            c.recv(4096)
        except OSError:
            pass
        c.close()

threading.Thread(target=dns, daemon=True).start()
threading.Thread(target=ssh, daemon=True).start()
print("ready", flush=True)
ThreadingHTTPServer((ip, 8080), Web).serve_forever()
"#;

/// The clients (peer namespace): a GET on 8080, then a DNS query for
/// www.google.com; prints the answered address.
const APP_CLIENTS: &str = r#"
import http.client, socket, struct, sys
ip = sys.argv[1]
h = http.client.HTTPConnection(ip, 8080)
h.request("GET", "/", headers={"Host": "www.example.test", "User-Agent": "nemea-rs-test"})
h.getresponse().read()
h.close()
q = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
for label in b"www.google.com".split(b"."):
    q += bytes([len(label)]) + label
q += b"\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, (ip, 53))
r, _ = s.recvfrom(512)
print(socket.inet_ntoa(r[-4:]), flush=True)
"#;

/// Real traffic between two namespaces, captured by tcpdump and identified
/// by `flow_meter --l7 -p app` with the UniRec and IPFIX outputs at once:
/// rsync to a daemon on port 26883 → RSYNC (L7Spy's example); HTTP on 8080,
/// TLS on 8443 and SSH on 2222 by their payload; a DNS answer for
/// www.google.com, then TLS without a server name to the answered address →
/// that connection is Google's, named www.google.com (L7Spy's
/// `SERVICE_GOOGLE:DNS` then `SERVICE_GOOGLE:SSL`).
#[test]
fn app_names_real_traffic_by_payload_and_dns() {
    if !is_root() {
        assert!(!ci(), "this test needs root under CI=true");
        eprintln!("skipped: needs root (network namespaces)");
        return;
    }
    for tool in ["tcpdump", "openssl", "rsync", "ssh", "python3"] {
        if !have_tool(tool) {
            return;
        }
    }
    let Some(pair) = VethPair::create() else {
        return;
    };
    let sb = Sandbox::new();
    std::fs::write(sb.path("servers.py"), APP_SERVERS).unwrap();
    std::fs::write(sb.path("clients.py"), APP_CLIENTS).unwrap();
    std::fs::create_dir(sb.path("share")).unwrap();
    std::fs::write(sb.path("share/file.txt"), "rsync me\n".repeat(2000)).unwrap();
    std::fs::write(
        sb.path("rsyncd.conf"),
        format!(
            "pid file = {dir}/rsyncd.pid\nlog file = {dir}/rsyncd.log\nuse chroot = no\n\
             uid = root\ngid = root\n[share]\npath = {dir}/share\nread only = yes\n",
            dir = sb.dir.path().display()
        ),
    )
    .unwrap();
    let in_ns = |ns: &str, args: &[&str]| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns])
            .args(args)
            .current_dir(sb.dir.path())
            .stdin(Stdio::null());
        c
    };
    assert!(sh(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=www.example.test",
        "-keyout",
        sb.path("key.pem").to_str().unwrap(),
        "-out",
        sb.path("cert.pem").to_str().unwrap(),
    ]));
    let pcap = sb.path("app.pcap");
    let mut tcpdump = in_ns(
        &pair.cap,
        &[
            "tcpdump",
            "-i",
            CAP_IF,
            "-U",
            "--immediate-mode",
            "-s",
            "0",
            "-w",
            pcap.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut err = BufReader::new(tcpdump.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("listening") {
        line.clear();
    }
    let mut servers = in_ns(&pair.cap, &["python3", "servers.py", CAP_IP])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(servers.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let mut daemons = vec![in_ns(
        &pair.cap,
        &[
            "rsync",
            "--daemon",
            "--no-detach",
            "--config=rsyncd.conf",
            "--port=26883",
            &format!("--address={CAP_IP}"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap()];
    for port in ["8443", "443"] {
        daemons.push(
            in_ns(
                &pair.cap,
                &[
                    "openssl", "s_server", "-quiet", "-accept", port, "-key", "key.pem", "-cert",
                    "cert.pem",
                ],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    // HTTP, then the DNS question: the answer is the address to connect to.
    let out = in_ns(&pair.peer, &["python3", "clients.py", CAP_IP])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answered = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(answered, CAP_IP);
    // A client that is stopped after a moment (TLS and SSH wait for more).
    let briefly = |args: &[&str]| {
        let mut c = in_ns(&pair.peer, args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(800));
        let _ = c.kill();
        let _ = c.wait();
    };
    briefly(&[
        "openssl",
        "s_client",
        "-connect",
        &format!("{answered}:443"),
        "-noservername",
        "-ign_eof",
    ]);
    briefly(&[
        "openssl",
        "s_client",
        "-connect",
        &format!("{CAP_IP}:8443"),
        "-servername",
        "www.example.test",
        "-ign_eof",
    ]);
    briefly(&[
        "ssh",
        "-p",
        "2222",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=3",
        &format!("test@{CAP_IP}"),
        "true",
    ]);
    let out = in_ns(
        &pair.peer,
        &[
            "rsync",
            "-a",
            &format!("rsync://{CAP_IP}:26883/share/"),
            sb.path("copy").to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "rsync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sb.path("copy/file.txt").exists());
    std::thread::sleep(Duration::from_millis(300));
    for mut d in daemons {
        let _ = d.kill();
        let _ = d.wait();
    }
    let _ = servers.kill();
    let _ = servers.wait();
    interrupt(&tcpdump);
    let _ = tcpdump.wait();

    // --l7 with -p app on a TRAP file and IPFIX over UDP at once.
    let collector = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let target = collector.local_addr().unwrap().to_string();
    let out = sb.run(
        "flow_meter",
        &[
            "--l7",
            "-S",
            "-r",
            pcap.to_str().unwrap(),
            "-p",
            "app",
            "-i",
            "f:app.trapcap",
            "-x",
            &target,
            "-u",
        ],
    );
    let spy = ok_stdout(&out, "flow_meter --l7");
    eprintln!("{spy}");
    let line_of = |port: &str| {
        spy.lines()
            .find(|l| l.contains(&format!("{CAP_IP}:{port} ")))
            .unwrap_or_else(|| panic!("no --l7 line for port {port}:\n{spy}"))
            .to_string()
    };
    assert!(line_of("26883").ends_with("  RSYNC"), "{spy}");
    assert!(line_of("8080").ends_with("  HTTP"), "{spy}");
    assert!(line_of("8443").ends_with("  TLS"), "{spy}");
    assert!(line_of("2222").ends_with("  SSH"), "{spy}");
    assert!(line_of("53").ends_with("  Google:DNS"), "{spy}");
    assert!(line_of("443").ends_with("  Google:TLS"), "{spy}");
    // L7Spy's line: hash, packets, endpoints (the seed's widths).
    let rsync = line_of("26883");
    let w: Vec<&str> = rsync.split_whitespace().collect();
    assert!(w[0].starts_with("0x") && w[0].len() == 18, "{rsync}");
    assert!(
        w[1].ends_with('p')
            && w[1]
                .trim_end_matches('p')
                .parse::<u32>()
                .is_ok_and(|n| n > 5)
    );
    assert!(rsync.contains(&format!("{CAP_IP}:26883  RSYNC")), "{rsync}");
    // The statistics line comes last.
    let last = spy.lines().last().unwrap_or_default();
    assert!(stats_line(last).is_some(), "{spy}");

    let records = named_records(&ok_stdout(
        &sb.run("logger", &["-i", "f:app.trapcap", "-t"]),
        "logger",
    ));
    let by_port = |port: &str| {
        records
            .iter()
            .find(|r| r["DST_PORT"] == port || r["SRC_PORT"] == port)
            .unwrap_or_else(|| panic!("no record for port {port}: {records:#?}"))
    };
    let r = by_port("26883");
    assert_eq!(
        (r["APP_PROTO"].as_str(), r["APP_CONFIDENCE"].as_str()),
        ("\"RSYNC\"", "4"),
        "{r:?}"
    );
    let r = by_port("8080");
    assert_eq!(r["APP_PROTO"], "\"HTTP\"", "{r:?}");
    assert_eq!(r["APP_SERVICE"], "\"www.example.test\"", "{r:?}");
    assert_eq!(r["APP_CATEGORY"], "\"Web\"", "{r:?}");
    let r = by_port("8443");
    assert_eq!(
        (r["APP_MASTER"].as_str(), r["APP_SERVICE"].as_str()),
        ("\"TLS\"", "\"www.example.test\""),
        "{r:?}"
    );
    assert_eq!(r["APP_CONFIDENCE"], "4", "{r:?}");
    assert_eq!(by_port("2222")["APP_PROTO"], "\"SSH\"");
    let r = by_port("443");
    assert_eq!(
        (
            r["APP_PROTO"].as_str(),
            r["APP_MASTER"].as_str(),
            r["APP_SERVICE"].as_str(),
            r["APP_CONFIDENCE"].as_str()
        ),
        ("\"Google\"", "\"TLS\"", "\"www.google.com\"", "3"),
        "the DNS answer names the connection: {r:?}"
    );
    // The IPFIX export carries the same fields: APP_PROTO's element
    // (enterprise bit | 1240, variable length, CESNET's 8057) in a template,
    // the names in the data.
    let mut datagrams = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = collector.recv(&mut buf) {
        datagrams.extend_from_slice(&buf[..n]);
    }
    let element = [0x84, 0xd8, 0xff, 0xff, 0x00, 0x00, 0x1f, 0x79];
    assert!(
        datagrams.windows(element.len()).any(|w| w == element),
        "no APP_PROTO element in the IPFIX templates"
    );
    assert!(datagrams.windows(5).any(|w| w == b"RSYNC"));
}

/// `flow_meter --l7 -S -I` on a veth: flows are printed as they are
/// identified, while the capture runs, and the statistics line every 2 s.
#[test]
fn l7_live_prints_flows_as_identified_and_stats_every_2_s() {
    if !have_tool("python3") {
        return;
    }
    let Some(ns) = VethPair::create() else { return };
    let sb = Sandbox::new();
    std::fs::write(sb.path("servers.py"), APP_SERVERS).unwrap();
    let mut meter = Running::start(
        ns.cmd_on_cap(&sb, "flow_meter", &["--l7", "-S", "-I", CAP_IF, "-v"]),
        "flow_meter",
    );
    sb.wait_socket(&format!("service_{}", meter.child.id()));
    let mut servers = Command::new("ip")
        .args(["netns", "exec", &ns.cap, "python3", "servers.py", CAP_IP])
        .current_dir(sb.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(servers.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let started = Instant::now();
    std::fs::write(sb.path("get.py"), APP_CLIENTS).unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.peer, "python3", "get.py", CAP_IP])
        .current_dir(sb.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = Instant::now();
    // The HTTP flow is printed once named, long before any timeout (300:30).
    let (at, http) = meter
        .out_line(sent + Duration::from_secs(3), |l| {
            l.contains(&format!("{CAP_IP}:8080 ")) && l.ends_with("  HTTP")
        })
        .unwrap_or_else(|| panic!("no live --l7 line for HTTP; stderr: {}", meter.stderr()));
    assert!(
        at.duration_since(started) < Duration::from_secs(3),
        "{http}"
    );
    assert!(http.starts_with("0x"), "{http}");
    let (_, dns) = meter
        .out_line(sent + Duration::from_secs(3), |l| {
            l.ends_with("  Google:DNS")
        })
        .unwrap_or_else(|| panic!("no live --l7 line for DNS; stderr: {}", meter.stderr()));
    assert!(dns.contains(&format!("{CAP_IP}:53 ")), "{dns}");
    let mut stats = Vec::new();
    while stats.len() < 3 {
        let (at, line) = meter
            .out_line(sent + Duration::from_secs(9), |l| l.starts_with("=== "))
            .unwrap_or_else(|| panic!("only {} stats lines: {stats:?}", stats.len()));
        assert!(stats_line(&line).is_some(), "{line}");
        stats.push(at);
    }
    for w in stats.windows(2) {
        let gap = w[1].duration_since(w[0]);
        assert!(
            gap >= Duration::from_millis(1800) && gap <= Duration::from_millis(2400),
            "stats lines {gap:?} apart"
        );
    }
    let _ = servers.kill();
    let _ = servers.wait();
    meter.interrupt_and_wait(Duration::from_secs(1));
}
