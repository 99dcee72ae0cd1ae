//! flow_meter's IPFIX export against real peers: tshark decodes what
//! `-x … -u` sends (no malformed message, the same flows as the UniRec
//! output of the same run), and a TCP collector that restarts mid-export gets
//! the templates again on the new connection while the drops are reported.

use nemea_rs::ci;
use nemea_rs::{ok_stdout, shared_data, wait_output, Sandbox};
use std::collections::HashMap;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool} > /dev/null")])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !ci(),
            "{tool} is required under CI=true (scripts/setup.sh installs it)"
        );
        eprintln!("skipped: {tool} is missing");
    }
    ok
}

/// Writes datagrams as a pcap of IPv4/UDP packets to port 4739 (link type
/// raw IPv4), for tshark.
fn write_pcap(path: &std::path::Path, datagrams: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&228u32.to_le_bytes()); // LINKTYPE_IPV4
    for (i, d) in datagrams.iter().enumerate() {
        let total = 28 + d.len();
        out.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(total as u32).to_le_bytes());
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let sum = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum::<u32>();
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        out.extend_from_slice(&ip);
        out.extend_from_slice(&40000u16.to_be_bytes());
        out.extend_from_slice(&4739u16.to_be_bytes());
        out.extend_from_slice(&((8 + d.len()) as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(d);
    }
    std::fs::write(path, out).unwrap();
}

type FlowKey = Vec<String>;

/// The flows of tshark's `-V` text: one tuple per "Flow N" block.
fn tshark_flows(text: &str) -> Vec<FlowKey> {
    let mut flows = Vec::new();
    let mut cur: HashMap<&str, String> = HashMap::new();
    let mut push = |cur: &mut HashMap<&str, String>| {
        if !cur.is_empty() {
            let g = |k: &str| cur.get(k).cloned().unwrap_or_default();
            flows.push(vec![
                g("SrcAddr"),
                g("DstAddr"),
                g("SrcPort"),
                g("DstPort"),
                g("Protocol"),
                g("Packets"),
                g("PacketsRev"),
                g("Octets"),
                g("OctetsRev"),
                g("Vlan Id"),
            ]);
            cur.clear();
        }
    };
    let mut in_flow = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("Flow ") && t[5..].chars().all(|c| c.is_ascii_digit()) {
            push(&mut cur);
            in_flow = true;
            continue;
        }
        // A line of a new protocol layer or frame ends the flow records.
        if !line.starts_with(' ') || t.starts_with("FlowSet") || t.starts_with("Set ") {
            push(&mut cur);
            in_flow = false;
        }
        if !in_flow {
            continue;
        }
        let Some((k, v)) = t.split_once(": ") else {
            continue;
        };
        let rev = v.contains("(Reverse");
        let v = v.split(" (").next().unwrap_or(v).to_string();
        let k = match (k, rev) {
            ("Packets", true) => "PacketsRev",
            ("Octets", true) => "OctetsRev",
            ("Packets" | "Octets" | "SrcAddr" | "DstAddr" | "SrcPort" | "DstPort", _) => k,
            ("Protocol", _) => "Protocol",
            ("Vlan Id", _) => "Vlan Id",
            _ => continue,
        };
        // "Protocol: UDP (17)": keep the number.
        let v = if k == "Protocol" {
            t.rsplit_once('(')
                .map(|(_, n)| n.trim_end_matches(')').to_string())
                .unwrap_or(v)
        } else {
            v
        };
        cur.insert(k, v);
    }
    push(&mut cur);
    flows
}

/// The same tuples from `logger -t` text.
fn unirec_flows(text: &str) -> Vec<FlowKey> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(|f| f.rsplit(' ').next().unwrap_or(f))
        .collect();
    let col = |n: &str| header.iter().position(|h| *h == n);
    let names = [
        "SRC_IP",
        "DST_IP",
        "SRC_PORT",
        "DST_PORT",
        "PROTOCOL",
        "PACKETS",
        "PACKETS_REV",
        "BYTES",
        "BYTES_REV",
        "VLAN_ID",
    ];
    lines
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            names
                .iter()
                .map(|n| col(n).and_then(|c| v.get(c)).unwrap_or(&"").to_string())
                .collect()
        })
        .collect()
}

/// Both outputs at once: `-i f:` and `-x … -u`; tshark's decoding of the
/// IPFIX equals the UniRec records, with no malformed message.
#[test]
fn tshark_decodes_the_ipfix_export_as_the_same_flows() {
    if !have("tshark") {
        return;
    }
    let sb = Sandbox::new();
    ok_stdout(
        &sb.run(
            "pcap_generator",
            &["-n", "30000", "-f", "3000", "-c", "500", "-w", "gen.pcap"],
        ),
        "pcap_generator",
    );
    let mut captures = vec![sb.path("gen.pcap")];
    if let Some(d) = shared_data("ipfixprobe-functional") {
        // IPv6 and VLAN flows.
        captures.push(d.join("inputs/mixed.pcap"));
        captures.push(d.join("inputs/vlan.pcap"));
    }
    for cap in captures {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let rx = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 65536];
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) => got.push(buf[..n].to_vec()),
                    Err(_) if stop2.load(Ordering::SeqCst) => break,
                    Err(_) => {}
                }
            }
            got
        });
        let target = format!("127.0.0.1:{port}");
        let out = sb.run(
            "flow_meter",
            &[
                "-r",
                cap.to_str().unwrap(),
                "-p",
                "vlan",
                "-i",
                "f:out.trapcap",
                "-x",
                &target,
                "-u",
            ],
        );
        ok_stdout(&out, "flow_meter");
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::SeqCst);
        let datagrams = rx.join().unwrap();
        assert!(!datagrams.is_empty(), "{}: nothing arrived", cap.display());
        assert!(datagrams.iter().all(|d| d.len() <= 1458), "MTU kept");
        write_pcap(&sb.path("ipfix.pcap"), &datagrams);
        let v = Command::new("tshark")
            .args(["-r", sb.path("ipfix.pcap").to_str().unwrap()])
            .args(["-d", "udp.port==4739,cflow", "-V"])
            .output()
            .unwrap();
        assert!(v.status.success(), "tshark failed");
        let text = String::from_utf8_lossy(&v.stdout);
        assert!(
            !text.contains("Malformed") && !text.contains("[Expert Info (Error"),
            "{}: tshark finds malformed IPFIX",
            cap.display()
        );
        let mut ipfix = tshark_flows(&text);
        let logged = ok_stdout(&sb.run("logger", &["-i", "f:out.trapcap", "-t"]), "logger");
        let mut unirec = unirec_flows(&logged);
        assert!(!unirec.is_empty());
        ipfix.sort();
        unirec.sort();
        if ipfix.len() != unirec.len() {
            let extra: Vec<_> = ipfix
                .iter()
                .filter(|f| !unirec.contains(f))
                .take(5)
                .collect();
            let missing: Vec<_> = unirec
                .iter()
                .filter(|f| !ipfix.contains(f))
                .take(5)
                .collect();
            panic!(
                "{}: {} IPFIX flows, {} UniRec flows; extra {extra:?}, missing {missing:?}",
                cap.display(),
                ipfix.len(),
                unirec.len()
            );
        }
        assert_eq!(ipfix, unirec, "{}", cap.display());
        std::fs::remove_file(sb.path("out.trapcap")).unwrap();
    }
}

/// Walks an IPFIX-over-TCP stream: (messages, template sets, data records
/// of fixed-length templates).
fn walk_stream(s: &[u8]) -> (usize, Vec<usize>, usize) {
    let mut lens: HashMap<u16, usize> = HashMap::new();
    let (mut msgs, mut template_msgs, mut records) = (0, Vec::new(), 0);
    let mut at = 0;
    while at + 16 <= s.len() {
        let len = usize::from(u16::from_be_bytes([s[at + 2], s[at + 3]]));
        assert_eq!(&s[at..at + 2], &[0, 10], "version 10 at {at}");
        if len < 16 || at + len > s.len() {
            break; // cut by the collector's close
        }
        let m = &s[at..at + len];
        let mut p = 16;
        while p + 4 <= m.len() {
            let id = u16::from_be_bytes([m[p], m[p + 1]]);
            let sl = usize::from(u16::from_be_bytes([m[p + 2], m[p + 3]]));
            let body = &m[p + 4..p + sl];
            if id == 2 {
                template_msgs.push(msgs);
                let mut q = 0;
                while q + 4 <= body.len() {
                    let tid = u16::from_be_bytes([body[q], body[q + 1]]);
                    let n = u16::from_be_bytes([body[q + 2], body[q + 3]]);
                    q += 4;
                    let mut rl = 0;
                    for _ in 0..n {
                        let e = u16::from_be_bytes([body[q], body[q + 1]]);
                        rl += usize::from(u16::from_be_bytes([body[q + 2], body[q + 3]]));
                        q += if e & 0x8000 != 0 { 8 } else { 4 };
                    }
                    lens.insert(tid, rl);
                }
            } else {
                let rl = lens.get(&id).copied().expect("data before its template");
                records += body.len() / rl;
            }
            p += sl;
        }
        msgs += 1;
        at += len;
    }
    (msgs, template_msgs, records)
}

/// A TCP collector that closes mid-export and comes back: flow_meter
/// reconnects, starts the new connection with the templates and says what
/// it dropped (exit 1 when it dropped any).
#[test]
fn a_tcp_collector_restarted_mid_export_gets_templates_and_drops_are_counted() {
    let sb = Sandbox::new();
    ok_stdout(
        &sb.run(
            "pcap_generator",
            &[
                "-n", "400000", "-f", "60000", "-c", "4000", "-w", "gen.pcap",
            ],
        ),
        "pcap_generator",
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let child = sb.spawn(
        "flow_meter",
        &["-r", "gen.pcap", "-x", &addr.to_string(), "-t", "1:1", "-v"],
    );
    // First run of the collector: reads slowly for 1.5 s (flow_meter waits
    // on it), then goes away unannounced.
    let (mut c, _) = l.accept().unwrap();
    let mut first = Vec::new();
    let begun = std::time::Instant::now();
    let mut buf = vec![0u8; 16384];
    while begun.elapsed() < Duration::from_millis(1500) {
        let n = c.read(&mut buf).unwrap();
        first.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(c);
    // Second run: the listener stays (a restarted collector on the same
    // port); the next connection is the new run.
    let (mut c, _) = l.accept().unwrap();
    let mut second = Vec::new();
    c.read_to_end(&mut second).unwrap();
    let out = wait_output(child, Duration::from_secs(60), "flow_meter");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connection lost"), "{err}");
    assert!(err.contains("connected again"), "{err}");
    let (_, t1, r1) = walk_stream(&first);
    let (m2, t2, r2) = walk_stream(&second);
    assert_eq!(
        t1.first(),
        Some(&0),
        "first connection starts with templates"
    );
    assert_eq!(
        t2.first(),
        Some(&0),
        "second connection starts with templates"
    );
    assert!(
        m2 > 10 && r2 > 1000,
        "the export went on: {m2} messages, {r2} records"
    );
    // What flow_meter says it sent and dropped.
    let num = |after: &str| -> usize {
        err.split(after)
            .next()
            .and_then(|s| s.rsplit(' ').find(|w| !w.is_empty()))
            .and_then(|w| w.parse().ok())
            .unwrap_or(usize::MAX)
    };
    let dropped = num(" dropped,");
    let flows = num(" flows exported");
    assert!(dropped < flows, "{err}");
    // Dropped records fail the run; what the kernel had accepted when the
    // collector went away is lost unknown to the exporter.
    assert_eq!(out.status.code(), Some(i32::from(dropped > 0)), "{err}");
    if dropped > 0 {
        assert!(err.contains("records were not delivered"), "{err}");
    }
    assert!(
        r1 + r2 + dropped <= flows,
        "{r1} + {r2} + {dropped} > {flows}"
    );
    assert!(r1 + r2 < flows, "the first run cannot have read everything");
}
