//! ipfixcol against real exporters: flow_meter's IPFIX through ipfixcol
//! equals flow_meter's own UniRec output record for record (basic, http,
//! dns and tls fields), softflowd's NetFlow v9 and IPFIX give ipfixcol the
//! flows nfcapd (nfdump) receives from the same export, and bad input is
//! counted, not fatal.

use nemea_rs::ci;
use nemea_rs::{
    interrupt, ok_stdout, shared_data, wait_output, wait_tcp_listening, wait_udp_bound, Sandbox,
};
use std::collections::BTreeMap;
use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

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

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until every file stops growing (the collector has written what it
/// received).
fn wait_stable(paths: &[std::path::PathBuf]) {
    let size = || -> u64 {
        paths
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum()
    };
    let start = Instant::now();
    let mut last = size();
    let mut since = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
        let now = size();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() > Duration::from_millis(700) {
            return;
        }
    }
}

fn logger_text(sb: &Sandbox, file: &str) -> (String, Vec<String>) {
    let out = ok_stdout(
        &sb.run("logger", &["-i", &format!("f:{file}"), "-t"]),
        "logger",
    );
    let mut lines = out.lines().map(str::to_string);
    let header = lines.next().unwrap_or_default();
    let mut rest: Vec<String> = lines.collect();
    rest.sort();
    (header, rest)
}

/// `uint16 SRC_PORT,string HTTP_HOST` → `SRC_PORT,HTTP_HOST`.
fn names(header: &str) -> String {
    header
        .split(',')
        .map(|f| f.split_whitespace().last().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn flow_meter_ipfix_through_ipfixcol_equals_its_unirec_output() {
    let sb = Sandbox::new();
    ok_stdout(
        &sb.run(
            "pcap_generator",
            &["-n", "20000", "-f", "2000", "-w", "gen.pcap"],
        ),
        "pcap_generator",
    );
    let outs = ["basic", "http", "dns", "tls"];
    // LINK_BIT_FIELD: ipfixcol2 makes it 1 << ODID, flow_meter's ODID is 1.
    let fm_common = [
        "-r",
        "gen.pcap",
        "-p",
        "http",
        "-p",
        "dns",
        "-p",
        "tls",
        "--map",
        "basic,http,dns,tls",
        "-L",
        "2",
    ];
    // First run: UniRec only, for the field lists.
    let ifc = outs
        .iter()
        .map(|o| format!("f:fm1_{o}.trapcap"))
        .collect::<Vec<_>>()
        .join(",");
    let mut args = fm_common.to_vec();
    args.extend(["-i", &ifc]);
    ok_stdout(&sb.run("flow_meter", &args), "flow_meter");
    let fields: Vec<String> = outs
        .iter()
        .map(|o| names(&logger_text(&sb, &format!("fm1_{o}.trapcap")).0))
        .collect();
    let port = free_tcp_port();
    let col_ifc = outs
        .iter()
        .map(|o| format!("f:col_{o}.trapcap:buffer=off"))
        .collect::<Vec<_>>()
        .join(",");
    let listen = format!("127.0.0.1:{port}");
    let mut col_args = vec!["-i", &col_ifc, "--tcp", &listen];
    for f in &fields {
        col_args.extend(["-F", f.as_str()]);
    }
    let col = sb.spawn("ipfixcol", &col_args);
    wait_tcp_listening(port);
    // Second run: UniRec and IPFIX at once.
    let ifc2 = outs
        .iter()
        .map(|o| format!("f:fm2_{o}.trapcap"))
        .collect::<Vec<_>>()
        .join(",");
    let collector = format!("127.0.0.1:{port}");
    let mut args = fm_common.to_vec();
    args.extend(["-i", &ifc2, "-x", &collector]);
    ok_stdout(&sb.run("flow_meter", &args), "flow_meter -x");
    let col_files: Vec<_> = outs
        .iter()
        .map(|o| sb.path(&format!("col_{o}.trapcap")))
        .collect();
    wait_stable(&col_files);
    interrupt(&col);
    let out = wait_output(col, Duration::from_secs(10), "ipfixcol");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ipfixcol: {err}");
    assert!(err.contains(" 0 malformed"), "{err}");
    for o in outs {
        let (h_fm, fm) = logger_text(&sb, &format!("fm2_{o}.trapcap"));
        let (h_col, col) = logger_text(&sb, &format!("col_{o}.trapcap"));
        assert_eq!(h_fm, h_col, "{o}: templates differ");
        assert!(!fm.is_empty(), "{o}: flow_meter exported nothing");
        assert_eq!(fm.len(), col.len(), "{o}: record counts differ");
        for (a, b) in fm.iter().zip(&col) {
            assert_eq!(a, b, "{o}: records differ");
        }
    }
}

/// The 5-tuple, packets and bytes of each flow, as text lines.
type Flows = BTreeMap<String, usize>;

fn count(lines: impl Iterator<Item = String>) -> Flows {
    let mut m = Flows::new();
    for l in lines {
        *m.entry(l).or_default() += 1;
    }
    m
}

/// softflowd exports a capture's flows twice, once to ipfixcol and once to
/// nfcapd: the same flows must arrive.
fn softflowd_to_ipfixcol_and_nfcapd(version: &str) {
    if !have("softflowd") || !have("nfcapd") || !have("nfdump") {
        return;
    }
    let Some(pcap) = shared_data("ipfixprobe-functional/inputs/mixed.pcap") else {
        assert!(!ci(), "shared captures are required under CI");
        return;
    };
    let sb = Sandbox::new();
    let (p_col, p_nf) = (free_udp_port(), free_udp_port());
    let listen = format!("127.0.0.1:{p_col}");
    let fields = "SRC_IP,DST_IP,?SRC_PORT,?DST_PORT,PROTOCOL,PACKETS,BYTES";
    let col = sb.spawn(
        "ipfixcol",
        &[
            "-i",
            "f:col.trapcap:buffer=off",
            "--udp",
            &listen,
            "-F",
            fields,
        ],
    );
    std::fs::create_dir_all(sb.path("nf")).unwrap();
    let nf_dir = sb.path("nf");
    let nf = Command::new("nfcapd")
        .args([
            "-w",
            nf_dir.to_str().unwrap(),
            "-p",
            &p_nf.to_string(),
            "-b",
            "127.0.0.1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("nfcapd");
    wait_udp_bound(p_col);
    wait_udp_bound(p_nf);
    for port in [p_col, p_nf] {
        let st = Command::new("softflowd")
            .args([
                "-r",
                pcap.to_str().unwrap(),
                "-n",
                &format!("127.0.0.1:{port}"),
                "-v",
                version,
                "-d",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("softflowd");
        assert!(st.success(), "softflowd -v {version}");
    }
    wait_stable(&[sb.path("col.trapcap")]);
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-TERM", &nf.id().to_string()])
        .status();
    let nf_out = wait_output(nf, Duration::from_secs(10), "nfcapd");
    assert!(nf_out.status.success() || nf_out.status.code().is_none());
    interrupt(&col);
    let out = wait_output(col, Duration::from_secs(10), "ipfixcol");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ipfixcol: {err}");
    assert!(err.contains(" 0 malformed"), "{err}");
    // nfdump prints ICMP type.code as the destination port and no source
    // port; compare TCP and UDP flows on every field, the rest without ports.
    let nf_text = Command::new("nfdump")
        .args([
            "-R",
            nf_dir.to_str().unwrap(),
            "-q",
            "-N",
            "-o",
            "fmt:%sa|%da|%sp|%dp|%pr|%pkt|%byt",
        ])
        .output()
        .expect("nfdump");
    let nf_text = String::from_utf8_lossy(&nf_text.stdout).into_owned();
    let norm = |sa: &str, da: &str, sp: &str, dp: &str, pr: &str, pk: &str, by: &str| {
        let (sp, dp) = if pr == "6" || pr == "17" {
            (sp, dp)
        } else {
            ("-", "-")
        };
        format!("{sa} {da} {sp} {dp} {pr} {pk} {by}")
    };
    let nf_flows = count(nf_text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split('|').map(str::trim).collect();
        let pr = match f.get(4)?.to_ascii_lowercase().as_str() {
            "tcp" => "6".to_string(),
            "udp" => "17".to_string(),
            "icmp" => "1".to_string(),
            "icmp6" | "ipv6-icmp" => "58".to_string(),
            p => p.to_string(),
        };
        Some(norm(f[0], f[1], f[2], f[3], &pr, f[5], f[6]))
    }));
    let col_text = ok_stdout(&sb.run("logger", &["-i", "f:col.trapcap"]), "logger");
    // logger prints the template's order: DST_IP,SRC_IP,BYTES,PACKETS,DST_PORT,SRC_PORT,PROTOCOL.
    // nfdump shortens an address longer than 16 characters to its first and
    // last 7 joined by "..".
    let abbreviate = |a: &str| -> String {
        if a.len() > 16 {
            format!("{}..{}", &a[..7], &a[a.len() - 7..])
        } else {
            a.to_string()
        }
    };
    let col_flows = count(col_text.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() < 7 {
            return None;
        }
        Some(norm(
            &abbreviate(f[1]),
            &abbreviate(f[0]),
            f[5],
            f[4],
            f[6],
            f[3],
            f[2],
        ))
    }));
    assert!(!col_flows.is_empty(), "ipfixcol got no flow");
    assert_eq!(
        col_flows, nf_flows,
        "ipfixcol and nfcapd disagree (-v {version})"
    );
}

#[test]
fn softflowd_netflow_v9_gives_the_flows_nfcapd_gets() {
    softflowd_to_ipfixcol_and_nfcapd("9");
}

#[test]
fn softflowd_ipfix_gives_the_flows_nfcapd_gets() {
    softflowd_to_ipfixcol_and_nfcapd("10");
}

#[test]
fn bad_input_is_counted_and_the_collector_goes_on() {
    let sb = Sandbox::new();
    // A file of garbage after one good-looking header: a clear error.
    std::fs::write(sb.path("bad.ipfix"), [0u8, 10, 0, 200, 1, 2, 3]).unwrap();
    let out = sb.run("ipfixcol", &["-i", "b:", "-r", "bad.ipfix"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no IPFIX message at byte 0"), "{err}");
    std::fs::write(sb.path("x.xml"), "not xml").unwrap();
    // Usage errors name the fix.
    for (args, want) in [
        (&["-i", "b:"][..], "no input: give --udp"),
        (
            &["-i", "b:", "-r", "bad.ipfix", "-F", "FOO"],
            "unknown UniRec field \"FOO\"",
        ),
        (
            &["-i", "b:,b:", "-r", "bad.ipfix", "-F", "SRC_IP"],
            "give one -F per interface",
        ),
        (&["-i", "b:", "--udp", "99999"], "the port must be a number"),
        (&["-c", "x.xml"], "x.xml: not XML"),
        (
            &["-c", "bad.ipfix"],
            "cannot read bad.ipfix: stream did not contain valid UTF-8",
        ),
    ] {
        let out = sb.run("ipfixcol", args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // Over UDP: random and truncated messages are counted; the process
    // stays up and a good message after them still gets through.
    let port = free_udp_port();
    let listen = format!("127.0.0.1:{port}");
    let col = sb.spawn(
        "ipfixcol",
        &["-i", "f:c.trapcap:buffer=off", "--udp", &listen],
    );
    wait_udp_bound(port);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = format!("127.0.0.1:{port}");
    let mut seed = 0x1234_5678u64;
    for i in 0..300 {
        let mut m = vec![0u8, 10, 0, 0];
        let n = 16 + (i % 60);
        for _ in 0..n {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            m.push((seed >> 33) as u8);
        }
        let l = m.len() as u16;
        m[2..4].copy_from_slice(&l.to_be_bytes());
        if i % 3 == 0 {
            // A set that claims more bytes than the message has.
            m[16..20].copy_from_slice(&[0, 2, 0xff, 0xf0]);
        }
        s.send_to(&m, &to).unwrap();
        s.send_to(&m[..m.len() / 2], &to).unwrap();
    }
    // A template (256: sourceIPv4Address, destinationIPv4Address) and one record.
    let mut good = vec![0u8, 10, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
    good.extend_from_slice(&[0, 2, 0, 16, 1, 0, 0, 2, 0, 8, 0, 4, 0, 12, 0, 4]);
    good.extend_from_slice(&[1, 0, 0, 12, 198, 51, 100, 1, 198, 51, 100, 2]);
    let l = good.len() as u16;
    good[2..4].copy_from_slice(&l.to_be_bytes());
    std::thread::sleep(Duration::from_millis(200));
    s.send_to(&good, &to).unwrap();
    wait_stable(&[sb.path("c.trapcap")]);
    interrupt(&col);
    let out = wait_output(col, Duration::from_secs(10), "ipfixcol");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("malformed message(s)"), "{err}");
    let text = ok_stdout(&sb.run("logger", &["-i", "f:c.trapcap", "-t"]), "logger");
    assert!(
        text.lines()
            .any(|l| l.starts_with("198.51.100.2,198.51.100.1,")),
        "{text}"
    );
}
