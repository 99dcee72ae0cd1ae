//! The sFlow-triggered capture chain without the switch: an Emerging
//! Threats list served over HTTP → bl_downloader → ipblacklistfilter (flows
//! of flow_meter on a namespace's interface) → capture_trigger capturing
//! the flagged host pair on that interface, checked against tcpdump.

mod netlab;

use nemea_rs::{ok_stdout, wait_tcp_listening, Sandbox};
use netlab::{have, is_root, pcap_frames, wait_until, Lab, Proc, LOCAL_IF, LOCAL_IP};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LISTED: &str = "203.0.113.5";
const UNLISTED: &str = "203.0.113.6";

fn ready() -> bool {
    if !is_root() {
        assert!(!netlab::ci(), "tests/trigger.rs needs root under CI=true");
        eprintln!("skipped: not root (network namespaces, live capture)");
        return false;
    }
    have("tcpdump") && have("python3") && have("ping")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// An Emerging-Threats-style list (`emerging-Block-IPs.txt`): comments,
/// blank lines, plain addresses and CIDR prefixes.
fn et_list(extra: &[&str]) -> String {
    let mut s = String::from(
        "#\n# Emerging Threats - Blocklist (test copy)\n#\n# Rev 1\n\n#  Spamhaus DROP Nets\n192.0.2.0/24\n\n#  Dshield Top Attackers\n",
    );
    s.push_str(LISTED);
    s.push('\n');
    for e in extra {
        s.push_str(e);
        s.push('\n');
    }
    s.push_str("\n# End\n");
    s
}

/// The chain up to capture_trigger, with tcpdump watching the listed pair.
struct Chain {
    lab: Lab,
    sb: Sandbox,
    www: PathBuf,
    caps: PathBuf,
    http: Proc,
    bl: Proc,
    filter: Proc,
    trigger: Proc,
    meter: Proc,
    tcpdump: Option<Proc>,
}

impl Chain {
    fn start(caps: Option<PathBuf>, trigger_args: &[&str]) -> Option<Chain> {
        let lab = Lab::create("trg", &[LISTED, UNLISTED, "203.0.113.7"])?;
        let sb = Sandbox::new();
        let www = sb.path("www");
        std::fs::create_dir(&www).unwrap();
        std::fs::write(www.join("emerging-Block-IPs.txt"), et_list(&[])).unwrap();
        let caps = caps.unwrap_or_else(|| {
            let c = sb.path("caps");
            std::fs::create_dir(&c).unwrap();
            c
        });
        let port = free_port();
        let http = Proc::start(
            {
                let mut c = std::process::Command::new("python3");
                c.args(["-m", "http.server", "--bind", "127.0.0.1"])
                    .arg(port.to_string())
                    .arg("--directory")
                    .arg(&www);
                c
            },
            &sb,
            "http",
        );
        wait_tcp_listening(port);
        let cfg = format!(
            "interval = 1\ntimeout = 2\nipv4_file = \"{}\"\nipv6_file = \"{}\"\n\n[[blacklist]]\nid = 3\nname = \"ET block\"\ncategory = \"Intrusion.Botnet\"\nsource = \"http://127.0.0.1:{port}/emerging-Block-IPs.txt\"\n",
            sb.path("ip4.blist").display(),
            sb.path("ip6.blist").display()
        );
        std::fs::write(sb.path("bl.toml"), cfg).unwrap();
        // The list server is on loopback: no proxy of the environment.
        let mut c = sb.cmd("bl_downloader");
        c.args(["-c", "bl.toml", "-v"])
            .stdin(std::process::Stdio::null());
        for v in [
            "http_proxy",
            "HTTP_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ] {
            c.env_remove(v);
        }
        let bl = Proc::start(c, &sb, "bl_downloader");
        let blist = sb.path("ip4.blist");
        wait_until(
            "bl_downloader writes the detector file",
            Duration::from_secs(10),
            || std::fs::read_to_string(&blist).is_ok_and(|t| t.contains(LISTED)),
        );
        // Bit 3-1 = 2: the bitmap 4 marks list 3.
        assert!(std::fs::read_to_string(&blist)
            .unwrap()
            .contains(&format!("{LISTED},4")));
        let filter = Proc::module(
            &sb,
            "ipblacklistfilter",
            &["-4", "ip4.blist", "-v", "-i", "u:flows,u:flagged"],
        );
        sb.wait_socket("flagged");
        let caps_s = caps.display().to_string();
        let mut args = vec![
            "-i",
            "u:flagged,f:events.trapcap",
            "-I",
            LOCAL_IF,
            "--local",
            "198.51.100.0/24",
            "-d",
            &caps_s,
            "-v",
        ];
        args.extend_from_slice(trigger_args);
        let trigger = Proc::module_in(&lab, &lab.local, &sb, "capture_trigger", &args);
        let meter = Proc::module_in(
            &lab,
            &lab.local,
            &sb,
            "flow_meter",
            &["-I", LOCAL_IF, "-t", "300:1", "-i", "u:flows"],
        );
        sb.wait_socket("flows");
        let mut chain = Chain {
            lab,
            sb,
            www,
            caps,
            http,
            bl,
            filter,
            trigger,
            meter,
            tcpdump: None,
        };
        chain
            .trigger
            .wait_log("u:flagged: connected", Duration::from_secs(10));
        chain
            .filter
            .wait_log("u:flows: connected", Duration::from_secs(10));
        Some(chain)
    }

    fn tcpdump(&mut self, filter: &str, file: &str) {
        let c = self.lab.cmd(
            &self.lab.local,
            &self.sb,
            "tcpdump",
            &["-i", LOCAL_IF, "--immediate-mode", "-U", "-w", file, filter],
        );
        let mut p = Proc::start(c, &self.sb, "tcpdump");
        p.wait_log("listening on", Duration::from_secs(10));
        self.tcpdump = Some(p);
    }

    fn ping(&self, to: &str, n: u32) {
        self.lab.ping(&self.sb, to, n, "0.2");
    }

    /// Waits for a capture to begin (its .part file).
    fn wait_session(&self, remote: &str) {
        wait_until(
            &format!("a capture of {remote} begins"),
            Duration::from_secs(15),
            || {
                files(&self.caps, ".pcap.part")
                    .iter()
                    .any(|p| p.to_string_lossy().contains(&format!("_{remote}.pcap")))
            },
        );
    }

    fn wait_done(&self, n: usize) {
        wait_until(
            &format!("{n} captures complete"),
            Duration::from_secs(15),
            || files(&self.caps, ".pcap").len() == n && files(&self.caps, ".part").is_empty(),
        );
    }

    fn counter(&self, name: &str) -> u64 {
        self.trigger.counters(&self.sb)[name].as_u64().unwrap_or(0)
    }
}

#[test]
fn listed_pair_is_captured_once_and_a_newly_listed_one_later() {
    if !ready() {
        return;
    }
    let Some(mut ch) = Chain::start(
        None,
        &["--packets", "10", "--duration", "30", "--suppress", "120"],
    ) else {
        return;
    };
    let pair_filter = format!("host {LOCAL_IP} and host {LISTED}");
    ch.tcpdump(&pair_filter, "pair.pcap");
    // First contact: the listed and an unlisted address.
    ch.ping(LISTED, 3);
    ch.ping(UNLISTED, 3);
    ch.wait_session(LISTED);
    assert_eq!(ch.counter("started"), 1);
    assert_eq!(ch.counter("active"), 1);
    let session = format!("session {LOCAL_IP} {LISTED}");
    assert_eq!(
        ch.trigger.counters(&ch.sb)[&session].as_u64(),
        Some(0),
        "the running capture is listed"
    );
    // The session's traffic: 5 requests, 5 replies, then it is complete.
    ch.ping(LISTED, 5);
    ch.wait_done(1);
    let cap = files(&ch.caps, ".pcap").remove(0);
    let name = cap.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.ends_with(&format!("_{LOCAL_IP}_{LISTED}.pcap")),
        "{name}"
    );
    let got = pcap_frames(&cap);
    assert_eq!(got.len(), 10, "{name}");
    // tcpdump beside it with the pair's filter saw the first contact's 6
    // and then exactly these 10, byte for byte.
    let pair_pcap = ch.sb.path("pair.pcap");
    wait_until("tcpdump writes 16 frames", Duration::from_secs(5), || {
        pcap_frames(&pair_pcap).len() >= 16
    });
    let seen = pcap_frames(&pair_pcap);
    let frames = |v: &[(u32, u32, Vec<u8>)]| v.iter().map(|f| f.2.clone()).collect::<Vec<_>>();
    assert_eq!(frames(&got), frames(&seen[6..16]));
    // The event follows the file's rename.
    ch.trigger
        .wait_counter(&ch.sb, "done", 1, Duration::from_secs(5));
    assert!(ch.trigger.counters(&ch.sb).get(&session).is_none());

    // Contact again within the suppression window: no second session.
    let before = ch.counter("suppressed");
    ch.ping(LISTED, 2);
    ch.trigger
        .wait_counter(&ch.sb, "suppressed", before + 1, Duration::from_secs(10));
    assert_eq!(ch.counter("started"), 1);
    assert_eq!(files(&ch.caps, ".pcap").len(), 1);
    assert!(files(&ch.caps, ".part").is_empty());
    // Nothing for the unlisted address.
    assert!(files(&ch.caps, "")
        .iter()
        .all(|p| !p.to_string_lossy().contains(UNLISTED)));

    // The list changes: the unlisted address is listed now.
    std::fs::write(ch.www.join("emerging-Block-IPs.txt"), et_list(&[UNLISTED])).unwrap();
    let blist = ch.sb.path("ip4.blist");
    wait_until(
        "bl_downloader picks up the new list",
        Duration::from_secs(10),
        || std::fs::read_to_string(&blist).is_ok_and(|t| t.contains(UNLISTED)),
    );
    // ipblacklistfilter re-reads the file at a record a second or more
    // after its last look: the first ping's flow may pass unflagged.
    std::thread::sleep(Duration::from_millis(1100));
    ch.ping(UNLISTED, 2);
    ch.wait_session(UNLISTED);
    ch.ping(UNLISTED, 5);
    ch.wait_done(2);
    let second = files(&ch.caps, ".pcap")
        .into_iter()
        .find(|p| p.to_string_lossy().contains(UNLISTED))
        .expect("a capture of the newly listed pair");
    let frames2 = pcap_frames(&second);
    assert_eq!(frames2.len(), 10);
    for (_, _, f) in &frames2 {
        // IPv4 over Ethernet: the pair, either way.
        let (s, d) = (&f[26..30], &f[30..34]);
        let (a, b) = ([198, 51, 100, 1], [203, 0, 113, 6]);
        assert!((s == a && d == b) || (s == b && d == a), "{f:?}");
    }
    assert_eq!(ch.counter("started"), 2);
    assert_eq!(ch.counter("refused"), 0);

    // The feed breaks (an error page instead of the list): bl_downloader
    // keeps the last good list and goes on downloading.
    std::fs::write(
        ch.www.join("emerging-Block-IPs.txt"),
        "<!DOCTYPE html><html><body>502 Bad Gateway</body></html>\n",
    )
    .unwrap();
    ch.bl
        .wait_log("keeping the last good list", Duration::from_secs(10));
    let kept = std::fs::read_to_string(&blist).unwrap();
    assert!(kept.contains(LISTED) && kept.contains(UNLISTED), "{kept}");

    // SIGTERM: a clean end; one event per capture.
    let st = ch.trigger.stop_with("TERM", Duration::from_secs(3));
    assert!(st.success(), "{}", ch.trigger.text());
    let out = ch.sb.run(
        "logger",
        &[
            "-i",
            "f:events.trapcap",
            "-o",
            "SRC_IP,DST_IP,PACKETS,DST_BLACKLIST,STATUS,FILENAME",
        ],
    );
    let text = ok_stdout(&out, "logger");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(&format!("{LOCAL_IP},{LISTED},10,4,\"packets\",")),
        "{text}"
    );
    assert!(lines[0].contains(&name), "{text}");
    assert!(
        lines[1].starts_with(&format!("{LOCAL_IP},{UNLISTED},10,4,\"packets\",")),
        "{text}"
    );
    for p in [&mut ch.meter, &mut ch.filter, &mut ch.bl] {
        p.stop();
    }
    // SIGTERM: Python installs no SIGINT handler when it starts with SIGINT
    // ignored, as every process of a background job does (CI runs so).
    ch.http.stop_with("TERM", Duration::from_secs(5));
}

/// Unmounts a tmpfs on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        netlab::sh(&["umount", "-l", &self.0.display().to_string()]);
    }
}

#[test]
fn full_disk_gives_a_clear_error_and_no_partial_file() {
    if !ready() {
        return;
    }
    let outer = Sandbox::new();
    let caps = outer.path("tiny");
    std::fs::create_dir(&caps).unwrap();
    let dir = caps.display().to_string();
    if !netlab::sh(&["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", &dir]) {
        assert!(!netlab::ci(), "cannot mount a tmpfs under CI=true");
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let _mount = Mount(caps.clone());
    let Some(mut ch) = Chain::start(
        Some(caps.clone()),
        &["--packets", "1000", "--duration", "20", "--suppress", "120"],
    ) else {
        return;
    };
    ch.ping(LISTED, 2);
    ch.wait_session(LISTED);
    // ~60 KiB of pings into 16 KiB.
    ch.lab.run(
        &ch.lab.local,
        &ch.sb,
        "ping",
        &[
            "-q", "-c", "20", "-i", "0.05", "-s", "1400", "-W", "1", LISTED,
        ],
    );
    ch.trigger
        .wait_counter(&ch.sb, "failed", 1, Duration::from_secs(10));
    let log = ch.trigger.text();
    assert!(log.contains("No space left on device"), "{log}");
    assert!(log.contains("the partial file was removed"), "{log}");
    // Neither a complete-looking nor a partial capture stays.
    assert!(files(&caps, "").is_empty(), "{:?}", files(&caps, ""));
    assert_eq!(ch.counter("active"), 0);
    assert_eq!(ch.counter("done"), 1);
    // The module keeps running and ends cleanly.
    assert!(ch.trigger.child.try_wait().unwrap().is_none());
    let st = ch.trigger.stop();
    assert!(st.success(), "{}", ch.trigger.text());
    let text = ok_stdout(
        &ch.sb.run(
            "logger",
            &["-i", "f:events.trapcap", "-o", "DST_IP,STATUS,FILENAME"],
        ),
        "logger",
    );
    assert!(
        text.starts_with(&format!("{LISTED},\"error: cannot write ")),
        "{text}"
    );
    assert!(text.trim_end().ends_with(",\"\""), "{text}");
}

#[test]
fn sigterm_completes_a_running_capture() {
    if !ready() {
        return;
    }
    let Some(mut ch) = Chain::start(
        None,
        &["--packets", "1000", "--duration", "60", "--suppress", "120"],
    ) else {
        return;
    };
    ch.ping(LISTED, 2);
    ch.wait_session(LISTED);
    ch.ping(LISTED, 3);
    let t = std::time::Instant::now();
    let st = ch.trigger.stop_with("TERM", Duration::from_secs(3));
    let took = t.elapsed();
    assert!(st.success(), "{}", ch.trigger.text());
    assert!(took < Duration::from_millis(500), "stopped in {took:?}");
    // The file is complete (renamed from .part), with the 6 frames.
    assert!(files(&ch.caps, ".part").is_empty());
    let caps = files(&ch.caps, ".pcap");
    assert_eq!(caps.len(), 1, "{caps:?}");
    assert_eq!(pcap_frames(&caps[0]).len(), 6);
    let text = ok_stdout(
        &ch.sb.run(
            "logger",
            &["-i", "f:events.trapcap", "-o", "DST_IP,PACKETS,STATUS"],
        ),
        "logger",
    );
    assert_eq!(text, format!("{LISTED},6,\"stopped\"\n"));
}

#[test]
fn duration_ends_a_capture_on_a_quiet_link() {
    if !ready() {
        return;
    }
    let Some(mut ch) = Chain::start(
        None,
        &[
            "--packets",
            "1000",
            "--duration",
            "1.5",
            "--suppress",
            "120",
        ],
    ) else {
        return;
    };
    ch.ping(LISTED, 2);
    ch.wait_session(LISTED);
    // Nothing more is sent: the capture ends by its duration.
    ch.wait_done(1);
    ch.trigger
        .wait_counter(&ch.sb, "done", 1, Duration::from_secs(5));
    assert!(ch.trigger.stop().success(), "{}", ch.trigger.text());
    let text = ok_stdout(
        &ch.sb.run(
            "logger",
            &["-i", "f:events.trapcap", "-o", "DST_IP,PACKETS,STATUS"],
        ),
        "logger",
    );
    assert_eq!(text, format!("{LISTED},0,\"duration\"\n"));
    let caps = files(&ch.caps, ".pcap");
    assert_eq!(pcap_frames(&caps[0]).len(), 0);
}

#[test]
fn bad_options_are_one_line_errors() {
    let sb = Sandbox::new();
    let base = ["-i", "b:,b:", "-I", "lo"];
    for (extra, want) in [
        (
            vec!["--local", "198.51.100.0/33", "--duration", "5"],
            "--local \"198.51.100.0/33\": not an address prefix",
        ),
        (
            vec!["--local", "198.51.100.0/24"],
            "give --duration SEC and/or --packets N",
        ),
        (
            vec!["--local", "198.51.100.0/24", "--duration=-1"],
            "--duration -1: give a positive number",
        ),
        (
            vec![
                "--local",
                "198.51.100.0/24",
                "--packets",
                "5",
                "-d",
                "nosuch",
            ],
            "nosuch: no such directory",
        ),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(&extra);
        let out = sb.run("capture_trigger", &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    // An interface that does not exist: named, with the likely fixes.
    let out = sb.run(
        "capture_trigger",
        &[
            "-i",
            "b:,b:",
            "-I",
            "tgnosuch0",
            "--local",
            "198.51.100.0/24",
            "--packets",
            "5",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot capture on tgnosuch0"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
