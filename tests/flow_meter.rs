//! flow_meter end to end: ipfixprobe's functional tests, robustness on the
//! shared capture collection, and live capture in a network namespace.

use nemea_rs::{interrupt, ok_stdout, shared_data, wait_output, Sandbox};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

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

#[test]
fn ipfixprobe_functional_basic() {
    functional_test("basic", "mixed.pcap", "basic");
}

#[test]
fn ipfixprobe_functional_vlan() {
    functional_test("vlan", "vlan.pcap", "vlan");
}

#[test]
fn every_shared_capture_runs_without_a_panic() {
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
    let (mut ok, mut refused) = (0, 0);
    for f in &files {
        let out = sb.run("flow_meter", &["-r", f.to_str().unwrap(), "-i", "b:"]);
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

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A network namespace joined to the root one by a veth pair; removed on drop.
struct Netns {
    name: String,
    host_if: String,
}

impl Netns {
    fn create(tag: u32) -> Result<Netns, String> {
        let name = format!("nmrs{tag}");
        let host_if = format!("nmrsh{tag}");
        let peer_if = format!("nmrsp{tag}");
        let n = Netns {
            name: name.clone(),
            host_if: host_if.clone(),
        };
        let sub = format!("10.{}.{}", 200 + tag % 50, tag % 250);
        let steps = [
            format!("ip netns add {name}"),
            format!("ip link add {host_if} type veth peer name {peer_if}"),
            format!("ip link set {peer_if} netns {name}"),
            format!("ip addr add {sub}.1/24 dev {host_if}"),
            format!("ip link set {host_if} up"),
            format!("ip netns exec {name} ip addr add {sub}.2/24 dev {peer_if}"),
            format!("ip netns exec {name} ip link set {peer_if} up"),
            format!("ip netns exec {name} ip link set lo up"),
        ];
        for step in &steps {
            let args: Vec<&str> = step.split_whitespace().collect();
            if !sh(&args) {
                return Err(format!("`{step}` failed"));
            }
        }
        Ok(n)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        sh(&["ip", "link", "del", &self.host_if]);
        sh(&["ip", "netns", "del", &self.name]);
    }
}

#[test]
fn live_capture_on_a_veth_pair() {
    let tag = std::process::id() % 10_000;
    let ns = match Netns::create(tag) {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("skipped: this machine does not allow network namespaces ({why})");
            return;
        }
    };
    let sub = format!("10.{}.{}", 200 + tag % 50, tag % 250);
    let host = format!("{sub}.1");
    let sb = Sandbox::new();
    let meter = sb.spawn(
        "flow_meter",
        &["-I", &ns.host_if, "-i", "f:live.trapcap", "-t", "300:30"],
    );
    std::thread::sleep(Duration::from_millis(700));
    // Traffic from the namespace to the host side: ping, a TCP and a UDP exchange.
    let tcp = std::net::TcpListener::bind((host.as_str(), 0)).unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let udp = std::net::UdpSocket::bind((host.as_str(), 0)).unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut c, _) = tcp.accept().unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        c.write_all(b"world").unwrap();
        let mut b = [0u8; 16];
        let (n, from) = udp.recv_from(&mut b).unwrap();
        udp.send_to(&b[..n], from).unwrap();
    });
    assert!(
        sh(&["ip", "netns", "exec", &ns.name, "ping", "-c", "3", "-i", "0.2", "-W", "2", &host]),
        "ping failed"
    );
    let script = format!(
        "import socket\ns=socket.create_connection(('{host}',{tcp_port}));s.sendall(b'hello');assert s.recv(5)==b'world';s.close()\n\
         u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);u.bind(('0.0.0.0',40123));u.sendto(b'ping',('{host}',{udp_port}));u.settimeout(2);u.recv(16)\n"
    );
    assert!(
        sh(&["ip", "netns", "exec", &ns.name, "python3", "-c", &script]),
        "TCP/UDP exchange failed"
    );
    server.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    interrupt(&meter);
    let out = wait_output(meter, Duration::from_secs(20), "flow_meter");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = ok_stdout(&sb.run("logger", &["-t", "-i", "f:live.trapcap"]), "logger");
    let peer = format!("{sub}.2");
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
                f[1] == peer
                    && f[0] == host
                    && f[14] == proto
                    && (dport.is_empty() || f[11] == dport)
            })
            .cloned()
    };
    let icmp = find("1", "").unwrap_or_else(|| panic!("no ICMP flow in\n{text}"));
    assert_eq!((icmp[9], icmp[10]), ("3", "3"), "{text}");
    let tcp = find("6", &tcp_port.to_string()).unwrap_or_else(|| panic!("no TCP flow in\n{text}"));
    assert!(
        tcp[9].parse::<u32>().unwrap() >= 4 && tcp[10].parse::<u32>().unwrap() >= 3,
        "{text}"
    );
    assert_eq!(tcp[15].parse::<u8>().unwrap() & 0x02, 2, "SYN seen: {text}");
    let udp = find("17", &udp_port.to_string()).unwrap_or_else(|| panic!("no UDP flow in\n{text}"));
    assert_eq!((udp[9], udp[10], udp[12]), ("1", "1", "40123"), "{text}");
    assert_eq!(udp[2], "32", "UDP BYTES is the IP length 20+8+4: {text}");
}
