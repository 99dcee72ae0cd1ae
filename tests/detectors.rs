//! Detection chains end to end with real processes: the test writes a pcap,
//! `flow_meter -r` turns it into flows, the detector finds the attack, the
//! reporter prints IDEA lines that must name attacker and victim.

use flow_meter::synth::{ipv4_frame, PcapWriter, L4};
use nemea_rs::{ok_stdout, wait_output, Sandbox};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// A classic pcap (Ethernet, µs timestamps) built packet by packet.
struct Pcap {
    writer: PcapWriter<Vec<u8>>,
    frame: Vec<u8>,
}

const T0: u64 = 1_700_000_000_000_000; // µs

impl Pcap {
    fn new() -> Pcap {
        Pcap {
            writer: PcapWriter::new(Vec::new()).expect("in memory"),
            frame: Vec::new(),
        }
    }

    fn packet(&mut self, us: u64, src: [u8; 4], dst: [u8; 4], l4: L4<'_>) {
        ipv4_frame(&mut self.frame, src.into(), dst.into(), 0, l4);
        self.writer.packet(T0 + us, &self.frame).expect("in memory");
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        us: u64,
        src: [u8; 4],
        sp: u16,
        dst: [u8; 4],
        dp: u16,
        flags: u8,
        payload: usize,
    ) {
        let payload = vec![0u8; payload];
        let l4 = L4::Tcp {
            sport: sp,
            dport: dp,
            seq: 0,
            ack: 0,
            flags,
            payload: &payload,
        };
        self.packet(us, src, dst, l4);
    }

    fn udp(&mut self, us: u64, src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16, payload: usize) {
        let payload = vec![0u8; payload];
        let l4 = L4::Udp {
            sport: sp,
            dport: dp,
            payload: &payload,
        };
        self.packet(us, src, dst, l4);
    }

    fn write(&self, path: &Path) {
        let mut f = std::fs::File::create(path).expect("create pcap");
        f.write_all(self.writer.get_ref()).expect("write pcap");
    }
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;

/// The flows of `pcap`. The flow cache is small (2^10) so that its sweep
/// exports idle flows soon, as on a busy link, instead of all at the end.
fn flows(sb: &Sandbox, pcap: &Pcap, name: &str) -> String {
    flows_with(sb, pcap, name, &[])
}

fn flows_with(sb: &Sandbox, pcap: &Pcap, name: &str, extra: &[&str]) -> String {
    let p = sb.path(&format!("{name}.pcap"));
    pcap.write(&p);
    let out = format!("f:{name}.flows");
    let mut args = vec!["-r", p.to_str().unwrap(), "-s", "10", "-i", &out];
    args.extend(extra);
    let o = sb.run("flow_meter", &args);
    ok_stdout(&o, "flow_meter");
    format!("{name}.flows")
}

/// Runs `detector ARGS -i f:FLOWS,f:alerts.trapcap`, then `reporter -D` on
/// the alerts; the IDEA messages it prints.
fn detect_and_report(
    sb: &Sandbox,
    detector: &str,
    args: &[&str],
    flows: &str,
    reporter: &str,
) -> Vec<Value> {
    let ifc = format!("f:{flows},f:alerts.trapcap");
    let mut all = args.to_vec();
    all.extend(["-i", &ifc]);
    ok_stdout(&sb.run(detector, &all), detector);
    let o = sb.run(reporter, &["-D", "-i", "f:alerts.trapcap"]);
    idea_lines(&ok_stdout(&o, reporter))
}

fn idea_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn vertical_port_scan_to_idea() {
    let sb = Sandbox::new();
    let mut p = Pcap::new();
    let (scanner, victim) = ([192, 0, 2, 7], [198, 51, 100, 20]);
    for port in 1..=1100u16 {
        p.tcp(u64::from(port) * 1000, scanner, 40000, victim, port, SYN, 0);
    }
    // Some ordinary traffic that must not count.
    for i in 0..200u64 {
        let c = [10, 0, 0, (i % 200) as u8 + 1];
        p.tcp(i * 500, c, 50000 + i as u16, victim, 443, SYN, 0);
        p.tcp(i * 500 + 10, victim, 443, c, 50000 + i as u16, SYN | ACK, 0);
        p.tcp(
            i * 500 + 20,
            c,
            50000 + i as u16,
            victim,
            443,
            ACK | PSH,
            300,
        );
    }
    let f = flows(&sb, &p, "scan");
    let o = sb.run(
        "vportscan_detector",
        &["-i", &format!("f:{f},f:alerts.trapcap")],
    );
    ok_stdout(&o, "vportscan_detector");
    let o = sb.run(
        "vportscan_aggregator",
        &["-i", "f:alerts.trapcap,f:agg.trapcap"],
    );
    ok_stdout(&o, "vportscan_aggregator");
    let o = sb.run(
        "vportscan2idea",
        &["-D", "-n", "test.vportscan", "-i", "f:agg.trapcap"],
    );
    let ideas = idea_lines(&ok_stdout(&o, "vportscan2idea"));
    assert_eq!(ideas.len(), 1, "{ideas:?}");
    let i = &ideas[0];
    assert_eq!(i["Category"][0], "Recon.Scanning");
    assert_eq!(i["Source"][0]["IP4"][0], "192.0.2.7");
    assert_eq!(i["Target"][0]["IP4"][0], "198.51.100.20");
    assert_eq!(i["FlowCount"], 1100);
    assert_eq!(i["Node"][0]["Name"], "test.vportscan");
    assert_eq!(i["Description"], "Vertical scan using TCP SYN");
    // -T: the same message on a TRAP output (JSON "IDEA"), then end of stream.
    let o = sb.run(
        "vportscan2idea",
        &["-D", "-T", "-i", "f:agg.trapcap,f:ideas.trapcap"],
    );
    assert_eq!(idea_lines(&ok_stdout(&o, "vportscan2idea")).len(), 1);
    let spec = format!("f:{}", sb.path("ideas.trapcap").display());
    let mut trap = libtrap::Trap::init(&spec, Some(1), Some(0)).unwrap();
    let input = &mut trap.inputs()[0];
    input.set_required(libtrap::Required::Json(Some("IDEA".into())));
    let msg = input.recv().unwrap();
    let v: Value = serde_json::from_slice(msg.data).unwrap();
    assert_eq!(v["Source"][0]["IP4"][0], "192.0.2.7");
    assert!(input.recv().unwrap().is_eos());
    // Without -D the (old) capture's alerts are dropped with a warning.
    let o = sb.run("vportscan2idea", &["-i", "f:agg.trapcap"]);
    assert_eq!(ok_stdout(&o, "vportscan2idea"), "");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Invalid timestamps"));
}

#[test]
fn horizontal_scan_to_idea() {
    let sb = Sandbox::new();
    let mut p = Pcap::new();
    for i in 0..120u64 {
        let dst = [10, 20, (i / 200) as u8, (i % 200) as u8 + 1];
        p.tcp(
            i * 10_000,
            [192, 0, 2, 45],
            40000 + i as u16,
            dst,
            445,
            SYN,
            0,
        );
    }
    let f = flows(&sb, &p, "hscan");
    ok_stdout(
        &sb.run(
            "haddrscan_detector",
            &["-i", &format!("f:{f},f:alerts.trapcap")],
        ),
        "haddrscan_detector",
    );
    ok_stdout(
        &sb.run(
            "haddrscan_aggregator",
            &["-i", "f:alerts.trapcap,f:agg.trapcap"],
        ),
        "haddrscan_aggregator",
    );
    let o = sb.run("haddrscan2idea", &["-D", "-i", "f:agg.trapcap"]);
    let ideas = idea_lines(&ok_stdout(&o, "haddrscan2idea"));
    assert_eq!(ideas.len(), 1, "{ideas:?}");
    let i = &ideas[0];
    assert_eq!(i["Description"], "Horizontal scan using TCP SYN");
    assert_eq!(i["Source"][0]["IP4"][0], "192.0.2.45");
    assert_eq!(i["Target"][0]["Port"][0], 445);
    assert_eq!(i["FlowCount"], 120);
    let targets = i["Target"][0]["IP4"].as_array().unwrap();
    assert_eq!(targets.len(), 12);
    assert!(targets
        .iter()
        .all(|t| t.as_str().unwrap().starts_with("10.20.0.")));
}

#[test]
fn vertical_scan_over_unix_sockets() {
    let sb = Sandbox::new();
    let mut p = Pcap::new();
    for port in 1..=120u16 {
        p.tcp(
            u64::from(port) * 1000,
            [192, 0, 2, 9],
            40001,
            [198, 51, 100, 30],
            port,
            SYN,
            0,
        );
    }
    let f = flows(&sb, &p, "scan");
    let rep = sb.spawn("vportscan2idea", &["-D", "-i", "u:agg"]);
    let agg = sb.spawn(
        "vportscan_aggregator",
        &["-t", "10", "-i", "u:alerts,u:agg"],
    );
    sb.wait_socket("agg");
    let det = sb.spawn("vportscan_detector", &["-i", "u:flows,u:alerts"]);
    sb.wait_socket("alerts");
    // The repeater's WAIT output holds the data until the detector connects.
    let o = sb.run("traffic_repeater", &["-i", &format!("f:{f},u:flows")]);
    ok_stdout(&o, "traffic_repeater");
    for (c, n) in [(det, "vportscan_detector"), (agg, "vportscan_aggregator")] {
        ok_stdout(&wait_output(c, Duration::from_secs(30), n), n);
    }
    let out = wait_output(rep, Duration::from_secs(30), "vportscan2idea");
    let ideas = idea_lines(&ok_stdout(&out, "vportscan2idea"));
    assert_eq!(ideas.len(), 1);
    assert_eq!(ideas[0]["Source"][0]["IP4"][0], "192.0.2.9");
    assert_eq!(ideas[0]["FlowCount"], 100);
}

/// `n` short SSH sessions of a password guesser, one a second from source
/// port `first_port` on: handshake, 12 login exchanges, FIN.
fn ssh_logins(p: &mut Pcap, attacker: [u8; 4], victim: [u8; 4], n: u64, first_port: u16) {
    for c in 0..n {
        let t = c * 1_000_000;
        let sp = first_port + c as u16;
        p.tcp(t, attacker, sp, victim, 22, SYN, 0);
        p.tcp(t + 100, victim, 22, attacker, sp, SYN | ACK, 0);
        p.tcp(t + 200, attacker, sp, victim, 22, ACK, 0);
        for k in 0..12u64 {
            p.tcp(t + 300 + k * 1000, attacker, sp, victim, 22, ACK | PSH, 60);
            p.tcp(t + 800 + k * 1000, victim, 22, attacker, sp, ACK | PSH, 80);
        }
        p.tcp(t + 20_000, attacker, sp, victim, 22, FIN | ACK, 0);
        p.tcp(t + 20_100, victim, 22, attacker, sp, FIN | ACK, 0);
    }
}

#[test]
fn ssh_brute_force_to_idea() {
    let sb = Sandbox::new();
    let mut p = Pcap::new();
    let (attacker, victim) = ([203, 0, 113, 66], [10, 0, 0, 22]);
    // 40 short SSH sessions: handshake, a few login exchanges, FIN.
    ssh_logins(&mut p, attacker, victim, 40, 40000);
    // A legitimate long session from another client.
    for k in 0..300u64 {
        p.tcp(k * 1000, [10, 0, 0, 5], 50000, victim, 22, ACK | PSH, 1000);
    }
    let f = flows(&sb, &p, "ssh");
    let ideas = detect_and_report(&sb, "bruteforce_detector", &["-S"], &f, "bruteforce2idea");
    assert!(!ideas.is_empty());
    for i in &ideas {
        assert_eq!(i["Category"][0], "Attempt.Login");
        assert_eq!(i["Source"][0]["IP4"], serde_json::json!(["203.0.113.66"]));
        assert_eq!(i["Target"][0]["IP4"], serde_json::json!(["10.0.0.22"]));
        assert_eq!(i["Target"][0]["Port"][0], 22);
        assert_eq!(
            i["Description"],
            "Multiple unsuccessful login attempts on SSH"
        );
    }
    assert_eq!(ideas[0]["FlowCount"], 30);
    assert_eq!(ideas[0]["Node"][0]["Name"], "com.example.bruteforce");
}

#[test]
fn syn_flood_to_idea() {
    let sb = Sandbox::new();
    let mut p = Pcap::new();
    let victim = [198, 51, 100, 80];
    let min = 60_000_000u64; // µs
    for m in 0..10u64 {
        // Background: two clients, ten 500-byte segments a minute each.
        for c in 0..2u8 {
            for k in 0..10u64 {
                let sp = 30000 + (m * 10) as u16 + u16::from(c);
                p.tcp(
                    m * min + k * 1_000_000,
                    [10, c, 0, 1],
                    sp,
                    victim,
                    80,
                    ACK | PSH,
                    460,
                );
            }
        }
        // Minutes 3-5: SYNs from 40 networks.
        if (3..6).contains(&m) {
            for s in 0..40u8 {
                for k in 0..50u64 {
                    let sp = 1024 + (m as u16) * 100 + k as u16;
                    p.tcp(
                        m * min + 2_000_000 + k * 700_000 + u64::from(s) * 1000,
                        [172, 16, s, 9],
                        sp,
                        victim,
                        80,
                        SYN,
                        0,
                    );
                }
            }
        }
    }
    let f = flows(&sb, &p, "flood");
    let ideas = detect_and_report(
        &sb,
        "ddos_detector",
        &["-m", "1", "-b", "0", "-p", "0"],
        &f,
        "ddos_detector2idea",
    );
    assert_eq!(ideas.len(), 1, "{ideas:?}");
    let i = &ideas[0];
    assert_eq!(i["Category"][0], "Availability.DoS");
    assert_eq!(i["Target"][0]["IP4"][0], "198.51.100.80");
    // 3 minutes of 2000 SYNs of 40 bytes above the background.
    assert_eq!(i["ByteCount"], 3 * 2000 * 40);
    assert_eq!(i["EventTime"], "2023-11-14T22:16:00Z");
}

#[test]
fn dns_amplification_to_idea() {
    let sb = Sandbox::new();
    let mut p = Pcap::new();
    let (victim, amplifier) = ([203, 0, 113, 10], [192, 0, 2, 53]);
    // 4 exchanges a second for 100 s: 3 queries of 60 bytes answered by 3
    // responses of 800 bytes, each exchange from its own source port.
    for i in 0..400u64 {
        let t = i * 250_000;
        let sp = 10_000 + i as u16;
        for k in 0..3 {
            p.udp(t + k * 1000, victim, sp, amplifier, 53, 32);
        }
        for k in 0..3 {
            p.udp(t + 5000 + k * 1000, amplifier, 53, victim, sp, 772);
        }
        // Ordinary DNS of another client: small answers.
        p.udp(t + 100_000, [10, 0, 0, 7], 5353, [192, 0, 2, 1], 53, 32);
        p.udp(t + 101_000, [192, 0, 2, 1], 53, [10, 0, 0, 7], 5353, 90);
    }
    let f = flows_with(&sb, &p, "amp", &["--split-biflow"]);
    let ideas = detect_and_report(
        &sb,
        "dns_amplification",
        &["-w", "60", "-s", "30", "-t", "100", "-d", "amp-logs/"],
        &f,
        "amplification2idea",
    );
    assert!(!ideas.is_empty());
    for i in &ideas {
        assert_eq!(i["Category"][0], "Availability.DDoS");
        assert_eq!(i["Description"], "DNS amplification");
        assert_eq!(i["Source"][0]["IP4"][0], "192.0.2.53");
        assert_eq!(i["Target"][0]["IP4"][0], "203.0.113.10");
    }
    let flows: u64 = ideas.iter().map(|i| i["FlowCount"].as_u64().unwrap()).sum();
    assert_eq!(flows, 400);
    // -d: one log entry per alert, in NEMEA's file and line format.
    let log = std::fs::read_to_string(sb.path("amp-logs/192.0.2.53-203.0.113.10.log")).unwrap();
    let headers = log
        .lines()
        .filter(|l| l.starts_with("Abused server IP: "))
        .count();
    assert_eq!(headers, ideas.len());
    let line = log.lines().nth(1).unwrap();
    let cols: Vec<&str> = line.split('\t').collect();
    assert_eq!(cols.len(), 4, "{line}");
    assert_eq!(cols[0].len(), "YYYY-mm-dd HH:MM:SS.mmm".len(), "{line}");
    assert!(cols[1] == "Q" || cols[1] == "R", "{line}");
}

#[test]
fn miner_to_idea() {
    let sb = Sandbox::new();
    let mut p = Pcap::new();
    let (miner, pool, other) = ([10, 0, 0, 50], [192, 0, 2, 10], [192, 0, 2, 11]);
    // Stratum traffic: job notifications and shares every 5 s for 2 minutes
    // (the connection was opened before the capture started).
    for k in 0..24u64 {
        let t = k * 5_000_000;
        p.tcp(t, pool, 3333, miner, 40000, ACK | PSH, 200);
        p.tcp(t + 50_000, miner, 40000, pool, 3333, ACK | PSH, 120);
        // same pool address, other port: not listed
        p.tcp(t + 70_000, miner, 40001, pool, 8080, ACK | PSH, 120);
        p.tcp(t + 90_000, miner, 40002, other, 3333, ACK | PSH, 120);
    }
    let f = flows(&sb, &p, "miner");
    std::fs::write(sb.path("pools.txt"), "# pools\n192.0.2.10:3333\n").unwrap();
    let ideas = detect_and_report(
        &sb,
        "miner_detector",
        &["-b", "pools.txt"],
        &f,
        "minerdetector2idea",
    );
    assert_eq!(ideas.len(), 1, "{ideas:?}");
    let i = &ideas[0];
    assert_eq!(i["Category"][0], "Suspicious.Miner");
    assert_eq!(i["Source"][0]["IP4"][0], "10.0.0.50");
    assert_eq!(i["Target"][0]["IP4"][0], "192.0.2.10");
    assert_eq!(i["Target"][0]["Port"][0], 3333);
    // One biflow: the pool spoke first, so the miner's packets are the
    // reverse direction; the pool side was found by the lower-port rule.
    assert_eq!(i["FlowCount"], 24);
    assert!(i["Note"].as_str().unwrap().contains("lower port"), "{i}");
}

/// session_probe's mining features into miner_detector: the session's
/// server is the one session_probe identified (a SYN towards port 45000,
/// which the lower-port rule would not pick), the packets of both sides
/// count, and SERVER_RULE says the SYN decided.
#[test]
fn miner_detector_reads_session_probe_features() {
    let sb = Sandbox::new();
    let mut p = Pcap::new();
    let (miner, pool) = ([198, 51, 100, 20], [198, 51, 100, 5]);
    p.tcp(0, miner, 3333, pool, 45000, SYN, 0);
    p.tcp(1_000, pool, 45000, miner, 3333, SYN | ACK, 0);
    p.tcp(2_000, miner, 3333, pool, 45000, ACK, 0);
    for k in 0..10u64 {
        let t = 10_000 + k * 100_000;
        p.tcp(t, pool, 45000, miner, 3333, ACK | PSH, 200);
        p.tcp(t + 5_000, miner, 3333, pool, 45000, ACK | PSH, 120);
    }
    let pcap = sb.path("session.pcap");
    p.write(&pcap);
    ok_stdout(
        &sb.run(
            "session_probe",
            &[
                "--userspace",
                "-r",
                pcap.to_str().unwrap(),
                "-i",
                "b:,f:mining.trapcap",
            ],
        ),
        "session_probe",
    );
    std::fs::write(sb.path("pools.txt"), "198.51.100.5:45000\n").unwrap();
    ok_stdout(
        &sb.run(
            "miner_detector",
            &["-b", "pools.txt", "-i", "f:mining.trapcap,f:alerts.trapcap"],
        ),
        "miner_detector",
    );
    let text = ok_stdout(
        &sb.run("logger", &["-t", "-i", "f:alerts.trapcap"]),
        "logger",
    );
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 1, "{text}");
    let col = |name: &str| {
        let i = head
            .iter()
            .position(|h| h.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{name} in {head:?}"));
        rows[0][i]
    };
    assert_eq!(col("SRC_IP"), "198.51.100.20", "{text}");
    assert_eq!(col("DST_IP"), "198.51.100.5", "{text}");
    assert_eq!(col("DST_PORT"), "45000", "{text}");
    assert_eq!(col("EVENT_SCALE"), "23", "{text}");
    assert_eq!(col("SERVER_RULE"), "1", "{text}");
}

/// A one-thread HTTP server answering every GET with the current `body`.
fn http_server(body: std::sync::Arc<std::sync::Mutex<String>>) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            // Read the request head before answering.
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let b = body.lock().unwrap().clone();
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            );
        }
    });
    port
}

#[test]
fn blacklist_download_filter_reload_and_idea() {
    let sb = Sandbox::new();
    let body = std::sync::Arc::new(std::sync::Mutex::new(
        "# botnet C&C\n198.51.100.0/24\n".to_string(),
    ));
    let port = http_server(body.clone());
    let cfg = sb.path("bl.toml");
    std::fs::write(
        &cfg,
        format!(
            "ipv4_file = \"{}\"\nipv6_file = \"{}\"\n[[blacklist]]\nid = 2\nname = \"TestBotnet\"\n\
             category = \"Intrusion.Botnet\"\nsource = \"http://127.0.0.1:{port}/list.txt\"\n",
            sb.path("ip4.blist").display(),
            sb.path("ip6.blist").display()
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap().to_string();
    ok_stdout(
        &sb.run("bl_downloader", &["-c", &cfg, "--once"]),
        "bl_downloader",
    );
    assert_eq!(
        std::fs::read_to_string(sb.path("ip4.blist")).unwrap(),
        "198.51.100.0/24,2\n"
    );
    std::fs::write(
        sb.path("flows.csv"),
        "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,uint32 PACKETS,uint64 BYTES,time TIME_FIRST,time TIME_LAST\n\
         10.0.0.1,198.51.100.7,50000,443,6,10,1000,2024-01-01T00:00:00,2024-01-01T00:00:01\n\
         10.0.0.2,203.0.113.5,50001,80,6,5,500,2024-01-01T00:00:00,2024-01-01T00:00:01\n\
         10.0.0.3,192.0.2.1,50002,80,6,5,500,2024-01-01T00:00:00,2024-01-01T00:00:01\n",
    )
    .unwrap();
    let filter = sb.spawn(
        "ipblacklistfilter",
        &["-4", "ip4.blist", "-i", "u:flows,f:marked.trapcap"],
    );
    ok_stdout(
        &sb.run(
            "logreplay",
            &["-d", "-n", "-f", "flows.csv", "-i", "u:flows"],
        ),
        "logreplay",
    );
    // The list changes; the running filter picks it up.
    *body.lock().unwrap() = "198.51.100.0/24\n203.0.113.5\n".into();
    ok_stdout(
        &sb.run("bl_downloader", &["-c", &cfg, "--once"]),
        "bl_downloader",
    );
    std::thread::sleep(Duration::from_millis(1200));
    ok_stdout(
        &sb.run("logreplay", &["-d", "-f", "flows.csv", "-i", "u:flows"]),
        "logreplay",
    );
    ok_stdout(
        &wait_output(filter, Duration::from_secs(30), "ipblacklistfilter"),
        "ipblacklistfilter",
    );
    let marked = ok_stdout(&sb.run("logger", &["-i", "f:marked.trapcap"]), "logger");
    let dsts: Vec<&str> = marked
        .lines()
        .map(|l| l.split(',').next().unwrap()) // UniRec order: DST_IP first
        .collect();
    assert_eq!(
        dsts,
        ["198.51.100.7", "198.51.100.7", "203.0.113.5"],
        "{marked}"
    );
    // One event per listed address (and protocol and list) for the window.
    ok_stdout(
        &sb.run(
            "blacklist_aggregator",
            &["-i", "f:marked.trapcap,f:events.trapcap"],
        ),
        "blacklist_aggregator",
    );
    let o = sb.run(
        "blacklist2idea",
        &["-D", "--blacklist-config", &cfg, "-i", "f:events.trapcap"],
    );
    let ideas = idea_lines(&ok_stdout(&o, "blacklist2idea"));
    assert_eq!(ideas.len(), 2, "{ideas:?}");
    assert_eq!(ideas[0]["Source"][0]["IP4"][0], "198.51.100.7");
    assert_eq!(ideas[0]["Source"][0]["Port"], serde_json::json!([443]));
    assert_eq!(
        ideas[0]["Source"][1]["IP4"],
        serde_json::json!(["10.0.0.1"])
    );
    assert_eq!(ideas[0]["FlowCount"], 2);
    assert_eq!(ideas[0]["ByteCount"], 2000);
    assert_eq!(ideas[1]["Category"][0], "Intrusion.Botnet");
    assert_eq!(ideas[1]["Source"][0]["IP4"][0], "203.0.113.5");
    assert_eq!(
        ideas[1]["Source"][0]["Type"],
        serde_json::json!(["CC", "Botnet"])
    );
    assert_eq!(ideas[1]["Source"][1]["IP4"][0], "10.0.0.2");
    assert_eq!(ideas[1]["Node"][0]["AggrWin"], "00:05:00");
    assert_eq!(
        ideas[1]["Description"],
        "Suspicious communication with IP listed on TestBotnet blacklist"
    );
    // A malformed line of a detector file is reported with its number and skipped.
    std::fs::write(
        sb.path("bad.blist"),
        "198.51.100.0/24,2\n300.1.1.1,1\n203.0.113.5,2\n",
    )
    .unwrap();
    ok_stdout(
        &sb.run(
            "logreplay",
            &["-d", "-f", "flows.csv", "-i", "f:flows.trapcap"],
        ),
        "logreplay",
    );
    let o = sb.run(
        "ipblacklistfilter",
        &["-4", "bad.blist", "-i", "f:flows.trapcap,f:marked2.trapcap"],
    );
    ok_stdout(&o, "ipblacklistfilter");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.blist:2: `300.1.1.1` is not an IP address"),
        "{err}"
    );
    let marked = ok_stdout(&sb.run("logger", &["-i", "f:marked2.trapcap"]), "logger");
    assert_eq!(marked.lines().count(), 2);
}

/// Issue 16, finding 2: a broken feed served with HTTP 200 (truncated JSON,
/// an HTML error page as a plaintext list, …) was read as "0 entities" and
/// the detector file rewritten without that list. Each keeps the last good
/// list, says why in one line, and `--once` exits 1.
#[test]
fn bl_downloader_keeps_the_last_good_list_on_a_broken_feed() {
    let sb = Sandbox::new();
    let body = std::sync::Arc::new(std::sync::Mutex::new("198.51.100.0/24\n".to_string()));
    let port = http_server(body.clone());
    let url = format!("http://127.0.0.1:{port}/list");
    let config = |format: &str, extra: &str| {
        std::fs::write(
            sb.path("bl.toml"),
            format!(
                "ipv4_file = \"ip4.blist\"\nipv6_file = \"ip6.blist\"\n\
                 [[blacklist]]\nid = 1\nname = \"Local\"\nsource = \"local.txt\"\n\
                 [[blacklist]]\nid = 2\nname = \"Feed\"\nsource = \"{url}\"\n{format}{extra}"
            ),
        )
        .unwrap();
    };
    config("", "");
    std::fs::write(sb.path("local.txt"), "192.0.2.1\n").unwrap();
    ok_stdout(
        &sb.run("bl_downloader", &["-c", "bl.toml", "--once"]),
        "bl_downloader",
    );
    let ip4 = || std::fs::read_to_string(sb.path("ip4.blist")).unwrap();
    assert_eq!(ip4(), "192.0.2.1,1\n198.51.100.0/24,2\n");
    let json = "format = \"json\"\njson_address_key = \"ip\"\n";
    let html = "<!DOCTYPE html>\n<html><body><h1>Rate limit exceeded</h1></body></html>\n";
    for (i, (format, served, why)) in [
        (
            json,
            r#"[{"ip": "60.0.0.1"}, {"ip": "60.0.0.2""#,
            "not a JSON list (EOF while parsing an object at line 1 column 38)",
        ),
        ("", html, "an HTML page (it starts with `<`), not a list"),
        (
            "",
            "Service Unavailable\n",
            "1 of 1 lines are not addresses (line 1: \"Service Unavailable\")",
        ),
        (
            "",
            "",
            "no entries (allow_empty = true lets this list be empty)",
        ),
        (
            json,
            "[]",
            "no entries (allow_empty = true lets this list be empty)",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        config(format, "");
        *body.lock().unwrap() = served.to_string();
        // The other list changes, so the files are rewritten.
        std::fs::write(sb.path("local.txt"), format!("192.0.2.{}\n", i + 2)).unwrap();
        let o = sb.run("bl_downloader", &["-c", "bl.toml", "--once"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{served:?}: {err}");
        assert_eq!(
            err,
            format!(
                "bl_downloader: warning: blacklist Feed: {url}: {why}; keeping the last good list\n\
                 bl_downloader: error: 1 of 2 blacklists failed\n"
            ),
            "{served:?}"
        );
        assert_eq!(
            ip4(),
            format!("192.0.2.{},1\n198.51.100.0/24,2\n", i + 2),
            "{served:?}"
        );
    }
    // A feed that may be empty says so; then an empty body empties it.
    config("", "allow_empty = true\n");
    *body.lock().unwrap() = "# no entries today\n".into();
    ok_stdout(
        &sb.run("bl_downloader", &["-c", "bl.toml", "--once"]),
        "bl_downloader",
    );
    assert_eq!(ip4(), "192.0.2.6,1\n");
    // A list no longer configured leaves the files.
    *body.lock().unwrap() = "203.0.113.1\n".into();
    std::fs::write(
        sb.path("bl.toml"),
        format!("ipv4_file = \"ip4.blist\"\nipv6_file = \"ip6.blist\"\n[[blacklist]]\nid = 2\nname = \"Feed\"\nsource = \"{url}\"\n"),
    )
    .unwrap();
    ok_stdout(
        &sb.run("bl_downloader", &["-c", "bl.toml", "--once"]),
        "bl_downloader",
    );
    assert_eq!(ip4(), "203.0.113.1,2\n");
}

#[test]
fn hoststats_ssh_brute_force_to_idea() {
    let sb = Sandbox::new();
    let mut p = Pcap::new();
    let (attacker, victim) = ([203, 0, 113, 77], [10, 0, 0, 23]);
    ssh_logins(&mut p, attacker, victim, 100, 41000);
    let f = flows_with(&sb, &p, "ssh", &["--split-biflow"]);
    std::fs::write(
        sb.path("hs.conf"),
        "rules-generic = 1\nrules-ssh = 1\nrules-dns = 1\ndetection-log = hs-log/\n",
    )
    .unwrap();
    let ideas = detect_and_report(&sb, "hoststats", &["-c", "hs.conf"], &f, "hoststats2idea");
    assert_eq!(ideas.len(), 2, "{ideas:?}");
    // detection-log: both events in NEMEA's daily log, named by their day.
    let logs: Vec<_> = std::fs::read_dir(sb.path("hs-log"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(logs.len(), 1);
    let name = logs[0].file_name().into_string().unwrap();
    assert!(name.len() == 12 && name.ends_with(".log"), "{name}");
    let log = std::fs::read_to_string(logs[0].path()).unwrap();
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split(';').collect()).collect();
    assert_eq!(lines.len(), 2, "{log}");
    for l in &lines {
        assert_eq!(l.len(), 10, "{log}");
        assert_eq!((l[2], l[3], l[7]), ("bruteforce", "6", "22"), "{log}");
    }
    assert!(log.contains(";203.0.113.77;;;22;"), "{log}");
    assert!(log.contains(";;10.0.0.23;;22;"), "{log}");
    assert!(ideas.iter().all(|i| i["Category"][0] == "Attempt.Login"));
    let victim_msg = ideas
        .iter()
        .find(|i| i["Target"][0]["IP4"][0] == "10.0.0.23");
    let attacker_msg = ideas
        .iter()
        .find(|i| i["Source"][0]["IP4"][0] == "203.0.113.77");
    assert!(victim_msg.is_some() && attacker_msg.is_some(), "{ideas:?}");
    assert_eq!(victim_msg.unwrap()["ConnCount"], 100);
}

/// Two vertical scans (from 10.1.2.3 and 192.0.2.3, 60 ports each) as
/// vportscan_aggregator's JSON events in `agg.trapcap`.
fn scan_events(sb: &Sandbox) {
    let mut p = Pcap::new();
    for port in 1..=60u16 {
        p.tcp(
            u64::from(port) * 1000,
            [10, 1, 2, 3],
            40000,
            [198, 51, 100, 20],
            port,
            SYN,
            0,
        );
        p.tcp(
            u64::from(port) * 1000,
            [192, 0, 2, 3],
            40000,
            [198, 51, 100, 20],
            port,
            SYN,
            0,
        );
    }
    let f = flows(sb, &p, "scan");
    ok_stdout(
        &sb.run(
            "vportscan_detector",
            &["-i", &format!("f:{f},f:alerts.trapcap")],
        ),
        "vportscan_detector",
    );
    ok_stdout(
        &sb.run(
            "vportscan_aggregator",
            &["-i", "f:alerts.trapcap,f:agg.trapcap"],
        ),
        "vportscan_aggregator",
    );
}

#[test]
fn reporter_rereads_changed_rules() {
    let sb = Sandbox::new();
    scan_events(&sb);
    let rules = |note: &str| {
        format!(
            "namespace: org.example\ncustom_actions:\n  - id: m\n    mark: {{path: Note, value: {note}}}\n\
             rules:\n  - id: 1\n    condition: true\n    actions: [m, stdout]\n"
        )
    };
    std::fs::write(sb.path("rules.yaml"), rules("first")).unwrap();
    // The scan alerts go through an aggregator with a 1.2 s window twice;
    // the rules change between the windows.
    let agg = sb.spawn(
        "vportscan_aggregator",
        &["-t", "0.02", "-i", "u:alerts,u:events"],
    );
    sb.wait_socket("events");
    let reporter = sb.spawn(
        "vportscan2idea",
        &["-D", "-a", "1", "-c", "rules.yaml", "-i", "u:events"],
    );
    ok_stdout(
        &sb.run(
            "traffic_repeater",
            &["-n", "-i", "f:alerts.trapcap,u:alerts"],
        ),
        "traffic_repeater",
    );
    std::thread::sleep(Duration::from_millis(2500));
    std::fs::write(sb.path("rules.yaml"), rules("second")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    ok_stdout(
        &sb.run("traffic_repeater", &["-i", "f:alerts.trapcap,u:alerts"]),
        "traffic_repeater",
    );
    ok_stdout(
        &wait_output(agg, Duration::from_secs(30), "vportscan_aggregator"),
        "vportscan_aggregator",
    );
    let out = wait_output(reporter, Duration::from_secs(30), "vportscan2idea");
    let notes: Vec<String> = idea_lines(&ok_stdout(&out, "vportscan2idea"))
        .iter()
        .map(|i| i["Note"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(notes, ["first", "first", "second", "second"]);
}

/// Rules nesting a condition 20 000 levels deep (issue 16, finding 1).
fn deep_rules() -> String {
    format!(
        "namespace: x\nrules:\n  - id: 1\n    condition: \"{}true{}\"\n    actions: [stdout]\n",
        "(".repeat(20_000),
        ")".repeat(20_000)
    )
}

const DEPTH_ERROR: &str =
    "rule 1: condition: nested more than 256 levels deep (the limit for parentheses, `not`s and lists)";

#[test]
fn reporter_refuses_deep_condition_at_start_up() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("deep.yaml"), deep_rules()).unwrap();
    std::fs::write(sb.path("none.trapcap"), "").unwrap();
    for args in [
        &["-c", "deep.yaml", "-d"][..],
        &["-c", "deep.yaml", "-i", "f:none.trapcap"],
    ] {
        let o = sb.run("vportscan2idea", args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(
            err,
            format!("vportscan2idea: error: deep.yaml: {DEPTH_ERROR}\n"),
            "{args:?}"
        );
    }
}

#[test]
fn reporter_keeps_its_rules_when_a_reload_is_too_deep() {
    let sb = Sandbox::new();
    scan_events(&sb);
    std::fs::write(
        sb.path("rules.yaml"),
        "namespace: org.example\ncustom_actions:\n  - id: m\n    mark: {path: Note, value: old}\n\
         rules:\n  - id: 1\n    condition: Source.IP4 in [10.0.0.0/8, 192.0.2.0/24]\n    actions: [m, stdout]\n",
    )
    .unwrap();
    let agg = sb.spawn(
        "vportscan_aggregator",
        &["-t", "0.02", "-i", "u:alerts,u:events"],
    );
    sb.wait_socket("events");
    let reporter = sb.spawn(
        "vportscan2idea",
        &["-D", "-a", "1", "-c", "rules.yaml", "-i", "u:events"],
    );
    let batch = |last: bool| {
        let args: &[&str] = if last {
            &["-i", "f:alerts.trapcap,u:alerts"]
        } else {
            &["-n", "-i", "f:alerts.trapcap,u:alerts"]
        };
        ok_stdout(&sb.run("traffic_repeater", args), "traffic_repeater");
    };
    // The scans of each batch leave the aggregator after its 1.2 s window.
    batch(false);
    std::thread::sleep(Duration::from_millis(2500));
    // A broken file arrives: by -a, then by SIGUSR1; each time the next
    // alerts are reported with the old rules.
    std::fs::write(sb.path("rules.yaml"), deep_rules()).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    batch(false);
    std::thread::sleep(Duration::from_millis(2500));
    let usr1 = std::process::Command::new("kill")
        .args(["-USR1", &reporter.id().to_string()])
        .status()
        .unwrap();
    assert!(usr1.success());
    batch(true);
    ok_stdout(
        &wait_output(agg, Duration::from_secs(30), "vportscan_aggregator"),
        "vportscan_aggregator",
    );
    let out = wait_output(reporter, Duration::from_secs(30), "vportscan2idea");
    let notes: Vec<String> = idea_lines(&ok_stdout(&out, "vportscan2idea"))
        .iter()
        .map(|i| i["Note"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(notes, ["old"; 6]);
    let err = String::from_utf8_lossy(&out.stderr);
    let refused: Vec<&str> = err.lines().filter(|l| l.contains("keeping")).collect();
    let want = format!("vportscan2idea: warning: rules.yaml: {DEPTH_ERROR}; keeping the old rules");
    assert_eq!(refused, [want.as_str(); 2], "{err}");
}

#[test]
fn reporter_rules_file() {
    let sb = Sandbox::new();
    scan_events(&sb);
    // The same rules in TOML and in NEMEA's YAML.
    std::fs::write(
        sb.path("rules.toml"),
        r#"
namespace = "org.example.nemea"
[[addressgroups]]
id = "internal"
list = ["10.0.0.0/8"]
[[custom_actions]]
id = "store"
file = { path = "out/internal.toml.idea" }
[[custom_actions]]
id = "mark"
mark = { path = "Note", value = "internal scanner" }
[[rules]]
id = 1
condition = "Source.IP4 in internal"
actions = ["mark", "store", "drop"]
[[rules]]
id = 2
condition = "FlowCount >= 50"
actions = ["stdout"]
"#,
    )
    .unwrap();
    std::fs::write(
        sb.path("rules.yaml"),
        r#"namespace: org.example.nemea
addressgroups:
  - id: internal
    list: [10.0.0.0/8]
custom_actions:
  - id: store
    file: {path: out/internal.yaml.idea}
  - id: mark
    mark: {path: Note, value: internal scanner}
  - id: mail
    email: {to: soc@example.org, subject: '{{ category }}'}
rules:
  - id: 1
    condition: Source.IP4 in internal
    actions: [mark, store, drop]
  - id: 2
    condition: FlowCount >= 50
    actions: [stdout]
"#,
    )
    .unwrap();
    for ext in ["toml", "yaml"] {
        let rules = format!("rules.{ext}");
        let o = sb.run(
            "vportscan2idea",
            &["-D", "-c", &rules, "-i", "f:agg.trapcap"],
        );
        let ideas = idea_lines(&ok_stdout(&o, "vportscan2idea"));
        assert_eq!(ideas.len(), 1, "{rules}");
        assert_eq!(ideas[0]["Source"][0]["IP4"][0], "192.0.2.3");
        assert_eq!(ideas[0]["Node"][0]["Name"], "org.example.nemea.vportscan");
        let stored = sb.path(&format!("out/internal.{ext}.idea"));
        let stored = idea_lines(&std::fs::read_to_string(stored).unwrap());
        assert_eq!(stored.len(), 1, "{rules}");
        assert_eq!(stored[0]["Source"][0]["IP4"][0], "10.1.2.3");
        assert_eq!(stored[0]["Note"], "internal scanner");
    }
    // A broken rules file is one line naming the problem.
    std::fs::write(
        sb.path("bad.toml"),
        "[[rules]]\nid = 1\ncondition = \"FlowCount >\"\n",
    )
    .unwrap();
    let o = sb.run("vportscan2idea", &["-c", "bad.toml", "-i", "f:agg.trapcap"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("vportscan2idea: error: bad.toml: rule 1: condition"),
        "{err}"
    );
}

#[test]
fn missing_field_is_named_at_start_up() {
    let sb = Sandbox::new();
    // Flows without TCP_FLAGS: logreplay-style records from a CSV.
    std::fs::write(
        sb.path("flows.csv"),
        "ipaddr SRC_IP,ipaddr DST_IP,uint16 SRC_PORT,uint16 DST_PORT,uint8 PROTOCOL,uint32 PACKETS,time TIME_FIRST,time TIME_LAST\n\
         10.0.0.1,10.0.0.2,1,2,6,1,2024-01-01T00:00:00,2024-01-01T00:00:01\n",
    )
    .unwrap();
    let o = sb.run("logreplay", &["-f", "flows.csv", "-i", "f:flows.trapcap"]);
    ok_stdout(&o, "logreplay");
    for (det, extra, missing) in [
        ("vportscan_detector", None, "TCP_FLAGS"),
        ("bruteforce_detector", Some("-S"), "uint64 BYTES"),
        ("ddos_detector", None, "uint64 BYTES"),
        ("dns_amplification", None, "uint64 BYTES"),
        ("haddrscan_detector", None, "uint8 TCP_FLAGS"),
        ("miner_detector", None, "uint8 TCP_FLAGS"),
        ("hoststats", None, "uint8 TCP_FLAGS"),
    ] {
        let mut args: Vec<&str> = extra.into_iter().collect();
        args.extend(["-i", "f:flows.trapcap,f:alerts.trapcap"]);
        let o = sb.run(det, &args);
        assert!(
            !o.status.success(),
            "{det} accepted flows without {missing}"
        );
        let err = String::from_utf8_lossy(&o.stderr);
        let errors: Vec<&str> = err.lines().filter(|l| l.contains(": error: ")).collect();
        assert_eq!(errors.len(), 1, "{det}: {err}");
        assert!(
            errors[0].starts_with(&format!("{det}: error: ")) && errors[0].contains(missing),
            "{det}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// The demo's capture (`pcap_generator --demo`): every flow of the scenario
/// comes out of flow_meter, and the vertical scan in it reaches IDEA naming
/// the scanner and its target, with nothing reported for the web client.
#[test]
fn demo_capture_to_flows_and_idea() {
    use flow_meter::synth::{DEMO_CLIENT, DEMO_SCANNED_PORTS, DEMO_SCANNER, DEMO_SERVER};
    let sb = Sandbox::new();
    ok_stdout(
        &sb.run("pcap_generator", &["--demo", "-w", "demo.pcap"]),
        "pcap_generator",
    );
    ok_stdout(
        &sb.run("flow_meter", &["-r", "demo.pcap", "-i", "f:demo.flows"]),
        "flow_meter",
    );
    let text = ok_stdout(&sb.run("logger", &["-i", "f:demo.flows"]), "logger");
    let lines: Vec<&str> = text.lines().collect();
    let from = |ip: std::net::Ipv4Addr| {
        let needle = format!("{DEMO_SERVER},{ip},");
        lines.iter().filter(|l| l.starts_with(&needle)).count()
    };
    // The scanner: one flow per probed port plus its own page load; the
    // client: three HTTP connections (and one DNS flow to its resolver).
    assert_eq!(from(DEMO_SCANNER), DEMO_SCANNED_PORTS.count() + 1);
    assert_eq!(from(DEMO_CLIENT), 3);
    assert_eq!(lines.len(), DEMO_SCANNED_PORTS.count() + 1 + 3 + 1);
    for (module, ifc) in [
        ("vportscan_detector", "f:demo.flows,f:demo.alerts"),
        ("vportscan_aggregator", "f:demo.alerts,f:demo.events"),
    ] {
        ok_stdout(&sb.run(module, &["-i", ifc]), module);
    }
    let idea = idea_lines(&ok_stdout(
        &sb.run("vportscan2idea", &["-D", "-i", "f:demo.events"]),
        "vportscan2idea",
    ));
    assert_eq!(idea.len(), 1, "{idea:?}");
    assert_eq!(idea[0]["Category"][0], "Recon.Scanning");
    assert_eq!(idea[0]["Source"][0]["IP4"][0], DEMO_SCANNER.to_string());
    assert_eq!(idea[0]["Target"][0]["IP4"][0], DEMO_SERVER.to_string());
}
