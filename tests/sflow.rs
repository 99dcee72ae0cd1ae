//! sflow_collector with a real sFlow agent (pmacct's pmacctd with its
//! sfprobe plugin on a namespace's interface, sampling every packet),
//! compared with nfdump's sfcapd decoding the very same datagrams; and
//! garbage datagrams (counted, no crash).

mod netlab;

use nemea_rs::{ok_stdout, wait_udp_bound, Sandbox};
use netlab::{have, is_root, Lab, Proc, LOCAL_IF, LOCAL_IP, PEER_IP};
use sflow_collector::encode::{DatagramBuilder, FlowSampleSpec};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

/// UDP ports the peer sends to, from SPORT.
const DPORTS: [u16; 3] = [5001, 5002, 5003];
const SPORT: u16 = 40001;

type Tuple = (String, String, u16, u16, u8);

fn count(v: &[Tuple]) -> BTreeMap<Tuple, usize> {
    let mut m = BTreeMap::new();
    for t in v {
        *m.entry(t.clone()).or_insert(0) += 1;
    }
    m
}

#[test]
fn pmacct_agent_samples_match_the_traffic_and_sfcapd() {
    if !is_root() {
        assert!(!netlab::ci(), "tests/sflow.rs needs root under CI=true");
        eprintln!("skipped: not root (network namespaces)");
        return;
    }
    if !(have("pmacctd") && have("sfcapd") && have("nfdump") && have("python3")) {
        return;
    }
    let Some(lab) = Lab::create("sfl", &[]) else {
        return;
    };
    let sb = Sandbox::new();
    let nf = sb.path("nf");
    std::fs::create_dir(&nf).unwrap();
    // Each namespace has its own loopback: fixed ports collide with nothing.
    // sfcapd repeats every datagram it receives to the collector (-R), so
    // both decode the same bytes.
    let nf_s = nf.display().to_string();
    let mut sfcapd = Proc::start(
        lab.cmd(
            &lab.local,
            &sb,
            "sfcapd",
            &[
                "-b",
                "127.0.0.1",
                "-p",
                "16343",
                "-w",
                &nf_s,
                "-R",
                "127.0.0.1/16344",
            ],
        ),
        &sb,
        "sfcapd",
    );
    let mut col = Proc::module_in(
        &lab,
        &lab.local,
        &sb,
        "sflow_collector",
        &["--udp", "127.0.0.1:16344", "-i", "f:samples.trapcap", "-v"],
    );
    // The datagrams sfcapd repeats, as a capture for `sflow_collector -r`.
    let mut dump = Proc::start(
        lab.cmd(
            &lab.local,
            &sb,
            "tcpdump",
            &[
                "-i",
                "lo",
                "--immediate-mode",
                "-U",
                "-w",
                "sflow.pcap",
                "udp",
                "port",
                "16344",
            ],
        ),
        &sb,
        "tcpdump",
    );
    dump.wait_log("listening on", Duration::from_secs(10));
    let conf = format!(
        "daemonize: false\npcap_interface: {LOCAL_IF}\nplugins: sfprobe\nsfprobe_receiver: 127.0.0.1:16343\n\
sfprobe_agentip: {LOCAL_IP}\nsfprobe_agentsubid: 7\nsampling_rate: 1\n"
    );
    std::fs::write(sb.path("pmacctd.conf"), conf).unwrap();
    let mut pm = Proc::start(
        lab.cmd(&lab.local, &sb, "pmacctd", &["-f", "pmacctd.conf"]),
        &sb,
        "pmacctd",
    );
    pm.wait_log("Sampling at: 1/1", Duration::from_secs(10));
    // The plugin opens the capture shortly after saying so.
    std::thread::sleep(Duration::from_millis(700));
    // The traffic: UDP datagrams to known ports (the local side answers
    // with ICMP port unreachable) and two pings from the peer.
    let send = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('{PEER_IP}',{SPORT}))\n\
for p in {DPORTS:?}:\n    s.sendto(b'sample me'*20,('{LOCAL_IP}',p))\n"
    );
    lab.run(&lab.peer, &sb, "python3", &["-c", &send]);
    lab.run(
        &lab.peer,
        &sb,
        "ping",
        &["-q", "-c", "2", "-i", "0.2", LOCAL_IP],
    );
    // sfprobe sends its datagrams about once a second, and may hold the
    // last sample until more come: larger pings follow until a sample
    // beyond the 10 of the test traffic (3 UDP, 2 echo requests, 2
    // replies, 3 port unreachables) has arrived, so all 10 have.
    let mut filler = 0;
    while col.counters(&sb)["records"].as_u64() < Some(11) {
        assert!(
            filler < 10,
            "the collector did not get the samples: {}\n{}\n{}\n{}",
            col.counters(&sb),
            col.text(),
            sfcapd.text(),
            pm.text()
        );
        lab.run(
            &lab.peer,
            &sb,
            "ping",
            &["-q", "-c", "1", "-s", "300", LOCAL_IP],
        );
        filler += 1;
        std::thread::sleep(Duration::from_millis(1200));
    }
    pm.stop();
    // sfcapd writes its file when it ends.
    sfcapd.stop_with("TERM", Duration::from_secs(5));
    assert!(col.stop().success(), "{}", col.text());
    dump.stop();
    let summary = col.text();
    assert!(summary.contains("(0 malformed)"), "{summary}");
    assert!(
        summary.contains(&format!("agent {LOCAL_IP} sub-agent 7")),
        "{summary}"
    );

    // Ours.
    let text = ok_stdout(
        &sb.run(
            "logger",
            &[
                "-i",
                "f:samples.trapcap",
                "-o",
                "SRC_IP,DST_IP,SRC_PORT,DST_PORT,PROTOCOL,AGENT_IP,SUB_AGENT_ID,SAMPLING_RATE,PACKETS,FRAME_LEN",
            ],
        ),
        "logger",
    );
    let mut ours: Vec<Tuple> = Vec::new();
    let mut icmp_len: Vec<(String, u32)> = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f[5..9], [LOCAL_IP, "7", "1", "1"], "{l}");
        if f[4] == "1" {
            icmp_len.push((f[0].to_string(), f[9].parse().unwrap()));
        }
        ours.push((
            f[0].into(),
            f[1].into(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
        ));
    }
    // Every datagram sent, and the pings, are there.
    for p in DPORTS {
        let t = (PEER_IP.to_string(), LOCAL_IP.to_string(), SPORT, p, 17u8);
        assert_eq!(
            ours.iter().filter(|x| **x == t).count(),
            1,
            "{t:?} in\n{text}"
        );
    }
    // Frame lengths on the wire (with the FCS sfprobe adds): a default
    // ping 102, a filler ping 346, an unreachable quoting a datagram 254.
    let icmp = |src: &str, len: u32| icmp_len.iter().filter(|x| x.0 == src && x.1 == len).count();
    assert_eq!(icmp(PEER_IP, 102), 2, "{text}");
    assert_eq!(icmp(LOCAL_IP, 102), 2, "{text}");
    assert_eq!(icmp(LOCAL_IP, 254), 3, "{text}");
    assert!(icmp(PEER_IP, 346) >= 1, "{text}");

    // The same datagrams from the capture: the same records (times from
    // the capture, so they are left out).
    let fields = "SRC_IP,DST_IP,SRC_PORT,DST_PORT,PROTOCOL,TCP_FLAGS,BYTES,AGENT_IP,SOURCE_ID,SAMPLE_POOL,FRAME_LEN,HEADER";
    let out = sb.run(
        "sflow_collector",
        &["-r", "sflow.pcap", "-i", "f:from_file.trapcap"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = ok_stdout(
        &sb.run("logger", &["-i", "f:samples.trapcap", "-o", fields]),
        "logger",
    );
    let file = ok_stdout(
        &sb.run("logger", &["-i", "f:from_file.trapcap", "-o", fields]),
        "logger",
    );
    assert_eq!(file, live);

    // sfcapd's decoding of the same datagrams.
    let files: Vec<String> = std::fs::read_dir(&nf)
        .unwrap()
        .flatten()
        .map(|e| e.path().display().to_string())
        .filter(|p| p.contains("nfcapd.") && !p.ends_with(".current"))
        .collect();
    assert!(!files.is_empty(), "sfcapd wrote no file: {}", sfcapd.text());
    let mut theirs: Vec<Tuple> = Vec::new();
    for f in &files {
        let out = std::process::Command::new("nfdump")
            .args(["-q", "-N", "-r", f, "-o", "fmt:%sa|%da|%sp|%dp|%pr"])
            .output()
            .expect("nfdump");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<String> = l.split('|').map(|s| s.trim().to_string()).collect();
            if f.len() != 5 {
                continue;
            }
            let proto: u8 = match f[4].as_str() {
                "UDP" => 17,
                "TCP" => 6,
                "ICMP" => 1,
                other => other.parse().unwrap_or(0),
            };
            // nfdump shows ICMP type and code in the ports: compare
            // addresses only there.
            let (sp, dp) = if proto == 1 {
                (0, 0)
            } else {
                (f[2].parse().unwrap(), f[3].parse().unwrap())
            };
            theirs.push((f[0].clone(), f[1].clone(), sp, dp, proto));
        }
    }
    assert_eq!(
        count(&ours),
        count(&theirs),
        "ours:\n{text}\nsfcapd's: {theirs:?}"
    );
}

#[test]
fn garbage_datagrams_are_counted_and_skipped() {
    let sb = Sandbox::new();
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap();
    let spec = format!("127.0.0.1:{port}");
    let mut col = Proc::module(
        &sb,
        "sflow_collector",
        &["--udp", &spec, "-i", "f:out.trapcap", "-v"],
    );
    wait_udp_bound(port);
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    // A good datagram of one sample.
    let mut frame = Vec::new();
    flow_meter::synth::ipv4_frame(
        &mut frame,
        Ipv4Addr::new(198, 51, 100, 10),
        Ipv4Addr::new(203, 0, 113, 5),
        1,
        flow_meter::synth::L4::Udp {
            sport: 1234,
            dport: 53535,
            payload: b"x",
        },
    );
    let mut b = DatagramBuilder::new(Some(Ipv4Addr::new(198, 51, 100, 1).into()), 0, 1, 0);
    b.flow_sample(
        &FlowSampleSpec {
            sequence: 1,
            sampling_rate: 1,
            ..Default::default()
        },
        &frame,
        128,
    );
    let good = b.finish();
    // Garbage: random bytes, empty, wrong versions, every cut of the good
    // one, a huge sample length.
    let mut bad: Vec<Vec<u8>> = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..100 {
        let n = (i * 13) % 1400 + 1;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push(x as u8);
        }
        bad.push(v);
    }
    bad.push(Vec::new());
    for cut in 1..good.len() {
        bad.push(good[..cut].to_vec());
    }
    let mut huge = good.clone();
    huge[32..36].copy_from_slice(&u32::MAX.to_be_bytes());
    bad.push(huge);
    let mut v4 = good.clone();
    v4[3] = 4;
    bad.push(v4);
    for d in &bad {
        tx.send_to(d, &spec).unwrap();
    }
    tx.send_to(&good, &spec).unwrap();
    let n_bad = bad.len() as u64;
    col.wait_counter(&sb, "datagrams", n_bad + 1, Duration::from_secs(10));
    let c = col.counters(&sb);
    assert_eq!(c["malformed"].as_u64(), Some(n_bad), "{c}");
    assert_eq!(c["records"].as_u64(), Some(1), "{c}");
    assert!(col.stop().success(), "{}", col.text());
    let log = col.text();
    // Rate limited: the first burst, then the rest at the end.
    let lines = log
        .lines()
        .filter(|l| l.contains("malformed datagram(s) skipped"))
        .count();
    assert!((1..=3).contains(&lines), "{log}");
    assert!(
        log.contains(&format!("{} datagrams ({n_bad} malformed)", n_bad + 1)),
        "{log}"
    );
    let text = ok_stdout(
        &sb.run(
            "logger",
            &[
                "-i",
                "f:out.trapcap",
                "-o",
                "SRC_IP,DST_IP,SRC_PORT,DST_PORT",
            ],
        ),
        "logger",
    );
    assert_eq!(text, "198.51.100.10,203.0.113.5,1234,53535\n");
}

#[test]
fn bad_options_are_one_line_errors() {
    let sb = Sandbox::new();
    for (args, want) in [
        (vec!["-i", "b:"], "no input: give --udp"),
        (vec!["-i", "b:", "--udp", "x"], "the port must be a number"),
        (
            vec!["-i", "b:", "-r", "nosuch.pcap"],
            "cannot read nosuch.pcap",
        ),
    ] {
        let out = sb.run("sflow_collector", &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}
