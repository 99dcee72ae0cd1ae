//! Every error is one line, `module: error: …`, that says its cause once and
//! what to write instead, with exit status 1 (2 for a usage error).

use nemea_rs::{ok_stdout, wait_output, Sandbox};
use std::process::Output;
use std::time::Duration;

/// Asserts that stderr is exactly `line` and the exit status is `code`.
fn assert_one_line(o: &Output, code: i32, line: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err, format!("{line}\n"), "stderr");
    assert_eq!(o.status.code(), Some(code), "exit status; stderr: {err}");
}

#[test]
fn a_missing_file_is_named_once() {
    let sb = Sandbox::new();
    assert_one_line(
        &sb.run("logger", &["-i", "f:nosuch.trapcap"]),
        1,
        "logger: error: f:nosuch.trapcap: cannot open nosuch.trapcap: No such file or directory",
    );
    assert_one_line(
        &sb.run("traffic_repeater", &["-i", "f:nosuch.trapcap,b:"]),
        1,
        "traffic_repeater: error: f:nosuch.trapcap: cannot open nosuch.trapcap: No such file or directory",
    );
}

#[test]
fn usage_errors_are_one_line_with_status_2() {
    let sb = Sandbox::new();
    assert_one_line(
        &sb.run("logger", &[]),
        2,
        "logger: error: the following required arguments were not provided: -i <IFC_SPEC> (try --help)",
    );
    assert_one_line(
        &sb.run("logreplay", &["-i", "f:x.trapcap"]),
        2,
        "logreplay: error: the following required arguments were not provided: --file <FILE> (try --help)",
    );
    assert_one_line(
        &sb.run("traffic_repeater", &["-i", "u:a,u:b", "--no-eo"]),
        2,
        "traffic_repeater: error: unexpected argument '--no-eo' found; \
         a similar argument exists: '--no-eof' (try --help)",
    );
    assert_one_line(
        &sb.run("logger", &["-i", "u:a", "-c", "many"]),
        2,
        "logger: error: invalid value 'many' for '--cut <N>': invalid digit found in string (try --help)",
    );
    // Help and version still print as usual.
    for m in ["logger", "logreplay", "traffic_repeater"] {
        let help = sb.run(m, &["--help"]);
        assert!(ok_stdout(&help, m).lines().count() > 5, "{m} --help");
        let version = ok_stdout(&sb.run(m, &["--version"]), m);
        assert_eq!(version, format!("{m} {}\n", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn unknown_types_list_only_the_ones_that_work() {
    let sb = Sandbox::new();
    assert_one_line(
        &sb.run("logger", &["-i", "x:foo"]),
        1,
        "logger: error: interface 1 `x:foo`: unknown interface type `x` \
         (u: unix socket, t: TCP, T: TLS, f: file, b: blackhole, j: NATS JetStream)",
    );
    assert_one_line(
        &sb.run("logger", &["-i", "g:5:hello"]),
        1,
        "logger: error: input interface `g:5:hello`: libtrap's test generator (g:) is not \
         supported (u: unix socket, t: TCP, T: TLS, f: file, b: blackhole, j: NATS JetStream)",
    );
}

#[test]
fn a_missing_type_letter_gets_a_suggestion() {
    let sb = Sandbox::new();
    assert_one_line(
        &sb.run("logger", &["-i", "mysocket"]),
        1,
        "logger: error: interface 1 `mysocket`: no interface type: did you mean `u:mysocket` \
         (unix socket)? (types: u: unix socket, t: TCP, T: TLS, f: file, b: blackhole, j: NATS JetStream)",
    );
    assert_one_line(
        &sb.run("traffic_repeater", &["-i", "u:in,out.trapcap"]),
        1,
        "traffic_repeater: error: interface 2 `out.trapcap`: no interface type: did you mean \
         `f:out.trapcap` (file)? (types: u: unix socket, t: TCP, T: TLS, f: file, b: blackhole, j: NATS JetStream)",
    );
}

#[test]
fn a_csv_with_a_byte_order_mark_replays() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path("bom.csv"),
        "\u{feff}uint32 A,uint16 B\r\n1,2\r\n3,4\r\n",
    )
    .unwrap();
    let o = sb.run("logreplay", &["-f", "bom.csv", "-i", "f:bom.trapcap"]);
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    assert!(o.status.success());
    let text = ok_stdout(&sb.run("logger", &["-t", "-i", "f:bom.trapcap"]), "logger");
    assert_eq!(text, "uint32 A,uint16 B\n1,2\n3,4\n");
}

#[test]
fn tcp_addresses_say_how_to_write_them() {
    let sb = Sandbox::new();
    assert_one_line(
        &sb.run("logger", &["-i", "t:::1:23101"]),
        1,
        "logger: error: input interface `t:::1:23101`: too many parameters in `::1:23101` \
         (t:HOST:PORT; an IPv6 address goes in brackets: t:[::1]:PORT)",
    );
    assert_one_line(
        &sb.run("logger", &["-i", "t:[::1]:http"]),
        1,
        "logger: error: input interface `t:[::1]:http`: `http` is not a TCP port (1 to 65535)",
    );
    assert_one_line(
        &sb.run(
            "traffic_repeater",
            &["-i", "u:in,t:localhost:max_clients=2"],
        ),
        1,
        "traffic_repeater: error: output interface `t:localhost:max_clients=2`: \
         `localhost` is not a TCP port (t:PORT or t:HOST:PORT)",
    );
    assert_one_line(
        &sb.run("traffic_repeater", &["-i", "u:in,t:[::1]:23101:speed=9"]),
        1,
        "traffic_repeater: error: output interface `t:[::1]:23101:speed=9`: \
         unknown parameter `speed=9`",
    );
}

#[test]
fn a_unix_socket_served_by_another_process_is_refused() {
    let sb = Sandbox::new();
    let csv = nemea_rs::repo_root().join("tutorial-data/virtual-sensor.csv");
    let csv = csv.to_str().unwrap();
    let first = sb.spawn("logreplay", &["-f", csv, "-i", "u:dup"]);
    sb.wait_socket("dup");
    std::thread::sleep(Duration::from_millis(200));
    let sock = sb.path("trap-dup.sock");
    assert_one_line(
        &sb.run("logreplay", &["-f", csv, "-i", "u:dup"]),
        1,
        &format!(
            "logreplay: error: u:dup: {} is served by another process \
             (a second instance? stop it or pick another name)",
            sock.display()
        ),
    );
    // The first one still serves its socket, and its reader gets everything.
    assert!(sock.exists());
    let text = ok_stdout(&sb.run("logger", &["-i", "u:dup"]), "logger");
    assert_eq!(text.lines().count(), 30);
    ok_stdout(
        &wait_output(first, Duration::from_secs(10), "logreplay"),
        "first logreplay",
    );
}

#[test]
fn a_stale_unix_socket_file_is_replaced() {
    let sb = Sandbox::new();
    // A socket file whose process is gone: nobody listens on it any more.
    drop(std::os::unix::net::UnixListener::bind(sb.path("trap-stale.sock")).unwrap());
    assert!(sb.path("trap-stale.sock").exists());
    let logger = sb.spawn("logger", &["-i", "u:stale"]);
    std::fs::write(sb.path("x.csv"), "uint32 A\n7\n").unwrap();
    let o = sb.run("logreplay", &["-f", "x.csv", "-i", "u:stale"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = ok_stdout(
        &wait_output(logger, Duration::from_secs(20), "logger"),
        "logger",
    );
    assert_eq!(text, "7\n");
}

/// Runs a module that must fail at start-up, at most 10 s (no retrying forever).
fn run_briefly(sb: &Sandbox, module: &str, args: &[&str]) -> Output {
    wait_output(sb.spawn(module, args), Duration::from_secs(10), module)
}

#[test]
fn inputs_that_can_never_connect_fail_at_start_up() {
    let sb = Sandbox::new();
    assert_one_line(
        &run_briefly(&sb, "logger", &["-vvv", "-i", "t:nonexistent.invalid:1234"]),
        1,
        "logger: error: input interface `t:nonexistent.invalid:1234`: cannot resolve host \
         `nonexistent.invalid`: Name or service not known (check the name, or give an IP address)",
    );
    assert_one_line(
        &run_briefly(&sb, "logger", &["-vvv", "-i", "t:0"]),
        1,
        "logger: error: input interface `t:0`: `0` is not a TCP port (1 to 65535)",
    );
    let long = "a".repeat(200);
    let path = sb.path(&format!("trap-{long}.sock"));
    let spec = format!("u:{long}");
    assert_one_line(
        &run_briefly(&sb, "logger", &["-vvv", "-i", &spec]),
        1,
        &format!(
            "logger: error: input interface `{spec}`: socket path {} is {} bytes, longer than \
             a unix socket address allows (107): use a shorter name or a shorter TRAP_SOCKET_DIR",
            path.display(),
            path.as_os_str().len()
        ),
    );
}

#[test]
fn inputs_reject_the_parameters_outputs_reject() {
    let sb = Sandbox::new();
    for (spec, what) in [
        (
            "u:a:bogus=1",
            "unknown parameter `bogus=1` (an input takes u:NAME[:perm=MODE])",
        ),
        ("u:a:max_clients=-1", "max_clients= applies to outputs only"),
        (
            "f:x.trapcap:size=-1",
            "`size=-1`: w, a, size= and time= apply to file outputs only",
        ),
        (
            "u:a:timeout=99999999999",
            "timeout `99999999999` is too long (at most 86400000000 microseconds, a day)",
        ),
    ] {
        let o = run_briefly(&sb, "logger", &["-i", spec]);
        let line = if what.starts_with("timeout") {
            format!("logger: error: interface 1 `{spec}`: {what}")
        } else {
            format!("logger: error: input interface `{spec}`: {what}")
        };
        assert_one_line(&o, 1, &line);
    }
    assert_one_line(
        &run_briefly(
            &sb,
            "traffic_repeater",
            &["-i", "u:in,u:out:max_clients=-1"],
        ),
        1,
        "traffic_repeater: error: output interface `u:out:max_clients=-1`: bad number in \
         `max_clients=-1` (0 to 4294967295)",
    );
    let o = sb
        .cmd("logger")
        .args(["-i", "u:a"])
        .env("TRAP_SOCKET_MODE", "rw-rw-rw-")
        .output()
        .unwrap();
    assert_one_line(
        &o,
        1,
        "logger: error: input interface `u:a`: TRAP_SOCKET_MODE=`rw-rw-rw-` is not an octal \
         mode 0 to 0777 (e.g. 0660)",
    );
}

/// Starts `logger ARGS` in the background with piped output.
fn waiting_logger(sb: &Sandbox, args: &[&str]) -> std::process::Child {
    sb.cmd("logger")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn an_input_that_cannot_connect_says_so_rate_limited() {
    let sb = Sandbox::new();
    let verbose = waiting_logger(&sb, &["-v", "-i", "u:nobody_home"]);
    let quiet = waiting_logger(&sb, &["-i", "u:nobody_home"]);
    let refused = waiting_logger(&sb, &["-v", "-i", "t:127.0.0.1:23401"]);
    // The quiet one warns 10 s after its first attempt; 3 s to spare.
    std::thread::sleep(Duration::from_secs(13));
    for c in [&verbose, &quiet, &refused] {
        nemea_rs::interrupt(c);
    }
    let text = |c| {
        let o = wait_output(c, Duration::from_secs(10), "logger");
        assert!(o.status.success(), "{o:?}");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let path = sb.path("trap-nobody_home.sock");
    // -v: the first failure at once, then nothing for 30 s.
    assert_eq!(
        text(verbose),
        format!(
            "logger: u:nobody_home: cannot connect to {}: No such file or directory; retrying\n",
            path.display()
        )
    );
    assert_eq!(
        text(refused),
        "logger: t:127.0.0.1:23401: cannot connect to 127.0.0.1:23401: Connection refused; \
         retrying\n"
    );
    // Without -v: a warning after 10 s (a reader started before its sender
    // prints nothing), with the count.
    let q = text(quiet);
    let prefix = format!(
        "logger: warning: u:nobody_home: cannot connect to {}: No such file or directory (",
        path.display()
    );
    assert!(
        q.starts_with(&prefix) && q.ends_with(" attempts in 10 s); still retrying\n"),
        "{q}"
    );
    assert_eq!(q.lines().count(), 1, "{q}");
}
