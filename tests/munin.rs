//! link_traffic and proto_traffic serve their counters on unix sockets;
//! the Munin plugins of configs/munin/ read them and print Munin values.

use nemea_rs::{interrupt, ok_stdout, repo_root, shared_data, wait_output, Sandbox};
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn read_socket(path: &Path) -> Option<String> {
    let mut s = String::new();
    UnixStream::connect(path)
        .ok()?
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// Waits until the socket's value line is `want` (the records travel
/// asynchronously through the socket pipeline).
fn wait_for(path: &Path, want: &str) -> String {
    let start = Instant::now();
    loop {
        let got = read_socket(path);
        if got.as_deref().and_then(|t| t.lines().nth(1)) == Some(want) {
            return got.unwrap_or_default();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}: {got:?}, want values {want}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a Munin plugin of configs/munin/ under the wildcard name `name`.
fn plugin(sb: &Sandbox, script: &str, name: &str, socket: &Path, arg: &[&str]) -> String {
    let link = sb.path(name);
    if !link.exists() {
        std::os::unix::fs::symlink(repo_root().join("configs/munin").join(script), &link).unwrap();
    }
    let o = Command::new(&link)
        .args(arg)
        .env("socket", socket)
        .output()
        .expect("run the plugin");
    assert!(
        o.status.success(),
        "{name} {arg:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn stop(child: Child, what: &str) {
    interrupt(&child);
    let o = wait_output(child, Duration::from_secs(10), what);
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn link_traffic_counts_per_link_and_direction_for_munin() {
    let sb = Sandbox::new();
    // Links 1 and 3 configured; 2 is not (counted apart, never shown).
    std::fs::write(sb.path("links.cfg"), "# VALUE,NAME,UR_FIELD,COLOR\n1,uplink,LINK_BIT_FIELD,ff0000\n3,backup,LINK_BIT_FIELD,00ff00\n").unwrap();
    let mut csv =
        String::from("uint64 BYTES,uint64 LINK_BIT_FIELD,uint32 PACKETS,uint8 DIR_BIT_FIELD\n");
    let mut want: BTreeMap<(u64, u8), (u64, u64, u64)> = BTreeMap::new();
    for i in 0..500u64 {
        let (link, dir) = (1 + i % 3, (i % 5 % 2) as u8);
        let (bytes, packets) = (40 + i * 7, 1 + i % 9);
        csv.push_str(&format!("{bytes},{link},{packets},{dir}\n"));
        let e = want.entry((link, dir)).or_default();
        e.0 += bytes;
        e.1 += 1;
        e.2 += packets;
    }
    std::fs::write(sb.path("links.csv"), csv).unwrap();
    ok_stdout(
        &sb.run("logreplay", &["-f", "links.csv", "-i", "f:links.trapcap"]),
        "logreplay",
    );
    let socket = sb.path("munin_link_traffic");
    let lt = sb.spawn(
        "link_traffic",
        &[
            "-c",
            "links.cfg",
            "-s",
            socket.to_str().unwrap(),
            "-i",
            "u:lt",
        ],
    );
    // -n: no end of stream, so link_traffic keeps serving after the records.
    ok_stdout(
        &sb.run("traffic_repeater", &["-n", "-i", "f:links.trapcap,u:lt"]),
        "traffic_repeater",
    );
    let v = |l, d| want.get(&(l, d)).copied().unwrap_or_default();
    let (u_in, u_out, b_in, b_out) = (v(1, 0), v(1, 1), v(3, 0), v(3, 1));
    // Links in descending value: backup (3), then uplink (1); bytes, flows, packets.
    let values = format!(
        "{},{},{},{},{},{},{},{},{},{},{},{}",
        b_in.0,
        b_in.1,
        b_in.2,
        b_out.0,
        b_out.1,
        b_out.2,
        u_in.0,
        u_in.1,
        u_in.2,
        u_out.0,
        u_out.1,
        u_out.2
    );
    let text = wait_for(&socket, &values);
    assert_eq!(
        text.lines().next().unwrap(),
        "backup-in-bytes,backup-in-flows,backup-in-packets,backup-out-bytes,backup-out-flows,backup-out-packets,\
uplink-in-bytes,uplink-in-flows,uplink-in-packets,uplink-out-bytes,uplink-out-flows,uplink-out-packets"
    );
    // The plugin, as munin-node runs it.
    assert_eq!(
        plugin(&sb, "link_traffic_", "link_traffic_bytes", &socket, &[]),
        format!(
            "backupin.value {}\nbackupout.value {}\nuplinkin.value {}\nuplinkout.value {}\nTotalin.value {}\nTotalout.value {}\n",
            b_in.0, b_out.0, u_in.0, u_out.0, b_in.0 + u_in.0, b_out.0 + u_out.0
        )
    );
    let flows = plugin(&sb, "link_traffic_", "link_traffic_flows", &socket, &[]);
    assert!(
        flows.contains(&format!("uplinkin.value {}\n", u_in.1)),
        "{flows}"
    );
    let config = plugin(
        &sb,
        "link_traffic_",
        "link_traffic_packets",
        &socket,
        &["config"],
    );
    for line in [
        "graph_title Link traffic - packets",
        "uplinkout.negative uplinkin",
        "backupin.type DERIVE",
        "Totalout.label Total",
    ] {
        assert!(config.lines().any(|l| l == line), "{line} in {config}");
    }
    assert_eq!(
        plugin(
            &sb,
            "link_traffic_",
            "link_traffic_bytes",
            &socket,
            &["autoconf"]
        ),
        "yes\n"
    );
    assert_eq!(
        plugin(
            &sb,
            "link_traffic_",
            "link_traffic_bytes",
            &socket,
            &["suggest"]
        ),
        "bytes\nflows\npackets\n"
    );
    stop(lt, "link_traffic");
    assert!(!socket.exists(), "the socket is removed at exit");
    let gone = plugin(
        &sb,
        "link_traffic_",
        "link_traffic_bytes",
        &socket,
        &["autoconf"],
    );
    assert!(gone.starts_with("no ("), "{gone}");
}

#[test]
fn proto_traffic_counts_a_capture_per_protocol_for_munin() {
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
    // Expected sums from logger's text of the flows.
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
    let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
    let (p, b, k) = (col("PROTOCOL"), col("BYTES"), col("PACKETS"));
    let order = [1u64, 6, 17, 58, 50, 47, 132];
    let mut sums = [[0u64; 3]; 8];
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        let proto: u64 = f[p].parse().unwrap();
        let i = order.iter().position(|&o| o == proto).unwrap_or(7);
        sums[i][0] += 1;
        sums[i][1] += f[b].parse::<u64>().unwrap();
        sums[i][2] += f[k].parse::<u64>().unwrap();
    }
    assert!(
        sums[1][0] > 0 && sums[2][0] > 0,
        "TCP and UDP flows: {sums:?}"
    );
    let values: Vec<String> = (0..3)
        .flat_map(|kind| sums.iter().map(move |s| s[kind].to_string()))
        .collect();
    let socket = sb.path("munin_proto_traffic");
    let pt = sb.spawn(
        "proto_traffic",
        &["-s", socket.to_str().unwrap(), "-i", "u:pt"],
    );
    ok_stdout(
        &sb.run("traffic_repeater", &["-n", "-i", "f:flows.trapcap,u:pt"]),
        "traffic_repeater",
    );
    let text = wait_for(&socket, &values.join(","));
    assert!(text.starts_with("icmp-flows,tcp-flows,udp-flows,icmp6-flows,esp-flows,gre-flows,sctp-flows,others-flows,icmp-bytes,"), "{text}");
    let names = [
        "icmp", "tcp", "udp", "icmp6", "esp", "gre", "sctp", "others",
    ];
    for (kind, idx) in [("flows", 0), ("bytes", 1), ("packets", 2)] {
        let want: String = names
            .iter()
            .zip(&sums)
            .map(|(n, s)| format!("{n}.value {}\n", s[idx]))
            .collect();
        assert_eq!(
            plugin(
                &sb,
                "proto_traffic_",
                &format!("proto_traffic_{kind}"),
                &socket,
                &[]
            ),
            want
        );
    }
    let config = plugin(
        &sb,
        "proto_traffic_",
        "proto_traffic_bytes",
        &socket,
        &["config"],
    );
    for line in [
        "graph_title Traffic per L4 protocol - bytes",
        "tcp.label TCP",
        "udp.draw AREASTACK",
        "others.type DERIVE",
    ] {
        assert!(config.lines().any(|l| l == line), "{line} in {config}");
    }
    stop(pt, "proto_traffic");
    assert!(!socket.exists());
}

#[test]
fn a_live_socket_is_not_taken_over() {
    let sb = Sandbox::new();
    let socket = sb.path("munin_proto_traffic");
    let first = sb.spawn(
        "proto_traffic",
        &["-s", socket.to_str().unwrap(), "-i", "u:nothing"],
    );
    let start = Instant::now();
    while read_socket(&socket).is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = sb.run(
        "proto_traffic",
        &["-s", socket.to_str().unwrap(), "-i", "u:nothing2"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("another running process serves this socket")
            && err.lines().count() == 1,
        "{err}"
    );
    assert!(read_socket(&socket).is_some(), "the first one still serves");
    stop(first, "proto_traffic");
}
