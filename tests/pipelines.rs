//! Real pipelines over unix sockets and files, with each test in its own
//! `TRAP_SOCKET_DIR`.

use nemea_rs::{interrupt, ok_stdout, wait_output, Sandbox};
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

/// Generates `n` flow records into `name` and returns logger's text of them.
fn flows(sb: &Sandbox, name: &str, n: u32) -> String {
    let spec = format!("f:{name}");
    ok_stdout(
        &sb.run("flow_generator", &["-n", &n.to_string(), "-i", &spec]),
        "flow_generator",
    );
    ok_stdout(&sb.run("logger", &["-i", &spec]), "logger")
}

fn repeat_over_socket(out_params: &str) {
    let sb = Sandbox::new();
    let want = flows(&sb, "in.trapcap", 200_000);
    let logger = sb.spawn("logger", &["-i", "u:sock"]);
    let rep = sb.spawn(
        "traffic_repeater",
        &["-i", &format!("f:in.trapcap,u:sock{out_params}")],
    );
    let got = ok_stdout(
        &wait_output(logger, Duration::from_secs(60), "logger"),
        "logger",
    );
    ok_stdout(
        &wait_output(rep, Duration::from_secs(60), "traffic_repeater"),
        "traffic_repeater",
    );
    assert_eq!(got.lines().count(), 200_000);
    assert!(got == want, "the records differ after the socket");
}

#[test]
fn socket_pipeline_loses_nothing() {
    repeat_over_socket("");
}

#[test]
fn socket_pipeline_loses_nothing_unbuffered() {
    repeat_over_socket(":buffer=off");
}

#[test]
fn reader_started_after_the_writer_gets_everything() {
    let sb = Sandbox::new();
    let want = flows(&sb, "in.trapcap", 50_000);
    let rep = sb.spawn("traffic_repeater", &["-i", "f:in.trapcap,u:late"]);
    sb.wait_socket("late");
    std::thread::sleep(Duration::from_millis(300));
    let got = ok_stdout(&sb.run("logger", &["-i", "u:late"]), "logger");
    ok_stdout(
        &wait_output(rep, Duration::from_secs(30), "traffic_repeater"),
        "traffic_repeater",
    );
    assert!(got == want);
}

#[test]
fn slow_reader_with_wait_loses_nothing() {
    let sb = Sandbox::new();
    let want = flows(&sb, "in.trapcap", 300_000);
    let mut logger = sb.spawn("logger", &["-i", "u:slow"]);
    let rep = sb.spawn(
        "traffic_repeater",
        &["-i", "f:in.trapcap,u:slow:timeout=WAIT"],
    );
    // Nobody reads logger's stdout for a while: logger stalls, and with it
    // the socket; the repeater must wait rather than drop.
    std::thread::sleep(Duration::from_millis(1500));
    let mut got = String::new();
    logger
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut got)
        .unwrap();
    ok_stdout(
        &wait_output(rep, Duration::from_secs(60), "traffic_repeater"),
        "traffic_repeater",
    );
    assert!(wait_output(logger, Duration::from_secs(10), "logger")
        .status
        .success());
    assert_eq!(got.lines().count(), 300_000);
    assert!(got == want);
}

/// The last client's `skipped_messages` in a service-interface JSON.
fn last_skipped(json: &str) -> u64 {
    let key = "\"skipped_messages\": \"";
    json.rfind(key)
        .map(|p| {
            json[p + key.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

#[test]
fn no_wait_drops_are_counted_in_the_service_statistics() {
    let sb = Sandbox::new();
    let gen = sb.spawn(
        "flow_generator",
        &["-n", "2000000000", "-i", "u:nw:timeout=NO_WAIT"],
    );
    sb.wait_socket("nw");
    let service = sb.path(&format!("trap-service_{}.sock", gen.id()));
    let logger = sb
        .cmd("logger")
        .args(["-i", "u:nw"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let query = || libtrap::service::query(&service).unwrap_or_default();
    let mut connected = false;
    for _ in 0..100 {
        if query().contains("\"num_clients\": 1") {
            connected = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Freeze the reader: the generator must go on, skipping it.
    let pid = logger.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status();
    let mut skipped = 0;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        skipped = last_skipped(&query());
        if skipped > 0 {
            break;
        }
    }
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status();
    interrupt(&gen);
    let g = wait_output(gen, Duration::from_secs(20), "flow_generator");
    interrupt(&logger);
    let _ = wait_output(logger, Duration::from_secs(20), "logger");
    assert!(connected, "the reader never connected");
    assert!(
        skipped > 0,
        "no skipped messages reported; generator stderr: {}",
        String::from_utf8_lossy(&g.stderr)
    );
    assert!(g.status.success());
}

#[test]
fn service_interface_reports_input_counters() {
    let sb = Sandbox::new();
    let gen = sb.spawn("zwave_generator", &["-p", "0.05", "-i", "u:zw"]);
    sb.wait_socket("zw");
    let logger = sb.spawn("logger", &["-i", "u:zw"]);
    let service = sb.path(&format!("trap-service_{}.sock", logger.id()));
    let mut seen = None;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(json) = libtrap::service::query(&service) {
            if json.contains("\"ifc_state\": 1") && !json.contains("\"messages\": 0,") {
                seen = Some(json);
                break;
            }
        }
    }
    interrupt(&gen);
    let g = wait_output(gen, Duration::from_secs(10), "zwave_generator");
    assert!(g.status.success());
    let l = wait_output(logger, Duration::from_secs(10), "logger");
    assert!(l.status.success(), "{}", String::from_utf8_lossy(&l.stderr));
    let json = seen.expect("the logger's service interface never showed received messages");
    assert!(json.starts_with("{\"in_cnt\": 1, \"out_cnt\": 0, \"in\": [{\"ifc_state\": 1, \"ifc_id\": \"zw\", \"ifc_type\": 117"), "{json}");
}

#[test]
fn tutorial_generator_to_logger() {
    let sb = Sandbox::new();
    let gen = sb.spawn(
        "zwave_generator",
        &["-n", "3", "-p", "0.05", "-i", "u:mysocket"],
    );
    let text = ok_stdout(&sb.run("logger", &["-t", "-i", "u:mysocket"]), "logger");
    assert!(wait_output(gen, Duration::from_secs(10), "zwave_generator")
        .status
        .success());
    assert_eq!(
        text,
        "uint32 GW_ID,int32 SOAFCount,int32 TIME\n101,1,100\n101,2,200\n101,3,300\n"
    );
}

#[test]
fn tutorial_section_one_with_bundled_data() {
    let sb = Sandbox::new();
    let csv = nemea_rs::repo_root().join("tutorial-data/zwave-sensor.csv");
    ok_stdout(
        &sb.run(
            "logreplay",
            &["-i", "f:outputfile.trapcap", "-f", csv.to_str().unwrap()],
        ),
        "logreplay",
    );
    let logger = sb.spawn("logger", &["-i", "u:mysocket", "-t"]);
    ok_stdout(
        &sb.run(
            "traffic_repeater",
            &["-i", "f:outputfile.trapcap,u:mysocket:buffer=off"],
        ),
        "traffic_repeater",
    );
    let text = ok_stdout(
        &wait_output(logger, Duration::from_secs(20), "logger"),
        "logger",
    );
    let original = std::fs::read_to_string(&csv).unwrap();
    // Same header order (already UniRec order) and the same rows.
    assert_eq!(text.replace(",", " "), original.replace(",", " "));
}

#[test]
fn sigint_stops_a_writer_waiting_for_readers() {
    let sb = Sandbox::new();
    let csv = nemea_rs::repo_root().join("tutorial-data/virtual-sensor.csv");
    let child = sb
        .cmd("logreplay")
        .args(["-f", csv.to_str().unwrap(), "-i", "u:nobody"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sb.wait_socket("nobody");
    std::thread::sleep(Duration::from_millis(200));
    interrupt(&child);
    let out = wait_output(child, Duration::from_secs(10), "logreplay");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !sb.path("trap-nobody.sock").exists(),
        "the socket file is removed at exit"
    );
}

#[test]
fn tcp_pipeline_loses_nothing() {
    let sb = Sandbox::new();
    let want = flows(&sb, "in.trapcap", 100_000);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rep = sb.spawn(
        "traffic_repeater",
        &["-i", &format!("f:in.trapcap,t:{port}")],
    );
    let got = ok_stdout(
        &sb.run("logger", &["-i", &format!("t:localhost:{port}")]),
        "logger",
    );
    ok_stdout(
        &wait_output(rep, Duration::from_secs(60), "traffic_repeater"),
        "traffic_repeater",
    );
    assert!(got == want);
}

#[test]
fn format_change_passes_through_and_starts_a_new_file() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("a.csv"), "uint32 A\n1\n2\n").unwrap();
    std::fs::write(sb.path("b.csv"), "uint16 B,string S\n3,\"x\"\n").unwrap();
    ok_stdout(
        &sb.run("logreplay", &["-n", "-f", "a.csv", "-i", "f:a.trapcap"]),
        "logreplay",
    );
    ok_stdout(
        &sb.run("logreplay", &["-n", "-f", "b.csv", "-i", "f:b.trapcap"]),
        "logreplay",
    );
    // Over a socket: the reader adopts the new template on the fly.
    let logger = sb.spawn("logger", &["-i", "u:fc"]);
    ok_stdout(
        &sb.run("traffic_repeater", &["-i", "f:a.trapcap b.trapcap,u:fc"]),
        "traffic_repeater",
    );
    let text = ok_stdout(
        &wait_output(logger, Duration::from_secs(20), "logger"),
        "logger",
    );
    assert_eq!(text, "1\n2\n3,\"x\"\n");
    // Into files: one file per format, each with its own hello.
    ok_stdout(
        &sb.run("traffic_repeater", &["-i", "f:a.trapcap b.trapcap,f:out:a"]),
        "traffic_repeater",
    );
    let a = ok_stdout(&sb.run("logger", &["-t", "-i", "f:out.00000"]), "logger");
    let b = ok_stdout(&sb.run("logger", &["-t", "-i", "f:out.00001"]), "logger");
    assert_eq!(a, "uint32 A\n1\n2\n");
    assert_eq!(b, "uint16 B,string S\n3,\"x\"\n");
}

#[test]
fn reader_survives_a_sender_restart() {
    let sb = Sandbox::new();
    let logger = sb.spawn("logger", &["-i", "u:rs"]);
    // The first sender dies without end of stream; the reader reconnects to
    // the second one and gets its records and its end of stream.
    let first = sb.spawn("zwave_generator", &["-p", "0.01", "-i", "u:rs"]);
    sb.wait_socket("rs");
    std::thread::sleep(Duration::from_millis(300));
    let _ = std::process::Command::new("kill")
        .args(["-9", &first.id().to_string()])
        .status();
    let _ = wait_output(first, Duration::from_secs(5), "zwave_generator");
    let second = sb.spawn(
        "zwave_generator",
        &["-n", "3", "-p", "0.01", "-g", "7", "-i", "u:rs"],
    );
    let out = wait_output(logger, Duration::from_secs(20), "logger");
    let text = ok_stdout(&out, "logger");
    assert!(text.ends_with("7,1,100\n7,2,200\n7,3,300\n"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("reconnecting"));
    assert!(
        wait_output(second, Duration::from_secs(10), "zwave_generator")
            .status
            .success()
    );
}

#[test]
fn repeater_with_n_waits_for_the_next_sender_after_end_of_stream() {
    let sb = Sandbox::new();
    let logger = sb.spawn("logger", &["-i", "u:rn_out"]);
    let mut rep = sb.spawn("traffic_repeater", &["-n", "-i", "u:rn_in,u:rn_out"]);
    // A sender's run ends with end of stream: with -n the repeater neither
    // passes it on nor exits, and takes the next run's records.
    for gw in ["1", "2"] {
        let gen = sb.spawn(
            "zwave_generator",
            &["-n", "2", "-p", "0.01", "-g", gw, "-i", "u:rn_in"],
        );
        assert!(wait_output(gen, Duration::from_secs(20), "zwave_generator")
            .status
            .success());
        std::thread::sleep(Duration::from_millis(300));
        if rep.try_wait().expect("try_wait").is_some() {
            interrupt(&logger);
            let _ = wait_output(logger, Duration::from_secs(10), "logger");
            panic!("traffic_repeater -n exited at its input's end of stream");
        }
    }
    interrupt(&rep);
    ok_stdout(
        &wait_output(rep, Duration::from_secs(10), "traffic_repeater"),
        "traffic_repeater",
    );
    interrupt(&logger);
    let text = ok_stdout(
        &wait_output(logger, Duration::from_secs(10), "logger"),
        "logger",
    );
    assert!(
        text.contains("1,1,100\n1,2,200\n") && text.contains("2,1,100\n2,2,200\n"),
        "{text}"
    );
}

/// Local addresses (as /proc/net/tcp* print them, hex) of the sockets
/// listening on TCP `port`, once there is at least one.
fn listeners(port: u16) -> Vec<String> {
    let start = std::time::Instant::now();
    loop {
        let mut found = Vec::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let text = std::fs::read_to_string(table).unwrap_or_default();
            for line in text.lines().skip(1) {
                let cols: Vec<&str> = line.split_whitespace().collect();
                let Some((addr, p)) = cols.get(1).and_then(|a| a.split_once(':')) else {
                    continue;
                };
                if cols.get(3) == Some(&"0A") && u16::from_str_radix(p, 16) == Ok(port) {
                    found.push(addr.to_string());
                }
            }
        }
        if !found.is_empty() {
            return found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing listens on TCP port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// traffic_repeater serves `want`'s records on the TCP output `out`, which
/// must listen on `expect` (hex, as in /proc/net/tcp*); logger reads them
/// from `input`.
fn tcp_pipeline(out: &str, port: u16, expect: &str, input: &str) {
    let sb = Sandbox::new();
    let want = flows(&sb, "in.trapcap", 50_000);
    let rep = sb.spawn("traffic_repeater", &["-i", &format!("f:in.trapcap,{out}")]);
    assert_eq!(listeners(port), [expect], "{out} listens on");
    let got = ok_stdout(&sb.run("logger", &["-i", input]), "logger");
    ok_stdout(
        &wait_output(rep, Duration::from_secs(60), "traffic_repeater"),
        "traffic_repeater",
    );
    assert!(got == want, "{input}: the records differ");
}

#[test]
fn tcp_output_listens_on_the_host_it_is_given() {
    tcp_pipeline("t:127.0.0.1:23110", 23110, "0100007F", "t:127.0.0.1:23110");
}

#[test]
fn tcp_port_alone_listens_on_every_ipv4_address_as_libtrap() {
    tcp_pipeline("t:23112", 23112, "00000000", "t:127.0.0.1:23112");
}

#[test]
fn ipv6_works_both_ways() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    }
    tcp_pipeline(
        "t:[::1]:23111",
        23111,
        "00000000000000000000000001000000",
        "t:[::1]:23111",
    );
}

/// Threads of process `pid` (from /proc).
fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn idle_service_connections_cost_no_threads_and_cannot_lock_out_a_supervisor() {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    let sb = Sandbox::new();
    let logger = sb.spawn("logger", &["-i", "u:svc_idle"]);
    let service = sb.path(&format!("trap-service_{}.sock", logger.id()));
    let start = std::time::Instant::now();
    while libtrap::service::query(&service).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no service socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = threads(logger.id());
    // A request begun and never finished is dropped after 5 s.
    let mut slow = UnixStream::connect(&service).unwrap();
    slow.write_all(&[10, 0, 0]).unwrap();
    let slow_since = std::time::Instant::now();
    // (Read by the module before the crowd comes: a connection not read yet
    // is one that never asked anything, the first to make room.)
    std::thread::sleep(Duration::from_millis(300));
    // Far more idle connections than libtrap's 64 places.
    let idle: Vec<UnixStream> = (0..300)
        .map(|_| UnixStream::connect(&service).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let during = threads(logger.id());
    // A supervisor still gets its answer, several times on one connection.
    let json = libtrap::service::query(&service).expect("query with 300 idle connections");
    assert!(json.starts_with("{\"in_cnt\": 1"), "{json}");
    // Requests sent back to back on one connection each get their reply
    // (header with the host-order size of JSON + NUL, as libtrap).
    let mut sup = UnixStream::connect(&service).unwrap();
    sup.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sup.write_all(&[10, 0, 0, 0, 0, 0, 0, 0].repeat(3)).unwrap();
    for _ in 0..3 {
        let mut head = [0u8; 8];
        sup.read_exact(&mut head).unwrap();
        assert_eq!(head[..4], [12, 0, 0, 0]);
        let mut body = vec![0; u32::from_ne_bytes(head[4..].try_into().unwrap()) as usize];
        sup.read_exact(&mut body).unwrap();
        assert_eq!(body.pop(), Some(0));
        assert!(body.starts_with(b"{\"in_cnt\": 1"));
    }
    // Any other command closes the connection.
    sup.write_all(&[11, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!(sup.read(&mut [0u8; 8]).unwrap_or(0), 0);
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 1];
    let n = slow.read(&mut buf).unwrap_or(0);
    let waited = slow_since.elapsed();
    interrupt(&logger);
    let o = wait_output(logger, Duration::from_secs(10), "logger");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        during <= before + 1,
        "{during} threads with 300 idle service connections (before: {before})"
    );
    assert_eq!(n, 0, "the unfinished request got an answer");
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(9),
        "{waited:?}"
    );
    drop(idle);
}
