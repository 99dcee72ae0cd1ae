//! ipv6stats and flowcounter in real pipelines.

use nemea_rs::{interrupt, ok_stdout, shared_data, wait_output, Sandbox};
use std::process::Command;
use std::time::Duration;

/// Records of CSV rows `SRC_IP,PACKETS,BYTES,IPV6_TUN_TYPE,TIME_LAST`.
fn replay(sb: &Sandbox, rows: &[&str], file: &str) {
    let mut csv = String::from(
        "ipaddr SRC_IP,uint32 PACKETS,uint64 BYTES,uint8 IPV6_TUN_TYPE,time TIME_LAST\n",
    );
    for r in rows {
        csv.push_str(r);
        csv.push('\n');
    }
    std::fs::write(sb.path("in.csv"), csv).unwrap();
    ok_stdout(
        &sb.run("logreplay", &["-f", "in.csv", "-i", &format!("f:{file}")]),
        "logreplay",
    );
}

#[test]
fn ipv6stats_writes_each_window_and_the_last_one() {
    let sb = Sandbox::new();
    // Windows of 10 s (long: 20 s) from 2020-01-01T00:00:00 (a multiple of both).
    replay(
        &sb,
        &[
            "192.0.2.1,5,100,0,2020-01-01T00:00:01",
            "192.0.2.1,5,100,1,2020-01-01T00:00:02",
            "192.0.2.2,1,10,4,2020-01-01T00:00:03",
            "2001:db8:1:1::1,3,30,0,2020-01-01T00:00:04",
            "2001:db8:1:2::1,3,30,0,2020-01-01T00:00:05",
            "2001:db9::1,3,30,0,2020-01-01T00:00:06",
            // The next window: only this one.
            "198.51.100.7,10,1000,16,2020-01-01T00:00:12",
        ],
        "flows.trapcap",
    );
    let o = sb.run(
        "ipv6stats",
        &[
            "-d",
            "out/stats",
            "-s",
            "10",
            "-L",
            "2",
            "-p",
            "2",
            "-i",
            "f:flows.trapcap",
        ],
    );
    ok_stdout(&o, "ipv6stats");
    let read = |name: &str| {
        let t = std::fs::read_to_string(sb.path(&format!("out/stats/{name}"))).unwrap();
        let (body, updated) = t.rsplit_once("updated ").unwrap();
        assert_eq!(updated.len(), "2020-01-01.00:00:00\n".len(), "{t}");
        body.to_string()
    };
    // At the end the current windows are written: the short one holds the
    // last record, the long one everything (distinct sources of >= 2 packets).
    assert_eq!(read("cnt_addr"), "ipv4 1\nipv6 0\nipv6_48 0\nipv6_64 0\n");
    assert_eq!(read("cnt_addr_L"), "ipv4 2\nipv6 3\nipv6_48 2\nipv6_64 3\n");
    assert_eq!(
        read("traffic"),
        "ipv4 1.000 800.000 0.100\nipv6 0.000 0.000 0.000\n"
    );
    let tunnels = read("ipv6_tunnels");
    assert!(
        tunnels.contains("Proto41 1.000 800.000 0.100\n"),
        "{tunnels}"
    );
    // -n: nothing is written at the end; a window end still writes.
    let o = sb.run(
        "ipv6stats",
        &[
            "-n",
            "-d",
            "n",
            "-s",
            "10",
            "-L",
            "2",
            "-p",
            "2",
            "-i",
            "f:flows.trapcap",
        ],
    );
    ok_stdout(&o, "ipv6stats");
    let first = std::fs::read_to_string(sb.path("n/traffic")).unwrap();
    // The first window: 11 IPv4 packets, 210 bytes, 3 flows; 9 IPv6 packets, 90 bytes, 3 flows.
    assert!(
        first.starts_with("ipv4 1.100 168.000 0.300\nipv6 0.900 72.000 0.300\n"),
        "{first}"
    );
    let tunnels = std::fs::read_to_string(sb.path("n/ipv6_tunnels")).unwrap();
    assert!(tunnels.starts_with("Native 0.900 72.000 0.300\nTeredo 0.500 80.000 0.100\nISATAP 0.000 0.000 0.000\n6to4 0.100 8.000 0.100\n"), "{tunnels}");
    assert!(
        !sb.path("n/cnt_addr_L").exists(),
        "the long window did not end"
    );
    let o = sb.run("ipv6stats", &["-i", "f:in.csv"]);
    assert!(!o.status.success());
}

#[test]
fn flowcounter_totals_a_capture() {
    let sb = Sandbox::new();
    let Some(pcap) = shared_data("pcaps/zeek-traces/wikipedia.pcap") else {
        return;
    };
    ok_stdout(
        &sb.run(
            "flow_meter",
            &["-r", pcap.to_str().unwrap(), "-i", "f:flows.trapcap"],
        ),
        "flow_meter",
    );
    let text = ok_stdout(
        &sb.run("logger", &["-t", "-i", "f:flows.trapcap"]),
        "logger",
    );
    let mut lines = text.lines();
    let head: Vec<&str> = lines
        .next()
        .unwrap()
        .split(',')
        .map(|c| c.split(' ').nth(1).unwrap())
        .collect();
    let (b, p) = (
        head.iter().position(|h| *h == "BYTES").unwrap(),
        head.iter().position(|h| *h == "PACKETS").unwrap(),
    );
    let (mut flows, mut packets, mut bytes) = (0u64, 0u64, 0u64);
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        flows += 1;
        bytes += f[b].parse::<u64>().unwrap();
        packets += f[p].parse::<u64>().unwrap();
    }
    let totals = format!("Flows:   {flows:>20}\nPackets: {packets:>20}\nBytes:   {bytes:>20}\n");
    let out = ok_stdout(
        &sb.run("flowcounter", &["-i", "f:flows.trapcap"]),
        "flowcounter",
    );
    assert_eq!(out, totals);
    let out = ok_stdout(
        &sb.run(
            "flowcounter",
            &["-p", "10", "-P", "#", "-i", "f:flows.trapcap"],
        ),
        "flowcounter",
    );
    assert_eq!(
        out,
        format!("{}\n{totals}", "#".repeat(flows as usize / 10))
    );

    // -o 1 -r over sockets: SIGUSR1 prints at the next record; the records
    // of counts since the previous one add up to the totals.
    let fc = sb.spawn(
        "flowcounter",
        &["-o", "1", "-r", "-i", "u:flows,f:rates.trapcap"],
    );
    // The output file exists once the interfaces (and the signal handler) are set up.
    let start = std::time::Instant::now();
    while !sb.path("rates.trapcap").exists() {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill")
        .args(["-USR1", &fc.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    ok_stdout(
        &sb.run("traffic_repeater", &["-n", "-i", "f:flows.trapcap,u:flows"]),
        "traffic_repeater",
    );
    std::thread::sleep(Duration::from_millis(2500));
    interrupt(&fc);
    let out = ok_stdout(
        &wait_output(fc, Duration::from_secs(10), "flowcounter"),
        "flowcounter",
    );
    assert!(out.starts_with("Time: ") && out.ends_with(&totals), "{out}");
    let rates = ok_stdout(
        &sb.run("logger", &["-t", "-i", "f:rates.trapcap"]),
        "logger",
    );
    let mut lines = rates.lines();
    assert_eq!(
        lines.next(),
        Some("uint64 BYTES,uint64 FLOWS,uint32 PACKETS")
    );
    let rows: Vec<Vec<u64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert!(rows.len() >= 2, "{rates}");
    let sum = |i: usize| rows.iter().map(|r| r[i]).sum::<u64>();
    assert_eq!((sum(1), sum(2), sum(0)), (flows, packets, bytes), "{rates}");
}
